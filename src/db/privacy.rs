//! What a person's data export reads (GDPR art. 15 and 20, product rules §9): their consents, authenticator,
//! credentials, signatures, sessions, contact messages, activity and the messages sent to them, without secrets
//! (no password hash, TOTP seed, token or code hashes, message bodies sent to them).

use sqlx::Row as _;

use super::{Db, DbError};

/// One value of an exported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// A number; the export shows a time column (`at`, `*_at`, `not_*`) as a date.
    Int(i64),
    Null,
}

/// One exported row: each column's name and value, in the section's order.
pub type Exported = Vec<(&'static str, Cell)>;

/// The export's sections that are a table's rows of the person (`$1` is their id): name, query, columns.
const SECTIONS: &[(&str, &str, &[&str])] = &[
    (
        "consents",
        "SELECT kind, version, granted, client, at FROM consents WHERE user_id = $1 ORDER BY at, id",
        &["kind", "version", "granted", "client", "at"],
    ),
    (
        "authenticator",
        "SELECT status, created_at, activated_at FROM totp_pairings WHERE user_id = $1",
        &["status", "created_at", "activated_at"],
    ),
    (
        "credentials",
        "SELECT c.id, c.key_spec, c.status, c.cert_serial, t.subject, t.not_before, t.not_after, q.total, q.used
         FROM credentials c JOIN certificates t ON t.serial = c.cert_serial JOIN quotas q ON q.credential_id = c.id
         WHERE c.user_id = $1 ORDER BY c.created_at",
        &["id", "key_spec", "status", "cert_serial", "subject", "not_before", "not_after", "total", "used"],
    ),
    (
        "signatures",
        "SELECT credential_id, digest, hash_algo, sign_algo, client, created_at FROM signatures WHERE user_id = $1
         ORDER BY created_at",
        &["credential_id", "digest", "hash_algo", "sign_algo", "client", "created_at"],
    ),
    (
        "sessions",
        "SELECT client, created_at, expires_at, revoked FROM web_sessions WHERE user_id = $1 ORDER BY created_at",
        &["client", "created_at", "expires_at", "revoked"],
    ),
    // What the person wrote through the contact form, and the answers.
    (
        "contact_messages",
        "SELECT number, topic, body, state, answer, created_at, answered_at FROM contact_messages WHERE user_id = $1
         ORDER BY created_at",
        &["number", "topic", "body", "state", "answer", "created_at", "answered_at"],
    ),
    (
        "activity",
        "SELECT action, outcome, client, at FROM audit_events WHERE target = $1 OR actor = 'user:' || $1 ORDER BY at, id",
        &["action", "outcome", "client", "at"],
    ),
];

/// The export's table sections of the person `user_id`, in order: each section's name and rows.
pub async fn sections(db: &Db, user_id: &str) -> Result<Vec<(&'static str, Vec<Exported>)>, DbError> {
    let mut out = Vec::with_capacity(SECTIONS.len());
    for (name, sql, columns) in SECTIONS {
        let found = sqlx::query(sql).bind(user_id).fetch_all(db.pool()).await?;
        let rows = found
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| {
                        let cell = if let Ok(Some(s)) = r.try_get::<Option<String>, _>(*c) {
                            Cell::Text(s)
                        } else if let Ok(Some(n)) = r.try_get::<Option<i64>, _>(*c) {
                            Cell::Int(n)
                        } else {
                            Cell::Null
                        };
                        (*c, cell)
                    })
                    .collect()
            })
            .collect();
        out.push((*name, rows));
    }
    Ok(out)
}

/// A message sent to the person (its medium, kind, status and time; never its body).
pub struct Sent {
    pub medium: String,
    pub kind: String,
    pub status: String,
    pub created_at: i64,
}

/// The messages sent to `email` or `phone`, oldest first.
pub async fn messages_to(db: &Db, email: &str, phone: &str) -> Result<Vec<Sent>, DbError> {
    let rows = sqlx::query(
        "SELECT medium, kind, status, created_at FROM outbox WHERE recipient = $1 OR recipient = $2 ORDER BY created_at, id",
    )
    .bind(email)
    .bind(phone)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Sent {
                medium: r.try_get("medium")?,
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// A consent as recorded: its kind, the version of the text, whether granted, when.
pub struct Consent {
    pub kind: super::accounts::ConsentKind,
    pub version: String,
    pub granted: bool,
    pub at: i64,
}

/// The person's consents, oldest first (the latest of each kind is its state).
pub async fn consents(db: &Db, user_id: &str) -> Result<Vec<Consent>, DbError> {
    let rows = sqlx::query("SELECT kind, version, granted, at FROM consents WHERE user_id = $1 ORDER BY at, id")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Consent {
                kind: super::accounts::ConsentKind::stored(&r.try_get::<String, _>("kind")?, "consents.kind")?,
                version: r.try_get("version")?,
                granted: r.try_get::<i64, _>("granted")? != 0,
                at: r.try_get("at")?,
            })
        })
        .collect()
}
