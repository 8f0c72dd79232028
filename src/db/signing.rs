//! Bearer tokens, TOTP step bookkeeping, SADs and the signature ledger.
//!
//! Every rule that must hold under concurrency (a TOTP step used once, a SAD used at most `remaining` times and only
//! for its hashes, a quota never overspent) is a conditional UPDATE whose affected-row count decides, so it holds
//! across connections, instances and both databases.

use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::AuditRow;
use super::{Db, DbError};

/// A stored bearer token.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub token_hash: String,
    pub user_id: String,
    /// `access` or `refresh`.
    pub kind: String,
    /// For an access token obtained with a refresh token: that refresh token's hash.
    pub refresh_hash: Option<String>,
    pub expires_at: i64,
    pub revoked: bool,
}

/// Stores a token.
pub async fn insert_token(db: &Db, t: &TokenRow, client: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, kind, refresh_hash, expires_at, revoked, client, created_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
    )
    .bind(&t.token_hash)
    .bind(&t.user_id)
    .bind(&t.kind)
    .bind(&t.refresh_hash)
    .bind(t.expires_at)
    .bind(client)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The token with this hash.
pub async fn token(db: &Db, token_hash: &str) -> Result<Option<TokenRow>, DbError> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, kind, refresh_hash, expires_at, revoked FROM access_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(TokenRow {
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        refresh_hash: r.try_get("refresh_hash")?,
        expires_at: r.try_get("expires_at")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    }))
}

