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
use serde_json::json;
use sha2::{Digest, Sha256};

use super::LifecycleError;
use super::Services;
use crate::accounts::audit;
use crate::auth::tokens;
use crate::billing::orders::{self, OrderRow};
use crate::billing::{OrderEvent, OrderKind, OrderState};
use crate::clock::{rfc3339, Clock};
use crate::db::identity::{SessionEvent, SessionState};
use crate::db::users::{TotpStatus, User};
use crate::db::{self, DbError};
use crate::i18n::Text;
use crate::notify::Template;
use crate::text;

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
) -> Result<SessionReport, ProviderCallbackError> {
    let secret = callback_secret(state).await.map_err(LifecycleError::from)?;
    crate::billing::payment::verify(&secret, signature, body, state.clock.now())
        .map_err(|_| ProviderCallbackError::Unauthentic)?;
    let report: ProviderReport =
        serde_json::from_slice(body).map_err(|e| LifecycleError::Invalid(text!("error.identity.invalid_report", e)))?;
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
        .ok_or_else(|| {
            LifecycleError::Invalid(Text::new(format!(
                "error.identity.document_{}_required",
                name.replace(' ', "_")
            )))
        })
}

/// A calendar date `YYYY-MM-DD` as the Unix time of its start (UTC); `invalid` is the key of the refusal.
pub fn parse_date(s: &str, invalid: &'static str) -> Result<i64, LifecycleError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| LifecycleError::Invalid(crate::text!(invalid)))
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
            return Err(LifecycleError::Invalid(crate::text!(
                "error.identity.document_type_must_one",
                types = accepted.join(", ")
            )));
        }
        let country = field(&self.country, "country")?;
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(LifecycleError::Invalid(crate::text!(
                "error.identity.document_country_must_two_letter"
            )));
        }
        field(&self.number, "number")?;
        let expires = parse_date(
            field(&self.expires_on, "expiry date")?,
            "error.identity.document_expiry_date_must_date",
        )?;
        if expires + 86_400 <= on {
            return Err(LifecycleError::Invalid(crate::text!(
                "error.identity.identity_document_must_valid_on",
                date = date_of(on)
            )));
        }
        if let Some(issued) = self.issued_on.as_deref().filter(|s| !s.trim().is_empty()) {
            if parse_date(issued, "error.identity.document_issue_date_must_date")? > on {
                return Err(LifecycleError::Invalid(crate::text!(
                    "error.identity.document_issue_date_in_future"
                )));
            }
        }
        if let Some(cnp) = self.personal_number.as_deref().filter(|s| !s.trim().is_empty()) {
            if country.eq_ignore_ascii_case("RO") && !valid_cnp(cnp.trim()) {
                return Err(LifecycleError::Invalid(crate::text!(
                    "error.identity.personal_numeric_code_cnp_not"
                )));
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
    let until = db::identity::ban_end(&state.db, user_id).await?;
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
    let session = db::identity::NewSession {
        id: &id,
        order_id: &order.id,
        user_id: &order.user_id,
        attempt,
        link_hash: &hash,
        link_expires_at: expires,
    };
    db::identity::create(conn, &session, now).await?;
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
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))
}

/// A new identification link of an order.
#[derive(Debug, serde::Serialize)]
pub struct SessionLink {
    pub session_id: String,
    /// The provider's name.
    pub provider: String,
    pub url: String,
    pub expires_at: String,
    /// The order's registration number.
    pub order: String,
}

