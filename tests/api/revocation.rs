//! Revocation, judged by OpenSSL: the CRL (signed by the issuing CA in the token) lists a revoked certificate with
//! its reason and a growing CRL number; the OCSP responder answers good, revoked or unknown; a revoked credential
//! can no longer authorise.

use crate::common;

use std::path::{Path, PathBuf};

use common::{run, TestApp};
use serde_json::json;

/// `openssl …`; returns stdout and stderr together (OpenSSL prints verification results on stderr).
fn openssl(args: &[&str]) -> String {
    let out = run("openssl", args, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

struct Pki {
    chain: PathBuf,
    issuing: PathBuf,
}

fn pki(app: &TestApp) -> Pki {
    let (root, issuing) = app.ca_pems();
    let chain = app.data_dir.join("chain.pem");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&root).unwrap(),
        std::fs::read_to_string(&issuing).unwrap()
    );
    std::fs::write(&chain, text).unwrap();
    Pki { chain, issuing }
}

fn crl_text(app: &TestApp, path: &str, pki: &Pki) -> String {
    let der = app.get(path).bytes().unwrap();
    let file = app.data_dir.join("crl.der");
    std::fs::write(&file, &der).unwrap();
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        file.to_str().unwrap(),
        "-CAfile",
        pki.chain.to_str().unwrap(),
        "-noout",
        "-text",
    ])
}

fn ocsp(app: &TestApp, pki: &Pki, cert: &Path) -> String {
    ocsp_with(app, pki, cert, &[])
}

/// `openssl ocsp` for `cert` against the server, verified against the chain, with `extra` arguments.
fn ocsp_with(app: &TestApp, pki: &Pki, cert: &Path, extra: &[&str]) -> String {
    let url = app.url("/pki/ocsp");
    let mut args = vec![
        "ocsp",
        "-issuer",
        pki.issuing.to_str().unwrap(),
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        &url,
        "-CAfile",
        pki.chain.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    openssl(&args)
}

fn holder_pem(app: &TestApp, serial: &str, name: &str) -> PathBuf {
    let path = app.data_dir.join(format!("{name}.pem"));
    std::fs::write(&path, app.cli_ok(&["admin", "cert", serial])).unwrap();
    path
}

#[test]
fn revocation_shows_in_the_crl_and_in_ocsp_as_openssl_reads_them() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder_with("ana@example.com", "p256", 1, false);
    let ion = app.create_holder_with("ion@example.com", "rsa2048", 1, false);
    let (ana_pem, ion_pem) = (
        holder_pem(&app, &ana.certificate_serial, "ana"),
        holder_pem(&app, &ion.certificate_serial, "ion"),
    );

    let before = crl_text(&app, "/pki/crl", &pki);
    assert!(before.contains("verify OK"), "{before}");
    assert!(before.contains("No Revoked Certificates"), "{before}");
    assert!(
        before.contains("Issuer: C = RO, O = Parafa, CN = Parafa Qualified CA"),
        "{before}"
    );
    let answer = ocsp(&app, &pki, &ana_pem);
    assert!(
        answer.contains("Response verify OK") && answer.contains(": good"),
        "{answer}"
    );

    let out = app.cli_ok(&["admin", "revoke", &ana.credential_id, "--reason", "key_compromise"]);
    assert!(out.contains("revoked"), "{out}");
    let again = app.cli(&["admin", "revoke", &ana.credential_id, "--reason", "key_compromise"]);
    assert!(!again.status.success(), "a second revocation is refused");
    let bad = app.cli(&["admin", "revoke", &ion.credential_id, "--reason", "because"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("reason"));

    let after = crl_text(&app, "/pki/crl", &pki);
    assert!(after.contains("verify OK"), "{after}");
    assert!(
        after.contains(&format!("Serial Number: {}", ana.certificate_serial.to_uppercase())),
        "{after}"
    );
    assert!(after.contains("Key Compromise"), "{after}");
    assert!(!after.contains(&ion.certificate_serial.to_uppercase()), "{after}");
    let number = |text: &str| -> i64 {
        let at = text.find("X509v3 CRL Number:").expect("CRL number");
        text[at..].lines().nth(1).unwrap().trim().parse().unwrap()
    };
    assert!(number(&after) > number(&before), "the CRL number grows");

    let answer = ocsp(&app, &pki, &ana_pem);
    assert!(
        answer.contains("Response verify OK") && answer.contains(": revoked"),
        "{answer}"
    );
    assert!(answer.contains("Reason: keyCompromise"), "{answer}");
    let answer = ocsp(&app, &pki, &ion_pem);
    assert!(answer.contains(": good"), "{answer}");
    let unknown = openssl(&[
        "ocsp",
        "-issuer",
        pki.issuing.to_str().unwrap(),
        "-serial",
        "0x1234567890",
        "-url",
        &app.url("/pki/ocsp"),
        "-CAfile",
        pki.chain.to_str().unwrap(),
    ]);
    assert!(unknown.contains(": unknown"), "{unknown}");

    // The root's CRL lists nothing and verifies against the root.
    let root_crl = crl_text(&app, "/pki/root.crl", &pki);
    assert!(
        root_crl.contains("verify OK") && root_crl.contains("CN = Parafa Root CA"),
        "{root_crl}"
    );

    // A revoked credential cannot authorise any more.
    let token = app.login(&ana);
    let (status, out) = app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": ana.credential_id, "numSignatures": 1,
                "hashes": ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
                "authData": [{"id": "otp", "value": app.fresh_totp(&ana)}]}),
    );
    assert_eq!(status, 400);
    assert!(out["error_description"].as_str().unwrap().contains("revoked"), "{out}");
}

