//! The life of a certificate through HTTP and the CLI: order, sandbox payment, remote identification with an
//! operator's verdict, issuance with the terms signed by the new key, and the identification rules (return for
//! completion, resubmission, refund, fake data, duplicate documents). Judged by openssl where it matters.

use crate::common;

use common::{run_ok, Holder, TestApp};
use serde_json::{json, Value};

pub fn person() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
           "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
           "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"})
}

pub fn acks() -> Value {
    json!({"terms": true, "order_conditions": true, "withdrawal_waiver": true})
}

/// Places and pays (sandbox) an order; returns its id.
fn paid_order(app: &TestApp, cookie: &str, kind: &str, package: u8) -> String {
    let (s, order) = app.call(
        "POST",
        "/api/v1/orders",
        Some(cookie),
        Some(json!({"kind": kind, "package": package, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let (s, paid) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!((s, paid["state"].as_str()), (200, Some("paid")), "{paid}");
    id
}

fn document(number: &str, cnp: &str) -> Value {
    json!({"type": "id_card", "country": "RO", "series": "CJ", "number": number, "issued_on": "2020-01-10",
           "expires_on": "2035-01-10", "issuer": "SPCLEP Cluj-Napoca", "given_name": "Ana-Maria",
           "surname": "Popescu", "personal_number": cnp})
}

fn consents() -> Value {
    json!({"privacy_notice": true, "biometric": true, "captures": true, "recording": true})
}

/// Starts an identification for the order and returns the sandbox link's path.
fn identity_link(app: &TestApp, cookie: &str, order: &str) -> String {
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/orders/{order}/identity-session"),
        Some(cookie),
        None,
    );
    assert_eq!(s, 201, "{out}");
    path_of(out["url"].as_str().unwrap())
}

/// The JSON route behind an identification link (the link is the provider's page, which posts to this route).
fn path_of(url: &str) -> String {
    let i = url.find("/identity/sandbox/").expect("an identification link");
    format!("/api/v1{}", &url[i..])
}

fn complete(app: &TestApp, link: &str, doc: Value) -> Value {
    let (s, out) = app.call(
        "POST",
        link,
        None,
        Some(json!({"outcome": "complete", "document": doc, "consents": consents()})),
    );
    assert_eq!(s, 200, "{out}");
    out
}

fn order_state(app: &TestApp, cookie: &str, order: &str) -> Value {
    let (s, o) = app.call("GET", &format!("/api/v1/orders/{order}"), Some(cookie), None);
    assert_eq!(s, 200, "{o}");
    o
}

struct World {
    app: TestApp,
    holder: Holder,
    cookie: String,
    op: String,
}

fn world() -> World {
    world_on(TestApp::spawn_dev())
}

fn world_on(app: TestApp) -> World {
    let holder = app.create_account("ana@example.com", true);
    let cookie = app.web_login(&holder);
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);
    World {
        app,
        holder,
        cookie,
        op,
    }
}

/// Order → payment → identification → operator acceptance → issuance; returns (order id, issue answer).
fn issue_new(w: &World, key: &str) -> (String, Value) {
    issue(w, "new", key)
}

/// As [`issue_new`], for an order of `kind` (`new` or `reissue`).
fn issue(w: &World, kind: &str, key: &str) -> (String, Value) {
    let order = paid_order(&w.app, &w.cookie, kind, 1);
    let link = identity_link(&w.app, &w.cookie, &order);
    let out = complete(&w.app, &link, document("123456", "2900101221142"));
    assert_eq!(out["state"], "under_review", "{out}");
    let session = w.app.session_under_review(&w.op, &order);
    let (s, v) = w.app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/accept"),
        Some(&w.op),
        None,
    );
    assert_eq!((s, v["order_state"].as_str()), (200, Some("accepted")), "{v}");
    let code = w.app.fresh_totp(&w.holder);
    let (s, issued) = w.app.call(
        "POST",
        "/api/v1/me/certificates",
        Some(&w.cookie),
        Some(json!({"order_id": order, "terms_accepted": true, "totp": code, "key": key})),
    );
    assert_eq!(s, 201, "{issued}");
    (order, issued)
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_new_certificate_runs_from_order_to_issuance_and_signs() {
    new_certificate_journey(world());
}

#[test]
fn a_new_certificate_runs_from_order_to_issuance_and_signs_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres_dev() {
        new_certificate_journey(world_on(app));
    }
}

fn new_certificate_journey(w: World) {
    let (order, issued) = issue_new(&w, "p256");
    let app = &w.app;
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "fulfilled");
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = app.ca_pems();

    // The certificate: chained to our CA, the name of the accepted document, valid one year (package 1).
    let (s, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    assert_eq!(s, 200, "{certs}");
    let c = &certs["certificates"][0];
    assert_eq!(c["status"], "valid");
    assert_eq!(c["transactions"]["left"], 200);
    assert_eq!(c["credential_id"], issued["credential_id"]);
    assert!(c["banner"].is_null(), "no banner a year before expiry: {c}");
    let pem = write(
        dir.path(),
        "holder.pem",
        c["certificate_pem"].as_str().unwrap().as_bytes(),
    );
    let at = app.now().to_string();
    let verified = run_ok(
        "openssl",
        &[
            "verify",
            "-attime",
            &at,
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            pem.to_str().unwrap(),
        ],
    );
    assert!(verified.contains(": OK"), "{verified}");
    let text = run_ok(
        "openssl",
        &["x509", "-in", pem.to_str().unwrap(), "-noout", "-subject", "-dates"],
    );
    assert!(
        text.contains("GN = Ana-Maria") && text.contains("SN = Popescu"),
        "{text}"
    );
    assert!(text.contains("serialNumber = PNORO-2900101221142"), "{text}");

    // The signed terms: a CMS signature by the new key, enclosing the terms with the holder and the order.
    let r = app
        .client
        .get(app.url(&format!(
            "/api/v1/me/certificates/{}/terms-evidence.p7s",
            issued["credential_id"].as_str().unwrap()
        )))
        .header("Cookie", &w.cookie)
        .header("X-CSRF-Token", common::csrf_for(&w.cookie))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let p7s = write(dir.path(), "terms.p7s", &r.bytes().unwrap());
    let chain = app.chain_pem();
    let back = dir.path().join("terms.txt");
    run_ok(
        "openssl",
        &[
            "cms",
            "-verify",
            "-attime",
            &at,
            "-binary",
            "-inform",
            "DER",
            "-in",
            p7s.to_str().unwrap(),
            "-CAfile",
            chain.to_str().unwrap(),
            "-purpose",
            "any",
            "-out",
            back.to_str().unwrap(),
        ],
    );
    let terms = std::fs::read_to_string(&back).unwrap();
    let number = order_state(app, &w.cookie, &order)["registration_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        terms.contains("Accepted by: Ana-Maria Popescu") && terms.contains(&number),
        "{terms}"
    );
    let signer = dir.path().join("signer.pem");
    run_ok(
        "openssl",
        &[
            "cms",
            "-verify",
            "-attime",
            &at,
            "-binary",
            "-inform",
            "DER",
            "-in",
            p7s.to_str().unwrap(),
            "-CAfile",
            chain.to_str().unwrap(),
            "-purpose",
            "any",
            "-signer",
            signer.to_str().unwrap(),
            "-out",
            "/dev/null",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&signer).unwrap().trim(),
        c["certificate_pem"].as_str().unwrap().trim(),
        "the terms are signed by the new certificate's key"
    );

    // The credential signs through CSC, debited from the package.
    let token = app.login(&w.holder);
    let cred = issued["credential_id"].as_str().unwrap();
    let hash = base64_sha256(b"hello");
    let otp = app.fresh_totp(&w.holder);
    let (s, auth) = app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": cred, "numSignatures": 1, "hashes": [hash], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "OTP": otp}),
    );
    assert_eq!(s, 200, "{auth}");
    let (s, signed) = app.csc(
        "/csc/v2/signatures/signHash",
        &token,
        &json!({"credentialID": cred, "SAD": auth["SAD"], "hashes": [hash], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}),
    );
    assert_eq!(s, 200, "{signed}");
    assert_eq!(app.books(cred), (1, 1));

    // E-mails: order placed (#6), identity accepted (#5), certificate issued (#11), in the holder's language.
    let mails = app.messages_to("ana@example.com", 3).join("\n");
    assert!(mails.contains(&number), "the order number is quoted: {mails}");
    assert!(
        mails.contains(&format!("Comanda {number}: certificatul dvs. calificat a fost emis")),
        "{mails}"
    );

    // A second issuance of the same order is refused; the order is fulfilled once.
    let code = app.fresh_totp(&w.holder);
    let (s, again) = app.call(
        "POST",
        "/api/v1/me/certificates",
        Some(&w.cookie),
        Some(json!({"order_id": order, "terms_accepted": true, "totp": code})),
    );
    assert_eq!(s, 409, "{again}");
}

