//! Signature verification (rules §11): `POST /api/v1/verify` and the public page `/verify`, judged against
//! pdfsig and OpenSSL: a PDF signed through the service is intact, trusted, timestamped and covers the whole file
//! (pdfsig agrees), one flipped byte breaks it (pdfsig agrees); a `.p7s` of the service verifies and gives its
//! content back; OpenSSL's self-signed `.p7s` is intact but not trusted; a detached `.p7s` needs its content;
//! garbage is refused with a 400.

use crate::common;

use std::path::Path;

use base64::Engine;
use common::{run, run_ok, TestApp};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};

fn python() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin/python")
        .to_str()
        .unwrap()
        .to_owned()
}

fn make_pdf(dir: &Path) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pdf_judge.py");
    let out = dir.join("plain.pdf");
    run_ok(
        &python(),
        &[script.to_str().unwrap(), "make", out.to_str().unwrap(), "1"],
    );
    std::fs::read(out).unwrap()
}

/// `POST /api/v1/verify` without a session.
pub(crate) fn verify(app: &TestApp, file: &[u8], content: Option<&[u8]>) -> (u16, Value) {
    verify_in(app, file, content, None)
}

/// [`verify`] asking for the answer in `lang` (`Accept-Language`, as the Romanian page's browser sends it).
pub(crate) fn verify_in(app: &TestApp, file: &[u8], content: Option<&[u8]>, lang: Option<&str>) -> (u16, Value) {
    let mut form = Form::new().part("file", Part::bytes(file.to_vec()).file_name("signed"));
    if let Some(c) = content {
        form = form.part("content", Part::bytes(c.to_vec()).file_name("content"));
    }
    let mut request = app.client.post(app.url("/api/v1/verify")).multipart(form);
    if let Some(lang) = lang {
        request = request.header("Accept-Language", lang);
    }
    let r = request.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// Signs `files` in a web signing job of `holder`; returns the signed files.
fn sign(app: &TestApp, h: &common::Holder, files: &[(&str, &[u8])]) -> Vec<Vec<u8>> {
    let cookie = app.web_login(h);
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part("files", Part::bytes(bytes.to_vec()).file_name(name.to_string()));
    }
    let r = app
        .client
        .post(app.url("/api/v1/sign-jobs"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let job: Value = r.json().unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": app.fresh_totp(h)})),
    );
    assert_eq!(s, 200, "{out}");
    (0..files.len())
        .map(|n| {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/sign-jobs/{id}/files/{n}")))
                .header("Cookie", &cookie)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().unwrap().to_vec()
        })
        .collect()
}

fn pdfsig_valid(path: &Path) -> (bool, String) {
    let out = run("pdfsig", &["-nocert", path.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text.contains("Signature Validation: Signature is Valid."), text)
}

#[test]
fn signatures_of_the_service_verify_and_a_changed_byte_breaks_them_as_pdfsig_says() {
    let app = TestApp::spawn();
    let h = app.create_holder("verify@example.com", "p256", 1);
    app.consent(&app.web_login(&h));
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path());
    let contract = "Contract between A and B — semnat în București\n".as_bytes().to_vec();
    let signed = sign(&app, &h, &[("contract.pdf", &pdf), ("contract.txt", &contract)]);

    // The signed PDF: intact, trusted, timestamped, whole file; pdfsig agrees.
    let (s, out) = verify(&app, &signed[0], None);
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["kind"], "pdf");
    let sig = &out["signatures"][0];
    assert_eq!(out["signatures"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(sig["intact"], true, "{out}");
    assert_eq!(sig["trusted"], true, "{out}");
    assert_eq!(sig["issued_by_parafa"], true, "{out}");
    assert_eq!(sig["status"], "valid", "{out}");
    assert_eq!(sig["revoked"], false, "{out}");
    assert_eq!(sig["coverage"], "whole file", "{out}");
    assert_eq!(sig["later_changes"], false, "{out}");
    assert_eq!(sig["signer"]["common_name"], "Ana Maria Popescu", "{out}");
    assert_eq!(sig["signer"]["serial"], h.certificate_serial.as_str(), "{out}");
    assert_eq!(sig["algorithm"], "ECDSA P-256 SHA-256", "{out}");
    assert_eq!(sig["timestamp"]["intact"], true, "{out}");
    assert_eq!(sig["timestamp"]["trusted"], true, "{out}");
    assert_eq!(sig["signing_time_source"], "timestamp", "{out}");
    let t = sig["signing_time"].as_i64().unwrap();
    assert!((t - app.now()).abs() < 600, "{out}");
    assert!(sig["problems"].as_array().unwrap().is_empty(), "{out}");
    let path = dir.path().join("signed.pdf");
    std::fs::write(&path, &signed[0]).unwrap();
    let (valid, text) = pdfsig_valid(&path);
    assert!(valid, "{text}");
    assert!(text.contains("Total document signed"), "{text}");

    // One byte of the signed original flipped: not intact, pdfsig agrees.
    let mut broken = signed[0].clone();
    let at = pdf.len() / 2;
    broken[at] ^= 0x01;
    let (s, out) = verify(&app, &broken, None);
    assert_eq!(s, 200, "{out}");
    let sig = &out["signatures"][0];
    assert_eq!(sig["intact"], false, "{out}");
    assert_eq!(sig["digest_matches"], false, "{out}");
    let bpath = dir.path().join("broken.pdf");
    std::fs::write(&bpath, &broken).unwrap();
    let (valid, text) = pdfsig_valid(&bpath);
    assert!(!valid, "pdfsig should refuse it too:\n{text}");
    assert!(text.contains("Signature Validation:"), "{text}");

    // Bytes appended after the signature: still intact, but later changes and only a revision covered.
    let mut appended = signed[0].clone();
    appended.extend_from_slice(b"\n% appended\n%%EOF\n");
    let (_, out) = verify(&app, &appended, None);
    let sig = &out["signatures"][0];
    assert_eq!(sig["intact"], true, "{out}");
    assert_eq!(sig["later_changes"], true, "{out}");
    assert_eq!(sig["coverage"], "revision 2 of 3", "{out}");

    // The .p7s: intact, trusted, and its content comes back byte for byte, with a text preview.
    let (s, out) = verify(&app, &signed[1], None);
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["kind"], "p7s");
    assert_eq!(out["detached"], false);
    let sig = &out["signatures"][0];
    assert_eq!(
        (sig["intact"].as_bool(), sig["trusted"].as_bool()),
        (Some(true), Some(true)),
        "{out}"
    );
    assert_eq!(sig["timestamp"]["intact"], true, "{out}");
    assert_eq!(sig["signer"]["common_name"], "Ana Maria Popescu", "{out}");
    let back = base64::engine::general_purpose::STANDARD
        .decode(out["content"]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(back, contract);
    assert_eq!(out["content"]["text"].as_str().unwrap().as_bytes(), contract.as_slice());
    // OpenSSL agrees with the content.
    assert_eq!(app.cms_verify(&signed[1], None), (true, contract.clone()));

    // Damaged copies (bytes changed anywhere) are answered with a report or a 400, never a failure or a hang.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for original in [&signed[0], &signed[1]] {
        for _ in 0..60 {
            let mut copy = original.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % copy.len();
                copy[at] = (seed >> 20) as u8;
            }
            let (s, out) = verify(&app, &copy, None);
            assert!(s == 200 || s == 400, "{s}: {out}");
        }
    }

    // After a revocation, the status says so.
    app.cli_ok(&["admin", "revoke", &h.credential_id, "--reason", "key_compromise"]);
    let (_, out) = verify(&app, &signed[1], None);
    assert_eq!(out["signatures"][0]["revoked"], true, "{out}");
    assert_eq!(out["signatures"][0]["status"], "revoked", "{out}");
    assert_eq!(out["signatures"][0]["revocation_reason"], "key_compromise", "{out}");
}

