//! The cluster load driver shared by `tests/faults.rs` (short runs) and `benches/cluster.rs` (long runs).
//!
//! Holders (package 3, no TOTP at login) each get SADs of up to `multisign` distinct hashes, authorised before the
//! timed section with real TOTP codes (the shared test clock moves one step per round of authorisations). Then
//! single-hash `signatures/signHash` requests go round-robin over the instances at a chosen concurrency, optionally
//! with a fault in the middle: a SIGKILL of one instance (restarted, its new address used from then on) or a
//! database blip (every connection of the test database terminated). Afterwards [`check_books`] reads the ledger
//! straight from PostgreSQL and holds it against what the clients were given.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::{psql, run_ok, totp_code, Holder, TestApp};

/// OID of SHA-256.
pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// OID of ECDSA with SHA-256.
pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// Transactions of package 3 (the product rules' largest package).
pub const PACKAGE_3_TRANSACTIONS: usize = 600;
/// The server's default `multisign`: most hashes one SAD may carry.
pub const MULTISIGN: usize = 100;

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// How long after a database blip requests may still fail: the pools' connections are found dead one by one.
pub const RECOVERY_GRACE: Duration = Duration::from_millis(500);

/// A fault injected once, when `at` requests have been answered (or failed).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// SIGKILL of instance `instance`, restart after `down` (its requests meanwhile fail to connect).
    Kill9 { instance: usize, at: usize, down: Duration },
    /// `pg_terminate_backend` of every connection of the test database, `times` times, `gap` apart.
    DbBlip { at: usize, times: usize, gap: Duration },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name in the RESULT line (`cluster`, `faults_kill9`, …).
    pub name: String,
    pub holders: usize,
    /// Signatures each holder is authorised for (≤ 600, package 3).
    pub per_holder: usize,
    /// Hashes per SAD (≤ 100, the default multisign).
    pub per_sad: usize,
    pub concurrency: usize,
    pub fault: Option<Fault>,
}

impl Plan {
    /// A plan of `requests` requests, as few holders as package 3 allows.
    pub fn for_requests(name: &str, requests: usize, concurrency: usize, fault: Option<Fault>) -> Plan {
        let holders = requests.div_ceil(PACKAGE_3_TRANSACTIONS).max(1);
        Plan {
            name: name.to_owned(),
            holders,
            per_holder: requests.div_ceil(holders),
            per_sad: MULTISIGN,
            concurrency,
            fault,
        }
    }

    pub fn requests(&self) -> usize {
        self.holders * self.per_holder
    }
}

/// One holder ready to sign: access token and the SADs with their digests.
pub struct Ready {
    pub holder: Holder,
    pub token: String,
    /// (SAD, the digests it is bound to).
    pub sads: Vec<(String, Vec<[u8; 32]>)>,
}

/// One signHash request of the load.
#[derive(Clone, Copy)]
struct Item {
    holder: usize,
    sad: usize,
    digest: usize,
}

/// Creates the holders, logs them in and authorises their SADs (not timed).
pub fn prepare(app: &TestApp, plan: &Plan, tag: &str) -> Vec<Ready> {
    assert!(plan.per_holder <= PACKAGE_3_TRANSACTIONS && plan.per_sad <= MULTISIGN);
    // The CLI makes keys and certificates: a few processes at a time.
    let holders: Vec<Holder> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.holders)
            .collect::<Vec<_>>()
            .chunks(plan.holders.div_ceil(4).max(1))
            .map(|chunk| {
                let chunk = chunk.to_vec();
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| app.create_holder_with(&format!("load-{tag}-{i}@example.com"), "p256", 3, false))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("holder thread"))
            .collect()
    });
    let mut ready: Vec<Ready> = holders
        .into_iter()
        .map(|holder| {
            let token = app.login(&holder);
            Ready {
                holder,
                token,
                sads: Vec::new(),
            }
        })
        .collect();
    let rounds = plan.per_holder.div_ceil(plan.per_sad);
    for round in 0..rounds {
        // One new TOTP step per round: every holder uses each step once.
        app.advance_clock(30);
        for (h, r) in ready.iter_mut().enumerate() {
            let first = round * plan.per_sad;
            let n = plan.per_sad.min(plan.per_holder - first);
            let digests: Vec<[u8; 32]> = (first..first + n)
                .map(|k| sha2::Sha256::digest(format!("{tag}/{h}/{k}")).into())
                .collect();
            let body = |code: String| {
                json!({"credentialID": r.holder.credential_id, "numSignatures": n,
                       "hashes": digests.iter().map(|d| b64(d)).collect::<Vec<_>>(),
                       "hashAlgorithmOID": SHA256, "OTP": code})
            };
            let (mut status, mut out) = app.csc(
                "/csc/v2/credentials/authorize",
                &r.token,
                &body(totp_code(&r.holder.totp_secret, app.now())),
            );
            if status != 200 {
                // The real clock crossed a step boundary: take the next step.
                (status, out) = app.csc(
                    "/csc/v2/credentials/authorize",
                    &r.token,
                    &body(app.fresh_totp(&r.holder)),
                );
            }
            assert_eq!(status, 200, "authorize: {out}");
            let sad = out["SAD"].as_str().expect("SAD").to_owned();
            r.sads.push((sad, digests));
        }
    }
    ready
}

