//! The outbox table.

use sqlx::Row;

use super::{Db, DbError};

/// A queued message.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    /// `email` or `sms`.
    pub medium: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub kind: String,
    pub attempts: i64,
    pub created_at: i64,
    /// The files an e-mail carries, read when the row is claimed for sending ([`attachments`]).
    pub attachments: Vec<Attachment>,
}

/// A file an e-mail carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the recipient sees (`Nota-comanda-PRF-2026-000001.pdf`).
    pub filename: String,
    /// Its media type (`application/pdf`).
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Queues a message (status `pending`, due at once).
pub async fn insert<'e, E>(exec: E, r: &OutboxRow) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO outbox (id, medium, recipient, subject, body, kind, status, attempts, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(&r.id)
    .bind(&r.medium)
    .bind(&r.recipient)
    .bind(&r.subject)
    .bind(&r.body)
    .bind(&r.kind)
    .bind(r.created_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Queues the files of message `outbox_id`, in the caller's transaction (the one that queues the message).
pub async fn insert_attachments(
    conn: &mut sqlx::AnyConnection,
    outbox_id: &str,
    files: &[Attachment],
) -> Result<(), DbError> {
    for (n, f) in files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO outbox_attachments (outbox_id, n, filename, content_type, content) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(outbox_id)
        .bind(n as i64)
        .bind(&f.filename)
        .bind(&f.content_type)
        .bind(&f.content)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The files of message `outbox_id`, in the order they were queued.
pub async fn attachments(db: &Db, outbox_id: &str) -> Result<Vec<Attachment>, DbError> {
    let rows =
        sqlx::query("SELECT filename, content_type, content FROM outbox_attachments WHERE outbox_id = $1 ORDER BY n")
            .bind(outbox_id)
            .fetch_all(db.writer())
            .await?;
    rows.iter()
        .map(|r| {
            Ok(Attachment {
                filename: r.try_get("filename")?,
                content_type: r.try_get("content_type")?,
                content: r.try_get("content")?,
            })
        })
        .collect()
}

/// Pending messages of one medium (`email`, `sms`) due at `now` and not claimed by a live dispatcher, oldest first.
pub async fn due(db: &Db, medium: &str, now: i64, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    let rows = sqlx::query(
        "SELECT id, medium, recipient, subject, body, kind, attempts, created_at FROM outbox
         WHERE status = 'pending' AND medium = $1 AND next_attempt_at <= $2
           AND (claimed_until IS NULL OR claimed_until < $2)
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(medium)
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                medium: r.try_get("medium")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                kind: r.try_get("kind")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                attachments: Vec::new(),
            })
        })
        .collect()
}

/// Claims a message for `dispatcher` until `until`. Returns the attempts made so far, or `None` when another
/// dispatcher holds a live claim or the message was sent. A claim that has expired (its holder died, or is stuck
/// past the claim) can be taken over.
pub async fn claim(db: &Db, id: &str, dispatcher: &str, now: i64, until: i64) -> Result<Option<i64>, DbError> {
    let row = sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2
         WHERE id = $3 AND status = 'pending' AND next_attempt_at <= $4
           AND (claimed_until IS NULL OR claimed_until < $4)
         RETURNING attempts",
    )
    .bind(dispatcher)
    .bind(until)
    .bind(id)
    .bind(now)
    .fetch_optional(db.writer())
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("attempts")?),
        None => None,
    })
}

/// Marks a claimed message sent. False when `dispatcher` no longer holds it (its claim expired and another
/// dispatcher took the row over, which will send it again).
///
/// A one-time code has no business in the database once it is delivered: the body of a message whose kind carries
/// a code is blanked when it is marked sent (the code itself is kept only as a hash, in `one_time_codes`). Nor has
/// a copy of a document: the message's attachments are deleted with the same commit.
pub async fn mark_sent(db: &Db, id: &str, dispatcher: &str, now: i64) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, claimed_until = NULL,
                body = CASE WHEN kind LIKE '%code%' THEN '' ELSE body END
         WHERE id = $2 AND claimed_by = $3 AND status = 'pending'",
    )
    .bind(now)
    .bind(id)
    .bind(dispatcher)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        sqlx::query("DELETE FROM outbox_attachments WHERE outbox_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Records a failed attempt; the message is due again at `retry_at`. False when `dispatcher` no longer holds it.
pub async fn mark_failed(db: &Db, id: &str, dispatcher: &str, error: &str, retry_at: i64) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, claimed_until = NULL
         WHERE id = $3 AND claimed_by = $4 AND status = 'pending'",
    )
    .bind(error)
    .bind(retry_at)
    .bind(id)
    .bind(dispatcher)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The delivery state of one message, for support and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxState {
    /// `pending` or `sent`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The delivery state of a message, if it exists.
pub async fn state(db: &Db, id: &str) -> Result<Option<OutboxState>, DbError> {
    let row = sqlx::query(
        "SELECT status, attempts, next_attempt_at, claimed_by, claimed_until, sent_at, last_error
         FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.writer())
    .await?;
    row.map(|r| {
        Ok(OutboxState {
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            claimed_by: r.try_get("claimed_by")?,
            claimed_until: r.try_get("claimed_until")?,
            sent_at: r.try_get("sent_at")?,
            last_error: r.try_get("last_error")?,
        })
    })
    .transpose()
}
