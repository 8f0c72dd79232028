//! Cost flat as the books grow: `cargo bench --bench books` (issue 20, third target).
//!
//! For each database (SQLite always; PostgreSQL when `PARAFA_TEST_POSTGRES_URL` is set) one run:
//!
//! 1. starts the real server on an empty database, creates the measured P-256 holders with the CLI (as the
//!    `signhash` bench does), authorises SADs of 100 hashes with real TOTP codes, and measures single-hash
//!    `signatures/signHash` at concurrency 64 for a few seconds (see rounds below);
//! 2. stops the server and seeds the same database, directly in SQL, with the books of a grown deployment:
//!    holders (users, TOTP pairings, certificates, credentials, quotas, each row a copy of a measured holder's with
//!    its own ids), ledger rows (`signatures`, spread evenly over those holders and over the two years before now,
//!    in time order as the ledger writes them, each holder's quota debited with its rows) and audit rows
//!    (`audit_events` of `signature.create`, already sealed: the chain is computed here with the sealer's own hash
//!    and continues the database's chain, so the sealer has nothing to catch up on during the measurement). On
//!    SQLite the seeding connection turns the journal and fsync off (and the file back to WAL after); on
//!    PostgreSQL it skips the foreign-key triggers (`session_replication_role = replica`, the rows are consistent by
//!    construction) and ends with `VACUUM ANALYZE`, as autovacuum would soon after such inserts, so that autovacuum
//!    does not start during the measurement. SQLite gets no `ANALYZE`: the server never runs one either;
//! 3. on SQLite, times `parafa admin audit verify` over the seeded chain (which also proves the seeded chain valid);
//! 4. prints the query plan of each query of the signHash path on the seeded database (`EXPLAIN QUERY PLAN` on
//!    SQLite, `EXPLAIN` on PostgreSQL), with the literal values of a real request, and flags any full scan;
//! 5. restarts the server (the process is new, so its recent reads start empty; the database's own caches are
//!    whatever the seeding left), authorises again and measures signHash again with the same holders; then checks
//!    the books of every measured holder (debited = recorded = signatures returned).
//!
//! It prints `RESULT books_<db>_p256 empty_per_s=… seeded_per_s=… ratio=… target_ratio=0.90 met=… holders=…
//! ledger_rows=… audit_rows=… books=…`, `RESULT books_<db>_seed …` (seconds per part), `RESULT
//! books_sqlite_audit_verify …` and one `PLAN <db> <query>: <plan>` line per query.
//!
//! Each measurement is `rounds` rounds (authorise, then sign); its figure is the best round's, so that a burst of
//! other work on the shared machine does not decide the ratio alone.
//!
//! Knobs (all optional): `PARAFA_BENCH_SECS` (timed seconds per round, default 3), `PARAFA_BENCH_ROUNDS` (rounds per
//! measurement, default 2), `PARAFA_BENCH_HOLDERS` (measured holders, default 64; each has 600 transactions, which
//! must cover every round), `PARAFA_BENCH_SIGNATURES` (signatures authorised per round, default 8 000),
//! `PARAFA_BENCH_BOOKS_HOLDERS` (seeded holders, default 100 000), `PARAFA_BENCH_BOOKS_LEDGER` (seeded ledger rows,
//! default 10 000 000), `PARAFA_BENCH_BOOKS_AUDIT` (seeded audit rows, default 1 000 000), `PARAFA_BENCH_BOOKS_VERIFY`
//! (`sqlite`, the default, `all` or `none`: where `parafa admin audit verify` is timed), `PARAFA_BENCH_TMPDIR` (where
//! the data directory goes; the seeded SQLite file takes about 5 GB) and `PARAFA_BENCH_SERVER_ENV` (extra
//! `PARAFA_*=value` settings for the server). With the defaults a run takes about 7 minutes once built.

mod common;

use std::time::Instant;

use parafa::config::cores;
use parafa::db::audit::AuditRow;
use sqlx::{Connection, Row};

use common::{
    authorise, check_books, login_all, note, on_tmpfs, real_now, renew_tokens, sign_load, Csc, FreshPostgres, Holder,
    Server, SignLoad,
};

/// The measured key type: P-256, so that the server, not the token, is the limit.
const KEY: &str = "p256";
const SIGN_ALGO: &str = "1.2.840.10045.4.3.2";
const HASH_ALGO: &str = "2.16.840.1.101.3.4.2.1";
/// Concurrency of the measurements.
const CONCURRENCY: usize = 64;
/// Hashes per SAD: the server's default `multisign`.
const SAD_SIZE: i64 = 100;
/// The target: the seeded rate at least this share of the empty one.
const TARGET_RATIO: f64 = 0.90;
/// The seeded ledger and audit rows span this many seconds before now (two years).
const SPAN_SECS: i64 = 2 * 365 * 86_400;
/// Server seconds an access token must still have before a measurement.
const TOKEN_LIFE_SECS: i64 = 600;
/// Audit rows per INSERT while seeding, per dialect (11 values each): SQLite spends time quadratic in the values of
/// one statement (2 000 rows took 1 s a statement), PostgreSQL a round trip per statement.
fn audit_chunk(d: Dialect) -> usize {
    match d {
        Dialect::Sqlite => 50,
        Dialect::Postgres => 2_000,
    }
}
/// Ledger rows per INSERT … SELECT while seeding (a progress note after each).
const LEDGER_CHUNK: i64 = 1_000_000;

