//! The retention engine (product rules §9): each class of data is kept for its period (`[retention]` settings),
//! then deleted or irreversibly anonymised by a daily run, unless a legal hold keeps a disputed record.
//!
//! | class | kept | then |
//! | --- | --- | --- |
//! | complaints and contact messages, with answers | `complaints_years` (3) after the last event (answer, else sending) | deleted |
//! | financial records: an order's invoice buyer data, payments, history notes, promotion code | `financial_years` (10, or 5) after the order's last change | deleted; the order's number, state and amounts stay without a person, as identification evidence may refer to it |
//! | identification evidence (document data of the sessions, the verified identity, rekey copies and their document data), signed issuance terms, the certificate (its subject text and its DER) | `evidence_years_after_expiry` (10) after the certificate's expiry | deleted (the copies' SHA-256 digests stay; the certificate's serial, dates and status stay for OCSP and the ledger) |
//! | consents | until withdrawn | the grants a withdrawal ended are deleted; the withdrawal stays as proof |
//! | logs: the copies of e-mails and SMS sent | `audit_years` (2, never less) | deleted |
//! | the audit trail | `audit_years` (2, never less) | deleted from the chain's start |
//!
//! Audit rows are deleted, not anonymised: they are chained by hashes, so an edited row would break
//! `parafa admin audit verify`. The run deletes the chain's oldest rows and keeps the last deleted row's sequence
//! number and hash as the chain's new start, so the rows kept are still verified. Until then they name people
//! only by id, and an erased account's id no longer leads to a name.
//!
//! The run is daily and claimed per day (`retention_runs`), so several instances do it once; every statement is
//! idempotent, so a forced run (`parafa admin retention run`) beside the daily one does nothing twice.

use serde::Serialize;
use serde_json::{json, Value};

use super::{LifecycleError, Services};
use crate::clock::{rfc3339, Clock};
use crate::db;
use crate::db::users::User;

/// What one run did, per class.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Contact messages deleted.
    pub contact_messages_deleted: u64,
    /// Orders whose financial records were erased.
    pub orders_anonymised: u64,
    /// Credentials whose identification evidence and signed terms were erased.
    pub evidence_erased: u64,
    /// Consent grants deleted after their withdrawal.
    pub consents_deleted: u64,
    /// Copies of sent messages deleted.
    pub messages_deleted: u64,
    /// Audit rows deleted from the chain's start.
    pub audit_rows_deleted: u64,
}

/// `t` moved back by `years` calendar years (29 February becomes 28 February).
pub fn years_before(t: i64, years: i64) -> i64 {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return t - years * 365 * 86_400;
    };
    let year = at.year() - years as i32;
    at.replace_year(year)
        .or_else(|_| (at - time::Duration::days(1)).replace_year(year))
        .map(|t| t.unix_timestamp())
        .unwrap_or(t - years * 365 * 86_400)
}

/// `t` moved forward by `years` calendar years.
pub fn years_after(t: i64, years: i64) -> i64 {
    years_before(t, -years)
}

/// The date of `t` in Bucharest, as `YYYY-MM-DD`.
pub fn bucharest_date(t: i64) -> String {
    crate::i18n::dates::iso_date(t)
}

/// Replaces every text of an invoice's buyer data by a placeholder, keeping its shape (the `type`, booleans and
/// numbers stay), so that the pages that read an old order still read it.
pub fn anonymised_invoice(invoice: &str) -> String {
    fn blank(v: Value, key: Option<&str>) -> Value {
        match v {
            Value::String(_) if key == Some("type") => v,
            Value::String(_) => Value::String("erased".into()),
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let b = blank(v, Some(&k));
                        (k, b)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| blank(v, None)).collect()),
            other => other,
        }
    }
    match serde_json::from_str::<Value>(invoice) {
        Ok(v) => blank(v, None).to_string(),
        Err(_) => "{}".into(),
    }
}

/// Runs every class once, now, whatever the day's claim (`parafa admin retention run`).
pub async fn run(state: &Services) -> Result<Report, LifecycleError> {
    let now = state.clock.now();
    let r = &state.settings.retention;
    let mut report = Report {
        contact_messages_deleted: db::retention::delete_contact_messages(
            &state.db,
            years_before(now, r.complaints_years),
        )
        .await?,
        ..Report::default()
    };
    for (order, invoice) in db::retention::financial_due(&state.db, years_before(now, r.financial_years)).await? {
        if db::retention::erase_financial(&state.db, &order, &anonymised_invoice(&invoice), now).await? {
            report.orders_anonymised += 1;
        }
    }
    let evidence_cutoff = years_before(now, r.evidence_years_after_expiry);
    for (credential, user, serial) in db::retention::evidence_due(&state.db, evidence_cutoff).await? {
        if db::retention::erase_evidence(&state.db, &credential, &user, &serial, now).await? {
            report.evidence_erased += 1;
        }
    }
    report.consents_deleted = db::retention::delete_withdrawn_consents(&state.db).await?;
    let logs_cutoff = years_before(now, r.audit_years);
    report.messages_deleted = db::retention::delete_sent_messages(&state.db, logs_cutoff).await?;
    report.audit_rows_deleted = db::retention::prune_audit(&state.db, logs_cutoff).await?;
    if report != Report::default() {
        let details = serde_json::to_value(&report).unwrap_or_default();
        let event = crate::audit::Event {
            actor: crate::audit::SYSTEM,
            action: "retention.run",
            target: "",
            outcome: "ok",
            client: "scheduler",
            details,
        };
        if let Err(e) = crate::audit::record(&state.db, state.clock.as_ref(), event).await {
            tracing::warn!(error = %e, "the retention run's audit row was not written");
        }
    }
    Ok(report)
}

