//! The CA keys and certificates (root, issuing, later TSA and OCSP) that provisioning creates once.

use sqlx::Row;

use super::{Db, DbError};

/// One CA role's key and certificate.
#[derive(Debug, Clone)]
pub struct CaKeyRow {
    pub role: String,
    pub key_id: String,
    pub key_spec: String,
    /// Base64 DER.
    pub cert_der: String,
    pub subject: String,
    pub not_after: i64,
}

/// The row for this role, if provisioned.
pub async fn get(db: &Db, role: &str) -> Result<Option<CaKeyRow>, DbError> {
    let row = sqlx::query("SELECT role, key_id, key_spec, cert_der, subject, not_after FROM ca_keys WHERE role = $1")
        .bind(role)
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(CaKeyRow {
        role: r.try_get("role")?,
        key_id: r.try_get("key_id")?,
        key_spec: r.try_get("key_spec")?,
        cert_der: r.try_get("cert_der")?,
        subject: r.try_get("subject")?,
        not_after: r.try_get("not_after")?,
    }))
}

/// Stores a role's certificate unless another instance stored one first; returns the row in force.
pub async fn insert_or_get(db: &Db, row: &CaKeyRow, now: i64) -> Result<CaKeyRow, DbError> {
    sqlx::query(
        "INSERT INTO ca_keys (role, key_id, key_spec, cert_der, subject, not_after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (role) DO NOTHING",
    )
    .bind(&row.role)
    .bind(&row.key_id)
    .bind(&row.key_spec)
    .bind(&row.cert_der)
    .bind(&row.subject)
    .bind(row.not_after)
    .bind(now)
    .execute(db.writer())
    .await?;
    get(db, &row.role).await?.ok_or(DbError::Corrupt("ca_keys"))
}

/// A deployment fact, stored once: the first value stored wins and is returned.
pub async fn deployment_value(db: &Db, name: &str, first_value: &str, now: i64) -> Result<String, DbError> {
    sqlx::query("INSERT INTO deployment (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(first_value)
        .bind(now)
        .execute(db.writer())
        .await?;
    let r = sqlx::query("SELECT value FROM deployment WHERE name = $1")
        .bind(name)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("value")?)
}

/// A revoked certificate as a CRL lists it.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub serial: String,
    pub revoked_at: i64,
    pub reason: Option<String>,
}

/// Every revoked certificate issued by a CA role, oldest revocation first.
pub async fn revoked_by(db: &Db, issuer_role: &str) -> Result<Vec<Revoked>, DbError> {
    let rows = sqlx::query(
        "SELECT serial, revoked_at, revocation_reason FROM certificates
         WHERE issuer_role = $1 AND status = 'revoked' ORDER BY revoked_at, serial",
    )
    .bind(issuer_role)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Revoked {
                serial: r.try_get("serial")?,
                revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or(0),
                reason: r.try_get("revocation_reason")?,
            })
        })
        .collect()
}

/// The revocation of one certificate, if it is revoked.
pub async fn revocation_of(db: &Db, serial: &str) -> Result<Option<Revoked>, DbError> {
    let row = sqlx::query(
        "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE serial = $1 AND status = 'revoked'",
    )
    .bind(serial)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(Revoked {
            serial: r.try_get("serial")?,
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or(0),
            reason: r.try_get("revocation_reason")?,
        })
    })
    .transpose()
}

/// Revokes a certificate and its credential; false when it was already revoked.
pub async fn revoke(
    db: &Db,
    serial: &str,
    reason: &str,
    now: i64,
    audit: &super::audit::AuditRow,
) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query(
        "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2
         WHERE serial = $3 AND status <> 'revoked'",
    )
    .bind(now)
    .bind(reason)
    .bind(serial)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE credentials SET status = 'revoked' WHERE cert_serial = $1")
        .bind(serial)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE sads SET remaining = 0 WHERE credential_id IN (SELECT id FROM credentials WHERE cert_serial = $1)",
    )
    .bind(serial)
    .execute(&mut *tx)
    .await?;
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// The last published CRL of a role: (number, DER base64, this_update, next_update, revoked_count).
pub async fn crl(db: &Db, issuer_role: &str) -> Result<Option<(i64, String, i64, i64, i64)>, DbError> {
    let row =
        sqlx::query("SELECT number, der, this_update, next_update, revoked_count FROM crls WHERE issuer_role = $1")
            .bind(issuer_role)
            .fetch_optional(db.pool())
            .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some((
        r.try_get("number")?,
        r.try_get("der")?,
        r.try_get("this_update")?,
        r.try_get("next_update")?,
        r.try_get("revoked_count")?,
    )))
}

/// Publishes CRL number `number` unless another instance published that number (or a later one) first.
pub async fn store_crl(
    db: &Db,
    issuer_role: &str,
    number: i64,
    der_b64: &str,
    this_update: i64,
    next_update: i64,
    revoked_count: i64,
) -> Result<bool, DbError> {
    let updated = sqlx::query(
        "UPDATE crls SET number = $1, der = $2, this_update = $3, next_update = $4, revoked_count = $5
         WHERE issuer_role = $6 AND number < $1",
    )
    .bind(number)
    .bind(der_b64)
    .bind(this_update)
    .bind(next_update)
    .bind(revoked_count)
    .bind(issuer_role)
    .execute(db.writer())
    .await?
    .rows_affected();
    if updated == 1 {
        return Ok(true);
    }
    let inserted = sqlx::query(
        "INSERT INTO crls (issuer_role, number, der, this_update, next_update, revoked_count)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (issuer_role) DO NOTHING",
    )
    .bind(issuer_role)
    .bind(number)
    .bind(der_b64)
    .bind(this_update)
    .bind(next_update)
    .bind(revoked_count)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
