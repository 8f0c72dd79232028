//! Storage tests: every property runs against SQLite (always) and PostgreSQL (when `PARAFA_TEST_POSTGRES_URL` is
//! set; otherwise the PostgreSQL half prints a SKIPPED line and passes).
//!
//! Each property is one `check_*` function over a connected [`Db`], called by an `*_on_sqlite` and an
//! `*_on_postgres` test.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::FreshPostgres;
use parafa::audit::{self, Event};
use parafa::clock::{Clock, SystemClock};
use parafa::db::audit::{self as audit_store, AuditRow};
use parafa::db::credentials::{self, CertificateRow, CertificateStatus, Credential, CredentialStatus, Quota};
use parafa::db::users::{self, Role, TwoFactorSetting, User, UserStatus};
use parafa::db::{Db, DbError};
use sqlx::error::ErrorKind;
use sqlx::Row;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------------------------
// Backends

/// A SQLite database in its own temporary directory.
struct SqliteDb {
    db: Db,
    url: String,
    _dir: TempDir,
}

async fn sqlite() -> SqliteDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("parafa.db").display());
    let db = Db::connect(&url, 8).await.expect("connect to SQLite");
    SqliteDb { db, url, _dir: dir }
}

/// A fresh PostgreSQL database, dropped when this goes out of scope (after the pool, even when the test panics).
struct PgDb {
    db: Db,
    url: String,
    fresh: Option<FreshPostgres>,
}

/// `None` (after the harness printed SKIPPED) when PostgreSQL tests are not enabled.
async fn postgres() -> Option<PgDb> {
    let pg = FreshPostgres::create()?;
    let url = pg.url.clone();
    let db = Db::connect(&url, 8).await.expect("connect to PostgreSQL");
    Some(PgDb {
        db,
        url,
        fresh: Some(pg),
    })
}

