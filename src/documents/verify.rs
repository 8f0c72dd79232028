//! Verification of signed PDFs (PAdES, and PKCS#7 detached signatures of other tools) and `.p7s` files (CAdES,
//! enveloping or detached), for anyone: the public page `/verify` and `POST /api/v1/verify`.
//!
//! Per signature it reports who signed (the signer certificate), when (the signature timestamp's genTime, else the
//! signing-time attribute), whether the signature is **intact** (the message-digest attribute matches the content,
//! or the PDF's byte ranges, and the signature over the DER signed attributes verifies with the signer
//! certificate's key: RSA PKCS#1 v1.5 or PSS with SHA-256/384/512, ECDSA P-256/P-384), whether it is **trusted**
//! (the signer certificate chains to Parafa's issuing and root CA, each certificate's signature verified and each
//! valid at the signing time), the certificate's status in Parafa's own certificate table (good, suspended,
//! revoked), the signature timestamp (its messageImprint against the signature value, its own signature and
//! chain), and for PDFs how much of the file the signature covers.
//!
//! Only public keys are used, all in process memory. Hostile input is bounded by [`Limits`], from the settings:
//! the PDF reader is [`pdf::signature_fields`] with its work budget, CMS decoding is the `der` crate's (no
//! recursion into the content), a SignedData with more signers, certificates or attributes than allowed is refused,
//! the content of a `.p7s` is hashed once per digest algorithm whatever the number of signers, and the bytes hashed
//! for a PDF are capped.

use cms::cert::CertificateChoices;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use serde::Serialize;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attributes;
use x509_cert::Certificate;

use super::Services;
use crate::clock::Clock;
use crate::db::credentials::CertificateStatus;
use crate::hsm::HashAlg;
use crate::i18n::Text;
use crate::pdf;
use crate::text;

/// Characters of an enveloped text shown as a preview.
const MAX_PREVIEW_CHARS: usize = 100_000;
/// id-ct-TSTInfo (RFC 3161).
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// What verifying one file may cost; [`Limits::default`] gives the defaults of the `parsers` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The PDF reader's limits.
    pub pdf: pdf::Limits,
    /// SignerInfos a `.p7s` may hold (more: refused), and signatures of one PDF checked (more: reported as not
    /// checked).
    pub signers: usize,
    /// Certificates one SignedData may carry.
    pub certificates: usize,
    /// Signed, and unsigned, attributes one SignerInfo may carry.
    pub attributes: usize,
}

impl Limits {
    /// The limits in force: the PDF reader's and the CMS budgets of the settings. A PDF may be as large as any
    /// PDF Parafa signs, with its signatures.
    pub fn of(settings: &crate::config::Settings) -> Limits {
        Limits {
            pdf: pdf::Limits {
                max_bytes: settings.documents.max_signed_bytes(),
                ..pdf::Limits::of(settings)
            },
            signers: settings.parsers.cms_max_signers,
            certificates: settings.parsers.cms_max_certificates,
            attributes: settings.parsers.cms_max_attributes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pdf: pdf::Limits {
                max_bytes: pdf::DEFAULT_MAX_BYTES + crate::config::SIGNATURE_HEADROOM,
                ..pdf::Limits::default()
            },
            signers: 32,
            certificates: 64,
            attributes: 64,
        }
    }
}

/// Why a file cannot be verified. The messages are meant for the person who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Invalid(Text),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("verification failed: {0}")]
    Internal(String),
}

impl VerifyError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            VerifyError::Invalid(t) => t.clone(),
            VerifyError::Db(_) => text!("error.http.database_error"),
            VerifyError::Internal(_) => text!("error.http.internal_error"),
        }
    }
}

/// The message for a file that is neither a PDF nor a CMS signature.
pub const NOT_SIGNED: &str = "error.verify.file_neither_signed_pdf_nor";
/// The message for a detached `.p7s` uploaded without its file.
pub const DETACHED_NEEDS_CONTENT: &str = "error.verify.p7s_detached_does_not_contain";
/// The message for a PDF without signatures.
pub const PDF_UNSIGNED: &str = "error.verify.pdf_has_no_signatures";

/// What was verified.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `pdf` or `p7s`.
    pub kind: &'static str,
    /// The uploaded file's length in bytes.
    pub file_length: usize,
    /// For a `.p7s`: whether the content travels beside it (detached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detached: Option<bool>,
    pub signatures: Vec<SignatureReport>,
    /// For an enveloping `.p7s`: the signed content it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl Report {
    /// The report with each signature's problems in `lang` (the page's language, or English for clients that ask
    /// for none).
    pub fn say_in(mut self, lang: crate::i18n::Lang) -> Report {
        for sig in &mut self.signatures {
            sig.problems = sig.findings.iter().map(|t| t.render(lang)).collect();
        }
        self
    }
}

/// The content of an enveloping `.p7s`.
#[derive(Debug, Clone, Serialize)]
pub struct Content {
    pub length: usize,
    pub sha256: String,
    /// The bytes, base64 (for the page's download).
    pub base64: String,
    /// The text, when the content is UTF-8 text (at most [`MAX_PREVIEW_CHARS`] characters).
    pub text: Option<String>,
    /// Whether `text` was cut.
    pub text_truncated: bool,
}

/// A certificate, as a reader wants to see it.
#[derive(Debug, Clone, Serialize)]
pub struct Signer {
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    pub subject: String,
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// The signature timestamp (or, for a PDF document timestamp, the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TimestampReport {
    /// genTime, Unix seconds.
    pub time: i64,
    /// The TSTInfo's messageImprint is the hash of the signature value (of the byte ranges, for a document
    /// timestamp).
    pub imprint_matches: bool,
    /// The token's own signature verifies with the TSA certificate.
    pub signature_verifies: bool,
    /// Both of the above.
    pub intact: bool,
    /// The TSA certificate chains to Parafa's CA.
    pub trusted: bool,
    pub authority: Option<Signer>,
    /// The TSA's certificate, for the trusted list's judgement.
    #[serde(skip)]
    pub authority_cert: Option<Certificate>,
}

