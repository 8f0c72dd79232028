//! End to end through an outside client: pyHanko's CSCSigner signs a PDF through `/csc/v1` (credentials/info,
//! credentials/authorize with the hash and a fresh TOTP code, signatures/signHash), then pyHanko and poppler's
//! `pdfsig` (with NSS's `vfychain` for the certificate trust) validate the signed PDF against our root CA, and
//! `parafa admin credential` shows exactly those signatures debited and recorded.
//! The Python side is `tests/python/csc_pyhanko.py`, run with the `.venv` that `make test` creates.

use crate::common;

use std::path::{Path, PathBuf};

use common::{run, run_ok, TestApp};

/// The venv's Python, or a failure that says how to get it.
pub(crate) fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run make test (it creates .venv), or make venv before cargo nextest run --test api pyhanko::",
        python.display()
    );
    python
}

fn clock_file(app: &TestApp) -> String {
    app.env()
        .iter()
        .find(|(k, _)| k == "PARAFA_TEST_CLOCK_FILE")
        .expect("PARAFA_TEST_CLOCK_FILE in the server's environment")
        .1
        .clone()
}

/// An NSS database in `dir` that trusts our root CA, for `pdfsig -nssdir`.
pub(crate) fn nss_db_trusting(dir: &Path, root_pem: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let db = format!("sql:{}", dir.display());
    run_ok("certutil", &["-N", "-d", &db, "--empty-password"]);
    run_ok(
        "certutil",
        &[
            "-A",
            "-d",
            &db,
            "-n",
            "Parafa Root CA",
            "-t",
            "CT,C,C",
            "-i",
            root_pem.to_str().unwrap(),
        ],
    );
    db
}

/// The certificates of a PEM text, each as its base64 body on one line (to compare certificates exactly).
fn pem_bodies(pem: &str) -> Vec<String> {
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body = block.split("-----END CERTIFICATE-----").next().unwrap_or_default();
            body.split_whitespace().collect::<String>()
        })
        .collect()
}

