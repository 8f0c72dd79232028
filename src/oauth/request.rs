//! An authorization request (`GET /oauth2/authorize`, or pushed first with `POST /oauth2/pushed_authorize`), read
//! and checked in two steps: the client and its redirect URI (a failure there is an error page, as the redirect
//! URI cannot be trusted), then the rest (a failure there goes back to the client's redirect URI).

use std::collections::BTreeMap;

use serde::Serialize;

use super::clients::redirect_registered;
use super::{OAuthError, Services, DETAIL_TYPES, REQUEST_URI_PREFIX, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::auth::tokens;
use crate::db::oauth::{self as store, ClientRow, RequestRow};
use crate::hsm::HashAlg;
use crate::text;

/// The parameters of a request, by name (the query string, or what a client pushed).
pub type Params = BTreeMap<String, String>;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: ClientRow,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// `ro` or `en`, if the client named the holder's language.
    pub lang: Option<String>,
    pub ask: Ask,
    /// The pushed request this came from (its stored hash), used up when the holder answers.
    pub request_uri_hash: Option<String>,
}

/// What the client asks.
#[derive(Debug, Clone)]
pub enum Ask {
    /// Scope `service`: the holder's credentials and signing with a SAD each time.
    Service,
    /// Scope `credential` (or RAR `authorization_details`): signatures of these digests with this credential.
    Credential(CredentialAsk),
}

/// A request to sign exact digests with one credential.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialAsk {
    pub credential_id: String,
    pub num_signatures: i64,
    /// The digests, each as often as it may be signed.
    #[serde(skip)]
    pub digests: Vec<Vec<u8>>,
    /// The hash algorithm, if the client named it.
    #[serde(skip)]
    pub hash_algo: Option<HashAlg>,
    /// The documents' labels (RAR `documentDigests[].label`), for the consent page.
    pub labels: Vec<String>,
    /// What the client says the signatures are for (`description`).
    pub description: Option<String>,
    /// The `authorization_details` as sent (JSON), echoed in the token response.
    #[serde(skip)]
    pub details: Option<String>,
}

/// Why a request is refused: on an error page, or back to the client.
#[derive(Debug)]
pub enum Refusal {
    /// The client or its redirect URI is not known: never redirect.
    Page(OAuthError),
    /// Sent back to the client's redirect URI with `error`, `error_description`, `state` and `iss`.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Refusal {
        Refusal::Page(e)
    }
}

fn get<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Reads a request: a pushed one (`client_id` and `request_uri`) is replaced by what was pushed.
pub async fn read(svc: Services<'_>, params: &Params) -> Result<AuthRequest, Refusal> {
    let (params, request_uri_hash) = match get(params, "request_uri") {
        Some(uri) => {
            let pushed = pushed(svc, get(params, "client_id"), uri).await?;
            let stored: Params = serde_json::from_str(&pushed.params)
                .map_err(|_| OAuthError::Invalid(text!("error.oauth.request_uri_invalid")))?;
            (stored, Some(pushed.uri_hash))
        }
        None => (params.clone(), None),
    };
    let (client, redirect_uri) = client_and_redirect(svc, &params).await?;
    let state = get(&params, "state").map(str::to_owned);
    let back = |error: OAuthError| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };
    let rest = check(svc, &client, &params).map_err(back)?;
    Ok(AuthRequest {
        client,
        redirect_uri,
        state,
        code_challenge: rest.0,
        lang: get(&params, "lang").map(str::to_owned),
        ask: rest.1,
        request_uri_hash,
    })
}

/// Checks a request a client pushes (RFC 9126): the same rules, every refusal as a JSON error. The client has
/// authenticated already; the request names it or no client.
pub fn check_pushed(svc: Services<'_>, client: &ClientRow, params: &Params) -> Result<(), OAuthError> {
    if get(params, "request_uri").is_some() {
        return Err(OAuthError::Invalid(text!("error.oauth.request_uri_in_pushed_request")));
    }
    if get(params, "client_id").is_some_and(|c| c != client.id) {
        return Err(OAuthError::Invalid(text!("error.oauth.client_id_mismatch")));
    }
    let redirect_uri = get(params, "redirect_uri").ok_or(OAuthError::RedirectUri)?;
    if !redirect_registered(client, redirect_uri) {
        return Err(OAuthError::RedirectUri);
    }
    check(svc, client, params).map(|_| ())
}

