//! Rekey (product rules §5) with a moved clock: the 45- and 15-day reminders (once each, even when scheduler runs
//! race), the 72-hour limit to the hour and the refund of a rekey that became impossible, the successor issued
//! 3 days before expiry and valid from then (judged by openssl), the old key destroyed and the old credential
//! refusing to sign, a rejected request corrected without paying again, the limits of the document copy, and the
//! reissue after expiry.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{run_ok, Backend, Holder, TestApp};
use serde_json::{json, Value};
use sha2::Digest;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// The largest copy of the identity document (product rules §5: ≤ 3 MB).
const PHOTO_MAX: usize = 3 * 1024 * 1024;
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const REMINDER_SUBJECT: &str = "Subject: Certificatul dvs. Parafa expiră în curând";
/// The product's message when an expired certificate is asked to sign.
const EXPIRED: &str = "Your certificate has expired. Please contact an administrator.";

/// A server whose background scheduler stays out of the way (hourly), so every run is one the test asks for.
fn spawn() -> TestApp {
    TestApp::spawn_on(
        Backend::Sqlite,
        &[("PARAFA_LIFECYCLE_TICK_SECS", "3600"), ("PARAFA_DEV", "1")],
    )
}

fn post(app: &TestApp, cookie: &str, path: &str, body: Value) -> (u16, Value) {
    app.call("POST", &format!("/api/v1{path}"), Some(cookie), Some(body))
}

fn get(app: &TestApp, cookie: &str, path: &str) -> Value {
    let (s, v) = app.call("GET", &format!("/api/v1{path}"), Some(cookie), None);
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

fn place_order(app: &TestApp, cookie: &str, kind: &str) -> (u16, Value) {
    let invoice = json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
        "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
        "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"});
    let acks = json!({"terms": true, "order_conditions": true, "withdrawal_waiver": true});
    post(
        app,
        cookie,
        "/orders",
        json!({"kind": kind, "package": 1, "acknowledgements": acks, "invoice": invoice}),
    )
}

/// Places and pays (sandbox) an order of package 1; returns its id.
fn paid_order(app: &TestApp, cookie: &str, kind: &str) -> String {
    let (s, order) = place_order(app, cookie, kind);
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let (s, paid) = post(app, cookie, &format!("/sandbox-pay/{id}"), json!({"outcome": "pay"}));
    assert_eq!((s, paid["state"].as_str()), (200, Some("paid")), "{paid}");
    id
}

fn order_state(app: &TestApp, cookie: &str, id: &str) -> Value {
    get(app, cookie, &format!("/orders/{id}"))["state"].clone()
}

/// The holder's certificate entry with that credential id.
fn certificate(app: &TestApp, cookie: &str, credential_id: &str) -> Value {
    let all = get(app, cookie, "/me/certificates");
    let found = all["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credential_id"] == credential_id);
    found
        .unwrap_or_else(|| panic!("no credential {credential_id} in {all}"))
        .clone()
}

fn rfc3339(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// The calendar date (UTC) of a Unix time, `YYYY-MM-DD`.
fn day(secs: i64) -> String {
    rfc3339(secs)[..10].to_owned()
}

/// [`day`] as the messages write a calendar date in English: `4 December 2027`.
fn long_day(secs: i64) -> String {
    let d = day(secs);
    common::long_date(
        d[..4].parse().unwrap(),
        d[5..7].parse().unwrap(),
        d[8..10].parse().unwrap(),
        "en",
    )
}

/// Moves the server's clock forward to `t`.
fn move_to(app: &TestApp, t: i64) {
    let by = t - app.now();
    assert!(by >= 0, "the clock only moves forward ({by} s asked)");
    app.advance_clock(by);
}

/// Logs in on the web at (about) `t`: the login's fresh TOTP code moves the clock the last 30 s.
fn login_at(app: &TestApp, who: &Holder, t: i64) -> String {
    move_to(app, t - 30);
    app.web_login(who)
}

/// A ready holder (p256 key, package 1), the web cookie and the end of the certificate's validity.
fn holder(app: &TestApp, email: &str) -> (Holder, String, i64) {
    let h = app.create_holder(email, "p256", 1);
    let cookie = app.web_login(&h);
    let valid_to = certificate(app, &cookie, &h.credential_id)["valid_to"]
        .as_str()
        .unwrap()
        .to_owned();
    let end = time::OffsetDateTime::parse(&valid_to, &time::format_description::well_known::Rfc3339).unwrap();
    (h, cookie, end.unix_timestamp())
}

fn document(number: &str, expires_on: &str) -> Vec<(&'static str, String)> {
    let fixed = [
        ("type", "id_card"),
        ("country", "RO"),
        ("series", "CJ"),
        ("issued_on", "2020-01-10"),
    ];
    let mut d: Vec<_> = fixed.iter().map(|(k, v)| (*k, v.to_string())).collect();
    d.extend([
        ("issuer", "SPCLEP Cluj-Napoca".into()),
        ("number", number.into()),
        ("expires_on", expires_on.into()),
    ]);
    d
}

/// A PNG signature padded to `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.resize(len, 0x42);
    p
}