struct Params {
    secs: f64,
    rounds: usize,
    holders: usize,
    signatures: i64,
    seed_holders: i64,
    ledger_rows: i64,
    audit_rows: i64,
    verify: String,
    server_env: Vec<(String, String)>,
}

impl Params {
    fn from_env() -> Params {
        let num = common::env_num;
        Params {
            secs: num("PARAFA_BENCH_SECS", 3.0),
            rounds: num("PARAFA_BENCH_ROUNDS", 2.0) as usize,
            holders: num("PARAFA_BENCH_HOLDERS", 64.0) as usize,
            signatures: num("PARAFA_BENCH_SIGNATURES", 8_000.0) as i64,
            seed_holders: num("PARAFA_BENCH_BOOKS_HOLDERS", 100_000.0) as i64,
            ledger_rows: num("PARAFA_BENCH_BOOKS_LEDGER", 10_000_000.0) as i64,
            audit_rows: num("PARAFA_BENCH_BOOKS_AUDIT", 1_000_000.0) as i64,
            verify: std::env::var("PARAFA_BENCH_BOOKS_VERIFY").unwrap_or_else(|_| "sqlite".to_owned()),
            server_env: common::server_env(),
        }
    }
}

/// Which database a run is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// A statement prefix and a FROM item giving the integers `from..to` as column `n`.
    fn series(self, from: i64, to: i64) -> (String, String) {
        match self {
            Dialect::Sqlite => (
                format!("WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM s WHERE n + 1 < {to}) "),
                "s".to_owned(),
            ),
            Dialect::Postgres => (
                String::new(),
                format!("generate_series({from}::bigint, {}::bigint) AS s(n)", to - 1),
            ),
        }
    }

    /// The integer `expr` in lower-case hexadecimal, zero-padded to `width` digits.
    fn hex(self, expr: &str, width: usize) -> String {
        match self {
            Dialect::Sqlite => format!("printf('%0{width}x', {expr})"),
            Dialect::Postgres => format!("lpad(to_hex({expr}), {width}, '0')"),
        }
    }

    /// The id of seeded holder `k` (an SQL integer expression) with this UUID-shaped prefix.
    fn seeded_id(self, prefix: &str, k: &str) -> String {
        format!("'{prefix}' || {}", self.hex(k, 12))
    }
}

/// The prefixes of the seeded users' and credentials' ids (UUID-shaped, as the real ones), and of the serials.
const USER_PREFIX: &str = "5eed0000-0000-4000-8000-";
const CREDENTIAL_PREFIX: &str = "5eedc000-0000-4000-8000-";
const SERIAL_PREFIX: &str = "5eed";

fn seeded_user(k: i64) -> String {
    format!("{USER_PREFIX}{k:012x}")
}

fn seeded_credential(k: i64) -> String {
    format!("{CREDENTIAL_PREFIX}{k:012x}")
}

/// What one database gave.
struct DbResult {
    db: &'static str,
    empty: Phase,
    seeded: Phase,
    seed: Seeding,
    /// Rows in the seeded tables after seeding: users, signatures, audit_events.
    counts: (i64, i64, i64),
    /// Seconds of `parafa admin audit verify` and its answer, when run.
    verify: Option<(f64, String, bool)>,
    plans: Vec<Plan>,
    books_exact: usize,
    books_wrong: Vec<String>,
}

/// The measurement rounds on one database state; its figure is the best round's, so that a burst of other work on
/// the machine does not decide the ratio alone.
struct Phase {
    rounds: Vec<SignLoad>,
}

impl Phase {
    fn best(&self) -> &SignLoad {
        self.rounds
            .iter()
            .max_by(|a, b| a.rate().total_cmp(&b.rate()))
            .expect("at least one round")
    }

    fn rate(&self) -> f64 {
        self.best().rate()
    }

    /// Every round's rate, as `2630/2581`.
    fn rates(&self) -> String {
        self.rounds
            .iter()
            .map(|r| format!("{:.0}", r.rate()))
            .collect::<Vec<_>>()
            .join("/")
    }

    fn signatures(&self) -> usize {
        self.rounds.iter().map(|r| r.latencies.len()).sum()
    }

    fn errors(&self) -> usize {
        self.rounds.iter().map(|r| r.errors).sum()
    }
}

/// Seconds per part of the seeding.
#[derive(Default)]
struct Seeding {
    holders: f64,
    ledger: f64,
    audit: f64,
    /// SQLite: back to WAL; PostgreSQL: VACUUM ANALYZE.
    upkeep: f64,
}

impl Seeding {
    fn total(&self) -> f64 {
        self.holders + self.ledger + self.audit + self.upkeep
    }
}

