//! Bearer tokens, TOTP step bookkeeping, SADs and the signature ledger.
//!
//! Every rule that must hold under concurrency (a TOTP step used once, a SAD used at most `remaining` times and only
//! for its hashes, a quota never overspent) is a conditional UPDATE whose affected-row count decides, so it holds
//! across connections, instances and both databases.

use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::AuditRow;
use super::{Db, DbError};

mod together;

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
    /// `service`, or `credential` for an OAuth token bound to one credential's hashes (it is also their SAD).
    pub scope: String,
}

/// Stores a token.
pub async fn insert_token(db: &Db, t: &TokenRow, client: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, kind, refresh_hash, expires_at, revoked, client, created_at, scope)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
    )
    .bind(&t.token_hash)
    .bind(&t.user_id)
    .bind(&t.kind)
    .bind(&t.refresh_hash)
    .bind(t.expires_at)
    .bind(client)
    .bind(now)
    .bind(&t.scope)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The token with this hash.
pub async fn token(db: &Db, token_hash: &str) -> Result<Option<TokenRow>, DbError> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, kind, refresh_hash, expires_at, revoked, scope FROM access_tokens WHERE token_hash = $1",
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
        scope: r.try_get("scope")?,
    }))
}

/// Revokes a token and, for a refresh token, every access token obtained with it. Returns whether it existed.
pub async fn revoke_token(db: &Db, token_hash: &str, user_id: &str) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
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
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Clears a user's authorisation lock and wrong-code count (an operator's unlock); false when there was neither.
pub async fn clear_totp_lock(conn: &mut sqlx::AnyConnection, user_id: &str, now: i64) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE totp_pairings SET failed_attempts = 0, locked_until = NULL
         WHERE user_id = $1 AND (failed_attempts > 0 OR locked_until > $2)",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Counts a wrong code; at `max_failures` in a row the pairing locks until `lock_until`. Returns the failures so
/// far and the lock's end, if locked.
pub async fn totp_record_failure(
    db: &Db,
    user_id: &str,
    max_failures: i64,
    lock_until: i64,
) -> Result<(i64, Option<i64>), DbError> {
    let mut tx = db.writer().begin().await?;
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

/// A SAD with the uses left of its digests (hex).
pub type SadUses = (SadRow, BTreeMap<String, i64>);

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
    let mut tx = db.writer().begin().await?;
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

/// The SAD with this hash, and the uses left of the given digests (hex; a digest the SAD lacks is absent), in
/// one query.
pub async fn sad(db: &Db, sad_hash: &str, digests: &[&str]) -> Result<Option<SadUses>, DbError> {
    let placeholders: Vec<String> = (2..digests.len() + 2).map(|i| format!("${i}")).collect();
    let join = if digests.is_empty() {
        "LEFT JOIN sad_hashes h ON 1 = 0".to_owned()
    } else {
        format!(
            "LEFT JOIN sad_hashes h ON h.sad_hash = s.sad_hash AND h.digest IN ({})",
            placeholders.join(", ")
        )
    };
    let sql = format!(
        "SELECT s.sad_hash, s.credential_id, s.user_id, s.hash_algo, s.remaining, s.expires_at, h.digest, h.uses_left
         FROM sads s {join} WHERE s.sad_hash = $1"
    );
    let mut q = sqlx::query(&sql).bind(sad_hash);
    for d in digests {
        q = q.bind(*d);
    }
    let rows = q.fetch_all(db.pool()).await?;
    sad_of_rows(&rows)
}

/// The SAD with this hash and the uses left of every digest it covers (for the signing core's recent reads, which
/// keep it a moment for the requests that follow with the same SAD).
pub async fn sad_whole(db: &Db, sad_hash: &str) -> Result<Option<SadUses>, DbError> {
    let rows = sqlx::query(
        "SELECT s.sad_hash, s.credential_id, s.user_id, s.hash_algo, s.remaining, s.expires_at, h.digest, h.uses_left
         FROM sads s LEFT JOIN sad_hashes h ON h.sad_hash = s.sad_hash WHERE s.sad_hash = $1",
    )
    .bind(sad_hash)
    .fetch_all(db.pool())
    .await?;
    sad_of_rows(&rows)
}

/// A SAD and its digests' uses from the rows of a `sads LEFT JOIN sad_hashes`.
fn sad_of_rows(rows: &[sqlx::any::AnyRow]) -> Result<Option<SadUses>, DbError> {
    let Some(r) = rows.first() else { return Ok(None) };
    let sad = SadRow {
        sad_hash: r.try_get("sad_hash")?,
        credential_id: r.try_get("credential_id")?,
        user_id: r.try_get("user_id")?,
        hash_algo: r.try_get("hash_algo")?,
        remaining: r.try_get("remaining")?,
        expires_at: r.try_get("expires_at")?,
    };
    let mut uses = BTreeMap::new();
    for r in rows {
        if let Some(d) = r.try_get::<Option<String>, _>("digest")? {
            uses.insert(d, r.try_get::<Option<i64>, _>("uses_left")?.unwrap_or(0));
        }
    }
    Ok(Some((sad, uses)))
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
    /// `signature` (consumes the SAD's digest) or `timestamp` (a transaction of its own, not bound to the SAD).
    pub kind: &'static str,
}

/// Why [`commit_signatures`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The SAD expired, was used up, or lacks one of the digests (another request used it meanwhile).
    SadSpent,
    /// The quota cannot cover the signatures; this many transactions are left.
    QuotaExhausted(i64),
    /// The credential cannot sign now: revoked, suspended, replaced, or its certificate out of its validity.
    Unusable,
    /// The access token the request came with was revoked or expired meanwhile.
    TokenRevoked,
}

