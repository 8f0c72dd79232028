//! Browser login (password, then the TOTP code when 2FA is on), logout, and postponing the 2FA set-up until the
//! mandatory date (product rules §3.4). Failed logins are throttled per account and per client address.

use crate::clock::Clock;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Services;
use super::{audit, AccountError};
use crate::auth::{sessions, totp};
use crate::db::accounts as store;
use crate::db::limits::{self, Limit};
use crate::db::users::{self, Postponement, TwoFactorSetting, User, UserStatus};

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub password: Option<SecretString>,
    /// The authenticator app's code, when 2FA is on.
    pub totp: Option<String>,
    pub remember_me: Option<bool>,
}

/// Where the user stands with 2FA after logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactor {
    /// On: the code was checked.
    On,
    /// Not for this account (operator-made test holders).
    Off,
    /// Not set up, postponed by the user (until a date, or "never" until the mandatory date).
    Postponed,
    /// Not set up: the user is asked to set it up now or postpone it.
    SetupDue,
    /// Not set up and past the mandatory date: only the pairing is possible.
    SetupRequired,
}

/// A successful login.
#[derive(Debug, Serialize)]
pub struct LoggedIn {
    pub user_id: String,
    pub email: String,
    pub two_factor: TwoFactor,
    pub expires_at: String,
    /// What state-changing requests made with the session cookie send in `X-CSRF-Token`.
    pub csrf_token: String,
    #[serde(skip)]
    pub token: String,
    #[serde(skip)]
    pub max_age: Option<i64>,
}

/// The 2FA state of a user at `now` (login and the checks of other routes use it).
pub fn two_factor_state(state: &Services, user: &User, now: i64) -> TwoFactor {
    match user.two_factor {
        TwoFactorSetting::On => TwoFactor::On,
        TwoFactorSetting::Off => TwoFactor::Off,
        _ if now >= state.settings.accounts.two_factor_mandatory_at() => TwoFactor::SetupRequired,
        _ => match (user.two_factor_postponed, user.two_factor_until) {
            (Some(Postponement::Never), _) => TwoFactor::Postponed,
            (Some(Postponement::Date), Some(until)) if until > now => TwoFactor::Postponed,
            _ => TwoFactor::SetupDue,
        },
    }
}

/// A login attempt counted against the account and the client address: reserved before the password is checked,
/// it stays counted as a failure unless [`Attempt::succeeded`] gives it back.
#[must_use = "a reserved attempt counts as a failure unless it is given back on success"]
#[derive(Debug)]
pub struct Attempt {
    subjects: [String; 2],
}

fn throttle_subjects(email: &str, client: &str) -> [String; 2] {
    // Whatever was typed names the counter; a longer text than an address can be is cut, so a client cannot
    // store megabytes per attempt (such texts match no account anyway).
    let email: String = email.chars().take(super::email::MAX_LEN + 1).collect();
    [format!("login:account:{email}"), format!("login:client:{client}")]
}

impl Attempt {
    /// The attempt succeeded: it no longer counts.
    pub async fn succeeded(self, state: &Services) -> Result<(), AccountError> {
        let now = state.clock.now();
        let mut conn = state.db.writer().acquire().await?;
        for subject in &self.subjects {
            limits::release(&mut conn, subject, now).await?;
        }
        Ok(())
    }
}

/// Reserves a login attempt for `email` from `client`, or refuses it while the account or the client address has
/// had its share of failures in the window. Checking and counting are one statement per counter
/// ([`crate::db::limits`]), so parallel requests, on any number of instances, cannot all pass a check that only
/// the first should: at most `login_max_failures_per_account` passwords of one account are ever evaluated per
/// window. Call it before any password work.
pub async fn reserve_attempt(state: &Services, email: &str, client: &str) -> Result<Attempt, AccountError> {
    let acc = &state.settings.accounts;
    let now = state.clock.now();
    let subjects = throttle_subjects(email, client);
    let window_secs = acc.login_failure_window_secs;
    let limits = [
        Limit {
            max: acc.login_max_failures_per_account,
            window_secs,
        },
        Limit {
            max: acc.login_max_failures_per_client,
            window_secs,
        },
    ];
    let mut conn = state.db.writer().acquire().await?;
    if let Some(retry_at) = limits::reserve(&mut conn, &subjects[0], limits[0], now).await? {
        return Err(AccountError::Throttled { retry_at });
    }
    if let Some(retry_at) = limits::reserve(&mut conn, &subjects[1], limits[1], now).await? {
        limits::release(&mut conn, &subjects[0], now).await?;
        return Err(AccountError::Throttled { retry_at });
    }
    Ok(Attempt { subjects })
}

/// The active account whose e-mail and password these are, under the login throttle: the attempt is reserved
/// before the password is checked; a wrong pair stays counted (and is audited when the account exists). A right
/// pair returns the attempt, which the caller gives back once the login as a whole succeeded. Used by the login
/// and by re-pairing from the login prompt.
pub async fn check_password(
    state: &Services,
    email: &str,
    password: Option<SecretString>,
    client: &str,
) -> Result<(User, Attempt), AccountError> {
    let db = &state.db;
    let pw = password.ok_or_else(|| AccountError::Invalid(crate::text!("error.enrol.password_required")))?;
    let attempt = reserve_attempt(state, email, client).await?;
    let user = users::by_email(db, email).await?;
    // An unknown e-mail costs the same Argon2 check (a dummy hash, same pool): timing does not tell it apart.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    crate::metrics::password_verification();
    let ok = state.hasher.verify(pw, stored).await?;
    match user {
        Some(u) if ok && u.status == UserStatus::Active => Ok((u, attempt)),
        other => {
            if let Some(u) = other {
                audit(state, &u.id, "auth.login", "wrong password", client, json!({})).await;
            }
            Err(AccountError::WrongCredentials)
        }
    }
}