/// One query's plan on the seeded database.
struct Plan {
    name: &'static str,
    lines: Vec<String>,
    /// The tables (or aliases) read whole.
    scans: Vec<String>,
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and this is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("books: load benchmark, not run under `cargo test`; run `cargo bench --bench books`");
        return;
    }
    let params = Params::from_env();
    let started = Instant::now();
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut results = vec![run(&rt, None, &params, Dialect::Sqlite)];
    match FreshPostgres::create() {
        Some(pg) => results.push(run(&rt, Some(pg), &params, Dialect::Postgres)),
        None => {
            note("**************************************************************************************");
            note("PARAFA_TEST_POSTGRES_URL is not set: PostgreSQL SKIPPED, only SQLite was measured");
            note("**************************************************************************************");
        }
    }
    report(&results, &params);
    note(format!("total bench time {:.1} s", started.elapsed().as_secs_f64()));
}

/// The whole run on one database.
fn run(rt: &tokio::runtime::Runtime, pg: Option<FreshPostgres>, params: &Params, dialect: Dialect) -> DbResult {
    let db = dialect.name();
    let mut server = Server::new(pg, &params.server_env);
    note(format!(
        "{db}: data dir {} on {}; {} cores; server env {:?}",
        server.data_dir.display(),
        if on_tmpfs(&server.data_dir) { "tmpfs" } else { "disk" },
        cores(),
        params.server_env
    ));
    server.start();
    let t = Instant::now();
    let mut holders = server.create_holders(KEY, params.holders, cores(), db);
    note(format!(
        "{db}: created {} holders in {:.1} s",
        holders.len(),
        t.elapsed().as_secs_f64()
    ));
    let csc = Csc::new(&server.base);
    rt.block_on(login_all(&csc, &mut server, &mut holders));
    let empty = rt.block_on(measure(&csc, &mut server, &mut holders, params, db, "empty"));
    server.stop();

    let url = server.database_url();
    let (seed, counts, plans) = rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect to the database");
        let seed = seed(&mut conn, dialect, params, &holders[0]).await;
        let counts = counts(&mut conn).await;
        note(format!(
            "{db}: seeded in {:.1} s (holders {:.1} s, ledger {:.1} s, audit {:.1} s, upkeep {:.1} s); now {} users, {} ledger rows, {} audit rows",
            seed.total(),
            seed.holders,
            seed.ledger,
            seed.audit,
            seed.upkeep,
            counts.0,
            counts.1,
            counts.2
        ));
        let plans = explain(&mut conn, dialect, &holders).await;
        conn.close().await.expect("close the seeding connection");
        (seed, counts, plans)
    });

    let verify = (params.verify == "all" || params.verify == db).then(|| {
        note(format!(
            "{db}: timing `parafa admin audit verify` over the seeded chain"
        ));
        let t = Instant::now();
        let out = server.cli(&["admin", "audit", "verify"]);
        let secs = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        note(format!("{db}: audit verify took {secs:.1} s: {text}"));
        (secs, text, out.status.success())
    });

    server.start();
    let csc = Csc::new(&server.base);
    // Seeding takes minutes of real time.
    rt.block_on(renew_tokens(&csc, &server, &mut holders, TOKEN_LIFE_SECS));
    let seeded = rt.block_on(measure(&csc, &mut server, &mut holders, params, db, "seeded"));
    let (books_exact, books_wrong) = check_books(&server, &holders);
    note(format!(
        "{db}: books: {books_exact} holders exact, {} wrong",
        books_wrong.len()
    ));
    DbResult {
        db,
        empty,
        seeded,
        seed,
        counts,
        verify,
        plans,
        books_exact,
        books_wrong,
    }
}

/// `params.rounds` rounds, each: authorise `params.signatures` signatures (fewer if the quotas do not allow) in
/// SADs of 100, then sign them one hash per request at concurrency 64 until the time is up or they run out.
async fn measure(
    csc: &Csc,
    server: &mut Server,
    holders: &mut [Holder],
    params: &Params,
    db: &str,
    what: &str,
) -> Phase {
    let mut rounds = Vec::new();
    for round in 1..=params.rounds {
        rounds.push(measure_round(csc, server, holders, params, &format!("{db} {what} round {round}")).await);
    }
    Phase { rounds }
}

async fn measure_round(
    csc: &Csc,
    server: &mut Server,
    holders: &mut [Holder],
    params: &Params,
    what: &str,
) -> SignLoad {
    let sads = authorise(csc, server, holders, params.signatures, SAD_SIZE).await;
    let load = sign_load(csc, holders, &sads, SIGN_ALGO, CONCURRENCY, params.secs).await;
    note(format!(
        "{what}: {:.0} sign/s ({} signatures in {:.2} s{}), p50 {:.2} ms, p99 {:.2} ms, {} errors",
        load.rate(),
        load.latencies.len(),
        load.secs,
        if load.exhausted {
            ", all that was authorised"
        } else {
            ""
        },
        load.p(50.0),
        load.p(99.0),
        load.errors
    ));
    if let Some((status, body)) = &load.first_error {
        note(format!("{what}: first error: HTTP {status}: {body}"));
    }
    load
}

async fn exec(conn: &mut sqlx::AnyConnection, sql: &str) {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}\n in: {sql}"));
}