/// `POST /orders/{id}/identity-session`: a new identification link for a paid new or reissue order (or for one
/// returned for completion). Any earlier unfinished link of the order stops working.
pub async fn start(state: &Services, user: &User, order_id: &str, client: &str) -> Result<SessionLink, LifecycleError> {
    let order = user_order(state, user, order_id).await?;
    if provider(state).is_none() {
        return Err(LifecycleError::Conflict(text!("error.identity.no_provider")));
    }
    if order.kind == OrderKind::Rekey {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.rekey_not_identified_by_video"
        )));
    }
    if order.frozen {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.payment.order_on_hold_until_operator"
        )));
    }
    if let Some(until) = banned_until(state, &user.id).await? {
        return Err(LifecycleError::Forbidden(crate::text!(
            "error.identity.account_restricted_until",
            until = rfc3339(until)
        )));
    }
    if !matches!(order.state, OrderState::Paid | OrderState::ReturnedForCompletion) {
        return Err(LifecycleError::Conflict(
            crate::text!("error.identity.identification_can_start_once_order", state => crate::i18n::Text::state(order.state.as_str())),
        ));
    }
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let attempt = db::identity::last_attempt(&mut tx, &order.id).await?;
    db::identity::supersede_started(&mut tx, &order.id, now).await?;
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
    Ok(SessionLink {
        session_id: id,
        provider: provider_name(state),
        url,
        expires_at: rfc3339(expires),
        order: order.registration_number,
    })
}

/// The session behind a link, while the link is valid.
pub(super) async fn session_by_link(state: &Services, token: &str) -> Result<(String, OrderRow, User), LifecycleError> {
    let session = db::identity::by_link(&state.db, &tokens::hash(token))
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.identification_link_not_valid")))?;
    if session.state != SessionState::Started || session.link_expires_at <= state.clock.now() {
        return Err(LifecycleError::Gone(crate::text!(
            "error.identity.identification_link_was_used_or"
        )));
    }
    let order = orders::order_row(state.db.writer(), &session.order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))?;
    let user = db::users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_user")))?;
    Ok((session.id, order, user))
}

/// The sandbox provider exists only in development mode: otherwise its link is unknown.
fn sandbox_only(state: &Services) -> Result<(), LifecycleError> {
    if state.settings.dev {
        Ok(())
    } else {
        Err(LifecycleError::NotFound(crate::text!("error.http.no_such_route")))
    }
}

