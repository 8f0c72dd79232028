//! The CA chain and the holder certificate profile, judged by OpenSSL and pkcs11-tool.

use crate::common;

use common::{run, run_ok, TestApp};

fn text(app: &TestApp, which: &str) -> (std::path::PathBuf, String) {
    let path = app.data_dir.join(format!("{which}.pem"));
    std::fs::write(&path, app.cli_ok(&["admin", "cert", which])).unwrap();
    let text = run_ok("openssl", &["x509", "-in", path.to_str().unwrap(), "-noout", "-text"]);
    (path, text)
}

#[test]
fn ca_certificates_form_a_chain_openssl_accepts() {
    let app = TestApp::spawn();
    let (root, issuing) = app.ca_pems();
    let (root, issuing) = (root.to_str().unwrap(), issuing.to_str().unwrap());
    let ok = run_ok("openssl", &["verify", "-CAfile", root, issuing]);
    assert!(ok.contains(": OK"), "{ok}");
    let (_, root_text) = text(&app, "root");
    assert!(root_text.contains("CA:TRUE"), "{root_text}");
    assert!(
        root_text.contains("Subject: C = RO, O = Parafa, CN = Parafa Root CA"),
        "{root_text}"
    );
    let (_, issuing_text) = text(&app, "issuing");
    assert!(issuing_text.contains("CA:TRUE, pathlen:0"), "{issuing_text}");
    assert!(issuing_text.contains("CN = Parafa Qualified CA"), "{issuing_text}");
    assert!(issuing_text.contains("Certificate Sign, CRL Sign"), "{issuing_text}");
    // The certificates the server publishes are the ones the CLI prints.
    let served = app.get("/pki/issuing.crt").bytes().unwrap();
    let der = app.data_dir.join("issuing.der");
    std::fs::write(&der, &served).unwrap();
    let served_text = run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert_eq!(served_text, issuing_text);
}

fn holder_profile(key: &str, public_key_line: &str) {
    let app = TestApp::spawn();
    let holder = app.create_holder(&format!("{key}@example.com"), key, 1);
    assert_eq!(holder.transactions, 200);
    let (root, issuing) = app.ca_pems();
    let (path, text) = text(&app, &holder.certificate_serial);
    let verify = run_ok(
        "openssl",
        &[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
    assert!(verify.contains(": OK"), "{verify}");

    assert!(text.contains(public_key_line), "{text}");
    assert!(
        text.contains("Subject: C = RO, SN = Popescu, GN = Ana Maria, serialNumber = PARAFA-"),
        "{text}"
    );
    assert!(text.contains("CN = Ana Maria Popescu"), "{text}");
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation"),
        "{text}"
    );
    assert!(text.contains("Policy: 0.4.0.194112.1.2"), "QCP-n-qscd missing: {text}");
    assert!(text.contains("URI:http://127.0.0.1:"), "{text}");
    assert!(text.contains("/pki/crl"), "{text}");
    assert!(text.contains("OCSP - URI:") && text.contains("/pki/ocsp"), "{text}");
    assert!(
        text.contains("CA Issuers - URI:") && text.contains("/pki/issuing.crt"),
        "{text}"
    );
    assert!(text.contains("email:") && text.contains("@example.com"), "{text}");
    assert!(!text.contains("CA:TRUE"));

    // qcStatements: OpenSSL does not name them, so read the DER structure.
    let parsed = run_ok("openssl", &["asn1parse", "-in", path.to_str().unwrap(), "-i"]);
    // RFC 5280 §4.1.2.5: dates before 2050 are UTCTime.
    assert_eq!(parsed.matches("UTCTIME").count(), 2, "{parsed}");
    assert!(!parsed.contains("GENERALIZEDTIME"), "{parsed}");
    let pos = parsed.find(":qcStatements").expect("qcStatements extension");
    let after = &parsed[pos..];
    let octets = after
        .lines()
        .find(|l| l.contains("OCTET STRING"))
        .and_then(|l| l.trim_start().split(':').next())
        .and_then(|off| off.parse::<usize>().ok())
        .expect("qcStatements value offset");
    let inner = run_ok(
        "openssl",
        &[
            "asn1parse",
            "-in",
            path.to_str().unwrap(),
            "-strparse",
            &octets.to_string(),
            "-i",
        ],
    );
    for oid in [
        "0.4.0.1862.1.1",
        "0.4.0.1862.1.4",
        "0.4.0.1862.1.6",
        "0.4.0.1862.1.6.1",
        "0.4.0.1862.1.5",
    ] {
        assert!(inner.contains(oid), "{oid} missing from qcStatements:\n{inner}");
    }
    assert!(inner.contains("/pki/pds-en.pdf") && inner.contains(":en"), "{inner}");

    // The certificate carries the token's public key for this credential (read by pkcs11-tool, not by us).
    let id_hex: String = holder.credential_id.bytes().map(|b| format!("{b:02x}")).collect();
    let tool = |extra: &[&str]| {
        let mut args = vec!["--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "parafa"];
        args.extend(extra);
        let out = run("pkcs11-tool", &args, &[("SOFTHSM2_CONF", &app.softhsm_conf())]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cert_spki = app.data_dir.join("cert-pub.der");
    let pubkey_pem = run_ok("openssl", &["x509", "-in", path.to_str().unwrap(), "-pubkey", "-noout"]);
    let pubkey_path = app.data_dir.join("cert-pub.pem");
    std::fs::write(&pubkey_path, &pubkey_pem).unwrap();
    run_ok(
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-in",
            pubkey_path.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            cert_spki.to_str().unwrap(),
        ],
    );
    let cert_spki = std::fs::read(&cert_spki).unwrap();
    if key.starts_with("rsa") {
        let from_token = app.data_dir.join("token-pub.der");
        tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            &id_hex,
            "-o",
            from_token.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read(&from_token).unwrap(), cert_spki);
    } else {
        // pkcs11-tool cannot export every curve; its listing shows CKA_EC_POINT (a DER OCTET STRING of the point),
        // and the certificate's SubjectPublicKeyInfo ends with that point.
        let listing = tool(&["--list-objects", "--type", "pubkey"]);
        let block = listing
            .split("Public Key Object;")
            .find(|b| b.contains(&format!("ID:         {id_hex}")))
            .expect("the credential's public key in the listing");
        let point_hex = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("EC_POINT:"))
            .expect("EC_POINT in the listing")
            .trim()
            .to_lowercase();
        let point_hex = &point_hex[4..]; // skip the OCTET STRING tag and length
        let spki_hex: String = cert_spki.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            point_hex.starts_with("04") && spki_hex.ends_with(point_hex),
            "{point_hex} vs {spki_hex}"
        );
    }
}