async fn count(conn: &mut sqlx::AnyConnection, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

async fn counts(conn: &mut sqlx::AnyConnection) -> (i64, i64, i64) {
    (
        count(conn, "users").await,
        count(conn, "signatures").await,
        count(conn, "audit_events").await,
    )
}

/// Seeds holders, ledger rows and sealed audit rows (the server is stopped).
async fn seed(conn: &mut sqlx::AnyConnection, d: Dialect, params: &Params, template: &Holder) -> Seeding {
    let db = d.name();
    match d {
        Dialect::Sqlite => {
            // One writer, no other connection: no journal and no fsync while seeding; WAL again after.
            for p in [
                "PRAGMA journal_mode = DELETE",
                "PRAGMA synchronous = OFF",
                "PRAGMA cache_size = -262144",
                "PRAGMA foreign_keys = OFF",
            ] {
                exec(conn, p).await;
            }
        }
        Dialect::Postgres => {
            if let Err(e) = sqlx::query("SET session_replication_role = replica")
                .execute(&mut *conn)
                .await
            {
                note(format!("postgres: foreign-key triggers stay on while seeding ({e})"));
            }
        }
    }
    let mut out = Seeding::default();
    let t = Instant::now();
    seed_holders(conn, d, params, template).await;
    out.holders = t.elapsed().as_secs_f64();
    note(format!(
        "{db}: {} holders seeded in {:.1} s",
        params.seed_holders, out.holders
    ));
    let t = Instant::now();
    seed_ledger(conn, d, params).await;
    out.ledger = t.elapsed().as_secs_f64();
    let t = Instant::now();
    seed_audit(conn, d, params).await;
    out.audit = t.elapsed().as_secs_f64();
    note(format!(
        "{db}: {} audit rows seeded in {:.1} s",
        params.audit_rows, out.audit
    ));
    let t = Instant::now();
    match d {
        Dialect::Sqlite => {
            exec(conn, "PRAGMA journal_mode = WAL").await;
            exec(conn, "PRAGMA synchronous = FULL").await;
        }
        Dialect::Postgres => {
            exec(conn, "SET session_replication_role = origin").await;
            exec(
                conn,
                "VACUUM ANALYZE users, totp_pairings, certificates, credentials, quotas, signatures, audit_events",
            )
            .await;
        }
    }
    out.upkeep = t.elapsed().as_secs_f64();
    out
}

/// The seeded holders: each table's row a copy of the template holder's, with ids of its own.
async fn seed_holders(conn: &mut sqlx::AnyConnection, d: Dialect, params: &Params, template: &Holder) {
    let r = sqlx::query("SELECT user_id, cert_serial FROM credentials WHERE id = $1")
        .bind(&template.credential_id)
        .fetch_one(&mut *conn)
        .await
        .expect("the template holder's credential");
    let user: String = r.try_get("user_id").expect("user_id");
    let serial: String = r.try_get("cert_serial").expect("cert_serial");
    let h = params.seed_holders;
    let (with, from) = d.series(0, h);
    let uid = d.seeded_id(USER_PREFIX, "n");
    let cid = d.seeded_id(CREDENTIAL_PREFIX, "n");
    let cert = format!("'{SERIAL_PREFIX}' || {}", d.hex("n", 36));
    // Created one second apart, just before the first ledger row.
    let created = format!("({} - {h} + n)", real_now() - SPAN_SECS);
    // Each holder's debits: its share of the ledger rows (row n belongs to holder n % h).
    let (per, extra) = (params.ledger_rows / h, params.ledger_rows % h);
    let statements = [
        format!(
            "{with}INSERT INTO users (id, email, given_name, surname, phone, password_hash, role, status, two_factor,
                                created_at, lang, privacy_ack_at, privacy_version, two_factor_postponed,
                                two_factor_until)
             SELECT {uid}, 'seed-' || n || '@example.com', t.given_name, t.surname, t.phone, t.password_hash, t.role,
                    t.status, t.two_factor, {created}, t.lang, t.privacy_ack_at, t.privacy_version,
                    t.two_factor_postponed, t.two_factor_until
             FROM {from} CROSS JOIN users t WHERE t.id = $1"
        ),
        format!(
            "{with}INSERT INTO totp_pairings (user_id, seed_wrapped, algorithm, digits, period, status, last_used_step,
                                        failed_attempts, locked_until, created_at, activated_at)
             SELECT {uid}, t.seed_wrapped, t.algorithm, t.digits, t.period, t.status, t.last_used_step,
                    t.failed_attempts, t.locked_until, {created}, {created}
             FROM {from} CROSS JOIN totp_pairings t WHERE t.user_id = $1"
        ),
        format!(
            "{with}INSERT INTO certificates (serial, issuer_role, credential_id, subject, cert_der, not_before, not_after,
                                       status, revoked_at, revocation_reason, created_at)
             SELECT {cert}, t.issuer_role, {cid}, t.subject, t.cert_der, t.not_before, t.not_after, t.status,
                    t.revoked_at, t.revocation_reason, {created}
             FROM {from} CROSS JOIN certificates t WHERE t.serial = $2"
        ),
        format!(
            "{with}INSERT INTO credentials (id, user_id, key_spec, key_label, cert_serial, status, created_at)
             SELECT {cid}, {uid}, t.key_spec, 'seed-' || n, {cert}, t.status, {created}
             FROM {from} CROSS JOIN credentials t WHERE t.id = $3"
        ),
        format!(
            "{with}INSERT INTO quotas (credential_id, package_id, total, used, created_at)
             SELECT {cid}, t.package_id,
                    CASE WHEN t.total > {per} + 1 THEN t.total ELSE {per} + 1 END,
                    {per} + CASE WHEN n < {extra} THEN 1 ELSE 0 END, {created}
             FROM {from} CROSS JOIN quotas t WHERE t.credential_id = $3"
        ),
    ];
    let template_ids = [text(&user), text(&serial), text(&template.credential_id)];
    let mut tx = conn.begin().await.expect("begin");
    for sql in &statements {
        let sql = inline(sql, &template_ids);
        let n = sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}\n in: {sql}"))
            .rows_affected();
        assert_eq!(n, h as u64, "seeded rows of: {sql}");
    }
    tx.commit().await.expect("commit the seeded holders");
}

