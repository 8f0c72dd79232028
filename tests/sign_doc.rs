//! CSC `signatures/signDoc` with CAdES: the `.p7s` encloses the document by default (openssl gives it back byte for
//! byte), is detached on request, and signs document digests; the SAD is bound to the documents' digests; every
//! signature is one transaction, recorded.

mod common;

use base64::Engine;
use common::{run, run_ok, Holder, TestApp};
use serde_json::{json, Value};
use sha2::Digest;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

fn sign_algo(key: &str) -> &'static str {
    if key.starts_with("rsa") {
        "1.2.840.113549.1.1.11"
    } else {
        "1.2.840.10045.4.3.2"
    }
}

fn authorize(app: &TestApp, h: &Holder, token: &str, digests: &[Vec<u8>]) -> String {
    let otp = app.fresh_totp(h);
    let hashes: Vec<String> = digests.iter().map(|d| b64(d)).collect();
    let (s, out) = app.csc(
        "/csc/v2/credentials/authorize",
        token,
        &json!({"credentialID": h.credential_id, "numSignatures": digests.len(), "hashes": hashes,
                "hashAlgorithmOID": SHA256, "OTP": otp}),
    );
    assert_eq!(s, 200, "{out}");
    out["SAD"].as_str().unwrap().to_owned()
}

/// Checks a DER `.p7s` with openssl against our chain; returns the content openssl gives back.
fn openssl_verify(app: &TestApp, p7s: &[u8], content: Option<&[u8]>) -> (bool, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = app.ca_pems();
    let chain = dir.path().join("chain.pem");
    std::fs::write(
        &chain,
        std::fs::read_to_string(root).unwrap() + &std::fs::read_to_string(issuing).unwrap(),
    )
    .unwrap();
    let sig = dir.path().join("f.p7s");
    std::fs::write(&sig, p7s).unwrap();
    let back = dir.path().join("back");
    let at = app.now().to_string();
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        sig.to_str().unwrap(),
        "-CAfile",
        chain.to_str().unwrap(),
        "-purpose",
        "any",
        "-attime",
        &at,
        "-out",
        back.to_str().unwrap(),
    ];
    let content_file = dir.path().join("content");
    if let Some(c) = content {
        std::fs::write(&content_file, c).unwrap();
        args.extend(["-content", content_file.to_str().unwrap()]);
    }
    let out = run("openssl", &args, &[]);
    (out.status.success(), std::fs::read(&back).unwrap_or_default())
}

fn document(i: u8) -> Vec<u8> {
    // Binary content with CR/LF and NUL: the enclosed bytes must come back unchanged.
    let mut d = format!("Contract {i}\r\nParafa signDoc test\n").into_bytes();
    d.extend([0u8, 255, 13, 10, i]);
    d
}

fn sign_documents(key: &str) {
    let app = TestApp::spawn();
    let h = app.create_holder(&format!("doc-{key}@example.com"), key, 1);
    let token = app.login(&h);
    let docs = [document(1), document(2)];
    let digests: Vec<Vec<u8>> = docs.iter().map(|d| sha2::Sha256::digest(d).to_vec()).collect();
    let sad = authorize(&app, &h, &token, &digests);
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
            {"document": b64(&docs[0]), "signature_format": "C", "conformance_level": "Ades-B-B", "signAlgo": sign_algo(key)},
            {"document": b64(&docs[1]), "signature_format": "C", "signAlgo": sign_algo(key), "signed_envelope_property": "Detached"}
        ]}),
    );
    assert_eq!(s, 200, "{out}");
    let enclosed = unb64(&out["DocumentWithSignature"][0]);
    let (ok, back) = openssl_verify(&app, &enclosed, None);
    assert!(ok, "the enveloping .p7s verifies");
    assert_eq!(back, docs[0], "openssl gives the document back byte for byte");
    let detached = unb64(&out["SignatureObject"][0]);
    let (ok, _) = openssl_verify(&app, &detached, Some(&docs[1]));
    assert!(ok, "the detached .p7s verifies with its content");
    let (ok, _) = openssl_verify(&app, &detached, Some(&docs[0]));
    assert!(!ok, "and not with another document");
    // Two signatures, two transactions, two rows; the SAD is spent.
    assert_eq!(app.books(&h.credential_id), (2, 2));
    let (s, again) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
            {"document": b64(&docs[0]), "signature_format": "C", "signAlgo": sign_algo(key)}]}),
    );
    assert_eq!(s, 400, "{again}");
    assert_eq!(app.books(&h.credential_id), (2, 2));
}

