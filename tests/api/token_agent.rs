//! The desktop token's agent (`parafa-token agent`, issue 17) against the real server, spoken to as the PKCS#11
//! module speaks to it (`parafa_token_proto::call` on its socket): the holder's credential with its chain, a
//! signature per code that openssl verifies against the holder's certificate, the refusals (a wrong code, a code
//! used twice), the prompt through the tests' pinentry program (`tests/desktop/pinentry-test`: right code, wrong
//! codes, cancel; none at all), one agent per user, `--daemon`, idling out, and `logout` ending the agent.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::desktop::{holder_and_desktop_client, log_in, log_in_with, root, run, socket, text, token};
use common::TestApp;
use parafa_token_proto::{self as proto, ErrorKind, Request, Response, SignRequest, VERSION};
use sha2::{Digest, Sha256};

const RSA: &str = "1.2.840.113549.1.1.1";
const ECDSA: &str = "1.2.840.10045.2.1";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// A running agent (a child of the test), killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    /// `parafa-token agent` for the configuration under `config`, with more environment; waits until it answers.
    fn start(config: &Path, env: &[(&str, &str)]) -> Agent {
        let agent = Agent::spawn(config, env);
        agent.wait_until_it_answers();
        agent
    }

    fn spawn(config: &Path, env: &[(&str, &str)]) -> Agent {
        let mut c = token(config);
        c.args(["agent", "--idle", "0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Agent {
            child: c.spawn().expect("spawn the agent"),
            socket: socket(config),
        }
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while ping(&self.socket).is_none() {
            assert!(
                Instant::now() < deadline,
                "the agent did not answer on {}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most `secs`) for the agent to exit; its status.
    fn exits_within(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn call(&self, req: &Request) -> Response {
        proto::call(&self.socket, req, Duration::from_secs(120)).expect("the agent answers")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A detached agent (started with `--daemon`, not a child of the test): killed when dropped if it still answers on
/// its socket (no other process is ever signalled).
struct Detached {
    pid: u32,
    socket: PathBuf,
}

impl Drop for Detached {
    fn drop(&mut self) {
        if ping(&self.socket) == Some(self.pid) {
            let _ = Command::new("kill").args(["-9", &self.pid.to_string()]).status();
        }
    }
}

fn ping(socket: &Path) -> Option<u32> {
    match proto::call(socket, &Request::Ping { version: VERSION }, Duration::from_secs(5)) {
        Ok(Response::Pong { pid }) => Some(pid),
        _ => None,
    }
}

fn token_request() -> Request {
    Request::Token { version: VERSION }
}

fn sign_request(credential: &str, sign_algo: &str, digest: &[u8], code: Option<String>) -> Request {
    Request::Sign(SignRequest {
        version: VERSION,
        credential: credential.to_owned(),
        sign_algo: sign_algo.to_owned(),
        sign_algo_params: None,
        hash_algo: SHA256.to_owned(),
        hash: b64(digest),
        code,
        app: "agent-test (4242)".into(),
        purpose: None,
    })
}

fn signature(r: Response) -> Vec<u8> {
    match r {
        Response::Signature { signature } => base64::engine::general_purpose::STANDARD
            .decode(signature)
            .expect("base64 signature"),
        other => panic!("no signature: {other:?}"),
    }
}

fn error_kind(r: &Response) -> ErrorKind {
    match r {
        Response::Error { kind, .. } => *kind,
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn the_agent_lists_the_credential_and_signs_once_per_code() {
    let app = TestApp::spawn();
    let (holder, cookie, client_id) = holder_and_desktop_client(&app, "ana@example.com");
    let config = app.data_dir.join("desktop");
    log_in(&app, &config, &cookie, &client_id);
    let mut agent = Agent::start(&config, &[]);

    // Token: the account, labelled with the holder's name, and the credential with its chain.
    let Response::Token { account: Some(account) } = agent.call(&token_request()) else {
        panic!("no account")
    };
    assert_eq!(account.label, "Ana Maria Popescu");
    assert_eq!(account.server, app.base);
    let cred = account
        .credentials
        .iter()
        .find(|c| c.id == holder.credential_id)
        .expect("the holder's credential");
    assert_eq!(
        (cred.key_status.as_str(), cred.cert_status.as_str()),
        ("enabled", "valid")
    );
    assert!(cred.key_algos.iter().any(|a| a == RSA), "{:?}", cred.key_algos);
    assert_eq!(cred.key_len, 2048);
    assert!(
        cred.certificates.len() >= 2,
        "the signer's certificate and the CA chain"
    );
    let pem = app.cli_ok(&["admin", "cert", &holder.certificate_serial]);
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(cred.certificates[0], der, "the signer's certificate first");
    let issuing = app.cli_ok(&["admin", "cert", "issuing"]);
    let issuing: String = issuing.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(cred.certificates[1..].contains(&issuing), "the issuing CA in the chain");
    assert_eq!(cred.transactions_left, None, "Parafa's CSC answers do not tell it");

    // A signature with the holder's code, verified by openssl against the holder's certificate.
    let public_key = app.holder_public_key(&holder.certificate_serial);
    let digest = Sha256::digest(b"a document signed through the desktop agent").to_vec();
    let code = app.fresh_totp(&holder);
    let sig = signature(agent.call(&sign_request(&holder.credential_id, RSA, &digest, Some(code.clone()))));
    assert!(common::openssl_verifies(&public_key, &digest, &sig, &["digest:sha256"]));

    // The same code again, for another digest: refused (one code, one signature).
    let other = Sha256::digest(b"another document").to_vec();
    let r = agent.call(&sign_request(&holder.credential_id, RSA, &other, Some(code)));
    assert_eq!(error_kind(&r), ErrorKind::PinIncorrect, "{r:?}");

    // A wrong code: refused.
    let right = app.fresh_totp(&holder);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = agent.call(&sign_request(&holder.credential_id, RSA, &other, Some(wrong)));
    assert_eq!(error_kind(&r), ErrorKind::PinIncorrect, "{r:?}");
    // An unknown credential: the request is wrong.
    let r = agent.call(&sign_request(
        "no-such-credential",
        RSA,
        &other,
        Some(app.fresh_totp(&holder)),
    ));
    assert_eq!(error_kind(&r), ErrorKind::Invalid, "{r:?}");
    // One debit, for the one signature.
    assert_eq!(app.books(&holder.credential_id), (1, 1));

    // `status` goes through the agent.
    let out = run(token(&config), &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains("agent: running (pid"), "{printed}");
    assert!(printed.contains("store: file "), "{printed}");
    assert!(
        printed.contains(&format!("- credential {}", holder.credential_id)),
        "{printed}"
    );
    assert!(printed.contains("holder: Ana Maria Popescu"), "{printed}");
    assert!(
        printed
            .to_ascii_lowercase()
            .contains(&format!("serial: {}", holder.certificate_serial.to_ascii_lowercase())),
        "{printed}"
    );
    assert!(printed.contains("status: valid"), "{printed}");
    assert!(printed.contains("sha256WithRSAEncryption"), "{printed}");

    // A new login while the agent runs: `login` tells the agent, which uses the new refresh token (the old one,
    // rotated away, would end the grant if it were used again) and still signs.
    log_in(&app, &config, &cookie, &client_id);
    let Response::Token { account: Some(_) } = agent.call(&token_request()) else {
        panic!("no account after a new login")
    };
    let digest = Sha256::digest(b"signed after a new login").to_vec();
    let code = app.fresh_totp(&holder);
    let sig = signature(agent.call(&sign_request(&holder.credential_id, RSA, &digest, Some(code))));
    assert!(common::openssl_verifies(&public_key, &digest, &sig, &["digest:sha256"]));

    // `logout` goes through the agent, which revokes the login and exits.
    let out = run(token(&config), &["logout"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("logged out of"),
        "{}",
        text(&out)
    );
    let status = agent.exits_within(10).expect("the agent exits after logout");
    assert!(status.success(), "{status:?}");
    assert!(!agent.socket.exists(), "the socket is removed");
    assert!(!config.join("parafa-token/account.json").exists());
    // A new agent: nobody is logged in.
    let agent = Agent::start(&config, &[]);
    assert_eq!(agent.call(&token_request()), Response::Token { account: None });
}

/// The tests' pinentry for `holder`, in `mode`, logging to `log`.
fn pinentry_env(app: &TestApp, holder: &common::Holder, mode: &str, log: &Path) -> Vec<(String, String)> {
    vec![
        (
            "PARAFA_TOKEN_PINENTRY".into(),
            root().join("tests/desktop/pinentry-test").display().to_string(),
        ),
        ("PARAFA_TEST_PINENTRY_MODE".into(), mode.into()),
        ("PARAFA_TEST_PINENTRY_LOG".into(), log.display().to_string()),
        ("PARAFA_TEST_TOTP_SECRET".into(), holder.totp_secret.clone()),
        ("PARAFA_TEST_CLOCK_FILE".into(), app.clock_file().display().to_string()),
    ]
}

fn start_with(config: &Path, env: &[(String, String)]) -> Agent {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Agent::start(config, &env)
}

#[test]
fn the_agent_asks_the_holder_through_pinentry_when_no_code_comes() {
    let app = TestApp::spawn();
    let (_, _, client_id) = holder_and_desktop_client(&app, "rsa@example.com");
    // An EC holder this time (the desktop app registered above serves every holder).
    let holder = app.create_holder_named("ec@example.com", "Ioana Ecaterina Pop", "p256", 1, true, &[]);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let config = app.data_dir.join("desktop");
    log_in(&app, &config, &cookie, &client_id);
    let log = app.data_dir.join("pinentry.log");
    let digest = Sha256::digest(b"a document whose signer types the code in the prompt").to_vec();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();

    // ok: the holder types the right code; an ECDSA signature that openssl verifies.
    {
        let agent = start_with(&config, &pinentry_env(&app, &holder, "ok", &log));
        let sig = signature(agent.call(&sign_request(&holder.credential_id, ECDSA, &digest, None)));
        let public_key = app.holder_public_key(&holder.certificate_serial);
        assert!(common::openssl_verifies(&public_key, &digest, &sig, &[]));
        let said = std::fs::read_to_string(&log).expect("the prompt's log");
        assert!(said.contains("agent-test (4242) asks to sign"), "{said}");
        assert!(said.contains("Ioana Ecaterina Pop"), "{said}");
        assert!(said.contains(&holder.certificate_serial), "{said}");
        assert!(said.contains(&format!("Digest (SHA-256): {hex}")), "{said}");
        assert_eq!(said.matches("asks to sign").count(), 1, "one window: {said}");
    }

    // wrong: three codes refused, each re-asked with the server's reason, then pin_incorrect.
    std::fs::remove_file(&log).unwrap();
    {
        let agent = start_with(&config, &pinentry_env(&app, &holder, "wrong", &log));
        let r = agent.call(&sign_request(&holder.credential_id, ECDSA, &digest, None));
        assert_eq!(error_kind(&r), ErrorKind::PinIncorrect, "{r:?}");
        let said = std::fs::read_to_string(&log).unwrap();
        assert_eq!(said.matches("asks to sign").count(), 3, "three windows: {said}");
        assert_eq!(
            said.matches("SETERROR").count(),
            2,
            "the second and third say why: {said}"
        );
        assert!(said.contains("Try 3 of 3"), "{said}");
    }

    // cancel: the holder closes the window.
    std::fs::remove_file(&log).unwrap();
    {
        let agent = start_with(&config, &pinentry_env(&app, &holder, "cancel", &log));
        let r = agent.call(&sign_request(&holder.credential_id, ECDSA, &digest, None));
        assert_eq!(error_kind(&r), ErrorKind::Cancelled, "{r:?}");
    }

    // No prompt program and no display: no_prompt, and nothing asked.
    std::fs::remove_file(&log).unwrap();
    {
        let agent = Agent::start(&config, &[]);
        let r = agent.call(&sign_request(&holder.credential_id, ECDSA, &digest, None));
        assert_eq!(error_kind(&r), ErrorKind::NoPrompt, "{r:?}");
        // An empty code (a context login without a PIN) is no code: the prompt is needed.
        let r = agent.call(&sign_request(
            &holder.credential_id,
            ECDSA,
            &digest,
            Some(String::new()),
        ));
        assert_eq!(error_kind(&r), ErrorKind::NoPrompt, "{r:?}");
        assert!(!log.exists());
    }
    // The one signature was debited once.
    assert_eq!(app.books(&holder.credential_id), (1, 1));

    // A revoked credential: no code is asked; the holder is told why in a message window, and the module hears
    // `refused`, with or without a code.
    app.cli_ok(&["admin", "revoke", &holder.credential_id, "--reason", "key_compromise"]);
    {
        let agent = start_with(&config, &pinentry_env(&app, &holder, "ok", &log));
        let r = agent.call(&sign_request(&holder.credential_id, ECDSA, &digest, None));
        assert_eq!(error_kind(&r), ErrorKind::Refused, "{r:?}");
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(said.contains("revoked"), "{said}");
        assert!(said.contains("MESSAGE"), "{said}");
        assert!(!said.contains("asks to sign"), "no code asked: {said}");
        let r = agent.call(&sign_request(
            &holder.credential_id,
            ECDSA,
            &digest,
            Some(app.fresh_totp(&holder)),
        ));
        assert_eq!(error_kind(&r), ErrorKind::Refused, "{r:?}");
    }
    assert_eq!(app.books(&holder.credential_id), (1, 1));
}

#[test]
fn one_agent_answers_per_user_and_it_goes_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("desktop");
    std::fs::create_dir_all(&config).unwrap();
    let sock = socket(&config);

    // Two agents started at once: one answers, the other exits.
    let mut a = Agent::spawn(&config, &[]);
    let mut b = Agent::spawn(&config, &[]);
    a.wait_until_it_answers();
    let pid = ping(&sock).expect("an agent answers");
    let (winner, loser) = if pid == a.child.id() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(winner.child.id(), pid);
    let status = loser.exits_within(10).expect("the second agent exits");
    assert!(status.success(), "{status:?}");
    assert!(winner.exits_within(0).is_none(), "the first keeps answering");
    // Its socket and directory are the user's only; nobody is logged in.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(sock.parent().unwrap()), 0o700);
    assert_eq!(winner.call(&token_request()), Response::Token { account: None });
    let r = winner.call(&Request::Token { version: VERSION + 1 });
    assert_eq!(error_kind(&r), ErrorKind::Protocol);

    // Killed, it leaves its socket behind: the next agent replaces it. `--daemon` starts one detached, and returns
    // at once when one answers.
    winner.child.kill().unwrap();
    winner.child.wait().unwrap();
    assert!(sock.exists(), "a stale socket");
    assert!(ping(&sock).is_none());
    let out = token(&config)
        .args(["agent", "--daemon", "--idle", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let detached = Detached {
        pid: ping(&sock).expect("the detached agent answers"),
        socket: sock.clone(),
    };
    let started = Instant::now();
    let out = token(&config).args(["agent", "--daemon"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ping(&sock), Some(detached.pid), "the same agent");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Idle for 2 s: it removes its socket and exits.
    let deadline = Instant::now() + Duration::from_secs(15);
    while sock.exists() {
        assert!(Instant::now() < deadline, "the idle agent is still there");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ping(&sock).is_none());
    let log = std::fs::read_to_string(sock.parent().unwrap().join("agent.log")).unwrap();
    assert!(log.contains("idle for"), "{log}");
}

#[test]
fn install_registers_the_module_with_p11_kit_and_uninstall_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("desktop");
    let module = dir.path().join("lib").join("libparafa_pkcs11.so");
    std::fs::create_dir_all(module.parent().unwrap()).unwrap();
    std::fs::write(&module, b"a module").unwrap();

    let out = run(token(&config), &["install", "--module", module.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let file = config.join("pkcs11/modules/parafa.module");
    let written = std::fs::read_to_string(&file).expect("the p11-kit module file");
    let module = std::fs::canonicalize(&module).unwrap();
    assert!(
        written.lines().any(|l| l == format!("module: {}", module.display())),
        "{written}"
    );
    assert!(written.lines().any(|l| l == "critical: no"), "{written}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("modutil -dbdir"), "{said}");
    assert!(said.contains("library = "), "{said}");

    let out = run(
        token(&config),
        &["install", "--module", "/nonexistent/libparafa_pkcs11.so"],
    );
    assert!(!out.status.success(), "{}", text(&out));

    let out = run(token(&config), &["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!file.exists());
}

/// A private session bus with GNOME Keyring's Secret Service on it, its login collection unlocked (as a desktop
/// login leaves it); both killed when dropped.
struct Keyring {
    bus: Child,
    daemon: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Keyring {
    fn start() -> Keyring {
        let dir = tempfile::tempdir().unwrap();
        let (run_dir, home) = (dir.path().join("run"), dir.path().join("home"));
        use std::os::unix::fs::DirBuilderExt;
        for d in [&run_dir, &home] {
            std::fs::DirBuilder::new().mode(0o700).create(d).unwrap();
        }
        let bus_path = dir.path().join("bus");
        let address = format!("unix:path={}", bus_path.display());
        // A bus of its own configuration: no service directories, so that nothing is started on demand (the
        // machine's gnome-keyring would answer first, without the unlocked login collection).
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>{address}</listen>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n"
            ),
        )
        .unwrap();
        let bus = Command::new("dbus-daemon")
            .args(["--nofork", &format!("--config-file={}", config.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (make test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !bus_path.exists() {
            assert!(Instant::now() < deadline, "no session bus");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run_dir)
            .env("XDG_DATA_HOME", home.join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("keyring.log")).unwrap())
            .spawn()
            .expect("gnome-keyring-daemon (make test installs it)");
        // The login keyring's password, as PAM hands it over at a desktop login.
        let mut stdin = daemon.stdin.take().unwrap();
        stdin.write_all(b"the holder's desktop password").unwrap();
        drop(stdin);
        let keyring = Keyring {
            bus,
            daemon,
            address,
            _dir: dir,
        };
        // A busy machine (the suite's servers) may take its time.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let said = keyring.dbus(&["org.freedesktop.Secret.Service.ReadAlias", "string:default"]);
            if said.contains("collection/login") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no Secret Service on the bus: {said}\n{}",
                std::fs::read_to_string(keyring._dir.path().join("keyring.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        keyring
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SESSION_BUS_ADDRESS", self.address.as_str())]
    }

    /// A call to the Secret Service with `dbus-send`; its reply as text.
    fn dbus(&self, call: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
            ])
            .args(call)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("dbus-send (make test installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Secret Service's items of parafa-token, as `SearchItems` lists them.
    fn items(&self) -> String {
        self.dbus(&[
            "org.freedesktop.Secret.Service.SearchItems",
            "dict:string:string:application,parafa-token",
        ])
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for c in [&mut self.daemon, &mut self.bus] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_login_goes_to_the_secret_service_when_one_runs() {
    let keyring = Keyring::start();
    let app = TestApp::spawn();
    let (holder, cookie, client_id) = holder_and_desktop_client(&app, "keyring@example.com");
    let config = app.data_dir.join("desktop");
    let env = keyring.env();
    let mut login = token(&config);
    login.envs(env.iter().copied());
    log_in_with(&app, login, &cookie, &client_id);

    // The file names the server and the app; the refresh token is in the keyring.
    let file = config.join("parafa-token/account.json");
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["store"], "secret-service", "{stored}");
    assert!(stored.get("refresh_token").is_none(), "{stored}");
    assert!(keyring.items().contains("/collection/login/"), "{}", keyring.items());

    // status without the agent, twice: each refresh reads the token from the keyring and writes the next one back.
    for _ in 0..2 {
        let mut status = token(&config);
        status.envs(env);
        let out = run(status, &["status"]);
        assert!(out.status.success(), "{}", text(&out));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains("store: Secret Service"), "{printed}");
        assert!(printed.contains(&holder.credential_id), "{printed}");
    }

    // The agent takes the login from the keyring and signs.
    let mut agent = Agent::start(&config, &env);
    let digest = Sha256::digest(b"signed with the login from the keyring").to_vec();
    let code = app.fresh_totp(&holder);
    let sig = signature(agent.call(&sign_request(&holder.credential_id, RSA, &digest, Some(code))));
    let public_key = app.holder_public_key(&holder.certificate_serial);
    assert!(common::openssl_verifies(&public_key, &digest, &sig, &["digest:sha256"]));

    // logout: the agent revokes the login, deletes the keyring's item and the file, and exits.
    let mut logout = token(&config);
    logout.envs(env);
    let out = run(logout, &["logout"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.exits_within(10).is_some(), "the agent exits after logout");
    assert!(!file.exists());
    assert!(!keyring.items().contains("/collection/login/"), "{}", keyring.items());
}
