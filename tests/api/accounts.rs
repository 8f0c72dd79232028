//! Accounts through HTTP: enrolment to an active account with 2FA, reading the codes from the outbox as a person
//! reads their phone and mailbox; code validity, resend cool-down, three strikes, the 2FA deadline with a moved
//! clock, throttling, and sessions ending when 2FA is turned on.

use crate::common;

use base64::Engine;
use common::{code_in, TestApp};
use reqwest::blocking::Response;
use serde_json::{json, Value};

const EMAIL: &str = "maria.ionescu@example.com";
const PHONE: &str = "+40722111222";
const PASSWORD: &str = "Vânt de primăvară peste Bărăgan 42";

fn post(app: &TestApp, path: &str, body: Value, cookie: Option<&str>) -> Response {
    let mut req = app.client.post(app.url(path)).json(&body);
    if let Some(c) = cookie {
        req = req
            .header("Cookie", format!("parafa_session={c}"))
            .header("X-CSRF-Token", common::csrf_for(c));
    }
    req.send().expect("POST")
}

fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Response {
    let mut req = app.client.get(app.url(path));
    if let Some(c) = cookie {
        req = req
            .header("Cookie", format!("parafa_session={c}"))
            .header("X-CSRF-Token", common::csrf_for(c));
    }
    req.send().expect("GET")
}

fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(json!({"raw": text}))
        },
    )
}

fn enrol(app: &TestApp) -> String {
    let (status, out) = json_of(post(
        app,
        "/api/v1/enrolments",
        json!({"given_name": "Maria", "surname": "Ionescu", "email": EMAIL, "phone": "+40 722 111 222", "privacy_acknowledged": true, "lang": "ro"}),
        None,
    ));
    assert_eq!(status, 202, "{out}");
    let mail = app.message(EMAIL, 1);
    assert!(mail.contains("Kind: invitation"), "{mail}");
    assert!(
        mail.contains("Invitație") && mail.contains("e-mail automat"),
        "Romanian, with the footer: {mail}"
    );
    let at = mail.find("/invitations/").expect("invitation link") + "/invitations/".len();
    mail[at..].split_whitespace().next().unwrap().to_owned()
}