/// How one request ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with the signature (base64).
    Signed(String),
    /// An HTTP answer other than 200.
    Status(u16, String),
    /// No HTTP answer (connection refused or reset): the outcome is unknown to the client.
    NoAnswer(String),
}

struct Done {
    item: Item,
    instance: usize,
    started: Instant,
    latency: Duration,
    outcome: Outcome,
}

/// What the clients saw.
pub struct Run {
    pub plan: Plan,
    pub instances: usize,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// (credential, hex digest) → signature returned.
    pub returned: HashMap<(String, String), String>,
    /// HTTP status (0: no answer) → count, and one sample answer each.
    pub statuses: BTreeMap<u16, (usize, String)>,
    /// Requests with no answer that were sent to the killed instance before it was dead.
    pub in_flight_at_kill: usize,
    /// Requests without an HTTP answer at all.
    pub no_answer: usize,
    /// Whether a SIGKILL happened.
    pub killed: bool,
    /// Non-200 answers among requests started [`RECOVERY_GRACE`] or more after the database blip ended.
    pub failures_after_blip: usize,
    /// 200 answers among those.
    pub successes_after_blip: usize,
}

/// Runs the load over `apps` (round-robin), injecting the plan's fault.
pub fn run(apps: &mut [TestApp], ready: &[Ready], plan: &Plan) -> Run {
    let n = ready.iter().map(|r| r.sads.len()).max().unwrap_or(0);
    // Every holder and SAD busy at once: interleave by position, then SAD, then holder.
    let mut items = Vec::with_capacity(plan.requests());
    for k in 0..plan.per_sad {
        for s in 0..n {
            for (h, r) in ready.iter().enumerate() {
                if r.sads.get(s).is_some_and(|(_, d)| k < d.len()) {
                    items.push(Item {
                        holder: h,
                        sad: s,
                        digest: k,
                    });
                }
            }
        }
    }
    let instances = apps.len();
    let bases = RwLock::new(apps.iter().map(|a| a.base.clone()).collect::<Vec<_>>());
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let done: Mutex<Vec<Done>> = Mutex::new(Vec::with_capacity(items.len()));
    let db_name = database_name(&apps[0]);
    let admin_url = std::env::var("PARAFA_TEST_POSTGRES_URL").expect("PARAFA_TEST_POSTGRES_URL");
    let mut kill_at: Option<(usize, Instant)> = None;
    let mut blip_end: Option<Instant> = None;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..plan.concurrency {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("http client");
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&item) = items.get(i) else { break };
                    let instance = i % instances;
                    let base = bases.read().expect("bases")[instance].clone();
                    let r = &ready[item.holder];
                    let (sad, digests) = &r.sads[item.sad];
                    let body = json!({"credentialID": r.holder.credential_id, "SAD": sad,
                                      "hashes": [b64(&digests[item.digest])],
                                      "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256});
                    let started = Instant::now();
                    let sent = client
                        .post(format!("{base}/csc/v2/signatures/signHash"))
                        .bearer_auth(&r.token)
                        .json(&body)
                        .send();
                    let outcome = match sent {
                        Err(e) => Outcome::NoAnswer(e.to_string()),
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            match resp.text() {
                                Err(e) => Outcome::NoAnswer(format!("{status}, body lost: {e}")),
                                Ok(text) if status == 200 => {
                                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                                    match v["signatures"][0].as_str() {
                                        Some(sig) => Outcome::Signed(sig.to_owned()),
                                        None => Outcome::Status(200, text),
                                    }
                                }
                                Ok(text) => Outcome::Status(status, text),
                            }
                        }
                    };
                    let latency = started.elapsed();
                    if matches!(outcome, Outcome::NoAnswer(_)) {
                        // A client backs off a little from an instance that does not answer.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    mine.push(Done {
                        item,
                        instance,
                        started,
                        latency,
                        outcome,
                    });
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                done.lock().expect("results").extend(mine);
            });
        }
        if let Some(fault) = plan.fault {
            let at = match fault {
                Fault::Kill9 { at, .. } | Fault::DbBlip { at, .. } => at,
            };
            while finished.load(Ordering::SeqCst) < at && next.load(Ordering::SeqCst) < items.len() {
                std::thread::sleep(Duration::from_millis(5));
            }
            match fault {
                Fault::Kill9 { instance, down, .. } => {
                    apps[instance].stop();
                    kill_at = Some((instance, Instant::now()));
                    eprintln!(
                        "{}: SIGKILL of instance {instance} after {} requests",
                        plan.name,
                        finished.load(Ordering::SeqCst)
                    );
                    std::thread::sleep(down);
                    apps[instance].start();
                    bases.write().expect("bases")[instance] = apps[instance].base.clone();
                    eprintln!(
                        "{}: instance {instance} restarted at {} after {} requests",
                        plan.name,
                        apps[instance].base,
                        finished.load(Ordering::SeqCst)
                    );
                }
                Fault::DbBlip { times, gap, .. } => {
                    for _ in 0..times {
                        psql(
                            &admin_url,
                            &format!(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                 WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
                            ),
                        );
                        std::thread::sleep(gap);
                    }
                    blip_end = Some(Instant::now());
                    eprintln!(
                        "{}: database connections terminated {times} times, blip over after {} requests",
                        plan.name,
                        finished.load(Ordering::SeqCst)
                    );
                }
            }
        }
    });
    let elapsed = start.elapsed();
    let done = done.into_inner().expect("results");
    let mut latencies: Vec<Duration> = Vec::new();
    let mut returned = HashMap::new();
    let mut statuses: BTreeMap<u16, (usize, String)> = BTreeMap::new();
    let (mut in_flight_at_kill, mut no_answer) = (0, 0);
    let (mut failures_after_blip, mut successes_after_blip) = (0, 0);
    for d in &done {
        let r = &ready[d.item.holder];
        let after_blip = blip_end.is_some_and(|end| d.started > end + RECOVERY_GRACE);
        let (code, sample) = match &d.outcome {
            Outcome::Signed(sig) => {
                latencies.push(d.latency);
                let digest = hex::encode(r.sads[d.item.sad].1[d.item.digest]);
                returned.insert((r.holder.credential_id.clone(), digest), sig.clone());
                successes_after_blip += usize::from(after_blip);
                (200, String::new())
            }
            Outcome::Status(code, text) => {
                failures_after_blip += usize::from(after_blip);
                (*code, text.clone())
            }
            Outcome::NoAnswer(e) => {
                no_answer += 1;
                failures_after_blip += usize::from(after_blip);
                if kill_at.is_some_and(|(i, at)| i == d.instance && d.started < at) {
                    in_flight_at_kill += 1;
                }
                (0, e.clone())
            }
        };
        let e = statuses.entry(code).or_insert((0, sample));
        e.0 += 1;
    }
    latencies.sort();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[i.clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0
    };
    Run {
        plan: plan.clone(),
        instances,
        elapsed,
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        returned,
        statuses,
        in_flight_at_kill,
        no_answer,
        killed: kill_at.is_some(),
        failures_after_blip,
        successes_after_blip,
    }
}

