//! The RFC 3161 timestamp authority, judged by `openssl ts`: queries made by OpenSSL, answered over HTTP, verified
//! against the CA chain; malformed and hostile queries answered with rejections, never with a server error.

use crate::common;

use std::path::{Path, PathBuf};

use common::{run, run_ok, Backend, FreshPostgres, Holder, TestApp};
use der::{Decode, Encode};

/// The protocol tests below run in the anonymous mode (`tsa_ocsp.tsa_anonymous`, off by default) so that they
/// judge the RFC 3161 answers alone; who may ask and what it costs are tested after them.
const ANONYMOUS: &[(&str, &str)] = &[
    ("PARAFA_TSA_ANONYMOUS", "true"),
    ("PARAFA_TSA_ANONYMOUS_PER_MINUTE", "6000"),
];

fn spawn_anonymous() -> TestApp {
    TestApp::spawn_on(Backend::Sqlite, ANONYMOUS)
}

/// The default TSA policy: ETSI EN 319 421 best practices time-stamp policy.
const POLICY: &str = "0.4.0.2023.1.1";

/// The chain and the TSA certificate as PEM files, and a file to timestamp, in a directory of the test's.
struct Pki {
    dir: PathBuf,
    /// Root and issuing CA, for `-CAfile`.
    chain: PathBuf,
    tsa: PathBuf,
    tsa_der: Vec<u8>,
    data: PathBuf,
}

fn pki(app: &TestApp) -> Pki {
    let dir = app.data_dir.join("tsa-test");
    std::fs::create_dir_all(&dir).unwrap();
    let (root, issuing) = app.ca_pems();
    let chain = dir.join("chain.pem");
    let pems = [std::fs::read(root).unwrap(), std::fs::read(issuing).unwrap()].concat();
    std::fs::write(&chain, pems).unwrap();
    let response = app.get("/pki/tsa.crt");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pkix-cert");
    let tsa_der = response.bytes().unwrap().to_vec();
    let der_path = dir.join("tsa.der");
    std::fs::write(&der_path, &tsa_der).unwrap();
    let tsa = dir.join("tsa.pem");
    run_ok(
        "openssl",
        &["x509", "-inform", "DER", "-in", s(&der_path), "-out", s(&tsa)],
    );
    let data = dir.join("document.txt");
    std::fs::write(&data, "a contract worth a timestamp\n").unwrap();
    Pki {
        dir,
        chain,
        tsa,
        tsa_der,
        data,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `openssl ts -query -data <data> <args>` into `<name>.tsq`.
fn openssl_query(pki: &Pki, name: &str, args: &[&str]) -> PathBuf {
    let out = pki.dir.join(format!("{name}.tsq"));
    let mut all = vec!["ts", "-query", "-data", s(&pki.data)];
    all.extend_from_slice(args);
    all.extend(["-out", s(&out)]);
    run_ok("openssl", &all);
    out
}

/// POSTs a body to `/tsa`; returns the HTTP status, the Content-Type and the body.
fn post(app: &TestApp, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let r = app
        .client
        .post(app.url("/tsa"))
        .header("Content-Type", "application/timestamp-query")
        .body(body)
        .send()
        .expect("POST /tsa");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.bytes().unwrap().to_vec())
}

/// Sends a query file and stores the reply as `<name>.tsr`; the reply must be a timestamp-reply with status 200.
fn ask(app: &TestApp, pki: &Pki, query: &Path, name: &str) -> PathBuf {
    let (status, content_type, body) = post(app, std::fs::read(query).unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/timestamp-reply");
    let out = pki.dir.join(format!("{name}.tsr"));
    std::fs::write(&out, body).unwrap();
    out
}

/// `openssl ts -reply -in <reply> -text`.
fn reply_text(reply: &Path) -> String {
    run_ok("openssl", &["ts", "-reply", "-in", s(reply), "-text"])
}

/// Whether `openssl ts -verify` prints "Verification: OK" (with `-untrusted` when given).
fn verifies(pki: &Pki, reply: &Path, untrusted: Option<&Path>) -> (bool, String) {
    let mut args = vec![
        "ts",
        "-verify",
        "-data",
        s(&pki.data),
        "-in",
        s(reply),
        "-CAfile",
        s(&pki.chain),
    ];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", s(u)]);
    }
    let out = run("openssl", &args, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("Verification: OK"), text)
}

/// The value after `label` on its line of an `openssl ts -text` output.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in\n{text}"))
        .trim()
}

