//! Browser-facing protections applied to every request and answer.
//!
//! - **CSRF**: a state-changing request (not GET/HEAD/OPTIONS) that carries the session cookie must send the
//!   session's CSRF token (`sessions::csrf_token`) in `X-CSRF-Token`; pages carry it in `<meta name="csrf-token">`
//!   and `app.js` sends it with every form. On top of that, a browser's cross-site request (`Sec-Fetch-Site:
//!   cross-site`/`same-site`, or an `Origin` that is not this host) is refused whatever it carries, which also covers
//!   forms without a session (enrolment, login). The cookie itself is `SameSite=Strict`. Requests without the
//!   cookie and without browser headers (CSC clients with bearer tokens, payment callbacks, curl) are not affected.
//! - **Headers**: a strict Content-Security-Policy (scripts and styles only from this origin, no inline script, no
//!   framing, forms only to this origin), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: same-origin`, `Cross-Origin-Opener-Policy: same-origin`.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};

use crate::auth::sessions;
use crate::error::ApiError;

/// The header a state-changing request sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The Content-Security-Policy of every answer. `blob:` for workers and images: pdf.js renders previews from the
/// file the holder picked, without uploading it first.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                       worker-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Refuses a cross-site browser request, or a state-changing request with the session cookie but without its
/// CSRF token.
pub fn check(req: &ServiceRequest) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = req.headers();
    let forbidden = |key: &'static str| ApiError::new(StatusCode::FORBIDDEN, "access_denied", crate::text!(key));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return Err(forbidden("error.http.cross_site_requests_refused"));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_owned();
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin != "null" && !origin_host.eq_ignore_ascii_case(&host) {
            return Err(forbidden("error.http.requests_from_another_origin_refused"));
        }
    }
    if let Some(cookie) = req.cookie(sessions::COOKIE) {
        let expected = sessions::csrf_token(cookie.value());
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            return Err(forbidden("error.http.form_security_token_missing_or"));
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds the security headers to an answer (keeping any the handler set).
pub fn add_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}
