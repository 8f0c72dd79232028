//! Who may ask `POST /tsa` for a timestamp, and what it costs (product rules §1: one transaction per timestamp).
//!
//! A caller authenticates as TSAs' clients do: HTTP Basic with the holder's e-mail and password (the login's own
//! check, under its throttle, then remembered for a few minutes: see [`super::credentials`]; no TOTP code: a
//! timestamp uses no holder key) or a CSC bearer token. Each token
//! granted is debited through the signature ledger exactly as CSC `signatures/timestamp` is (ARCHITECTURE.md
//! invariant 3): the quota is read, the token is made in the HSM, then one ledger commit debits conditionally and
//! records it; a commit refused means the token is discarded and a rejection is sent instead. Anonymous callers are
//! served only when `tsa_ocsp.tsa_anonymous` is on, under their own rate limit, and debited nothing.

use serde_json::json;

use super::protocol::{self, FailureInfo, Outcome};
use crate::accounts::AccountError;
use crate::app::AppState;
use crate::clock::Clock;
use crate::db::DbError;

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

/// Authenticates a timestamp request from its `Authorization` header; `client` is the caller's address.
pub async fn authenticate(state: &AppState, authorization: Option<&str>, client: &str) -> Result<Access, Refusal> {
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
    match crate::accounts::login::check_password(state, &email, Some(password.clone()), client).await {
        Ok((user, attempt)) => match attempt.succeeded(state).await {
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

/// Answers a query for `access`: a DER TimeStampResp, always (a rejection says why, and nothing is debited).
pub async fn answer(state: &AppState, access: &Access, client: &str, query_der: Vec<u8>) -> Vec<u8> {
    match access {
        Access::Anonymous => sign(state, query_der).await.der,
        Access::Holder { user_id } => debited(state, user_id, client, query_der).await,
    }
}

/// The TSA's answer, made on the blocking pool (one signature in the token).
async fn sign(state: &AppState, query_der: Vec<u8>) -> protocol::Reply {
    let (tsa, hsm, clock) = (state.tsa.clone(), state.hsm.clone(), state.clock.clone());
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
async fn debited(state: &AppState, user_id: &str, client: &str, query_der: Vec<u8>) -> Vec<u8> {
    match try_debited(state, user_id, client, query_der).await {
        Ok(der) => der,
        Err(e) => {
            tracing::error!(error = %e, "timestamp not debited: refused");
            protocol::rejection(FailureInfo::SystemFailure, "the timestamp could not be recorded")
        }
    }
}

async fn try_debited(state: &AppState, user_id: &str, client: &str, query_der: Vec<u8>) -> Result<Vec<u8>, DbError> {
    // A malformed query costs nothing: it is refused before the quota is read.
    let query = match protocol::parse_query(&query_der) {
        Ok(q) => q,
        Err(r) => return Ok(refused(r.fail, &r.reason)),
    };
    let Some((cred, _)) = crate::db::credentials::current(&state.db, user_id, state.clock.now()).await? else {
        return Ok(refused(
            FailureInfo::BadRequest,
            "a timestamp is debited from a valid certificate's package: you have none",
        ));
    };
    let left = crate::db::credentials::quota(&state.db, &cred.id)
        .await?
        .map_or(0, |q| q.remaining());
    if left < 1 {
        return Ok(refused(
            FailureInfo::BadRequest,
            &format!("quota exhausted: {left} left"),
        ));
    }
    let reply = sign(state, query_der).await;
    let Outcome::Granted { serial } = &reply.outcome else {
        return Ok(reply.der);
    };
    let Some(token) = token_of(&reply.der) else {
        return Ok(refused(FailureInfo::SystemFailure, "the timestamp could not be made"));
    };
    let row = super::ledger_row(query.hash, &query.digest, &token);
    let actor = format!("user:{user_id}");
    let audit = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "timestamp.create",
            target: &cred.id,
            outcome: "ok",
            client,
            details: json!({ "serial": serial, "via": "tsa" }),
        },
    );
    let committed = state
        .ledger
        .commit(crate::db::signing::Commit {
            sad_hash: String::new(),
            credential_id: cred.id.clone(),
            user_id: user_id.to_owned(),
            client: client.to_owned(),
            rows: vec![row],
            audit,
            now: state.clock.now(),
        })
        .await?;
    Ok(match committed {
        Ok(()) => reply.der,
        // Spent meanwhile by another request: the token made is discarded, never returned.
        Err(crate::db::signing::CommitRefusal::QuotaExhausted(left)) => {
            refused(FailureInfo::BadRequest, &format!("quota exhausted: {left} left"))
        }
        Err(crate::db::signing::CommitRefusal::SadSpent) => {
            refused(FailureInfo::SystemFailure, "the timestamp could not be recorded")
        }
    })
}

/// The TimeStampToken (DER) of a granted TimeStampResp.
fn token_of(reply_der: &[u8]) -> Option<Vec<u8>> {
    use der::{Decode, Encode};
    let resp = x509_tsp::TimeStampResp::from_der(reply_der).ok()?;
    resp.time_stamp_token?.to_der().ok()
}
