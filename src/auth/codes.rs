//! One-time codes sent by SMS or e-mail: 6 random digits, stored hashed, valid for a while, dead after a few wrong
//! entries, and not resent to the same user for the same purpose before a cool-down.
//!
//! The cool-down, and the limits on messages per destination and in all, are reserved in the transaction that
//! stores the code and queues the message ([`crate::db::limits`]): of many requests at once, on any number of
//! instances, only those within the limits send anything.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::{AccountSettings, LimitSettings, Settings};
use crate::db::accounts::{self as store, CodeRow, Flow};
use crate::db::limits::{self, Limit};
use crate::db::{Db, DbError};
use crate::i18n::Text;
use crate::notify::{self, Message};
use crate::text;

/// Why a code was not sent or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("{}", self.text())]
    TooSoon { retry_at: i64 },
    #[error("{}", self.text())]
    TooMany { retry_at: i64 },
    #[error("{}", self.text())]
    NoCode,
    #[error("{}", self.text())]
    Expired,
    #[error("{}", self.text())]
    Wrong { left: i64 },
    #[error("{}", self.text())]
    Dead,
    #[error("{}", self.text())]
    Missing,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl CodeError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            CodeError::TooSoon { retry_at } => text!(
                "error.code.new_code_can_sent_after",
                retry_at = crate::clock::rfc3339(*retry_at)
            ),
            CodeError::TooMany { retry_at } => text!(
                "error.code.too_many_messages_were_asked",
                retry_at = crate::clock::rfc3339(*retry_at)
            ),
            CodeError::NoCode => text!("error.code.no_code_was_sent_for"),
            CodeError::Expired => text!("error.code.code_has_expired_ask_for"),
            CodeError::Wrong { left } => text!("error.code.code_wrong_attempts_left", left),
            CodeError::Dead => text!("error.code.code_was_entered_wrongly_too"),
            CodeError::Missing => text!("error.code.code_required"),
            CodeError::Db(_) => text!("error.http.database_error"),
        }
    }
}

/// What the client is told after a code was sent.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sent {
    /// Seconds the code stays valid.
    pub valid_for: i64,
    /// Seconds before another code may be sent.
    pub resend_after: i64,
}

fn hash(code_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{code_id}:{code}").as_bytes()))
}

/// Reserves one message to `destination` (an e-mail address or a phone number) under the per-destination and the
/// global limits of `[limits]`, on `conn` (inside the caller's transaction when it has one).
pub async fn reserve_send(
    conn: &mut sqlx::AnyConnection,
    lim: &LimitSettings,
    destination: &str,
    now: i64,
) -> Result<(), CodeError> {
    let per_destination = Limit {
        max: lim.sends_per_destination,
        window_secs: lim.sends_per_destination_window_secs,
    };
    let global = Limit {
        max: lim.sends_global,
        window_secs: lim.sends_global_window_secs,
    };
    // Always in this order (the destination's row, then the global one) so that concurrent transactions on
    // PostgreSQL wait for each other instead of deadlocking.
    for (subject, limit) in [
        (format!("send:{destination}"), per_destination),
        ("send:*".to_owned(), global),
    ] {
        if let Some(retry_at) = limits::reserve(conn, &subject, limit, now).await? {
            return Err(CodeError::TooMany { retry_at });
        }
    }
    Ok(())
}

/// [`reserve_send`] on its own connection, for a request that decides later whether it sends anything (so that
/// its answer does not tell whether the destination is known).
pub async fn reserve_send_now(db: &Db, lim: &LimitSettings, destination: &str, now: i64) -> Result<(), CodeError> {
    let mut conn = db.writer().acquire().await.map_err(DbError::from)?;
    reserve_send(&mut conn, lim, destination, now).await
}

/// Generates a code for `flow`, stores it and queues the message `compose(code)` in one transaction, unless a code
/// for this purpose went to the user less than the cool-down ago, or (for a flow reached by a link) the destination
/// or all destinations had their share of messages.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    db: &Db,
    clock: &dyn Clock,
    settings: &Settings,
    flow: &Flow,
    purpose: &str,
    destination: &str,
    ttl: i64,
    compose: impl FnOnce(&str) -> Message,
) -> Result<Sent, CodeError> {
    let acc = &settings.accounts;
    let now = clock.now();
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
    let id = uuid::Uuid::now_v7().to_string();
    let row = CodeRow {
        code_hash: hash(&id, &code),
        id,
        flow_id: flow.id.clone(),
        user_id: flow.user_id.clone(),
        purpose: purpose.to_owned(),
        destination: destination.to_owned(),
        attempts: 0,
        expires_at: now + ttl,
        used_at: None,
        created_at: now,
    };
    let message = compose(&code);
    let cool_down = Limit {
        max: 1,
        window_secs: acc.code_resend_secs,
    };
    let mut tx = db.writer().begin().await.map_err(DbError::from)?;
    let subject = format!("code:{}:{purpose}", flow.user_id);
    if let Some(retry_at) = limits::reserve(&mut tx, &subject, cool_down, now).await? {
        return Err(CodeError::TooSoon { retry_at });
    }
    // A flow reached by a link (enrolment, recovery, re-pairing from the login prompt) is driven without a session:
    // its messages count against the limits on unrequested mail. A logged-in user's codes have the cool-down.
    if flow.token_hash.is_some() {
        reserve_send(&mut tx, &settings.limits, destination, now).await?;
    }
    store::insert_code(&mut *tx, &row).await?;
    notify::enqueue(&mut *tx, clock, &message).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Sent {
        valid_for: ttl,
        resend_after: acc.code_resend_secs,
    })
}

/// Checks the code of `flow` for `purpose` and uses it up when right.
pub async fn verify(
    db: &Db,
    clock: &dyn Clock,
    acc: &AccountSettings,
    flow_id: &str,
    purpose: &str,
    code: Option<&str>,
) -> Result<(), CodeError> {
    let code = code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or(CodeError::Missing)?;
    let row = store::flow_code(db, flow_id, purpose).await?.ok_or(CodeError::NoCode)?;
    let now = clock.now();
    if row.used_at.is_some() || row.attempts >= acc.max_code_attempts {
        return Err(CodeError::Dead);
    }
    if row.expires_at <= now {
        return Err(CodeError::Expired);
    }
    let expected = hash(&row.id, code);
    let equal = expected.len() == row.code_hash.len()
        && expected
            .bytes()
            .zip(row.code_hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !equal {
        let attempts = store::fail_code(db, &row.id, acc.max_code_attempts).await?;
        return Err(if attempts >= acc.max_code_attempts {
            CodeError::Dead
        } else {
            CodeError::Wrong {
                left: acc.max_code_attempts - attempts,
            }
        });
    }
    if !store::use_code(db, &row.id, acc.max_code_attempts, now).await? {
        return Err(CodeError::Dead);
    }
    Ok(())
}
