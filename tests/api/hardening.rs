//! The small doors of the hardening review (issue 14, item 9): the language switch cannot send a browser to another
//! site nor fail on a line break, the access log never carries a link's secret, an operator cannot be made without
//! their own phone number, and the files at rest are readable by the service's user only.

use crate::common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use common::TestApp;

#[test]
fn the_language_switch_goes_back_only_to_a_page_of_this_site() {
    let app = TestApp::spawn();
    for (next, expected) in [
        ("/orders%3Fx%3D1", "/orders?x=1"),
        // Browsers drop tabs and line breaks and read a backslash as a slash: each of these would leave the site.
        ("/%09/evil.example", "/"),
        ("/%0a/evil.example", "/"),
        ("/%0d%0a/evil.example", "/"),
        ("/%5c/evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("https://evil.example/", "/"),
        // A line break once made the answer a 500 (a header cannot carry it).
        ("/%0a", "/"),
        ("/orders%0d%0aSet-Cookie:%20x=1", "/"),
    ] {
        let (status, location, _) = app.page_unfollowed(&format!("/lang/en?next={next}"), "en", None);
        assert_eq!((status, location.as_str()), (303, expected), "next={next}");
    }
}

#[test]
fn the_access_log_names_routes_never_the_secrets_in_links() {
    let mut app = TestApp::spawn();
    app.stop();
    // The same server, with its log captured at the level a deployment runs (one line per finished request).
    let (mut child, base) = app.serve_piped(&[], &[("PARAFA_LOG", "info")]);
    let secret = "Zq7SECRETlinkTOKEN0123456789abcdef";
    for path in [
        format!("/invitations/{secret}"),
        format!("/api/v1/invitations/{secret}"),
        format!("/password-recovery/{secret}"),
        format!("/api/v1/password-recovery/{secret}/verify"),
        format!("/identity/sandbox/{secret}"),
        format!("/api/v1/totp-reset/{secret}/sms"),
        format!("/login?next=/x&token={secret}"),
        format!("/no/such/route/{secret}"),
    ] {
        let r = app.client.get(format!("{base}{path}")).send().expect("GET");
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
        let r = app.client.post(format!("{base}{path}")).send().expect("POST");
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
    let _ = child.kill();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    let _ = child.wait();
    assert!(
        log.contains("/invitations/{token}"),
        "the log names the route of each request:\n{log}"
    );
    assert!(!log.contains(secret), "a link's secret reached the log:\n{log}");
}

#[test]
fn an_operator_needs_their_own_phone_number() {
    let app = TestApp::spawn();
    let out = app.cli(&[
        "admin",
        "operator",
        "create",
        "--email",
        "op.fara.telefon@example.com",
        "--name",
        "Oana Operator",
        "--password",
        "Vânt de primăvară peste Bărăgan 42",
    ]);
    assert!(!out.status.success(), "created without a phone number");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--phone"));
    // With one it works, and the number is the one given.
    let op = app.create_operator("op.cu.telefon@example.com");
    let cookie = app.web_login(&op);
    let (status, me) = app.call("GET", "/api/v1/me", Some(&cookie), None);
    assert_eq!(status, 200, "{me}");
    assert!(me.to_string().contains("999"), "{me}");
}

#[test]
fn files_at_rest_are_readable_by_the_service_user_only() {
    let app = TestApp::spawn();
    // Something in each place: a holder (database, token objects) and a message in the outbox.
    let holder = app.create_holder("fisiere.private@example.com", "p256", 1);
    let _ = app.web_login(&holder);
    let data_dir = app
        .env()
        .iter()
        .find(|(k, _)| k == "PARAFA_DATA_DIR")
        .map(|(_, v)| std::path::PathBuf::from(v))
        .expect("data dir");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    let mut checked = 0;
    let mut stack = vec![data_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} is open to others: {m:o}", path.display());
            checked += 1;
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    assert!(checked > 5, "only {checked} files under {}", data_dir.display());
    assert!(data_dir.join("parafa.db").exists());
}

#[test]
fn a_method_a_route_does_not_serve_gets_405_with_the_methods_it_does() {
    let app = TestApp::spawn();
    for (method, path, allow) in [
        ("DELETE", "/api/v1/orders", "GET, POST"),
        ("PUT", "/api/v1/verify", "POST"),
        ("GET", "/csc/v2/signatures/signHash", "POST"),
        ("POST", "/pki/ca.crt", "GET"),
        ("DELETE", "/orders", "GET"),
    ] {
        let r = app
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .send()
            .expect("request");
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        let mut got: Vec<String> = r.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        got.sort();
        assert_eq!(got.join(", "), allow, "{method} {path}");
        let body: serde_json::Value = r.json().expect("JSON error body");
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    // A path that exists nowhere is still a 404.
    assert_eq!(app.get("/api/v1/no-such-thing").status(), 404);
}

/// An OID with an arc too large for 32 bits (found by the `csc_body` fuzz target: the OID parser multiplied without
/// a check and panicked the request's worker in debug builds) is an invalid parameter on every CSC route that reads
/// one.
#[test]
fn an_oid_with_an_oversized_arc_is_an_invalid_parameter() {
    let app = TestApp::spawn();
    let holder = app.create_holder("oid@example.com", "p256", 1);
    let token = app.login(&holder);
    let huge = "1.2.840.99999999999999999999";
    let hash = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
    for (path, body) in [
        (
            "/csc/v2/signatures/signHash",
            serde_json::json!({"credentialID": holder.credential_id, "SAD": "x", "hashes": [hash],
                               "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": huge}),
        ),
        (
            "/csc/v2/signatures/signHash",
            serde_json::json!({"credentialID": holder.credential_id, "SAD": "x", "hashes": [hash],
                               "hashAlgorithmOID": huge, "signAlgo": "1.2.840.10045.4.3.2"}),
        ),
        (
            "/csc/v2/signatures/timestamp",
            serde_json::json!({"hash": hash, "hashAlgorithmOID": huge}),
        ),
        (
            "/csc/v1/signatures/timestamp",
            serde_json::json!({"hash": hash, "hashAlgo": huge}),
        ),
    ] {
        let (status, out) = app.csc(path, &token, &body);
        assert_eq!(status, 400, "{path}: {out}");
        assert_eq!(out["error"], "invalid_request", "{path}: {out}");
        let why = out["error_description"].as_str().unwrap_or_default();
        assert!(
            why.contains("Invalid parameter"),
            "{path}: refused for the OID, not for something else: {why}"
        );
    }
    assert_eq!(app.get("/health").status(), 200);
}