fn base64_sha256(data: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
}

#[test]
fn issuance_needs_the_terms_a_valid_totp_and_an_accepted_identification() {
    let w = world();
    let app = &w.app;
    let order = paid_order(app, &w.cookie, "new", 2);
    let issue = |body: Value| app.call("POST", "/api/v1/me/certificates", Some(&w.cookie), Some(body));
    let (s, out) = issue(json!({"order_id": order, "terms_accepted": true, "totp": app.fresh_totp(&w.holder)}));
    assert_eq!(s, 409, "not before identification: {out}");
    let link = identity_link(app, &w.cookie, &order);
    // The four consents are all required.
    let (s, out) = app.call(
        "POST",
        &link,
        None,
        Some(
            json!({"outcome": "complete", "document": document("111111", "2900101221142"),
                    "consents": {"privacy_notice": true, "biometric": true, "captures": true}}),
        ),
    );
    assert_eq!(s, 400, "{out}");
    // An expired document is refused.
    let mut expired = document("111111", "2900101221142");
    expired["expires_on"] = json!("2020-01-01");
    let (s, out) = app.call(
        "POST",
        &link,
        None,
        Some(json!({"outcome": "complete", "document": expired, "consents": consents()})),
    );
    assert_eq!(s, 400, "{out}");
    // The phone changed during the session: the holder must confirm or refuse it at issuance.
    let (s, out) = app.call(
        "POST",
        &link,
        None,
        Some(json!({"outcome": "complete", "document": document("111111", "2900101221142"), "consents": consents(), "phone": "+40799999999"})),
    );
    assert_eq!(s, 200, "{out}");
    let (s, out) = app.call("POST", &link, None, Some(json!({"outcome": "complete"})));
    assert_eq!(s, 410, "a link works once: {out}");
    let session = app.session_under_review(&w.op, &order);
    // Holders cannot use the operator API.
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/accept"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 403);
    app.cli_ok(&["admin", "identity", "accept", &session]);
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "accepted");
    let (s, out) = issue(json!({"order_id": order, "totp": app.fresh_totp(&w.holder)}));
    assert_eq!(s, 400, "the terms must be accepted: {out}");
    let (s, out) = issue(json!({"order_id": order, "terms_accepted": true, "totp": "000000", "phone": "confirm"}));
    assert_eq!((s, out["error"].as_str()), (401, Some("invalid_otp")), "{out}");
    let (s, out) = issue(json!({"order_id": order, "terms_accepted": true, "totp": app.fresh_totp(&w.holder)}));
    assert_eq!(s, 409, "the new phone is neither confirmed nor refused: {out}");
    let (s, out) = issue(
        json!({"order_id": order, "terms_accepted": true, "totp": app.fresh_totp(&w.holder), "phone": "confirm"}),
    );
    assert_eq!(s, 201, "{out}");
    let (_, me) = app.call("GET", "/api/v1/me", Some(&w.cookie), None);
    assert_eq!(me["phone"], "+40799999999", "{me}");
    let (_, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    assert_eq!(
        certs["certificates"][0]["transactions"]["total"], 400,
        "package 2: {certs}"
    );
}

