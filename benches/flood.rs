//! Flood benchmark of the public PKI routes: `cargo bench --bench flood`.
//!
//! Does a flood of `POST /tsa` and `POST /pki/ocsp` requests starve holders' signing? One run measures:
//!
//! (a) the raw token rate for the holders' key type (`Hsm::sign_digest` in this process on the server's own SoftHSM2
//!     token, server stopped), with one session and with the whole pool, so that the figures below read as ratios;
//! (b) quiet: single-hash `signatures/signHash` at a fixed concurrency for N seconds, with SADs authorised beforehand
//!     (real TOTP codes, the server's clock moved through its clock file as in the other benches): sign/s, p50, p99;
//! (c) flood: the same signHash load while other connections send, as fast as they can, RFC 3161 queries to
//!     `/tsa` (anonymous, with HTTP Basic credentials of a flooding holder, and with that holder's CSC bearer token)
//!     and OCSP requests for that holder's certificate to `/pki/ocsp` (half of them with a 32-byte nonce, half
//!     without). The DER requests are built once, before the timed part. The flood is bounded: a maximum number of
//!     requests, a maximum time, and it is sent to the server this bench starts on 127.0.0.1 only. Its own client
//!     runs on a thread and runtime of its own, so that the signHash clients' latencies are not its queueing.
//!
//! It prints a table, the ratio of the flooded p99 to the quiet one (the target: at most 2), the flood's request
//! rate and its answers by HTTP status and by TSP / OCSP status, and `RESULT flood… key=value` lines. It asserts
//! nothing: it reports.
//!
//! Knobs (all optional): `PARAFA_BENCH_SECS` (seconds of each timed part, default 8), `PARAFA_BENCH_RAW_SECS`
//! (default 1), `PARAFA_BENCH_HOLDERS` (signing holders, 600 transactions each, default 24),
//! `PARAFA_BENCH_CONCURRENCY` (signHash requests in flight, default 8), `PARAFA_BENCH_FLOOD_CONNECTIONS` (default
//! 64, spread over the four kinds of flood request), `PARAFA_BENCH_FLOOD_MAX` (flood requests at most, default
//! 200000), `PARAFA_BENCH_KEY` (`rsa2048` or `p256`, default rsa2048), `PARAFA_BENCH_TMPDIR` and
//! `PARAFA_BENCH_SERVER_ENV` as in the signhash bench.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parafa::config::{cores, Settings};
use parafa::hsm::{prepare_softhsm, HashAlg, Hsm, SignMechanism};
use rand::RngCore;

use common::{
    authorise, login_all, metric, note, ocsp_request, ocsp_status, on_tmpfs, percentile_ms, raw_sign_rate, sign_load,
    tsa_query, tsa_status, Csc, Holder, Server, SignLoad, HOLDER_PASSWORD,
};

/// Hashes per SAD: the server's default `multisign`.
const SAD_SIZE: i64 = 100;
/// At least this many signatures are authorised for a timed part.
const MIN_SIGNATURES: i64 = 200;
/// Seconds the flood runs before the flooded signHash load starts (its connections open, it reaches its pace).
const RAMP_SECS: f64 = 1.0;
/// Seconds the flood may outlast the signHash load at most (it is stopped when that load ends).
const FLOOD_GRACE_SECS: f64 = 10.0;
/// A flood request unanswered after this many seconds counts as no answer (HTTP 0); it also bounds how long the
/// flood's last requests can keep it running once told to stop.
const FLOOD_TIMEOUT_SECS: u64 = 10;
/// Distinct DER requests of each kind built at set-up (different digests and nonces), sent in turn.
const POOL: usize = 256;
/// The target of issue 14: the flooded p99 within this factor of the quiet one.
const TARGET_P99_FACTOR: f64 = 2.0;

struct Params {
    secs: f64,
    raw_secs: f64,
    holders: usize,
    concurrency: usize,
    connections: usize,
    flood_max: u64,
    key: &'static str,
    server_env: Vec<(String, String)>,
}

