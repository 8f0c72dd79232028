//! Web signing jobs (product rules §7): the uploaded files, kept until the retention time, their signed outputs,
//! and the signing history, which keeps only names and digests once the files are gone.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// A signing job's state, stored as text.
    ///
    /// | state | meaning | next |
    /// | --- | --- | --- |
    /// | `uploaded` | the files are stored, waiting for the holder's authorisation | signing |
    /// | `signing` | one authorisation claimed the job and signs it (`signed_at` is when it claimed it) | signed, uploaded |
    /// | `signed` | every file is signed; the outputs wait for download until the retention time | – |
    pub enum JobState {
        Uploaded = "uploaded",
        Signing = "signing",
        Signed = "signed",
    }
}

/// What moves a job: one row of the transition table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// An authorisation takes the job, so that a second one at the same time is refused instead of signing (and
    /// charging) twice.
    Claim,
    /// The claiming authorisation failed (a wrong code, a busy token, a refusal): the job waits again.
    Release,
    /// The claiming authorisation signed every file.
    Sign,
}

impl JobEvent {
    /// The transition table: the states the event applies to, and the state it leads to.
    pub fn rule(self) -> (&'static [JobState], JobState) {
        match self {
            JobEvent::Claim => (&[JobState::Uploaded], JobState::Signing),
            JobEvent::Release => (&[JobState::Signing], JobState::Uploaded),
            JobEvent::Sign => (&[JobState::Signing], JobState::Signed),
        }
    }
}

stored_state! {
    /// How a job's file is signed, stored as text (`sign_job_files.kind`).
    pub enum FileKind {
        /// A PDF signed inside itself (PAdES).
        Pades = "pades",
        /// Any file, or a PDF on request, signed as a `.p7s` (CAdES).
        Cades = "cades",
    }
}

impl FileKind {
    /// `PAdES` or `CAdES`, as the history and the job's answer name the format.
    pub fn format(self) -> &'static str {
        match self {
            FileKind::Pades => "PAdES",
            FileKind::Cades => "CAdES",
        }
    }
}

/// A new job.
pub struct NewJob<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    /// Whether PDFs are signed as `.p7s` (CAdES) instead of PAdES.
    pub p7s_for_pdf: bool,
    pub level: &'a str,
    pub expires_at: i64,
}

/// An uploaded file of a new job.
pub struct NewFile<'a> {
    pub name: &'a str,
    pub kind: FileKind,
    pub digest: &'a str,
    /// A visible signature's rectangle (JSON), if asked.
    pub rect: Option<&'a str>,
    /// The PDF's empty signature field to sign into, if chosen.
    pub field: Option<&'a str>,
    pub content: &'a [u8],
}

