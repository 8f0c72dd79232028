//! Document size limits agree on every path (issue 18, defect 3): whatever one signing path takes (a web job, CSC
//! `signDoc`), the other takes, and whatever Parafa signed, `/api/v1/verify` takes. The limits are set small here
//! (a PDF up to 3 MiB, another file up to 1 MiB) so the files stay small; one test keeps the defaults and signs a
//! PDF larger than the old fixed 64 MB `signDoc` body allowed.

use crate::common;

use crate::sign_jobs::upload;
use base64::Engine;
use common::{Holder, TestApp};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::Digest;

const MIB: usize = 1024 * 1024;
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// A one-page PDF of about `size` bytes: its content stream carries comment lines as padding.
fn pdf_of(size: usize) -> Vec<u8> {
    pdf_padded(
        size,
        "% padding padding padding padding padding padding padding padding padding\n",
    )
}

/// As [`pdf_of`], padded with `line`.
fn pdf_padded(size: usize, line: &str) -> Vec<u8> {
    let content = format!(
        "BT /F1 12 Tf 20 100 Td (Large) Tj ET\n{}",
        line.repeat(size / line.len())
    );
    common::hostile::pdf(&[
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ])
}

/// Signs an uploaded job and downloads its first signed file.
pub(crate) fn sign_job(app: &TestApp, h: &Holder, cookie: &str, job: &Value) -> Vec<u8> {
    let id = job["id"].as_str().unwrap();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(cookie),
        Some(json!({"totp": app.fresh_totp(h)})),
    );
    assert_eq!(s, 200, "{out}");
    let r = app
        .client
        .get(app.url(&format!("/api/v1/sign-jobs/{id}/files/0")))
        .header("Cookie", cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().unwrap().to_vec()
}

/// CSC `signDoc` of one document (PAdES for a PDF, else an enveloping CAdES) with a fresh SAD for its digest.
fn sign_doc(app: &TestApp, h: &Holder, token: &str, document: &[u8], pades: bool) -> (u16, Value) {
    let digest = sha2::Sha256::digest(document).to_vec();
    let (s, out) = app.csc(
        "/csc/v2/credentials/authorize",
        token,
        &json!({"credentialID": h.credential_id, "numSignatures": 1, "hashes": [b64(&digest)],
                "hashAlgorithmOID": SHA256, "OTP": app.fresh_totp(h)}),
    );
    assert_eq!(s, 200, "{out}");
    let format = if pades { "P" } else { "C" };
    app.csc(
        "/csc/v2/signatures/signDoc",
        token,
        &json!({"credentialID": h.credential_id, "SAD": out["SAD"], "documents": [
            {"document": b64(document), "signature_format": format, "conformance_level": "Ades-B-B",
             "signAlgo": "1.2.840.10045.4.3.2"}]}),
    )
}

fn assert_verified(app: &TestApp, signed: &[u8]) {
    let (s, out) = crate::verify::verify(app, signed, None);
    assert_eq!(s, 200, "Parafa verifies what it signed ({} bytes): {out}", signed.len());
    assert_eq!(out["signatures"][0]["intact"], true, "{out}");
    assert_eq!(out["signatures"][0]["trusted"], true, "{out}");
}

