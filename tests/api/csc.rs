//! The CSC signing core through HTTP: sole control (TOTP-activated, hash-bound SADs), exact quotas, and clear
//! errors for bad input. Every signature the tests get back is verified by OpenSSL against the certificate.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{run, Backend, FreshPostgres, Holder, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384};

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
const RSA: &str = "1.2.840.113549.1.1.1";
const PSS: &str = "1.2.840.113549.1.1.10";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const EC_KEY: &str = "1.2.840.10045.2.1";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn sha256(data: &str) -> Vec<u8> {
    Sha256::digest(data.as_bytes()).to_vec()
}

/// A holder with a session: the app, the holder and a bearer token.
struct Session {
    app: TestApp,
    holder: Holder,
    token: String,
}

impl Session {
    fn new(key: &str) -> Session {
        Self::on(TestApp::spawn(), key, 1)
    }

    fn on(app: TestApp, key: &str, package: u8) -> Session {
        let holder = app.create_holder_with(&format!("{key}@example.com"), key, package, false);
        let token = app.login(&holder);
        Session { app, holder, token }
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.app.csc(path, &self.token, &body)
    }

    /// Authorises `digests` (v2 names) with a fresh code; returns the SAD.
    fn authorize(&self, digests: &[Vec<u8>], hash_oid: Option<&str>) -> String {
        let mut body = json!({
            "credentialID": self.holder.credential_id,
            "numSignatures": digests.len(),
            "hashes": digests.iter().map(|d| b64(d)).collect::<Vec<_>>(),
            "authData": [{ "id": "otp", "value": self.app.fresh_totp(&self.holder) }],
        });
        if let Some(h) = hash_oid {
            body["hashAlgorithmOID"] = json!(h);
        }
        let (status, out) = self.post("/csc/v2/credentials/authorize", body);
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["expiresIn"], 300);
        out["SAD"].as_str().expect("SAD").to_owned()
    }

    fn sign(&self, sad: &str, digests: &[Vec<u8>], sign_algo: &str) -> (u16, Value) {
        self.post(
            "/csc/v2/signatures/signHash",
            json!({
                "credentialID": self.holder.credential_id,
                "SAD": sad,
                "hashes": digests.iter().map(|d| b64(d)).collect::<Vec<_>>(),
                "signAlgo": sign_algo,
            }),
        )
    }

    /// The holder certificate's public key as a PEM file.
    fn public_key(&self) -> PathBuf {
        let cert = self.app.data_dir.join("holder.pem");
        std::fs::write(
            &cert,
            self.app.cli_ok(&["admin", "cert", &self.holder.certificate_serial]),
        )
        .unwrap();
        let out = common::run_ok("openssl", &["x509", "-in", cert.to_str().unwrap(), "-pubkey", "-noout"]);
        let path = self.app.data_dir.join("holder-pub.pem");
        std::fs::write(&path, out).unwrap();
        path
    }
}

/// `openssl pkeyutl -verify` of a signature over a digest, with extra `-pkeyopt`s.
fn openssl_verifies(public_key: &Path, digest: &[u8], signature_b64: &str, opts: &[&str]) -> bool {
    let signature = base64::engine::general_purpose::STANDARD.decode(signature_b64).unwrap();
    common::openssl_verifies(public_key, digest, &signature, opts)
}

fn error_of(out: &Value) -> (&str, &str) {
    (
        out["error"].as_str().unwrap_or(""),
        out["error_description"].as_str().unwrap_or(""),
    )
}

#[test]
fn info_describes_the_service_on_v1_and_v2() {
    let app = TestApp::spawn();
    for (path, specs) in [("/csc/v1/info", "1.0.4.0"), ("/csc/v2/info", "2.0.0.2")] {
        let resp = app.client.post(app.url(path)).json(&json!({})).send().unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().unwrap();
        assert_eq!(v["specs"], specs);
        assert_eq!(v["authType"], json!(["basic", "oauth2code"]));
        let methods = v["methods"].as_array().unwrap();
        assert!(methods.contains(&json!("signatures/signHash")) && methods.contains(&json!("credentials/authorize")));
    }
    // info takes no body at all, too.
    assert_eq!(app.client.post(app.url("/csc/v2/info")).send().unwrap().status(), 200);
}

