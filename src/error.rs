//! `ApiError`: the CSC-style error every route returns, `{"error": …, "error_description": …}` with a status.
//! Domain errors are mapped to it here, once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;
use crate::hsm::HsmError;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The CSC error code (`invalid_request`, `invalid_token`, …).
    pub error: &'static str,
    pub description: String,
    /// Seconds for a `Retry-After` header (a 503 of the memory budget).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 404 `not_found`.
    pub fn not_found(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    /// 500 `server_error`; the details go to the log, not to the client.
    pub fn internal(context: &str, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("{context}; see the server log"),
        )
    }

    /// 503 `temporarily_unavailable`.
    pub fn unavailable(context: &str, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(error = %detail, "{context}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            context.to_owned(),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status.as_u16(), self.description)
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
        res.json(Body {
            error: self.error,
            error_description: &self.description,
        })
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match &e {
            DbError::Conflict(what) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            _ if e.is_unavailable() => ApiError::unavailable("the database is unavailable", &e),
            _ => ApiError::internal("database error", &e),
        }
    }
}

impl From<crate::admission::Overloaded> for ApiError {
    fn from(e: crate::admission::Overloaded) -> ApiError {
        ApiError {
            retry_after: Some(e.retry_after_secs),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                e.to_string(),
            )
        }
    }
}

impl From<HsmError> for ApiError {
    fn from(e: HsmError) -> ApiError {
        ApiError::unavailable("the HSM could not complete the operation", &e)
    }
}

/// Turns any error response that is not JSON yet (actix's own 404, 405, 413, …) into the CSC error JSON.
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
    let (error, description) = match status.as_u16() {
        401 => ("invalid_token", "authentication required"),
        404 => ("not_found", "no such route"),
        405 => ("invalid_request", "method not allowed on this route"),
        413 => ("invalid_request", "the request body is too large"),
        415 => ("invalid_request", "unsupported content type"),
        400..=499 => ("invalid_request", "the request could not be processed"),
        503 => ("temporarily_unavailable", "the service is temporarily unavailable"),
        _ => ("server_error", "internal error; see the server log"),
    };
    let (req, original) = res.into_parts();
    let mut response = ApiError::new(status, error, description).error_response();
    // What the status needs to be acted on survives the new body: a 405's methods, a 401's scheme, a 503's wait.
    use actix_web::http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
    for name in [ALLOW, WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(value) = original.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    let res = actix_web::dev::ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// JSON bodies that do not parse get a 400 in the CSC shape, never actix's plain-text default.
pub fn json_error_handler(err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        ),
        J::ContentType => ApiError::invalid_request("the request body must be JSON (Content-Type: application/json)"),
        J::Deserialize(e) => ApiError::invalid_request(format!("invalid JSON body: {e}")),
        other => ApiError::invalid_request(format!("invalid request body: {other}")),
    };
    api.into()
}
