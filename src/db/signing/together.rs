//! The ledger's fast path: a whole group of signature requests applied in a few set-based statements instead of a
//! few statements per request.
//!
//! Each request of a group needs its credential able to sign, its access token valid, its quota debited, its SAD's
//! count and digests consumed. Per request that is three or four statements, each a trip to the database (on SQLite,
//! to the connection's thread); here the group's requests are summed per credential, per SAD and per digest, and
//! each sum is one row of a `VALUES` list that one conditional `UPDATE … FROM` joins on the table's key. Every
//! row's condition must hold (the affected row count equals the rows asked): if one does not, the caller rolls the
//! group's transaction back and applies the requests one by one in a new one, where a refused request is told why
//! and the others go on.
//! Refusals are rare (each request was checked before the token signed), so the fast path is the usual one.

use std::collections::BTreeMap;

use sqlx::Row;

use super::super::{Backend, DbError};
use super::Commit;

/// Bound values one statement may carry at most (SQLite allows 32 766): a larger group goes one by one.
const MAX_BINDS: usize = 30_000;

/// What a group asks, summed.
#[derive(Default)]
struct Sums<'a> {
    /// Transactions per credential.
    quotas: BTreeMap<&'a str, i64>,
    /// Credentials with signatures: they must be able to sign.
    signing: Vec<&'a str>,
    /// Access tokens the requests came with.
    bearers: Vec<&'a str>,
    /// Signatures per SAD, with the SAD's credential.
    sads: BTreeMap<&'a str, (&'a str, i64)>,
    /// Uses per (SAD, digest).
    digests: BTreeMap<(&'a str, &'a str), i64>,
}