/// The seeded ledger: row n belongs to holder n % holders, at an even step through the two years before now; ids
/// shaped as UUIDv7 over that time, as the ledger's own.
async fn seed_ledger(conn: &mut sqlx::AnyConnection, d: Dialect, params: &Params) {
    let db = d.name();
    let (h, total) = (params.seed_holders, params.ledger_rows);
    let t0 = real_now() - SPAN_SECS;
    let at = format!("({t0} + n * {SPAN_SECS} / {total})");
    let ms = format!("({at} * 1000 + n % 1000)");
    let id = format!(
        "{} || '-' || {} || '-7000-8000-' || {}",
        d.hex(&format!("({ms} / 65536)"), 8),
        d.hex(&format!("({ms} % 65536)"), 4),
        d.hex("n", 12)
    );
    let k = format!("(n % {h})");
    let started = Instant::now();
    let mut from_row = 0;
    while from_row < total {
        let to = (from_row + LEDGER_CHUNK).min(total);
        let (with, from) = d.series(from_row, to);
        let sql = format!(
            "{with}INSERT INTO signatures (id, credential_id, user_id, sad_hash, digest, hash_algo, sign_algo, signature,
                                     client, created_at, kind)
             SELECT {id}, {}, {}, '5eed' || {}, {}, '{HASH_ALGO}', '{SIGN_ALGO}', '3045022100' || {}, '198.51.100.' || (n % 200), {at}, 'signature'
             FROM {from}",
            d.seeded_id(CREDENTIAL_PREFIX, &k),
            d.seeded_id(USER_PREFIX, &k),
            d.hex("(n / 100)", 60),
            d.hex("(n * 2654435761)", 64),
            d.hex("n", 86),
        );
        let mut tx = conn.begin().await.expect("begin");
        let n = sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}\n in: {sql}"))
            .rows_affected();
        tx.commit().await.expect("commit ledger rows");
        assert_eq!(n, (to - from_row) as u64);
        from_row = to;
        note(format!(
            "{db}: {from_row} ledger rows seeded, {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
}

/// The seeded audit trail: `signature.create` rows of the seeded holders over the two years before now, sealed,
/// chained after the database's head with the sealer's own hash; the head moves to the last one.
async fn seed_audit(conn: &mut sqlx::AnyConnection, d: Dialect, params: &Params) {
    let chunk = audit_chunk(d);
    let total = params.audit_rows;
    let t0 = real_now() - SPAN_SECS;
    let mut tx = conn.begin().await.expect("begin");
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await
        .expect("audit head");
    let (head_seq, mut prev): (i64, String) = (r.try_get("seq").expect("seq"), r.try_get("hash").expect("hash"));
    let details = serde_json::json!({ "signatures": 1, "sign_algo": SIGN_ALGO, "hash_algo": HASH_ALGO }).to_string();
    let mut i = 0;
    while i < total {
        let end = (i + chunk as i64).min(total);
        let mut rows = Vec::with_capacity(chunk);
        for j in i..end {
            let at = t0 + j * SPAN_SECS / total;
            let ms = at * 1000 + j % 1000;
            let k = j % params.seed_holders;
            let mut row = AuditRow {
                id: format!("{:08x}-{:04x}-7000-8000-{j:012x}", ms >> 16, ms & 0xffff),
                at,
                actor: format!("user:{}", seeded_user(k)),
                action: "signature.create".to_owned(),
                target: seeded_credential(k),
                outcome: "ok".to_owned(),
                client: format!("198.51.100.{}", j % 200),
                details: details.clone(),
                seq: Some(head_seq + 1 + j),
                prev_hash: Some(prev.clone()),
                hash: None,
            };
            let hash = parafa::audit::chain_hash(&prev, head_seq + 1 + j, &row);
            row.hash = Some(hash.clone());
            prev = hash;
            rows.push(row);
        }
        let sql = format!(
            "INSERT INTO audit_events (id, at, actor, action, target, outcome, client, details, seq, prev_hash, hash)
             VALUES {}",
            parafa::db::value_rows(rows.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for r in &rows {
            q = q
                .bind(&r.id)
                .bind(r.at)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.target)
                .bind(&r.outcome)
                .bind(&r.client)
                .bind(&r.details)
                .bind(r.seq)
                .bind(&r.prev_hash)
                .bind(&r.hash);
        }
        q.execute(&mut *tx).await.expect("insert seeded audit rows");
        i = end;
    }
    let moved = sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3")
        .bind(head_seq + total)
        .bind(&prev)
        .bind(head_seq)
        .execute(&mut *tx)
        .await
        .expect("move the audit head")
        .rows_affected();
    assert_eq!(moved, 1, "the audit head moved while seeding");
    tx.commit().await.expect("commit the seeded audit rows");
}

/// A literal value to put in place of a placeholder.
enum Lit {
    Text(String),
    Int(i64),
}

impl Lit {
    fn sql(&self) -> String {
        match self {
            Lit::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Lit::Int(i) => i.to_string(),
        }
    }
}

fn text(s: &str) -> Lit {
    Lit::Text(s.to_owned())
}

/// `sql` with `$1`, `$2`, … replaced by `values` (the highest first, so that `$1` does not eat into `$10`).
fn inline(sql: &str, values: &[Lit]) -> String {
    let mut out = sql.to_owned();
    for (i, v) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), &v.sql());
    }
    out
}