#[test]
fn both_signing_paths_take_the_same_documents_and_verification_takes_what_they_signed() {
    let app = TestApp::spawn_on(
        common::Backend::Sqlite,
        &[
            ("PARAFA_DOCUMENT_MAX_FILE_BYTES", "1048576"),
            ("PARAFA_DOCUMENT_MAX_PDF_BYTES", "3145728"),
            ("PARAFA_DOCUMENT_MAX_JOB_BYTES", "4194304"),
        ],
    );
    let h = app.create_holder("limits-agree@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let token = app.login(&h);
    let pdf = pdf_of(5 * MIB / 2);
    let other = vec![b'x'; 3 * MIB / 2];

    // A 2.5 MiB PDF: over the other files' limit, within the PDFs'. Both paths sign it, as PDF.
    let (s, job) = upload(
        &app,
        &cookie,
        Form::new().part("files", Part::bytes(pdf.clone()).file_name("large.pdf")),
    );
    assert_eq!(s, 201, "a web job takes a PDF up to max_pdf_bytes: {job}");
    let signed = sign_job(&app, &h, &cookie, &job);
    assert!(signed.len() > pdf.len());
    assert_verified(&app, &signed);
    let (s, out) = sign_doc(&app, &h, &token, &pdf, true);
    assert_eq!(s, 200, "signDoc takes the same PDF: {out}");
    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    assert_verified(&app, &signed);

    // A 1.5 MiB file that is not a PDF: over its limit on both paths, refused before any signature.
    let (s, out) = upload(
        &app,
        &cookie,
        Form::new().part("files", Part::bytes(other.clone()).file_name("large.bin")),
    );
    assert_eq!((s, out["error"].as_str()), (413, Some("invalid_request")), "{out}");
    let (s, out) = sign_doc(&app, &h, &token, &other, false);
    assert_eq!((s, out["error"].as_str()), (400, Some("invalid_request")), "{out}");
    assert!(
        out["error_description"]
            .as_str()
            .unwrap()
            .contains("another file up to 1048576 bytes"),
        "{out}"
    );
    // The job's signature and its timestamp (web jobs are B-T), signDoc's signature; nothing for the refusals.
    assert_eq!(app.books(&h.credential_id), (3, 3));
}

#[test]
fn sign_doc_takes_a_pdf_larger_than_its_old_fixed_body_limit_and_verification_takes_the_result() {
    // Defaults: a PDF up to 100 MiB. 48 MiB is 64 MiB in base64, the old fixed limit of a signDoc body.
    let app = TestApp::spawn();
    let h = app.create_holder("limits-large@example.com", "p256", 1);
    let token = app.login(&h);
    let pdf = pdf_of(48 * MIB);
    let (s, out) = sign_doc(&app, &h, &token, &pdf, true);
    assert_eq!(s, 200, "{}", out.to_string().chars().take(500).collect::<String>());
    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    assert_verified(&app, &signed);
    assert_eq!(app.books(&h.credential_id), (1, 1));
}

#[test]
fn a_long_document_is_read_as_json_encoders_write_base64_and_one_that_is_not_base64_is_refused() {
    // A document over 64 KiB of base64 is decoded as the body streams (the server never holds its base64 whole):
    // it must read what a JSON encoder writes — either alphabet, padded or not, `\/` for `/` (PHP's default) — as
    // the short ones are read, and refuse what is not base64 without spending anything.
    let app = TestApp::spawn();
    let h = app.create_holder("limits-encodings@example.com", "p256", 1);
    let token = app.login(&h);
    // `?`, `>` and `~` in every position of a base64 group: the standard alphabet's `+` and `/` both show.
    let pdf = pdf_padded(300 * 1024, "% ~?> padding ~?> padding ~?> padding\n");
    let standard = base64::engine::general_purpose::STANDARD.encode(&pdf);
    assert!(
        standard.contains('+') && standard.contains('/'),
        "the test's PDF shows both alphabets' letters"
    );
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&pdf);
    let sign_raw = |document: &str| {
        let digest = sha2::Sha256::digest(&pdf).to_vec();
        let (s, out) = app.csc(
            "/csc/v2/credentials/authorize",
            &token,
            &json!({"credentialID": h.credential_id, "numSignatures": 1, "hashes": [b64(&digest)],
                    "hashAlgorithmOID": SHA256, "OTP": app.fresh_totp(&h)}),
        );
        assert_eq!(s, 200, "{out}");
        let body = format!(
            r#"{{"credentialID":"{}","SAD":"{}","documents":[{{"document":"{document}","signature_format":"P","conformance_level":"Ades-B-B","signAlgo":"1.2.840.10045.4.3.2"}}]}}"#,
            h.credential_id,
            out["SAD"].as_str().unwrap()
        );
        let r = app
            .client
            .post(app.url("/csc/v2/signatures/signDoc"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    for (n, document) in [url_safe, standard.replace('/', "\\/")].iter().enumerate() {
        let (s, out) = sign_raw(document);
        assert_eq!(s, 200, "{}", out.to_string().chars().take(500).collect::<String>());
        let signed = base64::engine::general_purpose::STANDARD
            .decode(out["DocumentWithSignature"][0].as_str().unwrap())
            .unwrap();
        assert!(
            signed.starts_with(&pdf),
            "the original is the signed file's first revision"
        );
        assert_verified(&app, &signed);
        assert_eq!(app.books(&h.credential_id), (n as i64 + 1, n as i64 + 1));
    }
    let broken = format!("{}*{}", &standard[..100_000], &standard[100_001..]);
    let mixed = format!("{}-{}", &standard[..100_000], &standard[100_001..]);
    for document in [broken, mixed] {
        let (s, out) = sign_raw(&document);
        assert_eq!(s, 400, "{out}");
        assert_eq!(out["error"], "invalid_request");
        assert_eq!(out["error_description"], "Invalid Base64 document");
    }
    assert_eq!(
        app.books(&h.credential_id),
        (2, 2),
        "nothing spent for what was refused"
    );
}