/// The test database's name, from the server's `PARAFA_DATABASE_URL`.
pub fn database_name(app: &TestApp) -> String {
    let url = &app
        .env()
        .iter()
        .find(|(k, _)| k == "PARAFA_DATABASE_URL")
        .expect("a PostgreSQL server")
        .1;
    url.rsplit('/').next().expect("database name").to_owned()
}

/// The test database's URL.
pub fn database_url(app: &TestApp) -> String {
    app.env()
        .iter()
        .find(|(k, _)| k == "PARAFA_DATABASE_URL")
        .expect("a PostgreSQL server")
        .1
        .clone()
}

/// Rows of a query whose columns are all text (cast them in the SQL).
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("PostgreSQL");
            let rows = sqlx::query(&sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).expect("text column"))
                        .collect()
                })
                .collect()
        })
    })
    .join()
    .expect("query thread")
}

/// The books as read from the database, held against what the clients were given.
#[derive(Debug, Default)]
pub struct Books {
    /// Signatures returned to clients.
    pub returned: usize,
    /// Transactions debited (sum of `quotas.used` over the load's holders).
    pub debited: i64,
    /// Signature rows recorded for the load's holders.
    pub rows: i64,
    /// Holders whose debits exceed their package.
    pub overspent: usize,
    /// Holders whose books break a rule (listed in `problems`).
    pub mismatches: usize,
    /// What broke, one line each.
    pub problems: Vec<String>,
    /// Signatures verified with OpenSSL against the holder's certificate.
    pub verified: usize,
}

