//! Packages and orders through HTTP: prices with VAT in EUR and RON at the central bank's rate (the guide's example
//! reproduced from a stored BNR feed), the mandatory acknowledgements, invoice validation, promotional codes,
//! registration numbers, and cancelling only while unpaid.

use crate::common;

use common::{Backend, TestApp};
use serde_json::{json, Value};

const FEED: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DataSet xmlns="http://www.bnr.ro/xsd">
  <Header><Publisher>National Bank of Romania</Publisher><PublishingDate>2025-03-14</PublishingDate></Header>
  <Body><Subject>Reference rates</Subject><OrigCurrency>RON</OrigCurrency>
    <Cube date="2025-03-14"><Rate currency="CHF">5.2000</Rate><Rate currency="EUR">5.0377</Rate></Cube>
  </Body>
</DataSet>"#;

fn app_with(extra: &[(&str, &str)], toml: &str) -> TestApp {
    app_on(Backend::Sqlite, extra, toml)
}

fn app_on(backend: Backend, extra: &[(&str, &str)], toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap().keep();
    let feed = dir.join("nbrfxrates.xml");
    std::fs::write(&feed, FEED).unwrap();
    let config = dir.join("parafa.toml");
    std::fs::write(&config, toml).unwrap();
    let mut env: Vec<(&str, &str)> = vec![
        ("PARAFA_FX_FEED_FILE", feed.to_str().unwrap()),
        ("PARAFA_CONFIG", config.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_on(backend, &refs)
}

fn session(app: &TestApp, email: &str) -> String {
    let holder = app.create_account(email, false);
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": holder.email, "password": common::HOLDER_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn call(app: &TestApp, method: &str, path: &str, cookie: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = match method {
        "POST" => app.client.post(app.url(path)),
        _ => app.client.get(app.url(path)),
    }
    .header("Cookie", cookie)
    .header("X-CSRF-Token", common::csrf_for(cookie));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn person() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
           "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
           "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"})
}

fn acks() -> Value {
    json!({"terms": true, "order_conditions": true, "withdrawal_waiver": true})
}

#[test]
fn the_guides_example_is_reproduced_from_a_bnr_feed_at_19_percent() {
    let app = app_with(&[("PARAFA_VAT_BASIS_POINTS", "1900")], "");
    let offer: Value = app.get("/api/v1/packages").json().unwrap();
    assert_eq!(offer["rate"], json!({"ron_per_eur": "5.0377", "date": "2025-03-14"}));
    let p1 = &offer["packages"][0];
    assert_eq!(
        (p1["validity_years"].as_i64(), p1["transactions"].as_i64()),
        (Some(1), Some(200))
    );
    assert_eq!(p1["price"]["net_eur_cents"], 3900);
    assert_eq!(p1["price"]["gross_eur_cents"], 4641);
    assert_eq!(p1["price"]["total_ron_bani"], 23380);
    assert_eq!(p1["price"]["label"], "Pay 233.80 RON (46.41 EUR)");
    assert_eq!(offer["packages"].as_array().unwrap().len(), 3);
}

#[test]
fn the_default_vat_is_21_percent_and_the_fallback_rate_applies_without_a_feed() {
    let app = TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_FALLBACK_EUR_RON", "5.0900")]);
    let offer: Value = app.get("/api/v1/packages").json().unwrap();
    assert_eq!(offer["vat_basis_points"], 2100);
    assert_eq!(offer["rate"]["date"], "fallback");
    // 39 EUR + 21 % = 47.19 EUR × 5.09 = 240.20 RON.
    assert_eq!(offer["packages"][0]["price"]["label"], "Pay 240.20 RON (47.19 EUR)");
}

