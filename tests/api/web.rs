//! The web platform's common ground, over HTTP: pages in Romanian or English (browser language, then the switch),
//! the security headers on every answer, no inline script, the CSRF token a page carries and the refusal of a
//! state-changing request without it or from another site, and the cookie flags.

use crate::common;

use common::{csrf_for, TestApp};
use serde_json::json;

fn page(app: &TestApp, path: &str, lang: Option<&str>, cookie: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(l) = lang {
        req = req.header("Accept-Language", l);
    }
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let r = req.send().expect("GET");
    (r.status().as_u16(), r.text().expect("body"))
}

/// The value of `<meta name="csrf-token" content="…">`.
fn meta_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf-token\" content=\"").expect("csrf meta") + 27;
    html[at..at + html[at..].find('"').expect("end")].to_owned()
}

#[test]
fn pages_follow_the_browser_language_and_the_switch_remembers_the_choice() {
    let app = TestApp::spawn();
    let (s, en) = page(&app, "/login", Some("en-GB,en;q=0.9"), None);
    assert_eq!(s, 200);
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("Forgot your password?"),
        "{en}"
    );
    let (_, ro) = page(&app, "/login", Some("ro-RO,ro;q=0.9,en;q=0.5"), None);
    assert!(
        ro.contains("<html lang=\"ro\">") && ro.contains("Ați uitat parola?"),
        "{ro}"
    );
    // A language we do not have: Romanian, the service's own.
    let (_, de) = page(&app, "/login", Some("de-DE"), None);
    assert!(de.contains("<html lang=\"ro\">"));

    // The switch sets a cookie that wins over the browser's language, and goes back only to a local path.
    let no_redirect = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(app.url("/lang/en?next=/login")).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(cookie, "parafa_lang=en");
    let (_, switched) = page(&app, "/login", Some("ro-RO"), Some(&cookie));
    assert!(switched.contains("<html lang=\"en\">"));
    for evil in ["//evil.example/x", "https://evil.example/"] {
        let r = no_redirect
            .get(app.url(&format!("/lang/ro?next={evil}")))
            .send()
            .unwrap();
        assert_eq!(r.headers()["location"], "/", "{evil}");
    }
}

