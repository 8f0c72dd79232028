//! Rekey (product rules §5): a new key pair and certificate while the current one is valid.
//!
//! A paid rekey order → `POST /me/rekey` (privacy notice acknowledged) → the identity document data, valid on the
//! successor's issue date, and a copy of the document (≤ 3 MB; pdf, jpg, png, bmp, tif) → the terms signed with a
//! TOTP code → an operator approves or rejects with a reason. A rejected request is corrected and submitted again,
//! without paying again, until the limit (72 hours before expiry, to the hour). Approved → the scheduler issues
//! the successor with a new key pair `successor_lead_days` before the current expiry (at once when approved later),
//! valid from then; the old credential stops signing and its key is destroyed. A rekey that is paid but no longer
//! possible is refunded by the scheduler.

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::identity::{date_of, Document};
use super::LifecycleError;
use super::Services;
use crate::accounts::audit;
use crate::auth::totp;
use crate::billing::orders::{self, OrderRow};
use crate::billing::{OrderEvent, OrderKind, OrderState};
use crate::clock::{rfc3339, Clock};
use crate::db::credentials::{CertificateRow, CertificateStatus, Credential};
use crate::db::rekey::{RekeyState, Request};
use crate::db::users::User;
use crate::db::{self, DbError};
use crate::notify::Template;
use crate::text;

/// The user's credential that is active with a certificate valid now.
pub async fn current_credential(
    state: &Services,
    user_id: &str,
) -> Result<Option<(Credential, CertificateRow)>, DbError> {
    db::credentials::current(&state.db, user_id, state.clock.now()).await
}

/// The last moment a rekey request is accepted for a certificate ending at `not_after`.
pub fn deadline(state: &Services, not_after: i64) -> i64 {
    not_after - state.settings.lifecycle.rekey_cutoff_hours * 3600
}

/// When the successor of a certificate ending at `not_after` is issued.
pub fn successor_issue_at(state: &Services, not_after: i64) -> i64 {
    not_after - state.settings.lifecycle.successor_lead_days * 86_400
}

/// Whether the user may place an order of `kind`; for a rekey, the credential it renews.
pub async fn eligibility(state: &Services, user: &User, kind: OrderKind) -> Result<Option<String>, LifecycleError> {
    if let Some(until) = super::identity::banned_until(state, &user.id).await? {
        return Err(LifecycleError::Forbidden(crate::text!(
            "error.eligibility.account_cannot_place_orders_until",
            until = rfc3339(until)
        )));
    }
    if db::orders::in_progress_of_kind(&state.db, &user.id, kind).await? > 0 {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.eligibility.already_have_paid_order_in",
            kind
        )));
    }
    let current = current_credential(state, &user.id).await?;
    let had_any = !db::credentials::credentials_of(&state.db, &user.id).await?.is_empty();
    match kind {
        OrderKind::Rekey => {
            let (cred, cert) = current.ok_or_else(|| {
                LifecycleError::Conflict(crate::text!("error.eligibility.rekey_needs_valid_certificate_after"))
            })?;
            if state.clock.now() > deadline(state, cert.not_after) {
                return Err(LifecycleError::Conflict(crate::text!(
                    "error.eligibility.rekey_possible_until_hours_before",
                    rekey_cutoff_hours = state.settings.lifecycle.rekey_cutoff_hours,
                    deadline = rfc3339(deadline(state, cert.not_after))
                )));
            }
            Ok(Some(cred.id))
        }
        OrderKind::Reissue if current.is_some() => Err(LifecycleError::Conflict(crate::text!(
            "error.eligibility.certificate_still_valid_order_rekey"
        ))),
        OrderKind::Reissue if !had_any => Err(LifecycleError::Conflict(crate::text!(
            "error.eligibility.have_had_no_certificate_yet"
        ))),
        OrderKind::New if had_any => Err(LifecycleError::Conflict(if current.is_some() {
            crate::text!("error.eligibility.already_have_certificate_order_rekey")
        } else {
            crate::text!("error.eligibility.certificate_has_ended_order_reissue")
        })),
        _ => Ok(None),
    }
}

/// `POST /me/rekey`.
#[derive(Debug, Deserialize)]
pub struct StartRequest {
    pub order_id: Option<String>,
    /// The privacy notice was read (each rekey asks again).
    pub privacy_notice: Option<bool>,
}

