//! CSC `signatures/signDoc` with CAdES: the `.p7s` encloses the document by default (openssl gives it back byte for
//! byte), is detached on request, and signs document digests; the SAD is bound to the documents' digests; every
//! signature is one transaction, recorded.

use crate::common;

use base64::Engine;
use common::{run_ok, Holder, TestApp};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};

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
    let (ok, back) = app.cms_verify(&enclosed, None);
    assert!(ok, "the enveloping .p7s verifies");
    assert_eq!(back, docs[0], "openssl gives the document back byte for byte");
    let detached = unb64(&out["SignatureObject"][0]);
    let (ok, _) = app.cms_verify(&detached, Some(&docs[1]));
    assert!(ok, "the detached .p7s verifies with its content");
    let (ok, _) = app.cms_verify(&detached, Some(&docs[0]));
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
    let (ok, _) = app.cms_verify(&p7s, Some(&doc));
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

/// Signs `documents` (signDoc's entries, each of `doc`) as the holder, with a SAD for as many signatures; the answer.
fn sign_doc_entries(app: &TestApp, h: &Holder, doc: &[u8], documents: Value) -> Value {
    let token = app.login(h);
    let digest = sha2::Sha256::digest(doc).to_vec();
    let count = documents.as_array().map_or(0, Vec::len);
    let sad = authorize(app, h, &token, &vec![digest; count]);
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": documents}),
    );
    assert_eq!(s, 200, "{out}");
    out
}

/// The first SignerInfo's signature value and the value of its unsigned attribute `oid`, if present. The SignedData
/// is read as a SEQUENCE of elements and only its last one, the SignerInfos, as `cms` types: the `cms` crate reads
/// `OtherRevocationInfoFormat` wrongly, so an OCSP response in `crls` (RFC 5940) would stop a whole decode.
fn unsigned(p7s: &[u8], oid: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(p7s).unwrap();
    let fields: Vec<der::Any> = ci.content.decode_as().unwrap();
    let infos: cms::signed_data::SignerInfos = fields.last().unwrap().decode_as().unwrap();
    let si = infos.0.iter().next().unwrap();
    let oid: const_oid::ObjectIdentifier = oid.parse().unwrap();
    let value = si
        .unsigned_attrs
        .as_ref()
        .and_then(|a| a.iter().find(|a| a.oid == oid))
        .map(|a| a.values.iter().next().unwrap().to_der().unwrap());
    (si.signature.as_bytes().to_vec(), value)
}

