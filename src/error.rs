//! `ApiError`: the CSC-style error every route returns, `{"error": …, "error_description": …}` with a status.
//! Domain errors are mapped to it here, once. Its description is a [`Text`] by key: the body carries it in
//! English, and the response keeps the `Text` so that `web::api_lang` can render it in the page's language.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::accounts::contact::ContactError;
use crate::accounts::AccountError;
use crate::auth::codes::CodeError;
use crate::auth::password::PasswordError;
use crate::auth::totp::CodeError as TotpCodeError;
use crate::billing::orders::OrderError;
use crate::billing::payment::CallbackError;
use crate::ca::registry::RegistryError;
use crate::ca::CaError;
use crate::db::DbError;
use crate::documents::jobs::JobError;
use crate::documents::signer::SignError;
use crate::documents::verify::VerifyError;
use crate::hsm::HsmError;
use crate::i18n::{Lang, Text};
use crate::lifecycle::revoke::RevokeError;
use crate::lifecycle::LifecycleError;
use crate::oauth::OAuthError;
use crate::text;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The CSC error code (`invalid_request`, `invalid_token`, …).
    pub error: &'static str,
    /// What happened, by key.
    pub text: Text,
    /// Seconds for a `Retry-After` header (a 503 of the memory budget).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, text: Text) -> ApiError {
        ApiError {
            status,
            error,
            text,
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(text: Text) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", text)
    }

    /// 404 `not_found`.
    pub fn not_found(text: Text) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", text)
    }

    /// 413 `invalid_request`: a body, or a part of one, over its limit.
    pub fn too_large(text: Text) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", text)
    }

    /// 500 `server_error`; the details go to the log, not to the client.
    pub fn internal(context: Text, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            text!("error.http.see_server_log", context => context),
        )
    }

    /// 503 `temporarily_unavailable`.
    pub fn unavailable(context: Text, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(error = %detail, "{context}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", context)
    }

    /// The description in English, as the body carries it.
    pub fn description(&self) -> String {
        self.text.render(Lang::En)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status.as_u16(), self.text)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        let mut res = res.json(Body {
            error: self.error,
            error_description: &self.description(),
        });
        res.extensions_mut().insert(self.text.clone());
        res
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match &e {
            DbError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                text!("error.http.already_exists", what),
            ),
            _ if e.is_unavailable() => ApiError::unavailable(text!("error.http.database_unavailable"), &e),
            _ => ApiError::internal(text!("error.http.database_error"), &e),
        }
    }
}

impl From<crate::admission::Overloaded> for ApiError {
    fn from(e: crate::admission::Overloaded) -> ApiError {
        ApiError {
            retry_after: Some(e.retry_after_secs),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.text())
        }
    }
}

impl From<HsmError> for ApiError {
    fn from(e: HsmError) -> ApiError {
        ApiError::unavailable(text!("error.http.hsm_could_not_complete_operation"), &e)
    }
}

/// Turns any error response that is not JSON yet (actix's own 404, 405, 413, …) into the CSC error JSON (which
/// `web::error_pages`, around it, turns into the HTML error page for a browser's navigation outside the APIs).
pub fn json_errors<B: actix_web::body::MessageBody + 'static>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // JSON is already the CSC shape; HTML is a page's own error page.
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (error, key) = default_error(status);
    let (req, original) = res.into_parts();
    let mut response = ApiError::new(status, error, text!(key)).error_response();
    keep_headers(original.headers(), response.headers_mut());
    let res = actix_web::dev::ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// The CSC error code and the description's key of an error answer of `status` that carries neither.
pub fn default_error(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        401 => ("invalid_token", "error.http.authentication_required"),
        404 => ("not_found", "error.http.no_such_route"),
        405 => ("invalid_request", "error.http.method_not_allowed_on_route"),
        413 => ("invalid_request", "error.http.request_body_too_large"),
        415 => ("invalid_request", "error.http.unsupported_content_type"),
        400..=499 => ("invalid_request", "error.http.request_could_not_processed"),
        503 => ("temporarily_unavailable", "error.http.service_temporarily_unavailable"),
        _ => ("server_error", "error.http.internal_error_see_server_log"),
    }
}

/// What the status needs to be acted on survives a new body: a 405's methods, a 401's scheme, a 503's wait.
pub fn keep_headers(original: &actix_web::http::header::HeaderMap, new: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
    for name in [ALLOW, WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(value) = original.get(&name) {
            new.insert(name, value.clone());
        }
    }
}

/// JSON bodies that do not parse get a 400 in the CSC shape, never actix's plain-text default.
pub fn json_error_handler(err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::too_large(text!("error.http.request_body_too_large"))
        }
        J::ContentType => ApiError::invalid_request(text!("error.http.request_body_must_json_content")),
        J::Deserialize(e) => ApiError::invalid_request(text!("error.http.invalid_json_body", e)),
        other => ApiError::invalid_request(text!("error.http.invalid_request_body", other)),
    };
    api.into()
}

