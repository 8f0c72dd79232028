//! What a person's data export reads (GDPR art. 15 and 20, product rules §9): their consents, authenticator,
//! credentials and certificates, signatures and signing transactions, sessions, contact messages, the audit rows
//! about them, orders with their history, payments and invoices, identification sessions with their document
//! data, rekey requests (of a document's copy, only its digest and size), the signed terms and the messages sent to
//! them, without secrets (no password hash, TOTP seed, token or code hashes, message bodies sent to them).

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
        &[
            "id",
            "key_spec",
            "status",
            "cert_serial",
            "subject",
            "not_before",
            "not_after",
            "total",
            "used",
        ],
    ),
    (
        "signatures",
        "SELECT credential_id, digest, hash_algo, sign_algo, client, created_at FROM signatures WHERE user_id = $1
         ORDER BY created_at",
        &[
            "credential_id",
            "digest",
            "hash_algo",
            "sign_algo",
            "client",
            "created_at",
        ],
    ),
    (
        "sessions",
        "SELECT client, created_at, expires_at, revoked FROM web_sessions WHERE user_id = $1 ORDER BY created_at",
        &["client", "created_at", "expires_at", "revoked"],
    ),
    // What the person wrote through the contact form, and the answers.
    (
        "contact_messages",
        "SELECT number, topic, body, state, answer, created_at, answered_at FROM contact_messages
         WHERE user_id = $1 OR sender_email = (SELECT email FROM users WHERE id = $1) ORDER BY created_at",
        &[
            "number",
            "topic",
            "body",
            "state",
            "answer",
            "created_at",
            "answered_at",
        ],
    ),
    // The audit rows about the person: their own acts, and acts on their account, orders, identification
    // sessions, credentials and messages (the operator's identity is not theirs to see: actor's kind only).
    (
        "activity",
        "SELECT action, outcome, client, at, target FROM audit_events
         WHERE actor = 'user:' || $1 OR target = $1
            OR target IN (SELECT id FROM orders WHERE user_id = $1)
            OR target IN (SELECT id FROM identity_sessions WHERE user_id = $1)
            OR target IN (SELECT id FROM credentials WHERE user_id = $1)
            OR target IN (SELECT id FROM contact_messages WHERE user_id = $1)
         ORDER BY at, id",
        &["action", "outcome", "client", "at", "target"],
    ),
    (
        "orders",
        "SELECT id, registration_number, kind, package_id, state, net_eur_cents, discount_eur_cents, vat_eur_cents,
                gross_eur_cents, total_ron_bani, refunded_bani, credential_id, created_at, paid_at, updated_at
         FROM orders WHERE user_id = $1 ORDER BY created_at, id",
        &[
            "id",
            "registration_number",
            "kind",
            "package_id",
            "state",
            "net_eur_cents",
            "discount_eur_cents",
            "vat_eur_cents",
            "gross_eur_cents",
            "total_ron_bani",
            "refunded_bani",
            "credential_id",
            "created_at",
            "paid_at",
            "updated_at",
        ],
    ),
    // Each order's states, with who moved it (a person's id is shown as its kind: holder, operator, scheduler).
    (
        "order_history",
        "SELECT o.registration_number, h.state, h.note, h.at,
                CASE WHEN h.actor LIKE 'operator:%' THEN 'operator' WHEN h.actor LIKE 'user:%' THEN 'holder'
                     ELSE h.actor END AS actor
         FROM order_history h JOIN orders o ON o.id = h.order_id WHERE o.user_id = $1 ORDER BY h.at, h.id",
        &["registration_number", "state", "actor", "note", "at"],
    ),
    (
        "payments",
        "SELECT o.registration_number, p.provider, p.status, p.amount_bani, p.received_at
         FROM payment_events p JOIN orders o ON o.id = p.order_id WHERE o.user_id = $1 ORDER BY p.received_at",
        &[
            "registration_number",
            "provider",
            "status",
            "amount_bani",
            "received_at",
        ],
    ),
    // The invoice data: the number once issued, the amounts and the buyer as the person gave it (JSON text).
    (
        "invoices",
        "SELECT registration_number, invoice_number, invoice AS buyer, net_eur_cents, vat_eur_cents, gross_eur_cents,
                ron_per_eur_1e4, rate_date, total_ron_bani, paid_at
         FROM orders WHERE user_id = $1 ORDER BY created_at, id",
        &[
            "registration_number",
            "invoice_number",
            "buyer",
            "net_eur_cents",
            "vat_eur_cents",
            "gross_eur_cents",
            "ron_per_eur_1e4",
            "rate_date",
            "total_ron_bani",
            "paid_at",
        ],
    ),
    // Identification sessions with the document data read (JSON text) and the consents given; no photo is kept by
    // the built-in provider.
    (
        "identification",
        "SELECT s.id, o.registration_number, s.state, s.attempt, s.document, s.consents, s.phone, s.reason,
                s.created_at, s.submitted_at, s.decided_at
         FROM identity_sessions s JOIN orders o ON o.id = s.order_id WHERE s.user_id = $1 ORDER BY s.created_at, s.id",
        &[
            "id",
            "registration_number",
            "state",
            "attempt",
            "document",
            "consents",
            "phone",
            "reason",
            "created_at",
            "submitted_at",
            "decided_at",
        ],
    ),
    (
        "identity",
        "SELECT given_name, surname, personal_number, country, document, phone, verified_at FROM identities
         WHERE user_id = $1",
        &[
            "given_name",
            "surname",
            "personal_number",
            "country",
            "document",
            "phone",
            "verified_at",
        ],
    ),
    // Rekey requests: the document data, and of the document's copy only its type, SHA-256 digest and size.
    (
        "rekey_requests",
        "SELECT r.id, o.registration_number, r.credential_id, r.state, r.document, r.photo_type, r.photo_sha256,
                CAST(CASE WHEN r.photo IS NULL THEN NULL
                     ELSE LENGTH(r.photo) / 4 * 3 - (LENGTH(r.photo) - LENGTH(RTRIM(r.photo, '='))) END
                     AS BIGINT) AS photo_bytes,
                r.reason, r.issue_at, r.created_at, r.submitted_at
         FROM rekey_requests r JOIN orders o ON o.id = r.order_id WHERE r.user_id = $1 ORDER BY r.created_at, r.id",
        &[
            "id",
            "registration_number",
            "credential_id",
            "state",
            "document",
            "photo_type",
            "photo_sha256",
            "photo_bytes",
            "reason",
            "issue_at",
            "created_at",
            "submitted_at",
        ],
    ),
    (
        "certificates",
        "SELECT t.serial, t.subject, t.status, t.not_before, t.not_after, t.revoked_at, t.revocation_reason,
                c.id AS credential_id
         FROM certificates t JOIN credentials c ON c.cert_serial = t.serial WHERE c.user_id = $1
         ORDER BY t.not_before, t.serial",
        &[
            "serial",
            "subject",
            "status",
            "not_before",
            "not_after",
            "revoked_at",
            "revocation_reason",
            "credential_id",
        ],
    ),
    // The issuance terms signed by each new key: their version, digest and time (the signed copy is downloadable).
    (
        "signed_terms",
        "SELECT e.credential_id, e.terms_version, e.terms_sha256, e.created_at
         FROM issuance_evidence e JOIN credentials c ON c.id = e.credential_id WHERE c.user_id = $1
         ORDER BY e.created_at",
        &["credential_id", "terms_version", "terms_sha256", "created_at"],
    ),
    // Each signing transaction (one authorisation, SAD): its credential, how many hashes it signed, when.
    (
        "signing_transactions",
        "SELECT credential_id, kind, COUNT(*) AS hashes, MIN(created_at) AS at FROM signatures WHERE user_id = $1
         GROUP BY sad_hash, credential_id, kind ORDER BY MIN(created_at)",
        &["credential_id", "kind", "hashes", "at"],
    ),
    // Documents signed on the web platform: name, digest, format, level and transactions spent.
    (
        "signing_history",
        "SELECT credential_id, name, digest, format, level, transactions, created_at FROM sign_history
         WHERE user_id = $1 ORDER BY created_at, id",
        &[
            "credential_id",
            "name",
            "digest",
            "format",
            "level",
            "transactions",
            "created_at",
        ],
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
