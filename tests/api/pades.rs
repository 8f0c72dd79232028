//! PAdES through the real server: `documents::pades` prepares the incremental update, the byte-range digest goes
//! into a detached CMS (`documents::cms`, no signing-time) whose signed attributes are authorized and signed with
//! the CSC API (the holder's key in SoftHSM2), and the CMS goes into the placeholder. Outside judges: poppler's
//! `pdfsig` (signature valid, whole file signed), pyHanko's validator trusting our root (intact, valid, trusted,
//! coverage, what later revisions changed), `pdftoppm` for the visible appearance, on PDFs made at test time by
//! pyHanko's writer and by `qpdf` (object streams, linearised, encrypted) and PDFs signed or certified by pyHanko.
//! Document timestamps take their RFC 3161 token from an OpenSSL TSA made for the test.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{run, run_ok, TestApp};
use const_oid::db::rfc5911::ID_DATA;
use parafa::documents::cms::{self, Encapsulation, SignerSpec};
use parafa::documents::pades::{self, Appearance, Kind, Limits, PdfError, Placement};
use parafa::hsm::{HashAlg, SignMechanism};
use serde_json::{json, Value};
use tempfile::TempDir;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// Room for the CMS: an RSA-2048 signature with a three-certificate chain is about 4 KB.
const PLACEHOLDER: usize = 16 * 1024;

/// Makes the PDFs (`make DIR [big] [pyhanko]`) and judges one (`judge PDF ROOT...`: JSON on standard output).
const JUDGE_PY: &str = r#"
import datetime, io, json, os, sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext


def plain_pdf(pages, big_stream=0):
    """Pages of text in Helvetica, made with pyHanko's writer; optionally a big image on page 1."""
    w = PdfFileWriter()
    font = w.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Font"),
        pdf_name("/Subtype"): pdf_name("/Type1"),
        pdf_name("/BaseFont"): pdf_name("/Helvetica"),
    }))
    for n in range(1, pages + 1):
        resources = generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})})
        text = f"BT /F1 18 Tf 72 720 Td (Parafa PAdES test, page {n}) Tj ET".encode()
        if n == 1 and big_stream:
            side = int((big_stream / 3) ** 0.5)
            image = generic.StreamObject({
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Image"),
                pdf_name("/Width"): generic.NumberObject(side),
                pdf_name("/Height"): generic.NumberObject(side),
                pdf_name("/ColorSpace"): pdf_name("/DeviceRGB"),
                pdf_name("/BitsPerComponent"): generic.NumberObject(8),
            }, stream_data=os.urandom(side * side * 3))
            resources[pdf_name("/XObject")] = generic.DictionaryObject({pdf_name("/Im1"): w.add_object(image)})
            text += b" q 200 0 0 200 72 400 cm /Im1 Do Q"
        content = generic.StreamObject(stream_data=text)
        w.insert_page(PageObject(contents=w.add_object(content), media_box=[0, 0, 595, 842], resources=resources))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def self_signed(out_dir):
    """A P-256 key and a self-signed certificate for pyHanko's own signatures."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyHanko test signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(out_dir, "pyhanko-key.pem"), os.path.join(out_dir, "pyhanko-cert.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return signers.SimpleSigner.load(key_path, cert_path)


def pyhanko_sign(data, signer, certify=None):
    meta = signers.PdfSignatureMetadata(
        field_name="ByPyHanko", subfilter=fields.SigSeedSubFilter.PADES,
        certify=certify is not None, docmdp_permissions=certify or fields.MDPPerm.FILL_FORMS,
    )
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), meta, signer=signer, output=out)
    return out.getvalue()


def make(out_dir, what):
    def write(name, data):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    plain = plain_pdf(3)
    write("plain.pdf", plain)
    if "big" in what:
        write("big.pdf", plain_pdf(2, big_stream=10 * 1024 * 1024))
    if "pyhanko" in what:
        signer = self_signed(out_dir)
        write("signed-by-pyhanko.pdf", pyhanko_sign(plain, signer))
        write("certified-p1.pdf", pyhanko_sign(plain, signer, fields.MDPPerm.NO_CHANGES))
        write("certified-p2.pdf", pyhanko_sign(plain, signer, fields.MDPPerm.FILL_FORMS))


def page_refs(node):
    for kid in node.raw_get("/Kids"):
        obj = kid.get_object()
        if "/Kids" in obj:
            yield from page_refs(obj)
        else:
            yield kid.reference


def judge(pdf, roots):
    trust = [load_cert_from_pemder(r) for r in roots]
    with open(pdf, "rb") as f:
        reader = PdfFileReader(io.BytesIO(f.read()))
    pages = list(page_refs(reader.root["/Pages"]))
    report = {"signatures": [], "dss": None, "pages": len(pages)}
    for sig in reader.embedded_signatures:
        vc = ValidationContext(trust_roots=trust, allow_fetching=False)
        if sig.sig_object_type == "/DocTimeStamp":
            status = validate_pdf_timestamp(sig, validation_context=vc)
        else:
            status = validate_pdf_signature(sig, vc)
        field = sig.sig_field
        annot = field if "/Rect" in field else field["/Kids"][0].get_object()
        page = annot.raw_get("/P").reference if "/P" in annot else None
        report["signatures"].append({
            "field": sig.field_name,
            "type": str(sig.sig_object_type),
            "subfilter": str(sig.sig_object.get("/SubFilter")),
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "coverage": status.coverage.name,
            "modification_level": status.modification_level.name if status.modification_level else None,
            "docmdp_ok": getattr(status, "docmdp_ok", None),
            "bottom_line": getattr(status, "bottom_line", status.intact and status.valid and status.trusted),
            "rect": [float(x) for x in annot["/Rect"]],
            "flags": int(annot.get("/F", 0)),
            "page": pages.index(page) + 1 if page in pages else None,
            "summary": status.pretty_print_details() if hasattr(status, "pretty_print_details") else repr(status),
        })
    dss = reader.root.get_value_as_reference("/DSS", optional=True)
    if dss is not None:
        dss = dss.get_object()
        report["dss"] = {k[1:]: len(dss[k]) for k in ("/Certs", "/CRLs", "/OCSPs") if k in dss}
    return report


if sys.argv[1] == "make":
    make(sys.argv[2], sys.argv[3:])
else:
    print(json.dumps(judge(sys.argv[2], sys.argv[3:])))
"#;

/// The venv's Python, or a failure that says how to get it.
fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run make venv (or make test) first",
        python.display()
    );
    python
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

/// PDFs made at test time in a directory of their own.
struct Fixtures {
    dir: TempDir,
}

impl Fixtures {
    /// `plain.pdf` (3 pages, pyHanko's writer), plus `big.pdf` (~10 MB) and the files signed and certified by
    /// pyHanko (`signed-by-pyhanko.pdf`, `certified-p1.pdf`, `certified-p2.pdf`, `pyhanko-cert.pem`) when asked.
    fn make(extra: &[&str]) -> Fixtures {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("judge.py");
        std::fs::write(&script, JUDGE_PY).expect("write judge.py");
        let mut args = vec![path(&script), "make", path(dir.path())];
        args.extend(extra);
        run_ok(path(&venv_python()), &args);
        Fixtures { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    /// `qpdf ARGS plain.pdf OUT`: object streams, linearisation, encryption.
    fn qpdf(&self, args: &[&str], out: &str) -> Vec<u8> {
        let (input, output) = (self.path("plain.pdf"), self.path(out));
        let mut all: Vec<&str> = args.to_vec();
        all.extend([path(&input), path(&output)]);
        run_ok("qpdf", &all);
        self.read(out)
    }

    /// pyHanko's verdict on every signature of a PDF, trusting `roots` (PEM files).
    fn judge(&self, pdf: &Path, roots: &[&Path]) -> Value {
        let script = self.path("judge.py");
        let mut args = vec![path(&script), "judge", path(pdf)];
        args.extend(roots.iter().map(|r| path(r)));
        let out = run_ok(path(&venv_python()), &args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("judge output {e}: {out}"))
    }
}

/// One signature as `pdfsig` reports it.
#[derive(Debug)]
struct PdfSig {
    valid: bool,
    whole_file: bool,
    kind: String,
    text: String,
}

/// `pdfsig -nocert` (certificate trust is pyHanko's part): one entry per signature.
fn pdfsig(pdf: &Path) -> Vec<PdfSig> {
    let out = run("pdfsig", &["-nocert", path(pdf)], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pdfsig failed on {}: {text}{}",
        pdf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.split("Signature #")
        .skip(1)
        .map(|block| PdfSig {
            valid: block.contains("Signature Validation: Signature is Valid."),
            whole_file: block.contains("Total document signed"),
            kind: block
                .lines()
                .find_map(|l| l.trim().strip_prefix("- Signature Type: "))
                .unwrap_or_default()
                .to_owned(),
            text: block.to_owned(),
        })
        .collect()
}

/// pdfsig finds `count` signatures, all valid, the last over the whole file.
fn assert_pdfsig_valid(pdf: &Path, count: usize) {
    let sigs = pdfsig(pdf);
    assert_eq!(sigs.len(), count, "{}: {sigs:#?}", pdf.display());
    for s in &sigs {
        assert!(s.valid, "pdfsig: not valid in {}:\n{}", pdf.display(), s.text);
    }
    let last = sigs.last().expect("a signature");
    assert!(
        last.whole_file,
        "pdfsig: the last signature does not cover the whole file:\n{}",
        last.text
    );
}

/// pyHanko: every signature intact, valid, trusted and judged valid; the last covers the whole file, the earlier
/// ones their revision. Returns the report.
fn assert_pyhanko_valid(fixtures: &Fixtures, pdf: &Path, roots: &[&Path], count: usize) -> Value {
    let report = fixtures.judge(pdf, roots);
    let sigs = report["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), count, "{report:#}");
    for (i, s) in sigs.iter().enumerate() {
        let summary = s["summary"].as_str().unwrap_or_default();
        for key in ["intact", "valid", "trusted", "bottom_line"] {
            assert_eq!(
                s[key],
                true,
                "pyHanko: signature {} of {} not {key}:\n{summary}",
                i + 1,
                pdf.display()
            );
        }
        let expected = if i + 1 == count {
            "ENTIRE_FILE"
        } else {
            "ENTIRE_REVISION"
        };
        assert_eq!(s["coverage"], expected, "{summary}");
    }
    report
}

/// A holder with a session and the certificate chain of its credential, signing through the CSC API.
struct Signer {
    app: TestApp,
    holder: common::Holder,
    token: String,
    /// Signer, issuing CA, root.
    chain: Vec<Vec<u8>>,
    mechanism: SignMechanism,
    sign_algo: &'static str,
    root: PathBuf,
}

impl Signer {
    fn new(key: &str) -> Signer {
        let app = TestApp::spawn();
        let holder = app.create_holder_with(&format!("pades-{key}@example.com"), key, 1, false);
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
        let (mechanism, sign_algo) = match key {
            "rsa2048" => (SignMechanism::RsaPkcs1(HashAlg::Sha256), SHA256_RSA),
            _ => (SignMechanism::Ecdsa, ECDSA_SHA256),
        };
        let (root, _) = app.ca_pems();
        Signer {
            app,
            holder,
            token,
            chain,
            mechanism,
            sign_algo,
            root,
        }
    }

    /// Signs a digest in the HSM as a CSC client does: authorize it with a fresh TOTP code, then signHash.
    fn sign_hash(&self, digest: &[u8]) -> Vec<u8> {
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
        assert_eq!(status, 200, "authorize: {out}");
        let (status, out) = self.app.csc(
            "/csc/v2/signatures/signHash",
            &self.token,
            &json!({
                "credentialID": self.holder.credential_id,
                "SAD": out["SAD"],
                "hashes": [b64(digest)],
                "hashAlgorithmOID": SHA256,
                "signAlgo": self.sign_algo,
            }),
        );
        assert_eq!(status, 200, "signHash: {out}");
        unb64(&out["signatures"][0])
    }

    /// prepare → digest of the byte range → detached CMS without signing-time → signed in the HSM → finish.
    fn sign_pdf(&self, pdf: &[u8], appearance: Option<&Appearance>) -> Vec<u8> {
        let kind = Kind::Signature {
            signing_time: self.app.now(),
        };
        let placement = match appearance {
            Some(a) => Placement::Visible(a.clone()),
            None => Placement::Invisible,
        };
        let prepared = pades::prepare(pdf, kind, &placement, PLACEHOLDER, &Limits::default()).expect("prepared");
        assert!(
            prepared.file().starts_with(pdf),
            "the original stays an untouched prefix"
        );
        let digest = prepared.digest(HashAlg::Sha256);
        let spec = SignerSpec {
            cert_der: &self.chain[0],
            chain_der: &self.chain[1..],
            hash: HashAlg::Sha256,
            mechanism: self.mechanism,
            signing_time: None,
            content_type: ID_DATA,
        };
        let cms = cms::prepare(&spec, Encapsulation::Detached { digest: &digest }).expect("CMS prepared");
        let signature = self.sign_hash(cms.digest());
        let der = cms.finish(signature).expect("SignedData");
        prepared.finish(&der).expect("the CMS fits the placeholder")
    }
}

/// An OpenSSL time-stamping authority (self-signed, extendedKeyUsage timeStamping critical) in a directory.
struct Tsa {
    dir: PathBuf,
    cert: PathBuf,
}

impl Tsa {
    fn new(dir: &Path) -> Tsa {
        let dir = dir.join("tsa");
        std::fs::create_dir_all(&dir).expect("tsa dir");
        let (key, cert) = (dir.join("tsa.key"), dir.join("tsa.pem"));
        run_ok(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                path(&key),
                "-out",
                path(&cert),
                "-days",
                "2",
                "-subj",
                "/CN=Parafa test TSA",
                "-addext",
                "extendedKeyUsage=critical,timeStamping",
                "-addext",
                "keyUsage=critical,digitalSignature",
            ],
        );
        std::fs::write(dir.join("serial"), "01\n").expect("serial");
        let config = format!(
            "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\nserial = {d}/serial\nsigner_cert = {d}/tsa.pem\n\
             signer_key = {d}/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.3.6.1.4.1.99999.1\n\
             digests = sha256\naccuracy = secs:1\ness_cert_id_alg = sha256\n",
            d = dir.display()
        );
        std::fs::write(dir.join("tsa.cnf"), config).expect("tsa.cnf");
        Tsa { dir, cert }
    }

    /// A DER TimeStampToken over a SHA-256 digest.
    fn stamp(&self, digest: &[u8]) -> Vec<u8> {
        let (query, token) = (self.dir.join("q.tsq"), self.dir.join("token.der"));
        run_ok(
            "openssl",
            &[
                "ts",
                "-query",
                "-digest",
                &hex::encode(digest),
                "-sha256",
                "-cert",
                "-out",
                path(&query),
            ],
        );
        let config = self.dir.join("tsa.cnf");
        run_ok(
            "openssl",
            &[
                "ts",
                "-reply",
                "-config",
                path(&config),
                "-queryfile",
                path(&query),
                "-token_out",
                "-out",
                path(&token),
            ],
        );
        std::fs::read(token).expect("token")
    }

    /// The PDF with a document timestamp (PAdES B-LTA) over all of it.
    fn timestamp_pdf(&self, pdf: &[u8]) -> Vec<u8> {
        let prepared = pades::prepare(
            pdf,
            Kind::DocumentTimestamp,
            &Placement::Invisible,
            PLACEHOLDER,
            &Limits::default(),
        )
        .expect("prepared");
        let token = self.stamp(&prepared.digest(HashAlg::Sha256));
        prepared.finish(&token).expect("the token fits")
    }
}

/// Dark pixels of page `page` (rendered by poppler at 72 dpi, so one pixel per point) inside `rect` (PDF points).
pub(crate) fn dark_pixels_in(pdf: &Path, page: usize, rect: [f64; 4]) -> usize {
    let prefix = format!("{}-page{page}", pdf.display());
    let p = page.to_string();
    run_ok(
        "pdftoppm",
        &[
            "-gray",
            "-r",
            "72",
            "-f",
            &p,
            "-l",
            &p,
            "-singlefile",
            path(pdf),
            &prefix,
        ],
    );
    let image = std::fs::read(format!("{prefix}.pgm")).expect("rendered page");
    // P5 header: magic, width, height, maxval, then one byte per pixel.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while image[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !image[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&image[start..at]).into_owned());
    }
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = &image[at + 1..];
    let mut dark = 0;
    for y in (height as f64 - rect[3]) as usize..(height as f64 - rect[1]) as usize {
        for x in rect[0] as usize..rect[2] as usize {
            if pixels[y * width + x] < 128 {
                dark += 1;
            }
        }
    }
    dark
}

#[test]
fn invisible_then_visible_signatures_dss_and_a_document_timestamp_all_validate() {
    let s = Signer::new("rsa2048");
    let f = Fixtures::make(&[]);
    let plain = f.read("plain.pdf");
    let info = pades::inspect(&plain, &Limits::default()).expect("inspected");
    assert_eq!((info.page_count(), info.signatures, info.certification), (3, 0, None));

    // B-B, invisible.
    let once = s.sign_pdf(&plain, None);
    let once_path = f.write("once.pdf", &once);
    assert_pdfsig_valid(&once_path, 1);
    assert_eq!(pdfsig(&once_path)[0].kind, "ETSI.CAdES.detached");
    let report = assert_pyhanko_valid(&f, &once_path, &[&s.root], 1);
    let sig = &report["signatures"][0];
    assert_eq!(sig["rect"], json!([0.0, 0.0, 0.0, 0.0]), "{report:#}");
    assert_eq!((sig["page"].clone(), sig["flags"].clone()), (json!(1), json!(132)));
    assert_eq!(sig["subfilter"], "/ETSI.CAdES.detached");

    // A second, visible signature on page 2.
    let rect = [100.0, 100.0, 320.0, 170.0];
    let appearance = Appearance {
        page: 2,
        rect,
        name: "Ana Maria Ștefănescu".into(),
        date: "2026-11-25 10:00 UTC".into(),
    };
    assert_eq!(dark_pixels_in(&once_path, 2, rect), 0, "the rectangle is blank before");
    let twice = s.sign_pdf(&once, Some(&appearance));
    let twice_path = f.write("twice.pdf", &twice);
    assert_pdfsig_valid(&twice_path, 2);
    assert!(
        !pdfsig(&twice_path)[0].whole_file,
        "the first covers its own revision only"
    );
    let report = assert_pyhanko_valid(&f, &twice_path, &[&s.root], 2);
    let (first, second) = (&report["signatures"][0], &report["signatures"][1]);
    assert_eq!(first["modification_level"], "FORM_FILLING", "{report:#}");
    assert_eq!(second["rect"], json!(rect), "{report:#}");
    assert_eq!(second["page"], 2);
    assert_eq!(second["field"], "Signature2");
    let dark = dark_pixels_in(&twice_path, 2, rect);
    assert!(
        dark > 200,
        "poppler draws the appearance: {dark} dark pixels in the rectangle"
    );
    assert_eq!(pades::inspect(&twice, &Limits::default()).unwrap().signatures, 2);

    // B-LT: the chain, both CRLs and an OCSP response for the holder in a DSS.
    let crl = |p: &str| s.app.get(p).bytes().expect("CRL").to_vec();
    let crls = vec![crl("/pki/crl"), crl("/pki/root.crl")];
    let holder_der = f.write("holder.der", &s.chain[0]);
    let issuing_der = f.write("issuing.der", &s.chain[1]);
    let ocsp_out = f.path("ocsp.der");
    run_ok(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            path(&issuing_der),
            "-cert",
            path(&holder_der),
            "-url",
            &s.app.url("/pki/ocsp"),
            "-respout",
            path(&ocsp_out),
            "-noverify",
        ],
    );
    let ocsps = vec![std::fs::read(&ocsp_out).expect("OCSP response")];
    let with_dss = pades::add_dss(&twice, &s.chain, &crls, &ocsps, &Limits::default()).expect("DSS added");
    assert!(with_dss.starts_with(&twice));
    let dss_path = f.write("dss.pdf", &with_dss);
    let report = assert_pyhanko_intact(&f, &dss_path, &[&s.root], 2);
    assert_eq!(report["dss"], json!({"Certs": 3, "CRLs": 2, "OCSPs": 1}), "{report:#}");
    assert_eq!(report["signatures"][1]["coverage"], "ENTIRE_REVISION");
    assert_eq!(
        report["signatures"][1]["modification_level"], "LTA_UPDATES",
        "{report:#}"
    );
    assert!(pades::inspect(&with_dss, &Limits::default()).unwrap().has_dss);
    let sigs = pdfsig(&dss_path);
    assert!(sigs.len() == 2 && sigs.iter().all(|s| s.valid), "{sigs:#?}");

    // B-LTA: a document timestamp over everything.
    let tsa = Tsa::new(f.dir.path());
    let stamped = tsa.timestamp_pdf(&with_dss);
    let stamped_path = f.write("stamped.pdf", &stamped);
    let report = assert_pyhanko_valid(&f, &stamped_path, &[&s.root, &tsa.cert], 3);
    let ts = &report["signatures"][2];
    assert_eq!(
        (ts["type"].clone(), ts["subfilter"].clone()),
        (json!("/DocTimeStamp"), json!("/ETSI.RFC3161"))
    );
    // poppler 22.12 lists a document timestamp but neither names nor verifies ETSI.RFC3161 ("not yet verified"):
    // pyHanko is the judge of the token above; pdfsig still sees it over the whole file, the others valid.
    let sigs = pdfsig(&stamped_path);
    assert_eq!(sigs.len(), 3, "{sigs:#?}");
    assert!(
        sigs[2].whole_file && sigs[2].text.contains("Common Name: Parafa test TSA"),
        "{sigs:#?}"
    );
    assert!(sigs[..2].iter().all(|s| s.valid), "{sigs:#?}");
}

/// pyHanko: every signature intact and valid (coverage not checked: a DSS revision follows the last one).
fn assert_pyhanko_intact(f: &Fixtures, pdf: &Path, roots: &[&Path], count: usize) -> Value {
    let report = f.judge(pdf, roots);
    let sigs = report["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), count, "{report:#}");
    for s in sigs {
        assert!(
            s["intact"] == true && s["valid"] == true && s["bottom_line"] == true,
            "{}",
            s["summary"]
        );
    }
    report
}

#[test]
fn object_stream_and_linearised_files_from_qpdf_sign_with_the_cross_reference_kind_they_use() {
    let s = Signer::new("p256");
    let f = Fixtures::make(&[]);
    for (name, args) in [
        ("objstm.pdf", &["--object-streams=generate"][..]),
        ("linear.pdf", &["--linearize"][..]),
        ("linear-objstm.pdf", &["--linearize", "--object-streams=generate"][..]),
    ] {
        let original = f.qpdf(args, name);
        let xref_stream = original.windows(10).any(|w| w == b"/Type /XRe" || w == b"/Type/XRef");
        assert_eq!(
            xref_stream,
            name.contains("objstm"),
            "{name}: qpdf wrote the expected kind"
        );
        let signed = s.sign_pdf(&original, None);
        let tail = String::from_utf8_lossy(&signed[original.len()..]).into_owned();
        assert_eq!(
            tail.contains("/Type /XRef"),
            xref_stream,
            "{name}: the update uses the same kind:\n{tail}"
        );
        assert_eq!(!tail.contains("\nxref\n"), xref_stream, "{name}");
        let out = f.write(&format!("signed-{name}"), &signed);
        assert_pdfsig_valid(&out, 1);
        assert_pyhanko_valid(&f, &out, &[&s.root], 1);
        run_ok("qpdf", &["--check", path(&out)]);

        // And a second signature on top of it.
        let appearance = Appearance {
            page: 3,
            rect: [300.0, 50.0, 550.0, 120.0],
            name: "Ion Țurcanu".into(),
            date: "25.11.2026".into(),
        };
        let twice = f.write(&format!("twice-{name}"), &s.sign_pdf(&signed, Some(&appearance)));
        assert_pdfsig_valid(&twice, 2);
        assert_pyhanko_valid(&f, &twice, &[&s.root], 2);
    }
}

#[test]
fn files_signed_or_certified_by_pyhanko_and_a_10_mb_file_take_our_signature() {
    let s = Signer::new("p256");
    let f = Fixtures::make(&["pyhanko", "big"]);
    let theirs = f.path("pyhanko-cert.pem");

    // A PDF pyHanko signed: both signatures valid.
    let signed = f.read("signed-by-pyhanko.pdf");
    assert_eq!(pades::inspect(&signed, &Limits::default()).unwrap().signatures, 1);
    let both = s.sign_pdf(&signed, None);
    let both_path = f.write("pyhanko-then-parafa.pdf", &both);
    assert_pdfsig_valid(&both_path, 2);
    let report = assert_pyhanko_valid(&f, &both_path, &[&theirs, &s.root], 2);
    assert_eq!(report["signatures"][1]["field"], "Signature1");

    // Certified with DocMDP P=2: a signature is allowed, and pyHanko finds it within the permissions.
    let p2 = f.read("certified-p2.pdf");
    assert_eq!(pades::inspect(&p2, &Limits::default()).unwrap().certification, Some(2));
    let countersigned = f.write("certified-p2-signed.pdf", &s.sign_pdf(&p2, None));
    assert_pdfsig_valid(&countersigned, 2);
    let report = assert_pyhanko_valid(&f, &countersigned, &[&theirs, &s.root], 2);
    assert_eq!(report["signatures"][0]["docmdp_ok"], true, "{report:#}");

    // Certified with P=1: no signature; the DSS and a document timestamp are still allowed.
    let p1 = f.read("certified-p1.pdf");
    let kind = Kind::Signature { signing_time: 0 };
    assert_eq!(
        pades::prepare(&p1, kind, &Placement::Invisible, PLACEHOLDER, &Limits::default()).unwrap_err(),
        PdfError::CertifiedNoChanges
    );
    let extended = pades::add_dss(&p1, &s.chain, &[], &[], &Limits::default()).expect("DSS on P=1");
    let tsa = Tsa::new(f.dir.path());
    let stamped = f.write("certified-p1-lta.pdf", &tsa.timestamp_pdf(&extended));
    let report = assert_pyhanko_valid(&f, &stamped, &[&theirs, &tsa.cert], 2);
    assert_eq!(report["signatures"][0]["docmdp_ok"], true, "{report:#}");

    // About 10 MB: the byte range covers it all (how fast is the documents bench's business, not a test's).
    let big = f.read("big.pdf");
    assert!(big.len() > 10_000_000, "{}", big.len());
    let prepared =
        pades::prepare(&big, kind, &Placement::Invisible, PLACEHOLDER, &Limits::default()).expect("prepared");
    let _ = prepared.digest(HashAlg::Sha256);
    let [zero, a, b, c] = prepared.byte_range();
    assert_eq!((zero, b + c), (0, prepared.file().len() as u64));
    assert_eq!(b - a, 2 + 2 * PLACEHOLDER as u64);
    let text = String::from_utf8_lossy(&prepared.file()[big.len()..]).into_owned();
    assert!(
        text.contains(&format!("/ByteRange [0 {a:<10} {b:<10} {c:<10}]")),
        "fixed-width fields"
    );
    let big_signed = f.write("big-signed.pdf", &s.sign_pdf(&big, None));
    assert_pdfsig_valid(&big_signed, 1);
    assert_pyhanko_valid(&f, &big_signed, &[&s.root], 1);
}

/// A PDF whose objects 1..=n are `objects` (1 is the catalog), with a correct cross-reference table and `trailer`
/// extra entries.
fn pdf_of(objects: &[&str], trailer_extra: &str) -> Vec<u8> {
    common::hostile::pdf_with_trailer(objects, trailer_extra)
}

/// Whether an error is the one a case expects.
type Expected = fn(&PdfError) -> bool;

#[test]
fn hostile_and_unsignable_pdfs_are_refused_with_the_right_error() {
    let f = Fixtures::make(&["pyhanko"]);
    let plain = f.read("plain.pdf");
    let catalog = "<< /Type /Catalog /Pages 2 0 R >>";
    let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>";

    let mut cases: Vec<(&str, Vec<u8>, Expected)> = vec![
        (
            "encrypted with a user password",
            f.qpdf(&["--encrypt", "user", "owner", "256", "--"], "enc-user.pdf"),
            |e| *e == PdfError::Encrypted,
        ),
        (
            "restricted with an owner password only",
            f.qpdf(
                &["--encrypt", "", "owner", "256", "--modify=none", "--"],
                "enc-owner.pdf",
            ),
            |e| *e == PdfError::Encrypted,
        ),
        (
            "an XFA form",
            pdf_of(
                &[
                    "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 4 0 R >> /NeedsRendering true >>",
                    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                    page,
                    "<< /Length 0 >>\nstream\n\nendstream",
                ],
                "",
            ),
            |e| *e == PdfError::Xfa,
        ),
        ("truncated", plain[..plain.len() * 2 / 3].to_vec(), |e| {
            matches!(e, PdfError::Unreadable(_))
        }),
        (
            "random bytes",
            (0..50_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            |e| matches!(e, PdfError::Unreadable(_)),
        ),
        (
            "random bytes after a PDF header",
            [
                b"%PDF-1.7\n".to_vec(),
                (0..50_000u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect(),
            ]
            .concat(),
            |e| matches!(e, PdfError::Unreadable(_)),
        ),
        (
            "a cyclic page tree",
            pdf_of(
                &[
                    catalog,
                    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                    "<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
                ],
                "",
            ),
            |e| matches!(e, PdfError::Unreadable(m) if m.to_string().contains("refers back")),
        ),
        (
            "a huge /Count",
            pdf_of(
                &[catalog, "<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>", page],
                "",
            ),
            |e| matches!(e, PdfError::Unreadable(m) if m.to_string().contains("2147483647")),
        ),
        (
            "deep nesting",
            pdf_of(
                &[
                    &format!("<< /Type /Catalog /Pages 2 0 R /Deep {} >>", "[".repeat(500_000)),
                    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                    page,
                ],
                "",
            ),
            |e| matches!(e, PdfError::Unreadable(m) if m.to_string().contains("nested")),
        ),
        (
            "a wrong cross-reference table",
            {
                let mut shifted = plain.clone();
                shifted.splice(9..9, std::iter::repeat_n(b' ', 37));
                shifted
            },
            |e| matches!(e, PdfError::Unreadable(_)),
        ),
        (
            "cross-reference sections in a loop",
            {
                let mut p = pdf_of(&[catalog, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page], "");
                let xref = p.windows(6).position(|w| w == b"\nxref\n").unwrap() + 1;
                let at = p.windows(8).position(|w| w == b"/Root 1 ").unwrap();
                p.splice(at..at, format!("/Prev {xref} ").bytes());
                p
            },
            |e| matches!(e, PdfError::Unreadable(m) if m.to_string().contains("loop")),
        ),
        (
            "a huge object count",
            pdf_of(
                &[catalog, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page],
                "/Size 2000000000",
            ),
            |e| matches!(e, PdfError::TooManyObjects { .. }),
        ),
        (
            "a 600 000-entry cross-reference table",
            {
                let mut p = b"%PDF-1.7\nxref\n0 600000\n".to_vec();
                p.extend(std::iter::repeat_n(&b"0000000000 65535 f\r\n"[..], 600_000).flatten());
                p.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\nstartxref\n9\n%%EOF\n");
                p
            },
            |e| matches!(e, PdfError::TooManyObjects { .. }),
        ),
        ("certified with DocMDP P=1", f.read("certified-p1.pdf"), |e| {
            *e == PdfError::CertifiedNoChanges
        }),
    ];
    cases.push(("not a PDF", b"PK\x03\x04 a zip file".to_vec(), |e| {
        matches!(e, PdfError::Unreadable(_))
    }));

    for (what, pdf, expected) in &cases {
        // The work each refusal may cost is bounded by the reader's budgets (their unit tests count it), not timed
        // here: a timed assertion fails on a loaded machine and proves nothing on a fast one.
        let result = pades::prepare(
            pdf,
            Kind::Signature { signing_time: 0 },
            &Placement::Invisible,
            PLACEHOLDER,
            &Limits::default(),
        );
        let err = result.expect_err(what);
        assert!(expected(&err), "{what}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        if *what != "certified with DocMDP P=1" {
            let err = pades::inspect(pdf, &Limits::default()).expect_err(what);
            assert!(expected(&err), "{what}: inspect says {err:?}");
        }
    }
    let too_small = Limits {
        max_bytes: plain.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        pades::inspect(&plain, &too_small),
        Err(PdfError::TooLarge { .. })
    ));
}

#[test]
fn a_cms_larger_than_the_placeholder_is_refused() {
    let f = Fixtures::make(&[]);
    let plain = f.read("plain.pdf");
    let prepared = pades::prepare(
        &plain,
        Kind::Signature { signing_time: 0 },
        &Placement::Invisible,
        1000,
        &Limits::default(),
    )
    .expect("prepared");
    assert_eq!(prepared.placeholder_bytes(), 1000);
    assert_eq!(
        prepared.clone().finish(&vec![0x30; 1001]).unwrap_err(),
        PdfError::ContentsTooSmall {
            needed: 1001,
            available: 1000
        }
    );
    let fits = prepared.finish(&vec![0x30; 1000]).expect("exactly the placeholder");
    assert!(fits.starts_with(&plain));
}