#[test]
fn login_needs_the_password_and_the_totp_when_two_factor_is_on() {
    let app = TestApp::spawn();
    let holder = app.create_holder("twofa@example.com", "p256", 1);
    let login = |user: &str, pw: &str, otp: Option<String>, body: Value| {
        let mut req = app
            .client
            .post(app.url("/csc/v2/auth/login"))
            .basic_auth(user, Some(pw))
            .json(&body);
        if let Some(otp) = otp {
            req = req.header("X-Parafa-OTP", otp);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    let (status, out) = login(&holder.email, "wrong password", None, json!({}));
    assert_eq!((status, error_of(&out).0), (400, "authentication_error"), "{out}");
    let (status, out) = login("nobody@example.com", common::HOLDER_PASSWORD, None, json!({}));
    assert_eq!((status, error_of(&out).0), (400, "authentication_error"), "{out}");
    let (status, out) = login(&holder.email, common::HOLDER_PASSWORD, None, json!({}));
    assert_eq!(status, 400, "2FA is on: the code is required: {out}");
    assert!(error_of(&out).1.contains("code is required"), "{out}");
    let (status, out) = login(&holder.email, common::HOLDER_PASSWORD, Some("000000".into()), json!({}));
    assert_eq!(status, 400, "{out}");

    let code = app.fresh_totp(&holder);
    let (status, out) = login(
        &holder.email,
        common::HOLDER_PASSWORD,
        Some(code.clone()),
        json!({"rememberMe": true}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["expires_in"], 3600);
    let access = out["access_token"].as_str().unwrap().to_owned();
    let refresh = out["refresh_token"]
        .as_str()
        .expect("rememberMe gives a refresh token")
        .to_owned();
    // The same code does not log in twice.
    let (status, _) = login(&holder.email, common::HOLDER_PASSWORD, Some(code), json!({}));
    assert_eq!(status, 400);

    // A refresh token obtains a new access token; revoking it ends the access tokens that came with it.
    let resp = app
        .client
        .post(app.url("/csc/v2/auth/login"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let refreshed = resp.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = |token: &str| app.csc("/csc/v2/credentials/list", token, &json!({})).0;
    assert_eq!(list(&refreshed), 200);
    let (status, _) = app.csc(
        "/csc/v2/auth/revoke",
        &access,
        &json!({ "token": refresh, "token_type_hint": "refresh_token" }),
    );
    assert_eq!(status, 204);
    assert_eq!(list(&refreshed), 401);
    assert_eq!(
        list(&access),
        401,
        "the access token issued with the refresh token ends with it"
    );
    let resp = app
        .client
        .post(app.url("/csc/v2/auth/login"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400, "a revoked refresh token is refused");

    // An access token revokes itself.
    let code = app.fresh_totp(&holder);
    let (_, out) = login(&holder.email, common::HOLDER_PASSWORD, Some(code), json!({}));
    let token = out["access_token"].as_str().unwrap().to_owned();
    assert!(out.get("refresh_token").is_none());
    assert_eq!(list(&token), 200);
    let (status, _) = app.csc("/csc/v2/auth/revoke", &token, &json!({ "token": token }));
    assert_eq!(status, 204);
    assert_eq!(list(&token), 401);
}

#[test]
fn requests_without_a_valid_bearer_token_get_401() {
    let s = Session::new("p256");
    let url = s.app.url("/csc/v2/credentials/list");
    let status = |req: reqwest::blocking::RequestBuilder| {
        let resp = req.json(&json!({})).send().unwrap();
        let code = resp.status().as_u16();
        let body: Value = resp.json().unwrap();
        assert!(code == 200 || body["error"].is_string(), "{body}");
        (code, body["error"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(status(s.app.client.post(&url)), (401, "invalid_token".into()));
    assert_eq!(
        status(s.app.client.post(&url).header("Authorization", "Token abc")),
        (401, "invalid_token".into())
    );
    assert_eq!(
        status(s.app.client.post(&url).bearer_auth("not-a-token")),
        (401, "invalid_token".into())
    );
    assert_eq!(status(s.app.client.post(&url).bearer_auth(&s.token)).0, 200);
    s.app.advance_clock(3601);
    assert_eq!(
        status(s.app.client.post(&url).bearer_auth(&s.token)),
        (401, "expired_token".into())
    );
}

#[test]
fn credentials_info_gives_the_chain_signer_first_and_describes_the_totp() {
    let s = Session::new("rsa2048");
    let (status, v1) = s.post(
        "/csc/v1/credentials/info",
        json!({"credentialID": s.holder.credential_id, "certificates": "chain", "certInfo": false}),
    );
    assert_eq!(status, 200, "{v1}");
    let chain = v1["cert"]["certificates"].as_array().unwrap();
    assert_eq!(chain.len(), 3);
    let der = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    assert_eq!(der(&chain[1]), s.app.get("/pki/issuing.crt").bytes().unwrap().to_vec());
    assert_eq!(der(&chain[2]), s.app.get("/pki/ca.crt").bytes().unwrap().to_vec());
    let signer = s.app.data_dir.join("signer.der");
    std::fs::write(&signer, der(&chain[0])).unwrap();
    let serial = common::run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            signer.to_str().unwrap(),
            "-noout",
            "-serial",
        ],
    );
    assert_eq!(
        serial.trim().to_lowercase(),
        format!("serial={}", s.holder.certificate_serial)
    );
    for oid in [RSA, SHA256_RSA, "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", PSS] {
        assert!(
            v1["key"]["algo"].as_array().unwrap().contains(&json!(oid)),
            "{oid} missing: {v1}"
        );
    }
    assert_eq!(v1["key"]["len"], 2048);
    assert_eq!(v1["key"]["status"], "enabled");
    assert_eq!(v1["SCAL"], "2");
    assert!(v1["multisign"].as_i64().unwrap() >= 1);
    assert_eq!(v1["authMode"], "explicit");
    assert_eq!(v1["OTP"]["type"], "offline");
    assert_eq!(v1["OTP"]["presence"], "true");
    assert!(v1["cert"].get("subjectDN").is_none());

    let (_, v2) = s.post(
        "/csc/v2/credentials/info",
        json!({"credentialID": s.holder.credential_id, "certInfo": true}),
    );
    assert_eq!(
        v2["cert"]["certificates"].as_array().unwrap().len(),
        1,
        "single is the default"
    );
    assert_eq!(v2["auth"]["mode"], "explicit");
    assert_eq!(v2["auth"]["objects"][0]["generator"], "totp");
    assert_eq!(v2["auth"]["objects"][0]["id"], "otp");
    assert!(
        v2["cert"]["subjectDN"]
            .as_str()
            .unwrap()
            .contains("CN=Ana Maria Popescu"),
        "{v2}"
    );
    assert_eq!(v2["cert"]["serialNumber"], s.holder.certificate_serial);
    assert!(v2["cert"]["validTo"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v2["cert"]["status"], "valid");

    let (status, out) = s.post(
        "/csc/v2/credentials/info",
        json!({"credentialID": s.holder.credential_id, "certificates": "all"}),
    );
    assert_eq!((status, error_of(&out).1), (400, "Invalid parameter certificates"));
    let (status, out) = s.post(
        "/csc/v2/credentials/info",
        json!({"credentialID": "no-such-credential"}),
    );
    assert_eq!((status, error_of(&out).1), (400, "Invalid parameter credentialID"));
    let (status, out) = s.post("/csc/v2/credentials/info", json!({}));
    assert_eq!(status, 400, "{out}");

    // Another holder's credential is invisible.
    let other = s.app.create_holder_with("other@example.com", "p256", 1, false);
    let (status, _) = s.post("/csc/v2/credentials/info", json!({"credentialID": other.credential_id}));
    assert_eq!(status, 400);
    let (_, ec) = s.app.csc(
        "/csc/v2/credentials/info",
        &s.app.login(&other),
        &json!({"credentialID": other.credential_id}),
    );
    assert_eq!(ec["key"]["curve"], "1.2.840.10045.3.1.7");
    assert!(ec["key"]["algo"].as_array().unwrap().contains(&json!(ECDSA_SHA256)));
}

#[test]
fn credentials_list_on_v1_and_v2() {
    let s = Session::new("p256");
    let (status, v1) = s.post("/csc/v1/credentials/list", json!({"maxResults": 10}));
    assert_eq!(status, 200);
    assert_eq!(v1["credentialIDs"], json!([s.holder.credential_id]));
    assert!(v1.get("nextPageToken").is_none());
    let (status, _) = s.post("/csc/v1/credentials/list", json!({"pageToken": "zzz"}));
    assert_eq!(status, 400);
    let (status, out) = s.post("/csc/v1/credentials/list", json!({"userID": "someone"}));
    assert_eq!((status, error_of(&out).1), (400, "userID parameter MUST be null"));
    let (_, v2) = s.post(
        "/csc/v2/credentials/list",
        json!({"credentialInfo": true, "certificates": "chain", "onlyValid": true}),
    );
    assert_eq!(v2["credentialInfos"][0]["credentialID"], s.holder.credential_id);
    assert_eq!(
        v2["credentialInfos"][0]["cert"]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(v2["onlyValid"], true);
    // After expiry, onlyValid hides the credential.
    s.app.advance_clock(2 * 365 * 86_400);
    let token = s.app.login(&s.holder);
    let (_, v2) = s
        .app
        .csc("/csc/v2/credentials/list", &token, &json!({"onlyValid": true}));
    assert_eq!(v2["credentialIDs"], json!([]));
}

#[test]
fn rsa_signatures_in_every_supported_form_verify_with_openssl() {
    let s = Session::new("rsa2048");
    let key = s.public_key();
    // sha256WithRSAEncryption, v2 names.
    let d = sha256("document one");
    let sad = s.authorize(std::slice::from_ref(&d), Some(SHA256));
    let (status, out) = s.sign(&sad, std::slice::from_ref(&d), SHA256_RSA);
    assert_eq!(status, 200, "{out}");
    assert!(openssl_verifies(
        &key,
        &d,
        out["signatures"][0].as_str().unwrap(),
        &["digest:sha256"]
    ));
    assert!(!openssl_verifies(
        &key,
        &sha256("another"),
        out["signatures"][0].as_str().unwrap(),
        &["digest:sha256"]
    ));

    // rsaEncryption with hashAlgo, v1 path and v1 names, SHA-384.
    let d = Sha384::digest(b"document two").to_vec();
    let (status, out) = s.post(
        "/csc/v1/credentials/authorize",
        json!({"credentialID": s.holder.credential_id, "numSignatures": 1, "hash": [b64(&d)], "OTP": s.app.fresh_totp(&s.holder)}),
    );
    assert_eq!(status, 200, "{out}");
    let (status, out) = s.post(
        "/csc/v1/signatures/signHash",
        json!({"credentialID": s.holder.credential_id, "SAD": out["SAD"], "hash": [b64(&d)], "hashAlgo": SHA384, "signAlgo": RSA}),
    );
    assert_eq!(status, 200, "{out}");
    assert!(openssl_verifies(
        &key,
        &d,
        out["signatures"][0].as_str().unwrap(),
        &["digest:sha384"]
    ));

    // RSASSA-PSS with the maximum salt, as pyHanko asks (v1 names on the v2 path, as pyHanko sends them).
    let d = sha256("document three");
    let sad = s.authorize(std::slice::from_ref(&d), None);
    let (status, out) = s.post(
        "/csc/v2/signatures/signHash",
        json!({"credentialID": s.holder.credential_id, "SAD": sad, "hash": [b64(&d)], "hashAlgo": SHA256, "signAlgo": PSS, "signAlgoParams": pss_params_sha256_salt_222()}),
    );
    assert_eq!(status, 200, "{out}");
    let sig = out["signatures"][0].as_str().unwrap();
    assert!(openssl_verifies(
        &key,
        &d,
        sig,
        &[
            "rsa_padding_mode:pss",
            "rsa_pss_saltlen:222",
            "rsa_mgf1_md:sha256",
            "digest:sha256"
        ]
    ));

    // Three signatures debited, three recorded.
    assert_eq!(s.app.books(&s.holder.credential_id), (3, 3));
}

/// DER RSASSA-PSS-params: SHA-256, MGF1 with SHA-256, salt length 222 (the maximum for RSA-2048), base64.
fn pss_params_sha256_salt_222() -> String {
    b64(&hex::decode(concat!(
        "3035",
        "a00f300d06096086480165030402010500",
        "a11c301a06092a864886f70d010108300d06096086480165030402010500",
        "a204020200de"
    ))
    .unwrap())
}

#[test]
fn ecdsa_signatures_are_der_and_verify_with_openssl() {
    for key in ["p256", "p384"] {
        let s = Session::new(key);
        let pem = s.public_key();
        let d = sha256("ec document");
        let sad = s.authorize(std::slice::from_ref(&d), Some(SHA256));
        let (status, out) = s.sign(&sad, std::slice::from_ref(&d), ECDSA_SHA256);
        assert_eq!(status, 200, "{out}");
        let sig = out["signatures"][0].as_str().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(sig).unwrap()[0],
            0x30,
            "DER SEQUENCE"
        );
        assert!(openssl_verifies(&pem, &d, sig, &[]), "{key}");
        // id-ecPublicKey with hashAlgo SHA-384.
        let d = Sha384::digest(b"ec document 2").to_vec();
        let sad = s.authorize(std::slice::from_ref(&d), Some(SHA384));
        let (status, out) = s.post(
            "/csc/v2/signatures/signHash",
            json!({"credentialID": s.holder.credential_id, "SAD": sad, "hashes": [b64(&d)], "hashAlgorithmOID": SHA384, "signAlgo": EC_KEY}),
        );
        assert_eq!(status, 200, "{out}");
        assert!(
            openssl_verifies(&pem, &d, out["signatures"][0].as_str().unwrap(), &[]),
            "{key}"
        );
        // An RSA algorithm for an EC key is refused.
        let sad = s.authorize(std::slice::from_ref(&d), None);
        let (status, _) = s.sign(&sad, std::slice::from_ref(&d), SHA256_RSA);
        assert_eq!(status, 400);
        let (status, out) = s.sign(&sad, std::slice::from_ref(&d), ECDSA_SHA384);
        assert_eq!(status, 200, "the refusal spent nothing: {out}");
    }
}

#[test]
fn a_sad_signs_only_its_own_hashes_once_for_its_own_credential() {
    let s = Session::new("p256");
    let (h1, h2, h3) = (sha256("one"), sha256("two"), sha256("three"));
    let sad = s.authorize(&[h1.clone(), h2.clone()], Some(SHA256));

    let (status, out) = s.sign(&sad, std::slice::from_ref(&h3), ECDSA_SHA256);
    assert_eq!((status, error_of(&out).1), (400, "Hash is not authorized by the SAD"));
    let (status, out) = s.sign(&sad, &[h1.clone(), h1.clone()], ECDSA_SHA256);
    assert_eq!(
        (status, error_of(&out).1),
        (400, "Hash is not authorized by the SAD"),
        "h1 was authorised once"
    );
    let (status, out) = s.sign("bm90IGEgc2Fk", std::slice::from_ref(&h1), ECDSA_SHA256);
    assert_eq!((status, error_of(&out).1), (400, "Invalid parameter SAD"));
    let (status, out) = s.sign(&sad, &[h1.clone(), h2.clone(), h3.clone()], ECDSA_SHA256);
    assert_eq!(status, 400, "more hashes than the SAD allows: {out}");

    let (status, _) = s.sign(&sad, std::slice::from_ref(&h1), ECDSA_SHA256);
    assert_eq!(status, 200);
    let (status, out) = s.sign(&sad, std::slice::from_ref(&h1), ECDSA_SHA256);
    assert_eq!(
        (status, error_of(&out).1),
        (400, "Hash is not authorized by the SAD"),
        "h1 cannot be signed twice"
    );
    let (status, _) = s.sign(&sad, std::slice::from_ref(&h2), ECDSA_SHA256);
    assert_eq!(status, 200);
    let (status, out) = s.sign(&sad, std::slice::from_ref(&h2), ECDSA_SHA256);
    assert_eq!(status, 400, "{out}");
    assert!(error_of(&out).1.contains("already used"), "{out}");

    // Another holder can use neither this SAD nor this credential.
    let other = s.app.create_holder_with("other@example.com", "p256", 1, false);
    let other_token = s.app.login(&other);
    let sad = s.authorize(std::slice::from_ref(&h3), None);
    let body = |cred: &str| json!({"credentialID": cred, "SAD": sad, "hashes": [b64(&h3)], "signAlgo": ECDSA_SHA256});
    let (status, out) = s
        .app
        .csc("/csc/v2/signatures/signHash", &other_token, &body(&other.credential_id));
    assert_eq!(
        (status, error_of(&out).1),
        (400, "Invalid parameter SAD"),
        "a SAD of another credential"
    );
    let (status, out) = s.app.csc(
        "/csc/v2/signatures/signHash",
        &other_token,
        &body(&s.holder.credential_id),
    );
    assert_eq!((status, error_of(&out).1), (400, "Invalid parameter credentialID"));
    assert_eq!(s.app.books(&s.holder.credential_id), (2, 2));
    assert_eq!(s.app.books(&other.credential_id), (0, 0));
}

#[test]
fn an_expired_sad_is_refused() {
    let s = Session::new("p256");
    let h = sha256("late");
    let sad = s.authorize(std::slice::from_ref(&h), None);
    s.app.advance_clock(301);
    let (status, out) = s.sign(&sad, std::slice::from_ref(&h), ECDSA_SHA256);
    assert_eq!((status, error_of(&out).1), (400, "SAD expired"));
    assert_eq!(s.app.books(&s.holder.credential_id), (0, 0));
}

/// CSC v1 `credentials/authorize` of one hash with `code`.
fn authorize_v1(s: &Session, h: &[u8], code: String) -> (u16, Value) {
    s.post(
        "/csc/v1/credentials/authorize",
        json!({"credentialID": s.holder.credential_id, "numSignatures": 1, "hash": [b64(h)], "OTP": code}),
    )
}

#[test]
fn a_totp_code_is_accepted_once_and_never_an_earlier_one() {
    let s = Session::new("p256");
    let h = sha256("x");
    let authorize = |code: String| authorize_v1(&s, &h, code);
    let code = s.app.fresh_totp(&s.holder);
    let previous = common::totp_code(&s.holder.totp_secret, s.app.now() - 30);
    assert_eq!(authorize(code.clone()).0, 200);
    let (status, out) = authorize(code);
    assert_eq!((status, error_of(&out).0), (400, "invalid_otp"), "replayed code: {out}");
    assert!(error_of(&out).1.contains("already used"), "{out}");
    let (status, out) = authorize(previous);
    assert_eq!(status, 400, "a code of an earlier step: {out}");
    // v2 names the error differently.
    let (status, out) = s.post(
        "/csc/v2/credentials/authorize",
        json!({"credentialID": s.holder.credential_id, "numSignatures": 1, "hashes": [b64(&h)], "authData": [{"id": "otp", "value": "123"}]}),
    );
    assert_eq!(
        (status, error_of(&out).0),
        (400, "invalid_authentication_data"),
        "{out}"
    );
    let (status, out) = s.post(
        "/csc/v2/credentials/authorize",
        json!({"credentialID": s.holder.credential_id, "numSignatures": 1, "hashes": [b64(&h)]}),
    );
    assert_eq!(status, 400);
    assert!(error_of(&out).1.contains("code is required"), "{out}");
}

#[test]
fn five_wrong_codes_lock_authorisation_for_fifteen_minutes() {
    let s = Session::new("p256");
    let h = sha256("x");
    let authorize = |code: String| authorize_v1(&s, &h, code);
    let good = s.app.fresh_totp(&s.holder);
    let wrong = if good == "000000" { "111111" } else { "000000" }.to_owned();
    for left in (1..=4).rev() {
        let (status, out) = authorize(wrong.clone());
        assert_eq!((status, error_of(&out).0), (400, "invalid_otp"), "{out}");
        assert!(error_of(&out).1.contains(&format!("{left} attempts left")), "{out}");
    }
    let (status, out) = authorize(wrong.clone());
    assert_eq!(status, 400);
    assert!(
        error_of(&out).1.contains("Credential locked"),
        "the fifth wrong code locks: {out}"
    );
    let (status, out) = authorize(good);
    assert!(
        status == 400 && error_of(&out).1.contains("Credential locked"),
        "even a right code is refused: {out}"
    );
    let locked = run(
        "sqlite3",
        &[
            s.app.data_dir.join("parafa.db").to_str().unwrap(),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'totp.lock'",
        ],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&locked.stdout).trim(),
        "1",
        "the lock is audited"
    );

    s.app.advance_clock(14 * 60);
    let (_, out) = authorize(s.app.fresh_totp(&s.holder));
    assert!(
        error_of(&out).1.contains("Credential locked"),
        "still locked after 14.5 minutes: {out}"
    );
    s.app.advance_clock(60);
    let (status, out) = authorize(s.app.fresh_totp(&s.holder));
    assert_eq!(status, 200, "unlocked after 15 minutes: {out}");
}

#[test]
fn an_operator_clears_a_lock_with_a_reason_audited_and_the_holder_told() {
    let s = Session::new("p256");
    let h = sha256("x");
    let authorize = |code: String| authorize_v1(&s, &h, code);
    let op = s.app.create_operator("oana@parafa.example");
    let cookie = s.app.web_login(&op);
    let unlock = |reason: &str| {
        s.app.call(
            "POST",
            &format!("/api/v1/operator/users/{}/totp-unlock", s.holder.user_id),
            Some(&cookie),
            Some(json!({ "reason": reason })),
        )
    };
    // Nothing to unlock yet.
    let (status, out) = unlock("the holder called");
    assert_eq!((status, out["error"].as_str()), (409, Some("conflict")), "{out}");

    let good = s.app.fresh_totp(&s.holder);
    let wrong = if good == "000000" { "111111" } else { "000000" }.to_owned();
    for _ in 0..5 {
        authorize(wrong.clone());
    }
    let (_, out) = authorize(s.app.fresh_totp(&s.holder));
    assert!(error_of(&out).1.contains("Credential locked"), "{out}");

    // A holder may not do it, an operator needs a reason.
    let (status, _) = s.app.call(
        "POST",
        &format!("/api/v1/operator/users/{}/totp-unlock", s.holder.user_id),
        Some(&s.app.web_login(&s.holder)),
        Some(json!({ "reason": "me" })),
    );
    assert_eq!(status, 403);
    let (status, out) = unlock("  ");
    assert_eq!(status, 400, "{out}");
    let (status, out) = unlock("identity checked by phone, ticket 42");
    assert_eq!((status, out["status"].as_str()), (200, Some("unlocked")), "{out}");

    let (status, out) = authorize(s.app.fresh_totp(&s.holder));
    assert_eq!(status, 200, "signing works again at once: {out}");
    let mail = s.app.messages_to(&s.holder.email, 1).join("\n");
    assert!(mail.contains("Kind: totp_unlocked"), "{mail}");
    assert!(mail.contains("identity checked by phone, ticket 42"), "{mail}");
    let audited = run(
        "sqlite3",
        &[
            s.app.data_dir.join("parafa.db").to_str().unwrap(),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'totp.unlock'",
        ],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&audited.stdout).trim(), "1");
}

#[test]
fn authorize_refuses_bad_parameters_with_csc_errors() {
    let s = Session::new("p256");
    let h = b64(&sha256("x"));
    let cred = s.holder.credential_id.clone();
    let cases = [
        (json!({"credentialID": cred, "hashes": [h]}), "numSignatures"),
        (
            json!({"credentialID": cred, "numSignatures": 0, "hashes": [h]}),
            "numSignatures",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 101, "hashes": [h]}),
            "too high",
        ),
        (json!({"credentialID": cred, "numSignatures": 1}), "hashes"),
        (
            json!({"credentialID": cred, "numSignatures": 1, "hashes": []}),
            "Empty hash array",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 2, "hashes": [h]}),
            "numSignatures",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 1, "hashes": ["***"]}),
            "Invalid Base64",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 1, "hashes": [b64(b"short")]}),
            "Invalid digest value length",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 1, "hashes": [h], "hashAlgorithmOID": "1.3.14.3.2.26"}),
            "hashAlgorithmOID",
        ),
        (
            json!({"credentialID": cred, "numSignatures": 1, "hashes": [h], "hashAlgorithmOID": SHA384}),
            "Invalid digest value length",
        ),
        (
            json!({"credentialID": "unknown", "numSignatures": 1, "hashes": [h], "OTP": "123456"}),
            "credentialID",
        ),
        (json!({"numSignatures": 1, "hashes": [h]}), "credentialID"),
    ];
    for (body, expected) in cases {
        let (status, out) = s.post("/csc/v2/credentials/authorize", body.clone());
        assert_eq!(status, 400, "{body} → {out}");
        assert_eq!(error_of(&out).0, "invalid_request", "{body} → {out}");
        assert!(error_of(&out).1.contains(expected), "{body} → {out}");
    }
    let (status, out) = s.post(
        "/csc/v2/signatures/signHash",
        json!({"credentialID": cred, "SAD": "x", "hashes": [h], "signAlgo": "1.2.840.10045.4.1"}),
    );
    assert_eq!(status, 400, "ecdsa-with-SHA1 is refused: {out}");
    let (status, out) = s.post("/csc/v2/credentials/authorizeCheck", json!({"handle": "abc"}));
    assert_eq!((status, error_of(&out).1), (400, "Invalid parameter handle"));
}

