//! A network HSM in the loop: `cargo bench --bench nethsm`.
//!
//! SoftHSM2 behind p11-kit's RPC stands in for a network HSM: `p11-kit server` exports the server's own SoftHSM2
//! token on a unix socket, and Parafa loads `p11-kit-client.so` as its PKCS#11 module, so every PKCS#11 call
//! crosses a socket to another process (`p11-kit server` starts one `p11-kit-remote` with SoftHSM2 in it per client
//! connection). One run:
//!
//! (a) provisions a data directory and token with the real server on SoftHSM2 directly, creates holders with
//!     RSA-2048 and P-256 keys through the CLI, and stops the server;
//! (b) starts `p11-kit server` on that token and reads the `P11_KIT_SERVER_ADDRESS` it prints;
//! (c) measures the raw signing rate in-process (`Hsm::sign_digest` in a loop, one thread and one per pooled
//!     session), first on SoftHSM2 directly, then through the RPC;
//! (d) measures single-hash `signatures/signHash` end to end at concurrency 64 with SADs authorised beforehand with
//!     real TOTP codes, first with the server on SoftHSM2 directly, then with the server on `p11-kit-client.so`;
//! (e) starts two instances on one fresh PostgreSQL database and one token of their own, sends them a mix of
//!     `credentials/authorize` and single-hash P-256 `signHash` round-robin (`tests/api/load`), first with both on
//!     SoftHSM2 directly, then with both on `p11-kit-client.so` sharing one `p11-kit server`, each run with holders
//!     of its own; after each run the books are read from the database: every returned signature recorded, debits
//!     equal rows, no quota overspent, a sample verified with OpenSSL.
//!
//! It prints a table and `RESULT nethsm_raw …`, `RESULT nethsm_e2e …` and `RESULT nethsm_pair …` lines; it asserts
//! nothing about speed, and exits non-zero only when the books do not match.
//!
//! Knobs (all optional): `PARAFA_BENCH_SECS` (timed seconds per end-to-end cell, default 3),
//! `PARAFA_BENCH_RAW_SECS` (seconds per raw measurement, default 2), `PARAFA_BENCH_HOLDERS` (holders per key type
//! for (d), default 20), `PARAFA_BENCH_PAIR_REQUESTS` (signHash requests of (e), default 6000),
//! `PARAFA_BENCH_PER_SAD` (hashes per SAD in (e), default 100), `PARAFA_BENCH_CONCURRENCY` (of (d) and (e),
//! default 64), `PARAFA_BENCH_P11KIT_CLIENT` (the client module, found under /usr/lib when unset),
//! `PARAFA_BENCH_TMPDIR` and `PARAFA_BENCH_SERVER_ENV` (as for the other benches), and `PARAFA_TEST_POSTGRES_URL`
//! (default postgres://postgres@127.0.0.1:5432/postgres).

#[path = "common/mod.rs"]
mod bench;
#[path = "../tests/api/common/mod.rs"]
mod common;
#[path = "../tests/api/load/mod.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Instant;

use parafa::config::{cores, Settings};
use parafa::hsm::{prepare_softhsm, HashAlg, Hsm, SignMechanism};

use bench::{authorise, login_all, note, raw_sign_rate, sign_load, Csc, Holder, Server, SignLoad};

/// The key types measured: CLI name, CSC `signAlgo`, and whether the key is RSA.
const KEYS: [KeyType; 2] = [
    KeyType {
        name: "rsa2048",
        sign_algo: "1.2.840.113549.1.1.11",
        rsa: true,
    },
    KeyType {
        name: "p256",
        sign_algo: "1.2.840.10045.4.3.2",
        rsa: false,
    },
];

#[derive(Clone, Copy)]
struct KeyType {
    name: &'static str,
    sign_algo: &'static str,
    rsa: bool,
}

impl KeyType {
    fn mechanism(self) -> SignMechanism {
        if self.rsa {
            SignMechanism::RsaPkcs1(HashAlg::Sha256)
        } else {
            SignMechanism::Ecdsa
        }
    }
}

/// Hashes per SAD in (d): the server's default `multisign`.
const SAD_SIZE: i64 = 100;
/// Signatures authorised for one cell of (d), at most and at least (a cell that uses them up ends early).
const MAX_CELL_SIGNATURES: i64 = 5000;
const MIN_CELL_SIGNATURES: i64 = 200;
/// Returned signatures of (e) verified with OpenSSL.
const VERIFY_SAMPLE: usize = 50;