/// Enrols and activates Maria; returns the invitation token.
fn activate(app: &TestApp) -> String {
    let token = enrol(app);
    let (status, out) = json_of(post(
        app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({"phone": PHONE}),
        None,
    ));
    assert_eq!(status, 202, "{out}");
    let code = code_in(&app.message(PHONE, 1));
    let (status, out) = json_of(post(
        app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!(status, 200, "{out}");
    let (status, out) = json_of(post(
        app,
        &format!("/api/v1/invitations/{token}/password"),
        json!({"password": PASSWORD}),
        None,
    ));
    assert_eq!(status, 200, "{out}");
    token
}

/// Logs in; returns the status, the body and the session cookie's value.
fn login(app: &TestApp, totp: Option<String>, remember: bool) -> (u16, Value, Option<String>) {
    let mut body = json!({"email": EMAIL, "password": PASSWORD, "remember_me": remember});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    let r = post(app, "/api/v1/session", body, None);
    let cookie = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    let (status, out) = json_of(r);
    let value = cookie.as_ref().and_then(|c| {
        // Plain HTTP to 127.0.0.1: `Secure` would make a browser drop the cookie (tests/api/web.rs checks it is set
        // behind HTTPS).
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"),
            "{c}"
        );
        c.strip_prefix("parafa_session=")
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
    });
    (status, out, value)
}

/// Pairs the authenticator; returns the base32 secret.
fn pair(app: &TestApp, cookie: &str, sms_count: usize) -> String {
    let (status, out) = json_of(post(app, "/api/v1/me/totp/pairing", json!({}), Some(cookie)));
    assert_eq!(status, 202, "{out}");
    let code = code_in(&app.message(PHONE, sms_count));
    let (status, out) = json_of(post(
        app,
        "/api/v1/me/totp/pairing/sms",
        json!({"code": code, "app_installed": false}),
        Some(cookie),
    ));
    assert_eq!(status, 400, "the acknowledgement is required: {out}");
    let r = post(
        app,
        "/api/v1/me/totp/pairing/sms",
        json!({"code": code, "app_installed": true}),
        Some(cookie),
    );
    assert_eq!(
        r.headers().get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let (status, secret) = json_of(r);
    assert_eq!(status, 200, "{secret}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(secret["qr_png"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG QR code");
    let uri = secret["otpauth_uri"].as_str().unwrap();
    let base32 = secret["secret"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&base32), "{uri}");
    // Shown once.
    let (status, _) = json_of(post(
        app,
        "/api/v1/me/totp/pairing/sms",
        json!({"code": code, "app_installed": true}),
        Some(cookie),
    ));
    assert_eq!(status, 409, "the secret is not shown twice");
    base32
}

#[test]
fn a_new_user_goes_from_enrolment_to_an_active_account_with_two_factor_login() {
    let app = TestApp::spawn();
    let token = enrol(&app);
    let (status, view) = json_of(get(&app, &format!("/api/v1/invitations/{token}"), None));
    assert_eq!(status, 200);
    assert_eq!(
        (view["given_name"].as_str(), view["phone_ends_with"].as_str()),
        (Some("Maria"), Some("22"))
    );

    // The phone typed again must be the enrolled one.
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({"phone": "+40799999999"}),
        None,
    ));
    assert_eq!(status, 400, "{out}");
    assert!(
        out["error_description"].as_str().unwrap().contains("2 attempts left"),
        "{out}"
    );
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({"phone": PHONE}),
        None,
    ));
    assert_eq!(status, 202, "{out}");
    assert_eq!(
        (out["valid_for"].as_i64(), out["resend_after"].as_i64()),
        (Some(600), Some(1800))
    );
    let sms = app.message(PHONE, 1);
    assert!(
        sms.contains("Medium: sms") && sms.contains("Valabil 10 minute"),
        "{sms}"
    );
    let code = code_in(&sms);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": wrong}),
        None,
    ));
    assert_eq!((status, out["error"].as_str()), (400, Some("invalid_code")), "{out}");
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!(status, 200);

    // A password that is long but common is refused; a good one activates the account.
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/password"),
        json!({"password": "passwordpassword"}),
        None,
    ));
    assert_eq!(status, 400, "{out}");
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/password"),
        json!({"password": "short"}),
        None,
    ));
    assert_eq!(status, 400, "{out}");
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/password"),
        json!({"password": PASSWORD}),
        None,
    ));
    assert_eq!(status, 200);
    let (status, _) = json_of(get(&app, &format!("/api/v1/invitations/{token}"), None));
    assert_eq!(status, 410, "the link is single-use");

    // First login: 2FA is not set up yet, so the user is asked to.
    let (status, out, cookie) = login(&app, None, false);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["two_factor"], "setup_due");
    let cookie = cookie.expect("session cookie");
    let (status, me) = json_of(get(&app, "/api/v1/me", Some(&cookie)));
    assert_eq!((status, me["email"].as_str()), (200, Some(EMAIL)));

    let secret = pair(&app, &cookie, 2);
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/totp/pairing/activate",
        json!({"code": "000000"}),
        Some(&cookie),
    ));
    assert!(status == 401 && out["error"] == "invalid_otp", "{status} {out}");
    let code = common::totp_code(&secret, app.now());
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/totp/pairing/activate",
        json!({"code": code}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{out}");
    // Turning 2FA on ended the session.
    assert_eq!(get(&app, "/api/v1/me", Some(&cookie)).status(), 401);

    // From now on login needs the code, once per time step.
    let (status, out, _) = login(&app, None, false);
    assert_eq!((status, out["error"].as_str()), (401, Some("totp_required")), "{out}");
    let (status, out, _) = login(&app, Some(code.clone()), false);
    assert_eq!(status, 401, "the activation code cannot log in again: {out}");
    app.advance_clock(30);
    let code = common::totp_code(&secret, app.now());
    let (status, out, cookie) = login(&app, Some(code), true);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["two_factor"], "on");
    assert_eq!(get(&app, "/api/v1/me", cookie.as_deref()).status(), 200);

    // The CSC API accepts the same account and pairing.
    app.advance_clock(30);
    let r = app
        .client
        .post(app.url("/csc/v2/auth/login"))
        .basic_auth(EMAIL, Some(PASSWORD))
        .header("X-Parafa-OTP", common::totp_code(&secret, app.now()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // Delivered codes do not stay readable in the database's outbox (they live on only as hashes).
    let db = app.data_dir.join("parafa.db");
    let left = (0..50)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            common::run_ok(
                "sqlite3",
                &[
                    db.to_str().unwrap(),
                    "SELECT COUNT(*) FROM outbox WHERE kind LIKE '%code%' AND body <> ''",
                ],
            )
        })
        .find(|n| n.trim() == "0");
    assert!(left.is_some(), "code messages keep their body after delivery");

    // Logout ends the session.
    let r = app
        .client
        .delete(app.url("/api/v1/session"))
        .header("Cookie", format!("parafa_session={}", cookie.as_deref().unwrap()))
        .header("X-CSRF-Token", common::csrf_for(cookie.as_deref().unwrap()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&app, "/api/v1/me", cookie.as_deref()).status(), 401);
}