#[test]
fn an_order_needs_the_three_acknowledgements_and_a_complete_invoice() {
    let app = app_with(&[], "");
    let cookie = session(&app, "buyer@example.com");
    let order = |body: Value| call(&app, "POST", "/api/v1/orders", &cookie, Some(body));
    let (status, out) = order(json!({"kind": "new", "package": 1, "invoice": person()}));
    assert_eq!(status, 400, "{out}");
    assert!(out["error_description"].as_str().unwrap().contains("terms"), "{out}");
    let mut incomplete = person();
    incomplete.as_object_mut().unwrap().remove("county");
    let (status, out) = order(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": incomplete}));
    assert_eq!(
        (status, out["error_description"].as_str()),
        (400, Some("county is required")),
        "{out}"
    );
    let mut unconfirmed = person();
    unconfirmed["confirm_person"] = json!(false);
    assert_eq!(
        order(json!({"package": 1, "acknowledgements": acks(), "invoice": unconfirmed})).0,
        400
    );
    let mut company = person();
    company["type"] = json!("company");
    company["name"] = json!("Exemplu SRL");
    company["tax_id"] = json!("RO14399841");
    let (status, out) = order(json!({"package": 2, "acknowledgements": acks(), "invoice": company.clone()}));
    assert_eq!(
        (status, out["error_description"].as_str()),
        (400, Some("The tax id (CUI/CIF) is not valid"))
    );
    company["tax_id"] = json!("RO14399840");
    let (status, out) = order(json!({"package": 2, "acknowledgements": acks(), "invoice": company}));
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["invoice"]["tax_id"], "RO14399840");
    assert_eq!(
        order(json!({"package": 4, "acknowledgements": acks(), "invoice": person()})).0,
        400
    );
    assert_eq!(
        order(json!({"kind": "gift", "package": 1, "acknowledgements": acks(), "invoice": person()})).0,
        400
    );
}

#[test]
fn an_order_gets_a_registration_number_and_can_be_cancelled_only_while_unpaid() {
    let app = app_with(
        &[],
        "[billing]\npromo_codes = [{ code = \"WELCOME10\", percent_off_basis_points = 1000 }]\n",
    );
    let cookie = session(&app, "buyer@example.com");
    let (status, placed) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(
            json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person(), "promo_code": "welcome10"}),
        ),
    );
    assert_eq!(status, 201, "{placed}");
    let number = placed["registration_number"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = number.split('-').collect();
    assert!(
        parts.len() == 4 && parts[0] == "PRF" && parts[1].len() == 4 && parts[2].len() == 4,
        "{number}"
    );
    assert_eq!(placed["state"], "awaiting_payment");
    // Development mode is off: no sandbox page to pay on; the gateway's callback pays.
    assert_eq!(placed["actions"], json!(["cancel"]));
    // 10 % off 39 EUR = 35.10 EUR net, + 21 % = 42.47 EUR (4247 cents) × 5.0377 = 213.95 RON.
    assert_eq!(placed["price"]["discount_eur_cents"], 390);
    assert_eq!(placed["price"]["gross_eur_cents"], 4247);
    assert_eq!(placed["price"]["label"], "Pay 213.95 RON (42.47 EUR)");
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"package": 1, "acknowledgements": acks(), "invoice": person(), "promo_code": "NOPE"})),
    );
    assert_eq!(status, 400, "an unknown code is refused");

    let id = placed["id"].as_str().unwrap();
    let (status, cancelled) = call(&app, "POST", &format!("/api/v1/orders/{id}/cancel"), &cookie, None);
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    assert_eq!(cancelled["history"].as_array().unwrap().len(), 2);
    assert_eq!(cancelled["actions"], json!([]));
    let (status, _) = call(&app, "POST", &format!("/api/v1/orders/{id}/cancel"), &cookie, None);
    assert_eq!(status, 409, "cancelled for good");
    let (_, list) = call(&app, "GET", "/api/v1/orders", &cookie, None);
    assert_eq!(list["orders"][0]["registration_number"], number);

    // Someone else's order does not exist for another holder.
    let other = session(&app, "other@example.com");
    assert_eq!(call(&app, "GET", &format!("/api/v1/orders/{id}"), &other, None).0, 404);
    assert_eq!(
        call(&app, "POST", &format!("/api/v1/orders/{id}/cancel"), &other, None).0,
        404
    );
    assert_eq!(app.client.get(app.url("/api/v1/orders")).send().unwrap().status(), 401);
}

fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn only_a_signed_fresh_callback_marks_an_order_paid_and_a_replay_changes_nothing() {
    let secret = "callback-secret-for-tests";
    let app = app_with(&[("PARAFA_PAYMENT_CALLBACK_SECRET", secret), ("PARAFA_DEV", "1")], "");
    let cookie = session(&app, "buyer@example.com");
    let (_, order) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    let id = order["id"].as_str().unwrap().to_owned();
    let total = order["price"]["total_ron_bani"].as_i64().unwrap();
    assert!(order["payment_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/orders/{id}/pay")));
    let (status, page) = call(&app, "GET", &format!("/api/v1/sandbox-pay/{id}"), &cookie, None);
    assert_eq!((status, page["charge"].clone()), (200, order["price"]["label"].clone()));

    // A failed payment leaves the order unpaid, with the attempt in its history.
    let (status, failed) = call(
        &app,
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        &cookie,
        Some(json!({"outcome": "fail"})),
    );
    assert_eq!(
        (status, failed["state"].as_str()),
        (200, Some("awaiting_payment")),
        "{failed}"
    );

    let notify = |body: &str, sig: &str| {
        let r = app
            .client
            .post(app.url("/api/v1/payments/sandbox/callback"))
            .header("X-Payment-Signature", sig)
            .body(body.to_owned())
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    let body = json!({"event_id": "evt-1", "order_id": id, "status": "paid", "amount_ron_bani": total}).to_string();
    let now = app.now();
    assert_eq!(notify(&body, &signature("not-the-secret", now, &body)).0, 401, "forged");
    assert_eq!(notify(&body, "t=1,v1=00").0, 401, "malformed");
    assert_eq!(notify(&body, &signature(secret, now - 301, &body)).0, 401, "stale");
    let cheap =
        json!({"event_id": "evt-0", "order_id": id, "status": "paid", "amount_ron_bani": total - 1}).to_string();
    assert_eq!(
        notify(&cheap, &signature(secret, now, &cheap)).0,
        400,
        "the wrong amount"
    );
    let (_, still) = call(&app, "GET", &format!("/api/v1/orders/{id}"), &cookie, None);
    assert_eq!(
        still["state"], "awaiting_payment",
        "no refused notification paid the order"
    );

    let sig = signature(secret, now, &body);
    let (status, out) = notify(&body, &sig);
    assert_eq!((status, out["changed"].as_bool()), (200, Some(true)), "{out}");
    let (_, paid) = call(&app, "GET", &format!("/api/v1/orders/{id}"), &cookie, None);
    assert_eq!(paid["state"], "paid");
    let history = paid["history"].as_array().unwrap().len();
    let (status, out) = notify(&body, &sig);
    assert_eq!(
        (status, out["changed"].as_bool()),
        (200, Some(false)),
        "a replay is acknowledged and ignored"
    );
    let (_, again) = call(&app, "GET", &format!("/api/v1/orders/{id}"), &cookie, None);
    assert_eq!(again["history"].as_array().unwrap().len(), history);
    assert_eq!(
        call(&app, "POST", &format!("/api/v1/orders/{id}/cancel"), &cookie, None).0,
        409,
        "paid: not cancellable"
    );
    // The browser cannot pay: only the callback did.
    assert_eq!(
        app.client
            .post(app.url(&format!("/api/v1/orders/{id}/pay")))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn the_ron_amount_is_fixed_on_the_payment_day_and_the_invoice_pdf_comes_once_paid() {
    let app = app_with(&[("PARAFA_VAT_BASIS_POINTS", "1900"), ("PARAFA_DEV", "1")], "");
    let cookie = session(&app, "payer@example.com");
    let (status, order) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["price"]["label"], "Pay 233.80 RON (46.41 EUR)");
    let id = order["id"].as_str().unwrap();
    let (status, early) = call(&app, "GET", &format!("/api/v1/orders/{id}/invoice.pdf"), &cookie, None);
    assert_eq!(status, 409, "no invoice before payment: {early}");

    // The central bank publishes the next day's rate: the payment is made at the rate of the day it is made.
    let feed = app
        .env()
        .iter()
        .find(|(k, _)| k == "PARAFA_FX_FEED_FILE")
        .unwrap()
        .1
        .clone();
    std::fs::write(
        &feed,
        FEED.replace("2025-03-14", "2025-03-15").replace("5.0377", "5.1000"),
    )
    .unwrap();
    app.advance_clock(2 * 3600);
    let (_, page) = call(&app, "GET", &format!("/api/v1/sandbox-pay/{id}"), &cookie, None);
    // 46.41 EUR × 5.1000 = 236.69 RON.
    assert_eq!(page["charge"], "Pay 236.69 RON (46.41 EUR)", "{page}");
    let (status, paid) = call(
        &app,
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        &cookie,
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        (
            paid["state"].as_str(),
            paid["price"]["total_ron_bani"].as_i64(),
            paid["price"]["rate_date"].as_str()
        ),
        (Some("paid"), Some(23669), Some("2025-03-15"))
    );
    let number = paid["invoice_number"]
        .as_str()
        .expect("an invoice number once paid")
        .to_owned();
    assert!(number.starts_with("PRF-INV-"), "{number}");

    let r = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}/invoice.pdf")))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("invoice.pdf");
    std::fs::write(&pdf, r.bytes().unwrap()).unwrap();
    let text = common::run_ok("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]);
    for expected in [
        number.as_str(),
        paid["registration_number"].as_str().unwrap(),
        "236.69",
        "46.41",
        "Ana Maria Popescu",
    ] {
        assert!(text.contains(expected), "{expected} missing from the invoice:\n{text}");
    }
    // Another order paid later gets the next number.
    let (_, second) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"kind": "reissue", "package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(
        second["error"], "conflict",
        "a reissue needs an ended certificate: {second}"
    );
}

