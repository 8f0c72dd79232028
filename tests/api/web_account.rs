//! The account pages over HTTP: each page is fetched as a browser would, its forms' `data-api` and field names are
//! read from the HTML, and the API is then called the way `app.js` sends those forms (JSON of the named fields,
//! the session's CSRF token), with the codes read from the outbox. Enrolment → invitation → password → first
//! login (consents, the 2FA choice, the mandatory date); the pairing page never carries the secret; recovery;
//! settings show the account's own data; both languages; logged-out visitors are sent to the login page.

use crate::common;

use common::{code_in, csrf_for, totp_code, TestApp, HOLDER_PASSWORD};
use serde_json::{json, Value};

const EMAIL: &str = "elena.dumitru@example.com";
const PHONE: &str = "+40733444555";
const PASSWORD: &str = "Toamna frunzele cad încet pe Dâmbovița 7";

/// A client that does not follow redirects (to see the 303s).
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Got {
    status: u16,
    location: String,
    body: String,
}

fn page(app: &TestApp, path: &str, lang: &str, cookie: Option<&str>) -> Got {
    let (status, location, body) = app.page_unfollowed(path, lang, cookie);
    Got { status, location, body }
}

/// The HTML of the element that starts with `id="…"`, up to its closing `</tag>` (forms and sections do not nest
/// in these pages).
fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let start = html[..at].rfind('<').expect("tag start");
    let tag: String = html[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let end = html[start..]
        .find(&format!("</{tag}>"))
        .map_or(html.len(), |e| start + e + tag.len() + 3);
    &html[start..end]
}

/// An attribute of the element's opening tag.
fn attr(element: &str, name: &str) -> Option<String> {
    let open = &element[..element.find('>').expect("tag end")];
    let key = format!(" {name}=\"");
    open.find(&key).map(|i| {
        let rest = &open[i + key.len()..];
        rest[..rest.find('"').expect("quote")]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    })
}

/// The form's `data-api` and the names of the fields `app.js` would send (not `data-skip`).
fn form(html: &str, id: &str) -> (String, Vec<String>) {
    let f = element(html, id);
    assert!(f.starts_with("<form"), "#{id} is not a form: {f}");
    let api = attr(f, "data-api").unwrap_or_else(|| panic!("#{id} has no data-api"));
    let mut names = Vec::new();
    let mut rest = f;
    while let Some(i) = rest.find(" name=\"") {
        let tag_start = rest[..i].rfind('<').unwrap_or(0);
        let tag_end = i + rest[i..].find('>').unwrap_or(0);
        let name_start = i + 7;
        let name = &rest[name_start..name_start + rest[name_start..].find('"').unwrap()];
        if !rest[tag_start..tag_end].contains("data-skip") {
            names.push(name.to_owned());
        }
        rest = &rest[name_start..];
    }
    (api, names)
}

fn has_fields(html: &str, id: &str, api: &str, fields: &[&str]) {
    let (got_api, names) = form(html, id);
    assert_eq!(got_api, api, "#{id}'s data-api");
    for f in fields {
        assert!(names.iter().any(|n| n == f), "#{id} has no field {f}: {names:?}");
    }
}

/// POSTs a form's JSON the way app.js does: with the CSRF header when there is a session.
fn send(app: &TestApp, api: &str, cookie: Option<&str>, body: Value) -> (u16, Value, Option<String>) {
    let mut req = client()
        .post(app.url(api))
        .json(&body)
        .header("Accept", "application/json");
    if let Some(c) = cookie {
        req = req.header("Cookie", c).header("X-CSRF-Token", csrf_for(c));
    }
    let r = req.send().expect("POST");
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, r.json().unwrap_or(Value::Null), cookie)
}

fn visible(html: &str, id: &str) -> bool {
    let class = attr(element(html, id), "class").unwrap_or_default();
    !class.split_whitespace().any(|c| c == "hidden")
}

/// The token after `prefix` in a message.
fn link_token(mail: &str, prefix: &str) -> String {
    let at = mail.find(prefix).unwrap_or_else(|| panic!("no {prefix} in {mail}")) + prefix.len();
    mail[at..].split_whitespace().next().unwrap().to_owned()
}

