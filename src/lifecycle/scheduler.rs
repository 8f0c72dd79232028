//! The lifecycle scheduler: rekey reminders, scheduled issuance of successors, refunds of rekeys no longer
//! possible, and the daily retention run (`retention`). It runs in the background of every instance (`lifecycle.tick_secs`) and on demand
//! (`parafa admin lifecycle run`).
//!
//! Several instances may run it on one database. Each action claims its row atomically before acting: a reminder is
//! a row whose primary key (credential, days) is inserted in the same transaction as its e-mail, so only one
//! instance's insert succeeds; an order is refunded by a conditional state change; a successor is issued by the
//! instance whose conditional `claimed_at` update succeeded (a claim older than [`CLAIM_SECS`] is taken over, so a
//! crashed instance's work is redone, and the loser of such a race destroys its key). Every action is audited.

use std::time::Duration;

use serde_json::json;

use super::holders::add_years;
use super::issuance::{destroy_key, insert_credential_rows, issued_email, make_credential};
use super::rekey::deadline;
use super::LifecycleError;
use super::Services;
use crate::accounts::audit;
use crate::billing::orders::{self, OrderRow};
use crate::billing::payment::{PaymentGateway, Sandbox};
use crate::billing::OrderEvent;
use crate::ca::HolderSubject;
use crate::clock::{rfc3339, Clock};
use crate::db::rekey::RekeyState;
use crate::db::users::User;
use crate::db::{self, DbError};
use crate::hsm::KeySpec;
use crate::notify::{self, Template};
use crate::text;

/// How long a claim on a successor's issuance protects it, in seconds.
pub const CLAIM_SECS: i64 = 600;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub reminders: usize,
    pub successors: usize,
    pub refunds: usize,
}

/// Refunds a paid order through the gateway, inside the caller's transaction: the order moves to refunded (from
/// whichever live state it is in), its rekey request too, and the holder is told (#12).
pub async fn refund_in(
    conn: &mut sqlx::AnyConnection,
    state: &Services,
    order: &OrderRow,
    user: &User,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<bool, DbError> {
    let reference = Sandbox.refund(&order.id, order.total_ron_bani);
    let note = format!(
        "refunded {} RON ({reason}); gateway reference {reference}",
        crate::billing::format_minor(order.total_ron_bani)
    );
    if !orders::transition(conn, &order.id, OrderEvent::Refund, actor, &note, now).await? {
        return Ok(false);
    }
    db::orders::set_refunded(conn, &order.id).await?;
    // The refund reverses the invoice: a credit note, numbered in this transaction (gap-free).
    crate::billing::fiscal::issue_credit_note(conn, &state.settings, &order.id, &reference, now).await?;
    db::rekey::refund_of_order(conn, &order.id, now).await?;
    let amount = crate::billing::format_minor(order.total_ron_bani);
    crate::notify::tell(
        conn,
        state.clock.as_ref(),
        state.ca.public_base(),
        user,
        Template::Refunded {
            order: &order.registration_number,
            amount: &amount,
            reason,
        },
        "refunded",
    )
    .await?;
    Ok(true)
}

/// One run of every job. Errors of one job are logged and do not stop the others.
pub async fn tick(state: &Services) -> Report {
    let mut report = Report::default();
    match send_reminders(state).await {
        Ok(n) => report.reminders = n,
        Err(e) => tracing::warn!(error = %e, "rekey reminders failed; retried on the next run"),
    }
    report.successors = issue_due_successors(state).await;
    match refund_impossible_rekeys(state).await {
        Ok(n) => report.refunds = n,
        Err(e) => tracing::warn!(error = %e, "rekey refunds failed; retried on the next run"),
    }
    // The day's retention run (product rules §9), by the one instance that claims the day.
    if let Err(e) = super::retention::daily(state).await {
        tracing::warn!(error = %e, "the retention run failed; retried on the next day or by `admin retention run`");
    }
    // Signing jobs past their retention: the uploads and signed files go, the history stays.
    if let Err(e) = crate::documents::jobs::purge_expired(&state.documents()).await {
        tracing::warn!(error = %e, "expired signing jobs could not be deleted; retried on the next run");
    }
    report
}

/// Runs [`tick`] every `lifecycle.tick_secs` seconds.
pub fn spawn(state: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(state.settings.lifecycle.tick_secs.max(1));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let r = tick(&state).await;
            if r != Report::default() {
                tracing::info!(
                    reminders = r.reminders,
                    successors = r.successors,
                    refunds = r.refunds,
                    "lifecycle run"
                );
            }
        }
    })
}

