//! What the retention run (`lifecycle::retention`) reads and changes, and the legal holds that stop it. Every
//! statement is idempotent (a record already done is not matched again), so two instances running at once, or a
//! run repeated, change nothing twice.

use sqlx::Row;

use super::{Db, DbError};

/// The condition "not under an active legal hold" for a row with columns `user`, `order` and (optional) the row's
/// own `own` id of kind `own_kind`: SQL text to put after `AND`.
fn not_held(user: &str, order: Option<&str>, own: Option<(&str, &str)>) -> String {
    let held = |kind: &str, col: &str| {
        format!(
            "({col} IS NULL OR {col} NOT IN (SELECT record_id FROM legal_holds WHERE kind = '{kind}' AND released_at IS NULL))"
        )
    };
    let mut parts = vec![held("user", user)];
    if let Some(o) = order {
        parts.push(held("order", o));
    }
    if let Some((kind, col)) = own {
        parts.push(held(kind, col));
    }
    parts.join(" AND ")
}

/// Deletes the contact messages (complaints and their answers) whose last event is before `cutoff`, unless held.
pub async fn delete_contact_messages(db: &Db, cutoff: i64) -> Result<u64, DbError> {
    let sql = format!(
        "DELETE FROM contact_messages WHERE COALESCE(answered_at, created_at) < $1 AND {}",
        not_held("user_id", Some("order_id"), Some(("contact_message", "id")))
    );
    Ok(sqlx::query(&sql)
        .bind(cutoff)
        .execute(db.writer())
        .await?
        .rows_affected())
}

