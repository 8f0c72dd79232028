//! Credentials (a holder's key in the HSM with its certificate), issued certificates and quotas.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// A certificate's status as stored (`certificates.status`): what the CRL and the OCSP responder say, apart
    /// from its validity period.
    pub enum CertificateStatus {
        Valid = "valid",
        Revoked = "revoked",
        /// Read (and shown) but never written by Parafa today.
        Suspended = "suspended",
    }
}

stored_state! {
    /// A credential's status as stored (`credentials.status`).
    pub enum CredentialStatus {
        /// May sign while its certificate is valid.
        Active = "active",
        /// Its certificate was revoked (or its holder erased).
        Revoked = "revoked",
        /// Replaced by its successor after a rekey.
        Superseded = "superseded",
    }
}

stored_state! {
    /// A certificate's status at a moment, as the pages, the registry and the CSC API show it (never stored): its
    /// stored status read with its validity period and, where it counts, its credential's status.
    pub enum StatusAt {
        Valid = "valid",
        Expired = "expired",
        NotYetValid = "not_yet_valid",
        Revoked = "revoked",
        Suspended = "suspended",
        Superseded = "superseded",
    }
}

/// A certificate Parafa issued.
#[derive(Debug, Clone)]
pub struct CertificateRow {
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub issuer_role: String,
    pub credential_id: Option<String>,
    pub subject: String,
    /// Base64 DER.
    pub cert_der: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: CertificateStatus,
}

/// A holder's signing credential.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub key_spec: String,
    pub key_label: String,
    pub cert_serial: String,
    pub status: CredentialStatus,
    pub created_at: i64,
}

/// A credential's prepaid transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub credential_id: String,
    pub package_id: i64,
    pub total: i64,
    pub used: i64,
}

impl Quota {
    /// Transactions left.
    pub fn remaining(&self) -> i64 {
        self.total - self.used
    }
}

/// Stores an issued certificate.
pub async fn insert_certificate<'e, E>(exec: E, cert: &CertificateRow, now: i64) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO certificates (serial, issuer_role, credential_id, subject, cert_der, not_before, not_after, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&cert.serial)
    .bind(&cert.issuer_role)
    .bind(&cert.credential_id)
    .bind(&cert.subject)
    .bind(&cert.cert_der)
    .bind(cert.not_before)
    .bind(cert.not_after)
    .bind(cert.status.as_str())
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}

/// Stores a credential.
pub async fn insert_credential<'e, E>(exec: E, cred: &Credential) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO credentials (id, user_id, key_spec, key_label, cert_serial, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&cred.id)
    .bind(&cred.user_id)
    .bind(&cred.key_spec)
    .bind(&cred.key_label)
    .bind(&cred.cert_serial)
    .bind(cred.status.as_str())
    .bind(cred.created_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Attaches a package's transactions to a credential.
pub async fn insert_quota<'e, E>(exec: E, q: &Quota, now: i64) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("INSERT INTO quotas (credential_id, package_id, total, used, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&q.credential_id)
        .bind(q.package_id)
        .bind(q.total)
        .bind(q.used)
        .bind(now)
        .execute(exec)
        .await?;
    Ok(())
}

