//! Certificate lifecycle (product rules §2, §5, §10): remote identification with an operator's verdict,
//! issuance after the holder accepts the terms with a TOTP code, rekey with scheduled issuance of the successor,
//! reissue after expiry, refunds, reminders, revocation and the background scheduler that runs them; and the
//! operator's shortcut that creates a ready holder in one step, for demos and tests.

pub mod erasure;
pub mod holders;
pub mod identity;
pub mod identity_sms;
pub mod institutional;
pub mod issuance;
pub mod rekey;
pub mod retention;
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
use crate::i18n::Text;
use crate::text;
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
    /// The trusted list of Parafa's trust services.
    pub trust: Arc<crate::trust::TrustList>,
    pub fx: Arc<Fx>,
    /// The trust documents' PDFs, laid out once per process (the pages and the order-accepted e-mail share them).
    pub legal_pdfs: Arc<crate::legal::PdfCache>,
    pub hasher: Arc<Hasher>,
    pub admission: Arc<Budget>,
    /// Commits signature requests in groups (see [`crate::db::signing::Ledger`]).
    pub ledger: crate::db::signing::Ledger,
    /// The signing path's recent reads (see [`crate::signing::RecentReads`]).
    pub recent: Arc<crate::signing::RecentReads>,
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
            legal_pdfs: self.legal_pdfs.clone(),
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
            trust: self.trust.clone(),
            admission: self.admission.clone(),
            ledger: self.ledger.clone(),
        }
    }
}
use crate::ca::CaError;
use crate::clock::rfc3339;
use crate::db::{self, DbError};
use crate::hsm::HsmError;

/// What went wrong in a lifecycle operation.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    Invalid(Text),
    #[error("{0}")]
    NotFound(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error("{0}")]
    Forbidden(Text),
    #[error("{0}")]
    Gone(Text),
    #[error("{0}")]
    TooLarge(Text),
    #[error("{0}")]
    TooMany(Text),
    #[error(transparent)]
    Code(#[from] crate::auth::totp::CodeError),
    #[error("{}", self.text())]
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

impl LifecycleError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            LifecycleError::Invalid(t) => t.clone(),
            LifecycleError::NotFound(t) => t.clone(),
            LifecycleError::Conflict(t) => t.clone(),
            LifecycleError::Forbidden(t) => t.clone(),
            LifecycleError::Gone(t) => t.clone(),
            LifecycleError::TooLarge(t) => t.clone(),
            LifecycleError::TooMany(t) => t.clone(),
            LifecycleError::Code(e) => e.text(),
            LifecycleError::EmailTaken(f0) => text!("error.issuance.account_with_e_mail_already", email = f0),
            LifecycleError::Password(e) => e.text(),
            LifecycleError::Totp(_) => text!("error.http.totp_check_failed"),
            LifecycleError::Ca(_) => text!("error.http.certificate_issuance_failed"),
            LifecycleError::Hsm(_) => text!("error.http.hsm_could_not_complete_operation"),
            LifecycleError::Db(_) => text!("error.http.database_error"),
            LifecycleError::Task(_) => text!("error.http.lifecycle_task"),
        }
    }
}

impl From<sqlx::Error> for LifecycleError {
    fn from(e: sqlx::Error) -> Self {
        LifecycleError::Db(e.into())
    }
}

