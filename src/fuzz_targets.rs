//! What the fuzz targets run: one function per parser of outside bytes, shared by the coverage-guided fuzzer
//! (`make fuzz`, the `fuzz/` crate built with cargo-afl) and by the replay test that `make test` runs over every
//! seed and every finding kept in `fuzz/regressions/` (`tests/api/fuzz_replay.rs`), so a crash or a hang found once
//! stays fixed.
//!
//! Each function takes the bytes as an attacker would send them and must return, whatever they are: no panic, no
//! abort, no unbounded work. The answers are thrown away; only surviving them counts.

use crate::documents::verify;
use crate::pdf;

/// The targets, by name: the names of the fuzz binaries and of their folders under `fuzz/`.
pub const TARGETS: &[&str] = &["pdf", "verify", "tsa_query", "ocsp_request", "csc_body"];

/// What the `verify` target needs besides the file: the certificates trust is anchored in (any will do: a file
/// signed by another CA is still read to the end).
pub struct Fixture {
    /// The anchors [`verify::analyse`] checks chains against.
    pub anchors: verify::Anchors,
}

impl Fixture {
    /// A fixture from a root and an issuing CA certificate, DER.
    pub fn new(root_der: &[u8], issuing_der: &[u8]) -> Result<Fixture, der::Error> {
        use der::Decode;
        Ok(Fixture {
            anchors: verify::Anchors {
                root: x509_cert::Certificate::from_der(root_der)?,
                issuing: x509_cert::Certificate::from_der(issuing_der)?,
                tsa: None,
            },
        })
    }
}

/// Runs the target named `target` on `data`; `false` when there is no such target.
pub fn run(target: &str, data: &[u8], fixture: &Fixture) -> bool {
    match target {
        "pdf" => pdf(data),
        "verify" => verify(data, fixture),
        "tsa_query" => tsa_query(data),
        "ocsp_request" => ocsp_request(data),
        "csc_body" => csc_body(data),
        _ => return false,
    }
    true
}

/// The PDF reader as signing and verification use it: [`pdf::inspect`] and [`pdf::signature_fields`].
pub fn pdf(data: &[u8]) {
    let limits = pdf::Limits::default();
    let _ = pdf::inspect(data, &limits);
    let _ = pdf::signature_fields(data, &limits);
}

/// `POST /api/v1/verify` without the database: a signed PDF or a `.p7s`; when the data holds a NUL byte, what
/// follows the first one is the detached content of a `.p7s`.
pub fn verify(data: &[u8], fixture: &Fixture) {
    let (file, content) = match data.iter().position(|b| *b == 0) {
        Some(at) if !data.starts_with(b"%PDF-") => (&data[..at], Some(&data[at + 1..])),
        _ => (data, None),
    };
    let _ = verify::analyse(
        file,
        content,
        &fixture.anchors,
        &verify::Limits::default(),
        1_800_000_000,
    );
}

/// `POST /tsa`: a DER TimeStampReq.
pub fn tsa_query(data: &[u8]) {
    let _ = crate::tsa::protocol::parse_query(data);
}

/// `POST /pki/ocsp`: a DER OCSPRequest.
pub fn ocsp_request(data: &[u8]) {
    let _ = crate::ca::revocation::parse_request(
        data,
        &crate::ca::revocation::OcspLimits::of(&crate::config::ParserLimits::default()),
    );
}

/// The CSC request bodies: the first byte picks the method, the rest is its JSON body, read and checked as the
/// service reads it before anything touches the database or the token.
pub fn csc_body(data: &[u8]) {
    use crate::csc::{algo, service, types};
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<types::SignHashRequest>(body) {
                let _ = service::decode_hashes(req.hashes, 100);
                if let Some(sign_algo) = req.sign_algo.as_deref() {
                    for spec in [crate::hsm::KeySpec::P256, crate::hsm::KeySpec::Rsa3072] {
                        let _ = algo::resolve(
                            spec,
                            sign_algo,
                            req.hash_algorithm.as_deref(),
                            req.sign_algo_params.as_deref(),
                            "hashAlgo",
                        );
                    }
                }
            }
        }
        1 => {
            let _ = serde_json::from_slice::<types::AuthorizeRequest>(body);
        }
        2 => {
            // As the server reads it: long strings lifted out as the body streams, in chunks of any size.
            let mut lifter = crate::encoding::lifted::Lifter::new();
            let cut = usize::from(body.first().copied().unwrap_or(1).max(1));
            for chunk in body.chunks(cut) {
                lifter.push(chunk);
            }
            let mut lifted = lifter.finish();
            if let Ok(request) = serde_json::from_slice::<crate::csc::sign_doc::SignDocRequest>(&lifted.skeleton) {
                for item in request.documents.unwrap_or_default() {
                    let _ = item.document.as_deref().map(|d| lifted.take(d));
                }
            }
        }
        _ => {
            let _ = service::parse_basic(std::str::from_utf8(body).ok());
        }
    }
}