/// Production mode (development mode off, the default): the sandbox gateway and the sandbox identification are
/// unknown routes and pages, the holder cannot pay their own order, and only the gateway's signed callback pays it.
#[test]
fn without_development_mode_the_sandboxes_are_gone_and_only_the_gateway_pays() {
    let secret = "callback-secret-for-tests";
    let app = app_with(&[("PARAFA_PAYMENT_CALLBACK_SECRET", secret)], "");
    let cookie = session(&app, "prod.buyer@example.com");
    let (status, order) = call(
        &app,
        "POST",
        "/api/v1/orders",
        &cookie,
        Some(json!({"package": 1, "acknowledgements": acks(), "invoice": person()})),
    );
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(
        order["payment_url"].is_null(),
        "no sandbox page to send the payer to: {order}"
    );
    assert!(!order["actions"].as_array().unwrap().contains(&json!("pay")), "{order}");

    let pay = |outcome: &str| {
        call(
            &app,
            "POST",
            &format!("/api/v1/sandbox-pay/{id}"),
            &cookie,
            Some(json!({ "outcome": outcome })),
        )
    };
    assert_eq!(pay("pay").0, 404, "the holder cannot mark their order paid");
    assert_eq!(
        call(&app, "GET", &format!("/api/v1/sandbox-pay/{id}"), &cookie, None).0,
        404
    );
    // Unknown to anyone, logged in or not, whatever the body.
    let anonymous = app
        .client
        .post(app.url(&format!("/api/v1/sandbox-pay/{id}")))
        .body("not json")
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 404);
    let (s, _) = app.page(&format!("/orders/{id}/pay"), "en", Some(&cookie));
    assert_eq!(s, 404, "no sandbox payment page");
    let (_, still) = call(&app, "GET", &format!("/api/v1/orders/{id}"), &cookie, None);
    assert_eq!(still["state"], "awaiting_payment");

    // The sandbox identification is unknown too.
    for path in ["/api/v1/identity/sandbox/any-token", "/identity/sandbox/any-token"] {
        assert_eq!(app.client.get(app.url(path)).send().unwrap().status(), 404, "{path}");
    }
    let report = app
        .client
        .post(app.url("/api/v1/identity/sandbox/any-token"))
        .json(&json!({"outcome": "complete"}))
        .send()
        .unwrap();
    assert_eq!(report.status(), 404);

    // The gateway's signed callback still pays the order.
    let total = order["price"]["total_ron_bani"].as_i64().unwrap();
    let body =
        json!({"event_id": "evt-prod-1", "order_id": id, "status": "paid", "amount_ron_bani": total}).to_string();
    let r = app
        .client
        .post(app.url("/api/v1/payments/sandbox/callback"))
        .header("X-Payment-Signature", signature(secret, app.now(), &body))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, paid) = call(&app, "GET", &format!("/api/v1/orders/{id}"), &cookie, None);
    assert_eq!(paid["state"], "paid");

    // With no identification provider configured, an identification cannot start (rather than mail a dead link).
    let (status, refused) = call(
        &app,
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        &cookie,
        None,
    );
    assert_eq!(status, 409, "{refused}");
}