/// Sends the due rekey reminders (45 and, if the rekey was not requested, 15 days before expiry): at most one per
/// certificate and reminder, whatever the number of instances. When several are due (the service was down), only
/// the latest is sent.
pub async fn send_reminders(state: &Services) -> Result<usize, LifecycleError> {
    let now = state.clock.now();
    let mut days = state.settings.lifecycle.reminder_days.clone();
    days.sort_unstable_by(|a, b| b.cmp(a));
    let Some(first) = days.first().copied() else {
        return Ok(0);
    };
    let mut sent = 0;
    for r in db::credentials::expiring(&state.db, now, now + first * 86_400).await? {
        let (cred, user_id, not_after) = (r.credential_id, r.user_id, r.not_after);
        let Some(due) = days.iter().copied().filter(|d| now >= not_after - d * 86_400).min() else {
            continue;
        };
        if db::rekey::under_way_for(&state.db, &cred).await? {
            continue;
        }
        let Some(user) = db::users::by_id(&state.db, &user_id).await? else {
            continue;
        };
        let mut tx = state.db.writer().begin().await?;
        if !db::credentials::claim_reminder(&mut tx, &cred, due, now).await? {
            continue;
        }
        let (expiry, limit) = (rfc3339(not_after), rfc3339(deadline(state, not_after)));
        // The certificates page, where the holder asks for the rekey (not the API).
        let link = format!("{}/certificates", state.ca.public_base());
        crate::notify::tell(
            &mut tx,
            state.clock.as_ref(),
            state.ca.public_base(),
            &user,
            Template::RekeyReminder {
                expiry: &expiry,
                deadline: &limit,
                link: &link,
            },
            &format!("rekey_reminder_{due}"),
        )
        .await?;
        tx.commit().await?;
        sent += 1;
        audit(
            &state.accounts(),
            &user.id,
            "rekey.reminder",
            "sent",
            "scheduler",
            json!({ "credential_id": cred, "days": due }),
        )
        .await;
    }
    Ok(sent)
}

/// Issues every approved successor whose day has come. Returns how many were issued.
pub async fn issue_due_successors(state: &Services) -> usize {
    let now = state.clock.now();
    let due = match db::rekey::due_for_issuance(&state.db, now, now - CLAIM_SECS).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the due successors");
            return 0;
        }
    };
    let mut issued = 0;
    for id in due {
        match issue_successor(state, &id).await {
            Ok(true) => issued += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(request = %id, error = %e, "successor issuance failed; retried on a later run"),
        }
    }
    issued
}

