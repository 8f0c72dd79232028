//! The trust services on Parafa's trusted list, their statuses, and the lists signed (the trusted list module).

use sqlx::Row;

use super::{Db, DbError};

/// One trust service: a certificate and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub id: String,
    /// `ca_qc` or `qtst`.
    pub kind: String,
    pub name: String,
    /// Base64 DER.
    pub cert_der: String,
    pub created_at: i64,
}

/// A status from `since` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub service_id: String,
    /// `granted` or `withdrawn`.
    pub status: String,
    pub since: i64,
    pub reason: Option<String>,
}

/// A signed list.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub sequence: i64,
    pub issued_at: i64,
    pub next_update: i64,
    pub content_sha256: String,
    pub xml: String,
}

/// Registers a service with its first status unless it is registered (idempotent: every start, every instance).
pub async fn register(db: &Db, service: &ServiceRow, granted_since: i64) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO trust_services (id, kind, name, cert_der, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&service.id)
    .bind(&service.kind)
    .bind(&service.name)
    .bind(&service.cert_der)
    .bind(service.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        sqlx::query(
            "INSERT INTO trust_service_statuses (service_id, status, since, reason, recorded_at)
             VALUES ($1, 'granted', $2, NULL, $3) ON CONFLICT (service_id, since) DO NOTHING",
        )
        .bind(&service.id)
        .bind(granted_since)
        .bind(service.created_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every service, oldest first.
pub async fn services(db: &Db) -> Result<Vec<ServiceRow>, DbError> {
    let rows = sqlx::query("SELECT id, kind, name, cert_der, created_at FROM trust_services ORDER BY created_at, id")
        .fetch_all(db.pool())
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ServiceRow {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                cert_der: r.try_get("cert_der")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Every status of every service, newest first within a service.
pub async fn statuses(db: &Db) -> Result<Vec<StatusRow>, DbError> {
    let rows = sqlx::query(
        "SELECT service_id, status, since, reason FROM trust_service_statuses ORDER BY service_id, since DESC",
    )
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StatusRow {
                service_id: r.try_get("service_id")?,
                status: r.try_get("status")?,
                since: r.try_get("since")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// Records a new status of a service from `since` (or, when the service already has a status from that second or
/// later, from the second after its latest: periods never overlap); the start recorded, or none when the service
/// is unknown.
pub async fn set_status(
    db: &Db,
    service_id: &str,
    status: &str,
    since: i64,
    reason: Option<&str>,
    now: i64,
) -> Result<Option<i64>, DbError> {
    let known = sqlx::query("SELECT id FROM trust_services WHERE id = $1")
        .bind(service_id)
        .fetch_optional(db.pool())
        .await?
        .is_some();
    if !known {
        return Ok(None);
    }
    let latest: Option<i64> =
        sqlx::query("SELECT MAX(since) AS latest FROM trust_service_statuses WHERE service_id = $1")
            .bind(service_id)
            .fetch_one(db.pool())
            .await?
            .try_get("latest")?;
    let since = latest.map_or(since, |l| since.max(l + 1));
    sqlx::query(
        "INSERT INTO trust_service_statuses (service_id, status, since, reason, recorded_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(service_id)
    .bind(status)
    .bind(since)
    .bind(reason)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(Some(since))
}

/// The list with the highest sequence number, if one was signed.
pub async fn latest(db: &Db) -> Result<Option<ListRow>, DbError> {
    let row = sqlx::query(
        "SELECT sequence, issued_at, next_update, content_sha256, xml FROM trusted_lists
         ORDER BY sequence DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    row.map(list_row).transpose()
}

/// The list with this sequence number.
pub async fn by_sequence(db: &Db, sequence: i64) -> Result<Option<ListRow>, DbError> {
    let row = sqlx::query(
        "SELECT sequence, issued_at, next_update, content_sha256, xml FROM trusted_lists WHERE sequence = $1",
    )
    .bind(sequence)
    .fetch_optional(db.pool())
    .await?;
    row.map(list_row).transpose()
}

fn list_row(r: sqlx::any::AnyRow) -> Result<ListRow, DbError> {
    Ok(ListRow {
        sequence: r.try_get("sequence")?,
        issued_at: r.try_get("issued_at")?,
        next_update: r.try_get("next_update")?,
        content_sha256: r.try_get("content_sha256")?,
        xml: r.try_get("xml")?,
    })
}

/// Stores a signed list unless another instance stored one with that sequence number first; true when this one
/// was stored.
pub async fn store(db: &Db, list: &ListRow) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO trusted_lists (sequence, issued_at, next_update, content_sha256, xml) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sequence) DO NOTHING",
    )
    .bind(list.sequence)
    .bind(list.issued_at)
    .bind(list.next_update)
    .bind(&list.content_sha256)
    .bind(&list.xml)
    .execute(db.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}