/// Every page says so in development mode, in both languages; without it, no banner.
#[test]
fn development_mode_is_announced_on_every_page() {
    let dev = TestApp::spawn_dev();
    for (lang, text) in [("en", "Development mode"), ("ro", "Mod de dezvoltare")] {
        for path in ["/", "/packages", "/login", "/registry", "/identity/sandbox/not-a-token"] {
            let (_, body) = dev.page(path, lang, None);
            assert!(
                body.contains("dev-banner") && body.contains(text),
                "{lang} {path}: {body}"
            );
        }
    }
    let prod = app_with(&[], "");
    let (_, body) = prod.page("/packages", "en", None);
    assert!(!body.contains("dev-banner"), "{body}");
}

/// The server refuses to start in development mode when its public URL is https.
#[test]
fn the_server_refuses_development_mode_with_an_https_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::parafa_bin())
        .arg("serve")
        .env_remove("SOFTHSM2_CONF")
        .env("PARAFA_DATA_DIR", dir.path().join("data"))
        .env("PARAFA_LISTEN", "127.0.0.1:0")
        .env("PARAFA_DEV", "1")
        .env("PARAFA_PUBLIC_URL", "https://sign.example.ro")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dev") && stderr.contains("https"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

/// A seller whose own name and address carry the Romanian letters, in Bucharest (sector 1).
const SELLER: &str = r#"
[billing]
seller_name = "Semnătura Țării Întâi SRL"
seller_tax_id = "RO18547290"
seller_trade_register = "J40/12345/2026"
seller_street = "Strada Știrbei Vodă 12"
seller_city = "Sector 1"
seller_postal_code = "010102"
seller_county = "RO-B"
seller_bank = "Banca Comercială Română"
seller_iban = "RO49AAAA1B31007593840000"
"#;

/// A company buyer whose name and address carry ă â î ș ț.
fn company() -> Value {
    json!({"type": "company", "name": "Țesătoria Românească Îmbinări SRL", "tax_id": "RO14399840",
           "country": "România", "county": "Brașov", "locality": "Brașov", "street": "Strada Ștefan cel Mare",
           "number": "3", "building": "-", "entrance": "-", "apartment": "-", "postal_code": "500001"})
}

/// GETs a document with a session: its status, content type and bytes.
fn download(app: &TestApp, path: &str, cookie: &str) -> (u16, String, Vec<u8>) {
    let r = app
        .client
        .get(app.url(path))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", common::csrf_for(cookie))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, r.bytes().unwrap().to_vec())
}