/// Stores a new job, uploaded, with its files numbered from 0.
pub async fn create(
    conn: &mut sqlx::AnyConnection,
    j: &NewJob<'_>,
    files: &[NewFile<'_>],
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sign_jobs (id, user_id, credential_id, state, p7s_for_pdf, level, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(j.id)
    .bind(j.user_id)
    .bind(j.credential_id)
    .bind(JobState::Uploaded.as_str())
    .bind(i64::from(j.p7s_for_pdf))
    .bind(j.level)
    .bind(now)
    .bind(j.expires_at)
    .execute(&mut *conn)
    .await?;
    for (n, f) in files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sign_job_files (job_id, n, name, kind, digest, size, rect, field, content)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(j.id)
        .bind(n as i64)
        .bind(f.name)
        .bind(f.kind.as_str())
        .bind(f.digest)
        .bind(f.content.len() as i64)
        .bind(f.rect)
        .bind(f.field)
        .bind(f.content.to_vec())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A job as stored.
pub struct Job {
    pub credential_id: String,
    pub state: JobState,
    pub level: String,
    pub expires_at: i64,
}

/// One of a user's jobs.
pub async fn get(db: &Db, id: &str, user_id: &str) -> Result<Option<Job>, DbError> {
    let Some(r) =
        sqlx::query("SELECT credential_id, state, level, expires_at FROM sign_jobs WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(db.writer())
            .await?
    else {
        return Ok(None);
    };
    Ok(Some(Job {
        credential_id: r.try_get("credential_id")?,
        state: JobState::parse(&r.try_get::<String, _>("state")?).ok_or(DbError::Corrupt("sign_jobs.state"))?,
        level: r.try_get("level")?,
        expires_at: r.try_get("expires_at")?,
    }))
}

/// An uploaded file, as signing reads it.
pub struct Upload {
    pub n: i64,
    pub name: String,
    pub kind: FileKind,
    /// The hex SHA-256 of the file, as stored at upload (the history's digest).
    pub sha256: String,
    pub rect: Option<String>,
    /// The PDF's empty signature field to sign into, if chosen.
    pub field: Option<String>,
    pub content: Vec<u8>,
}

/// A job's uploaded files, in order.
pub async fn uploads(db: &Db, job_id: &str) -> Result<Vec<Upload>, DbError> {
    let rows = sqlx::query(
        "SELECT n, name, kind, digest, rect, field, content FROM sign_job_files WHERE job_id = $1 ORDER BY n",
    )
    .bind(job_id)
    .fetch_all(db.writer())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Upload {
                n: r.try_get("n")?,
                name: r.try_get("name")?,
                kind: FileKind::stored(r.try_get("kind")?, "sign_job_files.kind")?,
                sha256: r.try_get("digest")?,
                rect: r.try_get("rect")?,
                field: r.try_get("field")?,
                content: r.try_get("content")?,
            })
        })
        .collect()
}

/// Stores the signed output of file `n`.
pub async fn set_output(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    n: i64,
    name: &str,
    output: &[u8],
) -> Result<(), DbError> {
    sqlx::query("UPDATE sign_job_files SET output = $1, output_name = $2 WHERE job_id = $3 AND n = $4")
        .bind(output.to_vec())
        .bind(name)
        .bind(job_id)
        .bind(n)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`JobEvent::Claim`]: false when another authorisation holds the job or signed it. A claim older than
/// `stale_before` (its authorisation's process died) is taken over.
pub async fn claim(db: &Db, job_id: &str, now: i64, stale_before: i64) -> Result<bool, DbError> {
    let (from, to) = JobEvent::Claim.rule();
    let (to, from) = super::state_change(from, to, JobState::as_str);
    let sql = format!(
        "UPDATE sign_jobs SET {to}, signed_at = $1 WHERE id = $2 AND ({from} OR (state = '{}' AND signed_at < $3))",
        JobState::Signing.as_str()
    );
    let n = sqlx::query(&sql)
        .bind(now)
        .bind(job_id)
        .bind(stale_before)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// [`JobEvent::Release`]: the claim is given back.
pub async fn release(db: &Db, job_id: &str) -> Result<(), DbError> {
    let (from, to) = JobEvent::Release.rule();
    let (to, from) = super::state_change(from, to, JobState::as_str);
    let sql = format!("UPDATE sign_jobs SET {to}, signed_at = NULL WHERE id = $1 AND {from}");
    sqlx::query(&sql).bind(job_id).execute(db.writer()).await?;
    Ok(())
}

/// [`JobEvent::Sign`]: false when the job was not claimed any more.
pub async fn mark_signed(conn: &mut sqlx::AnyConnection, job_id: &str, now: i64) -> Result<bool, DbError> {
    let (from, to) = JobEvent::Sign.rule();
    let (to, from) = super::state_change(from, to, JobState::as_str);
    let sql = format!("UPDATE sign_jobs SET {to}, signed_at = $1 WHERE id = $2 AND {from}");
    let n = sqlx::query(&sql)
        .bind(now)
        .bind(job_id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// A signed file: its name and bytes, `None` while not signed.
pub async fn output(db: &Db, job_id: &str, n: i64) -> Result<Option<Option<(String, Vec<u8>)>>, DbError> {
    let Some(r) = sqlx::query("SELECT output_name, output FROM sign_job_files WHERE job_id = $1 AND n = $2")
        .bind(job_id)
        .bind(n)
        .fetch_optional(db.writer())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(signed(&r)?))
}

fn signed(r: &sqlx::any::AnyRow) -> Result<Option<(String, Vec<u8>)>, DbError> {
    match (
        r.try_get::<Option<String>, _>("output_name")?,
        r.try_get::<Option<Vec<u8>>, _>("output")?,
    ) {
        (Some(name), Some(bytes)) => Ok(Some((name, bytes))),
        _ => Ok(None),
    }
}

/// Every file of a job, signed (name, bytes) or not (`None`), in order.
pub async fn outputs(db: &Db, job_id: &str) -> Result<Vec<Option<(String, Vec<u8>)>>, DbError> {
    let rows = sqlx::query("SELECT output_name, output FROM sign_job_files WHERE job_id = $1 ORDER BY n")
        .bind(job_id)
        .fetch_all(db.writer())
        .await?;
    rows.iter().map(signed).collect()
}

/// Every file of a job without its bytes: number, uploaded name, signed name once signed.
pub async fn names(db: &Db, job_id: &str) -> Result<Vec<(i64, String, Option<String>)>, DbError> {
    let rows = sqlx::query("SELECT n, name, output_name FROM sign_job_files WHERE job_id = $1 ORDER BY n")
        .bind(job_id)
        .fetch_all(db.writer())
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("n")?, r.try_get("name")?, r.try_get("output_name")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// A signature of the history (the document's name and digest, never its content).
pub struct Signed<'a> {
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub job_id: &'a str,
    pub name: &'a str,
    pub digest: &'a str,
    /// `PAdES` or `CAdES`.
    pub format: &'a str,
    pub level: &'a str,
    pub transactions: i64,
}

/// Adds a signature to the user's history.
pub async fn add_history(conn: &mut sqlx::AnyConnection, s: &Signed<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sign_history (id, user_id, credential_id, job_id, name, digest, format, level, transactions, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(s.user_id)
    .bind(s.credential_id)
    .bind(s.job_id)
    .bind(s.name)
    .bind(s.digest)
    .bind(s.format)
    .bind(s.level)
    .bind(s.transactions)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A signature of the history, as read.
pub struct HistoryEntry {
    pub name: String,
    pub digest: String,
    pub format: String,
    pub level: String,
    pub transactions: i64,
    pub credential_id: String,
    pub created_at: i64,
}

/// A user's signing history, newest first, at most `limit`.
pub async fn history(db: &Db, user_id: &str, limit: i64) -> Result<Vec<HistoryEntry>, DbError> {
    let rows = sqlx::query(
        "SELECT name, digest, format, level, transactions, credential_id, created_at FROM sign_history
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.writer())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                name: r.try_get("name")?,
                digest: r.try_get("digest")?,
                format: r.try_get("format")?,
                level: r.try_get("level")?,
                transactions: r.try_get("transactions")?,
                credential_id: r.try_get("credential_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Deletes the jobs past their retention time at `now`, with their files (the history stays); returns how many.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64, DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM sign_job_files WHERE job_id IN (SELECT id FROM sign_jobs WHERE expires_at <= $1)")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let n = sqlx::query("DELETE FROM sign_jobs WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}