#[test]
fn a_malformed_ocsp_request_gets_an_ocsp_error_not_a_crash() {
    let app = TestApp::spawn();
    let r = app
        .client
        .post(app.url("/pki/ocsp"))
        .header("Content-Type", "application/ocsp-request")
        .body(b"not DER at all".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let der = r.bytes().unwrap();
    let file = app.data_dir.join("resp.der");
    std::fs::write(&file, &der).unwrap();
    // OpenSSL reads it as a well-formed OCSP response carrying the malformedRequest status (and exits non-zero).
    let out = run(
        "openssl",
        &["ocsp", "-respin", file.to_str().unwrap(), "-resp_text", "-noverify"],
        &[],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Responder Error: malformedrequest (1)"), "{text}");
    assert_eq!(app.get("/health").status(), 200);
}

#[test]
fn the_holder_revokes_with_a_totp_code() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder("ana@example.com", "p256", 1);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let login = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": ana.email, "password": common::HOLDER_PASSWORD, "totp": app.fresh_totp(&ana)}))
        .send()
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let revoke = |totp: String| {
        app.client
            .post(app.url(&format!("/api/v1/me/credentials/{}/revoke", ana.credential_id)))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", common::csrf_for(&cookie))
            .json(&json!({"reason": "cessation_of_operation", "totp": totp}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let good = app.fresh_totp(&ana);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    assert_eq!(revoke(wrong.into()), 401, "a wrong code revokes nothing");
    assert!(ocsp(&app, &pki, &pem).contains(": good"));
    assert_eq!(revoke(good), 200);
    let answer = ocsp(&app, &pki, &pem);
    assert!(
        answer.contains(": revoked") && answer.contains("cessationOfOperation"),
        "{answer}"
    );
}

/// `openssl ocsp` without a nonce, the response kept in `<name>.der`; returns its text.
fn ocsp_no_nonce(app: &TestApp, pki: &Pki, cert: &Path, name: &str) -> String {
    let out = app.data_dir.join(format!("{name}.der"));
    ocsp_with(
        app,
        pki,
        cert,
        &["-no_nonce", "-respout", out.to_str().unwrap(), "-resp_text"],
    )
}

fn produced_at(text: &str) -> String {
    let at = text.find("Produced At:").expect("Produced At");
    text[at..].lines().next().unwrap().to_owned()
}

/// RFC 5019 style: a signed answer is reused (same producedAt) for the same certificate and status while it is
/// fresh, and a revocation is answered `revoked` at once, the cached `good` notwithstanding.
#[test]
fn ocsp_answers_are_reused_until_the_status_changes() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder_with("ocsp.cache@example.com", "p256", 1, false);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let first = ocsp_no_nonce(&app, &pki, &pem, "first");
    assert!(
        first.contains("Response verify OK") && first.contains(": good"),
        "{first}"
    );
    assert!(first.contains("Next Update:"), "{first}");
    app.advance_clock(60);
    let second = ocsp_no_nonce(&app, &pki, &pem, "second");
    assert!(second.contains(": good"), "{second}");
    assert_eq!(produced_at(&first), produced_at(&second), "served from the cache");

    // Another process revokes (as another instance would): the next answer is `revoked`, freshly signed.
    app.cli_ok(&["admin", "revoke", &ana.credential_id, "--reason", "key_compromise"]);
    let revoked = ocsp_no_nonce(&app, &pki, &pem, "revoked");
    assert!(
        revoked.contains("Response verify OK") && revoked.contains(": revoked"),
        "{revoked}"
    );
    assert_ne!(produced_at(&first), produced_at(&revoked));

    // Past the cache's lifetime (tsa_ocsp.ocsp_cache_secs, 300 s) a new answer is signed.
    app.advance_clock(301);
    let later = ocsp_no_nonce(&app, &pki, &pem, "later");
    assert!(later.contains(": revoked"), "{later}");
    assert_ne!(produced_at(&revoked), produced_at(&later));
}

/// RFC 8954: a nonce of 1 to 32 bytes is echoed; a longer one gets `malformedRequest` (not an echo of any length).
#[test]
fn ocsp_nonces_longer_than_32_bytes_get_malformed_request() {
    use der::{Decode, Encode};
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder_with("ocsp.nonce@example.com", "p256", 1, false);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let base = app.data_dir.join("base.req");
    openssl(&[
        "ocsp",
        "-issuer",
        pki.issuing.to_str().unwrap(),
        "-cert",
        pem.to_str().unwrap(),
        "-reqout",
        base.to_str().unwrap(),
    ]);
    let with_nonce = |len: usize| -> Vec<u8> {
        let mut req = x509_ocsp::OcspRequest::from_der(&std::fs::read(&base).unwrap()).unwrap();
        let nonce = der::asn1::OctetString::new(vec![0x5a; len]).unwrap().to_der().unwrap();
        let exts = req
            .tbs_request
            .request_extensions
            .as_mut()
            .expect("openssl sends a nonce");
        exts[0].extn_value = der::asn1::OctetString::new(nonce).unwrap();
        req.to_der().unwrap()
    };
    let ask = |len: usize| -> String {
        let body = app
            .client
            .post(app.url("/pki/ocsp"))
            .header("Content-Type", "application/ocsp-request")
            .body(with_nonce(len))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        let file = app.data_dir.join(format!("nonce-{len}.der"));
        std::fs::write(&file, &body).unwrap();
        let out = run(
            "openssl",
            &["ocsp", "-respin", file.to_str().unwrap(), "-resp_text", "-noverify"],
            &[],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let ok = ask(32);
    assert!(ok.contains("OCSP Nonce") && ok.contains(&"5A".repeat(4)), "{ok}");
    for len in [33, 4096] {
        let refused = ask(len);
        assert!(refused.to_lowercase().contains("malformedrequest"), "{len}: {refused}");
    }
    assert_eq!(app.get("/health").status(), 200);
}

/// A nonce asks the token for a signature of its own. Past the instance's budget of such answers
/// (`ocsp_fresh_per_minute`), the nonce is left out and the answer is the cached one for the certificate, which
/// `openssl ocsp` still verifies (warning that there is no nonce): a flood of nonces cannot keep the token busy.
#[test]
fn past_the_budget_of_fresh_answers_a_nonce_is_left_out_and_the_answer_still_verifies() {
    let app = TestApp::spawn_on(common::Backend::Sqlite, &[("PARAFA_OCSP_FRESH_PER_MINUTE", "2")]);
    let pki = pki(&app);
    let ana = app.create_holder_with("ocsp.fresh@example.com", "p256", 1, false);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let first = ocsp_no_nonce(&app, &pki, &pem, "cached");
    assert!(
        first.contains("Response verify OK") && first.contains(": good"),
        "{first}"
    );
    for i in 0..2 {
        let fresh = ocsp(&app, &pki, &pem);
        assert!(
            fresh.contains("Response verify OK") && fresh.contains(": good"),
            "{i}: {fresh}"
        );
        assert!(
            !fresh.contains("WARNING: no nonce"),
            "{i}: the nonce is echoed: {fresh}"
        );
    }
    let past = ocsp_with(&app, &pki, &pem, &["-resp_text"]);
    assert!(past.contains("WARNING: no nonce in response"), "{past}");
    assert!(past.contains("Response verify OK") && past.contains(": good"), "{past}");
    assert_eq!(produced_at(&past), produced_at(&first), "the cached answer was sent");
}

/// Past the instance's OCSP rate limit the answer is the OCSP `tryLater` status, and the server stays up.
#[test]
fn ocsp_requests_past_the_rate_limit_get_try_later() {
    let app = TestApp::spawn_on(common::Backend::Sqlite, &[("PARAFA_OCSP_PER_MINUTE", "2")]);
    let pki = pki(&app);
    let issuing = pki.issuing.to_str().unwrap();
    let req = app.data_dir.join("serial.req");
    openssl(&[
        "ocsp",
        "-issuer",
        issuing,
        "-serial",
        "0x1234",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    let status = |i: usize| -> String {
        let body = app
            .client
            .post(app.url("/pki/ocsp"))
            .header("Content-Type", "application/ocsp-request")
            .body(std::fs::read(&req).unwrap())
            .send()
            .unwrap();
        assert_eq!(body.status(), 200);
        let file = app.data_dir.join(format!("limited-{i}.der"));
        std::fs::write(&file, body.bytes().unwrap()).unwrap();
        let out = run(
            "openssl",
            &["ocsp", "-respin", file.to_str().unwrap(), "-resp_text", "-noverify"],
            &[],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for i in 0..2 {
        assert!(status(i).contains("successful"), "{i}");
    }
    let limited = status(2);
    assert!(limited.to_lowercase().contains("trylater"), "{limited}");
    assert_eq!(app.get("/health").status(), 200);
}

/// Erasure is a destructive act: the session alone, or the password without the authenticator's code, revokes
/// nothing; with both, each certificate is revoked through the one revocation path (OCSP and the CRL show it, an
/// audit row per certificate), and the account's keys are destroyed in the token.
#[test]
fn erasure_asks_the_password_and_a_totp_code_then_revokes_and_destroys_the_keys() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder("erase.me@example.com", "p256", 1);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let cookie = app.web_login(&ana);
    let erase = |body: serde_json::Value| app.call("POST", "/api/v1/me/erasure", Some(&cookie), Some(body));
    let key_in_token = || -> bool {
        let objects: Vec<serde_json::Value> = serde_json::from_str(&app.cli_ok(&["hsm", "list", "--json"])).unwrap();
        objects.iter().any(|o| o.to_string().contains(&ana.credential_id))
    };
    assert!(key_in_token(), "the holder's key is in the token to begin with");

    let good = app.fresh_totp(&ana);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for (what, body) in [
        ("the session alone", json!({"confirm": true})),
        (
            "a wrong password",
            json!({"confirm": true, "password": "not the password", "totp": good}),
        ),
        ("no code", json!({"confirm": true, "password": common::HOLDER_PASSWORD})),
        (
            "a wrong code",
            json!({"confirm": true, "password": common::HOLDER_PASSWORD, "totp": wrong}),
        ),
    ] {
        let (status, out) = erase(body);
        assert!((400..500).contains(&status), "{what}: {status} {out}");
        assert!(ocsp(&app, &pki, &pem).contains(": good"), "{what}: nothing revoked");
    }
    assert!(key_in_token(), "nothing destroyed");

    let (status, report) = erase(json!({"confirm": true, "password": common::HOLDER_PASSWORD,
                                        "totp": app.fresh_totp(&ana)}));
    assert_eq!(status, 200, "{report}");
    let answer = ocsp(&app, &pki, &pem);
    assert!(
        answer.contains("Response verify OK")
            && answer.contains(": revoked")
            && answer.contains("cessationOfOperation"),
        "{answer}"
    );
    let crl = crl_text(&app, "/pki/crl", &pki);
    assert!(
        crl.contains(&format!("Serial Number: {}", ana.certificate_serial.to_uppercase())),
        "{crl}"
    );
    assert!(!key_in_token(), "the key pair is destroyed in the token");
    let db = app.data_dir.join("parafa.db");
    let count = |sql: &str| -> String {
        let out = run("sqlite3", &[db.to_str().unwrap(), sql], &[]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let serial = &ana.certificate_serial;
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'certificate.revoke' AND target = '{serial}'"
        )),
        "1",
        "one revocation audited for the certificate"
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'credential.key_destroyed' AND details LIKE '%{serial}%'"
        )),
        "1",
        "the key destruction audited with the certificate"
    );
    // The holder is told, as by any revocation (the notice is the one message erasure lets go out).
    let told = (0..40).any(|_| {
        let found = app
            .messages_to(&ana.email, 1)
            .iter()
            .any(|m| m.contains(serial.as_str()));
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        found
    });
    assert!(told, "the revocation e-mail names the certificate");
}

/// The `data-api` of the form `id` in a page, unescaped.
fn form_api(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let tag = &html[at..at + html[at..].find('>').expect("tag end")];
    let key = "data-api=\"";
    let start = tag.find(key).expect("data-api") + key.len();
    tag[start..start + tag[start..].find('"').expect("quote")].replace("&#x2f;", "/")
}

#[test]
fn the_holder_revokes_from_the_certificates_page_and_crl_ocsp_and_the_email_say_so() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let ana = app.create_holder("ana@example.com", "p256", 1);
    let pem = holder_pem(&app, &ana.certificate_serial, "ana");
    let cred = ana.credential_id.clone();
    let cookie = app.web_login(&ana);
    app.consent(&cookie);

    // The certificates page leads to the revocation page.
    let (s, html) = app.page("/certificates", "ro", Some(&cookie));
    assert_eq!(s, 200, "{html}");
    let link = format!("id=\"revoke-{cred}\" href=\"/certificates/{cred}/revoke\"");
    assert!(html.contains(&link), "{html}");
    let path = format!("/certificates/{cred}/revoke");
    let (s, ro) = app.page(&path, "ro", Some(&cookie));
    assert_eq!(s, 200, "{ro}");
    assert!(ro.contains("Motivul revocării") && ro.contains("definitivă"), "{ro}");
    let (_, html) = app.page(&path, "en", Some(&cookie));
    assert!(
        html.contains("Reason for revocation") && html.contains(&ana.certificate_serial),
        "{html}"
    );
    for reason in [
        "key_compromise",
        "affiliation_changed",
        "superseded",
        "cessation_of_operation",
        "unspecified",
    ] {
        assert!(
            html.contains(&format!("name=\"reason\" type=\"radio\" value=\"{reason}\"")),
            "{reason}: {html}"
        );
    }
    // The confirmation: an acknowledgement the browser requires and a question before sending.
    assert!(
        html.contains("id=\"revoke-ack\" type=\"checkbox\" data-skip required"),
        "{html}"
    );
    assert!(
        html.contains("id=\"revoke-submit\" class=\"danger\" type=\"submit\" data-confirm="),
        "{html}"
    );
    assert!(html.contains("name=\"totp\""), "{html}");
    let api = form_api(&html, "revoke-form");
    assert_eq!(api, format!("/api/v1/me/credentials/{cred}/revoke"));
    let (s, _) = app.page(&format!("/certificates/{}/revoke", "not-mine"), "en", Some(&cookie));
    assert_eq!(s, 404, "only one's own certificates");

    // Sent as the form sends it: a wrong code revokes nothing, the right one revokes.
    let good = app.fresh_totp(&ana);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let (s, out) = app.call(
        "POST",
        &api,
        Some(&cookie),
        Some(json!({"reason": "key_compromise", "totp": wrong})),
    );
    assert_eq!(s, 401, "{out}");
    assert!(ocsp(&app, &pki, &pem).contains(": good"));
    let mails_before = app.messages_to(&ana.email, 0).len();
    let (s, out) = app.call(
        "POST",
        &api,
        Some(&cookie),
        Some(json!({"reason": "key_compromise", "totp": app.fresh_totp(&ana)})),
    );
    assert_eq!((s, out["status"].as_str()), (200, Some("revoked")), "{out}");

    // The certificate shows revoked, and cannot be revoked again from the page.
    let (_, html) = app.page("/certificates", "en", Some(&cookie));
    assert!(
        html.contains(&format!("id=\"cert-{cred}\" data-status=\"revoked\"")),
        "{html}"
    );
    assert!(!html.contains(&link), "no revocation link on a revoked certificate");
    let (_, html) = app.page(&path, "en", Some(&cookie));
    assert!(
        html.contains("id=\"revoke-not-possible\"") && !html.contains("id=\"revoke-form\""),
        "{html}"
    );

    // The e-mail (rules §12 row 14) gives the reason and the effect.
    let mail = app
        .messages_to(&ana.email, mails_before + 1)
        .into_iter()
        .find(|m| m.contains("Kind: certificate_revoked"))
        .expect("the revocation e-mail");
    assert!(
        mail.contains(&ana.certificate_serial) && mail.contains("key_compromise"),
        "{mail}"
    );
    assert!(
        mail.contains("Nu mai poate semna") || mail.contains("can no longer sign"),
        "the effect: {mail}"
    );

    // The CRL and OCSP, as openssl reads them.
    let crl = crl_text(&app, "/pki/crl", &pki);
    assert!(crl.contains("verify OK"), "{crl}");
    assert!(
        crl.contains(&format!("Serial Number: {}", ana.certificate_serial.to_uppercase()))
            && crl.contains("Key Compromise"),
        "{crl}"
    );
    let answer = ocsp(&app, &pki, &pem);
    assert!(
        answer.contains("Response verify OK") && answer.contains(": revoked") && answer.contains("keyCompromise"),
        "{answer}"
    );
}
