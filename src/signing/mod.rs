//! The one signing core: every way of signing (CSC `signHash`, CSC `signDoc`, the web signing jobs, and OAuth 2.0
//! `credential` tokens) goes through these rules, written once.
//!
//! - [`Digests`]: the multiset of digests an authorisation covers (each digest with how many times it may be
//!   signed).
//! - [`Authorization`]: the SAD, or its equivalent: an authorisation bound to a holder, a credential, exact
//!   digests with their count, a hash algorithm and an expiry. [`authorize`] stores one (after the caller checked
//!   the holder's TOTP code: sole control, SCAL2) and gives its secret once; [`check`] reads one back before the
//!   token is used.
//! - [`usable`]: whether a credential's certificate can sign now, and if not, why ([`Unusable`]).
//! - [`sign_digests`]: the checks, the HSM, then one ledger transaction that consumes the authorisation, debits
//!   the quota and records the signatures; if the transaction refuses, the signatures are discarded.
//!
//! What is read before the HSM call is checked again under the ledger's lock ([`crate::db::signing::Ledger`]):
//! a used authorisation, an exhausted quota, a credential that can no longer sign or a revoked access token never
//! gets a signature out. So those reads need only be right often, not always: [`RecentReads`] keeps them a moment
//! for the requests that follow (a client signing hash after hash with one SAD), and only ever to say yes; a no is
//! read again from the database, and a refusal by the ledger forgets what was kept.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::auth::tokens;
use crate::db::audit::AuditRow;
use crate::db::cache::Recent;
use crate::db::credentials::{CertificateRow, CertificateStatus, Credential, CredentialStatus, Quota};
use crate::db::signing::TokenRow;
use crate::db::signing::{self as store, Commit, CommitRefusal, Ledger, SadRow, SadUses, SignatureRow};
use crate::db::{Db, DbError};
use crate::hsm::{HashAlg, Hsm, HsmError, SignMechanism};

/// Digests (hex) with how many times each is to be signed: what an authorisation covers, or what a request asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests(BTreeMap<String, i64>);

impl Digests {
    /// The multiset of these digests.
    pub fn of<D: AsRef<[u8]>>(digests: &[D]) -> Digests {
        let mut m = BTreeMap::new();
        for d in digests {
            *m.entry(hex::encode(d.as_ref())).or_default() += 1;
        }
        Digests(m)
    }

    /// The multiset of these digests given in hex (as stored).
    pub fn of_hex<S: AsRef<str>>(digests: &[S]) -> Digests {
        let mut m = BTreeMap::new();
        for d in digests {
            *m.entry(d.as_ref().to_ascii_lowercase()).or_default() += 1;
        }
        Digests(m)
    }

    /// How many signatures in all.
    pub fn count(&self) -> i64 {
        self.0.values().sum()
    }

    /// Each digest (hex) with its count.
    pub fn as_map(&self) -> &BTreeMap<String, i64> {
        &self.0
    }
}

/// An authorisation to sign: who, with which credential, which digests how many times, with which hash, until
/// when.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub user_id: String,
    pub credential_id: String,
    pub digests: Digests,
    /// The hash algorithm it was given for, when the client named one.
    pub hash: Option<HashAlg>,
    pub expires_at: i64,
}

/// Stores an authorisation with its audit row and returns its secret (the SAD), which is not kept: only its hash
/// is. The caller has checked the holder's code.
pub async fn authorize(db: &Db, a: &Authorization, audit: &AuditRow, now: i64) -> Result<String, DbError> {
    let (secret, hash) = tokens::new_secret();
    store_as(db, &hash, a, audit, now).await?;
    Ok(secret)
}

/// Stores an authorisation under a secret the caller made (an OAuth 2.0 `credential` access token is its own SAD);
/// `secret_hash` is [`tokens::hash`] of it.
pub async fn store_as(
    db: &Db,
    secret_hash: &str,
    a: &Authorization,
    audit: &AuditRow,
    now: i64,
) -> Result<(), DbError> {
    let row = SadRow {
        sad_hash: secret_hash.to_owned(),
        credential_id: a.credential_id.clone(),
        user_id: a.user_id.clone(),
        hash_algo: a.hash.map(|h| h.oid().to_string()),
        remaining: a.digests.count(),
        expires_at: a.expires_at,
    };
    store::insert_sad(db, &row, a.digests.as_map(), audit, now).await
}