#[test]
fn malformed_or_hostile_bodies_get_a_4xx_json_never_a_500() {
    let s = Session::new("p256");
    let url = s.app.url("/csc/v2/credentials/authorize");
    let send = |body: Vec<u8>, content_type: &str| {
        let resp = s
            .app
            .client
            .post(&url)
            .bearer_auth(&s.token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let json: Value = resp.json().expect("every error is JSON");
        (status, json)
    };
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        br#"{"credentialID": 5}"#.to_vec(),
        br#"{"numSignatures": "one"}"#.to_vec(),
        br#"{"hashes": "notarray"}"#.to_vec(),
        br#"{"numSignatures": 1e400}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
        "[".repeat(100_000).into_bytes(),
    ];
    for body in bodies {
        let (status, out) = send(body.clone(), "application/json");
        assert_eq!(
            status,
            400,
            "{} → {out}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        assert!(
            out["error"].is_string() && out["error_description"].is_string(),
            "{out}"
        );
    }
    let (status, out) = send(vec![b' '; 2 * 1024 * 1024], "application/json");
    assert_eq!(status, 413, "{out}");
    assert_eq!(out["error"], "invalid_request");
    let (status, out) = send(b"{}".to_vec(), "text/plain");
    assert_eq!(
        status, 400,
        "a body without the JSON content type is still read, and found lacking: {out}"
    );
    // The wrong method gets a JSON error too.
    let resp = s.app.client.get(&url).send().unwrap();
    assert!(resp.status().is_client_error());
    assert!(resp.json::<Value>().unwrap()["error"].is_string());
    assert_eq!(s.app.get("/health").status(), 200, "the server is still up");
    assert_eq!(s.app.books(&s.holder.credential_id), (0, 0));
}

