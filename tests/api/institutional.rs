//! The institutional and procurement channel (product rules §13) through HTTP: an operator places a public body's
//! order (the proforma goes to the institution), records the holder's in-person identification (invitation and
//! "configure the authorisation" e-mails), the holder activates the account, pairs and issues the certificate at
//! the first TOTP code, and the invoice follows, due 30 days later. Judged by openssl and pdftotext. On SQLite,
//! and on PostgreSQL when `PARAFA_TEST_POSTGRES_URL` is set.

use crate::common;

use common::{code_in, run_ok, TestApp, HOLDER_PASSWORD};
use serde_json::{json, Value};

const INSTITUTION: &str = "Primaria Comunei Exemplu";
const INSTITUTION_EMAIL: &str = "achizitii@primaria-exemplu.ro";
const HOLDER_EMAIL: &str = "ion.popa@primaria-exemplu.ro";
const PHONE: &str = "+40722333444";
const REFERENCE: &str = "SEAP DA26123456";

fn order_body() -> Value {
    json!({
        "institution": {"name": INSTITUTION, "tax_id": "RO14399840",
                        "address": "Strada Principala 1\n407000 Exemplu, Cluj\nRomania", "email": INSTITUTION_EMAIL,
                        "lang": "en"},
        "holder": {"given_name": "Ion", "surname": "Popa", "email": HOLDER_EMAIL, "phone": "+40 722 333 444"},
        "package": 1,
        "procurement_reference": REFERENCE,
    })
}

fn document(cnp: &str) -> Value {
    json!({"type": "id_card", "country": "RO", "series": "CJ", "number": "654321", "issued_on": "2021-03-01",
           "expires_on": "2031-03-01", "issuer": "SPCLEP Cluj-Napoca", "given_name": "Ion", "surname": "Popa",
           "personal_number": cnp})
}

/// The link in a message that contains `marker`, up to the next white space.
fn link_in(message: &str, marker: &str) -> String {
    let at = message
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {message}"));
    let start = message[..at].rfind("http").expect("a URL");
    message[start..].split_whitespace().next().unwrap().to_owned()
}

fn pdf_text(app: &TestApp, url: &str) -> String {
    let r = app.client.get(url).send().expect("GET");
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.pdf");
    std::fs::write(&file, &pdf).unwrap();
    run_ok("pdftotext", &["-layout", file.to_str().unwrap(), "-"])
}

fn kinds(app: &TestApp, to: &str, at_least: usize) -> Vec<String> {
    app.messages_to(to, at_least)
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Kind: "))
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Moves the server clock to the next Friday, 10:00 UTC, whose following week has no public holiday.
fn to_friday(app: &TestApp) -> i64 {
    let now = app.now();
    let days = now.div_euclid(86_400);
    // 1970-01-01 was a Thursday: day 1 is a Friday.
    let mut friday = days + (1 - days).rem_euclid(7);
    let holiday_in_the_week_after = |friday: i64| {
        (3..=7).any(|d| {
            time::OffsetDateTime::from_unix_timestamp((friday + d) * 86_400)
                .is_ok_and(|t| parafa::lifecycle::institutional::is_romanian_public_holiday(t.date()))
        })
    };
    while friday * 86_400 + 36_000 <= now || holiday_in_the_week_after(friday) {
        friday += 7;
    }
    let target = friday * 86_400 + 36_000;
    app.advance_clock(target - now);
    target
}

fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.client.post(app.url(path)).json(&body).send().expect("POST");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Logs the holder in (with a TOTP code when given); returns the status, the answer and the cookie.
fn login(app: &TestApp, totp: Option<String>) -> (u16, Value, Option<String>) {
    let mut body = json!({"email": HOLDER_EMAIL, "password": HOLDER_PASSWORD});
    if let Some(c) = totp {
        body["totp"] = json!(c);
    }
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&body)
        .send()
        .expect("login");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null), cookie)
}

#[test]
fn an_institutional_order_runs_from_proforma_to_invoice() {
    journey(TestApp::spawn());
}

#[test]
fn an_institutional_order_runs_from_proforma_to_invoice_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres() {
        journey(app);
    }
}

