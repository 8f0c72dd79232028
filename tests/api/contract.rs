//! The HTTP contract, judged by an outside tool: schemathesis (`make venv-contract` installs it into
//! `.venv-contract`) generates requests from `api-spec/openapi.yaml` for every operation, valid ones and invalid
//! ones, sends them to a live server with a CSC bearer token and a web session, and checks every answer against the
//! spec: no server error, only documented status codes, response bodies and headers as described, schema-valid
//! requests accepted and schema-violating ones refused.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{csrf_for, TestApp, HOLDER_PASSWORD};

/// The seed of the generated cases: a failure seen once is seen again on the next run.
const SEED: &str = "20261206";
/// Cases per operation and phase: enough to try each schema's edges (the coverage phase adds its own; ~5 000 cases
/// in all), small enough for a run of about a minute on two cores.
const MAX_EXAMPLES: &str = "25";

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's schemathesis, or a failure that says how to get it.
fn schemathesis() -> PathBuf {
    let bin = root().join(".venv-contract/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run make test (it creates .venv-contract), or make venv-contract before \
         cargo nextest run --test api contract::",
        bin.display()
    );
    bin
}

/// What schemathesis is told besides the command line. The credentials go through the OpenAPI-aware auth (keyed by
/// the names in components.securitySchemes), so that each operation gets exactly the credentials its `security`
/// names and schemathesis can check that the server refuses a request without them; a cookie sent with `-H` would
/// go to every operation and make it report "missing cookie accepted" on routes that do not need it.
///
/// Left out, because one of them would end the session or destroy the test data mid-run and every later case would
/// test only the login wall: logout (DELETE /api/v1/session), erasure (POST /api/v1/me/erasure) and the password
/// change (POST /api/v1/me/password, which ends the other sessions).
///
/// Where a request's validity depends on more than its shape, a 400 for a schema-valid request is what the spec
/// promises, and those operations say so to the "schema-valid request accepted" check (never to the others):
/// - CSC: the standard answers 400 invalid_request for any value the service cannot act on (a credentialID that
///   is not the caller's, an unknown SAD, a hash of the wrong length for its algorithm, an OID not offered);
/// - what an uploaded file holds (verify, sign-jobs and its inspection), a date that must be in the future (2FA postponement), an
///   invoice's tax id with its check digit and a promo code (orders);
/// - a one-time code the server did not send (phone, pairing, recovery, invitation verification);
/// - a re-pairing link checked before its body (410 gone before 400, /api/v1/totp-reset/{token}/...).
///
/// In a multipart body every part is bytes: what schemathesis means as a wrong type ("{}" for a file) is a two-byte
/// file to the server, so the "schema-violating request rejected" check is off for the multipart uploads.
const CONFIG: &str = r#"
headers = { X-CSRF-Token = "${PARAFA_CONTRACT_CSRF}" }

[auth.openapi.bearer]
bearer = "${PARAFA_CONTRACT_TOKEN}"

[auth.openapi.session]
api_key = "${PARAFA_CONTRACT_SESSION}"

[[operations]]
include-name = "DELETE /api/v1/session"
enabled = false

[[operations]]
include-name = "POST /api/v1/me/erasure"
enabled = false

[[operations]]
include-name = "POST /api/v1/me/password"
enabled = false

[[operations]]
include-path-regex = "^/csc/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-name-regex = "^POST /api/v1/(verify|sign-jobs|sign-jobs/inspect|me/2fa/postpone|orders|operator/institutional-orders)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-name-regex = "^POST /api/v1/(me/phone/email-code/verify|me/phone/verify|me/totp/pairing/sms|me/totp/pairing/activate|invitations/[^/]+/phone/verify|password-recovery/[^/]+/verify|contact/[^/]+/confirm)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "410", "429"]

[[operations]]
include-path-regex = "^/oauth2/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "302", "303", "400", "401", "403"]

[[operations]]
include-name = "DELETE /api/v1/me/apps/{grant}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404"]

