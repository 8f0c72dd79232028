//! The orders area's pages over HTTP: packages (public) with the API's amounts, the order form, the sandbox
//! payment page, order history and detail with their actions, the sandbox identification page, certificate
//! issuance, the certificates page with its downloads, and the rekey wizard — in both languages, behind the login,
//! and each form pointing at the JSON API it is sent to (which the test then calls as app.js would).

use crate::common;

use common::{Holder, TestApp};
use serde_json::{json, Value};

/// A page that must render (200) in the given language.
fn ok_page(app: &TestApp, path: &str, lang: &str, cookie: Option<&str>) -> String {
    let (s, body) = app.page(path, lang, cookie);
    assert_eq!(s, 200, "GET {path} ({lang}): {body}");
    assert!(
        body.contains(&format!("<html lang=\"{lang}\">")),
        "{path} is not in {lang}"
    );
    body
}

/// Asserts every snippet occurs in the page.
fn has_all(body: &str, what: &str, snippets: &[&str]) {
    for s in snippets {
        assert!(body.contains(s), "{what} lacks {s}:\n{body}");
    }
}

/// The opening tag of the element with this id.
fn tag<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in:\n{body}"));
    let start = body[..at].rfind('<').expect("tag start");
    let end = at + body[at..].find('>').expect("tag end");
    &body[start..=end]
}

/// The value of an attribute in a tag.
fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    tag[at..at + tag[at..].find('"').expect("end")].replace("&#x2f;", "/")
}

fn cents(v: &Value) -> String {
    let c = v.as_i64().expect("an amount");
    format!("{}.{:02}", c / 100, c % 100)
}

fn invoice_person() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "România",
        "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
        "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"})
}

/// The order form's body as app.js builds it (nested names, `data-type="number"`, checkboxes as booleans).
fn order_body(kind: &str, package: u8) -> Value {
    json!({
        "kind": kind,
        "package": package,
        "promo_code": null,
        "invoice": invoice_person(),
        "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true, "newsletter": false},
    })
}

#[test]
fn packages_are_public_with_the_gross_and_ron_amounts_the_api_gives() {
    let app = TestApp::spawn();
    let (s, api) = app.call("GET", "/api/v1/packages", None, None);
    assert_eq!(s, 200);
    for lang in ["ro", "en"] {
        let body = ok_page(&app, "/packages", lang, None);
        for p in api["packages"].as_array().unwrap() {
            let row = format!("id=\"package-{}\"", p["id"]);
            assert!(body.contains(&row), "{row}");
            has_all(
                &body,
                "/packages",
                &[
                    &format!("{} EUR", cents(&p["price"]["gross_eur_cents"])),
                    &format!("{} RON", cents(&p["price"]["total_ron_bani"])),
                    &format!("{} EUR", cents(&p["price"]["net_eur_cents"])),
                    &format!("{} EUR", cents(&p["price"]["vat_eur_cents"])),
                    // The package's name in the page's language (the API gives both).
                    p[if lang == "ro" { "name_ro" } else { "name" }].as_str().unwrap(),
                ],
            );
        }
        assert!(body.contains(api["rate"]["ron_per_eur"].as_str().unwrap()));
        // Logged out: log in to order.
        assert!(body.contains("/login?next=") && !body.contains("id=\"order-package-1\""));
    }
    let ro = ok_page(&app, "/packages", "ro", None);
    assert!(ro.contains("Preț cu TVA") && ro.contains("De plată astăzi"));
    assert!(
        ro.contains("Pachetul 1") && ro.contains(">1 an<") && ro.contains(">2 ani<") && !ro.contains("Package 1"),
        "names and years in Romanian"
    );
    let en = ok_page(&app, "/packages", "en", None);
    assert!(en.contains("Price with VAT") && en.contains("To pay today"));

    // Logged in: an order button per package, to the order form.
    let account = app.create_account("pkg@example.com", false);
    let cookie = app.web_login(&account);
    app.consent(&cookie);
    let body = ok_page(&app, "/packages", "en", Some(&cookie));
    for p in api["packages"].as_array().unwrap() {
        let button = tag(&body, &format!("order-package-{}", p["id"]));
        assert_eq!(
            attr(button, "href"),
            format!("/orders/new?package={}&amp;kind=new", p["id"])
        );
    }
}