#[test]
fn quota_exhaustion_refuses_the_whole_call_and_spends_nothing() {
    let s = Session::new("p256");
    spend(&s, 199);
    let (a, b) = (sha256("a"), sha256("b"));
    let sad = s.authorize(&[a.clone(), b.clone()], None);
    let (status, out) = s.sign(&sad, &[a.clone(), b.clone()], ECDSA_SHA256);
    assert_eq!((status, error_of(&out).1), (400, "quota exhausted: 1 left"), "{out}");
    assert_eq!(s.app.books(&s.holder.credential_id), (199, 199));
    let (status, _) = s.sign(&sad, std::slice::from_ref(&a), ECDSA_SHA256);
    assert_eq!(status, 200, "the refused call did not consume the SAD");
    let (status, out) = s.sign(&sad, std::slice::from_ref(&b), ECDSA_SHA256);
    assert_eq!((status, error_of(&out).1), (400, "quota exhausted: 0 left"));
    assert_eq!(s.app.books(&s.holder.credential_id), (200, 200));
}

/// Signs `n` distinct digests in batches of up to 100.
fn spend(s: &Session, n: usize) {
    let mut done = 0;
    while done < n {
        let batch: Vec<Vec<u8>> = (done..(done + 100).min(n))
            .map(|i| sha256(&format!("spend {i}")))
            .collect();
        let sad = s.authorize(&batch, None);
        let (status, out) = s.sign(&sad, &batch, ECDSA_SHA256);
        assert_eq!(status, 200, "{out}");
        done += batch.len();
    }
}