#[test]
fn enrolling_a_known_email_reveals_nothing_and_tells_the_owner() {
    let app = TestApp::spawn();
    activate(&app);
    let r = post(
        &app,
        "/api/v1/enrolments",
        json!({"given_name": "Someone", "surname": "Else", "email": EMAIL.to_uppercase(), "phone": "+40733000000", "privacy_acknowledged": true}),
        None,
    );
    let (status, out) = json_of(r);
    assert_eq!(status, 202, "the same answer as for a new address: {out}");
    let mail = app.message(EMAIL, 2);
    assert!(mail.contains("Kind: already_enrolled"), "{mail}");
    assert!(app.messages_to("+40733000000", 0).is_empty());
    // Enrolment needs the privacy acknowledgement.
    let (status, _) = json_of(post(
        &app,
        "/api/v1/enrolments",
        json!({"given_name": "A", "surname": "B", "email": "new@example.com", "phone": "+40733000001"}),
        None,
    ));
    assert_eq!(status, 400);
}

#[test]
fn sms_codes_expire_and_are_not_resent_before_thirty_minutes() {
    let app = TestApp::spawn();
    let token = enrol(&app);
    let phone = |app: &TestApp| {
        json_of(post(
            app,
            &format!("/api/v1/invitations/{token}/phone"),
            json!({"phone": PHONE}),
            None,
        ))
    };
    assert_eq!(phone(&app).0, 202);
    let code = code_in(&app.message(PHONE, 1));
    app.advance_clock(601);
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!((status, out["error"].as_str()), (400, Some("expired_code")), "{out}");
    let (status, out) = phone(&app);
    assert_eq!(
        (status, out["error"].as_str()),
        (429, Some("too_many_requests")),
        "{out}"
    );
    app.advance_clock(30 * 60 - 601);
    assert_eq!(phone(&app).0, 202, "a new code 30 minutes after the previous one");
    let code = code_in(&app.message(PHONE, 2));
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!(status, 200);
}

#[test]
fn a_code_is_dead_after_three_wrong_entries() {
    let app = TestApp::spawn();
    let token = enrol(&app);
    json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({"phone": PHONE}),
        None,
    ));
    let code = code_in(&app.message(PHONE, 1));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let (status, _) = json_of(post(
            &app,
            &format!("/api/v1/invitations/{token}/phone/verify"),
            json!({"code": wrong}),
            None,
        ));
        assert_eq!(status, 400);
    }
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!(status, 400, "the right code no longer works: {out}");
    assert!(
        out["error_description"].as_str().unwrap().contains("too many times"),
        "{out}"
    );
}

