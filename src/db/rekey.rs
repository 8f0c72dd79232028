//! Rekey requests (product rules §5): a holder's request to renew a valid certificate with a new key, its states
//! and the one table of their transitions, and the queries of the lifecycle and the scheduler. Every change of
//! `rekey_requests.state` is a function here named after its [`RekeyEvent`], guarded by the event's row of
//! [`RekeyEvent::rule`]: a request that another request or instance moved first is left alone (`false`).

use sqlx::Row;

use super::credentials::{CertificateStatus, CredentialStatus};
use super::{Db, DbError};

stored_state! {
    /// A rekey request's state, stored as text in its snake_case name.
    ///
    /// | state | meaning | next |
    /// | --- | --- | --- |
    /// | `draft` | the terms signed, the identity document not yet sent | submitted, refunded |
    /// | `submitted` | at an operator | approved, rejected, refunded |
    /// | `approved` | the successor is issued on its day by the scheduler | issued, refunded |
    /// | `rejected` | a reason given; the holder corrects and sends it again | submitted, refunded |
    /// | `issued` | the successor certificate exists | – |
    /// | `refunded` | the order was refunded (past the cut-off, the certificate ended) | – |
    pub enum RekeyState {
        Draft = "draft",
        Submitted = "submitted",
        Approved = "approved",
        Rejected = "rejected",
        Issued = "issued",
        Refunded = "refunded",
    }
}

use RekeyState::*;

impl RekeyState {
    /// Whether the holder may still change the request and send it (a draft, or a rejected request).
    pub fn is_editable(self) -> bool {
        RekeyEvent::Submit.applies_to(self)
    }

    /// Whether the request is sent and not turned down: reminders stop, the account shows no rekey banner.
    pub fn is_under_way(self) -> bool {
        matches!(self, Submitted | Approved | Issued)
    }
}

/// What moves a rekey request: each event is one row of the transition table ([`RekeyEvent::rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyEvent {
    /// The holder sent the request for approval (again, after a rejection).
    Submit,
    /// An operator approved it; the successor's issue date is set.
    Approve,
    /// An operator rejected it, with a reason.
    Reject,
    /// The scheduler issued the successor certificate.
    Issue,
    /// The order was refunded.
    Refund,
}

impl RekeyEvent {
    /// The transition table: the states the event applies to, and the state it leads to.
    pub fn rule(self) -> (&'static [RekeyState], RekeyState) {
        match self {
            RekeyEvent::Submit => (&[Draft, Rejected], Submitted),
            RekeyEvent::Approve => (&[Submitted], Approved),
            RekeyEvent::Reject => (&[Submitted], Rejected),
            RekeyEvent::Issue => (&[Approved], Issued),
            RekeyEvent::Refund => (&[Draft, Submitted, Approved, Rejected], Refunded),
        }
    }

    /// Whether the event applies to a request in `state`.
    pub fn applies_to(self, state: RekeyState) -> bool {
        self.rule().0.contains(&state)
    }

    /// `state = 'to'` and the guard `state IN ('from', …)` of the event.
    fn sql(self) -> (String, String) {
        let (from, to) = self.rule();
        super::state_change(from, to, RekeyState::as_str)
    }
}

fn stored(text: &str) -> Result<RekeyState, DbError> {
    RekeyState::parse(text).ok_or(DbError::Corrupt("rekey_requests.state"))
}

/// A rekey request as stored (the document's copy left out).
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub credential_id: String,
    pub state: RekeyState,
    /// Whether both the identity document's data and its copy were received.
    pub has_document: bool,
    pub reason: Option<String>,
    pub issue_at: Option<i64>,
}

/// Creates the draft request of a rekey order. A second draft of the same order is a unique violation.
pub async fn create(
    db: &Db,
    id: &str,
    order_id: &str,
    user_id: &str,
    credential_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rekey_requests (id, order_id, user_id, credential_id, state, privacy_ack_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
    )
    .bind(id)
    .bind(order_id)
    .bind(user_id)
    .bind(credential_id)
    .bind(Draft.as_str())
    .bind(now)
    .execute(db.writer())
    .await
    .map(|_| ())
}