/// What one signature request writes when it is committed.
#[derive(Debug, Clone)]
pub struct Commit {
    pub sad_hash: String,
    pub credential_id: String,
    pub user_id: String,
    pub client: String,
    /// The hash of the access token the request came with, when it came with one: it must still be valid.
    pub bearer: Option<String>,
    pub rows: Vec<SignatureRow>,
    pub audit: AuditRow,
    pub now: i64,
}

/// The signature ledger's writer: one task that commits signature requests in groups.
///
/// A group's requests share one transaction: consume the SAD (count and each digest), debit the quota, record the
/// signatures and the audit row, for the whole group in a few statements (`together`); when a condition fails there,
/// the transaction is rolled back and the requests are applied one by one, a refused request undoing only its own
/// changes. One commit (one fsync on SQLite) then covers every request of the group, so the ledger keeps up
/// with the token instead of with the disk. A request's caller returns its signatures only after the commit that
/// holds them; if that commit fails, every request of the group is told so and their signatures are discarded.
#[derive(Debug, Clone)]
pub struct Ledger {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

type Outcome = Result<Result<(), CommitRefusal>, DbError>;

/// Told of each committed group: its path (`together` or `one_by_one`), its requests and its time.
pub type OnGroup = fn(&'static str, usize, std::time::Duration);

#[derive(Debug)]
struct Job {
    commit: Commit,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// Largest group committed at once.
const GROUP: usize = 128;

impl Ledger {
    /// Starts the ledger's writer task on the current runtime. `on_group` is told how each group was committed
    /// (`together` or `one_by_one`), how many requests it held and how long it took (the service counts them in its
    /// metrics).
    pub fn spawn(db: Db, on_group: OnGroup) -> Ledger {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(4 * GROUP);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < GROUP {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                match commit_group(&db, &jobs, on_group).await {
                    Ok(outcomes) => {
                        for (job, outcome) in jobs.into_iter().zip(outcomes) {
                            let _ = job.reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, requests = jobs.len(), "a signature commit failed; the signatures are discarded");
                        let message = e.to_string();
                        for job in jobs {
                            let _ = job.reply.send(Err(DbError::Group(message.clone())));
                        }
                    }
                }
            }
        });
        Ledger { jobs: tx }
    }

    /// Commits one signature request; returns once it is durable (or refused, or failed).
    pub async fn commit(&self, commit: Commit) -> Outcome {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { commit, reply })
            .await
            .map_err(|_| DbError::Group("the signature ledger has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Group("the signature ledger has stopped".into()))?
    }
}

async fn commit_group(db: &Db, jobs: &[Job], on_group: OnGroup) -> Result<Vec<Result<(), CommitRefusal>>, DbError> {
    let started = std::time::Instant::now();
    let mut tx = db.writer().begin().await?;
    let commits: Vec<&Commit> = jobs.iter().map(|j| &j.commit).collect();
    let (path, outcomes) = if together::apply(&mut tx, &commits, db.backend()).await? {
        ("together", vec![Ok(()); jobs.len()])
    } else {
        // Whatever the group's statements changed goes; the requests are applied again one by one.
        tx.rollback().await?;
        tx = db.writer().begin().await?;
        // Quota rows locked in one order (by credential) on every instance, so two groups never wait for each
        // other.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&i, &j| jobs[i].commit.credential_id.cmp(&jobs[j].commit.credential_id));
        let mut applied = vec![None; jobs.len()];
        for i in order {
            applied[i] = Some(apply(&mut tx, &jobs[i].commit).await?);
        }
        ("one_by_one", applied.into_iter().map(|o| o.expect("applied")).collect())
    };
    // The rows of the accepted requests, a few statements for the whole group.
    let accepted: Vec<&Commit> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(j, _)| &j.commit)
        .collect();
    let signatures: Vec<(&Commit, &SignatureRow)> = accepted
        .iter()
        .flat_map(|c| c.rows.iter().map(move |r| (*c, r)))
        .collect();
    for chunk in signatures.chunks(400) {
        let sql = format!(
            "INSERT INTO signatures (id, credential_id, user_id, sad_hash, digest, hash_algo, sign_algo, signature, client, created_at, kind) VALUES {}",
            super::value_rows(chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for (c, r) in chunk {
            q = q
                .bind(&r.id)
                .bind(&c.credential_id)
                .bind(&c.user_id)
                .bind(&c.sad_hash)
                .bind(&r.digest)
                .bind(&r.hash_algo)
                .bind(&r.sign_algo)
                .bind(&r.signature)
                .bind(&c.client)
                .bind(c.now)
                .bind(r.kind);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in accepted.chunks(400) {
        let rows: Vec<&AuditRow> = chunk.iter().map(|c| &c.audit).collect();
        super::audit::insert_many(&mut *tx, &rows).await?;
    }
    tx.commit().await?;
    on_group(path, jobs.len(), started.elapsed());
    Ok(outcomes)
}

/// A timestamp's debit.
const DEBIT: &str = "UPDATE quotas SET used = used + $1 WHERE credential_id = $2 AND used + $1 <= total";
/// A signature's debit: the credential can sign at `$3` and the access token `$4` is valid.
static CHECKED_DEBIT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{DEBIT} AND {} AND {}", usable_sql("$2", "$3"), bearer_sql("$4", "$3")));

/// The condition that the credential (placeholder `cred`) can sign at `now` (the rule of `signing::usable`):
/// active, its certificate neither revoked nor suspended and within its validity.
fn usable_sql(cred: &str, now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
         WHERE c.id = {cred} AND c.status = 'active' AND t.status = 'valid' AND t.not_before <= {now}
           AND t.not_after > {now})"
    )
}

/// The condition that the access token whose hash is `token` is unrevoked and unexpired at `now` (true for the
/// empty hash: a request that came without one).
fn bearer_sql(token: &str, now: &str) -> String {
    format!(
        "({token} = '' OR EXISTS (SELECT 1 FROM access_tokens a
          WHERE a.token_hash = {token} AND a.revoked = 0 AND a.expires_at > {now}))"
    )
}

/// Consumes the SAD (its count, then each digest) and debits the quota, each by a conditional UPDATE. A refused
/// condition undoes this request's earlier updates in the same transaction (nobody else can see them), so the
/// other requests of the group are unaffected. The quota goes first: on PostgreSQL its row lock serialises the
/// credential's debits. A signature's debit also requires, in the same statement, that the credential can sign
/// and that the request's access token is still valid: what the request read before the token may be a moment
/// old (the signing core's recent reads), this is not.
async fn apply(conn: &mut sqlx::AnyConnection, c: &Commit) -> Outcome {
    // Every row is a transaction; only signatures use the SAD.
    let transactions = c.rows.len() as i64;
    let n = c.rows.iter().filter(|r| r.kind == "signature").count() as i64;
    let bearer = c.bearer.as_deref().unwrap_or("");
    let query = if n == 0 {
        sqlx::query(DEBIT).bind(transactions).bind(&c.credential_id)
    } else {
        sqlx::query(&CHECKED_DEBIT)
            .bind(transactions)
            .bind(&c.credential_id)
            .bind(c.now)
            .bind(bearer)
    };
    let debited = query.execute(&mut *conn).await?.rows_affected();
    if debited != 1 {
        return Ok(Err(why_not_debited(conn, c, n, bearer).await?));
    }
    if n == 0 {
        // A timestamp alone (CSC signatures/timestamp) uses no SAD: the debit is the whole condition.
        return Ok(Ok(()));
    }
    let consumed = sqlx::query(
        "UPDATE sads SET remaining = remaining - $1
         WHERE sad_hash = $2 AND credential_id = $3 AND remaining >= $1 AND expires_at > $4",
    )
    .bind(n)
    .bind(&c.sad_hash)
    .bind(&c.credential_id)
    .bind(c.now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if consumed != 1 {
        undo_quota(&mut *conn, transactions, &c.credential_id).await?;
        return Ok(Err(CommitRefusal::SadSpent));
    }
    let mut per_digest: BTreeMap<&str, i64> = BTreeMap::new();
    for r in c.rows.iter().filter(|r| r.kind == "signature") {
        *per_digest.entry(r.digest.as_str()).or_default() += 1;
    }
    let mut done: Vec<(&str, i64)> = Vec::new();
    for (digest, uses) in per_digest {
        let ok = sqlx::query(
            "UPDATE sad_hashes SET uses_left = uses_left - $1 WHERE sad_hash = $2 AND digest = $3 AND uses_left >= $1",
        )
        .bind(uses)
        .bind(&c.sad_hash)
        .bind(digest)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if ok != 1 {
            for (d, u) in done {
                sqlx::query("UPDATE sad_hashes SET uses_left = uses_left + $1 WHERE sad_hash = $2 AND digest = $3")
                    .bind(u)
                    .bind(&c.sad_hash)
                    .bind(d)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("UPDATE sads SET remaining = remaining + $1 WHERE sad_hash = $2")
                .bind(n)
                .bind(&c.sad_hash)
                .execute(&mut *conn)
                .await?;
            undo_quota(&mut *conn, transactions, &c.credential_id).await?;
            return Ok(Err(CommitRefusal::SadSpent));
        }
        done.push((digest, uses));
    }
    Ok(Ok(()))
}

/// Why a debit was refused: the credential or the token first (for signatures), else the quota, with what is left.
async fn why_not_debited(
    conn: &mut sqlx::AnyConnection,
    c: &Commit,
    n: i64,
    bearer: &str,
) -> Result<CommitRefusal, DbError> {
    let r = sqlx::query(&format!(
        "SELECT q.total - q.used AS left_over, CASE WHEN {} THEN 1 ELSE 0 END AS usable,
                CASE WHEN {} THEN 1 ELSE 0 END AS bearer_ok
         FROM quotas q WHERE q.credential_id = $1",
        usable_sql("$1", "$2"),
        bearer_sql("$3", "$2")
    ))
    .bind(&c.credential_id)
    .bind(c.now)
    .bind(bearer)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = r else {
        return Ok(CommitRefusal::QuotaExhausted(0));
    };
    let (usable, bearer_ok): (i64, i64) = (r.try_get("usable")?, r.try_get("bearer_ok")?);
    Ok(if n > 0 && usable == 0 {
        CommitRefusal::Unusable
    } else if n > 0 && bearer_ok == 0 {
        CommitRefusal::TokenRevoked
    } else {
        CommitRefusal::QuotaExhausted(r.try_get("left_over")?)
    })
}

async fn undo_quota(conn: &mut sqlx::AnyConnection, n: i64, credential_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE quotas SET used = used - $1 WHERE credential_id = $2")
        .bind(n)
        .bind(credential_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Signatures recorded for a credential (for the books: debits must equal rows).
pub async fn signature_count(db: &Db, credential_id: &str) -> Result<i64, DbError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM signatures WHERE credential_id = $1")
        .bind(credential_id)
        .fetch_one(db.pool())
        .await?;
    Ok(r.try_get("n")?)
}
