//! `parafa-token`: the desktop companion of Parafa's virtual token (issue 17, `docs/TOKEN.md`).
//!
//! - `login` runs OAuth 2.0's authorization code flow with PKCE S256 as a native app (RFC 8252): it listens on
//!   127.0.0.1 on a free port, sends the browser to the server's consent page (password, TOTP, "Allow"), checks the
//!   answer's `state` and `iss`, exchanges the code, and keeps the refresh token (see [`store`]); a running agent is
//!   told to read it;
//! - `agent` is the one process per user that holds the login and makes the CSC calls for the PKCS#11 module
//!   ([`agent`]); `agent --daemon` starts it detached (what the module runs when no agent answers);
//! - `status` shows the account, where the login is kept and each credential, through the agent when one runs;
//! - `logout` revokes the login and forgets it (the agent, when one runs, does it and exits);
//! - `install` / `uninstall` register the PKCS#11 module with p11-kit ([`install`]).
//!
//! The app is a public client the operator registers (`parafa admin oauth-client create --public --scope service
//! --redirect-uri http://127.0.0.1/callback`); its id is given with `--client-id` or `PARAFA_TOKEN_CLIENT_ID`.

mod agent;
mod csc;
mod install;
mod keyring;
mod oauth;
mod prompt;
mod session;
mod store;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use parafa_token_proto::{self as proto, Request, Response, TalkError, VERSION};

