//! The cluster load driver shared by `tests/api/faults.rs` (short runs) and `benches/cluster.rs` (long runs).
//!
//! Holders (package 3, no TOTP at login) are created and logged in before the timed section. The timed section is a
//! mix of `credentials/authorize` and single-hash `signatures/signHash`, in waves: each wave the shared test clock
//! moves one TOTP step (30 s) and every holder authorises a SAD of `per_sad` digests of its own with a real TOTP
//! code; each SAD that comes back puts its `per_sad` signHash requests on the same queue, so authorisations and
//! signatures of all holders run side by side, round-robin over the instances, at a chosen concurrency. A wave ends
//! when its queue is empty and nothing is in flight. Optionally a fault is injected in the middle: a SIGKILL of one
//! instance (restarted, its new address used from then on) or a database blip (every connection of the test
//! database terminated). An authorisation that fails drops its SAD's signatures (counted as skipped). Afterwards
//! [`check_books`] reads the ledger straight from PostgreSQL and holds it against what the clients were given.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
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
/// Most waves of one run: each moves the clock 30 s, and the access tokens (1 h by default) must outlive them.
pub const MAX_WAVES: usize = 100;

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// Digest `k` of a holder: SHA-256 of `"{credential_id}/{k}"`, unique per holder and signature.
pub fn digest(credential_id: &str, k: usize) -> [u8; 32] {
    sha2::Sha256::digest(format!("{credential_id}/{k}")).into()
}

/// How long after a database blip requests may still fail: the pools' connections are found dead one by one.
pub const RECOVERY_GRACE: Duration = Duration::from_millis(500);

/// A fault injected once, when `at` requests (authorize and signHash) have been answered (or failed).
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
    /// Signatures each holder asks for (≤ 600, package 3).
    pub per_holder: usize,
    /// Hashes per SAD, i.e. signHash requests per authorize (≤ 100, the default multisign).
    pub per_sad: usize,
    pub concurrency: usize,
    pub fault: Option<Fault>,
}

impl Plan {
    /// A plan of about `requests` signHash requests (plus one authorize per `per_sad` of them), as few holders as
    /// package 3 and [`MAX_WAVES`] allow.
    pub fn for_requests(name: &str, requests: usize, per_sad: usize, concurrency: usize, fault: Option<Fault>) -> Plan {
        let per_sad = per_sad.clamp(1, MULTISIGN);
        let holders = requests
            .div_ceil(PACKAGE_3_TRANSACTIONS)
            .max(requests.div_ceil(per_sad * MAX_WAVES))
            .max(1);
        Plan {
            name: name.to_owned(),
            holders,
            per_holder: requests.div_ceil(holders),
            per_sad,
            concurrency,
            fault,
        }
    }

    /// Waves of the run: SADs per holder.
    pub fn waves(&self) -> usize {
        self.per_holder.div_ceil(self.per_sad)
    }
}

/// One holder ready to sign: its access token.
pub struct Ready {
    pub holder: Holder,
    pub token: String,
}

/// Creates the holders and logs them in (not timed).
pub fn prepare(app: &TestApp, plan: &Plan, tag: &str) -> Vec<Ready> {
    assert!(
        plan.per_holder <= PACKAGE_3_TRANSACTIONS && (1..=MULTISIGN).contains(&plan.per_sad),
        "{plan:?}"
    );
    assert!(
        plan.waves() <= MAX_WAVES,
        "{} waves: the access tokens would expire",
        plan.waves()
    );
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
    holders
        .into_iter()
        .map(|holder| {
            let token = app.login(&holder);
            Ready { holder, token }
        })
        .collect()
}

/// One request of the load.
#[derive(Clone)]
enum Job {
    /// `credentials/authorize` of the holder's digests `first..first + n` with a TOTP code.
    Authorize {
        holder: usize,
        first: usize,
        n: usize,
        otp: String,
    },
    /// `signatures/signHash` of the holder's digest `k` with a SAD.
    Sign { holder: usize, k: usize, sad: Arc<str> },
}

impl Job {
    fn holder(&self) -> usize {
        match self {
            Job::Authorize { holder, .. } | Job::Sign { holder, .. } => *holder,
        }
    }
}