/// The e-mail a login names, as stored: the canonical form of a bare address; anything else is kept as typed (it
/// matches no account, and is still throttled, so a malformed address is an ordinary wrong login).
pub fn login_email(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or_default();
    super::email::canonical(raw).unwrap_or_else(|_| raw.trim().to_lowercase())
}

/// Logs in. The password is checked first (Argon2id, on the blocking pool), then the TOTP code when 2FA is on.
pub async fn login(state: &Services, req: LoginRequest, client: &str) -> Result<LoggedIn, AccountError> {
    let (db, clock, acc) = (&state.db, state.clock.as_ref(), &state.settings.accounts);
    let email = login_email(req.email.as_deref());
    let now = clock.now();
    let (user, attempt) = check_password(state, &email, req.password, client).await?;
    let mut two_factor = two_factor_state(state, &user, now);
    if two_factor == TwoFactor::On {
        let code = req.totp.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if code.is_none() {
            // Not a failure: the login page asks for the code next.
            attempt.succeeded(state).await?;
            return Err(AccountError::TotpRequired);
        }
        // A wrong code keeps the attempt counted.
        if let Err(e) = totp::check_code(db, &state.hsm, &state.settings.auth, clock, &user.id, code, client).await {
            audit(state, &user.id, "auth.login", "wrong code", client, json!({})).await;
            return Err(e.into());
        }
    }
    attempt.succeeded(state).await?;
    // "At next login" is used up by this login: the user is asked now and may postpone again.
    if two_factor == TwoFactor::SetupDue && user.two_factor_postponed == Some(Postponement::NextLogin) {
        store::set_two_factor(db.writer(), &user.id, user.two_factor, None, None).await?;
        two_factor = TwoFactor::SetupDue;
    }
    let remember = req.remember_me.unwrap_or(false);
    let (token, expires_at) = sessions::open(db, acc, clock, &user.id, remember, client).await?;
    audit(
        state,
        &user.id,
        "auth.login",
        "ok",
        client,
        json!({ "remember_me": remember }),
    )
    .await;
    Ok(LoggedIn {
        user_id: user.id,
        email: user.email,
        two_factor,
        expires_at: crate::clock::rfc3339(expires_at),
        max_age: remember.then_some(expires_at - now),
        csrf_token: crate::auth::sessions::csrf_token(&token),
        token,
    })
}

/// `POST /api/v1/me/2fa/postpone`.
#[derive(Debug, Deserialize)]
pub struct PostponeRequest {
    /// `YYYY-MM-DD`: remind me on that day.
    pub until: Option<String>,
    pub next_login: Option<bool>,
    pub never: Option<bool>,
}

/// Postpones the 2FA set-up; refused once 2FA is mandatory, and for a date at or after the mandatory date.
pub async fn postpone(
    state: &Services,
    user: &User,
    req: PostponeRequest,
    client: &str,
) -> Result<TwoFactor, AccountError> {
    let now = state.clock.now();
    let mandatory = state.settings.accounts.two_factor_mandatory_at();
    if user.two_factor == TwoFactorSetting::On {
        return Err(AccountError::Conflict(crate::text!(
            "error.login.two_factor_authentication_already_on"
        )));
    }
    if now >= mandatory {
        return Err(AccountError::Forbidden(crate::text!(
            "error.login.two_factor_authentication_mandatory_since",
            two_factor_mandatory_from = state.settings.accounts.two_factor_mandatory_from
        )));
    }
    let (mode, until) = match (req.until, req.next_login, req.never) {
        (Some(date), None, None) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let day = time::Date::parse(&date, &format)
                .map_err(|_| AccountError::Invalid(crate::text!("error.login.until_must_date_such_as")))?;
            let at = day.midnight().assume_utc().unix_timestamp();
            if at <= now {
                return Err(AccountError::Invalid(crate::text!(
                    "error.login.until_must_future_date"
                )));
            }
            if at >= mandatory {
                return Err(AccountError::Invalid(crate::text!(
                    "error.login.two_factor_authentication_cannot_postponed",
                    two_factor_mandatory_from = state.settings.accounts.two_factor_mandatory_from
                )));
            }
            (Postponement::Date, Some(at))
        }
        (None, Some(true), None) => (Postponement::NextLogin, None),
        (None, None, Some(true)) => (Postponement::Never, None),
        _ => {
            return Err(AccountError::Invalid(crate::text!(
                "error.login.give_exactly_one_until_date"
            )))
        }
    };
    store::set_two_factor(state.db.writer(), &user.id, user.two_factor, Some(mode), until).await?;
    audit(
        state,
        &user.id,
        "2fa.postpone",
        "ok",
        client,
        json!({ "mode": mode, "until": until }),
    )
    .await;
    let updated = users::by_id(&state.db, &user.id)
        .await?
        .ok_or(AccountError::Unauthenticated)?;
    Ok(two_factor_state(state, &updated, now))
}
