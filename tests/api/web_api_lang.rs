//! The JSON API's error descriptions in the page's language (src/web/api_lang.rs): Romanian when the request's
//! `parafa_lang` cookie or `Accept-Language` asks for it, English otherwise; `/csc` and the other routes are left
//! alone; the status and the `error` code never change.

use crate::common;

use common::TestApp;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};

/// An answer: status, `Content-Length` (if sent), the parsed body, the raw body's length.
struct Answer {
    status: u16,
    length: Option<usize>,
    json: Value,
    raw_len: usize,
}

fn answer(r: reqwest::blocking::Response) -> Answer {
    let status = r.status().as_u16();
    let length = r
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = r.bytes().expect("body");
    let json =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        length,
        json,
        raw_len: bytes.len(),
    }
}

/// An anonymous login with a wrong password, with the given extra headers.
fn wrong_login(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": email, "password": "not the password at all"}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().expect("login"))
}

const WRONG_EN: &str = "the e-mail or the password is wrong";
const WRONG_RO: &str = "adresa de e-mail sau parola este greșită";

#[test]
fn a_failed_login_is_in_romanian_only_when_the_browser_asks_for_it() {
    let app = TestApp::spawn();

    let ro = wrong_login(&app, "a@example.com", &[("Accept-Language", "ro-RO,ro;q=0.9,en;q=0.8")]);
    assert_eq!(ro.status, 401);
    assert_eq!(ro.json["error"], "authentication_error", "the code is not translated");
    assert_eq!(ro.json["error_description"], WRONG_RO, "{}", ro.json);
    assert_eq!(ro.length, Some(ro.raw_len), "Content-Length is the translated body's");

    let en = wrong_login(&app, "b@example.com", &[("Accept-Language", "en-GB,en;q=0.9")]);
    assert_eq!(
        (en.status, en.json["error"].as_str()),
        (401, Some("authentication_error"))
    );
    assert_eq!(en.json["error_description"], WRONG_EN);

    // API clients that say nothing (curl, scripts, the other tests) keep getting English.
    let none = wrong_login(&app, "c@example.com", &[]);
    assert_eq!(
        (none.status, none.json["error"].as_str()),
        (401, Some("authentication_error"))
    );
    assert_eq!(none.json["error_description"], WRONG_EN);

    // The language switch's cookie wins over the browser's language, both ways.
    let cookie = wrong_login(
        &app,
        "d@example.com",
        &[("Cookie", "parafa_lang=ro"), ("Accept-Language", "en")],
    );
    assert_eq!(cookie.status, 401);
    assert_eq!(cookie.json["error_description"], WRONG_RO);
    let cookie = wrong_login(
        &app,
        "e@example.com",
        &[("Cookie", "parafa_lang=en"), ("Accept-Language", "ro")],
    );
    assert_eq!(cookie.json["error_description"], WRONG_EN);
}

#[test]
fn the_answers_of_the_error_handlers_and_of_the_csrf_check_are_translated_on_the_api_only() {
    let app = TestApp::spawn();
    let get = |path: &str, lang: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(l) = lang {
            req = req.header("Accept-Language", l);
        }
        answer(req.send().expect("GET"))
    };

    // The fallback route's 404 under /api/v1.
    let a = get("/api/v1/no-such-thing", Some("ro"));
    assert_eq!((a.status, a.json["error"].as_str()), (404, Some("not_found")));
    assert_eq!(a.json["error_description"], "această adresă nu există");

    // CSC clients expect the specification's English whatever their language.
    let ro = get("/csc/v2/no-such-method", Some("ro"));
    let plain = get("/csc/v2/no-such-method", None);
    assert_eq!(ro.status, plain.status);
    assert_eq!(ro.json, plain.json);
    assert_eq!(ro.json["error_description"], "no such route", "{}", ro.json);
    let r = app
        .client
        .post(app.url("/csc/v2/credentials/list"))
        .bearer_auth("not-a-token")
        .header("Accept-Language", "ro")
        .json(&json!({}))
        .send()
        .unwrap();
    let csc = answer(r);
    let r = app
        .client
        .post(app.url("/csc/v2/credentials/list"))
        .bearer_auth("not-a-token")
        .json(&json!({}))
        .send()
        .unwrap();
    let csc_plain = answer(r);
    assert!(csc.status >= 400, "{}", csc.json);
    assert_eq!((csc.status, &csc.json), (csc_plain.status, &csc_plain.json));

    // Other routes (the static files' JSON 404) are not the API's.
    let s = get("/static/no-such-file.js", Some("ro"));
    assert_eq!(s.status, 404);
    assert_eq!(s.json["error_description"], "no such file");

    // The security check's refusal happens before the handlers: a state-changing call with a session cookie but
    // without its CSRF token.
    let r = app
        .client
        .post(app.url("/api/v1/orders"))
        .header("Cookie", "parafa_session=whatever; parafa_lang=ro")
        .json(&json!({}))
        .send()
        .unwrap();
    let csrf = answer(r);
    assert_eq!((csrf.status, csrf.json["error"].as_str()), (403, Some("access_denied")));
    assert_eq!(
        csrf.json["error_description"],
        "tokenul de securitate al formularului lipsește sau a expirat: reîncărcați pagina și încercați din nou"
    );
}

/// A one-page PDF whose form is an XFA ("smart") form.
fn xfa_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 4 0 R >> >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>".to_owned(),
        format!("<< /Length {} >>\nstream\n<xdp:xdp/>\nendstream", "<xdp:xdp/>".len()),
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[test]
fn an_xfa_form_is_refused_with_the_rules_romanian_wording() {
    let app = TestApp::spawn();
    let h = app.create_holder("webro@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let upload = |lang: Option<&str>| {
        let form = Form::new().part("files", Part::bytes(xfa_pdf()).file_name("declarație 230.pdf"));
        let mut req = app
            .client
            .post(app.url("/api/v1/sign-jobs"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", common::csrf_for(&cookie))
            .multipart(form);
        if let Some(l) = lang {
            req = req.header("Accept-Language", l);
        }
        answer(req.send().unwrap())
    };
    let ro = upload(Some("ro"));
    let en = upload(None);
    assert_eq!((ro.status, en.status), (400, 400), "{} {}", ro.json, en.json);
    assert_eq!(ro.json["error"], en.json["error"]);
    let (ro, en) = (
        ro.json["error_description"].as_str().unwrap_or_default().to_owned(),
        en.json["error_description"].as_str().unwrap_or_default().to_owned(),
    );
    assert!(
        en.ends_with(
            ": Smart PDF forms cannot be signed here; sign them locally in a PDF reader with the desktop virtual token."
        ),
        "{en}"
    );
    assert!(
        ro.ends_with(
            ": Formularele PDF inteligente nu se pot semna în platformă; semnați-le local, într-un cititor PDF, cu \
             tokenul virtual."
        ),
        "{ro}"
    );
    // The file's name, before the message, is the same in both.
    assert_eq!(ro.split_once(": ").map(|p| p.0), en.split_once(": ").map(|p| p.0));
}
