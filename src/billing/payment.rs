//! Payment: a `PaymentGateway` trait, the built-in sandbox gateway, and the callback — the only way an order
//! becomes paid. A callback is authenticated by an HMAC-SHA256 over its timestamp and body
//! (`X-Payment-Signature: t=<unix>,v1=<hex>`), refused outside a five-minute window, and idempotent: an event id
//! already seen changes nothing.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::orders::{self, OrderError};
use super::OrderEvent;
use super::Services;
use crate::clock::Clock;
use crate::db::orders::PaymentStatus;
use crate::db::{self, DbError};
use crate::i18n::Text;
use crate::text;

/// How far a callback's timestamp may be from our clock, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// What a gateway tells us about a payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub event_id: String,
    pub order_id: String,
    /// `paid` or `failed`.
    pub status: String,
    pub amount_ron_bani: i64,
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the payment signature is missing or wrong")]
    BadSignature,
    #[error("the payment notification is outside the accepted time window")]
    Stale,
    #[error("{0}")]
    Invalid(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error("the sandbox gateway is served only in development mode")]
    SandboxOff,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl CallbackError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            CallbackError::BadSignature => text!("error.payment.bad_signature"),
            CallbackError::Stale => text!("error.payment.stale"),
            CallbackError::Invalid(t) => t.clone(),
            CallbackError::Conflict(t) => t.clone(),
            CallbackError::SandboxOff => text!("error.payment.sandbox_off"),
            CallbackError::Db(_) => text!("error.http.database_error"),
        }
    }
}

impl From<sqlx::Error> for CallbackError {
    fn from(e: sqlx::Error) -> Self {
        CallbackError::Db(e.into())
    }
}

/// A payment provider: where to send the payer, and how to sign what it reports.
pub trait PaymentGateway: Send + Sync {
    /// The provider's name in the callback URL.
    fn name(&self) -> &str;
    /// The URL the payer is sent to for an order.
    fn payment_url(&self, base: &str, order_id: &str) -> String;
    /// Pays an order's amount back; returns the gateway's reference of the refund.
    fn refund(&self, order_id: &str, amount_ron_bani: i64) -> String;
}

/// The built-in sandbox: a page (`/orders/{id}/pay`, backed by `/api/v1/sandbox-pay/{id}`) that pays or fails an
/// order, reporting through the same signed callback. It lets the holder pay their own order, so it exists only in
/// development mode ([`crate::config::Settings::dev`]); otherwise only a gateway's signed callback pays an order.
pub struct Sandbox;

/// Where the payer of an order is sent: the sandbox page in development mode; none otherwise (the gateway's own
/// page is reached from its integration, which reports back through [`callback`]).
pub fn payment_url(state: &Services, order_id: &str) -> Option<String> {
    state
        .settings
        .dev
        .then(|| Sandbox.payment_url(state.ca.public_base(), order_id))
}

impl PaymentGateway for Sandbox {
    fn name(&self) -> &str {
        "sandbox"
    }

    fn payment_url(&self, base: &str, order_id: &str) -> String {
        format!("{base}/orders/{order_id}/pay")
    }

