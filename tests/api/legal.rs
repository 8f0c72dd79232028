//! The trust documents (issue 18): the PKI disclosure statement at the URLs a certificate's QcPDS statement names,
//! in English and Romanian, read back by `pdftotext`; every document as a page and a PDF in both languages; old
//! versions kept; the versions an order's ticks accepted recorded with the consents; and every document link of the
//! order form and of the e-mails answering.

use crate::common;

use common::{run_ok, TestApp};
use serde_json::{json, Value};

const DOCUMENTS: &[&str] = &["pds", "cps", "terms", "order-conditions", "privacy", "user-guide"];

/// The absolute URLs in `bytes` (a certificate's DER or an e-mail) that end in `.pdf`.
fn pdf_urls(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(4).position(|w| w == b"http") {
        let start = at + i;
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_graphic() || *b == b')')
            .map_or(bytes.len(), |n| start + n);
        let url = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        if url.ends_with(".pdf") {
            out.push(url);
        }
        at = end;
    }
    out
}

/// The path of an absolute URL of the server.
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// GETs a PDF: asserts 200 and `application/pdf`, and returns its text by `pdftotext`, whitespace collapsed.
fn pdf_text(app: &TestApp, path: &str) -> String {
    let r = app.get(path);
    assert_eq!(r.status(), 200, "{path}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ct, "application/pdf", "{path}");
    let bytes = r.bytes().unwrap();
    let file = app
        .data_dir
        .join(format!("{}.pdf", path.trim_start_matches('/').replace('/', "_")));
    std::fs::write(&file, &bytes).unwrap();
    let text = run_ok("pdftotext", &["-enc", "UTF-8", file.to_str().unwrap(), "-"]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_all(text: &str, wanted: &[&str], what: &str) {
    for w in wanted {
        assert!(text.contains(w), "{what}: no {w:?} in {text}");
    }
}

/// The certificate's PEM through the CLI, as DER through OpenSSL.
fn certificate_der(app: &TestApp, serial: &str) -> Vec<u8> {
    let pem = app.data_dir.join(format!("{serial}.pem"));
    std::fs::write(&pem, app.cli_ok(&["admin", "cert", serial])).unwrap();
    let der = app.data_dir.join(format!("{serial}.der"));
    run_ok(
        "openssl",
        &[
            "x509",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    std::fs::read(der).unwrap()
}

#[test]
fn the_pds_urls_of_an_issued_certificate_answer_the_pds_in_english_and_romanian() {
    let app = TestApp::spawn();
    let holder = app.create_holder("pds@example.com", "p256", 1);
    let urls = pdf_urls(&certificate_der(&app, &holder.certificate_serial));
    let en = urls
        .iter()
        .find(|u| u.ends_with("/pki/pds-en.pdf"))
        .expect("an English QcPDS");
    let ro = urls
        .iter()
        .find(|u| u.ends_with("/pki/pds-ro.pdf"))
        .expect("a Romanian QcPDS");
    assert!(en.starts_with(&app.url("/")), "{en} is this server's");

    let text = pdf_text(&app, path_of(en));
    // The headings of EN 319 411-1 Annex A.
    assert_all(
        &text,
        &[
            "PKI disclosure statement",
            "TSP contact info",
            "Certificate type, validation procedures and usage",
            "Reliance limits",
            "Obligations of subscribers",
            "Certificate status checking obligations of relying parties",
            "Limited warranty and disclaimer/limitation of liability",
            "Applicable agreements, CPS, CP",
            "Privacy policy",
            "Refund policy",
            "Applicable law, complaints and dispute resolution",
            "TSP and repository licenses, trust marks, and audit",
            "0.4.0.194112.1.2",
        ],
        "pds-en",
    );
    let text = pdf_text(&app, path_of(ro));
    assert_all(
        &text,
        &[
            "Declarația de informare PKI",
            "Date de contact ale prestatorului",
            "Tipul certificatului, procedurile de validare și utilizarea",
            "Limitele de încredere",
            "Obligațiile titularilor",
            "Obligațiile părților care se încred de a verifica starea certificatului",
            "Garanția limitată și limitarea răspunderii",
            "Politica de confidențialitate",
            "Politica de rambursare",
            "Legea aplicabilă, reclamații și soluționarea litigiilor",
            "mărci de încredere și audit",
            "România",
        ],
        "pds-ro",
    );
}

#[test]
fn every_trust_document_is_served_as_a_page_and_a_pdf_in_both_languages() {
    let app = TestApp::spawn();
    let (status, index) = app.page("/legal", "en", None);
    assert_eq!(status, 200);
    for name in DOCUMENTS {
        assert!(
            index.contains(&format!("href=\"/legal/{name}\"")),
            "{name} in the index"
        );
        let mut titles = Vec::new();
        for lang in ["en", "ro"] {
            // `?lang=` wins over the browser's language.
            let other = if lang == "en" { "ro" } else { "en" };
            let (status, html) = app.page(&format!("/legal/{name}?lang={lang}"), other, None);
            assert_eq!(status, 200, "{name} {lang}");
            assert!(
                html.contains(&format!("<article id=\"legal-document\" lang=\"{lang}\"")),
                "{html}"
            );
            let title = html
                .split("<h1>")
                .nth(1)
                .and_then(|t| t.split("</h1>").next())
                .expect("a title")
                .to_owned();
            let text = pdf_text(&app, &format!("/legal/{name}-{lang}.pdf"));
            assert!(
                text.contains(&title),
                "{name}-{lang}.pdf has its title {title:?}: {text}"
            );
            titles.push(title);
        }
        assert_ne!(titles[0], titles[1], "{name}: two languages");
    }
    let ro = pdf_text(&app, "/legal/terms-ro.pdf");
    assert_all(
        &ro,
        &[
            "Termenii și condițiile",
            "semnătură",
            "tranzacții",
            "îndată",
            "Fișierele",
        ],
        "terms-ro",
    );
    assert_eq!(app.get("/legal/nothing").status(), 404);
    assert_eq!(app.get("/legal/terms-de.pdf").status(), 404);
}

#[test]
fn an_old_version_stays_reachable_beside_the_current_one() {
    let app = TestApp::spawn();
    let (_, current) = app.page("/legal/privacy?lang=en", "en", None);
    let version = |html: &str| {
        html.split("data-version=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .expect("a version")
            .to_owned()
    };
    let now = version(&current);
    let versions: Vec<String> = current
        .split("/legal/privacy/v/")
        .skip(1)
        .filter_map(|v| v.split(['?', '"', '/']).next().map(str::to_owned))
        .collect();
    let old = versions
        .iter()
        .find(|v| **v < now)
        .expect("an older version listed")
        .clone();
    let (status, html) = app.page(&format!("/legal/privacy/v/{old}?lang=ro"), "en", None);
    assert_eq!(status, 200);
    assert_eq!(version(&html), old);
    assert!(!html.contains("(în vigoare)"), "an old version is not marked current");
    let text = pdf_text(&app, &format!("/legal/privacy/v/{old}/privacy-ro.pdf"));
    assert!(text.contains(&format!("Versiunea {old}")), "{text}");
    assert_eq!(app.get("/legal/privacy/v/1999-01").status(), 404);
}

fn person() -> Value {
    json!({"type": "person", "confirm_person": true, "name": "Ana Maria Popescu", "country": "Romania",
           "county": "Cluj", "locality": "Cluj-Napoca", "street": "Strada Memorandumului", "number": "28",
           "building": "-", "entrance": "-", "apartment": "-", "postal_code": "400114"})
}

/// Every `href="/legal/…"` of a page.
fn legal_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .filter(|h| h.starts_with("/legal/"))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

fn current_version(app: &TestApp, name: &str) -> String {
    let (_, html) = app.page(&format!("/legal/{name}"), "en", None);
    html.split("data-version=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("a version")
        .to_owned()
}

#[test]
fn an_order_records_the_versions_its_ticks_accepted_and_its_form_and_email_link_served_documents() {
    let app = TestApp::spawn();
    let holder = app.create_account("buyer@example.com", false);
    let cookie = app.web_login(&holder);
    app.consent(&cookie);

    let (status, form) = app.page("/orders/new", "ro", Some(&cookie));
    assert_eq!(status, 200);
    let links = legal_links(&form);
    assert!(links.len() >= 3, "the three ticks link their documents: {links:?}");
    for link in &links {
        let (status, _) = app.page(link, "ro", None);
        assert_eq!(status, 200, "{link}");
    }

    let (status, placed) = app.call(
        "POST",
        "/api/v1/orders",
        Some(&cookie),
        Some(json!({"kind": "new", "package": 1, "invoice": person(),
                    "acknowledgements": {"terms": true, "order_conditions": true, "withdrawal_waiver": true}})),
    );
    assert_eq!(status, 201, "{placed}");
    let (terms, conditions) = (
        current_version(&app, "terms"),
        current_version(&app, "order-conditions"),
    );
    let (_, me) = app.call("GET", "/api/v1/me", Some(&cookie), None);
    assert_eq!(me["consents"]["terms"]["version"], json!(terms), "{me}");
    assert_eq!(me["consents"]["terms"]["granted"], json!(true));
    assert_eq!(me["consents"]["order_conditions"]["version"], json!(conditions), "{me}");

    let mail = app
        .messages_to(&holder.email, 1)
        .into_iter()
        .find(|m| m.contains("Kind: order_placed"))
        .expect("the order e-mail");
    let urls = pdf_urls(mail.as_bytes());
    assert!(
        urls.iter().any(|u| u.contains(&format!("/legal/terms/v/{terms}/")))
            && urls
                .iter()
                .any(|u| u.contains(&format!("/legal/order-conditions/v/{conditions}/"))),
        "the accepted versions linked: {mail}"
    );
    for url in urls {
        pdf_text(&app, path_of(&url));
    }
}

#[test]
fn the_invitation_links_the_terms_the_guide_and_the_privacy_notice_as_served_pages() {
    let app = TestApp::spawn();
    let (status, out) = app.call(
        "POST",
        "/api/v1/enrolments",
        None,
        Some(
            json!({"given_name": "Maria", "surname": "Ionescu", "email": "maria@example.com",
                    "phone": "+40 722 111 222", "privacy_acknowledged": true, "lang": "ro"}),
        ),
    );
    assert_eq!(status, 202, "{out}");
    let mail = app.message("maria@example.com", 1);
    let links: Vec<&str> = mail
        .split_whitespace()
        .filter_map(|w| w.find("/legal/").map(|i| w[i..].trim_end_matches([')', ',', ';', '.'])))
        .collect();
    for name in ["terms", "user-guide", "privacy"] {
        assert!(
            links.iter().any(|l| l.starts_with(&format!("/legal/{name}"))),
            "{name}: {mail}"
        );
    }
    for link in links {
        let (status, html) = app.page(link, "en", None);
        assert_eq!(status, 200, "{link}");
        assert!(html.contains("lang=\"ro\""), "{link} in the e-mail's language");
    }
}
