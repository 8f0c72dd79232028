//! Clean-up of what has expired: SADs (and their digests), bearer tokens, OAuth codes, refresh tokens and pushed
//! requests, browser sessions, one-time codes, finished flows, unconfirmed contact messages and the counters of limits whose window ended. Every
//! statement is an idempotent DELETE on expiry, so any number of instances may run it at once; it runs in the
//! background of `parafa serve` and as `parafa admin cleanup`.

use std::time::Duration;

use sqlx::Row;

use super::{Db, DbError};

/// What stays a while after expiry (for support and the audit's context), in seconds.
const GRACE_SECS: i64 = 24 * 3600;

/// Deletes what expired more than a day before `now`; returns how many rows went, per table.
pub async fn run(db: &Db, now: i64) -> Result<Vec<(&'static str, u64)>, DbError> {
    let cutoff = now - GRACE_SECS;
    let mut report = Vec::new();
    let statements: [(&'static str, &str, i64); 11] = [
        (
            "sad_hashes",
            "DELETE FROM sad_hashes WHERE sad_hash IN (SELECT sad_hash FROM sads WHERE expires_at < $1)",
            cutoff,
        ),
        ("sads", "DELETE FROM sads WHERE expires_at < $1", cutoff),
        (
            "access_tokens",
            "DELETE FROM access_tokens WHERE expires_at < $1",
            cutoff,
        ),
        ("web_sessions", "DELETE FROM web_sessions WHERE expires_at < $1", cutoff),
        (
            "one_time_codes",
            "DELETE FROM one_time_codes WHERE expires_at < $1",
            cutoff,
        ),
        (
            "flows",
            "DELETE FROM flows WHERE expires_at < $1 AND id NOT IN (SELECT flow_id FROM one_time_codes)",
            cutoff,
        ),
        ("oauth_codes", "DELETE FROM oauth_codes WHERE expires_at < $1", cutoff),
        (
            "oauth_refresh_tokens",
            "DELETE FROM oauth_refresh_tokens WHERE expires_at < $1",
            cutoff,
        ),
        (
            "oauth_requests",
            "DELETE FROM oauth_requests WHERE expires_at < $1",
            cutoff,
        ),
        // Contact messages written without a login whose code was never typed: never sent, nothing to keep.
        (
            "contact_pending",
            "DELETE FROM contact_pending WHERE expires_at < $1",
            now,
        ),
        // A counter past its window is a fresh window (db::limits): no grace needed.
        ("rate_limits", "DELETE FROM rate_limits WHERE expires_at <= $1", now),
    ];
    for (table, sql, bound) in statements {
        let n = sqlx::query(sql).bind(bound).execute(db.writer()).await?.rows_affected();
        report.push((table, n));
    }
    Ok(report)
}

/// Rows left in a table (for the CLI's report).
pub async fn count(db: &Db, table: &str) -> Result<i64, DbError> {
    let r = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("n")?)
}

/// Runs [`run`] every `interval` until the process ends, at the time `now` tells.
pub fn spawn(db: Db, now: impl Fn() -> i64 + Send + 'static, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run(&db, now()).await {
                tracing::warn!(error = %e, "clean-up failed; will retry");
            }
        }
    });
}