    /// The sandbox moves no money: the reference names the order and the amount.
    fn refund(&self, order_id: &str, amount_ron_bani: i64) -> String {
        format!("sandbox-refund-{order_id}-{amount_ron_bani}")
    }
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256 over "<timestamp>.<body>">`.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `t=…,v1=…` signature over `body` and its freshness (also used by the identification provider's
/// callback).
pub fn verify(secret: &SecretString, header: Option<&str>, body: &[u8], now: i64) -> Result<(), CallbackError> {
    let header = header.ok_or(CallbackError::BadSignature)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or(CallbackError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| CallbackError::BadSignature)?;
    if (now - t).abs() > WINDOW_SECS {
        return Err(CallbackError::Stale);
    }
    Ok(())
}

/// The callback secret: the setting, else one made at first start and kept in the database (shared by instances).
pub async fn secret(state: &Services) -> Result<SecretString, DbError> {
    if let Some(s) = &state.settings.billing.payment_callback_secret {
        return Ok(s.clone());
    }
    let (fresh, _) = crate::auth::tokens::new_secret();
    let stored =
        crate::db::ca::deployment_value(&state.db, "payment_callback_secret", &fresh, state.clock.now()).await?;
    Ok(stored.into())
}

/// Handles a gateway's callback. Returns whether this call changed the order (false for a replayed event).
pub async fn callback(
    state: &Services,
    provider: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<bool, CallbackError> {
    let now = state.clock.now();
    verify(&secret(state).await?, signature, body, now)?;
    let event: PaymentEvent = serde_json::from_slice(body)
        .map_err(|e| CallbackError::Invalid(text!("error.payment.invalid_notification", e)))?;
    let status = PaymentStatus::parse(&event.status)
        .ok_or_else(|| CallbackError::Invalid(text!("error.payment.status_paid_or_failed")))?;
    let reference = format!("{provider}:{}", event.event_id);
    // The order-accepted e-mail's documents, laid out before the transaction (see `notice`).
    let notice = match status {
        PaymentStatus::Paid => super::notice::prepare(state, &event.order_id, now, &reference).await?,
        _ => None,
    };
    let mut tx = state.db.writer().begin().await?;
    if db::orders::payment_seen(&mut tx, &event.event_id).await? {
        return Ok(false);
    }
    let order = orders::order_row(&mut *tx, &event.order_id)
        .await?
        .ok_or_else(|| CallbackError::Invalid(crate::text!("error.payment.unknown_order")))?;
    let (order_state, total, user_id) = (order.state, order.total_ron_bani, order.user_id);
    if status == PaymentStatus::Paid && event.amount_ron_bani != total {
        return Err(CallbackError::Invalid(text!(
            "error.payment.amount_not_total",
            paid = event.amount_ron_bani,
            total
        )));
    }
    let record = db::orders::PaymentEvent {
        event_id: &event.event_id,
        provider,
        order_id: &event.order_id,
        status,
        amount_bani: event.amount_ron_bani,
    };
    match db::orders::record_payment(&mut tx, &record, now).await {
        // The same event delivered twice at once: the other delivery is handling it.
        Err(e) if DbError::is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let actor = format!("gateway:{provider}");
    if status == PaymentStatus::Paid {
        if !orders::transition(
            &mut tx,
            &event.order_id,
            OrderEvent::Pay,
            &actor,
            "payment confirmed",
            now,
        )
        .await?
        {
            return Err(CallbackError::Conflict(
                text!("error.payment.cannot_be_paid", state => Text::state(order_state.as_str())),
            ));
        }
        db::orders::set_paid(&mut tx, &event.order_id, now, &reference).await?;
        // The invoice is issued with the payment: a gap-free number per year, and its data frozen from now on.
        assign_invoice_number(&mut tx, &event.order_id, now).await?;
        super::fiscal::keep_invoice_xml(&mut tx, &state.settings, &event.order_id).await?;
        if let Some(notice) = &notice {
            super::notice::queue(&mut tx, state, notice).await?;
        }
    } else {
        orders::record_history(&mut tx, &event.order_id, order_state, &actor, "payment failed", now).await?;
    }
    tx.commit().await?;
    crate::audit::user_step(
        &state.db,
        state.clock.as_ref(),
        &user_id,
        "order.payment",
        status.as_str(),
        provider,
        json!({ "order": event.order_id }),
    )
    .await;
    Ok(true)
}

/// Gives an order the next invoice number of the year (a gap-free counter shared by every channel), inside the
/// caller's transaction; returns it.
pub async fn assign_invoice_number(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    now: i64,
) -> Result<String, DbError> {
    // The year of the day in Bucharest, the invoice's date.
    let year = super::invoice::bucharest_day(now)[..4].to_owned();
    let n = db::orders::next_in_sequence(conn, &format!("invoice-{year}")).await?;
    let number = format!("PRF-INV-{year}-{n:06}");
    db::orders::set_invoice_number(conn, order_id, &number).await?;
    Ok(number)
}

/// The sandbox page's action: `pay` or `fail` the holder's order, reported through the signed callback as a real
/// gateway would.
pub async fn sandbox_pay(
    state: &Services,
    user_id: &str,
    order_id: &str,
    outcome: &str,
) -> Result<bool, CallbackError> {
    if !state.settings.dev {
        return Err(CallbackError::SandboxOff);
    }
    let owned = || async {
        db::orders::get(&state.db, order_id, Some(user_id))
            .await?
            .ok_or_else(|| CallbackError::Invalid(crate::text!("error.payment.unknown_order")))
    };
    owned().await?;
    // The RON amount is the one of the payment day (product rules §1).
    super::orders::reprice(state, order_id).await?;
    let order = owned().await?;
    if order.frozen {
        return Err(CallbackError::Conflict(crate::text!(
            "error.payment.order_on_hold_until_operator"
        )));
    }
    let status = match outcome {
        "pay" => PaymentStatus::Paid,
        "fail" => PaymentStatus::Failed,
        _ => {
            return Err(CallbackError::Invalid(crate::text!(
                "error.payment.outcome_must_pay_or_fail"
            )))
        }
    };
    let event = PaymentEvent {
        event_id: format!("sandbox-{}", uuid::Uuid::new_v4()),
        order_id: order_id.to_owned(),
        status: status.as_str().into(),
        amount_ron_bani: order.price.total_ron_bani,
    };
    let body =
        serde_json::to_vec(&event).map_err(|e| CallbackError::Invalid(text!("error.http.detail", detail = e)))?;
    let signature = sign(&secret(state).await?, state.clock.now(), &body);
    callback(state, Sandbox.name(), Some(&signature), &body).await
}

impl From<CallbackError> for OrderError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::Db(d) => OrderError::Db(d),
            CallbackError::Conflict(d) => OrderError::Conflict(d),
            CallbackError::SandboxOff => OrderError::NotFound,
            other => OrderError::Invalid(other.text()),
        }
    }
}
