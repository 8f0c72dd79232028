//! TOTP pairing and re-pairing (product rules §4): an SMS code → "I installed an authenticator app and understand
//! the code is shown only once" → the secret (otpauth URI, base32 and a QR code), shown once → the first valid
//! code activates the pairing. Re-pairing is the same flow: the old seed stops working when the new secret is
//! shown. Turning 2FA on ends every session of the user.
//!
//! The flow's stages: `sms_sent` → `secret_shown` → `done`.

use crate::clock::Clock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::enrolment::send_sms_code;
use super::Services;
use super::{audit, AccountError};
use crate::auth::{codes, totp};
use crate::db::accounts::{self as store, Flow, FlowEvent, FlowStage};
use crate::db::users::{TotpStatus, TwoFactorSetting, User, UserStatus};
use crate::notify::templates::CodePurpose;

const KIND: &str = "pairing";
const PURPOSE: &str = "pairing";

/// `POST /api/v1/me/totp/pairing/sms`.
#[derive(Debug, Deserialize)]
pub struct SmsStep {
    pub code: Option<String>,
    /// "I installed an authenticator app and understand the code is shown only once."
    pub app_installed: Option<bool>,
}

/// The secret, shown once.
#[derive(Debug, Serialize)]
pub struct Secret {
    pub otpauth_uri: String,
    pub secret: String,
    /// A PNG of the otpauth URI as a QR code, base64.
    pub qr_png: String,
}

/// Starts (or restarts) a pairing: a new flow and an SMS code to the account's phone.
pub async fn start(state: &Services, user: &User, client: &str) -> Result<codes::Sent, AccountError> {
    begin(state, user, None, client).await
}

/// Re-pairing offered on the 2FA login prompt (product rules §4), for a holder whose authenticator app is gone and
/// who therefore cannot log in: `POST /api/v1/totp-reset`.
#[derive(Debug, Deserialize)]
pub struct LostApp {
    pub email: Option<String>,
    pub password: Option<secrecy::SecretString>,
}

/// The token naming a re-pairing started from the login prompt (the next two steps are sent with it), and the SMS
/// code's timing.
#[derive(Debug, Serialize)]
pub struct LostAppStarted {
    pub token: String,
    #[serde(flatten)]
    pub sent: codes::Sent,
}

/// Starts a re-pairing without a session: the password (under the login throttle), then the same steps as
/// [`start`] — an SMS code to the account's phone, the acknowledgement, the new secret shown once, its first code
/// — so knowing the password alone is not enough. Only for accounts whose 2FA is on.
pub async fn start_lost_app(state: &Services, req: LostApp, client: &str) -> Result<LostAppStarted, AccountError> {
    let email = super::login::login_email(req.email.as_deref());
    let (user, attempt) = super::login::check_password(state, &email, req.password, client).await?;
    attempt.succeeded(state).await?;
    if user.two_factor != TwoFactorSetting::On {
        return Err(AccountError::Conflict(crate::text!(
            "error.pairing.two_factor_authentication_not_on"
        )));
    }
    let (token, token_hash) = crate::auth::tokens::new_secret();
    let sent = begin(state, &user, Some(token_hash), client).await?;
    audit(state, &user.id, "totp.reset.from_login", "ok", client, json!({})).await;
    Ok(LostAppStarted { token, sent })
}

/// The account of a re-pairing started from the login prompt, by its token.
pub async fn lost_app_user(state: &Services, token: &str) -> Result<User, AccountError> {
    let flow = store::flow_by_token(&state.db, &crate::auth::tokens::hash(token))
        .await?
        .filter(|f| f.kind == KIND && f.expires_at > state.clock.now() && f.stage.is_open())
        .ok_or_else(|| AccountError::Expired(crate::text!("error.pairing.re_pairing_no_longer_valid")))?;
    crate::db::users::by_id(&state.db, &flow.user_id)
        .await?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| AccountError::Expired(crate::text!("error.pairing.re_pairing_no_longer_valid")))
}

async fn begin(
    state: &Services,
    user: &User,
    token_hash: Option<String>,
    client: &str,
) -> Result<codes::Sent, AccountError> {
    let now = state.clock.now();
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash,
        user_id: user.id.clone(),
        kind: KIND.into(),
        stage: FlowStage::SmsSent,
        data: "{}".into(),
        attempts: 0,
        expires_at: now + 3600,
    };
    // The cool-down applies before anything changes.
    if let Some(last) = store::last_code_sent(&state.db, &user.id, PURPOSE).await? {
        let retry_at = last.created_at + state.settings.accounts.code_resend_secs;
        if retry_at > now {
            return Err(codes::CodeError::TooSoon { retry_at }.into());
        }
    }
    let mut tx = state.db.writer().begin().await?;
    store::close_flows(&mut *tx, &user.id, KIND, now).await?;
    store::insert_flow(&mut *tx, &flow, now).await?;
    tx.commit().await?;
    let sent = send_sms_code(state, &flow, user, CodePurpose::Pairing, PURPOSE).await?;
    audit(state, &user.id, "totp.pairing.start", "ok", client, json!({})).await;
    Ok(sent)
}