/// The signing path's reads, kept a moment (`csc.read_cache_ms`) per instance: access tokens by hash, credentials
/// with their certificate and quota by id, SADs with every digest's uses by hash. Each is updated by this
/// instance's own commits and forgotten when the ledger refuses; another instance's writes show when the row's
/// time is up, and until then the ledger's checks stand in.
#[derive(Debug)]
pub struct RecentReads {
    pub tokens: Recent<String, TokenRow>,
    pub credentials: Recent<String, (Credential, CertificateRow, Quota)>,
    pub sads: Recent<String, SadUses>,
}

/// Rows kept at most, per kind, so the memory stays bounded whatever the keys requests name: access tokens (a few
/// hundred bytes each), credentials (with the certificate's DER, ~2 KB) and SADs (with up to `multisign` digests,
/// ~12 KB at 100): at most ~60 MB in all.
const RECENT_TOKENS: usize = 20_000;
const RECENT_CREDENTIALS: usize = 8_192;
const RECENT_SADS: usize = 2_048;

impl RecentReads {
    /// Reads kept for `ttl` (zero: none).
    pub fn new(ttl: Duration) -> RecentReads {
        RecentReads {
            tokens: Recent::new(ttl, RECENT_TOKENS),
            credentials: Recent::new(ttl, RECENT_CREDENTIALS),
            sads: Recent::new(ttl, RECENT_SADS),
        }
    }

    /// What a committed request spent, applied to the rows kept: the quota's use, the SAD's count and digests.
    pub fn spent(&self, credential_id: &str, sad_hash: &str, digests: &Digests) {
        let n = digests.count();
        self.credentials
            .update(&credential_id.to_owned(), |(_, _, quota)| quota.used += n);
        self.sads.update(&sad_hash.to_owned(), |(row, uses)| {
            row.remaining -= n;
            for (d, k) in digests.as_map() {
                if let Some(u) = uses.get_mut(d) {
                    *u -= k;
                }
            }
        });
    }

    /// Forgets what a refused request relied on.
    pub fn forget(&self, credential_id: &str, sad_hash: &str) {
        self.credentials.forget(&credential_id.to_owned());
        self.sads.forget(&sad_hash.to_owned());
    }
}

/// Why an authorisation does not cover a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such authorisation for this holder and credential.
    Unknown,
    Expired,
    /// Every signature it allowed was made.
    UsedUp,
    /// It allows fewer signatures than asked: this many are left.
    TooMany {
        left: i64,
    },
    /// It was given for another hash algorithm.
    OtherHash,
    /// A digest asked is not one it covers (or not as many times).
    OtherDigest,
}

/// Checks that the authorisation `secret` belongs to this holder and credential, is unexpired, was given for
/// `hash` and covers `wanted`. Returns its key in the ledger. The ledger checks all of it again when it consumes
/// the authorisation.
pub async fn check(
    db: &Db,
    secret: &str,
    user_id: &str,
    credential_id: &str,
    wanted: &Digests,
    hash: HashAlg,
    now: i64,
) -> Result<Result<String, Refused>, DbError> {
    let key = tokens::hash(secret);
    let digests: Vec<&str> = wanted.as_map().keys().map(String::as_str).collect();
    let found = store::sad(db, &key, &digests).await?;
    Ok(judge(key, found, user_id, credential_id, wanted, hash, now))
}

/// [`check`] from a SAD read a moment ago when `recent` has it and it says yes; otherwise as [`check`], keeping
/// the SAD (with all its digests) for the requests that follow.
#[allow(clippy::too_many_arguments)]
pub async fn check_recent(
    db: &Db,
    recent: &RecentReads,
    secret: &str,
    user_id: &str,
    credential_id: &str,
    wanted: &Digests,
    hash: HashAlg,
    now: i64,
) -> Result<Result<String, Refused>, DbError> {
    let key = tokens::hash(secret);
    if let Some(kept) = recent.sads.get(&key) {
        if let Ok(key) = judge(key.clone(), Some(kept), user_id, credential_id, wanted, hash, now) {
            return Ok(Ok(key));
        }
    }
    let found = store::sad_whole(db, &key).await?;
    if let Some(sad) = &found {
        recent.sads.put(key.clone(), sad.clone());
    }
    Ok(judge(key, found, user_id, credential_id, wanted, hash, now))
}

