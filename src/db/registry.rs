//! The public certificate registry's queries: the certificates of people whose accounts were not erased, found by
//! e-mail address, by name, or by serial number. A certificate the retention rules erased (its DER emptied ten
//! years after its expiry) is no longer listed.

use sqlx::Row;

use super::{Db, DbError};

const COLUMNS: &str = "t.serial, t.cert_der, t.not_before, t.not_after, t.status, t.revoked_at, t.revocation_reason
     FROM certificates t
     JOIN credentials c ON c.id = t.credential_id AND t.cert_der <> ''
     JOIN users u ON u.id = c.user_id";

/// A certificate as the registry shows it.
pub struct Listed {
    pub serial: String,
    /// The certificate, base64 DER as stored.
    pub cert_der: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: super::credentials::CertificateStatus,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

fn listed(r: &sqlx::any::AnyRow) -> Result<Listed, DbError> {
    Ok(Listed {
        serial: r.try_get("serial")?,
        cert_der: r.try_get("cert_der")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        status: super::credentials::CertificateStatus::stored(
            &r.try_get::<String, _>("status")?,
            "certificates.status",
        )?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
    })
}

/// The certificates of the account with this e-mail address, newest first, at most `limit`.
pub async fn by_email(db: &Db, email: &str, limit: i64) -> Result<Vec<Listed>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}
         WHERE u.email = $1 AND u.status <> 'erased'
         ORDER BY t.not_before DESC, t.serial LIMIT $2"
    ))
    .bind(email)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(listed).collect()
}

/// The certificates whose subject or holder's name matches the `LIKE` pattern (lower case, `\` escapes), newest
/// first, at most `limit`.
pub async fn by_name(db: &Db, pattern: &str, limit: i64) -> Result<Vec<Listed>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}
         WHERE u.status <> 'erased'
           AND (lower(t.subject) LIKE $1 ESCAPE '\\'
                OR lower(u.given_name || ' ' || u.surname) LIKE $1 ESCAPE '\\')
         ORDER BY t.not_before DESC, t.serial LIMIT $2"
    ))
    .bind(pattern)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(listed).collect()
}

/// The certificate with this serial number, if its holder's account was not erased.
pub async fn by_serial(db: &Db, serial: &str) -> Result<Option<Listed>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE t.serial = $1 AND u.status <> 'erased'"
    ))
    .bind(serial)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(listed).transpose()
}