async fn open_flow(state: &Services, user: &User, stage: FlowStage) -> Result<Flow, AccountError> {
    let flow = store::latest_flow(&state.db, &user.id, KIND)
        .await?
        .filter(|f| f.expires_at > state.clock.now() && f.stage.is_open())
        .ok_or_else(|| AccountError::Conflict(crate::text!("error.pairing.start_pairing_first")))?;
    if flow.stage != stage {
        return Err(AccountError::Conflict(match flow.stage {
            FlowStage::SecretShown => crate::text!("error.pairing.secret_was_already_shown_once"),
            _ => crate::text!("error.pairing.confirm_sms_code_first"),
        }));
    }
    Ok(flow)
}

/// The SMS code and the acknowledgement: a new seed is generated in the token and shown once.
pub async fn sms(state: &Services, user: &User, req: SmsStep, client: &str) -> Result<Secret, AccountError> {
    if req.app_installed != Some(true) {
        return Err(AccountError::Invalid(crate::text!(
            "error.pairing.please_confirm_that_installed_authenticator"
        )));
    }
    let flow = open_flow(state, user, FlowStage::SmsSent).await?;
    codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        PURPOSE,
        req.code.as_deref(),
    )
    .await?;
    let (hsm, uid, account) = (state.hsm.clone(), user.id.clone(), user.email.clone());
    let pairing =
        tokio::task::spawn_blocking(move || totp::new_pairing(&hsm, &uid, "Parafa", &account, TotpStatus::Pending))
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))??;
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    if !store::advance_flow(&mut *tx, &flow.id, FlowEvent::SecretShown, None, now).await? {
        return Err(AccountError::Conflict(crate::text!(
            "error.pairing.secret_was_already_shown_once_2"
        )));
    }
    store::replace_pending_totp(&mut tx, &pairing.row, now).await?;
    tx.commit().await?;
    audit(state, &user.id, "totp.pairing.secret_shown", "ok", client, json!({})).await;
    use secrecy::ExposeSecret;
    let uri = pairing.otpauth_uri.expose_secret().to_owned();
    let qr_png = qr_png(&uri)?;
    Ok(Secret {
        otpauth_uri: uri,
        secret: pairing.secret_base32.expose_secret().to_owned(),
        qr_png,
    })
}

fn qr_png(uri: &str) -> Result<String, AccountError> {
    // totp-rs renders the QR from its own TOTP value; rebuild one from the URI it produced.
    let t = totp_rs::TOTP::from_url(uri).map_err(|e| AccountError::Internal(e.to_string()))?;
    t.get_qr_base64().map_err(AccountError::Internal)
}

/// The first code from the app: the pairing becomes active, 2FA is on, and every session ends.
pub async fn activate(state: &Services, user: &User, code: Option<String>, client: &str) -> Result<(), AccountError> {
    let flow = open_flow(state, user, FlowStage::SecretShown).await?;
    let checked = totp::check_pending_code(
        &state.db,
        &state.hsm,
        &state.settings.auth,
        state.clock.as_ref(),
        &user.id,
        code.as_deref(),
    )
    .await;
    let step = match checked {
        Ok(step) => step,
        Err(e) => {
            let failures = store::fail_flow(&state.db, &flow.id).await?;
            audit(
                state,
                &user.id,
                "totp.pairing.activate",
                "wrong code",
                client,
                json!({ "failures": failures }),
            )
            .await;
            if failures >= state.settings.accounts.max_code_attempts {
                store::advance_flow(
                    state.db.writer(),
                    &flow.id,
                    FlowEvent::PairingFailed,
                    None,
                    state.clock.now(),
                )
                .await?;
                return Err(AccountError::Expired(crate::text!(
                    "error.pairing.code_was_wrong_too_many"
                )));
            }
            return Err(e.into());
        }
    };
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    if !store::activate_totp(&mut *tx, &user.id, step, now).await? {
        return Err(AccountError::Conflict(crate::text!(
            "error.pairing.start_pairing_again"
        )));
    }
    store::advance_flow(&mut *tx, &flow.id, FlowEvent::Paired, None, now).await?;
    store::set_two_factor(&mut *tx, &user.id, TwoFactorSetting::On, None, None).await?;
    store::revoke_all_sessions(&mut tx, &user.id).await?;
    tx.commit().await?;
    audit(state, &user.id, "totp.pairing.activate", "ok", client, json!({})).await;
    Ok(())
}
