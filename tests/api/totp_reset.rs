//! Re-pairing offered on the 2FA login prompt (product rules §4): a holder whose authenticator app is gone proves the
//! password and the SMS code to the account's phone, pairs a new app (the secret shown once) and logs in with it;
//! the old app's codes stop working. The password alone is not enough, and an account without 2FA is sent to the
//! settings instead.

use crate::common;

use common::{totp_code, TestApp, HOLDER_PASSWORD};
use serde_json::{json, Value};

const PHONE: &str = "+40712345678";

/// The last run of six digits in the newest SMS to the account's phone, once there are `count`.
fn sms_code(app: &TestApp, count: usize) -> String {
    let text = app.message(PHONE, count);
    let body = text.split("\n\n").skip(1).collect::<Vec<_>>().join("\n\n");
    let digits: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .collect();
    digits.last().expect("a code in the SMS").to_string()
}

fn login(app: &TestApp, email: &str, totp: Option<String>) -> (u16, Value) {
    let mut body = json!({"email": email, "password": HOLDER_PASSWORD});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    app.call("POST", "/api/v1/session", None, Some(body))
}

#[test]
fn a_holder_who_lost_the_app_pairs_a_new_one_from_the_login_prompt_with_password_and_sms() {
    let app = TestApp::spawn();
    let holder = app.create_account("ana.pierdut@example.com", true);
    let old_secret = holder.totp_secret.clone();

    // A wrong password gets nothing, and counts as a failed login.
    let (s, out) = app.call(
        "POST",
        "/api/v1/totp-reset",
        None,
        Some(json!({"email": holder.email, "password": "not the password"})),
    );
    assert_eq!((s, out["error"].as_str()), (401, Some("authentication_error")), "{out}");

    let (s, started) = app.call(
        "POST",
        "/api/v1/totp-reset",
        None,
        Some(json!({"email": holder.email, "password": HOLDER_PASSWORD})),
    );
    assert_eq!(s, 202, "{started}");
    assert!(started["valid_for"].as_i64().unwrap() > 0);
    let token = started["token"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/totp-reset/{token}");

    // The acknowledgement and the SMS code are both needed.
    let code = sms_code(&app, 1);
    let (s, out) = app.call("POST", &format!("{base}/sms"), None, Some(json!({"code": code})));
    assert_eq!(s, 400, "{out}");
    let (s, out) = app.call(
        "POST",
        &format!("{base}/sms"),
        None,
        Some(json!({"code": "000000", "app_installed": true})),
    );
    assert_eq!(s, 400, "a wrong SMS code: {out}");
    let (s, secret) = app.call(
        "POST",
        &format!("{base}/sms"),
        None,
        Some(json!({"code": code, "app_installed": true})),
    );
    assert_eq!(s, 200, "{secret}");
    let new_secret = secret["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(secret["qr_png"].as_str().is_some_and(|q| !q.is_empty()));
    // Shown once.
    let (s, out) = app.call(
        "POST",
        &format!("{base}/sms"),
        None,
        Some(json!({"code": code, "app_installed": true})),
    );
    assert_eq!(s, 409, "{out}");

    app.advance_clock(30);
    let (s, out) = app.call(
        "POST",
        &format!("{base}/activate"),
        None,
        Some(json!({"code": totp_code(&new_secret, app.now())})),
    );
    assert_eq!(s, 200, "{out}");
    // The link is spent.
    let (s, _) = app.call(
        "POST",
        &format!("{base}/activate"),
        None,
        Some(json!({"code": totp_code(&new_secret, app.now())})),
    );
    assert_eq!(s, 410);

    // The old app's codes are refused; the new one logs in.
    app.advance_clock(30);
    let (s, out) = login(&app, &holder.email, Some(totp_code(&old_secret, app.now())));
    assert_eq!(
        (s, out["error"].as_str()),
        (401, Some("invalid_otp")),
        "the old app: {out}"
    );
    app.advance_clock(30);
    let (s, out) = login(&app, &holder.email, Some(totp_code(&new_secret, app.now())));
    assert_eq!(s, 200, "the new app: {out}");
    assert_eq!(out["two_factor"], "on");
}

#[test]
fn without_two_factor_the_login_prompt_re_pairing_is_refused() {
    let app = TestApp::spawn();
    let account = app.create_account("fara.2fa@example.com", false);
    let (s, out) = app.call(
        "POST",
        "/api/v1/totp-reset",
        None,
        Some(json!({"email": account.email, "password": HOLDER_PASSWORD})),
    );
    assert_eq!(s, 409, "{out}");
    let (s, _) = app.call(
        "POST",
        "/api/v1/totp-reset/not-a-token/activate",
        None,
        Some(json!({"code": "123456"})),
    );
    assert_eq!(s, 410);
}