/// Whether the SAD `found` (with the uses left of the digests `wanted` names, at least) covers the request.
fn judge(
    key: String,
    found: Option<SadUses>,
    user_id: &str,
    credential_id: &str,
    wanted: &Digests,
    hash: HashAlg,
    now: i64,
) -> Result<String, Refused> {
    let Some((row, uses)) = found.filter(|(r, _)| r.credential_id == credential_id && r.user_id == user_id) else {
        return Err(Refused::Unknown);
    };
    let n = wanted.count();
    let refused = if row.expires_at <= now {
        Some(Refused::Expired)
    } else if row.remaining == 0 {
        Some(Refused::UsedUp)
    } else if row.remaining < n {
        Some(Refused::TooMany { left: row.remaining })
    } else if row.hash_algo.as_deref().is_some_and(|a| a != hash.oid().to_string()) {
        Some(Refused::OtherHash)
    } else if wanted
        .as_map()
        .iter()
        .any(|(d, k)| uses.get(d).copied().unwrap_or(0) < *k)
    {
        Some(Refused::OtherDigest)
    } else {
        None
    };
    match refused {
        Some(r) => Err(r),
        None => Ok(key),
    }
}

/// Why a credential cannot sign now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Replaced by its successor after a rekey, though its certificate is still valid.
    Replaced,
    /// Outside its certificate's validity.
    Expired,
    Revoked,
    Suspended,
}

impl Unusable {
    /// The text the holder is told, by key (the same words on every path: web, CSC, desktop token). The expired
    /// certificate's is the one product rules §5 mandates, word for word.
    pub fn key(self) -> &'static str {
        match self {
            Unusable::Replaced => "error.sign.certificate_replaced",
            Unusable::Expired => "error.sign.certificate_expired",
            Unusable::Revoked => "error.sign.certificate_revoked",
            Unusable::Suspended => "error.sign.certificate_suspended",
        }
    }
}

/// The one rule of which credential may sign at `now`: its certificate neither revoked, suspended nor outside its
/// validity, and the credential active (not replaced by a successor).
pub fn usable(credential: CredentialStatus, cert: &CertificateRow, now: i64) -> Result<(), Unusable> {
    if cert.status == CertificateStatus::Revoked || credential == CredentialStatus::Revoked {
        return Err(Unusable::Revoked);
    }
    if cert.status == CertificateStatus::Suspended {
        return Err(Unusable::Suspended);
    }
    if cert.not_after <= now || cert.not_before > now {
        return Err(Unusable::Expired);
    }
    match credential {
        CredentialStatus::Active => Ok(()),
        CredentialStatus::Superseded => Err(Unusable::Replaced),
        CredentialStatus::Revoked => Err(Unusable::Revoked),
    }
}

/// Why the credential cannot sign at `now`, read afresh: after the ledger refused a request because it could not
/// (`CommitRefusal::Unusable`), the words the holder is told. A credential gone from the books is told as revoked.
pub async fn why_unusable(db: &Db, credential_id: &str, now: i64) -> Result<Unusable, DbError> {
    Ok(
        match crate::db::credentials::credential_full(db, credential_id).await? {
            Some((cred, cert, _)) => usable(cred.status, &cert, now).err().unwrap_or(Unusable::Revoked),
            None => Unusable::Revoked,
        },
    )
}

/// What [`sign_digests`] needs of the service.
pub struct Core<'a> {
    pub hsm: &'a std::sync::Arc<Hsm>,
    pub ledger: &'a Ledger,
}

/// Who signs, with which credential, under which authorisation.
pub struct Signatory<'a> {
    pub user_id: &'a str,
    pub client: &'a str,
    pub credential_id: &'a str,
    /// The authorisation's key in the ledger, from [`check`] (or [`tokens::hash`] of [`authorize`]'s secret).
    pub authorization: String,
    /// The hash of the access token the request came with, if it came with one: the ledger checks it is still
    /// valid when it commits.
    pub bearer: Option<String>,
}

/// What [`sign_digests`] signs.
pub struct Request<'a> {
    pub by: Signatory<'a>,
    pub mechanism: SignMechanism,
    pub hash: HashAlg,
    pub digests: &'a [Vec<u8>],
}