/// The TSTInfo of a DER TimeStampResp, and whether its SignedData carries certificates.
fn tst_info(reply_der: &[u8]) -> (x509_tsp::TstInfo, bool) {
    let resp = x509_tsp::TimeStampResp::from_der(reply_der).expect("a DER TimeStampResp");
    let token = resp.time_stamp_token.expect("a token");
    let signed_data: cms::signed_data::SignedData = token.content.decode_as().expect("SignedData");
    let econtent = signed_data.encap_content_info.econtent.expect("attached TSTInfo");
    let tst = x509_tsp::TstInfo::from_der(econtent.value()).expect("TSTInfo");
    (tst, signed_data.certificates.is_some())
}

#[test]
fn openssl_timestamps_verify_against_the_chain_with_policy_nonce_accuracy_and_the_servers_clock() {
    let app = spawn_anonymous();
    let pki = pki(&app);
    // genTime comes from the server's clock, not the host's.
    app.advance_clock(3 * 86_400);

    for (name, args) in [
        ("sha256", vec!["-sha256", "-cert"]),
        ("sha384", vec!["-sha384", "-cert"]),
        ("sha512", vec!["-sha512", "-cert"]),
    ] {
        let query = openssl_query(&pki, name, &args);
        let nonce = field(
            &run_ok("openssl", &["ts", "-query", "-in", s(&query), "-text"]),
            "Nonce:",
        )
        .to_owned();
        let reply = ask(&app, &pki, &query, name);
        let text = reply_text(&reply);
        assert!(text.contains("Status: Granted."), "{text}");
        assert_eq!(field(&text, "Policy OID:"), POLICY, "{text}");
        assert_eq!(field(&text, "Hash Algorithm:"), name, "{text}");
        assert_eq!(field(&text, "Nonce:"), nonce, "the nonce is echoed: {text}");
        assert_eq!(
            field(&text, "Accuracy:"),
            "0x01 seconds, unspecified millis, unspecified micros",
            "{text}"
        );
        assert!(
            field(&text, "TSA:").contains("CN=Parafa Time-Stamping Authority"),
            "{text}"
        );
        let (ok, out) = verifies(&pki, &reply, None);
        assert!(ok, "{name}: {out}");

        let (tst, has_certs) = tst_info(&std::fs::read(&reply).unwrap());
        assert!(has_certs, "certReq asks for the TSA certificate");
        let gen_time = tst.gen_time.to_unix_duration().as_secs() as i64;
        assert!(
            (gen_time - app.now()).abs() <= 5,
            "genTime {gen_time} is not the server's clock {}",
            app.now()
        );
    }

    // No nonce, no certReq: the token carries no certificate, so the verifier is handed the TSA's.
    let query = openssl_query(&pki, "bare", &["-sha256", "-no_nonce"]);
    let reply = ask(&app, &pki, &query, "bare");
    let text = reply_text(&reply);
    assert_eq!(field(&text, "Nonce:"), "unspecified", "{text}");
    let (tst, has_certs) = tst_info(&std::fs::read(&reply).unwrap());
    assert!(!has_certs, "RFC 3161: no certificates unless certReq");
    assert!(tst.nonce.is_none());
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(
        !ok,
        "without the TSA certificate there is nothing to verify with: {out}"
    );
    let (ok, out) = verifies(&pki, &reply, Some(&pki.tsa));
    assert!(ok, "{out}");

    // A timestamp of other data does not verify against this document.
    let other = pki.dir.join("other.txt");
    std::fs::write(&other, "another contract\n").unwrap();
    let other_query = pki.dir.join("other.tsq");
    run_ok(
        "openssl",
        &["ts", "-query", "-data", s(&other), "-cert", "-out", s(&other_query)],
    );
    let reply = ask(&app, &pki, &other_query, "other");
    let (ok, _) = verifies(&pki, &reply, None);
    assert!(!ok, "a timestamp over other data must not verify");
}