/// The request of an order, if there is one.
pub async fn of_order(db: &Db, order_id: &str) -> Result<Option<String>, DbError> {
    Ok(sqlx::query("SELECT id FROM rekey_requests WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(db.writer())
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?)
}

/// A request by its id.
pub async fn get(db: &Db, id: &str) -> Result<Option<Request>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT id, order_id, user_id, credential_id, state, document, photo_sha256, reason, issue_at
         FROM rekey_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Request {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        user_id: r.try_get("user_id")?,
        credential_id: r.try_get("credential_id")?,
        state: stored(&r.try_get::<String, _>("state")?)?,
        has_document: r.try_get::<Option<String>, _>("document")?.is_some()
            && r.try_get::<Option<String>, _>("photo_sha256")?.is_some(),
        reason: r.try_get("reason")?,
        issue_at: r.try_get("issue_at")?,
    }))
}

/// The identity document given with a request: its data (JSON) and its copy.
pub struct Document<'a> {
    pub data: &'a str,
    pub photo_b64: &'a str,
    pub photo_type: &'a str,
    pub photo_sha256: &'a str,
}

/// Stores the identity document of a request the holder may still change; false when it may not any more.
pub async fn set_document(db: &Db, id: &str, d: &Document<'_>, now: i64) -> Result<bool, DbError> {
    let (_, editable) = RekeyEvent::Submit.sql();
    let sql = format!(
        "UPDATE rekey_requests SET document = $1, photo = $2, photo_type = $3, photo_sha256 = $4, updated_at = $5
         WHERE id = $6 AND {editable}"
    );
    let n = sqlx::query(&sql)
        .bind(d.data)
        .bind(d.photo_b64)
        .bind(d.photo_type)
        .bind(d.photo_sha256)
        .bind(now)
        .bind(id)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// [`RekeyEvent::Submit`]: the request goes to the operators, an earlier rejection's reason cleared.
pub async fn submit(conn: &mut sqlx::AnyConnection, id: &str, now: i64) -> Result<bool, DbError> {
    let (to, from) = RekeyEvent::Submit.sql();
    let sql = format!(
        "UPDATE rekey_requests SET {to}, submitted_at = $1, reason = NULL, updated_at = $1 WHERE id = $2 AND {from}"
    );
    let n = sqlx::query(&sql)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// [`RekeyEvent::Approve`]: the successor is due at `issue_at`.
pub async fn approve(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    issue_at: i64,
    reviewer: &str,
    now: i64,
) -> Result<bool, DbError> {
    let (to, from) = RekeyEvent::Approve.sql();
    let sql = format!(
        "UPDATE rekey_requests SET {to}, issue_at = $1, reviewer = $2, updated_at = $3 WHERE id = $4 AND {from}"
    );
    let q = sqlx::query(&sql).bind(issue_at).bind(reviewer).bind(now).bind(id);
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// [`RekeyEvent::Reject`], with the reason the holder reads.
pub async fn reject(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    reason: &str,
    reviewer: &str,
    now: i64,
) -> Result<bool, DbError> {
    let (to, from) = RekeyEvent::Reject.sql();
    let sql =
        format!("UPDATE rekey_requests SET {to}, reason = $1, reviewer = $2, updated_at = $3 WHERE id = $4 AND {from}");
    let q = sqlx::query(&sql).bind(reason).bind(reviewer).bind(now).bind(id);
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// [`RekeyEvent::Refund`] of an order's request, if it has one that is not finished.
pub async fn refund_of_order(conn: &mut sqlx::AnyConnection, order_id: &str, now: i64) -> Result<(), DbError> {
    let (to, from) = RekeyEvent::Refund.sql();
    let sql = format!("UPDATE rekey_requests SET {to}, updated_at = $1 WHERE order_id = $2 AND {from}");
    sqlx::query(&sql).bind(now).bind(order_id).execute(conn).await?;
    Ok(())
}

/// [`RekeyEvent::Issue`]: the successor `successor_id` exists. Only the claim made at `claimed_at` may say so.
pub async fn issued(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    successor_id: &str,
    claimed_at: i64,
    now: i64,
) -> Result<bool, DbError> {
    let (to, from) = RekeyEvent::Issue.sql();
    let sql = format!(
        "UPDATE rekey_requests SET {to}, successor_id = $1, updated_at = $2 WHERE id = $3 AND {from} AND claimed_at = $4"
    );
    let q = sqlx::query(&sql).bind(successor_id).bind(now).bind(id).bind(claimed_at);
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// Whether a credential has a request under way (sent, approved or issued).
pub async fn under_way_for(db: &Db, credential_id: &str) -> Result<bool, DbError> {
    let under_way = RekeyState::ALL.into_iter().filter(|s| s.is_under_way());
    let sql = format!(
        "SELECT COUNT(*) AS n FROM rekey_requests WHERE credential_id = $1 AND state IN ({})",
        super::state_list(under_way, RekeyState::as_str)
    );
    let n: i64 = sqlx::query(&sql)
        .bind(credential_id)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    Ok(n > 0)
}

/// The latest request of a credential that was not refunded: its id, state and rejection reason.
pub async fn latest_of_credential(
    db: &Db,
    credential_id: &str,
) -> Result<Option<(String, RekeyState, Option<String>)>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT id, state, reason FROM rekey_requests WHERE credential_id = $1 AND state <> $2
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(credential_id)
    .bind(Refunded.as_str())
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        r.try_get("id")?,
        stored(&r.try_get::<String, _>("state")?)?,
        r.try_get("reason")?,
    )))
}

/// The approved requests whose successor is due (`issue_at` passed) and not claimed since `stale_before`.
pub async fn due_for_issuance(db: &Db, now: i64, stale_before: i64) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT id FROM rekey_requests WHERE state = $1 AND issue_at <= $2
         AND (claimed_at IS NULL OR claimed_at < $3) ORDER BY issue_at",
    )
    .bind(Approved.as_str())
    .bind(now)
    .bind(stale_before)
    .fetch_all(db.writer())
    .await?;
    Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
}

