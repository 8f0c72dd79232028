//! Notification #4 (product rules §12): during a video identification the provider asks the holder to read back a
//! session code sent by SMS to the phone on their account, which proves the phone is theirs and in their hand. The
//! provider does not know the number: it asks Parafa, through a hook authenticated as its reports are
//! (`POST /api/v1/identity/sms`, `X-Identity-Signature`), to send a code it chose for a session still open.
//!
//! A session may have `identity_provider.sms_per_session` such SMS (3), at least `sms_interval_secs` apart (60):
//! counted by one conditional UPDATE, so that neither a faulty provider nor parallel requests on several instances
//! turn Parafa into an SMS cannon.

use serde::{Deserialize, Serialize};

use super::identity::{callback_secret, session_by_link, ProviderCallbackError};
use super::{LifecycleError, Services};
use crate::clock::Clock;
use crate::db;
use crate::i18n::Lang;
use crate::notify::{self, Medium, Template};
use crate::text;

/// The provider's request: the session's one-time token (from the link it opened) and the code to send.
#[derive(Debug, Deserialize)]
pub struct SmsRequest {
    pub session: String,
    pub code: String,
}

/// What the provider learns: that the SMS is queued, to which number (its last two digits only) and how many more
/// the session may have.
#[derive(Debug, Serialize)]
pub struct SmsQueued {
    pub queued: bool,
    pub phone_ending: String,
    pub sms_left: i64,
}

/// `POST /api/v1/identity/sms`.
pub async fn provider_sms(
    state: &Services,
    signature: Option<&str>,
    body: &[u8],
) -> Result<SmsQueued, ProviderCallbackError> {
    let secret = callback_secret(state).await.map_err(LifecycleError::from)?;
    crate::billing::payment::verify(&secret, signature, body, state.clock.now())
        .map_err(|_| ProviderCallbackError::Unauthentic)?;
    let req: SmsRequest =
        serde_json::from_slice(body).map_err(|e| LifecycleError::Invalid(text!("error.identity.invalid_report", e)))?;
    Ok(send(state, &req).await?)
}

async fn send(state: &Services, req: &SmsRequest) -> Result<SmsQueued, LifecycleError> {
    let code = req.code.trim();
    if !(4..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LifecycleError::Invalid(text!("error.identity.sms_code_digits")));
    }
    let (session_id, order, user) = session_by_link(state, &req.session).await?;
    let limits = &state.settings.identity_provider;
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    match db::identity::count_sms(
        &mut tx,
        &session_id,
        limits.sms_per_session,
        limits.sms_interval_secs,
        now,
    )
    .await?
    {
        Ok(()) => {}
        Err((sent, _)) if sent >= limits.sms_per_session => {
            return Err(LifecycleError::TooMany(text!(
                "error.identity.sms_limit_reached",
                max = limits.sms_per_session
            )))
        }
        Err((_, last)) => {
            let secs = (last.unwrap_or(now) + limits.sms_interval_secs - now).max(1);
            return Err(LifecycleError::TooMany(text!("error.identity.sms_too_soon", secs)));
        }
    }
    let (subject, body) = Template::IdentificationSmsCode { code }.render(Lang::or_default(Some(&user.lang)), "");
    let message = notify::Message {
        medium: Medium::Sms,
        recipient: user.phone.clone(),
        subject,
        body,
        kind: "identification_sms_code".into(),
    };
    notify::enqueue(&mut *tx, state.clock.as_ref(), &message).await?;
    let left = db::identity::sms_left(&mut tx, &session_id, limits.sms_per_session).await?;
    tx.commit().await?;
    crate::audit::user_step(
        &state.db,
        state.clock.as_ref(),
        &user.id,
        "identity.sms",
        "queued",
        "provider",
        serde_json::json!({ "order": order.registration_number, "session": session_id }),
    )
    .await;
    let digits: Vec<char> = user.phone.chars().filter(char::is_ascii_digit).collect();
    Ok(SmsQueued {
        queued: true,
        phone_ending: digits[digits.len().saturating_sub(2)..].iter().collect(),
        sms_left: left,
    })
}
