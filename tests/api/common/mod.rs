//! Test harness: the real `parafa` binary as a child process per server (SoftHSM2 reads `SOFTHSM2_CONF` once per
//! process, so every server gets its own process, data directory, token and database), a fresh PostgreSQL
//! database per test when `PARAFA_TEST_POSTGRES_URL` is set, and helpers to run the CLI and outside tools.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

pub mod desktop;
pub mod hostile;

/// The built binary.
pub fn parafa_bin() -> &'static str {
    env!("CARGO_BIN_EXE_parafa")
}

/// Which database a test server uses.
#[derive(Debug)]
pub enum Backend {
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres(FreshPostgres),
}

/// The variable that turns development mode (the sandboxes) on, for [`TestApp::spawn_on`].
pub const DEV: &[(&str, &str)] = &[("PARAFA_DEV", "1")];

/// A running Parafa server and what belongs to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::blocking::Client,
    env: Vec<(String, String)>,
    child: Option<Child>,
    _tmp: Option<TempDir>,
    _pg: Option<FreshPostgres>,
}

impl TestApp {
    /// A server on SQLite in a new temporary data directory.
    pub fn spawn() -> TestApp {
        Self::spawn_on(Backend::Sqlite, &[])
    }

    /// A server on a fresh PostgreSQL database; `None` (and a message) when PostgreSQL tests are not enabled.
    pub fn spawn_postgres() -> Option<TestApp> {
        let pg = FreshPostgres::create()?;
        Some(Self::spawn_on(Backend::Postgres(pg), &[]))
    }

    /// A server on SQLite in development mode (`PARAFA_DEV=1`): the sandbox payment gateway and the sandbox
    /// identification are served.
    pub fn spawn_dev() -> TestApp {
        Self::spawn_on(Backend::Sqlite, DEV)
    }

    /// [`TestApp::spawn_postgres`] in development mode.
    pub fn spawn_postgres_dev() -> Option<TestApp> {
        let pg = FreshPostgres::create()?;
        Some(Self::spawn_on(Backend::Postgres(pg), DEV))
    }