/// Stores a pushed request; returns its `request_uri` and lifetime.
pub async fn push(svc: Services<'_>, client: &ClientRow, params: &Params) -> Result<(String, i64), OAuthError> {
    check_pushed(svc, client, params)?;
    let mut params = params.clone();
    params.insert("client_id".into(), client.id.clone());
    let (secret, _) = tokens::new_secret();
    let uri = format!("{REQUEST_URI_PREFIX}{secret}");
    let ttl = svc.settings.csc.oauth_request_uri_ttl_secs;
    let now = svc.clock.now();
    let row = RequestRow {
        uri_hash: tokens::hash(&uri),
        client_id: client.id.clone(),
        params: serde_json::to_string(&params).unwrap_or_default(),
        expires_at: now + ttl,
        used: false,
    };
    store::insert_request(svc.db, &row, now).await?;
    Ok((uri, ttl))
}

async fn pushed(svc: Services<'_>, client_id: Option<&str>, uri: &str) -> Result<RequestRow, OAuthError> {
    let invalid = || OAuthError::Invalid(text!("error.oauth.request_uri_invalid"));
    let row = store::request(svc.db, &tokens::hash(uri)).await?.ok_or_else(invalid)?;
    if client_id != Some(row.client_id.as_str()) || row.used || row.expires_at <= svc.clock.now() {
        return Err(invalid());
    }
    Ok(row)
}

/// The client (known, enabled) and the redirect URI (registered).
async fn client_and_redirect(svc: Services<'_>, params: &Params) -> Result<(ClientRow, String), OAuthError> {
    let client_id = get(params, "client_id").ok_or(OAuthError::UnknownClient)?;
    let client = store::client(svc.db, client_id)
        .await?
        .ok_or(OAuthError::UnknownClient)?;
    if client.disabled {
        return Err(OAuthError::ClientDisabled);
    }
    let redirect_uri = get(params, "redirect_uri").ok_or(OAuthError::RedirectUri)?;
    if !redirect_registered(&client, redirect_uri) {
        return Err(OAuthError::RedirectUri);
    }
    Ok((client, redirect_uri.to_owned()))
}

/// The rest of a request: response type, PKCE, scope. Returns the challenge and what is asked.
fn check(svc: Services<'_>, client: &ClientRow, params: &Params) -> Result<(String, Ask), OAuthError> {
    match get(params, "response_type") {
        Some("code") => {}
        None => {
            return Err(OAuthError::Invalid(text!(
                "error.oauth.missing_parameter",
                name = "response_type"
            )))
        }
        Some(_) => return Err(OAuthError::UnsupportedResponseType),
    }
    let challenge =
        get(params, "code_challenge").ok_or_else(|| OAuthError::Invalid(text!("error.oauth.pkce_required")))?;
    match get(params, "code_challenge_method") {
        Some("S256") => {}
        _ => return Err(OAuthError::Invalid(text!("error.oauth.pkce_s256_only"))),
    }
    // BASE64URL(SHA-256(verifier)) without padding: 43 characters.
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OAuthError::Invalid(text!("error.oauth.pkce_challenge_malformed")));
    }
    let ask = ask(svc, params)?;
    let scope = match ask {
        Ask::Service => SCOPE_SERVICE,
        Ask::Credential(_) => SCOPE_CREDENTIAL,
    };
    if !client.scopes.iter().any(|s| s == scope) {
        return Err(OAuthError::InvalidScope(text!("error.oauth.scope_not_allowed", scope)));
    }
    Ok((challenge.to_owned(), ask))
}

/// The credential parameters of scope `credential`, which RAR `authorization_details` replaces.
const CREDENTIAL_PARAMS: [&str; 5] = ["credentialID", "numSignatures", "hashes", "hash", "hashAlgorithmOID"];

fn ask(svc: Services<'_>, params: &Params) -> Result<Ask, OAuthError> {
    let scope = get(params, "scope");
    if let Some(details) = get(params, "authorization_details") {
        if scope.is_some_and(|s| s != SCOPE_CREDENTIAL) || CREDENTIAL_PARAMS.iter().any(|p| get(params, p).is_some()) {
            return Err(OAuthError::Invalid(text!("error.oauth.details_mixed_with_scope")));
        }
        return rar(svc, details).map(Ask::Credential);
    }
    match scope {
        Some(SCOPE_SERVICE) => {
            if CREDENTIAL_PARAMS.iter().any(|p| get(params, p).is_some()) {
                return Err(OAuthError::InvalidScope(text!(
                    "error.oauth.credential_params_need_credential_scope"
                )));
            }
            Ok(Ask::Service)
        }
        Some(SCOPE_CREDENTIAL) => {
            let credential_id = get(params, "credentialID")
                .ok_or_else(|| OAuthError::Invalid(text!("error.oauth.missing_parameter", name = "credentialID")))?;
            let hashes = get(params, "hashes")
                .or_else(|| get(params, "hash"))
                .ok_or_else(|| OAuthError::Invalid(text!("error.oauth.hashes_required")))?;
            let digests: Vec<&str> = hashes.split(',').map(str::trim).collect();
            let num = match get(params, "numSignatures") {
                Some(n) => n
                    .parse::<i64>()
                    .map_err(|_| OAuthError::Invalid(text!("error.oauth.invalid_parameter", name = "numSignatures")))?,
                None => digests.len() as i64,
            };
            credential_ask(
                svc,
                credential_id,
                num,
                &digests,
                get(params, "hashAlgorithmOID"),
                Vec::new(),
                get(params, "description"),
                None,
            )
            .map(Ask::Credential)
        }
        None => Err(OAuthError::InvalidScope(text!(
            "error.oauth.missing_parameter",
            name = "scope"
        ))),
        Some(other) => Err(OAuthError::InvalidScope(text!(
            "error.oauth.unknown_scope",
            scope = other
        ))),
    }
}