fn concurrent_sign_hash_never_overspends(app: TestApp) {
    let s = Session::on(app, "p256", 1);
    spend(&s, 150);
    let digests: Vec<Vec<u8>> = (0..64).map(|i| sha256(&format!("concurrent {i}"))).collect();
    let sad = s.authorize(&digests, None);
    let pem = s.public_key();
    let barrier = std::sync::Barrier::new(64);
    let results: Vec<(u16, Value, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = digests
            .iter()
            .map(|d| {
                let (s, sad, barrier) = (&s, &sad, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let (status, out) = s.sign(sad, std::slice::from_ref(d), ECDSA_SHA256);
                    (status, out, d.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed: Vec<_> = results.iter().filter(|(st, _, _)| *st == 200).collect();
    let refused: Vec<_> = results.iter().filter(|(st, _, _)| *st != 200).collect();
    assert_eq!(signed.len(), 50, "exactly the 50 transactions left are spent");
    assert_eq!(refused.len(), 14);
    for (status, out, _) in &refused {
        assert_eq!(*status, 400);
        assert!(error_of(out).1.starts_with("quota exhausted"), "{out}");
    }
    for (_, out, d) in signed {
        assert!(openssl_verifies(&pem, d, out["signatures"][0].as_str().unwrap(), &[]));
    }
    assert_eq!(s.app.books(&s.holder.credential_id), (200, 200));
}

#[test]
fn quota_is_never_overspent_by_concurrent_requests_on_sqlite() {
    concurrent_sign_hash_never_overspends(TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_WORKERS", "4")]));
}

#[test]
fn quota_is_never_overspent_by_concurrent_requests_on_postgres() {
    let Some(pg) = FreshPostgres::create() else { return };
    concurrent_sign_hash_never_overspends(TestApp::spawn_on(Backend::Postgres(pg), &[("PARAFA_WORKERS", "4")]));
}

#[test]
fn an_expired_certificate_refuses_with_the_product_message() {
    let s = Session::new("p256");
    s.app.advance_clock(366 * 86_400 + 60);
    let token = s.app.login(&s.holder);
    let h = sha256("too late");
    let (status, out) = s.app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": s.holder.credential_id, "numSignatures": 1, "hashes": [b64(&h)], "authData": [{"id": "otp", "value": s.app.fresh_totp(&s.holder)}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&out).1,
        "Your certificate has expired. Please contact an administrator."
    );
    let (_, info) = s.app.csc(
        "/csc/v2/credentials/info",
        &token,
        &json!({"credentialID": s.holder.credential_id}),
    );
    assert_eq!(info["cert"]["status"], "expired");
}

#[test]
fn an_hsm_failure_during_signing_spends_nothing() {
    let s = Session::new("p256");
    let h = sha256("doomed");
    let sad = s.authorize(std::slice::from_ref(&h), None);
    // The key disappears from the token between authorisation and signing.
    let id_hex: String = s.holder.credential_id.bytes().map(|b| format!("{b:02x}")).collect();
    let out = run(
        "pkcs11-tool",
        &[
            "--module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--token-label",
            "parafa",
            "--login",
            "--pin",
            &s.app.user_pin(),
            "--delete-object",
            "--type",
            "privkey",
            "--id",
            &id_hex,
        ],
        &[("SOFTHSM2_CONF", &s.app.softhsm_conf())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, out) = s.sign(&sad, std::slice::from_ref(&h), ECDSA_SHA256);
    assert!(status >= 500, "{status} {out}");
    assert!(out["error"].is_string(), "{out}");
    assert_eq!(
        s.app.books(&s.holder.credential_id),
        (0, 0),
        "no transaction spent without a signature"
    );
}

#[test]
fn csc_logins_are_throttled_like_browser_logins() {
    let app = TestApp::spawn();
    let holder = app.create_holder_with("throttle@example.com", "p256", 1, false);
    let login = |pw: &str| {
        app.client
            .post(app.url("/csc/v2/auth/login"))
            .basic_auth(&holder.email, Some(pw))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..5 {
        assert_eq!(login("wrong password"), 400);
    }
    assert_eq!(
        login(common::HOLDER_PASSWORD),
        429,
        "even the right password waits out the window"
    );
    app.advance_clock(15 * 60 + 1);
    assert_eq!(login(common::HOLDER_PASSWORD), 200);
}

#[test]
fn expired_sads_and_tokens_are_cleaned_up_and_signatures_stay() {
    let s = Session::new("p256");
    let h = sha256("kept");
    let sad = s.authorize(std::slice::from_ref(&h), None);
    assert_eq!(s.sign(&sad, std::slice::from_ref(&h), ECDSA_SHA256).0, 200);
    s.authorize(&[sha256("never signed")], None);
    let report = s.app.cli_ok(&["admin", "cleanup"]);
    assert!(
        report.contains("sads: 0 deleted, 2 left"),
        "nothing expired yet: {report}"
    );
    s.app.advance_clock(2 * 86_400);
    let report = s.app.cli_ok(&["admin", "cleanup"]);
    assert!(report.contains("sads: 2 deleted, 0 left"), "{report}");
    assert!(report.contains("sad_hashes: 2 deleted, 0 left"), "{report}");
    assert!(report.contains("access_tokens: 1 deleted, 0 left"), "{report}");
    assert_eq!(
        s.app.books(&s.holder.credential_id),
        (1, 1),
        "the ledger keeps its rows"
    );
}