    /// A server on the given backend with extra `PARAFA_*` variables.
    pub fn spawn_on(backend: Backend, extra_env: &[(&str, &str)]) -> TestApp {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let clock_file = tmp.path().join("clock-offset");
        std::fs::write(&clock_file, "0").expect("clock file");
        let mut env = vec![
            ("PARAFA_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("PARAFA_TEST_CLOCK_FILE".to_owned(), clock_file.display().to_string()),
            ("PARAFA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("PARAFA_WORKERS".to_owned(), "2".to_owned()),
            ("PARAFA_LOG".to_owned(), "warn".to_owned()),
        ];
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(pg) => {
                env.push(("PARAFA_DATABASE_URL".to_owned(), pg.url.clone()));
                Some(pg)
            }
        };
        for (k, v) in extra_env {
            env.push((k.to_string(), v.to_string()));
        }
        let mut app = TestApp {
            base: String::new(),
            data_dir,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            env,
            child: None,
            _tmp: Some(tmp),
            _pg: pg,
        };
        app.start();
        app
    }

    /// Two servers on one fresh PostgreSQL database and one data directory (one SoftHSM2 token), started at the
    /// same moment so that both provision at once; `None` when PostgreSQL tests are not enabled. The first owns the
    /// directory and the database: drop the second first.
    pub fn spawn_pair_postgres() -> Option<(TestApp, TestApp)> {
        Self::spawn_pair_postgres_with(&[])
    }

    /// [`TestApp::spawn_pair_postgres`] with extra `PARAFA_*` variables for both.
    pub fn spawn_pair_postgres_with(extra_env: &[(&str, &str)]) -> Option<(TestApp, TestApp)> {
        let pg = FreshPostgres::create()?;
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let clock_file = tmp.path().join("clock-offset");
        std::fs::write(&clock_file, "0").expect("clock file");
        let env = vec![
            ("PARAFA_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("PARAFA_TEST_CLOCK_FILE".to_owned(), clock_file.display().to_string()),
            ("PARAFA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("PARAFA_WORKERS".to_owned(), "2".to_owned()),
            ("PARAFA_LOG".to_owned(), "warn".to_owned()),
            ("PARAFA_DATABASE_URL".to_owned(), pg.url.clone()),
        ]
        .into_iter()
        .chain(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect::<Vec<_>>();
        let make = |tmp: Option<TempDir>, pg: Option<FreshPostgres>| TestApp {
            base: String::new(),
            data_dir: data_dir.clone(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            env: env.clone(),
            child: None,
            _tmp: tmp,
            _pg: pg,
        };
        let (mut a, mut b) = (make(Some(tmp), Some(pg)), make(None, None));
        std::thread::scope(|s| {
            s.spawn(|| a.start());
            s.spawn(|| b.start());
        });
        Some((a, b))
    }

    /// Starts (or restarts) the server process on the same data directory and database.
    pub fn start(&mut self) {
        self.stop();
        let (child, base) = self.serve(&[], &[], Stdio::inherit());
        self.base = base;
        self.child = Some(child);
    }

    /// Another `parafa serve` on this app's data directory and database (stop the app's own first), run behind
    /// `prefix` (e.g. `prlimit --as=…`) with `extra` variables, its standard error piped to the caller: the child
    /// with its stderr still attached, and the base URL it listens on.
    pub fn serve_piped(&self, prefix: &[&str], extra: &[(&str, &str)]) -> (Child, String) {
        self.serve(prefix, extra, Stdio::piped())
    }

    fn serve(&self, prefix: &[&str], extra: &[(&str, &str)], stderr: Stdio) -> (Child, String) {
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(parafa_bin());
                c
            }
            None => Command::new(parafa_bin()),
        };
        let mut child = command
            .arg("serve")
            .env_remove("SOFTHSM2_CONF")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
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
            Ok(base) => (child, base),
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                panic!("parafa serve ({prefix:?}) did not start within 120 s (exit status {status:?})");
            }
        }
    }

    /// Stops the server (SIGKILL: nothing may depend on a graceful stop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The environment the server runs with (to run the CLI against the same data).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `parafa <args>` against this server's data directory and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(parafa_bin())
            .args(args)
            .env_remove("SOFTHSM2_CONF")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PARAFA_LOG", "error")
            .output()
            .expect("run parafa")
    }

    /// `parafa <args>`, which must succeed; returns its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "parafa {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Creates a ready holder (2FA on) through the CLI and returns what it printed, parsed.
    pub fn create_holder(&self, email: &str, key: &str, package: u8) -> Holder {
        self.create_holder_with(email, key, package, true)
    }

    /// As [`TestApp::create_holder`], choosing whether login asks for the TOTP code.
    pub fn create_holder_with(&self, email: &str, key: &str, package: u8, two_factor: bool) -> Holder {
        self.create_holder_named(email, "Ana Maria Popescu", key, package, two_factor, &[])
    }

    /// As [`TestApp::create_holder_with`], with the holder's name and more `admin holder create` options.
    pub fn create_holder_named(
        &self,
        email: &str,
        name: &str,
        key: &str,
        package: u8,
        two_factor: bool,
        extra: &[&str],
    ) -> Holder {
        let package = package.to_string();
        let mut args = vec![
            "admin",
            "holder",
            "create",
            "--email",
            email,
            "--name",
            name,
            "--phone",
            "+40712345678",
            "--password",
            HOLDER_PASSWORD,
            "--package",
            &package,
            "--key",
            key,
        ];
        if !two_factor {
            args.push("--no-2fa");
        }
        args.extend_from_slice(extra);
        let mut holder = Holder::parse(&self.cli_ok(&args));
        holder.email = email.to_owned();
        holder.two_factor = two_factor;
        holder
    }

