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

/// The `Set-Cookie` value for a session (`max_age` only for "remember me"; a plain session ends with the browser).
pub fn cookie(token: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}
