//! The desktop companion's test setup (issue 17), shared by its tests: the `parafa-token` binary and the PKCS#11
//! module `libparafa_pkcs11.so` built beside the server, a holder with the desktop app registered, a login through
//! the holder's browser (played here: the consent page's "Allow", then the redirect to the companion's loopback
//! listener), and the holder's computer ([`Desktop`]) with its agent, for the judges of the virtual token.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

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

/// A product of another workspace member (which gets no `CARGO_BIN_EXE_`), beside `parafa`: `make test` builds it
/// with the workspace; when it is missing or older than its sources (a bare `cargo nextest run`), it is built here
/// with `cargo build -p <package>`.
fn workspace_product(file: &str, package: &str, sources: &[&str]) -> PathBuf {
    let path = Path::new(super::parafa_bin()).parent().expect("target dir").join(file);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let sources = sources.iter().map(|d| newest(&root().join(d))).max();
    if built.is_none_or(|b| sources.is_some_and(|s| b < s)) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", package])
            .current_dir(root())
            .output()
            .expect("cargo build");
        assert!(
            out.status.success(),
            "cargo build -p {package}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// The `parafa-token` program (`token/`).
pub fn token_bin() -> PathBuf {
    workspace_product("parafa-token", "parafa-token", &["token/src", "token/proto"])
}

/// The PKCS#11 module (`token/pkcs11/`).
pub fn pkcs11_module() -> PathBuf {
    workspace_product("libparafa_pkcs11.so", "parafa-pkcs11", &["token/pkcs11", "token/proto"])
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
    let (cookie, client_id) = desktop_client(app, &holder);
    (holder, cookie, client_id)
}

/// A holder logged in on the web with their consents given, and the desktop app registered by the operator as a
/// public client with a loopback redirect (any port) and scope service: (session cookie, client id).
pub fn desktop_client(app: &TestApp, holder: &Holder) -> (String, String) {
    let cookie = app.web_login(holder);
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
    (cookie, client_id)
}

/// `parafa-token login` with its configuration under `config`, the holder (logged in on the web with `cookie`)
/// allowing the app in their browser.
pub fn log_in(app: &TestApp, config: &Path, cookie: &str, client_id: &str) {
    log_in_with(app, token(config), cookie, client_id)
}

/// As [`log_in`], with `command` the `parafa-token` to run (its environment set).
pub fn log_in_with(app: &TestApp, mut command: Command, cookie: &str, client_id: &str) {
    let mut login = command
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

/// What the test prompt program answers (`tests/desktop/pinentry-test`, `PARAFA_TEST_PINENTRY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The holder's current code, computed from their secret at the server's clock moved on by one step.
    Ok,
    /// A wrong code.
    Wrong,
    /// The holder cancels.
    Cancel,
}

impl Prompt {
    fn mode(self) -> &'static str {
        match self {
            Prompt::Ok => "ok",
            Prompt::Wrong => "wrong",
            Prompt::Cancel => "cancel",
        }
    }
}

/// The holder's computer: a home directory (configuration, NSS database, runtime directory), the companion logged
/// in there, and the agent, which the tests start and stop themselves (the module would start one on demand). Every
/// process started with [`Desktop::command`] carries the same environment, so the module in it finds this agent.
pub struct Desktop {
    /// `HOME`; `XDG_CONFIG_HOME` is `home/.config`.
    pub home: PathBuf,
    /// The agent's socket (`PARAFA_TOKEN_SOCKET`).
    pub socket: PathBuf,
    /// Where the test prompt program appends each description it was shown.
    pub prompt_file: PathBuf,
    /// A directory for the test's own files (documents, signatures, databases).
    pub work: PathBuf,
    /// The session cookie of the holder's browser.
    pub cookie: String,
    env: Vec<(String, String)>,
    agent: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Desktop {
    /// A computer where `holder` logged in to `app` with `parafa-token login` (the browser's part played here).
    pub fn logged_in(app: &TestApp, holder: &Holder) -> Desktop {
        let (cookie, client_id) = desktop_client(app, holder);
        let dir = tempfile::Builder::new()
            .prefix("parafa-desktop-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        let work = dir.path().join("work");
        for d in [&home.join(".config"), &runtime, &work] {
            std::fs::create_dir_all(d).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let socket = runtime.join("parafa-token/agent.sock");
        let prompt_log = dir.path().join("prompts.log");
        let path = |p: &Path| p.display().to_string();
        let env = vec![
            ("HOME".to_owned(), path(&home)),
            ("XDG_CONFIG_HOME".to_owned(), path(&home.join(".config"))),
            ("XDG_RUNTIME_DIR".to_owned(), path(&runtime)),
            ("PARAFA_TOKEN_SOCKET".to_owned(), path(&socket)),
            ("PARAFA_TOKEN_AGENT".to_owned(), path(&token_bin())),
            (
                "PARAFA_TOKEN_PINENTRY".to_owned(),
                path(&root().join("tests/desktop/pinentry-test")),
            ),
            ("PARAFA_TEST_TOTP_SECRET".to_owned(), holder.totp_secret.clone()),
            ("PARAFA_TEST_CLOCK_FILE".to_owned(), path(&app.clock_file())),
            ("PARAFA_TEST_PINENTRY_LOG".to_owned(), path(&prompt_log)),
            ("PARAFA_TEST_PINENTRY_MODE".to_owned(), "ok".to_owned()),
            // An agent the module starts on demand ends by itself soon after the test.
            ("PARAFA_TOKEN_AGENT_IDLE".to_owned(), "120".to_owned()),
        ];
        let desktop = Desktop {
            home,
            socket,
            prompt_file: prompt_log,
            work,
            cookie,
            env,
            agent: None,
            _dir: dir,
        };
        log_in_with(app, desktop.command(token_bin()), &desktop.cookie, &client_id);
        desktop
    }

    /// `program` with this computer's environment, no display (the prompt is the test program), and the standard
    /// input closed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SOFTHSM2_CONF")
            .env_remove("PARAFA_TOKEN_CLIENT_ID")
            .stdin(Stdio::null());
        c
    }

    /// The value of one of this computer's variables.
    pub fn var(&self, name: &str) -> &str {
        &self.env.iter().find(|(k, _)| k == name).expect("a desktop variable").1
    }

    /// Starts the agent (`parafa-token agent`, in the foreground, a child of the test) with the prompt program
    /// answering as `prompt`, and waits until its socket answers. A running one is stopped first.
    pub fn start_agent(&mut self, prompt: Prompt) {
        self.start_agent_with(&[("PARAFA_TEST_PINENTRY_MODE", prompt.mode())]);
    }

    /// As [`Desktop::start_agent`], with other variables (another prompt program, none: `PARAFA_TOKEN_PINENTRY`
    /// empty).
    pub fn start_agent_with(&mut self, vars: &[(&str, &str)]) {
        self.stop_agent();
        let mut c = self.command(token_bin());
        c.args(["agent", "--idle", "300"])
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.agent = Some(c.spawn().expect("spawn parafa-token agent"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.agent.as_mut().and_then(|a| a.try_wait().ok().flatten()) {
                panic!("parafa-token agent exited at once: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the agent's socket did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the agent the test started (SIGKILL: it gets no chance to tidy up), and any the module started for
    /// this computer.
    pub fn stop_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        kill_processes_with_env("PARAFA_TOKEN_SOCKET", self.var("PARAFA_TOKEN_SOCKET"));
    }

    /// Whether the agent the test started is still running.
    pub fn agent_running(&mut self) -> bool {
        self.agent
            .as_mut()
            .is_some_and(|a| a.try_wait().ok().flatten().is_none())
    }

    /// The descriptions of the prompt's windows, oldest first (the prompt program logs each description, and each
    /// SETERROR and MESSAGE after it, as one entry ending with a line `--`).
    pub fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.prompt_file)
            .unwrap_or_default()
            .split("\n--\n")
            .filter(|e| !e.is_empty() && !e.starts_with("SETERROR ") && *e != "MESSAGE")
            .map(str::to_owned)
            .collect()
    }

    /// Everything the prompt program logged: the descriptions, the SETERRORs and the MESSAGEs.
    pub fn prompt_log(&self) -> String {
        std::fs::read_to_string(&self.prompt_file).unwrap_or_default()
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_agent();
    }
}

/// Kills (SIGKILL) the `parafa-token` processes whose environment has `name=value`: the agents the module started
/// for one test's computer (each test's socket path is its own). Their prompt programs end with them (their input
/// closes).
pub fn kill_processes_with_env(name: &str, value: &str) {
    let wanted = format!("{name}={value}");
    let program = std::fs::canonicalize(token_bin()).expect("parafa-token");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(p.path().join("exe")).ok().as_deref() != Some(program.as_path()) {
            continue;
        }
        let Ok(environ) = std::fs::read(p.path().join("environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}