/// RFC 9396 `authorization_details`: one object of type `credential` (either spelling) with `credentialID`,
/// `documentDigests[{hash, label}]`, `hashAlgorithmOID` and optionally `numSignatures`.
fn rar(svc: Services<'_>, details: &str) -> Result<CredentialAsk, OAuthError> {
    let invalid = || OAuthError::Invalid(text!("error.oauth.details_malformed"));
    let value: serde_json::Value = serde_json::from_str(details).map_err(|_| invalid())?;
    let items = match &value {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Object(_) => vec![value.clone()],
        _ => return Err(invalid()),
    };
    let [item] = items.as_slice() else {
        return Err(OAuthError::Invalid(text!("error.oauth.details_one_credential")));
    };
    let kind = item["type"].as_str().unwrap_or_default();
    if !DETAIL_TYPES.contains(&kind) {
        return Err(OAuthError::InvalidScope(text!(
            "error.oauth.details_type_unknown",
            kind
        )));
    }
    let credential_id = item["credentialID"].as_str().ok_or_else(invalid)?;
    let docs = item["documentDigests"]
        .as_array()
        .ok_or_else(|| OAuthError::Invalid(text!("error.oauth.hashes_required")))?;
    let mut digests = Vec::new();
    let mut labels = Vec::new();
    for d in docs {
        digests.push(d["hash"].as_str().ok_or_else(invalid)?);
        if let Some(l) = d["label"].as_str() {
            labels.push(l.chars().take(200).collect());
        }
    }
    let num = match &item["numSignatures"] {
        serde_json::Value::Null => digests.len() as i64,
        n => n.as_i64().ok_or_else(invalid)?,
    };
    credential_ask(
        svc,
        credential_id,
        num,
        &digests,
        item["hashAlgorithmOID"].as_str(),
        labels,
        item["description"].as_str(),
        Some(details.to_owned()),
    )
}

/// The common rules of a credential request, as `credentials/authorize` has them: SCAL 2 (hashes required),
/// `numSignatures` equal to the hashes and at most `multisign`, digests of the algorithm's length.
#[allow(clippy::too_many_arguments)]
fn credential_ask(
    svc: Services<'_>,
    credential_id: &str,
    num: i64,
    digests: &[&str],
    hash_algo: Option<&str>,
    labels: Vec<String>,
    description: Option<&str>,
    details: Option<String>,
) -> Result<CredentialAsk, OAuthError> {
    let multisign = svc.settings.csc.multisign;
    if digests.is_empty() || digests.iter().any(|d| d.is_empty()) {
        return Err(OAuthError::Invalid(text!("error.oauth.hashes_required")));
    }
    if num < 1 || num != digests.len() as i64 {
        return Err(OAuthError::Invalid(text!("error.oauth.num_signatures_must_match")));
    }
    if num > multisign {
        return Err(OAuthError::Invalid(text!("error.oauth.too_many_signatures", multisign)));
    }
    let hash_algo = hash_algo
        .map(|oid| {
            oid.parse()
                .ok()
                .and_then(|o| HashAlg::from_oid(&o))
                .ok_or_else(|| OAuthError::Invalid(text!("error.oauth.invalid_parameter", name = "hashAlgorithmOID")))
        })
        .transpose()?;
    let decoded = digests
        .iter()
        .map(|d| {
            let bytes = crate::encoding::decode_b64(d)
                .ok_or_else(|| OAuthError::Invalid(text!("error.oauth.invalid_parameter", name = "hashes")))?;
            let ok_len = match hash_algo {
                Some(h) => bytes.len() == h.output_len(),
                None => [32, 48, 64].contains(&bytes.len()),
            };
            if !ok_len {
                return Err(OAuthError::Invalid(text!("error.oauth.digest_length")));
            }
            Ok(bytes)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CredentialAsk {
        credential_id: credential_id.to_owned(),
        num_signatures: num,
        digests: decoded,
        hash_algo,
        labels,
        description: description.map(|d| d.chars().take(500).collect()),
        details,
    })
}