/// Issues one successor, if this instance wins the claim.
async fn issue_successor(state: &Services, id: &str) -> Result<bool, LifecycleError> {
    let now = state.clock.now();
    if !db::rekey::claim(&state.db, id, now, now - CLAIM_SECS).await? {
        return Ok(false);
    }
    let request = db::rekey::get(&state.db, id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.rekey.no_such_rekey_request")))?;
    let (old_id, issue_at) = (request.credential_id, request.issue_at.unwrap_or(now));
    let order = orders::order_row(state.db.writer(), &request.order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))?;
    let (old, old_cert, _) = db::credentials::credential_full(&state.db, &old_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.account.no_such_credential")))?;
    let user = db::users::by_id(&state.db, &old.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_user")))?;
    let package = state
        .settings
        .package(order.package_id as u8)
        .cloned()
        .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.issuance.order_package_no_longer_offered")))?;
    let spec: KeySpec = old
        .key_spec
        .parse()
        .map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    let old_der = db::unb64(&old_cert.cert_der, "certificates.cert_der")?;
    let old_parsed = <x509_cert::Certificate as der::Decode>::from_der(&old_der).map_err(|e| {
        LifecycleError::Invalid(text!("error.http.detail", detail = format!("stored certificate: {e}")))
    })?;
    let subject = HolderSubject::from_name(&old_parsed.tbs_certificate.subject, Some(user.email.clone()));
    // Valid from the scheduled day whatever the order date; a late approval starts now.
    let not_before = issue_at.min(now);
    let not_after = add_years(not_before, package.validity_years);
    let new_id = uuid::Uuid::new_v4().to_string();
    let (h, c, cid, subj) = (state.hsm.clone(), state.ca.clone(), new_id.clone(), subject);
    let label = format!("holder {}", user.email);
    let (issued, _) = tokio::task::spawn_blocking(move || {
        make_credential(&h, &c, &subj, spec, &cid, &label, not_before, not_after, None)
    })
    .await
    .map_err(|e| LifecycleError::Task(e.to_string()))??;

    let stored = async {
        let mut tx = state.db.writer().begin().await?;
        if !db::rekey::issued(&mut tx, id, &new_id, now, now).await? {
            return Ok::<bool, LifecycleError>(false);
        }
        insert_credential_rows(&mut tx, &user, &new_id, spec, &issued, &package, now).await?;
        db::credentials::supersede(&mut tx, &old.id).await?;
        orders::transition(
            &mut tx,
            &order.id,
            OrderEvent::Fulfil,
            "scheduler",
            "successor issued",
            now,
        )
        .await?;
        db::orders::set_credential(&mut tx, &order.id, &new_id).await?;
        notify::enqueue(
            &mut *tx,
            state.clock.as_ref(),
            &issued_email(state, &user, &issued, &order.registration_number),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
    .await;
    match stored {
        Ok(true) => {
            // The old credential can no longer sign: its key goes (product rules §5, always a new key pair).
            destroy_key(&state.hsm, &old.id).await;
            audit(
                &state.accounts(),
                &user.id,
                "rekey.successor.issued",
                "ok",
                "scheduler",
                json!({ "request": id, "old_credential": old.id, "credential_id": new_id, "serial": issued.serial,
                        "valid_from": rfc3339(issued.not_before) }),
            )
            .await;
            Ok(true)
        }
        Ok(false) => {
            destroy_key(&state.hsm, &new_id).await;
            Ok(false)
        }
        Err(e) => {
            destroy_key(&state.hsm, &new_id).await;
            let _ = db::rekey::release(&state.db, id, now).await;
            Err(e)
        }
    }
}

/// Refunds the rekey orders that can no longer be fulfilled: the limit before expiry passed without a request sent
/// for approval, the certificate ended (or was revoked) before a successor was issued.
pub async fn refund_impossible_rekeys(state: &Services) -> Result<usize, LifecycleError> {
    let now = state.clock.now();
    let mut refunded = 0;
    for r in db::rekey::open_orders(&state.db).await? {
        let (id, not_after) = (r.order_id, r.not_after);
        let ended = now >= not_after || !r.certificate_valid || !r.credential_active;
        let too_late = now > deadline(state, not_after) && !r.request.is_some_and(RekeyState::is_under_way);
        // An approved request is issued at T-3 days: it is refunded only if that has not happened by expiry.
        if !(ended || too_late) {
            continue;
        }
        let Some(order) = orders::order_row(state.db.writer(), &id).await? else {
            continue;
        };
        let Some(user) = db::users::by_id(&state.db, &order.user_id).await? else {
            continue;
        };
        let reason = if ended {
            "the certificate ended before the rekey"
        } else {
            "rekey past the limit before expiry"
        };
        let mut tx = state.db.writer().begin().await?;
        if refund_in(&mut tx, state, &order, &user, reason, "scheduler", now).await? {
            tx.commit().await?;
            refunded += 1;
            audit(
                &state.accounts(),
                &user.id,
                "order.refund",
                "ok",
                "scheduler",
                json!({ "order": order.registration_number, "reason": reason }),
            )
            .await;
        }
    }
    Ok(refunded)
}
