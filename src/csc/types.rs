//! Request bodies of the CSC methods, with both v1 and v2 names where they differ (pyHanko sends v1 names on v2
//! paths too). Every field is optional here so that a missing one gets the CSC error text, not serde's; unknown
//! members are ignored and `null` counts as absent, as the specification asks.

use serde::{Deserialize, Serialize};

/// `auth/login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginRequest {
    #[serde(rename = "rememberMe")]
    pub remember_me: Option<bool>,
    pub refresh_token: Option<String>,
    #[serde(rename = "clientData")]
    pub client_data: Option<String>,
}

/// `auth/revoke`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
}

/// `credentials/list`.
#[derive(Debug, Default, Deserialize)]
pub struct ListRequest {
    #[serde(rename = "userID")]
    pub user_id: Option<String>,
    #[serde(rename = "maxResults")]
    pub max_results: Option<u32>,
    #[serde(rename = "pageToken")]
    pub page_token: Option<String>,
    #[serde(rename = "credentialInfo")]
    pub credential_info: Option<bool>,
    pub certificates: Option<String>,
    #[serde(rename = "certInfo")]
    pub cert_info: Option<bool>,
    #[serde(rename = "authInfo")]
    pub auth_info: Option<bool>,
    #[serde(rename = "onlyValid")]
    pub only_valid: Option<bool>,
}

/// `credentials/info`.
#[derive(Debug, Default, Deserialize)]
pub struct InfoRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: Option<String>,
    pub certificates: Option<String>,
    #[serde(rename = "certInfo")]
    pub cert_info: Option<bool>,
    #[serde(rename = "authInfo")]
    pub auth_info: Option<bool>,
}

/// One `authData` item (v2).
#[derive(Debug, Default, Deserialize)]
pub struct AuthData {
    pub id: Option<String>,
    pub value: Option<String>,
}

/// `credentials/authorize`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    pub num_signatures: Option<i64>,
    #[serde(rename = "hashes", alias = "hash")]
    pub hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID", alias = "hashAlgo")]
    pub hash_algorithm: Option<String>,
    #[serde(rename = "OTP")]
    pub otp: Option<String>,
    #[serde(rename = "PIN")]
    pub pin: Option<String>,
    #[serde(rename = "authData")]
    pub auth_data: Option<Vec<AuthData>>,
    pub description: Option<String>,
    #[serde(rename = "clientData")]
    pub client_data: Option<String>,
}

/// `credentials/authorizeCheck`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeCheckRequest {
    pub handle: Option<String>,
}

/// `signatures/signHash`.
#[derive(Debug, Default, Deserialize)]
pub struct SignHashRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: Option<String>,
    #[serde(rename = "SAD")]
    pub sad: Option<String>,
    #[serde(rename = "hashes", alias = "hash")]
    pub hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID", alias = "hashAlgo")]
    pub hash_algorithm: Option<String>,
    #[serde(rename = "signAlgo")]
    pub sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub sign_algo_params: Option<String>,
    #[serde(rename = "operationMode")]
    pub operation_mode: Option<String>,
    #[serde(rename = "clientData")]
    pub client_data: Option<String>,
}

/// `auth/login` answer.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: i64,
}

/// `credentials/authorize` answer.
#[derive(Debug, Serialize)]
pub struct AuthorizeResponse {
    #[serde(rename = "SAD")]
    pub sad: String,
    #[serde(rename = "expiresIn")]
    pub expires_in: i64,
}

/// `signatures/signHash` answer.
#[derive(Debug, Serialize)]
pub struct SignHashResponse {
    pub signatures: Vec<String>,
}