/// One signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    /// `signature` or `document_timestamp`.
    pub kind: &'static str,
    /// The PDF signature field's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub signer: Option<Signer>,
    /// Unix seconds: the timestamp's genTime, else the signing-time attribute, else none.
    pub signing_time: Option<i64>,
    /// `timestamp` or `signing_time`.
    pub signing_time_source: Option<&'static str>,
    /// The digest matches and the signature verifies.
    pub intact: bool,
    pub digest_matches: bool,
    pub signature_verifies: bool,
    /// E.g. `ECDSA P-256 SHA-256`.
    pub algorithm: Option<String>,
    /// The signer certificate chains to Parafa's issuing and root CA, valid at the signing time.
    pub trusted: bool,
    /// Whether Parafa issued the signer certificate (then `status` comes from its certificate table).
    pub issued_by_parafa: bool,
    /// `good`, `suspended`, `revoked`, or `unknown` (not a certificate Parafa issued).
    pub status: String,
    pub revoked: bool,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub timestamp: Option<TimestampReport>,
    /// PDF: `whole file` or `revision N of M`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_file: Option<bool>,
    /// PDF: the revision the signature ends (1-based) and how many the file has (counted by `%%EOF` markers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<usize>,
    /// PDF: bytes were added after what the signature covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later_changes: Option<bool>,
    /// PDF: how far the later revisions go: `none`, `validation_data` (DSS, document timestamps), `signatures`,
    /// `form_filling`, `annotations` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_after_signing: Option<pdf::Change>,
    /// PDF: the later revisions go beyond what the document allows after a signature (its certification's DocMDP
    /// permission; annotations, form filling and signatures without one): what the signer saw may not be what the
    /// file shows. Such a signature is not valid, however intact its bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_after_signing: Option<bool>,
    /// PDF: where the signed bytes end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_length: Option<u64>,
    /// `.p7s` (CAdES B-LTA): the archive-time-stamp-v3 tokens, oldest first; each `intact` when its imprint is
    /// over the signature, its validation data and its hash index as they stand and everything that index lists is
    /// still in the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub archive_timestamps: Vec<TimestampReport>,
    /// What went wrong, by key; rendered into `problems` in the reader's language by [`Report::say_in`].
    #[serde(skip)]
    pub findings: Vec<Text>,
    /// What went wrong, in words.
    pub problems: Vec<String>,
    /// Whether it is a qualified electronic signature (and its timestamp a qualified one), and why not, as the
    /// trusted list's services say.
    pub qualification: Option<crate::trust::qualify::Assessment>,
    /// The signer's certificate, for that judgement.
    #[serde(skip)]
    pub signer_cert: Option<Certificate>,
}

impl SignatureReport {
    fn empty(kind: &'static str) -> SignatureReport {
        SignatureReport {
            kind,
            field: None,
            signer: None,
            signing_time: None,
            signing_time_source: None,
            intact: false,
            digest_matches: false,
            signature_verifies: false,
            algorithm: None,
            trusted: false,
            issued_by_parafa: false,
            status: "unknown".into(),
            revoked: false,
            revoked_at: None,
            revocation_reason: None,
            timestamp: None,
            coverage: None,
            whole_file: None,
            revision: None,
            revisions: None,
            later_changes: None,
            changes_after_signing: None,
            modified_after_signing: None,
            signed_length: None,
            archive_timestamps: Vec::new(),
            findings: Vec::new(),
            problems: Vec::new(),
            qualification: None,
            signer_cert: None,
        }
    }
}

/// The certificates trust is anchored in: Parafa's root and issuing CA, and its TSA (for tokens that leave their
/// certificate out).
#[derive(Debug, Clone)]
pub struct Anchors {
    pub root: Certificate,
    pub issuing: Certificate,
    pub tsa: Option<Certificate>,
}

/// Verifies `file` (a signed PDF or a `.p7s`; `content`: the signed file of a detached `.p7s`) and looks the
/// signer certificates up in Parafa's certificate table; the problems are said in `lang`.
pub async fn verify(
    state: &Services,
    file: Vec<u8>,
    content: Option<Vec<u8>>,
    lang: crate::i18n::Lang,
) -> Result<Report, VerifyError> {
    let anchors = Anchors {
        root: state.ca.root.cert.clone(),
        issuing: state.ca.issuing.cert.clone(),
        tsa: Some(state.tsa.cert().clone()),
    };
    let limits = Limits::of(&state.settings);
    let now = state.clock.now();
    let mut report = tokio::task::spawn_blocking(move || analyse(&file, content.as_deref(), &anchors, &limits, now))
        .await
        .map_err(|e| VerifyError::Internal(e.to_string()))??;
    let services = state
        .trust
        .services(&state.db, &state.settings, now)
        .await
        .map_err(|e| VerifyError::Internal(e.to_string()))?;
    for sig in &mut report.signatures {
        qualify(sig, &services, now);
        let Some(signer) = &sig.signer else { continue };
        if !sig.issued_by_parafa {
            continue;
        }
        let Some(row) = crate::db::credentials::certificate(&state.db, &signer.serial).await? else {
            continue;
        };
        if row.issuer_role != "issuing" {
            continue;
        }
        sig.status = row.status.as_str().into();
        if row.status == CertificateStatus::Revoked {
            sig.revoked = true;
            if let Some(r) = crate::db::ca::revocation_of(&state.db, &signer.serial).await? {
                sig.revoked_at = Some(r.revoked_at);
                sig.revocation_reason = r.reason;
            }
        }
    }
    Ok(report.say_in(lang))
}

/// The trusted list's judgement of one signature (see [`crate::trust::qualify`]), made before the certificate
/// table's revocation is read: a revoked certificate is caught by the status check that follows.
fn qualify(sig: &mut SignatureReport, services: &[crate::trust::list::Service], now: i64) {
    let timestamp = sig.timestamp.as_ref().and_then(|ts| {
        ts.authority_cert
            .as_ref()
            .map(|c| (c, ts.time, ts.intact && ts.trusted))
    });
    let document_timestamp = sig.kind == "document_timestamp";
    let subject = crate::trust::qualify::Subject {
        signer: if document_timestamp {
            None
        } else {
            sig.signer_cert.as_ref()
        },
        valid: sig.intact && sig.trusted && !sig.revoked && sig.modified_after_signing != Some(true),
        at: sig.signing_time.unwrap_or(now),
        timestamp,
    };
    sig.qualification = Some(crate::trust::qualify::assess(services, &subject));
}