impl PgDb {
    /// Closes the pool, then drops the database.
    async fn finish(self) {
        self.db.close().await;
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(pg) = self.fresh.take() {
            drop(pg);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now() -> i64 {
    SystemClock::default().now()
}

fn user(email: &str) -> User {
    User {
        id: new_id(),
        email: email.to_owned(),
        given_name: "Ana Maria".to_owned(),
        surname: "Popescu".to_owned(),
        phone: "+40712345678".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        role: Role::Holder,
        status: UserStatus::Active,
        two_factor: TwoFactorSetting::On,
        created_at: now(),
        lang: "en".to_owned(),
        two_factor_postponed: None,
        two_factor_until: None,
    }
}

/// A user stored outside any transaction, for credentials to belong to.
async fn stored_user(db: &Db) -> User {
    let u = user(&format!("holder-{}@example.ro", uuid::Uuid::new_v4().simple()));
    users::insert(db.pool(), &u).await.expect("insert user");
    u
}

/// A credential, its certificate and its quota, consistent with each other.
fn credential_set(user_id: &str, created_at: i64, total: i64, used: i64) -> (CertificateRow, Credential, Quota) {
    let id = new_id();
    let serial = uuid::Uuid::new_v4().simple().to_string();
    let cert = CertificateRow {
        serial: serial.clone(),
        issuer_role: "issuing".to_owned(),
        credential_id: Some(id.clone()),
        subject: format!("CN=Ana Maria Popescu,SERIALNUMBER={id}"),
        cert_der: parafa::db::b64(&[0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x00, 0xff]),
        not_before: created_at,
        not_after: created_at + 3 * 365 * 86_400,
        status: CertificateStatus::Valid,
    };
    let cred = Credential {
        id: id.clone(),
        user_id: user_id.to_owned(),
        key_spec: "rsa-3072".to_owned(),
        key_label: format!("holder-{id}"),
        cert_serial: serial,
        status: CredentialStatus::Active,
        created_at,
    };
    let quota = Quota {
        credential_id: id,
        package_id: 2,
        total,
        used,
    };
    (cert, cred, quota)
}

fn assert_same_user(got: &User, want: &User) {
    assert_eq!(got.id, want.id);
    assert_eq!(got.email, want.email);
    assert_eq!(got.given_name, want.given_name);
    assert_eq!(got.surname, want.surname);
    assert_eq!(got.phone, want.phone);
    assert_eq!(got.password_hash, want.password_hash);
    assert_eq!(got.role, want.role);
    assert_eq!(got.status, want.status);
    assert_eq!(got.two_factor, want.two_factor);
    assert_eq!(got.created_at, want.created_at);
    assert_eq!(got.lang, want.lang);
}

fn assert_same_credential(got: &Credential, want: &Credential) {
    assert_eq!(got.id, want.id);
    assert_eq!(got.user_id, want.user_id);
    assert_eq!(got.key_spec, want.key_spec);
    assert_eq!(got.key_label, want.key_label);
    assert_eq!(got.cert_serial, want.cert_serial);
    assert_eq!(got.status, want.status);
    assert_eq!(got.created_at, want.created_at);
}

fn assert_same_certificate(got: &CertificateRow, want: &CertificateRow) {
    assert_eq!(got.serial, want.serial);
    assert_eq!(got.issuer_role, want.issuer_role);
    assert_eq!(got.credential_id, want.credential_id);
    assert_eq!(got.subject, want.subject);
    assert_eq!(got.cert_der, want.cert_der);
    assert_eq!(got.not_before, want.not_before);
    assert_eq!(got.not_after, want.not_after);
    assert_eq!(got.status, want.status);
}

/// Whether a storage error is the database refusing a CHECK constraint.
fn is_check_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == ErrorKind::CheckViolation)
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Connecting twice (migrations are idempotent)

async fn check_connecting_twice_succeeds_and_both_pools_answer(url: &str, first: &Db) {
    first.ping().await.expect("first pool answers");
    let u = stored_user(first).await;

    let second = Db::connect(url, 4)
        .await
        .expect("connecting again to a migrated database");
    second.ping().await.expect("second pool answers");

    // The schema was not re-created: the data and the seeded chain head are as they were, one migration recorded.
    let seen = users::by_id(&second, &u.id)
        .await
        .expect("by_id")
        .expect("user written before reconnecting");
    assert_same_user(&seen, &u);
    assert_eq!(
        audit_store::head(&second).await.expect("head"),
        (0, "0".repeat(64)),
        "the audit head row is seeded once"
    );
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(second.pool())
        .await
        .expect("count migrations");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64;
    assert_eq!(migrations, files, "each migration is applied once");
    let heads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_head")
        .fetch_one(second.pool())
        .await
        .expect("count heads");
    assert_eq!(heads, 1);
    second.close().await;
    first.ping().await.expect("first pool still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_twice_to_the_same_database_succeeds_and_pings_on_sqlite() {
    let s = sqlite().await;
    check_connecting_twice_succeeds_and_both_pools_answer(&s.url, &s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_twice_to_the_same_database_succeeds_and_pings_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_connecting_twice_succeeds_and_both_pools_answer(&pg.url, &pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Users

async fn check_users_are_found_by_email_and_id_and_emails_are_unique(db: &Db) {
    let u = user("ana.popescu@example.ro");
    users::insert(db.pool(), &u).await.expect("insert user");

    let by_email = users::by_email(db, "Ana.Popescu@EXAMPLE.ro")
        .await
        .expect("by_email")
        .expect("found by e-mail in another case");
    assert_same_user(&by_email, &u);
    let by_id = users::by_id(db, &u.id).await.expect("by_id").expect("found by id");
    assert_same_user(&by_id, &u);

    assert!(users::by_email(db, "someone.else@example.ro")
        .await
        .expect("by_email")
        .is_none());
    assert!(users::by_id(db, &new_id()).await.expect("by_id").is_none());

    // Same e-mail, another id: a conflict, and the first account is untouched.
    let mut twin = user("ana.popescu@example.ro");
    twin.given_name = "Impostor".to_owned();
    match users::insert(db.pool(), &twin).await {
        Err(DbError::Conflict(what)) => assert!(what.contains("ana.popescu@example.ro"), "{what}"),
        other => panic!("a second account with the same e-mail must be a Conflict, got {other:?}"),
    }
    assert!(users::by_id(db, &twin.id).await.expect("by_id").is_none());
    let still = users::by_email(db, "ana.popescu@example.ro")
        .await
        .expect("by_email")
        .expect("first account");
    assert_same_user(&still, &u);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_found_by_id_and_case_insensitive_email_and_a_duplicate_email_conflicts_on_sqlite() {
    let s = sqlite().await;
    check_users_are_found_by_email_and_id_and_emails_are_unique(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_found_by_id_and_case_insensitive_email_and_a_duplicate_email_conflicts_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_users_are_found_by_email_and_id_and_emails_are_unique(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Credentials, certificates and quotas in one transaction

async fn check_a_committed_transaction_stores_credentials_exactly(db: &Db) {
    let holder = stored_user(db).await;
    let t = now();
    // Two credentials, the newer one inserted first, so "oldest first" is a real ordering.
    let (new_cert, new_cred, new_quota) = credential_set(&holder.id, t + 60, 500, 0);
    let (old_cert, old_cred, old_quota) = credential_set(&holder.id, t, 100, 37);
    // A certificate of no credential (a CA certificate, say): credential_id is NULL.
    let ca_cert = CertificateRow {
        credential_id: None,
        issuer_role: "root".to_owned(),
        subject: "CN=Parafa Issuing CA".to_owned(),
        ..credential_set(&holder.id, t, 1, 0).0
    };

    let mut tx = db.pool().begin().await.expect("begin");
    for (cert, cred, quota) in [(&new_cert, &new_cred, &new_quota), (&old_cert, &old_cred, &old_quota)] {
        credentials::insert_certificate(&mut *tx, cert, t)
            .await
            .expect("insert certificate");
        credentials::insert_credential(&mut *tx, cred)
            .await
            .expect("insert credential");
        credentials::insert_quota(&mut *tx, quota, t)
            .await
            .expect("insert quota");
    }
    credentials::insert_certificate(&mut *tx, &ca_cert, t)
        .await
        .expect("insert CA certificate");
    // Not visible to other connections before the commit.
    assert!(credentials::credential(db, &old_cred.id)
        .await
        .expect("credential")
        .is_none());
    tx.commit().await.expect("commit");

    for (cert, cred, quota) in [(&new_cert, &new_cred, &new_quota), (&old_cert, &old_cred, &old_quota)] {
        let got = credentials::credential(db, &cred.id)
            .await
            .expect("credential")
            .expect("stored credential");
        assert_same_credential(&got, cred);
        let got = credentials::certificate(db, &cert.serial)
            .await
            .expect("certificate")
            .expect("stored certificate");
        assert_same_certificate(&got, cert);
        let got = credentials::quota(db, &cred.id)
            .await
            .expect("quota")
            .expect("stored quota");
        assert_eq!(&got, quota);
        assert_eq!(got.remaining(), quota.total - quota.used);
    }
    let got = credentials::certificate(db, &ca_cert.serial)
        .await
        .expect("certificate")
        .expect("CA certificate");
    assert_same_certificate(&got, &ca_cert);

    let listed = credentials::credentials_of(db, &holder.id)
        .await
        .expect("credentials_of");
    assert_eq!(listed.len(), 2);
    assert_same_credential(&listed[0], &old_cred);
    assert_same_credential(&listed[1], &new_cred);

    assert!(credentials::credentials_of(db, &new_id())
        .await
        .expect("credentials_of")
        .is_empty());
    assert!(credentials::credential(db, &new_id())
        .await
        .expect("credential")
        .is_none());
    assert!(credentials::certificate(db, "00").await.expect("certificate").is_none());
    assert!(credentials::quota(db, &new_id()).await.expect("quota").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committed_transaction_stores_certificates_credentials_and_quotas_exactly_on_sqlite() {
    let s = sqlite().await;
    check_a_committed_transaction_stores_credentials_exactly(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committed_transaction_stores_certificates_credentials_and_quotas_exactly_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_a_committed_transaction_stores_credentials_exactly(&pg.db).await;
    pg.finish().await;
}

async fn check_a_rolled_back_transaction_leaves_nothing(db: &Db) {
    let holder = stored_user(db).await;
    let t = now();
    let (cert, cred, quota) = credential_set(&holder.id, t, 100, 0);

    {
        let mut tx = db.pool().begin().await.expect("begin");
        credentials::insert_certificate(&mut *tx, &cert, t)
            .await
            .expect("insert certificate");
        credentials::insert_credential(&mut *tx, &cred)
            .await
            .expect("insert credential");
        credentials::insert_quota(&mut *tx, &quota, t)
            .await
            .expect("insert quota");
        // Dropped without commit.
    }

    assert!(credentials::credential(db, &cred.id)
        .await
        .expect("credential")
        .is_none());
    assert!(credentials::credentials_of(db, &holder.id)
        .await
        .expect("credentials_of")
        .is_empty());
    assert!(credentials::certificate(db, &cert.serial)
        .await
        .expect("certificate")
        .is_none());
    assert!(credentials::quota(db, &cred.id).await.expect("quota").is_none());

    // Nothing half-written blocks the same rows from being stored afterwards.
    let mut tx = db.pool().begin().await.expect("begin");
    credentials::insert_certificate(&mut *tx, &cert, t)
        .await
        .expect("insert certificate again");
    credentials::insert_credential(&mut *tx, &cred)
        .await
        .expect("insert credential again");
    credentials::insert_quota(&mut *tx, &quota, t)
        .await
        .expect("insert quota again");
    tx.commit().await.expect("commit");
    assert_eq!(credentials::quota(db, &cred.id).await.expect("quota"), Some(quota));
    assert_eq!(
        credentials::credentials_of(db, &holder.id)
            .await
            .expect("credentials_of")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_transaction_leaves_no_certificate_credential_or_quota_on_sqlite() {
    let s = sqlite().await;
    check_a_rolled_back_transaction_leaves_nothing(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_transaction_leaves_no_certificate_credential_or_quota_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_a_rolled_back_transaction_leaves_nothing(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. The quota CHECK constraint

async fn check_quota_used_can_never_exceed_total(db: &Db) {
    let holder = stored_user(db).await;
    let t = now();

    // A valid quota, through a committed transaction.
    let (cert, cred, quota) = credential_set(&holder.id, t, 10, 3);
    let mut tx = db.pool().begin().await.expect("begin");
    credentials::insert_certificate(&mut *tx, &cert, t)
        .await
        .expect("insert certificate");
    credentials::insert_credential(&mut *tx, &cred)
        .await
        .expect("insert credential");
    credentials::insert_quota(&mut *tx, &quota, t)
        .await
        .expect("insert quota");
    tx.commit().await.expect("commit");

    // Inserting used > total is refused and stores nothing.
    let (cert2, cred2, _) = credential_set(&holder.id, t, 10, 0);
    credentials::insert_certificate(db.pool(), &cert2, t)
        .await
        .expect("insert certificate");
    credentials::insert_credential(db.pool(), &cred2)
        .await
        .expect("insert credential");
    let over = Quota {
        credential_id: cred2.id.clone(),
        package_id: 1,
        total: 10,
        used: 11,
    };
    match credentials::insert_quota(db.pool(), &over, t).await {
        Err(DbError::Sql(e)) => assert!(is_check_violation(&e), "expected a CHECK violation, got {e:?}"),
        other => panic!("a quota with used > total must be refused, got {other:?}"),
    }
    assert!(credentials::quota(db, &cred2.id).await.expect("quota").is_none());

    // Nor may an UPDATE push used past total; the row stays as it was.
    let err = sqlx::query("UPDATE quotas SET used = used + 1000 WHERE credential_id = $1")
        .bind(&cred.id)
        .execute(db.pool())
        .await
        .expect_err("an UPDATE making used exceed total must fail");
    assert!(is_check_violation(&err), "expected a CHECK violation, got {err:?}");
    assert_eq!(
        credentials::quota(db, &cred.id).await.expect("quota"),
        Some(quota.clone())
    );

    // Negative use is refused too; using exactly the whole package is allowed.
    let err = sqlx::query("UPDATE quotas SET used = -1 WHERE credential_id = $1")
        .bind(&cred.id)
        .execute(db.pool())
        .await
        .expect_err("negative used must fail");
    assert!(is_check_violation(&err), "expected a CHECK violation, got {err:?}");
    assert_eq!(
        credentials::quota(db, &cred.id).await.expect("quota"),
        Some(quota.clone())
    );
    sqlx::query("UPDATE quotas SET used = total WHERE credential_id = $1")
        .bind(&cred.id)
        .execute(db.pool())
        .await
        .expect("used == total is allowed");
    let full = credentials::quota(db, &cred.id).await.expect("quota").expect("quota");
    assert_eq!((full.used, full.remaining()), (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_never_stores_more_used_than_total_transactions_on_sqlite() {
    let s = sqlite().await;
    check_quota_used_can_never_exceed_total(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_never_stores_more_used_than_total_transactions_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_quota_used_can_never_exceed_total(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 5. The audit chain

const RECORDERS: usize = 10;
const EVENTS_PER_RECORDER: usize = 5;
const EVENTS: usize = RECORDERS * EVENTS_PER_RECORDER;
const SEALERS: usize = 3;

/// Records 50 events from 10 tasks while 3 sealers run, seals once more, checks the chain is whole, and returns
/// the sealed rows in chain order.
async fn record_and_seal_concurrently(db: &Db) -> Vec<AuditRow> {
    let clock = Arc::new(SystemClock::default());
    let stop = Arc::new(AtomicBool::new(false));

    let sealers: Vec<_> = (0..SEALERS)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut sealed = 0;
                while !stop.load(Ordering::SeqCst) {
                    sealed += audit::seal(&db).await.expect("concurrent seal");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sealed
            })
        })
        .collect();

    let recorders: Vec<_> = (0..RECORDERS)
        .map(|task| {
            let db = db.clone();
            let clock = clock.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS_PER_RECORDER {
                    let target = format!("credential-{task}-{i}");
                    let event = Event {
                        actor: audit::SYSTEM,
                        action: "test.record",
                        target: &target,
                        outcome: "ok",
                        client: "127.0.0.1",
                        details: serde_json::json!({ "task": task, "i": i, "note": "quote \" and \\ and ünicode" }),
                    };
                    audit::record(&db, clock.as_ref(), event).await.expect("record");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();

    for r in recorders {
        r.await.expect("recorder task");
    }
    stop.store(true, Ordering::SeqCst);
    let mut sealed = 0;
    for s in sealers {
        sealed += s.await.expect("sealer task");
    }
    sealed += audit::seal(db).await.expect("final seal");
    assert_eq!(sealed, EVENTS, "every row is sealed exactly once across all sealers");

    let v = audit::verify(db).await.expect("verify");
    assert_eq!(v.broken, None, "an untouched chain verifies");
    assert_eq!(v.rows, EVENTS as i64);
    assert_eq!(audit_store::unsealed_count(db).await.expect("unsealed_count"), 0);

    let rows = audit_store::sealed_after(db, 0, 1000).await.expect("sealed rows");
    assert_eq!(rows.len(), EVENTS);
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq.expect("sealed")).collect();
    assert_eq!(
        seqs,
        (1..=EVENTS as i64).collect::<Vec<_>>(),
        "sequence numbers are 1..=50 without gaps"
    );
    let targets: BTreeSet<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    let expected: BTreeSet<String> = (0..RECORDERS)
        .flat_map(|t| (0..EVENTS_PER_RECORDER).map(move |i| format!("credential-{t}-{i}")))
        .collect();
    assert_eq!(
        targets,
        expected.iter().map(String::as_str).collect(),
        "each recorded event is chained once"
    );
    let last = rows.last().expect("rows");
    assert_eq!(
        audit_store::head(db).await.expect("head"),
        (EVENTS as i64, last.hash.clone().expect("hash")),
        "the head is the last sealed row"
    );
    rows
}

async fn check_concurrent_recording_and_sealing_builds_an_unbroken_chain(db: &Db) {
    record_and_seal_concurrently(db).await;
    // Verifying again, with nothing new, changes nothing.
    let v = audit::verify(db).await.expect("verify");
    assert_eq!((v.rows, v.broken), (EVENTS as i64, None));
}

async fn check_editing_a_sealed_row_breaks_the_chain(db: &Db) {
    let rows = record_and_seal_concurrently(db).await;
    let middle = &rows[EVENTS / 2 - 1];
    let seq = middle.seq.expect("sealed");
    let changed = sqlx::query("UPDATE audit_events SET target = $1 WHERE seq = $2")
        .bind(format!("{}-tampered", middle.target))
        .bind(seq)
        .execute(db.pool())
        .await
        .expect("tamper");
    assert_eq!(changed.rows_affected(), 1);

    let v = audit::verify(db).await.expect("verify");
    assert!(v.broken.is_some(), "an edited row must break the chain: {v:?}");
    assert_eq!(v.rows, seq - 1, "the rows before the edited one still verify: {v:?}");
}

async fn check_deleting_a_middle_sealed_row_breaks_the_chain(db: &Db) {
    let rows = record_and_seal_concurrently(db).await;
    let seq = rows[EVENTS / 2 - 1].seq.expect("sealed");
    let deleted = sqlx::query("DELETE FROM audit_events WHERE seq = $1")
        .bind(seq)
        .execute(db.pool())
        .await
        .expect("tamper");
    assert_eq!(deleted.rows_affected(), 1);

    let v = audit::verify(db).await.expect("verify");
    assert!(v.broken.is_some(), "a deleted middle row must break the chain: {v:?}");
    assert_eq!(v.rows, seq - 1, "the rows before the deleted one still verify: {v:?}");
}

async fn check_deleting_the_last_sealed_row_breaks_the_chain(db: &Db) {
    let rows = record_and_seal_concurrently(db).await;
    let max_seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events")
        .fetch_one(db.pool())
        .await
        .expect("max seq");
    assert_eq!(max_seq, rows.last().and_then(|r| r.seq).expect("sealed"));
    let deleted = sqlx::query("DELETE FROM audit_events WHERE seq = $1")
        .bind(max_seq)
        .execute(db.pool())
        .await
        .expect("tamper");
    assert_eq!(deleted.rows_affected(), 1);

    let v = audit::verify(db).await.expect("verify");
    assert!(v.broken.is_some(), "a deleted last row must break the chain: {v:?}");
    assert_eq!(v.rows, max_seq - 1, "every remaining row still verifies: {v:?}");

    // Recording and sealing more afterwards does not paper over the gap.
    let clock = SystemClock::default();
    let event = Event {
        actor: audit::SYSTEM,
        action: "test.record",
        target: "after-the-deletion",
        outcome: "ok",
        client: "cli",
        details: serde_json::json!({}),
    };
    audit::record(db, &clock, event).await.expect("record");
    let v = audit::verify(db).await.expect("verify");
    assert!(
        v.broken.is_some(),
        "the gap stays visible after later rows are chained: {v:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_recording_and_sealing_builds_one_unbroken_audit_chain_on_sqlite() {
    let s = sqlite().await;
    check_concurrent_recording_and_sealing_builds_an_unbroken_chain(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_recording_and_sealing_builds_one_unbroken_audit_chain_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_concurrent_recording_and_sealing_builds_an_unbroken_chain(&pg.db).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editing_a_sealed_audit_row_makes_verification_report_a_break_on_sqlite() {
    let s = sqlite().await;
    check_editing_a_sealed_row_breaks_the_chain(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editing_a_sealed_audit_row_makes_verification_report_a_break_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_editing_a_sealed_row_breaks_the_chain(&pg.db).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_middle_sealed_audit_row_makes_verification_report_a_break_on_sqlite() {
    let s = sqlite().await;
    check_deleting_a_middle_sealed_row_breaks_the_chain(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_middle_sealed_audit_row_makes_verification_report_a_break_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_deleting_a_middle_sealed_row_breaks_the_chain(&pg.db).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_last_sealed_audit_row_makes_verification_report_a_break_on_sqlite() {
    let s = sqlite().await;
    check_deleting_the_last_sealed_row_breaks_the_chain(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_last_sealed_audit_row_makes_verification_report_a_break_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_deleting_the_last_sealed_row_breaks_the_chain(&pg.db).await;
    pg.finish().await;
}

/// The plan each database gives for the sealer's page of unsealed rows, one line per step. PostgreSQL is told not to
/// scan the table or sort (a small table is cheaper to scan), so its answer says which index can give the order.
async fn sealer_page_plan(db: &Db, postgres: bool) -> Vec<String> {
    let mut conn = db.pool().acquire().await.expect("connection");
    let sql = audit_store::unsealed_sql();
    // PostgreSQL's EXPLAIN answers one text column per step; SQLite's EXPLAIN QUERY PLAN names it `detail`.
    let (explain, column) = if postgres {
        for knob in ["SET enable_seqscan = off", "SET enable_sort = off"] {
            sqlx::query(knob).execute(&mut *conn).await.expect(knob);
        }
        ("EXPLAIN", "QUERY PLAN")
    } else {
        ("EXPLAIN QUERY PLAN", "detail")
    };
    let rows = sqlx::query(&format!("{explain} {sql}"))
        .bind(500_i64)
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.try_get::<String, _>(column).expect("plan line"))
        .collect()
}

/// A backlog of unsealed rows (the sealer stopped for a while) is caught up page by page; each page must come from
/// the partial index `audit_events_unsealed` in chain order. Planned on the `UNIQUE (seq)` index, as SQLite did when
/// the page asked for `seq IS NULL`, every page sorted the whole backlog: a backlog of n rows cost n².
async fn check_the_sealers_page_is_read_in_order_from_its_index(db: &Db, postgres: bool) {
    let clock = SystemClock::default();
    for i in 0..200 {
        let target = format!("backlog-{i}");
        let event = Event {
            actor: audit::SYSTEM,
            action: "test.record",
            target: &target,
            outcome: "ok",
            client: "cli",
            details: serde_json::json!({}),
        };
        audit::record(db, &clock, event).await.expect("record");
    }
    if !postgres {
        sqlx::query("ANALYZE").execute(db.pool()).await.expect("analyze");
    }
    let plan = sealer_page_plan(db, postgres).await;
    let text = plan.join("\n");
    assert!(
        text.contains("audit_events_unsealed"),
        "the page is read from the partial index:\n{text}"
    );
    assert!(
        !text.contains("TEMP B-TREE") && !text.contains("Sort"),
        "the page is not sorted after reading:\n{text}"
    );
    let page = audit_store::unsealed(db, 500).await.expect("page");
    assert!(page.len() >= 200, "the backlog is on the page");
    assert!(
        page.windows(2).all(|w| (w[0].at, &w[0].id) <= (w[1].at, &w[1].id)),
        "the page is in chain order"
    );
    assert_eq!(audit::seal(db).await.expect("seal") as usize, page.len());
    assert_eq!(audit_store::unsealed_count(db).await.expect("count"), 0);
    assert_eq!(audit::verify(db).await.expect("verify").broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_sealers_page_is_read_in_order_from_its_partial_index_on_sqlite() {
    let s = sqlite().await;
    check_the_sealers_page_is_read_in_order_from_its_index(&s.db, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_sealers_page_is_read_in_order_from_its_partial_index_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_the_sealers_page_is_read_in_order_from_its_index(&pg.db, true).await;
    pg.finish().await;
}