/// `($first, …)` for `n` placeholders.
fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The queries of the signHash path, as the server sends them (copied from the files named), with the values of a
/// real request of the measured holders.
async fn hot_queries(conn: &mut sqlx::AnyConnection, d: Dialect, holders: &[Holder]) -> Vec<(&'static str, String)> {
    let now = real_now();
    let (a, b) = (&holders[0], &holders[1 % holders.len()]);
    let token = parafa::auth::tokens::hash(&a.access_token);
    let token_b = parafa::auth::tokens::hash(&b.access_token);
    let r = sqlx::query(
        "SELECT h.sad_hash, h.digest, s.user_id FROM sad_hashes h JOIN sads s ON s.sad_hash = h.sad_hash LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("a SAD of the measurement");
    let (sad, digest, user): (String, String, String) = (
        r.try_get("sad_hash").expect("sad_hash"),
        r.try_get("digest").expect("digest"),
        r.try_get("user_id").expect("user_id"),
    );
    let audit_id: String = sqlx::query("SELECT id FROM audit_events WHERE seq IS NOT NULL LIMIT 1")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get("id"))
        .expect("an audit row");
    let value_rows = parafa::db::value_rows;
    let mut q: Vec<(&'static str, String)> = vec![
        // src/db/signing.rs `token` (auth::tokens::authenticate, the bearer of every CSC call).
        (
            "access_token",
            inline(
                "SELECT token_hash, user_id, kind, refresh_hash, expires_at, revoked, scope FROM access_tokens WHERE token_hash = $1",
                &[text(&token)],
            ),
        ),
        // src/db/credentials.rs `credential_full` (the credential, its certificate and quota).
        (
            "credential_full",
            inline(
                "SELECT c.id, c.user_id, c.key_spec, c.key_label, c.cert_serial, c.status, c.created_at,
                        t.serial, t.issuer_role, t.credential_id, t.subject, t.cert_der, t.not_before, t.not_after,
                        t.status AS cert_status, q.package_id, q.total, q.used
                 FROM credentials c
                 JOIN certificates t ON t.serial = c.cert_serial AND t.cert_der <> ''
                 JOIN quotas q ON q.credential_id = c.id
                 WHERE c.id = $1",
                &[text(&a.credential_id)],
            ),
        ),
        // src/db/signing.rs `sad_whole` (signing::check_recent).
        (
            "sad_whole",
            inline(
                "SELECT s.sad_hash, s.credential_id, s.user_id, s.hash_algo, s.remaining, s.expires_at, h.digest, h.uses_left
                 FROM sads s LEFT JOIN sad_hashes h ON h.sad_hash = s.sad_hash WHERE s.sad_hash = $1",
                &[text(&sad)],
            ),
        ),
        // src/db/signing.rs `sad` (signing::check, after a refusal).
        (
            "sad_digests",
            inline(
                "SELECT s.sad_hash, s.credential_id, s.user_id, s.hash_algo, s.remaining, s.expires_at, h.digest, h.uses_left
                 FROM sads s LEFT JOIN sad_hashes h ON h.sad_hash = s.sad_hash AND h.digest IN ($2) WHERE s.sad_hash = $1",
                &[text(&sad), text(&digest)],
            ),
        ),
        // src/db/signing/together.rs `may_sign`, a group of two credentials and two tokens.
        (
            "ledger_may_sign",
            inline(
                &format!(
                    "SELECT
                       (SELECT COUNT(*) FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
                         WHERE c.id IN ({}) AND c.status = 'active' AND t.status = 'valid'
                           AND t.not_before <= $1 AND t.not_after > $1) AS usable,
                       (SELECT COUNT(*) FROM access_tokens a
                         WHERE a.token_hash IN ({}) AND a.revoked = 0 AND a.expires_at > $1) AS valid_tokens",
                    list(2, 2),
                    list(4, 2)
                ),
                &[
                    Lit::Int(now),
                    text(&a.credential_id),
                    text(&b.credential_id),
                    text(&token),
                    text(&token_b),
                ],
            ),
        ),
        // src/db/signing/together.rs `try_apply`: the quotas, the SADs, the digests of a group.
        (
            "ledger_debit_quotas",
            inline(
                &format!(
                    "WITH v(cred, n) AS (VALUES {})
                     UPDATE quotas SET used = used + v.n FROM v
                     WHERE quotas.credential_id = v.cred AND quotas.used + v.n <= quotas.total",
                    value_rows(2, 2)
                ),
                &[text(&a.credential_id), Lit::Int(1), text(&b.credential_id), Lit::Int(1)],
            ),
        ),
        (
            "ledger_consume_sads",
            inline(
                &format!(
                    "WITH v(sad, cred, n) AS (VALUES {})
                     UPDATE sads SET remaining = remaining - v.n FROM v
                     WHERE sads.sad_hash = v.sad AND sads.credential_id = v.cred AND sads.remaining >= v.n
                       AND sads.expires_at > $4",
                    value_rows(1, 3)
                ),
                &[text(&sad), text(&a.credential_id), Lit::Int(1), Lit::Int(now)],
            ),
        ),
        (
            "ledger_consume_digests",
            inline(
                &format!(
                    "WITH v(sad, digest, k) AS (VALUES {})
                     UPDATE sad_hashes SET uses_left = uses_left - v.k FROM v
                     WHERE sad_hashes.sad_hash = v.sad AND sad_hashes.digest = v.digest AND sad_hashes.uses_left >= v.k",
                    value_rows(1, 3)
                ),
                &[text(&sad), text(&digest), Lit::Int(1)],
            ),
        ),
        // src/db/signing.rs `CHECKED_DEBIT` (the one-by-one path, when a group's fast path refuses).
        (
            "ledger_checked_debit",
            inline(
                "UPDATE quotas SET used = used + $1 WHERE credential_id = $2 AND used + $1 <= total
                 AND EXISTS (SELECT 1 FROM credentials c JOIN certificates t ON t.serial = c.cert_serial
                   WHERE c.id = $2 AND c.status = 'active' AND t.status = 'valid' AND t.not_before <= $3
                     AND t.not_after > $3)
                 AND ($4 = '' OR EXISTS (SELECT 1 FROM access_tokens a
                   WHERE a.token_hash = $4 AND a.revoked = 0 AND a.expires_at > $3))",
                &[Lit::Int(1), text(&a.credential_id), Lit::Int(now), text(&token)],
            ),
        ),
        // src/db/signing.rs `commit_group`: the signature rows and the audit rows of a group.
        (
            "ledger_insert_signatures",
            inline(
                "INSERT INTO signatures (id, credential_id, user_id, sad_hash, digest, hash_algo, sign_algo, signature, client, created_at, kind)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    text("01900000-0000-7000-8000-000000000000"),
                    text(&a.credential_id),
                    text(&user),
                    text(&sad),
                    text(&digest),
                    text(HASH_ALGO),
                    text(SIGN_ALGO),
                    text("MEUCIQ"),
                    text("127.0.0.1"),
                    Lit::Int(now),
                    text("signature"),
                ],
            ),
        ),
        // src/db/audit.rs `insert_many`.
        (
            "audit_insert",
            inline(
                "INSERT INTO audit_events (id, at, actor, action, target, outcome, client, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    text("01900000-0000-7000-8000-000000000001"),
                    Lit::Int(now),
                    text("user:x"),
                    text("signature.create"),
                    text(&a.credential_id),
                    text("ok"),
                    text("127.0.0.1"),
                    text("{}"),
                ],
            ),
        ),
        // src/db/audit.rs `head`, `unsealed`, `seal` (the sealer, every second).
        ("sealer_head", "SELECT seq, hash FROM audit_head WHERE id = 1".to_owned()),
        (
            "sealer_unsealed",
            "SELECT id, at, actor, action, target, outcome, client, details, seq, prev_hash, hash
             FROM audit_events WHERE hash IS NULL ORDER BY at, id LIMIT 500"
                .to_owned(),
        ),
        (
            "sealer_move_head",
            "UPDATE audit_head SET seq = 2, hash = 'x' WHERE id = 1 AND seq = 1".to_owned(),
        ),
        (
            "sealer_seal",
            inline(
                &format!(
                    "WITH v(id, seq, prev_hash, hash) AS (VALUES {})
                     UPDATE audit_events SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash FROM v
                     WHERE audit_events.id = v.id AND audit_events.seq IS NULL",
                    value_rows(1, 4)
                ),
                &[text(&audit_id), Lit::Int(1), text("p"), text("h")],
            ),
        ),
        // src/db/audit.rs `sealed_after` (`parafa admin audit verify`, not the signing path).
        (
            "verify_page",
            "SELECT id, at, actor, action, target, outcome, client, details, seq, prev_hash, hash
             FROM audit_events WHERE seq IS NOT NULL AND seq > 1000 ORDER BY seq LIMIT 1000"
                .to_owned(),
        ),
    ];
    if d == Dialect::Postgres {
        // src/db/signing/together.rs `try_apply`: the group's quota rows locked in order (PostgreSQL only).
        q.insert(
            5,
            (
                "ledger_lock_quotas",
                inline(
                    "SELECT credential_id FROM quotas WHERE credential_id IN ($1, $2) ORDER BY credential_id FOR UPDATE",
                    &[text(&a.credential_id), text(&b.credential_id)],
                ),
            ),
        );
    }
    q
}