#[test]
fn invitation_links_expire() {
    let app = TestApp::spawn();
    let token = enrol(&app);
    app.advance_clock(72 * 3600 + 1);
    let (status, out) = json_of(get(&app, &format!("/api/v1/invitations/{token}"), None));
    assert_eq!((status, out["error"].as_str()), (410, Some("expired")), "{out}");
    let (status, _) = json_of(get(&app, "/api/v1/invitations/not-a-token", None));
    assert_eq!(status, 404);
}

#[test]
fn two_factor_can_be_postponed_only_until_the_mandatory_date() {
    let app = TestApp::spawn();
    activate(&app);
    let (_, _, cookie) = login(&app, None, false);
    let cookie = cookie.unwrap();
    let postpone = |body: Value, cookie: &str| json_of(post(&app, "/api/v1/me/2fa/postpone", body, Some(cookie)));
    // Mandatory from 2027-01-01 00:00 Europe/Bucharest (2026-12-31 22:00 UTC).
    let mandatory: i64 = 1_798_754_400;
    if app.now() < mandatory - 2 * 86_400 {
        let (status, out) = postpone(json!({"until": "2027-02-01"}), &cookie);
        assert_eq!(status, 400, "not past the mandatory date: {out}");
        let (status, out) = postpone(json!({"until": "2026-12-30"}), &cookie);
        assert_eq!((status, out["two_factor"].as_str()), (200, Some("postponed")), "{out}");
        let (status, out) = postpone(json!({"never": true}), &cookie);
        assert_eq!((status, out["two_factor"].as_str()), (200, Some("postponed")), "{out}");
        let (_, out, _) = login(&app, None, false);
        assert_eq!(out["two_factor"], "postponed");
        // "At next login" asks again at the next login.
        let (status, _) = postpone(json!({"next_login": true}), &cookie);
        assert_eq!(status, 200);
        let (_, out, _) = login(&app, None, false);
        assert_eq!(out["two_factor"], "setup_due");
    }
    // After the mandatory date, login leads straight to pairing and nothing can be postponed any more.
    app.advance_clock(mandatory - app.now() + 60);
    let (status, out, cookie) = login(&app, None, false);
    assert_eq!(
        (status, out["two_factor"].as_str()),
        (200, Some("setup_required")),
        "{out}"
    );
    let cookie = cookie.unwrap();
    let (status, out) = postpone(json!({"never": true}), &cookie);
    assert_eq!((status, out["error"].as_str()), (403, Some("access_denied")), "{out}");
    // The API, not only the pages, holds such an account to the pairing: everything else is refused…
    let (status, out) = json_of(get(&app, "/api/v1/me/contact", Some(&cookie)));
    assert_eq!((status, out["error"].as_str()), (403, Some("access_denied")), "{out}");
    assert!(
        out["error_description"].as_str().unwrap_or("").contains("/pairing"),
        "{out}"
    );
    let (status, out) = json_of(post(&app, "/api/v1/orders", json!({"package": 1}), Some(&cookie)));
    assert_eq!(status, 403, "{out}");
    // …but the account itself and the way to pair stay open.
    let (status, out) = json_of(get(&app, "/api/v1/me", Some(&cookie)));
    assert_eq!(status, 200, "{out}");
    let (status, out) = json_of(post(&app, "/api/v1/me/totp/pairing", json!({}), Some(&cookie)));
    assert_ne!(status, 403, "{out}");
    // Pages send such a user to the 2FA page, which they can see.
    let session = format!("parafa_session={cookie}");
    app.consent(&session);
    let (status, location, _) = app.page_unfollowed("/settings", "en", Some(&session));
    assert_eq!((status, location.as_str()), (303, "/2fa?next=/settings"));
    for path in ["/2fa", "/pairing"] {
        let (status, location, _) = app.page_unfollowed(path, "en", Some(&session));
        assert_eq!((status, location.as_str()), (200, ""), "{path}");
    }
}

