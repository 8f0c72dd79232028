//! Helpers of the `signhash`, `documents`, `flood` and `books` load benchmarks: the real `parafa serve` as a child
//! process on a temporary data directory (and optionally a fresh PostgreSQL database), the server's clock moved
//! through its clock file, holders created with the CLI, a small async CSC client, SAD authorisation and a timed
//! signHash load, the raw token rate, DER requests for the TSA and the OCSP responder, latency statistics and CPU
//! accounting from `/proc`.
#![allow(dead_code)]

pub mod profile;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tempfile::TempDir;

/// The `parafa` binary of this build profile (`cargo bench` builds it optimised).
pub fn parafa_bin() -> &'static str {
    env!("CARGO_BIN_EXE_parafa")
}

/// The password of every holder the benchmark creates.
pub const HOLDER_PASSWORD: &str = "correct horse battery staple";

/// TOTP time step, seconds (the product's rule; not a setting).
pub const STEP_SECS: i64 = 30;

/// Unix seconds of the real clock.
pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh database on the PostgreSQL server named by `PARAFA_TEST_POSTGRES_URL`, dropped on drop.
pub struct FreshPostgres {
    pub url: String,
    name: String,
    admin_url: String,
}

impl FreshPostgres {
    /// `None` when `PARAFA_TEST_POSTGRES_URL` is unset or empty; panics when the server is unreachable.
    pub fn create() -> Option<FreshPostgres> {
        let admin_url = std::env::var("PARAFA_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = format!("parafa_bench_{}", uuid::Uuid::new_v4().simple());
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("PARAFA_TEST_POSTGRES_URL must name a database, e.g. …/postgres");
        Some(FreshPostgres {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let url = self.admin_url.clone();
        let _ = std::panic::catch_unwind(move || psql(&url, &sql));
    }
}

/// Runs one SQL statement on PostgreSQL, on a thread and runtime of its own.
fn psql(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| format!("PostgreSQL at {url} is unreachable: {e}"))?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
            Ok::<(), String>(())
        })
    })
    .join()
    .expect("psql thread");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// A `parafa serve` child process and everything that belongs to it.
pub struct Server {
    /// `http://127.0.0.1:PORT` while running.
    pub base: String,
    /// The (empty) configuration file the server reads.
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    /// The `PARAFA_*` environment of the server and of the CLI runs against it.
    pub env: Vec<(String, String)>,
    pub clock: ServerClock,
    child: Option<Child>,
    _pg: Option<FreshPostgres>,
    _tmp: TempDir,
}

impl Server {
    /// Prepares (does not start) a server on a new temporary data directory, under `PARAFA_BENCH_TMPDIR` if set
    /// (e.g. /dev/shm, to take the disk's fsync out of the picture). `extra` comes after the defaults.
    pub fn new(pg: Option<FreshPostgres>, extra: &[(String, String)]) -> Server {
        let tmp = match std::env::var_os("PARAFA_BENCH_TMPDIR") {
            Some(dir) => tempfile::Builder::new()
                .prefix("parafa-bench")
                .tempdir_in(dir)
                .expect("temp dir"),
            None => tempfile::Builder::new()
                .prefix("parafa-bench")
                .tempdir()
                .expect("temp dir"),
        };
        let data_dir = tmp.path().join("data");
        let clock_file = tmp.path().join("clock-offset");
        std::fs::write(&clock_file, "0").expect("clock file");
        // An empty configuration file: defaults and the variables below only, whatever parafa.toml lies around.
        let config_file = tmp.path().join("parafa.toml");
        std::fs::write(&config_file, "").expect("config file");
        let mut env = vec![
            ("PARAFA_CONFIG".to_owned(), config_file.display().to_string()),
            ("PARAFA_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("PARAFA_TEST_CLOCK_FILE".to_owned(), clock_file.display().to_string()),
            ("PARAFA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("PARAFA_LOG".to_owned(), "warn".to_owned()),
        ];
        if let Some(pg) = &pg {
            env.push(("PARAFA_DATABASE_URL".to_owned(), pg.url.clone()));
        }
        for (k, v) in extra {
            env.retain(|(k2, _)| k2 != k);
            env.push((k.clone(), v.clone()));
        }
        Server {
            base: String::new(),
            config_file,
            data_dir,
            env,
            clock: ServerClock::new(clock_file),
            child: None,
            _pg: pg,
            _tmp: tmp,
        }
    }

    /// A command for the `parafa` binary with this server's environment and nothing inherited that could point it
    /// elsewhere (`SOFTHSM2_CONF`, other `PARAFA_*` variables, a `parafa.toml` in the working directory).
    fn command(&self) -> Command {
        let mut cmd = Command::new(parafa_bin());
        cmd.current_dir(self._tmp.path());
        cmd.env_remove("SOFTHSM2_CONF");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PARAFA_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Starts `parafa serve` and waits for its `listening on` line.
    pub fn start(&mut self) {
        self.stop();
        let mut child = self
            .command()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start parafa serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => self.base = base,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                panic!("parafa serve did not start within 120 s (exit status {status:?})");
            }
        }
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL, as the tests do) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.base.clear();
    }