/// The work queue of the current wave: workers take jobs, and an authorisation that succeeds adds its signatures.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Jobs were added, or the load is over.
    work: Condvar,
    /// The queue is empty and nothing is in flight.
    idle: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    in_flight: usize,
    closed: bool,
}

impl Queue {
    fn push(&self, jobs: impl IntoIterator<Item = Job>) {
        self.state.lock().expect("queue").jobs.extend(jobs);
        self.work.notify_all();
    }

    /// The next job (counted in flight until [`Queue::finish`]); `None` once the load is over.
    fn take(&self) -> Option<Job> {
        let mut s = self.state.lock().expect("queue");
        loop {
            if let Some(job) = s.jobs.pop_front() {
                s.in_flight += 1;
                return Some(job);
            }
            if s.closed {
                return None;
            }
            s = self.work.wait(s).expect("queue");
        }
    }

    /// A job is done; `more` are the jobs it leads to (queued before it stops counting as in flight).
    fn finish(&self, more: Vec<Job>) {
        let mut s = self.state.lock().expect("queue");
        let added = !more.is_empty();
        s.jobs.extend(more);
        s.in_flight -= 1;
        if added {
            self.work.notify_all();
        }
        if s.jobs.is_empty() && s.in_flight == 0 {
            self.idle.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut s = self.state.lock().expect("queue");
        while !(s.jobs.is_empty() && s.in_flight == 0) {
            s = self.idle.wait(s).expect("queue");
        }
    }

    fn close(&self) {
        self.state.lock().expect("queue").closed = true;
        self.work.notify_all();
    }
}

/// How one request ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with the SAD (authorize) or the signature (signHash, base64).
    Ok(String),
    /// An HTTP answer other than 200 (or a 200 without what was asked for).
    Status(u16, String),
    /// No HTTP answer (connection refused or reset): the outcome is unknown to the client.
    NoAnswer(String),
}

/// POSTs `body`; `Ok` carries the string that `pick` finds in a 200 answer.
fn send(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    body: &Value,
    pick: fn(&Value) -> Option<&str>,
) -> Outcome {
    match client.post(url).bearer_auth(token).json(body).send() {
        Err(e) => Outcome::NoAnswer(e.to_string()),
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text() {
                Err(e) => Outcome::NoAnswer(format!("{status}, body lost: {e}")),
                Ok(text) if status == 200 => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match pick(&v) {
                        Some(s) => Outcome::Ok(s.to_owned()),
                        None => Outcome::Status(200, text),
                    }
                }
                Ok(text) => Outcome::Status(status, text),
            }
        }
    }
}