/// The synchronous part of [`verify`]: everything but the certificate table. `now` (Unix seconds) is the time
/// certificates are checked at when a signature carries no time.
pub fn analyse(
    file: &[u8],
    content: Option<&[u8]>,
    anchors: &Anchors,
    limits: &Limits,
    now: i64,
) -> Result<Report, VerifyError> {
    if file.is_empty() {
        return Err(VerifyError::Invalid(text!(NOT_SIGNED)));
    }
    // A PDF, or what a viewer would take for one (its header within the first 1024 bytes), which the reader then
    // refuses with its reason; a `.p7s` is DER (a SEQUENCE) or PEM.
    if file.starts_with(b"%PDF-")
        || (!file.starts_with(&[0x30]) && !file.starts_with(b"-----BEGIN") && super::jobs::is_pdf(file))
    {
        return analyse_pdf(file, anchors, limits, now);
    }
    let der = if file.starts_with(b"-----BEGIN") {
        der::pem::decode_vec(file)
            .map(|(_, d)| d)
            .map_err(|e| not_a_signature(&e.to_string()))?
    } else {
        file.to_vec()
    };
    analyse_p7s(&der, file.len(), content, anchors, limits, now)
}

fn analyse_p7s(
    der: &[u8],
    file_length: usize,
    content: Option<&[u8]>,
    anchors: &Anchors,
    limits: &Limits,
    now: i64,
) -> Result<Report, VerifyError> {
    let signed_data = signed_data(der).map_err(|e| not_a_signature(&e))?;
    within_limits(&signed_data, limits).map_err(VerifyError::Invalid)?;
    let enveloped = match &signed_data.encap_content_info.econtent {
        Some(any) => Some(octets(any).ok_or_else(|| not_a_signature("its content is not an OCTET STRING"))?),
        None => None,
    };
    let detached = enveloped.is_none();
    let data: Vec<u8> = match (enveloped, content) {
        (Some(e), _) => e,
        (None, Some(c)) => c.to_vec(),
        (None, None) => return Err(VerifyError::Invalid(text!(DETACHED_NEEDS_CONTENT))),
    };
    if signed_data.signer_infos.0.is_empty() {
        return Err(VerifyError::Invalid(text!(
            "error.verify.file_neither_signed_pdf_nor_2",
            detail = "it has no signer"
        )));
    }
    let raw = raw_signed_attrs(der);
    let certs = certificates(&signed_data);
    // One hash of the content per digest algorithm, whatever the number of signers.
    let parts: [&[u8]; 1] = [&data];
    let hashed = Hashed::new(&parts);
    let mut signatures = Vec::new();
    for (i, si) in signed_data.signer_infos.0.iter().enumerate() {
        let mut report = SignatureReport::empty("signature");
        let raw = raw.get(i).and_then(Option::as_deref);
        check_signature(&mut report, &certs, si, raw, &hashed, anchors, limits, now);
        if i == 0 {
            check_archive_timestamps(&mut report, der, si, anchors, limits);
        }
        signatures.push(report);
    }
    let content = (!detached).then(|| describe_content(&data));
    Ok(Report {
        kind: "p7s",
        file_length,
        detached: Some(detached),
        signatures,
        content,
    })
}

fn describe_content(data: &[u8]) -> Content {
    use base64::Engine;
    let text = std::str::from_utf8(data)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
    let truncated = text.is_some_and(|t| t.chars().count() > MAX_PREVIEW_CHARS);
    Content {
        length: data.len(),
        sha256: hex::encode(sha2::Sha256::digest(data)),
        base64: base64::engine::general_purpose::STANDARD.encode(data),
        text: text.map(|t| t.chars().take(MAX_PREVIEW_CHARS).collect()),
        text_truncated: truncated,
    }
}

fn analyse_pdf(file: &[u8], anchors: &Anchors, limits: &Limits, now: i64) -> Result<Report, VerifyError> {
    let fields = pdf::signature_fields(file, &limits.pdf).map_err(|e| match e {
        pdf::PdfError::TooLarge { size, max } => {
            VerifyError::Invalid(text!("error.verify.pdf_bytes_files_up_bytes", size, max))
        }
        pdf::PdfError::TooManyObjects { count, max } => {
            VerifyError::Invalid(text!("error.verify.pdf_declares_objects_files_with", count, max))
        }
        pdf::PdfError::TooComplex(reason) => {
            VerifyError::Invalid(text!("error.verify.pdf_too_complex_read_here", reason => reason))
        }
        pdf::PdfError::Encrypted => {
            VerifyError::Invalid(crate::text!("error.verify.pdf_encrypted_or_password_protected"))
        }
        other => VerifyError::Invalid(text!("error.verify.file_cannot_read_as_pdf", reason => match other {
            pdf::PdfError::Unreadable(why) => why,
            other => other.text(),
        })),
    })?;
    if fields.is_empty() {
        return Err(VerifyError::Invalid(text!(PDF_UNSIGNED)));
    }
    let eofs: Vec<usize> = eof_markers(file);
    // Hashing is bounded: a hostile file could list many signatures over the whole file.
    let mut budget = file.len().saturating_mul(8).saturating_add(64 << 20);
    let mut signatures = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let kind = if field.document_timestamp {
            "document_timestamp"
        } else {
            "signature"
        };
        let mut report = SignatureReport::empty(kind);
        report.field = Some(field.name.clone());
        if i >= limits.signers {
            report
                .findings
                .push(text!("verify.problem.only_first_checked", most = limits.signers));
            signatures.push(report);
            continue;
        }
        let Some((a, b)) = byte_range(&field.byte_range, file.len()) else {
            report.findings.push(text!("verify.problem.byte_range_malformed"));
            signatures.push(report);
            continue;
        };
        let end = b.end;
        report.signed_length = Some(end as u64);
        report.whole_file = Some(end == file.len());
        report.later_changes = Some(end < file.len());
        let total = eofs.len().max(1);
        let n = if end == file.len() {
            total
        } else {
            eofs.iter().filter(|e| **e < end).count().clamp(1, total)
        };
        report.revision = Some(n);
        report.revisions = Some(total);
        report.coverage = Some(if end == file.len() {
            "whole file".into()
        } else {
            format!("revision {n} of {total}")
        });
        match pdf::changes_after(file, end, &limits.pdf) {
            Ok(changes) => {
                report.changes_after_signing = Some(changes.level);
                report.modified_after_signing = Some(changes.modified());
                if changes.modified() {
                    let examples = Text::list(": ", "; ", changes.examples);
                    report.findings.push(match changes.certification {
                        Some(permission) => text!(
                            "verify.problem.changed_beyond_certification",
                            permission,
                            examples => examples
                        ),
                        None => text!("verify.problem.changed_beyond_allowed", examples => examples),
                    });
                }
            }
            Err(e) => {
                // What cannot be shown to be allowed is not.
                report.modified_after_signing = Some(true);
                report
                    .findings
                    .push(text!("verify.problem.changes_unreadable", reason => e.text()));
            }
        }
        let to_hash = a.len() + b.len();
        if to_hash > budget {
            report.findings.push(text!("verify.problem.too_much_hashing"));
            signatures.push(report);
            continue;
        }
        budget -= to_hash;
        let parts: [&[u8]; 2] = [&file[a], &file[b]];
        let content = Hashed::new(&parts);
        let cms = der_prefix(&field.contents);
        if field.document_timestamp {
            match check_token(cms, &content, anchors, limits) {
                Ok((ts, signer)) => {
                    report.signer = signer;
                    report.signing_time = Some(ts.time);
                    report.signing_time_source = Some("timestamp");
                    report.digest_matches = ts.imprint_matches;
                    report.signature_verifies = ts.signature_verifies;
                    report.intact = ts.intact;
                    report.trusted = ts.trusted;
                    report.timestamp = Some(ts);
                }
                Err(e) => report.findings.push(e),
            }
        } else {
            match signed_data(cms) {
                Ok(sd) => match within_limits(&sd, limits) {
                    Err(e) => report.findings.push(text!("verify.problem.not_checked", reason => e)),
                    Ok(()) => {
                        let raw = raw_signed_attrs(cms);
                        let certs = certificates(&sd);
                        match sd.signer_infos.0.iter().next() {
                            Some(si) => {
                                let raw = raw.first().and_then(Option::as_deref);
                                check_signature(&mut report, &certs, si, raw, &content, anchors, limits, now)
                            }
                            None => report.findings.push(text!("verify.problem.no_signer")),
                        }
                    }
                },
                Err(e) => report.findings.push(text!(
                    "verify.problem.not_signed_data",
                    detail = e,
                    sub_filter = field.sub_filter
                )),
            }
        }
        signatures.push(report);
    }
    Ok(Report {
        kind: "pdf",
        file_length: file.len(),
        detached: None,
        signatures,
        content: None,
    })
}