    /// An account with its TOTP pairing (login asks for the code when `two_factor`), without a certificate: it
    /// orders one.
    pub fn create_account(&self, email: &str, two_factor: bool) -> Holder {
        let mut args = vec![
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
            "--no-certificate",
        ];
        if !two_factor {
            args.push("--no-2fa");
        }
        let out = self.cli_ok(&args);
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
                .to_owned()
        };
        Holder {
            email: email.to_owned(),
            two_factor,
            user_id: field("user_id"),
            credential_id: String::new(),
            certificate_serial: String::new(),
            totp_secret: field("totp_secret"),
            otpauth: field("otpauth"),
            transactions: 0,
        }
    }

    /// An operator (2FA on) created with the CLI.
    pub fn create_operator(&self, email: &str) -> Holder {
        let out = self.cli_ok(&[
            "admin",
            "operator",
            "create",
            "--email",
            email,
            "--name",
            "Oana Operator",
            "--phone",
            "+40722000999",
            "--password",
            HOLDER_PASSWORD,
        ]);
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
                .to_owned()
        };
        Holder {
            email: email.to_owned(),
            two_factor: true,
            user_id: field("user_id"),
            credential_id: String::new(),
            certificate_serial: String::new(),
            totp_secret: field("totp_secret"),
            otpauth: field("otpauth"),
            transactions: 0,
        }
    }

    /// Logs in on the web API (`POST /api/v1/session`, with a fresh TOTP code when 2FA is on) and returns the
    /// `Cookie` header value.
    pub fn web_login(&self, holder: &Holder) -> String {
        let mut body = serde_json::json!({"email": holder.email, "password": HOLDER_PASSWORD});
        if holder.two_factor {
            body["totp"] = serde_json::json!(self.fresh_totp(holder));
        }
        let r = self
            .client
            .post(self.url("/api/v1/session"))
            .json(&body)
            .send()
            .expect("login");
        assert_eq!(r.status(), 200, "web login failed");
        r.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("cookie value")
            .to_owned()
    }

    /// Gives the first-login consents a holder made by the CLI has not given yet (allowing access, the current
    /// privacy notice), as the consent screen does: the pages send a holder there until both are given.
    pub fn consent(&self, cookie: &str) {
        for kind in ["access", "privacy_notice"] {
            let (s, out) = self.call(
                "POST",
                "/api/v1/me/consents",
                Some(cookie),
                Some(serde_json::json!({"kind": kind, "granted": true})),
            );
            assert!(s == 200 || s == 201, "consent {kind}: {s} {out}");
        }
    }

    /// The id of the identification session of `order` in the operator's queue (`op`: an operator's cookie).
    pub fn session_under_review(&self, op: &str, order: &str) -> String {
        let (s, q) = self.call("GET", "/api/v1/operator/identity-sessions", Some(op), None);
        assert_eq!(s, 200, "{q}");
        q["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|x| x["order_id"] == order)
            .unwrap_or_else(|| panic!("order {order} not in the queue: {q}"))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// A JSON call on the web API with a session cookie (`None`: anonymous): status and JSON answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = match method {
            "POST" => self.client.post(self.url(path)),
            "DELETE" => self.client.delete(self.url(path)),
            _ => self.client.get(self.url(path)),
        };
        if let Some(c) = cookie {
            req = req.header("Cookie", c).header("X-CSRF-Token", csrf_for(c));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().expect("request");
        (r.status().as_u16(), r.json().unwrap_or(serde_json::Value::Null))
    }

    /// `parafa_password_verifications_total` of this server, from `/metrics`: the Argon2 checks it made.
    pub fn password_verifications(&self) -> u64 {
        let text = self.get("/metrics").text().expect("metrics");
        text.lines()
            .find_map(|l| l.strip_prefix("parafa_password_verifications_total "))
            .unwrap_or_else(|| panic!("no parafa_password_verifications_total in /metrics:\n{text}"))
            .trim()
            .parse()
            .expect("a count")
    }

    /// The file holding the server's clock offset in seconds (the server and the CLI reread it at every reading).
    pub fn clock_file(&self) -> PathBuf {
        PathBuf::from(
            &self
                .env
                .iter()
                .find(|(k, _)| k == "PARAFA_TEST_CLOCK_FILE")
                .expect("clock file")
                .1,
        )
    }

    /// The server's clock offset in seconds (moved by [`TestApp::advance_clock`]).
    pub fn clock_offset(&self) -> i64 {
        std::fs::read_to_string(self.clock_file())
            .expect("clock file")
            .trim()
            .parse()
            .expect("offset")
    }

    /// Moves the server's clock (and the CLI's) forward by `secs`.
    pub fn advance_clock(&self, secs: i64) {
        let file = self.clock_file().display().to_string();
        // Write and rename: the server rereads the file on every reading of the clock and must never see it empty.
        let tmp = format!("{file}.tmp");
        std::fs::write(&tmp, (self.clock_offset() + secs).to_string()).expect("write clock file");
        std::fs::rename(&tmp, &file).expect("replace clock file");
    }

    /// The server's current time (Unix seconds).
    pub fn now(&self) -> i64 {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64;
        secs + self.clock_offset()
    }

    /// A TOTP code of a time step the holder has not used yet: the clock moves on by one step (30 s) first, as if
    /// the holder waited for the next code of the authenticator app.
    pub fn fresh_totp(&self, holder: &Holder) -> String {
        self.advance_clock(30);
        totp_code(&holder.totp_secret, self.now())
    }

    /// A CSC access token for the holder (HTTP Basic; the TOTP code in X-Parafa-OTP when 2FA is on).
    pub fn login(&self, holder: &Holder) -> String {
        let mut req = self
            .client
            .post(self.url("/csc/v2/auth/login"))
            .basic_auth(&holder.email, Some(HOLDER_PASSWORD));
        if holder.two_factor {
            req = req.header("X-Parafa-OTP", self.fresh_totp(holder));
        }
        let resp = req.send().expect("login");
        assert_eq!(resp.status(), 200, "login failed: {:?}", resp.text());
        let body: serde_json::Value = resp.json().expect("login json");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// POSTs a JSON body to a CSC method with a bearer token; returns the status and the JSON answer.
    pub fn csc(&self, path: &str, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .expect("POST");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    /// `parafa admin credential ID`, as name → value.
    pub fn credential_state(&self, credential_id: &str) -> std::collections::HashMap<String, String> {
        self.cli_ok(&["admin", "credential", credential_id])
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Transactions used and signatures recorded for a credential.
    pub fn books(&self, credential_id: &str) -> (i64, i64) {
        let s = self.credential_state(credential_id);
        (
            s["quota_used"].parse().expect("quota_used"),
            s["signatures_recorded"].parse().expect("signatures_recorded"),
        )
    }

    /// The messages the server "sent" to a recipient (e-mail address or phone number), oldest first, as the
    /// text files of the outbox. Waits up to 10 s for there to be at least `at_least` of them.
    pub fn messages_to(&self, recipient: &str, at_least: usize) -> Vec<String> {
        let dir = self.data_dir.join("outbox");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.retain(|p| p.extension().is_some_and(|x| x == "txt"));
            files.sort();
            let found: Vec<String> = files
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .filter(|t| t.starts_with(&format!("To: {recipient}\n")))
                .collect();
            if found.len() >= at_least || std::time::Instant::now() > deadline {
                assert!(
                    found.len() >= at_least,
                    "expected {at_least} messages to {recipient}, found {}",
                    found.len()
                );
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The messages to a recipient once one of them is of `kind` (`Kind:` in the outbox file; waits up to 10 s),
    /// oldest first: for a test that waits for one message among others whose number it need not know.
    pub fn messages_once_kind(&self, recipient: &str, kind: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.messages_to(recipient, 0);
            if all.iter().any(|m| m.contains(&format!("\nKind: {kind}\n"))) {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {kind} message to {recipient} among {} messages",
                all.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The newest message to a recipient, once there are `count`.
    pub fn message(&self, recipient: &str, count: usize) -> String {
        self.messages_to(recipient, count).pop().expect("a message")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A page in a language (`Accept-Language`), with a session cookie or without: the status (redirects
    /// followed) and the body.
    pub fn page(&self, path: &str, lang: &str, cookie: Option<&str>) -> (u16, String) {
        let mut req = self.client.get(self.url(path)).header("Accept-Language", lang);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let r = req.send().expect("GET");
        (r.status().as_u16(), r.text().expect("body"))
    }

    /// As [`TestApp::page`] without following redirects: the status, the `Location` (empty without one) and the
    /// body — to see a page's 303s.
    pub fn page_unfollowed(&self, path: &str, lang: &str, cookie: Option<&str>) -> (u16, String, String) {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let mut req = client.get(self.url(path)).header("Accept-Language", lang);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let r = req.send().expect("GET");
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("location").to_owned())
            .unwrap_or_default();
        (r.status().as_u16(), location, r.text().expect("body"))
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client.get(self.url(path)).send().expect("GET")
    }

    /// The SoftHSM2 configuration the server wrote.
    pub fn softhsm_conf(&self) -> PathBuf {
        self.data_dir.join("softhsm2.conf")
    }

    /// The public key of a holder certificate (by serial) as a PEM file, for `openssl pkeyutl -verify`.
    pub fn holder_public_key(&self, serial: &str) -> PathBuf {
        let cert = self.data_dir.join(format!("holder-{serial}.pem"));
        std::fs::write(&cert, self.cli_ok(&["admin", "cert", serial])).expect("write certificate");
        let pem = run_ok(
            "openssl",
            &["x509", "-in", cert.to_str().expect("path"), "-pubkey", "-noout"],
        );
        let path = self.data_dir.join(format!("holder-{serial}-pub.pem"));
        std::fs::write(&path, pem).expect("write public key");
        path
    }

    /// The token's user PIN from the generated secrets file.
    pub fn user_pin(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.join("hsm-secrets.toml")).expect("secrets file");
        let v: toml::Value = toml::from_str(&text).expect("secrets toml");
        v["user_pin"].as_str().expect("user_pin").to_owned()
    }

    /// Writes the CA certificates as PEM into the data directory and returns (root, issuing) paths.
    pub fn ca_pems(&self) -> (PathBuf, PathBuf) {
        let root = self.data_dir.join("root.pem");
        let issuing = self.data_dir.join("issuing.pem");
        std::fs::write(&root, self.cli_ok(&["admin", "cert", "root"])).expect("write root");
        std::fs::write(&issuing, self.cli_ok(&["admin", "cert", "issuing"])).expect("write issuing");
        (root, issuing)
    }

    /// Our root and issuing CA certificates in one PEM file (what `-CAfile` wants).
    pub fn chain_pem(&self) -> PathBuf {
        let (root, issuing) = self.ca_pems();
        let chain = self.data_dir.join("chain.pem");
        let pem = std::fs::read_to_string(root).expect("root") + &std::fs::read_to_string(issuing).expect("issuing");
        std::fs::write(&chain, pem).expect("write chain");
        chain
    }

    /// `openssl cms -verify` of a DER `.p7s` against our chain at the server's time (`content` for a detached
    /// signature): whether it verifies, and the content openssl gives back.
    pub fn cms_verify(&self, p7s: &[u8], content: Option<&[u8]>) -> (bool, Vec<u8>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sig, content_file) = (dir.path().join("f.p7s"), dir.path().join("content"));
        std::fs::write(&sig, p7s).expect("write p7s");
        if let Some(c) = content {
            std::fs::write(&content_file, c).expect("write content");
        }
        match openssl_cms_verify(
            &sig,
            &self.chain_pem(),
            content.map(|_| content_file.as_path()),
            Some(self.now()),
        ) {
            Ok(back) => (true, back),
            Err(_) => (false, Vec::new()),
        }
    }

    /// `openssl ts -verify` of a DER TimeStampToken over `data` against our chain at the server's time: whether it
    /// printed "Verification: OK", and what it printed.
    pub fn ts_verify(&self, data: &[u8], token: &[u8]) -> (bool, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let chain = self.chain_pem();
        let (data_file, ts_file) = (dir.path().join("data"), dir.path().join("ts.der"));
        std::fs::write(&data_file, data).expect("write data");
        std::fs::write(&ts_file, token).expect("write token");
        let at = self.now().to_string();
        let out = run(
            "openssl",
            &[
                "ts",
                "-verify",
                "-data",
                data_file.to_str().unwrap(),
                "-in",
                ts_file.to_str().unwrap(),
                "-token_in",
                "-CAfile",
                chain.to_str().unwrap(),
                "-attime",
                &at,
            ],
            &[],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && text.contains("Verification: OK"), text)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The server goes first, so the database can be dropped after it.
        self.stop();
        self._pg.take();
    }
}

/// The first run of six digits in a message (an SMS or e-mail code).
pub fn code_in(message: &str) -> String {
    let body = message.split_once("\n\n").map(|(_, b)| b).unwrap_or(message);
    let bytes = body.as_bytes();
    (0..bytes.len().saturating_sub(5))
        .find(|&i| {
            bytes[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_digit())
                && bytes.get(i + 6).is_none_or(|b| !b.is_ascii_digit())
        })
        .map(|i| body[i..i + 6].to_owned())
        .unwrap_or_else(|| panic!("no code in {message}"))
}

/// The password of every holder the tests create.
pub const HOLDER_PASSWORD: &str = "correct horse battery staple";

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at a Unix time, computed by totp-rs.
pub fn totp_code(secret_b32: &str, unix_time: i64) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    totp.generate(unix_time as u64)
}

/// What `parafa admin holder create` printed.
#[derive(Debug, Clone)]
pub struct Holder {
    pub email: String,
    pub two_factor: bool,
    pub user_id: String,
    pub credential_id: String,
    pub certificate_serial: String,
    pub totp_secret: String,
    pub otpauth: String,
    pub transactions: i64,
}

impl Holder {
    pub fn parse(out: &str) -> Holder {
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
                .to_owned()
        };
        Holder {
            email: String::new(),
            two_factor: true,
            user_id: field("user_id"),
            credential_id: field("credential_id"),
            certificate_serial: field("certificate_serial"),
            totp_secret: field("totp_secret"),
            otpauth: field("otpauth"),
            transactions: field("transactions").parse().expect("transactions"),
        }
    }
}

/// The test PostgreSQL server's URL, when PostgreSQL suites are enabled. When the variable is set, the server
/// must be reachable: the test fails rather than skips.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("PARAFA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: PARAFA_TEST_POSTGRES_URL is not set, so this PostgreSQL test did not run");
            None
        }
    }
}

/// A fresh database created for one test on the test PostgreSQL server, dropped at the end.
#[derive(Debug)]
pub struct FreshPostgres {
    pub url: String,
    name: String,
    admin_url: String,
}

impl FreshPostgres {
    /// Creates the database; `None` when PostgreSQL suites are not enabled; panics when the server is unreachable.
    pub fn create() -> Option<FreshPostgres> {
        let admin_url = postgres_admin_url()?;
        let name = format!("parafa_test_{}", uuid::Uuid::new_v4().simple());
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

/// Runs one SQL statement on a PostgreSQL server with sqlx; panics (fails the test) when unreachable. It runs on a
/// thread of its own, so it works from synchronous and from async tests alike.
pub fn psql(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| {
                format!("PostgreSQL at {url} is unreachable ({e}); PARAFA_TEST_POSTGRES_URL is set, so this fails")
            })?;
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

/// Runs an outside program; returns its output (status not checked).
pub fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (make test installs it)"))
}

/// Runs an outside program that must succeed; returns stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args, &[]);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `openssl pkeyutl -verify` accepts `signature` over `digest` with a PEM public key (and `-pkeyopt`s).
pub fn openssl_verifies(public_key: &Path, digest: &[u8], signature: &[u8], opts: &[&str]) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let (d, s) = (dir.path().join("digest"), dir.path().join("signature"));
    std::fs::write(&d, digest).expect("write digest");
    std::fs::write(&s, signature).expect("write signature");
    let mut args = vec![
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        public_key.to_str().expect("path"),
        "-in",
        d.to_str().expect("path"),
        "-sigfile",
        s.to_str().expect("path"),
    ];
    for o in opts {
        args.extend(["-pkeyopt", o]);
    }
    run("openssl", &args, &[]).status.success()
}

/// The CSRF token a page of the session in `cookie` ("parafa_session=…", or the bare token) carries in its
/// `<meta name="csrf-token">` and its login answer's `csrf_token`: state-changing requests made with the cookie
/// send it in `X-CSRF-Token` (tests/api/web.rs checks the pages and the login answer agree with this).
pub fn csrf_for(cookie: impl AsRef<str>) -> String {
    let cookie = cookie.as_ref();
    let token = cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("parafa_session="))
        .unwrap_or(cookie);
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("parafa-csrf\0{token}")))
}