#[test]
fn failed_logins_are_throttled_per_account() {
    let app = TestApp::spawn();
    activate(&app);
    for _ in 0..5 {
        let r = post(
            &app,
            "/api/v1/session",
            json!({"email": EMAIL, "password": "wrong password 123"}),
            None,
        );
        assert_eq!(r.status(), 401);
    }
    let (status, out, _) = login(&app, None, false);
    assert_eq!(
        (status, out["error"].as_str()),
        (429, Some("too_many_requests")),
        "even the right password: {out}"
    );
    app.advance_clock(15 * 60 + 1);
    assert_eq!(login(&app, None, false).0, 200, "the window has passed");
}

#[test]
fn re_pairing_makes_the_old_seed_stop_working() {
    let app = TestApp::spawn();
    activate(&app);
    let (_, _, cookie) = login(&app, None, false);
    let cookie = cookie.unwrap();
    let old = pair(&app, &cookie, 2);
    let code = common::totp_code(&old, app.now());
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/totp/pairing/activate",
        json!({"code": code}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{out}");
    app.advance_clock(30 * 60);
    let (status, out, cookie) = login(&app, Some(common::totp_code(&old, app.now())), false);
    assert_eq!(status, 200, "{out}");
    let cookie = cookie.unwrap();
    // Reset: an SMS code, then a new secret; the old one stops working at once.
    let (status, out) = json_of(post(&app, "/api/v1/me/totp/reset", json!({}), Some(&cookie)));
    assert_eq!(status, 202, "{out}");
    let code = code_in(&app.message(PHONE, 3));
    let (status, fresh) = json_of(post(
        &app,
        "/api/v1/me/totp/pairing/sms",
        json!({"code": code, "app_installed": true}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{fresh}");
    app.advance_clock(30);
    let (status, _, _) = login(&app, Some(common::totp_code(&old, app.now())), false);
    assert_eq!(status, 401, "the old seed no longer logs in");
}

/// An activated account, logged in; returns the session cookie.
fn logged_in(app: &TestApp) -> String {
    activate(app);
    let (status, out, cookie) = login(app, None, false);
    assert_eq!(status, 200, "{out}");
    cookie.unwrap()
}

#[test]
fn a_password_change_needs_the_current_one_and_ends_every_session() {
    let app = TestApp::spawn();
    let cookie = logged_in(&app);
    let (_, _, other_session) = login(&app, None, true);
    let new = "Ceață deasă peste Carpați la răsărit 7";
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/password",
        json!({"current": "wrong one here!!", "new": new}),
        Some(&cookie),
    ));
    assert_eq!(status, 400, "{out}");
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/password",
        json!({"current": PASSWORD, "new": new}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{out}");
    assert_eq!(get(&app, "/api/v1/me", Some(&cookie)).status(), 401);
    assert_eq!(
        get(&app, "/api/v1/me", other_session.as_deref()).status(),
        401,
        "every session ended"
    );
    assert!(app.message(EMAIL, 2).contains("Kind: password_changed"));
    let (status, _, _) = login(&app, None, false);
    assert_eq!(status, 401, "the old password no longer works");
    let r = post(&app, "/api/v1/session", json!({"email": EMAIL, "password": new}), None);
    assert_eq!(r.status(), 200);
}

#[test]
fn password_recovery_goes_by_email_link_then_sms_code_and_ends_every_session() {
    let app = TestApp::spawn();
    let cookie = logged_in(&app);
    let (status, _) = json_of(post(
        &app,
        "/api/v1/password-recovery",
        json!({"email": "nobody@example.com"}),
        None,
    ));
    assert_eq!(status, 202, "the same answer for an unknown address");
    let (status, _) = json_of(post(&app, "/api/v1/password-recovery", json!({"email": EMAIL}), None));
    assert_eq!(status, 202);
    let mail = app.message(EMAIL, 2);
    assert!(mail.contains("Kind: password_recovery"), "{mail}");
    let at = mail.find("/password-recovery/").unwrap() + "/password-recovery/".len();
    let token = mail[at..].split_whitespace().next().unwrap().to_owned();
    let new = "Ceață deasă peste Carpați la răsărit 7";
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/password-recovery/{token}/password"),
        json!({"password": new}),
        None,
    ));
    assert_eq!(status, 409, "the SMS step cannot be skipped");
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/password-recovery/{token}/sms"),
        json!({}),
        None,
    ));
    assert_eq!(status, 202, "{out}");
    let code = code_in(&app.message(PHONE, 2));
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/password-recovery/{token}/verify"),
        json!({"code": code}),
        None,
    ));
    assert_eq!(status, 200);
    let (status, out) = json_of(post(
        &app,
        &format!("/api/v1/password-recovery/{token}/password"),
        json!({"password": new}),
        None,
    ));
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        get(&app, "/api/v1/me", Some(&cookie)).status(),
        401,
        "every session ended"
    );
    let r = post(&app, "/api/v1/session", json!({"email": EMAIL, "password": new}), None);
    assert_eq!(r.status(), 200);
    let (status, _) = json_of(post(
        &app,
        &format!("/api/v1/password-recovery/{token}/password"),
        json!({"password": new}),
        None,
    ));
    assert_eq!(status, 410, "the link is single-use");
}