/// `[0 a b c]` checked against the file: the two signed ranges.
fn byte_range(br: &[i64], len: usize) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let [s1, l1, s2, l2] = *br else { return None };
    let v = |x: i64| usize::try_from(x).ok();
    let (s1, l1, s2, l2) = (v(s1)?, v(l1)?, v(s2)?, v(l2)?);
    let e1 = s1.checked_add(l1)?;
    let e2 = s2.checked_add(l2)?;
    (s1 == 0 && e1 <= s2 && e2 <= len).then_some((s1..e1, s2..e2))
}

/// Where each `%%EOF` marker starts: the ends of the revisions.
fn eof_markers(file: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = file
        .get(at..)
        .and_then(|rest| rest.windows(5).position(|w| w == b"%%EOF"))
    {
        out.push(at + p);
        at += p + 5;
    }
    out
}

/// The DER element at the start of `bytes` (a PDF's `/Contents` is zero-padded); all of `bytes` if its length
/// cannot be read.
fn der_prefix(bytes: &[u8]) -> &[u8] {
    match tlv(bytes) {
        Some((_, _, total)) => &bytes[..total],
        None => bytes,
    }
}

/// A definite-length DER element at the start of `b`: (tag, header length, total length).
fn tlv(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *b.get(1)? as usize;
    let (header, len) = if first < 0x80 {
        (2, first)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = b.get(2..2 + n)?.iter().fold(0usize, |acc, x| acc << 8 | *x as usize);
        (2 + n, len)
    };
    let total = header.checked_add(len)?;
    (total <= b.len()).then_some((tag, header, total))
}

/// The children of the constructed element `b` (whole, header included).
fn children(b: &[u8]) -> Option<Vec<&[u8]>> {
    let (_, header, total) = tlv(b)?;
    let mut rest = &b[header..total];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (_, _, t) = tlv(rest)?;
        out.push(&rest[..t]);
        rest = &rest[t..];
        if out.len() > 10_000 {
            return None;
        }
    }
    Some(out)
}

/// The signed attributes of each SignerInfo exactly as encoded (with the SET OF tag the signature covers), in the
/// SignerInfos' order: the decoder sorts SET OFs, so re-encoding would not give the signed bytes back for a signer
/// that did not sort them.
fn raw_signed_attrs(content_info: &[u8]) -> Vec<Option<Vec<u8>>> {
    let walk = || -> Option<Vec<Option<Vec<u8>>>> {
        let ci = children(content_info)?;
        let sd = children(ci.get(1)?)?; // [0] EXPLICIT
        let sd = children(sd.first()?)?;
        let infos = children(sd.last()?)?;
        let mut out = Vec::new();
        for si in infos {
            let fields = children(si)?;
            out.push(fields.get(3).filter(|f| f.first() == Some(&0xa0)).map(|attrs| {
                let mut a = attrs.to_vec();
                a[0] = 0x31;
                a
            }));
        }
        Some(out)
    };
    walk().unwrap_or_default()
}

/// Whether a SignedData stays within the CMS budgets; if not, what it has too many of (a phrase to follow "The
/// .p7s" or "the signature").
fn within_limits(sd: &SignedData, limits: &Limits) -> Result<(), Text> {
    let signers = sd.signer_infos.0.len();
    if signers > limits.signers {
        return Err(text!(
            "error.verify.p7s_has_signatures_at_most",
            signers,
            most = limits.signers
        ));
    }
    let certs = sd.certificates.as_ref().map_or(0, |c| c.0.len());
    if certs > limits.certificates {
        return Err(text!(
            "error.verify.p7s_carries_certificates_at_most",
            certs,
            most = limits.certificates
        ));
    }
    let too_many = |a: &Option<Attributes>| a.as_ref().is_some_and(|a| a.len() > limits.attributes);
    if sd
        .signer_infos
        .0
        .iter()
        .any(|si| too_many(&si.signed_attrs) || too_many(&si.unsigned_attrs))
    {
        return Err(text!("error.verify.p7s_has_signer_with_more", most = limits.attributes));
    }
    Ok(())
}

/// The signed content, hashed at most once per digest algorithm however many signers ask for it.
struct Hashed<'p> {
    parts: &'p [&'p [u8]],
    done: std::cell::RefCell<Vec<(HashAlg, Vec<u8>)>>,
}