#[test]
fn an_interrupted_session_is_returned_with_a_new_link_and_a_rejection_may_be_resubmitted_once() {
    let w = world();
    let app = &w.app;
    let order = paid_order(app, &w.cookie, "new", 1);
    let link = identity_link(app, &w.cookie, &order);
    let (s, out) = app.call("POST", &link, None, Some(json!({"outcome": "interrupt"})));
    assert_eq!(s, 200, "{out}");
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "returned_for_completion");
    let mail = app
        .messages_once_kind("ana@example.com", "identity_returned")
        .join("\n");
    let new_link = mail
        .split_whitespace()
        .find(|t| t.contains("/identity/sandbox/") && !t.ends_with(link.rsplit('/').next().unwrap()))
        .map(path_of)
        .unwrap_or_else(|| panic!("a new link by e-mail: {mail}"));
    let (s, _) = app.call("POST", &link, None, Some(json!({"outcome": "interrupt"})));
    assert_eq!(s, 410, "the old link is spent");
    complete(app, &new_link, document("222222", "2900101221142"));
    let session = app.session_under_review(&w.op, &order);
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/reject"),
        Some(&w.op),
        Some(json!({"reason": "the photo of the document is unreadable"})),
    );
    assert_eq!((s, v["order_state"].as_str()), (200, Some("rejected")), "{v}");
    let o = order_state(app, &w.cookie, &order);
    assert_eq!(o["actions"], json!(["resubmit", "invoice"]), "{o}");
    // Resubmission: a new session in the same order, no new payment.
    let (s, again) = app.call(
        "POST",
        &format!("/api/v1/orders/{order}/resubmit"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 201, "{again}");
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "under_review");
    complete(
        app,
        &path_of(again["url"].as_str().unwrap()),
        document("222222", "2900101221142"),
    );
    let session = app.session_under_review(&w.op, &order);
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/reject"),
        Some(&w.op),
        Some(json!({"reason": "the name does not match the document"})),
    );
    // Rejected again after a resubmission: no more resubmissions, the order is refunded.
    assert_eq!((s, v["order_state"].as_str()), (200, Some("refunded")), "{v}");
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/orders/{order}/resubmit"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 409, "{out}");
    let o = order_state(app, &w.cookie, &order);
    assert_eq!(
        o["refunded_ron"],
        o["price"]["total_ron_bani"]
            .as_i64()
            .map(|b| format!("{}.{:02}", b / 100, b % 100))
            .unwrap()
    );
    let mails = app.messages_to("ana@example.com", 5).join("\n");
    assert!(
        mails.contains("the photo of the document is unreadable") || mails.contains("unreadable"),
        "{mails}"
    );
    assert!(mails.contains("rambursată"), "refund e-mail: {mails}");
}