/// The code in the next message to `to`, after `send` (which makes the server send it).
fn next_code(app: &TestApp, to: &str, send: impl FnOnce()) -> String {
    let before = app.messages_to(to, 0).len();
    send();
    code_in(&app.message(to, before + 1))
}

fn login(app: &TestApp, email: &str, password: &str) -> String {
    let html = page(app, "/login", "en", None).body;
    let (api, names) = form(&html, "login");
    assert_eq!(api, "/api/v1/session");
    assert!(names.contains(&"email".to_owned()) && names.contains(&"password".to_owned()));
    let (s, out, cookie) = send(
        app,
        &api,
        None,
        json!({"email": email, "password": password, "remember_me": false}),
    );
    assert_eq!(s, 200, "{out}");
    cookie.expect("session cookie")
}

#[test]
fn enrolment_activation_and_first_login_through_the_pages() {
    let app = TestApp::spawn();

    // Enrolment: the privacy notice is on the page, the form goes to the enrolment API.
    let html = page(&app, "/enrol", "en", None).body;
    assert!(
        html.contains("Privacy notice on the processing of personal data"),
        "{html}"
    );
    has_fields(
        &html,
        "enrol",
        "/api/v1/enrolments",
        &[
            "given_name",
            "surname",
            "email",
            "phone",
            "privacy_acknowledged",
            "lang",
        ],
    );
    assert!(element(&html, "enrol-sent").contains("Check your e-mail"));
    let (api, _) = form(&html, "enrol");
    let (s, out, _) = send(
        &app,
        &api,
        None,
        json!({"given_name": "Elena", "surname": "Dumitru", "email": EMAIL, "phone": "+40 733 444 555",
               "privacy_acknowledged": true, "lang": "en"}),
    );
    assert_eq!(s, 202, "{out}");

    // The e-mail's link is the invitation page; the older /activate/ address of links already sent leads there.
    let token = link_token(&app.message(EMAIL, 1), "/invitations/");
    let r = page(&app, &format!("/activate/{token}"), "en", None);
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, format!("/invitations/{token}").as_str())
    );
    let path = format!("/invitations/{token}");
    let html = page(&app, &path, "en", None).body;
    assert!(
        html.contains("Elena Dumitru") && html.contains(EMAIL) && html.contains("…55"),
        "{html}"
    );
    assert!(visible(&html, "step-phone") && !visible(&html, "step-code") && !visible(&html, "step-password"));
    has_fields(
        &html,
        "invitation-phone",
        &format!("/api/v1/invitations/{token}/phone"),
        &["phone"],
    );
    let resend = element(&html, "invitation-resend");
    assert!(resend.contains("data-countdown=") && resend.contains("data-countdown-for=\"#invitation-resend-button\""));

    // Step 1: the phone again → an SMS code, and the resend cool-down in the answer.
    let (api, _) = form(&html, "invitation-phone");
    let (s, out, _) = send(&app, &api, None, json!({"phone": PHONE}));
    assert_eq!(s, 202, "{out}");
    assert_eq!(out["resend_after"], 1800, "{out}");
    let code = code_in(&app.message(PHONE, 1));

    // A reload shows step 2; the code goes to the form's API.
    let html = page(&app, &path, "ro", None).body;
    assert!(html.contains("<html lang=\"ro\">") && html.contains("Codul primit prin SMS"));
    assert!(!visible(&html, "step-phone") && visible(&html, "step-code"));
    has_fields(
        &html,
        "invitation-code",
        &format!("/api/v1/invitations/{token}/phone/verify"),
        &["code"],
    );
    let (api, _) = form(&html, "invitation-code");
    let (s, out, _) = send(&app, &api, None, json!({"code": code}));
    assert_eq!(s, 200, "{out}");

    // Step 3: the password (the confirmation is not sent), then the link is used up.
    let html = page(&app, &path, "en", None).body;
    assert!(visible(&html, "step-password"));
    let (api, names) = form(&html, "invitation-password");
    assert_eq!(api, format!("/api/v1/invitations/{token}/password"));
    assert_eq!(names, vec!["password"], "only the password is sent");
    assert!(element(&html, "invitation-password").contains("data-strength"));
    let (s, out, _) = send(&app, &api, None, json!({"password": "short"}));
    assert_eq!(s, 400, "{out}");
    let (s, out, _) = send(&app, &api, None, json!({"password": PASSWORD}));
    assert_eq!(s, 200, "{out}");
    assert!(element(&html, "invitation-done").contains("href=\"/login\""));
    let used = page(&app, &path, "en", None);
    assert_eq!(used.status, 410);
    assert!(
        used.body.contains("This activation link was already used: log in"),
        "{}",
        used.body
    );

    // First login: the "Allow" screen (the privacy notice was acknowledged at enrolment), then the 2FA choice.
    let cookie = login(&app, EMAIL, PASSWORD);
    let r = page(&app, "/after-login?next=/settings", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/consent?next=/settings"));
    let html = page(&app, "/consent?next=/settings", "en", Some(&cookie)).body;
    has_fields(&html, "consent-access", "/api/v1/me/consents", &["kind", "granted"]);
    let (api, _) = form(&html, "consent-access");
    let (s, out, _) = send(&app, &api, Some(&cookie), json!({"kind": "access", "granted": true}));
    assert_eq!(s, 200, "{out}");
    let r = page(&app, "/consent?next=/settings", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/after-login?next=/settings"));
    let r = page(&app, "/after-login?next=/settings", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/2fa?next=/settings"));

    let html = page(&app, "/2fa?next=/settings", "en", Some(&cookie)).body;
    assert_eq!(attr(element(&html, "setup-2fa"), "href").as_deref(), Some("/pairing"));
    has_fields(&html, "postpone-date", "/api/v1/me/2fa/postpone", &["until"]);
    has_fields(&html, "postpone-next-login", "/api/v1/me/2fa/postpone", &["next_login"]);
    has_fields(&html, "postpone-never", "/api/v1/me/2fa/postpone", &["never"]);
    assert_eq!(
        attr(element(&html, "postpone-never"), "data-next").as_deref(),
        Some("/settings")
    );
    let (s, out, _) = send(&app, "/api/v1/me/2fa/postpone", Some(&cookie), json!({"never": true}));
    assert_eq!(s, 200, "{out}");
    let r = page(&app, "/after-login?next=/settings", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/settings"));
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    assert!(html.contains(EMAIL) && html.contains(PHONE) && html.contains("Elena Dumitru"));

    // Past the mandatory date only the pairing is offered, and the API's refusal is what a postponement gets.
    let mandatory = 1_798_754_400; // 2027-01-01T00:00:00+02:00
    if app.now() < mandatory {
        app.advance_clock(mandatory - app.now() + 3600);
    }
    let cookie = login(&app, EMAIL, PASSWORD);
    let r = page(&app, "/after-login?next=/", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/2fa?next=/"));
    let html = page(&app, "/2fa?next=/", "en", Some(&cookie)).body;
    assert!(html.contains("id=\"tfa-required\"") && html.contains("id=\"setup-2fa\""));
    assert!(!html.contains("id=\"postpone-never\"") && !html.contains("id=\"postpone-date\""));
    let (s, out, _) = send(&app, "/api/v1/me/2fa/postpone", Some(&cookie), json!({"never": true}));
    assert_eq!(s, 403, "{out}");
    assert!(
        out["error_description"].as_str().unwrap().contains("mandatory"),
        "{out}"
    );
}

#[test]
fn the_pairing_page_never_carries_the_secret() {
    let app = TestApp::spawn();
    let holder = app.create_account("petru.stan@example.com", false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);

    let html = page(&app, "/pairing", "en", Some(&cookie)).body;
    has_fields(&html, "pairing-start", "/api/v1/me/totp/pairing", &[]);
    has_fields(
        &html,
        "pairing-sms",
        "/api/v1/me/totp/pairing/sms",
        &["code", "app_installed"],
    );
    has_fields(&html, "pairing-activate", "/api/v1/me/totp/pairing/activate", &["code"]);
    assert_eq!(
        element(&html, "totp-secret"),
        "<code id=\"totp-secret\" class=\"secret\"></code>"
    );
    assert!(html.contains("id=\"pairing-code\"") && html.contains("id=\"totp-uri\""));
    assert!(attr(element(&html, "totp-save"), "download").is_some());
    assert!(!html.contains("otpauth://"));

    let code = next_code(&app, "+40712345678", || {
        let (s, out, _) = send(&app, "/api/v1/me/totp/pairing", Some(&cookie), json!({}));
        assert_eq!(s, 202, "{out}");
    });
    let (s, secret, _) = send(
        &app,
        "/api/v1/me/totp/pairing/sms",
        Some(&cookie),
        json!({"code": code, "app_installed": true}),
    );
    assert_eq!(s, 200, "{secret}");
    let b32 = secret["secret"].as_str().unwrap();
    assert!(secret["qr_png"].as_str().is_some_and(|q| !q.is_empty()));

    // A reload shows the empty steps again: the secret is nowhere in the HTML.
    let r = client()
        .get(app.url("/pairing"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().unwrap();
    assert!(!html.contains(b32) && !html.contains("otpauth://"), "{html}");

    // The first code activates the pairing and ends the session.
    let (s, out, _) = send(
        &app,
        "/api/v1/me/totp/pairing/activate",
        Some(&cookie),
        json!({"code": totp_code(b32, app.now())}),
    );
    assert_eq!(s, 200, "{out}");
    let r = page(&app, "/pairing", "en", Some(&cookie));
    assert_eq!((r.status, r.location.as_str()), (303, "/login?next=/pairing"));
}

#[test]
fn settings_show_the_account_and_point_at_its_apis() {
    let app = TestApp::spawn();
    let holder = app.create_account("ana.popescu@example.com", false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    for (lang, words) in [("en", "Change the password"), ("ro", "Schimbarea parolei")] {
        let html = page(&app, "/settings", lang, Some(&cookie)).body;
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")) && html.contains(words),
            "{html}"
        );
        assert!(element(&html, "settings-email").contains("ana.popescu@example.com"));
        assert!(element(&html, "settings-phone").contains("+40712345678"));
        assert!(element(&html, "settings-name").contains("Ana Maria Popescu"));
    }
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    assert!(html.contains("<title>Settings · Parafa</title>"), "{html}");
    assert_eq!(html.matches("id=\"erasure-done\"").count(), 1);
    has_fields(&html, "password-change", "/api/v1/me/password", &["current", "new"]);
    let (_, names) = form(&html, "password-change");
    assert_eq!(names, vec!["current", "new"], "the confirmation is not sent");
    has_fields(&html, "phone-email-code-form", "/api/v1/me/phone/email-code", &[]);
    has_fields(
        &html,
        "phone-email-verify",
        "/api/v1/me/phone/email-code/verify",
        &["code"],
    );
    has_fields(&html, "phone-new", "/api/v1/me/phone", &["phone"]);
    has_fields(&html, "phone-sms-verify", "/api/v1/me/phone/verify", &["code"]);
    has_fields(&html, "consent-marketing", "/api/v1/me/consents", &["kind", "granted"]);
    has_fields(&html, "erasure", "/api/v1/me/erasure", &["confirm", "password", "totp"]);
    assert!(attr(element(&html, "erasure-submit"), "data-confirm").is_some());
    let export = element(&html, "export-link");
    assert_eq!(attr(export, "href").as_deref(), Some("/api/v1/me/export"));
    assert!(attr(export, "download").is_some());
    assert_eq!(attr(element(&html, "totp-reset"), "href").as_deref(), Some("/pairing"));

    // The marketing consent as the form sends it shows in the table.
    let (s, out, _) = send(
        &app,
        "/api/v1/me/consents",
        Some(&cookie),
        json!({"kind": "marketing", "granted": true}),
    );
    assert_eq!(s, 200, "{out}");
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    assert!(html.contains("id=\"marketing-granted\" name=\"granted\" type=\"checkbox\" checked"));

    // The phone change as the steps send it: e-mail code → new number → SMS code; the session ends.
    let code = next_code(&app, "ana.popescu@example.com", || {
        let (s, out, _) = send(&app, "/api/v1/me/phone/email-code", Some(&cookie), json!({}));
        assert_eq!(s, 202, "{out}");
    });
    let (s, out, _) = send(
        &app,
        "/api/v1/me/phone/email-code/verify",
        Some(&cookie),
        json!({"code": code}),
    );
    assert_eq!(s, 200, "{out}");
    let (s, out, _) = send(
        &app,
        "/api/v1/me/phone",
        Some(&cookie),
        json!({"phone": "+40799888777"}),
    );
    assert_eq!(s, 202, "{out}");
    let code = code_in(&app.message("+40799888777", 1));
    let (s, out, _) = send(&app, "/api/v1/me/phone/verify", Some(&cookie), json!({"code": code}));
    assert_eq!(s, 200, "{out}");
    let cookie = login(&app, "ana.popescu@example.com", HOLDER_PASSWORD);
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    assert!(element(&html, "settings-phone").contains("+40799888777"));
}

#[test]
fn password_recovery_through_its_pages() {
    let app = TestApp::spawn();
    let holder = app.create_account("ion.vasile@example.com", false);
    let html = page(&app, "/password-recovery", "en", None).body;
    has_fields(&html, "recovery", "/api/v1/password-recovery", &["email"]);
    let before = app.messages_to(&holder.email, 0).len();
    let (s, out, _) = send(&app, "/api/v1/password-recovery", None, json!({"email": holder.email}));
    assert_eq!(s, 202, "{out}");
    let token = link_token(&app.message(&holder.email, before + 1), "/password-recovery/");
    let path = format!("/password-recovery/{token}");

    let html = page(&app, &path, "en", None).body;
    assert!(visible(&html, "recovery-step-send") && !visible(&html, "recovery-step-code"));
    has_fields(
        &html,
        "recovery-sms",
        &format!("/api/v1/password-recovery/{token}/sms"),
        &[],
    );
    let code = next_code(&app, "+40712345678", || {
        let (s, out, _) = send(&app, &format!("/api/v1/password-recovery/{token}/sms"), None, json!({}));
        assert_eq!(s, 202, "{out}");
    });
    let html = page(&app, &path, "en", None).body;
    assert!(visible(&html, "recovery-step-code"));
    has_fields(
        &html,
        "recovery-verify",
        &format!("/api/v1/password-recovery/{token}/verify"),
        &["code"],
    );
    let (s, out, _) = send(
        &app,
        &format!("/api/v1/password-recovery/{token}/verify"),
        None,
        json!({"code": code}),
    );
    assert_eq!(s, 200, "{out}");
    let html = page(&app, &path, "en", None).body;
    assert!(visible(&html, "recovery-step-password"));
    let (api, names) = form(&html, "recovery-password");
    assert_eq!(names, vec!["password"]);
    let (s, out, _) = send(&app, &api, None, json!({"password": PASSWORD}));
    assert_eq!(s, 200, "{out}");
    let used = page(&app, &path, "en", None);
    assert_eq!(used.status, 410);
    assert!(
        used.body.contains("This recovery link is no longer valid"),
        "{}",
        used.body
    );
    login(&app, &holder.email, PASSWORD);
}

#[test]
fn pages_in_both_languages_and_logged_out_redirects() {
    let app = TestApp::spawn();
    for (path, en, ro) in [
        ("/enrol", "Create the account", "Creează contul"),
        (
            "/password-recovery",
            "Send the recovery link",
            "Trimite linkul de recuperare",
        ),
        ("/privacy", "Your rights", "Drepturile dumneavoastră"),
        ("/login", "Forgot your password?", "Ați uitat parola?"),
    ] {
        for (lang, words) in [("en", en), ("ro", ro)] {
            let r = page(&app, path, lang, None);
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.body.contains(&format!("<html lang=\"{lang}\">")) && r.body.contains(words),
                "{path} {lang}"
            );
        }
    }
    let bad = page(&app, "/invitations/no-such-token", "en", None);
    assert_eq!(bad.status, 404);
    assert!(bad.body.contains("This activation link is not valid"));
    let bad = page(&app, "/password-recovery/no-such-token", "en", None);
    assert_eq!(bad.status, 404);

    for (path, to) in [
        ("/settings", "/login?next=/settings"),
        ("/pairing", "/login?next=/pairing"),
        ("/2fa?next=/orders", "/login?next=/2fa%3Fnext%3D/orders"),
        ("/consent", "/login?next=/consent"),
        ("/after-login?next=/", "/login?next=/after-login%3Fnext%3D/"),
    ] {
        let r = page(&app, path, "en", None);
        assert_eq!((r.status, r.location.as_str()), (303, to), "{path}");
    }

    let holder = app.create_account("maria.pop@example.com", false);
    let cookie = app.web_login(&holder);
    // Before the first-login consents every page leads to the consent screen, in both languages.
    for path in ["/settings", "/sign", "/orders"] {
        let r = page(&app, path, "en", Some(&cookie));
        assert_eq!(
            (r.status, r.location.as_str()),
            (303, format!("/consent?next={path}").as_str()),
            "{path}"
        );
    }
    for (lang, words) in [("en", "Allow"), ("ro", "Permite")] {
        let r = page(&app, "/consent", lang, Some(&cookie));
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains(&format!("<html lang=\"{lang}\">")) && r.body.contains(words),
            "/consent {lang}"
        );
    }
    app.consent(&cookie);
    for (path, en, ro) in [
        ("/settings", "Download my data", "Descarcă datele mele"),
        ("/2fa", "Two-factor authentication", "Autentificare cu doi factori"),
        (
            "/pairing",
            "I confirm I installed an authenticator app",
            "Confirm că am instalat o aplicație",
        ),
    ] {
        for (lang, words) in [("en", en), ("ro", ro)] {
            let r = page(&app, path, lang, Some(&cookie));
            assert_eq!(r.status, 200, "{path}: {}", r.location);
            assert!(
                r.body.contains(&format!("<html lang=\"{lang}\">")) && r.body.contains(words),
                "{path} {lang}"
            );
        }
    }
    // Logged in, the enrolment and login pages go home.
    assert_eq!(page(&app, "/enrol", "en", Some(&cookie)).location, "/");
}

#[test]
fn the_language_of_emails_follows_the_settings_and_the_page_switch() {
    let app = TestApp::spawn();
    let h = app.create_holder("limba@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    app.consent(&cookie);
    let lang = |app: &TestApp| {
        let (_, me) = send_get(app, "/api/v1/me", &cookie);
        me["lang"].as_str().unwrap().to_owned()
    };
    assert_eq!(lang(&app), "ro", "Romanian by default");

    // The settings page offers the choice, preselected.
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    let (api, _) = form(&html, "language-form");
    assert_eq!(api, "/api/v1/me/language");
    assert!(
        html.contains(r#"<option value="ro" selected>"#),
        "the account's language is selected"
    );

    let (s, out, _) = send(&app, "/api/v1/me/language", Some(&cookie), json!({"lang": "fr"}));
    assert_eq!((s, out["error"].as_str()), (400, Some("invalid_request")), "{out}");
    let (s, out, _) = send(&app, "/api/v1/me/language", Some(&cookie), json!({"lang": "en"}));
    assert_eq!(s, 200, "{out}");
    assert_eq!(lang(&app), "en");
    // The next e-mail is in English.
    let (s, out, _) = send(&app, "/api/v1/me/phone/email-code", Some(&cookie), json!({}));
    assert_eq!(s, 202, "{out}");
    let mail = app.messages_to(&h.email, 1).pop().unwrap();
    assert!(mail.contains("The code to change the phone number"), "{mail}");

    // The pages' switch, followed with the session, sets it back to Romanian; without a session it only sets the
    // cookie.
    let r = client()
        .get(app.url("/lang/ro?next=/settings"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(lang(&app), "ro");
    let r = client().get(app.url("/lang/en")).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(lang(&app), "ro");
}

/// `GET` an API with the session cookie: (status, JSON).
fn send_get(app: &TestApp, api: &str, cookie: &str) -> (u16, Value) {
    let r = client().get(app.url(api)).header("Cookie", cookie).send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// The audit rows of `action` (their `details`, one a line), read from the SQLite file as an auditor would.
fn audited(app: &TestApp, action: &str) -> String {
    let out = common::run(
        "sqlite3",
        &[
            app.data_dir.join("parafa.db").to_str().expect("path"),
            &format!("SELECT details FROM audit_events WHERE action = '{action}'"),
        ],
        &[],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_email_change_needs_a_code_from_the_new_address_and_a_totp_code_and_ends_every_session() {
    let app = TestApp::spawn();
    let old = "ana.popescu@example.com";
    let new = "ana.popescu@exemplu.ro";
    let holder = app.create_account(old, true);
    app.create_account("ion.ionescu@example.com", false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let other_session = app.web_login(&holder);

    // The settings page carries the two steps, in both languages.
    let html = page(&app, "/settings", "en", Some(&cookie)).body;
    has_fields(&html, "email-new", "/api/v1/me/email", &["email"]);
    has_fields(&html, "email-verify", "/api/v1/me/email/verify", &["code", "totp"]);
    assert_eq!(
        attr(element(&html, "email-new"), "data-then").as_deref(),
        Some("#email-step-code")
    );
    assert!(
        element(&html, "settings-email-change").contains("valid 5 minutes"),
        "{html}"
    );
    let ro = page(&app, "/settings", "ro", Some(&cookie)).body;
    assert!(
        element(&ro, "settings-email-change").contains("Schimbarea adresei de e-mail"),
        "{ro}"
    );

    // Refused: not an address, the current one, another account's (rules §10), and the second step first.
    for (address, status) in [("not-an-address", 400), (old, 400), ("Ion.Ionescu@example.com", 409)] {
        let (s, out, _) = send(&app, "/api/v1/me/email", Some(&cookie), json!({ "email": address }));
        assert_eq!(s, status, "{address}: {out}");
        assert!(
            out["error_description"].as_str().is_some_and(|d| !d.is_empty()),
            "{out}"
        );
    }
    let (s, out, _) = send(
        &app,
        "/api/v1/me/email",
        Some(&cookie),
        json!({ "email": "ion.ionescu@example.com" }),
    );
    assert!(
        out["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("another account"),
        "{s} {out}"
    );
    let (s, out, _) = send(
        &app,
        "/api/v1/me/email/verify",
        Some(&cookie),
        json!({ "code": "123456", "totp": app.fresh_totp(&holder) }),
    );
    assert_eq!(s, 409, "no code was asked for: {out}");

    // The code goes to the new address, not to the old one.
    let before_old = app.messages_to(old, 0).len();
    let (s, out, _) = send(&app, "/api/v1/me/email", Some(&cookie), json!({ "email": new }));
    assert_eq!(s, 202, "{out}");
    assert_eq!(out["valid_for"], 300);
    let mail = app.message(new, 1);
    assert!(mail.contains("Kind: email_change_code"), "{mail}");
    let code = code_in(&mail);
    assert_eq!(
        app.messages_to(old, 0).len(),
        before_old,
        "nothing to the old address yet"
    );
    let (s, out, _) = send(&app, "/api/v1/me/email", Some(&cookie), json!({ "email": new }));
    assert_eq!(s, 429, "a new code only after the resend spacing: {out}");

    // Without the right TOTP code nothing changes, and the e-mailed code stays usable.
    let good = app.fresh_totp(&holder);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let (s, out, _) = send(
        &app,
        "/api/v1/me/email/verify",
        Some(&cookie),
        json!({ "code": code, "totp": wrong }),
    );
    assert_eq!((s, out["error"].as_str()), (401, Some("invalid_otp")), "{out}");
    let (s, out, _) = send(
        &app,
        "/api/v1/me/email/verify",
        Some(&cookie),
        json!({ "code": code, "totp": app.fresh_totp(&holder) }),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["email"], new);

    // The old address is told, with the contact link; the new address is shown only masked.
    let notice = app.message(old, before_old + 1);
    assert!(notice.contains("Kind: email_changed"), "{notice}");
    assert!(
        notice.contains("/contact") && notice.contains("a…@exemplu.ro"),
        "{notice}"
    );
    assert!(!notice.contains(new), "{notice}");

    // Every session ended, the current one included.
    assert_eq!(app.call("GET", "/api/v1/me", Some(&cookie), None).0, 401);
    assert_eq!(app.call("GET", "/api/v1/me", Some(&other_session), None).0, 401);

    // The old address no longer logs in; the new one does.
    let totp = app.fresh_totp(&holder);
    let (s, _) = app.call(
        "POST",
        "/api/v1/session",
        None,
        Some(json!({ "email": old, "password": HOLDER_PASSWORD, "totp": totp })),
    );
    assert_eq!(s, 401, "the old address no longer logs in");
    let mut moved = holder.clone();
    moved.email = new.to_owned();
    let cookie = app.web_login(&moved);
    let (s, me) = app.call("GET", "/api/v1/me", Some(&cookie), None);
    assert_eq!((s, me["email"].as_str()), (200, Some(new)), "{me}");

    let rows = audited(&app, "email.change.done");
    assert!(rows.contains(old) && rows.contains(new), "{rows}");
    assert!(app.cli_ok(&["admin", "audit", "verify"]).contains("intact"));
}
