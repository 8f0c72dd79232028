//! The desktop companion's test setup (issue 17), shared by its tests: the `parafa-token` binary, a holder with the
//! desktop app registered, and a login through the holder's browser (played here: the consent page's "Allow", then
//! the redirect to the companion's loopback listener).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use serde_json::json;

use super::{Holder, TestApp};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The newest modification time under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        let m = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).unwrap_or(t)
        };
        t = t.max(m);
    }
    t
}

/// The `parafa-token` binary, beside `parafa` (another workspace member's binary has no `CARGO_BIN_EXE_`): `make
/// test` builds it with the workspace's binaries; when it is missing or older than its sources (a bare `cargo
/// nextest run`), it is built here.
pub fn token_bin() -> PathBuf {
    let bin = Path::new(super::parafa_bin())
        .parent()
        .expect("target dir")
        .join("parafa-token");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if built.is_none_or(|b| b < newest(&root().join("token"))) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", "parafa-token", "--bin", "parafa-token"])
            .current_dir(root())
            .output()
            .expect("cargo build -p parafa-token");
        assert!(
            out.status.success(),
            "cargo build -p parafa-token:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// The agent's socket for the configuration under `config` (in `config/run`, made 0700).
pub fn socket(config: &Path) -> PathBuf {
    let dir = config.join("run");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .expect("socket dir");
    dir.join("agent.sock")
}

/// `parafa-token <args>` with its configuration under `config` and its own agent socket, nothing from the
/// environment that would change what it does (a display, a prompt program, another agent).
pub fn token(config: &Path) -> Command {
    let mut c = Command::new(token_bin());
    c.env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .env("PARAFA_TOKEN_SOCKET", socket(config));
    for v in [
        "PARAFA_TOKEN_CLIENT_ID",
        "PARAFA_TOKEN_PINENTRY",
        "PARAFA_TOKEN_AGENT_IDLE",
        "PARAFA_TOKEN_STORE",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        // No keyring of the machine's: the file, unless a test starts its own Secret Service.
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

pub fn run(mut c: Command, args: &[&str]) -> Output {
    c.args(args).output().expect("run parafa-token")
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A holder logged in on the web with their consents given, and the desktop app registered by the operator as a
/// public client with a loopback redirect (any port) and scope service: (holder, session cookie, client id).
pub fn holder_and_desktop_client(app: &TestApp, email: &str) -> (Holder, String, String) {
    let holder = app.create_holder(email, "rsa2048", 1);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let out = app.cli_ok(&[
        "admin",
        "oauth-client",
        "create",
        "--name",
        "Parafa Token",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--public",
        "--scope",
        "service",
    ]);
    let client_id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .expect("client_id")
        .to_owned();
    assert!(!out.contains("client_secret"), "a public client has no secret: {out}");
    (holder, cookie, client_id)
}

/// `parafa-token login` with its configuration under `config`, the holder (logged in on the web with `cookie`)
/// allowing the app in their browser.
pub fn log_in(app: &TestApp, config: &Path, cookie: &str, client_id: &str) {
    log_in_with(app, config, cookie, client_id, &[])
}

/// [`log_in`] with more environment for `parafa-token` (a session bus).
pub fn log_in_with(app: &TestApp, config: &Path, cookie: &str, client_id: &str, env: &[(&str, &str)]) {
    let mut login = token(config)
        .envs(env.iter().copied())
        .args(["login", "--no-browser", "--server", &app.base, "--client-id", client_id])
        .args(["--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn login");
    let mut lines = BufReader::new(login.stdout.take().expect("stdout")).lines();
    let url = lines.next().expect("a line").expect("utf-8");
    let query = url
        .strip_prefix("open: ")
        .and_then(|u| u.split_once('?'))
        .map(|(_, q)| q.to_owned())
        .unwrap_or_else(|| panic!("an `open: URL` line: {url}"));
    let (status, answer) = app.call(
        "POST",
        "/oauth2/authorize",
        Some(cookie),
        Some(json!({ "query": query, "decision": "allow" })),
    );
    assert_eq!(status, 200, "{answer}");
    let redirect = answer["redirect"].as_str().expect("redirect");
    let page = app.client.get(redirect).send().expect("the loopback listener");
    assert_eq!(page.status(), 200);
    let out = login.wait_with_output().expect("login exit");
    assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
}