/// Places a holder's order (product rules §2): billing's checks, then whether the holder may order this kind now
/// ([`eligibility`]), then the order itself, priced and awaiting payment.
pub async fn place_order(
    state: &Services,
    user: &User,
    req: orders::OrderRequest,
    client: &str,
) -> Result<orders::OrderView, orders::OrderError> {
    let billing = state.billing();
    let draft = orders::check(&billing, req)?;
    let renews = eligibility(state, user, draft.kind()).await?;
    orders::place(&billing, user, draft, renews, client).await
}

async fn rekey_order(state: &Services, user: &User, order_id: &str) -> Result<OrderRow, LifecycleError> {
    orders::order_row(state.db.writer(), order_id)
        .await?
        .filter(|o| o.user_id == user.id && o.kind == OrderKind::Rekey)
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.rekey.no_such_rekey_order")))
}

/// Starts (or returns) the rekey request of a paid rekey order.
pub async fn start(
    state: &Services,
    user: &User,
    req: StartRequest,
    client: &str,
) -> Result<RequestView, LifecycleError> {
    let order_id = req
        .order_id
        .as_deref()
        .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.issuance.order_id_required")))?;
    let order = rekey_order(state, user, order_id).await?;
    if req.privacy_notice != Some(true) {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.rekey.please_read_privacy_notice_first"
        )));
    }
    if let Some(existing) = db::rekey::of_order(&state.db, &order.id).await? {
        return view(state, user, &existing).await;
    }
    if order.state != OrderState::Paid {
        return Err(LifecycleError::Conflict(
            crate::text!("error.rekey.rekey_request_starts_once_order", state => crate::i18n::Text::state(order.state.as_str())),
        ));
    }
    let credential_id = order
        .credential_id
        .clone()
        .ok_or_else(|| LifecycleError::Conflict(crate::text!("error.rekey.order_names_no_certificate_renew")))?;
    let now = state.clock.now();
    let id = uuid::Uuid::now_v7().to_string();
    match db::rekey::create(&state.db, &id, &order.id, &user.id, &credential_id, now).await {
        Err(e) if DbError::is_unique_violation(&e) => {}
        Err(e) => return Err(DbError::from(e).into()),
        Ok(_) => {
            audit(
                &state.accounts(),
                &user.id,
                "rekey.start",
                "ok",
                client,
                json!({ "order": order.registration_number }),
            )
            .await
        }
    }
    let id = db::rekey::of_order(&state.db, &order.id).await?.unwrap_or(id);
    view(state, user, &id).await
}

/// A request by id; with `user_id`, only that holder's.
async fn request_row(state: &Services, user_id: Option<&str>, id: &str) -> Result<Request, LifecycleError> {
    db::rekey::get(&state.db, id)
        .await?
        .filter(|r| user_id.is_none_or(|u| r.user_id == u))
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.rekey.no_such_rekey_request")))
}

/// A rekey request as the holder sees it.
#[derive(Debug, serde::Serialize)]
pub struct RequestView {
    pub id: String,
    pub order_id: String,
    pub credential_id: String,
    pub state: RekeyState,
    /// Whether both the identity document's data and its copy were received.
    pub document_received: bool,
    /// The operator's reason of a rejection.
    pub reason: Option<String>,
    /// The last moment the request is accepted.
    pub deadline: String,
    pub successor_issue_at: String,
}

/// A rekey request as the holder sees it.
pub async fn view(state: &Services, user: &User, id: &str) -> Result<RequestView, LifecycleError> {
    let r = request_row(state, Some(&user.id), id).await?;
    let cert = cert_of(state, &r.credential_id).await?;
    Ok(RequestView {
        id: r.id,
        order_id: r.order_id,
        credential_id: r.credential_id,
        state: r.state,
        document_received: r.has_document,
        reason: r.reason,
        deadline: rfc3339(deadline(state, cert.not_after)),
        successor_issue_at: rfc3339(r.issue_at.unwrap_or_else(|| successor_issue_at(state, cert.not_after))),
    })
}

/// Where the holder is in the rekey wizard (`/rekey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RekeyStep {
    /// No rekey order: the privacy notice, then the order.
    Notice,
    /// The order awaits payment.
    Pay,
    /// The order is paid and its request not started.
    Start,
    /// The order has no request and can no longer have one.
    Closed,
    /// The request awaits the identity document.
    Document,
    /// The document was received: the terms are signed next.
    Terms,
    /// An operator rejected the request: it is corrected and sent again.
    Rejected,
    /// The request was sent: its state.
    Status,
}

