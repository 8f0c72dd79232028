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
