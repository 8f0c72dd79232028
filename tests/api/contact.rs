//! The contact form (product rules §14) through HTTP: a holder writes about one of their orders and gets a copy
//! with the message's number by e-mail; an operator lists the open messages, answers one (audited, e-mailed, the
//! message closed); the holder reads the answer through the API and on the page. The rules: only the holder's own
//! orders, a topic from the list, length limits, at most five messages an hour. The page in both languages,
//! behind the login, with the form pointing at the API; the console's section; the e-mails' contact link. The
//! journey runs on SQLite and, when `PARAFA_TEST_POSTGRES_URL` is set, on PostgreSQL.
//!
//! Without a login (product rules §14): name, address, topic and message; a code e-mailed to the address records
//! the message; hostile input refused with 4xx JSON; a burst hits the per-address then the per-client limit with a
//! 429 and `Retry-After`; operators see late messages first, with their age.

use crate::common;

use common::{Holder, TestApp};
use serde_json::{json, Value};

fn person() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
           "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
           "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"})
}

/// Places an order (left awaiting payment); returns its id and registration number.
fn order(app: &TestApp, cookie: &str) -> (String, String) {
    let (s, order) = app.call(
        "POST",
        "/api/v1/orders",
        Some(cookie),
        Some(json!({"kind": "new", "package": 1, "invoice": person(),
                    "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true}})),
    );
    assert_eq!(s, 201, "{order}");
    (
        order["id"].as_str().unwrap().to_owned(),
        order["registration_number"].as_str().unwrap().to_owned(),
    )
}

/// The e-mail of this kind to `to`, once it is in the outbox (waits up to 10 s).
fn mail(app: &TestApp, to: &str, kind: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = app
            .messages_to(to, 0)
            .into_iter()
            .rfind(|m| m.contains(&format!("\nKind: {kind}\n")));
        if let Some(m) = found {
            return m;
        }
        assert!(std::time::Instant::now() < deadline, "no {kind} e-mail to {to}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn send(app: &TestApp, cookie: &str, body: Value) -> (u16, Value) {
    app.call("POST", "/api/v1/me/contact", Some(cookie), Some(body))
}

const TEXT: &str = "Please change the surname on my invoice to Popescu-Ionescu.\nThank you!";

/// The whole journey on one server.
fn journey(app: &TestApp) {
    let ana = app.create_account("ana@example.com", false);
    let cookie = app.web_login(&ana);
    let (order_id, order_number) = order(app, &cookie);
    let bob = app.create_account("bob@example.com", false);
    let bob_cookie = app.web_login(&bob);
    let (bob_order, _) = order(app, &bob_cookie);

    // A message about the holder's own order: a number, and a copy by e-mail.
    let (s, sent) = send(
        app,
        &cookie,
        json!({"topic": "data_change", "order_id": order_id, "message": TEXT}),
    );
    assert_eq!(s, 201, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let number = sent["number"].as_i64().expect("a number");
    assert!(number >= 1);
    assert_eq!(sent["order"]["registration_number"], order_number.as_str());
    assert_eq!(sent["state"], "open");
    let copy = mail(app, "ana@example.com", "contact_received");
    assert!(
        copy.contains(&format!("Subject: Am primit mesajul dvs. nr. {number}\n")),
        "{copy}"
    );
    assert!(
        copy.contains(&order_number) && copy.contains("Popescu-Ionescu"),
        "{copy}"
    );
    assert!(
        copy.trim_end()
            .ends_with(&format!("formularul de contact: {}/contact", app.base)),
        "the footer's contact link: {copy}"
    );

    // Another holder's order is not found; nothing is stored for it.
    let (s, out) = send(
        app,
        &cookie,
        json!({"topic": "complaint", "order_id": bob_order, "message": TEXT}),
    );
    assert_eq!(s, 404, "{out}");
    // A topic outside the list, a message too short or too long.
    for body in [
        json!({"topic": "billing", "message": TEXT}),
        json!({"topic": "other", "message": "  too short "}),
        json!({"topic": "other", "message": "x".repeat(5001)}),
        json!({"topic": "other"}),
    ] {
        let (s, out) = send(app, &cookie, body.clone());
        assert_eq!(s, 400, "{body}: {out}");
    }
    // In Romanian for a Romanian browser.
    let r = app
        .client
        .post(app.url("/api/v1/me/contact"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .header("Accept-Language", "ro")
        .json(&json!({"topic": "other", "message": "scurt"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let out: Value = r.json().unwrap();
    assert_eq!(
        out["error_description"],
        "Mesajul trebuie să aibă între 10 și 5000 de caractere"
    );

    // Operators only for the operator's routes.
    let (s, _) = app.call("GET", "/api/v1/operator/contact", Some(&cookie), None);
    assert_eq!(s, 403);
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/operator/contact/{id}/answer"),
        Some(&cookie),
        Some(json!({"answer": "done"})),
    );
    assert_eq!(s, 403);

    // The operator sees the open message with its holder and order, and answers it.
    let op = app.create_operator("oana@example.com");
    let op_cookie = app.web_login(&op);
    let (s, open) = app.call("GET", "/api/v1/operator/contact", Some(&op_cookie), None);
    assert_eq!(s, 200, "{open}");
    let listed = open["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("the message is open")
        .clone();
    assert_eq!(listed["holder"]["email"], "ana@example.com");
    assert_eq!(listed["order"]["registration_number"], order_number.as_str());
    assert_eq!(listed["message"], TEXT);
    // The console's section with its answer form.
    let (s, console) = app.page("/operator", "en", Some(&op_cookie));
    assert_eq!(s, 200);
    for snippet in [
        format!("id=\"contact-{id}\""),
        format!("id=\"answer-{id}\""),
        format!("id=\"answer-text-{id}\""),
        format!("data-api=\"/api/v1/operator/contact/{id}/answer\""),
    ] {
        assert!(console.contains(&snippet), "the console lacks {snippet}");
    }
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/contact/{id}/answer"),
        Some(&op_cookie),
        Some(json!({"answer": "   "})),
    );
    assert_eq!(s, 400, "{out}");
    let answer = "Done: the invoice now says Popescu-Ionescu.";
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/contact/{id}/answer"),
        Some(&op_cookie),
        Some(json!({"answer": answer})),
    );
    assert_eq!((s, out["state"].as_str()), (200, Some("answered")), "{out}");
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/contact/{id}/answer"),
        Some(&op_cookie),
        Some(json!({"answer": answer})),
    );
    assert_eq!(s, 409, "answered once: {out}");
    let (s, out) = app.call(
        "POST",
        "/api/v1/operator/contact/no-such-id/answer",
        Some(&op_cookie),
        Some(json!({"answer": answer})),
    );
    assert_eq!(s, 404, "{out}");
    let (_, open) = app.call("GET", "/api/v1/operator/contact", Some(&op_cookie), None);
    assert!(open["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["id"] != id.as_str()));
    let (_, console) = app.page("/operator", "ro", Some(&op_cookie));
    assert!(!console.contains(&format!("id=\"contact-{id}\"")));

    // The holder reads the answer by e-mail and through the API.
    let answered = mail(app, "ana@example.com", "contact_answered");
    assert!(
        answered.contains(answer) && answered.contains(&format!("Subject: Răspuns la mesajul dvs. nr. {number}\n")),
        "{answered}"
    );
    let (s, mine) = app.call("GET", "/api/v1/me/contact", Some(&cookie), None);
    assert_eq!(s, 200, "{mine}");
    let messages = mine["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{mine}");
    assert_eq!(messages[0]["state"], "answered");
    assert_eq!(messages[0]["answer"], answer);
    assert_eq!(messages[0]["number"], number);
    // Bob sees none of Ana's messages.
    let (_, theirs) = app.call("GET", "/api/v1/me/contact", Some(&bob_cookie), None);
    assert_eq!(theirs["messages"].as_array().unwrap().len(), 0);

    // Five messages an hour: the sixth is refused until the first is an hour old.
    for n in 2..=5 {
        let (s, out) = send(
            app,
            &cookie,
            json!({"topic": "lost_email", "message": format!("Message {n} about my e-mail")}),
        );
        assert_eq!(s, 201, "{out}");
        assert!(out["order"].is_null());
    }
    let (s, out) = send(
        app,
        &cookie,
        json!({"topic": "other", "message": "A sixth message, too many"}),
    );
    assert_eq!(s, 429, "{out}");
    assert!(
        out["error_description"]
            .as_str()
            .unwrap()
            .starts_with("At most 5 messages an hour"),
        "{out}"
    );
    // Another account is not held back by Ana's messages.
    let (s, out) = send(
        app,
        &bob_cookie,
        json!({"topic": "complaint", "message": "Bob's own complaint text"}),
    );
    assert_eq!(s, 201, "{out}");
    assert!(out["number"].as_i64().unwrap() > number + 4, "numbers go on: {out}");

    // An hour later the holder may write again.
    app.advance_clock(3601);
    let cookie = app.web_login(&ana);
    let (s, out) = send(
        app,
        &cookie,
        json!({"topic": "other", "message": "Writing again an hour later"}),
    );
    assert_eq!(s, 201, "{out}");
}

#[test]
fn the_contact_journey_on_sqlite() {
    journey(&TestApp::spawn());
}

#[test]
fn the_contact_journey_on_postgres() {
    let Some(app) = TestApp::spawn_postgres() else {
        return;
    };
    journey(&app);
}

#[test]
fn the_contact_page_in_both_languages_with_and_without_a_login() {
    let app = TestApp::spawn();
    // Without a login: the form that asks for a name and an e-mail address, then for the code.
    for (lang, name, email) in [
        ("ro", "Numele dvs.", "Adresa dvs. de e-mail"),
        ("en", "Your name", "Your e-mail address"),
    ] {
        let (s, body) = app.page("/contact", lang, None);
        assert_eq!(s, 200, "{body}");
        for snippet in [
            name,
            email,
            "id=\"contact-anonymous\"",
            "data-api=\"/api/v1/contact\"",
            "data-next=\"/contact?confirm={token}\"",
            "id=\"contact-name\" name=\"name\"",
            "id=\"contact-email\" name=\"email\"",
            "id=\"contact-message\" name=\"message\"",
            "href=\"/login?next=/contact\"",
        ] {
            assert!(
                body.contains(snippet),
                "/contact ({lang}, no login) lacks {snippet}:\n{body}"
            );
        }
        common::assert_no_inline("/contact", &body);
    }
    let (s, body) = app.page("/contact?confirm=abc123", "ro", None);
    assert_eq!(s, 200);
    assert!(
        body.contains("data-api=\"/api/v1/contact/abc123/confirm\"") && body.contains("Introduceți codul"),
        "{body}"
    );
    let (_, body) = app.page("/contact?confirm=%22%3E%3Cscript%3E", "en", None);
    assert!(
        !body.contains("<script>") && !body.contains("id=\"contact-confirm\""),
        "{body}"
    );

    let ana: Holder = app.create_account("ana@example.com", false);
    let cookie = app.web_login(&ana);
    app.consent(&cookie);
    let (order_id, order_number) = order(&app, &cookie);
    for (lang, title, topic) in [
        ("en", "<h1>Contact</h1>", "Lost e-mail"),
        ("ro", "<h1>Contact</h1>", "E-mail pierdut"),
    ] {
        let (s, body) = app.page("/contact", lang, Some(&cookie));
        assert_eq!(s, 200, "{body}");
        assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{lang}");
        for snippet in [
            title,
            topic,
            "id=\"contact-form\"",
            "data-api=\"/api/v1/me/contact\"",
            "id=\"contact-topic\" name=\"topic\"",
            "id=\"contact-order\" name=\"order_id\"",
            "id=\"contact-message\" name=\"message\"",
            "id=\"contact-submit\"",
            "id=\"contact-none\"",
            &format!("<option value=\"{order_id}\">{order_number}"),
        ] {
            assert!(body.contains(snippet), "/contact ({lang}) lacks {snippet}:\n{body}");
        }
    }
    // The order chosen from an order's page is preselected.
    let (_, body) = app.page(&format!("/contact?order={order_id}"), "en", Some(&cookie));
    assert!(
        body.contains(&format!("<option value=\"{order_id}\" selected>")),
        "{body}"
    );

    // After sending, the page says the number and lists the message.
    let (s, sent) = send(
        &app,
        &cookie,
        json!({"topic": "complaint", "order_id": order_number, "message": "The <b>invoice</b> is wrong."}),
    );
    assert_eq!(s, 201, "the order may be named by its registration number: {sent}");
    let number = sent["number"].as_i64().unwrap();
    let (s, body) = app.page(&format!("/contact?sent={number}"), "ro", Some(&cookie));
    assert_eq!(s, 200);
    for snippet in [
        "id=\"contact-sent\"".to_owned(),
        format!("<strong>#{number}</strong>"),
        format!("id=\"message-{number}\""),
        "Reclamație".to_owned(),
        "În așteptarea răspunsului".to_owned(),
        "The &lt;b&gt;invoice&lt;&#x2f;b&gt; is wrong.".to_owned(),
    ] {
        assert!(body.contains(&snippet), "/contact lacks {snippet}:\n{body}");
    }

    // Every e-mail's footer carries the contact link (here the order's e-mail).
    let placed = mail(&app, "ana@example.com", "order_placed");
    assert!(
        placed.contains("automat") && placed.trim_end().ends_with("/contact"),
        "{placed}"
    );
}

#[test]
fn the_export_holds_the_messages_and_erasure_blanks_their_texts() {
    let app = TestApp::spawn();
    let account = app.create_account("scrie.noua@example.com", false);
    let cookie = app.web_login(&account);
    let text = "Numele meu s-a schimbat după căsătorie: Popescu-Ionescu.";
    let (s, sent) = send(&app, &cookie, json!({"topic": "data_change", "message": text}));
    assert_eq!(s, 201, "{sent}");
    let (s, export) = app.call("GET", "/api/v1/me/export", Some(&cookie), None);
    assert_eq!(s, 200, "{export}");
    assert_eq!(export["contact_messages"][0]["body"], text, "{export}");
    assert_eq!(export["contact_messages"][0]["topic"], "data_change");

    let (s, out) = app.call(
        "POST",
        "/api/v1/me/erasure",
        Some(&cookie),
        Some(json!({"confirm": true, "password": common::HOLDER_PASSWORD, "totp": app.fresh_totp(&account)})),
    );
    assert_eq!(s, 200, "{out}");
    let operator = app.create_operator("op.contact@example.com");
    let op = app.web_login(&operator);
    let (s, open) = app.call("GET", "/api/v1/operator/contact", Some(&op), None);
    assert_eq!(s, 200, "{open}");
    let message = open["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["number"] == sent["number"])
        .unwrap_or_else(|| panic!("message {} still listed: {open}", sent["number"]));
    assert_eq!(
        message["message"], "erased",
        "the erased person's words are gone: {open}"
    );
}

/// Asks for the code of a message without a login (`POST /api/v1/contact`).
fn anonymous(app: &TestApp, body: Value) -> reqwest::blocking::Response {
    app.client.post(app.url("/api/v1/contact")).json(&body).send().unwrap()
}

fn anonymous_body(email: &str) -> Value {
    json!({"name": "Ana Maria Popescu", "email": email, "topic": "other",
           "message": "I lost my phone and cannot log in to sign the contract."})
}

fn anonymous_journey(app: &TestApp) {
    // Hostile or incomplete input: 400 with a CSC-style error, nothing sent.
    for body in [
        json!({"email": "ana@example.com", "topic": "other", "message": TEXT}),
        json!({"name": "Ana", "email": "not an address", "topic": "other", "message": TEXT}),
        json!({"name": "Ana", "email": "Ana <ana@example.com>", "topic": "other", "message": TEXT}),
        json!({"name": "Ana", "email": "ana@example.com", "topic": "billing", "message": TEXT}),
        json!({"name": "Ana", "email": "ana@example.com", "topic": "other", "message": "short"}),
        json!({"name": "Ana", "email": "ana@example.com", "topic": "other", "message": "x".repeat(5001)}),
        json!({"name": "A".repeat(201), "email": "ana@example.com", "topic": "other", "message": TEXT}),
        json!({"name": "Ana\u{0}", "email": "ana@example.com", "topic": "other", "message": TEXT}),
        json!({"name": "Ana", "email": "ana@example.com", "topic": "other", "message": TEXT, "lang": "fr"}),
        json!(["not", "an", "object"]),
    ] {
        let (s, out) = app.call("POST", "/api/v1/contact", None, Some(body.clone()));
        assert_eq!(s, 400, "{body}: {out}");
        assert!(
            out["error"].is_string() && out["error_description"].is_string(),
            "{out}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/v1/contact"))
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(
        app.messages_to("ana@example.com", 0).is_empty(),
        "no e-mail for a refused message"
    );

    // The message waits for its code: the operators do not see it yet.
    let (s, pending) = app.call("POST", "/api/v1/contact", None, Some(anonymous_body("ana@example.com")));
    assert_eq!(s, 202, "{pending}");
    assert_eq!(pending["status"], "code_sent");
    let token = pending["token"].as_str().unwrap().to_owned();
    let op = app.create_operator("oana@example.com");
    let op_cookie = app.web_login(&op);
    let (_, open) = app.call("GET", "/api/v1/operator/contact", Some(&op_cookie), None);
    assert!(
        open["messages"].as_array().unwrap().is_empty(),
        "not before the code: {open}"
    );
    let mail_with_code = mail(app, "ana@example.com", "contact_code");
    assert!(
        mail_with_code.contains("Subject: Codul pentru trimiterea mesajului"),
        "{mail_with_code}"
    );
    let code = common::code_in(&mail_with_code);
    let wrong = if code == "000000" { "111111" } else { "000000" };

    // A wrong code, an unknown token: refused; the right code records the message once.
    let confirm = |token: &str, code: &str| {
        app.call(
            "POST",
            &format!("/api/v1/contact/{token}/confirm"),
            None,
            Some(json!({"code": code})),
        )
    };
    let (s, out) = confirm(&token, wrong);
    assert_eq!(s, 400, "{out}");
    let (s, out) = confirm("0123456789abcdef", &code);
    assert_eq!(s, 404, "{out}");
    let (s, sent) = confirm(&token, &code);
    assert_eq!(s, 201, "{sent}");
    let number = sent["number"].as_i64().unwrap();
    let (s, out) = confirm(&token, &code);
    assert_eq!(s, 404, "recorded once: {out}");
    let copy = mail(app, "ana@example.com", "contact_received");
    assert!(copy.contains(&format!("nr. {number}")), "{copy}");

    // The operators see it with its sender and age, and answer it by e-mail.
    let (_, open) = app.call("GET", "/api/v1/operator/contact", Some(&op_cookie), None);
    let listed = &open["messages"][0];
    assert_eq!(listed["number"], number);
    assert_eq!(listed["holder"]["email"], "ana@example.com");
    assert_eq!(listed["holder"]["name"], "Ana Maria Popescu");
    assert!(listed["holder"]["id"].is_null(), "{listed}");
    assert_eq!(
        (listed["age_days"].as_i64(), listed["late"].as_bool()),
        (Some(0), Some(false))
    );
    let id = listed["id"].as_str().unwrap();
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/operator/contact/{id}/answer"),
        Some(&op_cookie),
        Some(json!({"answer": "We reset your authenticator: log in with your password."})),
    );
    assert_eq!(s, 200, "{out}");
    let answered = mail(app, "ana@example.com", "contact_answered");
    assert!(answered.contains("We reset your authenticator"), "{answered}");

    // Five wrong codes drop the waiting message.
    let (s, pending) = app.call("POST", "/api/v1/contact", None, Some(anonymous_body("dan@example.com")));
    assert_eq!(s, 202, "{pending}");
    let token = pending["token"].as_str().unwrap();
    let code = common::code_in(&mail(app, "dan@example.com", "contact_code"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(confirm(token, wrong).0, 400);
    }
    let (s, out) = confirm(token, &code);
    assert_eq!(s, 404, "too many wrong codes: {out}");
}

#[test]
fn a_message_without_a_login_is_recorded_only_with_the_code_e_mailed() {
    anonymous_journey(&TestApp::spawn());
}

#[test]
fn a_message_without_a_login_is_recorded_only_with_the_code_e_mailed_on_postgres() {
    let Some(app) = TestApp::spawn_postgres() else {
        return;
    };
    anonymous_journey(&app);
}

#[test]
fn a_burst_without_a_login_hits_the_address_then_the_client_limit_with_retry_after() {
    let app = TestApp::spawn();
    let post = |email: &str| anonymous(&app, anonymous_body(email));
    // Five an hour from one address (as for an account); the sixth is refused, with Retry-After.
    for _ in 0..5 {
        assert_eq!(post("ana@example.com").status(), 202);
    }
    let r = post("ana@example.com");
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let out: Value = r.json().unwrap();
    assert_eq!(out["error"], "too_many_requests", "{out}");
    assert_eq!(app.messages_to("ana@example.com", 5).len(), 5, "no sixth code");
    // Ten an hour from one client, whatever the addresses.
    for n in 0..5 {
        assert_eq!(post(&format!("sender{n}@example.com")).status(), 202);
    }
    let r = post("sender9@example.com");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // An hour later the client may write again.
    app.advance_clock(3601);
    assert_eq!(post("sender9@example.com").status(), 202);
}

#[test]
fn operators_see_late_messages_first_with_their_age() {
    let app = TestApp::spawn();
    let ana = app.create_account("ana@example.com", false);
    let cookie = app.web_login(&ana);
    let (s, first) = send(&app, &cookie, json!({"topic": "complaint", "message": TEXT}));
    assert_eq!(s, 201, "{first}");
    app.advance_clock(31 * 86_400);
    let cookie = app.web_login(&ana);
    let (s, second) = send(
        &app,
        &cookie,
        json!({"topic": "other", "message": "A newer message, not late"}),
    );
    assert_eq!(s, 201, "{second}");
    let op = app.create_operator("oana@example.com");
    let op_cookie = app.web_login(&op);
    let (_, open) = app.call("GET", "/api/v1/operator/contact", Some(&op_cookie), None);
    let list = open["messages"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{open}");
    assert_eq!(list[0]["id"], first["id"]);
    assert_eq!(
        (list[0]["late"].as_bool(), list[0]["age_days"].as_i64()),
        (Some(true), Some(31))
    );
    assert_eq!(
        (list[1]["late"].as_bool(), list[1]["age_days"].as_i64()),
        (Some(false), Some(0))
    );
    let (_, console) = app.page("/operator", "ro", Some(&op_cookie));
    assert!(
        console.contains("31 zile") && console.contains("Întârziat"),
        "the console shows the age"
    );
}