/// An order whose documents are complete on the Thursday before public holidays is due five working days later,
/// the Romanian public holidays (Codul muncii art. 139) not counted, as weekends are not.
#[test]
fn the_due_date_skips_romanian_public_holidays() {
    let app = TestApp::spawn();
    let at = |d: time::PrimitiveDateTime| d.assume_utc().unix_timestamp();
    use time::macros::datetime;
    // Thursdays at 10:00 UTC before public holidays, and five working days later: the first still ahead is used.
    let cases = [
        // 25, 26 (Saturday), 27 (Sunday) December and 1 January skipped; Monday 2027-01-04 (not Thursday 31).
        (at(datetime!(2026-12-24 10:00)), at(datetime!(2027-01-04 10:00))),
        // Orthodox Good Friday 30 April, 1 May (Saturday), Easter Sunday and Monday 2027 skipped.
        (at(datetime!(2027-04-29 10:00)), at(datetime!(2027-05-10 10:00))),
        // Orthodox Good Friday 14 April, Easter Sunday and Monday 2028 skipped.
        (at(datetime!(2028-04-13 10:00)), at(datetime!(2028-04-24 10:00))),
    ];
    let now = app.now();
    let (thursday, due) = cases
        .into_iter()
        .find(|(start, _)| *start > now + 60)
        .expect("a case still ahead: add later ones");
    app.advance_clock(thursday - now);
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);
    let (s, order) = app.call(
        "POST",
        "/api/v1/operator/institutional-orders",
        Some(&op),
        Some(order_body()),
    );
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/institutional-orders/{id}/identity"),
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221144")})),
    );
    assert_eq!(s, 200, "{out}");
    let rfc3339 = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    let recorded = rfc3339(&out["identification"]["documents_complete_at"]);
    assert!(
        (0..3600).contains(&(recorded - thursday)),
        "recorded on the Thursday: {out}"
    );
    let day = |t: i64| t.div_euclid(86_400);
    assert_eq!(day(rfc3339(&out["due_by"])), day(due), "{out}");
    assert_eq!(
        rfc3339(&out["due_by"]) - recorded,
        due - thursday,
        "same time of day: {out}"
    );
    let (_, list) = app.call("GET", "/api/v1/operator/institutional-orders", Some(&op), None);
    assert_eq!(list["orders"][0]["due_by"], out["due_by"], "{list}");
}

