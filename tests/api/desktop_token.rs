//! The desktop virtual token (issue 17) judged by outside tools, against the real server, the real agent
//! (`parafa-token agent`) and the real PKCS#11 module (`libparafa_pkcs11.so`): OpenSC's `pkcs11-tool` (the slot, the
//! objects, a signature with each mechanism checked by `openssl`, its self-test), pyHanko signing a PDF locally as
//! PAdES B-T (checked by `pdfsig` and `pyhanko sign validate`), a TLS client login by `gnutls-cli` and by headless
//! Chromium through NSS, NSS's `certutil`, p11-kit after `parafa-token install`, and the refusals.
//!
//! The holder's code reaches the module two ways, as it does from real applications: in the key's context login
//! (`pkcs11-tool --pin`, pyHanko's signing PIN), or, when the application gives none, through the agent's prompt,
//! which is `tests/desktop/pinentry-test` here: it answers with the code the holder's authenticator shows, computed
//! from their secret at the server's test clock moved on by one step.
//!
//! What the tools were seen to do (with SoftHSM2 behind a stand-in module, while the pieces were being written):
//! - NSS calls `C_Login(CKU_CONTEXT_SPECIFIC)` after `C_SignInit` on a key with `CKA_ALWAYS_AUTHENTICATE`, with a
//!   NULL PIN when the token has `CKF_PROTECTED_AUTHENTICATION_PATH`, else with what its password callback
//!   returned; when the callback returns nothing it skips the login and still calls `C_Sign`.
//! - Chromium's password callback is a dialog: headless, nobody answers it and the handshake waits for ever. So the
//!   token must not ask Chromium for a login: no `CKF_LOGIN_REQUIRED`, and no context login on the key it sees.
//! - `pkcs11-tool --pin X` logs in as the user with X, then gives X again in each context login; without `--pin`
//!   it gives a NULL PIN on a protected authentication path (else it asks on the terminal). Its `--test` signs
//!   only when the session is logged in and the mechanisms carry `CKF_HW`, and asks for the signature's length
//!   (`C_Sign` with no buffer, and with one too short) before the signature itself.
//! - GnuTLS logs in as the user, then `C_SignInit` (RSA-PSS for TLS 1.3) and the context login, then `C_Sign`
//!   twice (the length, then the signature).
//! - pyHanko (`sign addsig pkcs11`) with `--skip-user-pin` never logs in: `C_SignInit`, then `C_Sign` for the length
//!   and for the signature; with `PYHANKO_PKCS11_SIGNING_PIN` it makes the context login with that code.
//! - p11-kit reads the user's module files (`~/.config/pkcs11/modules`) only when not run as root.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::desktop::{pkcs11_module, root, text, token_bin, Desktop, Prompt};
use common::{Holder, TestApp};
use sha2::{Digest, Sha256};

