//! `parafa-token`: the desktop companion of Parafa's virtual token (issue 17).
//!
//! This first step logs the holder in and out:
//! - `login` runs OAuth 2.0's authorization code flow with PKCE S256 as a native app (RFC 8252): it listens on
//!   127.0.0.1 on a free port, sends the browser to the server's consent page (password, TOTP, "Allow"), checks the
//!   answer's `state` and `iss`, exchanges the code, and keeps the refresh token in a 0600 file (see [`store`]; the
//!   OS keyring through the Secret Service is the next step);
//! - `status` refreshes (the refresh token rotates; the new one is stored), lists the holder's credentials through
//!   the CSC API and prints them;
//! - `logout` revokes the refresh token and deletes the file.
//!
//! The app is a public client the operator registers (`parafa admin oauth-client create --public --scope service
//! --redirect-uri http://127.0.0.1/callback`); its id is given with `--client-id` or `PARAFA_TOKEN_CLIENT_ID`.

mod oauth;
mod store;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

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
    /// Shows the account, its credentials and their validity.
    Status,
    /// Revokes the login at the server and forgets it here.
    Logout,
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parafa-token: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `login`.
fn login(server: &str, client_id: &str, no_browser: bool, timeout: Duration) -> Result<()> {
    if client_id.trim().is_empty() {
        bail!("no client id: give --client-id or set PARAFA_TOKEN_CLIENT_ID (the operator registers the app)");
    }
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
    store::save(&store::Account {
        server: meta.issuer.clone(),
        client_id: client_id.to_owned(),
        refresh_token,
    })?;
    println!("logged in to {}", meta.issuer);
    eprintln!(
        "The login is kept in {} (readable by you only).",
        store::path()?.display()
    );
    Ok(())
}

/// The stored account, or the message a holder who is not logged in reads.
fn account() -> Result<store::Account> {
    store::load()?.ok_or_else(|| anyhow!("not logged in: run `parafa-token login --server URL` first"))
}

/// A fresh access token; the rotated refresh token is stored before anything else is done with it.
fn access_token(http: &reqwest::blocking::Client, meta: &oauth::Metadata, acct: &mut store::Account) -> Result<String> {
    let tokens = match oauth::refresh(http, meta, &acct.client_id, &acct.refresh_token) {
        Ok(t) => t,
        Err(e) => match e.downcast_ref::<oauth::EndpointError>() {
            Some(ee) if ee.error == "invalid_grant" => bail!(
                "the login at {} has ended (expired, revoked, or used elsewhere): run `parafa-token login` again",
                acct.server
            ),
            _ => return Err(e.context("refreshing the login")),
        },
    };
    if let Some(next) = tokens.refresh_token {
        acct.refresh_token = next;
        store::save(acct)?;
    }
    Ok(tokens.access_token)
}

/// `status`.
fn status() -> Result<()> {
    let mut acct = account()?;
    let http = oauth::http()?;
    let meta = oauth::metadata(&http, &acct.server)?;
    let token = access_token(&http, &meta, &mut acct)?;
    let url = format!("{}/csc/v2/credentials/list", oauth::base(&acct.server));
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "credentialInfo": true, "certInfo": true, "certificates": "none" }))
        .send()
        .with_context(|| format!("reaching {url}"))?;
    if !r.status().is_success() {
        let s = r.status();
        let v: Value = r.json().unwrap_or_default();
        bail!(
            "credentials/list answered {s}: {}",
            v["error_description"].as_str().unwrap_or_default()
        );
    }
    let list: Value = r.json()?;
    print!("{}", describe(&acct, &list));
    Ok(())
}

/// What `status` prints for a `credentials/list` answer.
fn describe(acct: &store::Account, list: &Value) -> String {
    let mut out = format!("server: {}\nclient: {}\n", acct.server, acct.client_id);
    let infos = list["credentialInfos"].as_array().cloned().unwrap_or_default();
    let ids = list["credentialIDs"].as_array().cloned().unwrap_or_default();
    // The account: the holder's name as their certificates carry it (the CSC API names no user to a service token).
    let holder = infos
        .iter()
        .filter_map(|i| i["cert"]["subjectDN"].as_str())
        .find_map(common_name);
    if let Some(name) = holder {
        out.push_str(&format!("account: {name}\n"));
    }
    out.push_str(&format!("credentials: {}\n", ids.len()));
    for id in ids.iter().filter_map(Value::as_str) {
        let info = infos.iter().find(|i| i["credentialID"] == id);
        out.push_str(&format!("- credential {id}\n"));
        let Some(info) = info else { continue };
        let cert = &info["cert"];
        let field = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        out.push_str(&format!("  subject: {}\n", field(&cert["subjectDN"])));
        out.push_str(&format!("  status: {}\n", field(&cert["status"])));
        out.push_str(&format!(
            "  valid: {} to {}\n",
            field(&cert["validFrom"]),
            field(&cert["validTo"])
        ));
        if let Some(key) = info["key"]["status"].as_str() {
            out.push_str(&format!("  key: {key}\n"));
        }
        // Not in Parafa's CSC answers today; shown when a server gives it.
        if let Some(n) = info["transactionsLeft"].as_i64() {
            out.push_str(&format!("  transactions left: {n}\n"));
        }
    }
    out
}

/// The `CN=` of an RFC 4514 distinguished name.
fn common_name(dn: &str) -> Option<String> {
    dn.split(',')
        .map(str::trim)
        .find_map(|rdn| rdn.strip_prefix("CN="))
        .map(str::to_owned)
}

/// `logout`.
fn logout() -> Result<()> {
    let Some(acct) = store::load()? else {
        println!("not logged in");
        return Ok(());
    };
    let http = oauth::http()?;
    let revoked = oauth::metadata(&http, &acct.server)
        .and_then(|meta| oauth::revoke(&http, &meta, &acct.client_id, &acct.refresh_token));
    store::remove()?;
    match revoked {
        Ok(()) => {
            println!("logged out of {}", acct.server);
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "the login was forgotten here, but {} could not be told: revoke the app in your account's settings",
            acct.server
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_describes_credentials() {
        let acct = store::Account {
            server: "https://parafa.example".into(),
            client_id: "c1".into(),
            refresh_token: "secret".into(),
        };
        let list = json!({
            "credentialIDs": ["cr-1"],
            "credentialInfos": [{
                "credentialID": "cr-1",
                "cert": {"subjectDN": "CN=Ana Pop,C=RO", "status": "valid",
                         "validFrom": "20260101000000Z", "validTo": "20290101000000Z"},
                "key": {"status": "enabled"}
            }]
        });
        let text = describe(&acct, &list);
        assert!(text.contains("account: Ana Pop"), "{text}");
        assert!(text.contains("- credential cr-1"), "{text}");
        assert!(text.contains("valid: 20260101000000Z to 20290101000000Z"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
