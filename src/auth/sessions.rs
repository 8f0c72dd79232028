//! Browser sessions: a random token in an `HttpOnly; Secure; SameSite=Strict` cookie, stored server-side as its
//! hash with an expiry ("remember me" gives a longer one). Ending a session is a database update, so a stolen
//! cookie stops working everywhere at once.

use crate::clock::Clock;
use crate::config::AccountSettings;
use crate::db::accounts::{self as store, SessionRow};
use crate::db::{Db, DbError};

/// The session cookie's name.
pub const COOKIE: &str = "parafa_session";

/// Opens a session; returns the token (for the cookie) and its expiry.
pub async fn open(
    db: &Db,
    acc: &AccountSettings,
    clock: &dyn Clock,
    user_id: &str,
    remember_me: bool,
    client: &str,
) -> Result<(String, i64), DbError> {
    let (token, token_hash) = super::tokens::new_secret();
    let now = clock.now();
    let ttl = if remember_me {
        acc.remember_me_ttl_secs
    } else {
        acc.session_ttl_secs
    };
    let row = SessionRow {
        token_hash,
        user_id: user_id.to_owned(),
        remember_me,
        expires_at: now + ttl,
        revoked: false,
    };
    store::insert_session(db, &row, client, now).await?;
    Ok((token, row.expires_at))
}

/// The live session of a cookie token, if any.
pub async fn find(db: &Db, clock: &dyn Clock, token: &str) -> Result<Option<SessionRow>, DbError> {
    let row = store::session(db, &super::tokens::hash(token)).await?;
    Ok(row.filter(|s| !s.revoked && s.expires_at > clock.now()))
}

/// Ends a session.
pub async fn close(db: &Db, token_hash: &str) -> Result<(), DbError> {
    store::revoke_session(db, token_hash).await
}

/// The CSRF token of a session: derived from the secret cookie token (which scripts cannot read: the cookie is
/// `HttpOnly`), so nothing more is stored and a forged or injected cookie cannot come with a matching token. Pages
/// carry it in a `<meta>` element; every state-changing request made with the session cookie must send it back in
/// the `X-CSRF-Token` header (see `web::security`).
pub fn csrf_token(session_token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("parafa-csrf\0{session_token}")))
}

/// The `Set-Cookie` value for a session (`max_age` only for "remember me"; a plain session ends with the browser).
/// `secure` is false only for plain HTTP on a loopback address (development), where a browser would drop it.
pub fn cookie(token: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut c = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether cookies set in answer to `req` carry `Secure`: always, except for plain HTTP to a loopback host.
pub fn secure_cookies(req: &actix_web::HttpRequest) -> bool {
    let info = req.connection_info();
    let host = info.host().rsplit_once(':').map_or(info.host(), |(h, _)| h).to_owned();
    let loopback =
        host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback());
    !(info.scheme() == "http" && loopback)
}