impl<'p> Hashed<'p> {
    fn new(parts: &'p [&'p [u8]]) -> Self {
        Hashed {
            parts,
            done: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn digest(&self, hash: HashAlg) -> Vec<u8> {
        if let Some((_, d)) = self.done.borrow().iter().find(|(h, _)| *h == hash) {
            return d.clone();
        }
        let d = digest_parts(hash, self.parts);
        self.done.borrow_mut().push((hash, d.clone()));
        d
    }

    /// How many times the content was hashed.
    #[cfg(test)]
    fn hashes(&self) -> usize {
        self.done.borrow().len()
    }
}

/// The refusal of a file that is neither a signed PDF nor a CMS signature. What the parser said is for the log,
/// not for the person: it names ASN.1 tags and library internals they cannot act on.
fn not_a_signature(detail: &str) -> VerifyError {
    tracing::info!(detail, "verification: not a signed PDF or a CMS signature");
    VerifyError::Invalid(text!("error.verify.file_neither_signed_pdf_nor_2"))
}

/// The SignedData of a DER ContentInfo, its `crls` left out: the `cms` crate misreads an OCSP response there (as
/// CAdES B-LT files carry them, RFC 5940), and nothing here reads them.
fn signed_data(der: &[u8]) -> Result<SignedData, String> {
    super::cms::read_signed_data(der).map_err(|e| match e {
        super::cms::CmsError::NotSignedData(oid) => format!("it holds {oid}, not a SignedData"),
        super::cms::CmsError::Parse(e) => e.to_string(),
        other => other.to_string(),
    })
}

/// The bytes of an OCTET STRING (primitive).
fn octets(any: &Any) -> Option<Vec<u8>> {
    (any.tag() == Tag::OctetString).then(|| any.value().to_vec())
}

fn digest_parts(hash: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    match hash {
        HashAlg::Sha256 => run::<sha2::Sha256>(parts),
        HashAlg::Sha384 => run::<sha2::Sha384>(parts),
        HashAlg::Sha512 => run::<sha2::Sha512>(parts),
    }
}

fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1), every field optional as DER leaves defaults out.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

enum Scheme {
    Pkcs1,
    Pss { salt_len: usize },
    Ecdsa,
}

/// Verifies `signature` with `spki` under `algorithm`; `digest` gives the message's hash with a given algorithm.
/// `digest_alg` is the CMS digestAlgorithm, for algorithm identifiers that do not name a hash. Returns the
/// algorithm's name.
fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    digest_alg: Option<HashAlg>,
    digest: &dyn Fn(HashAlg) -> Vec<u8>,
    signature: &[u8],
) -> Result<String, Text> {
    let oid = algorithm.oid;
    let need = |h: Option<HashAlg>| h.ok_or_else(|| text!("verify.fault.digest_of_algorithm_unsupported", oid));
    let (scheme, hash) = if oid == ID_RSA_ENCRYPTION {
        (Scheme::Pkcs1, need(digest_alg)?)
    } else if oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
        (Scheme::Pkcs1, HashAlg::Sha256)
    } else if oid == rfc5912::SHA_384_WITH_RSA_ENCRYPTION {
        (Scheme::Pkcs1, HashAlg::Sha384)
    } else if oid == rfc5912::SHA_512_WITH_RSA_ENCRYPTION {
        (Scheme::Pkcs1, HashAlg::Sha512)
    } else if oid == rfc5912::ID_RSASSA_PSS {
        let params: PssParams = algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| text!("verify.fault.pss_sha1"))?
            .decode_as()
            .map_err(|e| text!("verify.fault.pss_parameters", detail = e))?;
        let hash = params
            .hash
            .as_ref()
            .and_then(|h| HashAlg::from_oid(&h.oid))
            .ok_or_else(|| text!("verify.fault.pss_sha1"))?;
        let mgf_hash = params
            .mask_gen
            .as_ref()
            .and_then(|m| m.parameters.as_ref())
            .and_then(|p| p.decode_as::<AlgorithmIdentifierOwned>().ok())
            .and_then(|h| HashAlg::from_oid(&h.oid));
        if mgf_hash != Some(hash) {
            return Err(text!("verify.fault.pss_mask_hash"));
        }
        (
            Scheme::Pss {
                salt_len: params.salt_len.unwrap_or(20) as usize,
            },
            hash,
        )
    } else if oid == rfc5912::ECDSA_WITH_SHA_256 {
        (Scheme::Ecdsa, HashAlg::Sha256)
    } else if oid == rfc5912::ECDSA_WITH_SHA_384 {
        (Scheme::Ecdsa, HashAlg::Sha384)
    } else if oid == rfc5912::ECDSA_WITH_SHA_512 {
        (Scheme::Ecdsa, HashAlg::Sha512)
    } else if oid == ID_EC_PUBLIC_KEY {
        (Scheme::Ecdsa, need(digest_alg)?)
    } else {
        return Err(text!("verify.fault.algorithm_unsupported", oid));
    };
    let hashed = digest(hash);
    let key_bytes = spki.subject_public_key.raw_bytes();
    match scheme {
        Scheme::Pkcs1 | Scheme::Pss { .. } => {
            if spki.algorithm.oid != ID_RSA_ENCRYPTION {
                return Err(text!("verify.fault.key_not_rsa"));
            }
            use rsa::pkcs1::DecodeRsaPublicKey;
            let key =
                rsa::RsaPublicKey::from_pkcs1_der(key_bytes).map_err(|e| text!("verify.fault.rsa_key", detail = e))?;
            let result = match (&scheme, hash) {
                (Scheme::Pkcs1, HashAlg::Sha256) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hashed, signature)
                }
                (Scheme::Pkcs1, HashAlg::Sha384) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &hashed, signature)
                }
                (Scheme::Pkcs1, HashAlg::Sha512) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), &hashed, signature)
                }
                (Scheme::Pss { salt_len }, HashAlg::Sha256) => {
                    key.verify(rsa::Pss::new_with_salt::<sha2::Sha256>(*salt_len), &hashed, signature)
                }
                (Scheme::Pss { salt_len }, HashAlg::Sha384) => {
                    key.verify(rsa::Pss::new_with_salt::<sha2::Sha384>(*salt_len), &hashed, signature)
                }
                (Scheme::Pss { salt_len }, HashAlg::Sha512) => {
                    key.verify(rsa::Pss::new_with_salt::<sha2::Sha512>(*salt_len), &hashed, signature)
                }
                (Scheme::Ecdsa, _) => return Err(text!("verify.fault.key_not_rsa")),
            };
            let name = match scheme {
                Scheme::Pkcs1 => "RSA PKCS#1 v1.5",
                _ => "RSA-PSS",
            };
            result
                .map(|_| format!("{name} {}", hash_name(hash)))
                .map_err(|_| text!("verify.fault.does_not_verify"))
        }
        Scheme::Ecdsa => {
            use signature::hazmat::PrehashVerifier;
            if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
                return Err(text!("verify.fault.key_not_ec"));
            }
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            let bad = |_| text!("verify.fault.does_not_verify");
            if curve == Some(SECP256R1) {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|e| text!("verify.fault.ec_key", detail = e))?;
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| text!("verify.fault.ecdsa_value", detail = e))?;
                key.verify_prehash(&hashed, &sig).map_err(bad)?;
                Ok(format!("ECDSA P-256 {}", hash_name(hash)))
            } else if curve == Some(SECP384R1) {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|e| text!("verify.fault.ec_key", detail = e))?;
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|e| text!("verify.fault.ecdsa_value", detail = e))?;
                key.verify_prehash(&hashed, &sig).map_err(bad)?;
                Ok(format!("ECDSA P-384 {}", hash_name(hash)))
            } else {
                Err(text!("verify.fault.curve"))
            }
        }
    }
}

