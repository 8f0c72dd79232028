//! Two `parafa serve` processes on one PostgreSQL database and one SoftHSM2 token: provisioning at the same moment
//! makes one CA, a TOTP code used on one instance is refused on the other, a SAD authorised on one is spent on
//! both, signatures spread over both instances keep the books exact, wrong TOTP codes count towards one lock-out
//! whichever instance gets them, and a session opened on one instance works and is revoked on both. (PostgreSQL
//! only: what several instances share.)

use crate::common;

use std::collections::HashMap;

use base64::Engine;
use common::TestApp;
use serde_json::{json, Value};
use sha2::Digest;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn description(out: &Value) -> &str {
    out["error_description"].as_str().unwrap_or("")
}

#[test]
fn two_instances_starting_at_once_make_one_ca_in_one_token() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    for path in ["/pki/ca.crt", "/pki/issuing.crt", "/pki/tsa.crt"] {
        let ca = a.get(path).bytes().unwrap();
        assert!(!ca.is_empty());
        assert_eq!(ca, b.get(path).bytes().unwrap(), "{path} is the same on both instances");
    }
    let objects: Value = serde_json::from_str(&a.cli_ok(&["hsm", "list", "--json"])).unwrap();
    let mut private_keys: HashMap<String, usize> = HashMap::new();
    for o in objects.as_array().unwrap() {
        if o["class"] == "PRIVATE_KEY" || o["class"] == "private key" || o["class"] == "CKO_PRIVATE_KEY" {
            *private_keys
                .entry(o["id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(
        private_keys.len(),
        4,
        "root, issuing, TSA and trusted list operator keys: {objects}"
    );
    assert!(
        private_keys.values().all(|n| *n == 1),
        "no key made twice: {private_keys:?}"
    );
    drop(b);
}

#[test]
fn a_totp_code_and_a_sad_are_spent_for_both_instances_and_the_books_stay_exact() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    let h = a.create_holder_with("cluster@example.com", "p256", 1, false);
    let token = a.login(&h);
    let digests: Vec<Vec<u8>> = (0..40u32)
        .map(|i| sha2::Sha256::digest(i.to_be_bytes()).to_vec())
        .collect();
    let hashes: Vec<String> = digests.iter().map(|d| b64(d)).collect();
    let code = a.fresh_totp(&h);
    let body = json!({"credentialID": h.credential_id, "numSignatures": 40, "hashes": hashes,
                      "hashAlgorithmOID": SHA256, "OTP": code});
    let (s, auth) = a.csc("/csc/v2/credentials/authorize", &token, &body);
    assert_eq!(s, 200, "{auth}");
    // The same code on the other instance is a replay.
    let (s, replay) = b.csc("/csc/v2/credentials/authorize", &token, &body);
    assert_eq!(s, 400, "a code used on A is refused on B: {replay}");
    let sad = auth["SAD"].as_str().unwrap().to_owned();

    // 40 single-hash signatures, alternating instances, 8 at a time.
    let results: Vec<u16> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<(usize, String)>> = (0..8)
            .map(|t| hashes.iter().cloned().enumerate().filter(|(i, _)| i % 8 == t).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (a, b, token, sad, cred) = (&a, &b, &token, &sad, &h.credential_id);
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, hash)| {
                            let app = if i % 2 == 0 { a } else { b };
                            let (s, out) = app.csc(
                                "/csc/v2/signatures/signHash",
                                token,
                                &json!({"credentialID": cred, "SAD": sad, "hashes": [hash],
                                        "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256}),
                            );
                            assert!(s == 200, "{out}");
                            s
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.len(), 40);
    assert_eq!(a.books(&h.credential_id), (40, 40), "debits equal recorded signatures");
    // The SAD is spent, whichever instance is asked.
    for app in [&a, &b] {
        let (s, out) = app.csc(
            "/csc/v2/signatures/signHash",
            &token,
            &json!({"credentialID": h.credential_id, "SAD": sad, "hashes": [hashes[0]],
                    "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256}),
        );
        assert_eq!(s, 400, "{out}");
    }
    assert_eq!(b.books(&h.credential_id), (40, 40));
    drop(b);
}

#[test]
fn a_totp_lockout_and_a_revoked_session_hold_on_both_instances() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    let h = a.create_holder_with("lockout@example.com", "p256", 1, false);
    // A session opened on A works on B.
    let token = a.login(&h);
    let (s, out) = b.csc("/csc/v2/credentials/list", &token, &json!({}));
    assert_eq!(s, 200, "A's access token on B: {out}");
    assert!(
        out["credentialIDs"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(h.credential_id))),
        "{out}"
    );

    let digest = sha2::Sha256::digest(b"lock-out");
    let authorize = |app: &TestApp, code: &str| {
        app.csc(
            "/csc/v2/credentials/authorize",
            &token,
            &json!({"credentialID": h.credential_id, "numSignatures": 1, "hashes": [b64(&digest)],
                    "hashAlgorithmOID": SHA256, "OTP": code}),
        )
    };
    // A code that matches none of the steps the server may accept while the wrong codes are sent.
    let now = a.now();
    let near: Vec<String> = (-3..=3)
        .map(|i| common::totp_code(&h.totp_secret, now + 30 * i))
        .collect();
    let wrong = ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap();
    // Wrong codes alternately on A and B count down one budget of 5.
    for attempt in 1..=4 {
        let app = if attempt % 2 == 1 { &a } else { &b };
        let (s, out) = authorize(app, wrong);
        assert_eq!(s, 400, "{out}");
        assert_eq!(out["error"], "invalid_authentication_data", "{out}");
        assert!(
            description(&out).contains(&format!("{} attempts left", 5 - attempt)),
            "wrong code {attempt} on {}: {out}",
            if app.base == a.base { "A" } else { "B" }
        );
    }
    let (s, out) = authorize(&a, wrong);
    assert_eq!(s, 400, "{out}");
    assert!(
        description(&out).contains("Credential locked") && description(&out).contains("too many wrong codes"),
        "the fifth wrong code (on A) locks: {out}"
    );
    // A right code of a new step is refused on both instances while the lock lasts.
    for (name, app) in [("A", &a), ("B", &b)] {
        let (s, out) = authorize(app, &a.fresh_totp(&h));
        assert_eq!(s, 400, "{out}");
        assert!(
            description(&out).contains("Credential locked"),
            "a right code on {name} during the lock: {out}"
        );
    }
    // The lock (15 minutes) ends for both.
    a.advance_clock(16 * 60);
    let (s, out) = authorize(&b, &a.fresh_totp(&h));
    assert_eq!(s, 200, "a right code on B after the lock: {out}");
    assert!(out["SAD"].is_string(), "{out}");

    // Revoked on B, the session ends on A too.
    let (s, out) = b.csc("/csc/v2/auth/revoke", &token, &json!({ "token": token }));
    assert_eq!(s, 204, "{out}");
    for (name, app) in [("A", &a), ("B", &b)] {
        let (s, out) = app.csc("/csc/v2/credentials/list", &token, &json!({}));
        assert_eq!(s, 401, "the revoked token on {name}: {out}");
    }
    drop(b);
}