#[test]
fn serials_are_unique_and_the_tsa_certificate_is_for_timestamping_only() {
    let mut app = spawn_anonymous();
    let pki = pki(&app);
    let query = openssl_query(&pki, "q", &["-sha256", "-cert"]);
    let mut serials = std::collections::HashSet::new();
    for i in 0..5 {
        let reply = ask(&app, &pki, &query, &format!("r{i}"));
        let serial = field(&reply_text(&reply), "Serial number:").to_owned();
        assert!(serial.len() >= 2 + 2 * 12, "at least 96 bits: {serial}");
        assert!(serials.insert(serial), "a serial number repeated");
    }

    let text = run_ok("openssl", &["x509", "-in", s(&pki.tsa), "-noout", "-text"]);
    assert!(
        text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping\n"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation"),
        "{text}"
    );
    assert!(
        text.contains("Subject: C = RO, O = Parafa, CN = Parafa Time-Stamping Authority"),
        "{text}"
    );
    assert!(
        text.contains("Issuer: C = RO, O = Parafa, CN = Parafa Qualified CA"),
        "{text}"
    );
    assert!(text.contains("NIST CURVE: P-256"), "the default key type: {text}");
    for needle in [
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "URI:http://127.0.0.1:",
        "/pki/crl",
        "OCSP - URI:",
        "CA Issuers - URI:",
    ] {
        assert!(text.contains(needle), "{needle} missing: {text}");
    }
    let verify = run_ok(
        "openssl",
        &[
            "verify",
            "-CAfile",
            s(&pki.chain),
            "-purpose",
            "timestampsign",
            s(&pki.tsa),
        ],
    );
    assert!(verify.contains(": OK"), "{verify}");

    // The OCSP responder knows the TSA certificate, and the CLI prints it by its serial.
    let ocsp = run_ok(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            s(&app.ca_pems().1),
            "-cert",
            s(&pki.tsa),
            "-url",
            &app.url("/pki/ocsp"),
            "-CAfile",
            s(&pki.chain),
        ],
    );
    assert!(ocsp.contains(": good"), "{ocsp}");
    let serial = run_ok("openssl", &["x509", "-in", s(&pki.tsa), "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(
        app.cli_ok(&["admin", "cert", &serial]),
        std::fs::read_to_string(&pki.tsa).unwrap()
    );

    // A second start keeps the key and the certificate, and its timestamps still verify.
    app.start();
    assert_eq!(app.get("/pki/tsa.crt").bytes().unwrap().to_vec(), pki.tsa_der);
    let reply = ask(&app, &pki, &query, "after-restart");
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(ok, "{out}");
}