    /// Whether the server process is still alive (not exited, not killed by a signal or the OOM killer).
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs the `parafa` CLI with `args` against this server's data and configuration; its output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command()
            .env("PARAFA_LOG", "error")
            .args(args)
            .output()
            .expect("run the parafa CLI")
    }

    /// The database URL the server and the CLI use: the `PARAFA_DATABASE_URL` given, else the SQLite file in the
    /// data directory (as `Settings::database_url` makes it).
    pub fn database_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "PARAFA_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("parafa.db").display()))
    }

    /// `parafa admin holder create …` against this server's data; 2FA on, package 3 (600 transactions).
    pub fn create_holder(&self, email: &str, key: &str) -> Holder {
        self.create_holder_on(email, key, 3)
    }

    /// As [`Server::create_holder`], on package `package`.
    pub fn create_holder_on(&self, email: &str, key: &str, package: u8) -> Holder {
        let package = package.to_string();
        let out = self
            .command()
            .env("PARAFA_LOG", "error")
            .args([
                "admin",
                "holder",
                "create",
                "--email",
                email,
                "--name",
                "Ana Maria Popescu",
                "--phone",
                "+40712345678",
                "--password",
                HOLDER_PASSWORD,
                "--package",
                &package,
                "--key",
                key,
            ])
            .output()
            .expect("run parafa admin holder create");
        assert!(
            out.status.success(),
            "parafa admin holder create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Holder::parse(email, &String::from_utf8_lossy(&out.stdout))
    }

    /// A credential's books as `parafa admin credential` reads them from the database: transactions debited and
    /// signatures recorded.
    pub fn books(&self, credential_id: &str) -> (i64, i64) {
        let out = self
            .command()
            .env("PARAFA_LOG", "error")
            .args(["admin", "credential", credential_id])
            .output()
            .expect("run parafa admin credential");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> i64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in `parafa admin credential`:\n{text}"))
        };
        (field("quota_used"), field("signatures_recorded"))
    }

    /// Creates `n` holders with keys of `key`, `parallel` CLI processes at a time.
    pub fn create_holders(&self, key: &str, n: usize, parallel: usize, tag: &str) -> Vec<Holder> {
        let mut holders = Vec::with_capacity(n);
        let parallel = parallel.max(1);
        let mut next = 0;
        while next < n {
            let batch: Vec<usize> = (next..(next + parallel).min(n)).collect();
            next += batch.len();
            let made: Vec<Holder> = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|i| {
                        let email = format!("bench-{tag}-{key}-{i}@example.com");
                        s.spawn(move || self.create_holder(&email, key))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("holder thread")).collect()
            });
            holders.extend(made);
        }
        holders
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server goes before its database.
        self.stop();
        self._pg.take();
    }
}

/// The server's clock, moved through `PARAFA_TEST_CLOCK_FILE`: only ever forward, one TOTP step at a time.
pub struct ServerClock {
    file: PathBuf,
    offset: i64,
    step: i64,
}

impl ServerClock {
    fn new(file: PathBuf) -> ServerClock {
        ServerClock {
            file,
            offset: 0,
            step: 0,
        }
    }

    /// The server's time now.
    pub fn now(&self) -> i64 {
        real_now() + self.offset
    }

