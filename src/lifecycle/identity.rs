//! Remote identification (product rules §5, §2 and §10).
//!
//! After payment of a new or reissue order the holder starts a session with an [`IdentityProvider`] and gets a
//! one-time link. The provider reports the outcome: a completed session (document data and the four consents) goes
//! to the operator queue; an interrupted one is returned for completion at once with a new link. The operator
//! accepts, returns for completion, or rejects with a reason (fake data: pending orders cancelled and a ban). A
//! rejected identification may be resubmitted within the same order, free within the configured days, as many
//! times as configured; after the last one the order is refunded. The same identity document or personal
//! numeric code on another person's account stops the identification and freezes the pending orders until an
//! operator decides. No step takes a new payment.

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::LifecycleError;
use super::Services;
use crate::accounts::audit;
use crate::auth::tokens;
use crate::billing::orders::{self, OrderRow};
use crate::billing::{OrderEvent, OrderState};
use crate::clock::{rfc3339, Clock};
use crate::db::users::User;
use crate::db::{self, DbError};
use crate::notify::Template;

/// A remote identification provider: where the holder is sent.
pub trait IdentityProvider: Send + Sync {
    /// The provider's name, recorded with the session.
    fn name(&self) -> &str;
    /// The link the holder opens for a session.
    fn session_url(&self, base: &str, token: &str) -> String;
}

/// The built-in provider: a page that records the document data and the four consents and completes or
/// interrupts the session, as a real provider's callback would. The link is the web page
/// (`/identity/sandbox/{token}`), which reports to `/api/v1/identity/sandbox/{token}`.
pub struct SandboxProvider;

impl IdentityProvider for SandboxProvider {
    fn name(&self) -> &str {
        "sandbox"
    }

    fn session_url(&self, base: &str, token: &str) -> String {
        format!("{base}/identity/sandbox/{token}")
    }
}

/// The provider outside development mode: its page at the configured URL, reporting through the signed callback
/// ([`provider_callback`]).
pub struct ExternalProvider<'a> {
    url: &'a str,
}

impl IdentityProvider for ExternalProvider<'_> {
    fn name(&self) -> &str {
        "external"
    }

    fn session_url(&self, _base: &str, token: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}session={token}", self.url)
    }
}

/// The provider in force: the sandbox in development mode, else the configured one (none: identification cannot
/// start).
pub fn provider(state: &Services) -> Option<Box<dyn IdentityProvider + '_>> {
    if state.settings.dev {
        return Some(Box::new(SandboxProvider));
    }
    let url = state.settings.identity_provider.url.as_deref()?;
    Some(Box::new(ExternalProvider { url }))
}

fn provider_name(state: &Services) -> String {
    provider(state).map_or_else(|| "none".to_owned(), |p| p.name().to_owned())
}

/// What a provider reports through the signed callback: the session's one-time token and the outcome.
#[derive(Debug, Deserialize)]
pub struct ProviderReport {
    pub session: String,
    #[serde(flatten)]
    pub report: SandboxOutcome,
}

/// The key that authenticates the provider's reports: the setting, else one made at first start and kept in the
/// database (shared by instances).
pub async fn callback_secret(state: &Services) -> Result<secrecy::SecretString, DbError> {
    if let Some(s) = &state.settings.identity_provider.callback_secret {
        return Ok(s.clone());
    }
    let (fresh, _) = tokens::new_secret();
    let stored = db::ca::deployment_value(&state.db, "identity_callback_secret", &fresh, state.clock.now()).await?;
    Ok(stored.into())
}

/// Why a provider's report was refused before it was read.
#[derive(Debug, thiserror::Error)]
pub enum ProviderCallbackError {
    #[error("the report is not authentic or not fresh")]
    Unauthentic,
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

/// `POST /api/v1/identity/callback`: the provider's report, authenticated as the payment callbacks are
/// (`X-Identity-Signature: t=<unix>,v1=<hex HMAC-SHA256 over "<t>.<body>">`), then handled as the sandbox's.
pub async fn provider_callback(
    state: &Services,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Value, ProviderCallbackError> {
    let secret = callback_secret(state).await.map_err(LifecycleError::from)?;
    crate::billing::payment::verify(&secret, signature, body, state.clock.now())
        .map_err(|_| ProviderCallbackError::Unauthentic)?;
    let report: ProviderReport =
        serde_json::from_slice(body).map_err(|e| LifecycleError::Invalid(format!("invalid report: {e}")))?;
    let name = provider_name(state);
    Ok(report_session(state, &report.session, &name, report.report).await?)
}

/// Identity document data, as the provider read it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Document {
    #[serde(rename = "type")]
    pub doc_type: Option<String>,
    pub country: Option<String>,
    pub series: Option<String>,
    pub number: Option<String>,
    pub issued_on: Option<String>,
    pub expires_on: Option<String>,
    pub issuer: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// The personal numeric code (CNP), when the document has one.
    pub personal_number: Option<String>,
}

/// The four consents of the video session.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Consents {
    pub privacy_notice: Option<bool>,
    pub biometric: Option<bool>,
    pub captures: Option<bool>,
    pub recording: Option<bool>,
}