/// A TimeStampReq built from its parts.
fn crafted(hash_oid: &str, digest_len: usize, extension: bool) -> Vec<u8> {
    let extensions = extension.then(|| {
        vec![x509_cert::ext::Extension {
            extn_id: const_oid::ObjectIdentifier::new_unwrap("1.2.3.4.5"),
            critical: false,
            extn_value: der::asn1::OctetString::new(vec![0x05, 0x00]).unwrap(),
        }]
    });
    x509_tsp::TimeStampReq {
        version: x509_tsp::TspVersion::V1,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier {
                oid: const_oid::ObjectIdentifier::new_unwrap(hash_oid),
                parameters: None,
            },
            hashed_message: der::asn1::OctetString::new(vec![0x5a; digest_len]).unwrap(),
        },
        req_policy: None,
        nonce: Some(der::asn1::Int::new(&[0x01, 0x02, 0x03]).unwrap()),
        cert_req: true,
        extensions,
    }
    .to_der()
    .unwrap()
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the query");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn malformed_and_hostile_queries_get_rejections_and_the_server_stays_up() {
    let app = spawn_anonymous();
    let pki = pki(&app);
    let good = std::fs::read(openssl_query(&pki, "good", &["-sha256", "-cert"])).unwrap();
    const SHA256_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let mut unknown_oid = SHA256_OID;
    unknown_oid[8] = 0x7f;

    let bad_alg = "unrecognized or unsupported algorithm identifier";
    let bad_format = "the data submitted has the wrong format";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unaccepted policy",
            std::fs::read(openssl_query(&pki, "policy", &["-sha256", "-tspolicy", "1.2.3.4.5"])).unwrap(),
            "the requested TSA policy is not supported by the TSA",
        ),
        (
            "unknown hash OID (patched)",
            replace_once(&good, &SHA256_OID, &unknown_oid),
            bad_alg,
        ),
        (
            "SHA-1 from openssl",
            std::fs::read(openssl_query(&pki, "sha1", &["-sha1"])).unwrap(),
            bad_alg,
        ),
        (
            "SHA-256 with a 20-byte digest",
            crafted("2.16.840.1.101.3.4.2.1", 20, false),
            bad_format,
        ),
        (
            "a request extension",
            crafted("2.16.840.1.101.3.4.2.1", 32, true),
            "the requested extension is not supported by the TSA",
        ),
        (
            "version 2",
            replace_once(&good, &[0x02, 0x01, 0x01], &[0x02, 0x01, 0x02]),
            bad_format,
        ),
        ("truncated", good[..good.len() / 2].to_vec(), bad_format),
        ("trailing bytes", [good.as_slice(), &[0, 0]].concat(), bad_format),
        ("empty", Vec::new(), bad_format),
        (
            "garbage",
            b"\x30\x82\xff\xffthis is not a timestamp query".to_vec(),
            bad_format,
        ),
        (
            "deep nesting",
            std::iter::repeat_n([0x30u8, 0x80], 4000).flatten().collect(),
            bad_format,
        ),
        ("just over the limit", vec![0x30; 16 * 1024 + 1], bad_format),
        ("one megabyte", vec![0u8; 1024 * 1024], bad_format),
    ];
    for (name, body, failure) in cases {
        let (status, content_type, reply) = post(&app, body);
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&reply));
        assert_eq!(content_type, "application/timestamp-reply", "{name}");
        let path = pki.dir.join("rejected.tsr");
        std::fs::write(&path, &reply).unwrap();
        let text = reply_text(&path);
        assert!(text.contains("Status: Rejected."), "{name}: {text}");
        assert_eq!(field(&text, "Failure info:"), failure, "{name}: {text}");
        assert!(
            !text.contains("Status description: unspecified"),
            "{name}: say why: {text}"
        );
        assert!(text.contains("TST info:\nNot included."), "{name}: {text}");
    }

    // Far past the limit the server stops reading: the client gets the rejection or a closed connection.
    match app
        .client
        .post(app.url("/tsa"))
        .header("Content-Type", "application/timestamp-query")
        .body(vec![0u8; 8 * 1024 * 1024])
        .send()
    {
        Ok(r) => assert_eq!(r.status(), 200),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }

    // Whatever the Content-Type, the DER decides.
    let r = app
        .client
        .post(app.url("/tsa"))
        .header("Content-Type", "application/json")
        .body("{\"hash\": \"abc\"}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/timestamp-reply");
    let r = app.client.get(app.url("/tsa")).send().unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    assert_eq!(app.get("/health").status(), 200);
    let reply = ask(
        &app,
        &pki,
        &openssl_query(&pki, "after", &["-sha256", "-cert"]),
        "after",
    );
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(ok, "the TSA still works after the hostile queries: {out}");
}

#[test]
fn timestamps_on_postgres_verify_and_survive_a_restart() {
    let Some(pg) = FreshPostgres::create() else {
        return;
    };
    let mut app = TestApp::spawn_on(Backend::Postgres(pg), ANONYMOUS);
    let pki = pki(&app);
    let query = openssl_query(&pki, "pg", &["-sha256", "-cert"]);
    let reply = ask(&app, &pki, &query, "pg");
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(ok, "{out}");
    app.start();
    assert_eq!(app.get("/pki/tsa.crt").bytes().unwrap().to_vec(), pki.tsa_der);
    let reply = ask(&app, &pki, &query, "pg-again");
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(ok, "{out}");
}

#[test]
fn an_expired_tsa_certificate_gives_a_system_failure_not_a_token() {
    let app = spawn_anonymous();
    let pki = pki(&app);
    let query = openssl_query(&pki, "late", &["-sha256", "-cert"]);
    // The TSA certificate is valid for five years by default.
    app.advance_clock(6 * 365 * 86_400);
    let reply = ask(&app, &pki, &query, "late");
    let text = reply_text(&reply);
    assert!(text.contains("Status: Rejected."), "{text}");
    assert_eq!(
        field(&text, "Failure info:"),
        "the request cannot be handled due to system failure",
        "{text}"
    );
    assert_eq!(app.get("/health").status(), 200);
}

/// POSTs a query with an `Authorization` header (none with `None`); returns the whole response.
fn post_as(app: &TestApp, authorization: Option<&str>, body: Vec<u8>) -> reqwest::blocking::Response {
    let mut req = app
        .client
        .post(app.url("/tsa"))
        .header("Content-Type", "application/timestamp-query")
        .body(body);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().expect("POST /tsa")
}

fn basic(email: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"))
    )
}