    /// Moves the server's clock to the middle of a TOTP step later than every step handed out so far, and returns
    /// that step. The middle, so that neither the real clock's next tick nor a request in flight crosses a step
    /// boundary unnoticed. The file is replaced atomically (the server rereads it on every reading of its clock,
    /// and must never see it half written).
    pub fn next_step(&mut self) -> i64 {
        let real = real_now();
        let target = ((real + self.offset) / STEP_SECS + 1).max(self.step + 1);
        let offset = target * STEP_SECS + STEP_SECS / 2 - real;
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, offset.to_string()).expect("write clock file");
        std::fs::rename(&tmp, &self.file).expect("replace clock file");
        self.offset = offset;
        self.step = target;
        target
    }

    /// Seconds the server's clock is ahead of the real one.
    pub fn offset(&self) -> i64 {
        self.offset
    }
}

/// A holder created by the CLI, with what the benchmark keeps about it.
pub struct Holder {
    pub email: String,
    pub credential_id: String,
    totp: totp_rs::TOTP,
    pub access_token: String,
    pub refresh_token: String,
    /// The server time the access token expires at.
    pub token_expires: i64,
    /// The last TOTP step used (a code of a later step is needed for the next authorisation).
    pub last_step: i64,
    /// Signatures debited so far.
    pub used: i64,
    /// Transactions of the package.
    pub transactions: i64,
}

impl Holder {
    fn parse(email: &str, out: &str) -> Holder {
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
                .trim()
                .to_owned()
        };
        let secret = totp_rs::Secret::Encoded(field("totp_secret"))
            .to_bytes()
            .expect("base32 TOTP secret");
        Holder {
            email: email.to_owned(),
            credential_id: field("credential_id"),
            totp: totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new()),
            access_token: String::new(),
            refresh_token: String::new(),
            token_expires: 0,
            last_step: 0,
            used: 0,
            transactions: field("transactions").parse().expect("transactions"),
        }
    }

    /// The code of a TOTP step, as the holder's authenticator app shows it during that step.
    pub fn code(&self, step: i64) -> String {
        self.totp.generate((step * STEP_SECS) as u64)
    }

    /// Transactions left.
    pub fn left(&self) -> i64 {
        self.transactions - self.used
    }
}

/// A CSC client over one connection pool.
#[derive(Clone)]
pub struct Csc {
    pub http: reqwest::Client,
    pub base: String,
}

/// A failed call: the HTTP status (0 when none) and the answer or the transport error.
pub type CallError = (u16, String);

impl Csc {
    pub fn new(base: &str) -> Csc {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        Csc {
            http,
            base: base.to_owned(),
        }
    }

    async fn answer(resp: reqwest::Result<reqwest::Response>) -> Result<Value, CallError> {
        let resp = resp.map_err(|e| (0, e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| (status, e.to_string()))?;
        if status != 200 {
            return Err((status, String::from_utf8_lossy(&bytes).into_owned()));
        }
        serde_json::from_slice(&bytes).map_err(|e| (status, format!("not JSON: {e}")))
    }

    /// POSTs a CSC method with a bearer token.
    pub async fn call(&self, path: &str, token: &str, body: &Value) -> Result<Value, CallError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await;
        Self::answer(resp).await
    }

    /// `auth/login` with e-mail, password and a TOTP code, asking for a refresh token too. Returns the access
    /// token, the refresh token and the access token's lifetime in seconds.
    pub async fn login(&self, email: &str, code: &str) -> Result<(String, String, i64), CallError> {
        let resp = self
            .http
            .post(format!("{}/csc/v2/auth/login", self.base))
            .basic_auth(email, Some(HOLDER_PASSWORD))
            .header("X-Parafa-OTP", code)
            .json(&json!({ "rememberMe": true }))
            .send()
            .await;
        let v = Self::answer(resp).await?;
        let access = v["access_token"].as_str().unwrap_or_default().to_owned();
        let refresh = v["refresh_token"].as_str().unwrap_or_default().to_owned();
        Ok((access, refresh, v["expires_in"].as_i64().unwrap_or_default()))
    }