struct Params {
    secs: f64,
    raw_secs: f64,
    holders: usize,
    pair_requests: usize,
    per_sad: usize,
    concurrency: usize,
    client_module: PathBuf,
    server_env: Vec<(String, String)>,
}

impl Params {
    fn from_env() -> Params {
        let num = bench::env_num;
        Params {
            secs: num("PARAFA_BENCH_SECS", 3.0),
            raw_secs: num("PARAFA_BENCH_RAW_SECS", 2.0),
            holders: num("PARAFA_BENCH_HOLDERS", 20.0) as usize,
            pair_requests: num("PARAFA_BENCH_PAIR_REQUESTS", 6000.0) as usize,
            per_sad: num("PARAFA_BENCH_PER_SAD", 100.0) as usize,
            concurrency: num("PARAFA_BENCH_CONCURRENCY", 64.0) as usize,
            client_module: p11_kit_client_module(),
            server_env: bench::server_env(),
        }
    }
}

/// `p11-kit-client.so` (Debian package p11-kit-modules): `PARAFA_BENCH_P11KIT_CLIENT`, or the first found in the
/// PKCS#11 module directories of /usr/lib (its multiarch directory first).
fn p11_kit_client_module() -> PathBuf {
    if let Some(path) = std::env::var_os("PARAFA_BENCH_P11KIT_CLIENT") {
        return PathBuf::from(path);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("pkcs11/p11-kit-client.so")))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.push(PathBuf::from("/usr/lib/pkcs11/p11-kit-client.so"));
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("p11-kit-client.so not found under /usr/lib: install p11-kit-modules (`make deps-test` does)")
    })
}

/// `p11-kit server` exporting one token of a PKCS#11 module on a unix socket, in the foreground, as a child
/// process; killed on drop.
struct P11KitServer {
    child: Child,
    /// What the server printed as `P11_KIT_SERVER_ADDRESS` (`unix:path=…`).
    address: String,
}

impl P11KitServer {
    /// Starts the server for the token labelled `token` of `module`, with SoftHSM2's configuration `softhsm_conf`,
    /// on the socket `socket`, and reads the address it prints.
    fn start(module: &Path, softhsm_conf: &Path, token: &str, socket: &Path) -> P11KitServer {
        let mut child = Command::new("p11-kit")
            .arg("server")
            .arg("--foreground")
            .arg("--name")
            .arg(socket)
            .arg("--provider")
            .arg(module)
            .arg(format!("pkcs11:token={}", uri_encode(token)))
            .env("SOFTHSM2_CONF", softhsm_conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start `p11-kit server` (Debian package p11-kit; `make deps-test` installs it)");
        // It prints its address at once, in the syntax of `--sh`: read it on this thread.
        let stdout = child.stdout.take().expect("stdout of p11-kit server");
        let address = BufReader::new(stdout).lines().map_while(Result::ok).find_map(|line| {
            line.strip_prefix("P11_KIT_SERVER_ADDRESS=")
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        });
        match address {
            Some(address) => P11KitServer { child, address },
            None => {
                let _ = child.kill();
                let status = child.wait();
                panic!("p11-kit server printed no P11_KIT_SERVER_ADDRESS (exit status {status:?})");
            }
        }
    }
}

impl P11KitServer {
    /// CPU seconds used so far by the `p11-kit-remote` processes it started, one per client connection (where the
    /// token's work happens), from `/proc`; those already gone are not counted.
    fn remote_cpu_secs(&self) -> f64 {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .map(|p| bench::cpu_secs(Some(p)))
            .sum()
    }
}

impl Drop for P11KitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token label as a PKCS#11 URI attribute value (RFC 7512): anything but unreserved characters percent-encoded.
fn uri_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The settings that put Parafa on the RPC: the client module, Parafa not managing SoftHSM2 (it creates no token),
/// and the server's address for the client module.
fn rpc_env(client_module: &Path, address: &str) -> Vec<(String, String)> {
    vec![
        ("PARAFA_HSM_MODULE".to_owned(), client_module.display().to_string()),
        ("PARAFA_HSM_MANAGE_SOFTHSM".to_owned(), "false".to_owned()),
        ("P11_KIT_SERVER_ADDRESS".to_owned(), address.to_owned()),
    ]
}

/// The raw rates of one key type: one thread, and one thread per pooled session.
struct RawRates {
    single: f64,
    pooled: f64,
    sessions: usize,
    /// This process's CPU per signature.
    cpu_ms_per_sig: f64,
    /// The `p11-kit-remote` process's CPU per signature (through the RPC only).
    remote_cpu_ms_per_sig: f64,
}

impl RawRates {
    fn best(&self) -> f64 {
        self.single.max(self.pooled)
    }
}

/// What (c) gave for one key type.
struct RawFigure {
    key: KeyType,
    direct: RawRates,
    rpc: RawRates,
}

/// One side of the comparison: SoftHSM2 in the process that signs, or behind the p11-kit server.
#[derive(Clone, Copy)]
struct Side<'a> {
    name: &'static str,
    remote: Option<&'a P11KitServer>,
}