/// Whether `issuer` signed `cert`.
fn cert_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), Text> {
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| text!("verify.fault.encoding", detail = e))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| text!("verify.fault.encoding", detail = "the signature is not whole bytes"))?;
    verify_signature(
        &issuer.tbs_certificate.subject_public_key_info,
        &cert.signature_algorithm,
        None,
        &|h| h.digest(&tbs),
        signature,
    )
    .map(|_| ())
}

fn valid_at(cert: &Certificate, at: i64) -> bool {
    let v = &cert.tbs_certificate.validity;
    crate::ca::unix(&v.not_before) <= at && at <= crate::ca::unix(&v.not_after)
}

/// Checks `cert` chains to the anchors at time `at`; `Ok(issued_by_issuing_ca)`, or why not.
fn chain(cert: &Certificate, anchors: &Anchors, at: i64) -> Result<bool, Text> {
    let encoding = |e: der::Error| text!("verify.problem.broken", reason => text!("verify.fault.encoding", detail = e));
    let der = cert.to_der().map_err(encoding)?;
    let root_der = anchors.root.to_der().map_err(encoding)?;
    let issuing_der = anchors.issuing.to_der().map_err(encoding)?;
    let mut path: Vec<&Certificate> = Vec::new();
    if der == root_der {
        path.push(&anchors.root);
    } else if der == issuing_der {
        path.extend([&anchors.issuing, &anchors.root]);
    } else {
        if cert.tbs_certificate.issuer != anchors.issuing.tbs_certificate.subject {
            return Err(text!("verify.problem.not_by_parafa"));
        }
        path.extend([cert, &anchors.issuing, &anchors.root]);
    }
    for pair in path.windows(2) {
        cert_signed_by(pair[0], pair[1]).map_err(|e| text!("verify.problem.chain_not_signed", reason => e))?;
    }
    cert_signed_by(&anchors.root, &anchors.root).map_err(|e| text!("verify.problem.root_broken", reason => e))?;
    if let Some(c) = path.iter().find(|c| !valid_at(c, at)) {
        return Err(text!(
            "verify.problem.not_valid_then",
            subject = c.tbs_certificate.subject
        ));
    }
    Ok(path.len() == 3)
}

fn describe(cert: &Certificate) -> Signer {
    let tbs = &cert.tbs_certificate;
    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == ID_COMMON_NAME)
        .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned());
    Signer {
        common_name,
        subject: tbs.subject.to_string(),
        serial: hex::encode(tbs.serial_number.as_bytes()),
        issuer: tbs.issuer.to_string(),
        not_before: crate::ca::unix(&tbs.validity.not_before),
        not_after: crate::ca::unix(&tbs.validity.not_after),
    }
}

fn certificates(sd: &SignedData) -> Vec<Certificate> {
    sd.certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The certificate a SignerInfo names, among `certs`.
fn find_signer<'c>(si: &SignerInfo, certs: &'c [Certificate]) -> Option<&'c Certificate> {
    match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => certs
            .iter()
            .find(|c| c.tbs_certificate.serial_number == ias.serial_number && c.tbs_certificate.issuer == ias.issuer),
        SignerIdentifier::SubjectKeyIdentifier(ski) => certs.iter().find(|c| {
            c.tbs_certificate
                .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, k)| k.0 == ski.0)
        }),
    }
}

fn attribute(attrs: &Attributes, oid: ObjectIdentifier) -> Option<&Any> {
    attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next())
}

/// The core of a SignerInfo check: the digest and the signature. `parts` are the signed content.
struct SignerCheck {
    cert: Option<Certificate>,
    digest_matches: bool,
    signature_verifies: bool,
    algorithm: Option<String>,
    signing_time: Option<i64>,
    problems: Vec<Text>,
}