impl RekeyStep {
    /// The step of a rekey order in state `order` (`None`: no order) whose request is `request`, if started.
    pub fn of(order: Option<OrderState>, request: Option<&RequestView>) -> RekeyStep {
        match (order, request) {
            (None, _) => RekeyStep::Notice,
            (Some(OrderState::AwaitingPayment), None) => RekeyStep::Pay,
            (Some(OrderState::Paid), None) => RekeyStep::Start,
            (Some(_), None) => RekeyStep::Closed,
            (Some(_), Some(r)) => match r.state {
                RekeyState::Draft if r.document_received => RekeyStep::Terms,
                RekeyState::Draft => RekeyStep::Document,
                RekeyState::Rejected => RekeyStep::Rejected,
                _ => RekeyStep::Status,
            },
        }
    }
}

async fn cert_of(state: &Services, credential_id: &str) -> Result<CertificateRow, LifecycleError> {
    let cred = db::credentials::credential(&state.db, credential_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.account.no_such_credential")))?;
    db::credentials::certificate(&state.db, &cred.cert_serial)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.rekey.no_such_certificate")))
}

/// The identity document of the holder's accepted identification (the data a rekey starts from), if any.
pub async fn document_on_file(state: &Services, user_id: &str) -> Result<Option<Document>, DbError> {
    Ok(db::identity::identity_of(&state.db, user_id)
        .await?
        .and_then(|i| serde_json::from_str(&i.document).ok()))
}

/// The kind of an identity-document copy, from its first bytes (the name and the declared type are not trusted).
pub fn photo_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [b'%', b'P', b'D', b'F', b'-', ..] => Some("application/pdf"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [b'B', b'M', ..] => Some("image/bmp"),
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => Some("image/tiff"),
        _ => None,
    }
}

/// `POST /me/rekey/{id}/identity`: the document data (valid on the successor's issue date) and its copy.
pub async fn identity(
    state: &Services,
    user: &User,
    id: &str,
    document: Document,
    photo: Vec<u8>,
    client: &str,
) -> Result<RequestView, LifecycleError> {
    let r = request_row(state, Some(&user.id), id).await?;
    if !r.state.is_editable() {
        return Err(LifecycleError::Conflict(
            crate::text!("error.rekey.request_data_can_no_longer", state => crate::i18n::Text::state(r.state.as_str())),
        ));
    }
    let cert = cert_of(state, &r.credential_id).await?;
    let now = state.clock.now();
    let issue_on = successor_issue_at(state, cert.not_after).max(now);
    document.validate(&state.settings.lifecycle.identity_documents, issue_on)?;
    if photo.is_empty() {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.rekey.copy_identity_document_required_photo"
        )));
    }
    let max = state.settings.lifecycle.photo_max_bytes;
    if photo.len() > max {
        return Err(LifecycleError::TooLarge(crate::text!(
            "error.rekey.copy_document_larger_than_mb",
            mb = max / (1024 * 1024)
        )));
    }
    let kind =
        photo_type(&photo).ok_or_else(|| LifecycleError::Invalid(crate::text!("error.rekey.copy_must_pdf_jpg_png")))?;
    let digest = hex::encode(Sha256::digest(&photo));
    let data = serde_json::to_string(&document)
        .map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    let stored = db::rekey::Document {
        data: &data,
        photo_b64: &db::b64(&photo),
        photo_type: kind,
        photo_sha256: &digest,
    };
    if !db::rekey::set_document(&state.db, id, &stored, now).await? {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.rekey.request_changed_meanwhile"
        )));
    }
    audit(
        &state.accounts(),
        &user.id,
        "rekey.identity",
        "ok",
        client,
        json!({ "request": id, "photo_sha256": digest, "photo_type": kind }),
    )
    .await;
    view(state, user, id).await
}

/// `POST /me/rekey/{id}/submit`.
#[derive(Debug, Deserialize)]
pub struct SubmitRequest {
    pub terms_accepted: Option<bool>,
    pub totp: Option<String>,
}

/// A request just sent for approval, and what the holder reads.
#[derive(Debug, serde::Serialize)]
pub struct Submitted {
    #[serde(flatten)]
    pub request: RequestView,
    pub message: &'static str,
}