/// What the sandbox provider's page asks for.
#[derive(Debug, serde::Serialize)]
pub struct SandboxSession {
    pub provider: &'static str,
    pub session_id: String,
    /// The order's registration number.
    pub order: String,
    /// The accepted document types.
    pub documents: Vec<String>,
    /// The account's phone number.
    pub phone: String,
    pub consents: [&'static str; 4],
    pub outcomes: [&'static str; 2],
}

/// `GET /identity/sandbox/{token}`: what the session asks for (development mode only).
pub async fn sandbox_view(state: &Services, token: &str) -> Result<SandboxSession, LifecycleError> {
    sandbox_only(state)?;
    let (id, order, user) = session_by_link(state, token).await?;
    Ok(SandboxSession {
        provider: "sandbox",
        session_id: id,
        order: order.registration_number,
        documents: state.settings.lifecycle.identity_documents.clone(),
        phone: user.phone,
        consents: ["privacy_notice", "biometric", "captures", "recording"],
        outcomes: ["complete", "interrupt"],
    })
}

/// The order's state after a provider's report, and what the holder reads.
#[derive(Debug, serde::Serialize)]
pub struct SessionReport {
    pub state: OrderState,
    /// Whether the identity document is on another account (a completed session only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<bool>,
    pub message: &'static str,
}

/// `POST /identity/sandbox/{token}`: the sandbox provider's report of the session (development mode only).
pub async fn sandbox_report(
    state: &Services,
    token: &str,
    report: SandboxOutcome,
) -> Result<SessionReport, LifecycleError> {
    sandbox_only(state)?;
    report_session(state, token, SandboxProvider.name(), report).await
}

/// A provider's report of the session behind `token`.
async fn report_session(
    state: &Services,
    token: &str,
    provider: &str,
    report: SandboxOutcome,
) -> Result<SessionReport, LifecycleError> {
    let (session_id, order, user) = session_by_link(state, token).await?;
    let now = state.clock.now();
    let actor = format!("provider:{provider}");
    match report.outcome.as_deref() {
        Some("interrupt") => {
            let mut tx = state.db.writer().begin().await?;
            if !db::identity::interrupt(&mut tx, &session_id, "interrupted session", now).await? {
                return Err(LifecycleError::Gone(crate::text!(
                    "error.identity.identification_link_was_used_meanwhile"
                )));
            }
            let attempt = db::identity::attempt(&mut tx, &session_id).await?;
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
            Ok(SessionReport {
                state: OrderState::ReturnedForCompletion,
                flagged: None,
                message: "The session was interrupted: a new link was sent by e-mail",
            })
        }
        Some("complete") => complete(state, &session_id, &order, &user, report, now, &actor).await,
        _ => Err(LifecycleError::Invalid(crate::text!(
            "error.identity.outcome_must_complete_or_interrupt"
        ))),
    }
}

async fn complete(
    state: &Services,
    session_id: &str,
    order: &OrderRow,
    user: &User,
    report: SandboxOutcome,
    now: i64,
    actor: &str,
) -> Result<SessionReport, LifecycleError> {
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
        return Err(LifecycleError::Invalid(crate::text!(
            "error.identity.all_four_consents_required_privacy"
        )));
    }
    let doc = report
        .document
        .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.identity.document_data_required")))?;
    doc.validate(&state.settings.lifecycle.identity_documents, now)?;
    field(&doc.given_name, "given name")?;
    field(&doc.surname, "surname")?;
    let phone = match report.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => crate::accounts::normalise_phone(p)
            .map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?,
        None => user.phone.clone(),
    };
    let (doc_key, personal_key) = (doc.key(), doc.personal_key());
    let mut tx = state.db.writer().begin().await?;
    // The same document or personal numeric code in another person's identification.
    let others = db::identity::other_holders_of(&mut *tx, &user.id, &doc_key, personal_key.as_deref()).await?;
    let flagged = !others.is_empty();
    let consents_json = json!({
        "privacy_notice": true, "biometric": true, "captures": true, "recording": true, "at": rfc3339(now),
    });
    let document =
        serde_json::to_string(&doc).map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    let completed = db::identity::Completed {
        document: &document,
        document_key: &doc_key,
        personal_key: personal_key.as_deref(),
        consents: &consents_json.to_string(),
        phone: &phone,
        flagged,
    };
    if !db::identity::complete(&mut tx, session_id, &completed, now).await? {
        return Err(LifecycleError::Gone(crate::text!(
            "error.identity.identification_link_was_used_meanwhile"
        )));
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
    Ok(SessionReport {
        state: OrderState::UnderReview,
        flagged: Some(flagged),
        message: if flagged {
            "The identification stopped: the identity document is already used on another account. An operator will decide."
        } else {
            "Thank you. An operator will review the identification within 24 hours."
        },
    })
}

/// Freezes a user's pending orders and tells the holder (product rules §10).
async fn freeze_pending(
    conn: &mut sqlx::AnyConnection,
    state: &Services,
    user_id: &str,
    now: i64,
) -> Result<(), DbError> {
    let pending = db::orders::pending_of_user(conn, user_id, None, true).await?;
    let Some(user) = db::users::by_id(&state.db, user_id).await? else {
        return Ok(());
    };
    for (id, number) in &pending {
        db::orders::freeze(conn, id, now).await?;
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

/// The operators' queue of identification sessions.
#[derive(Debug, serde::Serialize)]
pub struct SessionQueue {
    pub sessions: Vec<QueuedSession>,
}

/// A session in the operators' queue, with its order and holder.
#[derive(Debug, serde::Serialize)]
pub struct QueuedSession {
    pub id: String,
    pub order_id: String,
    /// The order's registration number.
    pub order: String,
    pub kind: String,
    pub state: SessionState,
    pub attempt: i64,
    pub flagged: bool,
    pub holder: SessionHolder,
    /// The phone number reported with the session.
    pub session_phone: Option<String>,
    pub document: Option<Document>,
    pub reason: Option<String>,
    pub submitted_at: Option<String>,
}

/// The holder of a queued session.
#[derive(Debug, serde::Serialize)]
pub struct SessionHolder {
    pub email: String,
    pub name: String,
    pub account_phone: String,
}

/// The operator's queue: sessions under review (flagged ones first), or in `state_filter`.
pub async fn queue(
    state: &Services,
    state_filter: Option<&str>,
    flagged_only: bool,
) -> Result<SessionQueue, LifecycleError> {
    let wanted = match state_filter {
        None => SessionState::UnderReview,
        Some(name) => SessionState::parse(name)
            .ok_or_else(|| LifecycleError::Invalid(text!("error.identity.unknown_state", name)))?,
    };
    let mut out = Vec::new();
    for r in db::identity::queue(&state.db, wanted, flagged_only).await? {
        let document = r.document.as_deref().and_then(|d| serde_json::from_str(d).ok());
        out.push(QueuedSession {
            id: r.id,
            order_id: r.order_id,
            order: r.registration_number,
            kind: r.kind,
            state: r.state,
            attempt: r.attempt,
            flagged: r.flagged,
            holder: SessionHolder {
                email: r.email,
                name: format!("{} {}", r.given_name, r.surname),
                account_phone: r.account_phone,
            },
            session_phone: r.session_phone,
            document,
            reason: r.reason,
            submitted_at: r.submitted_at.map(rfc3339),
        });
    }
    Ok(SessionQueue { sessions: out })
}

/// An operator's decision on an identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Return,
    Reject,
}

impl Decision {
    /// `accept`, `return` or `reject`.
    pub fn parse(text: &str) -> Option<Decision> {
        match text {
            "accept" => Some(Decision::Accept),
            "return" => Some(Decision::Return),
            "reject" => Some(Decision::Reject),
            _ => None,
        }
    }
}

/// An operator's verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    /// Required to return or reject: the holder reads it.
    pub reason: Option<String>,
    /// Fake or forged data, or another's identity (only with `reject`).
    #[serde(default)]
    pub fake: bool,
}

/// A session under review and who and what it is about.
struct Review {
    session_id: String,
    order: OrderRow,
    user: User,
    attempt: i64,
    document: Document,
    phone: Option<String>,
}

async fn under_review(conn: &mut sqlx::AnyConnection, state: &Services, id: &str) -> Result<Review, LifecycleError> {
    let r = db::identity::for_review(&mut *conn, id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_identification_session")))?;
    if r.state != SessionState::UnderReview {
        return Err(LifecycleError::Conflict(
            crate::text!("error.identity.session_not_under_review", state => crate::i18n::Text::state(r.state.as_str())),
        ));
    }
    let order = orders::order_row(&mut *conn, &r.order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))?;
    let user = db::users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_user")))?;
    let document: Document = r
        .document
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(|| LifecycleError::Conflict(crate::text!("error.identity.session_has_no_document_data")))?;
    Ok(Review {
        session_id: id.to_owned(),
        order,
        user,
        attempt: r.attempt,
        document,
        phone: r.phone,
    })
}

/// A verdict carried out: the order's state after it.
#[derive(Debug, serde::Serialize)]
pub struct Decided {
    pub session_id: String,
    /// The order's registration number.
    pub order: String,
    pub order_state: OrderState,
}

/// The operator decides on a session under review. Operators never identify for a holder: the verdict is
/// recorded with the operator's identity and audited. Returns the order's state after the verdict.
pub async fn decide(state: &Services, session_id: &str, v: Verdict, operator: &str) -> Result<Decided, LifecycleError> {
    let now = state.clock.now();
    let actor = format!("operator:{operator}");
    let reason = v.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let mut tx = state.db.writer().begin().await?;
    // Any verdict on a session decides a duplicate it raised: the orders put on hold for it go on (those of a
    // holder found to use fake data are cancelled below). Written first, so that on SQLite the transaction holds
    // the write lock before it reads (a read first could not become a write once another process wrote: an
    // operator's command beside the server).
    db::identity::release_holds_raised_by(&mut tx, session_id).await?;
    let review = under_review(&mut tx, state, session_id).await?;
    let event = match v.decision {
        Decision::Accept => SessionEvent::Accept,
        Decision::Return => SessionEvent::Return,
        Decision::Reject => SessionEvent::Reject,
    };
    if event != SessionEvent::Accept && reason.is_none() {
        return Err(LifecycleError::Invalid(crate::text!("error.identity.reason_required")));
    }
    if !db::identity::decide(&mut tx, session_id, event, reason, &actor, now).await? {
        return Err(LifecycleError::Conflict(text!("error.identity.session_changed")));
    }
    let judged = Judged {
        state,
        review: &review,
        actor: &actor,
        reason: reason.unwrap_or_default(),
        now,
    };
    let outcome = match v.decision {
        Decision::Accept => judged.accept(&mut tx).await?,
        Decision::Return => judged.return_for_completion(&mut tx).await?,
        Decision::Reject if v.fake => judged.reject_fake(&mut tx).await?,
        Decision::Reject => judged.reject(&mut tx).await?,
    };
    tx.commit().await?;
    let number = &review.order.registration_number;
    audit(
        &state.accounts(),
        &review.user.id,
        "identity.verdict",
        outcome.as_str(),
        &actor,
        json!({ "order": number, "session": session_id, "fake": v.fake, "reason": reason }),
    )
    .await;
    Ok(Decided {
        session_id: session_id.to_owned(),
        order: number.clone(),
        order_state: outcome,
    })
}

/// A verdict being carried out on the order, the holder's identity and their messages, in the verdict's
/// transaction.
struct Judged<'a> {
    state: &'a Services,
    review: &'a Review,
    actor: &'a str,
    /// The operator's reason (empty for an acceptance without one).
    reason: &'a str,
    now: i64,
}