impl Side<'_> {
    fn remote_cpu_secs(&self) -> f64 {
        self.remote.map_or(0.0, P11KitServer::remote_cpu_secs)
    }
}

/// One cell of (d).
struct E2eCell {
    load: SignLoad,
    server_cpu_ms_per_sig: f64,
    remote_cpu_ms_per_sig: f64,
}

/// What (d) gave for one key type.
struct E2eFigure {
    key: KeyType,
    direct: E2eCell,
    rpc: E2eCell,
}

/// What (e) gave on one side.
struct PairRun {
    run: load::Run,
    books: load::Books,
    /// CPU of the `p11-kit-remote` processes during the load (through the RPC only).
    remote_cpu_secs: f64,
}

/// What (e) gave: the same pair on SoftHSM2 directly, then on the RPC.
struct PairFigure {
    direct: PairRun,
    rpc: PairRun,
}

impl PairFigure {
    fn exact(&self) -> bool {
        self.direct.exact() && self.rpc.exact()
    }
}

impl PairRun {
    fn rate(&self) -> f64 {
        self.books.returned as f64 / self.run.elapsed.as_secs_f64().max(1e-9)
    }

    fn remote_cpu_ms_per_sig(&self) -> f64 {
        self.remote_cpu_secs * 1000.0 / self.books.returned.max(1) as f64
    }

    /// Every returned signature recorded once, debits equal to rows and to what was returned, no quota overspent,
    /// and every request answered 200.
    fn exact(&self) -> bool {
        let b = &self.books;
        b.mismatches == 0
            && b.overspent == 0
            && b.problems.is_empty()
            && b.rows == b.returned as i64
            && b.debited == b.returned as i64
            && self.run.skipped == 0
            && self.run.statuses.keys().all(|s| *s == 200)
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and this is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("nethsm: load benchmark, not run under `cargo test`; run `cargo bench --bench nethsm`");
        return;
    }
    let params = Params::from_env();
    let mut server = Server::new(None, &params.server_env);
    prepare_environment();
    let started = Instant::now();
    let direct = Settings::load_from(Some(&server.config_file), &server.env).expect("settings of the bench server");
    // SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize: set now, while this process has one thread.
    prepare_softhsm(&direct).expect("prepare SoftHSM2");
    note(format!(
        "{} cores; p11-kit client module {}; data dir {}",
        cores(),
        params.client_module.display(),
        server.data_dir.display()
    ));

    server.start();
    let mut holders = create_holders(&server, params.holders);
    server.stop();

    let socket = server.data_dir.with_file_name("p11-kit.sock");
    let p11 = P11KitServer::start(
        &direct.hsm.module,
        &server.data_dir.join("softhsm2.conf"),
        &direct.hsm.token_label,
        &socket,
    );
    note(format!("p11-kit server at {}", p11.address));
    // p11-kit-client.so reads the address at C_Initialize. The threads alive now only read a dead child's output.
    std::env::set_var("P11_KIT_SERVER_ADDRESS", &p11.address);
    let mut rpc_settings_env = server.env.clone();
    rpc_settings_env.extend(rpc_env(&params.client_module, &p11.address));
    let rpc = Settings::load_from(Some(&server.config_file), &rpc_settings_env).expect("settings on the RPC");