/// Signs the terms with a TOTP code and sends the request for approval, until the limit before expiry.
pub async fn submit(
    state: &Services,
    user: &User,
    id: &str,
    req: SubmitRequest,
    client: &str,
) -> Result<Submitted, LifecycleError> {
    let r = request_row(state, Some(&user.id), id).await?;
    if !r.state.is_editable() {
        return Err(LifecycleError::Conflict(
            crate::text!("error.rekey.request_already", state => crate::i18n::Text::state(r.state.as_str())),
        ));
    }
    if !r.has_document {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.rekey.send_identity_document_data_and"
        )));
    }
    if req.terms_accepted != Some(true) {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.rekey.please_accept_terms_terms_accepted"
        )));
    }
    let cert = cert_of(state, &r.credential_id).await?;
    let limit = deadline(state, cert.not_after);
    if state.clock.now() > limit || cert.status != CertificateStatus::Valid {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.rekey.rekey_request_accepted_until_hours",
            rekey_cutoff_hours = state.settings.lifecycle.rekey_cutoff_hours,
            deadline = rfc3339(limit)
        )));
    }
    totp::check_code(
        &state.db,
        &state.hsm,
        &state.settings.auth,
        state.clock.as_ref(),
        &user.id,
        req.totp.as_deref(),
        client,
    )
    .await?;
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let sent = db::rekey::submit(&mut tx, id, now).await?;
    let actor = format!("user:{}", user.id);
    if !sent
        || !orders::transition(
            &mut tx,
            &r.order_id,
            OrderEvent::RekeyRequested,
            &actor,
            "rekey request sent for approval",
            now,
        )
        .await?
    {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.rekey.request_changed_meanwhile"
        )));
    }
    tx.commit().await?;
    audit(
        &state.accounts(),
        &user.id,
        "rekey.submit",
        "ok",
        client,
        json!({ "request": id }),
    )
    .await;
    Ok(Submitted {
        request: view(state, user, id).await?,
        message: "The request was sent for approval.",
    })
}

/// The operators' queue of rekey requests.
#[derive(Debug, serde::Serialize)]
pub struct RequestQueue {
    pub requests: Vec<QueuedRequest>,
}

/// A rekey request in the operators' queue, with its order and holder.
#[derive(Debug, serde::Serialize)]
pub struct QueuedRequest {
    pub id: String,
    /// The order's registration number.
    pub order: String,
    pub credential_id: String,
    pub state: RekeyState,
    pub holder: RequestHolder,
    pub document: Option<Document>,
    pub photo_type: Option<String>,
    pub photo_sha256: Option<String>,
    pub reason: Option<String>,
    pub submitted_at: Option<String>,
}

/// The holder of a queued rekey request.
#[derive(Debug, serde::Serialize)]
pub struct RequestHolder {
    pub email: String,
    pub name: String,
}

/// The operator's queue of rekey requests (submitted by default).
pub async fn queue(state: &Services, state_filter: Option<&str>) -> Result<RequestQueue, LifecycleError> {
    let wanted = match state_filter {
        None => RekeyState::Submitted,
        Some(name) => {
            RekeyState::parse(name).ok_or_else(|| LifecycleError::Invalid(text!("error.rekey.unknown_state", name)))?
        }
    };
    let mut out = Vec::new();
    for r in db::rekey::queue(&state.db, wanted).await? {
        let document = r.document.as_deref().and_then(|d| serde_json::from_str(d).ok());
        out.push(QueuedRequest {
            id: r.id,
            order: r.registration_number,
            credential_id: r.credential_id,
            state: r.state,
            holder: RequestHolder {
                email: r.email,
                name: format!("{} {}", r.given_name, r.surname),
            },
            document,
            photo_type: r.photo_type,
            photo_sha256: r.photo_sha256,
            reason: r.reason,
            submitted_at: r.submitted_at.map(rfc3339),
        });
    }
    Ok(RequestQueue { requests: out })
}

/// A request after an operator's verdict.
#[derive(Debug, serde::Serialize)]
pub struct RequestDecided {
    pub id: String,
    pub state: RekeyState,
    /// When the successor is issued (approved only).
    pub issue_at: Option<String>,
    pub issue_date: Option<String>,
}