/// The orders whose financial records are due (last change before `cutoff`, not yet erased, not held): id and the
/// invoice data (JSON text).
pub async fn financial_due(db: &Db, cutoff: i64) -> Result<Vec<(String, String)>, DbError> {
    let sql = format!(
        "SELECT id, invoice FROM orders WHERE financial_erased_at IS NULL AND updated_at < $1 AND {}
         ORDER BY updated_at LIMIT 1000",
        not_held("user_id", None, Some(("order", "id")))
    );
    let rows = sqlx::query(&sql).bind(cutoff).fetch_all(db.pool()).await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("invoice")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Erases one order's financial records: the buyer data of its invoice (replaced by `invoice`, the same shape
/// with placeholders), its payment events, its payment reference, promotion code and history notes. The order's
/// number, state and amounts stay, without a person (identification evidence may still refer to it). False when
/// another run did it first.
pub async fn erase_financial(db: &Db, order_id: &str, invoice: &str, now: i64) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
    let done = sqlx::query(
        "UPDATE orders SET invoice = $1, payment_ref = NULL, promo_code = NULL, financial_erased_at = $2
         WHERE id = $3 AND financial_erased_at IS NULL",
    )
    .bind(invoice)
    .bind(now)
    .bind(order_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM payment_events WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE order_history SET note = '' WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// The credentials whose certificate expired before `cutoff` and whose evidence is not yet erased nor held: id,
/// holder, certificate serial.
pub async fn evidence_due(db: &Db, cutoff: i64) -> Result<Vec<(String, String, String)>, DbError> {
    let sql = format!(
        "SELECT c.id, c.user_id, c.cert_serial FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
         WHERE c.evidence_erased_at IS NULL AND t.not_after < $1 AND {}
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.credential_id = c.id AND o.id IN
                (SELECT record_id FROM legal_holds WHERE kind = 'order' AND released_at IS NULL))
         ORDER BY t.not_after LIMIT 1000",
        not_held("c.user_id", None, None)
    );
    let rows = sqlx::query(&sql).bind(cutoff).fetch_all(db.pool()).await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("user_id")?, r.try_get("cert_serial")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Erases one credential's evidence in one transaction: the signed issuance terms, the document data of the
/// identification sessions of its orders, the rekey requests' document data and copies (their digests stay), the
/// certificate itself (its subject text and its DER, which names the holder; the serial, dates and status stay for
/// OCSP and the ledger), and the verified identity once no other credential of the holder keeps it. False when
/// another run did it first.
pub async fn erase_evidence(
    db: &Db,
    credential_id: &str,
    user_id: &str,
    serial: &str,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
    let done =
        sqlx::query("UPDATE credentials SET evidence_erased_at = $1 WHERE id = $2 AND evidence_erased_at IS NULL")
            .bind(now)
            .bind(credential_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if done != 1 {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM issuance_evidence WHERE credential_id = $1",
        "UPDATE identity_sessions SET document = NULL, consents = NULL, phone = NULL, document_key = NULL,
                personal_key = NULL
         WHERE order_id IN (SELECT id FROM orders WHERE credential_id = $1)",
        "UPDATE rekey_requests SET document = NULL, photo = NULL WHERE credential_id = $1 OR successor_id = $1",
    ] {
        sqlx::query(sql).bind(credential_id).execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE certificates SET subject = 'erased', cert_der = '' WHERE serial = $1")
        .bind(serial)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM identities WHERE user_id = $1
           AND NOT EXISTS (SELECT 1 FROM credentials WHERE user_id = $1 AND evidence_erased_at IS NULL)",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes the grants of a consent that a later withdrawal of the same kind ended (the withdrawal stays: it is the
/// proof that the person said no), unless the person is held.
pub async fn delete_withdrawn_consents(db: &Db) -> Result<u64, DbError> {
    let sql = format!(
        "DELETE FROM consents WHERE granted = 1 AND {} AND EXISTS (SELECT 1 FROM consents w
           WHERE w.user_id = consents.user_id AND w.kind = consents.kind AND w.granted = 0 AND w.at >= consents.at)",
        not_held("user_id", None, None)
    );
    Ok(sqlx::query(&sql).execute(db.writer()).await?.rows_affected())
}

/// Deletes the copies of the e-mails and SMS sent (or given up) before `cutoff` (the messages log).
pub async fn delete_sent_messages(db: &Db, cutoff: i64) -> Result<u64, DbError> {
    let n = sqlx::query("DELETE FROM outbox WHERE status <> 'pending' AND created_at < $1")
        .bind(cutoff)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n)
}

/// Claims the retention run of `day` (days since the epoch, Bucharest time): true for the one instance that
/// runs it.
pub async fn claim_day(db: &Db, day: i64, now: i64) -> Result<bool, DbError> {
    let n = sqlx::query("INSERT INTO retention_runs (day, started_at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
        .bind(day)
        .bind(now)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Records what a day's run did (JSON text).
pub async fn record_day(db: &Db, day: i64, report: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE retention_runs SET report = $1 WHERE day = $2")
        .bind(report)
        .bind(day)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// A legal hold.
pub struct Hold {
    pub id: String,
    pub kind: String,
    pub record_id: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
    pub release_reason: Option<String>,
}

fn hold(r: &sqlx::any::AnyRow) -> Result<Hold, sqlx::Error> {
    Ok(Hold {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        record_id: r.try_get("record_id")?,
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
        release_reason: r.try_get("release_reason")?,
    })
}

const HOLD_COLUMNS: &str =
    "id, kind, record_id, reason, placed_by, placed_at, released_by, released_at, release_reason";

/// Whether the record of `kind` with `id` exists (`user`, `order` or `contact_message`).
pub async fn record_exists(db: &Db, kind: &str, id: &str) -> Result<bool, DbError> {
    let table = match kind {
        "user" => "users",
        "order" => "orders",
        "contact_message" => "contact_messages",
        _ => return Ok(false),
    };
    let r = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get::<i64, _>("n")? > 0)
}

/// Places a hold, inside the caller's transaction.
pub async fn insert_hold(conn: &mut sqlx::AnyConnection, h: &Hold) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO legal_holds (id, kind, record_id, reason, placed_by, placed_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&h.id)
    .bind(&h.kind)
    .bind(&h.record_id)
    .bind(&h.reason)
    .bind(&h.placed_by)
    .bind(h.placed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Releases an active hold, inside the caller's transaction; false when there is none active with that id.
pub async fn release_hold(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE legal_holds SET released_by = $1, released_at = $2, release_reason = $3
         WHERE id = $4 AND released_at IS NULL",
    )
    .bind(by)
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// One hold by id.
pub async fn hold_by_id(db: &Db, id: &str) -> Result<Option<Hold>, DbError> {
    let r = sqlx::query(&format!("SELECT {HOLD_COLUMNS} FROM legal_holds WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(r.as_ref().map(hold).transpose()?)
}

/// The holds, active first then the released ones, newest first, at most `limit`.
pub async fn holds(db: &Db, limit: i64) -> Result<Vec<Hold>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {HOLD_COLUMNS} FROM legal_holds
         ORDER BY CASE WHEN released_at IS NULL THEN 0 ELSE 1 END, placed_at DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(hold).collect::<Result<_, _>>()?)
}

/// Whether the person `user_id` is under an active hold.
pub async fn person_held(db: &Db, user_id: &str) -> Result<bool, DbError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM legal_holds WHERE released_at IS NULL AND (
            (kind = 'user' AND record_id = $1)
         OR (kind = 'order' AND record_id IN (SELECT id FROM orders WHERE user_id = $1))
         OR (kind = 'contact_message' AND record_id IN (SELECT id FROM contact_messages WHERE user_id = $1)))",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok(r.try_get::<i64, _>("n")? > 0)
}

/// The last events of a person's records, for the erasure report: the latest order change, the latest
/// certificate expiry, the latest contact message event (each `None` when there is none).
pub struct LastEvents {
    pub order: Option<i64>,
    pub certificate_expiry: Option<i64>,
    pub contact: Option<i64>,
}

/// [`LastEvents`] of `user_id`.
pub async fn last_events(db: &Db, user_id: &str) -> Result<LastEvents, DbError> {
    let one = |sql: &'static str| async move {
        let r = sqlx::query(sql).bind(user_id).fetch_one(db.pool()).await?;
        Ok::<Option<i64>, DbError>(r.try_get::<Option<i64>, _>("t")?)
    };
    Ok(LastEvents {
        order: one("SELECT MAX(updated_at) AS t FROM orders WHERE user_id = $1").await?,
        certificate_expiry: one(
            "SELECT MAX(t.not_after) AS t FROM certificates t JOIN credentials c ON c.cert_serial = t.serial
             WHERE c.user_id = $1",
        )
        .await?,
        contact: one("SELECT MAX(COALESCE(answered_at, created_at)) AS t FROM contact_messages WHERE user_id = $1")
            .await?,
    })
}

/// Where the audit chain starts: the sequence number and hash of the last row deleted by the retention run (the
/// genesis, `0` and 64 zeros, before any deletion).
pub async fn audit_start(db: &Db) -> Result<(i64, String), DbError> {
    let r = sqlx::query("SELECT seq, hash FROM audit_pruned WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Deletes the start of the audit chain up to the last sealed row before the first one at or after `cutoff`, and
/// moves the chain's start there, in one transaction. Returns how many rows went. Unsealed rows are left to the
/// sealer.
pub async fn prune_audit(db: &Db, cutoff: i64) -> Result<u64, DbError> {
    let mut tx = db.writer().begin().await?;
    let r = sqlx::query("SELECT seq FROM audit_pruned WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let start: i64 = r.try_get("seq")?;
    let r =
        sqlx::query("SELECT MIN(seq) AS first_kept FROM audit_events WHERE seq IS NOT NULL AND seq > $1 AND at >= $2")
            .bind(start)
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await?;
    let upto = match r.try_get::<Option<i64>, _>("first_kept")? {
        Some(first_kept) => first_kept - 1,
        None => {
            let r = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            r.try_get::<i64, _>("seq")?
        }
    };
    if upto <= start {
        return Ok(0);
    }
    let r = sqlx::query("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(upto)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(hash) = r.map(|r| r.try_get::<Option<String>, _>("hash")).transpose()?.flatten() else {
        return Ok(0);
    };
    let moved = sqlx::query("UPDATE audit_pruned SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3")
        .bind(upto)
        .bind(&hash)
        .bind(start)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if moved != 1 {
        return Ok(0);
    }
    let n = sqlx::query("DELETE FROM audit_events WHERE seq IS NOT NULL AND seq <= $1")
        .bind(upto)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}