/// Claims an approved request for this instance's issuance at `now`, unless another claim since `stale_before`
/// holds it.
pub async fn claim(db: &Db, id: &str, now: i64, stale_before: i64) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE rekey_requests SET claimed_at = $1 WHERE id = $2 AND state = $3
         AND (claimed_at IS NULL OR claimed_at < $4)",
    )
    .bind(now)
    .bind(id)
    .bind(Approved.as_str())
    .bind(stale_before)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives up the claim made at `claimed_at` (the issuance failed; a later run tries again).
pub async fn release(db: &Db, id: &str, claimed_at: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE rekey_requests SET claimed_at = NULL WHERE id = $1 AND claimed_at = $2")
        .bind(id)
        .bind(claimed_at)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// A rekey order still open, with what decides whether it can still be fulfilled.
#[derive(Debug, Clone)]
pub struct OpenOrder {
    pub order_id: String,
    /// The end of the certificate to renew.
    pub not_after: i64,
    pub certificate_valid: bool,
    pub credential_active: bool,
    /// The state of its request, if it has one.
    pub request: Option<RekeyState>,
}

/// The rekey orders paid and not finished (paid, under review, rejected or accepted).
pub async fn open_orders(db: &Db) -> Result<Vec<OpenOrder>, DbError> {
    use super::orders::OrderState as O;
    let rows = sqlx::query(
        "SELECT o.id, t.not_after, t.status AS cert_status, c.status AS cred_status, r.state AS request_state
         FROM orders o
         JOIN credentials c ON c.id = o.credential_id
         JOIN certificates t ON t.serial = c.cert_serial
         LEFT JOIN rekey_requests r ON r.order_id = o.id
         WHERE o.kind = 'rekey' AND o.state IN ($1, $2, $3, $4)",
    )
    .bind(O::Paid.as_str())
    .bind(O::UnderReview.as_str())
    .bind(O::Rejected.as_str())
    .bind(O::Accepted.as_str())
    .fetch_all(db.writer())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OpenOrder {
                order_id: r.try_get("id")?,
                not_after: r.try_get("not_after")?,
                certificate_valid: CertificateStatus::parse(&r.try_get::<String, _>("cert_status")?)
                    == Some(CertificateStatus::Valid),
                credential_active: CredentialStatus::parse(&r.try_get::<String, _>("cred_status")?)
                    == Some(CredentialStatus::Active),
                request: r
                    .try_get::<Option<String>, _>("request_state")?
                    .map(|s| stored(&s))
                    .transpose()?,
            })
        })
        .collect()
}