impl Params {
    fn from_env() -> Params {
        let num = common::env_num;
        let key = match std::env::var("PARAFA_BENCH_KEY").as_deref() {
            Ok("p256") => "p256",
            Ok("rsa2048") | Err(_) => "rsa2048",
            Ok(other) => panic!("PARAFA_BENCH_KEY={other}: rsa2048 or p256"),
        };
        Params {
            secs: num("PARAFA_BENCH_SECS", 8.0),
            raw_secs: num("PARAFA_BENCH_RAW_SECS", 1.0),
            holders: num("PARAFA_BENCH_HOLDERS", 24.0) as usize,
            concurrency: num("PARAFA_BENCH_CONCURRENCY", 8.0) as usize,
            connections: num("PARAFA_BENCH_FLOOD_CONNECTIONS", 64.0) as usize,
            flood_max: num("PARAFA_BENCH_FLOOD_MAX", 200_000.0) as u64,
            key,
            server_env: common::server_env(),
        }
    }

    /// CSC `signAlgo` and token mechanism of the holders' key type.
    fn sign_algo(&self) -> (&'static str, SignMechanism) {
        match self.key {
            "p256" => ("1.2.840.10045.4.3.2", SignMechanism::Ecdsa),
            _ => ("1.2.840.113549.1.1.11", SignMechanism::RsaPkcs1(HashAlg::Sha256)),
        }
    }
}

/// The kinds of flood request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    TsaAnonymous,
    TsaBasic,
    TsaBearer,
    Ocsp,
}

const KINDS: [Kind; 4] = [Kind::TsaAnonymous, Kind::TsaBasic, Kind::TsaBearer, Kind::Ocsp];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::TsaAnonymous => "tsa_anon",
            Kind::TsaBasic => "tsa_basic",
            Kind::TsaBearer => "tsa_bearer",
            Kind::Ocsp => "ocsp",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Ocsp => "/pki/ocsp",
            _ => "/tsa",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Ocsp => "application/ocsp-request",
            _ => "application/timestamp-query",
        }
    }
}

/// Everything the flood thread needs, owned.
struct FloodPlan {
    base: String,
    connections: usize,
    max_requests: u64,
    max_secs: f64,
    tsa_queries: Vec<Vec<u8>>,
    ocsp_requests: Vec<Vec<u8>>,
    /// The flooding holder's e-mail (its password is [`HOLDER_PASSWORD`]) and CSC access token.
    email: String,
    token: String,
}

/// What one kind of flood request got.
#[derive(Default)]
struct KindStats {
    requests: u64,
    /// Answers by HTTP status (0: no answer, e.g. a reset connection or a time-out).
    http: BTreeMap<u16, u64>,
    /// 200 answers by TSP PKIStatus or OCSP responseStatus.
    answers: BTreeMap<String, u64>,
    latencies: Vec<u32>,
    first_error: Option<String>,
}

/// What the flood did.
struct Flood {
    kinds: BTreeMap<Kind, KindStats>,
    secs: f64,
    /// Whether it stopped on its maximum count before it was told to stop.
    hit_max: bool,
}

impl Flood {
    fn requests(&self) -> u64 {
        self.kinds.values().map(|k| k.requests).sum()
    }

    fn rate(&self) -> f64 {
        self.requests() as f64 / self.secs.max(1e-9)
    }

    fn http_total(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for k in self.kinds.values() {
            for (s, n) in &k.http {
                *out.entry(*s).or_insert(0) += n;
            }
        }
        out
    }
}

/// Server counters around a timed part.
struct Snapshot {
    at: Instant,
    server_cpu: f64,
    client_cpu: f64,
    hsm_signs: f64,
}

async fn snapshot(csc: &Csc, server: &Server) -> Snapshot {
    let m = csc.metrics().await;
    Snapshot {
        at: Instant::now(),
        server_cpu: common::cpu_secs(server.pid()),
        client_cpu: common::cpu_secs(None),
        hsm_signs: metric(
            &m,
            "parafa_hsm_operation_duration_seconds_count",
            &[("op", "sign"), ("outcome", "ok")],
        ),
    }
}

