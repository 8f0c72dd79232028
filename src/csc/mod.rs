//! The Cloud Signature Consortium API, v1 (`/csc/v1/…`, what pyHanko's CSC signer speaks) and v2 (`/csc/v2/…`).
//! Handlers only extract, call [`service`] and map; the rules live there.

pub mod algo;
pub mod service;
pub mod sign_doc;
pub mod types;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::tokens::{self, TokenError};
use crate::error::ApiError;
use crate::text;
use service::Caller;
use types::*;

/// Which version of the API a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// `info.specs`.
    pub fn specs(self) -> &'static str {
        match self {
            Version::V1 => "1.0.4.0",
            Version::V2 => "2.0.0.2",
        }
    }

    /// The name of the hash-algorithm parameter in this version.
    pub fn hash_param(self) -> &'static str {
        match self {
            Version::V1 => "hashAlgo",
            Version::V2 => "hashAlgorithmOID",
        }
    }
}

pub use crate::error::CscError;

impl From<crate::auth::password::PasswordError> for CscError {
    fn from(e: crate::auth::password::PasswordError) -> CscError {
        match e {
            crate::auth::password::PasswordError::Overloaded(o) => CscError::Overloaded(o),
            other => CscError::Internal(other.to_string()),
        }
    }
}

impl CscError {
    /// A 400 `invalid_request` with this description.
    pub fn invalid(description: impl Into<String>) -> CscError {
        CscError::Invalid(description.into())
    }
}

/// Registers `/csc/v1/…` and `/csc/v2/…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (prefix, version) in [("/csc/v1", Version::V1), ("/csc/v2", Version::V2)] {
        let mut scope = web::scope(prefix)
            .app_data(web::Data::new(version))
            .service(
                web::resource("/info")
                    .route(web::post().to(info))
                    .route(web::get().to(info)),
            )
            .service(web::resource("/auth/login").route(web::post().to(login)))
            .service(web::resource("/auth/revoke").route(web::post().to(revoke)))
            .service(web::resource("/credentials/list").route(web::post().to(list)))
            .service(web::resource("/credentials/info").route(web::post().to(credential_info)))
            .service(web::resource("/credentials/authorize").route(web::post().to(authorize)))
            .service(web::resource("/signatures/signHash").route(web::post().to(sign_hash)))
            .service(web::resource("/signatures/timestamp").route(web::post().to(timestamp)));
        if version == Version::V2 {
            scope = scope
                .service(web::resource("/credentials/authorizeCheck").route(web::post().to(authorize_check)))
                // Documents travel inside the JSON (base64): a larger body than the other methods, read as it
                // streams up to `documents.max_sign_doc_body_bytes`.
                .service(web::resource("/signatures/signDoc").route(web::post().to(sign_doc)));
        }
        cfg.service(scope);
    }
}

/// A JSON body; an empty body counts as `{}` (CSC methods such as `info` and `auth/login` may have none).
fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(crate::text!("error.http.invalid_json_body", e)))
}

fn client_of(req: &HttpRequest) -> String {
    crate::app::client_address(req)
}

/// A caller with what their bearer token allows. A `credential` token (issued by the OAuth 2.0 authorization
/// server, bound to one credential and the exact hashes the holder approved) is also that credential's SAD, under
/// the same hash; it reaches only `credentials/info`, the signing methods and `auth/revoke`.
pub struct Bearer {
    pub caller: Caller,
    /// `service` or `credential`.
    pub scope: String,
    token: String,
}

impl Bearer {
    /// The SAD of a signing request that names none: the bearer token itself when it is a `credential` token (CSC
    /// v2 §8), so the SAD check and the ledger's debit treat it as any SAD; nothing for a `service` token.
    fn sad(&self) -> Option<String> {
        (self.scope == tokens::CREDENTIAL).then(|| self.token.clone())
    }

    /// The caller of a method a `credential` token does not reach (listing credentials, authorising other
    /// signatures, timestamps that spend the quota).
    fn service(self) -> Result<Caller, CscError> {
        if self.scope == tokens::CREDENTIAL {
            return Err(CscError::InvalidToken(
                "The access token has scope credential: it allows only credentials/info and signing its hashes".into(),
            ));
        }
        Ok(self.caller)
    }
}

/// A signing request's SAD, or the bearer's own when it is a `credential` token and the request names none.
fn sad_or_bearer(sad: Option<String>, bearer: &Bearer) -> Option<String> {
    sad.filter(|s| !s.is_empty()).or_else(|| bearer.sad())
}

