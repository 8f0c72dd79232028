//! The signing pages and the operator console over HTTP: `/sign` (certificate, transactions left, the upload form
//! the browser test drives), `/sign/{job}` and `/signatures` after a signing through the API, pdf.js when the
//! binary was built with it, and `/operator` (operators only) with a pending identification whose forms point at
//! the operator API.

use crate::common;

use common::{csrf_for, Holder, TestApp};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};

#[test]
fn sign_and_operator_pages_render_in_both_languages_and_are_kept_to_their_users() {
    let app = TestApp::spawn();
    for path in ["/sign", "/signatures", "/operator", "/sign/some-job"] {
        let (s, location, _) = app.page_unfollowed(path, "en", None);
        assert_eq!(
            (s, location.as_str()),
            (303, format!("/login?next={path}").as_str()),
            "{path}"
        );
    }

    let holder = app.create_holder_with("semnatar@example.com", "p256", 1, false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let (s, en, html) = app.page_unfollowed("/sign", "en-GB,en;q=0.9", Some(&cookie));
    assert_eq!((s, en.as_str()), (200, ""));
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Sign documents"),
        "{html}"
    );
    for id in [
        "id=\"sign-files\"",
        "id=\"sign-drop\"",
        "id=\"sign-p7s\" name=\"p7s_for_pdf\"",
        "id=\"sign-upload\"",
        "id=\"sign-totp\"",
        "id=\"sign-submit\"",
        "id=\"sign-error\"",
        "<script src=\"/static/sign.js\" defer>",
    ] {
        assert!(html.contains(id), "/sign has no {id}");
    }
    assert!(html.contains("type=\"file\" multiple"), "several files at once");
    // The certificate that will sign and the transactions left, the account's own.
    assert!(holder.transactions > 0);
    assert!(
        html.contains(&format!("data-left=\"{}\"", holder.transactions)),
        "transactions left: {html}"
    );
    assert!(
        html.contains(&holder.certificate_serial),
        "the signing certificate's serial"
    );
    common::assert_no_inline("/sign", &html);
    let (s, _, ro) = app.page_unfollowed("/sign", "ro-RO", Some(&cookie));
    assert_eq!(s, 200);
    assert!(ro.contains("<html lang=\"ro\">") && ro.contains("Semnare documente") && ro.contains("Tranzacții rămase"));
    let (s, _, ro) = app.page_unfollowed("/signatures", "ro", Some(&cookie));
    assert_eq!(s, 200);
    assert!(
        ro.contains("Istoricul semnărilor") && ro.contains("id=\"signatures-empty\""),
        "{ro}"
    );

    // pdf.js: served when the binary was built with it; without it the page says there are no previews.
    if cfg!(pdfjs) {
        for file in ["/static/pdf.min.mjs", "/static/pdf.worker.min.mjs"] {
            let r = app.get(file);
            assert_eq!(r.status().as_u16(), 200, "{file}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/javascript"),
                "{file}"
            );
            assert!(r.bytes().unwrap().len() > 10_000, "{file}");
        }
        assert!(html.contains("data-previews=\"1\"") && !html.contains("id=\"sign-no-preview\""));
    } else {
        println!("NOTE: built without pdf.js (make web-vendor): /static/pdf.min.mjs is not checked");
        assert_eq!(app.get("/static/pdf.min.mjs").status().as_u16(), 404);
        assert!(html.contains("data-previews=\"0\"") && html.contains("id=\"sign-no-preview\""));
    }

    // The console is for operators: a holder gets 403.
    let (s, _, _) = app.page_unfollowed("/operator", "en", Some(&cookie));
    assert_eq!(s, 403);
    let operator = app.create_operator("consola@parafa.example");
    let op = app.web_login(&operator);
    let (s, _, en) = app.page_unfollowed("/operator", "en", Some(&op));
    assert_eq!(s, 200);
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("Operator console"),
        "{en}"
    );
    for id in [
        "id=\"identity-empty\"",
        "id=\"revoke-form\"",
        "id=\"audit-verify\"",
        "id=\"scheduler-run\"",
        "data-api=\"/api/v1/operator/audit/verify\"",
        "data-api=\"/api/v1/operator/lifecycle/run\"",
        "data-api-template=\"/api/v1/operator/credentials/{id}/revoke\"",
        "<option value=\"key_compromise\">Key compromise</option>",
        "semnatar@example.com",
    ] {
        assert!(en.contains(id), "/operator has no {id}");
    }
    // The revocation form offers the active credentials, the holder's among them.
    assert!(
        en.contains(&format!("<option value=\"{}\">", holder.credential_id)),
        "/operator does not offer {} for revocation",
        holder.credential_id
    );
    common::assert_no_inline("/operator", &en);
    let (s, _, ro) = app.page_unfollowed("/operator", "ro", Some(&op));
    assert_eq!(s, 200);
    assert!(
        ro.contains("Consola operatorului") && ro.contains("Compromiterea cheii"),
        "{ro}"
    );
    // An account without a certificate is told so on the signing page.
    let account = app.create_account("fara.certificat@example.com", false);
    let cookie = app.web_login(&account);
    app.consent(&cookie);
    let (s, _, html) = app.page_unfollowed("/sign", "en", Some(&cookie));
    assert_eq!(s, 200);
    assert!(html.contains("id=\"sign-no-certificate\"") && !html.contains("id=\"sign-upload\""));
}

