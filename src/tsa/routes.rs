//! `POST /tsa` (RFC 3161 over HTTP, §3.4) and `GET /pki/tsa.crt`.

use actix_web::http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;

use super::access::{self, Access, Desk, Refusal};
use super::protocol::{self, FailureInfo};
use crate::accounts::AccountError;
use crate::app::AppState;
use crate::clock::Clock;
use crate::error::ApiError;

/// Registers the TSA routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tsa").route(web::post().to(query)))
        .service(web::resource("/pki/tsa.crt").route(web::get().to(certificate)));
}

async fn certificate(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pkix-cert")
        .body(state.tsa.cert_der().to_vec())
}

/// A query (`application/timestamp-query`) in, an `application/timestamp-reply` out, for malformed and
/// oversized queries too: a rejection saying why. The Content-Type is not checked: clients label queries
/// variously (`application/timestamp-request`, curl's form default), and the DER decides what the body is.
///
/// Before the body is read: the instance's rate limit (429 with `Retry-After`) and the caller's authentication
/// (401 with `WWW-Authenticate: Basic`, which TSP clients such as pyHanko and curl answer with their credentials);
/// see [`access`].
async fn query(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    if let Err(retry_after) = state.tsa.limit.admit().await {
        return Ok(too_many(retry_after, "too many timestamp requests; try later"));
    }
    let client = crate::app::client_address(&req);
    let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match authenticate(&state, authorization, &client).await {
        Ok(caller) => caller,
        Err(Refusal::Unauthenticated(why)) => {
            let mut refusal = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                crate::i18n::Text::verbatim(why),
            )
            .error_response();
            refusal.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Parafa TSA\", charset=\"UTF-8\""),
            );
            return Ok(refusal);
        }
        Err(Refusal::TooMany { retry_after, reason }) => return Ok(too_many(retry_after, &reason)),
        Err(Refusal::Db(e)) => return Err(e.into()),
    };
    let limit = state.settings.tsa.max_request_bytes;
    let Some(body) = read_limited(&req, payload, limit).await? else {
        tracing::info!(limit, "timestamp request rejected: too large");
        return Ok(reply(protocol::rejection(
            FailureInfo::BadDataFormat,
            &format!("the request is larger than {limit} bytes"),
        )));
    };
    let desk = Desk {
        db: &state.db,
        hsm: &state.hsm,
        tsa: &state.tsa,
        clock: &state.clock,
        ledger: &state.ledger,
    };
    Ok(reply(access::answer(desk, &caller, &client, body).await))
}

/// Authenticates a timestamp request from its `Authorization` header; `client` is the caller's address.
async fn authenticate(state: &AppState, authorization: Option<&str>, client: &str) -> Result<Access, Refusal> {
    let unauthenticated = |why: &str| {
        Refusal::Unauthenticated(format!(
            "{why}: authenticate with HTTP Basic (e-mail and password) or a CSC bearer token"
        ))
    };
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        if !state.settings.tsa_ocsp.tsa_anonymous {
            return Err(unauthenticated("timestamps are debited from a package"));
        }
        return match state.tsa.anonymous_limit.admit().await {
            Ok(()) => Ok(Access::Anonymous),
            Err(retry_after) => Err(Refusal::TooMany {
                retry_after,
                reason: "too many anonymous timestamp requests; try later or authenticate".into(),
            }),
        };
    };
    if let Some(token) = header.strip_prefix("Bearer ") {
        return match crate::auth::tokens::authenticate(&state.db, state.clock.as_ref(), token.trim()).await {
            Ok(row) => Ok(Access::Holder { user_id: row.user_id }),
            Err(crate::auth::tokens::TokenError::Db(e)) => Err(e.into()),
            Err(_) => Err(unauthenticated("the access token is not valid")),
        };
    }
    let Some((email, password)) = crate::encoding::basic_credentials(header) else {
        return Err(unauthenticated("malformed authorization header"));
    };
    let email = email.trim().to_lowercase();
    if let Some(user_id) = state.tsa.credentials.recall(&state.db, &email, &password).await? {
        return Ok(Access::Holder { user_id });
    }
    match crate::accounts::login::check_password(&state.accounts(), &email, Some(password.clone()), client).await {
        Ok((user, attempt)) => match attempt.succeeded(&state.accounts()).await {
            Err(AccountError::Db(e)) => Err(e.into()),
            _ => {
                state
                    .tsa
                    .credentials
                    .remember(&email, &password, &user.id, &user.password_hash);
                Ok(Access::Holder { user_id: user.id })
            }
        },
        Err(AccountError::Throttled { retry_at }) => Err(Refusal::TooMany {
            retry_after: (retry_at - state.clock.now()).max(1) as u64,
            reason: "too many failed logins; try later".into(),
        }),
        Err(AccountError::Db(e)) => Err(e.into()),
        Err(_) => Err(unauthenticated("invalid e-mail or password")),
    }
}

/// A 429 with `Retry-After` (seconds) and the CSC-style error body.
fn too_many(retry_after: u64, reason: &str) -> HttpResponse {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        crate::i18n::Text::verbatim(reason),
    )
    .error_response();
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// How much of an oversized body is read and thrown away, in multiples of the limit, before the rejection is sent:
/// a client still writing its body when the server closes the connection gets a reset instead of the answer.
/// Past this the connection is dropped without more reading.
const DRAIN_FACTOR: usize = 64;

/// The body, or `None` when it is larger than `limit` (told by Content-Length, or counted while it streams in).
/// Nothing past the limit is kept.
async fn read_limited(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR);
    if declared.is_some_and(|n| n > drain_cap) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_request(crate::text!("error.http.body_unreadable", e)))?;
        seen = seen.saturating_add(chunk.len());
        if seen > drain_cap {
            return Ok(None);
        }
        if seen <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    Ok((seen <= limit).then_some(body))
}

/// Every outcome is a 200 with a TimeStampResp, a failure of the TSA itself included (systemFailure, logged as an
/// error): TSP clients read the PKIStatus, not the HTTP status, and the server-wide error handler would replace
/// the body of a 5xx with JSON.
fn reply(der: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/timestamp-reply").body(der)
}