/// A request in the operators' queue, with its order and holder.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: String,
    pub registration_number: String,
    pub credential_id: String,
    pub state: RekeyState,
    /// The identity document's data (JSON), if sent.
    pub document: Option<String>,
    pub photo_type: Option<String>,
    pub photo_sha256: Option<String>,
    pub reason: Option<String>,
    pub submitted_at: Option<i64>,
    pub email: String,
    pub given_name: String,
    pub surname: String,
}

/// The requests in `state`, oldest sent first.
pub async fn queue(db: &Db, state: RekeyState) -> Result<Vec<Queued>, DbError> {
    let rows = sqlx::query(
        "SELECT r.id, r.credential_id, r.state, r.document, r.photo_type, r.photo_sha256, r.submitted_at,
                r.reason, o.registration_number, u.email, u.given_name, u.surname
         FROM rekey_requests r JOIN orders o ON o.id = r.order_id JOIN users u ON u.id = r.user_id
         WHERE r.state = $1 ORDER BY r.submitted_at, r.id",
    )
    .bind(state.as_str())
    .fetch_all(db.writer())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Queued {
                id: r.try_get("id")?,
                registration_number: r.try_get("registration_number")?,
                credential_id: r.try_get("credential_id")?,
                state: stored(&r.try_get::<String, _>("state")?)?,
                document: r.try_get("document")?,
                photo_type: r.try_get("photo_type")?,
                photo_sha256: r.try_get("photo_sha256")?,
                reason: r.try_get("reason")?,
                submitted_at: r.try_get("submitted_at")?,
                email: r.try_get("email")?,
                given_name: r.try_get("given_name")?,
                surname: r.try_get("surname")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [RekeyEvent; 5] = [
        RekeyEvent::Submit,
        RekeyEvent::Approve,
        RekeyEvent::Reject,
        RekeyEvent::Issue,
        RekeyEvent::Refund,
    ];

    #[test]
    fn every_state_reads_back_and_only_issued_and_refunded_requests_are_final() {
        for s in RekeyState::ALL {
            assert_eq!(RekeyState::parse(s.as_str()), Some(s));
            let leaves = EVENTS.iter().any(|e| e.applies_to(s));
            assert_eq!(leaves, !matches!(s, Issued | Refunded), "{s}");
        }
        assert_eq!(
            RekeyEvent::Submit.sql(),
            ("state = 'submitted'".into(), "state IN ('draft', 'rejected')".into())
        );
    }

    #[test]
    fn a_request_is_issued_only_after_approval_and_approved_only_once_sent() {
        assert_eq!(RekeyEvent::Issue.rule().0, [Approved]);
        assert_eq!(RekeyEvent::Approve.rule().0, [Submitted]);
        assert!(!RekeyEvent::Submit.applies_to(Approved));
    }
}