[[operations]]
include-path-regex = "^/api/v1/totp-reset/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "410", "429"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "409", "410", "429"]

[[operations]]
include-name-regex = "^POST /api/v1/(sign-jobs|sign-jobs/inspect|verify|me/rekey/[^/]+/identity|orders/[^/]+/identity-session|orders/[^/]+/resubmit)$"
checks.negative_data_rejection.enabled = false
"#;

#[test]
fn the_server_keeps_the_openapi_contract() {
    let schemathesis = schemathesis();
    let app = TestApp::spawn();
    // Without 2FA: a login needs no TOTP code, so schemathesis's own logins and the cases behind the session are
    // not all stopped by the second factor.
    let holder = app.create_holder_with("contract@example.ro", "p256", 1, false);
    let token = app.login(&holder);
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"email": holder.email, "password": HOLDER_PASSWORD}))
        .send()
        .expect("web login");
    assert_eq!(r.status(), 200, "web login failed");
    // "parafa_session=VALUE; Path=/; HttpOnly; ...": the value is what the session scheme's api_key carries.
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next()?.trim().strip_prefix("parafa_session="))
        .expect("parafa_session cookie")
        .to_owned();
    let login: serde_json::Value = r.json().expect("login answer");
    let csrf = login["csrf_token"].as_str().expect("csrf_token").to_owned();
    assert_eq!(csrf, csrf_for(&session), "the login answer's CSRF token");

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write schemathesis.toml");
    let out = Command::new(&schemathesis)
        .current_dir(dir.path())
        .env("PARAFA_CONTRACT_TOKEN", &token)
        .env("PARAFA_CONTRACT_SESSION", &session)
        .env("PARAFA_CONTRACT_CSRF", &csrf)
        // Serializers for the DER bodies of POST /pki/ocsp and POST /tsa.
        .env("SCHEMATHESIS_HOOKS", root().join("tests/contract/hooks.py"))
        .env("NO_COLOR", "1")
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(root().join("api-spec/openapi.yaml"))
        .args(["--url", &app.base])
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES])
        // One worker: the cases reach the server in the same order on every run, and so meet the same state
        // (login throttle, code cool-downs), which keeps a seeded run a repeatable one.
        .args(["--workers", "1"])
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found the server and api-spec/openapi.yaml apart ({}):\n{report}",
        out.status
    );
    // The summary, for `--no-capture` runs.
    println!(
        "{}",
        report
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A run that tested nothing would also exit 0: the summary names the operations it tested.
    assert!(report.contains("Tested:"), "no summary in:\n{report}");
}

/// Two answers schemathesis found apart from the spec, each a state of the server rather than a malformed request:
/// a schema-valid enrolment with another person's phone number is a conflict (409), not a 400 (a client must be
/// able to tell "fix the format" from "use another number"), and a sandbox payment of an order that is not the
/// user's is 404 as on the sandbox page, not a 400 "unknown order".
#[test]
fn a_taken_phone_is_a_conflict_and_an_unknown_order_is_not_found() {
    // Development mode: the sandbox gateway is served (otherwise every sandbox route is 404 whatever the order).
    let app = TestApp::spawn_dev();
    let holder = app.create_holder_with("owner@example.ro", "p256", 1, false);
    let (status, body) = app.call(
        "POST",
        "/api/v1/enrolments",
        None,
        Some(serde_json::json!({
            "given_name": "Ion",
            "surname": "Ionescu",
            "email": "someone.else@example.ro",
            // The phone every CLI-made holder has.
            "phone": "+40712345678",
            "privacy_acknowledged": true,
        })),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict", "{body}");

    let cookie = app.web_login(&holder);
    let (status, body) = app.call(
        "POST",
        "/api/v1/sandbox-pay/01a24aa1-0000-7000-8000-000000000000",
        Some(&cookie),
        Some(serde_json::json!({"outcome": "pay"})),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found", "{body}");
}
