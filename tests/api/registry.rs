//! The public certificate registry (product rules §11): search by name or whole e-mail address without logging in,
//! status as the CRL and OCSP give it, downloads of the certificate (DER) and of the certificate with the issuing
//! CA (PEM bundle, PKCS#7), judged by openssl; the page in both languages. SQLite, and PostgreSQL when
//! `PARAFA_TEST_POSTGRES_URL` is set.

use crate::common;

use common::{assert_no_inline, run_ok, Holder, TestApp};
use serde_json::Value;

/// A holder (2FA off) with this name and a P-256 certificate, made with the CLI.
fn holder(app: &TestApp, email: &str, name: &str, extra: &[&str]) -> Holder {
    app.create_holder_named(email, name, "p256", 1, false, extra)
}

/// `GET /api/v1/registry?q=…` without a session: status, JSON, and the answer's text.
fn search(app: &TestApp, q: &str, lang: Option<&str>) -> (u16, Value, String) {
    let mut req = app.client.get(app.url("/api/v1/registry")).query(&[("q", q)]);
    if let Some(l) = lang {
        req = req.header("Accept-Language", l);
    }
    let r = req.send().expect("registry search");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

/// The serials a search found.
fn serials(app: &TestApp, q: &str) -> Vec<String> {
    let (s, v, text) = search(app, q, None);
    assert_eq!(s, 200, "{q}: {text}");
    assert!(!text.contains('@'), "{q}: an e-mail address in the answer: {text}");
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["serial"].as_str().expect("serial").to_owned())
        .collect()
}

fn download(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let r = app.get(path);
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().expect("body").to_vec())
}

fn page(app: &TestApp, path: &str, lang: &str) -> String {
    let r = app
        .client
        .get(app.url(path))
        .header("Accept-Language", lang)
        .send()
        .expect("page");
    assert_eq!(r.status(), 200, "{path} ({lang})");
    let html = r.text().expect("html");
    assert_no_inline(path, &html);
    // minijinja escapes `/` in values (`&#x2f;`), which browsers read back as `/`.
    html.replace("&#x2f;", "/")
}

#[test]
fn the_registry_finds_downloads_and_shows_status() {
    registry_journey(TestApp::spawn());
}

#[test]
fn the_registry_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres() {
        registry_journey(app);
    }
}