impl Judged<'_> {
    async fn tell(&self, conn: &mut sqlx::AnyConnection, t: Template<'_>, kind: &str) -> Result<(), DbError> {
        let s = self.state;
        crate::notify::tell(conn, s.clock.as_ref(), s.ca.public_base(), &self.review.user, t, kind).await
    }

    /// The identity is recorded for the certificate; a holder without an authenticator is asked to set it up.
    async fn accept(&self, tx: &mut sqlx::AnyConnection) -> Result<OrderState, LifecycleError> {
        let (r, now) = (self.review, self.now);
        if !orders::transition(
            tx,
            &r.order.id,
            OrderEvent::Accept,
            self.actor,
            "identity accepted",
            now,
        )
        .await?
        {
            return Err(LifecycleError::Conflict(crate::text!(
                "error.identity.order_no_longer_under_review"
            )));
        }
        let doc = &r.document;
        let document =
            serde_json::to_string(doc).map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
        let country = doc.country.clone().unwrap_or_default().trim().to_uppercase();
        let identity = db::identity::Identity {
            user_id: &r.user.id,
            given_name: doc.given_name.as_deref().unwrap_or_default().trim(),
            surname: doc.surname.as_deref().unwrap_or_default().trim(),
            personal_number: doc.personal_number.as_deref().map(str::trim),
            country: &country,
            document: &document,
            phone: r.phone.as_deref(),
            session_id: &r.session_id,
        };
        db::identity::record_identity(tx, &identity, now).await?;
        let base = self.state.ca.public_base();
        let link = format!("{base}/login");
        let accepted = Template::IdentityAccepted {
            order: &r.order.registration_number,
            link: &link,
        };
        self.tell(tx, accepted, "identity_accepted").await?;
        let paired = db::users::totp(&self.state.db, &r.user.id).await?;
        if paired.is_none_or(|p| p.status != TotpStatus::Active) {
            let link = format!("{base}/pairing");
            let configure = Template::ConfigureAuthorisation { link: &link };
            self.tell(tx, configure, "configure_authorisation").await?;
        }
        Ok(OrderState::Accepted)
    }

    /// A new session of the same order, whose link the holder receives with the reason.
    async fn return_for_completion(&self, tx: &mut sqlx::AnyConnection) -> Result<OrderState, LifecycleError> {
        let (r, now) = (self.review, self.now);
        orders::transition(tx, &r.order.id, OrderEvent::Return, self.actor, self.reason, now).await?;
        let (_, url, _) = new_session(tx, self.state, &r.order, r.attempt, now).await?;
        let returned = Template::IdentityReturned {
            order: &r.order.registration_number,
            reason: self.reason,
            link: &url,
            hours: self.state.settings.lifecycle.identity_link_hours,
        };
        self.tell(tx, returned, "identity_returned").await?;
        Ok(OrderState::ReturnedForCompletion)
    }

    /// Fake or forged data: every unfinished identification of the holder is rejected, every other pending order
    /// cancelled without a refund, and the holder banned (§2, §10).
    async fn reject_fake(&self, tx: &mut sqlx::AnyConnection) -> Result<OrderState, LifecycleError> {
        let (r, now, reason) = (self.review, self.now, self.reason);
        db::identity::mark_fake(tx, &r.session_id).await?;
        db::identity::reject_unfinished_of(tx, &r.user.id, reason, now).await?;
        orders::transition(tx, &r.order.id, OrderEvent::Reject, self.actor, reason, now).await?;
        for (id, _) in db::orders::pending_of_user(tx, &r.user.id, Some(&r.order.id), false).await? {
            let note = "cancelled: fake identity data";
            orders::transition(tx, &id, OrderEvent::Void, self.actor, note, now).await?;
        }
        let until = now + self.state.settings.lifecycle.ban_days * 86_400;
        db::identity::ban(tx, &r.user.id, until, reason, now).await?;
        let until = rfc3339(until);
        self.tell(tx, Template::Banned { reason, until: &until }, "banned")
            .await?;
        Ok(OrderState::Rejected)
    }

    /// A negative verdict: the holder may resubmit within the limits, or the order is refunded.
    async fn reject(&self, tx: &mut sqlx::AnyConnection) -> Result<OrderState, LifecycleError> {
        let (r, now, reason) = (self.review, self.now, self.reason);
        let l = &self.state.settings.lifecycle;
        let can_resubmit = r.attempt < l.resubmissions_allowed;
        let rejected = Template::IdentityRejected {
            order: &r.order.registration_number,
            reason,
            resubmit_days: l.resubmission_free_days,
            can_resubmit,
        };
        self.tell(tx, rejected, "identity_rejected").await?;
        orders::transition(tx, &r.order.id, OrderEvent::Reject, self.actor, reason, now).await?;
        if can_resubmit {
            return Ok(OrderState::Rejected);
        }
        let (order, user) = (&r.order, &r.user);
        super::scheduler::refund_in(tx, self.state, order, user, "final rejection", self.actor, now).await?;
        Ok(OrderState::Refunded)
    }
}

