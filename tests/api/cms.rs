//! CMS SignedData around a signature from the HSM, through the real server: `documents::cms` prepares the signed
//! attributes, the digest it asks for is authorized and signed with the CSC API (the holder's key in SoftHSM2), and
//! OpenSSL judges the result against the CA certificates.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{openssl_cms_verify, run_ok, Holder, TestApp};
use const_oid::db::rfc5911::ID_DATA;
use der::Encode;
use parafa::documents::cms::{self, Encapsulation, SignerSpec};
use parafa::hsm::{HashAlg, SignMechanism};
use serde_json::{json, Value};

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
const PSS: &str = "1.2.840.113549.1.1.10";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

/// Bytes a text-mode verifier would mangle: CR LF, a lone CR, NUL and non-UTF-8.
const CONTENT: &[u8] = b"I accept the terms of issuance, version 3.\r\nSemnat la Bucure\xc8\x99ti.\r\x00\xff\xfe end\n";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

/// A holder with a session, the certificate chain of its credential and a directory for files.
struct Signer {
    app: TestApp,
    holder: Holder,
    token: String,
    /// Signer, issuing CA, root, as credentials/info gives them.
    chain: Vec<Vec<u8>>,
}

impl Signer {
    fn new(key: &str) -> Signer {
        let app = TestApp::spawn();
        let holder = app.create_holder_with(&format!("{key}@example.com"), key, 1, false);
        let token = app.login(&holder);
        let (status, info) = app.csc(
            "/csc/v2/credentials/info",
            &token,
            &json!({"credentialID": holder.credential_id, "certificates": "chain"}),
        );
        assert_eq!(status, 200, "{info}");
        let chain: Vec<Vec<u8>> = info["cert"]["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .map(unb64)
            .collect();
        assert_eq!(chain.len(), 3, "{info}");
        Signer {
            app,
            holder,
            token,
            chain,
        }
    }

    fn spec(&self, hash: HashAlg, mechanism: SignMechanism, signing_time: Option<i64>) -> SignerSpec<'_> {
        SignerSpec {
            cert_der: &self.chain[0],
            chain_der: &self.chain[1..],
            hash,
            mechanism,
            signing_time,
            content_type: ID_DATA,
        }
    }