#[test]
fn fake_data_cancels_the_pending_orders_and_bans_the_account() {
    let w = world();
    let app = &w.app;
    let order = paid_order(app, &w.cookie, "new", 1);
    let link = identity_link(app, &w.cookie, &order);
    complete(app, &link, document("333333", "2900101221142"));
    let session = app.session_under_review(&w.op, &order);
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/reject"),
        Some(&w.op),
        Some(json!({"reason": "forged document", "fake": true})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "rejected");
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/orders/{order}/resubmit"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 403, "no resubmission after fake data: {out}");
    let (s, out) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&w.cookie),
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(
        (s, out["error"].as_str()),
        (403, Some("access_denied")),
        "banned: {out}"
    );
    // Order placed, then the ban (#14) with its end.
    let mails = app.messages_once_kind("ana@example.com", "banned").join("\n");
    assert!(mails.contains("restricționat"), "{mails}");
    // After 90 days the ban ends.
    app.advance_clock(91 * 86_400);
    let cookie = app.web_login(&w.holder);
    let (s, out) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&cookie),
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(s, 201, "{out}");
}

#[test]
fn the_same_identity_document_on_two_accounts_stops_for_an_operator() {
    let w = world();
    let app = &w.app;
    let (first, _) = issue_new(&w, "p256");
    assert_eq!(order_state(app, &w.cookie, &first)["state"], "fulfilled");
    // Ana has a rekey order awaiting payment: it goes on hold with the duplicate, and on again after the verdict.
    let (s, rekey) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&w.cookie),
        Some(json!({"kind": "rekey", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(s, 201, "{rekey}");
    let rekey = rekey["id"].as_str().unwrap().to_owned();
    let other = app.create_account("ioana@example.com", true);
    let cookie = app.web_login(&other);
    let order = paid_order(app, &cookie, "new", 1);
    let link = identity_link(app, &cookie, &order);
    let out = complete(app, &link, document("123456", "2900101221142"));
    assert_eq!(out["flagged"], true, "{out}");
    let o = order_state(app, &cookie, &order);
    assert_eq!(
        (o["on_hold"].as_bool(), o["actions"].clone()),
        (Some(true), json!(["invoice"])),
        "{o}"
    );
    let (s, q) = app.call(
        "GET",
        "/api/v1/operator/identity-sessions?flagged=true",
        Some(&w.op),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(q["sessions"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q["sessions"][0]["flagged"], true);
    let mails = app
        .messages_once_kind("ioana@example.com", "identity_frozen")
        .join("\n");
    assert!(mails.contains("suspendată"), "{mails}");
    assert_eq!(
        order_state(app, &w.cookie, &rekey)["on_hold"],
        true,
        "both holders' pending orders are on hold"
    );
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{rekey}"),
        Some(&w.cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(s, 409, "an order on hold cannot be paid");
    // The operator decides: fake (another's identity).
    let session = q["sessions"][0]["id"].as_str().unwrap();
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/reject"),
        Some(&w.op),
        Some(json!({"reason": "another person's identity document", "fake": true})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, users) = app.call("GET", "/api/v1/operator/users", Some(&w.op), None);
    let banned = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ioana@example.com")
        .unwrap();
    assert!(banned["banned_until"].is_string(), "{banned}");
    assert_eq!(order_state(app, &cookie, &order)["state"], "rejected");
    let ana = order_state(app, &w.cookie, &rekey);
    assert_eq!(
        (ana["on_hold"].as_bool(), ana["state"].as_str()),
        (Some(false), Some("awaiting_payment")),
        "{ana}"
    );
}

#[test]
fn an_operator_returns_an_identification_for_completion_with_a_new_link_and_no_new_payment() {
    let w = world();
    let app = &w.app;
    let order = paid_order(app, &w.cookie, "new", 1);
    let link = identity_link(app, &w.cookie, &order);
    complete(app, &link, document("444444", "2900101221142"));
    let session = app.session_under_review(&w.op, &order);
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/return"),
        Some(&w.op),
        None,
    );
    assert_eq!(s, 400, "a reason is required: {out}");
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/return"),
        Some(&w.op),
        Some(json!({"reason": "the photo of the document is blurred"})),
    );
    assert_eq!(
        (s, v["order_state"].as_str()),
        (200, Some("returned_for_completion")),
        "{v}"
    );
    let o = order_state(app, &w.cookie, &order);
    assert_eq!(
        (o["state"].as_str(), o["actions"].clone()),
        (Some("returned_for_completion"), json!(["identify", "invoice"])),
        "{o}"
    );
    // The e-mail (#7, after the order's #6) says what to fix and carries a new link, which works; the order is not
    // paid again.
    let mail = app
        .messages_once_kind("ana@example.com", "identity_returned")
        .join("\n");
    assert!(mail.contains("the photo of the document is blurred"), "{mail}");
    let new_link = mail
        .split_whitespace()
        .filter(|t| t.contains("/identity/sandbox/"))
        .map(path_of)
        .next_back()
        .unwrap_or_else(|| panic!("a new link by e-mail: {mail}"));
    assert_ne!(new_link, link);
    complete(app, &new_link, document("444444", "2900101221142"));
    assert_eq!(order_state(app, &w.cookie, &order)["state"], "under_review");
    let history: Vec<String> = order_state(app, &w.cookie, &order)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        history.iter().filter(|s| *s == "paid").count(),
        1,
        "paid once: {history:?}"
    );
}

/// Without development mode an identification completes only through the provider's signed report: the link sends
/// the holder to the configured provider, the sandbox is unknown, a forged or unsigned report changes nothing.
#[test]
fn without_development_mode_only_the_providers_signed_report_completes_an_identification() {
    use hmac::{Hmac, Mac};
    let (pay_secret, id_secret) = ("payment-secret-for-tests", "identity-secret-for-tests");
    let app = TestApp::spawn_on(
        common::Backend::Sqlite,
        &[
            ("PARAFA_PAYMENT_CALLBACK_SECRET", pay_secret),
            ("PARAFA_IDENTITY_PROVIDER_URL", "https://idp.example.test/start"),
            ("PARAFA_IDENTITY_CALLBACK_SECRET", id_secret),
        ],
    );
    let w = world_on(app);
    let sign = |secret: &str, body: &str| {
        let t = w.app.now();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let post = |path: &str, header: &str, sig: &str, body: &str| {
        let r = w
            .app
            .client
            .post(w.app.url(path))
            .header(header, sig)
            .body(body.to_owned())
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    let (s, order) = w.app.call(
        "POST",
        "/api/v1/orders",
        Some(&w.cookie),
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let (s, _) = w.app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(&w.cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(s, 404, "no sandbox payment");
    let total = order["price"]["total_ron_bani"].as_i64().unwrap();
    let paid = json!({"event_id": "evt-id-1", "order_id": id, "status": "paid", "amount_ron_bani": total}).to_string();
    let (s, out) = post(
        "/api/v1/payments/sandbox/callback",
        "X-Payment-Signature",
        &sign(pay_secret, &paid),
        &paid,
    );
    assert_eq!(s, 200, "{out}");

    let (s, started) = w.app.call(
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 201, "{started}");
    let url = started["url"].as_str().unwrap();
    let token = url
        .strip_prefix("https://idp.example.test/start?session=")
        .expect("the provider's link")
        .to_owned();
    assert_eq!(started["provider"], "external");
    let (s, _) = w.app.call(
        "POST",
        &format!("/api/v1/identity/sandbox/{token}"),
        None,
        Some(json!({"outcome": "complete", "document": document("123456", "2900101221142"), "consents": consents()})),
    );
    assert_eq!(s, 404, "the holder cannot declare their identity");

    let report = json!({"session": token, "outcome": "complete", "document": document("123456", "2900101221142"),
                        "consents": consents()})
    .to_string();
    let callback = "/api/v1/identity/callback";
    assert_eq!(post(callback, "X-Identity-Signature", "t=1,v1=00", &report).0, 401);
    assert_eq!(
        post(
            callback,
            "X-Identity-Signature",
            &sign("not-the-secret", &report),
            &report
        )
        .0,
        401
    );
    assert_eq!(
        post(callback, "X-Identity-Signature", &sign(pay_secret, &report), &report).0,
        401,
        "another key"
    );
    assert_eq!(
        order_state(&w.app, &w.cookie, &id)["state"],
        "paid",
        "no refused report moved the order"
    );
    let (s, out) = post(callback, "X-Identity-Signature", &sign(id_secret, &report), &report);
    assert_eq!((s, out["state"].as_str()), (200, Some("under_review")), "{out}");
    assert_eq!(order_state(&w.app, &w.cookie, &id)["state"], "under_review");
}

/// Another holder, logged in, reaches none of a holder's orders, payments, identification, certificates or signed
/// terms by their ids: each answer is a refusal that does not tell the order exists, and nothing changes.
#[test]
fn another_holder_reaches_none_of_a_holders_orders_payments_or_certificates() {
    let w = world();
    let app = &w.app;
    // An order placed and not paid yet, and one that went all the way to a certificate.
    let (s, unpaid) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&w.cookie),
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(s, 201, "{unpaid}");
    let unpaid = unpaid["id"].as_str().unwrap().to_owned();
    let (order, issued) = issue_new(&w, "p256");
    let credential = issued["credential_id"].as_str().unwrap().to_owned();
    let bogdan = app.create_account("bogdan@example.com", true);
    let other = app.web_login(&bogdan);
    let code = app.fresh_totp(&bogdan);
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/orders/{order}"), None),
        ("GET", format!("/api/v1/orders/{order}/invoice.pdf"), None),
        ("POST", format!("/api/v1/orders/{unpaid}/cancel"), Some(json!({}))),
        ("GET", format!("/api/v1/sandbox-pay/{unpaid}"), None),
        (
            "POST",
            format!("/api/v1/sandbox-pay/{unpaid}"),
            Some(json!({"outcome": "pay"})),
        ),
        ("POST", format!("/api/v1/orders/{order}/identity-session"), None),
        ("POST", format!("/api/v1/orders/{order}/resubmit"), Some(json!({}))),
        (
            "GET",
            format!("/api/v1/me/certificates/{credential}/terms-evidence.p7s"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/me/credentials/{credential}/revoke"),
            Some(json!({"reason": "keyCompromise", "totp": code})),
        ),
    ];
    for (method, path, body) in attempts {
        let (s, out) = app.call(method, &path, Some(&other), body);
        // 400 "unknown order", 403 or 404: never a state (409) nor a success that would tell the order exists.
        assert!(matches!(s, 400 | 403 | 404), "{method} {path}: {s} {out}");
        assert!(out["error"].is_string(), "{method} {path}: {out}");
    }
    // Nothing moved: the unpaid order still waits for its holder's payment, the certificate is valid, and its
    // holder still reaches both.
    let state = order_state(app, &w.cookie, &unpaid);
    assert_ne!(state["state"], "paid", "{state}");
    assert_ne!(state["state"], "cancelled", "{state}");
    let (s, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    assert_eq!(s, 200, "{certs}");
    assert_eq!(certs["certificates"][0]["status"], "valid", "{certs}");
    let (s, _) = app.call(
        "GET",
        &format!("/api/v1/me/certificates/{credential}/terms-evidence.p7s"),
        Some(&w.cookie),
        None,
    );
    assert_eq!(s, 200);
}

#[test]
fn after_expiry_a_reissue_gives_a_new_key_and_certificate_that_sign() {
    let mut w = world();
    let (_, first) = issue_new(&w, "p256");
    let old_cred = first["credential_id"].as_str().unwrap().to_owned();
    let (_, certs) = w.app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    let old_serial = certs["certificates"][0]["certificate_serial"]
        .as_str()
        .unwrap()
        .to_owned();

    // A year and a day later the certificate has expired (package 1: one year); sessions have ended too.
    w.app.advance_clock(366 * 86_400);
    w.cookie = w.app.web_login(&w.holder);
    let operator = w.app.create_operator("radu@parafa.example");
    w.op = w.app.web_login(&operator);
    let (s, certs) = w.app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    assert_eq!(s, 200, "{certs}");
    assert_eq!(certs["certificates"][0]["status"], "expired", "{certs}");
    assert_eq!(certs["actions"], json!(["new_certificate"]), "{certs}");

    // The reissue: order, sandbox payment, sandbox identification, an operator's acceptance, issuance at the TOTP.
    let (order, issued) = issue(&w, "reissue", "rsa2048");
    let app = &w.app;
    let o = order_state(app, &w.cookie, &order);
    assert_eq!(
        (o["kind"].as_str(), o["state"].as_str()),
        (Some("reissue"), Some("fulfilled")),
        "{o}"
    );
    let new_cred = issued["credential_id"].as_str().unwrap().to_owned();
    assert_ne!(new_cred, old_cred, "a new credential");
    let (_, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    let list = certs["certificates"].as_array().unwrap();
    let new = list
        .iter()
        .find(|c| c["credential_id"] == new_cred.as_str())
        .unwrap_or_else(|| panic!("the new certificate: {certs}"));
    assert_eq!(new["status"], "valid", "{new}");
    let new_serial = new["certificate_serial"].as_str().unwrap().to_owned();
    assert_ne!(new_serial, old_serial, "a different serial");
    let old_key = std::fs::read_to_string(app.holder_public_key(&old_serial)).unwrap();
    let new_key_path = app.holder_public_key(&new_serial);
    let new_key = std::fs::read_to_string(&new_key_path).unwrap();
    assert_ne!(old_key, new_key, "a new key pair");

    // The new certificate signs (CSC signHash with a SAD bound by a TOTP code), as openssl verifies; the old one
    // no longer authorises.
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"signed after the reissue").to_vec();
    let hash = base64::engine::general_purpose::STANDARD.encode(&digest);
    let token = app.login(&w.holder);
    let otp = app.fresh_totp(&w.holder);
    let (s, out) = app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": old_cred, "numSignatures": 1, "hashes": [hash], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "OTP": otp}),
    );
    assert_eq!(s, 400, "the expired credential: {out}");
    let otp = app.fresh_totp(&w.holder);
    let (s, auth) = app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": new_cred, "numSignatures": 1, "hashes": [hash], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "OTP": otp}),
    );
    assert_eq!(s, 200, "{auth}");
    let (s, signed) = app.csc(
        "/csc/v2/signatures/signHash",
        &token,
        &json!({"credentialID": new_cred, "SAD": auth["SAD"], "hashes": [hash], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11"}),
    );
    assert_eq!(s, 200, "{signed}");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signed["signatures"][0].as_str().unwrap())
        .unwrap();
    assert!(
        common::openssl_verifies(&new_key_path, &digest, &signature, &["digest:sha256"]),
        "the signature verifies against the new certificate's key"
    );
    let other = sha2::Sha256::digest(b"something else").to_vec();
    assert!(!common::openssl_verifies(
        &new_key_path,
        &other,
        &signature,
        &["digest:sha256"]
    ));
    assert_eq!(app.books(&new_cred), (1, 1));
}

/// The audit rows of `action` (actor and details, one a line), read from the SQLite file as an auditor would.
fn audited(app: &TestApp, action: &str) -> String {
    let out = common::run(
        "sqlite3",
        &[
            app.data_dir.join("parafa.db").to_str().expect("path"),
            &format!("SELECT actor || ' ' || details FROM audit_events WHERE action = '{action}'"),
        ],
        &[],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_operator_corrects_a_holders_identity_with_a_reason_for_future_certificates() {
    let w = world();
    let (_, issued) = issue_new(&w, "p256");
    let app = &w.app;
    let id = w.holder.user_id.clone();
    let path = format!("/api/v1/operator/users/{id}/identity");
    let (_, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    let serial = certs["certificates"][0]["certificate_serial"]
        .as_str()
        .unwrap()
        .to_owned();

    // The console's form, and what it says about issued certificates.
    let (s, en) = app.page("/operator", "en", Some(&w.op));
    assert_eq!(s, 200);
    assert!(en.contains(&format!("id=\"identity-correct-{id}\"")) && en.contains(&format!("data-api=\"{path}\"")));
    assert!(en.contains("applies to the certificates issued from now on"), "{en}");
    let (_, ro) = app.page("/operator", "ro", Some(&w.op));
    assert!(ro.contains("Corectura se aplică certificatelor emise de acum înainte"));

    // Refused: a holder, no reason, nothing to change, an unknown user.
    let (s, _) = app.call(
        "POST",
        &path,
        Some(&w.cookie),
        Some(json!({"reason": "r", "given_name": "X"})),
    );
    assert_eq!(s, 403);
    let (s, out) = app.call("POST", &path, Some(&w.op), Some(json!({"given_name": "Ana Maria"})));
    assert_eq!(s, 400, "the reason is required: {out}");
    let (s, out) = app.call(
        "POST",
        &path,
        Some(&w.op),
        Some(json!({"reason": "typo", "given_name": "Ana-Maria", "document": {"number": "123456"}})),
    );
    assert_eq!(s, 400, "nothing changes: {out}");
    let (s, _) = app.call(
        "POST",
        "/api/v1/operator/users/nobody/identity",
        Some(&w.op),
        Some(json!({"reason": "r", "given_name": "X"})),
    );
    assert_eq!(s, 404);
    // A document is corrected only once an identity was accepted.
    let fresh = app.create_account("ion@example.com", false);
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/users/{}/identity", fresh.user_id),
        Some(&w.op),
        Some(json!({"reason": "r", "document": {"number": "999999"}})),
    );
    assert_eq!(s, 409, "{out}");

    // The correction: audited with before and after, the holder told; issued certificates keep their data.
    let reason = "the document shows the given name without a hyphen (ticket 17)";
    let mails_before = app.messages_to("ana@example.com", 0).len();
    let (s, out) = app.call(
        "POST",
        &path,
        Some(&w.op),
        Some(json!({"reason": reason, "given_name": "Ana Maria", "document": {"number": "123457"}})),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["changed"], json!(["given_name", "document.number"]), "{out}");
    assert_eq!(out["applies_to"], "future_certificates");
    assert_eq!(out["issued_certificates_unchanged"], json!([serial]));
    let rows = audited(app, "identity.correct");
    assert!(rows.contains(reason) && rows.contains("operator:"), "{rows}");
    let details: Value = serde_json::from_str(rows.split_once(' ').unwrap().1.trim()).unwrap();
    assert_eq!(details["before"]["given_name"], "Ana-Maria", "{details}");
    assert_eq!(details["after"]["given_name"], "Ana Maria", "{details}");
    assert_eq!(details["before"]["document"]["number"], "123456", "{details}");
    assert_eq!(details["after"]["document"]["number"], "123457", "{details}");
    let mail = app
        .messages_to("ana@example.com", mails_before + 1)
        .into_iter()
        .find(|m| m.contains("Kind: identity_corrected"))
        .expect("the holder is told");
    assert!(mail.contains(reason) && mail.contains("given_name"), "{mail}");
    let (_, me) = app.call("GET", "/api/v1/me", Some(&w.cookie), None);
    assert_eq!(me["given_name"], "Ana Maria", "{me}");
    let cert = app.cli_ok(&["admin", "cert", &serial]);
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "issued.pem", cert.as_bytes());
    let text = run_ok("openssl", &["x509", "-in", pem.to_str().unwrap(), "-noout", "-subject"]);
    assert!(
        text.contains("GN = Ana-Maria"),
        "the issued certificate is unchanged: {text}"
    );
    assert_eq!(issued["credential_id"].as_str().map(|c| c.is_empty()), Some(false));
    assert!(app.cli_ok(&["admin", "audit", "verify"]).contains("intact"));
}

#[test]
fn the_console_unlocks_a_holders_authorisation_with_a_reason() {
    let app = TestApp::spawn();
    let holder = app.create_holder("ana@example.com", "p256", 1);
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);
    let cookie = app.web_login(&holder);
    let id = &holder.user_id;
    let api = format!("/api/v1/operator/users/{id}/totp-unlock");
    let (s, en) = app.page("/operator", "en", Some(&op));
    assert_eq!(s, 200);
    assert!(
        en.contains(&format!("id=\"totp-unlock-{id}\"")) && en.contains(&format!("data-api=\"{api}\"")),
        "the unlock button's form"
    );
    assert!(en.contains(&format!(
        "id=\"totp-unlock-reason-{id}\" name=\"reason\" type=\"text\" required"
    )));
    let (_, ro) = app.page("/operator", "ro", Some(&op));
    assert!(ro.contains("Deblochează autorizarea"));

    // Five wrong codes lock the authorisation (here on the revocation form, which asks for one).
    let good = app.fresh_totp(&holder);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.call(
            "POST",
            &format!("/api/v1/me/credentials/{}/revoke", holder.credential_id),
            Some(&cookie),
            Some(json!({"reason": "unspecified", "totp": wrong})),
        );
    }
    // Sent as the console's form sends it: the reason is required, then the lock is cleared.
    let mails_before = app.messages_to(&holder.email, 0).len();
    let (s, out) = app.call("POST", &api, Some(&op), Some(json!({"reason": ""})));
    assert_eq!(s, 400, "{out}");
    let (s, out) = app.call(
        "POST",
        &api,
        Some(&op),
        Some(json!({"reason": "called the holder back"})),
    );
    assert_eq!((s, out["status"].as_str()), (200, Some("unlocked")), "{out}");
    assert!(audited(&app, "totp.unlock").contains("called the holder back"));
    let mail = app
        .messages_to(&holder.email, mails_before + 1)
        .into_iter()
        .find(|m| m.contains("Kind: totp_unlocked"))
        .expect("the holder is told");
    assert!(mail.contains("called the holder back"), "{mail}");
}