/// Revokes a token and, for a refresh token, every access token obtained with it. Returns whether it existed.
pub async fn revoke_token(db: &Db, token_hash: &str, user_id: &str) -> Result<bool, DbError> {
    let mut tx = db.pool().begin().await?;
    let n = sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE token_hash = $1 AND user_id = $2")
        .bind(token_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE refresh_hash = $1 AND user_id = $2")
        .bind(token_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Marks TOTP step `step` used and clears the failure count, if no step at or after it was used before and the
/// pairing is not locked at `now`. Returns false (changing nothing) otherwise: a replay, or a lock.
pub async fn totp_accept_step(db: &Db, user_id: &str, step: i64, now: i64) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE totp_pairings SET last_used_step = $1, failed_attempts = 0, locked_until = NULL
         WHERE user_id = $2 AND status = 'active' AND last_used_step < $1
           AND (locked_until IS NULL OR locked_until <= $3)",
    )
    .bind(step)
    .bind(user_id)
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Counts a wrong code; at `max_failures` in a row the pairing locks until `lock_until`. Returns the failures so
/// far and the lock's end, if locked.
pub async fn totp_record_failure(
    db: &Db,
    user_id: &str,
    max_failures: i64,
    lock_until: i64,
) -> Result<(i64, Option<i64>), DbError> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "UPDATE totp_pairings SET failed_attempts = failed_attempts + 1,
                locked_until = CASE WHEN failed_attempts + 1 >= $1 THEN $2 ELSE locked_until END
         WHERE user_id = $3",
    )
    .bind(max_failures)
    .bind(lock_until)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    let r = sqlx::query("SELECT failed_attempts, locked_until FROM totp_pairings WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    let out = (r.try_get("failed_attempts")?, r.try_get("locked_until")?);
    tx.commit().await?;
    Ok(out)
}

/// A stored SAD.
#[derive(Debug, Clone)]
pub struct SadRow {
    pub sad_hash: String,
    pub credential_id: String,
    pub user_id: String,
    /// The hash algorithm OID the SAD was authorised for, if the client named one.
    pub hash_algo: Option<String>,
    pub remaining: i64,
    pub expires_at: i64,
}

/// Stores a SAD with the digests (hex) it may sign and how often each, and its audit row, in one transaction.
pub async fn insert_sad(
    db: &Db,
    sad: &SadRow,
    digests: &BTreeMap<String, i64>,
    audit: &AuditRow,
    now: i64,
) -> Result<(), DbError> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO sads (sad_hash, credential_id, user_id, hash_algo, remaining, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&sad.sad_hash)
    .bind(&sad.credential_id)
    .bind(&sad.user_id)
    .bind(&sad.hash_algo)
    .bind(sad.remaining)
    .bind(sad.expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (digest, uses) in digests {
        sqlx::query("INSERT INTO sad_hashes (sad_hash, digest, uses_left) VALUES ($1, $2, $3)")
            .bind(&sad.sad_hash)
            .bind(digest)
            .bind(uses)
            .execute(&mut *tx)
            .await?;
    }
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// The SAD with this hash, and the uses left per digest.
pub async fn sad(db: &Db, sad_hash: &str) -> Result<Option<(SadRow, BTreeMap<String, i64>)>, DbError> {
    let row = sqlx::query(
        "SELECT sad_hash, credential_id, user_id, hash_algo, remaining, expires_at FROM sads WHERE sad_hash = $1",
    )
    .bind(sad_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let sad = SadRow {
        sad_hash: r.try_get("sad_hash")?,
        credential_id: r.try_get("credential_id")?,
        user_id: r.try_get("user_id")?,
        hash_algo: r.try_get("hash_algo")?,
        remaining: r.try_get("remaining")?,
        expires_at: r.try_get("expires_at")?,
    };
    let rows = sqlx::query("SELECT digest, uses_left FROM sad_hashes WHERE sad_hash = $1")
        .bind(sad_hash)
        .fetch_all(db.pool())
        .await?;
    let mut digests = BTreeMap::new();
    for r in rows {
        digests.insert(r.try_get("digest")?, r.try_get("uses_left")?);
    }
    Ok(Some((sad, digests)))
}

/// A signature to record.
#[derive(Debug, Clone)]
pub struct SignatureRow {
    pub id: String,
    pub digest: String,
    pub hash_algo: String,
    pub sign_algo: String,
    /// Base64 of the signature value returned to the client.
    pub signature: String,
}

/// Why [`commit_signatures`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The SAD expired, was used up, or lacks one of the digests (another request used it meanwhile).
    SadSpent,
    /// The quota cannot cover the signatures; this many transactions are left.
    QuotaExhausted(i64),
}

/// The one short transaction of a signature request: consumes the SAD (count and each digest), debits the quota,
/// records the signatures and the audit row. All or nothing: on a refusal nothing is written, and the caller must
/// discard the signatures it computed.
#[allow(clippy::too_many_arguments)]
pub async fn commit_signatures(
    db: &Db,
    sad_hash: &str,
    credential_id: &str,
    user_id: &str,
    client: &str,
    rows: &[SignatureRow],
    audit: &AuditRow,
    now: i64,
) -> Result<Result<(), CommitRefusal>, DbError> {
    let n = rows.len() as i64;
    let mut tx = db.pool().begin().await?;
    // The quota first: on SQLite this takes the write lock at once, so the transaction never has to upgrade a
    // read lock; on PostgreSQL it locks the credential's quota row, which serialises its debits.
    let debited = sqlx::query("UPDATE quotas SET used = used + $1 WHERE credential_id = $2 AND used + $1 <= total")
        .bind(n)
        .bind(credential_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if debited != 1 {
        let left: Option<i64> = sqlx::query("SELECT total - used AS left_over FROM quotas WHERE credential_id = $1")
            .bind(credential_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("left_over"))
            .transpose()?;
        tx.rollback().await?;
        return Ok(Err(CommitRefusal::QuotaExhausted(left.unwrap_or(0))));
    }
    let consumed = sqlx::query(
        "UPDATE sads SET remaining = remaining - $1
         WHERE sad_hash = $2 AND credential_id = $3 AND remaining >= $1 AND expires_at > $4",
    )
    .bind(n)
    .bind(sad_hash)
    .bind(credential_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if consumed != 1 {
        tx.rollback().await?;
        return Ok(Err(CommitRefusal::SadSpent));
    }
    let mut per_digest: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rows {
        *per_digest.entry(r.digest.as_str()).or_default() += 1;
    }
    for (digest, uses) in per_digest {
        let ok = sqlx::query(
            "UPDATE sad_hashes SET uses_left = uses_left - $1 WHERE sad_hash = $2 AND digest = $3 AND uses_left >= $1",
        )
        .bind(uses)
        .bind(sad_hash)
        .bind(digest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ok != 1 {
            tx.rollback().await?;
            return Ok(Err(CommitRefusal::SadSpent));
        }
    }
    for r in rows {
        sqlx::query(
            "INSERT INTO signatures (id, credential_id, user_id, sad_hash, digest, hash_algo, sign_algo, signature, client, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(credential_id)
        .bind(user_id)
        .bind(sad_hash)
        .bind(&r.digest)
        .bind(&r.hash_algo)
        .bind(&r.sign_algo)
        .bind(&r.signature)
        .bind(client)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Signatures recorded for a credential (for the books: debits must equal rows).
pub async fn signature_count(db: &Db, credential_id: &str) -> Result<i64, DbError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM signatures WHERE credential_id = $1")
        .bind(credential_id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("n")?)
}