    /// Signs a digest in the HSM as a CSC client does: authorize it with a fresh TOTP code, then signHash.
    fn sign_hash(&self, digest: &[u8], sign_algo: &str, params: Option<&str>) -> Result<Vec<u8>, String> {
        let (status, out) = self.app.csc(
            "/csc/v2/credentials/authorize",
            &self.token,
            &json!({
                "credentialID": self.holder.credential_id,
                "numSignatures": 1,
                "hashes": [b64(digest)],
                "hashAlgorithmOID": SHA256,
                "authData": [{ "id": "otp", "value": self.app.fresh_totp(&self.holder) }],
            }),
        );
        if status != 200 {
            return Err(format!("authorize: {status} {out}"));
        }
        let mut body = json!({
            "credentialID": self.holder.credential_id,
            "SAD": out["SAD"],
            "hashes": [b64(digest)],
            "hashAlgorithmOID": SHA256,
            "signAlgo": sign_algo,
        });
        if let Some(p) = params {
            body["signAlgoParams"] = json!(p);
        }
        let (status, out) = self.app.csc("/csc/v2/signatures/signHash", &self.token, &body);
        if status != 200 {
            return Err(format!("signHash: {status} {out}"));
        }
        Ok(unb64(&out["signatures"][0]))
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.app.data_dir.join(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    /// The root and the issuing CA in one PEM file, for `-CAfile`.
    fn ca_file(&self) -> PathBuf {
        let (root, issuing) = self.app.ca_pems();
        let both = [
            std::fs::read(root).expect("root.pem"),
            std::fs::read(issuing).expect("issuing.pem"),
        ]
        .concat();
        self.file("root-and-issuing.pem", &both)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn asn1parse(p7s: &Path) -> String {
    run_ok("openssl", &["asn1parse", "-inform", "DER", "-in", path(p7s)])
}

fn cms_print(p7s: &Path) -> String {
    run_ok(
        "openssl",
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", path(p7s)],
    )
}

/// Asserts the signing-certificate-v2 attribute names the signer certificate by its SHA-256, and its issuer.
fn assert_signing_certificate_v2(p7s: &Path, signer_cert: &[u8]) {
    let parsed = asn1parse(p7s);
    assert!(parsed.contains(":id-smime-aa-signingCertificateV2"), "{parsed}");
    let cert_hash = hex::encode_upper(HashAlg::Sha256.digest(signer_cert));
    assert!(
        parsed.contains(&format!("[HEX DUMP]:{cert_hash}")),
        "the certHash {cert_hash} is not in:\n{parsed}"
    );
    let printed = cms_print(p7s);
    assert!(printed.contains("id-smime-aa-signingCertificateV2"), "{printed}");
    assert!(
        printed.contains("contentType") && printed.contains("messageDigest"),
        "{printed}"
    );
}

#[test]
fn an_attached_rsa_signature_verifies_with_openssl_and_gives_the_content_back_byte_for_byte() {
    let s = Signer::new("rsa2048");
    let ca = s.ca_file();
    let now = s.app.now();
    let spec = s.spec(HashAlg::Sha256, SignMechanism::RsaPkcs1(HashAlg::Sha256), Some(now));
    let mut signed_digest = Vec::new();
    let p7s = cms::sign(&spec, Encapsulation::Attached(CONTENT), |digest| {
        signed_digest = digest.to_vec();
        s.sign_hash(digest, SHA256_RSA, None)
    })
    .expect("SignedData");
    assert_eq!(signed_digest.len(), 32);
    let p7s_file = s.file("terms.p7s", &p7s);

    let back = openssl_cms_verify(&p7s_file, &ca, None, None).expect("openssl verifies the attached signature");
    assert_eq!(back, CONTENT);
    assert_signing_certificate_v2(&p7s_file, &s.chain[0]);
    let parsed = asn1parse(&p7s_file);
    assert!(
        parsed.contains(":signingTime") && parsed.contains("UTCTIME"),
        "{parsed}"
    );
    let printed = cms_print(&p7s_file);
    assert!(printed.contains("sha256WithRSAEncryption"), "{printed}");
    assert!(printed.contains("version: 1"), "{printed}");
    assert_eq!(
        cms::signature_value(&p7s).expect("signature value").len(),
        256,
        "an RSA-2048 signature"
    );

    // One content byte changed inside the SignedData: OpenSSL refuses it.
    let at = p7s
        .windows(CONTENT.len())
        .position(|w| w == CONTENT)
        .expect("the content is encapsulated");
    let mut tampered = p7s.clone();
    tampered[at + 2] ^= 0x01;
    let tampered_file = s.file("terms-tampered.p7s", &tampered);
    let err = openssl_cms_verify(&tampered_file, &ca, None, None).expect_err("a changed content byte must not verify");
    assert!(
        err.contains("digest failure") || err.contains("verification failure"),
        "{err}"
    );
}

#[test]
fn a_detached_ecdsa_signature_verifies_with_openssl_and_a_changed_content_byte_fails() {
    let s = Signer::new("p256");
    let ca = s.ca_file();
    let content_digest = HashAlg::Sha256.digest(CONTENT);
    // PAdES form: detached, no signing-time. Prepared first, signed afterwards, as a signing job would.
    let spec = s.spec(HashAlg::Sha256, SignMechanism::Ecdsa, None);
    let prepared = cms::prepare(
        &spec,
        Encapsulation::Detached {
            digest: &content_digest,
        },
    )
    .expect("prepared");
    let signature = s
        .sign_hash(prepared.digest(), ECDSA_SHA256, None)
        .expect("signed in the HSM");
    assert_eq!(signature[0], 0x30, "a DER ECDSA-Sig-Value");
    let p7s = prepared.finish(signature.clone()).expect("SignedData");
    let p7s_file = s.file("document.p7s", &p7s);
    let content_file = s.file("document.bin", CONTENT);

    let back =
        openssl_cms_verify(&p7s_file, &ca, Some(&content_file), None).expect("openssl verifies the detached signature");
    assert_eq!(back, CONTENT);
    assert_eq!(cms::signature_value(&p7s).expect("signature value"), signature);
    assert_signing_certificate_v2(&p7s_file, &s.chain[0]);
    let parsed = asn1parse(&p7s_file);
    assert!(
        !parsed.contains(":signingTime"),
        "no signing-time was asked for:\n{parsed}"
    );
    assert!(parsed.contains(":ecdsa-with-SHA256"), "{parsed}");
    assert!(
        !parsed.contains(&hex::encode_upper(CONTENT)),
        "the content is not in a detached signature"
    );

    for i in [0, CONTENT.len() / 2, CONTENT.len() - 1] {
        let mut changed = CONTENT.to_vec();
        changed[i] ^= 0x20;
        let changed_file = s.file("document-changed.bin", &changed);
        let err = openssl_cms_verify(&p7s_file, &ca, Some(&changed_file), None)
            .expect_err("a changed content byte must not verify");
        assert!(
            err.contains("digest failure") || err.contains("verification failure"),
            "{err}"
        );
    }
    // Without its content, a detached signature proves nothing.
    assert!(openssl_cms_verify(&p7s_file, &ca, None, None).is_err());
}

#[test]
fn a_detached_rsa_pss_signature_with_a_signing_time_verifies_with_openssl() {
    let s = Signer::new("rsa2048");
    let ca = s.ca_file();
    let content_digest = HashAlg::Sha256.digest(CONTENT);
    let mechanism = SignMechanism::RsaPss {
        hash: HashAlg::Sha256,
        mgf_hash: HashAlg::Sha256,
        salt_len: 32,
    };
    // RSASSA-PSS-params as the CSC client sends them: SHA-256, MGF1 with SHA-256, salt length 32.
    let params = b64(&hex::decode(concat!(
        "3034",
        "a00f300d06096086480165030402010500",
        "a11c301a06092a864886f70d010108300d06096086480165030402010500",
        "a203020120"
    ))
    .expect("hex"));
    let spec = s.spec(HashAlg::Sha256, mechanism, Some(s.app.now()));
    let p7s = cms::sign(
        &spec,
        Encapsulation::Detached {
            digest: &content_digest,
        },
        |digest| s.sign_hash(digest, PSS, Some(&params)),
    )
    .expect("SignedData");
    let p7s_file = s.file("pss.p7s", &p7s);
    let content_file = s.file("pss.bin", CONTENT);
    assert_eq!(
        openssl_cms_verify(&p7s_file, &ca, Some(&content_file), None).expect("openssl verifies RSA-PSS"),
        CONTENT
    );
    let printed = cms_print(&p7s_file);
    assert!(printed.contains("rsassaPss"), "{printed}");
    let mut changed = CONTENT.to_vec();
    changed[3] ^= 1;
    let changed_file = s.file("pss-changed.bin", &changed);
    assert!(openssl_cms_verify(&p7s_file, &ca, Some(&changed_file), None).is_err());
}

#[test]
fn a_signature_timestamp_added_afterwards_leaves_the_signature_valid() {
    let s = Signer::new("p256");
    let ca = s.ca_file();
    let spec = s.spec(HashAlg::Sha256, SignMechanism::Ecdsa, Some(s.app.now()));
    let p7s = cms::sign(&spec, Encapsulation::Attached(CONTENT), |digest| {
        s.sign_hash(digest, ECDSA_SHA256, None)
    })
    .expect("SignedData");
    let signature = cms::signature_value(&p7s).expect("signature value");
    // Stands in for an RFC 3161 token over the signature value: only its place in the SignedData is tested here.
    let token = der::asn1::OctetString::new(HashAlg::Sha256.digest(&signature))
        .expect("octet string")
        .to_der()
        .expect("DER");
    let stamped = cms::add_unsigned_attribute(&p7s, cms::ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token)
        .expect("unsigned attribute added");
    assert_eq!(cms::signature_value(&stamped).expect("signature value"), signature);

    let stamped_file = s.file("stamped.p7s", &stamped);
    assert_eq!(
        openssl_cms_verify(&stamped_file, &ca, None, None).expect("still verifies"),
        CONTENT
    );
    let parsed = asn1parse(&stamped_file);
    assert!(parsed.contains(":id-smime-aa-timeStampToken"), "{parsed}");
    let printed = cms_print(&stamped_file);
    assert!(
        printed.contains("unsignedAttrs") && printed.contains("id-smime-aa-timeStampToken"),
        "{printed}"
    );
}