fn pem_of(body: &str) -> String {
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// poppler and NSS judge a signed PDF: `pdfsig` must find its one signature valid over the whole file, and NSS
/// must trust the signer's certificate embedded in it (the holder's own, as the CLI prints it) for e-mail signing
/// up to our root, the check `pdfsig` makes.
///
/// `pdfsig`'s own "Certificate Validation" line is not enough on Debian 12's poppler 22.12: it calls
/// `CERT_PKIXVerifyCert` but then reads `PORT_GetError()` without looking at the result, so a successful
/// verification reports whatever error an earlier NSS call left behind ("Unknown issue with Certificate or corrupted
/// data": `SEC_ERROR_EXTENSION_NOT_FOUND` with `-no-ocsp`, a connection error otherwise), even for a plain
/// two-certificate chain made with openssl. Later poppler checks the result and says "Certificate is Trusted". So
/// that line may be "Trusted" or that generic message, never a specific failure (issuer unknown or untrusted,
/// expired, revoked), and the trust itself is asserted with NSS's `vfychain` (`CERT_PKIXVerifyCert`, usage
/// e-mail signer) on the certificates `pdfsig -dump` takes out of the PDF.
pub(crate) fn assert_poppler_and_nss_accept(pdf: &Path, nss_db: &str, holder_cert_pem: &str) {
    let out = run("pdfsig", &["-nssdir", nss_db, "-no-ocsp", pdf.to_str().unwrap()], &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = pdf.display();
    assert!(out.status.success(), "pdfsig failed on {name}:\n{text}");
    assert!(text.contains("Signature #1"), "{text}");
    assert!(
        !text.contains("Signature #2"),
        "one signature expected in {name}:\n{text}"
    );
    assert!(
        text.contains("Signature Validation: Signature is Valid."),
        "pdfsig does not find the signature valid in {name}:\n{text}"
    );
    assert!(text.contains("Signature Type: ETSI.CAdES.detached"), "{text}");
    assert!(
        text.contains("Total document signed"),
        "pdfsig: not the whole of {name} is signed:\n{text}"
    );
    assert!(
        text.contains("Certificate Validation: Certificate is Trusted.")
            || text.contains("Certificate Validation: Unknown issue with Certificate or corrupted data."),
        "pdfsig reports a certificate problem in {name}:\n{text}"
    );

    // The CMS object, as poppler finds it, and the certificates in it as OpenSSL reads them.
    let dump_dir = pdf.with_extension("dump");
    std::fs::create_dir_all(&dump_dir).unwrap();
    let dumped = std::process::Command::new("pdfsig")
        .arg("-dump")
        .arg(pdf)
        .current_dir(&dump_dir)
        .output()
        .expect("run pdfsig -dump");
    assert!(dumped.status.success(), "pdfsig -dump {name}: {dumped:?}");
    let cms = dump_dir.join(format!("{}.sig0", pdf.file_name().unwrap().to_str().unwrap()));
    let certs = pem_bodies(&run_ok(
        "openssl",
        &["pkcs7", "-inform", "DER", "-in", cms.to_str().unwrap(), "-print_certs"],
    ));
    let holder = pem_bodies(holder_cert_pem).pop().expect("holder certificate PEM");
    assert!(
        certs.contains(&holder),
        "the holder's certificate is not among the {} certificates in {name}",
        certs.len()
    );
    // -pp -pp: CERT_PKIXVerifyCert, as pdfsig; -u 4: certificateUsageEmailSigner, as pdfsig; -v names the root.
    let mut args: Vec<String> = ["-d", nss_db, "-pp", "-pp", "-v", "-u", "4"].map(String::from).to_vec();
    let mut paths = vec![dump_dir.join("signer.pem")];
    std::fs::write(&paths[0], pem_of(&holder)).unwrap();
    for (i, body) in certs.iter().filter(|c| **c != holder).enumerate() {
        let path = dump_dir.join(format!("ca-{i}.pem"));
        std::fs::write(&path, pem_of(body)).unwrap();
        paths.push(path);
    }
    for p in &paths {
        args.extend(["-a".into(), p.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("vfychain", &args, &[]);
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && verdict.contains("Chain is good!"),
        "NSS does not trust the signer's certificate in {name} for e-mail signing:\n{verdict}"
    );
    assert!(
        verdict.contains("Root Certificate Subject:: \"CN=Parafa Root CA,O=Parafa,C=RO\""),
        "NSS did not chain {name}'s signer up to our root:\n{verdict}"
    );
}

/// Signs through pyHanko with a fresh server and holder; `pss` adds a second, RSASSA-PSS signature; `b_t` makes it
/// PAdES B-T with pyHanko's HTTPTimeStamper on `POST /tsa`, authenticated with the holder's e-mail and password.
fn pyhanko_signs(key: &str, kind: &str, pss: bool, b_t: bool) {
    let python = venv_python();
    let app = TestApp::spawn();
    let holder = app.create_holder(&format!("pyhanko-{kind}@example.com"), key, 1);
    let token = app.login(&holder);
    let (root, _) = app.ca_pems();
    let out_dir = app.data_dir.join("pyhanko");
    std::fs::create_dir_all(&out_dir).unwrap();
    assert_eq!(
        app.books(&holder.credential_id),
        (0, 0),
        "a new credential has used nothing"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/csc_pyhanko.py");
    let clock = clock_file(&app);
    // `--token=…` in one argument: a token may start with '-', which argparse would take for an option.
    let token_arg = format!("--token={token}");
    let mut args = vec![
        script.to_str().unwrap(),
        "--base",
        &app.base,
        &token_arg,
        "--credential-id",
        &holder.credential_id,
        "--totp-secret",
        &holder.totp_secret,
        "--clock-file",
        &clock,
        "--root",
        root.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--key",
        kind,
    ];
    if pss {
        args.push("--pss");
    }
    let (tsa_user, tsa_password) = (
        format!("--tsa-user={}", holder.email),
        format!("--tsa-password={}", common::HOLDER_PASSWORD),
    );
    if b_t {
        args.extend([tsa_user.as_str(), tsa_password.as_str()]);
    }
    let out = run(python.to_str().unwrap(), &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyHanko's CSC signing or validation failed:\n{stdout}\n{stderr}"
    );
    // What pyHanko sent (shown with --no-capture, or when a later check fails).
    eprintln!("{stderr}");

    let signed: Vec<PathBuf> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("signed "))
        // "<path> <mechanism> <digest>"; the path may hold spaces.
        .map(|l| PathBuf::from(l.rsplitn(3, ' ').last().unwrap()))
        .collect();
    let expected = if pss { 2 } else { 1 };
    assert_eq!(signed.len(), expected, "{stdout}");
    assert!(
        stdout.lines().any(|l| l == format!("signatures {expected}")),
        "{stdout}"
    );

    let nss = nss_db_trusting(&app.data_dir.join("nssdb"), &root);
    let holder_cert = app.cli_ok(&["admin", "cert", &holder.certificate_serial]);
    for pdf in &signed {
        assert_poppler_and_nss_accept(pdf, &nss, &holder_cert);
    }

    // Exactly the signatures made were debited and recorded, no more and no fewer (`parafa admin credential`);
    // with B-T each timestamp /tsa granted too: pyHanko asks one to size the signature, then the real one.
    let expected = expected as i64 + if b_t { 2 } else { 0 };
    assert_eq!(
        app.books(&holder.credential_id),
        (expected, expected),
        "quota used and signatures recorded after {expected} signature(s) and timestamp(s)"
    );
}

#[test]
fn pyhanko_signs_a_pdf_through_csc_v1_with_an_rsa_credential() {
    pyhanko_signs("rsa2048", "rsa", true, false);
}

#[test]
fn pyhanko_signs_a_pdf_through_csc_v1_with_an_ecdsa_credential() {
    pyhanko_signs("p256", "ecdsa", false, false);
}

#[test]
fn pyhanko_signs_pades_b_t_with_a_timestamp_it_pays_for_on_the_tsa() {
    pyhanko_signs("p256", "ecdsa", false, true);
}
