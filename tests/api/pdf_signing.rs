//! PAdES through the service: CSC signDoc (format P) at B-B, B-T, B-LT and B-LTA, and the web signing jobs with a
//! visible signature; judged by pdfsig and pyHanko; the transactions are each signature and each timestamp.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{run, run_ok, Holder, TestApp};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::Digest;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn python() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run make test (it creates .venv)",
        p.display()
    );
    p.to_str().unwrap().to_owned()
}

fn script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/pdf_judge.py")
        .to_str()
        .unwrap()
        .to_owned()
}

fn make_pdf(dir: &Path, pages: u32) -> Vec<u8> {
    make_pdf_with(dir, pages, false)
}

fn make_pdf_with(dir: &Path, pages: u32, xfa: bool) -> Vec<u8> {
    let out = dir.join(format!("plain-{pages}-{xfa}.pdf"));
    let mut args = vec![
        script(),
        "make".into(),
        out.to_str().unwrap().to_owned(),
        pages.to_string(),
    ];
    if xfa {
        args.push("xfa".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&python(), &args);
    std::fs::read(out).unwrap()
}

/// pyHanko's report on a signed PDF, trusting our root and the TSA's chain.
fn judge(app: &TestApp, pdf: &Path) -> Value {
    let (root, _) = app.ca_pems();
    let out = run_ok(
        &python(),
        &[&script(), "judge", pdf.to_str().unwrap(), root.to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap()
}

/// pdfsig's verdict: every signature valid, and the last one covering the whole file when `whole` (a B-LT's DSS
/// comes after the signature, so its signature covers its own revision only).
fn pdfsig_ok(pdf: &Path, count: usize, whole: bool) {
    let out = run("pdfsig", &["-nocert", pdf.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("Signature Validation: Signature is Valid.").count(),
        count,
        "pdfsig on {}:\n{text}{}",
        pdf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.contains("Total document signed"), whole, "{text}");
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn authorize(app: &TestApp, h: &Holder, token: &str, digests: &[Vec<u8>]) -> String {
    let hashes: Vec<String> = digests.iter().map(|d| b64(d)).collect();
    let (s, out) = app.csc(
        "/csc/v2/credentials/authorize",
        token,
        &json!({"credentialID": h.credential_id, "numSignatures": digests.len(), "hashes": hashes,
                "hashAlgorithmOID": SHA256, "OTP": app.fresh_totp(h)}),
    );
    assert_eq!(s, 200, "{out}");
    out["SAD"].as_str().unwrap().to_owned()
}

/// `pdf` signed by `h` through one signDoc with one document per PAdES level (one SAD for all): the signed files,
/// in the order of `levels`.
pub(crate) fn sign_levels(
    app: &TestApp,
    h: &Holder,
    token: &str,
    pdf: &[u8],
    levels: &[&str],
    sign_algo: &str,
) -> Vec<Vec<u8>> {
    let digest = sha2::Sha256::digest(pdf).to_vec();
    let sad = authorize(app, h, token, &vec![digest; levels.len()]);
    let documents: Vec<Value> = levels
        .iter()
        .map(|l| json!({"document": b64(pdf), "signature_format": "P", "conformance_level": l, "signAlgo": sign_algo}))
        .collect();
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": documents}),
    );
    assert_eq!(s, 200, "{out}");
    (0..levels.len())
        .map(|i| {
            base64::engine::general_purpose::STANDARD
                .decode(out["DocumentWithSignature"][i].as_str().unwrap())
                .unwrap()
        })
        .collect()
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn sign_doc_signs_pdfs_at_every_pades_level_and_pdfsig_and_pyhanko_accept_them() {
    let app = TestApp::spawn();
    let h = app.create_holder("pades@example.com", "rsa2048", 1);
    let token = app.login(&h);
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path(), 2);
    let levels = ["AdES-B-B", "AdES-B-T", "AdES-B-LT", "AdES-B-LTA"];
    let all = sign_levels(&app, &h, &token, &pdf, &levels, "1.2.840.113549.1.1.11");
    // B-B 1, B-T 2, B-LT 2, B-LTA 3 (its document timestamp): 8 transactions, 8 ledger rows.
    assert_eq!(app.books(&h.credential_id), (8, 8));
    for (level, signed) in levels.iter().zip(all) {
        assert!(
            signed.starts_with(&pdf),
            "{level}: an incremental update keeps the original bytes"
        );
        let path = save(dir.path(), &format!("{level}.pdf"), &signed);
        let report = judge(&app, &path);
        let sigs = report["signatures"].as_array().unwrap();
        let sig = &sigs[0];
        assert_eq!(
            (
                sig["intact"].as_bool(),
                sig["valid"].as_bool(),
                sig["trusted"].as_bool()
            ),
            (Some(true), Some(true), Some(true)),
            "{level}: {report}"
        );
        assert_eq!(sig["signature_timestamp"], *level != "AdES-B-B", "{level}: {report}");
        let has_dss = report["dss"]["Certs"].as_u64().unwrap_or(0) >= 3
            && report["dss"]["CRLs"].as_u64().unwrap_or(0) >= 2
            && report["dss"]["OCSPs"].as_u64().unwrap_or(0) >= 2;
        assert_eq!(
            has_dss,
            *level == "AdES-B-LT" || *level == "AdES-B-LTA",
            "{level}: {report}"
        );
        if *level == "AdES-B-LTA" {
            assert_eq!(sigs.len(), 2, "{report}");
            assert_eq!(sigs[1]["document_timestamp"], true);
            assert_eq!(
                (sigs[1]["intact"].as_bool(), sigs[1]["valid"].as_bool()),
                (Some(true), Some(true)),
                "{report}"
            );
            assert_eq!(sigs[1]["coverage"], "ENTIRE_FILE");
        } else {
            assert_eq!(sigs.len(), 1);
            let whole = *level == "AdES-B-B" || *level == "AdES-B-T";
            let coverage = if whole { "ENTIRE_FILE" } else { "ENTIRE_REVISION" };
            assert_eq!(sig["coverage"], coverage, "{level}: {report}");
            pdfsig_ok(&path, 1, whole);
        }
    }
}

#[test]
fn a_web_job_signs_a_pdf_visibly_and_refuses_an_xfa_form_before_any_code() {
    let app = TestApp::spawn();
    let h = app.create_holder("webpdf@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path(), 2);
    let upload = |form: Form| {
        let r = app
            .client
            .post(app.url("/api/v1/sign-jobs"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", common::csrf_for(&cookie))
            .multipart(form)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    // An XFA form is refused on upload with the rules' message.
    let xfa = make_pdf_with(dir.path(), 1, true);
    let (s, out) = upload(Form::new().part("files", Part::bytes(xfa).file_name("form.pdf")));
    assert_eq!(s, 400, "{out}");
    assert!(
        out["error_description"].as_str().unwrap_or("").contains(
            "Smart PDF forms cannot be signed here; sign them locally in a PDF reader with the desktop virtual token."
        ),
        "{out}"
    );
    let (s, job) = upload(
        Form::new()
            .part("files", Part::bytes(pdf.clone()).file_name("contract.pdf"))
            .text("rect_0", r#"{"page": 2, "rect": [300, 80, 540, 140]}"#),
    );
    assert_eq!(s, 201, "{job}");
    assert_eq!(
        (job["files"][0]["format"].as_str(), job["files"][0]["output"].as_str()),
        (Some("PAdES"), Some("contract.pdf"))
    );
    let id = job["id"].as_str().unwrap();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": app.fresh_totp(&h)})),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(app.books(&h.credential_id), (2, 2), "a signature and its timestamp");
    let r = app
        .client
        .get(app.url(&format!("/api/v1/sign-jobs/{id}/files/0")))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let path = save(dir.path(), "signed.pdf", &r.bytes().unwrap());
    pdfsig_ok(&path, 1, true);
    let report = judge(&app, &path);
    assert_eq!(report["signatures"][0]["signature_timestamp"], true, "{report}");
    assert_eq!(report["signatures"][0]["coverage"], "ENTIRE_FILE", "{report}");
}

/// Malformed PDFs: each is refused with a clear 4xx, quickly, by signDoc and by the jobs API; nothing is spent and
/// the server stays up.
/// Parafa's own `POST /api/v1/verify` report of a file.
fn parafa_verify(app: &TestApp, file: &[u8]) -> Value {
    let (status, report) = crate::verify::verify(app, file, None);
    assert_eq!(status, 200, "{report}");
    report
}

/// pyHanko's incremental writer updates a file: `content` draws over page 1, `annotation` adds a text note.
fn update(dir: &Path, signed: &Path, what: &str) -> PathBuf {
    let out = dir.join(format!("{what}.pdf"));
    run_ok(
        &python(),
        &[
            &script(),
            "update",
            signed.to_str().unwrap(),
            out.to_str().unwrap(),
            what,
        ],
    );
    out
}

#[test]
fn a_page_drawn_over_after_signing_is_a_modified_signature_as_pyhanko_says_and_allowed_updates_are_not() {
    let app = TestApp::spawn();
    let h = app.create_holder("diff@example.com", "p256", 1);
    let token = app.login(&h);
    let dir = tempfile::tempdir().unwrap();
    let pdf = make_pdf(dir.path(), 1);
    let signed = sign_levels(
        &app,
        &h,
        &token,
        &pdf,
        &["AdES-B-T", "AdES-B-LTA"],
        "1.2.840.10045.4.3.2",
    );

    // As signed: B-T has nothing after its signature; B-LTA's DSS and document timestamp are validation data.
    let report = parafa_verify(&app, &signed[0]);
    let sig = &report["signatures"][0];
    assert_eq!(
        (
            sig["changes_after_signing"].as_str(),
            sig["modified_after_signing"].as_bool()
        ),
        (Some("none"), Some(false)),
        "{report}"
    );
    let report = parafa_verify(&app, &signed[1]);
    let sig = &report["signatures"][0];
    assert_eq!(
        (
            sig["changes_after_signing"].as_str(),
            sig["modified_after_signing"].as_bool()
        ),
        (Some("validation_data"), Some(false)),
        "{report}"
    );

    // pyHanko's writer draws "PAID IN FULL" over page 1 in a new revision: the signature's bytes are intact, the
    // document is not what was signed. pyHanko says so, and so must Parafa.
    let bt = save(dir.path(), "bt.pdf", &signed[0]);
    let drawn = update(dir.path(), &bt, "content");
    let judged = judge(&app, &drawn);
    assert_eq!(judged["signatures"][0]["modification_level"], "OTHER", "{judged}");
    assert_eq!(judged["signatures"][0]["bottom_line"], false, "{judged}");
    let report = parafa_verify(&app, &std::fs::read(&drawn).unwrap());
    let sig = &report["signatures"][0];
    assert_eq!(sig["intact"], true, "the signed bytes are untouched: {report}");
    assert_eq!(
        (
            sig["changes_after_signing"].as_str(),
            sig["modified_after_signing"].as_bool()
        ),
        (Some("other"), Some(true)),
        "{report}"
    );
    assert!(
        sig["problems"].to_string().contains("changed after this signature"),
        "the report says why: {report}"
    );
    // The Romanian page's visitor reads why in Romanian, the changed objects named in Romanian too.
    let (status, romanian) =
        crate::verify::verify_in(&app, &std::fs::read(&drawn).unwrap(), None, Some("ro-RO,ro;q=0.9"));
    assert_eq!(status, 200, "{romanian}");
    let said = romanian["signatures"][0]["problems"].to_string();
    assert!(
        said.contains("Documentul a fost modificat după această semnătură") && said.contains("obiectul "),
        "the problems in Romanian: {said}"
    );
    assert!(
        !said.contains("changed") && !said.contains("object "),
        "no English left: {said}"
    );

    // A reviewer's note (an annotation) in an uncertified document is allowed (ISO 32000-1 §12.8.2.2 restricts
    // annotations only under a certification's DocMDP 1 or 2). pyHanko's default policy has no rule for annotations
    // and reports every unexplained object as OTHER: stricter than the standard, so it is not the judge here.
    let noted = update(dir.path(), &bt, "annotation");
    let report = parafa_verify(&app, &std::fs::read(&noted).unwrap());
    let sig = &report["signatures"][0];
    assert_eq!(
        (
            sig["changes_after_signing"].as_str(),
            sig["modified_after_signing"].as_bool()
        ),
        (Some("annotations"), Some(false)),
        "{report}"
    );

    // The same drawing after the B-LTA file's document timestamp: both the signature and the timestamp are modified.
    let lta = save(dir.path(), "lta.pdf", &signed[1]);
    let drawn = update(dir.path(), &lta, "content");
    let report = parafa_verify(&app, &std::fs::read(&drawn).unwrap());
    for sig in report["signatures"].as_array().unwrap() {
        assert_eq!(sig["modified_after_signing"], true, "{report}");
    }
}

/// What pyHanko reads of a file's version and `/ID`.
fn meta(pdf: &Path) -> Value {
    let out = run_ok(&python(), &[&script(), "meta", pdf.to_str().unwrap()]);
    serde_json::from_str(&out).expect("meta json")
}

#[test]
fn an_older_pdf_is_raised_to_1_7_with_a_new_revision_id_and_a_shifted_header_is_refused_with_its_reason() {
    let app = TestApp::spawn();
    let h = app.create_holder("pdf14@example.com", "p256", 1);
    let token = app.login(&h);
    let dir = tempfile::tempdir().unwrap();
    let id = "00112233445566778899aabbccddeeff";
    let mut pdf = common::hostile::pdf_with_trailer(
        &[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        ],
        &format!("/ID [<{id}> <{id}>]"),
    );
    // The same file, declaring PDF 1.4 (the header has the same length, so no offset moves).
    pdf[..8].copy_from_slice(b"%PDF-1.4");
    let original = meta(&save(dir.path(), "original.pdf", &pdf));
    assert_eq!(
        (original["header"].as_str(), original["catalog"].as_str()),
        (Some("1.4"), None)
    );
    let digest = sha2::Sha256::digest(&pdf).to_vec();
    let sad = authorize(&app, &h, &token, &[digest]);
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
            {"document": b64(&pdf), "signature_format": "P", "conformance_level": "AdES-B-B",
             "signAlgo": "1.2.840.10045.4.3.2"}]}),
    );
    assert_eq!(s, 200, "{out}");
    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    let path = save(dir.path(), "signed.pdf", &signed);
    let after = meta(&path);
    assert_eq!(
        after["catalog"].as_str(),
        Some("1.7"),
        "the catalog declares PDF 1.7 (the header cannot change in an update): {after}"
    );
    let ids: Vec<&str> = after["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{after}");
    assert_eq!(
        ids[0], id,
        "the first /ID element names the document and stays: {after}"
    );
    assert_ne!(ids[1], id, "the second changes with the revision: {after}");
    let report = judge(&app, &path);
    assert_eq!(report["signatures"][0]["valid"], true, "{report}");
    pdfsig_ok(&path, 1, true);

    // Bytes before the header: viewers guess where the objects are; Parafa refuses and says why.
    let mut shifted = b"JUNK BEFORE THE HEADER\n".to_vec();
    shifted.extend_from_slice(&pdf);
    let digest = sha2::Sha256::digest(&shifted).to_vec();
    let sad = authorize(&app, &h, &token, &[digest]);
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
            {"document": b64(&shifted), "signature_format": "P", "signAlgo": "1.2.840.10045.4.3.2"}]}),
    );
    assert_eq!(s, 400, "{out}");
    assert!(
        out["error_description"]
            .as_str()
            .unwrap()
            .contains("23 bytes before its %PDF- header"),
        "{out}"
    );
    assert_eq!(app.books(&h.credential_id), (1, 1));
}

fn hostile_corpus(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut corpus: Vec<(&'static str, Vec<u8>)> = Vec::new();
    corpus.push(("truncated", valid[..valid.len() / 2].to_vec()));
    corpus.push(("header only", b"%PDF-1.7\n".to_vec()));
    corpus.push(("random bytes", {
        let mut v = b"%PDF-1.4\n".to_vec();
        v.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        v
    }));
    corpus.push(("cyclic pages", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\ntrailer << /Root 1 0 R /Size 3 >>\n%%EOF\n".to_vec()));
    corpus.push(("huge count", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 999999999 >> endobj\nxref\n0 999999999\ntrailer << /Root 1 0 R /Size 999999999 >>\n%%EOF\n".to_vec()));
    corpus.push(("deep nesting", {
        let mut v = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R /X ".to_vec();
        v.extend(std::iter::repeat_n(b'[', 200_000));
        v.extend(std::iter::repeat_n(b']', 200_000));
        v.extend(b" >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
        v
    }));
    corpus.push(("wrong xref", {
        let text = String::from_utf8_lossy(valid).into_owned();
        match text.rfind("startxref") {
            Some(i) => format!("{}startxref\n999999999\n%%EOF\n", &text[..i]).into_bytes(),
            None => b"%PDF-1.4\nstartxref\n12\n%%EOF".to_vec(),
        }
    }));
    corpus.push((
        "xref loop",
        b"%PDF-1.4\nxref\n0 1\n0000000000 65535 f \ntrailer << /Size 1 /Prev 9 >>\nstartxref\n9\n%%EOF\n".to_vec(),
    ));
    corpus
}

#[test]
fn malformed_pdfs_get_a_clear_4xx_from_sign_doc_and_the_jobs_api_and_spend_nothing() {
    let app = TestApp::spawn();
    let h = app.create_holder("hostile@example.com", "p256", 1);
    let token = app.login(&h);
    let cookie = app.web_login(&h);
    let dir = tempfile::tempdir().unwrap();
    let valid = make_pdf(dir.path(), 1);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    for (what, pdf) in hostile_corpus(&valid) {
        let digest = sha2::Sha256::digest(&pdf).to_vec();
        let sad = authorize(&app, &h, &token, std::slice::from_ref(&digest));
        let r = client
            .post(app.url("/csc/v2/signatures/signDoc"))
            .bearer_auth(&token)
            .json(&json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
                {"document": b64(&pdf), "signature_format": "P", "signAlgo": "1.2.840.10045.4.3.2"}]}))
            .send()
            .unwrap_or_else(|e| panic!("{what}: signDoc did not answer: {e}"));
        let status = r.status().as_u16();
        let out: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 400, "{what}: {out}");
        assert!(
            out["error_description"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {out}"
        );
        let r = client
            .post(app.url("/api/v1/sign-jobs"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", common::csrf_for(&cookie))
            .multipart(Form::new().part("files", Part::bytes(pdf.clone()).file_name("bad.pdf")))
            .send()
            .unwrap_or_else(|e| panic!("{what}: the jobs API did not answer: {e}"));
        let status = r.status().as_u16();
        let out: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 400, "{what}: {out}");
    }
    assert_eq!(app.books(&h.credential_id), (0, 0), "nothing was spent");
    assert_eq!(app.get("/health").status(), 200, "the server is still up");
}

/// A two-page PDF with an empty signature field `Sig1` on page 1 in [100 100 300 150], added by pyHanko as
/// `pyhanko sign addfields` does, and a text field `Name` on page 2.
fn make_form(dir: &Path) -> Vec<u8> {
    let out = dir.join("form.pdf");
    run_ok(&python(), &[&script(), "form", out.to_str().unwrap()]);
    std::fs::read(out).unwrap()
}

/// pyHanko's list of a file's signature fields (name, filled) and the widget annotations of each page.
fn fields(pdf: &Path) -> Value {
    let out = run_ok(&python(), &[&script(), "fields", pdf.to_str().unwrap()]);
    serde_json::from_str(&out).expect("fields json")
}

/// signDoc of one document, with `extra` merged into the document's entry.
fn sign_doc(app: &TestApp, h: &Holder, token: &str, sad: &str, pdf: &[u8], extra: Value) -> (u16, Value) {
    let mut document = json!({"document": b64(pdf), "signature_format": "P", "conformance_level": "AdES-B-B",
                              "signAlgo": "1.2.840.10045.4.3.2"});
    for (k, v) in extra.as_object().unwrap() {
        document[k] = v.clone();
    }
    app.csc(
        "/csc/v2/signatures/signDoc",
        token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [document]}),
    )
}

/// The signature in `Sig1`: valid and trusted for pyHanko, shown in the field's rectangle on page 1.
fn assert_signed_into_sig1(path: &Path, report: &Value) {
    let sig = &report["signatures"][0];
    assert_eq!(sig["field"], "Sig1", "{report}");
    assert_eq!(
        (
            sig["intact"].as_bool(),
            sig["valid"].as_bool(),
            sig["trusted"].as_bool()
        ),
        (Some(true), Some(true), Some(true)),
        "{report}"
    );
    assert_eq!(sig["page"], 0, "{report}");
    assert_eq!(sig["rect"], json!([100.0, 100.0, 300.0, 150.0]), "{report}");
    // pyHanko's empty field has a blank appearance: the signer's name and the date are drawn there now.
    let dark = crate::pades::dark_pixels_in(path, 1, [102.0, 102.0, 298.0, 148.0]);
    assert!(
        dark > 200,
        "{dark} dark pixels in the field's rectangle of {}",
        path.display()
    );
}

#[test]
fn sign_doc_fills_the_empty_signature_field_it_names_and_adds_no_other() {
    let app = TestApp::spawn();
    let h = app.create_holder("sigfield@example.com", "p256", 1);
    let token = app.login(&h);
    let dir = tempfile::tempdir().unwrap();
    let form = make_form(dir.path());
    let before = fields(&save(dir.path(), "form.pdf", &form));
    assert_eq!(before["signature_fields"], json!([{"name": "Sig1", "filled": false}]));
    let digest = sha2::Sha256::digest(&form).to_vec();
    let sad = authorize(&app, &h, &token, &[digest.clone(), digest]);
    let document = |level: &str| {
        json!({"document": b64(&form), "signature_format": "P", "conformance_level": level,
               "signAlgo": "1.2.840.10045.4.3.2", "signature_field": "Sig1"})
    };
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad,
                "documents": [document("AdES-B-T"), document("AdES-B-LTA")]}),
    );
    assert_eq!(s, 200, "{out}");
    // B-T: the signature and its timestamp; B-LTA: those and the document timestamp.
    assert_eq!(app.books(&h.credential_id), (5, 5));

    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    assert!(
        signed.starts_with(&form),
        "an incremental update keeps the original bytes"
    );
    let path = save(dir.path(), "into-sig1.pdf", &signed);
    let report = judge(&app, &path);
    assert_eq!(report["signatures"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["signatures"][0]["coverage"], "ENTIRE_FILE", "{report}");
    assert_eq!(report["signatures"][0]["signature_timestamp"], true, "{report}");
    assert_signed_into_sig1(&path, &report);
    let after = fields(&path);
    assert_eq!(
        after["signature_fields"],
        json!([{"name": "Sig1", "filled": true}]),
        "the field is filled and no other is added: {after}"
    );
    assert_eq!(after["widgets_per_page"], json!([1, 1]), "no new widget: {after}");
    pdfsig_ok(&path, 1, true);

    // B-LTA: the signature fills Sig1; its document timestamp has a new field of its own.
    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][1].as_str().unwrap())
        .unwrap();
    let path = save(dir.path(), "into-sig1-lta.pdf", &signed);
    let report = judge(&app, &path);
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{report}");
    assert_signed_into_sig1(&path, &report);
    assert_eq!(sigs[1]["document_timestamp"], true, "{report}");
    assert_ne!(sigs[1]["field"], "Sig1", "{report}");
    assert_eq!(
        (sigs[1]["intact"].as_bool(), sigs[1]["valid"].as_bool()),
        (Some(true), Some(true)),
        "{report}"
    );
}