#[test]
fn sign_doc_makes_an_enveloping_and_a_detached_cades_with_rsa() {
    sign_documents("rsa2048");
}

#[test]
fn sign_doc_makes_an_enveloping_and_a_detached_cades_with_ecdsa() {
    sign_documents("p256");
}

#[test]
fn sign_doc_signs_document_digests_and_only_the_authorised_ones() {
    let app = TestApp::spawn();
    let h = app.create_holder("digests@example.com", "p256", 1);
    let token = app.login(&h);
    let doc = document(7);
    let digest = sha2::Sha256::digest(&doc).to_vec();
    let sad = authorize(&app, &h, &token, std::slice::from_ref(&digest));
    let call = |body: Value| app.csc("/csc/v2/signatures/signDoc", &token, &body);
    // A document that was not authorised is refused, and nothing is spent.
    let (s, out) = call(json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
        {"document": b64(&document(8)), "signature_format": "C", "signAlgo": sign_algo("p256")}]}));
    assert_eq!(
        (s, out["error_description"].as_str()),
        (400, Some("Hash is not authorized by the SAD")),
        "{out}"
    );
    // Both forms at once, none, PAdES, XAdES, unknown levels: clear 400s.
    for (body, what) in [
        (
            json!({"credentialID": h.credential_id, "SAD": sad, "documents": [], "documentDigests": []}),
            "Both",
        ),
        (json!({"credentialID": h.credential_id, "SAD": sad}), "Empty"),
        (
            json!({"credentialID": h.credential_id, "SAD": sad, "documentDigests": [{"hashes": [b64(&digest)],
            "hashAlgorithmOID": SHA256, "signature_format": "X", "signAlgo": sign_algo("p256")}]}),
            "signature_format",
        ),
        (
            json!({"credentialID": h.credential_id, "SAD": sad, "documentDigests": [{"hashes": [b64(&digest)],
            "hashAlgorithmOID": SHA256, "signature_format": "C", "conformance_level": "AdES-X",
            "signAlgo": sign_algo("p256")}]}),
            "conformance_level",
        ),
        (
            json!({"credentialID": h.credential_id, "SAD": sad, "documentDigests": [{"hashes": ["***"],
            "hashAlgorithmOID": SHA256, "signature_format": "C", "signAlgo": sign_algo("p256")}]}),
            "Base64",
        ),
        (
            json!({"credentialID": h.credential_id, "SAD": sad, "documentDigests": [{"hashes": [b64(&digest)],
            "hashAlgorithmOID": SHA256, "signature_format": "C", "signed_envelope_property": "Attached",
            "signAlgo": sign_algo("p256")}]}),
            "Detached",
        ),
    ] {
        let (s, out) = call(body);
        assert_eq!(s, 400, "{what}: {out}");
        assert!(
            out["error_description"].as_str().unwrap().contains(what),
            "{what}: {out}"
        );
    }
    assert_eq!(app.books(&h.credential_id), (0, 0), "no refusal spends anything");
    let (s, out) = call(json!({"credentialID": h.credential_id, "SAD": sad, "documentDigests": [
        {"hashes": [b64(&digest)], "hashAlgorithmOID": SHA256, "signature_format": "C", "signAlgo": sign_algo("p256")}]}));
    assert_eq!(s, 200, "{out}");
    let p7s = unb64(&out["SignatureObject"][0]);
    let (ok, _) = openssl_verify(&app, &p7s, Some(&doc));
    assert!(ok, "a signature of the digest verifies against the document");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.p7s");
    std::fs::write(&f, &p7s).unwrap();
    let printed = run_ok(
        "openssl",
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", f.to_str().unwrap()],
    );
    assert!(
        printed.contains("signingTime") && printed.contains("id-smime-aa-signingCertificateV2"),
        "{printed}"
    );
    assert_eq!(app.books(&h.credential_id), (1, 1));
}
