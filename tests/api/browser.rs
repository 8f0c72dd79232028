//! The web platform in a real browser: headless Chromium (Debian's `/usr/bin/chromium`) driven by playwright-core
//! (`tests/e2e/journey.mjs`, installed by `make test`) against the real server.
//!
//! A new user goes from enrolment to a signed PDF and a `.p7s` downloaded as `SignedFiles.zip`: the codes are read
//! from the outbox, the TOTP codes computed from the secret the pairing page shows, an operator accepts the
//! identification in the console, the holder issues the certificate and signs with a rectangle drawn on the
//! preview; an XFA form is refused on upload with its message. Then outside judges: `pdfsig` and pyHanko validate
//! the PDF and find the visible signature's widget where the rectangle was drawn, `openssl cms` verifies the
//! `.p7s` and gives back the file.
//!
//! No page scrolls sideways: every step of the journey ends on a page no wider than its 1280 px window, and
//! `tests/e2e/layout.mjs` measures the public pages and a holder's pages at 1280 px and at a phone's 390 px.
//!
//! Every page a script ends a step on, and every page the layout check visits, is judged by axe-core (npm): no
//! serious or critical WCAG 2.1 A/AA violation.
//!
//! `E2E_SCREENSHOTS=docs/screenshots` also saves the main pages' screenshots there (how the README's are made).

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_ok, TestApp};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run make test (it creates .venv)",
        p.display()
    );
    p.display().to_string()
}

fn judge_script() -> String {
    root().join("tests/python/pdf_judge.py").display().to_string()
}

/// What the browser needs: Chromium and playwright-core (both installed by `make test`); a test fails without them.
fn require_browser() {
    let chromium = Path::new("/usr/bin/chromium").exists();
    let playwright = root().join("tests/e2e/node_modules/playwright-core").exists();
    assert!(
        chromium && playwright,
        "the browser tests need /usr/bin/chromium ({chromium}) and tests/e2e/node_modules ({playwright}): run make test"
    );
}