#[test]
fn naming_a_field_that_cannot_take_the_signature_is_refused_and_spends_nothing() {
    let app = TestApp::spawn();
    let h = app.create_holder("nofield@example.com", "p256", 1);
    let token = app.login(&h);
    let dir = tempfile::tempdir().unwrap();
    let form = make_form(dir.path());
    let digest = sha2::Sha256::digest(&form).to_vec();
    let sad = authorize(&app, &h, &token, &[digest]);
    let refused = |pdf: &[u8], sad: &str, extra: Value, says: &str| {
        let (s, out) = sign_doc(&app, &h, &token, sad, pdf, extra.clone());
        assert_eq!(s, 400, "{extra}: {out}");
        assert_eq!(out["error"], "invalid_request", "{extra}: {out}");
        let description = out["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{extra}: {out}");
    };
    refused(&form, &sad, json!({"signature_field": "Nope"}), "no field named Nope");
    refused(
        &form,
        &sad,
        json!({"signature_field": "Name"}),
        "Name of the PDF is not a signature field",
    );
    refused(
        &form,
        &sad,
        json!({"signature_format": "C", "signature_field": "Sig1"}),
        "signature_field",
    );
    assert_eq!(app.books(&h.credential_id), (0, 0), "nothing was spent");

    // The refusals left the authorisation unused: it signs into the field.
    let (s, out) = sign_doc(&app, &h, &token, &sad, &form, json!({"signature_field": "Sig1"}));
    assert_eq!(s, 200, "{out}");
    assert_eq!(app.books(&h.credential_id), (1, 1));
    let signed = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    let digest = sha2::Sha256::digest(&signed).to_vec();
    let sad = authorize(&app, &h, &token, &[digest]);
    refused(
        &signed,
        &sad,
        json!({"signature_field": "Sig1"}),
        "Sig1 is signed already",
    );
    assert_eq!(app.books(&h.credential_id), (1, 1), "nothing more was spent");
    // Without a field, the signed file takes a second signature in a new field.
    let (s, out) = sign_doc(&app, &h, &token, &sad, &signed, json!({}));
    assert_eq!(s, 200, "{out}");
    let twice = base64::engine::general_purpose::STANDARD
        .decode(out["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    let listed = fields(&save(dir.path(), "twice.pdf", &twice));
    assert_eq!(listed["signature_fields"].as_array().map(Vec::len), Some(2), "{listed}");
}

#[test]
fn a_web_job_signs_into_the_field_the_holder_chose_and_refuses_what_cannot_be_filled() {
    let app = TestApp::spawn();
    let h = app.create_holder("webfield@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let dir = tempfile::tempdir().unwrap();
    let form = make_form(dir.path());
    let plain = make_pdf(dir.path(), 1);
    let post = |path: &str, form: Form| {
        let r = app
            .client
            .post(app.url(path))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", common::csrf_for(&cookie))
            .multipart(form)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    let file = |bytes: &[u8]| Part::bytes(bytes.to_vec()).file_name("form.pdf");

    // The page learns a PDF's empty signature fields, where they are, before the upload.
    let (s, out) = post("/api/v1/sign-jobs/inspect", Form::new().part("file", file(&form)));
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["pages"], 2, "{out}");
    assert_eq!(
        out["signature_fields"],
        json!([{"name": "Sig1", "page": 1, "rect": [100.0, 100.0, 300.0, 150.0]}]),
        "{out}"
    );
    let (s, out) = post("/api/v1/sign-jobs/inspect", Form::new().part("file", file(&plain)));
    assert_eq!((s, &out["signature_fields"]), (200, &json!([])), "{out}");

    // Refused on upload, before any code: each with its reason.
    let cases = [
        (
            Form::new().part("files", file(&form)).text("field_0", "Nope"),
            "form.pdf: The PDF has no field named Nope",
        ),
        (
            Form::new().part("files", file(&form)).text("field_0", "Name"),
            "not a signature field",
        ),
        (
            Form::new()
                .part("files", file(&form))
                .text("field_0", "Sig1")
                .text("rect_0", r#"{"page": 1, "rect": [300, 300, 400, 400]}"#),
            "rectangle",
        ),
        (
            Form::new().part("files", file(&form)).text("field_1", "Sig1"),
            "field_1 names no uploaded file",
        ),
        (
            Form::new()
                .part("files", file(&form))
                .text("field_0", "Sig1")
                .text("p7s_for_pdf", "true"),
            "signature field is for PDFs signed as PDF",
        ),
    ];
    for (form, says) in cases {
        let (s, out) = post("/api/v1/sign-jobs", form);
        assert_eq!(s, 400, "{says}: {out}");
        let description = out["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{says}: {out}");
    }

    let (s, job) = post(
        "/api/v1/sign-jobs",
        Form::new().part("files", file(&form)).text("field_0", "Sig1"),
    );
    assert_eq!(s, 201, "{job}");
    assert_eq!(job["files"][0]["field"], "Sig1", "{job}");
    assert_eq!(job["files"][0]["visible"], true, "{job}");
    assert_eq!(app.books(&h.credential_id), (0, 0), "nothing is spent before the code");
    let signed = crate::document_limits::sign_job(&app, &h, &cookie, &job);
    assert_eq!(app.books(&h.credential_id), (2, 2), "a signature and its timestamp");
    let path = save(dir.path(), "web-sig1.pdf", &signed);
    let report = judge(&app, &path);
    assert_eq!(report["signatures"].as_array().unwrap().len(), 1, "{report}");
    assert_signed_into_sig1(&path, &report);
    let after = fields(&path);
    assert_eq!(
        after["signature_fields"],
        json!([{"name": "Sig1", "filled": true}]),
        "{after}"
    );
    pdfsig_ok(&path, 1, true);
}