/// The desktop companion of Parafa's virtual token.
#[derive(Debug, Parser)]
#[command(name = "parafa-token", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Logs in through the browser (password, TOTP code, "Allow") and keeps the login on this computer.
    Login {
        /// The Parafa server's base URL, e.g. https://sign.example.ro
        #[arg(long)]
        server: String,
        /// The desktop app's client id, as the operator registered it.
        #[arg(long, env = "PARAFA_TOKEN_CLIENT_ID")]
        client_id: String,
        /// Prints the address to open (a line `open: URL`) instead of starting the browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Shows the account, where the login is kept, and each credential.
    Status,
    /// Revokes the login at the server and forgets it here (a running agent exits).
    Logout,
    /// Runs the agent that the PKCS#11 module talks to (one per user, on a Unix socket).
    Agent {
        /// Starts the agent in the background, waits until it answers, and exits (at once when one answers).
        #[arg(long)]
        daemon: bool,
        /// Exits after this many seconds without a request (0: never).
        #[arg(long, env = "PARAFA_TOKEN_AGENT_IDLE", default_value_t = 3600)]
        idle: u64,
    },
    /// Registers the PKCS#11 module with p11-kit for this user, and says how to add it elsewhere.
    Install {
        /// The module (default: libparafa_pkcs11.so beside this program, else the system's PKCS#11 directory).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Removes the p11-kit registration `install` wrote.
    Uninstall,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login {
            server,
            client_id,
            no_browser,
            timeout,
        } => login(&server, &client_id, no_browser, Duration::from_secs(timeout)),
        Command::Status => status(),
        Command::Logout => logout(),
        Command::Agent { daemon: true, idle } => agent::daemon(idle),
        Command::Agent { daemon: false, idle } => agent::run(Duration::from_secs(idle)),
        Command::Install { module } => install::install(module),
        Command::Uninstall => install::uninstall(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parafa-token: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Asks the agent, if one answers; `None` when none does.
fn ask_agent(request: &Request) -> Result<Option<Response>> {
    match proto::call(&proto::socket_path(), request, Duration::from_secs(120)) {
        Ok(r) => Ok(Some(r)),
        Err(TalkError::NoAgent(_)) => Ok(None),
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// `login`.
fn login(server: &str, client_id: &str, no_browser: bool, timeout: Duration) -> Result<()> {
    if client_id.trim().is_empty() {
        bail!("no client id: give --client-id or set PARAFA_TOKEN_CLIENT_ID (the operator registers the app)");
    }
    // Where the login will go, known before the browser is asked (a store that cannot be had fails now).
    let kind = store::choose()?;
    let http = oauth::http()?;
    let meta = oauth::metadata(&http, server)?;
    let (listener, redirect_uri) = oauth::listen()?;
    let (verifier, challenge) = oauth::pkce();
    let state = oauth::state();
    let url = oauth::authorization_url(&meta, client_id, &redirect_uri, &state, &challenge);
    let opened = !no_browser
        && std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if opened {
        eprintln!("Log in and allow parafa-token in the browser window that opened.");
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "open: {url}")?;
        out.flush()?;
        eprintln!("Open that address in a browser, log in and allow parafa-token.");
    }
    let callback = oauth::wait_for_callback(&listener, timeout)?;
    drop(listener);
    let code = oauth::code_of(&callback, &state, &meta.issuer)?;
    let tokens =
        oauth::exchange(&http, &meta, client_id, &code, &redirect_uri, &verifier).context("exchanging the code")?;
    let refresh_token = tokens
        .refresh_token
        .ok_or_else(|| anyhow!("the server gave no refresh token"))?;
    {
        let held = store::lock()?;
        store::save(
            &store::Account {
                server: meta.issuer.clone(),
                client_id: client_id.to_owned(),
                refresh_token,
                kind,
            },
            &held,
        )?;
    }
    // A running agent holds an access token of the old login, if any: it reads the new one.
    if let Some(Response::Error { message, .. }) = ask_agent(&Request::Reload { version: VERSION })? {
        eprintln!("The running agent could not be told of the new login ({message}): restart it.");
    }
    println!("logged in to {}", meta.issuer);
    eprintln!("The login is kept in the {}.", store::describe());
    Ok(())
}

/// `status`: through the agent when one runs, else here (refreshing under the store's lock).
fn status() -> Result<()> {
    let (status, agent) = match ask_agent(&Request::Status { version: VERSION })? {
        Some(Response::Status(s)) => {
            let pid = agent::ping(&proto::socket_path());
            (s, pid.map_or("running".to_owned(), |p| format!("running (pid {p})")))
        }
        Some(Response::Error { message, .. }) => bail!("{message}"),
        Some(other) => bail!("the agent answered {other:?} to a status request"),
        None => {
            let session = session::Session::new()?;
            let status = match csc::list(&session) {
                Ok(l) => agent::status_of(Some(l)),
                Err(f) if f.no_login => agent::status_of(None),
                Err(f) => return Err(f.into()),
            };
            (status, "not running".to_owned())
        }
    };
    print!(
        "{}",
        describe(&status, &agent, &proto::socket_path().display().to_string())
    );
    if status.account.is_none() {
        bail!("not logged in: run `parafa-token login --server URL` first");
    }
    Ok(())
}

/// What `status` prints.
fn describe(s: &proto::Status, agent: &str, socket: &str) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    line(format!("store: {}", s.store));
    line(format!("agent: {agent} on {socket}"));
    let Some(acct) = &s.account else {
        return out;
    };
    line(format!("server: {}", acct.server));
    if let Some(c) = &s.client_id {
        line(format!("client: {c}"));
    }
    line(format!("account: {}", acct.label));
    line(format!("credentials: {}", acct.credentials.len()));
    for c in &acct.credentials {
        line(format!("- credential {}", c.id));
        if let Some(cert) = s.certificates.iter().find(|x| x.credential == c.id) {
            line(format!("  holder: {}", cert.holder));
            line(format!("  subject: {}", cert.subject));
            line(format!("  serial: {}", cert.serial));
            line(format!("  valid: {} to {}", cert.valid_from, cert.valid_to));
        }
        line(format!("  status: {}", c.cert_status));
        let key = match &c.curve {
            Some(curve) => format!("EC {} ({})", curve_name(curve), c.key_len),
            None => format!("RSA {} bits", c.key_len),
        };
        line(format!("  key: {}, {key}", c.key_status));
        let algos: Vec<&str> = c.key_algos.iter().map(|a| algo_name(a)).collect();
        line(format!("  algorithms: {}", algos.join(", ")));
        line(format!("  chain: {} certificates", c.certificates.len()));
        if let Some(n) = c.transactions_left {
            line(format!("  transactions left: {n}"));
        }
    }
    out
}

/// The name of a signature algorithm's OID, as `credentials/info` lists them.
fn algo_name(oid: &str) -> &str {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA PKCS#1 v1.5",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.2.1" => "ECDSA",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        other => other,
    }
}

/// The name of a curve's OID.
fn curve_name(oid: &str) -> &str {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        other => other,
    }
}

/// `logout`: the agent does it (and exits) when one runs, else it is done here.
fn logout() -> Result<()> {
    let message = match ask_agent(&Request::Logout { version: VERSION })? {
        Some(Response::Done { message }) => message,
        Some(Response::Error { message, .. }) => bail!("{message}"),
        Some(other) => bail!("the agent answered {other:?} to a logout request"),
        None => session::Session::new()?.logout()?,
    };
    println!("{message}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_describes_credentials() {
        let status = proto::Status {
            store: "file /home/ana/.config/parafa-token/account.json".into(),
            client_id: Some("c1".into()),
            account: Some(proto::Account {
                server: "https://parafa.example".into(),
                label: "Ana Pop".into(),
                credentials: vec![proto::Credential {
                    id: "cr-1".into(),
                    key_status: "enabled".into(),
                    cert_status: "valid".into(),
                    key_algos: vec!["1.2.840.10045.2.1".into()],
                    key_len: 256,
                    curve: Some("1.2.840.10045.3.1.7".into()),
                    certificates: vec!["AAAA".into(), "BBBB".into()],
                    transactions_left: None,
                }],
            }),
            certificates: vec![proto::CertSummary {
                credential: "cr-1".into(),
                subject: "CN=Ana Pop,C=RO".into(),
                holder: "Ana Pop".into(),
                serial: "0A1B".into(),
                valid_from: "20260101000000Z".into(),
                valid_to: "20290101000000Z".into(),
            }],
        };
        let text = describe(&status, "not running", "/run/user/1000/parafa-token/agent.sock");
        assert!(text.contains("store: file /home/ana"), "{text}");
        assert!(text.contains("account: Ana Pop"), "{text}");
        assert!(text.contains("- credential cr-1"), "{text}");
        assert!(text.contains("serial: 0A1B"), "{text}");
        assert!(text.contains("valid: 20260101000000Z to 20290101000000Z"), "{text}");
        assert!(text.contains("key: enabled, EC P-256 (256)"), "{text}");
        assert!(text.contains("algorithms: ECDSA"), "{text}");
        assert!(!text.contains("transactions left"), "{text}");
    }
}