/// Sends an authenticated query and stores the reply; returns its path and the reply's text.
fn ask_as(app: &TestApp, pki: &Pki, authorization: &str, query: &Path, name: &str) -> (PathBuf, String) {
    let r = post_as(app, Some(authorization), std::fs::read(query).unwrap());
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/timestamp-reply");
    let out = pki.dir.join(format!("{name}.tsr"));
    std::fs::write(&out, r.bytes().unwrap()).unwrap();
    let text = reply_text(&out);
    (out, text)
}

/// Timestamps are priced (product rules §1): by default an anonymous query is refused with a Basic challenge that
/// TSP clients answer, and wrong credentials are refused the same way; nothing is signed for them.
#[test]
fn an_anonymous_or_wrongly_authenticated_timestamp_request_gets_a_basic_challenge() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let holder = app.create_holder_with("tsa.anon@example.com", "p256", 1, false);
    let query = std::fs::read(openssl_query(&pki, "anon", &["-sha256", "-cert"])).unwrap();
    for (what, authorization) in [
        ("anonymous", None),
        ("a wrong password", Some(basic(&holder.email, "not-the-password"))),
        (
            "an unknown e-mail",
            Some(basic("nobody@example.com", common::HOLDER_PASSWORD)),
        ),
        ("a made-up bearer token", Some("Bearer not-a-token".to_owned())),
        ("garbage", Some("Basic !!!".to_owned())),
    ] {
        let r = post_as(&app, authorization.as_deref(), query.clone());
        assert_eq!(r.status(), 401, "{what}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Basic realm="), "{what}: {challenge}");
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(body["error"], "unauthorized", "{what}: {body}");
    }
    assert_eq!(app.books(&holder.credential_id), (0, 0), "nothing debited");
}

/// An authenticated timestamp (HTTP Basic or a CSC bearer token) verifies with `openssl ts -verify` and debits
/// exactly one transaction, recorded in the ledger; a malformed query from the same holder costs nothing.
#[test]
fn an_authenticated_timestamp_verifies_and_debits_one_transaction() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let holder: Holder = app.create_holder_with("tsa.holder@example.com", "p256", 1, false);
    let by_password = basic(&holder.email, common::HOLDER_PASSWORD);
    let query = openssl_query(&pki, "paid", &["-sha256", "-cert"]);
    let (reply, text) = ask_as(&app, &pki, &by_password, &query, "paid");
    assert!(text.contains("Status: Granted."), "{text}");
    let (ok, out) = verifies(&pki, &reply, None);
    assert!(ok, "{out}");
    assert_eq!(
        app.books(&holder.credential_id),
        (1, 1),
        "one transaction, one recorded timestamp"
    );

    let bearer = format!("Bearer {}", app.login(&holder));
    let (reply, text) = ask_as(&app, &pki, &bearer, &query, "paid-bearer");
    assert!(text.contains("Status: Granted."), "{text}");
    assert!(verifies(&pki, &reply, None).0);
    assert_eq!(app.books(&holder.credential_id), (2, 2));

    let r = post_as(&app, Some(&by_password), b"not a timestamp query".to_vec());
    assert_eq!(r.status(), 200);
    let path = pki.dir.join("malformed.tsr");
    std::fs::write(&path, r.bytes().unwrap()).unwrap();
    assert!(reply_text(&path).contains("Status: Rejected."));
    assert_eq!(app.books(&holder.credential_id), (2, 2), "a rejection costs nothing");
}

/// A TSA client sends its e-mail and password with every query: the password's Argon2 check is made once and
/// remembered, not made per timestamp, and a password changed meanwhile is refused at the very next query.
#[test]
fn a_tsa_clients_password_is_checked_once_and_a_changed_one_is_refused_at_once() {
    let app = TestApp::spawn();
    let pki = pki(&app);
    let holder = app.create_holder_with("tsa.remembered@example.com", "p256", 1, false);
    let auth = basic(&holder.email, common::HOLDER_PASSWORD);
    let query = openssl_query(&pki, "remembered", &["-sha256"]);
    let before = app.password_verifications();
    for i in 0..4 {
        let (_, text) = ask_as(&app, &pki, &auth, &query, &format!("remembered-{i}"));
        assert!(text.contains("Status: Granted."), "{text}");
    }
    assert_eq!(
        app.password_verifications() - before,
        1,
        "one Argon2 check for four timestamps"
    );
    assert_eq!(
        app.books(&holder.credential_id),
        (4, 4),
        "each one debited all the same"
    );

    let cookie = app.web_login(&holder);
    let new = "Brumă pe câmpie la ora șapte dimineața";
    let (status, out) = app.call(
        "POST",
        "/api/v1/me/password",
        Some(&cookie),
        Some(serde_json::json!({"current": common::HOLDER_PASSWORD, "new": new})),
    );
    assert_eq!(status, 200, "{out}");
    let r = post_as(&app, Some(&auth), std::fs::read(&query).unwrap());
    assert_eq!(r.status(), 401, "the old password is refused at once");
    let (_, text) = ask_as(&app, &pki, &basic(&holder.email, new), &query, "remembered-new");
    assert!(text.contains("Status: Granted."), "{text}");
    assert_eq!(app.books(&holder.credential_id), (5, 5));
}