/// `POST /me/rekey/{id}/identity` as multipart/form-data, built by hand (reqwest has no multipart feature here).
fn send_identity(app: &TestApp, cookie: &str, id: &str, fields: &[(&str, String)], photo: &[u8]) -> (u16, Value) {
    let boundary = "parafa-rekey-test-4f1c9b2e";
    let mut body = Vec::with_capacity(photo.len() + 2048);
    for (name, value) in fields {
        let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
        body.extend_from_slice(part.as_bytes());
    }
    let head = "Content-Disposition: form-data; name=\"photo\"; filename=\"document.png\"\r\nContent-Type: image/png";
    body.extend_from_slice(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = app
        .client
        .post(app.url(&format!("/api/v1/me/rekey/{id}/identity")))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", common::csrf_for(cookie))
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .expect("identity form");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// Starts the rekey request of a paid order (privacy notice read).
fn start(app: &TestApp, cookie: &str, order: &str) -> Value {
    let (s, r) = post(
        app,
        cookie,
        "/me/rekey",
        json!({"order_id": order, "privacy_notice": true}),
    );
    assert_eq!((s, r["state"].as_str()), (201, Some("draft")), "{r}");
    r
}

/// Orders and pays a rekey, starts the request and sends a valid document; returns (order id, request id).
fn prepare_rekey(app: &TestApp, cookie: &str) -> (String, String) {
    let order = paid_order(app, cookie, "rekey");
    let id = start(app, cookie, &order)["id"].as_str().unwrap().to_owned();
    let (s, v) = send_identity(app, cookie, &id, &document("123456", "2035-01-10"), &png(4096));
    assert_eq!((s, v["document_received"].as_bool()), (200, Some(true)), "{v}");
    (order, id)
}

/// Signs the terms with a fresh TOTP code (the clock moves 30 s) and sends the request for approval.
fn submit(app: &TestApp, who: &Holder, cookie: &str, id: &str) -> (u16, Value) {
    let code = app.fresh_totp(who);
    post(
        app,
        cookie,
        &format!("/me/rekey/{id}/submit"),
        json!({"terms_accepted": true, "totp": code}),
    )
}

/// `parafa admin lifecycle run` → (reminders, successors, refunds).
fn run_cli(app: &TestApp) -> (i64, i64, i64) {
    let out = app.cli(&["admin", "lifecycle", "run"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    let n = |name: &str| -> i64 {
        let line = text.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")));
        line.unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    (n("reminders"), n("successors"), n("refunds"))
}

/// `POST /api/v1/operator/lifecycle/run`: the run happens in the server process.
fn run_http(app: &TestApp, op: &str) -> (i64, i64, i64) {
    let (s, r) = post(app, op, "/operator/lifecycle/run", json!({}));
    assert_eq!(s, 200, "{r}");
    let n = |name: &str| r[name].as_i64().unwrap();
    (n("reminders"), n("successors"), n("refunds"))
}

/// The first e-mail to the address that contains `needle`, waiting up to 10 s for it.
fn mail_with(app: &TestApp, email: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = app.messages_to(email, 0);
        if let Some(m) = all.iter().find(|m| m.contains(needle)) {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no e-mail with {needle:?} to {email}:\n{}",
            all.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn b64_sha256(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
}

/// CSC `credentials/authorize` of one hash with a fresh TOTP code.
fn authorize(app: &TestApp, who: &Holder, token: &str, credential: &str, hash: &str) -> (u16, Value) {
    let otp = app.fresh_totp(who);
    let body = json!({"credentialID": credential, "numSignatures": 1, "hashes": [hash], "hashAlgorithmOID": SHA256,
                      "authData": [{"id": "otp", "value": otp}]});
    app.csc("/csc/v2/credentials/authorize", token, &body)
}

fn sign_hash(app: &TestApp, token: &str, credential: &str, sad: &Value, hash: &str) -> (u16, Value) {
    let body = json!({"credentialID": credential, "SAD": sad, "hashes": [hash], "hashAlgorithmOID": SHA256,
                      "signAlgo": ECDSA_SHA256});
    app.csc("/csc/v2/signatures/signHash", token, &body)
}

/// Two `parafa admin lifecycle` processes at the same moment; their reports.
fn racing_runs(app: &TestApp) -> Vec<(i64, i64, i64)> {
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..2).map(|_| s.spawn(|| run_cli(app))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

#[test]
fn each_reminder_is_sent_exactly_once_even_when_scheduler_runs_race() {
    let app = spawn();
    let (h, cookie, end) = holder(&app, "ana@example.com");
    let c = certificate(&app, &cookie, &h.credential_id);
    assert!(c["banner"].is_null(), "no banner a year before expiry: {c}");
    let limit = rfc3339(end - 72 * HOUR);

    // 45 days before expiry: two scheduler processes at the same moment, then a third run.
    move_to(&app, end - 45 * DAY + HOUR);
    let raced = racing_runs(&app);
    let third = run_cli(&app);
    let sum = raced[0].0 + raced[1].0 + third.0;
    assert_eq!(sum, 1, "one reminder among the runs: {raced:?} {third:?}");
    let mail = mail_with(&app, &h.email, "Kind: rekey_reminder_45");
    assert!(mail.contains(REMINDER_SUBJECT), "{mail}");
    assert!(
        mail.contains(&common::bucharest_time(end, "ro"))
            && mail.contains(&common::bucharest_time(end - 72 * HOUR, "ro")),
        "the expiry and the limit in Bucharest time: {mail}"
    );
    // #9 links the certificates page, where the rekey is asked for, not the API.
    assert!(mail.contains(&app.url("/certificates")), "{mail}");
    assert!(!mail.contains("/api/v1/"), "{mail}");

    // The banner from the first reminder on, with the expiry and the limit.
    let cookie = app.web_login(&h);
    let c = certificate(&app, &cookie, &h.credential_id);
    let banner = c["banner"]
        .as_str()
        .unwrap_or_else(|| panic!("a banner 45 days before expiry: {c}"));
    let lang = if banner.contains("expires") { "en" } else { "ro" };
    assert!(
        banner.contains(&common::bucharest_time(end, lang))
            && banner.contains(&common::bucharest_time(end - 72 * HOUR, lang)),
        "{banner}"
    );
    assert_eq!(c["rekey"]["allowed"], true, "{c}");
    assert_eq!(c["rekey"]["deadline"], limit.as_str());

    // 15 days before expiry: the second reminder, once.
    move_to(&app, end - 15 * DAY + HOUR);
    let raced = racing_runs(&app);
    assert_eq!(raced[0].0 + raced[1].0, 1, "{raced:?}");
    mail_with(&app, &h.email, "Kind: rekey_reminder_15");

    // Nothing more afterwards, whatever the runs; no duplicate reached the outbox.
    assert_eq!(run_cli(&app).0, 0);
    move_to(&app, end - 5 * DAY);
    assert_eq!(run_cli(&app).0, 0);
    std::thread::sleep(Duration::from_millis(1500));
    let mails = app.messages_to(&h.email, 2);
    let count = |kind: &str| {
        mails
            .iter()
            .filter(|m| m.contains(&format!("\nKind: {kind}\n")))
            .count()
    };
    let counts = (count("rekey_reminder_45"), count("rekey_reminder_15"));
    assert_eq!(counts, (1, 1), "{mails:?}");
}

#[test]
fn a_rekey_request_is_accepted_until_72_hours_before_expiry_and_a_late_one_is_refunded() {
    let app = spawn();
    let (early, _, end_e) = holder(&app, "ana@example.com");
    let (late, _, end_l) = holder(&app, "bogdan@example.com");

    // Both order, pay and send their document in time.
    let cookie_e = login_at(&app, &early, end_e.min(end_l) - 80 * HOUR);
    let (_, req_e) = prepare_rekey(&app, &cookie_e);
    let cookie_l = app.web_login(&late);
    let (order_l, req_l) = prepare_rekey(&app, &cookie_l);

    // 73 hours before expiry: accepted.
    move_to(&app, end_e - 73 * HOUR - 30);
    let (s, v) = submit(&app, &early, &cookie_e, &req_e);
    assert_eq!((s, v["state"].as_str()), (200, Some("submitted")), "{v}");
    assert_eq!(v["message"], "The request was sent for approval.");
    let c = certificate(&app, &cookie_e, &early.credential_id);
    assert_eq!(c["rekey"]["request_state"], "submitted", "{c}");
    assert!(c["banner"].is_null(), "no banner while the request is reviewed: {c}");

    // 71 hours before expiry: refused.
    move_to(&app, end_l - 71 * HOUR - 30);
    let (s, v) = submit(&app, &late, &cookie_l, &req_l);
    assert_eq!(s, 409, "{v}");
    let why = v["error_description"].as_str().unwrap_or("");
    assert!(why.contains("72 hours"), "{v}");

    // The scheduler refunds the late holder's rekey, once, and not the submitted one.
    assert_eq!(run_cli(&app).2, 1);
    let o = get(&app, &cookie_l, &format!("/orders/{order_l}"));
    assert_eq!(o["state"], "refunded", "{o}");
    let total = o["price"]["total_ron_bani"].as_i64().unwrap();
    assert_eq!(o["refunded_ron"], format!("{}.{:02}", total / 100, total % 100), "{o}");
    mail_with(&app, &late.email, "rambursată");
    assert_eq!(get(&app, &cookie_l, &format!("/me/rekey/{req_l}"))["state"], "refunded");
    let (s, v) = place_order(&app, &cookie_l, "rekey");
    assert_eq!(s, 409, "past the limit no rekey is sold: {v}");
    assert_eq!(run_cli(&app).2, 0, "refunded once");
    let orders = get(&app, &cookie_e, "/orders");
    assert_eq!(orders["orders"][0]["state"], "under_review", "{orders}");
}

#[test]
fn the_successor_is_issued_3_days_before_expiry_valid_from_then_and_the_old_key_is_destroyed() {
    let app = spawn();
    let (h, _, end) = holder(&app, "ana@example.com");
    let operator = app.create_operator("oana@parafa.example");

    let cookie = login_at(&app, &h, end - 31 * DAY);
    let (order, id) = prepare_rekey(&app, &cookie);
    let (s, v) = submit(&app, &h, &cookie, &id);
    assert_eq!(s, 200, "{v}");

    // The operator approves 30 days before expiry: issued on T-3 days, not now.
    let op = login_at(&app, &operator, end - 30 * DAY);
    let q = get(&app, &op, "/operator/rekey-requests");
    let queued = &q["requests"][0];
    assert_eq!(queued["id"], id.as_str(), "{q}");
    assert_eq!(queued["photo_type"], "image/png");
    assert_eq!(queued["document"]["number"], "123456");
    let (s, v) = post(&app, &op, &format!("/operator/rekey-requests/{id}/approve"), json!({}));
    assert_eq!((s, v["state"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(v["issue_at"], rfc3339(end - 3 * DAY), "{v}");
    mail_with(&app, &h.email, "reînnoirea a fost aprobată");

    // Four days before expiry: nothing issued (and no 15-day reminder: the rekey was approved).
    let op = login_at(&app, &operator, end - 4 * DAY);
    assert_eq!(run_http(&app, &op), (0, 0, 0));

    // The day has come. A SAD of the old credential taken just before the successor is issued.
    let op = login_at(&app, &operator, end - 3 * DAY + HOUR);
    let token = app.login(&h);
    let hash = b64_sha256(b"signed before the rekey");
    let (s, old_sad) = authorize(&app, &h, &token, &h.credential_id, &hash);
    assert_eq!(s, 200, "the old credential signs until the successor exists: {old_sad}");
    assert_eq!(run_http(&app, &op).1, 1);
    assert_eq!(run_http(&app, &op).1, 0, "issued once");

    let cookie = app.web_login(&h);
    let all = get(&app, &cookie, "/me/certificates");
    let certs = all["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{all}");
    let new = certs
        .iter()
        .find(|c| c["credential_id"] != h.credential_id.as_str())
        .unwrap();
    let new_id = new["credential_id"].as_str().unwrap();
    assert_eq!(new["status"], "valid", "{new}");
    let old = certificate(&app, &cookie, &h.credential_id);
    assert_eq!(old["status"], "superseded", "{old}");
    assert_eq!(order_state(&app, &cookie, &order), "fulfilled");
    // #11 names the order the certificate was issued for.
    let number = get(&app, &cookie, &format!("/orders/{order}"))["registration_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let issued = mail_with(&app, &h.email, "certificatul dvs. calificat a fost emis");
    assert!(issued.contains(&format!("Comanda {number}:")), "{issued}");

    // openssl: valid from T-3 days (not from the order or the approval), for one year; a new key pair.
    let dir = tempfile::tempdir().unwrap();
    let (pem, old_pem) = (dir.path().join("successor.pem"), dir.path().join("old.pem"));
    std::fs::write(&pem, new["certificate_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&old_pem, old["certificate_pem"].as_str().unwrap()).unwrap();
    let x509 = |p: &std::path::Path, what: &[&str]| {
        run_ok(
            "openssl",
            &[&["x509", "-noout", "-in", p.to_str().unwrap()], what].concat(),
        )
    };
    let dates = x509(&pem, &["-startdate", "-enddate"]);
    let openssl_time = |prefix: &str| -> i64 {
        let text = dates
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{dates}"));
        let format = time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        );
        let t = time::PrimitiveDateTime::parse(text.trim(), &format).unwrap_or_else(|e| panic!("{text}: {e}"));
        t.assume_utc().unix_timestamp()
    };
    let (from, to) = (openssl_time("notBefore="), openssl_time("notAfter="));
    let due = end - 3 * DAY;
    assert!((from - due).abs() <= 60, "{dates} vs T-3 days {}", rfc3339(due));
    let year = |days: i64| (to - from - days * DAY).abs() <= 60;
    assert!(year(365) || year(366), "one year: {dates}");
    let (old_key, new_key) = (x509(&old_pem, &["-pubkey"]), x509(&pem, &["-pubkey"]));
    assert_ne!(old_key, new_key, "always a new key pair");

    // The old key is gone from the token; the new one is there.
    let objects: Vec<Value> = serde_json::from_str(&app.cli_ok(&["hsm", "list", "--json"])).unwrap();
    let ids: Vec<&Value> = objects.iter().map(|o| &o["id"]).collect();
    assert!(!ids.contains(&&json!(h.credential_id)), "old key destroyed: {ids:?}");
    assert!(ids.contains(&&json!(new_id)), "new key present: {ids:?}");

    // The new credential signs.
    let hash2 = b64_sha256(b"signed after the rekey");
    let (s, sad) = authorize(&app, &h, &token, new_id, &hash2);
    assert_eq!(s, 200, "{sad}");
    let (s, signed) = sign_hash(&app, &token, new_id, &sad["SAD"], &hash2);
    assert_eq!(s, 200, "{signed}");

    // The old credential no longer signs: neither with the SAD it had, nor with a new authorisation.
    let (s1, out1) = sign_hash(&app, &token, &h.credential_id, &old_sad["SAD"], &hash);
    let (s2, out2) = authorize(&app, &h, &token, &h.credential_id, &hash);
    assert_eq!((s1, s2), (400, 400), "signHash {out1}, authorize {out2}");
}

#[test]
fn a_rejected_request_is_corrected_and_sent_again_without_paying_until_the_limit() {
    let app = spawn();
    let (h, _, end) = holder(&app, "ana@example.com");
    let operator = app.create_operator("oana@parafa.example");
    let cookie = login_at(&app, &h, end - 20 * DAY);
    let (order, id) = prepare_rekey(&app, &cookie);
    assert_eq!(submit(&app, &h, &cookie, &id).0, 200);

    let op = app.web_login(&operator);
    let reason = "the photo of the document is unreadable";
    let (s, v) = post(
        &app,
        &op,
        &format!("/operator/rekey-requests/{id}/reject"),
        json!({"reason": reason}),
    );
    assert_eq!((s, v["state"].as_str()), (200, Some("rejected")), "{v}");
    let mail = mail_with(&app, &h.email, "reînnoirea a fost respinsă");
    assert!(mail.contains(reason), "{mail}");
    let c = certificate(&app, &cookie, &h.credential_id);
    let rekey = &c["rekey"];
    assert_eq!(rekey["request_state"], "rejected", "{c}");
    assert_eq!(rekey["reason"], reason);
    assert!(c["banner"].as_str().is_some_and(|b| b.contains(reason)), "{c}");
    assert_eq!(order_state(&app, &cookie, &order), "rejected");

    // Corrected: a new copy and number, the terms signed again; same order, nothing paid again.
    let (s, v) = send_identity(&app, &cookie, &id, &document("654321", "2035-01-10"), &png(8192));
    assert_eq!(s, 200, "{v}");
    let (s, v) = submit(&app, &h, &cookie, &id);
    assert_eq!((s, v["state"].as_str()), (200, Some("submitted")), "{v}");
    assert_eq!(v["id"], id.as_str());
    assert!(v["reason"].is_null(), "{v}");
    assert_eq!(order_state(&app, &cookie, &order), "under_review");
    let orders = get(&app, &cookie, "/orders");
    assert_eq!(orders["orders"].as_array().map(Vec::len), Some(1), "{orders}");
    let q = get(&app, &op, "/operator/rekey-requests");
    assert_eq!(q["requests"][0]["document"]["number"], "654321", "{q}");

    // Rejected again, corrected too late: refused, and the scheduler refunds the order.
    let again = json!({"reason": "the document number does not match"});
    let (s, _) = post(&app, &op, &format!("/operator/rekey-requests/{id}/reject"), again);
    assert_eq!(s, 200);
    let cookie = login_at(&app, &h, end - 71 * HOUR);
    let (s, v) = submit(&app, &h, &cookie, &id);
    assert_eq!(s, 409, "after the limit: {v}");
    assert_eq!(run_cli(&app).2, 1);
    assert_eq!(order_state(&app, &cookie, &order), "refunded");
}

#[test]
fn the_document_copy_must_be_at_most_3_mb_an_image_or_pdf_and_the_document_valid_at_issuance() {
    let app = spawn();
    let (h, cookie, end) = holder(&app, "ana@example.com");
    let order = paid_order(&app, &cookie, "rekey");
    let r = start(&app, &cookie, &order);
    let id = r["id"].as_str().unwrap();
    assert_eq!(r["successor_issue_at"], rfc3339(end - 3 * DAY), "{r}");
    let valid = document("123456", "2035-01-10");

    let (s, v) = send_identity(&app, &cookie, id, &valid, &png(PHOTO_MAX + 1));
    assert_eq!(s, 413, "{v}");
    let described = |v: &Value, what: &str| v["error_description"].as_str().is_some_and(|d| d.contains(what));
    assert!(v["error"].is_string() && described(&v, "3 MB"), "{v}");
    let (s, v) = send_identity(
        &app,
        &cookie,
        id,
        &valid,
        b"This is a text file, not a scan of a document.\n",
    );
    assert_eq!(s, 400, "{v}");
    assert!(described(&v, "pdf"), "{v}");
    // Valid on the successor's issue date: through the day of T-3 days, not only the day before.
    let (s, v) = send_identity(&app, &cookie, id, &document("123456", &day(end - 4 * DAY)), &png(1024));
    assert_eq!(s, 400, "{v}");
    assert!(described(&v, &long_day(end - 3 * DAY)), "{v}");
    let v = get(&app, &cookie, &format!("/me/rekey/{id}"));
    assert_eq!(v["document_received"], false, "nothing kept from refused forms: {v}");

    // Exactly 3 MB, and a document valid through the issue day, are accepted.
    let (s, v) = send_identity(
        &app,
        &cookie,
        id,
        &document("123456", &day(end - 3 * DAY)),
        &png(PHOTO_MAX),
    );
    assert_eq!((s, v["document_received"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = submit(&app, &h, &cookie, id);
    assert_eq!(s, 200, "{v}");
}

#[test]
fn after_expiry_signing_fails_and_the_holder_orders_a_reissue() {
    let app = spawn();
    let (h, _, end) = holder(&app, "ana@example.com");
    let operator = app.create_operator("oana@parafa.example");

    // A rekey sent 5 days before expiry that nobody decided before the end.
    let cookie = login_at(&app, &h, end - 5 * DAY);
    let (order, id) = prepare_rekey(&app, &cookie);
    assert_eq!(submit(&app, &h, &cookie, &id).0, 200);

    let op = login_at(&app, &operator, end + HOUR);
    let (s, v) = post(&app, &op, &format!("/operator/rekey-requests/{id}/approve"), json!({}));
    assert_eq!(s, 409, "too late to approve: {v}");
    assert_eq!(run_http(&app, &op).2, 1, "the impossible rekey is refunded");

    let token = app.login(&h);
    let (s, out) = authorize(&app, &h, &token, &h.credential_id, &b64_sha256(b"too late"));
    assert_eq!(s, 400, "{out}");
    assert_eq!(out["error_description"], EXPIRED);

    let cookie = app.web_login(&h);
    assert_eq!(order_state(&app, &cookie, &order), "refunded");
    let all = get(&app, &cookie, "/me/certificates");
    assert_eq!(all["certificates"][0]["status"], "expired", "{all}");
    assert_eq!(all["actions"], json!(["new_certificate"]), "{all}");
    let (s, v) = place_order(&app, &cookie, "rekey");
    assert_eq!(s, 409, "no rekey after expiry: {v}");
    let (s, v) = place_order(&app, &cookie, "new");
    assert_eq!(s, 409, "the same account orders a reissue, not a new one: {v}");
    let (s, v) = place_order(&app, &cookie, "reissue");
    assert_eq!((s, v["kind"].as_str()), (201, Some("reissue")), "{v}");
}

/// Another holder reaches none of a holder's rekey requests by its id: not to read it, send a document to it or
/// submit it; the request stays its holder's, as it was.
#[test]
fn another_holder_reaches_none_of_a_holders_rekey_requests() {
    let app = spawn();
    let (ana, _, end) = holder(&app, "ana@example.com");
    let cookie = login_at(&app, &ana, end - 80 * HOUR);
    let (_, id) = prepare_rekey(&app, &cookie);
    let bogdan = app.create_holder("bogdan@example.com", "p256", 1);
    let other = app.web_login(&bogdan);
    let (s, out) = app.call("GET", &format!("/api/v1/me/rekey/{id}"), Some(&other), None);
    assert!(s == 404 || s == 403, "read: {s} {out}");
    let (s, out) = send_identity(&app, &other, &id, &document("654321", "2035-01-10"), &png(4096));
    assert!(s == 404 || s == 403, "document: {s} {out}");
    let (s, out) = submit(&app, &bogdan, &other, &id);
    assert!(s == 404 || s == 403, "submit: {s} {out}");
    let mine = get(&app, &cookie, &format!("/me/rekey/{id}"));
    assert_eq!(mine["state"], "draft", "{mine}");
}