/// `raw_attrs`: this SignerInfo's signed attributes as encoded, if they could be found.
fn check_signer_info(
    si: &SignerInfo,
    raw_attrs: Option<&[u8]>,
    content: &Hashed,
    certs: &[Certificate],
) -> SignerCheck {
    let mut out = SignerCheck {
        cert: find_signer(si, certs).cloned(),
        digest_matches: false,
        signature_verifies: false,
        algorithm: None,
        signing_time: None,
        problems: Vec::new(),
    };
    let Some(hash) = HashAlg::from_oid(&si.digest_alg.oid) else {
        out.problems
            .push(text!("verify.problem.digest_unsupported", oid = si.digest_alg.oid));
        return out;
    };
    let content_digest = content.digest(hash);
    let signature = si.signature.as_bytes();
    let Some(cert) = out.cert.clone() else {
        out.problems.push(text!("verify.problem.signer_cert_missing"));
        return out;
    };
    let spki = &cert.tbs_certificate.subject_public_key_info;
    match &si.signed_attrs {
        None => {
            // No signed attributes: the signature is over the content itself.
            out.digest_matches = true;
            match verify_signature(
                spki,
                &si.signature_algorithm,
                Some(hash),
                &|_| content_digest.clone(),
                signature,
            ) {
                Ok(name) => {
                    out.signature_verifies = true;
                    out.algorithm = Some(name);
                }
                Err(e) => out.problems.push(text!("verify.problem.broken", reason => e)),
            }
        }
        Some(attrs) => {
            let md = attribute(attrs, rfc5911::ID_MESSAGE_DIGEST).and_then(octets);
            out.digest_matches = md.as_deref() == Some(content_digest.as_slice());
            if !out.digest_matches {
                out.problems.push(text!("verify.problem.content_changed"));
            }
            if let Some(t) = attribute(attrs, rfc5911::ID_SIGNING_TIME)
                .and_then(|a| a.to_der().ok())
                .and_then(|d| x509_cert::time::Time::from_der(&d).ok())
            {
                out.signing_time = Some(crate::ca::unix(&t));
            }
            // The signed bytes: as encoded when they decode to these very attributes, else re-encoded.
            let mut candidates: Vec<Vec<u8>> = raw_attrs
                .filter(|r| Attributes::from_der(r).ok().as_ref() == Some(attrs))
                .map(<[u8]>::to_vec)
                .into_iter()
                .collect();
            if let Ok(d) = attrs.to_der() {
                if !candidates.contains(&d) {
                    candidates.push(d);
                }
            }
            let mut last_err = None;
            for c in &candidates {
                match verify_signature(spki, &si.signature_algorithm, Some(hash), &|h| h.digest(c), signature) {
                    Ok(name) => {
                        out.signature_verifies = true;
                        out.algorithm = Some(name);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            if !out.signature_verifies {
                out.problems.push(text!(
                    "verify.problem.broken",
                    reason => last_err.unwrap_or_else(|| text!("verify.fault.attributes_unencodable"))
                ));
            }
        }
    }
    out
}

/// Checks an RFC 3161 token over `parts`: (the report, the TSA certificate).
fn check_token(
    token: &[u8],
    content: &Hashed,
    anchors: &Anchors,
    limits: &Limits,
) -> Result<(TimestampReport, Option<Signer>), Text> {
    let sd = signed_data(token).map_err(|e| text!("verify.problem.ts_not_signed_data", detail = e))?;
    within_limits(&sd, limits).map_err(|e| text!("verify.problem.ts_not_checked", reason => e))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(text!("verify.problem.ts_no_tst_info"));
    }
    let tst_der = sd
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(octets)
        .ok_or_else(|| text!("verify.problem.ts_no_tst_info"))?;
    let tst =
        x509_tsp::TstInfo::from_der(&tst_der).map_err(|e| text!("verify.problem.ts_tst_info_damaged", detail = e))?;
    let time = tst.gen_time.to_unix_duration().as_secs() as i64;
    let imprint_matches = HashAlg::from_oid(&tst.message_imprint.hash_algorithm.oid)
        .is_some_and(|h| content.digest(h) == tst.message_imprint.hashed_message.as_bytes());
    let si = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| text!("verify.problem.ts_no_signer"))?;
    let mut certs = certificates(&sd);
    certs.extend(anchors.tsa.iter().cloned());
    let raw = raw_signed_attrs(token);
    let tst_parts: [&[u8]; 1] = [&tst_der];
    let check = check_signer_info(
        si,
        raw.first().and_then(Option::as_deref),
        &Hashed::new(&tst_parts),
        &certs,
    );
    let signature_verifies = check.digest_matches && check.signature_verifies;
    let trusted = check.cert.as_ref().is_some_and(|c| chain(c, anchors, time).is_ok());
    let authority = check.cert.as_ref().map(describe);
    Ok((
        TimestampReport {
            time,
            imprint_matches,
            signature_verifies,
            intact: imprint_matches && signature_verifies,
            trusted,
            authority: authority.clone(),
            authority_cert: check.cert.clone(),
        },
        authority,
    ))
}

/// Checks the archive-time-stamp-v3 attributes of a `.p7s`'s (first) signer: each token's imprint against what it
/// covers ([`super::cades::archive_coverage`]), its own signature and its chain.
fn check_archive_timestamps(
    report: &mut SignatureReport,
    p7s: &[u8],
    si: &SignerInfo,
    anchors: &Anchors,
    limits: &Limits,
) {
    let tokens: Vec<Vec<u8>> = si
        .unsigned_attrs
        .iter()
        .flat_map(|attrs| attrs.iter())
        .filter(|a| a.oid == super::cades::ID_AA_ETS_ARCHIVE_TIMESTAMP_V3)
        .flat_map(|a| a.values.iter())
        .filter_map(|v| v.to_der().ok())
        .collect();
    for token in tokens {
        let (input, covered_intact) = match super::cades::archive_coverage(p7s, &token) {
            Ok(found) => found,
            Err(e) => {
                report
                    .findings
                    .push(text!("verify.problem.ats_not_checked", detail = e));
                continue;
            }
        };
        let parts: [&[u8]; 1] = [&input];
        match check_token(&token, &Hashed::new(&parts), anchors, limits) {
            Ok((mut ts, _)) => {
                if !covered_intact {
                    report.findings.push(text!("verify.problem.ats_covered_changed"));
                    ts.intact = false;
                } else if !ts.intact {
                    report.findings.push(text!("verify.problem.ats_broken"));
                }
                report.archive_timestamps.push(ts);
            }
            Err(e) => report.findings.push(e),
        }
    }
}

/// Fills `report` for one SignerInfo, whose SignedData carries `certs`, over `content`.
#[allow(clippy::too_many_arguments)]
fn check_signature(
    report: &mut SignatureReport,
    certs: &[Certificate],
    si: &SignerInfo,
    raw_attrs: Option<&[u8]>,
    content: &Hashed,
    anchors: &Anchors,
    limits: &Limits,
    now: i64,
) {
    let check = check_signer_info(si, raw_attrs, content, certs);
    report.digest_matches = check.digest_matches;
    report.signature_verifies = check.signature_verifies;
    report.intact = check.digest_matches && check.signature_verifies;
    report.algorithm = check.algorithm;
    report.findings.extend(check.problems);
    if let Some(t) = check.signing_time {
        report.signing_time = Some(t);
        report.signing_time_source = Some("signing_time");
    }
    // The signature timestamp: an unsigned attribute over the signature value.
    let token = si
        .unsigned_attrs
        .as_ref()
        .and_then(|u| attribute(u, super::cms::ID_AA_SIGNATURE_TIME_STAMP_TOKEN))
        .and_then(|a| a.to_der().ok());
    if let Some(token) = token {
        let signature: [&[u8]; 1] = [si.signature.as_bytes()];
        match check_token(&token, &Hashed::new(&signature), anchors, limits) {
            Ok((ts, _)) => {
                if ts.intact {
                    report.signing_time = Some(ts.time);
                    report.signing_time_source = Some("timestamp");
                } else {
                    report.findings.push(text!("verify.problem.ts_broken"));
                }
                report.timestamp = Some(ts);
            }
            Err(e) => report.findings.push(e),
        }
    }
    if let Some(cert) = &check.cert {
        report.signer = Some(describe(cert));
        report.signer_cert = Some(cert.clone());
        match chain(cert, anchors, report.signing_time.unwrap_or(now)) {
            Ok(by_issuing) => {
                report.trusted = true;
                report.issued_by_parafa = by_issuing;
            }
            Err(e) => report.findings.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cms::content_info::ContentInfo;

    #[test]
    fn garbage_and_truncated_input_is_refused_without_panicking() {
        let anchors = test_anchors();
        let limits = Limits::default();
        for input in [
            &b""[..],
            b"hello",
            b"%PDF-1.7\n",
            b"%PDF-1.7\nstartxref\n999999999\n%%EOF",
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x03, 0x06, 0x01, 0x00][..],
            b"-----BEGIN PKCS7-----\n!!\n-----END PKCS7-----\n",
        ] {
            assert!(analyse(input, None, &anchors, &limits, 0).is_err(), "{input:?}");
        }
    }

    #[test]
    fn byte_ranges_are_checked_against_the_file() {
        assert!(byte_range(&[0, 10, 20, 5], 25).is_some());
        assert!(byte_range(&[0, 10, 20, 6], 25).is_none());
        assert!(byte_range(&[1, 10, 20, 5], 25).is_none());
        assert!(byte_range(&[0, 30, 20, 5], 25).is_none());
        assert!(byte_range(&[0, i64::MAX, 20, 5], 25).is_none());
        assert!(byte_range(&[0, 10, -1, 5], 25).is_none());
        assert!(byte_range(&[0, 10, 20], 25).is_none());
    }

    #[test]
    fn der_prefix_drops_the_padding() {
        assert_eq!(der_prefix(&[0x30, 0x01, 0x05, 0, 0, 0]), &[0x30, 0x01, 0x05]);
        assert_eq!(der_prefix(&[0x30, 0x82, 0x00]), &[0x30, 0x82, 0x00]);
    }

    // A throwaway self-signed certificate: the hostile corpus's.
    use crate::hostile::THROWAWAY_CERT as THROWAWAY;

    /// An enveloping `.p7s` of `content` with `signers` SignerInfos (signatures that do not verify: the cost of
    /// checking them is the point) and the throwaway certificate.
    pub(crate) fn many_signers(signers: usize, content: &[u8]) -> Vec<u8> {
        use crate::documents::cms as build;
        let cert = <Certificate as der::DecodePem>::from_pem(THROWAWAY)
            .unwrap()
            .to_der()
            .unwrap();
        let chain = vec![cert.clone()];
        let spec = build::SignerSpec {
            cert_der: &cert,
            chain_der: &chain,
            hash: HashAlg::Sha256,
            mechanism: crate::hsm::SignMechanism::Ecdsa,
            signing_time: Some(1_767_225_600),
            content_type: rfc5911::ID_DATA,
        };
        let one = |i: usize| {
            let der = build::sign(&spec, build::Encapsulation::Attached(content), |_| {
                Ok::<_, std::convert::Infallible>(vec![
                    0x30,
                    0x08,
                    0x02,
                    0x02,
                    (i >> 8) as u8 | 1,
                    i as u8,
                    0x02,
                    0x02,
                    1,
                    1,
                ])
            })
            .unwrap();
            signed_data(&der).unwrap()
        };
        let mut sd = one(0);
        let infos: Vec<SignerInfo> = (0..signers)
            .map(|i| one(i).signer_infos.0.iter().next().unwrap().clone())
            .collect();
        sd.signer_infos = cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(infos).unwrap());
        ContentInfo {
            content_type: rfc5911::ID_SIGNED_DATA,
            content: Any::encode_from(&sd).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_p7s_with_more_signers_than_allowed_is_refused() {
        let anchors = test_anchors();
        let limits = Limits::default();
        let p7s = many_signers(40, b"hello");
        match analyse(&p7s, None, &anchors, &limits, 0) {
            Err(VerifyError::Invalid(m)) => assert!(m.to_string().contains("has 40 signatures; at most 32"), "{m}"),
            other => panic!("{other:?}"),
        }
        let report = analyse(&many_signers(3, b"hello"), None, &anchors, &limits, 0).unwrap();
        assert_eq!(report.signatures.len(), 3);
        assert!(report
            .signatures
            .iter()
            .all(|s| s.digest_matches && !s.signature_verifies));
        let tight = Limits {
            attributes: 2,
            ..Limits::default()
        };
        match analyse(&many_signers(1, b"hello"), None, &anchors, &tight, 0) {
            Err(VerifyError::Invalid(m)) => assert!(m.to_string().contains("more than 2 attributes"), "{m}"),
            other => panic!("{other:?}"),
        }
        let tight = Limits {
            certificates: 0,
            ..Limits::default()
        };
        assert!(analyse(&many_signers(1, b"hello"), None, &anchors, &tight, 0).is_err());
    }

    #[test]
    fn many_signers_over_a_large_content_hash_it_once() {
        let content = vec![7u8; 1 << 20];
        let der = many_signers(32, &content);
        let sd = signed_data(&der).unwrap();
        let certs = certificates(&sd);
        let raw = raw_signed_attrs(&der);
        assert_eq!(raw.len(), 32);
        let parts: [&[u8]; 1] = [&content];
        let hashed = Hashed::new(&parts);
        for (i, si) in sd.signer_infos.0.iter().enumerate() {
            let check = check_signer_info(si, raw[i].as_deref(), &hashed, &certs);
            assert!(check.digest_matches);
        }
        assert_eq!(hashed.hashes(), 1);
    }

    fn test_anchors() -> Anchors {
        // Any certificate will do for refusing garbage: a throwaway self-signed one.
        let pem = THROWAWAY;
        let cert = <Certificate as der::DecodePem>::from_pem(pem).expect("test root");
        Anchors {
            root: cert.clone(),
            issuing: cert,
            tsa: None,
        }
    }
}