/// Runs `c` to its end in a process group of its own, killed with the whole group when it takes longer than
/// `limit` (a hung handshake must fail the test, not stall the suite); the group goes in any case, so that no
/// helper process (Chromium's) outlives it.
fn output_within(mut c: Command, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e} (make test installs it)"));
    let group = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break (s, false);
        }
        if Instant::now() > deadline {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            break (child.wait().expect("wait"), true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(!timed_out, "{c:?} took more than {limit:?}:\n{}", text(&out));
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// The objects' `CKA_ID`: the credential id's bytes, in hex as `pkcs11-tool --id` takes it.
fn key_id(holder: &Holder) -> String {
    hex::encode(holder.credential_id.as_bytes())
}

/// The same bytes as a `pkcs11:` URI's `id` (RFC 7512: every byte percent-encoded).
fn uri_id(holder: &Holder) -> String {
    holder.credential_id.bytes().map(|b| format!("%{b:02x}")).collect()
}

/// `pkcs11-tool --module libparafa_pkcs11.so <args>` on the holder's computer.
fn p11(desk: &Desktop, args: &[&str]) -> Output {
    let mut c = desk.command("pkcs11-tool");
    c.arg("--module").arg(pkcs11_module()).args(args);
    output_within(c, Duration::from_secs(60))
}

/// As [`p11`], which must succeed: what it printed (standard output and error).
fn p11_ok(desk: &Desktop, args: &[&str]) -> String {
    let out = p11(desk, args);
    assert!(out.status.success(), "pkcs11-tool {args:?}: {}", text(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `pkcs11-tool --sign` of `input` with the holder's key, `mechanism` and `extra` options (`--pin CODE` for the
/// context login; without it the agent asks through its prompt): the signature, or what the tool printed.
fn p11_sign(desk: &Desktop, holder: &Holder, mechanism: &str, input: &[u8], extra: &[&str]) -> Result<Vec<u8>, String> {
    let n = std::fs::read_dir(&desk.work).map(|d| d.count()).unwrap_or(0);
    let (inp, sig) = (desk.work.join(format!("in-{n}")), desk.work.join(format!("sig-{n}")));
    std::fs::write(&inp, input).unwrap();
    let id = key_id(holder);
    let mut args = vec![
        "--sign",
        "--id",
        &id,
        "--mechanism",
        mechanism,
        "--input-file",
        inp.to_str().unwrap(),
        "--output-file",
        sig.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = p11(desk, &args);
    match std::fs::read(&sig) {
        Ok(s) if out.status.success() && !s.is_empty() => Ok(s),
        _ => Err(text(&out)),
    }
}

/// A DigestInfo (RFC 8017 §9.2) of a SHA-256 digest: what `CKM_RSA_PKCS` signs.
fn digest_info_sha256(digest: &[u8]) -> Vec<u8> {
    let mut v = hex::decode("3031300d060960864801650304020105000420").unwrap();
    v.extend_from_slice(digest);
    v
}

/// A raw ECDSA signature `r‖s` as DER `ECDSA-Sig-Value`, for `openssl`.
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let x = &x[x.iter().position(|&b| b != 0).unwrap_or(x.len() - 1)..];
        let mut v = vec![0x02];
        if x[0] & 0x80 != 0 {
            v.push(x.len() as u8 + 1);
            v.push(0);
        } else {
            v.push(x.len() as u8);
        }
        v.extend_from_slice(x);
        v
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

/// The code the holder's authenticator shows next (the server's clock moves on by one step).
fn code(app: &TestApp, holder: &Holder) -> String {
    app.fresh_totp(holder)
}

/// One object `pkcs11-tool -O` listed: its heading (`Certificate Object; type = X.509 cert`) and its fields.
#[derive(Debug)]
struct Listed {
    heading: String,
    text: String,
}

impl Listed {
    fn field(&self, name: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{name}:")))
            .map(str::trim)
    }
}

fn listed(listing: &str) -> Vec<Listed> {
    let mut objects: Vec<Listed> = Vec::new();
    for line in listing.lines() {
        if line.contains(" Object;") && !line.starts_with(' ') {
            objects.push(Listed {
                heading: line.to_owned(),
                text: String::new(),
            });
        } else if let Some(o) = objects.last_mut() {
            o.text.push_str(line);
            o.text.push('\n');
        }
    }
    objects
}

/// The token's label, as `pkcs11-tool -L` prints it.
fn token_label(slots: &str) -> String {
    slots
        .lines()
        .find_map(|l| l.trim().strip_prefix("token label"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no token label in:\n{slots}"))
}

/// The holder's certificate as PEM, and a file with its public key for `openssl pkeyutl -verify`.
fn holder_cert(app: &TestApp, holder: &Holder) -> (String, PathBuf) {
    (
        app.cli_ok(&["admin", "cert", &holder.certificate_serial]),
        app.holder_public_key(&holder.certificate_serial),
    )
}

/// A serial number in one form: upper-case hex without leading zeros or separators.
fn serial_form(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_uppercase();
    hex.trim_start_matches('0').to_owned()
}

/// A certificate's subject common name (`openssl x509 -subject`).
fn common_name(pem_file: &Path) -> String {
    let subject = common::run_ok(
        "openssl",
        &[
            "x509",
            "-in",
            pem_file.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    subject
        .trim()
        .trim_start_matches("subject=")
        .split(',')
        .find_map(|p| p.strip_prefix("CN="))
        .unwrap_or_else(|| panic!("no CN in {subject}"))
        .to_owned()
}

#[test]
fn pkcs11_tool_lists_the_token_and_its_objects_and_signs_with_each_rsa_mechanism_checked_by_openssl() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.rsa@example.com", "rsa2048", 1);
    let desk = Desktop::logged_in(&app, &holder);
    let (holder_pem, public_key) = holder_cert(&app, &holder);
    let (root_pem, issuing_pem) = app.ca_pems();

    // No agent runs yet: the module starts one on demand.
    let slots = p11_ok(&desk, &["--list-slots"]);
    assert!(
        slots.contains("Ana Maria Popescu"),
        "the token is labelled with the holder's name:\n{slots}"
    );

    let listing = p11_ok(&desk, &["--list-objects"]);
    let objects = listed(&listing);
    let id = key_id(&holder);
    let ours = |kind: &str| {
        objects
            .iter()
            .find(|o| o.heading.starts_with(kind) && o.field("ID") == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no {kind} with the credential's id {id} in:\n{listing}"))
    };
    let cert = ours("Certificate Object");
    assert!(
        cert.field("label").is_some_and(|l| l.contains("Ana Maria Popescu")),
        "{listing}"
    );
    let public = ours("Public Key Object");
    assert!(public.heading.contains("RSA 2048 bits"), "{listing}");
    let private = ours("Private Key Object");
    assert!(private.heading.contains("RSA"), "{listing}");
    let usage = private.field("Usage").unwrap_or_default();
    assert!(usage.contains("sign"), "{listing}");
    assert!(!usage.contains("decrypt"), "the key only signs:\n{listing}");
    let access = private.field("Access").unwrap_or_default();
    for a in ["always authenticate", "sensitive", "never extractable"] {
        assert!(access.contains(a), "private key without `{a}`:\n{listing}");
    }
    // The CA chain rides along, for consumers that build the path from the token.
    let certificates = objects
        .iter()
        .filter(|o| o.heading.starts_with("Certificate Object"))
        .count();
    assert!(
        certificates >= 3,
        "the holder's certificate and the CA chain:\n{listing}"
    );
    for ca in [&root_pem, &issuing_pem] {
        let cn = common_name(ca);
        assert!(listing.contains(&cn), "{cn} missing from the token:\n{listing}");
    }
    // The certificate object is the holder's certificate, byte for byte.
    let der = desk.work.join("cert.der");
    p11_ok(
        &desk,
        &[
            "--read-object",
            "--type",
            "cert",
            "--id",
            &id,
            "--output-file",
            der.to_str().unwrap(),
        ],
    );
    let from_token = common::run_ok(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-outform",
            "PEM",
        ],
    );
    assert_eq!(from_token.trim(), holder_pem.trim());

    let pkcs1 = ["digest:sha256"];
    let pss = [
        "rsa_padding_mode:pss",
        "rsa_pss_saltlen:32",
        "rsa_mgf1_md:sha256",
        "digest:sha256",
    ];
    let pss_args = ["--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256", "--salt-len", "32"];

    // CKM_SHA256_RSA_PKCS: the module hashes, the code comes in the context login.
    let doc = b"a contract signed with pkcs11-tool";
    let c = code(&app, &holder);
    let sig = p11_sign(&desk, &holder, "SHA256-RSA-PKCS", doc, &["--pin", &c]).unwrap();
    assert!(common::openssl_verifies(&public_key, &sha256(doc), &sig, &pkcs1));
    assert!(!common::openssl_verifies(
        &public_key,
        &sha256(b"another"),
        &sig,
        &pkcs1
    ));

    // CKM_RSA_PKCS over a DigestInfo: no code given, the agent asks through its prompt.
    let doc2 = b"a second contract";
    let sig = p11_sign(&desk, &holder, "RSA-PKCS", &digest_info_sha256(&sha256(doc2)), &[]).unwrap();
    assert!(common::openssl_verifies(&public_key, &sha256(doc2), &sig, &pkcs1));

    // CKM_SHA256_RSA_PKCS_PSS, with the code.
    let doc3 = b"a third contract";
    let c = code(&app, &holder);
    // (The hashed form names its hash already: only the MGF and the salt are given.)
    let mut args = pss_args[2..].to_vec();
    args.extend(["--pin", &c]);
    let sig = p11_sign(&desk, &holder, "SHA256-RSA-PKCS-PSS", doc3, &args).unwrap();
    assert!(common::openssl_verifies(&public_key, &sha256(doc3), &sig, &pss));

    // CKM_RSA_PKCS_PSS over a digest, through the prompt.
    let doc4 = b"a fourth contract";
    let sig = p11_sign(&desk, &holder, "RSA-PKCS-PSS", &sha256(doc4), &pss_args).unwrap();
    assert!(common::openssl_verifies(&public_key, &sha256(doc4), &sig, &pss));

    // The prompt was shown twice, each time naming the application and the digest it was asked to sign.
    let prompts = desk.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    for (prompt, doc) in prompts.iter().zip([&doc2[..], &doc4[..]]) {
        let digest = hex::encode(sha256(doc));
        assert!(
            prompt.to_lowercase().contains(&digest),
            "the prompt names the digest {digest}: {prompt}"
        );
        assert!(
            prompt.contains("pkcs11-tool"),
            "the prompt names the application: {prompt}"
        );
    }
    // Four signatures, four debits.
    assert_eq!(app.books(&holder.credential_id), (4, 4));
}

#[test]
fn pkcs11_tool_signs_raw_and_hashed_ecdsa_with_a_p256_credential() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.ec@example.com", "p256", 1);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let (_, public_key) = holder_cert(&app, &holder);

    let listing = p11_ok(&desk, &["--list-objects"]);
    let id = key_id(&holder);
    let objects = listed(&listing);
    assert!(
        objects
            .iter()
            .any(|o| o.heading.starts_with("Private Key Object; EC") && o.field("ID") == Some(id.as_str())),
        "{listing}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o.heading.contains("EC_POINT 256 bits") && o.field("ID") == Some(id.as_str())),
        "{listing}"
    );

    // CKM_ECDSA over a digest: raw r‖s comes out (64 bytes for P-256), through the prompt.
    let doc = b"an EC contract";
    let raw = p11_sign(&desk, &holder, "ECDSA", &sha256(doc), &[]).unwrap();
    assert_eq!(raw.len(), 64, "raw r‖s");
    assert!(common::openssl_verifies(
        &public_key,
        &sha256(doc),
        &ecdsa_der(&raw),
        &[]
    ));

    // CKM_ECDSA_SHA256: the module hashes, the code in the context login.
    let doc2 = b"another EC contract";
    let c = code(&app, &holder);
    let raw = p11_sign(&desk, &holder, "ECDSA-SHA256", doc2, &["--pin", &c]).unwrap();
    assert_eq!(raw.len(), 64);
    assert!(common::openssl_verifies(
        &public_key,
        &sha256(doc2),
        &ecdsa_der(&raw),
        &[]
    ));
    assert!(!common::openssl_verifies(
        &public_key,
        &sha256(doc),
        &ecdsa_der(&raw),
        &[]
    ));

    assert_eq!(app.books(&holder.credential_id), (2, 2));
}

/// `pkcs11-tool --test --login`: the session, the login without a PIN (the token's protected authentication path)
/// and the digests pass. Its signature part would sign a SHA-1 DigestInfo with `CKM_RSA_PKCS` first (it runs only
/// for mechanisms flagged `CKF_HW`), which Parafa never signs: SHA-1 has no place in a qualified signature, and the
/// module refuses it (`CKR_DATA_INVALID`) before any code is asked. The mechanisms are judged one by one above.
#[test]
fn pkcs11_tool_self_test_passes() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.test@example.com", "rsa2048", 1);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let out = p11_ok(&desk, &["--test", "--login"]);
    assert!(out.contains("all 4 digest functions seem to work"), "{out}");
    assert!(out.contains("No errors"), "{out}");
    assert!(desk.prompts().is_empty(), "{out}");
    assert_eq!(app.books(&holder.credential_id), (0, 0), "{out}");
}

/// The `pkcs11-tool -O` labels pyHanko selects by.
struct Labels {
    token: String,
    /// The holder's certificate.
    cert: String,
    /// The private key.
    key: String,
    /// The CA chain's certificates.
    chain: Vec<String>,
}

fn labels(desk: &Desktop, holder: &Holder) -> Labels {
    let token = token_label(&p11_ok(desk, &["--list-slots"]));
    let listing = p11_ok(desk, &["--list-objects"]);
    let objects = listed(&listing);
    let id = key_id(holder);
    let label = |kind: &str| {
        objects
            .iter()
            .find(|o| o.heading.starts_with(kind) && o.field("ID") == Some(id.as_str()))
            .and_then(|o| o.field("label").map(str::to_owned))
            .unwrap_or_else(|| panic!("no labelled {kind} in:\n{listing}"))
    };
    let chain = objects
        .iter()
        .filter(|o| o.heading.starts_with("Certificate Object") && o.field("ID") != Some(id.as_str()))
        .filter_map(|o| o.field("label").map(str::to_owned))
        .collect();
    Labels {
        token,
        cert: label("Certificate Object"),
        key: label("Private Key Object"),
        chain,
    }
}

/// `pyhanko sign addsig … pkcs11` through the module, PAdES B-T with the timestamp from Parafa's `/tsa` (HTTP Basic
/// with the holder's e-mail and password, in the URL): the signed file.
fn pyhanko_sign_locally(
    app: &TestApp,
    holder: &Holder,
    desk: &Desktop,
    name: &str,
    signing_pin: Option<&str>,
) -> PathBuf {
    let python = crate::pyhanko::venv_python();
    let pyhanko = python.with_file_name("pyhanko");
    assert!(
        pyhanko.exists(),
        "{} is missing: make venv (pyhanko-cli)",
        pyhanko.display()
    );
    let unsigned = desk.work.join(format!("{name}.pdf"));
    let judge = root().join("tests/python/pdf_judge.py");
    common::run_ok(
        python.to_str().unwrap(),
        &[judge.to_str().unwrap(), "make", unsigned.to_str().unwrap(), "2"],
    );
    let labels = labels(desk, holder);
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('@', "%40")
            .replace(' ', "%20")
            .replace(':', "%3A")
    };
    let tsa = format!(
        "{}://{}:{}@{}/tsa",
        "http",
        enc(&holder.email),
        enc(common::HOLDER_PASSWORD),
        app.base.trim_start_matches("http://")
    );
    let signed = desk.work.join(format!("{name}-signed.pdf"));
    let mut c = desk.command(&pyhanko);
    c.args([
        "sign",
        "addsig",
        "--field",
        "1/100,100,300,160/Signature1",
        "--use-pades",
    ])
    .args(["--timestamp-url", &tsa, "pkcs11", "--lib"])
    .arg(pkcs11_module())
    .args(["--token-label", &labels.token, "--cert-label", &labels.cert])
    .args(["--key-label", &labels.key, "--skip-user-pin"]);
    // The CA chain from the token, into the signature (as a Java or Windows-style consumer takes it).
    for ca in &labels.chain {
        c.args(["--other-cert", ca]);
    }
    c.arg(&unsigned).arg(&signed);
    if let Some(pin) = signing_pin {
        c.env("PYHANKO_PKCS11_SIGNING_PIN", pin);
    }
    let out = output_within(c, Duration::from_secs(90));
    assert!(out.status.success(), "pyhanko sign addsig pkcs11: {}", text(&out));
    signed
}

#[test]
fn pyhanko_signs_a_pdf_locally_as_pades_b_t_and_pdfsig_and_pyhanko_validate_it() {
    let app = TestApp::spawn();
    let holder = app.create_holder_with("token.pdf@example.com", "rsa2048", 1, true);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let (root_pem, _) = app.ca_pems();
    let holder_pem = app.cli_ok(&["admin", "cert", &holder.certificate_serial]);
    let nss = crate::pyhanko::nss_db_trusting(&desk.work.join("pdfsig-nssdb"), &root_pem);

    // pyHanko gives no code (it does not log in): the agent asks through its prompt.
    let prompted = pyhanko_sign_locally(&app, &holder, &desk, "prompted", None);
    assert_eq!(desk.prompts().len(), 1, "{:#?}", desk.prompts());
    // pyHanko gives the code in the key's context login (its signing PIN).
    let c = code(&app, &holder);
    let given = pyhanko_sign_locally(&app, &holder, &desk, "given", Some(&c));
    assert_eq!(desk.prompts().len(), 1, "no prompt when the application gave the code");

    let python = crate::pyhanko::venv_python();
    let pyhanko = python.with_file_name("pyhanko");
    for pdf in [&prompted, &given] {
        crate::pyhanko::assert_poppler_and_nss_accept(pdf, &nss, &holder_pem);
        // pyHanko's own judgement at the server's time: intact, trusted up to our root, with a signature timestamp.
        let at = time::OffsetDateTime::from_unix_timestamp(app.now())
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut c = Command::new(&pyhanko);
        c.args(["sign", "validate", "--pretty-print", "--trust-replace", "--trust"])
            .arg(&root_pem)
            .args(["--validation-time", &at])
            .arg(pdf);
        let out = output_within(c, Duration::from_secs(60));
        let said = text(&out);
        assert!(out.status.success(), "pyhanko sign validate: {said}");
        for verdict in [
            "The signer's certificate is trusted.",
            "The signature is cryptographically sound.",
            "The signature covers the entire file.",
            "Signature timestamp token:",
            "The timestamp token is cryptographically sound.",
            "The TSA certificate is trusted.",
            "The signature is judged VALID.",
        ] {
            assert!(
                said.contains(verdict),
                "pyhanko sign validate did not say {verdict:?}: {said}"
            );
        }
    }

    // The ledger: per PDF one signature and two timestamps (pyHanko asks one to size the signature, then the real
    // one), each a transaction debited and recorded.
    assert_eq!(app.books(&holder.credential_id), (6, 6));
}

/// A TLS server (tests/desktop/tls-server) that wants a client certificate from Parafa's CA.
struct TlsServer {
    child: std::process::Child,
    url: String,
    log: PathBuf,
}

impl TlsServer {
    fn start(app: &TestApp, dir: &Path) -> TlsServer {
        let (key, cert, log) = (dir.join("server.key"), dir.join("server.pem"), dir.join("tls.log"));
        common::run_ok(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
        );
        let chain = app.chain_pem();
        let mut child = Command::new(root().join("tests/desktop/tls-server"))
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--ca")
            .arg(&chain)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("tests/desktop/tls-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the TLS server's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("tls-server said {line:?}"))
            .to_owned();
        TlsServer { child, url, log }
    }

    fn port(&self) -> &str {
        self.url.rsplit(':').next().unwrap()
    }

    /// The client certificates the server accepted: (subject, serial), one per handshake.
    fn clients(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("client: "))
            .filter_map(|l| l.split_once(" serial="))
            .map(|(subject, rest)| (subject.to_owned(), rest.split(' ').next().unwrap_or("").to_owned()))
            .collect()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gnutls-cli` with the key and the certificate as `pkcs11:` URIs of the module, sends one HTTP request: what it
/// printed.
fn gnutls_login(desk: &Desktop, holder: &Holder, server: &TlsServer, server_cert: &Path) -> String {
    let id = uri_id(holder);
    let mut child = desk
        .command("gnutls-cli")
        .arg("--provider")
        .arg(pkcs11_module())
        .args(["--x509certfile", &format!("pkcs11:id={id};type=cert")])
        .args(["--x509keyfile", &format!("pkcs11:id={id};type=private")])
        .arg("--x509cafile")
        .arg(server_cert)
        .args(["-p", server.port(), "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gnutls-cli (make test installs gnutls-bin)");
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    for r in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("Handshake was completed") {
            let _ = stdin.write_all(b"GET / HTTP/1.0\r\n\r\n");
        }
        let done = line.starts_with("hello ");
        said.push_str(&line);
        said.push('\n');
        if done {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    said
}

/// Headless Chromium with the module in its NSS database (`$HOME/.pki/nssdb`, added with `modutil`) and the
/// auto-select-certificate setting for the site (the content setting that the `AutoSelectCertificateForUrls`
/// policy sets, here in the fresh profile's preferences): the page it got (with what it said on the way).
fn chromium_login(desk: &Desktop, server: &TlsServer, issuer_cn: &str) -> String {
    let profile = desk.work.join("chromium-profile");
    std::fs::create_dir_all(profile.join("Default")).unwrap();
    let pattern = format!("{},*", server.url);
    let prefs = serde_json::json!({"profile": {"content_settings": {"exceptions": {"auto_select_certificate": {
        pattern: {"setting": {"filters": [{"ISSUER": {"CN": issuer_cn}}]}}
    }}}}});
    std::fs::write(profile.join("Default/Preferences"), prefs.to_string()).unwrap();
    let mut c = desk.command("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--ignore-certificate-errors",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(["--dump-dom", &format!("{}/", server.url)]);
    let out = output_within(c, Duration::from_secs(90));
    assert!(out.status.success(), "chromium: {}", text(&out));
    text(&out)
}

#[test]
fn gnutls_and_headless_chromium_log_in_to_a_tls_site_with_the_cloud_key() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.tls@example.com", "rsa2048", 1);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let server = TlsServer::start(&app, &desk.work);
    let serial = serial_form(&holder.certificate_serial);
    let holder_file = desk.work.join("holder.pem");
    std::fs::write(&holder_file, app.cli_ok(&["admin", "cert", &holder.certificate_serial])).unwrap();
    let holder_cn = common_name(&holder_file);

    // GnuTLS: the key as a pkcs11: URI.
    let said = gnutls_login(&desk, &holder, &server, &desk.work.join("server.pem"));
    assert!(said.contains(&format!("hello {holder_cn}")), "gnutls-cli:\n{said}");
    let clients = server.clients();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(serial_form(&clients[0].1), serial, "{clients:?}");
    assert!(clients[0].0.contains(&holder_cn), "{clients:?}");
    assert_eq!(app.books(&holder.credential_id), (1, 1));

    // NSS: the module in a fresh database, where certutil sees the certificates.
    let db = format!("sql:{}", desk.home.join(".pki/nssdb").display());
    std::fs::create_dir_all(desk.home.join(".pki/nssdb")).unwrap();
    let nss = |program: &str, args: &[&str]| {
        let mut c = desk.command(program);
        c.args(args);
        let out = output_within(c, Duration::from_secs(60));
        assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    nss("certutil", &["-N", "-d", &db, "--empty-password"]);
    let module = pkcs11_module();
    nss(
        "modutil",
        &[
            "-dbdir",
            &db,
            "-add",
            "Parafa",
            "-libfile",
            module.to_str().unwrap(),
            "-force",
        ],
    );
    let labels = labels(&desk, &holder);
    let listed = nss("certutil", &["-L", "-d", &db, "-h", "all"]);
    assert!(
        listed.contains(&format!("{}:{}", labels.token, labels.cert)),
        "certutil -L -h all:\n{listed}"
    );
    let issuing = app.ca_pems().1;
    let issuer_cn = common_name(&issuing);
    assert!(listed.contains(&issuer_cn), "the chain is there too:\n{listed}");

    // Headless Chromium picks the certificate for the site and signs the handshake through NSS and the module.
    let page = chromium_login(&desk, &server, &issuer_cn);
    assert!(page.contains(&format!("hello {holder_cn}")), "Chromium got:\n{page}");
    let clients = server.clients();
    assert!(clients.len() >= 2, "{clients:?}");
    assert!(clients.iter().all(|(_, s)| serial_form(s) == serial), "{clients:?}");
    // Each handshake signature asked for its own code and was debited once.
    let signed = app.books(&holder.credential_id);
    assert_eq!(signed.0, signed.1);
    assert_eq!(signed.0, desk.prompts().len() as i64, "{:#?}", desk.prompts());
}

#[test]
fn install_registers_the_module_with_p11_kit_for_the_user() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.install@example.com", "rsa2048", 1);
    let desk = Desktop::logged_in(&app, &holder);
    let module = pkcs11_module();

    let mut c = desk.command(token_bin());
    c.arg("install");
    let out = output_within(c, Duration::from_secs(30));
    assert!(out.status.success(), "parafa-token install: {}", text(&out));
    let file = desk.home.join(".config/pkcs11/modules/parafa.module");
    let written = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let module_real = std::fs::canonicalize(&module).unwrap();
    assert!(
        written.lines().any(|l| l
            .strip_prefix("module:")
            .is_some_and(|p| { std::fs::canonicalize(p.trim()).ok().as_deref() == Some(module_real.as_path()) })),
        "{written}"
    );
    // How to add it by hand elsewhere is said.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("modutil"), "{said}");

    let modules = p11_kit_modules(&desk);
    assert!(
        modules
            .lines()
            .any(|l| l.starts_with("parafa:") && l.contains("libparafa_pkcs11.so")),
        "p11-kit list-modules:\n{modules}"
    );

    let mut c = desk.command(token_bin());
    c.arg("uninstall");
    let out = output_within(c, Duration::from_secs(30));
    assert!(out.status.success(), "parafa-token uninstall: {}", text(&out));
    assert!(!file.exists());
    let modules = p11_kit_modules(&desk);
    assert!(!modules.lines().any(|l| l.starts_with("parafa:")), "{modules}");
}

/// `p11-kit list-modules` as the holder. p11-kit ignores the user's configuration when run as root, so the test
/// suite running as root (CI) runs it as `nobody`, with the home directory opened for reading; the module then finds
/// no agent (the test's is root's), which p11-kit lists without a token.
fn p11_kit_modules(desk: &Desktop) -> String {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut c = desk.command("p11-kit");
    c.arg("list-modules");
    if rustix::process::getuid().is_root() {
        let mut d = Some(desk.home.as_path());
        while let Some(dir) = d.filter(|d| d.starts_with(std::env::temp_dir()) && *d != std::env::temp_dir()) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            d = dir.parent();
        }
        for sub in [".config", ".config/pkcs11", ".config/pkcs11/modules"] {
            let p = desk.home.join(sub);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        c.uid(65534).gid(65534).env("PARAFA_TOKEN_AGENT", "/bin/false");
    }
    let out = output_within(c, Duration::from_secs(30));
    assert!(out.status.success(), "p11-kit list-modules: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A prompt program that never answers: it marks that it was asked, then reads until the agent's end closes.
fn silent_prompt(desk: &Desktop) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (script, marker) = (desk.work.join("silent-pinentry"), desk.work.join("asked"));
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'OK Pleased to meet you'\nwhile IFS= read -r line; do\n  case \"$line\" in\n    \
         GETPIN*) : > \"$PARAFA_TEST_ASKED\" ;;\n    BYE*) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, marker)
}

fn assert_refused(result: Result<Vec<u8>, String>, why: &str, what: &str) {
    match result {
        Ok(_) => panic!("{what}: signed"),
        Err(out) => assert!(out.contains(why), "{what}: not {why}:\n{out}"),
    }
}

/// The refusals a code can cause, and a killed agent, through `pkcs11-tool --sign`. When a single-part `C_Sign`
/// fails, pkcs11-tool tries once more in parts (`C_SignInit`, the context login again, `C_SignUpdate`,
/// `C_SignFinal`) and reports the second failure: each refused signature below was asked of the agent twice.
#[test]
fn wrong_replayed_cancelled_or_unaskable_codes_a_killed_agent_and_a_revoked_credential_sign_nothing() {
    let app = TestApp::spawn();
    let holder = app.create_holder("token.refusals@example.com", "rsa2048", 1);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let mech = "SHA256-RSA-PKCS";

    // A wrong code in the context login (twice: two of the five wrong codes the server allows in a row).
    let good = code(&app, &holder);
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_refused(
        p11_sign(&desk, &holder, mech, b"wrong", &["--pin", &wrong]),
        "CKR_PIN_INCORRECT",
        "a wrong code",
    );
    assert_eq!(app.books(&holder.credential_id), (0, 0));

    // The right one signs (and clears the count of wrong ones); given again for another document, it is a replay.
    p11_sign(&desk, &holder, mech, b"first", &["--pin", &good]).unwrap();
    assert_eq!(app.books(&holder.credential_id), (1, 1));
    assert_refused(
        p11_sign(&desk, &holder, mech, b"second", &["--pin", &good]),
        "CKR_PIN_INCORRECT",
        "a replayed code",
    );

    // The holder cancels the prompt.
    desk.start_agent(Prompt::Cancel);
    assert_refused(
        p11_sign(&desk, &holder, mech, b"cancelled", &[]),
        "CKR_FUNCTION_CANCELED",
        "a cancelled prompt",
    );

    // No prompt program and no display: nobody to ask.
    desk.start_agent_with(&[("PARAFA_TOKEN_PINENTRY", "")]);
    assert_refused(
        p11_sign(&desk, &holder, mech, b"headless", &[]),
        "CKR_USER_NOT_LOGGED_IN",
        "no way to ask",
    );
    assert_eq!(app.books(&holder.credential_id), (1, 1));

    // The agent is killed while its prompt waits: the application gets an error, nothing is signed or debited.
    // (No new agent may start on demand for pkcs11-tool's second try, which would ask again and sign.)
    let (script, asked) = silent_prompt(&desk);
    desk.start_agent_with(&[
        ("PARAFA_TOKEN_PINENTRY", script.to_str().unwrap()),
        ("PARAFA_TEST_ASKED", asked.to_str().unwrap()),
    ]);
    let id = key_id(&holder);
    let input = desk.work.join("killed.txt");
    std::fs::write(&input, b"killed mid-sign").unwrap();
    let output = desk.work.join("killed.sig");
    let mut c = desk.command("pkcs11-tool");
    c.env("PARAFA_TOKEN_AGENT", "/bin/false")
        .arg("--module")
        .arg(pkcs11_module())
        .args(["--sign", "--id", &id, "--mechanism", mech, "--input-file"])
        .arg(&input)
        .arg("--output-file")
        .arg(&output);
    let signing = std::thread::spawn(move || output_within(c, Duration::from_secs(60)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !asked.exists() {
        assert!(Instant::now() < deadline, "the prompt was never shown");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(desk.agent_running());
    desk.stop_agent();
    let out = signing.join().unwrap();
    assert!(!out.status.success(), "signed without its agent: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CKR_DEVICE_ERROR"),
        "{}",
        text(&out)
    );
    assert!(std::fs::read(&output).map(|s| s.is_empty()).unwrap_or(true));
    assert_eq!(app.books(&holder.credential_id), (1, 1));

    // A new agent signs again.
    desk.start_agent(Prompt::Ok);
    p11_sign(&desk, &holder, mech, b"after the restart", &[]).unwrap();
    assert_eq!(app.books(&holder.credential_id), (2, 2));

    // Wrong codes typed in the prompt: asked three times, each time told why, then refused; pkcs11-tool's second
    // try brings the wrong codes in a row to five, and the server locks the credential's authorisation.
    desk.start_agent(Prompt::Wrong);
    let before = desk.prompts().len();
    assert_refused(
        p11_sign(&desk, &holder, mech, b"typos", &[]),
        "CKR_PIN_LOCKED",
        "five wrong codes in a row",
    );
    assert!(desk.prompts().len() - before >= 3, "{}", desk.prompt_log());
    assert!(desk.prompt_log().contains("SETERROR"), "{}", desk.prompt_log());
    assert_eq!(app.books(&holder.credential_id), (2, 2));

    // Later (the lock lifted), the credential is revoked: signing is refused with its reason.
    app.advance_clock(3600);
    desk.start_agent(Prompt::Ok);
    app.cli_ok(&["admin", "revoke", &holder.credential_id]);
    let c = code(&app, &holder);
    assert_refused(
        p11_sign(&desk, &holder, mech, b"revoked", &["--pin", &c]),
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        "a revoked credential",
    );
    assert_eq!(app.books(&holder.credential_id), (2, 2));
}

#[test]
fn an_exhausted_package_and_an_ended_login_sign_nothing() {
    let (app, _config) = crate::tsa::spawn_with_package(2);
    let holder = app.create_holder("token.spent@example.com", "rsa2048", 1);
    assert_eq!(holder.transactions, 2);
    let mut desk = Desktop::logged_in(&app, &holder);
    desk.start_agent(Prompt::Ok);
    let mech = "SHA256-RSA-PKCS";
    for doc in [&b"one"[..], b"two"] {
        p11_sign(&desk, &holder, mech, doc, &[]).unwrap();
    }
    assert_eq!(app.books(&holder.credential_id), (2, 2));

    // The package is spent: refused, and the holder is told in the prompt.
    let before = desk.prompt_log().len();
    assert_refused(
        p11_sign(&desk, &holder, mech, b"three", &[]),
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
        "an exhausted package",
    );
    assert_eq!(app.books(&holder.credential_id), (2, 2));
    let told = desk.prompt_log()[before..].to_lowercase();
    assert!(told.contains("exhausted") || told.contains("0 left"), "{told}");

    // The holder revokes the desktop app in their settings: the login ended, the module says so.
    let (_, body) = app.page("/settings", "en", Some(&desk.cookie));
    let start = body.find("data-api=\"/api/v1/me/apps/").expect("the app's revoke form") + "data-api=\"".len();
    let path = &body[start..start + body[start..].find('"').unwrap()];
    let (status, _) = app.call("DELETE", path, Some(&desk.cookie), None);
    assert_eq!(status, 204);
    let c = code(&app, &holder);
    match p11_sign(&desk, &holder, mech, b"after the end", &["--pin", &c]) {
        Ok(_) => panic!("signed after the login ended"),
        Err(out) => assert!(
            out.contains("CKR_USER_NOT_LOGGED_IN") || out.contains("No slot with a token was found"),
            "{out}"
        ),
    }
    assert_eq!(app.books(&holder.credential_id), (2, 2));
}