/// Runs tests/python/cades_judge.py (`structure` or `validate`, see there) and reads its JSON report.
fn cades_judge(app: &TestApp, command: &str, args: &[&Path]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let script = root.join("tests/python/cades_judge.py");
    let mut all = vec![script.to_str().unwrap(), command];
    all.extend(args.iter().map(|p| p.to_str().unwrap()));
    let at = app.now().to_string();
    let out = common::run(python.to_str().unwrap(), &all, &[("PARAFA_JUDGE_AT", Path::new(&at))]);
    assert!(
        out.status.success(),
        "cades_judge {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn timestamped_and_long_term_levels_carry_a_verifiable_signature_timestamp_and_no_ets_value_attributes() {
    let app = TestApp::spawn();
    let h = app.create_holder("levels@example.com", "rsa2048", 1);
    let token = app.login(&h);
    let docs = [document(1), document(2)];
    let digests: Vec<Vec<u8>> = docs.iter().map(|d| sha2::Sha256::digest(d).to_vec()).collect();
    let sad = authorize(&app, &h, &token, &digests);
    let (s, out) = app.csc(
        "/csc/v2/signatures/signDoc",
        &token,
        &json!({"credentialID": h.credential_id, "SAD": sad, "documents": [
            {"document": b64(&docs[0]), "signature_format": "C", "conformance_level": "Ades-B-T", "signAlgo": sign_algo("rsa2048")},
            {"document": b64(&docs[1]), "signature_format": "C", "conformance_level": "AdES-B-LT", "signAlgo": sign_algo("rsa2048")}
        ]}),
    );
    assert_eq!(s, 200, "{out}");
    // Two signatures and two timestamps: four transactions, four ledger rows.
    assert_eq!(app.books(&h.credential_id), (4, 4));
    for (i, doc) in docs.iter().enumerate() {
        let p7s = unb64(&out["DocumentWithSignature"][i]);
        let (ok, back) = app.cms_verify(&p7s, None);
        assert!(ok && back == *doc, "document {i} verifies and comes back");
        let (signature, ts) = unsigned(&p7s, "1.2.840.113549.1.9.16.2.14");
        let ts = ts.expect("a signature timestamp");
        let (ok, printed) = app.ts_verify(&signature, &ts);
        assert!(ok, "openssl ts -verify: {printed}");
    }
    let b_t = unb64(&out["DocumentWithSignature"][0]);
    for oid in ["1.2.840.113549.1.9.16.2.23", "1.2.840.113549.1.9.16.2.24"] {
        for p7s in [&b_t, &unb64(&out["DocumentWithSignature"][1])] {
            assert!(
                unsigned(p7s, oid).1.is_none(),
                "no certificate-values or revocation-values attribute ({oid})"
            );
        }
    }
}

#[test]
fn csc_timestamp_gives_an_rfc3161_token_with_the_nonce_debited_as_one_transaction() {
    let app = TestApp::spawn();
    let h = app.create_holder("ts@example.com", "p256", 1);
    let token = app.login(&h);
    let data = b"data to be timestamped".to_vec();
    let digest = sha2::Sha256::digest(&data).to_vec();
    for (body, what) in [
        (json!({"hash": b64(&digest), "hashAlgo": "1.2.3"}), "hashAlgo"),
        (json!({"hash": b64(&digest[..20]), "hashAlgo": SHA256}), "length"),
        (json!({"hashAlgo": SHA256}), "Empty hash"),
        (
            json!({"hash": b64(&digest), "hashAlgo": SHA256, "nonce": "zz"}),
            "nonce",
        ),
    ] {
        let (s, out) = app.csc("/csc/v2/signatures/timestamp", &token, &body);
        assert_eq!(s, 400, "{what}: {out}");
        assert!(
            out["error_description"].as_str().unwrap().contains(what),
            "{what}: {out}"
        );
    }
    assert_eq!(app.books(&h.credential_id), (0, 0));
    let (s, out) = app.csc(
        "/csc/v2/signatures/timestamp",
        &token,
        &json!({"hash": b64(&digest), "hashAlgo": SHA256, "nonce": "0a1b2c"}),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(app.books(&h.credential_id), (1, 1), "one transaction, one ledger row");
    let token = unb64(&out["timestamp"]);
    let (ok, verified) = app.ts_verify(&data, &token);
    assert!(ok, "{verified}");
    let dir = tempfile::tempdir().unwrap();
    let ts_file = dir.path().join("ts.der");
    std::fs::write(&ts_file, &token).unwrap();
    let text = run_ok(
        "openssl",
        &["ts", "-reply", "-in", ts_file.to_str().unwrap(), "-token_in", "-text"],
    );
    assert!(text.contains("0x0A1B2C"), "the nonce is in the token: {text}");
}

#[test]
fn pyhanko_validates_enveloping_and_detached_timestamped_cades() {
    let app = TestApp::spawn();
    let h = app.create_holder("pyhanko-cades@example.com", "p256", 1);
    let doc = document(3);
    let out = sign_doc_entries(
        &app,
        &h,
        &doc,
        json!([
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-T", "signAlgo": sign_algo("p256")},
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-T", "signAlgo": sign_algo("p256"),
                 "signed_envelope_property": "Detached"}
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = app.ca_pems();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pdf_judge.py");
    let enclosed = dir.path().join("enclosed.p7s");
    std::fs::write(&enclosed, unb64(&out["DocumentWithSignature"][0])).unwrap();
    let detached = dir.path().join("detached.p7s");
    std::fs::write(&detached, unb64(&out["SignatureObject"][0])).unwrap();
    let content = dir.path().join("doc.bin");
    std::fs::write(&content, &doc).unwrap();
    for args in [
        vec![enclosed.to_str().unwrap(), root.to_str().unwrap()],
        vec![
            detached.to_str().unwrap(),
            root.to_str().unwrap(),
            content.to_str().unwrap(),
        ],
    ] {
        let mut all = vec![script.to_str().unwrap(), "cms"];
        all.extend(args);
        let report: Value = serde_json::from_str(&run_ok(python.to_str().unwrap(), &all)).unwrap();
        assert_eq!(
            report,
            json!({"intact": true, "valid": true, "trusted": true, "signature_timestamp": true}),
            "{all:?}"
        );
    }
}

/// What a holder's signer certificate needs beside the root: the issuing CA's, and the TSA's for the timestamps.
const SIGNED_DATA_CERTIFICATES: u64 = 4;

/// The enclosing `.p7s` (the answer's first) and the detached one (its first signature object) of `doc`, written to
/// `dir`, each with the content file a judge needs beside it (None: enclosed).
fn long_term_files(out: &Value, doc: &[u8], dir: &std::path::Path) -> [(PathBuf, Option<PathBuf>); 2] {
    let (enclosed, detached, content) = (dir.join("enclosed.p7s"), dir.join("detached.p7s"), dir.join("doc.bin"));
    std::fs::write(&enclosed, unb64(&out["DocumentWithSignature"][0])).unwrap();
    std::fs::write(&detached, unb64(&out["SignatureObject"][0])).unwrap();
    std::fs::write(&content, doc).unwrap();
    [(enclosed, None), (detached, Some(content))]
}

/// Judges a B-LT or B-LTA `.p7s` of `doc` (`content`: its file, for a detached one) with openssl, the structure judge
/// and pyHanko (with `archives` archive timestamps, each to be valid); returns the structure report.
fn judge_long_term(app: &TestApp, p7s: &Path, content: Option<&Path>, doc: &[u8], archives: usize) -> Value {
    let (ok, back) = app.cms_verify(&std::fs::read(p7s).unwrap(), content.map(|_| doc));
    assert!(ok && back == doc, "openssl cms -verify: {p7s:?}");
    let args: Vec<&Path> = [p7s].into_iter().chain(content).collect();
    let report = cades_judge(app, "structure", &args);
    // EN 319 122-1 B-LT: the chain (the TSA's included) in SignedData.certificates, both CAs' CRLs and the OCSP
    // responses for the signer and the TSA in SignedData.crls (RFC 5940), no certificate-values or revocation-values
    // attribute; an `other` revocation format makes the SignedData version 5 (RFC 5652 §5.1).
    assert_eq!(report["certificates"], SIGNED_DATA_CERTIFICATES, "{report}");
    assert_eq!(
        (&report["crls"], &report["ocsp_responses"]),
        (&json!(2), &json!(2)),
        "{report}"
    );
    assert_eq!(report["certificate_values"], false, "{report}");
    assert_eq!(report["revocation_values"], false, "{report}");
    assert_eq!(report["version"], 5, "{report}");
    let (root, _) = app.ca_pems();
    let args: Vec<&Path> = [p7s, root.as_path()].into_iter().chain(content).collect();
    let validated = cades_judge(app, "validate", &args);
    assert_eq!(
        validated,
        json!({"intact": true, "valid": true, "trusted": true, "signature_timestamp": true,
               "archive_timestamps": vec![true; archives]}),
        "pyHanko, revocation hard-fail, nothing fetched: {p7s:?}"
    );
    report
}

#[test]
fn cades_b_lt_carries_its_validation_data_in_signed_data_and_pyhanko_validates_it_offline() {
    let app = TestApp::spawn();
    let h = app.create_holder("cades-lt@example.com", "p256", 1);
    let doc = document(4);
    let out = sign_doc_entries(
        &app,
        &h,
        &doc,
        json!([
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-LT", "signAlgo": sign_algo("p256")},
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-LT", "signAlgo": sign_algo("p256"),
                 "signed_envelope_property": "Detached"},
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-T", "signAlgo": sign_algo("p256")}
        ]),
    );
    assert_eq!(
        app.books(&h.credential_id),
        (6, 6),
        "three signatures, three timestamps"
    );
    let dir = tempfile::tempdir().unwrap();
    for (p7s, content) in long_term_files(&out, &doc, dir.path()) {
        let report = judge_long_term(&app, &p7s, content.as_deref(), &doc, 0);
        assert_eq!(report["unsigned"], json!(["1.2.840.113549.1.9.16.2.14"]), "{report}");
    }

    // The same judge on a B-T file, which carries no revocation data: not trusted. The data inside is what counts.
    let b_t = dir.path().join("t.p7s");
    std::fs::write(&b_t, unb64(&out["DocumentWithSignature"][1])).unwrap();
    let (root, _) = app.ca_pems();
    let report = cades_judge(&app, "validate", &[&b_t, &root]);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["trusted"], false, "{report}");
}

#[test]
fn cades_b_lta_adds_an_archive_timestamp_v3_over_the_signature_and_its_validation_data() {
    let app = TestApp::spawn();
    let h = app.create_holder("cades-lta@example.com", "rsa2048", 1);
    let doc = document(5);
    let out = sign_doc_entries(
        &app,
        &h,
        &doc,
        json!([
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "AdES-B-LTA", "signAlgo": sign_algo("rsa2048")},
                {"document": b64(&doc), "signature_format": "C", "conformance_level": "Ades-LTA", "signAlgo": sign_algo("rsa2048"),
                 "signed_envelope_property": "Detached"}
        ]),
    );
    // Each: the signature, its signature timestamp and its archive timestamp.
    assert_eq!(app.books(&h.credential_id), (6, 6));
    let dir = tempfile::tempdir().unwrap();
    for (p7s, content) in long_term_files(&out, &doc, dir.path()) {
        let report = judge_long_term(&app, &p7s, content.as_deref(), &doc, 1);
        let mut unsigned: Vec<&str> = report["unsigned"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        unsigned.sort_unstable();
        assert_eq!(
            unsigned,
            ["0.4.0.1733.2.4", "1.2.840.113549.1.9.16.2.14"],
            "the archive-time-stamp-v3 and the signature timestamp: {report}"
        );
        // The index names every certificate, every CRL and OCSP response and the signature timestamp, and the
        // archive timestamp's imprint is EN 319 122-1 §5.5.3's, as recomputed by the judge.
        let archive = &report["archive_timestamps"][0];
        assert_eq!(archive["hash_index"], true, "{report}");
        assert_eq!(archive["imprint"], true, "{report}");
        assert_eq!(archive["entries"], json!([SIGNED_DATA_CERTIFICATES, 4, 1]), "{report}");
    }

    // Parafa's own verification reads the file (the `cms` crate alone cannot: an OCSP response in crls).
    let (s, verified) = crate::verify::verify(&app, &unb64(&out["DocumentWithSignature"][0]), None);
    assert_eq!(s, 200, "{verified}");
    let sig = &verified["signatures"][0];
    assert_eq!(
        (&sig["intact"], &sig["trusted"], &sig["status"]),
        (&json!(true), &json!(true), &json!("valid")),
        "{verified}"
    );
    assert_eq!(sig["timestamp"]["intact"], true, "{verified}");
    // … and its archive timestamp: intact over what it covers, from the trusted TSA, a qualified timestamp.
    let archive = &sig["archive_timestamps"];
    assert_eq!(archive.as_array().map(Vec::len), Some(1), "{verified}");
    assert_eq!(
        (&archive[0]["intact"], &archive[0]["trusted"]),
        (&json!(true), &json!(true)),
        "{verified}"
    );
    assert_eq!(sig["qualification"]["signature"], "qualified", "{verified}");

    // A CRL taken out of the file afterwards: the archive timestamp no longer covers what the file holds.
    let lta = dir.path().join("lta.p7s");
    let cut = dir.path().join("cut.p7s");
    std::fs::write(&lta, unb64(&out["DocumentWithSignature"][0])).unwrap();
    cades_judge(&app, "drop-crl", &[&lta, &cut]);
    let (s, verified) = crate::verify::verify(&app, &std::fs::read(&cut).unwrap(), None);
    assert_eq!(s, 200, "{verified}");
    let sig = &verified["signatures"][0];
    assert_eq!(sig["intact"], true, "the signature itself is untouched: {verified}");
    assert_eq!(sig["archive_timestamps"][0]["intact"], false, "{verified}");
    assert!(
        sig["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("archive timestamp covers was removed or changed")),
        "{verified}"
    );
}