    /// A new access token and its lifetime in seconds, from a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<(String, i64), CallError> {
        let resp = self
            .http
            .post(format!("{}/csc/v2/auth/login", self.base))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await;
        let v = Self::answer(resp).await?;
        let access = v["access_token"].as_str().unwrap_or_default().to_owned();
        Ok((access, v["expires_in"].as_i64().unwrap_or_default()))
    }

    /// `credentials/authorize` for these base64 hashes (SHA-256) with a TOTP code; returns the SAD.
    pub async fn authorize(
        &self,
        token: &str,
        credential_id: &str,
        hashes: &[String],
        code: &str,
    ) -> Result<String, CallError> {
        let body = json!({
            "credentialID": credential_id,
            "numSignatures": hashes.len(),
            "hashes": hashes,
            "hashAlgorithmOID": SHA256_OID,
            "authData": [{ "id": "otp", "value": code }],
        });
        let v = self.call("/csc/v2/credentials/authorize", token, &body).await?;
        v["SAD"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| (200, format!("no SAD in {v}")))
    }

    /// `signatures/signHash`; returns the number of signatures in the answer.
    pub async fn sign_hash(
        &self,
        token: &str,
        credential_id: &str,
        sad: &str,
        hashes: &[&str],
        sign_algo: &str,
    ) -> Result<usize, CallError> {
        let body = json!({
            "credentialID": credential_id,
            "SAD": sad,
            "hashes": hashes,
            "hashAlgorithmOID": SHA256_OID,
            "signAlgo": sign_algo,
        });
        let v = self.call("/csc/v2/signatures/signHash", token, &body).await?;
        let n = v["signatures"].as_array().map(|a| a.len()).unwrap_or(0);
        if n == hashes.len() {
            Ok(n)
        } else {
            Err((200, format!("{} signatures for {} hashes: {v}", n, hashes.len())))
        }
    }

    /// The server's Prometheus text.
    pub async fn metrics(&self) -> String {
        match self.http.get(format!("{}/metrics", self.base)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// OID of SHA-256.
pub const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";

/// Random SHA-256-sized digests, base64.
pub fn random_hashes(n: usize) -> Vec<String> {
    use base64::Engine;
    use rand::RngCore;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| {
            let mut d = [0u8; 32];
            rng.fill_bytes(&mut d);
            base64::engine::general_purpose::STANDARD.encode(d)
        })
        .collect()
}

/// The value of a Prometheus sample `name{…labels…}` whose label set contains every `labels` pair.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// CPU seconds (user + system, all threads) used so far by a process, from `/proc/PID/stat`; 0 if unreadable.
pub fn cpu_secs(pid: Option<u32>) -> f64 {
    let (user, sys) = cpu_split(pid);
    user + sys
}

/// User and system CPU seconds used so far by a process (this one for `None`), all threads.
pub fn cpu_split(pid: Option<u32>) -> (f64, f64) {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) / clock_ticks_per_sec(), ticks(15) / clock_ticks_per_sec())
}

/// `sysconf(_SC_CLK_TCK)`, which is 100 on every Linux the project runs on (`getconf CLK_TCK` to check).
fn clock_ticks_per_sec() -> f64 {
    100.0
}

/// Latency percentiles over a sample, in milliseconds.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

/// Whether `path` is on a tmpfs (no fsync cost), for the report.
pub fn on_tmpfs(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut best: Option<(usize, bool)> = None;
    for line in mounts.lines() {
        let mut it = line.split_whitespace();
        let (_, Some(mount), Some(fs)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if path.starts_with(mount) && best.is_none_or(|(len, _)| mount.len() > len) {
            best = Some((mount.len(), fs == "tmpfs"));
        }
    }
    best.is_some_and(|(_, t)| t)
}

/// A positive number from the environment variable `name`, or `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(default)
}