fn registry_journey(app: TestApp) {
    let ioana = holder(&app, "ioana.popescu@example.ro", "Ioana Popescu", &[]);
    let mihai = holder(&app, "mihai@example.ro", "Mihai Popescu-Ionescu", &[]);
    let dan = holder(&app, "dan@example.ro", "Dan Ox_y", &[]);
    let masked = holder(&app, "elena@example.ro", "Elena Secretă", &["--pseudonym", "Vulpea"]);
    let both = |mut v: Vec<String>| {
        v.sort();
        v
    };

    // By name: a case-insensitive substring of the name, across given name and surname.
    assert_eq!(
        both(serials(&app, "POPESCU")),
        both(vec![ioana.certificate_serial.clone(), mihai.certificate_serial.clone()])
    );
    assert_eq!(serials(&app, "oana pop"), vec![ioana.certificate_serial.clone()]);
    assert_eq!(serials(&app, "  ionescu "), vec![mihai.certificate_serial.clone()]);
    // `%` and `_` are literal: "p_p" and "%%%" would match every Popescu as wildcards.
    assert!(serials(&app, "p_p").is_empty());
    assert!(serials(&app, "%%%").is_empty());
    assert!(serials(&app, "x%y").is_empty());
    assert_eq!(serials(&app, "x_y"), vec![dan.certificate_serial.clone()]);

    // By e-mail: the whole address only (any case); a part finds nothing.
    assert_eq!(
        serials(&app, "IOANA.Popescu@example.ro"),
        vec![ioana.certificate_serial.clone()]
    );
    assert!(serials(&app, "ioana.popescu@example").is_empty());
    assert!(serials(&app, "@example.ro").is_empty());
    assert!(serials(&app, "ioana.popescu").is_empty());

    // A pseudonymous certificate: never found by the real name; by its address, under the pseudonym.
    assert!(serials(&app, "Secretă").is_empty());
    assert!(serials(&app, "elena").is_empty());
    let (_, v, _) = search(&app, "elena@example.ro", None);
    assert_eq!(v["results"][0]["serial"], masked.certificate_serial.as_str());
    assert_eq!(v["results"][0]["name"], "Vulpea");

    // What an entry says: the name in the certificate, validity, status, issuer, downloads, status sources.
    let (s, v, text) = search(&app, "Ioana", None);
    assert_eq!(s, 200, "{text}");
    assert_eq!(v["by"], "name");
    assert_eq!(v["truncated"], false);
    let e = &v["results"][0];
    assert_eq!(e["name"], "Ioana Popescu");
    assert_eq!(e["status"], "valid");
    assert!(e["revoked_at"].is_null() && e["revocation_reason"].is_null(), "{e}");
    assert!(
        e["valid_from"].as_str().unwrap() < e["valid_to"].as_str().unwrap(),
        "{e}"
    );
    let issuer = e["issuer"].as_str().expect("issuer").to_owned();
    assert!(!issuer.is_empty());
    let serial = &ioana.certificate_serial;
    assert_eq!(e["downloads"]["der"], format!("/registry/{serial}.cer"));
    assert_eq!(e["downloads"]["chain_pem"], format!("/registry/{serial}-chain.pem"));
    assert_eq!(e["downloads"]["chain_p7b"], format!("/registry/{serial}-chain.p7b"));
    assert_eq!(v["status_sources"]["crl"], app.url("/pki/crl"));
    assert_eq!(v["status_sources"]["ocsp"], app.url("/pki/ocsp"));

    // Bad texts: too short, too long, missing; the message in Romanian for a browser asking for it.
    let (s, v, _) = search(&app, "po", None);
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(
        v["error_description"],
        "search for a name of at least 3 characters, or a whole e-mail address"
    );
    let (s, v, _) = search(&app, "po", Some("ro"));
    assert_eq!(s, 400);
    assert_eq!(
        v["error_description"],
        "căutați un nume de cel puțin 3 caractere sau o adresă de e-mail completă"
    );
    let (s, v, _) = search(&app, &"a".repeat(101), None);
    assert_eq!(s, 400, "{v}");
    let (s, _) = app.call("GET", "/api/v1/registry", None, None);
    assert_eq!(s, 400);

    // The DER download, as openssl reads it.
    let dir = tempfile::tempdir().unwrap();
    let (s, ct, der) = download(&app, &format!("/registry/{serial}.cer"));
    assert_eq!((s, ct.as_str()), (200, "application/pkix-cert"));
    let cer = dir.path().join("ioana.cer");
    std::fs::write(&cer, &der).unwrap();
    let out = run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            cer.to_str().unwrap(),
            "-noout",
            "-subject",
            "-serial",
            "-nameopt",
            "utf8",
        ],
    );
    assert!(out.contains("Ioana Popescu"), "{out}");
    assert!(out.to_lowercase().contains(&format!("serial={serial}")), "{out}");
    // Upper-case serials are the same certificate.
    let (s, _, again) = download(&app, &format!("/registry/{}.cer", serial.to_uppercase()));
    assert_eq!((s, again), (200, der.clone()));

    // The chain PEM: the holder's certificate, then the issuing CA's; it verifies up to our root.
    let (s, ct, pem) = download(&app, &format!("/registry/{serial}-chain.pem"));
    assert_eq!(s, 200);
    assert!(ct.starts_with("application/x-pem-file"), "{ct}");
    let pem = String::from_utf8(pem).unwrap();
    let blocks: Vec<&str> = pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN"))
        .collect();
    assert_eq!(blocks.len(), 2, "{pem}");
    let (root, issuing) = app.ca_pems();
    assert_eq!(blocks[1].trim(), std::fs::read_to_string(&issuing).unwrap().trim());
    let (leaf, mid) = (dir.path().join("leaf.pem"), dir.path().join("mid.pem"));
    std::fs::write(&leaf, blocks[0]).unwrap();
    std::fs::write(&mid, blocks[1]).unwrap();
    // openssl verify of the holder's certificate against our root, with `untrusted` as the intermediates.
    let verify = |untrusted: &std::path::Path| {
        let out = run_ok(
            "openssl",
            &[
                "verify",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                untrusted.to_str().unwrap(),
                leaf.to_str().unwrap(),
            ],
        );
        assert!(out.contains(": OK"), "{out}");
    };
    verify(&mid);
    // The PEM's first certificate is the one the DER download gives.
    let fp = |args: &[&str]| run_ok("openssl", args).trim().to_owned();
    assert_eq!(
        fp(&[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256"
        ]),
        fp(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            cer.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256"
        ])
    );

    // The PKCS#7 certs-only: the holder's and the issuing CA's certificates.
    let (s, ct, p7b) = download(&app, &format!("/registry/{serial}-chain.p7b"));
    assert_eq!((s, ct.as_str()), (200, "application/x-pkcs7-certificates"));
    let p7 = dir.path().join("chain.p7b");
    std::fs::write(&p7, &p7b).unwrap();
    let out = run_ok(
        "openssl",
        &["pkcs7", "-inform", "DER", "-in", p7.to_str().unwrap(), "-print_certs"],
    );
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 2, "{out}");
    assert!(out.contains("Ioana Popescu") && out.contains(&issuer), "{out}");
    let certs = dir.path().join("p7-certs.pem");
    std::fs::write(&certs, &out).unwrap();
    verify(&certs);

    // Holder certificates only: unknown serials, junk, the CA's and the TSA's certificates are 404 JSON.
    let issuing_serial = run_ok(
        "openssl",
        &["x509", "-in", issuing.to_str().unwrap(), "-noout", "-serial"],
    )
    .trim()
    .trim_start_matches("serial=")
    .to_lowercase();
    let (s, ct, tsa) = download(&app, "/pki/tsa.crt");
    assert_eq!((s, ct.as_str()), (200, "application/pkix-cert"));
    let tsa_file = dir.path().join("tsa.cer");
    std::fs::write(&tsa_file, tsa).unwrap();
    let tsa_serial = run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            tsa_file.to_str().unwrap(),
            "-noout",
            "-serial",
        ],
    )
    .trim()
    .trim_start_matches("serial=")
    .to_lowercase();
    for path in [
        "/registry/00112233445566778899aabbccddeeff.cer".to_owned(),
        "/registry/not-a-serial.cer".to_owned(),
        format!("/registry/{serial}.exe"),
        format!("/registry/{issuing_serial}.cer"),
        format!("/registry/{tsa_serial}.cer"),
        format!("/registry/{tsa_serial}-chain.pem"),
    ] {
        let r = app.get(&path);
        assert_eq!(r.status(), 404, "{path}");
        let v: Value = r.json().expect("JSON 404");
        assert_eq!(v["error"], "not_found", "{path}");
    }
    let tsa_name = run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            tsa_file.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "multiline",
        ],
    );
    let tsa_cn = tsa_name
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim_start_matches([' ', '=']).to_owned())
        })
        .expect("TSA CN");
    assert!(serials(&app, &tsa_cn).is_empty(), "{tsa_cn}");
    assert!(serials(&app, "parafa").is_empty());

    // A revoked certificate shows revoked, with the date and the reason.
    app.cli_ok(&["admin", "revoke", &ioana.credential_id, "--reason", "key_compromise"]);
    let (_, v, _) = search(&app, "ioana.popescu@example.ro", None);
    let e = &v["results"][0];
    assert_eq!(e["status"], "revoked", "{e}");
    assert_eq!(e["revocation_reason"], "key_compromise");
    assert!(e["revoked_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    // …and still downloads (relying parties check old signatures).
    assert_eq!(download(&app, &format!("/registry/{serial}.cer")).0, 200);

    // The page: public, both languages, the search box and the results with their links.
    let en = page(&app, "/registry", "en");
    for id in [
        "registry-search",
        "registry-q",
        "registry-submit",
        "registry-sources",
        "registry-crl",
        "registry-ocsp",
    ] {
        assert!(en.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(en.contains("Public certificate registry"));
    assert!(en.contains(&app.url("/pki/crl")) && en.contains(&app.url("/pki/ocsp")));
    assert!(en.contains("href=\"/registry\""), "nav link for visitors");
    let ro = page(&app, "/registry", "ro");
    assert!(ro.contains("Registrul public al certificatelor"));
    assert!(ro.contains("lang=\"ro\""));

    let en = page(&app, "/registry?q=popescu", "en");
    for s in [&ioana.certificate_serial, &mihai.certificate_serial] {
        assert!(en.contains(&format!("id=\"reg-{s}\"")), "{s}");
        assert!(en.contains(&format!("href=\"/registry/{s}.cer\"")), "{s}");
        assert!(en.contains(&format!("href=\"/registry/{s}-chain.pem\"")), "{s}");
        assert!(en.contains(&format!("href=\"/registry/{s}-chain.p7b\"")), "{s}");
    }
    assert!(en.contains("Ioana Popescu") && en.contains("Mihai Popescu-Ionescu"));
    assert!(!en.contains("@example.ro"), "an e-mail address on the page");
    assert!(en.contains(&format!("id=\"status-{serial}\"")));
    assert!(en.contains(">revoked<") && en.contains("key compromise"));
    let ro = page(&app, "/registry?q=popescu", "ro");
    assert!(ro.contains(">revocat<") && ro.contains("compromiterea cheii") && ro.contains(">valid<"));
    assert!(ro.contains("Certificate găsite"));

    let none = page(&app, "/registry?q=nobody-here", "en");
    assert!(none.contains("id=\"registry-none\""));
    let short = page(&app, "/registry?q=po", "ro");
    assert!(
        short.contains("căutați un nume de cel puțin 3 caractere"),
        "the refusal in the page's language"
    );
    assert!(!short.contains("id=\"registry-results\""));

    // A logged-in holder sees the same page, with the registry in the nav.
    let cookie = app.web_login(&mihai);
    app.consent(&cookie);
    let r = app
        .client
        .get(app.url("/registry?q=x_y"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains(&format!("id=\"reg-{}\"", dan.certificate_serial)));
    assert!(html.contains("href=\"/registry\"") && html.contains("href=\"/certificates\""));
}