/// A page has no inline script, event handler or style attribute (the Content-Security-Policy would block them):
/// every `<script>` loads a file from `/static/`.
pub fn assert_no_inline(path: &str, html: &str) {
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').expect("a script tag")];
        assert!(tag.contains("src=\"/static/"), "{path}: inline script: <script{tag}>");
    }
    assert!(
        !html.contains(" onclick=") && !html.contains(" style=\""),
        "{path}: inline handler or style"
    );
}

/// `openssl cms -verify` of a DER `.p7s` against the CA file `ca` (with `-content` when detached, at Unix time `at`
/// when given): the content it gives back, or what it printed on failure.
pub fn openssl_cms_verify(
    p7s: &Path,
    ca: &Path,
    detached_content: Option<&Path>,
    at: Option<i64>,
) -> Result<Vec<u8>, String> {
    let out_file = p7s.with_extension("out");
    let _ = std::fs::remove_file(&out_file);
    let at = at.map(|t| t.to_string());
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        p7s.to_str().expect("UTF-8 path"),
        "-CAfile",
        ca.to_str().expect("UTF-8 path"),
        "-purpose",
        "any",
        "-out",
        out_file.to_str().expect("UTF-8 path"),
    ];
    if let Some(t) = &at {
        args.extend(["-attime", t]);
    }
    if let Some(content) = detached_content {
        args.extend(["-content", content.to_str().expect("UTF-8 path")]);
    }
    let out = run("openssl", &args, &[]);
    if out.status.success() {
        Ok(std::fs::read(&out_file).expect("verified content"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A Unix time as the pages and messages write it in `lang` (`ro`, `en`): `7 decembrie 2026, 14:05 (ora României)`.
/// The Bucharest time comes from the system's time-zone database through GNU `date` (tzdata), not from the
/// server's bundled one: an outside judge of the conversion.
pub fn bucharest_time(secs: i64, lang: &str) -> String {
    let o = Command::new("date")
        .env("TZ", "Europe/Bucharest")
        .args(["-d", &format!("@{secs}"), "+%Y %m %d %H %M"])
        .output()
        .expect("date");
    assert!(o.status.success(), "date: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let f: Vec<&str> = out.split_whitespace().collect();
    let zone = if lang == "ro" { "ora României" } else { "Romanian time" };
    let date = long_date(
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        lang,
    );
    format!("{date}, {}:{} ({zone})", f[3], f[4])
}

/// A calendar date as the pages and messages write it in `lang` (`ro`, `en`): `7 decembrie 2026`, `7 December 2026`.
pub fn long_date(year: i32, month: usize, day: u32, lang: &str) -> String {
    const RO: [&str; 12] = [
        "ianuarie",
        "februarie",
        "martie",
        "aprilie",
        "mai",
        "iunie",
        "iulie",
        "august",
        "septembrie",
        "octombrie",
        "noiembrie",
        "decembrie",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let months = if lang == "ro" { RO } else { EN };
    format!("{day} {} {year}", months[month - 1])
}
