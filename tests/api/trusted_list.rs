//! The trusted list of Parafa's trust services (`/pki/tl.xml`, ETSI TS 119 612) and what outside validators make
//! of it: `xmlsec1` verifies its XAdES signature with the scheme operator's certificate (`/pki/tl-operator.crt`),
//! pyHanko 0.38's trusted-list code (`trust_list_to_registry`, signxml underneath) parses and verifies it, and with
//! only that list as its source of trust pyHanko's `QualificationAssessor` calls a Parafa PAdES B-LTA signature a
//! qualified electronic signature (a qualified certificate for e-signatures, its key in a QSCD managed on the
//! holder's behalf) with a qualified timestamp. A withdrawn service goes to the history and the list is signed
//! afresh; a list changed by a byte is refused by both judges.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{run, run_ok, TestApp};
use serde_json::{json, Value};

const SIGNED_PROPERTIES_ID: &str = "--id-attr:Id";
const XADES_SIGNED_PROPERTIES: &str = "http://uri.etsi.org/01903/v1.3.2#:SignedProperties";

fn python() -> String {
    crate::pyhanko::venv_python().to_str().unwrap().to_owned()
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// The list and the operator's certificate (PEM) as served, saved in `dir`.
fn fetch(app: &TestApp, dir: &Path, name: &str) -> (String, PathBuf, PathBuf) {
    let res = app.get("/pki/tl.xml");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/vnd.etsi.tsl+xml"
    );
    let xml = res.text().unwrap();
    let tl = dir.join(name);
    std::fs::write(&tl, &xml).unwrap();
    let der = app.get("/pki/tl-operator.crt").bytes().unwrap();
    let pem = dir.join("tl-operator.pem");
    std::fs::write(&pem, parafa::ca::pem(&der)).unwrap();
    (xml, tl, pem)
}