    let raw = raw_phase(&direct, &rpc, &holders, params.raw_secs, &p11);
    let e2e = e2e_phase(&mut server, &mut holders, &raw, &params, &p11);
    drop(server);
    drop(p11);
    let pair = pair_phase(&params);

    report(&raw, &e2e, &pair, &params);
    note(format!("total bench time {:.1} s", started.elapsed().as_secs_f64()));
    if !pair.exact() {
        eprintln!("the books of the pair did not match");
        std::process::exit(1);
    }
}

/// The servers of `tests/api/common` inherit this process's environment and refuse unknown `PARAFA_` variables:
/// the bench's own knobs are read by now, so they go; the PostgreSQL server defaults to the local one. (Called
/// before any thread starts.)
fn prepare_environment() {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PARAFA_BENCH_") {
            std::env::remove_var(k);
        }
    }
    if std::env::var("PARAFA_TEST_POSTGRES_URL").map_or(true, |v| v.is_empty()) {
        std::env::set_var(
            "PARAFA_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
    }
}

/// `n` holders of each key type, created by the CLI on SoftHSM2 directly, one process per core at a time.
fn create_holders(server: &Server, n: usize) -> Vec<Vec<Holder>> {
    let t = Instant::now();
    let out = KEYS
        .iter()
        .map(|k| server.create_holders(k.name, n, cores(), "nethsm"))
        .collect();
    note(format!(
        "created {n} holders per key type in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    out
}

/// (c): the raw rates on SoftHSM2 directly, then through the RPC, with the server stopped.
fn raw_phase(
    direct: &Settings,
    rpc: &Settings,
    holders: &[Vec<Holder>],
    secs: f64,
    p11: &P11KitServer,
) -> Vec<RawFigure> {
    let direct_rates = raw_rates(direct, holders, secs, DIRECT);
    let rpc_rates = raw_rates(rpc, holders, secs, rpc_side(p11));
    KEYS.iter()
        .zip(direct_rates.into_iter().zip(rpc_rates))
        .map(|(key, (direct, rpc))| RawFigure { key: *key, direct, rpc })
        .collect()
}

/// SoftHSM2 in the process that signs.
const DIRECT: Side<'static> = Side {
    name: "direct",
    remote: None,
};

/// SoftHSM2 behind `p11`.
fn rpc_side(p11: &P11KitServer) -> Side<'_> {
    Side {
        name: "rpc",
        remote: Some(p11),
    }
}

/// Opens the token with `settings` in this process and signs in a loop with each key type's first holder's key.
fn raw_rates(settings: &Settings, holders: &[Vec<Holder>], secs: f64, side: Side) -> Vec<RawRates> {
    let what = side.name;
    let hsm = Hsm::open(settings).unwrap_or_else(|e| panic!("open the token in-process ({what}): {e}"));
    let sessions = hsm.session_count();
    KEYS.iter()
        .zip(holders)
        .map(|(key, group)| {
            let key_id = group[0].credential_id.as_bytes();
            let (cpu0, remote0) = (bench::cpu_secs(None), side.remote_cpu_secs());
            let (n1, s1) = raw_sign_rate(&hsm, key_id, key.mechanism(), 1, secs);
            let (n, s) = raw_sign_rate(&hsm, key_id, key.mechanism(), sessions, secs);
            let per_sig = |secs: f64| secs * 1000.0 / (n1 + n).max(1) as f64;
            let rates = RawRates {
                single: n1 as f64 / s1,
                pooled: n as f64 / s,
                sessions,
                cpu_ms_per_sig: per_sig(bench::cpu_secs(None) - cpu0),
                remote_cpu_ms_per_sig: per_sig(side.remote_cpu_secs() - remote0),
            };
            note(format!(
                "raw {what} {}: {:.0} sign/s on 1 session, {:.0} on {sessions}",
                key.name, rates.single, rates.pooled
            ));
            rates
        })
        .collect()
}