#[test]
fn a_phone_change_needs_an_email_code_then_an_sms_code_to_the_new_number() {
    let app = TestApp::spawn();
    let cookie = logged_in(&app);
    let new_phone = "+40744555666";
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/phone",
        json!({"phone": new_phone}),
        Some(&cookie),
    ));
    assert_eq!(status, 409, "the e-mail code comes first: {out}");
    let (status, out) = json_of(post(&app, "/api/v1/me/phone/email-code", json!({}), Some(&cookie)));
    assert_eq!(status, 202, "{out}");
    assert_eq!(out["valid_for"], 300);
    let mail = app.message(EMAIL, 2);
    assert!(
        mail.contains("Kind: phone_change_email_code") && mail.contains("5 minute"),
        "{mail}"
    );
    let code = code_in(&mail);
    // Valid 5 minutes.
    app.advance_clock(301);
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/phone/email-code/verify",
        json!({"code": code}),
        Some(&cookie),
    ));
    assert_eq!((status, out["error"].as_str()), (400, Some("expired_code")), "{out}");
    // A new code after the resend cool-down.
    app.advance_clock(30 * 60);
    json_of(post(&app, "/api/v1/me/phone/email-code", json!({}), Some(&cookie)));
    let code = code_in(&app.message(EMAIL, 3));
    let (status, _) = json_of(post(
        &app,
        "/api/v1/me/phone/email-code/verify",
        json!({"code": code}),
        Some(&cookie),
    ));
    assert_eq!(status, 200);
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/phone",
        json!({"phone": "0744555666"}),
        Some(&cookie),
    ));
    assert_eq!(status, 400, "the country prefix is required: {out}");
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/phone",
        json!({"phone": new_phone}),
        Some(&cookie),
    ));
    assert_eq!(status, 202, "{out}");
    let sms = app.message(new_phone, 1);
    assert!(
        sms.contains("Valabil 5 minute"),
        "the code goes to the new number: {sms}"
    );
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/phone/verify",
        json!({"code": code_in(&sms)}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{out}");
    assert_eq!(get(&app, "/api/v1/me", Some(&cookie)).status(), 401, "logged out");
    assert!(app.message(EMAIL, 4).contains("Kind: phone_changed"));
    let (_, _, cookie) = login(&app, None, false);
    let (_, me) = json_of(get(&app, "/api/v1/me", cookie.as_deref()));
    assert_eq!(me["phone"], new_phone);
}