/// The plan of each hot query on the seeded database, with its full scans.
async fn explain(conn: &mut sqlx::AnyConnection, d: Dialect, holders: &[Holder]) -> Vec<Plan> {
    let mut plans = Vec::new();
    for (name, sql) in hot_queries(conn, d, holders).await {
        let (prefix, column) = match d {
            Dialect::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Dialect::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        };
        let rows = sqlx::query(&format!("{prefix}{sql}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN {name}: {e}\n in: {sql}"));
        let lines: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(column).unwrap_or_default())
            .collect();
        let scans = lines.iter().filter_map(|l| full_scan(d, l)).collect();
        plans.push(Plan { name, lines, scans });
    }
    plans
}

/// The table (or alias) a plan line reads whole, if it does. A scan of the `VALUES` list (`v`), of a constant row
/// or of a subquery's result is no scan of the books.
fn full_scan(d: Dialect, line: &str) -> Option<String> {
    let line = line.trim().trim_start_matches("->").trim();
    match d {
        Dialect::Sqlite => {
            let rest = line.strip_prefix("SCAN ")?;
            let table = rest.split_whitespace().next()?;
            let constant = table == "CONSTANT" || table.starts_with(|c: char| c.is_ascii_digit());
            (table != "v" && !constant && !table.starts_with('(')).then(|| table.to_owned())
        }
        Dialect::Postgres => {
            let rest = line.strip_prefix("Seq Scan on ")?;
            rest.split_whitespace().next().map(str::to_owned)
        }
    }
}