/// (d): signHash end to end with the server on SoftHSM2 directly, then on the RPC.
fn e2e_phase(
    server: &mut Server,
    holders: &mut [Vec<Holder>],
    raw: &[RawFigure],
    params: &Params,
    p11: &P11KitServer,
) -> Vec<E2eFigure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    server.start();
    let bounds: Vec<f64> = raw.iter().map(|r| r.direct.best()).collect();
    let direct = rt.block_on(e2e_cells(server, holders, &bounds, params, DIRECT));
    server.stop();
    server.env.extend(rpc_env(&params.client_module, &p11.address));
    server.start();
    let bounds: Vec<f64> = raw.iter().map(|r| r.rpc.best()).collect();
    let rpc = rt.block_on(e2e_cells(server, holders, &bounds, params, rpc_side(p11)));
    server.stop();
    KEYS.iter()
        .zip(direct.into_iter().zip(rpc))
        .map(|(key, (direct, rpc))| E2eFigure { key: *key, direct, rpc })
        .collect()
}

/// One cell per key type against the running server (holders log in first when they have no access token yet):
/// SADs for at most what the token's raw rate `bounds` allows in the time, then the timed signHash load.
async fn e2e_cells(
    server: &mut Server,
    holders: &mut [Vec<Holder>],
    bounds: &[f64],
    params: &Params,
    side: Side<'_>,
) -> Vec<E2eCell> {
    let csc = Csc::new(&server.base);
    for group in holders
        .iter_mut()
        .filter(|g| g.iter().any(|h| h.access_token.is_empty()))
    {
        login_all(&csc, server, group).await;
    }
    let mut out = Vec::new();
    for ((key, group), bound) in KEYS.iter().zip(holders.iter_mut()).zip(bounds) {
        let budget = ((bound * params.secs * 1.1) as i64).clamp(MIN_CELL_SIGNATURES, MAX_CELL_SIGNATURES);
        let sads = authorise(&csc, server, group, budget, SAD_SIZE).await;
        let (cpu0, remote0) = (bench::cpu_secs(server.pid()), side.remote_cpu_secs());
        let load = sign_load(&csc, group, &sads, key.sign_algo, params.concurrency, params.secs).await;
        let per_sig = |secs: f64| secs * 1000.0 / load.latencies.len().max(1) as f64;
        let cell = E2eCell {
            server_cpu_ms_per_sig: per_sig(bench::cpu_secs(server.pid()) - cpu0),
            remote_cpu_ms_per_sig: per_sig(side.remote_cpu_secs() - remote0),
            load,
        };
        note(format!(
            "e2e {} {} c={}: {:.0} sign/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            side.name,
            key.name,
            params.concurrency,
            cell.load.rate(),
            cell.load.p(50.0),
            cell.load.p(99.0),
            cell.load.errors
        ));
        out.push(cell);
    }
    out
}

/// A `parafa serve` started by [`common::TestApp::serve_piped`] on the RPC; its standard error is copied to ours,
/// and it is killed on drop.
struct RpcInstance {
    child: Child,
}

impl RpcInstance {
    fn start(app: &common::TestApp, env: &[(String, String)]) -> (RpcInstance, String) {
        let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (mut child, base) = app.serve_piped(&[], &extra);
        if let Some(stderr) = child.stderr.take() {
            copy_to_stderr(stderr);
        }
        (RpcInstance { child }, base)
    }
}

impl Drop for RpcInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_to_stderr(stderr: ChildStderr) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
}

/// (e): two instances on one fresh PostgreSQL database, first on SoftHSM2 directly (one token directory), then
/// both restarted on `p11-kit-client.so` and one `p11-kit server` exporting that token. Each run has holders of its
/// own, created and logged in on the direct instances beforehand.
fn pair_phase(params: &Params) -> PairFigure {
    let plan = load::Plan::for_requests(
        "nethsm_pair",
        params.pair_requests,
        params.per_sad,
        params.concurrency,
        None,
    );
    let (a, b) = common::TestApp::spawn_pair_postgres().expect("PostgreSQL");
    let t = Instant::now();
    let ready_direct = load::prepare(&a, &plan, "nethsm-direct");
    let ready_rpc = load::prepare(&a, &plan, "nethsm-rpc");
    note(format!(
        "pair: twice {} holders × {} signatures ({} waves of SADs of {}) prepared in {:.1} s",
        plan.holders,
        plan.per_holder,
        plan.waves(),
        plan.per_sad,
        t.elapsed().as_secs_f64()
    ));
    let mut apps = [a, b];
    let direct = pair_run(&mut apps, &ready_direct, &plan, DIRECT);
    for app in apps.iter_mut() {
        app.stop();
    }
    let settings = Settings::load_from(None, apps[0].env()).expect("settings of the pair");
    let p11 = P11KitServer::start(
        &settings.hsm.module,
        &apps[0].softhsm_conf(),
        &settings.hsm.token_label,
        &apps[0].data_dir.with_file_name("p11-kit.sock"),
    );
    let env = rpc_env(&params.client_module, &p11.address);
    let instances: Vec<RpcInstance> = apps
        .iter_mut()
        .map(|app| {
            let (instance, base) = RpcInstance::start(app, &env);
            app.base = base;
            instance
        })
        .collect();
    let rpc = pair_run(&mut apps, &ready_rpc, &plan, rpc_side(&p11));
    drop(instances);
    drop(p11);
    let [a, b] = apps;
    // The first owns the data directory and the database.
    drop(b);
    drop(a);
    PairFigure { direct, rpc }
}