/// A timed signHash part and the server's work meanwhile.
struct Part {
    load: SignLoad,
    /// Token signatures per second (holders', TSA's and OCSP responder's together).
    hsm_sign_per_s: f64,
    /// Server CPU seconds per second (1.0 = one core busy).
    server_cores: f64,
    /// The same for this process: the signHash clients and, in (c), the flood's client.
    client_cores: f64,
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and this is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("flood: load benchmark, not run under `cargo test`; run `cargo bench --bench flood`");
        return;
    }
    let params = Params::from_env();
    let started = Instant::now();
    let mut server = Server::new(None, &params.server_env);
    let settings =
        Settings::load_from(Some(&server.config_file), &server.env).expect("settings of the benchmark server");
    // SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize: set it now, while this process has one thread.
    prepare_softhsm(&settings).expect("prepare SoftHSM2");
    let fsync = if on_tmpfs(&server.data_dir) { "tmpfs" } else { "disk" };
    note(format!(
        "data dir {} on {fsync}; {} cores; server env {:?}",
        server.data_dir.display(),
        cores(),
        params.server_env
    ));

    server.start();
    // The flood goes to the server this bench started, on the loopback interface, and nowhere else.
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "the flood is sent to 127.0.0.1 only, and the server listens on {}",
        server.base
    );
    let t = Instant::now();
    let mut holders = server.create_holders(params.key, params.holders, cores(), "sign");
    let mut flooder = server.create_holder(&format!("bench-flood-{}@example.com", params.key), params.key);
    note(format!(
        "created {} signing holders and 1 flooding holder ({}) in {:.1} s",
        params.holders,
        params.key,
        t.elapsed().as_secs_f64()
    ));

    // (a) with the server stopped, so that nothing else competes for the cores or the token.
    server.stop();
    let (_, mechanism) = params.sign_algo();
    let raw = {
        let hsm = Hsm::open(&settings).expect("open the server's token in-process");
        let key_id = holders[0].credential_id.clone();
        let mut threads = vec![1, hsm.session_count()];
        threads.dedup();
        threads
            .into_iter()
            .map(|n| {
                let (signatures, secs) = raw_sign_rate(&hsm, key_id.as_bytes(), mechanism, n, params.raw_secs);
                let rate = signatures as f64 / secs;
                note(format!("raw {} sessions={n}: {rate:.0} sign/s", params.key));
                (n, rate)
            })
            .collect::<Vec<_>>()
    };
    let raw_best = raw.iter().map(|r| r.1).fold(0.0, f64::max);

    server.start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (quiet, flooded, flood) = rt.block_on(run(&mut server, &mut holders, &mut flooder, raw_best, &params));
    let server_alive = server.running();
    drop(server);
    report(
        &params,
        &settings,
        fsync,
        &raw,
        raw_best,
        &quiet,
        &flooded,
        &flood,
        server_alive,
    );
    note(format!("total bench time {:.1} s", started.elapsed().as_secs_f64()));
}

/// (b) and (c) against the running server.
async fn run(
    server: &mut Server,
    holders: &mut [Holder],
    flooder: &mut Holder,
    raw_best: f64,
    params: &Params,
) -> (Part, Part, Flood) {
    let (sign_algo, _) = params.sign_algo();
    let csc = Csc::new(&server.base);
    login_all(&csc, server, holders).await;
    login_all(&csc, server, std::slice::from_mut(flooder)).await;
    let plan = flood_plan(&csc, server, flooder, params).await;

    // (b): authorise no more than the token could sign in the time, and half of what the quotas allow.
    let quota: i64 = holders.iter().map(Holder::left).sum();
    let want = ((raw_best * params.secs) as i64).clamp(MIN_SIGNATURES, (quota / 2).max(1));
    let sads = authorise(&csc, server, holders, want, SAD_SIZE).await;
    let before = snapshot(&csc, server).await;
    let load = sign_load(&csc, holders, &sads, sign_algo, params.concurrency, params.secs).await;
    let quiet = part(load, before, snapshot(&csc, server).await);
    note(format!(
        "quiet: {:.0} sign/s, p50 {:.2} ms, p99 {:.2} ms, {} errors{}",
        quiet.load.rate(),
        quiet.load.p(50.0),
        quiet.load.p(99.0),
        quiet.load.errors,
        exhausted(&quiet.load)
    ));

    // (c): the flooded load can be no faster than the quiet one; a margin, and what the quotas have left.
    let quota: i64 = holders.iter().map(Holder::left).sum();
    let want = ((quiet.load.rate() * params.secs * 1.3) as i64).clamp(MIN_SIGNATURES, quota.max(1));
    let sads = authorise(&csc, server, holders, want, SAD_SIZE).await;
    let stop = Arc::new(AtomicBool::new(false));
    let flood_thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("flood runtime");
            rt.block_on(flood(plan, stop))
        })
    };
    tokio::time::sleep(Duration::from_secs_f64(RAMP_SECS)).await;
    let before = snapshot(&csc, server).await;
    let load = sign_load(&csc, holders, &sads, sign_algo, params.concurrency, params.secs).await;
    let after = snapshot(&csc, server).await;
    stop.store(true, Ordering::Relaxed);
    let flood = flood_thread.join().expect("flood thread");
    let flooded = part(load, before, after);
    note(format!(
        "flooded: {:.0} sign/s, p50 {:.2} ms, p99 {:.2} ms, {} errors{}; flood {:.0} requests/s",
        flooded.load.rate(),
        flooded.load.p(50.0),
        flooded.load.p(99.0),
        flooded.load.errors,
        exhausted(&flooded.load),
        flood.rate()
    ));
    (quiet, flooded, flood)
}