#[test]
fn the_pages_redirect_to_the_login_when_logged_out() {
    let app = TestApp::spawn_dev();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, next) in [
        ("/orders", "/orders"),
        (
            "/orders/new?package=2&kind=new",
            "/orders/new%3Fpackage%3D2%26kind%3Dnew",
        ),
        ("/orders/0190/pay", "/orders/0190/pay"),
        ("/orders/0190", "/orders/0190"),
        ("/orders/0190/certificate", "/orders/0190/certificate"),
        ("/certificates", "/certificates"),
        ("/certificates/x/certificate.pem", "/certificates/x/certificate.pem"),
        ("/rekey", "/rekey"),
    ] {
        let r = client.get(app.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(
            r.headers()["location"],
            format!("/login?next={next}").as_str(),
            "{path}"
        );
    }
    // Another holder's order is not found.
    let account = app.create_account("other@example.com", false);
    let cookie = app.web_login(&account);
    app.consent(&cookie);
    let (s, _) = app.page("/orders/0190-none", "en", Some(&cookie));
    assert_eq!(s, 404);
}

/// The order journey through the pages: each page's form is checked (its API and field names), then that API is
/// called with the body app.js sends, and the next page shows the outcome.
#[test]
fn an_order_goes_from_the_form_to_payment_identification_and_issuance_through_the_pages() {
    let app = TestApp::spawn_dev();
    let account = app.create_account("ana@example.com", false);
    let cookie = app.web_login(&account);
    app.consent(&cookie);

    // The order form.
    for lang in ["ro", "en"] {
        let body = ok_page(&app, "/orders/new?package=2&kind=new", lang, Some(&cookie));
        let form = tag(&body, "order-form");
        assert_eq!(attr(form, "data-api"), "/api/v1/orders");
        assert_eq!(attr(form, "data-next"), "/orders/{id}/pay");
        for (id, name) in [
            ("ack-1", "acknowledgements.terms"),
            ("ack-2", "acknowledgements.order_conditions"),
            ("ack-3", "acknowledgements.withdrawal_waiver"),
            ("ack-newsletter", "acknowledgements.newsletter"),
            ("order-kind", "kind"),
            ("order-package", "package"),
            ("order-promo", "promo_code"),
            ("invoice-person", "invoice.type"),
            ("invoice-company", "invoice.type"),
            ("invoice-confirm-person", "invoice.confirm_person"),
            ("invoice-tax-id", "invoice.tax_id"),
            ("invoice-name", "invoice.name"),
            ("invoice-country", "invoice.country"),
            ("invoice-county", "invoice.county"),
            ("invoice-locality", "invoice.locality"),
            ("invoice-street", "invoice.street"),
            ("invoice-number", "invoice.number"),
            ("invoice-building", "invoice.building"),
            ("invoice-entrance", "invoice.entrance"),
            ("invoice-apartment", "invoice.apartment"),
            ("invoice-postal-code", "invoice.postal_code"),
        ] {
            assert_eq!(attr(tag(&body, id), "name"), name, "#{id}");
        }
        assert!(tag(&body, "order-package").contains("data-type=\"number\""));
        assert!(
            tag(&body, "invoice-tax-id").contains("disabled"),
            "company fields start disabled"
        );
        assert!(
            body.contains("<option value=\"2\" selected>"),
            "the package asked for is chosen"
        );
        assert!(body.contains("id=\"order-submit\"") && body.contains("/static/orders.js"));
    }
    let ro = ok_page(&app, "/orders/new?package=2", "ro", Some(&cookie));
    assert!(ro.contains("Plasează comanda și efectuează plata") && ro.contains("dreptul de retragere"));

    // An order to cancel, then the one that goes on.
    let (s, spare) = app.call("POST", "/api/v1/orders", Some(&cookie), Some(order_body("new", 1)));
    assert_eq!(s, 201, "{spare}");
    let spare_id = spare["id"].as_str().unwrap().to_owned();
    let (s, order) = app.call("POST", "/api/v1/orders", Some(&cookie), Some(order_body("new", 2)));
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let number = order["registration_number"].as_str().unwrap().to_owned();

    // The history shows both, with their actions.
    let list = ok_page(&app, "/orders", "en", Some(&cookie));
    has_all(
        &list,
        "/orders",
        &[
            &number,
            spare["registration_number"].as_str().unwrap(),
            &format!("id=\"pay-{id}\""),
            &format!("id=\"cancel-{spare_id}\""),
            &format!("{} RON", cents(&order["price"]["total_ron_bani"])),
            "Awaiting payment",
        ],
    );
    let cancel = list[..list.find(&format!("id=\"cancel-{spare_id}\"")).unwrap()]
        .rfind("<form")
        .map(|i| &list[i..])
        .unwrap();
    assert_eq!(attr(cancel, "data-api"), format!("/api/v1/orders/{spare_id}/cancel"));
    let (s, cancelled) = app.call(
        "POST",
        &format!("/api/v1/orders/{spare_id}/cancel"),
        Some(&cookie),
        None,
    );
    assert_eq!(
        (s, cancelled["state"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    let ro_list = ok_page(&app, "/orders", "ro", Some(&cookie));
    assert!(ro_list.contains("Anulată") && ro_list.contains("În așteptarea plății"));

    // The payment page: the amount, and the pay button's form.
    for lang in ["ro", "en"] {
        let pay = ok_page(&app, &format!("/orders/{id}/pay"), lang, Some(&cookie));
        let (_, gateway) = app.call("GET", &format!("/api/v1/sandbox-pay/{id}"), Some(&cookie), None);
        let charge = gateway["charge"].as_str().unwrap(); // "Pay 123.45 RON (24.25 EUR)"
        let ron = charge.split(' ').nth(1).unwrap();
        assert!(pay.contains(&format!("{ron} RON")), "{charge} on the page");
        assert!(pay.contains(&number));
        let form = tag(&pay, "pay-form");
        assert_eq!(attr(form, "data-api"), format!("/api/v1/sandbox-pay/{id}"));
        assert_eq!(attr(form, "data-next"), format!("/orders/{id}"));
        assert!(pay.contains("name=\"outcome\" value=\"pay\"") && pay.contains("id=\"pay-button\""));
        assert!(pay.contains("name=\"outcome\" value=\"fail\"") && pay.contains("id=\"fail-button\""));
    }
    let (s, paid) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(&cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!((s, paid["state"].as_str()), (200, Some("paid")), "{paid}");

    // The order page: paid, the identification action and the invoice.
    let detail = ok_page(&app, &format!("/orders/{id}"), "en", Some(&cookie));
    has_all(
        &detail,
        "/orders/{id}",
        &[
            &number,
            "Paid",
            &format!("id=\"identify-{id}\""),
            &format!("/api/v1/orders/{id}/invoice.pdf"),
            "Ana Maria Popescu",
        ],
    );
    let identify = detail[..detail.find(&format!("id=\"identify-{id}\"")).unwrap()]
        .rfind("<form")
        .map(|i| &detail[i..])
        .unwrap();
    assert_eq!(
        attr(identify, "data-api"),
        format!("/api/v1/orders/{id}/identity-session")
    );
    assert_eq!(attr(identify, "data-go"), "url");
    ok_page(&app, &format!("/orders/{id}"), "ro", Some(&cookie));
    let r = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}/invoice.pdf")))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().unwrap().starts_with(b"%PDF"));

    // The identification: the session's link is the identification page.
    let (s, session) = app.call(
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        Some(&cookie),
        None,
    );
    assert_eq!(s, 201, "{session}");
    let url = session["url"].as_str().unwrap();
    let path = &url[url.find("/identity/sandbox/").expect("the sandbox page")..];
    assert!(
        !url.contains("/api/v1/"),
        "the link is the page, not the JSON route: {url}"
    );
    let token = path.rsplit('/').next().unwrap().to_owned();
    for lang in ["ro", "en"] {
        // No login needed: the link is the credential.
        let idv = ok_page(&app, path, lang, None);
        let form = tag(&idv, "identity-form");
        assert_eq!(attr(form, "data-api"), format!("/api/v1/identity/sandbox/{token}"));
        for (id, name) in [
            ("doc-type", "document.type"),
            ("doc-country", "document.country"),
            ("doc-series", "document.series"),
            ("doc-number", "document.number"),
            ("doc-issued-on", "document.issued_on"),
            ("doc-expires-on", "document.expires_on"),
            ("doc-issuer", "document.issuer"),
            ("doc-given-name", "document.given_name"),
            ("doc-surname", "document.surname"),
            ("doc-personal-number", "document.personal_number"),
            ("consent-privacy", "consents.privacy_notice"),
            ("consent-biometric", "consents.biometric"),
            ("consent-captures", "consents.captures"),
            ("consent-recording", "consents.recording"),
            ("idv-phone", "phone"),
        ] {
            assert_eq!(attr(tag(&idv, id), "name"), name, "#{id}");
        }
        has_all(
            &idv,
            "identity page",
            &[
                &number,
                "id=\"identity-submit\"",
                "name=\"outcome\" value=\"complete\"",
                "+40712345678",
            ],
        );
    }
    let (s, _) = app.page("/identity/sandbox/not-a-token", "en", None);
    assert_eq!(s, 404);
    let (s, done) = app.call(
        "POST",
        &format!("/api/v1/identity/sandbox/{token}"),
        None,
        Some(json!({
            "outcome": "complete",
            "document": {"type": "id_card", "country": "RO", "series": "CJ", "number": "123456",
                "issued_on": "2020-01-10", "expires_on": "2035-01-10", "issuer": "SPCLEP Cluj-Napoca",
                "given_name": "Ana-Maria", "surname": "Popescu", "personal_number": "2900101221142"},
            "consents": {"privacy_notice": true, "biometric": true, "captures": true, "recording": true},
            "phone": "+40722333444",
        })),
    );
    assert_eq!((s, done["state"].as_str()), (200, Some("under_review")), "{done}");
    // A used link shows the API's message.
    let (s, used) = app.page(path, "en", None);
    assert_eq!(s, 410, "{used}");

    // Before the operator accepts: the issuance page says so.
    let waiting = ok_page(&app, &format!("/orders/{id}/certificate"), "en", Some(&cookie));
    assert!(waiting.contains("id=\"issue-not-ready\"") && !waiting.contains("id=\"issue-form\""));

    let op = app.create_operator("op@example.com");
    let op_cookie = app.web_login(&op);
    let sid = app.session_under_review(&op_cookie, &id);
    let (s, v) = app.call(
        "POST",
        &format!("/api/v1/operator/identity-sessions/{sid}/accept"),
        Some(&op_cookie),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let list = ok_page(&app, "/orders", "en", Some(&cookie));
    assert!(
        list.contains(&format!("href=\"/orders/{id}/certificate\"")),
        "issue action"
    );

    // The issuance page: the terms to scroll, the key, the TOTP code.
    for lang in ["ro", "en"] {
        let issue = ok_page(&app, &format!("/orders/{id}/certificate"), lang, Some(&cookie));
        let form = tag(&issue, "issue-form");
        assert_eq!(attr(form, "data-api"), "/api/v1/me/certificates");
        assert_eq!(attr(form, "data-next"), "/certificates");
        assert_eq!(attr(tag(&issue, "issue-totp"), "name"), "totp");
        assert_eq!(attr(tag(&issue, "issue-terms"), "name"), "terms_accepted");
        assert_eq!(attr(tag(&issue, "issue-key"), "name"), "key");
        assert_eq!(
            attr(tag(&issue, "issue-terms-text"), "data-scroll-gate"),
            "#issue-terms, #issue-submit"
        );
        has_all(
            &issue,
            "issuance page",
            &[
                &format!("name=\"order_id\" value=\"{id}\""),
                "issuance terms",
                &number,
                "id=\"issue-submit\"",
            ],
        );
        // The phone changed in the session: confirm or refuse it.
        assert_eq!(attr(tag(&issue, "issue-phone-confirm"), "name"), "phone");
        assert_eq!(attr(tag(&issue, "issue-phone-confirm"), "value"), "confirm");
        assert_eq!(attr(tag(&issue, "issue-phone-refuse"), "value"), "refuse");
        assert!(issue.contains("…444"));
    }
    let (s, issued) = app.call(
        "POST",
        "/api/v1/me/certificates",
        Some(&cookie),
        Some(
            json!({"order_id": id, "terms_accepted": true, "key": "p256", "phone": "refuse",
            "totp": app.fresh_totp(&account)}),
        ),
    );
    assert_eq!(s, 201, "{issued}");

    // The certificates page: the new certificate with the package's transactions.
    let certs = ok_page(&app, "/certificates", "en", Some(&cookie));
    let cid = issued["credential_id"].as_str().unwrap();
    has_all(
        &certs,
        "/certificates",
        &[
            issued["certificate_serial"].as_str().unwrap(),
            &format!("<strong class=\"transactions-left\" id=\"left-{cid}\">400</strong>"),
            "Valid",
            &format!("/api/v1/me/certificates/{cid}/terms-evidence.p7s"),
        ],
    );
    let detail = ok_page(&app, &format!("/orders/{id}"), "ro", Some(&cookie));
    assert!(detail.contains("Soluționată"));
}

#[test]
fn the_certificates_page_offers_the_issuing_ca_as_pem_cer_and_crt() {
    let app = TestApp::spawn_dev();
    let holder: Holder = app.create_holder_with("ana@example.com", "p256", 1, false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let cid = holder.credential_id.clone();
    let public = app.get("/pki/issuing.crt");
    assert_eq!(public.status(), 200);
    let issuing = public.bytes().unwrap().to_vec();
    for (lang, words) in [
        (
            "en",
            [
                "Issuing CA certificate (DER, .cer)",
                "Issuing CA certificate (DER, .crt)",
            ],
        ),
        (
            "ro",
            [
                "Certificatul CA emitente (DER, .cer)",
                "Certificatul CA emitente (DER, .crt)",
            ],
        ),
    ] {
        let body = ok_page(&app, "/certificates", lang, Some(&cookie));
        has_all(&body, "/certificates", &words);
        let pem_link = tag(&body, &format!("ca-pem-{cid}"));
        assert_eq!(attr(pem_link, "href"), "/certificates/issuing-ca.pem");
        for ext in ["cer", "crt"] {
            let link = tag(&body, &format!("ca-{ext}-{cid}"));
            let href = attr(link, "href");
            assert_eq!(href, format!("/certificates/issuing-ca.{ext}"), "{link}");
            assert_eq!(attr(link, "download"), format!("issuing-ca.{ext}"), "{link}");
            let r = app.client.get(app.url(&href)).header("Cookie", &cookie).send().unwrap();
            assert_eq!(r.status(), 200, "{href}");
            assert_eq!(r.headers()["content-type"], "application/pkix-cert", "{href}");
            assert_eq!(
                r.headers()["content-disposition"],
                format!("attachment; filename=\"issuing-ca.{ext}\"").as_str(),
                "{href}"
            );
            let der = r.bytes().unwrap().to_vec();
            assert_eq!(der, issuing, "{href} is /pki/issuing.crt");
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join(format!("issuing-ca.{ext}"));
            std::fs::write(&file, &der).unwrap();
            let subject = common::run_ok(
                "openssl",
                &[
                    "x509",
                    "-inform",
                    "der",
                    "-in",
                    file.to_str().unwrap(),
                    "-noout",
                    "-subject",
                ],
            );
            assert!(subject.contains("Parafa"), "{href}: {subject}");
        }
    }
    // The same certificate as the PEM beside it.
    let r = app
        .client
        .get(app.url("/certificates/issuing-ca.pem"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    let pem = r.text().unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let dir = tempfile::tempdir().unwrap();
    let pem_file = dir.path().join("issuing-ca.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let from_pem = dir.path().join("from-pem.der");
    common::run_ok(
        "openssl",
        &[
            "x509",
            "-in",
            pem_file.to_str().unwrap(),
            "-outform",
            "der",
            "-out",
            from_pem.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&from_pem).unwrap(), issuing, "{b64}");
    // Like the PEM, for a signed-in holder only.
    for ext in ["cer", "crt"] {
        let (s, location, _) = app.page_unfollowed(&format!("/certificates/issuing-ca.{ext}"), "en", None);
        assert_ne!(s, 200, "{ext} without a session");
        assert!(s == 401 || location.contains("/login"), "{ext}: {s} {location}");
    }
}

#[test]
fn the_certificates_page_shows_a_holders_certificate_with_its_downloads_and_the_rekey_wizard_runs() {
    let app = TestApp::spawn_dev();
    let holder: Holder = app.create_holder_with("ion@example.com", "rsa2048", 1, false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let cid = holder.credential_id.clone();
    for (lang, words) in [
        ("ro", ["Tranzacții rămase", "Valabil"]),
        ("en", ["Transactions left", "Valid"]),
    ] {
        let body = ok_page(&app, "/certificates", lang, Some(&cookie));
        has_all(
            &body,
            "/certificates",
            &[
                &holder.certificate_serial,
                &format!("id=\"left-{cid}\">{}</strong>", holder.transactions),
                &format!("/certificates/{cid}/certificate.pem"),
                &format!("/certificates/{cid}/certificate.cer"),
                "/certificates/issuing-ca.pem",
                &format!("id=\"rekey-{cid}\""),
                words[0],
                words[1],
            ],
        );
    }
    let get = |path: &str| {
        let r = app.client.get(app.url(path)).header("Cookie", &cookie).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        r.bytes().unwrap().to_vec()
    };
    let pem = String::from_utf8(get(&format!("/certificates/{cid}/certificate.pem"))).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let (_, api) = app.call("GET", "/api/v1/me/certificates", Some(&cookie), None);
    assert_eq!(pem, api["certificates"][0]["certificate_pem"].as_str().unwrap());
    assert_eq!(
        String::from_utf8(get("/certificates/issuing-ca.pem")).unwrap(),
        api["issuing_ca_pem"].as_str().unwrap()
    );
    assert_eq!(get(&format!("/certificates/{cid}/certificate.cer"))[0], 0x30, "DER");
    let (s, _) = app.page("/certificates/nope/certificate.pem", "en", Some(&cookie));
    assert_eq!(s, 404);

    // The rekey wizard: the privacy notice, then the order form for a rekey.
    let notice = ok_page(&app, "/rekey", "en", Some(&cookie));
    assert!(notice.contains("data-step=\"notice\""));
    assert_eq!(
        attr(tag(&notice, "rekey-notice-form"), "data-local-next"),
        "/orders/new?kind=rekey&amp;package=1"
    );
    let ro = ok_page(&app, "/rekey", "ro", Some(&cookie));
    assert!(ro.contains("Nota de informare"));
    let form = ok_page(&app, "/orders/new?kind=rekey&package=1", "en", Some(&cookie));
    assert!(form.contains("<option value=\"rekey\" selected>"));
    let (s, order) = app.call("POST", "/api/v1/orders", Some(&cookie), Some(order_body("rekey", 1)));
    assert_eq!(s, 201, "{order}");
    let oid = order["id"].as_str().unwrap().to_owned();
    let unpaid = ok_page(&app, "/rekey", "en", Some(&cookie));
    assert!(unpaid.contains("data-step=\"pay\"") && unpaid.contains(&format!("/orders/{oid}/pay")));
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{oid}"),
        Some(&cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(s, 200);
    let orders = ok_page(&app, "/orders", "en", Some(&cookie));
    assert!(
        orders.contains(&format!("href=\"/rekey?order={oid}\"")),
        "the rekey action"
    );

    // Paid: the privacy notice acknowledged to the API.
    let start = ok_page(&app, &format!("/rekey?order={oid}"), "en", Some(&cookie));
    let form = tag(&start, "rekey-start-form");
    assert_eq!(attr(form, "data-api"), "/api/v1/me/rekey");
    assert!(start.contains(&format!("name=\"order_id\" value=\"{oid}\"")));
    assert_eq!(attr(tag(&start, "rekey-privacy"), "name"), "privacy_notice");
    let (s, request) = app.call(
        "POST",
        "/api/v1/me/rekey",
        Some(&cookie),
        Some(json!({"order_id": oid, "privacy_notice": true})),
    );
    assert_eq!(s, 201, "{request}");
    let rid = request["id"].as_str().unwrap().to_owned();

    // The document and its copy (multipart), the size rule in the page.
    for lang in ["ro", "en"] {
        let doc = ok_page(&app, "/rekey", lang, Some(&cookie));
        assert!(doc.contains("data-step=\"document\""));
        let form = tag(&doc, "rekey-identity-form");
        assert_eq!(attr(form, "data-api"), format!("/api/v1/me/rekey/{rid}/identity"));
        let photo = tag(&doc, "rekey-photo");
        assert_eq!(attr(photo, "name"), "photo");
        assert_eq!(attr(photo, "type"), "file");
        assert_eq!(attr(photo, "data-max-bytes"), (3 * 1024 * 1024).to_string());
        for (id, name) in [
            ("rekey-doc-type", "type"),
            ("rekey-country", "country"),
            ("rekey-series", "series"),
            ("rekey-number", "number"),
            ("rekey-issued-on", "issued_on"),
            ("rekey-expires-on", "expires_on"),
            ("rekey-issuer", "issuer"),
            ("rekey-given-name", "given_name"),
            ("rekey-surname", "surname"),
            ("rekey-personal-number", "personal_number"),
        ] {
            assert_eq!(attr(tag(&doc, id), "name"), name, "#{id}");
        }
    }
    let en = ok_page(&app, "/rekey", "en", Some(&cookie));
    assert!(en.contains("The copy of the document is larger than 3 MB"));
    let ro = ok_page(&app, "/rekey", "ro", Some(&cookie));
    assert!(ro.contains("Copia documentului depășește 3 MB"));
    let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0];
    let form = reqwest::blocking::multipart::Form::new()
        .text("type", "id_card")
        .text("country", "RO")
        .text("series", "CJ")
        .text("number", "654321")
        .text("issued_on", "2021-05-01")
        .text("expires_on", "2035-05-01")
        .text("issuer", "SPCLEP Cluj-Napoca")
        .text("given_name", "Ion")
        .text("surname", "Popescu")
        .text("personal_number", "")
        .part(
            "photo",
            reqwest::blocking::multipart::Part::bytes(png.to_vec())
                .file_name("copy.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/me/rekey/{rid}/identity")))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", common::csrf_for(&cookie))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());

    // The terms signed with a TOTP code.
    let terms = ok_page(&app, "/rekey", "en", Some(&cookie));
    assert!(terms.contains("data-step=\"terms\""));
    let form = tag(&terms, "rekey-submit-form");
    assert_eq!(attr(form, "data-api"), format!("/api/v1/me/rekey/{rid}/submit"));
    assert_eq!(attr(tag(&terms, "rekey-totp"), "name"), "totp");
    assert_eq!(attr(tag(&terms, "rekey-terms"), "name"), "terms_accepted");
    assert!(
        terms.contains("data-scroll-gate=\"#rekey-terms, #rekey-submit\"") && terms.contains("id=\"rekey-submit\"")
    );
    let (s, sent) = app.call(
        "POST",
        &format!("/api/v1/me/rekey/{rid}/submit"),
        Some(&cookie),
        Some(json!({"terms_accepted": true, "totp": app.fresh_totp(&holder)})),
    );
    assert_eq!(s, 200, "{sent}");

    // Sent for approval: the state and the successor's date on the wizard and the certificates page.
    let status = ok_page(&app, "/rekey", "en", Some(&cookie));
    let successor = sent["successor_issue_at"].as_str().unwrap();
    assert!(
        status.contains("data-step=\"status\"") && status.contains(successor),
        "{status}"
    );
    let certs = ok_page(&app, "/certificates", "en", Some(&cookie));
    assert!(certs.contains("Sent for approval") && certs.contains(successor));
    let certs = ok_page(&app, "/certificates", "ro", Some(&cookie));
    assert!(certs.contains("Trimisă spre aprobare"));
}