struct Done {
    job: Job,
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
    /// Requests sent (authorize and signHash).
    pub sent: usize,
    /// `credentials/authorize` requests sent, and how many returned a SAD.
    pub authorizations: usize,
    pub authorized: usize,
    /// signHash requests not sent because their SAD's authorisation failed.
    pub skipped: usize,
    /// Latency percentiles of the signHash requests that returned a signature.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Latency percentiles of the authorize requests that returned a SAD.
    pub auth_p50_ms: f64,
    pub auth_p99_ms: f64,
    /// (credential, hex digest) → signature returned.
    pub returned: HashMap<(String, String), String>,
    /// HTTP status (0: no answer) → count, and one sample answer each; authorize and signHash together.
    pub statuses: BTreeMap<u16, (usize, String)>,
    /// signHash requests with no answer that were sent to the killed instance before it was dead.
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

/// Latency percentile `p` of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Runs the load over `apps` (round-robin; they share one test clock), injecting the plan's fault.
pub fn run(apps: &mut [TestApp], ready: &[Ready], plan: &Plan) -> Run {
    let instances = apps.len();
    let bases = RwLock::new(apps.iter().map(|a| a.base.clone()).collect::<Vec<_>>());
    let db_name = database_name(&apps[0]);
    let admin_url = std::env::var("PARAFA_TEST_POSTGRES_URL").expect("PARAFA_TEST_POSTGRES_URL");
    // The instance to kill is handed to the fault thread; another one keeps the clock.
    let kill = match plan.fault {
        Some(Fault::Kill9 { instance, .. }) => Some(instance),
        _ => None,
    };
    let mut slots: Vec<Option<&mut TestApp>> = apps.iter_mut().map(Some).collect();
    let victim = kill.map(|i| slots[i].take().expect("the instance to kill"));
    let clock: &TestApp = slots
        .iter_mut()
        .find_map(Option::take)
        .expect("an instance that stays up");
    let queue = Queue::default();
    let sent = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let over = AtomicBool::new(false);
    let done: Mutex<Vec<Done>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let (elapsed, kill_at, blip_end) = std::thread::scope(|scope| {
        for _ in 0..plan.concurrency {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("http client");
                let mut mine = Vec::new();
                while let Some(job) = queue.take() {
                    let instance = sent.fetch_add(1, Ordering::SeqCst) % instances;
                    let base = bases.read().expect("bases")[instance].clone();
                    let r = &ready[job.holder()];
                    let cred = r.holder.credential_id.as_str();
                    let started = Instant::now();
                    let outcome = match &job {
                        Job::Authorize { first, n, otp, .. } => {
                            let hashes: Vec<String> = (*first..first + n).map(|k| b64(&digest(cred, k))).collect();
                            let body = json!({"credentialID": cred, "numSignatures": n, "hashes": hashes,
                                              "hashAlgorithmOID": SHA256, "OTP": otp});
                            let url = format!("{base}/csc/v2/credentials/authorize");
                            send(&client, &url, &r.token, &body, |v| v["SAD"].as_str())
                        }
                        Job::Sign { k, sad, .. } => {
                            let body = json!({"credentialID": cred, "SAD": &**sad,
                                              "hashes": [b64(&digest(cred, *k))],
                                              "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256});
                            let url = format!("{base}/csc/v2/signatures/signHash");
                            send(&client, &url, &r.token, &body, |v| v["signatures"][0].as_str())
                        }
                    };
                    let latency = started.elapsed();
                    if matches!(outcome, Outcome::NoAnswer(_)) {
                        // A client backs off a little from an instance that does not answer.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    // A SAD brings its signatures onto the queue, to be spread over the instances.
                    let more = match (&job, &outcome) {
                        (Job::Authorize { holder, first, n, .. }, Outcome::Ok(sad)) => {
                            let sad: Arc<str> = sad.as_str().into();
                            (*first..first + n)
                                .map(|k| Job::Sign {
                                    holder: *holder,
                                    k,
                                    sad: sad.clone(),
                                })
                                .collect()
                        }
                        _ => Vec::new(),
                    };
                    mine.push(Done {
                        job,
                        instance,
                        started,
                        latency,
                        outcome,
                    });
                    finished.fetch_add(1, Ordering::SeqCst);
                    queue.finish(more);
                }
                done.lock().expect("results").extend(mine);
            });
        }
        let fault = plan.fault.map(|fault| {
            let (finished, over, bases, admin_url, db_name) = (&finished, &over, &bases, &admin_url, &db_name);
            let name = plan.name.as_str();
            scope.spawn(move || {
                let at = match fault {
                    Fault::Kill9 { at, .. } | Fault::DbBlip { at, .. } => at,
                };
                while finished.load(Ordering::SeqCst) < at && !over.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                match fault {
                    Fault::Kill9 { instance, down, .. } => {
                        let victim = victim.expect("the instance to kill");
                        victim.stop();
                        let kill_at = (instance, Instant::now());
                        eprintln!(
                            "{name}: SIGKILL of instance {instance} after {} requests",
                            finished.load(Ordering::SeqCst)
                        );
                        std::thread::sleep(down);
                        victim.start();
                        bases.write().expect("bases")[instance] = victim.base.clone();
                        eprintln!(
                            "{name}: instance {instance} restarted at {} after {} requests",
                            victim.base,
                            finished.load(Ordering::SeqCst)
                        );
                        (Some(kill_at), None)
                    }
                    Fault::DbBlip { times, gap, .. } => {
                        for _ in 0..times {
                            psql(
                                admin_url,
                                &format!(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                     WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
                                ),
                            );
                            std::thread::sleep(gap);
                        }
                        eprintln!(
                            "{name}: database connections terminated {times} times, blip over after {} requests",
                            finished.load(Ordering::SeqCst)
                        );
                        (None, Some(Instant::now()))
                    }
                }
            })
        });
        for wave in 0..plan.waves() {
            // One new TOTP step per wave: every holder uses each step once, in increasing order.
            clock.advance_clock(30);
            let now = clock.now();
            let first = wave * plan.per_sad;
            let n = plan.per_sad.min(plan.per_holder - first);
            queue.push(ready.iter().enumerate().map(|(holder, r)| Job::Authorize {
                holder,
                first,
                n,
                otp: totp_code(&r.holder.totp_secret, now),
            }));
            queue.wait_idle();
        }
        let elapsed = start.elapsed();
        over.store(true, Ordering::SeqCst);
        queue.close();
        let (kill_at, blip_end) = fault.map_or((None, None), |f| f.join().expect("fault thread"));
        (elapsed, kill_at, blip_end)
    });
    let done = done.into_inner().expect("results");
    let (mut sign_latencies, mut auth_latencies) = (Vec::new(), Vec::new());
    let mut returned = HashMap::new();
    let mut statuses: BTreeMap<u16, (usize, String)> = BTreeMap::new();
    let (mut authorizations, mut authorized, mut skipped) = (0, 0, 0);
    let (mut in_flight_at_kill, mut no_answer) = (0, 0);
    let (mut failures_after_blip, mut successes_after_blip) = (0, 0);
    for d in &done {
        let cred = &ready[d.job.holder()].holder.credential_id;
        let after_blip = blip_end.is_some_and(|end| d.started > end + RECOVERY_GRACE);
        if let Job::Authorize { n, .. } = d.job {
            authorizations += 1;
            if !matches!(d.outcome, Outcome::Ok(_)) {
                skipped += n;
            }
        }
        let (code, sample) = match &d.outcome {
            Outcome::Ok(value) => {
                match d.job {
                    Job::Authorize { .. } => {
                        authorized += 1;
                        auth_latencies.push(d.latency);
                    }
                    Job::Sign { k, .. } => {
                        sign_latencies.push(d.latency);
                        returned.insert((cred.clone(), hex::encode(digest(cred, k))), value.clone());
                    }
                }
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
                // A signHash in flight at the kill may have been debited; an authorisation debits nothing.
                if matches!(d.job, Job::Sign { .. }) && kill_at.is_some_and(|(i, at)| i == d.instance && d.started < at)
                {
                    in_flight_at_kill += 1;
                }
                (0, e.clone())
            }
        };
        statuses.entry(code).or_insert((0, sample)).0 += 1;
    }
    sign_latencies.sort();
    auth_latencies.sort();
    Run {
        plan: plan.clone(),
        instances,
        elapsed,
        sent: done.len(),
        authorizations,
        authorized,
        skipped,
        p50_ms: percentile(&sign_latencies, 50.0),
        p99_ms: percentile(&sign_latencies, 99.0),
        auth_p50_ms: percentile(&auth_latencies, 50.0),
        auth_p99_ms: percentile(&auth_latencies, 99.0),
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

/// The machine-readable line: `requests` counts the requests sent (authorize and signHash), `sign_per_s` the
/// signatures returned per second, `req_per_s` the requests answered or failed per second.
pub fn result_line(run: &Run, books: &Books) -> String {
    let secs = run.elapsed.as_secs_f64();
    format!(
        "RESULT {} instances={} requests={} per_sad={} authorizations={} authorized={} skipped={} sign_per_s={:.0} \
         req_per_s={:.0} p50_ms={:.1} p99_ms={:.1} auth_p50_ms={:.1} auth_p99_ms={:.1} returned={} debited={} \
         rows={} overspent={} mismatches={} kill9={} no_answer={} in_flight_at_kill={} statuses={}",
        run.plan.name,
        run.instances,
        run.sent,
        run.plan.per_sad,
        run.authorizations,
        run.authorized,
        run.skipped,
        books.returned as f64 / secs,
        run.sent as f64 / secs,
        run.p50_ms,
        run.p99_ms,
        run.auth_p50_ms,
        run.auth_p99_ms,
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