/// The new session of a resubmitted identification.
#[derive(Debug, serde::Serialize)]
pub struct Resubmitted {
    pub session_id: String,
    pub url: String,
    pub expires_at: String,
    pub attempt: i64,
}

/// `POST /orders/{id}/resubmit`: a rejected identification is copied into a new session of the same order, with
/// no new payment, within the configured limits.
pub async fn resubmit(
    state: &Services,
    user: &User,
    order_id: &str,
    client: &str,
) -> Result<Resubmitted, LifecycleError> {
    let order = user_order(state, user, order_id).await?;
    if let Some(until) = banned_until(state, &user.id).await? {
        return Err(LifecycleError::Forbidden(crate::text!(
            "error.identity.account_restricted_until",
            until = rfc3339(until)
        )));
    }
    if order.state != OrderState::Rejected || order.kind == OrderKind::Rekey {
        return Err(LifecycleError::Conflict(
            crate::text!("error.identity.only_rejected_identification_can_resubmitted", state => crate::i18n::Text::state(order.state.as_str())),
        ));
    }
    let last = db::identity::last_rejected(&state.db, &order.id)
        .await?
        .ok_or_else(|| LifecycleError::Conflict(crate::text!("error.identity.order_has_no_rejected_identification")))?;
    let l = &state.settings.lifecycle;
    if last.fake {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.identification_rejected_for_fake_or"
        )));
    }
    let attempt = last.attempt;
    if attempt >= l.resubmissions_allowed {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.resubmitted_identification_that_was_rejected"
        )));
    }
    let now = state.clock.now();
    let decided = last.decided_at.unwrap_or(now);
    if now > decided + l.resubmission_free_days * 86_400 && l.resubmission_fee_ron_bani > 0 {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.free_resubmission_period_days_has",
            resubmission_free_days = l.resubmission_free_days,
            price = crate::billing::format_minor(l.resubmission_fee_ron_bani)
        )));
    }
    let mut tx = state.db.writer().begin().await?;
    let actor = format!("user:{}", user.id);
    if !orders::transition(&mut tx, &order.id, OrderEvent::Resubmit, &actor, "resubmitted", now).await? {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.order_changed_meanwhile"
        )));
    }
    let (id, url, expires) = new_session(&mut tx, state, &order, attempt + 1, now).await?;
    // The earlier data is copied for correction: the new session starts from it.
    db::identity::prefill(&mut tx, &id, last.document.as_deref(), last.phone.as_deref()).await?;
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
    Ok(Resubmitted {
        session_id: id,
        url,
        expires_at: rfc3339(expires),
        attempt: attempt + 1,
    })
}