/// What the sandbox provider reports.
#[derive(Debug, Deserialize)]
pub struct SandboxOutcome {
    /// `complete` or `interrupt`.
    pub outcome: Option<String>,
    pub document: Option<Document>,
    pub consents: Option<Consents>,
    /// A phone number changed during the session.
    pub phone: Option<String>,
}

fn field<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, LifecycleError> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= 100)
        .ok_or_else(|| LifecycleError::Invalid(format!("document {name} is required")))
}

/// A calendar date `YYYY-MM-DD` as the Unix time of its start (UTC).
pub fn parse_date(s: &str, name: &str) -> Result<i64, LifecycleError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| LifecycleError::Invalid(format!("{name} must be a date such as 2030-12-31")))
}

/// The date of a Unix time, `YYYY-MM-DD`.
pub fn date_of(secs: i64) -> String {
    rfc3339(secs)[..10].to_owned()
}

/// Checks a Romanian personal numeric code (CNP): 13 digits with its control digit.
pub fn valid_cnp(cnp: &str) -> bool {
    let d: Vec<u32> = cnp.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 13 || cnp.len() != 13 {
        return false;
    }
    let key = [2u32, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9];
    let sum: u32 = d[..12].iter().zip(key).map(|(a, b)| a * b).sum();
    let c = sum % 11;
    d[12] == if c == 10 { 1 } else { c }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.trim().to_uppercase().as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

impl Document {
    /// Validates the data against the accepted documents; the document must be valid `on` (a Unix time).
    pub fn validate(&self, accepted: &[String], on: i64) -> Result<(), LifecycleError> {
        let t = field(&self.doc_type, "type")?;
        if !accepted.iter().any(|a| a == t) {
            return Err(LifecycleError::Invalid(format!(
                "document type must be one of: {}",
                accepted.join(", ")
            )));
        }
        let country = field(&self.country, "country")?;
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(LifecycleError::Invalid(
                "document country must be a two-letter code".into(),
            ));
        }
        field(&self.number, "number")?;
        let expires = parse_date(field(&self.expires_on, "expiry date")?, "the document's expiry date")?;
        if expires + 86_400 <= on {
            return Err(LifecycleError::Invalid(format!(
                "the identity document must be valid on {}",
                date_of(on)
            )));
        }
        if let Some(issued) = self.issued_on.as_deref().filter(|s| !s.trim().is_empty()) {
            if parse_date(issued, "the document's issue date")? > on {
                return Err(LifecycleError::Invalid(
                    "the document's issue date is in the future".into(),
                ));
            }
        }
        if let Some(cnp) = self.personal_number.as_deref().filter(|s| !s.trim().is_empty()) {
            if country.eq_ignore_ascii_case("RO") && !valid_cnp(cnp.trim()) {
                return Err(LifecycleError::Invalid(
                    "the personal numeric code (CNP) is not valid".into(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> String {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        digest(&[
            &s(&self.country),
            &s(&self.doc_type),
            &s(&self.series),
            &s(&self.number),
        ])
    }

    pub(crate) fn personal_key(&self) -> Option<String> {
        self.personal_number
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| digest(&[&self.country.clone().unwrap_or_default(), p]))
    }
}

/// The user's ban end, when a ban is in force.
pub async fn banned_until(state: &Services, user_id: &str) -> Result<Option<i64>, DbError> {
    let until: Option<i64> = sqlx::query("SELECT until FROM user_bans WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(state.db.writer())
        .await?
        .map(|r| r.try_get("until"))
        .transpose()?;
    Ok(until.filter(|u| *u > state.clock.now()))
}

/// Inserts a session row with a new link; returns the link.
async fn new_session(
    conn: &mut sqlx::AnyConnection,
    state: &Services,
    order: &OrderRow,
    attempt: i64,
    now: i64,
) -> Result<(String, String, i64), DbError> {
    let (token, hash) = tokens::new_secret();
    let id = uuid::Uuid::now_v7().to_string();
    let expires = now + state.settings.lifecycle.identity_link_hours * 3600;
    sqlx::query(
        "INSERT INTO identity_sessions (id, order_id, user_id, state, attempt, link_hash, link_expires_at, created_at)
         VALUES ($1, $2, $3, 'started', $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&order.id)
    .bind(&order.user_id)
    .bind(attempt)
    .bind(&hash)
    .bind(expires)
    .bind(now)
    .execute(conn)
    .await?;
    let base = state.ca.public_base();
    let url = match provider(state) {
        Some(p) => p.session_url(base, &token),
        // The provider was unset meanwhile: the order page says what to do.
        None => format!("{base}/orders/{}", order.id),
    };
    Ok((id, url, expires))
}

async fn user_order(state: &Services, user: &User, order_id: &str) -> Result<OrderRow, LifecycleError> {
    orders::order_row(state.db.writer(), order_id)
        .await?
        .filter(|o| o.user_id == user.id)
        .ok_or_else(|| LifecycleError::NotFound("no such order".into()))
}

/// `POST /orders/{id}/identity-session`: a new identification link for a paid new or reissue order (or for one
/// returned for completion). Any earlier unfinished link of the order stops working.
pub async fn start(state: &Services, user: &User, order_id: &str, client: &str) -> Result<Value, LifecycleError> {
    let order = user_order(state, user, order_id).await?;
    if provider(state).is_none() {
        return Err(LifecycleError::Conflict(
            "No identification provider is configured: please contact us".into(),
        ));
    }
    if order.kind == "rekey" {
        return Err(LifecycleError::Conflict(
            "A rekey is not identified by video: send the document data with the rekey request".into(),
        ));
    }
    if order.frozen {
        return Err(LifecycleError::Conflict(
            "This order is on hold until an operator decides about a duplicate identity document".into(),
        ));
    }
    if let Some(until) = banned_until(state, &user.id).await? {
        return Err(LifecycleError::Forbidden(format!(
            "The account is restricted until {}",
            rfc3339(until)
        )));
    }
    if !matches!(order.state, OrderState::Paid | OrderState::ReturnedForCompletion) {
        return Err(LifecycleError::Conflict(format!(
            "An identification can start once the order is paid; this one is {}",
            order.state
        )));
    }
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let attempt: i64 = sqlx::query("SELECT COALESCE(MAX(attempt), 0) AS a FROM identity_sessions WHERE order_id = $1")
        .bind(&order.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("a")?;
    sqlx::query(
        "UPDATE identity_sessions SET state = 'superseded', decided_at = $1 WHERE order_id = $2 AND state = 'started'",
    )
    .bind(now)
    .bind(&order.id)
    .execute(&mut *tx)
    .await?;
    let (id, url, expires) = new_session(&mut tx, state, &order, attempt, now).await?;
    tx.commit().await?;
    audit(
        &state.accounts(),
        &user.id,
        "identity.session.start",
        "ok",
        client,
        json!({ "order": order.registration_number, "session": id }),
    )
    .await;
    Ok(json!({
        "session_id": id,
        "provider": provider_name(state),
        "url": url,
        "expires_at": rfc3339(expires),
        "order": order.registration_number,
    }))
}

/// The session behind a link, while the link is valid.
async fn session_by_link(state: &Services, token: &str) -> Result<(String, OrderRow, User), LifecycleError> {
    let row = sqlx::query("SELECT id, order_id, state, link_expires_at FROM identity_sessions WHERE link_hash = $1")
        .bind(tokens::hash(token))
        .fetch_optional(state.db.writer())
        .await?
        .ok_or_else(|| LifecycleError::NotFound("This identification link is not valid".into()))?;
    let expires: i64 = row.try_get("link_expires_at")?;
    if row.try_get::<String, _>("state")? != "started" || expires <= state.clock.now() {
        return Err(LifecycleError::Gone(
            "This identification link was used or has expired; ask for a new one from your order".into(),
        ));
    }
    let order = orders::order_row(state.db.writer(), &row.try_get::<String, _>("order_id")?)
        .await?
        .ok_or_else(|| LifecycleError::NotFound("no such order".into()))?;
    let user = db::users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound("no such user".into()))?;
    Ok((row.try_get("id")?, order, user))
}

/// The sandbox provider exists only in development mode: otherwise its link is unknown.
fn sandbox_only(state: &Services) -> Result<(), LifecycleError> {
    if state.settings.dev {
        Ok(())
    } else {
        Err(LifecycleError::NotFound("no such route".into()))
    }
}

/// `GET /identity/sandbox/{token}`: what the session asks for (development mode only).
pub async fn sandbox_view(state: &Services, token: &str) -> Result<Value, LifecycleError> {
    sandbox_only(state)?;
    let (id, order, user) = session_by_link(state, token).await?;
    Ok(json!({
        "provider": "sandbox",
        "session_id": id,
        "order": order.registration_number,
        "documents": state.settings.lifecycle.identity_documents,
        "phone": user.phone,
        "consents": ["privacy_notice", "biometric", "captures", "recording"],
        "outcomes": ["complete", "interrupt"],
    }))
}

/// `POST /identity/sandbox/{token}`: the sandbox provider's report of the session (development mode only).
pub async fn sandbox_report(state: &Services, token: &str, report: SandboxOutcome) -> Result<Value, LifecycleError> {
    sandbox_only(state)?;
    report_session(state, token, SandboxProvider.name(), report).await
}

/// A provider's report of the session behind `token`.
async fn report_session(
    state: &Services,
    token: &str,
    provider: &str,
    report: SandboxOutcome,
) -> Result<Value, LifecycleError> {
    let (session_id, order, user) = session_by_link(state, token).await?;
    let now = state.clock.now();
    let actor = format!("provider:{provider}");
    match report.outcome.as_deref() {
        Some("interrupt") => {
            let mut tx = state.db.writer().begin().await?;
            let n = sqlx::query(
                "UPDATE identity_sessions SET state = 'returned', reason = $1, decided_at = $2
                 WHERE id = $3 AND state = 'started'",
            )
            .bind("interrupted session")
            .bind(now)
            .bind(&session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(LifecycleError::Gone(
                    "This identification link was used meanwhile".into(),
                ));
            }
            let attempt = session_attempt(&mut tx, &session_id).await?;
            orders::transition(
                &mut tx,
                &order.id,
                OrderEvent::SessionInterrupted,
                &actor,
                "interrupted session",
                now,
            )
            .await?;
            let (_, url, _) = new_session(&mut tx, state, &order, attempt, now).await?;
            let hours = state.settings.lifecycle.identity_link_hours;
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &user,
                Template::IdentityReturned {
                    order: &order.registration_number,
                    reason: "interrupted session",
                    link: &url,
                    hours,
                },
                "identity_returned",
            )
            .await?;
            tx.commit().await?;
            audit(
                &state.accounts(),
                &user.id,
                "identity.session.interrupted",
                "returned",
                &actor,
                json!({ "order": order.registration_number }),
            )
            .await;
            Ok(
                json!({ "state": OrderState::ReturnedForCompletion, "message": "The session was interrupted: a new link was sent by e-mail" }),
            )
        }
        Some("complete") => complete(state, &session_id, &order, &user, report, now, &actor).await,
        _ => Err(LifecycleError::Invalid("outcome must be complete or interrupt".into())),
    }
}

async fn session_attempt(conn: &mut sqlx::AnyConnection, session_id: &str) -> Result<i64, DbError> {
    Ok(sqlx::query("SELECT attempt FROM identity_sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(conn)
        .await?
        .try_get("attempt")?)
}

async fn complete(
    state: &Services,
    session_id: &str,
    order: &OrderRow,
    user: &User,
    report: SandboxOutcome,
    now: i64,
    actor: &str,
) -> Result<Value, LifecycleError> {
    let consents = report.consents.unwrap_or_default();
    if [
        consents.privacy_notice,
        consents.biometric,
        consents.captures,
        consents.recording,
    ]
    .iter()
    .any(|c| *c != Some(true))
    {
        return Err(LifecycleError::Invalid(
            "All four consents are required: privacy notice, biometric processing, captures of the document and face, audio-video recording".into(),
        ));
    }
    let doc = report
        .document
        .ok_or_else(|| LifecycleError::Invalid("the document data is required".into()))?;
    doc.validate(&state.settings.lifecycle.identity_documents, now)?;
    field(&doc.given_name, "given name")?;
    field(&doc.surname, "surname")?;
    let phone = match report.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => crate::accounts::normalise_phone(p).map_err(|e| LifecycleError::Invalid(e.to_string()))?,
        None => user.phone.clone(),
    };
    let (doc_key, personal_key) = (doc.key(), doc.personal_key());
    let mut tx = state.db.writer().begin().await?;
    // The same document or personal numeric code in another person's identification.
    let others: Vec<String> = sqlx::query(
        "SELECT DISTINCT user_id FROM identity_sessions
         WHERE user_id <> $1 AND state IN ('under_review', 'accepted') AND (document_key = $2 OR personal_key = $3)",
    )
    .bind(&user.id)
    .bind(&doc_key)
    .bind(personal_key.clone().unwrap_or_else(|| "-".into()))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| r.try_get("user_id"))
    .collect::<Result<_, _>>()?;
    let flagged = !others.is_empty();
    let consents_json = json!({
        "privacy_notice": true, "biometric": true, "captures": true, "recording": true, "at": rfc3339(now),
    });
    let n = sqlx::query(
        "UPDATE identity_sessions SET state = 'under_review', document = $1, document_key = $2, personal_key = $3,
            consents = $4, phone = $5, flagged = $6, submitted_at = $7
         WHERE id = $8 AND state = 'started'",
    )
    .bind(serde_json::to_string(&doc).map_err(|e| LifecycleError::Invalid(e.to_string()))?)
    .bind(&doc_key)
    .bind(&personal_key)
    .bind(consents_json.to_string())
    .bind(&phone)
    .bind(i64::from(flagged))
    .bind(now)
    .bind(session_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(LifecycleError::Gone(
            "This identification link was used meanwhile".into(),
        ));
    }
    orders::transition(
        &mut tx,
        &order.id,
        OrderEvent::Identified,
        actor,
        if flagged {
            "identification completed; on hold: the identity document is on another account"
        } else {
            "identification completed, awaiting an operator"
        },
        now,
    )
    .await?;
    if flagged {
        let mut everyone = others.clone();
        everyone.push(user.id.clone());
        for uid in &everyone {
            freeze_pending(&mut tx, state, uid, now).await?;
        }
    }
    tx.commit().await?;
    audit(
        &state.accounts(),
        &user.id,
        "identity.session.completed",
        if flagged { "flagged" } else { "ok" },
        actor,
        json!({ "order": order.registration_number, "duplicate_of": others }),
    )
    .await;
    Ok(json!({
        "state": OrderState::UnderReview,
        "flagged": flagged,
        "message": if flagged {
            "The identification stopped: the identity document is already used on another account. An operator will decide."
        } else {
            "Thank you. An operator will review the identification within 24 hours."
        },
    }))
}

/// Freezes a user's pending orders and tells the holder (product rules §10).
async fn freeze_pending(
    conn: &mut sqlx::AnyConnection,
    state: &Services,
    user_id: &str,
    now: i64,
) -> Result<(), DbError> {
    let pending: Vec<(String, String)> = sqlx::query(
        "SELECT id, registration_number FROM orders WHERE user_id = $1 AND frozen = 0
         AND state IN ('awaiting_documents', 'awaiting_payment', 'paid', 'under_review', 'returned_for_completion', 'accepted', 'rejected')",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("registration_number")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let Some(user) = db::users::by_id(&state.db, user_id).await? else {
        return Ok(());
    };
    for (id, number) in &pending {
        sqlx::query("UPDATE orders SET frozen = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        orders::record_hold(conn, id, "duplicate identity document", now).await?;
        crate::notify::tell(
            conn,
            state.clock.as_ref(),
            state.ca.public_base(),
            &user,
            Template::IdentityFrozen { order: number },
            "identity_frozen",
        )
        .await?;
    }
    Ok(())
}

/// The operator's queue: sessions under review (flagged ones first), or in `state_filter`.
pub async fn queue(state: &Services, state_filter: Option<&str>, flagged_only: bool) -> Result<Value, LifecycleError> {
    let rows = sqlx::query(
        "SELECT s.id, s.order_id, s.state, s.attempt, s.document, s.phone, s.flagged, s.reason, s.submitted_at,
                o.registration_number, o.kind, u.email, u.given_name, u.surname, u.phone AS account_phone
         FROM identity_sessions s JOIN orders o ON o.id = s.order_id JOIN users u ON u.id = s.user_id
         WHERE s.state = $1 AND ($2 = 0 OR s.flagged = 1)
         ORDER BY s.flagged DESC, s.submitted_at, s.id",
    )
    .bind(state_filter.unwrap_or("under_review"))
    .bind(i64::from(flagged_only))
    .fetch_all(state.db.writer())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let doc: Value = r
            .try_get::<Option<String>, _>("document")?
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(Value::Null);
        out.push(json!({
            "id": r.try_get::<String, _>("id")?,
            "order_id": r.try_get::<String, _>("order_id")?,
            "order": r.try_get::<String, _>("registration_number")?,
            "kind": r.try_get::<String, _>("kind")?,
            "state": r.try_get::<String, _>("state")?,
            "attempt": r.try_get::<i64, _>("attempt")?,
            "flagged": r.try_get::<i64, _>("flagged")? != 0,
            "holder": {
                "email": r.try_get::<String, _>("email")?,
                "name": format!("{} {}", r.try_get::<String, _>("given_name")?, r.try_get::<String, _>("surname")?),
                "account_phone": r.try_get::<String, _>("account_phone")?,
            },
            "session_phone": r.try_get::<Option<String>, _>("phone")?,
            "document": doc,
            "reason": r.try_get::<Option<String>, _>("reason")?,
            "submitted_at": r.try_get::<Option<i64>, _>("submitted_at")?.map(rfc3339),
        }));
    }
    Ok(json!({ "sessions": out }))
}

/// An operator's verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    /// `accept`, `return` or `reject`.
    pub decision: String,
    pub reason: Option<String>,
    /// Fake or forged data, or another's identity (only with `reject`).
    #[serde(default)]
    pub fake: bool,
}

struct Review {
    order: OrderRow,
    user: User,
    attempt: i64,
    document: Document,
    phone: Option<String>,
}

async fn under_review(conn: &mut sqlx::AnyConnection, state: &Services, id: &str) -> Result<Review, LifecycleError> {
    let r = sqlx::query("SELECT order_id, state, attempt, document, phone FROM identity_sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| LifecycleError::NotFound("no such identification session".into()))?;
    let s: String = r.try_get("state")?;
    if s != "under_review" {
        return Err(LifecycleError::Conflict(format!(
            "The session is {s}, not under review"
        )));
    }
    let order = orders::order_row(&mut *conn, &r.try_get::<String, _>("order_id")?)
        .await?
        .ok_or_else(|| LifecycleError::NotFound("no such order".into()))?;
    let user = db::users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound("no such user".into()))?;
    let document: Document = r
        .try_get::<Option<String>, _>("document")?
        .and_then(|d| serde_json::from_str(&d).ok())
        .ok_or_else(|| LifecycleError::Conflict("the session has no document data".into()))?;
    Ok(Review {
        order,
        user,
        attempt: r.try_get("attempt")?,
        document,
        phone: r.try_get("phone")?,
    })
}

/// The operator decides on a session under review. Operators never identify for a holder: the verdict is
/// recorded with the operator's identity and audited.
pub async fn decide(state: &Services, session_id: &str, v: Verdict, operator: &str) -> Result<Value, LifecycleError> {
    let now = state.clock.now();
    let actor = format!("operator:{operator}");
    let reason = v.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let mut tx = state.db.writer().begin().await?;
    let review = under_review(&mut tx, state, session_id).await?;
    let number = review.order.registration_number.clone();
    let set_session = |new_state: &'static str| {
        sqlx::query(
            "UPDATE identity_sessions SET state = $1, reason = $2, reviewer = $3, decided_at = $4
             WHERE id = $5 AND state = 'under_review'",
        )
        .bind(new_state)
        .bind(reason.map(str::to_owned))
        .bind(actor.clone())
        .bind(now)
        .bind(session_id.to_owned())
    };
    // Any verdict on a session decides a duplicate it raised: the orders put on hold for it go on (those of a
    // holder found to use fake data are cancelled below).
    sqlx::query(
        "UPDATE orders SET frozen = 0 WHERE frozen = 1 AND user_id IN (
            SELECT s.user_id FROM identity_sessions s, identity_sessions me
            WHERE me.id = $1 AND (s.document_key = me.document_key OR s.personal_key = me.personal_key))",
    )
    .bind(session_id)
    .execute(&mut *tx)
    .await?;
    let outcome = match v.decision.as_str() {
        "accept" => {
            set_session("accepted").execute(&mut *tx).await?;
            let doc = &review.document;
            if !orders::transition(
                &mut tx,
                &review.order.id,
                OrderEvent::Accept,
                &actor,
                "identity accepted",
                now,
            )
            .await?
            {
                return Err(LifecycleError::Conflict("the order is no longer under review".into()));
            }
            let given = doc.given_name.clone().unwrap_or_default();
            let surname = doc.surname.clone().unwrap_or_default();
            sqlx::query("DELETE FROM identities WHERE user_id = $1")
                .bind(&review.user.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO identities (user_id, given_name, surname, personal_number, country, document, phone, session_id, verified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&review.user.id)
            .bind(given.trim())
            .bind(surname.trim())
            .bind(doc.personal_number.as_deref().map(str::trim))
            .bind(doc.country.clone().unwrap_or_default().trim().to_uppercase())
            .bind(serde_json::to_string(doc).map_err(|e| LifecycleError::Invalid(e.to_string()))?)
            .bind(&review.phone)
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let link = format!("{}/login", state.ca.public_base());
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &review.user,
                Template::IdentityAccepted {
                    order: &number,
                    link: &link,
                },
                "identity_accepted",
            )
            .await?;
            if db::users::totp(&state.db, &review.user.id)
                .await?
                .is_none_or(|p| p.status != "active")
            {
                let link = format!("{}/pairing", state.ca.public_base());
                crate::notify::tell(
                    &mut tx,
                    state.clock.as_ref(),
                    state.ca.public_base(),
                    &review.user,
                    Template::ConfigureAuthorisation { link: &link },
                    "configure_authorisation",
                )
                .await?;
            }
            "accepted"
        }
        "return" => {
            let reason = reason.ok_or_else(|| LifecycleError::Invalid("a reason is required".into()))?;
            set_session("returned").execute(&mut *tx).await?;
            orders::transition(&mut tx, &review.order.id, OrderEvent::Return, &actor, reason, now).await?;
            let (_, url, _) = new_session(&mut tx, state, &review.order, review.attempt, now).await?;
            let hours = state.settings.lifecycle.identity_link_hours;
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &review.user,
                Template::IdentityReturned {
                    order: &number,
                    reason,
                    link: &url,
                    hours,
                },
                "identity_returned",
            )
            .await?;
            "returned_for_completion"
        }
        "reject" if v.fake => {
            let reason = reason.ok_or_else(|| LifecycleError::Invalid("a reason is required".into()))?;
            set_session("rejected").execute(&mut *tx).await?;
            sqlx::query("UPDATE identity_sessions SET fake = 1 WHERE id = $1")
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE identity_sessions SET state = 'rejected', reason = $1, decided_at = $2 WHERE user_id = $3 AND state IN ('started', 'under_review')")
                .bind(reason)
                .bind(now)
                .bind(&review.user.id)
                .execute(&mut *tx)
                .await?;
            orders::transition(&mut tx, &review.order.id, OrderEvent::Reject, &actor, reason, now).await?;
            // Every other pending order of the holder is cancelled, paid or not, without a refund (§2, §10).
            let pending: Vec<String> = sqlx::query(
                "SELECT id FROM orders WHERE user_id = $1 AND id <> $2 AND state IN
                 ('awaiting_documents', 'awaiting_payment', 'paid', 'under_review', 'returned_for_completion', 'accepted', 'rejected')",
            )
            .bind(&review.user.id)
            .bind(&review.order.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
            for id in pending {
                orders::transition(
                    &mut tx,
                    &id,
                    OrderEvent::Void,
                    &actor,
                    "cancelled: fake identity data",
                    now,
                )
                .await?;
            }
            let until = now + state.settings.lifecycle.ban_days * 86_400;
            sqlx::query("DELETE FROM user_bans WHERE user_id = $1")
                .bind(&review.user.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO user_bans (user_id, until, reason, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&review.user.id)
                .bind(until)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let until_s = rfc3339(until);
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &review.user,
                Template::Banned {
                    reason,
                    until: &until_s,
                },
                "banned",
            )
            .await?;
            "rejected"
        }
        "reject" => {
            let reason = reason.ok_or_else(|| LifecycleError::Invalid("a reason is required".into()))?;
            set_session("rejected").execute(&mut *tx).await?;
            let l = &state.settings.lifecycle;
            let can_resubmit = review.attempt < l.resubmissions_allowed;
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &review.user,
                Template::IdentityRejected {
                    order: &number,
                    reason,
                    resubmit_days: l.resubmission_free_days,
                    can_resubmit,
                },
                "identity_rejected",
            )
            .await?;
            if can_resubmit {
                orders::transition(&mut tx, &review.order.id, OrderEvent::Reject, &actor, reason, now).await?;
                "rejected"
            } else {
                orders::transition(&mut tx, &review.order.id, OrderEvent::Reject, &actor, reason, now).await?;
                super::scheduler::refund_in(
                    &mut tx,
                    state,
                    &review.order,
                    &review.user,
                    "final rejection",
                    &actor,
                    now,
                )
                .await?;
                "refunded"
            }
        }
        _ => {
            return Err(LifecycleError::Invalid(
                "decision must be accept, return or reject".into(),
            ))
        }
    };
    tx.commit().await?;
    audit(
        &state.accounts(),
        &review.user.id,
        "identity.verdict",
        outcome,
        &actor,
        json!({ "order": number, "session": session_id, "fake": v.fake, "reason": reason }),
    )
    .await;
    Ok(json!({ "session_id": session_id, "order": number, "order_state": outcome }))
}

/// `POST /orders/{id}/resubmit`: a rejected identification is copied into a new session of the same order, with
/// no new payment, within the configured limits.
pub async fn resubmit(state: &Services, user: &User, order_id: &str, client: &str) -> Result<Value, LifecycleError> {
    let order = user_order(state, user, order_id).await?;
    if let Some(until) = banned_until(state, &user.id).await? {
        return Err(LifecycleError::Forbidden(format!(
            "The account is restricted until {}",
            rfc3339(until)
        )));
    }
    if order.state != OrderState::Rejected || order.kind == "rekey" {
        return Err(LifecycleError::Conflict(format!(
            "Only a rejected identification can be resubmitted; this order is {}",
            order.state
        )));
    }
    let last = sqlx::query(
        "SELECT attempt, decided_at, document, phone, fake FROM identity_sessions WHERE order_id = $1 AND state = 'rejected'
         ORDER BY attempt DESC, decided_at DESC LIMIT 1",
    )
    .bind(&order.id)
    .fetch_optional(state.db.writer())
    .await?
    .ok_or_else(|| LifecycleError::Conflict("this order has no rejected identification".into()))?;
    let l = &state.settings.lifecycle;
    if last.try_get::<i64, _>("fake")? != 0 {
        return Err(LifecycleError::Conflict(
            "An identification rejected for fake or forged data cannot be resubmitted".into(),
        ));
    }
    let attempt: i64 = last.try_get("attempt")?;
    if attempt >= l.resubmissions_allowed {
        return Err(LifecycleError::Conflict(
            "A resubmitted identification that was rejected again cannot be resubmitted".into(),
        ));
    }
    let now = state.clock.now();
    let decided: i64 = last.try_get::<Option<i64>, _>("decided_at")?.unwrap_or(now);
    if now > decided + l.resubmission_free_days * 86_400 && l.resubmission_fee_ron_bani > 0 {
        return Err(LifecycleError::Conflict(format!(
            "The free resubmission period of {} days has passed; a resubmission now costs {} RON: place a new order",
            l.resubmission_free_days,
            crate::billing::format_minor(l.resubmission_fee_ron_bani)
        )));
    }
    let mut tx = state.db.writer().begin().await?;
    let actor = format!("user:{}", user.id);
    if !orders::transition(&mut tx, &order.id, OrderEvent::Resubmit, &actor, "resubmitted", now).await? {
        return Err(LifecycleError::Conflict("the order changed meanwhile".into()));
    }
    let (id, url, expires) = new_session(&mut tx, state, &order, attempt + 1, now).await?;
    // The earlier data is copied for correction: the new session starts from it.
    sqlx::query("UPDATE identity_sessions SET document = $1, phone = $2 WHERE id = $3")
        .bind(last.try_get::<Option<String>, _>("document")?)
        .bind(last.try_get::<Option<String>, _>("phone")?)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    audit(
        &state.accounts(),
        &user.id,
        "identity.resubmit",
        "ok",
        client,
        json!({ "order": order.registration_number, "attempt": attempt + 1 }),
    )
    .await;
    Ok(json!({ "session_id": id, "url": url, "expires_at": rfc3339(expires), "attempt": attempt + 1 }))
}

#[cfg(test)]
mod tests {
    use super::valid_cnp;

    #[test]
    fn personal_numeric_codes_are_checked_by_their_control_digit() {
        assert!(valid_cnp("1800101221144"));
        assert!(!valid_cnp("1800101221145"));
        assert!(!valid_cnp("180010122114"));
    }
}