#[test]
fn openssl_signatures_are_intact_but_not_trusted_and_detached_ones_need_their_content() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &d("key.pem"),
            "-out",
            &d("cert.pem"),
            "-subj",
            "/CN=Throwaway Signer",
            "-days",
            "30",
        ],
    );
    let content = b"hello from openssl\n";
    std::fs::write(d("content.txt"), content).unwrap();
    let (input, signer, key) = (d("content.txt"), d("cert.pem"), d("key.pem"));
    let cms = |extra: &[&str], out: &str| {
        let mut args = vec![
            "cms", "-sign", "-binary", "-in", &input, "-signer", &signer, "-inkey", &key, "-outform", "DER", "-out",
        ];
        let o = d(out);
        args.push(&o);
        args.extend_from_slice(extra);
        run_ok("openssl", &args);
        std::fs::read(d(out)).unwrap()
    };
    let attached = cms(&["-nodetach"], "attached.p7s");
    let (s, out) = verify(&app, &attached, None);
    assert_eq!(s, 200, "{out}");
    let sig = &out["signatures"][0];
    assert_eq!(sig["intact"], true, "{out}");
    assert_eq!(sig["trusted"], false, "{out}");
    assert_eq!(sig["status"], "unknown", "{out}");
    assert_eq!(sig["signer"]["common_name"], "Throwaway Signer", "{out}");
    assert_eq!(sig["signing_time_source"], "signing_time", "{out}");
    assert!(sig["timestamp"].is_null(), "{out}");
    let back = base64::engine::general_purpose::STANDARD
        .decode(out["content"]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(back, content);

    // PEM is read too.
    let pem = cms(&["-nodetach", "-outform", "PEM"], "attached.pem");
    let (s, out) = verify(&app, &pem, None);
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["signatures"][0]["intact"], true, "{out}");

    // Detached: the content is needed, and must be the signed one.
    let detached = cms(&[], "detached.p7s");
    let (s, out) = verify(&app, &detached, None);
    assert_eq!(s, 400, "{out}");
    assert!(out["error_description"].as_str().unwrap().contains("detached"), "{out}");
    let (s, out) = verify(&app, &detached, Some(content));
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["detached"], true);
    assert_eq!(out["signatures"][0]["intact"], true, "{out}");
    assert!(out["content"].is_null());
    let (s, out) = verify(&app, &detached, Some(b"other content\n"));
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["signatures"][0]["intact"], false, "{out}");
    assert_eq!(out["signatures"][0]["digest_matches"], false, "{out}");

    // Garbage, an empty form, a PDF without signatures: 400 with a message.
    for bad in [
        &b"not a signature at all"[..],
        &[0x30, 0x82, 0xff, 0xff, 0x02][..],
        b"%PDF-1.7\n%%EOF\n",
    ] {
        let (s, out) = verify(&app, bad, None);
        assert_eq!(s, 400, "{out}");
        assert!(!out["error_description"].as_str().unwrap_or("").is_empty(), "{out}");
    }
    let r = app
        .client
        .post(app.url("/api/v1/verify"))
        .multipart(Form::new().text("other", "x"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = app
        .client
        .post(app.url("/api/v1/verify"))
        .multipart(Form::new())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn rsa_pss_and_p384_signatures_of_openssl_verify() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(d("in.txt"), b"algorithms\n").unwrap();
    for (name, newkey, extra, algorithm) in [
        (
            "pss",
            vec!["-newkey", "rsa:2048"],
            vec!["-md", "sha384", "-keyopt", "rsa_padding_mode:pss"],
            "RSA-PSS SHA-384",
        ),
        (
            "p384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            vec!["-md", "sha512"],
            "ECDSA P-384 SHA-512",
        ),
    ] {
        let (key, cert, out) = (
            d(&format!("{name}.key")),
            d(&format!("{name}.crt")),
            d(&format!("{name}.p7s")),
        );
        let mut args = vec![
            "req", "-x509", "-nodes", "-keyout", &key, "-out", &cert, "-subj", "/CN=Algo", "-days", "2",
        ];
        args.extend(newkey);
        run_ok("openssl", &args);
        let input = d("in.txt");
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            &input,
            "-signer",
            &cert,
            "-inkey",
            &key,
            "-outform",
            "DER",
            "-out",
            &out,
        ];
        args.extend(extra);
        run_ok("openssl", &args);
        let (s, report) = verify(&app, &std::fs::read(&out).unwrap(), None);
        assert_eq!(s, 200, "{report}");
        let sig = &report["signatures"][0];
        assert_eq!(sig["intact"], true, "{name}: {report}");
        assert_eq!(sig["algorithm"], algorithm, "{name}: {report}");
        assert_eq!(sig["trusted"], false, "{name}: {report}");
    }
}