/// The day's run, by the one instance that claims the day (Bucharest date); `None` when another instance has it
/// or the daily run is off.
pub async fn daily(state: &Services) -> Result<Option<Report>, LifecycleError> {
    if !state.settings.retention.enabled {
        return Ok(None);
    }
    let now = state.clock.now();
    let day = crate::i18n::dates::day_number(now);
    if !db::retention::claim_day(&state.db, day, now).await? {
        return Ok(None);
    }
    let report = run(state).await?;
    let text = serde_json::to_string(&report).unwrap_or_default();
    db::retention::record_day(&state.db, day, &text).await?;
    Ok(Some(report))
}

/// A class of data an erasure keeps, until when (Bucharest date) and why.
#[derive(Debug, Clone, Serialize)]
pub struct KeptClass {
    /// `financial`, `evidence`, `audit`, `contact_messages` or `legal_hold`.
    pub class: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    /// The last day it is kept (Europe/Bucharest), `None` while a legal hold lasts.
    pub until: Option<String>,
}

/// What the retention rules keep of `user` after an erasure at `now`, per class, with the date each is due.
pub async fn kept_after_erasure(state: &Services, user: &User, now: i64) -> Result<Vec<KeptClass>, LifecycleError> {
    let r = &state.settings.retention;
    let last = db::retention::last_events(&state.db, &user.id).await?;
    let mut kept = Vec::new();
    if let Some(t) = last.certificate_expiry {
        kept.push(KeptClass {
            class: "evidence",
            what: "issued certificates, the identification evidence, the signed issuance terms and the signature ledger (document digests, times)",
            why: "qualified trust service evidence: kept after the certificate expires (eIDAS; product rules §9)",
            until: Some(bucharest_date(years_after(t, r.evidence_years_after_expiry))),
        });
    }
    if let Some(t) = last.order {
        kept.push(KeptClass {
            class: "financial",
            what: "orders, payments and invoices with their buyer data",
            why: "financial records are kept by law (product rules §9)",
            until: Some(bucharest_date(years_after(t, r.financial_years))),
        });
    }
    if let Some(t) = last.contact {
        kept.push(KeptClass {
            class: "contact_messages",
            what: "the numbers and dates of your contact messages (their texts are erased now)",
            why: "complaints are kept for the limitation period (product rules §9)",
            until: Some(bucharest_date(years_after(t, r.complaints_years))),
        });
    }
    kept.push(KeptClass {
        class: "audit",
        what: "the audit trail of your account's actions, under an anonymous id",
        why: "security logs are kept at least 2 years (product rules §9)",
        until: Some(bucharest_date(years_after(now, r.audit_years))),
    });
    if db::retention::person_held(&state.db, &user.id).await? {
        kept.push(KeptClass {
            class: "legal_hold",
            what: "the records under a legal hold",
            why: "a dispute is open: they are kept until it is settled and the hold released",
            until: None,
        });
    }
    Ok(kept)
}

/// The kinds of record a legal hold may be placed on.
pub const HOLD_KINDS: &[&str] = &["user", "order", "contact_message"];

/// The most characters of a hold's reason.
pub const REASON_MAX_CHARS: usize = 1000;

/// `POST /api/v1/operator/legal-holds`.
#[derive(Debug, serde::Deserialize)]
pub struct NewHold {
    /// One of [`HOLD_KINDS`].
    pub kind: Option<String>,
    /// The record's id.
    pub record_id: Option<String>,
    pub reason: Option<String>,
}

/// `POST /api/v1/operator/legal-holds/{id}/release`.
#[derive(Debug, serde::Deserialize)]
pub struct Release {
    pub reason: Option<String>,
}

/// A legal hold, as the operators see it.
#[derive(Debug, Serialize)]
pub struct HoldView {
    pub id: String,
    pub kind: String,
    pub record_id: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: String,
    pub released_by: Option<String>,
    pub released_at: Option<String>,
    pub release_reason: Option<String>,
    pub active: bool,
}

fn hold_view(h: db::retention::Hold) -> HoldView {
    HoldView {
        active: h.released_at.is_none(),
        id: h.id,
        kind: h.kind,
        record_id: h.record_id,
        reason: h.reason,
        placed_by: h.placed_by,
        placed_at: rfc3339(h.placed_at),
        released_by: h.released_by,
        released_at: h.released_at.map(rfc3339),
        release_reason: h.release_reason,
    }
}