/// `xmlsec1 --verify` with the operator's certificate as the only key: (verified, its output).
fn xmlsec1(tl: &Path, operator: &Path) -> (bool, String) {
    let out = run(
        "xmlsec1",
        &[
            "--verify",
            "--pubkey-cert-pem",
            operator.to_str().unwrap(),
            SIGNED_PROPERTIES_ID,
            XADES_SIGNED_PROPERTIES,
            tl.to_str().unwrap(),
        ],
        &[],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// pyHanko's verdict (tests/python/tl_judge.py): (exit success, JSON report).
fn pyhanko(tl: &Path, operator: &Path, pdf: Option<&Path>) -> (bool, Value) {
    let mut args = vec![
        script("tl_judge.py"),
        tl.to_str().unwrap().into(),
        operator.to_str().unwrap().into(),
    ];
    if let Some(pdf) = pdf {
        args.push(pdf.to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&python(), &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("tl_judge.py: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

fn sequence(xml: &str) -> u64 {
    let start = xml.find("<TSLSequenceNumber>").unwrap() + "<TSLSequenceNumber>".len();
    let end = xml[start..].find('<').unwrap();
    xml[start..start + end].parse().unwrap()
}

/// A PDF signed by a new holder through signDoc at `level` (`AdES-B-LTA`, …).
fn signed_pdf(app: &TestApp, dir: &Path, email: &str, level: &str) -> PathBuf {
    let plain = dir.join("plain.pdf");
    run_ok(
        &python(),
        &[&script("pdf_judge.py"), "make", plain.to_str().unwrap(), "1"],
    );
    let pdf = std::fs::read(&plain).unwrap();
    let h = app.create_holder(email, "rsa2048", 1);
    let token = app.login(&h);
    let signed = crate::pdf_signing::sign_levels(app, &h, &token, &pdf, &[level], "1.2.840.113549.1.1.11");
    let path = dir.join(format!("{level}.pdf"));
    std::fs::write(&path, &signed[0]).unwrap();
    path
}

#[test]
fn outside_validators_given_only_the_published_list_call_a_parafa_signature_qualified() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let (xml, tl, operator) = fetch(&app, dir.path(), "tl.xml");

    // The operator's certificate is a trusted-list signing certificate (TS 119 612 §5.7.1).
    let text = run_ok(
        "openssl",
        &["x509", "-in", operator.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(text.contains("0.4.0.2231.3.0"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");

    let (ok, out) = xmlsec1(&tl, &operator);
    assert!(ok, "xmlsec1 refused the list:\n{out}");
    assert!(out.contains("SignedInfo References (ok/all): 2/2"), "{out}");

    // Served again: the same list, not a new signature per request.
    let again = app.get("/pki/tl.xml").text().unwrap();
    assert_eq!(again, xml);
    assert_eq!(sequence(&xml), 1);

    // The CA/QC service is the issuing CA, the QTST service the TSA certificate, both granted, with the
    // qualifiers the issuance profile needs.
    let issuing = app.get("/pki/issuing.crt").bytes().unwrap();
    let tsa = app.get("/pki/tsa.crt").bytes().unwrap();
    assert!(xml.contains(&b64(&issuing)), "the issuing CA is a service");
    assert!(xml.contains(&b64(&tsa)), "the TSA certificate is a service");
    assert_eq!(xml.matches("/Svcstatus/granted</ServiceStatus>").count(), 2, "{xml}");
    for qualifier in ["QCForESig", "QCQSCDManagedOnBehalf"] {
        assert!(xml.contains(&format!("SvcInfoExt/{qualifier}\"")), "{qualifier}");
    }

    let pdf = signed_pdf(&app, dir.path(), "qualified@example.com", "AdES-B-LTA");
    let (ok, report) = pyhanko(&tl, &operator, Some(&pdf));
    assert!(ok, "{report}");
    assert_eq!(report["list_valid"], true, "{report}");
    assert_eq!(report["parse_errors"], json!([]), "{report}");
    assert_eq!(report["schema_error"], Value::Null, "{report}");
    let sig = &report["signatures"][0];
    assert_eq!(sig["ades"], "AdESPassed.OK", "{report}");
    assert_eq!(
        sig["signer"],
        json!({"qualified": true, "type": "QC_ESIGN", "key": "QSCD_DELEGATED",
               "service": "Parafa Qualified CA", "service_type": "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"}),
        "{report}"
    );
    assert_eq!(sig["timestamp_trusted"], true, "{report}");
    assert_eq!(sig["timestamp"]["qualified"], true, "{report}");
    assert_eq!(
        sig["timestamp"]["service_type"], "http://uri.etsi.org/TrstSvc/Svctype/TSA/QTST",
        "{report}"
    );

    // Parafa's own verification says the same, from the same services.
    let (s, own) = crate::verify::verify(&app, &std::fs::read(&pdf).unwrap(), None);
    assert_eq!(s, 200, "{own}");
    let q = &own["signatures"][0]["qualification"];
    assert_eq!(
        (&q["signature"], &q["certificate_type"], &q["qscd"], &q["timestamp"]),
        (&json!("qualified"), &json!("esign"), &json!(true), &json!("qualified")),
        "{own}"
    );
    assert_eq!(q["reasons"], json!([]), "{own}");
    assert_eq!(q["service"], "Parafa Qualified CA");
    assert_eq!(own["signatures"][1]["kind"], "document_timestamp", "{own}");
    assert_eq!(own["signatures"][1]["qualification"]["timestamp"], "qualified", "{own}");

    // One byte changed in what the list says: both judges refuse it.
    let forged = xml.replacen("Parafa Qualified CA", "Parafa Qualified CB", 1);
    let forged_path = dir.path().join("forged.xml");
    std::fs::write(&forged_path, forged).unwrap();
    let (ok, out) = xmlsec1(&forged_path, &operator);
    assert!(!ok, "xmlsec1 accepted a changed list:\n{out}");
    let (ok, report) = pyhanko(&forged_path, &operator, None);
    assert!(!ok && report["list_valid"] == false, "{report}");
}

#[test]
fn a_withdrawn_service_moves_to_the_history_of_a_list_signed_afresh() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let (first, _, _) = fetch(&app, dir.path(), "tl-1.xml");
    let shown = app.cli_ok(&["admin", "tl", "show"]);
    let qtst = shown
        .lines()
        .find_map(|l| l.split_whitespace().next().filter(|id| id.starts_with("qtst-")))
        .unwrap_or_else(|| panic!("no QTST service in:\n{shown}"))
        .to_owned();
    assert!(
        shown.starts_with(&format!("trusted list {} ", sequence(&first))),
        "{shown}"
    );

    let out = app.cli_ok(&["admin", "tl", "status", &qtst, "withdrawn", "--reason", "key retired"]);
    assert!(out.contains("withdrawn since"), "{out}");
    assert!(out.contains("(key retired)"), "{out}");
    let unknown = app.cli(&["admin", "tl", "status", "qtst-nope", "withdrawn", "--reason", "x"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no trust service"));

    // The server serves the new list once its short cache lapses.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (xml, tl, operator) = loop {
        let fetched = fetch(&app, dir.path(), "tl-2.xml");
        if sequence(&fetched.0) > sequence(&first) || Instant::now() > deadline {
            break fetched;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(sequence(&xml), sequence(&first) + 1, "{xml}");
    let (ok, out) = xmlsec1(&tl, &operator);
    assert!(ok, "{out}");
    // The TSA's current status is withdrawn; its granted period is in its history.
    assert!(xml.contains("/Svcstatus/withdrawn</ServiceStatus>"), "{xml}");
    assert!(xml.contains("<ServiceHistory>"), "{xml}");
    let (ok, report) = pyhanko(&tl, &operator, None);
    assert!(ok && report["list_valid"] == true, "{report}");

    // A timestamp made after the QTST's withdrawal is not a qualified one, and the verification says why; the
    // signature is still a qualified electronic signature.
    let pdf = signed_pdf(&app, dir.path(), "after-withdrawal@example.com", "AdES-B-T");
    let (s, own) = crate::verify::verify(&app, &std::fs::read(&pdf).unwrap(), None);
    assert_eq!(s, 200, "{own}");
    let q = &own["signatures"][0]["qualification"];
    assert_eq!(
        (&q["signature"], &q["timestamp"]),
        (&json!("qualified"), &json!("not_qualified")),
        "{own}"
    );
    assert_eq!(q["reasons"], json!(["timestamp_service_not_granted"]), "{own}");
    let (_, report) = pyhanko(&tl, &operator, Some(&pdf));
    assert_ne!(report["signatures"][0]["ades"], "AdESPassed.OK", "{report}");

    // `sign` makes the next number whatever changed; `show --xml` prints the list served.
    app.cli_ok(&["admin", "tl", "sign"]);
    let printed = app.cli_ok(&["admin", "tl", "show", "--xml"]);
    assert_eq!(sequence(&printed), sequence(&xml) + 1);
}

#[test]
fn two_instances_asked_at_once_serve_one_list() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    let lists: Vec<String> = std::thread::scope(|s| {
        let asks: Vec<_> = (0..8)
            .map(|i| {
                let app = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || app.get("/pki/tl.xml").text().unwrap())
            })
            .collect();
        asks.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Both instances raced to sign number 1; one list was stored and everyone got it.
    assert!(lists.iter().all(|l| *l == lists[0]), "different lists were served");
    assert_eq!(sequence(&lists[0]), 1);
    let dir = tempfile::tempdir().unwrap();
    let (_, tl, operator) = fetch(&b, dir.path(), "tl.xml");
    let (ok, out) = xmlsec1(&tl, &operator);
    assert!(ok, "{out}");
}
