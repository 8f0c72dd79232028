//! Notifications #4 and #6 of product rules §12, end to end through the real server and its file outbox, judged by
//! `pdftotext` (poppler) for the attached documents:
//! - #6: the payment sends the order-accepted e-mail with the order note, the order conditions and the terms
//!   attached as PDFs (the versions the holder accepted, in their language); the outbox keeps no copy once sent;
//! - #4: an identification provider has Parafa send a session code by SMS to the holder's phone, through a signed
//!   hook, within the per-session limits.
//!
//! The e-mail over SMTP, as a MIME multipart read by Python's `email` package, is in `notify.rs`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{self, Backend, TestApp};

pub const EMAIL: &str = "stefania@example.ro";
const PHONE: &str = "+40712345678";
const ID_SECRET: &str = "identity-secret-for-notices";

fn invoice_with_diacritics() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ștefania Țăranu-Îonescu", "country": "România",
           "county": "Argeș", "locality": "Curtea de Argeș", "street": "Strada Mănăstirii", "number": "7",
           "building": "-", "entrance": "-", "apartment": "-", "postal_code": "115300"})
}

/// A dev-mode server on SQLite with a holder logged in; returns (app, cookie).
pub fn holder(extra: &[(&str, &str)]) -> (TestApp, String) {
    holder_on(Backend::Sqlite, extra)
}

/// [`holder`] on a backend.
fn holder_on(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, String) {
    let mut env = vec![("PARAFA_DEV", "1"), ("PARAFA_IDENTITY_CALLBACK_SECRET", ID_SECRET)];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_on(backend, &env);
    let h = app.create_account(EMAIL, true);
    let cookie = app.web_login(&h);
    (app, cookie)
}

/// Pays an order and starts its identification; returns the session link's token (what a provider gets).
fn identification_session(app: &TestApp, cookie: &str) -> String {
    let order = paid_order(app, cookie);
    let id = order["id"].as_str().unwrap();
    let (s, started) = app.call(
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        Some(cookie),
        None,
    );
    assert_eq!(s, 201, "{started}");
    let url = started["url"].as_str().unwrap();
    url[url.find("/identity/sandbox/").unwrap() + "/identity/sandbox/".len()..].to_owned()
}

/// Places an order (package 1) and pays it in the sandbox; returns the order as the API shows it after payment.
pub fn paid_order(app: &TestApp, cookie: &str) -> Value {
    let (s, order) = app.call(
        "POST",
        "/api/v1/orders",
        Some(cookie),
        Some(
            json!({"kind": "new", "package": 1, "invoice": invoice_with_diacritics(),
                    "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true}}),
        ),
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
    paid
}

/// The file outbox's message of `kind` to `recipient` (waits up to 10 s), and its attachments' paths.
fn outbox_message(app: &TestApp, recipient: &str, kind: &str) -> (String, Vec<PathBuf>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dir = app.data_dir.join("outbox");
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "txt"));
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.starts_with(&format!("To: {recipient}\n")) && text.contains(&format!("\nKind: {kind}\n")) {
                let attached = path.with_extension("files");
                let names: Vec<PathBuf> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("Attachment: "))
                    .map(|l| attached.join(l.split(" (").next().unwrap()))
                    .collect();
                return (text, names);
            }
        }
        assert!(std::time::Instant::now() < deadline, "no {kind} message to {recipient}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn pdftotext(path: &Path) -> String {
    common::run_ok("pdftotext", &["-enc", "UTF-8", path.to_str().unwrap(), "-"])
}

/// #6: paying sends "order accepted" with the order note, the order conditions and the terms as PDFs; the note says
/// the order, the buyer with every diacritic, the amount paid and the versions accepted; the other two are, byte for
/// byte, the versions the site serves; and once sent, the database keeps no copy of them.
#[test]
fn payment_sends_the_order_accepted_email_with_the_order_documents_attached() {
    let (app, cookie) = holder(&[]);
    let order = paid_order(&app, &cookie);
    let number = order["registration_number"].as_str().unwrap();

    let (mail, files) = outbox_message(&app, EMAIL, "order_accepted");
    assert!(
        mail.contains(&format!("Subject: Comanda {number}: plata a fost primită")),
        "{mail}"
    );
    assert!(
        mail.contains("pierdeți dreptul de retragere")
            && mail.contains(&format!("/orders/{}", order["id"].as_str().unwrap())),
        "the withdrawal right and the next step: {mail}"
    );
    assert!(mail.contains("(ora României)"), "the payment time in Bucharest: {mail}");
    let body = mail.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
    assert!(
        !body.contains("T0") && !body.contains("T1") && !body.contains("T2") && !body.contains("Z "),
        "no raw RFC 3339 time in the e-mail: {body}"
    );
    assert_eq!(files.len(), 3, "order note, order conditions, terms: {mail}");
    for f in &files {
        assert!(f.exists(), "{} was written", f.display());
        assert!(
            std::fs::read(f).unwrap().starts_with(b"%PDF-"),
            "{} is a PDF",
            f.display()
        );
    }

    // The order note, read by poppler.
    let note = pdftotext(&files[0]);
    let total = order["price"]["total_ron_bani"].as_i64().unwrap();
    let paid_ro = format!("{},{:02} RON", total / 100, total % 100);
    for expected in [
        "Notă de comandă",
        number,
        "Ștefania Țăranu-Îonescu",
        "Strada Mănăstirii 7",
        "Curtea de Argeș",
        paid_ro.as_str(),
        "sandbox:",
        "pierd dreptul de retragere",
    ] {
        assert!(note.contains(expected), "the order note says {expected:?}:\n{note}");
    }

    // The two trust documents are the versions the site serves under the accepted version numbers.
    for (file, doc) in [(&files[1], "order-conditions"), (&files[2], "terms")] {
        let name = file.file_name().unwrap().to_str().unwrap();
        let version = name
            .strip_prefix(&format!("{}-{doc}-", &name[..1]))
            .and_then(|v| v.strip_suffix("-ro.pdf"))
            .unwrap_or_else(|| panic!("{name} names {doc}, its version and the language"));
        let served = app.get(&format!("/legal/{doc}/v/{version}/{doc}-ro.pdf"));
        assert_eq!(served.status(), 200, "/legal/{doc}/v/{version}/{doc}-ro.pdf");
        assert_eq!(
            served.bytes().unwrap().to_vec(),
            std::fs::read(file).unwrap(),
            "{doc} attached as served"
        );
    }

    // Once handed over, the attachments are gone from the database.
    let db = app.data_dir.join("parafa.db");
    let left = common::run_ok(
        "sqlite3",
        &[db.to_str().unwrap(), "SELECT COUNT(*) FROM outbox_attachments"],
    );
    assert_eq!(left.trim(), "0", "no copy of the documents kept after sending");
}