/// `POST /operator/users/{id}/identity`: an operator corrects a holder's identity data, with a reason. Blank or
/// absent fields keep their value; `document`'s fields replace the recorded document's one by one.
#[derive(Debug, Deserialize)]
pub struct Correction {
    pub reason: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub document: Option<Document>,
}

/// What a correction did. It applies to the holder's future certificates: an issued certificate keeps the data it
/// was signed with (a certificate whose data became wrong is revoked with `affiliation_changed` and reissued).
#[derive(Debug, serde::Serialize)]
pub struct Corrected {
    pub user_id: String,
    /// The fields that changed (`given_name`, `surname`, `document.number`, …).
    pub changed: Vec<String>,
    /// Always `future_certificates`.
    pub applies_to: &'static str,
    /// The serials of the holder's valid certificates, which keep their data.
    pub issued_certificates_unchanged: Vec<String>,
}

/// The longest reason an operator may give for a correction.
const CORRECTION_REASON_MAX: usize = 500;

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// Overwrites `to`'s fields with `from`'s non-blank ones; returns the names of the fields that changed.
fn merge_document(to: &mut Document, from: &Document) -> Vec<String> {
    let mut changed = Vec::new();
    let mut set = |name: &str, to: &mut Option<String>, from: &Option<String>| {
        if !blank(from) {
            let v = from.as_deref().map(|s| s.trim().to_owned());
            if v.as_deref() != to.as_deref().map(str::trim) {
                changed.push(format!("document.{name}"));
                *to = v;
            }
        }
    };
    set("type", &mut to.doc_type, &from.doc_type);
    set("country", &mut to.country, &from.country);
    set("series", &mut to.series, &from.series);
    set("number", &mut to.number, &from.number);
    set("issued_on", &mut to.issued_on, &from.issued_on);
    set("expires_on", &mut to.expires_on, &from.expires_on);
    set("issuer", &mut to.issuer, &from.issuer);
    set("personal_number", &mut to.personal_number, &from.personal_number);
    changed
}