/// Why nothing was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignFailure {
    /// The ledger refused: the authorisation was used meanwhile or expired, or the quota cannot cover it.
    #[error("the ledger refused the signatures: {0:?}")]
    Refused(CommitRefusal),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Signs each digest in the token, then commits them (the authorisation consumed, the quota debited, the
/// signatures recorded with `audit`) in one ledger transaction. Returns the signature values in the digests'
/// order; nothing leaves when the ledger refuses.
pub async fn sign_digests(
    core: &Core<'_>,
    r: &Request<'_>,
    audit: AuditRow,
    now: i64,
) -> Result<Vec<Vec<u8>>, SignFailure> {
    let signatures = core
        .hsm
        .sign_digests(r.by.credential_id.as_bytes(), r.mechanism, r.digests.to_vec())
        .await?;
    let sign_algo = r.mechanism.algorithm_identifier(r.hash).oid.to_string();
    let rows = r
        .digests
        .iter()
        .zip(&signatures)
        .map(|(d, sig)| signature_row(d, r.hash, &sign_algo, sig))
        .collect();
    commit(core.ledger, &r.by, rows, audit, now).await?;
    Ok(signatures)
}

/// The ledger row of one signature.
pub fn signature_row(digest: &[u8], hash: HashAlg, sign_algo: &str, signature: &[u8]) -> SignatureRow {
    use base64::Engine;
    SignatureRow {
        id: uuid::Uuid::now_v7().to_string(),
        digest: hex::encode(digest),
        hash_algo: hash.oid().to_string(),
        sign_algo: sign_algo.to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
        kind: "signature",
    }
}

/// Commits what a signatory signed (and the timestamps made with it) in one ledger transaction.
pub async fn commit(
    ledger: &Ledger,
    r: &Signatory<'_>,
    rows: Vec<SignatureRow>,
    audit: AuditRow,
    now: i64,
) -> Result<(), SignFailure> {
    let outcome = ledger
        .commit(Commit {
            sad_hash: r.authorization.clone(),
            credential_id: r.credential_id.to_owned(),
            user_id: r.user_id.to_owned(),
            client: r.client.to_owned(),
            bearer: r.bearer.clone(),
            rows,
            audit,
            now,
        })
        .await?;
    outcome.map_err(SignFailure::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(status: CertificateStatus, not_before: i64, not_after: i64) -> CertificateRow {
        CertificateRow {
            serial: "01".into(),
            issuer_role: "issuing".into(),
            credential_id: Some("c".into()),
            subject: "CN=Ana".into(),
            cert_der: String::new(),
            not_before,
            not_after,
            status,
        }
    }

    #[test]
    fn only_an_active_credential_with_a_certificate_in_force_signs() {
        let valid = cert(CertificateStatus::Valid, 100, 200);
        assert_eq!(usable(CredentialStatus::Active, &valid, 150), Ok(()));
        assert_eq!(usable(CredentialStatus::Active, &valid, 200), Err(Unusable::Expired));
        assert_eq!(usable(CredentialStatus::Active, &valid, 99), Err(Unusable::Expired));
        // A replaced credential is told as replaced while its certificate is in force, as expired after.
        assert_eq!(
            usable(CredentialStatus::Superseded, &valid, 150),
            Err(Unusable::Replaced)
        );
        assert_eq!(
            usable(CredentialStatus::Superseded, &valid, 250),
            Err(Unusable::Expired)
        );
        // Revocation wins over everything, the credential's or the certificate's.
        assert_eq!(usable(CredentialStatus::Revoked, &valid, 150), Err(Unusable::Revoked));
        let revoked = cert(CertificateStatus::Revoked, 100, 200);
        assert_eq!(usable(CredentialStatus::Active, &revoked, 250), Err(Unusable::Revoked));
        let suspended = cert(CertificateStatus::Suspended, 100, 200);
        assert_eq!(
            usable(CredentialStatus::Active, &suspended, 150),
            Err(Unusable::Suspended)
        );
    }

    #[test]
    fn digests_count_each_repetition() {
        let d = Digests::of(&[vec![1u8, 2], vec![3], vec![1, 2]]);
        assert_eq!(d.count(), 3);
        assert_eq!(d.as_map().get("0102"), Some(&2));
        assert_eq!(d.as_map().get("03"), Some(&1));
    }
}