/// The legal holds.
#[derive(Debug, Serialize)]
pub struct Holds {
    pub holds: Vec<HoldView>,
}

fn reason_of(raw: Option<&str>) -> Result<String, LifecycleError> {
    let reason = raw.unwrap_or_default().trim();
    let n = reason.chars().count();
    if n == 0 || n > REASON_MAX_CHARS {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.retention.reason_required",
            max = REASON_MAX_CHARS
        )));
    }
    Ok(reason.to_owned())
}

/// An operator places a legal hold on a record: the retention run leaves it (and, for a person, everything of
/// theirs) until the hold is released. Audited with the reason.
pub async fn place_hold(
    state: &Services,
    req: NewHold,
    operator: &User,
    client: &str,
) -> Result<HoldView, LifecycleError> {
    let kind = req.kind.as_deref().unwrap_or_default().trim();
    let kind = HOLD_KINDS.iter().copied().find(|k| *k == kind).ok_or_else(|| {
        LifecycleError::Invalid(crate::text!(
            "error.retention.kind_must_one",
            kinds = HOLD_KINDS.join(", ")
        ))
    })?;
    let reason = reason_of(req.reason.as_deref())?;
    let record = req.record_id.as_deref().unwrap_or_default().trim().to_owned();
    if record.is_empty() || record.len() > 100 || !db::retention::record_exists(&state.db, kind, &record).await? {
        return Err(LifecycleError::NotFound(crate::text!("error.retention.no_such_record")));
    }
    let now = state.clock.now();
    let actor = format!("operator:{}", operator.id);
    let hold = db::retention::Hold {
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.to_owned(),
        record_id: record,
        reason,
        placed_by: actor.clone(),
        placed_at: now,
        released_by: None,
        released_at: None,
        release_reason: None,
    };
    let mut tx = state.db.writer().begin().await?;
    db::retention::insert_hold(&mut tx, &hold).await?;
    let row = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "legal_hold.place",
            target: &hold.record_id,
            outcome: "ok",
            client,
            details: json!({ "hold": hold.id, "kind": hold.kind, "reason": hold.reason }),
        },
    );
    db::audit::insert(&mut *tx, &row).await?;
    tx.commit().await?;
    Ok(hold_view(hold))
}

/// An operator releases a hold, with the reason (the dispute settled): the record's retention runs again.
pub async fn release_hold(
    state: &Services,
    id: &str,
    req: Release,
    operator: &User,
    client: &str,
) -> Result<HoldView, LifecycleError> {
    let reason = reason_of(req.reason.as_deref())?;
    let hold = db::retention::hold_by_id(&state.db, id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.retention.no_such_hold")))?;
    let now = state.clock.now();
    let actor = format!("operator:{}", operator.id);
    let mut tx = state.db.writer().begin().await?;
    if !db::retention::release_hold(&mut tx, id, &actor, &reason, now).await? {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.retention.hold_already_released"
        )));
    }
    let row = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "legal_hold.release",
            target: &hold.record_id,
            outcome: "ok",
            client,
            details: json!({ "hold": id, "kind": hold.kind, "reason": reason }),
        },
    );
    db::audit::insert(&mut *tx, &row).await?;
    tx.commit().await?;
    let released = db::retention::hold_by_id(&state.db, id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.retention.no_such_hold")))?;
    Ok(hold_view(released))
}

/// `GET /api/v1/operator/legal-holds`: active holds first, then the released ones.
pub async fn holds(state: &Services) -> Result<Holds, LifecycleError> {
    let holds = db::retention::holds(&state.db, 500)
        .await?
        .into_iter()
        .map(hold_view)
        .collect();
    Ok(Holds { holds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucharest_dates_follow_summer_time() {
        // 2026-07-01 21:30 UTC is 00:30 on 2 July in Bucharest (EEST, +3).
        assert_eq!(bucharest_date(1_782_941_400), "2026-07-02");
        // 2026-01-15 22:30 UTC is 00:30 on 16 January (EET, +2).
        assert_eq!(bucharest_date(1_768_516_200), "2026-01-16");
        // 2026-01-15 21:30 UTC is still the 15th.
        assert_eq!(bucharest_date(1_768_512_600), "2026-01-15");
    }

    #[test]
    fn years_move_by_the_calendar() {
        // 2028-02-29 00:00 UTC minus 1 year is 2027-02-28.
        assert_eq!(bucharest_date(years_before(1_835_395_200, 1) - 7200), "2027-02-28");
        assert_eq!(years_after(years_before(1_800_000_000, 10), 10), 1_800_000_000);
    }

    #[test]
    fn an_anonymised_invoice_keeps_its_shape_and_no_text() {
        let out = anonymised_invoice(
            r#"{"type":"person","name":"Ana Popescu","confirm_person":true,"address":{"street":"Memorandumului"}}"#,
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["type"], "person");
        assert_eq!(v["confirm_person"], true);
        assert_eq!(v["name"], "erased");
        assert_eq!(v["address"]["street"], "erased");
        assert!(!out.contains("Popescu"));
    }
}
