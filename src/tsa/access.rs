//! Who may ask `POST /tsa` for a timestamp, and what it costs (product rules §1: one transaction per timestamp).
//!
//! A caller authenticates as TSAs' clients do (read from the request in `routes.rs`): HTTP Basic with the holder's
//! e-mail and password (the login's own check, under its throttle, then remembered for a few minutes: see
//! [`super::credentials`]; no TOTP code: a timestamp uses no holder key) or a CSC bearer token. Each token granted
//! is debited through the signature ledger exactly as CSC `signatures/timestamp` is (ARCHITECTURE.md invariant 3):
//! the quota is read, the token is made in the HSM, then one ledger commit debits conditionally and records it; a
//! commit refused means the token is discarded and a rejection is sent instead. Anonymous callers are served only
//! when `tsa_ocsp.tsa_anonymous` is on, under their own rate limit, and debited nothing.

use std::sync::Arc;

use serde_json::json;

use super::protocol::{self, FailureInfo, Outcome};
use super::Tsa;
use crate::clock::{Clock, SystemClock};
use crate::db::signing::Ledger;
use crate::db::{Db, DbError};
use crate::hsm::Hsm;

/// What making and debiting a timestamp uses.
#[derive(Debug, Clone, Copy)]
pub struct Desk<'a> {
    pub db: &'a Db,
    pub hsm: &'a Arc<Hsm>,
    pub tsa: &'a Arc<Tsa>,
    pub clock: &'a Arc<SystemClock>,
    pub ledger: &'a Ledger,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Access {
    /// A holder, by Basic credentials or a bearer token: debited.
    Holder { user_id: String },
    /// Nobody in particular (anonymous mode on): not debited.
    Anonymous,
}

/// Why a timestamp request is refused before its body is read.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No credentials, or wrong ones: a 401 with `WWW-Authenticate: Basic`.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many requests (the login throttle, or a rate limit): a 429 with `Retry-After`.
    #[error("{reason}")]
    TooMany { retry_after: u64, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Answers a query for `access`: a DER TimeStampResp, always (a rejection says why, and nothing is debited).
pub async fn answer(desk: Desk<'_>, access: &Access, client: &str, query_der: Vec<u8>) -> Vec<u8> {
    match access {
        Access::Anonymous => sign(desk, query_der).await.der,
        Access::Holder { user_id } => debited(desk, user_id, client, query_der).await,
    }
}

/// The TSA's answer, made on the blocking pool (one signature in the token).
async fn sign(desk: Desk<'_>, query_der: Vec<u8>) -> protocol::Reply {
    let (tsa, hsm, clock) = (desk.tsa.clone(), desk.hsm.clone(), desk.clock.clone());
    match tokio::task::spawn_blocking(move || protocol::answer(&tsa, &hsm, clock.as_ref(), &query_der)).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "the timestamp task failed");
            protocol::Reply {
                der: protocol::rejection(FailureInfo::SystemFailure, "the timestamp could not be made"),
                outcome: Outcome::Failed,
            }
        }
    }
}

fn refused(fail: FailureInfo, reason: &str) -> Vec<u8> {
    tracing::info!(fail = fail.as_str(), reason, "timestamp request refused");
    protocol::rejection(fail, reason)
}

/// A holder's timestamp, debited as one transaction from their current certificate's package.
async fn debited(desk: Desk<'_>, user_id: &str, client: &str, query_der: Vec<u8>) -> Vec<u8> {
    match try_debited(desk, user_id, client, query_der).await {
        Ok(der) => der,
        Err(e) => {
            tracing::error!(error = %e, "timestamp not debited: refused");
            protocol::rejection(FailureInfo::SystemFailure, "the timestamp could not be recorded")
        }
    }
}

async fn try_debited(desk: Desk<'_>, user_id: &str, client: &str, query_der: Vec<u8>) -> Result<Vec<u8>, DbError> {
    // A malformed query costs nothing: it is refused before the quota is read.
    let query = match protocol::parse_query(&query_der) {
        Ok(q) => q,
        Err(r) => return Ok(refused(r.fail, &r.reason)),
    };
    let Some((cred, _)) = crate::db::credentials::current(desk.db, user_id, desk.clock.now()).await? else {
        return Ok(refused(
            FailureInfo::BadRequest,
            "a timestamp is debited from a valid certificate's package: you have none",
        ));
    };
    let left = crate::db::credentials::quota(desk.db, &cred.id)
        .await?
        .map_or(0, |q| q.remaining());
    if left < 1 {
        return Ok(refused(
            FailureInfo::BadRequest,
            &crate::text!("error.job.quota_exhausted_left", left).to_string(),
        ));
    }
    let reply = sign(desk, query_der).await;
    let Outcome::Granted { serial } = &reply.outcome else {
        return Ok(reply.der);
    };
    let Some(token) = token_of(&reply.der) else {
        return Ok(refused(FailureInfo::SystemFailure, "the timestamp could not be made"));
    };
    let row = super::ledger_row(query.hash, &query.digest, &token);
    let actor = format!("user:{user_id}");
    let audit = crate::audit::row(
        desk.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "timestamp.create",
            target: &cred.id,
            outcome: "ok",
            client,
            details: json!({ "serial": serial, "via": "tsa" }),
        },
    );
    let committed = desk
        .ledger
        .commit(crate::db::signing::Commit {
            sad_hash: String::new(),
            bearer: None,
            credential_id: cred.id.clone(),
            user_id: user_id.to_owned(),
            client: client.to_owned(),
            rows: vec![row],
            audit,
            now: desk.clock.now(),
        })
        .await?;
    Ok(match committed {
        Ok(()) => reply.der,
        // Spent meanwhile by another request: the token made is discarded, never returned.
        Err(crate::db::signing::CommitRefusal::QuotaExhausted(left)) => refused(
            FailureInfo::BadRequest,
            &crate::text!("error.job.quota_exhausted_left", left).to_string(),
        ),
        // A timestamp's debit uses no SAD and checks neither the credential nor the token.
        Err(_) => refused(FailureInfo::SystemFailure, "the timestamp could not be recorded"),
    })
}

/// The TimeStampToken (DER) of a granted TimeStampResp.
fn token_of(reply_der: &[u8]) -> Option<Vec<u8>> {
    use der::{Decode, Encode};
    let resp = x509_tsp::TimeStampResp::from_der(reply_der).ok()?;
    resp.time_stamp_token?.to_der().ok()
}
