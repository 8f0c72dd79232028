//! Certificate lifecycle. So far: the operator's shortcut that creates a ready holder (account, TOTP pairing, key
//! in the HSM, certificate, package quota) in one step, for demos and tests; and revocation.

pub mod cleanup;
pub mod holders;
pub mod revoke;

use crate::auth::password::PasswordError;
use crate::auth::totp::TotpError;
use crate::ca::CaError;
use crate::db::DbError;
use crate::hsm::HsmError;

/// What went wrong in a lifecycle operation.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    Invalid(String),
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
