//! The hash-chained audit trail.
//!
//! Writers append rows freely (one INSERT, no lock shared with other writers), so the audit is never a global lock
//! on the signing path. A sealer, running every second in each instance, takes the unsealed rows in `(at, id)`
//! order and chains them: each gets the next sequence number and `hash = SHA-256(prev_hash, seq, row fields)`, and
//! the head row moves in the same transaction only if no other sealer moved it first. `verify` walks the chain:
//! an edited row breaks its hash, a deleted or inserted one breaks the sequence, a deleted last row no longer
//! matches the head. Rows appended since the last seal are not yet protected; `verify` seals before it checks.
//! Rows past their retention are deleted from the chain's start, which then begins at the last deleted row's
//! sequence number and hash (`audit_pruned`).

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::db::audit::{self as store, AuditRow};
use crate::db::{Db, DbError};

/// Who or what acted.
pub const SYSTEM: &str = "system";

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// `user:<id>`, `operator:<id>`, `admin-cli` or [`SYSTEM`].
    pub actor: &'a str,
    /// What was done, as `noun.verb` (e.g. `holder.create`).
    pub action: &'a str,
    /// What it was done to (an id; never a secret or document content).
    pub target: &'a str,
    /// `ok`, or a short reason for a refusal or failure.
    pub outcome: &'a str,
    /// The client address, or `cli`.
    pub client: &'a str,
    /// Extra facts as JSON (hashes, not contents).
    pub details: serde_json::Value,
}

/// Appends an event (unsealed until the next seal).
pub async fn record(db: &Db, clock: &dyn Clock, e: Event<'_>) -> Result<(), DbError> {
    store::insert(db.writer(), &row(clock, &e)).await
}

/// Records a step a user took on their own account or orders (actor and target: the user). A failure to write is
/// logged, not returned: the step it records has happened.
pub async fn user_step(
    db: &Db,
    clock: &dyn Clock,
    user_id: &str,
    action: &str,
    outcome: &str,
    client: &str,
    details: serde_json::Value,
) {
    let actor = format!("user:{user_id}");
    let event = Event {
        actor: &actor,
        action,
        target: user_id,
        outcome,
        client,
        details,
    };
    if let Err(e) = record(db, clock, event).await {
        tracing::error!(error = %e, action, "could not write an audit row");
    }
}

/// The stored row for an event, for callers that insert it inside their own transaction.
pub fn row(clock: &dyn Clock, e: &Event<'_>) -> AuditRow {
    AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        at: clock.now(),
        actor: e.actor.to_owned(),
        action: e.action.to_owned(),
        target: e.target.to_owned(),
        outcome: e.outcome.to_owned(),
        client: e.client.to_owned(),
        details: e.details.to_string(),
        seq: None,
        prev_hash: None,
        hash: None,
    }
}

/// The hash of a sealed row at `seq` after the row whose hash is `prev`: what the sealer writes and `verify`
/// checks (public for the benchmarks, which seed a long chain already sealed).
pub fn chain_hash(prev: &str, seq: i64, r: &AuditRow) -> String {
    // A JSON array is an unambiguous encoding of the fields (no separator can be forged inside a value).
    let fields =
        serde_json::json!([prev, seq, r.id, r.at, r.actor, r.action, r.target, r.outcome, r.client, r.details]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Chains every unsealed row. Returns how many rows this call sealed.
pub async fn seal(db: &Db) -> Result<usize, DbError> {
    let mut sealed = 0;
    let mut conflicts = 0;
    loop {
        let (head_seq, head_hash) = store::head(db).await?;
        let rows = store::unsealed(db, 500).await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        let mut prev = head_hash;
        let mut seq = head_seq;
        let mut chained = Vec::with_capacity(rows.len());
        for r in &rows {
            seq += 1;
            let hash = chain_hash(&prev, seq, r);
            chained.push((r.id.clone(), seq, prev.clone(), hash.clone()));
            prev = hash;
        }
        if store::seal(db, head_seq, &chained).await? {
            sealed += chained.len();
        } else {
            // Another instance sealed meanwhile; take the new head and go on.
            conflicts += 1;
            if conflicts > 20 {
                return Ok(sealed);
            }
            tokio::time::sleep(Duration::from_millis(10 * conflicts)).await;
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Rows checked in the chain.
    pub rows: i64,
    /// The first problem found, if any.
    pub broken: Option<String>,
}

/// Seals, then checks the whole chain.
pub async fn verify(db: &Db) -> Result<Verification, DbError> {
    seal(db).await?;
    let (head_seq, head_hash) = store::head(db).await?;
    // The chain starts at the genesis, or after the rows the retention run deleted (`lifecycle::retention`).
    let (mut expected_seq, mut prev) = crate::db::retention::audit_start(db).await?;
    loop {
        let rows = store::sealed_after(db, expected_seq, 1000).await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let seq = r.seq.unwrap_or(-1);
            expected_seq += 1;
            if seq != expected_seq {
                return Ok(broken(
                    expected_seq - 1,
                    format!("row {expected_seq} is missing (next is {seq})"),
                ));
            }
            if r.prev_hash.as_deref() != Some(prev.as_str()) {
                return Ok(broken(seq - 1, format!("row {seq} does not link to row {}", seq - 1)));
            }
            let hash = chain_hash(&prev, seq, &r);
            if r.hash.as_deref() != Some(hash.as_str()) {
                return Ok(broken(
                    seq - 1,
                    format!("row {seq} ({} {}) was altered", r.action, r.id),
                ));
            }
            prev = hash;
        }
    }
    if expected_seq != head_seq || prev != head_hash {
        return Ok(broken(
            expected_seq,
            format!(
                "the chain ends at row {expected_seq} but the head says {head_seq}: rows were removed from the end"
            ),
        ));
    }
    Ok(Verification {
        rows: expected_seq,
        broken: None,
    })
}

fn broken(rows: i64, why: String) -> Verification {
    Verification {
        rows,
        broken: Some(why),
    }
}

/// Runs [`seal`] every `interval` until the process ends.
pub fn spawn_sealer(db: Db, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = seal(&db).await {
                tracing::warn!(error = %e, "audit sealing failed; will retry");
            }
        }
    })
}