fn part(load: SignLoad, before: Snapshot, after: Snapshot) -> Part {
    let secs = (after.at - before.at).as_secs_f64().max(1e-9);
    Part {
        load,
        hsm_sign_per_s: (after.hsm_signs - before.hsm_signs) / secs,
        server_cores: (after.server_cpu - before.server_cpu) / secs,
        client_cores: (after.client_cpu - before.client_cpu) / secs,
    }
}

fn exhausted(load: &SignLoad) -> &'static str {
    if load.exhausted {
        " (authorised hashes used up before the time)"
    } else {
        ""
    }
}

/// The flood's DER requests, built once: timestamp queries of random digests and nonces; OCSP requests for the
/// flooding holder's certificate, every other one with a random 32-byte nonce (RFC 8954's largest).
async fn flood_plan(csc: &Csc, server: &Server, flooder: &Holder, params: &Params) -> FloodPlan {
    let cert = csc
        .certificate(&flooder.access_token, &flooder.credential_id)
        .await
        .unwrap_or_else(|e| panic!("the flooding holder's certificate: {e:?}"));
    let issuer = csc
        .get_bytes("/pki/issuing.crt")
        .await
        .unwrap_or_else(|e| panic!("the issuing CA's certificate: {e:?}"));
    let mut rng = rand::thread_rng();
    let tsa_queries = (0..POOL)
        .map(|_| {
            let mut digest = [0u8; 32];
            rng.fill_bytes(&mut digest);
            tsa_query(&digest, rng.next_u64())
        })
        .collect();
    let ocsp_requests = (0..POOL)
        .map(|i| {
            let mut nonce = [0u8; 32];
            rng.fill_bytes(&mut nonce);
            let nonce = (i % 2 == 0).then_some(&nonce[..]);
            ocsp_request(&cert, &issuer, nonce)
        })
        .collect();
    FloodPlan {
        base: server.base.clone(),
        connections: params.connections,
        max_requests: params.flood_max,
        max_secs: RAMP_SECS + params.secs + FLOOD_GRACE_SECS,
        tsa_queries,
        ocsp_requests,
        email: flooder.email.clone(),
        token: flooder.access_token.clone(),
    }
}