/// pdftotext's reading of a PDF.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("document.pdf");
    std::fs::write(&file, pdf).unwrap();
    common::run_ok("pdftotext", &["-layout", file.to_str().unwrap(), "-"])
}

/// The outside judge of an e-Factura file (tests/python/efactura_judge.py: the UBL 2.1 XSD, the CEN's EN 16931
/// schematron under Saxon, the BR-CO arithmetic and RO_CIUS's mandatory fields); returns what it read.
fn efactura_judge(xml: &[u8], extra: &[&str]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("efactura.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/python/efactura_judge.py"))
        .arg(&file)
        .args(extra)
        .output()
        .expect("run .venv/bin/python (make venv installs factur-x and saxonche)");
    assert!(
        out.status.success(),
        "the e-Factura file is refused:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Places and pays (sandbox) a package 1 order with the given invoice data; returns the paid order.
fn paid(app: &TestApp, cookie: &str, invoice: Value) -> Value {
    let (status, order) = call(
        app,
        "POST",
        "/api/v1/orders",
        cookie,
        Some(json!({"kind": "new", "package": 1, "acknowledgements": acks(), "invoice": invoice})),
    );
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let (status, paid) = call(
        app,
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        cookie,
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!((status, paid["state"].as_str()), (200, Some("paid")), "{paid}");
    paid
}

#[test]
fn a_paid_order_gets_a_romanian_fiscal_invoice_with_its_diacritics_ron_totals_and_an_efactura_file() {
    let app = app_with(&[("PARAFA_VAT_BASIS_POINTS", "1900"), ("PARAFA_DEV", "1")], SELLER);
    let cookie = session(&app, "firma@example.com");
    let order = paid(&app, &cookie, company());
    let id = order["id"].as_str().unwrap();
    let number = order["invoice_number"].as_str().unwrap();

    let (status, kind, pdf) = download(&app, &format!("/api/v1/orders/{id}/invoice.pdf"), &cookie);
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    let text = pdf_text(&pdf);
    let series = number.rsplit_once('-').unwrap().0;
    for expected in [
        // Romanian labels, the English beside them.
        "FACTURĂ / Invoice",
        "Seria / Series",
        series,
        "Nr. / No.",
        number,
        "Data emiterii / Date of issue",
        "Furnizor / Seller",
        "Cumpărător / Buyer",
        // The seller's registration data, from the settings, diacritics kept.
        "Semnătura Țării Întâi SRL",
        "CUI/CIF / Tax id: RO18547290",
        "Nr. Reg. Com. / Trade register: J40/12345/2026",
        "Strada Știrbei Vodă 12",
        "010102 Sector 1, București",
        "Banca / Bank: Banca Comercială Română",
        "IBAN: RO49AAAA1B31007593840000",
        // The buyer's.
        "Țesătoria Românească Îmbinări SRL",
        "CUI/CIF / Tax id: RO14399840",
        "Strada Ștefan cel Mare 3",
        "500001 Brașov, Brașov",
        "România",
        // Package 1 at 19 %: 39.00 EUR is 196.47 RON at 5.0377; 233.80 RON paid, of which VAT 37.33.
        "Semnătură electronică calificată la distanță",
        "Total fără TVA / Net total RON",
        "196.47",
        "TVA / VAT 19% RON",
        "37.33",
        "Total plătit / Total paid RON",
        "233.80",
        "Curs BNR din 2025-03-14 / NBR reference rate of 2025-03-14: 1 EUR = 5.0377 RON",
        "46.41 EUR",
        "Modalitate de plată / Payment method: Card bancar, plată online",
        "Referința plății / Payment reference: sandbox:sandbox-",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the invoice:\n{text}"
        );
    }
    assert!(!text.contains("fallback"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoice.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let fonts = common::run_ok("pdffonts", &[file.to_str().unwrap()]);
    let embedded = fonts
        .lines()
        .filter(|l| l.starts_with("DejaVuSans") && l.contains(" yes "))
        .count();
    assert_eq!(embedded, 2, "both faces embedded: {fonts}");

    // The operator gets the same invoice and its e-Factura file; a holder gets neither through the operator API.
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);
    let (status, _, op_pdf) = download(&app, &format!("/api/v1/operator/orders/{id}/invoice.pdf"), &op);
    assert_eq!(status, 200);
    assert!(pdf_text(&op_pdf).contains("Țesătoria Românească Îmbinări SRL"));
    let (status, _, _) = download(&app, &format!("/api/v1/operator/orders/{id}/invoice.xml"), &cookie);
    assert_eq!(status, 403, "the e-Factura file is the operator's");
    let (status, kind, xml) = download(&app, &format!("/api/v1/operator/orders/{id}/invoice.xml"), &op);
    assert_eq!((status, kind.as_str()), (200, "application/xml"));
    let found = efactura_judge(&xml, &[]);
    assert_eq!(
        found,
        json!({"document": "Invoice", "number": number, "lines": "196.47", "taxable": "196.47", "vat": "37.33",
               "total": "233.80", "payable": "0.00", "schematron_warnings": found["schematron_warnings"]}),
        "paid by card: nothing left to pay"
    );
    let xml = String::from_utf8(xml).unwrap();
    for expected in [
        "<cbc:CountrySubentity>RO-B</cbc:CountrySubentity>",
        "<cbc:CityName>SECTOR1</cbc:CityName>",
        "<cbc:CountrySubentity>RO-BV</cbc:CountrySubentity>",
        "<cbc:RegistrationName>Țesătoria Românească Îmbinări SRL</cbc:RegistrationName>",
    ] {
        assert!(xml.contains(expected), "{expected} missing from:\n{xml}");
    }
    // Kept as issued: the same bytes every time.
    let (_, _, again) = download(&app, &format!("/api/v1/operator/orders/{id}/invoice.xml"), &op);
    assert_eq!(again, xml.as_bytes());
    let (status, _, _) = download(&app, &format!("/api/v1/operator/orders/{id}/credit-note.xml"), &op);
    assert_eq!(status, 409, "no credit note without a refund");
    let (status, _, _) = download(&app, &format!("/api/v1/orders/{id}/credit-note.pdf"), &cookie);
    assert_eq!(status, 409);
}

/// Pays an order, then has its identification rejected with no resubmission allowed: the order is refunded.
fn refunded(app: &TestApp, cookie: &str, op: &str) -> Value {
    let order = paid(app, cookie, company());
    let id = order["id"].as_str().unwrap();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        Some(cookie),
        None,
    );
    assert_eq!(s, 201, "{out}");
    let url = out["url"].as_str().unwrap();
    let link = format!("/api/v1{}", &url[url.find("/identity/sandbox/").unwrap()..]);
    let document = json!({"type": "id_card", "country": "RO", "series": "BV", "number": "123456",
        "issued_on": "2020-01-10", "expires_on": "2035-01-10", "issuer": "SPCLEP Brașov", "given_name": "Ana",
        "surname": "Popescu", "personal_number": "2900101221142"});
    let consents = json!({"privacy_notice": true, "biometric": true, "captures": true, "recording": true});
    let (s, out) = app.call(
        "POST",
        &link,
        None,
        Some(json!({"outcome": "complete", "document": document, "consents": consents})),
    );
    assert_eq!(s, 200, "{out}");
    let session = app.session_under_review(op, id);
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{session}/reject"),
        Some(op),
        Some(json!({"reason": "the name does not match the document"})),
    );
    assert_eq!((s, v["order_state"].as_str()), (200, Some("refunded")), "{v}");
    let (s, o) = call(app, "GET", &format!("/api/v1/orders/{id}"), cookie, None);
    assert_eq!(s, 200, "{o}");
    o
}