impl<'a> Sums<'a> {
    /// The sums of `commits`; `None` when a SAD is named with two credentials (one request is then refused, which
    /// only the one-by-one path can say).
    fn of(commits: &[&'a Commit]) -> Option<Sums<'a>> {
        let mut s = Sums::default();
        for c in commits {
            *s.quotas.entry(&c.credential_id).or_default() += c.rows.len() as i64;
            if let Some(b) = c.bearer.as_deref().filter(|b| !b.is_empty()) {
                s.bearers.push(b);
            }
            let signatures = c.rows.iter().filter(|r| r.kind == "signature");
            let n = signatures.clone().count() as i64;
            if n == 0 {
                continue;
            }
            s.signing.push(&c.credential_id);
            let sad = s.sads.entry(&c.sad_hash).or_insert((&c.credential_id, 0));
            if sad.0 != c.credential_id {
                return None;
            }
            sad.1 += n;
            for r in signatures {
                *s.digests.entry((&c.sad_hash, &r.digest)).or_default() += 1;
            }
        }
        s.signing.sort_unstable();
        s.signing.dedup();
        s.bearers.sort_unstable();
        s.bearers.dedup();
        Some(s)
    }

    fn binds(&self) -> usize {
        self.signing.len() + self.bearers.len() + 2 * self.quotas.len() + 3 * self.sads.len() + 3 * self.digests.len()
    }
}

/// `$first, $first+1, …` for `n` values.
fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies every request of the group: true when all were applied. When it returns false, some statements may
/// have changed rows: the caller rolls the transaction back (it is the first thing the transaction does, so nothing
/// else is lost) and goes one by one. No savepoint: on SQLite a savepoint copies every page it changes to a
/// sub-journal, and costs two more trips to the connection.
pub(super) async fn apply(
    conn: &mut sqlx::AnyConnection,
    commits: &[&Commit],
    backend: Backend,
) -> Result<bool, DbError> {
    let Some(sums) = Sums::of(commits) else {
        return Ok(false);
    };
    if commits.is_empty() || sums.binds() > MAX_BINDS {
        return Ok(false);
    }
    let now = commits.iter().map(|c| c.now).max().unwrap_or_default();
    try_apply(conn, &sums, now, backend).await
}

async fn try_apply(conn: &mut sqlx::AnyConnection, s: &Sums<'_>, now: i64, backend: Backend) -> Result<bool, DbError> {
    if !may_sign(conn, s, now).await? {
        return Ok(false);
    }
    if backend == Backend::Postgres {
        // The quota rows locked in one order (by credential) on every instance, as the one-by-one path does.
        let creds: Vec<&str> = s.quotas.keys().copied().collect();
        let sql = format!(
            "SELECT credential_id FROM quotas WHERE credential_id IN ({}) ORDER BY credential_id FOR UPDATE",
            list(1, creds.len())
        );
        let mut q = sqlx::query(&sql);
        for c in &creds {
            q = q.bind(*c);
        }
        q.fetch_all(&mut *conn).await?;
    }
    // The quotas: each credential's sum within what is left.
    let sql = format!(
        "WITH v(cred, n) AS (VALUES {})
         UPDATE quotas SET used = used + v.n FROM v
         WHERE quotas.credential_id = v.cred AND quotas.used + v.n <= quotas.total",
        super::super::value_rows(s.quotas.len(), 2)
    );
    let mut q = sqlx::query(&sql);
    for (cred, n) in &s.quotas {
        q = q.bind(*cred).bind(*n);
    }
    if q.execute(&mut *conn).await?.rows_affected() != s.quotas.len() as u64 {
        return Ok(false);
    }
    if s.sads.is_empty() {
        return Ok(true);
    }
    // The SADs: each one's count, for its own credential, unexpired.
    let sql = format!(
        "WITH v(sad, cred, n) AS (VALUES {})
         UPDATE sads SET remaining = remaining - v.n FROM v
         WHERE sads.sad_hash = v.sad AND sads.credential_id = v.cred AND sads.remaining >= v.n
           AND sads.expires_at > ${}",
        super::super::value_rows(s.sads.len(), 3),
        3 * s.sads.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for (sad, (cred, n)) in &s.sads {
        q = q.bind(*sad).bind(*cred).bind(*n);
    }
    if q.bind(now).execute(&mut *conn).await?.rows_affected() != s.sads.len() as u64 {
        return Ok(false);
    }
    // Each digest's uses.
    let sql = format!(
        "WITH v(sad, digest, k) AS (VALUES {})
         UPDATE sad_hashes SET uses_left = uses_left - v.k FROM v
         WHERE sad_hashes.sad_hash = v.sad AND sad_hashes.digest = v.digest AND sad_hashes.uses_left >= v.k",
        super::super::value_rows(s.digests.len(), 3)
    );
    let mut q = sqlx::query(&sql);
    for ((sad, digest), k) in &s.digests {
        q = q.bind(*sad).bind(*digest).bind(*k);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected() == s.digests.len() as u64)
}

/// Whether every credential with signatures can sign at `now` and every access token is still valid: the
/// conditions of the one-by-one debit, for the whole group in one read.
async fn may_sign(conn: &mut sqlx::AnyConnection, s: &Sums<'_>, now: i64) -> Result<bool, DbError> {
    if s.signing.is_empty() && s.bearers.is_empty() {
        return Ok(true);
    }
    let creds = if s.signing.is_empty() {
        "NULL".to_owned()
    } else {
        list(2, s.signing.len())
    };
    let tokens = if s.bearers.is_empty() {
        "NULL".to_owned()
    } else {
        list(2 + s.signing.len(), s.bearers.len())
    };
    let sql = format!(
        "SELECT
           (SELECT COUNT(*) FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
             WHERE c.id IN ({creds}) AND c.status = 'active' AND t.status = 'valid'
               AND t.not_before <= $1 AND t.not_after > $1) AS usable,
           (SELECT COUNT(*) FROM access_tokens a
             WHERE a.token_hash IN ({tokens}) AND a.revoked = 0 AND a.expires_at > $1) AS valid_tokens"
    );
    let mut q = sqlx::query(&sql).bind(now);
    for c in &s.signing {
        q = q.bind(*c);
    }
    for b in &s.bearers {
        q = q.bind(*b);
    }
    let r = q.fetch_one(&mut *conn).await?;
    let (usable, valid): (i64, i64) = (r.try_get("usable")?, r.try_get("valid_tokens")?);
    Ok(usable == s.signing.len() as i64 && valid == s.bearers.len() as i64)
}