/// An operator clears a holder's authorisation lock (five wrong codes) before it ends: audited with the reason and
/// the holder told by e-mail, in one transaction. NotFound for an unknown user, Conflict when nothing is locked.
pub async fn clear_totp_lock(
    state: &Services,
    user_id: &str,
    reason: &str,
    actor: &str,
    client: &str,
) -> Result<(), LifecycleError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(LifecycleError::Invalid(crate::text!("error.lifecycle.unlock_reason")));
    }
    let user = db::users::by_id(&state.db, user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.lifecycle.no_such_user")))?;
    let now = crate::clock::Clock::now(state.clock.as_ref());
    let mut tx = state.db.writer().begin().await?;
    if !db::signing::clear_totp_lock(&mut tx, &user.id, now).await? {
        return Err(LifecycleError::Conflict(crate::text!("error.lifecycle.not_locked")));
    }
    let event = crate::audit::Event {
        actor,
        action: "totp.unlock",
        target: &user.id,
        outcome: "ok",
        client,
        details: serde_json::json!({ "reason": reason }),
    };
    db::audit::insert(&mut *tx, &crate::audit::row(state.clock.as_ref(), &event)).await?;
    let template = crate::notify::Template::TotpUnlocked { reason };
    crate::notify::tell(
        &mut tx,
        state.clock.as_ref(),
        state.ca.public_base(),
        &user,
        template,
        "totp_unlocked",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The operator's list of users (newest first, at most 500).
#[derive(Debug, serde::Serialize)]
pub struct OperatorUsers {
    pub users: Vec<OperatorUser>,
}

/// An account in the operator's list.
#[derive(Debug, serde::Serialize)]
pub struct OperatorUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: crate::db::users::Role,
    pub status: crate::db::users::UserStatus,
    pub created_at: String,
    pub banned_until: Option<String>,
}

/// The operator's list of users (newest first, at most 500).
pub async fn operator_users(state: &Services) -> Result<OperatorUsers, LifecycleError> {
    let users = db::console::users(&state.db)
        .await?
        .into_iter()
        .map(|u| OperatorUser {
            name: format!("{} {}", u.given_name, u.surname),
            id: u.id,
            email: u.email,
            role: u.role,
            status: u.status,
            created_at: rfc3339(u.created_at),
            banned_until: u.banned_until.map(rfc3339),
        })
        .collect();
    Ok(OperatorUsers { users })
}

/// The credentials an operator may revoke.
#[derive(Debug, serde::Serialize)]
pub struct OperatorCredentials {
    pub credentials: Vec<OperatorCredential>,
}

/// An active credential in the operator's revocation form.
#[derive(Debug, serde::Serialize)]
pub struct OperatorCredential {
    pub id: String,
    pub certificate_serial: String,
    pub email: String,
    pub name: String,
    pub valid_to: String,
}

/// The credentials an operator may revoke: active ones, with their holder and certificate (newest first, at most
/// 500), for the console's revocation form.
pub async fn operator_credentials(state: &Services) -> Result<OperatorCredentials, LifecycleError> {
    let credentials = db::console::active_credentials(&state.db)
        .await?
        .into_iter()
        .map(|c| OperatorCredential {
            name: format!("{} {}", c.given_name, c.surname),
            id: c.id,
            certificate_serial: c.cert_serial,
            email: c.email,
            valid_to: rfc3339(c.not_after),
        })
        .collect();
    Ok(OperatorCredentials { credentials })
}

/// The operator's list of orders (newest first, at most 500).
#[derive(Debug, serde::Serialize)]
pub struct OperatorOrders {
    pub orders: Vec<OperatorOrder>,
}

/// An order in the operator's list.
#[derive(Debug, serde::Serialize)]
pub struct OperatorOrder {
    pub id: String,
    pub registration_number: String,
    pub kind: String,
    pub state: crate::billing::OrderState,
    pub on_hold: bool,
    pub total_ron: String,
    pub invoice_number: Option<String>,
    pub holder: String,
    pub created_at: String,
}

/// The operator's list of orders (newest first, at most 500).
pub async fn operator_orders(state: &Services) -> Result<OperatorOrders, LifecycleError> {
    let orders = db::console::orders(&state.db)
        .await?
        .into_iter()
        .map(|o| OperatorOrder {
            id: o.id,
            registration_number: o.registration_number,
            kind: o.kind,
            state: o.state,
            on_hold: o.frozen,
            total_ron: crate::billing::format_minor(o.total_ron_bani),
            invoice_number: o.invoice_number,
            holder: o.email,
            created_at: rfc3339(o.created_at),
        })
        .collect();
    Ok(OperatorOrders { orders })
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
            other => OrderError::Conflict(other.text()),
        }
    }
}
