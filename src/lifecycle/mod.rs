//! Certificate lifecycle (product rules §2, §5, §10): remote identification with an operator's verdict,
//! issuance after the holder accepts the terms with a TOTP code, rekey with scheduled issuance of the successor,
//! reissue after expiry, refunds, reminders, revocation and the background scheduler that runs them; and the
//! operator's shortcut that creates a ready holder in one step, for demos and tests.

pub mod cleanup;
pub mod erasure;
pub mod holders;
pub mod identity;
pub mod institutional;
pub mod issuance;
pub mod rekey;
pub mod revoke;
pub mod routes;
pub mod scheduler;

use std::sync::Arc;

use crate::admission::Budget;
use crate::auth::password::{Hasher, PasswordError};
use crate::auth::totp::TotpError;
use crate::billing::fx::Fx;
use crate::ca::Ca;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::db::Db;
use crate::hsm::Hsm;
use crate::tsa::Tsa;

/// What the certificate lifecycle uses: it orchestrates the other areas (an order's payment, the holder's
/// account, the signing jobs' retention), so it holds their services and hands each its part. Built by the
/// handlers (as `AppState`, which derefs to it) and at start for the scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<SystemClock>,
    pub hsm: Arc<Hsm>,
    pub ca: Arc<Ca>,
    pub tsa: Arc<Tsa>,
    pub fx: Arc<Fx>,
    pub hasher: Arc<Hasher>,
    pub admission: Arc<Budget>,
    /// Commits signature requests in groups (see [`crate::db::signing::Ledger`]).
    pub ledger: crate::db::signing::Ledger,
}

impl Services {
    /// The account flows' part.
    pub fn accounts(&self) -> crate::accounts::Services {
        crate::accounts::Services {
            settings: self.settings.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            hsm: self.hsm.clone(),
            hasher: self.hasher.clone(),
            ca: self.ca.clone(),
        }
    }

    /// Billing's part.
    pub fn billing(&self) -> crate::billing::Services {
        crate::billing::Services {
            settings: self.settings.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            fx: self.fx.clone(),
            ca: self.ca.clone(),
        }
    }

    /// The documents' part.
    pub fn documents(&self) -> crate::documents::Services {
        crate::documents::Services {
            settings: self.settings.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            hsm: self.hsm.clone(),
            ca: self.ca.clone(),
            tsa: self.tsa.clone(),
            admission: self.admission.clone(),
            ledger: self.ledger.clone(),
        }
    }
}
use crate::ca::CaError;
use crate::db::DbError;
use crate::hsm::HsmError;

/// What went wrong in a lifecycle operation.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Code(#[from] crate::auth::totp::CodeError),
    #[error("an account with the e-mail {0} already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Totp(#[from] TotpError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<sqlx::Error> for LifecycleError {
    fn from(e: sqlx::Error) -> Self {
        LifecycleError::Db(e.into())
    }
}

/// The operator's list of users (newest first, at most 500).
pub async fn operator_users(state: &Services) -> Result<serde_json::Value, LifecycleError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.given_name, u.surname, u.role, u.status, u.created_at, b.until AS banned_until
         FROM users u LEFT JOIN user_bans b ON b.user_id = u.id ORDER BY u.created_at DESC, u.id LIMIT 500",
    )
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::json!({
            "id": r.try_get::<String, _>("id")?,
            "email": r.try_get::<String, _>("email")?,
            "name": format!("{} {}", r.try_get::<String, _>("given_name")?, r.try_get::<String, _>("surname")?),
            "role": r.try_get::<String, _>("role")?,
            "status": r.try_get::<String, _>("status")?,
            "created_at": crate::clock::rfc3339(r.try_get("created_at")?),
            "banned_until": r.try_get::<Option<i64>, _>("banned_until")?.map(crate::clock::rfc3339),
        }));
    }
    Ok(serde_json::json!({ "users": out }))
}

/// The credentials an operator may revoke: active ones, with their holder and certificate (newest first, at most
/// 500), for the console's revocation form.
pub async fn operator_credentials(state: &Services) -> Result<serde_json::Value, LifecycleError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT c.id, c.cert_serial, u.email, u.given_name, u.surname, t.not_after
         FROM credentials c JOIN users u ON u.id = c.user_id JOIN certificates t ON t.serial = c.cert_serial
         WHERE c.status = 'active' ORDER BY c.created_at DESC, c.id LIMIT 500",
    )
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::json!({
            "id": r.try_get::<String, _>("id")?,
            "certificate_serial": r.try_get::<String, _>("cert_serial")?,
            "email": r.try_get::<String, _>("email")?,
            "name": format!("{} {}", r.try_get::<String, _>("given_name")?, r.try_get::<String, _>("surname")?),
            "valid_to": crate::clock::rfc3339(r.try_get("not_after")?),
        }));
    }
    Ok(serde_json::json!({ "credentials": out }))
}

/// The operator's list of orders (newest first, at most 500).
pub async fn operator_orders(state: &Services) -> Result<serde_json::Value, LifecycleError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT o.id, o.registration_number, o.kind, o.state, o.frozen, o.total_ron_bani, o.invoice_number,
                o.created_at, u.email
         FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.created_at DESC, o.id LIMIT 500",
    )
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::json!({
            "id": r.try_get::<String, _>("id")?,
            "registration_number": r.try_get::<String, _>("registration_number")?,
            "kind": r.try_get::<String, _>("kind")?,
            "state": r.try_get::<String, _>("state")?,
            "on_hold": r.try_get::<i64, _>("frozen")? != 0,
            "total_ron": crate::billing::format_minor(r.try_get("total_ron_bani")?),
            "invoice_number": r.try_get::<Option<String>, _>("invoice_number")?,
            "holder": r.try_get::<String, _>("email")?,
            "created_at": crate::clock::rfc3339(r.try_get("created_at")?),
        }));
    }
    Ok(serde_json::json!({ "orders": out }))
}
/// A lifecycle rule that refuses an order (a ban, an order in progress, no certificate to rekey) as the order's
/// refusal.
impl From<LifecycleError> for crate::billing::orders::OrderError {
    fn from(e: LifecycleError) -> Self {
        use crate::billing::orders::OrderError;
        use LifecycleError as L;
        match e {
            L::Invalid(d) => OrderError::Invalid(d),
            L::Forbidden(d) => OrderError::Forbidden(d),
            L::NotFound(_) => OrderError::NotFound,
            L::Db(d) => OrderError::Db(d),
            other => OrderError::Conflict(other.to_string()),
        }
    }
}