/// The load of `plan` over both instances, round-robin, and the books it left.
fn pair_run(apps: &mut [common::TestApp], ready: &[load::Ready], plan: &load::Plan, side: Side) -> PairRun {
    let remote0 = side.remote_cpu_secs();
    let run = load::run(apps, ready, plan);
    let remote_cpu_secs = side.remote_cpu_secs() - remote0;
    let books = load::check_books(&apps[0], ready, &run, VERIFY_SAMPLE);
    note(format!("pair {}: {}", side.name, load::result_line(&run, &books)));
    PairRun {
        run,
        books,
        remote_cpu_secs,
    }
}

fn report(raw: &[RawFigure], e2e: &[E2eFigure], pair: &PairFigure, params: &Params) {
    println!();
    println!(
        "Parafa through a network HSM: SoftHSM2 behind p11-kit's RPC ({} cores)",
        cores()
    );
    report_raw(raw, params);
    report_e2e(raw, e2e, params);
    report_pair(pair, params);
    println!();
    result_lines(raw, e2e, pair, params);
}

fn report_raw(raw: &[RawFigure], params: &Params) {
    println!();
    println!(
        "(c) raw signing in-process ({:.0} s each, 1 session and {} sessions; sign/s)",
        params.raw_secs,
        raw.first().map_or(0, |r| r.direct.sessions)
    );
    println!(
        "  {:<8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>10} {:>7}",
        "key", "direct 1", "direct n", "cpu ms", "rpc 1", "rpc n", "cpu ms", "remote ms", "ratio"
    );
    for r in raw {
        println!(
            "  {:<8} {:>9.0} {:>9.0} {:>8.3} {:>9.0} {:>9.0} {:>8.3} {:>10.3} {:>7.3}",
            r.key.name,
            r.direct.single,
            r.direct.pooled,
            r.direct.cpu_ms_per_sig,
            r.rpc.single,
            r.rpc.pooled,
            r.rpc.cpu_ms_per_sig,
            r.rpc.remote_cpu_ms_per_sig,
            r.rpc.best() / r.direct.best()
        );
    }
    println!("  cpu ms: this process's CPU per signature; remote ms: p11-kit-remote's (SoftHSM2 in it) per signature;");
    println!("  ratio: best rate through the RPC over the best rate direct");
}

fn report_e2e(raw: &[RawFigure], e2e: &[E2eFigure], params: &Params) {
    println!();
    println!(
        "(d) signHash end to end, 1 hash per call, concurrency {}, SQLite, up to {:.0} s per cell",
        params.concurrency, params.secs
    );
    println!(
        "  {:<8} {:<7} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>7}",
        "key", "token", "sign/s", "p50 ms", "p99 ms", "/its raw", "server ms", "remote ms", "errors"
    );
    for (e, r) in e2e.iter().zip(raw) {
        for (what, cell, bound) in [("direct", &e.direct, &r.direct), ("rpc", &e.rpc, &r.rpc)] {
            let load = &cell.load;
            println!(
                "  {:<8} {:<7} {:>8.0} {:>8.1} {:>8.1} {:>9.3} {:>10.3} {:>10.3} {:>7}{}",
                e.key.name,
                what,
                load.rate(),
                load.p(50.0),
                load.p(99.0),
                load.rate() / bound.best(),
                cell.server_cpu_ms_per_sig,
                cell.remote_cpu_ms_per_sig,
                load.errors,
                if load.exhausted {
                    "  (authorised hashes used up before the time)"
                } else {
                    ""
                }
            );
            if let Some((status, body)) = &load.first_error {
                println!("    first error: HTTP {status}: {body}");
            }
        }
    }
    println!("  /its raw: over the best raw rate of the same token path; server ms, remote ms: CPU per signature");
}