/// `PARAFA_BENCH_SERVER_ENV`: extra variables for the server under test, as `K=V K=V`.
pub fn server_env() -> Vec<(String, String)> {
    std::env::var("PARAFA_BENCH_SERVER_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A line on standard error for the reader of a bench run (the RESULT lines go to standard output).
pub fn note(msg: impl AsRef<str>) {
    eprintln!("# {}", msg.as_ref());
}

/// Concurrency of the untimed set-up calls (logins, authorisations).
pub const SETUP_CONCURRENCY: usize = 8;

/// Logs every holder in to the CSC API with a code of a new clock step.
pub async fn login_all(csc: &Csc, server: &mut Server, holders: &mut [Holder]) {
    use futures_util::stream::{self, StreamExt};
    let step = server.clock.next_step();
    let now = server.clock.now();
    let tokens: Vec<_> = stream::iter(holders.iter())
        .map(|h| async move {
            // A busy server (its password checks all taken, 503) is asked again after the pause it names; the
            // code was not spent by a refusal that came before it was checked.
            let mut tries = 0;
            loop {
                match csc.login(&h.email, &h.code(step)).await {
                    Err((503, _)) if tries < 10 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    other => break other,
                }
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    for (h, t) in holders.iter_mut().zip(tokens) {
        let (access, refresh, life) = t.unwrap_or_else(|e| panic!("login of {} failed: {e:?}", h.email));
        h.access_token = access;
        h.refresh_token = refresh;
        h.token_expires = now + life;
        h.last_step = step;
    }
}

/// Renews, with the refresh token, access tokens that have less than `min_life` server seconds left (the server's
/// clock moves 30 s per TOTP step, and real time passes too).
pub async fn renew_tokens(csc: &Csc, server: &Server, holders: &mut [Holder], min_life: i64) {
    use futures_util::stream::{self, StreamExt};
    let now = server.clock.now();
    if holders.iter().all(|h| h.token_expires - now >= min_life) {
        return;
    }
    note(format!(
        "renewing {} access tokens with their refresh tokens",
        holders.len()
    ));
    let tokens: Vec<_> = stream::iter(holders.iter())
        .map(|h| csc.refresh(&h.refresh_token))
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    for (h, t) in holders.iter_mut().zip(tokens) {
        let (access, life) = t.unwrap_or_else(|e| panic!("token refresh of {} failed: {e:?}", h.email));
        h.access_token = access;
        h.token_expires = now + life;
    }
}

/// Every holder's books against what this client got: debits = recorded signatures = signatures returned (each
/// signature is one transaction; authorising debits nothing). Returns the exact holders and the wrong ones.
pub fn check_books<'a>(server: &Server, holders: impl IntoIterator<Item = &'a Holder>) -> (usize, Vec<String>) {
    let mut exact = 0;
    let mut wrong = Vec::new();
    for h in holders {
        let (debited, recorded) = server.books(&h.credential_id);
        if debited == h.used && recorded == h.used {
            exact += 1;
        } else {
            wrong.push(format!(
                "{}: got {} signatures, {debited} debited, {recorded} recorded",
                h.email, h.used
            ));
        }
    }
    (exact, wrong)
}

/// Who may authorise next in a timed cell: a holder not busy, with `cost` transactions left, that has not used the
/// current TOTP step yet. When every holder with quota has had the current step, the server's clock moves to the
/// next one (a holder still busy with the previous step's code is within the server's one-step tolerance, and the
/// clock cannot move again before that holder is done), at most `max_steps` times.
pub struct Schedule {
    pub step: i64,
    pub busy: Vec<bool>,
    pub last: Vec<i64>,
    pub left: Vec<i64>,
    pub cost: i64,
    pub steps: usize,
    pub max_steps: usize,
}

/// What [`Schedule::pick`] says.
pub enum Pick {
    /// This holder, with a code of this step.
    Go(usize, i64),
    /// Every able holder is busy: wait for one.
    Wait,
    /// No holder has the quota left, or the steps are used up.
    Exhausted,
}

impl Schedule {
    /// A schedule over `holders` starting at clock step `step`, each request costing `cost` transactions.
    pub fn new(holders: &[Holder], step: i64, cost: i64, max_steps: usize) -> Schedule {
        Schedule {
            step,
            busy: vec![false; holders.len()],
            last: holders.iter().map(|h| h.last_step).collect(),
            left: holders.iter().map(Holder::left).collect(),
            cost,
            steps: 1,
            max_steps,
        }
    }

    pub fn pick(&mut self, server: &mut Server) -> Pick {
        loop {
            let n = self.busy.len();
            let able = |i: usize, s: &Schedule| s.left[i] >= s.cost;
            if let Some(i) = (0..n).find(|&i| !self.busy[i] && able(i, self) && self.last[i] < self.step) {
                self.busy[i] = true;
                self.last[i] = self.step;
                self.left[i] -= self.cost;
                return Pick::Go(i, self.step);
            }
            if (0..n).all(|i| !able(i, self)) {
                return Pick::Exhausted;
            }
            if (0..n).all(|i| !able(i, self) || self.last[i] >= self.step) {
                if self.steps >= self.max_steps {
                    return Pick::Exhausted;
                }
                self.step = server.clock.next_step();
                self.steps += 1;
                continue;
            }
            return Pick::Wait;
        }
    }
}

/// One authorised SAD: whose (an index into the holders), and the hashes it may sign.
pub struct Sad {
    pub holder: usize,
    pub sad: String,
    pub hashes: Vec<String>,
}

/// Authorises SADs of up to `sad_size` hashes for `want` signatures in all (fewer if the quotas do not allow), one
/// SAD per holder per clock step, each with a real TOTP code of a new step.
pub async fn authorise(csc: &Csc, server: &mut Server, holders: &mut [Holder], want: i64, sad_size: i64) -> Vec<Sad> {
    use futures_util::stream::{self, StreamExt};
    let mut sads = Vec::new();
    let mut reserved = vec![0i64; holders.len()];
    let mut need = want;
    while need > 0 {
        let mut jobs = Vec::new();
        for (i, h) in holders.iter().enumerate() {
            let n = sad_size.min(h.left() - reserved[i]).min(need);
            if n <= 0 {
                continue;
            }
            reserved[i] += n;
            need -= n;
            jobs.push((i, random_hashes(n as usize)));
        }
        if jobs.is_empty() {
            note("the holders' quotas are used up");
            break;
        }
        let step = server.clock.next_step();
        let hs = &*holders;
        let done: Vec<_> = stream::iter(jobs)
            .map(|(i, hashes)| async move {
                let h = &hs[i];
                let sad = csc
                    .authorize(&h.access_token, &h.credential_id, &hashes, &h.code(step))
                    .await;
                (i, sad, hashes)
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect()
            .await;
        for (i, sad, hashes) in done {
            let sad = sad.unwrap_or_else(|e| panic!("credentials/authorize for {} failed: {e:?}", holders[i].email));
            holders[i].last_step = step;
            sads.push(Sad { holder: i, sad, hashes });
        }
    }
    sads
}

/// What a timed signHash load gave.
pub struct SignLoad {
    /// Latencies of the signatures returned, sorted, microseconds.
    pub latencies: Vec<u32>,
    pub errors: usize,
    pub first_error: Option<CallError>,
    /// Wall time from the first request to the last answer, seconds.
    pub secs: f64,
    /// Whether the authorised hashes ran out before the time did.
    pub exhausted: bool,
}

impl SignLoad {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.secs.max(1e-9)
    }

    pub fn p(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }
}

/// `concurrency` clients send single-hash `signatures/signHash` requests from `sads` until `secs` pass or the
/// authorised hashes run out; each holder's `used` is debited with what it signed. Requests are interleaved across
/// SADs (and so across holders): consecutive requests hit different credentials, as independent clients would.
pub async fn sign_load(
    csc: &Csc,
    holders: &mut [Holder],
    sads: &[Sad],
    sign_algo: &str,
    concurrency: usize,
    secs: f64,
) -> SignLoad {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::time::Instant;
    let longest = sads.iter().map(|s| s.hashes.len()).max().unwrap_or(0);
    let mut items: Vec<(usize, usize)> = Vec::new();
    for j in 0..longest {
        for (si, s) in sads.iter().enumerate() {
            if j < s.hashes.len() {
                items.push((si, j));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let signed: Vec<AtomicI64> = holders.iter().map(|_| AtomicI64::new(0)).collect();
    let hs = &*holders;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let workers = (0..concurrency).map(|_| async {
        let mut lat = Vec::new();
        let mut errors = 0usize;
        let mut first_error = None;
        while Instant::now() < deadline {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(si, j)) = items.get(k) else { break };
            let s = &sads[si];
            let h = &hs[s.holder];
            let t = Instant::now();
            match csc
                .sign_hash(&h.access_token, &h.credential_id, &s.sad, &[&s.hashes[j]], sign_algo)
                .await
            {
                Ok(_) => {
                    lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    signed[s.holder].fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        (lat, errors, first_error)
    });
    let done = futures_util::future::join_all(workers).await;
    let secs = start.elapsed().as_secs_f64();
    for (h, n) in holders.iter_mut().zip(&signed) {
        h.used += n.load(Ordering::Relaxed);
    }
    let mut out = SignLoad {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        secs,
        exhausted: next.load(Ordering::Relaxed) >= items.len(),
    };
    for (lat, e, fe) in done {
        out.latencies.extend(lat);
        out.errors += e;
        if out.first_error.is_none() {
            out.first_error = fe;
        }
    }
    out.latencies.sort_unstable();
    out
}

/// The raw token rate: `threads` threads sign `digest` with the key `key_id` in a loop for `secs`, each on a session
/// of `hsm`'s pool. Returns signatures and seconds. The first signature (a key look-up) is not counted.
pub fn raw_sign_rate(
    hsm: &parafa::hsm::Hsm,
    key_id: &[u8],
    mechanism: parafa::hsm::SignMechanism,
    threads: usize,
    secs: f64,
) -> (u64, f64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Instant;
    let digest = [0x5au8; 32];
    hsm.sign_digest(key_id, mechanism, &digest)
        .expect("sign with the holder's key in-process");
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= deadline {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    hsm.sign_digest(key_id, mechanism, &digest).expect("raw signature");
                    mine += 1;
                }
                count.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    (count.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

impl Csc {
    /// The holder's certificate (DER) from `credentials/info`.
    pub async fn certificate(&self, token: &str, credential_id: &str) -> Result<Vec<u8>, CallError> {
        use base64::Engine;
        let body = json!({ "credentialID": credential_id, "certificates": "single" });
        let v = self.call("/csc/v2/credentials/info", token, &body).await?;
        let b64 = v["cert"]["certificates"][0]
            .as_str()
            .ok_or_else(|| (200, format!("no certificate in {v}")))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| (200, format!("certificate not base64: {e}")))
    }

    /// A GET's body (e.g. `/pki/issuing.crt`).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, CallError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| (status, e.to_string()))?;
        if status != 200 {
            return Err((status, String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(bytes.to_vec())
    }
}

/// A DER OCSPRequest (RFC 6960) for one certificate issued by `issuer_der`, with a SHA-1 CertID as OpenSSL and the
/// PDF signers send it, and a nonce extension (RFC 8954) when `nonce` is given.
pub fn ocsp_request(cert_der: &[u8], issuer_der: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    use der::asn1::OctetString;
    use der::{Decode, Encode};
    use sha1::{Digest, Sha1};
    let cert = x509_cert::Certificate::from_der(cert_der).expect("the holder's certificate");
    let issuer = x509_cert::Certificate::from_der(issuer_der).expect("the issuing CA's certificate");
    let issuer = &issuer.tbs_certificate;
    let sha1 = |b: &[u8]| Sha1::digest(b).to_vec();
    let cert_id = x509_ocsp::CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&issuer.subject.to_der().expect("issuer name"))).expect("hash"),
        issuer_key_hash: OctetString::new(sha1(issuer.subject_public_key_info.subject_public_key.raw_bytes()))
            .expect("hash"),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    };
    let request_extensions = nonce.map(|n| {
        let value = OctetString::new(n.to_vec()).expect("nonce").to_der().expect("nonce");
        vec![x509_cert::ext::Extension {
            extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(value).expect("nonce"),
        }]
    });
    x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .expect("OCSP request")
}

/// A DER TimeStampReq (RFC 3161) for a SHA-256 digest, asking for the TSA's certificate, with a positive `nonce`.
pub fn tsa_query(digest: &[u8; 32], nonce: u64) -> Vec<u8> {
    use der::Encode;
    // A leading 0x01 keeps the INTEGER positive and minimally encoded.
    let mut n = vec![0x01];
    n.extend_from_slice(&nonce.to_be_bytes());
    x509_tsp::TimeStampReq {
        version: x509_tsp::TspVersion::V1,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_256,
                parameters: None,
            },
            hashed_message: der::asn1::OctetString::new(digest.to_vec()).expect("digest"),
        },
        req_policy: None,
        nonce: Some(der::asn1::Int::new(&n).expect("nonce")),
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .expect("timestamp query")
}

/// The OCSP `responseStatus` of an answer ("successful", "tryLater", …), or "not OCSP".
pub fn ocsp_status(der: &[u8]) -> String {
    use der::Decode;
    match x509_ocsp::OcspResponse::from_der(der) {
        Ok(r) => lower_first(&format!("{:?}", r.response_status)),
        Err(_) => "not OCSP".to_owned(),
    }
}

/// The PKIStatus of a TimeStampResp ("accepted", "rejection", …), or "not TSP".
pub fn tsa_status(der: &[u8]) -> String {
    use der::Decode;
    match x509_tsp::TimeStampResp::from_der(der) {
        Ok(r) => lower_first(&format!("{:?}", r.status.status)),
        Err(_) => "not TSP".to_owned(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
