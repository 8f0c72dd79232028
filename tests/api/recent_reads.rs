//! `signatures/signHash` takes the access token, the credential and the SAD it read a moment ago
//! (`csc.read_cache_ms`); the ledger's commit checks each again. These tests keep the reads for ten minutes, so
//! what the server holds is stale for certain, and change the books behind its back (the CLI, another instance):
//! no signature may come out of a revoked credential or token or a used SAD, nothing is spent, and the holder is
//! told the precise reason, as without the kept reads.

use crate::common;

use base64::Engine;
use common::{Holder, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Kept reads outlive the test.
const KEEP: (&str, &str) = ("PARAFA_CSC_READ_CACHE_MS", "600000");
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn digests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| Sha256::digest(format!("document {i}")).to_vec())
        .collect()
}

fn authorize(app: &TestApp, holder: &Holder, token: &str, digests: &[Vec<u8>]) -> String {
    let (s, out) = app.csc(
        "/csc/v2/credentials/authorize",
        token,
        &json!({
            "credentialID": holder.credential_id,
            "numSignatures": digests.len(),
            "hashes": digests.iter().map(|d| b64(d)).collect::<Vec<_>>(),
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
            "authData": [{ "id": "otp", "value": app.fresh_totp(holder) }],
        }),
    );
    assert_eq!(s, 200, "{out}");
    out["SAD"].as_str().unwrap().to_owned()
}

fn sign(app: &TestApp, holder: &Holder, token: &str, sad: &str, digest: &[u8]) -> (u16, Value) {
    app.csc(
        "/csc/v2/signatures/signHash",
        token,
        &json!({
            "credentialID": holder.credential_id,
            "SAD": sad,
            "hashes": [b64(digest)],
            "signAlgo": ECDSA_SHA256,
        }),
    )
}

/// Requests the ledger committed by `path` (`together`, `one_by_one`), from `/metrics`.
fn ledger_requests(app: &TestApp, path: &str) -> u64 {
    let text = app.get("/metrics").text().unwrap();
    let prefix = format!("parafa_ledger_requests_total{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn error_of(out: &Value) -> (&str, &str) {
    (
        out["error"].as_str().unwrap_or(""),
        out["error_description"].as_str().unwrap_or(""),
    )
}

#[test]
fn a_token_or_a_credential_revoked_after_it_was_read_gets_no_signature_and_spends_nothing() {
    let app = TestApp::spawn_on(common::Backend::Sqlite, &[KEEP]);
    let holder = app.create_holder_with("kept@example.com", "p256", 1, false);
    let token = app.login(&holder);
    let d = digests(4);
    let sad = authorize(&app, &holder, &token, &d);
    // The first signature: the server reads the token, the credential and the SAD, and keeps them.
    let (s, out) = sign(&app, &holder, &token, &sad, &d[0]);
    assert_eq!(s, 200, "{out}");
    assert_eq!(app.books(&holder.credential_id), (1, 1));
    // The ledger took the fast path (the group's statements set-based), as it does when nothing is refused.
    assert_eq!(
        (ledger_requests(&app, "together"), ledger_requests(&app, "one_by_one")),
        (1, 0)
    );

    // The token is revoked (auth/revoke reads it afresh): the kept copy signs nothing.
    let (s, out) = app.csc("/csc/v2/auth/revoke", &token, &json!({ "token": token }));
    assert_eq!(s, 204, "{out}");
    let (s, out) = sign(&app, &holder, &token, &sad, &d[1]);
    assert_eq!((s, error_of(&out).0), (401, "invalid_token"), "{out}");
    assert_eq!(app.books(&holder.credential_id), (1, 1), "nothing spent");
    // The refusal sent the group the one-by-one way, which says why.
    assert_eq!(
        (ledger_requests(&app, "together"), ledger_requests(&app, "one_by_one")),
        (1, 1)
    );

    // A new token; the credential is revoked by the CLI, another process: the server's kept credential says
    // it can sign, the ledger says it cannot, and the holder reads why.
    let token = app.login(&holder);
    let (s, out) = sign(&app, &holder, &token, &sad, &d[1]);
    assert_eq!(s, 200, "{out}");
    app.cli_ok(&["admin", "revoke", &holder.credential_id, "--reason", "key_compromise"]);
    let (s, out) = sign(&app, &holder, &token, &sad, &d[2]);
    assert_eq!(s, 400, "{out}");
    assert!(error_of(&out).1.contains("revoked"), "{out}");
    assert_eq!(app.books(&holder.credential_id), (2, 2), "nothing spent");
    // And again, now from a fresh read.
    let (s, out) = sign(&app, &holder, &token, &sad, &d[3]);
    assert_eq!(s, 400, "{out}");
    assert!(error_of(&out).1.contains("revoked"), "{out}");
}

#[test]
fn a_sad_used_on_another_instance_gets_no_signature_from_the_copy_this_one_kept() {
    let Some((a, b)) = TestApp::spawn_pair_postgres_with(&[KEEP]) else {
        return;
    };
    let holder = a.create_holder_with("pair-kept@example.com", "p256", 1, false);
    let token = a.login(&holder);
    let d = digests(3);
    let sad = authorize(&a, &holder, &token, &d);
    // A signs the first digest and keeps the SAD: two signatures left, one for each other digest.
    let (s, out) = sign(&a, &holder, &token, &sad, &d[0]);
    assert_eq!(s, 200, "{out}");
    assert_eq!(ledger_requests(&a, "together"), 1, "PostgreSQL takes the fast path too");
    // B signs the other two: the SAD is used up.
    for digest in &d[1..] {
        let (s, out) = sign(&b, &holder, &token, &sad, digest);
        assert_eq!(s, 200, "{out}");
    }
    assert_eq!(a.books(&holder.credential_id), (3, 3));
    // A's copy still says the second digest may be signed once: the ledger refuses, and A says why as a fresh
    // read does.
    let (s, out) = sign(&a, &holder, &token, &sad, &d[1]);
    assert_eq!(
        (s, error_of(&out)),
        (400, ("invalid_request", "The SAD was already used: authorise again")),
        "{out}"
    );
    assert_eq!(a.books(&holder.credential_id), (3, 3), "nothing spent");
    drop(b);
}