/// The operator approves or rejects a submitted request.
pub async fn decide(
    state: &Services,
    id: &str,
    approve: bool,
    reason: Option<&str>,
    operator: &str,
) -> Result<RequestDecided, LifecycleError> {
    let r = request_row(state, None, id).await?;
    if r.state != RekeyState::Submitted {
        return Err(LifecycleError::Conflict(
            crate::text!("error.rekey.request_not_submitted", state => crate::i18n::Text::state(r.state.as_str())),
        ));
    }
    let order = orders::order_row(state.db.writer(), &r.order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))?;
    let user = db::users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_user")))?;
    let cert = cert_of(state, &r.credential_id).await?;
    let now = state.clock.now();
    let actor = format!("operator:{operator}");
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut tx = state.db.writer().begin().await?;
    let outcome = if approve {
        if now >= cert.not_after || cert.status != CertificateStatus::Valid {
            return Err(LifecycleError::Conflict(crate::text!(
                "error.rekey.certificate_has_ended_rekey_no"
            )));
        }
        let issue_at = successor_issue_at(state, cert.not_after).max(now);
        let moved = db::rekey::approve(&mut tx, id, issue_at, &actor, now).await?;
        if !moved || !orders::transition(&mut tx, &order.id, OrderEvent::Accept, &actor, "rekey approved", now).await? {
            return Err(LifecycleError::Conflict(crate::text!(
                "error.rekey.request_changed_meanwhile"
            )));
        }
        let date = rfc3339(issue_at);
        crate::notify::tell(
            &mut tx,
            state.clock.as_ref(),
            state.ca.public_base(),
            &user,
            Template::RekeyApproved {
                order: &order.registration_number,
                issue_date: &date,
            },
            "rekey_approved",
        )
        .await?;
        "approved"
    } else {
        let reason = reason.ok_or_else(|| LifecycleError::Invalid(crate::text!("error.identity.reason_required")))?;
        let moved = db::rekey::reject(&mut tx, id, reason, &actor, now).await?;
        if !moved || !orders::transition(&mut tx, &order.id, OrderEvent::Reject, &actor, reason, now).await? {
            return Err(LifecycleError::Conflict(crate::text!(
                "error.rekey.request_changed_meanwhile"
            )));
        }
        let limit = rfc3339(deadline(state, cert.not_after));
        crate::notify::tell(
            &mut tx,
            state.clock.as_ref(),
            state.ca.public_base(),
            &user,
            Template::RekeyRejected {
                order: &order.registration_number,
                reason,
                deadline: &limit,
            },
            "rekey_rejected",
        )
        .await?;
        "rejected"
    };
    tx.commit().await?;
    audit(
        &state.accounts(),
        &user.id,
        "rekey.verdict",
        outcome,
        &actor,
        json!({ "request": id, "order": order.registration_number, "reason": reason }),
    )
    .await;
    if approve {
        // A late approval issues at once; otherwise the scheduler does it on the day.
        super::scheduler::issue_due_successors(state).await;
    }
    let r = request_row(state, None, id).await?;
    Ok(RequestDecided {
        id: id.to_owned(),
        state: r.state,
        issue_at: r.issue_at.map(rfc3339),
        issue_date: r.issue_at.map(date_of),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: RekeyState, document_received: bool) -> RequestView {
        RequestView {
            id: "r".into(),
            order_id: "o".into(),
            credential_id: "c".into(),
            state,
            document_received,
            reason: None,
            deadline: String::new(),
            successor_issue_at: String::new(),
        }
    }

    #[test]
    fn the_wizard_step_follows_the_order_then_its_request() {
        use RekeyStep as S;
        assert_eq!(RekeyStep::of(None, None), S::Notice);
        assert_eq!(RekeyStep::of(Some(OrderState::AwaitingPayment), None), S::Pay);
        assert_eq!(RekeyStep::of(Some(OrderState::Paid), None), S::Start);
        assert_eq!(RekeyStep::of(Some(OrderState::Refunded), None), S::Closed);
        let paid = Some(OrderState::Paid);
        assert_eq!(
            RekeyStep::of(paid, Some(&request(RekeyState::Draft, false))),
            S::Document
        );
        assert_eq!(RekeyStep::of(paid, Some(&request(RekeyState::Draft, true))), S::Terms);
        let rejected = Some(OrderState::Rejected);
        assert_eq!(
            RekeyStep::of(rejected, Some(&request(RekeyState::Rejected, true))),
            S::Rejected
        );
        let review = Some(OrderState::UnderReview);
        assert_eq!(
            RekeyStep::of(review, Some(&request(RekeyState::Submitted, true))),
            S::Status
        );
        assert_eq!(serde_json::to_value(S::Terms).ok(), Some(json!("terms")));
    }
}
