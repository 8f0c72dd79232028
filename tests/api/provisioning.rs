//! First start provisions the token and the CA; a second start reuses them; operations endpoints answer.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::{Backend, FreshPostgres, TestApp};

fn provisioning_is_done_once_and_reused(mut app: TestApp) {
    let root = app.get("/pki/ca.crt").bytes().expect("root").to_vec();
    let issuing = app.get("/pki/issuing.crt").bytes().expect("issuing").to_vec();
    assert!(!root.is_empty() && root != issuing);

    let conf = std::fs::read_to_string(app.softhsm_conf()).expect("softhsm2.conf written");
    assert!(conf.contains("directories.tokendir"), "{conf}");
    let secrets = app.data_dir.join("hsm-secrets.toml");
    let mode = std::fs::metadata(&secrets).expect("secrets file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the PIN file must be readable by its owner only");
    let pin_before = app.user_pin();

    app.stop();
    app.start();
    assert_eq!(
        app.get("/pki/ca.crt").bytes().unwrap().to_vec(),
        root,
        "second start made a new root"
    );
    assert_eq!(app.get("/pki/issuing.crt").bytes().unwrap().to_vec(), issuing);
    assert_eq!(app.user_pin(), pin_before);

    // One key per CA role (and the TSA's and the trusted list operator's) in the token: nothing was generated twice.
    let list = app.cli_ok(&["hsm", "list", "--json"]);
    let objects: Vec<serde_json::Value> = serde_json::from_str(&list).expect("json");
    for id in ["ca-root", "ca-issuing", "tsa", "tl-operator", "parafa-wrap-v1"] {
        let n = objects
            .iter()
            .filter(|o| o["id"] == id && o["class"] != "CKO_PUBLIC_KEY")
            .count();
        assert_eq!(n, 1, "{id} appears {n} times in {list}");
    }
    // The audit trail recorded the two CA creations, the TSA's and the scheme operator's once.
    let verify = app.cli_ok(&["admin", "audit", "verify"]);
    assert!(verify.contains("intact: 4 rows"), "{verify}");
}

#[test]
fn first_start_provisions_and_second_start_reuses_on_sqlite() {
    let app = TestApp::spawn();
    assert!(app.data_dir.join("parafa.db").exists());
    provisioning_is_done_once_and_reused(app);
}

#[test]
fn first_start_provisions_and_second_start_reuses_on_postgres() {
    let Some(pg) = FreshPostgres::create() else {
        return;
    };
    provisioning_is_done_once_and_reused(TestApp::spawn_on(Backend::Postgres(pg), &[]));
    // (the database is dropped with the app)
}

#[test]
fn health_ready_and_metrics_answer() {
    let app = TestApp::spawn();
    let health = app.get("/health");
    assert_eq!(health.status(), 200);
    let id = health
        .headers()
        .get("x-request-id")
        .expect("a request id on every response");
    assert!(!id.is_empty());
    let ready: serde_json::Value = app.get("/ready").json().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["hsm"], "ok");
    let metrics = app.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"parafa_http_requests_total{method="GET",route="/ready",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("parafa_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    // First start in this process: two CA key pairs, the TSA's and the trusted list operator's generated, four
    // certificates signed in the token.
    for op in ["generate_key_pair", "sign"] {
        let line = format!(r#"parafa_hsm_operation_duration_seconds_count{{op="{op}",outcome="ok"}} 4"#);
        assert!(metrics.contains(&line), "no {line} in {metrics}");
    }
}

#[test]
fn unknown_routes_get_a_csc_error_json() {
    let app = TestApp::spawn();
    let r = app.get("/no/such/route");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["error_description"].is_string());
}

#[test]
fn a_missing_hsm_module_is_reported_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::parafa_bin())
        .arg("serve")
        .env("PARAFA_DATA_DIR", tmp.path())
        .env("PARAFA_HSM_MODULE", "/nonexistent/libsofthsm2.so")
        .env("PARAFA_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/libsofthsm2.so") && err.contains("softhsm2 package"),
        "{err}"
    );
}

#[test]
fn a_document_version_the_build_does_not_carry_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parafa.toml");
    std::fs::write(&config, "[accounts]\nprivacy_notice_version = \"2099-01\"\n").unwrap();
    let out = std::process::Command::new(common::parafa_bin())
        .arg("serve")
        .env("PARAFA_CONFIG", &config)
        .env("PARAFA_DATA_DIR", dir.path().join("data"))
        .env("PARAFA_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("accounts.privacy_notice_version"), "{err}");
    assert!(
        err.contains("\"2099-01\" is not a version of docs/trust/privacy/"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").join("parafa.db").exists(),
        "nothing provisioned"
    );
}

#[test]
fn an_invalid_setting_is_reported_by_name() {
    let out = std::process::Command::new(common::parafa_bin())
        .arg("serve")
        .env("PARAFA_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen"), "{err}");
}