fn upload(app: &TestApp, cookie: &str, form: Form) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/sign-jobs"))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", csrf_for(cookie))
        .multipart(form)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn the_history_and_the_download_page_show_a_file_signed_through_the_api() {
    let app = TestApp::spawn();
    let holder: Holder = app.create_holder_with("istoric@example.com", "p256", 1, false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let text = b"Contract de prestari servicii\r\n".to_vec();
    let form = Form::new()
        .part("files", Part::bytes(text).file_name("contract.txt"))
        .text("p7s_for_pdf", "false");
    let (s, job) = upload(&app, &cookie, form);
    assert_eq!(s, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let digest = job["files"][0]["sha256"].as_str().unwrap().to_owned();

    // Before the code: the download page says nothing is signed yet.
    let (s, _, html) = app.page_unfollowed(&format!("/sign/{id}"), "en", Some(&cookie));
    assert_eq!(s, 200);
    assert!(
        html.contains("not signed yet") && !html.contains("id=\"sign-zip\""),
        "{html}"
    );

    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": app.fresh_totp(&holder)})),
    );
    assert_eq!(s, 200, "{out}");

    let (s, _, html) = app.page_unfollowed(&format!("/sign/{id}"), "en", Some(&cookie));
    assert_eq!(s, 200);
    for want in [
        format!("id=\"sign-file-0\" href=\"/api/v1/sign-jobs/{id}/files/0\""),
        format!("id=\"sign-zip\" class=\"button\" href=\"/api/v1/sign-jobs/{id}/SignedFiles.zip\""),
        format!("id=\"sign-zip-auto\" class=\"hidden\" href=\"/api/v1/sign-jobs/{id}/SignedFiles.zip\""),
        "contract.txt.p7s".to_owned(),
        "id=\"sign-again\"".to_owned(),
        "<script src=\"/static/sign-done.js\" defer>".to_owned(),
    ] {
        assert!(html.contains(&want), "/sign/{{job}} has no {want}: {html}");
    }
    common::assert_no_inline("/sign/{job}", &html);
    let (s, _, ro) = app.page_unfollowed(&format!("/sign/{id}"), "ro", Some(&cookie));
    assert_eq!(s, 200);
    assert!(ro.contains("Semnează din nou"));

    let (s, _, html) = app.page_unfollowed("/signatures", "en", Some(&cookie));
    assert_eq!(s, 200);
    assert!(html.contains("Signing history"));
    assert!(
        html.contains("<td class=\"name\">contract.txt</td>") && html.contains(&digest) && html.contains("CAdES"),
        "{html}"
    );
    common::assert_no_inline("/signatures", &html);

    // Another holder sees neither the job nor the history.
    let other = app.create_holder_with("altcineva@example.com", "p256", 1, false);
    let other_cookie = app.web_login(&other);
    app.consent(&other_cookie);
    let (s, _, _) = app.page_unfollowed(&format!("/sign/{id}"), "en", Some(&other_cookie));
    assert_eq!(s, 404);
    let (_, _, html) = app.page_unfollowed("/signatures", "en", Some(&other_cookie));
    assert!(!html.contains("contract.txt"));
}

/// Places and pays (sandbox) a new-certificate order, completes its identification; returns the order id.
fn order_under_review(app: &TestApp, cookie: &str) -> String {
    let (s, order) = app.call(
        "POST",
        "/api/v1/orders",
        Some(cookie),
        Some(json!({
            "kind": "new", "package": 1,
            "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true},
            "invoice": {"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
                        "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului",
                        "number": "28", "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"},
        })),
    );
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap_or_else(|| panic!("{order}")).to_owned();
    let (s, paid) = app.call(
        "POST",
        &format!("/api/v1/sandbox-pay/{id}"),
        Some(cookie),
        Some(json!({"outcome": "pay"})),
    );
    assert_eq!(s, 200, "{paid}");
    let (s, session) = app.call(
        "POST",
        &format!("/api/v1/orders/{id}/identity-session"),
        Some(cookie),
        None,
    );
    assert_eq!(s, 201, "{session}");
    let url = session["url"].as_str().unwrap();
    // The link is the sandbox provider's page; the provider reports to the API with the same token.
    let token = url.rsplit("/identity/sandbox/").next().unwrap();
    let link = format!("/api/v1/identity/sandbox/{token}");
    let (s, out) = app.call(
        "POST",
        &link,
        None,
        Some(json!({
            "outcome": "complete",
            "document": {"type": "id_card", "country": "RO", "series": "CJ", "number": "123456",
                         "issued_on": "2020-01-10", "expires_on": "2035-01-10", "issuer": "SPCLEP Cluj-Napoca",
                         "given_name": "Ana-Maria", "surname": "Popescu", "personal_number": "2900101221142"},
            "consents": {"privacy_notice": true, "biometric": true, "captures": true, "recording": true},
        })),
    );
    assert_eq!((s, out["state"].as_str()), (200, Some("under_review")), "{out}");
    id
}

#[test]
fn the_console_lists_a_pending_identification_whose_forms_post_to_the_operator_api() {
    let app = TestApp::spawn_dev();
    let account = app.create_account("identificare@example.com", false);
    let cookie = app.web_login(&account);
    app.consent(&cookie);
    let order = order_under_review(&app, &cookie);
    let operator = app.create_operator("verificator@parafa.example");
    let op = app.web_login(&operator);
    let session = app.session_under_review(&op, &order);

    let (s, _, html) = app.page_unfollowed("/operator", "en", Some(&op));
    assert_eq!(s, 200);
    let api = format!("/api/v1/operator/identity-sessions/{session}");
    for want in [
        format!("id=\"identity-{session}\""),
        format!("id=\"reason-{session}\" name=\"reason\""),
        format!("id=\"fake-{session}\" name=\"fake\" type=\"checkbox\""),
        format!("id=\"accept-{session}\" type=\"submit\" data-api=\"{api}/accept\""),
        format!("id=\"return-{session}\" type=\"submit\" class=\"secondary\" data-api=\"{api}/return\""),
        format!("id=\"reject-{session}\" type=\"submit\" class=\"danger\" data-api=\"{api}/reject\""),
        "identificare@example.com".to_owned(),
        "2900101221142".to_owned(),
    ] {
        assert!(html.contains(&want), "/operator has no {want}");
    }
    assert!(!html.contains("id=\"identity-empty\""));
    let (_, _, ro) = app.page_unfollowed("/operator", "ro", Some(&op));
    assert!(ro.contains("Acceptă") && ro.contains("Returnează pentru completare"));

    // What app.js sends when "accept" is pressed with the reason left empty: {"fake": false}.
    let (s, v) = app.call(
        "POST",
        &format!("{api}/accept"),
        Some(&op),
        Some(json!({"fake": false})),
    );
    assert_eq!((s, v["order_state"].as_str()), (200, Some("accepted")), "{v}");
    let (_, _, html) = app.page_unfollowed("/operator", "en", Some(&op));
    assert!(!html.contains(&format!("id=\"identity-{session}\"")) && html.contains("id=\"identity-empty\""));
}

/// Product rules §5 and the signing dialog's mandated words: the dialog reads "Autorizați semnarea", asks for "the
/// unique 6-digit code" and its button says "Autorizează"; after expiry the page and the signing API say, word for
/// word, "Certificatul dumneavoastră este expirat. Vă rugăm să contactați un administrator." (English alike).
#[test]
fn the_signing_dialog_and_the_expired_certificate_say_the_mandated_words() {
    let app = TestApp::spawn();
    let holder = app.create_holder_with("expira@example.com", "p256", 1, false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    let (_, _, ro) = app.page_unfollowed("/sign", "ro", Some(&cookie));
    for words in [
        "Autorizați semnarea",
        "Introduceți codul unic de 6 cifre afișat în aplicația Authenticator pentru a autoriza semnarea",
        ">Autorizează</button>",
    ] {
        assert!(ro.contains(words), "/sign says {words:?}");
    }

    // A year and a month later the certificate has expired.
    app.advance_clock(395 * 86_400);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);
    const RO: &str = "Certificatul dumneavoastră este expirat. Vă rugăm să contactați un administrator.";
    const EN: &str = "Your certificate has expired. Please contact an administrator.";
    let (s, _, ro) = app.page_unfollowed("/sign", "ro", Some(&cookie));
    assert_eq!(s, 200);
    assert!(ro.contains(RO), "the page says the mandated words: {ro}");
    for (lang, words) in [("ro", RO), ("en", EN)] {
        let r = app
            .client
            .post(app.url("/api/v1/sign-jobs"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", csrf_for(&cookie))
            .header("Accept-Language", lang)
            .multipart(Form::new().part("files", Part::bytes(b"contract".to_vec()).file_name("contract.txt")))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap();
        assert_eq!(
            (status, body["error_description"].as_str()),
            (409, Some(words)),
            "{lang}: {body}"
        );
    }
}