/// An operator corrects a holder's identity data (product rules §6: identity data via an operator): the names on
/// the account and on the accepted identity, and the recorded document's data, checked as at identification (a
/// document or personal numeric code on another account is refused). The correction, with the data before and
/// after, is audited and the holder is told by e-mail in the same transaction. It applies to future
/// certificates only ([`Corrected`]).
pub async fn correct(
    state: &Services,
    user_id: &str,
    req: Correction,
    operator: &User,
    client: &str,
) -> Result<Corrected, LifecycleError> {
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if reason.is_empty() || reason.chars().count() > CORRECTION_REASON_MAX {
        return Err(LifecycleError::Invalid(text!(
            "error.identity.correction_reason_required",
            max = CORRECTION_REASON_MAX
        )));
    }
    let holder = db::users::by_id(&state.db, user_id)
        .await?
        .filter(|u| u.role == db::users::Role::Holder && u.status != db::users::UserStatus::Erased)
        .ok_or_else(|| LifecycleError::NotFound(text!("error.identity.no_such_user")))?;
    let recorded = db::identity::identity_of(&state.db, &holder.id).await?;
    let name = |v: &Option<String>, old: &str, key: &str| -> Result<String, LifecycleError> {
        if blank(v) {
            return Ok(old.to_owned());
        }
        let v = v.as_deref().unwrap_or_default().trim().to_owned();
        if v.chars().count() > 100 {
            return Err(LifecycleError::Invalid(Text::new(format!(
                "error.identity.document_{key}_required"
            ))));
        }
        Ok(v)
    };
    let (old_given, old_surname) = match &recorded {
        Some(r) => (r.given_name.clone(), r.surname.clone()),
        None => (holder.given_name.clone(), holder.surname.clone()),
    };
    let given_name = name(&req.given_name, &old_given, "given_name")?;
    let surname = name(&req.surname, &old_surname, "surname")?;
    let mut changed = Vec::new();
    if given_name != old_given || given_name != holder.given_name {
        changed.push("given_name".to_owned());
    }
    if surname != old_surname || surname != holder.surname {
        changed.push("surname".to_owned());
    }
    let before_doc: Option<Document> = recorded.as_ref().and_then(|r| serde_json::from_str(&r.document).ok());
    let mut doc = before_doc.clone();
    if let Some(new) = &req.document {
        let Some(doc) = doc.as_mut() else {
            return Err(LifecycleError::Conflict(text!("error.identity.no_identity_to_correct")));
        };
        changed.extend(merge_document(doc, new));
    }
    if changed.is_empty() {
        return Err(LifecycleError::Invalid(text!(
            "error.identity.correction_changes_nothing"
        )));
    }
    let now = state.clock.now();
    if let Some(doc) = doc.as_mut() {
        doc.given_name = Some(given_name.clone());
        doc.surname = Some(surname.clone());
        if changed.iter().any(|c| c.starts_with("document.")) {
            doc.validate(&state.settings.lifecycle.identity_documents, now)?;
            let others = db::identity::other_holders_of(
                state.db.writer(),
                &holder.id,
                &doc.key(),
                doc.personal_key().as_deref(),
            )
            .await?;
            if !others.is_empty() {
                return Err(LifecycleError::Conflict(text!(
                    "error.institutional.identity_document_already_used_on"
                )));
            }
        }
    }
    let issued: Vec<String> = db::credentials::with_certificate_status(&state.db, &holder.id)
        .await?
        .into_iter()
        .filter(|(_, _, status)| *status == db::credentials::CertificateStatus::Valid)
        .map(|(_, serial, _)| serial)
        .collect();
    let before = json!({
        "given_name": old_given,
        "surname": old_surname,
        "account_name": format!("{} {}", holder.given_name, holder.surname),
        "document": before_doc,
    });
    let after = json!({ "given_name": given_name, "surname": surname, "document": doc });
    let actor = format!("operator:{}", operator.id);
    let fields = changed.join(", ");
    let mut tx = state.db.writer().begin().await?;
    db::identity::apply_to_account(&mut tx, &holder.id, &given_name, &surname, None).await?;
    if let (Some(_), Some(doc)) = (&recorded, &doc) {
        let doc_json =
            serde_json::to_string(doc).map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
        let personal = doc.personal_number.as_deref().map(str::trim).filter(|p| !p.is_empty());
        db::identity::correct_identity(&mut tx, &holder.id, &given_name, &surname, personal, &doc_json).await?;
    }
    let event = crate::audit::Event {
        actor: &actor,
        action: "identity.correct",
        target: &holder.id,
        outcome: "ok",
        client,
        details: json!({
            "reason": reason,
            "changed": changed,
            "before": before,
            "after": after,
            "applies_to": "future_certificates",
            "issued_certificates_unchanged": issued,
        }),
    };
    db::audit::insert(&mut *tx, &crate::audit::row(state.clock.as_ref(), &event)).await?;
    let told = Template::IdentityCorrected {
        fields: &fields,
        reason: &reason,
        certificates: issued.len() as i64,
    };
    crate::notify::tell(
        &mut tx,
        state.clock.as_ref(),
        state.ca.public_base(),
        &holder,
        told,
        "identity_corrected",
    )
    .await?;
    tx.commit().await?;
    Ok(Corrected {
        user_id: holder.id,
        changed,
        applies_to: "future_certificates",
        issued_certificates_unchanged: issued,
    })
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