#[test]
fn consents_are_recorded_with_their_version_and_marketing_can_be_withdrawn() {
    let app = TestApp::spawn();
    let cookie = logged_in(&app);
    let (_, me) = json_of(get(&app, "/api/v1/me", Some(&cookie)));
    assert_eq!(
        me["needs_access_consent"], true,
        "the consent screen is shown at first login"
    );
    assert_eq!(me["needs_privacy_notice"], false, "acknowledged at enrolment");
    let (status, out) = json_of(post(
        &app,
        "/api/v1/me/consents",
        json!({"kind": "access", "granted": true}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{out}");
    let (_, me) = json_of(get(&app, "/api/v1/me", Some(&cookie)));
    assert_eq!(me["needs_access_consent"], false, "shown once");
    json_of(post(
        &app,
        "/api/v1/me/consents",
        json!({"kind": "marketing", "granted": true}),
        Some(&cookie),
    ));
    let (_, out) = json_of(post(
        &app,
        "/api/v1/me/consents",
        json!({"kind": "marketing", "granted": false}),
        Some(&cookie),
    ));
    assert_eq!(out["consents"]["marketing"]["granted"], false);
    assert!(out["consents"]["marketing"]["version"].is_string() && out["consents"]["marketing"]["at"].is_string());
    let (status, _) = json_of(post(
        &app,
        "/api/v1/me/consents",
        json!({"kind": "access", "granted": false}),
        Some(&cookie),
    ));
    assert_eq!(status, 400, "only marketing can be withdrawn");
}

#[test]
fn the_export_holds_the_users_data_without_secrets_and_erasure_anonymises_it() {
    let app = TestApp::spawn();
    let cookie = logged_in(&app);
    let secret = pair(&app, &cookie, 2);
    json_of(post(
        &app,
        "/api/v1/me/consents",
        json!({"kind": "marketing", "granted": true}),
        Some(&cookie),
    ));
    let r = get(&app, "/api/v1/me/export", Some(&cookie));
    assert_eq!(r.status(), 200);
    let text = r.text().unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["profile"]["email"], EMAIL);
    assert_eq!(export["profile"]["phone"], PHONE);
    assert!(export["consents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "marketing"));
    assert!(!export["activity"].as_array().unwrap().is_empty());
    assert!(!export["messages"].as_array().unwrap().is_empty());
    for forbidden in ["argon2", &secret, "seed", "token_hash", "code_hash"] {
        assert!(!text.contains(forbidden), "the export leaks {forbidden}");
    }

    let (status, _) = json_of(post(&app, "/api/v1/me/erasure", json!({}), Some(&cookie)));
    assert_eq!(status, 400, "erasure must be confirmed");
    let (status, _) = json_of(post(
        &app,
        "/api/v1/me/erasure",
        json!({"confirm": true}),
        Some(&cookie),
    ));
    assert_eq!(status, 400, "the session alone does not erase: the password is asked");
    let (status, _) = json_of(post(
        &app,
        "/api/v1/me/erasure",
        json!({"confirm": true, "password": "not the password"}),
        Some(&cookie),
    ));
    assert_eq!(status, 401, "a wrong password erases nothing");
    assert_eq!(
        get(&app, "/api/v1/me", Some(&cookie)).status(),
        200,
        "nothing erased yet"
    );
    // The pairing was never confirmed by a first code: the password is the step-up (with a certificate, the code
    // is asked too: tests/api/revocation.rs).
    let (status, report) = json_of(post(
        &app,
        "/api/v1/me/erasure",
        json!({"confirm": true, "password": PASSWORD}),
        Some(&cookie),
    ));
    assert_eq!(status, 200, "{report}");
    assert!(!report["kept"].as_array().unwrap().is_empty() && report["kept"][0]["why"].is_string());
    assert_eq!(get(&app, "/api/v1/me", Some(&cookie)).status(), 401);
    assert_eq!(login(&app, None, false).0, 401);
    let db = app.data_dir.join("parafa.db");
    let left = common::run_ok(
        "sqlite3",
        &[
            db.to_str().unwrap(),
            "SELECT COUNT(*) FROM users WHERE email LIKE '%ionescu%' OR phone = '+40722111222' OR given_name = 'Maria'",
        ],
    );
    assert_eq!(left.trim(), "0", "no trace of the person in the users table");
    let pairings = common::run_ok("sqlite3", &[db.to_str().unwrap(), "SELECT COUNT(*) FROM totp_pairings"]);
    assert_eq!(pairings.trim(), "0");
    // The audit trail is kept, and still intact.
    assert!(app.cli_ok(&["admin", "audit", "verify"]).contains("intact"));
}