/// The credential with this id.
pub async fn credential(db: &Db, id: &str) -> Result<Option<Credential>, DbError> {
    let row = sqlx::query(
        "SELECT id, user_id, key_spec, key_label, cert_serial, status, created_at FROM credentials WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(credential_from_row).transpose()
}

/// The user's credential that is active with a certificate valid at `now` (the newest such), and that
/// certificate.
pub async fn current(db: &Db, user_id: &str, now: i64) -> Result<Option<(Credential, CertificateRow)>, DbError> {
    for c in credentials_of(db, user_id).await?.into_iter().rev() {
        if c.status != CredentialStatus::Active {
            continue;
        }
        if let Some(cert) = certificate(db, &c.cert_serial).await? {
            if cert.status == CertificateStatus::Valid && cert.not_before <= now && now < cert.not_after {
                return Ok(Some((c, cert)));
            }
        }
    }
    Ok(None)
}

/// The user's credentials, oldest first.
pub async fn credentials_of(db: &Db, user_id: &str) -> Result<Vec<Credential>, DbError> {
    let rows = sqlx::query(
        "SELECT id, user_id, key_spec, key_label, cert_serial, status, created_at FROM credentials
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(credential_from_row).collect()
}

fn credential_from_row(r: &sqlx::any::AnyRow) -> Result<Credential, DbError> {
    Ok(Credential {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        key_spec: r.try_get("key_spec")?,
        key_label: r.try_get("key_label")?,
        cert_serial: r.try_get("cert_serial")?,
        status: CredentialStatus::stored(&r.try_get::<String, _>("status")?, "credentials.status")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The certificate with this serial (lower-case hex).
pub async fn certificate(db: &Db, serial: &str) -> Result<Option<CertificateRow>, DbError> {
    let row = sqlx::query(
        "SELECT serial, issuer_role, credential_id, subject, cert_der, not_before, not_after, status
         FROM certificates WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(CertificateRow {
        serial: r.try_get("serial")?,
        issuer_role: r.try_get("issuer_role")?,
        credential_id: r.try_get("credential_id")?,
        subject: r.try_get("subject")?,
        cert_der: r.try_get("cert_der")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        status: CertificateStatus::stored(&r.try_get::<String, _>("status")?, "certificates.status")?,
    }))
}

/// The credential's quota.
pub async fn quota(db: &Db, credential_id: &str) -> Result<Option<Quota>, DbError> {
    let row = sqlx::query("SELECT credential_id, package_id, total, used FROM quotas WHERE credential_id = $1")
        .bind(credential_id)
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Quota {
        credential_id: r.try_get("credential_id")?,
        package_id: r.try_get("package_id")?,
        total: r.try_get("total")?,
        used: r.try_get("used")?,
    }))
}

/// A credential with its certificate and quota, in one query (the signing path reads them on every request);
/// `None` too for a credential whose certificate the retention rules erased.
pub async fn credential_full(db: &Db, id: &str) -> Result<Option<(Credential, CertificateRow, Quota)>, DbError> {
    let row = sqlx::query(
        "SELECT c.id, c.user_id, c.key_spec, c.key_label, c.cert_serial, c.status, c.created_at,
                t.serial, t.issuer_role, t.credential_id, t.subject, t.cert_der, t.not_before, t.not_after,
                t.status AS cert_status, q.package_id, q.total, q.used
         FROM credentials c
         JOIN certificates t ON t.serial = c.cert_serial AND t.cert_der <> ''
         JOIN quotas q ON q.credential_id = c.id
         WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let cred = credential_from_row(&r)?;
    let cert = CertificateRow {
        serial: r.try_get("serial")?,
        issuer_role: r.try_get("issuer_role")?,
        credential_id: r.try_get("credential_id")?,
        subject: r.try_get("subject")?,
        cert_der: r.try_get("cert_der")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        status: CertificateStatus::stored(&r.try_get::<String, _>("cert_status")?, "certificates.status")?,
    };
    let quota = Quota {
        credential_id: cred.id.clone(),
        package_id: r.try_get("package_id")?,
        total: r.try_get("total")?,
        used: r.try_get("used")?,
    };
    Ok(Some((cred, cert, quota)))
}
/// The signed issuance terms of a credential: which terms, their digest, the CMS the holder's new key made.
pub struct Evidence<'a> {
    pub credential_id: &'a str,
    pub order_id: &'a str,
    pub terms_version: &'a str,
    pub terms_sha256: &'a str,
    pub cms_der: &'a [u8],
}

/// Records the signed terms of a new credential.
pub async fn insert_evidence(conn: &mut sqlx::AnyConnection, e: &Evidence<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO issuance_evidence (credential_id, order_id, terms_version, terms_sha256, cms, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.credential_id)
    .bind(e.order_id)
    .bind(e.terms_version)
    .bind(e.terms_sha256)
    .bind(super::b64(e.cms_der))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The signed terms (CMS DER) of one of a holder's credentials.
pub async fn evidence(db: &Db, credential_id: &str, user_id: &str) -> Result<Option<Vec<u8>>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT e.cms FROM issuance_evidence e JOIN credentials c ON c.id = e.credential_id
         WHERE e.credential_id = $1 AND c.user_id = $2",
    )
    .bind(credential_id)
    .bind(user_id)
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(super::unb64(
        &r.try_get::<String, _>("cms")?,
        "issuance_evidence.cms",
    )?))
}

/// Ends an active credential whose successor was issued (`superseded`).
pub async fn supersede(conn: &mut sqlx::AnyConnection, credential_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE credentials SET status = 'superseded' WHERE id = $1 AND status = 'active'")
        .bind(credential_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An active credential whose valid certificate ends within a reminder window: its id, holder and end.
pub struct Expiring {
    pub credential_id: String,
    pub user_id: String,
    pub not_after: i64,
}

/// The active credentials whose valid certificate ends after `from` and by `until`.
pub async fn expiring(db: &Db, from: i64, until: i64) -> Result<Vec<Expiring>, DbError> {
    let rows = sqlx::query(
        "SELECT c.id, c.user_id, t.not_after FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
         WHERE c.status = 'active' AND t.status = 'valid' AND t.not_after > $1 AND t.not_after <= $2",
    )
    .bind(from)
    .bind(until)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Expiring {
                credential_id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                not_after: r.try_get("not_after")?,
            })
        })
        .collect()
}

/// Claims the reminder of `days` before expiry for a credential, in the transaction that sends it; false when
/// it was already sent (by this or another instance).
pub async fn claim_reminder(
    conn: &mut sqlx::AnyConnection,
    credential_id: &str,
    days: i64,
    now: i64,
) -> Result<bool, DbError> {
    match sqlx::query("INSERT INTO reminders (credential_id, days, sent_at) VALUES ($1, $2, $3)")
        .bind(credential_id)
        .bind(days)
        .bind(now)
        .execute(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if DbError::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A holder's credentials with their certificate's serial and stored status.
pub async fn with_certificate_status(
    db: &Db,
    user_id: &str,
) -> Result<Vec<(String, String, CertificateStatus)>, DbError> {
    let rows = sqlx::query(
        "SELECT c.id, c.cert_serial, t.status FROM credentials c
         JOIN certificates t ON t.serial = c.cert_serial WHERE c.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(db.writer())
    .await?;
    rows.iter()
        .map(|r| {
            let status = CertificateStatus::stored(&r.try_get::<String, _>("status")?, "certificates.status")?;
            Ok((r.try_get("id")?, r.try_get("cert_serial")?, status))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_from_their_stored_names() {
        for s in CredentialStatus::ALL {
            assert_eq!(CredentialStatus::parse(s.as_str()), Some(s));
        }
        for s in CertificateStatus::ALL {
            assert_eq!(CertificateStatus::parse(s.as_str()), Some(s));
        }
        for s in StatusAt::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(CertificateStatus::parse("expired"), None);
    }
}