/// Runs a journey script with the server's address and the test's directories; returns its JSON report.
fn journey(app: &TestApp, script: &str, work: &Path, extra: &[(&str, String)]) -> Value {
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/e2e").join(script))
        .env("PARAFA_BASE", &app.base)
        .env("PARAFA_OUTBOX", app.data_dir.join("outbox"))
        .env("PARAFA_CLOCK_FILE", app.clock_file())
        .env("E2E_WORK", work);
    if let Ok(dir) = std::env::var("E2E_SCREENSHOTS") {
        cmd.env("E2E_SCREENSHOTS", root().join(dir));
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let report = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("{}");
    let report: Value =
        serde_json::from_str(report).unwrap_or_else(|e| panic!("{script}: no JSON report ({e}):\n{stdout}\n{stderr}"));
    // Every page a step ended on was judged by axe-core (WCAG 2.1 A and AA): no serious or critical violation.
    assert_eq!(
        report["a11y"],
        serde_json::json!([]),
        "{script}: axe-core found serious or critical accessibility violations"
    );
    report
}

fn make_pdf(path: &Path, pages: u32, xfa: bool) {
    let mut args = vec![
        judge_script(),
        "make".into(),
        path.display().to_string(),
        pages.to_string(),
    ];
    if xfa {
        args.push("xfa".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&python(), &args);
}

/// What a journey left: the server, its report, and the work directory (kept alive by the guard).
struct Journey {
    app: TestApp,
    report: Value,
    work: PathBuf,
    txt: PathBuf,
    _guard: Option<tempfile::TempDir>,
}

/// The whole journey in a browser whose language is `locale`, in a window of `viewport` (`390x844`) or a laptop's;
/// `screenshots` passes E2E_SCREENSHOTS on.
fn enrol_to_signed_zip(locale: &str, viewport: Option<&str>, screenshots: bool) -> Journey {
    let app = TestApp::spawn_dev();
    let operator = app.create_operator("oana.operator@example.com");
    // E2E_KEEP: keep the downloads and the failure screenshots (the directory is printed).
    let tmp = tempfile::tempdir().unwrap();
    let (guard, work) = if std::env::var_os("E2E_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!("e2e work directory: {}", kept.display());
        (None, kept)
    } else {
        let path = tmp.path().to_owned();
        (Some(tmp), path)
    };
    let (pdf, xfa, txt) = (
        work.join("contract.pdf"),
        work.join("smart-form.pdf"),
        work.join("notes.txt"),
    );
    make_pdf(&pdf, 2, false);
    make_pdf(&xfa, 1, true);
    std::fs::write(&txt, "Parafa: a file that is not a PDF, signed as CAdES.\n").unwrap();
    let mut env = vec![
        ("E2E_LOCALE", locale.to_owned()),
        ("E2E_OPERATOR_EMAIL", operator.email.clone()),
        ("E2E_OPERATOR_PASSWORD", common::HOLDER_PASSWORD.to_owned()),
        ("E2E_OPERATOR_TOTP", operator.totp_secret.clone()),
        ("E2E_PDF", pdf.display().to_string()),
        ("E2E_XFA", xfa.display().to_string()),
        ("E2E_TXT", txt.display().to_string()),
    ];
    if !screenshots {
        env.push(("E2E_SCREENSHOTS", String::new()));
    }
    if let Some(v) = viewport {
        env.push(("E2E_VIEWPORT", v.to_owned()));
    }
    let report = journey(&app, "journey.mjs", &work, &env);
    println!("journey report ({locale}): {report:#}");
    Journey {
        app,
        report,
        work,
        txt,
        _guard: guard,
    }
}

/// The files of the `SignedFiles.zip` the browser downloaded, by name.
fn zip_entries(report: &Value) -> std::collections::BTreeMap<String, Vec<u8>> {
    let zip_path = PathBuf::from(report["zip"].as_str().expect("zip path"));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut entries = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        entries.insert(f.name().to_owned(), bytes);
    }
    entries
}

#[test]
fn a_new_user_enrols_gets_a_certificate_and_signs_a_pdf_and_a_file_in_the_browser() {
    require_browser();
    let Journey {
        app,
        report,
        work,
        txt,
        _guard: _kept,
    } = enrol_to_signed_zip("en-US", None, true);
    assert_eq!(report["langs"], serde_json::json!(["en"]), "every page in English");
    assert_eq!(
        report["sideways"],
        serde_json::json!([]),
        "no page of the journey scrolls sideways at 1280 px: {report}"
    );
    // The public verification page, given the signed PDF the browser downloaded, names the signer.
    let verified = report["verified"].as_str().unwrap_or_default();
    assert!(verified.contains("Ioana Dumitrescu"), "{verified}");
    // … and, from Parafa's trusted list, calls it a qualified electronic signature.
    assert!(verified.contains("Qualified electronic signature (QES)"), "{verified}");
    assert!(
        report["xfa_message"]
            .as_str()
            .unwrap_or_default()
            .contains("Smart PDF forms cannot be signed here"),
        "the XFA form is refused on upload with the rules' message: {report}"
    );

    // SignedFiles.zip, downloaded by the browser on its own: the signed PDF and the .p7s.
    let entries = zip_entries(&report);
    let names: Vec<&String> = entries.keys().collect();
    let signed_pdf = entries
        .iter()
        .find(|(n, _)| n.ends_with(".pdf"))
        .unwrap_or_else(|| panic!("a PDF in {names:?}"))
        .1;
    let p7s = entries
        .iter()
        .find(|(n, _)| n.ends_with(".p7s"))
        .unwrap_or_else(|| panic!("a .p7s in {names:?}"))
        .1;

    // pdfsig: one valid signature; pyHanko: intact, valid, trusted, the widget where the rectangle was drawn.
    let signed = work.join("signed.pdf");
    std::fs::write(&signed, signed_pdf).unwrap();
    let pdfsig = Command::new("pdfsig").arg(&signed).output().unwrap();
    let pdfsig = String::from_utf8_lossy(&pdfsig.stdout).into_owned();
    assert!(pdfsig.contains("Signature Validation: Signature is Valid."), "{pdfsig}");
    let (root_pem, _) = app.ca_pems();
    // Validated at the server's time: the journey moved its clock on (one TOTP step per code).
    let out = Command::new(python())
        .args([
            &judge_script(),
            "judge",
            signed.to_str().unwrap(),
            root_pem.to_str().unwrap(),
        ])
        .env("PARAFA_JUDGE_AT", app.now().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let judged: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sig = &judged["signatures"][0];
    assert_eq!(
        (&sig["intact"], &sig["valid"], &sig["trusted"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Bool(true)),
        "{judged}"
    );
    let drawn = &report["rect"];
    assert_eq!(
        sig["page"], drawn["page"],
        "the widget is on the page it was drawn on: {judged} {report}"
    );
    let want: Vec<f64> = drawn["rect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got: Vec<f64> = sig["rect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), 4, "{judged}");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 3.0, "widget {got:?}, drawn {want:?}");
    }

    // The .p7s encloses the text file, and OpenSSL verifies it against our chain.
    let (ok, content) = app.cms_verify(p7s, None);
    assert!(ok, "openssl cms -verify");
    assert_eq!(content, std::fs::read(&txt).unwrap());
}

/// The same journey on a phone (390 × 844, touch), in Romanian: every step works there and no page it ends on
/// scrolls sideways.
#[test]
fn the_same_journey_on_a_phone_in_a_romanian_browser_shows_romanian_pages_and_messages() {
    require_browser();
    let Journey {
        report, _guard: _kept, ..
    } = enrol_to_signed_zip("ro-RO", Some("390x844"), false);
    assert_eq!(report["langs"], serde_json::json!(["ro"]), "every page in Romanian");
    assert_eq!(
        report["sideways"],
        serde_json::json!([]),
        "no page of the journey scrolls sideways on a phone: {report}"
    );
    // The rules' Romanian wording (product rules §7), not the API's English.
    assert!(
        report["xfa_message"]
            .as_str()
            .unwrap_or_default()
            .contains("Formularele PDF inteligente nu se pot semna în platformă"),
        "{report}"
    );
    let names: Vec<String> = zip_entries(&report).into_keys().collect();
    assert!(
        names.iter().any(|n| n.ends_with(".pdf")) && names.iter().any(|n| n.ends_with(".p7s")),
        "{names:?}"
    );
}