// --- The one mapping of the domain's errors to HTTP statuses and CSC error codes ---

/// 409 `conflict`.
fn conflict(text: Text) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", text)
}

/// 403 `access_denied`.
fn denied(text: Text) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "access_denied", text)
}

/// 429 `too_many_requests`.
fn too_many(text: Text) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", text)
}

impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> ApiError {
        match e {
            CodeError::TooSoon { .. } | CodeError::TooMany { .. } => too_many(e.text()),
            CodeError::Db(e) => e.into(),
            CodeError::Expired => ApiError::new(StatusCode::BAD_REQUEST, "expired_code", e.text()),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_code", e.text()),
        }
    }
}

impl From<TotpCodeError> for ApiError {
    fn from(e: TotpCodeError) -> ApiError {
        match e {
            TotpCodeError::Db(e) => e.into(),
            TotpCodeError::Locked { .. } => denied(e.text()),
            TotpCodeError::Totp(t) => ApiError::internal(text!("error.http.totp_check_failed"), &t),
            _ => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_otp", e.text()),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> ApiError {
        match e {
            PasswordError::Overloaded(o) => o.into(),
            PasswordError::TooShort(_) => ApiError::invalid_request(e.text()),
            PasswordError::Hash(h) => ApiError::internal(text!("error.http.account_error"), &h),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        let t = e.text();
        let unauthorized = |error| ApiError::new(StatusCode::UNAUTHORIZED, error, t.clone());
        match e {
            AccountError::Password(p) => p.into(),
            AccountError::Invalid(_) => ApiError::invalid_request(t),
            AccountError::NotFound(_) => ApiError::not_found(t),
            AccountError::Expired(_) => ApiError::new(StatusCode::GONE, "expired", t),
            AccountError::Conflict(_) => conflict(t),
            AccountError::Forbidden(_) => denied(t),
            AccountError::Unauthenticated => unauthorized("unauthorized"),
            AccountError::WrongCredentials => unauthorized("authentication_error"),
            AccountError::TotpRequired => unauthorized("totp_required"),
            AccountError::Throttled { .. } => too_many(t),
            AccountError::Code(c) => c.into(),
            AccountError::Totp(c) => c.into(),
            AccountError::Db(e) => e.into(),
            AccountError::Hsm(e) => e.into(),
            AccountError::Internal(d) => ApiError::internal(t, &d),
        }
    }
}

impl From<ContactError> for ApiError {
    fn from(e: ContactError) -> ApiError {
        let t = e.text();
        match e {
            ContactError::Invalid(_) => ApiError::invalid_request(t),
            ContactError::NotFound(_) => ApiError::not_found(t),
            ContactError::Conflict(_) => conflict(t),
            ContactError::TooMany { .. } => {
                let retry_after = e.retry_after();
                ApiError {
                    retry_after,
                    ..too_many(t)
                }
            }
            ContactError::Db(e) => e.into(),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        match e {
            OrderError::Invalid(t) => ApiError::invalid_request(t),
            OrderError::NotFound => ApiError::not_found(e.text()),
            OrderError::Conflict(t) => conflict(t),
            OrderError::Forbidden(t) => denied(t),
            OrderError::Db(e) => e.into(),
        }
    }
}

impl From<CallbackError> for ApiError {
    fn from(e: CallbackError) -> ApiError {
        match e {
            CallbackError::BadSignature | CallbackError::Stale => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                text!("error.payment.not_authentic"),
            ),
            CallbackError::Invalid(t) => ApiError::invalid_request(t),
            CallbackError::Conflict(t) => conflict(t),
            CallbackError::SandboxOff => ApiError::not_found(text!("error.http.no_such_route")),
            CallbackError::Db(e) => e.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::Invalid(t) => ApiError::invalid_request(t),
            RegistryError::NotFound => ApiError::not_found(e.text()),
            RegistryError::Db(e) => e.into(),
            RegistryError::Der(e) => ApiError::internal(text!("error.http.internal_error"), &e),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> ApiError {
        let t = e.text();
        match e {
            LifecycleError::Invalid(_) => ApiError::invalid_request(t),
            LifecycleError::Password(p) => p.into(),
            LifecycleError::NotFound(_) => ApiError::not_found(t),
            LifecycleError::Conflict(_) | LifecycleError::EmailTaken(_) => conflict(t),
            LifecycleError::Forbidden(_) => denied(t),
            LifecycleError::Gone(_) => ApiError::new(StatusCode::GONE, "expired", t),
            LifecycleError::TooLarge(_) => ApiError::too_large(t),
            LifecycleError::TooMany(_) => too_many(t),
            LifecycleError::Code(c) => c.into(),
            LifecycleError::Db(e) => e.into(),
            LifecycleError::Hsm(e) => e.into(),
            LifecycleError::Ca(e) => ApiError::unavailable(t, &e),
            LifecycleError::Totp(e) => ApiError::internal(t, &e),
            LifecycleError::Task(e) => ApiError::internal(t, &e),
        }
    }
}

impl From<RevokeError> for ApiError {
    fn from(e: RevokeError) -> ApiError {
        match e {
            RevokeError::NotFound => ApiError::not_found(e.text()),
            RevokeError::AlreadyRevoked => conflict(e.text()),
            RevokeError::Ca(CaError::UnknownReason { given, known }) => {
                ApiError::invalid_request(text!("error.account.unknown_revocation_reason", given, known))
            }
            RevokeError::Ca(e) => ApiError::unavailable(text!("error.account.revocation_failed"), &e),
            RevokeError::Code(c) => c.into(),
            RevokeError::Db(e) => e.into(),
        }
    }
}

impl From<SignError> for ApiError {
    fn from(e: SignError) -> ApiError {
        match e {
            SignError::QuotaExhausted(_) | SignError::SadSpent | SignError::Invalid(_) => conflict(e.text()),
            SignError::TokenRevoked => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.text()),
            SignError::Hsm(h) => h.into(),
            SignError::Db(e) => e.into(),
            SignError::Internal(m) => ApiError::internal(text!("error.http.signing"), &m),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        match e {
            JobError::Invalid(t) => ApiError::invalid_request(t),
            JobError::TooLarge(t) => ApiError::too_large(t),
            JobError::NotFound(t) => ApiError::not_found(t),
            JobError::Conflict(t) => conflict(t),
            JobError::Code(c) => c.into(),
            JobError::Sign(s) => s.into(),
            JobError::Db(e) => e.into(),
            JobError::Overloaded(o) => o.into(),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> ApiError {
        match e {
            VerifyError::Invalid(t) => ApiError::invalid_request(t),
            VerifyError::Db(e) => e.into(),
            VerifyError::Internal(m) => ApiError::internal(text!("error.http.verification"), &m),
        }
    }
}

/// The OAuth 2.0 refusals: 400 with the RFC 6749 code, 401 `invalid_client` (the token endpoint's route adds
/// `WWW-Authenticate`), a refused TOTP code as the TOTP's own error.
impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> ApiError {
        let (t, code) = (e.text(), e.code());
        let bad = |t: Text| ApiError::new(StatusCode::BAD_REQUEST, code, t);
        match e {
            OAuthError::UnknownClient | OAuthError::RedirectUri | OAuthError::ClientDisabled => bad(t),
            OAuthError::Invalid(_) | OAuthError::InvalidScope(_) | OAuthError::UnsupportedResponseType => bad(t),
            OAuthError::Refused | OAuthError::InvalidGrant(_) | OAuthError::UnsupportedGrantType => bad(t),
            OAuthError::InvalidClient(_) => ApiError::new(StatusCode::UNAUTHORIZED, code, t),
            OAuthError::Totp(c) => c.into(),
            OAuthError::Db(e) => e.into(),
        }
    }
}

/// What went wrong, in CSC terms (the CSC API's own errors; `csc::CscError`).
#[derive(Debug, thiserror::Error)]
pub enum CscError {
    /// 400 `invalid_request`.
    #[error("{0}")]
    Invalid(String),
    /// 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(String),
    /// 401 `expired_token`.
    #[error("the access token has expired")]
    ExpiredToken,
    /// 400 `invalid_otp` (v1) or `invalid_authentication_data` (v2).
    #[error("{message}")]
    Otp { v2: bool, message: String },
    /// 400 `authentication_error`: wrong e-mail or password.
    #[error("{0}")]
    Authentication(String),
    /// 429: too many failed logins.
    #[error("{0}")]
    Throttled(String),
    /// 503: the memory budget or the password workers stayed busy (`Retry-After`).
    #[error(transparent)]
    Overloaded(#[from] crate::admission::Overloaded),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("{0}")]
    Internal(String),
}

/// A CSC error: its HTTP status and CSC error code. Its messages are the protocol's, in English by the
/// specification, so they stay as they are in every language ([`Text::verbatim`]).
impl From<CscError> for ApiError {
    fn from(e: CscError) -> ApiError {
        let bad = StatusCode::BAD_REQUEST;
        let said = |s: String| Text::verbatim(s);
        match e {
            CscError::Invalid(d) => ApiError::new(bad, "invalid_request", said(d)),
            CscError::InvalidToken(d) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", said(d)),
            CscError::ExpiredToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "expired_token",
                said("The access token has expired".to_owned()),
            ),
            CscError::Otp { v2: false, message } => ApiError::new(bad, "invalid_otp", said(message)),
            CscError::Otp { v2: true, message } => ApiError::new(bad, "invalid_authentication_data", said(message)),
            CscError::Authentication(d) => ApiError::new(bad, "authentication_error", said(d)),
            CscError::Throttled(d) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "access_denied", said(d)),
            CscError::Overloaded(o) => o.into(),
            CscError::Db(e) => e.into(),
            CscError::Hsm(e) => e.into(),
            CscError::Internal(d) => ApiError::internal(text!("error.http.internal_error"), &d),
        }
    }
}
