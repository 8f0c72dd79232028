//! The desktop companion `parafa-token` (issue 17, workspace member `token/`) against the real server: `login`
//! through the holder's browser (played by the harness: web login, the consent page, "Allow", then the redirect to
//! the companion's loopback listener), `status` with a rotated refresh token, `logout` with the token revoked.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::desktop::{holder_and_desktop_client, run, text, token};
use common::TestApp;
use serde_json::{json, Value};

#[test]
fn the_desktop_companion_logs_in_through_the_browser_shows_status_and_logs_out() {
    let app = TestApp::spawn();
    let (holder, cookie, client_id) = holder_and_desktop_client(&app, "ana@example.com");

    let config = app.data_dir.join("desktop-config");
    std::fs::create_dir_all(&config).unwrap();

    // Not logged in yet: status says so.
    let out = run(token(&config), &["status"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not logged in"),
        "{}",
        text(&out)
    );

    // login --no-browser: the address to open on stdout.
    let mut login = token(&config)
        .args([
            "login",
            "--no-browser",
            "--server",
            &app.base,
            "--client-id",
            &client_id,
        ])
        .args(["--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn login");
    let stdout = login.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("parafa-token printed nothing")
        .strip_prefix("open: ")
        .expect("an `open: ` line")
        .to_owned();
    let path = url
        .strip_prefix(&app.base)
        .expect("the server's authorize URL")
        .to_owned();
    assert!(path.starts_with("/oauth2/authorize?"), "{url}");
    let query = path.split_once('?').unwrap().1.to_owned();
    assert!(query.contains("code_challenge_method=S256"), "{query}");
    assert!(query.contains("scope=service"), "{query}");
    assert!(query.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"), "{query}");

    // The holder's browser: the consent page, then "Allow".
    let (status, _, body) = app.page_unfollowed(&path, "en", Some(&cookie));
    assert_eq!(status, 200, "consent page: {body}");
    assert!(body.contains("Parafa Token"), "{body}");
    let (status, answer) = app.call(
        "POST",
        "/oauth2/authorize",
        Some(&cookie),
        Some(json!({ "query": query, "decision": "allow" })),
    );
    assert_eq!(status, 200, "{answer}");
    let redirect = answer["redirect"].as_str().expect("redirect").to_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.contains("/callback?"), "{redirect}");
    // The browser follows the redirect to the companion's listener, which answers with a page.
    let page = app.client.get(&redirect).send().expect("the loopback listener");
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("logged in"));
    let status = login.wait().expect("login exit");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut login.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "login failed: {err}");

    // The login is kept in a file only its owner reads, without the access token.
    let file = config.join("parafa-token/account.json");
    let mode = std::fs::metadata(&file).expect("account file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["server"], app.base);
    assert_eq!(stored["client_id"], client_id.as_str());
    let first_refresh = stored["refresh_token"].as_str().expect("refresh token").to_owned();
    assert!(stored.get("access_token").is_none(), "{stored}");
    assert_eq!(stored.as_object().unwrap().len(), 3, "{stored}");

    // status: a fresh access token through the (rotated) refresh token, and the holder's credential.
    let out = run(token(&config), &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains(&holder.credential_id), "{printed}");
    assert!(printed.contains("account: Ana Maria Popescu"), "{printed}");
    assert!(printed.contains("status: valid"), "{printed}");
    assert!(!printed.contains(&first_refresh), "{printed}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, first_refresh, "the refresh token rotates");
    // Twice: the rotated one works.
    let out = run(token(&config), &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();

    // logout: revoked at the server, forgotten here.
    let out = run(token(&config), &["logout"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!file.exists());
    let out = run(token(&config), &["status"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not logged in: run `parafa-token login"),
        "{}",
        text(&out)
    );
    let r = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .expect("token");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
}

/// A login the holder refuses in the browser ends with a clear message and stores nothing; a login whose answer
/// carries another `state` (a forged redirect) is refused too.
#[test]
fn a_refused_or_forged_login_stores_nothing() {
    let app = TestApp::spawn();
    let (_holder, cookie, client_id) = holder_and_desktop_client(&app, "ion@example.com");
    let config = app.data_dir.join("desktop-config");

    for case in ["refuse", "forged"] {
        let mut login = token(&config)
            .args(["login", "--no-browser", "--server", &app.base])
            .env("PARAFA_TOKEN_CLIENT_ID", &client_id)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn login");
        let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
        let url = lines.next().expect("a line").expect("utf-8");
        let url = url.strip_prefix("open: ").expect("open: line");
        let query = url.split_once('?').unwrap().1;
        let redirect = if case == "refuse" {
            let (status, answer) = app.call(
                "POST",
                "/oauth2/authorize",
                Some(&cookie),
                Some(json!({ "query": query, "decision": "refuse" })),
            );
            assert_eq!(status, 200, "{answer}");
            answer["redirect"].as_str().unwrap().to_owned()
        } else {
            // Where the companion listens, with a code and a state it did not make.
            let listener = query
                .split('&')
                .find_map(|p| p.strip_prefix("redirect_uri="))
                .unwrap()
                .replace("%3A", ":")
                .replace("%2F", "/");
            format!(
                "{listener}?code=stolen&state=not-this-one&iss={}",
                app.base.replace(':', "%3A").replace('/', "%2F")
            )
        };
        let _ = app.client.get(&redirect).send().expect("the loopback listener");
        let out = login.wait_with_output().expect("login exit");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: {err}");
        let why = if case == "refuse" {
            "refused in the browser"
        } else {
            "state"
        };
        assert!(err.contains(why), "{case}: {err}");
        assert!(!config.join("parafa-token/account.json").exists(), "{case}");
    }
}