#[test]
fn a_refund_issues_one_credit_note_numbered_in_its_own_series_that_reverses_the_invoice() {
    refund_journey(Backend::Sqlite);
}

#[test]
fn a_refund_issues_one_credit_note_numbered_in_its_own_series_that_reverses_the_invoice_on_postgres() {
    let Some(pg) = common::FreshPostgres::create() else {
        return;
    };
    refund_journey(Backend::Postgres(pg));
}

fn refund_journey(backend: Backend) {
    let toml = format!("{SELLER}\n[lifecycle]\nresubmissions_allowed = 0\n");
    let app = app_on(
        backend,
        &[("PARAFA_VAT_BASIS_POINTS", "1900"), ("PARAFA_DEV", "1")],
        &toml,
    );
    let holder = app.create_account("firma@example.com", true);
    let cookie = app.web_login(&holder);
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);

    let first = refunded(&app, &cookie, &op);
    let second = refunded(&app, &cookie, &op);
    let year = &first["invoice_number"].as_str().unwrap()[8..12];
    // One credit note per refunded order, consecutive in their own series (invoices have theirs).
    assert_eq!(first["credit_note_number"], format!("PRF-CN-{year}-000001"), "{first}");
    assert_eq!(
        second["credit_note_number"],
        format!("PRF-CN-{year}-000002"),
        "{second}"
    );
    assert_eq!(second["invoice_number"], format!("PRF-INV-{year}-000002"), "{second}");
    assert!(
        first["actions"].as_array().unwrap().contains(&json!("credit_note")),
        "{first}"
    );
    // Another scheduler run refunds nothing more and issues no other credit note.
    let (s, run) = app.call("POST", "/api/v1/operator/lifecycle/run", Some(&op), None);
    assert_eq!(s, 200, "{run}");
    let third = paid(&app, &cookie, company());
    assert!(third["credit_note_number"].is_null(), "{third}");

    let id = first["id"].as_str().unwrap();
    let invoice = first["invoice_number"].as_str().unwrap();
    let (status, kind, pdf) = download(&app, &format!("/api/v1/orders/{id}/credit-note.pdf"), &cookie);
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    let text = pdf_text(&pdf);
    let (series, n) = invoice.rsplit_once('-').unwrap();
    for expected in [
        "FACTURĂ DE STORNARE / Credit note",
        &format!("PRF-CN-{year}-000001"),
        "Stornează factura / Reverses invoice",
        &format!("seria {series} nr. {n} din "),
        invoice,
        "Țesătoria Românească Îmbinări SRL",
        "Semnătura Țării Întâi SRL",
        "-196.47",
        "-37.33",
        "Total stornat / Total reversed RON",
        "-233.80",
        "Rambursare pe card",
        "Referința rambursării / Refund reference: sandbox-refund-",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the credit note:\n{text}"
        );
    }
    // The operator's copy and its e-Factura file: a CreditNote (381) that refers to the invoice.
    let (status, _, op_pdf) = download(&app, &format!("/api/v1/operator/orders/{id}/credit-note.pdf"), &op);
    assert_eq!((status, op_pdf == pdf), (200, true));
    let (status, _, xml) = download(&app, &format!("/api/v1/operator/orders/{id}/credit-note.xml"), &op);
    assert_eq!(status, 200);
    let found = efactura_judge(&xml, &["--expect-invoice", invoice]);
    assert_eq!(
        (
            found["document"].as_str(),
            found["total"].as_str(),
            found["vat"].as_str()
        ),
        (Some("CreditNote"), Some("233.80"), Some("37.33")),
        "{found}"
    );
    // Another holder reaches none of it.
    let other = session(&app, "other@example.com");
    let (status, _, _) = download(&app, &format!("/api/v1/orders/{id}/credit-note.pdf"), &other);
    assert_eq!(status, 404);
    // The order page links the credit note, in Romanian by default.
    app.consent(&cookie);
    let (s, html) = app.page(&format!("/orders/{id}"), "ro", Some(&cookie));
    assert_eq!(s, 200);
    assert!(
        html.contains(&format!("/api/v1/orders/{id}/credit-note.pdf")) && html.contains("Descarcă factura de stornare"),
        "{html}"
    );
}
