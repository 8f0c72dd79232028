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
use crate::i18n::Text;
use crate::text;

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
    Invalid(Text),
    #[error("{0}")]
    NotFound(Text),
    #[error("{0}")]
    Expired(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error("{0}")]
    Forbidden(Text),
    #[error("{}", self.text())]
    Unauthenticated,
    #[error("{}", self.text())]
    WrongCredentials,
    #[error("{}", self.text())]
    TotpRequired,
    #[error("{}", self.text())]
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

impl AccountError {
    /// What the person is told (an internal error's detail goes to the log, not to them).
    pub fn text(&self) -> Text {
        match self {
            AccountError::Invalid(t)
            | AccountError::NotFound(t)
            | AccountError::Expired(t)
            | AccountError::Conflict(t)
            | AccountError::Forbidden(t) => t.clone(),
            AccountError::Unauthenticated => text!("error.login.login_required"),
            AccountError::WrongCredentials => text!("error.login.e_mail_or_password_wrong"),
            AccountError::TotpRequired => text!("error.login.code_authenticator_app_required"),
            AccountError::Throttled { retry_at } => {
                text!(
                    "error.login.too_many_failed_logins_try",
                    retry_at = crate::clock::rfc3339(*retry_at)
                )
            }
            AccountError::Code(e) => e.text(),
            AccountError::Totp(e) => e.text(),
            AccountError::Password(e) => e.text(),
            AccountError::Db(_) | AccountError::Hsm(_) | AccountError::Internal(_) => text!("error.http.account_error"),
        }
    }
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
            .and_then(|f| f.warning())
            .map_or("error.password.add_more_words_or_characters", password_warning);
        return Err(AccountError::Invalid(text!(
            "error.password.password_too_easy_guess",
            advice => text!(advice)
        )));
    }
    Ok(())
}

/// The key of zxcvbn's warning about a password.
fn password_warning(w: zxcvbn::feedback::Warning) -> &'static str {
    use zxcvbn::feedback::Warning as W;
    match w {
        W::StraightRowsOfKeysAreEasyToGuess => "error.password.straight_rows_keys_easy_guess",
        W::ShortKeyboardPatternsAreEasyToGuess => "error.password.short_keyboard_patterns_easy_guess",
        W::RepeatsLikeAaaAreEasyToGuess => "error.password.repeats_like_aaa_easy_guess",
        W::RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess => "error.password.repeats_like_abcabcabc_only_slightly",
        W::ThisIsATop10Password => "error.password.top_10_common_password",
        W::ThisIsATop100Password => "error.password.top_100_common_password",
        W::ThisIsACommonPassword => "error.password.very_common_password",
        W::ThisIsSimilarToACommonlyUsedPassword => "error.password.similar_commonly_used_password",
        W::SequencesLikeAbcAreEasyToGuess => "error.password.sequences_like_abc_or_6543",
        W::RecentYearsAreEasyToGuess => "error.password.recent_years_easy_guess",
        W::AWordByItselfIsEasyToGuess => "error.password.word_by_itself_easy_guess",
        W::DatesAreOftenEasyToGuess => "error.password.dates_often_easy_guess",
        W::NamesAndSurnamesByThemselvesAreEasyToGuess => "error.password.names_and_surnames_by_themselves",
        W::CommonNamesAndSurnamesAreEasyToGuess => "error.password.common_names_and_surnames_easy",
    }
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
        return Err(AccountError::Invalid(crate::text!(
            "error.enrol.phone_number_must_have_country"
        )));
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
