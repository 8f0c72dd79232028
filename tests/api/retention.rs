//! Privacy in practice (product rules §9) through HTTP and the CLI: the GDPR export holds every section of what
//! Parafa keeps about a holder who ordered, was identified, signed, wrote to us and consented, and nothing of
//! another holder; the retention run deletes or anonymises each class when its period ends (the test clock moves
//! years), except what a legal hold keeps, and the audit chain stays verifiable; the erasure report lists the kept
//! classes with the date each is kept until.

use crate::common;

use common::{Holder, TestApp};
use serde_json::{json, Value};

use crate::lifecycle::{acks, person};

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

/// A holder who went through an order, an identification, issuance, a signature, two contact messages and the
/// marketing consent, with the operator who accepted the identification.
struct Journey {
    app: TestApp,
    holder: Holder,
    operator: Holder,
    cookie: String,
    op: String,
    order: String,
    number: String,
    credential: String,
    /// The contact messages' ids, in order.
    messages: Vec<String>,
}

fn ok(app: &TestApp, method: &str, path: &str, cookie: &str, body: Option<Value>) -> Value {
    let (s, v) = app.call(method, path, Some(cookie), body);
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
    v
}

fn journey(app: TestApp, email: &str) -> Journey {
    let holder = app.create_account(email, true);
    let cookie = app.web_login(&holder);
    let operator = app.create_operator(&format!("op-{email}"));
    let op = app.web_login(&operator);
    let order = ok(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    let (id, number) = (
        order["id"].as_str().unwrap().to_owned(),
        order["registration_number"].as_str().unwrap().to_owned(),
    );
    ok(
        &app,
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        &cookie,
        Some(json!({"outcome": "pay"})),
    );
    let link = ok(
        &app,
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        &cookie,
        None,
    );
    let url = link["url"].as_str().unwrap();
    let path = format!("/api/v1{}", &url[url.find("/identity/sandbox/").unwrap()..]);
    let (s, out) = app.call(
        "POST",
        &path,
        None,
        Some(
            json!({"outcome": "complete", "consents": {"privacy_notice": true, "biometric": true, "captures": true,
                    "recording": true},
                    "document": {"type": "id_card", "country": "RO", "series": "CJ", "number": "123456",
                                 "issued_on": "2020-01-10", "expires_on": "2035-01-10", "issuer": "SPCLEP Cluj-Napoca",
                                 "given_name": "Ana-Maria", "surname": "Popescu", "personal_number": "2900101221142"}}),
        ),
    );
    assert_eq!(s, 200, "{out}");
    let session = app.session_under_review(&op, &id);
    ok(
        &app,
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/accept"),
        &op,
        None,
    );
    let totp = app.fresh_totp(&holder);
    let issued = ok(
        &app,
        "POST",
        "/api/v1/me/certificates",
        &cookie,
        Some(json!({"order_id": id, "terms_accepted": true, "totp": totp, "key": "p256"})),
    );
    let credential = issued["credential_id"].as_str().unwrap().to_owned();

    // One signature through CSC: a transaction of one hash.
    let token = app.login(&holder);
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"contract"))
    };
    let otp = app.fresh_totp(&holder);
    let (s, auth) = app.csc(
        "/csc/v2/credentials/authorize",
        &token,
        &json!({"credentialID": credential, "numSignatures": 1, "hashes": [hash],
                "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "OTP": otp}),
    );
    assert_eq!(s, 200, "{auth}");
    let (s, signed) = app.csc(
        "/csc/v2/signatures/signHash",
        &token,
        &json!({"credentialID": credential, "SAD": auth["SAD"], "hashes": [hash],
                "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}),
    );
    assert_eq!(s, 200, "{signed}");

    let mut messages = Vec::new();
    for text in [
        "Please change the surname on my invoice to Popescu-Ionescu.",
        "I dispute the refusal of my second order: please keep this.",
    ] {
        let m = ok(
            &app,
            "POST",
            "/api/v1/me/contact",
            &cookie,
            Some(json!({"topic": "complaint", "order_id": id, "message": text})),
        );
        messages.push(m["id"].as_str().unwrap().to_owned());
    }
    ok(
        &app,
        "POST",
        "/api/v1/me/consents",
        &cookie,
        Some(json!({"kind": "marketing", "granted": true})),
    );
    Journey {
        app,
        holder,
        operator,
        cookie,
        op,
        order: id,
        number,
        credential,
        messages,
    }
}

fn export(app: &TestApp, cookie: &str) -> (Value, String) {
    let r = app
        .client
        .get(app.url("/api/v1/me/export"))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", common::csrf_for(cookie))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn rows<'a>(export: &'a Value, section: &str) -> &'a Vec<Value> {
    export[section]
        .as_array()
        .unwrap_or_else(|| panic!("no section {section} in the export"))
}

#[test]
fn the_export_holds_every_section_of_the_holder_and_nothing_of_another() {
    export_sections(TestApp::spawn_dev());
}

#[test]
fn the_export_holds_every_section_of_the_holder_and_nothing_of_another_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres_dev() {
        export_sections(app);
    }
}

fn export_sections(app: TestApp) {
    let w = journey(app, "ana@example.com");
    let app = &w.app;
    // Another holder with an order and a message of their own.
    let bob = app.create_account("bob@example.com", false);
    let bob_cookie = app.web_login(&bob);
    let bob_order = ok(
        app,
        "POST",
        "/api/v1/orders",
        &bob_cookie,
        Some(json!({"kind": "new", "package": 2, "acknowledgements": acks(),
                    "invoice": {"type": "person", "confirm_person": true, "name": "Bogdan Vasilescu",
                                "country": "Romania", "county": "Iași", "locality": "Iași", "street": "Strada Lăpușneanu",
                                "number": "7", "building": "-", "entrance": "-", "apartment": "-",
                                "postal_code": "700057"}})),
    );
    let bob_number = bob_order["registration_number"].as_str().unwrap().to_owned();
    ok(
        app,
        "POST",
        "/api/v1/me/contact",
        &bob_cookie,
        Some(json!({"topic": "other", "message": "Bogdan writes about something private."})),
    );

    let (e, text) = export(app, &w.cookie);
    for section in [
        "orders",
        "order_history",
        "payments",
        "invoices",
        "identification",
        "identity",
        "certificates",
        "credentials",
        "signed_terms",
        "signatures",
        "signing_transactions",
        "contact_messages",
        "consents",
        "activity",
    ] {
        assert!(!rows(&e, section).is_empty(), "the export's {section} is empty: {e}");
    }
    assert!(
        e["rekey_requests"].is_array(),
        "rekey requests are a section, even when empty"
    );
    // Orders with their states, invoices with the buyer and the amounts, payments.
    assert_eq!(rows(&e, "orders")[0]["registration_number"], w.number.as_str());
    assert_eq!(rows(&e, "orders")[0]["state"], "fulfilled");
    let history: Vec<&str> = rows(&e, "order_history")
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"paid") && history.contains(&"fulfilled"),
        "{history:?}"
    );
    let invoice = &rows(&e, "invoices")[0];
    assert!(
        invoice["buyer"].as_str().unwrap().contains("Ana Maria Popescu"),
        "{invoice}"
    );
    assert!(invoice["total_ron_bani"].as_i64().unwrap() > 0, "{invoice}");
    // The identification's document data, the certificate, the signed terms, the signing transaction.
    let session = &rows(&e, "identification")[0];
    assert!(session["document"].as_str().unwrap().contains("123456"), "{session}");
    let cert = &rows(&e, "certificates")[0];
    assert_eq!(cert["credential_id"], w.credential.as_str());
    assert!(
        cert["serial"].is_string() && cert["not_after"].is_string() && cert["status"] == "valid",
        "{cert}"
    );
    assert!(rows(&e, "signed_terms")[0]["terms_sha256"].is_string());
    let tx = &rows(&e, "signing_transactions")[0];
    assert_eq!(
        (tx["credential_id"].as_str(), tx["hashes"].as_i64()),
        (Some(w.credential.as_str()), Some(1))
    );
    assert!(tx["at"].is_string(), "times are dates: {tx}");
    // Messages, the consent, the audit rows about the person.
    assert_eq!(rows(&e, "contact_messages").len(), 2);
    assert!(rows(&e, "consents")
        .iter()
        .any(|c| c["kind"] == "marketing" && c["version"].is_string()));
    assert!(rows(&e, "activity").iter().any(|a| a["action"] == "contact.message"));
    let actions: Vec<&str> = rows(&e, "activity")
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"order.place"), "{actions:?}");
    // Nothing of Bob.
    for other in [
        "bob@example.com",
        bob.user_id.as_str(),
        bob_number.as_str(),
        "Bogdan",
        "Vasilescu",
        "something private",
    ] {
        assert!(!text.contains(other), "the export shows another holder's data: {other}");
    }
    // No secrets.
    for forbidden in [
        "argon2",
        w.holder.totp_secret.as_str(),
        "code_hash",
        "token_hash",
        "\"SAD\"",
    ] {
        assert!(!text.contains(forbidden), "the export leaks {forbidden}");
    }
}

