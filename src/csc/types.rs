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

// The answers below replace JSON objects built by hand, whose members serialized in byte order: their fields keep
// that order, so that the bytes on the wire are the same.

/// `info` answer.
#[derive(Debug, Serialize)]
pub struct InfoResponse {
    /// v2 only.
    #[serde(rename = "asynchronousOperationMode", skip_serializing_if = "Option::is_none")]
    pub asynchronous_operation_mode: Option<bool>,
    #[serde(rename = "authType")]
    pub auth_type: Vec<&'static str>,
    pub description: &'static str,
    pub lang: &'static str,
    pub methods: Vec<&'static str>,
    pub name: String,
    /// The base URI of the OAuth 2.0 endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<String>,
    /// v2: the OAuth 2.0 issuer (RFC 8414), the same URI.
    #[serde(rename = "oauth2Issuer", skip_serializing_if = "Option::is_none")]
    pub oauth2_issuer: Option<String>,
    pub region: String,
    /// v2 only.
    #[serde(rename = "signAlgorithms", skip_serializing_if = "Option::is_none")]
    pub sign_algorithms: Option<SignAlgorithms>,
    pub specs: &'static str,
    /// v2 only.
    #[serde(rename = "validationInfo", skip_serializing_if = "Option::is_none")]
    pub validation_info: Option<bool>,
}

/// The signature algorithms `info` offers (v2).
#[derive(Debug, Serialize)]
pub struct SignAlgorithms {
    #[serde(rename = "algoParams")]
    pub algo_params: Vec<String>,
    pub algos: Vec<String>,
}

/// `credentials/info` answer, and a `credentialInfos` item of `credentials/list` (v2).
#[derive(Debug, Serialize)]
pub struct CredentialInfo {
    /// v1: the TOTP as the `OTP` object.
    #[serde(rename = "OTP", skip_serializing_if = "Option::is_none")]
    pub otp: Option<OtpInfo>,
    /// v1: no PIN.
    #[serde(rename = "PIN", skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinInfo>,
    #[serde(rename = "SCAL")]
    pub scal: &'static str,
    /// v2: the TOTP as an authentication object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthInfo>,
    /// v1: `explicit`.
    #[serde(rename = "authMode", skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<&'static str>,
    pub cert: CertInfo,
    /// In a `credentials/list` answer only.
    #[serde(rename = "credentialID", skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    pub description: String,
    pub key: KeyInfo,
    pub lang: &'static str,
    pub multisign: i64,
}

/// The key of a credential.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub algo: Vec<String>,
    /// The curve's OID, for an EC key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    pub len: u32,
    /// `enabled` or `disabled`.
    pub status: &'static str,
}

/// The certificate of a credential.
#[derive(Debug, Serialize)]
pub struct CertInfo {
    /// Base64 DER: the certificate, or its chain; absent with `certificates: none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    #[serde(rename = "issuerDN", skip_serializing_if = "Option::is_none")]
    pub issuer_dn: Option<String>,
    #[serde(rename = "serialNumber", skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    pub status: crate::db::credentials::StatusAt,
    #[serde(rename = "subjectDN", skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    #[serde(rename = "validFrom", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(rename = "validTo", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

/// v1 `OTP` object.
#[derive(Debug, Serialize)]
pub struct OtpInfo {
    #[serde(rename = "ID")]
    pub id: &'static str,
    pub description: &'static str,
    pub format: &'static str,
    pub label: &'static str,
    pub presence: &'static str,
    pub provider: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// v1 `PIN` object.
#[derive(Debug, Serialize)]
pub struct PinInfo {
    pub presence: &'static str,
}

/// v2 `auth` object.
#[derive(Debug, Serialize)]
pub struct AuthInfo {
    pub expression: &'static str,
    pub mode: &'static str,
    pub objects: Vec<AuthObject>,
}

/// An authentication object of v2 `auth`.
#[derive(Debug, Serialize)]
pub struct AuthObject {
    pub description: &'static str,
    pub format: &'static str,
    pub generator: &'static str,
    pub id: &'static str,
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `credentials/list` answer.
#[derive(Debug, Serialize)]
pub struct ListResponse {
    #[serde(rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
    /// v2, with `credentialInfo`.
    #[serde(rename = "credentialInfos", skip_serializing_if = "Option::is_none")]
    pub credential_infos: Option<Vec<CredentialInfo>>,
    /// v1, when more pages follow.
    #[serde(rename = "nextPageToken", skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    /// v2, echoed when asked.
    #[serde(rename = "onlyValid", skip_serializing_if = "Option::is_none")]
    pub only_valid: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::credentials::StatusAt;

    /// The bytes of an answer, and of the same answer read back as a JSON object (whose members serialize in
    /// byte order): equal when the fields are declared in that order.
    fn same_bytes<T: Serialize>(answer: &T) {
        let direct = serde_json::to_string(answer).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(answer).unwrap()).unwrap();
        assert_eq!(direct, sorted);
    }

    fn credential_info() -> CredentialInfo {
        let some = |s: &str| Some(s.to_owned());
        CredentialInfo {
            otp: Some(OtpInfo {
                id: "otp",
                description: "d",
                format: "N",
                label: "l",
                presence: "true",
                provider: "totp",
                kind: "offline",
            }),
            pin: Some(PinInfo { presence: "false" }),
            scal: "2",
            auth: Some(AuthInfo {
                expression: "otp",
                mode: "explicit",
                objects: vec![AuthObject {
                    description: "d",
                    format: "N",
                    generator: "totp",
                    id: "otp",
                    label: "l",
                    kind: "Password",
                }],
            }),
            auth_mode: Some("explicit"),
            cert: CertInfo {
                certificates: Some(vec!["MII".into()]),
                issuer_dn: some("CN=CA"),
                serial_number: some("01"),
                status: StatusAt::Valid,
                subject_dn: some("CN=A"),
                valid_from: some("20260101000000Z"),
                valid_to: some("20270101000000Z"),
            },
            credential_id: some("c"),
            description: "key".into(),
            key: KeyInfo {
                algo: vec!["1.2".into()],
                curve: some("1.2.840.10045.3.1.7"),
                len: 256,
                status: "enabled",
            },
            lang: "en-US",
            multisign: 20,
        }
    }

    #[test]
    fn the_answers_keep_the_byte_order_of_the_objects_they_replaced() {
        same_bytes(&InfoResponse {
            asynchronous_operation_mode: Some(false),
            auth_type: vec!["basic"],
            description: "d",
            lang: "en-US",
            methods: vec!["auth/login"],
            name: "n".into(),
            oauth2: Some("https://parafa.example".into()),
            oauth2_issuer: Some("https://parafa.example".into()),
            region: "RO".into(),
            sign_algorithms: Some(SignAlgorithms {
                algo_params: Vec::new(),
                algos: vec!["1.2".into()],
            }),
            specs: "2.0.0.2",
            validation_info: Some(false),
        });
        same_bytes(&credential_info());
        same_bytes(&ListResponse {
            credential_ids: vec!["c".into()],
            credential_infos: Some(vec![credential_info()]),
            next_page_token: Some("1".into()),
            only_valid: Some(true),
        });
    }
}
