//! Keys are generated and used inside the token: pkcs11-tool shows them sensitive and never extractable, and
//! every signature the token makes verifies with OpenSSL against the public key.

use crate::common;

use std::path::Path;

use common::{run, TestApp};
use parafa::config::Settings;
use parafa::hsm::{HashAlg, Hsm, KeySpec, SignMechanism};

#[test]
fn private_keys_are_sensitive_and_never_extractable() {
    let app = TestApp::spawn();
    app.create_holder("rsa@example.com", "rsa2048", 1);
    app.create_holder("ec@example.com", "p256", 1);
    let pin = app.user_pin();
    let out = run(
        "pkcs11-tool",
        &[
            "--module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--token-label",
            "parafa",
            "--login",
            "--pin",
            &pin,
            "--list-objects",
        ],
        &[("SOFTHSM2_CONF", &app.softhsm_conf())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    // Blocks start with a header such as "Private Key Object; RSA"; the attributes follow, indented.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in listing.lines() {
        if line.contains(" Object;") {
            blocks.push((line.to_owned(), String::new()));
        } else if let Some((_, body)) = blocks.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut private_or_secret = 0;
    for (header, body) in &blocks {
        if header.starts_with("Private Key") || header.starts_with("Secret Key") {
            private_or_secret += 1;
            assert!(
                body.contains("Access:     sensitive, always sensitive, never extractable, local"),
                "a key that is not locked in the token: {header}\n{body}"
            );
        }
    }
    // Root CA, issuing CA, TSA, the trusted list's scheme operator, two holders, and the AES wrap key.
    assert_eq!(private_or_secret, 7, "{listing}");

    // Parafa's own listing says the same.
    let list: Vec<serde_json::Value> = serde_json::from_str(&app.cli_ok(&["hsm", "list", "--json"])).unwrap();
    for o in list.iter().filter(|o| o["class"] != "CKO_PUBLIC_KEY") {
        assert_eq!(o["sensitive"], true, "{o}");
        assert_eq!(o["extractable"], false, "{o}");
        assert_eq!(o["never_extractable"], true, "{o}");
    }
    let table = app.cli_ok(&["hsm", "list"]);
    assert!(table.contains("EXTRACTABLE") && table.contains("ca-root"), "{table}");
}

fn pem_of(spki: &spki::SubjectPublicKeyInfoOwned, dir: &Path, name: &str) -> std::path::PathBuf {
    use der::{pem::LineEnding, EncodePem};
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, spki.to_pem(LineEnding::LF).unwrap()).unwrap();
    path
}

/// One test in this file, so the token (initialised once per process) belongs to it alone under any runner.
#[test]
fn token_signatures_verify_with_openssl_and_secrets_unwrap_only_in_context() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let env = vec![("PARAFA_DATA_DIR".to_owned(), dir.join("data").display().to_string())];
    let settings = Settings::load_from(None, &env).unwrap();
    parafa::hsm::prepare_softhsm(&settings).unwrap();
    let hsm = Hsm::open(&settings).unwrap();

    let rsa = hsm.generate_key_pair(KeySpec::Rsa2048, b"t-rsa", "test rsa").unwrap();
    let p256 = hsm.generate_key_pair(KeySpec::P256, b"t-p256", "test p256").unwrap();
    let p384 = hsm.generate_key_pair(KeySpec::P384, b"t-p384", "test p384").unwrap();
    let (rsa_pem, p256_pem, p384_pem) = (
        pem_of(&rsa, dir, "rsa"),
        pem_of(&p256, dir, "p256"),
        pem_of(&p384, dir, "p384"),
    );
    // The public key read back by id equals the one returned at generation.
    assert_eq!(hsm.public_key(b"t-rsa", KeySpec::Rsa2048).unwrap().unwrap(), rsa);

    for (hash, name) in [
        (HashAlg::Sha256, "sha256"),
        (HashAlg::Sha384, "sha384"),
        (HashAlg::Sha512, "sha512"),
    ] {
        let digest = hash.digest(b"the document");
        let digest_opt = format!("digest:{name}");

        let sig = hsm
            .sign_digest(b"t-rsa", SignMechanism::RsaPkcs1(hash), &digest)
            .unwrap();
        assert!(
            common::openssl_verifies(&rsa_pem, &digest, &sig, &[&digest_opt]),
            "RSA PKCS#1 {name}"
        );

        let pss = SignMechanism::RsaPss {
            hash,
            mgf_hash: hash,
            salt_len: hash.output_len(),
        };
        let sig = hsm.sign_digest(b"t-rsa", pss, &digest).unwrap();
        let salt = format!("rsa_pss_saltlen:{}", hash.output_len());
        let mgf = format!("rsa_mgf1_md:{name}");
        assert!(
            common::openssl_verifies(
                &rsa_pem,
                &digest,
                &sig,
                &["rsa_padding_mode:pss", &salt, &mgf, &digest_opt]
            ),
            "RSA-PSS {name}"
        );

        for (pem, id) in [(&p256_pem, &b"t-p256"[..]), (&p384_pem, &b"t-p384"[..])] {
            let sig = hsm.sign_digest(id, SignMechanism::Ecdsa, &digest).unwrap();
            assert_eq!(sig[0], 0x30, "ECDSA signatures are DER");
            assert!(common::openssl_verifies(pem, &digest, &sig, &[]), "ECDSA {name}");
            // A signature over another digest does not verify: the check above can fail.
            let other = hash.digest(b"another document");
            assert!(!common::openssl_verifies(pem, &other, &sig, &[]));
        }
    }
    // A digest of the wrong length is refused before the token sees it.
    assert!(hsm
        .sign_digest(b"t-rsa", SignMechanism::RsaPkcs1(HashAlg::Sha256), &[0u8; 20])
        .is_err());
    assert!(hsm
        .sign_digest(b"no-such-key", SignMechanism::Ecdsa, &[0u8; 32])
        .is_err());

    // Secrets wrapped by the token's AES key unwrap only with the same context, and only unaltered.
    let wrapped = hsm.wrap_secret(b"seed bytes", b"user-1").unwrap();
    assert!(!wrapped.windows(10).any(|w| w == b"seed bytes"));
    assert_eq!(&hsm.unwrap_secret(&wrapped, b"user-1").unwrap()[..], b"seed bytes");
    assert!(hsm.unwrap_secret(&wrapped, b"user-2").is_err());
    let mut altered = wrapped.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert!(hsm.unwrap_secret(&altered, b"user-1").is_err());

    // Signing in parallel on the session pool works and every signature is valid.
    let hsm = std::sync::Arc::new(hsm);
    let digest = HashAlg::Sha256.digest(b"parallel");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let h = hsm.clone();
            let d = digest.clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| h.sign_digest(b"t-p256", SignMechanism::Ecdsa, &d).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let sigs: Vec<Vec<u8>> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(sigs.len(), 160);
    for sig in sigs.iter().step_by(16) {
        assert!(common::openssl_verifies(&p256_pem, &digest, sig, &[]));
    }
}