/// A server whose one package holds `transactions` transactions; the directory of its configuration file is
/// kept beside it.
pub(crate) fn spawn_with_package(transactions: u32) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parafa.toml");
    std::fs::write(
        &config,
        format!(
            "[[packages]]\nid = 1\nname = \"Small\"\nvalidity_years = 1\ntransactions = {transactions}\n\
             net_price_eur_cents = 100\n"
        ),
    )
    .unwrap();
    let app = TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_CONFIG", config.to_str().unwrap())]);
    (app, dir)
}

/// A package spent to its last transaction refuses the next timestamp whole: a rejection, no token, no debit.
#[test]
fn an_exhausted_package_refuses_the_timestamp_and_debits_nothing() {
    let (app, _config) = spawn_with_package(2);
    let pki = pki(&app);
    let holder = app.create_holder_with("tsa.quota@example.com", "p256", 1, false);
    assert_eq!(holder.transactions, 2);
    let auth = basic(&holder.email, common::HOLDER_PASSWORD);
    let query = openssl_query(&pki, "quota", &["-sha256", "-cert"]);
    for i in 0..2 {
        let (_, text) = ask_as(&app, &pki, &auth, &query, &format!("quota-{i}"));
        assert!(text.contains("Status: Granted."), "{text}");
    }
    let (_, text) = ask_as(&app, &pki, &auth, &query, "quota-refused");
    assert!(text.contains("Status: Rejected."), "{text}");
    assert!(text.contains("quota exhausted: 0 left"), "{text}");
    assert!(text.contains("TST info:\nNot included."), "{text}");
    assert_eq!(
        app.books(&holder.credential_id),
        (2, 2),
        "nothing more debited or recorded"
    );
}

/// Past the instance's rate limit a timestamp request gets a 429 with Retry-After, before any password is checked.
#[test]
fn timestamp_requests_past_the_rate_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_TSA_PER_MINUTE", "2")]);
    let pki = pki(&app);
    let query = std::fs::read(openssl_query(&pki, "flood", &["-sha256"])).unwrap();
    for _ in 0..2 {
        assert_eq!(post_as(&app, None, query.clone()).status(), 401);
    }
    let r = post_as(&app, None, query);
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(app.get("/health").status(), 200);
}

/// Concurrent paid timestamps never overspend: with 3 transactions left, 12 parallel requests get exactly 3 tokens,
/// each debited and recorded, and 9 rejections that cost nothing (ARCHITECTURE.md invariant 3).
#[test]
fn concurrent_timestamps_never_overspend_the_package() {
    let (app, _config) = spawn_with_package(3);
    let pki = pki(&app);
    let holder = app.create_holder_with("tsa.race@example.com", "p256", 1, false);
    let bearer = format!("Bearer {}", app.login(&holder));
    let query = std::fs::read(openssl_query(&pki, "race", &["-sha256", "-cert"])).unwrap();
    let barrier = std::sync::Barrier::new(12);
    let granted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (app, pki, bearer, query, barrier) = (&app, &pki, &bearer, &query, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let r = post_as(app, Some(bearer), query.clone());
                    assert_eq!(r.status(), 200);
                    let path = pki.dir.join(format!("race-{i}.tsr"));
                    std::fs::write(&path, r.bytes().unwrap()).unwrap();
                    let text = reply_text(&path);
                    if text.contains("Status: Granted.") {
                        assert!(verifies(pki, &path, None).0, "a granted token verifies");
                        1
                    } else {
                        assert!(text.contains("quota exhausted"), "{text}");
                        0
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(granted, 3, "exactly the transactions the package holds");
    assert_eq!(app.books(&holder.credential_id), (3, 3));
}