fn report(results: &[DbResult], params: &Params) {
    println!();
    println!(
        "Parafa books benchmark: single-hash signHash ({KEY}) at concurrency {CONCURRENCY}, {:.0} s per measurement, \
         on an empty database and after seeding {} holders, {} ledger rows and {} audit rows",
        params.secs, params.seed_holders, params.ledger_rows, params.audit_rows
    );
    println!(
        "  {:<9} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7} {:>8} {:>7}",
        "db", "empty/s", "p50 ms", "p99 ms", "seeded/s", "p50 ms", "p99 ms", "ratio", "seed s", "books"
    );
    for r in results {
        println!(
            "  {:<9} {:>12} {:>9.2} {:>9.2} {:>12} {:>9.2} {:>9.2} {:>7.3} {:>8.1} {:>7}",
            r.db,
            r.empty.rates(),
            r.empty.best().p(50.0),
            r.empty.best().p(99.0),
            r.seeded.rates(),
            r.seeded.best().p(50.0),
            r.seeded.best().p(99.0),
            r.seeded.rate() / r.empty.rate().max(1e-9),
            r.seed.total(),
            if r.books_wrong.is_empty() { "exact" } else { "WRONG" }
        );
        for w in r.books_wrong.iter().take(5) {
            println!("    books wrong: {w}");
        }
    }
    println!("  each rate is per round (the best counts); p50 and p99 of the best round");
    println!();
    println!("Query plans of the signHash path on the seeded databases (full scans flagged):");
    for r in results {
        for p in &r.plans {
            let flag = if p.scans.is_empty() {
                String::new()
            } else {
                format!("   <-- FULL SCAN of {}", p.scans.join(", "))
            };
            println!("PLAN {} {}: {}{flag}", r.db, p.name, p.lines.join(" | "));
        }
    }
    println!();
    for r in results {
        let ratio = r.seeded.rate() / r.empty.rate().max(1e-9);
        println!(
            "RESULT books_{}_{KEY} empty_per_s={:.1} seeded_per_s={:.1} ratio={ratio:.4} rounds={} empty_rounds={} seeded_rounds={} target_ratio={TARGET_RATIO:.2} met={} holders={} ledger_rows={} audit_rows={} empty_p99_ms={:.3} seeded_p99_ms={:.3} empty_signatures={} seeded_signatures={} errors={} books={} books_exact_holders={}",
            r.db,
            r.empty.rate(),
            r.seeded.rate(),
            params.rounds,
            r.empty.rates(),
            r.seeded.rates(),
            ratio >= TARGET_RATIO,
            r.counts.0,
            r.counts.1,
            r.counts.2,
            r.empty.best().p(99.0),
            r.seeded.best().p(99.0),
            r.empty.signatures(),
            r.seeded.signatures(),
            r.empty.errors() + r.seeded.errors(),
            if r.books_wrong.is_empty() { "exact" } else { "wrong" },
            r.books_exact
        );
        println!(
            "RESULT books_{}_seed secs={:.1} holders_secs={:.1} ledger_secs={:.1} audit_secs={:.1} upkeep_secs={:.1}",
            r.db,
            r.seed.total(),
            r.seed.holders,
            r.seed.ledger,
            r.seed.audit,
            r.seed.upkeep
        );
        let scanned: Vec<&str> = r.plans.iter().filter(|p| !p.scans.is_empty()).map(|p| p.name).collect();
        println!(
            "RESULT books_{}_plans queries={} full_scans={} scanned={}",
            r.db,
            r.plans.len(),
            scanned.len(),
            if scanned.is_empty() {
                "none".to_owned()
            } else {
                scanned.join(",")
            }
        );
        if let Some((secs, text, ok)) = &r.verify {
            let rows = text
                .split_whitespace()
                .rev()
                .nth(1)
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(-1);
            println!(
                "RESULT books_{}_audit_verify secs={secs:.1} rows={rows} intact={ok}",
                r.db
            );
        }
    }
}