/// `parafa admin retention run` on the test's server data.
fn retention_run(app: &TestApp) -> String {
    let out = app.cli_ok(&["admin", "retention", "run"]);
    assert!(out.contains("contact_messages_deleted:"), "{out}");
    out
}

/// The open contact messages' ids, as the operator sees them.
fn open_messages(app: &TestApp, op: &str) -> Vec<String> {
    let list = ok(app, "GET", "/api/v1/operator/contact", op, None);
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_class_goes_when_its_period_ends_and_a_legal_hold_keeps_a_disputed_record() {
    retention_classes(TestApp::spawn_dev());
}

#[test]
fn each_class_goes_when_its_period_ends_and_a_legal_hold_keeps_a_disputed_record_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres_dev() {
        retention_classes(app);
    }
}

fn retention_classes(app: TestApp) {
    let w = journey(app, "ana@example.com");
    let app = &w.app;
    let (kept_message, other_message) = (&w.messages[1], &w.messages[0]);

    // A hold on the disputed message: a reason is required, the record must exist; audited.
    let (s, e) = app.call(
        "POST",
        "/api/v1/operator/legal-holds",
        Some(&w.op),
        Some(json!({"kind": "contact_message", "record_id": kept_message})),
    );
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")), "{e}");
    let (s, e) = app.call(
        "POST",
        "/api/v1/operator/legal-holds",
        Some(&w.op),
        Some(json!({"kind": "contact_message", "record_id": "nope", "reason": "dispute"})),
    );
    assert_eq!(s, 404, "{e}");
    let (s, e) = app.call(
        "POST",
        "/api/v1/operator/legal-holds",
        Some(&w.cookie),
        Some(json!({"kind": "contact_message", "record_id": kept_message, "reason": "dispute"})),
    );
    assert_eq!(s, 403, "a holder places no hold: {e}");
    let hold = ok(
        app,
        "POST",
        "/api/v1/operator/legal-holds",
        &w.op,
        Some(json!({"kind": "contact_message", "record_id": kept_message,
                    "reason": "Complaint 2026/17 before the consumer authority"})),
    );
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    assert_eq!(hold["active"], true);
    // The console lists the hold with its release form, beside the form that places one.
    let (s, console) = app.page("/operator", "en", Some(&w.op));
    assert_eq!(s, 200);
    assert!(
        console.contains("id=\"hold-place\"") && console.contains("data-api=\"/api/v1/operator/legal-holds\""),
        "the console places holds"
    );
    assert!(
        console.contains(&format!("id=\"hold-{hold_id}\""))
            && console.contains(&format!("data-api=\"/api/v1/operator/legal-holds/{hold_id}/release\""))
            && console.contains("before the consumer authority"),
        "the console lists the hold with its release form"
    );

    // Consents last until withdrawn: the withdrawal ends the grant, and is kept as proof.
    ok(
        app,
        "POST",
        "/api/v1/me/consents",
        &w.cookie,
        Some(json!({"kind": "marketing", "granted": false})),
    );
    retention_run(app);
    let (e, _) = export(app, &w.cookie);
    let marketing: Vec<&Value> = rows(&e, "consents")
        .iter()
        .filter(|c| c["kind"] == "marketing")
        .collect();
    assert_eq!(marketing.len(), 1, "{marketing:?}");
    assert_eq!(marketing[0]["granted"], 0);
    assert_eq!(open_messages(app, &w.op).len(), 2, "nothing else is due yet");

    // Three years on: the complaints' period ended; the held one stays. Logs past two years are gone, and the
    // audit chain that is left is intact.
    app.advance_clock(3 * YEAR + 2 * DAY);
    let op = app.web_login(&w.operator);
    retention_run(app);
    assert_eq!(open_messages(app, &op), vec![kept_message.clone()]);
    assert!(!open_messages(app, &op).contains(other_message));
    let verify = app.cli_ok(&["admin", "audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    let cookie = app.web_login(&w.holder);
    let (e, _) = export(app, &cookie);
    let actions: Vec<&str> = rows(&e, "activity")
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        !actions.contains(&"contact.message"),
        "audit rows older than 2 years are deleted: {actions:?}"
    );
    assert!(
        rows(&e, "invoices")[0]["buyer"].as_str().unwrap().contains("Popescu"),
        "financial records are kept whole for their period"
    );

    // Ten years on: the financial records' buyer data and payments go; the order's number and amounts stay;
    // the identification evidence stays until 10 years after the certificate's expiry.
    app.advance_clock(7 * YEAR + 2 * DAY);
    let cookie = app.web_login(&w.holder);
    retention_run(app);
    let (e, text) = export(app, &cookie);
    let invoice = &rows(&e, "invoices")[0];
    assert!(!invoice["buyer"].as_str().unwrap().contains("Popescu"), "{invoice}");
    assert!(invoice["buyer"].as_str().unwrap().contains("erased"), "{invoice}");
    assert!(invoice["total_ron_bani"].as_i64().unwrap() > 0);
    assert!(rows(&e, "payments").is_empty(), "{text}");
    assert_eq!(rows(&e, "orders")[0]["registration_number"], w.number.as_str());
    assert!(rows(&e, "identification")[0]["document"].is_string());
    // The order page still opens.
    let (s, order) = app.call("GET", &format!("/api/v1/orders/{}", w.order), Some(&cookie), None);
    assert_eq!(s, 200, "{order}");

    // The hold is released with a reason (audited): the next run deletes the message.
    let op = app.web_login(&w.operator);
    let (s, e) = app.call(
        "POST",
        &format!("/api/v1/operator/legal-holds/{hold_id}/release"),
        Some(&op),
        Some(json!({})),
    );
    assert_eq!(s, 400, "{e}");
    let released = ok(
        app,
        "POST",
        &format!("/api/v1/operator/legal-holds/{hold_id}/release"),
        &op,
        Some(json!({"reason": "The authority closed the case"})),
    );
    assert_eq!(released["active"], false);
    assert!(released["released_at"].is_string());
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/operator/legal-holds/{hold_id}/release"),
        Some(&op),
        Some(json!({"reason": "again"})),
    );
    assert_eq!(s, 409);
    let holds = ok(app, "GET", "/api/v1/operator/legal-holds", &op, None);
    assert_eq!(holds["holds"][0]["release_reason"], "The authority closed the case");
    retention_run(app);
    assert!(open_messages(app, &op).is_empty());

    // Before then the certificate is public: the registry serves it, the CSC API lists it.
    let (e, _) = export(app, &cookie);
    let serial = rows(&e, "certificates")[0]["serial"].as_str().unwrap().to_owned();
    let registry = |app: &TestApp| {
        app.client
            .get(app.url(&format!("/registry/{serial}.cer")))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(registry(app), 200);
    let listed = |app: &TestApp| {
        let token = app.login(&w.holder);
        let (s, list) = app.csc("/csc/v2/credentials/list", &token, &json!({}));
        assert_eq!(s, 200, "{list}");
        list["credentialIDs"].as_array().unwrap().len()
    };
    assert_eq!(listed(app), 1);

    // Ten years after the certificate's expiry (issued for one year): the evidence goes, and the certificate
    // itself (its DER names the holder): the registry and the CSC API no longer know it, the CLI says why.
    app.advance_clock(YEAR + 2 * DAY);
    let cookie = app.web_login(&w.holder);
    retention_run(app);
    let (e, _) = export(app, &cookie);
    assert!(rows(&e, "identification")[0]["document"].is_null(), "{e}");
    assert!(rows(&e, "identity").is_empty());
    assert!(rows(&e, "signed_terms").is_empty());
    assert_eq!(rows(&e, "certificates")[0]["subject"], "erased");
    assert_eq!(registry(app), 404);
    assert_eq!(listed(app), 0);
    let token = app.login(&w.holder);
    let (s, info) = app.csc(
        "/csc/v2/credentials/info",
        &token,
        &json!({"credentialID": w.credential, "certificates": "single"}),
    );
    assert_eq!((s, info["error"].as_str()), (400, Some("invalid_request")), "{info}");
    let out = app.cli(&["admin", "cert", &serial]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("erased by the retention rules"),
        "{err}"
    );
    let verify = app.cli_ok(&["admin", "audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
}

#[test]
fn the_erasure_report_lists_each_kept_class_with_its_last_day() {
    let w = journey(TestApp::spawn_dev(), "ana@example.com");
    let app = &w.app;
    let (s, certs) = app.call("GET", "/api/v1/me/certificates", Some(&w.cookie), None);
    assert_eq!(s, 200, "{certs}");
    let totp = app.fresh_totp(&w.holder);
    let (s, report) = app.call(
        "POST",
        "/api/v1/me/erasure",
        Some(&w.cookie),
        Some(json!({"confirm": true, "password": common::HOLDER_PASSWORD, "totp": totp})),
    );
    assert_eq!(s, 200, "{report}");
    let kept = report["kept"].as_array().unwrap();
    let until = |class: &str| -> String {
        let k = kept
            .iter()
            .find(|k| k["class"] == class)
            .unwrap_or_else(|| panic!("no kept class {class}: {report}"));
        assert!(k["what"].is_string() && k["why"].is_string(), "{k}");
        k["until"].as_str().unwrap().to_owned()
    };
    let year = |date: &str| -> i64 {
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "a date, not a timestamp: {date}"
        );
        date[..4].parse().unwrap()
    };
    let now_year = 1970 + app.now() / (365 * DAY + DAY / 4);
    // The certificate runs one year; its evidence is kept 10 years after.
    assert!(
        (now_year + 10..=now_year + 12).contains(&year(&until("evidence"))),
        "{report}"
    );
    assert!(
        (now_year + 10..=now_year + 11).contains(&year(&until("financial"))),
        "{report}"
    );
    assert!(
        (now_year + 3..=now_year + 4).contains(&year(&until("contact_messages"))),
        "{report}"
    );
    assert!(
        (now_year + 2..=now_year + 3).contains(&year(&until("audit"))),
        "{report}"
    );
    assert!(year(&until("evidence")) > year(&until("financial")) || until("evidence") > until("financial"));
}