/// `plan.connections` clients, each on a connection of its own and each sending one kind of request (the kinds in
/// turn), as fast as the answers come, until told to stop, past the maximum time, or past the maximum count.
async fn flood(plan: FloodPlan, stop: Arc<AtomicBool>) -> Flood {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(FLOOD_TIMEOUT_SECS))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(plan.connections)
        .build()
        .expect("flood http client");
    let sent = AtomicU64::new(0);
    let hit_max = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(plan.max_secs);
    let (plan, sent_ref, hit_ref, stop_ref, http_ref) = (&plan, &sent, &hit_max, &*stop, &http);
    let clients = (0..plan.connections).map(|c| async move {
        let kind = KINDS[c % KINDS.len()];
        let pool = match kind {
            Kind::Ocsp => &plan.ocsp_requests,
            _ => &plan.tsa_queries,
        };
        let url = format!("{}{}", plan.base, kind.path());
        let mut stats = KindStats::default();
        let mut i = c;
        while !stop_ref.load(Ordering::Relaxed) && Instant::now() < deadline {
            if sent_ref.fetch_add(1, Ordering::Relaxed) >= plan.max_requests {
                hit_ref.store(true, Ordering::Relaxed);
                break;
            }
            let mut req = http_ref
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, kind.content_type())
                .body(pool[i % pool.len()].clone());
            i += KINDS.len();
            req = match kind {
                Kind::TsaBasic => req.basic_auth(&plan.email, Some(HOLDER_PASSWORD)),
                Kind::TsaBearer => req.bearer_auth(&plan.token),
                _ => req,
            };
            let t = Instant::now();
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.bytes().await {
                        Ok(body) => Ok((status, body)),
                        Err(e) => Err((status, e.to_string())),
                    }
                }
                Err(e) => Err((0, e.to_string())),
            };
            stats.requests += 1;
            match outcome {
                Ok((status, body)) => {
                    stats
                        .latencies
                        .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    *stats.http.entry(status).or_insert(0) += 1;
                    if status == 200 {
                        let answer = match kind {
                            Kind::Ocsp => ocsp_status(&body),
                            _ => tsa_status(&body),
                        };
                        *stats.answers.entry(answer).or_insert(0) += 1;
                    }
                }
                Err((status, e)) => {
                    *stats.http.entry(status).or_insert(0) += 1;
                    stats.first_error.get_or_insert(format!("HTTP {status}: {e}"));
                }
            }
        }
        (kind, stats)
    });
    let done = futures_util::future::join_all(clients).await;
    let secs = start.elapsed().as_secs_f64();
    let mut kinds: BTreeMap<Kind, KindStats> = BTreeMap::new();
    for (kind, s) in done {
        let k = kinds.entry(kind).or_default();
        k.requests += s.requests;
        for (st, n) in s.http {
            *k.http.entry(st).or_insert(0) += n;
        }
        for (a, n) in s.answers {
            *k.answers.entry(a).or_insert(0) += n;
        }
        k.latencies.extend(s.latencies);
        if k.first_error.is_none() {
            k.first_error = s.first_error;
        }
    }
    for k in kinds.values_mut() {
        k.latencies.sort_unstable();
    }
    Flood {
        kinds,
        secs,
        hit_max: hit_max.load(Ordering::Relaxed),
    }
}

