//! Limits that hold for impolite clients: at most `max` uses of a subject (an account's logins, a code's resend,
//! the messages to one address) per window, however many requests arrive at once and on however many instances.
//!
//! A use is *reserved* by one conditional UPDATE that both checks and counts, so two requests can never both see
//! "one left": SQLite runs the statement under its single write lock; PostgreSQL locks the row and, when another
//! transaction updated it meanwhile, evaluates the condition again on the row that transaction left (READ
//! COMMITTED's re-check), so the second request sees the count the first one wrote. The window starts with the
//! first use after the previous one ended.

use sqlx::Row;

use super::DbError;

/// A limit: `max` uses per `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

/// Reserves one use of `subject` under `limit` at `now`: `Ok(None)` when reserved, `Ok(Some(retry_at))` when the
/// limit is reached (the time its window ends). Inside a transaction, the reservation is undone by a rollback,
/// and on PostgreSQL concurrent reservations of the same subject wait for the commit.
pub async fn reserve(
    conn: &mut sqlx::AnyConnection,
    subject: &str,
    limit: Limit,
    now: i64,
) -> Result<Option<i64>, DbError> {
    sqlx::query(
        "INSERT INTO rate_limits (subject, used, expires_at) VALUES ($1, 0, $2) ON CONFLICT (subject) DO NOTHING",
    )
    .bind(subject)
    .bind(now + limit.window_secs)
    .execute(&mut *conn)
    .await?;
    let reserved = sqlx::query(
        "UPDATE rate_limits
            SET used = CASE WHEN expires_at <= $2 THEN 1 ELSE used + 1 END,
                expires_at = CASE WHEN expires_at <= $2 THEN $3 ELSE expires_at END
          WHERE subject = $1 AND (expires_at <= $2 OR used < $4)",
    )
    .bind(subject)
    .bind(now)
    .bind(now + limit.window_secs)
    .bind(limit.max)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if reserved {
        return Ok(None);
    }
    let row = sqlx::query("SELECT expires_at FROM rate_limits WHERE subject = $1")
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(Some(match row {
        Some(r) => r.try_get("expires_at")?,
        None => now + limit.window_secs,
    }))
}

/// Gives back a use reserved in the current window (a login that succeeded is not a failure).
pub async fn release(conn: &mut sqlx::AnyConnection, subject: &str, now: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE rate_limits SET used = used - 1 WHERE subject = $1 AND used > 0 AND expires_at > $2")
        .bind(subject)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes the counters whose window ended (a missing counter is a fresh window); returns how many went.
pub async fn purge(db: &super::Db, now: i64) -> Result<u64, DbError> {
    Ok(sqlx::query("DELETE FROM rate_limits WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await?
        .rows_affected())
}