#[test]
fn no_page_scrolls_sideways_on_a_laptop_or_a_phone() {
    require_browser();
    let app = TestApp::spawn_dev();
    let holder = app.create_holder_with("layout.browser@example.com", "p256", 1, true);
    let work = tempfile::tempdir().unwrap();
    let report = journey(
        &app,
        "layout.mjs",
        work.path(),
        &[
            ("E2E_HOLDER_EMAIL", holder.email.clone()),
            ("E2E_HOLDER_PASSWORD", common::HOLDER_PASSWORD.to_owned()),
            ("E2E_HOLDER_TOTP", holder.totp_secret.clone()),
            ("E2E_REGISTRY_Q", "Popescu".to_owned()),
        ],
    );
    println!("layout report: {report:#}");
    let measured = report["measured"].as_array().cloned().unwrap_or_default();
    let seen = |who: &str, path: &str, width: u64| {
        measured
            .iter()
            .any(|m| m["who"] == who && m["path"] == path && m["at"] == path && m["viewport"] == width)
    };
    // Every page was reached as itself (not a redirect to the login page), at both widths.
    for width in [1280, 390] {
        for path in ["/", "/verify", "/packages", "/legal", "/privacy"] {
            assert!(seen("visitor", path, width), "{path} at {width} px: {report}");
        }
        for path in [
            "/sign",
            "/signatures",
            "/certificates",
            "/orders",
            "/settings",
            "/packages",
        ] {
            assert!(seen("holder", path, width), "{path} at {width} px: {report}");
        }
    }
    assert_eq!(
        report["sideways"],
        serde_json::json!([]),
        "pages wider than the window (path, viewport, scrollWidth): {report}"
    );
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}

#[test]
fn a_holder_rekeys_an_expiring_certificate_in_the_browser_and_an_operator_approves() {
    require_browser();
    let app = TestApp::spawn_dev();
    let holder = app.create_holder_with("rekey.browser@example.com", "p256", 1, true);
    let operator = app.create_operator("oana.operator@example.com");
    // 40 days before the end of the one-year certificate: inside the rekey window.
    app.advance_clock((365 - 40) * 86_400);
    let work = tempfile::tempdir().unwrap();
    let (photo, big) = (work.path().join("id.png"), work.path().join("big.png"));
    let png = |len: usize| {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.resize(len, 0x42);
        p
    };
    std::fs::write(&photo, png(8 * 1024)).unwrap();
    std::fs::write(&big, png(3 * 1024 * 1024 + 1)).unwrap();
    let report = journey(
        &app,
        "rekey.mjs",
        work.path(),
        &[
            ("E2E_HOLDER_EMAIL", holder.email.clone()),
            ("E2E_HOLDER_PASSWORD", common::HOLDER_PASSWORD.to_owned()),
            ("E2E_HOLDER_TOTP", holder.totp_secret.clone()),
            ("E2E_HOLDER_GIVEN", "Ana Maria".to_owned()),
            ("E2E_HOLDER_SURNAME", "Popescu".to_owned()),
            ("E2E_CREDENTIAL", holder.credential_id.clone()),
            ("E2E_PHOTO", photo.display().to_string()),
            ("E2E_BIG_PHOTO", big.display().to_string()),
            ("E2E_OPERATOR_EMAIL", operator.email.clone()),
            ("E2E_OPERATOR_PASSWORD", common::HOLDER_PASSWORD.to_owned()),
            ("E2E_OPERATOR_TOTP", operator.totp_secret.clone()),
        ],
    );
    println!("rekey journey report: {report:#}");
    assert!(
        report["banner"].as_str().unwrap_or_default().contains("expires"),
        "the expiry banner: {report}"
    );
    assert!(
        report["photo_error"].as_str().unwrap_or_default().contains("3 MB"),
        "a copy over 3 MB is refused in the browser: {report}"
    );
    // What the holder's API says now: approved, with the successor's date 3 days before the end.
    let cookie = app.web_login(&holder);
    let (s, certs) = app.call("GET", "/api/v1/me/certificates", Some(&cookie), None);
    assert_eq!(s, 200, "{certs}");
    let rekey = &certs["certificates"][0]["rekey"];
    assert_eq!(rekey["request_state"], "approved", "{certs}");
    assert!(
        report["state"]
            .as_str()
            .unwrap_or_default()
            .contains(&common::bucharest_time(
                time::OffsetDateTime::parse(
                    rekey["successor_issue_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339
                )
                .unwrap()
                .unix_timestamp(),
                "en"
            )),
        "the page shows the successor's date: {report} {certs}"
    );
}