/// A payment callback delivered twice sends one e-mail; a failed payment sends none.
#[test]
fn one_payment_sends_one_order_accepted_email_and_a_failed_one_none() {
    let (app, cookie) = holder(&[]);
    let (s, order) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&cookie),
        Some(
            json!({"kind": "new", "package": 1, "invoice": invoice_with_diacritics(),
                    "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true}}),
        ),
    );
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(&cookie),
        Some(json!({"outcome": "fail"})),
    );
    assert_eq!(s, 200);
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(&cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(s, 200);
    outbox_message(&app, EMAIL, "order_accepted");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let accepted = app
        .messages_to(EMAIL, 1)
        .iter()
        .filter(|m| m.contains("\nKind: order_accepted\n"))
        .count();
    assert_eq!(accepted, 1, "one e-mail for one payment, none for the failed attempt");
}

fn sign(app: &TestApp, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let t = app.now();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(ID_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn ask_sms(app: &TestApp, signature: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/v1/identity/sms"))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("X-Identity-Signature", s);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// #4: the provider's signed request sends the session code to the phone on the account, in the holder's language;
/// an unsigned or forged one, a bad code, an unknown or finished session send nothing; a session gets at most three,
/// a minute apart.
#[test]
fn the_identification_provider_has_the_session_code_sent_by_sms_within_limits() {
    let (app, cookie) = holder(&[]);
    let token = &identification_session(&app, &cookie);
    let sms_count = || {
        std::fs::read_dir(app.data_dir.join("outbox"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\nKind: identification_sms_code\n"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };

    let body = json!({"session": token, "code": "482913"}).to_string();
    assert_eq!(ask_sms(&app, None, &body).0, 401, "unsigned");
    assert_eq!(ask_sms(&app, Some("t=1,v1=00"), &body).0, 401, "forged");
    let bad = json!({"session": token, "code": "48a9"}).to_string();
    let (s, out) = ask_sms(&app, Some(&sign(&app, &bad)), &bad);
    assert_eq!((s, out["error"].as_str()), (400, Some("invalid_request")), "{out}");
    let unknown = json!({"session": "not-a-session", "code": "482913"}).to_string();
    assert_eq!(ask_sms(&app, Some(&sign(&app, &unknown)), &unknown).0, 404);

    let (s, out) = ask_sms(&app, Some(&sign(&app, &body)), &body);
    assert_eq!(s, 202, "{out}");
    assert_eq!(out["phone_ending"], "78");
    assert_eq!(out["sms_left"], 2);
    let sms = app.message(PHONE, 1);
    assert!(sms.contains("Medium: sms") && sms.contains("482913"), "{sms}");
    assert!(sms.contains("codul sesiunii de identificare video"), "Romanian: {sms}");

    // Too soon, then a minute later the second and third, then no more.
    let (s, out) = ask_sms(&app, Some(&sign(&app, &body)), &body);
    assert_eq!((s, out["error"].as_str()), (429, Some("too_many_requests")), "{out}");
    for left in [1, 0] {
        app.advance_clock(61);
        let (s, out) = ask_sms(&app, Some(&sign(&app, &body)), &body);
        assert_eq!((s, out["sms_left"].as_i64()), (202, Some(left)), "{out}");
    }
    app.advance_clock(61);
    let (s, out) = ask_sms(&app, Some(&sign(&app, &body)), &body);
    assert_eq!(s, 429, "{out}");
    assert!(out["error_description"].as_str().unwrap().contains('3'), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(sms_count(), 3, "three SMS in all");

    // A finished session gets none.
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/identity/sandbox/{token}"),
        None,
        Some(json!({"outcome": "interrupt"})),
    );
    assert_eq!(s, 200);
    app.advance_clock(61);
    assert_eq!(ask_sms(&app, Some(&sign(&app, &body)), &body).0, 410);
}

/// Twenty parallel requests for one session, on PostgreSQL, send one SMS: the limits hold under a race.
#[test]
fn parallel_sms_requests_for_one_session_send_one_on_postgres() {
    let Some(pg) = common::FreshPostgres::create() else {
        return;
    };
    let (app, cookie) = holder_on(Backend::Postgres(pg), &[]);
    let token = &identification_session(&app, &cookie);
    let body = json!({"session": token, "code": "771104"}).to_string();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| ask_sms(&app, Some(&sign(&app, &body)), &body).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202 || *s == 429), "{statuses:?}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sms = app.messages_to(PHONE, 1);
    assert_eq!(sms.iter().filter(|m| m.contains("771104")).count(), 1);
}