fn journey(app: TestApp) {
    // On a Friday (sessions are opened after moving the clock, so that they do not expire).
    let friday = to_friday(&app);
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);

    // A holder cannot use the operator routes.
    let other = app.create_account("ana@example.com", false);
    let other_cookie = app.web_login(&other);
    let (s, out) = app.call(
        "POST",
        "/api/v1/operator/institutional-orders",
        Some(&other_cookie),
        Some(order_body()),
    );
    assert_eq!(s, 403, "{out}");
    let (s, _) = app.call(
        "GET",
        "/api/v1/operator/institutional-orders",
        Some(&other_cookie),
        None,
    );
    assert_eq!(s, 403);

    // Bad data is refused.
    let mut bad = order_body();
    bad["institution"]["tax_id"] = json!("RO14399841");
    let (s, out) = app.call("POST", "/api/v1/operator/institutional-orders", Some(&op), Some(bad));
    assert_eq!(s, 400, "{out}");

    // In Romanian when asked.
    let mut nameless = order_body();
    nameless["holder"]["given_name"] = json!(" ");
    let r = app
        .client
        .post(app.url("/api/v1/operator/institutional-orders"))
        .header("Cookie", &op)
        .header("X-CSRF-Token", common::csrf_for(&op))
        .header("Accept-Language", "ro")
        .json(&nameless)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let out: Value = r.json().unwrap();
    assert_eq!(
        out["error_description"], "Prenumele titularului este obligatoriu",
        "{out}"
    );

    // The operator places the order: awaiting the documents, the account invited but not told yet.
    let (s, order) = app.call(
        "POST",
        "/api/v1/operator/institutional-orders",
        Some(&op),
        Some(order_body()),
    );
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["state"], "awaiting_documents", "{order}");
    assert_eq!(order["channel"], "institutional");
    assert_eq!(order["holder"]["account_status"], "invited");
    assert!(order["due_by"].is_null(), "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let number = order["registration_number"].as_str().unwrap().to_owned();

    // The institution gets the instructions and the proforma.
    let mail = app.message(INSTITUTION_EMAIL, 1);
    assert!(mail.contains("Kind: institutional_proforma"), "{mail}");
    assert!(
        mail.contains(&number) && mail.contains("79132100-9") && mail.contains("notar"),
        "{mail}"
    );
    let proforma = pdf_text(&app, &link_in(&mail, "/proforma.pdf"));
    for expected in ["PROFORMA", INSTITUTION, "RO14399840", "79132100-9", REFERENCE, &number] {
        assert!(proforma.contains(expected), "{expected} in the proforma:\n{proforma}");
    }
    assert!(
        !proforma.contains("PRF-INV-"),
        "no invoice number on a proforma:\n{proforma}"
    );
    assert!(!proforma.contains("Total paid"), "{proforma}");
    // The operator can download it too.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/operator/institutional-orders/{id}/proforma.pdf")))
        .header("Cookie", &op)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let holder_mail = std::fs::read_dir(app.data_dir.join("outbox"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|t| t.starts_with(&format!("To: {HOLDER_EMAIL}\n")))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(holder_mail, 0, "the holder is told once the documents are complete");

    // The console shows the order, awaiting its documents, with the form that records the identification.
    let (s, en) = app.page("/operator", "en", Some(&op));
    assert_eq!(s, 200);
    for expected in [
        "id=\"inst-form\"",
        "data-api=\"/api/v1/operator/institutional-orders\"",
        &format!("id=\"inst-{id}\""),
        &format!("id=\"inst-identity-{id}\""),
        &format!("data-api=\"/api/v1/operator/institutional-orders/{id}/identity\""),
        "Institutional orders",
        "Awaiting the identification documents",
        INSTITUTION,
        REFERENCE,
    ] {
        assert!(en.contains(expected), "{expected} in the console");
    }
    common::assert_no_inline("/operator", &en);
    let (s, ro) = app.page("/operator", "ro", Some(&op));
    assert_eq!(s, 200);
    assert!(
        ro.contains("Comenzi instituționale") && ro.contains("În așteptarea documentelor de identificare"),
        "the console in Romanian"
    );
    let (_, holder_view) = app.page("/operator", "en", Some(&other_cookie));
    assert!(!holder_view.contains("inst-form"), "holders do not see the console");

    // The identification: a bad personal numeric code is refused, then an in-person identification is recorded.
    let identity = format!("/api/v1/operator/institutional-orders/{id}/identity");
    let (s, out) = app.call(
        "POST",
        &identity,
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221145"), "note": "seen at the desk"})),
    );
    assert_eq!(s, 400, "{out}");
    assert!(out["error_description"].as_str().unwrap().contains("CNP"), "{out}");
    let (s, out) = app.call(
        "POST",
        &identity,
        Some(&op),
        Some(json!({"method": "by_pigeon", "document": document("1800101221144")})),
    );
    assert_eq!(s, 400, "{out}");
    let (s, out) = app.call(
        "POST",
        &identity,
        Some(&other_cookie),
        Some(json!({"method": "in_person", "document": document("1800101221144")})),
    );
    assert_eq!(s, 403, "{out}");
    let (s, out) = app.call(
        "POST",
        &identity,
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221144"), "note": "seen at the desk"})),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["state"], "accepted", "{out}");
    assert_eq!(out["identification"]["method"], "in_person");
    assert_eq!(
        out["identification"]["recorded_by"],
        format!("operator:{}", operator.user_id)
    );
    // Five working days from Friday 10:00 is the next Friday (not Wednesday): the weekend does not count.
    let recorded = out["identification"]["documents_complete_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let recorded_at = time::OffsetDateTime::parse(&recorded, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!(recorded_at - friday < 3600, "recorded on the Friday: {recorded}");
    let due = time::OffsetDateTime::parse(
        out["due_by"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert_eq!(due, recorded_at + 7 * 86_400, "{out}");
    let (s, again) = app.call(
        "POST",
        &identity,
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221144")})),
    );
    assert_eq!(s, 409, "recorded once: {again}");
    let (s, list) = app.call("GET", "/api/v1/operator/institutional-orders", Some(&op), None);
    assert_eq!(s, 200);
    assert_eq!(list["orders"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["orders"][0]["late"], false);
    let (_, en) = app.page("/operator", "en", Some(&op));
    assert!(
        !en.contains(&format!("id=\"inst-identity-{id}\"")),
        "recorded once: no form any more"
    );
    assert!(
        en.contains(&format!("id=\"inst-due-{id}\">{}", out["due_by"].as_str().unwrap())),
        "the due date in the console"
    );
    assert!(en.contains("In person, original document"));

    // E-mails #1 and #8 to the holder.
    let holder_kinds = kinds(&app, HOLDER_EMAIL, 2);
    assert!(
        holder_kinds.contains(&"invitation".to_owned()) && holder_kinds.contains(&"configure_authorisation".to_owned()),
        "{holder_kinds:?}"
    );
    let invitation = app
        .messages_to(HOLDER_EMAIL, 2)
        .into_iter()
        .find(|m| m.contains("Kind: invitation"))
        .unwrap();
    let at = invitation.find("/invitations/").expect("invitation link") + "/invitations/".len();
    let token = invitation[at..].split_whitespace().next().unwrap().to_owned();

    // The holder activates the account: phone, SMS code, password.
    let (s, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({"phone": PHONE}),
    );
    assert_eq!(s, 202, "{out}");
    let code = code_in(&app.message(PHONE, 1));
    let (s, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
    );
    assert_eq!(s, 200, "{out}");
    let (s, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/password"),
        json!({"password": HOLDER_PASSWORD}),
    );
    assert_eq!(s, 200, "{out}");

    // Logs in, pairs the authenticator.
    let (s, out, cookie) = login(&app, None);
    assert_eq!(s, 200, "{out}");
    let cookie = cookie.unwrap();
    let (s, out) = app.call("POST", "/api/v1/me/totp/pairing", Some(&cookie), Some(json!({})));
    assert_eq!(s, 202, "{out}");
    let code = code_in(&app.message(PHONE, 2));
    let (s, secret) = app.call(
        "POST",
        "/api/v1/me/totp/pairing/sms",
        Some(&cookie),
        Some(json!({"code": code, "app_installed": true})),
    );
    assert_eq!(s, 200, "{secret}");
    let secret = secret["secret"].as_str().unwrap().to_owned();
    let code = common::totp_code(&secret, app.now());
    let (s, out) = app.call(
        "POST",
        "/api/v1/me/totp/pairing/activate",
        Some(&cookie),
        Some(json!({"code": code})),
    );
    assert_eq!(s, 200, "{out}");
    app.advance_clock(30);
    let (s, out, cookie) = login(&app, Some(common::totp_code(&secret, app.now())));
    assert_eq!(s, 200, "{out}");
    let cookie = cookie.unwrap();

    // The order as the holder sees it: accepted, no payment step, the certificate can be issued.
    let (s, mine) = app.call("GET", &format!("/api/v1/orders/{id}"), Some(&cookie), None);
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["state"], "accepted");
    assert_eq!(mine["channel"], "institutional");
    assert_eq!(mine["actions"], json!(["issue_certificate"]), "{mine}");
    assert!(mine["payment_url"].is_null());

    // Issued at the first TOTP.
    app.advance_clock(30);
    let (s, issued) = app.call(
        "POST",
        "/api/v1/me/certificates",
        Some(&cookie),
        Some(json!({"order_id": id, "terms_accepted": true, "totp": common::totp_code(&secret, app.now())})),
    );
    assert_eq!(s, 201, "{issued}");
    let issued_at = app.now();
    let (s, certs) = app.call("GET", "/api/v1/me/certificates", Some(&cookie), None);
    assert_eq!(s, 200, "{certs}");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("holder.pem");
    std::fs::write(&pem, certs["certificates"][0]["certificate_pem"].as_str().unwrap()).unwrap();
    let subject = run_ok(
        "openssl",
        &["x509", "-in", pem.to_str().unwrap(), "-noout", "-subject", "-serial"],
    );
    assert!(
        subject.contains("Popa") && subject.contains("PNORO-1800101221144"),
        "{subject}"
    );

    // Fulfilled and invoiced after issuance, due 30 days later; the invoice goes to the institution.
    let (s, mine) = app.call("GET", &format!("/api/v1/orders/{id}"), Some(&cookie), None);
    assert_eq!(s, 200);
    assert_eq!(mine["state"], "fulfilled", "{mine}");
    let invoice_number = mine["invoice_number"].as_str().expect("an invoice number").to_owned();
    assert!(invoice_number.starts_with("PRF-INV-"), "{invoice_number}");
    let payment_due = time::OffsetDateTime::parse(
        mine["payment_due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (payment_due.unix_timestamp() - (issued_at + 30 * 86_400)).abs() < 120,
        "{mine}"
    );
    // The e-mail gives the due date as people read it, in Bucharest (the same day as UTC's, or the next).
    let long = |d: time::Date| common::long_date(d.year(), u8::from(d.month()).into(), d.day().into(), "en");
    let due_dates = [long(payment_due.date()), long(payment_due.date().next_day().unwrap())];
    // The invoice, a fiscal document, prints it as YYYY-MM-DD.
    let due_date = payment_due.date().to_string();
    let mail = app.message(INSTITUTION_EMAIL, 2);
    assert!(
        mail.contains("Kind: institutional_invoice") && mail.contains(&invoice_number),
        "{mail}"
    );
    assert!(due_dates.iter().any(|d| mail.contains(d)), "{due_dates:?} in {mail}");
    let invoice = pdf_text(&app, &link_in(&mail, "/invoice.pdf"));
    for expected in [
        invoice_number.as_str(),
        "Due date",
        due_date.as_str(),
        INSTITUTION,
        REFERENCE,
        "79132100-9",
        "Total due RON",
    ] {
        assert!(invoice.contains(expected), "{expected} in the invoice:\n{invoice}");
    }
    assert!(!invoice.contains("PROFORMA"), "{invoice}");
    assert!(mail.contains("is due on"), "in the institution's language: {mail}");
    // The holder's order page shows the channel, the payment's due date and the institution's address.
    app.consent(&cookie);
    let (s, html) = app.page(&format!("/orders/{id}"), "en", Some(&cookie));
    assert_eq!(s, 200);
    assert!(
        due_dates
            .iter()
            .any(|d| html.contains(&format!("id=\"order-payment-due\">{d}"))),
        "the order page gives the due date as people read it: {due_dates:?}"
    );
    for expected in [
        "Institutional order (public procurement)",
        "407000 Exemplu, Cluj",
        "Fulfilled",
    ] {
        assert!(html.contains(expected), "{expected} in the order page");
    }
    let (_, html) = app.page(&format!("/orders/{id}"), "ro", Some(&cookie));
    assert!(html.contains("Scadența facturii"), "the order page in Romanian");
    // The holder can download the same invoice.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}/invoice.pdf")))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The operator's list shows the order fulfilled with its invoice and payment date.
    let (_, list) = app.call("GET", "/api/v1/operator/institutional-orders", Some(&op), None);
    let row = &list["orders"][0];
    assert_eq!(
        (row["state"].as_str(), row["invoice_number"].as_str()),
        (Some("fulfilled"), Some(invoice_number.as_str())),
        "{row}"
    );

    // A second order whose certificate is not issued in time comes first, marked late; an order still awaiting
    // its documents has no due date yet.
    let mut second = order_body();
    second["holder"] = json!({"given_name": "Elena", "surname": "Dinu", "email": "elena.dinu@primaria-exemplu.ro",
                              "phone": "+40 733 555 666"});
    let (s, late) = app.call(
        "POST",
        "/api/v1/operator/institutional-orders",
        Some(&op),
        Some(second.clone()),
    );
    assert_eq!(s, 201, "{late}");
    let late_id = late["id"].as_str().unwrap().to_owned();
    let record = format!("/api/v1/operator/institutional-orders/{late_id}/identity");
    // The first holder's document on another account is refused.
    let (s, out) = app.call(
        "POST",
        &record,
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221144")})),
    );
    assert_eq!(s, 409, "{out}");
    let mut elena = document("2900101221142");
    elena["number"] = json!("777888");
    let (s, out) = app.call(
        "POST",
        &record,
        Some(&op),
        Some(json!({"method": "courier_sworn_statement", "document": elena, "note": "notarised statement received"})),
    );
    assert_eq!(s, 200, "{out}");
    second["holder"] = json!({"given_name": "Radu", "surname": "Stan", "email": "radu.stan@primaria-exemplu.ro",
                              "phone": "+40 744 777 888"});
    let (s, waiting) = app.call("POST", "/api/v1/operator/institutional-orders", Some(&op), Some(second));
    assert_eq!(s, 201, "{waiting}");
    app.advance_clock(8 * 86_400);
    let op = app.web_login(&operator);
    let (_, list) = app.call("GET", "/api/v1/operator/institutional-orders", Some(&op), None);
    let rows = list["orders"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(
        (rows[0]["id"].as_str(), rows[0]["late"].as_bool()),
        (Some(late_id.as_str()), Some(true)),
        "{list}"
    );
    assert!(rows[1..].iter().all(|r| r["late"] == false), "{list}");
    let waiting_row = rows
        .iter()
        .find(|r| r["id"] == waiting["id"])
        .expect("the waiting order");
    assert!(
        waiting_row["due_by"].is_null() && waiting_row["state"] == "awaiting_documents",
        "{waiting_row}"
    );
    let (_, en) = app.page("/operator", "en", Some(&op));
    let late_card = &en[en.find(&format!("id=\"inst-{late_id}\"")).expect("the late order")..];
    assert!(
        late_card[..late_card.find("</article>").unwrap()].contains(">late<"),
        "marked late in the console"
    );
    assert!(en.contains("By courier, notarised or lawyer-attested sworn statement"));
}

/// The audit rows of `action` (their `details`, one a line), read from the SQLite file as an auditor would.
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
fn an_operator_cancels_an_institutional_order_before_issuance_with_a_reason() {
    let app = TestApp::spawn();
    let operator = app.create_operator("oana@parafa.example");
    let op = app.web_login(&operator);
    let other = app.create_account("ana@example.com", false);
    let other_cookie = app.web_login(&other);
    let place = || {
        let (s, order) = app.call(
            "POST",
            "/api/v1/operator/institutional-orders",
            Some(&op),
            Some(order_body()),
        );
        assert_eq!(s, 201, "{order}");
        (
            order["id"].as_str().unwrap().to_owned(),
            order["registration_number"].as_str().unwrap().to_owned(),
        )
    };
    let (id, number) = place();
    let cancel = format!("/api/v1/operator/institutional-orders/{id}/cancel");

    // The console offers it, with its reason field.
    let (_, en) = app.page("/operator", "en", Some(&op));
    assert!(
        en.contains(&format!("id=\"inst-cancel-{id}\"")) && en.contains(&format!("data-api=\"{cancel}\"")),
        "the cancel form in the console"
    );
    assert!(en.contains(&format!("id=\"inst-cancel-reason-{id}\" name=\"reason\"")));

    // Only operators, only with a reason, only existing institutional orders.
    let (s, _) = app.call("POST", &cancel, Some(&other_cookie), Some(json!({"reason": "no"})));
    assert_eq!(s, 403);
    for body in [json!({}), json!({"reason": "   "})] {
        let (s, out) = app.call("POST", &cancel, Some(&op), Some(body));
        assert_eq!((s, out["error"].as_str()), (400, Some("invalid_request")), "{out}");
    }
    let (s, _) = app.call(
        "POST",
        "/api/v1/operator/institutional-orders/no-such-order/cancel",
        Some(&op),
        Some(json!({"reason": "x"})),
    );
    assert_eq!(s, 404);

    // Awaiting its documents: cancelled, the institution told with the reason, audited with the operator.
    let reason = "the procurement was annulled by the institution";
    let (s, out) = app.call("POST", &cancel, Some(&op), Some(json!({ "reason": reason })));
    assert_eq!((s, out["state"].as_str()), (200, Some("cancelled")), "{out}");
    let mail = app.message(INSTITUTION_EMAIL, 2);
    assert!(mail.contains("Kind: institutional_cancelled"), "{mail}");
    assert!(mail.contains(&number) && mail.contains(reason), "{mail}");
    let rows = audited(&app, "institutional.order.cancel");
    assert!(
        rows.contains(&format!("operator:{}", operator.user_id)) && rows.contains(reason) && rows.contains(&number),
        "{rows}"
    );
    // A second time: the order is no longer in a state that can be cancelled.
    let (s, out) = app.call("POST", &cancel, Some(&op), Some(json!({ "reason": reason })));
    assert_eq!((s, out["error"].as_str()), (409, Some("conflict")), "{out}");
    let (_, en) = app.page("/operator", "en", Some(&op));
    assert!(
        !en.contains(&format!("id=\"inst-cancel-{id}\"")),
        "no cancel form on a cancelled order"
    );

    // Accepted (identification recorded) but not issued: still cancellable; the holder cannot issue it afterwards.
    let (id, _) = place();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/institutional-orders/{id}/identity"),
        Some(&op),
        Some(json!({"method": "in_person", "document": document("1800101221144")})),
    );
    assert_eq!((s, out["state"].as_str()), (200, Some("accepted")), "{out}");
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/institutional-orders/{id}/cancel"),
        Some(&op),
        Some(json!({"reason": "duplicate order"})),
    );
    assert_eq!((s, out["state"].as_str()), (200, Some("cancelled")), "{out}");
    assert!(app.cli_ok(&["admin", "audit", "verify"]).contains("intact"));
}