#[test]
fn rsa2048_holder_certificate_follows_the_qualified_profile() {
    holder_profile("rsa2048", "Public-Key: (2048 bit)");
}

#[test]
fn rsa3072_holder_certificate_follows_the_qualified_profile() {
    holder_profile("rsa3072", "Public-Key: (3072 bit)");
}

#[test]
fn p256_holder_certificate_follows_the_qualified_profile() {
    holder_profile("p256", "NIST CURVE: P-256");
}

#[test]
fn p384_holder_certificate_follows_the_qualified_profile() {
    holder_profile("p384", "NIST CURVE: P-384");
}

#[test]
fn a_pseudonym_replaces_the_name_when_asked() {
    let app = TestApp::spawn();
    let out = app.cli_ok(&[
        "admin",
        "holder",
        "create",
        "--email",
        "p@example.com",
        "--name",
        "Ion Ionescu",
        "--phone",
        "+40712345678",
        "--password",
        "correct horse battery staple",
        "--pseudonym",
        "Zorro",
        "--id-number",
        "PNORO-1900101123456",
    ]);
    let holder = common::Holder::parse(&out);
    let (_, text) = text(&app, &holder.certificate_serial);
    assert!(text.contains("pseudonym = Zorro"), "{text}");
    assert!(text.contains("serialNumber = PNORO-1900101123456"), "{text}");
    assert!(!text.contains("Ionescu"), "{text}");
}

#[test]
fn holder_creation_refuses_bad_input_and_duplicates() {
    let app = TestApp::spawn();
    app.create_holder("dup@example.com", "p256", 3);
    let again = app.cli(&[
        "admin",
        "holder",
        "create",
        "--email",
        "DUP@example.com",
        "--name",
        "Ana Popescu",
        "--phone",
        "+40712345678",
        "--password",
        "correct horse battery staple",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    for (flag, value, message) in [
        ("--package", "4", "unknown package"),
        ("--phone", "0712345678", "country prefix"),
        ("--email", "not-an-email", "e-mail"),
        ("--password", "short", "at least 12"),
    ] {
        let mut args = vec![
            "admin",
            "holder",
            "create",
            "--email",
            "x@example.com",
            "--name",
            "Ana Popescu",
            "--phone",
            "+40712345678",
            "--password",
            "correct horse battery staple",
        ];
        let i = args.iter().position(|a| *a == flag).map(|i| i + 1);
        match i {
            Some(i) => args[i] = value,
            None => args.extend([flag, value]),
        }
        let out = app.cli(&args);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{flag} {value}: {err}");
    }
    // None of the refusals left a key in the token: only the CA keys, the TSA key, the trusted list operator's,
    // the wrap key and the one holder's pair.
    let objects: Vec<serde_json::Value> = serde_json::from_str(&app.cli_ok(&["hsm", "list", "--json"])).unwrap();
    let private = objects.iter().filter(|o| o["class"] == "CKO_PRIVATE_KEY").count();
    assert_eq!(private, 5, "{objects:?}");
}