#[test]
fn every_answer_carries_the_security_headers_and_pages_have_no_inline_script() {
    let app = TestApp::spawn();
    for path in ["/", "/login", "/api/v1/packages", "/static/app.js", "/no-such-page"] {
        let r = app.get(path);
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    for path in ["/", "/login"] {
        let (_, html) = page(&app, path, None, None);
        common::assert_no_inline(path, &html);
    }
    let r = app.get("/static/app.css");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert_eq!(app.get("/static/../Cargo.toml").status().as_u16(), 404);
}

/// What a browser's navigation sends.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// `method path` with these headers: status, content type, body.
fn ask(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String, reqwest::header::HeaderMap) {
    let mut req = app.client.request(method.parse().expect("method"), app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().expect("body"), headers)
}

#[test]
fn a_browser_gets_the_error_page_in_its_language_and_api_clients_keep_the_json() {
    let app = TestApp::spawn();
    // A browser's navigation to an address that does not exist: the HTML 404 page, in its language.
    let (s, ct, body, h) = ask(
        &app,
        "GET",
        "/no-such-page",
        &[("Accept", BROWSER_ACCEPT), ("Accept-Language", "en-GB")],
    );
    assert_eq!((s, ct.starts_with("text/html")), (404, true), "{ct}: {body}");
    assert!(
        body.contains("<html lang=\"en\">") && body.contains("<h1>Page not found</h1>") && body.contains("href=\"/\""),
        "{body}"
    );
    common::assert_no_inline("/no-such-page", &body);
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let (s, ct, body, _) = ask(
        &app,
        "GET",
        "/no-such-page",
        &[("Accept", BROWSER_ACCEPT), ("Accept-Language", "ro-RO")],
    );
    assert_eq!((s, ct.starts_with("text/html")), (404, true), "{ct}: {body}");
    assert!(
        body.contains("<html lang=\"ro\">") && body.contains("<h1>Pagina nu a fost găsită</h1>"),
        "{body}"
    );
    // A method the page does not take: the HTML 405, its Allow header kept.
    let (s, ct, body, h) = ask(
        &app,
        "POST",
        "/",
        &[("Accept", BROWSER_ACCEPT), ("Accept-Language", "en")],
    );
    assert_eq!((s, ct.starts_with("text/html")), (405, true), "{ct}: {body}");
    assert!(
        body.contains("<h1>Something went wrong</h1>") && body.contains("data-status=\"405\""),
        "{body}"
    );
    assert!(h.contains_key("allow"), "{h:?}");

    // Without Accept, or asking for JSON: the CSC error JSON, as before.
    for accept in [None, Some("application/json"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let (s, ct, body, _) = ask(&app, "GET", "/no-such-page", &headers);
        assert_eq!((s, ct.as_str()), (404, "application/json"), "{accept:?}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["error"], "not_found", "{json}");
    }
    // The APIs answer JSON whoever asks, a browser included.
    for path in ["/api/v1/nope", "/csc/v2/nope", "/pki/nope"] {
        let (s, ct, body, _) = ask(&app, "GET", path, &[("Accept", BROWSER_ACCEPT)]);
        assert_eq!((s, ct.as_str()), (404, "application/json"), "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["error"], "not_found", "{path}: {json}");
    }
}

#[test]
fn a_state_changing_request_with_the_session_cookie_needs_the_pages_csrf_token() {
    let app = TestApp::spawn();
    let holder = app.create_holder_with("web@example.com", "p256", 1, false);
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": holder.email, "password": common::HOLDER_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    // Plain HTTP on a loopback address: not `Secure` (a browser would drop it), but HttpOnly and SameSite=Strict.
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict") && !set_cookie.contains("Secure")
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let answer: serde_json::Value = r.json().unwrap();

    // The page carries the same token as the login answer.
    let (s, html) = page(&app, "/", None, Some(&cookie));
    assert_eq!(s, 200);
    let token = meta_csrf(&html);
    assert_eq!(token, answer["csrf_token"].as_str().unwrap());
    assert_eq!(token, csrf_for(&cookie));

    let postpone = |token: Option<&str>, extra: &[(&str, &str)]| {
        let mut req = app
            .client
            .post(app.url("/api/v1/me/2fa/postpone"))
            .header("Cookie", &cookie)
            .json(&json!({"next_login": true}));
        if let Some(t) = token {
            req = req.header("X-CSRF-Token", t);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap_or_default())
    };
    let (s, out) = postpone(None, &[]);
    assert_eq!((s, out["error"].as_str()), (403, Some("access_denied")), "{out}");
    let (s, _) = postpone(Some("0000"), &[]);
    assert_eq!(s, 403);
    // With the token the request reaches the API (which answers for itself: not a CSRF refusal).
    let (s, out) = postpone(Some(&token), &[]);
    assert_ne!(out["error"].as_str(), Some("access_denied"), "{s} {out}");
    // From another site: refused whatever it carries.
    let (s, _) = postpone(Some(&token), &[("Origin", "https://evil.example")]);
    assert_eq!(s, 403);
    let (s, _) = postpone(Some(&token), &[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(s, 403);
    let (s, out) = postpone(
        Some(&token),
        &[("Origin", &app.base), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_ne!(out["error"].as_str(), Some("access_denied"), "{s} {out}");

    // Behind a TLS-terminating proxy the cookie is `Secure`.
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .header("X-Forwarded-Proto", "https")
        .json(&json!({"email": holder.email, "password": common::HOLDER_PASSWORD}))
        .send()
        .unwrap();
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
}

/// The landing page presents the service to a visitor: how it works, the packages at today's prices (in the
/// language's money format), the trust documents (each link answers), questions and answers quoting the settings'
/// numbers, and the contact form; and a notice says only strictly necessary cookies are used, until closed.
#[test]
fn the_landing_page_presents_the_service_and_the_cookie_notice_can_be_closed() {
    let app = TestApp::spawn();
    let (s, ro) = page(&app, "/", Some("ro"), None);
    assert_eq!(s, 200);
    for section in [
        "id=\"how\"",
        "id=\"prices\"",
        "id=\"trust\"",
        "id=\"faq\"",
        "id=\"contact\"",
    ] {
        assert!(ro.contains(section), "the landing page has {section}");
    }
    // The packages and their prices, as /api/v1/packages gives them, in Romanian money.
    let (_, offers) = app.call("GET", "/api/v1/packages", None, None);
    let packages = offers["packages"].as_array().expect("packages");
    assert_eq!(packages.len(), 3);
    for p in packages {
        let ron = p["price"]["total_ron_bani"].as_i64().unwrap();
        let shown = format!("{},{:02} RON", ron / 100, ron % 100);
        assert!(ro.contains(&format!("id=\"landing-package-{}\"", p["id"])), "{p}");
        assert!(ro.contains(&shown), "package {} at {shown}", p["id"]);
    }
    assert!(
        ro.contains("1 an ·") && ro.contains("2 ani ·") && !ro.contains("1 ani"),
        "years in Romanian"
    );
    // The answers quote the settings: the 72-hour rekey limit, the 45- and 15-day reminders, the 24-hour verdict.
    for number in ["72 de ore", "cu 45 și cu 15 zile", "24 de ore"] {
        assert!(ro.contains(number), "the FAQ says {number:?}");
    }
    assert!(ro.contains("carte de identitate, pașaport"), "the documents accepted");
    // Every link of the trust section answers.
    let trust = &ro[ro.find("id=\"trust\"").unwrap()..ro.find("id=\"faq\"").unwrap()];
    let links: Vec<&str> = trust
        .split("href=\"")
        .skip(1)
        .map(|l| &l[..l.find('"').unwrap()])
        .collect();
    assert!(links.len() >= 7, "{links:?}");
    for link in links {
        assert_eq!(app.get(link).status(), 200, "{link}");
    }
    assert!(ro.contains("href=\"/contact\""));

    // The cookie notice, until closed; closing needs no script and goes back where the visitor was.
    assert!(ro.contains("id=\"cookie-notice\"") && ro.contains("doar cookie-uri strict necesare"));
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(app.url("/cookie-notice"))
        .form(&[("next", "/packages")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/packages");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("parafa_cookie_notice=1;") && set.contains("Max-Age=31536000"),
        "{set}"
    );
    let (_, after) = page(&app, "/", Some("ro"), Some("parafa_cookie_notice=1"));
    assert!(!after.contains("id=\"cookie-notice\""), "closed for good");
    // An outside target is not followed.
    let r = client
        .post(app.url("/cookie-notice"))
        .form(&[("next", "https://evil.example/")])
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let (_, en) = page(&app, "/", Some("en"), None);
    assert!(
        en.contains("Questions and answers") && en.contains("1 year ·") && en.contains("strictly necessary cookies")
    );
}
