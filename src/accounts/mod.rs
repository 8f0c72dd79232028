//! Accounts and their security flows: enrolment and activation, browser login with 2FA and its postponement,
//! TOTP pairing and re-pairing. Every number is a setting (`[accounts]`), every message comes from
//! `notify::templates`, every step is audited.

pub mod contact;
pub use crate::encoding::email;
pub mod enrolment;
pub mod login;
pub mod maintenance;
pub mod pairing;
pub mod privacy;
pub mod routes;

use std::sync::Arc;

use serde_json::Value;

use crate::auth::codes::CodeError;
use crate::auth::password::Hasher;
use crate::auth::password::PasswordError;
use crate::auth::totp::{CodeError as TotpCodeError, TotpError};
use crate::ca::Ca;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::db::Db;
use crate::db::DbError;
use crate::hsm::Hsm;
use crate::hsm::HsmError;

/// What the account flows use: the application context's part they need, handed in by the handlers
/// (`state.accounts()`) and by the lifecycle (`lifecycle::Services::accounts`). Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<SystemClock>,
    /// The token, for the TOTP seeds it keeps wrapped.
    pub hsm: Arc<Hsm>,
    /// The pool of Argon2 workers.
    pub hasher: Arc<Hasher>,
    /// The CA, for the public base address of the links the e-mails carry.
    pub ca: Arc<Ca>,
}

/// What went wrong in an account flow.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("login required")]
    Unauthenticated,
    #[error("the e-mail or the password is wrong")]
    WrongCredentials,
    #[error("the code of the authenticator app is required")]
    TotpRequired,
    #[error("too many failed logins; try again after {}", crate::clock::rfc3339(*retry_at))]
    Throttled { retry_at: i64 },
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error(transparent)]
    Totp(#[from] TotpCodeError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Db(e.into())
    }
}

impl From<TotpError> for AccountError {
    fn from(e: TotpError) -> Self {
        match e {
            TotpError::Hsm(h) => AccountError::Hsm(h),
            other => AccountError::Internal(other.to_string()),
        }
    }
}

/// Checks a new password: the minimum length, then zxcvbn's estimate (with the person's own data as hints).
pub fn check_password_strength(state: &Services, password: &str, hints: &[&str]) -> Result<(), AccountError> {
    let acc = &state.settings.accounts;
    if password.chars().count() < acc.password_min_length {
        return Err(PasswordError::TooShort(acc.password_min_length).into());
    }
    let entropy = zxcvbn::zxcvbn(password, hints);
    if (entropy.score() as u8) < acc.password_min_score {
        let advice = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "add more words or characters that are hard to guess".into());
        return Err(AccountError::Invalid(format!(
            "The password is too easy to guess: {advice}"
        )));
    }
    Ok(())
}

/// Appends an audit row for an account step (see [`crate::audit::user_step`]).
pub async fn audit(state: &Services, user_id: &str, action: &str, outcome: &str, client: &str, details: Value) {
    crate::audit::user_step(
        &state.db,
        state.clock.as_ref(),
        user_id,
        action,
        outcome,
        client,
        details,
    )
    .await;
}

/// Normalises a phone number: spaces, dots, dashes and parentheses dropped; a leading `00` becomes `+`.
pub fn normalise_phone(raw: &str) -> Result<String, AccountError> {
    let mut p: String = raw.chars().filter(|c| !" .-()".contains(*c)).collect();
    if let Some(rest) = p.strip_prefix("00") {
        p = format!("+{rest}");
    }
    let digits = p.strip_prefix('+').unwrap_or("");
    if digits.len() < 8 || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(AccountError::Invalid(
            "The phone number must have its country prefix, e.g. +40712345678".into(),
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::normalise_phone;

    #[test]
    fn phone_numbers_are_normalised_with_their_prefix() {
        assert_eq!(normalise_phone("+40 712 345 678").unwrap(), "+40712345678");
        assert_eq!(normalise_phone("0040-712-345-678").unwrap(), "+40712345678");
        assert!(normalise_phone("0712345678").is_err());
        assert!(normalise_phone("+40abc").is_err());
    }
}