impl FromRequest for Bearer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|h| h.to_str().map(str::to_owned));
        let client = client_of(req);
        // Only signHash takes a token read a moment ago: its ledger commit checks the token again before a
        // signature leaves. Every other method reads it afresh, so a revoked token stops there at once.
        let may_keep = req.path().ends_with("/signatures/signHash");
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::internal(text!("error.http.internal_error"), &"no application state"))?;
            let token = match header {
                None => return Err(CscError::InvalidToken("Missing bearer token".into()).into()),
                Some(Err(_)) => return Err(CscError::invalid("Malformed authorization header").into()),
                Some(Ok(h)) => match h.strip_prefix("Bearer ") {
                    Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
                    _ => {
                        return Err(CscError::InvalidToken(
                            "Malformed authorization header: Bearer token expected".into(),
                        )
                        .into())
                    }
                },
            };
            let token_hash = tokens::hash(&token);
            // A token read a moment ago and valid then is taken as it was, if it has not expired since: the
            // ledger checks it again before a signature leaves (see signing::RecentReads).
            let kept = may_keep
                .then(|| state.recent.tokens.get(&token_hash))
                .flatten()
                .filter(|row| row.expires_at > crate::clock::Clock::now(state.clock.as_ref()));
            let found = match kept {
                Some(row) => Ok(row),
                None => tokens::authenticate(&state.db, state.clock.as_ref(), &token)
                    .await
                    .inspect(|row| {
                        if may_keep {
                            state.recent.tokens.put(token_hash.clone(), row.clone())
                        }
                    }),
            };
            match found {
                Ok(row) => Ok(Bearer {
                    caller: Caller {
                        user_id: row.user_id,
                        client,
                        token_hash,
                    },
                    scope: row.scope,
                    token,
                }),
                Err(TokenError::Invalid) => Err(CscError::InvalidToken("The access token is not valid".into()).into()),
                Err(TokenError::Expired) => Err(CscError::ExpiredToken.into()),
                Err(TokenError::Db(e)) => Err(CscError::Db(e).into()),
            }
        })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bearer = Bearer::from_request(req, payload);
        Box::pin(async move { Ok(bearer.await?.caller) })
    }
}

/// What `info` says of the OAuth 2.0 authorization server: `oauth2` (v1 and v2) and `oauth2Issuer` (v2) are the
/// public base URL the `oauth2/*` endpoints hang off, and `authType` adds `oauth2code`.
fn announce_oauth(v: &mut types::InfoResponse, version: Version, issuer: &str) {
    v.auth_type = vec!["basic", "oauth2code"];
    v.oauth2 = Some(issuer.to_owned());
    v.methods.extend(["oauth2/authorize", "oauth2/token", "oauth2/revoke"]);
    if version == Version::V2 {
        v.oauth2_issuer = Some(issuer.to_owned());
        v.methods.push("oauth2/pushed_authorize");
    }
}

async fn info(state: web::Data<AppState>, version: web::Data<Version>) -> HttpResponse {
    let mut v = service::info(&state, **version);
    announce_oauth(&mut v, **version, &state.settings.public_url());
    HttpResponse::Ok().json(v)
}

async fn login(state: web::Data<AppState>, req: HttpRequest, bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: LoginRequest = body(&bytes)?;
    let basic = service::parse_basic(req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()))?;
    let otp = req
        .headers()
        .get("X-Parafa-OTP")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let out = service::login(&state, basic, otp, request, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn revoke(state: web::Data<AppState>, caller: Caller, bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    service::revoke(&state, &caller, body(&bytes)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(
    state: web::Data<AppState>,
    version: web::Data<Version>,
    bearer: Bearer,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = bearer.service()?;
    let out = service::list(&state, **version, &caller, body(&bytes)?).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn credential_info(
    state: web::Data<AppState>,
    version: web::Data<Version>,
    caller: Caller,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let out = service::credential_info(&state, **version, &caller, body(&bytes)?).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn authorize(
    state: web::Data<AppState>,
    version: web::Data<Version>,
    bearer: Bearer,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = bearer.service()?;
    let out = service::authorize(&state, **version, &caller, body(&bytes)?).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Parafa authorises synchronously and never answers 202 with a handle, so no handle is ever valid here.
async fn authorize_check(_caller: Caller, bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: AuthorizeCheckRequest = body(&bytes)?;
    match request.handle {
        None => Err(CscError::invalid("Missing (or invalid type) string parameter handle").into()),
        Some(_) => Err(CscError::invalid("Invalid parameter handle").into()),
    }
}

async fn sign_doc(
    state: web::Data<AppState>,
    version: web::Data<Version>,
    bearer: Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The documents are decoded as the body arrives, never held as base64 beside themselves.
    let limit = state.settings.documents.max_sign_doc_body_bytes();
    let mut lifted = sign_doc::read_body(&req, payload, limit).await?;
    let mut request: sign_doc::SignDocRequest = body(&lifted.skeleton)?;
    lifted.skeleton = Vec::new();
    request.sad = sad_or_bearer(request.sad, &bearer);
    let caller = bearer.caller;
    let out = sign_doc::sign_doc(&state, **version, &caller, request, lifted).await?;
    Ok(sign_doc::respond(out))
}

async fn timestamp(state: web::Data<AppState>, bearer: Bearer, bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    let caller = bearer.service()?;
    let out = sign_doc::timestamp(&state, &caller, body(&bytes)?).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn sign_hash(
    state: web::Data<AppState>,
    version: web::Data<Version>,
    bearer: Bearer,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut request: SignHashRequest = body(&bytes)?;
    request.sad = sad_or_bearer(request.sad, &bearer);
    let out = service::sign_hash(&state, **version, &bearer.caller, request).await?;
    Ok(HttpResponse::Ok().json(out))
}