fn report_pair(pair: &PairFigure, params: &Params) {
    println!();
    println!(
        "(e) two instances, one PostgreSQL database, P-256, concurrency {}, SADs of {} (one authorize per {} signHash)",
        params.concurrency, pair.rpc.run.plan.per_sad, pair.rpc.run.plan.per_sad
    );
    for (what, p) in [("direct", &pair.direct), ("rpc", &pair.rpc)] {
        let (run, books) = (&p.run, &p.books);
        println!(
            "  {what:<7} {:.0} sign/s; signHash p50 {:.1} ms, p99 {:.1} ms; returned {} / debited {} / rows {}; \
             overspent {}, mismatches {}, verified {}; statuses {:?}",
            p.rate(),
            run.p50_ms,
            run.p99_ms,
            books.returned,
            books.debited,
            books.rows,
            books.overspent,
            books.mismatches,
            books.verified,
            run.statuses.iter().map(|(s, (n, _))| (*s, *n)).collect::<Vec<_>>()
        );
        for problem in &books.problems {
            println!("    problem: {problem}");
        }
    }
}

fn result_lines(raw: &[RawFigure], e2e: &[E2eFigure], pair: &PairFigure, params: &Params) {
    for r in raw {
        println!(
            "RESULT nethsm_raw key={} direct={:.1} rpc={:.1} ratio={:.3} direct_1={:.1} rpc_1={:.1} sessions={} \
             direct_cpu_ms_per_sig={:.4} rpc_cpu_ms_per_sig={:.4} rpc_remote_cpu_ms_per_sig={:.4}",
            r.key.name,
            r.direct.best(),
            r.rpc.best(),
            r.rpc.best() / r.direct.best(),
            r.direct.single,
            r.rpc.single,
            r.rpc.sessions,
            r.direct.cpu_ms_per_sig,
            r.rpc.cpu_ms_per_sig,
            r.rpc.remote_cpu_ms_per_sig
        );
    }
    for (e, r) in e2e.iter().zip(raw) {
        let (rpc, direct) = (&e.rpc.load, &e.direct.load);
        println!(
            "RESULT nethsm_e2e key={} rate={:.1} ratio_to_rpc_raw={:.3} concurrency={} p50_ms={:.2} p99_ms={:.2} \
             errors={} server_cpu_ms_per_sig={:.4} remote_cpu_ms_per_sig={:.4} direct_rate={:.1} \
             direct_ratio_to_raw={:.3} ratio_to_direct={:.3}",
            e.key.name,
            rpc.rate(),
            rpc.rate() / r.rpc.best(),
            params.concurrency,
            rpc.p(50.0),
            rpc.p(99.0),
            rpc.errors,
            e.rpc.server_cpu_ms_per_sig,
            e.rpc.remote_cpu_ms_per_sig,
            direct.rate(),
            direct.rate() / r.direct.best(),
            rpc.rate() / direct.rate()
        );
    }
    let (rpc, direct) = (&pair.rpc, &pair.direct);
    println!(
        "RESULT nethsm_pair key=p256 rate={:.1} books={} instances=2 concurrency={} per_sad={} requests={} \
         returned={} debited={} rows={} overspent={} mismatches={} verified={} p50_ms={:.1} p99_ms={:.1} \
         remote_cpu_ms_per_sig={:.4} direct_rate={:.1} direct_books={} ratio_to_direct={:.3}",
        rpc.rate(),
        books_word(rpc),
        rpc.run.plan.concurrency,
        rpc.run.plan.per_sad,
        rpc.run.sent,
        rpc.books.returned,
        rpc.books.debited,
        rpc.books.rows,
        rpc.books.overspent,
        rpc.books.mismatches,
        rpc.books.verified,
        rpc.run.p50_ms,
        rpc.run.p99_ms,
        rpc.remote_cpu_ms_per_sig(),
        direct.rate(),
        books_word(direct),
        rpc.rate() / direct.rate()
    );
}

fn books_word(p: &PairRun) -> &'static str {
    if p.exact() {
        "exact"
    } else {
        "mismatch"
    }
}