/// `200=12 401=3` as `http_200=12 http_401=3`.
fn statuses(http: &BTreeMap<u16, u64>) -> String {
    http.iter()
        .map(|(s, n)| format!("http_{s}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn answers(a: &BTreeMap<String, u64>) -> String {
    a.iter()
        .map(|(s, n)| format!("answer_{}={n}", s.replace(' ', "_")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[allow(clippy::too_many_arguments)]
fn report(
    params: &Params,
    settings: &Settings,
    fsync: &str,
    raw: &[(usize, f64)],
    raw_best: f64,
    quiet: &Part,
    flooded: &Part,
    flood: &Flood,
    server_alive: bool,
) {
    let p99_ratio = flooded.load.p(99.0) / quiet.load.p(99.0);
    let p50_ratio = flooded.load.p(50.0) / quiet.load.p(50.0);
    let rate_ratio = flooded.load.rate() / quiet.load.rate().max(1e-9);
    println!();
    println!("Parafa flood benchmark: holders' signHash alone and under a flood of /tsa and /pki/ocsp");
    println!(
        "  {} cores; SoftHSM2 token, pool of {} sessions; {} holders' keys; data dir on {fsync}; extra server env {:?}",
        cores(),
        settings.hsm_sessions(),
        params.key,
        params.server_env
    );
    println!(
        "  signHash: 1 hash per call, {} in flight, {:.0} s per part; flood: {} connections, at most {} requests",
        params.concurrency, params.secs, params.connections, params.flood_max
    );
    for (n, rate) in raw {
        println!("  raw token, {} sessions: {rate:.0} sign/s", n);
    }
    println!();
    println!(
        "  {:<8} {:>7} {:>9} {:>7} {:>8} {:>8} {:>11} {:>8} {:>8} {:>6}",
        "part", "signs", "sign/s", "/raw", "p50 ms", "p99 ms", "hsm sign/s", "srv cpu", "cli cpu", "errors"
    );
    for (name, p) in [("quiet", quiet), ("flooded", flooded)] {
        println!(
            "  {:<8} {:>7} {:>9.0} {:>7.3} {:>8.2} {:>8.2} {:>11.0} {:>8.2} {:>8.2} {:>6}{}",
            name,
            p.load.latencies.len(),
            p.load.rate(),
            p.load.rate() / raw_best,
            p.load.p(50.0),
            p.load.p(99.0),
            p.hsm_sign_per_s,
            p.server_cores,
            p.client_cores,
            p.load.errors,
            exhausted(&p.load)
        );
    }
    println!("  hsm sign/s: every signature the token made (holders', TSA's, OCSP responder's); srv / cli cpu: cores");
    println!("  busy in the server / in this process (signHash clients, and the flood's client in the flooded part)");
    println!(
        "  flooded / quiet: p99 {p99_ratio:.2}× (target ≤ {TARGET_P99_FACTOR}×: {}), p50 {p50_ratio:.2}×, sign/s {rate_ratio:.2}×",
        if p99_ratio <= TARGET_P99_FACTOR {
            "met"
        } else {
            "NOT met"
        }
    );
    println!();
    println!(
        "  flood: {} requests in {:.1} s, {:.0} requests/s ({:.3} of the raw token rate){}; server {}",
        flood.requests(),
        flood.secs,
        flood.rate(),
        flood.rate() / raw_best,
        if flood.hit_max {
            ", STOPPED at its maximum count before the signHash load ended"
        } else {
            ""
        },
        if server_alive { "still running" } else { "GONE" }
    );
    println!(
        "  {:<11} {:>9} {:>9} {:>8} {:>9}  answers",
        "kind", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for (kind, k) in &flood.kinds {
        let mut by: Vec<String> = k.http.iter().map(|(s, n)| format!("HTTP {s}: {n}")).collect();
        by.extend(k.answers.iter().map(|(a, n)| format!("{a}: {n}")));
        println!(
            "  {:<11} {:>9} {:>9.0} {:>8.2} {:>9.2}  {}",
            kind.name(),
            k.requests,
            k.requests as f64 / flood.secs.max(1e-9),
            percentile_ms(&k.latencies, 50.0),
            percentile_ms(&k.latencies, 99.0),
            by.join(", ")
        );
    }
    println!(
        "  HTTP 0: no answer (connection reset, time-out); answers: TSP PKIStatus / OCSP responseStatus of the 200s"
    );
    for (name, e) in [
        ("quiet", &quiet.load.first_error),
        ("flooded", &flooded.load.first_error),
    ] {
        if let Some((status, body)) = e {
            println!("  first signHash error ({name}): HTTP {status}: {body}");
        }
    }
    for (kind, k) in &flood.kinds {
        if let Some(e) = &k.first_error {
            println!("  first flood error ({}): {e}", kind.name());
        }
    }
    println!();
    println!(
        "RESULT flood_raw key={} {}",
        params.key,
        raw.iter()
            .map(|(n, r)| format!("sessions_{n}_sign_per_s={r:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (name, p) in [("quiet", quiet), ("flooded", flooded)] {
        println!(
            "RESULT flood_{name} sign_per_s={:.1} p50_ms={:.3} p99_ms={:.3} ratio_to_raw={:.4} hsm_sign_per_s={:.1} server_cores={:.3} client_cores={:.3} signatures={} errors={} concurrency={} exhausted={}",
            p.load.rate(),
            p.load.p(50.0),
            p.load.p(99.0),
            p.load.rate() / raw_best,
            p.hsm_sign_per_s,
            p.server_cores,
            p.client_cores,
            p.load.latencies.len(),
            p.load.errors,
            params.concurrency,
            p.load.exhausted
        );
    }
    let http = flood.http_total();
    let ok: u64 = http.get(&200).copied().unwrap_or(0);
    println!(
        "RESULT flood p99_ratio={p99_ratio:.3} p50_ratio={p50_ratio:.3} sign_rate_ratio={rate_ratio:.3} within_2x={} quiet_p99_ms={:.3} flooded_p99_ms={:.3} flood_req_per_s={:.1} flood_ratio_to_raw={:.4} flood_requests={} flood_200={ok} connections={} hit_max={} server_alive={server_alive} {}",
        p99_ratio <= TARGET_P99_FACTOR,
        quiet.load.p(99.0),
        flooded.load.p(99.0),
        flood.rate(),
        flood.rate() / raw_best,
        flood.requests(),
        params.connections,
        flood.hit_max,
        statuses(&http)
    );
    for (kind, k) in &flood.kinds {
        println!(
            "RESULT flood_{} requests={} req_per_s={:.1} p50_ms={:.3} p99_ms={:.3} {} {}",
            kind.name(),
            k.requests,
            k.requests as f64 / flood.secs.max(1e-9),
            percentile_ms(&k.latencies, 50.0),
            percentile_ms(&k.latencies, 99.0),
            statuses(&k.http),
            answers(&k.answers)
        );
    }
}