/// Reads the ledger and checks, per holder: debited == rows; every returned signature is the recorded one for its
/// credential and digest; rows − returned ≤ the requests whose outcome the client could not know (in flight at a
/// kill; none otherwise); no digest signed twice; for every SAD, uses recorded + remaining == hashes bound and no
/// hash used twice; used ≤ total. A sample of the returned signatures is verified with OpenSSL.
pub fn check_books(app: &TestApp, ready: &[Ready], run: &Run, verify_sample: usize) -> Books {
    let url = database_url(app);
    let mut books = Books {
        returned: run.returned.len(),
        ..Books::default()
    };
    let quotas: HashMap<String, (i64, i64)> = query(&url, "SELECT credential_id, used::text, total::text FROM quotas")
        .into_iter()
        .map(|r| {
            let n = |v: &Option<String>| v.as_deref().unwrap_or("0").parse::<i64>().expect("number");
            (r[0].clone().unwrap_or_default(), (n(&r[1]), n(&r[2])))
        })
        .collect();
    // (credential, digest) → signatures recorded (more than one is a double spend).
    let mut recorded: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut per_sad: HashMap<String, i64> = HashMap::new();
    let mut per_sad_digest: HashMap<(String, String), i64> = HashMap::new();
    for r in query(
        &url,
        "SELECT credential_id, digest, signature, sad_hash FROM signatures",
    ) {
        let [c, d, s, h] = [0, 1, 2, 3].map(|i| r[i].clone().unwrap_or_default());
        recorded.entry((c, d.clone())).or_default().push(s);
        *per_sad.entry(h.clone()).or_default() += 1;
        *per_sad_digest.entry((h, d)).or_default() += 1;
    }
    let mut bad_holders: HashSet<String> = HashSet::new();
    let mut problem = |books: &mut Books, cred: &str, what: String| {
        bad_holders.insert(cred.to_owned());
        if books.problems.len() < 20 {
            books.problems.push(format!("{cred}: {what}"));
        }
    };
    let unknown_bound = if run.killed { run.in_flight_at_kill } else { 0 };
    let mut excess_total = 0i64;
    for r in ready {
        let cred = r.holder.credential_id.as_str();
        let (used, total) = quotas.get(cred).copied().unwrap_or((-1, -1));
        let rows: i64 = recorded
            .iter()
            .filter(|((c, _), _)| c == cred)
            .map(|(_, v)| v.len() as i64)
            .sum();
        let returned = run.returned.keys().filter(|(c, _)| c == cred).count() as i64;
        books.debited += used;
        books.rows += rows;
        if used > total {
            books.overspent += 1;
            problem(&mut books, cred, format!("used {used} > total {total}"));
        }
        if used != rows {
            problem(&mut books, cred, format!("debited {used} != rows {rows}"));
        }
        if rows < returned {
            problem(&mut books, cred, format!("rows {rows} < returned {returned}"));
        }
        excess_total += rows - returned;
        for ((c, d), sigs) in recorded.iter().filter(|((c, _), _)| c == cred) {
            if sigs.len() > 1 {
                problem(&mut books, c, format!("digest {d} signed {} times", sigs.len()));
            }
        }
    }
    for ((cred, digest), sig) in &run.returned {
        match recorded.get(&(cred.clone(), digest.clone())) {
            Some(sigs) if sigs.contains(sig) => {}
            Some(_) => problem(
                &mut books,
                cred,
                format!("returned signature for {digest} differs from its row"),
            ),
            None => problem(&mut books, cred, format!("returned signature for {digest} has no row")),
        }
    }
    if excess_total > unknown_bound as i64 {
        problem(
            &mut books,
            "all holders",
            format!("recorded − returned = {excess_total} > {unknown_bound} requests whose outcome was unknown"),
        );
    }
    // SADs: uses recorded + remaining == hashes bound, and no bound hash used twice.
    let creds: HashSet<&str> = ready.iter().map(|r| r.holder.credential_id.as_str()).collect();
    for r in query(
        &url,
        "SELECT s.sad_hash, s.credential_id, s.remaining::text, count(h.digest)::text, \
                coalesce(sum(h.uses_left), 0)::text
         FROM sads s LEFT JOIN sad_hashes h ON h.sad_hash = s.sad_hash
         GROUP BY s.sad_hash, s.credential_id, s.remaining",
    ) {
        let [sad, cred, remaining, bound, uses_left] = [0, 1, 2, 3, 4].map(|i| r[i].clone().unwrap_or_default());
        if !creds.contains(cred.as_str()) {
            continue;
        }
        let (remaining, bound, uses_left): (i64, i64, i64) = (
            remaining.parse().expect("remaining"),
            bound.parse().expect("count"),
            uses_left.parse().expect("uses_left"),
        );
        let used = per_sad.get(&sad).copied().unwrap_or(0);
        if used + remaining != bound || used + uses_left != bound {
            problem(
                &mut books,
                &cred,
                format!("SAD: {used} used + {remaining} remaining ({uses_left} hash uses left) != {bound} bound"),
            );
        }
    }
    for ((sad, digest), n) in &per_sad_digest {
        if *n > 1 {
            problem(&mut books, sad, format!("SAD hash {digest} used {n} times"));
        }
    }
    books.mismatches = bad_holders.len();
    books.verified = verify_some(app, ready, run, verify_sample, &mut books);
    books
}

