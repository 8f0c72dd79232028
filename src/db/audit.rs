//! The audit tables: appended rows, and the chain the sealer builds over them.

use sqlx::Row;

use super::{Db, DbError};

/// One audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub client: String,
    /// JSON text.
    pub details: String,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

const COLUMNS: &str = "id, at, actor, action, target, outcome, client, details, seq, prev_hash, hash";

fn from_row(r: &sqlx::any::AnyRow) -> Result<AuditRow, DbError> {
    Ok(AuditRow {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        outcome: r.try_get("outcome")?,
        client: r.try_get("client")?,
        details: r.try_get("details")?,
        seq: r.try_get("seq")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Appends an unsealed row.
pub async fn insert<'e, E>(exec: E, row: &AuditRow) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, action, target, outcome, client, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.outcome)
    .bind(&row.client)
    .bind(&row.details)
    .execute(exec)
    .await?;
    Ok(())
}

/// Appends several unsealed rows in one statement.
pub async fn insert_many<'e, E>(exec: E, rows: &[&AuditRow]) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO audit_events (id, at, actor, action, target, outcome, client, details) VALUES {}",
        super::value_rows(rows.len(), 8)
    );
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(&r.id)
            .bind(r.at)
            .bind(&r.actor)
            .bind(&r.action)
            .bind(&r.target)
            .bind(&r.outcome)
            .bind(&r.client)
            .bind(&r.details);
    }
    q.execute(exec).await?;
    Ok(())
}

/// The end of the chain: the last sealed sequence number and its hash.
pub async fn head(db: &Db) -> Result<(i64, String), DbError> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Up to `limit` unsealed rows in the order they will be chained. An unsealed row has neither `seq` nor `hash`
/// ([`seal`] writes both); the query asks for `hash IS NULL`, which only the partial index `audit_events_unsealed`
/// answers, already in chain order (asked as `seq IS NULL`, SQLite chose the `UNIQUE (seq)` index and sorted every
/// unsealed row for each page).
pub async fn unsealed(db: &Db, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    let rows = sqlx::query(&unsealed_sql()).bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// The query of [`unsealed`], its limit bound as `$1` (public so that a test can ask each database for its plan).
pub fn unsealed_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_events WHERE hash IS NULL ORDER BY at, id LIMIT $1")
}

/// Sealed rows with `seq > after`, in chain order, at most `limit`.
pub async fn sealed_after(db: &Db, after: i64, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq IS NOT NULL AND seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Number of rows not yet sealed.
pub async fn unsealed_count(db: &Db) -> Result<i64, DbError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE hash IS NULL")
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("n")?)
}

/// Rows of the chain written by one statement.
const SEAL_CHUNK: usize = 250;

/// Writes the chain positions computed for `rows` (each `(id, seq, prev_hash, hash)`) and moves the head from
/// `old_seq` to the last one, in one transaction. Returns false, changing nothing, when another sealer got there
/// first.
pub async fn seal(db: &Db, old_seq: i64, rows: &[(String, i64, String, String)]) -> Result<bool, DbError> {
    let Some((_, new_seq, _, new_hash)) = rows.last() else {
        return Ok(true);
    };
    let mut tx = db.writer().begin().await?;
    let moved = sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3")
        .bind(new_seq)
        .bind(new_hash)
        .bind(old_seq)
        .execute(&mut *tx)
        .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    // A few statements for the whole batch, not one per row: the sealer keeps pace with the ledger's groups.
    for chunk in rows.chunks(SEAL_CHUNK) {
        let sql = format!(
            "WITH v(id, seq, prev_hash, hash) AS (VALUES {})
             UPDATE audit_events SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash FROM v
             WHERE audit_events.id = v.id AND audit_events.seq IS NULL",
            super::value_rows(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (id, seq, prev, hash) in chunk {
            q = q.bind(id).bind(seq).bind(prev).bind(hash);
        }
        if q.execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}