#[test]
fn the_verify_page_is_public_in_both_languages_and_posts_to_the_api() {
    let app = TestApp::spawn();
    for (lang, title, submit) in [
        ("en", "Verify a signature", "Verify"),
        ("ro", "Verifică o semnătură", "Verifică"),
    ] {
        let r = app
            .client
            .get(app.url("/verify"))
            .header("Accept-Language", lang)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "no login needed");
        let html = r.text().unwrap();
        assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{html}");
        assert!(html.contains(title), "{lang}: {html}");
        assert!(html.contains(&format!(">{submit}</button>")), "{lang}");
        for id in [
            "id=\"verify-form\"",
            "id=\"verify-file\"",
            "id=\"verify-content\"",
            "id=\"verify-submit\"",
            "id=\"verify-result\"",
            "id=\"verify-content-download\"",
            "id=\"verify-preview\"",
        ] {
            assert!(html.contains(id), "{lang}: {id} missing");
        }
        assert!(html.contains("data-api=\"/api/v1/verify\""));
        assert!(html.contains("name=\"file\"") && html.contains("name=\"content\""));
        assert!(html.contains("<script src=\"/static/verify.js\" defer></script>"));
        common::assert_no_inline("/verify", &html);
    }
    let r = app.client.get(app.url("/static/verify.js")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("parafa:done"));

    // A logged-in holder's browser sends the session cookie: the page's CSRF header makes the upload pass.
    let h = app.create_holder("page@example.com", "rsa2048", 1);
    let cookie = app.web_login(&h);
    app.consent(&cookie);
    let r = app
        .client
        .get(app.url("/verify"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let p7s = sign(&app, &h, &[("note.txt", b"note")]).remove(0);
    let r = app
        .client
        .post(app.url("/api/v1/verify"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .header("Accept-Language", "ro")
        .multipart(Form::new().part("file", Part::bytes(p7s).file_name("note.txt.p7s")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let out: Value = r.json().unwrap();
    let sig = &out["signatures"][0];
    assert_eq!(sig["signer"]["common_name"], "Ana Maria Popescu", "{out}");
    assert_eq!(
        (sig["intact"].as_bool(), sig["trusted"].as_bool()),
        (Some(true), Some(true)),
        "{out}"
    );
    assert_eq!(sig["algorithm"], "RSA PKCS#1 v1.5 SHA-256", "{out}");
    assert_eq!(out["content"]["text"], "note");

    // Errors come in the page's language.
    let r = app
        .client
        .post(app.url("/api/v1/verify"))
        .header("Accept-Language", "ro")
        .multipart(Form::new().part("file", Part::bytes(b"junk".to_vec()).file_name("x")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let out: Value = r.json().unwrap();
    assert!(
        out["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Fișierul nu este nici un PDF semnat"),
        "{out}"
    );
}

/// Files that are DER (or PEM) but not a signature — a certificate, a truncated SignedData, a ContentInfo of another
/// type, PEM with broken base64 — get one plain sentence: no ASN.1 tag, OID or library error in it.
#[test]
fn files_that_are_not_signatures_are_refused_in_plain_words_without_parser_internals() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.der");
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            dir.path().join("k.pem").to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            cert.to_str().unwrap(),
            "-subj",
            "/CN=Not a signature",
            "-days",
            "1",
        ],
    );
    let cert = std::fs::read(cert).unwrap();
    // ContentInfo { id-data, [0] OCTET STRING "x" }: a CMS structure, but not SignedData.
    let data_info = [
        0x30, 0x14, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x07, 0x04, 0x05, b'h',
        b'e', b'l', b'l', b'o',
    ];
    let truncated = [0x30, 0x82, 0x10, 0x00, 0x06, 0x09, 0x2a, 0x86];
    let bad_pem = b"-----BEGIN PKCS7-----\n!!!not base64!!!\n-----END PKCS7-----\n".to_vec();
    for (name, file) in [
        ("a certificate", cert),
        ("id-data", data_info.to_vec()),
        ("truncated", truncated.to_vec()),
        ("bad PEM", bad_pem),
    ] {
        let (s, out) = verify(&app, &file, None);
        assert_eq!(s, 400, "{name}: {out}");
        let said = out["error_description"].as_str().unwrap_or_default();
        assert!(said.contains(".p7s"), "{name}: {said}");
        for internal in ["ASN", "tag", "1.2.840", "DER", "Error", "expected", "OCTET", "{"] {
            assert!(!said.contains(internal), "{name}: {internal:?} in {said:?}");
        }
    }
}