/// Verifies up to `n` returned signatures with `openssl pkeyutl` against the holder's certificate.
fn verify_some(app: &TestApp, ready: &[Ready], run: &Run, n: usize, books: &mut Books) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut keys: HashMap<String, std::path::PathBuf> = HashMap::new();
    let mut verified = 0;
    for ((cred, digest), sig) in run.returned.iter().take(n) {
        let key = keys.entry(cred.clone()).or_insert_with(|| {
            let holder = &ready
                .iter()
                .find(|r| &r.holder.credential_id == cred)
                .expect("holder")
                .holder;
            let cert = dir.path().join(format!("{cred}.pem"));
            std::fs::write(&cert, app.cli_ok(&["admin", "cert", &holder.certificate_serial])).expect("write cert");
            let public = run_ok(
                "openssl",
                &["x509", "-in", cert.to_str().expect("path"), "-pubkey", "-noout"],
            );
            let path = dir.path().join(format!("{cred}.pub.pem"));
            std::fs::write(&path, public).expect("write key");
            path
        });
        let signature = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap_or_default();
        if crate::common::openssl_verifies(key, &hex::decode(digest).expect("hex"), &signature, &[]) {
            verified += 1;
        } else {
            books.mismatches += 1;
            books
                .problems
                .push(format!("{cred}: signature over {digest} does not verify"));
        }
    }
    verified
}

/// The machine-readable line.
pub fn result_line(run: &Run, books: &Books) -> String {
    format!(
        "RESULT {} instances={} requests={} sign_per_s={:.0} p50_ms={:.1} p99_ms={:.1} returned={} debited={} \
         rows={} overspent={} mismatches={} kill9={} no_answer={} in_flight_at_kill={} statuses={}",
        run.plan.name,
        run.instances,
        run.plan.requests(),
        books.returned as f64 / run.elapsed.as_secs_f64(),
        run.p50_ms,
        run.p99_ms,
        books.returned,
        books.debited,
        books.rows,
        books.overspent,
        books.mismatches,
        u8::from(run.killed),
        run.no_answer,
        run.in_flight_at_kill,
        run.statuses
            .iter()
            .map(|(s, (n, _))| format!("{s}:{n}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}
