//! CSC v2 `signatures/signDoc`: CAdES (`signature_format` C) for documents or document digests, at levels B-B,
//! B-T and B-LT, enveloping (`Attached`, the default) or detached; PAdES (`P`) for PDFs, at those levels and B-LTA,
//! in a new invisible signature field or, with Parafa's `signature_field` parameter (CSC has none for it), in the
//! PDF's empty signature field of that name.
//!
//! The SAD is bound to the documents' digests: the client authorises with `hashes` = the digests of the documents
//! (or of the digests it sends), and each document signed must be one of them. Each signature and each timestamp
//! is one transaction; the whole request is debited at once by the signature ledger together with the SAD use, or
//! refused whole (a batch that does not fit the quota is not partly signed). Nothing is returned unless recorded.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::algo::{self, Resolved};
use super::service::{check_sad, quota_exhausted, usable, view, Caller};
use super::{CscError, Version};
use crate::app::AppState;
use crate::clock::Clock;
use crate::documents::cades::Level;
use crate::documents::pades::Placement;
use crate::documents::signer::{self, Format, Item, SignError, Signer};
use crate::documents::Output;
use crate::encoding::lifted::{Lifted, Lifter};
use crate::error::ApiError;
use crate::hsm::{HashAlg, Hasher};

/// Largest number of documents in one request.
pub const MAX_DOCUMENTS: usize = 20;

/// One entry of `documentDigests` or `documents`.
#[derive(Debug, Deserialize, Default)]
pub struct DocItem {
    /// Base64 document (`documents`).
    pub document: Option<String>,
    /// Base64 digests (`documentDigests`).
    pub hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm: Option<String>,
    pub signature_format: Option<String>,
    pub conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    pub sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub sign_algo_params: Option<String>,
    pub signed_envelope_property: Option<String>,
    pub signed_props: Option<Value>,
    /// Parafa's extension (CSC v2 leaves room for vendor parameters): the fully qualified name of the PDF's empty
    /// signature field a PAdES signature fills, instead of adding a field. Empty: none.
    pub signature_field: Option<String>,
}

/// `signatures/signDoc` request.
#[derive(Debug, Deserialize, Default)]
pub struct SignDocRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: Option<String>,
    #[serde(rename = "signatureQualifier")]
    pub signature_qualifier: Option<String>,
    #[serde(rename = "SAD")]
    pub sad: Option<String>,
    #[serde(rename = "documentDigests")]
    pub document_digests: Option<Vec<DocItem>>,
    pub documents: Option<Vec<DocItem>>,
    #[serde(rename = "operationMode")]
    pub operation_mode: Option<String>,
    #[serde(rename = "returnValidationInfo")]
    pub return_validation_info: Option<bool>,
}

/// What one item asks for, checked.
struct Job {
    /// The content to enclose (attached), if any.
    content: Option<Arc<Vec<u8>>>,
    /// The digest the SAD must cover: of the document, or the digest sent.
    digest: Vec<u8>,
    /// The request's hash fed with the whole document, when it was computed as the document arrived.
    fed: Option<Hasher>,
    attached: bool,
    level: Level,
    pades: bool,
    /// The PDF's empty signature field the signature fills, if named.
    field: Option<String>,
}

fn b64d(s: &str, what: &str) -> Result<Vec<u8>, CscError> {
    algo::decode_b64(s).ok_or_else(|| CscError::invalid(format!("Invalid Base64 {what}")))
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// `signatures/signDoc` answer: `DocumentWithSignature`, `SignatureObject` (base64 each) and `validationInfo`,
/// written by [`respond`] as it is sent.
#[derive(Debug)]
pub struct SignDocResponse {
    /// The enveloping signatures (the documents with their signature).
    pub document_with_signature: Vec<Output>,
    /// The detached signatures.
    pub signature_object: Vec<Output>,
    /// With `returnValidationInfo`.
    pub validation_info: Option<ValidationInfo>,
}

/// What a relying party needs to validate the signatures later, base64 DER each.
#[derive(Debug, Serialize)]
pub struct ValidationInfo {
    pub certificates: Vec<String>,
    pub crl: Vec<String>,
    pub ocsp: Vec<String>,
}

/// `signatures/timestamp` answer.
#[derive(Debug, Serialize)]
pub struct TimestampResponse {
    /// Base64 DER of the RFC 3161 token.
    pub timestamp: String,
}

/// Signs the documents (or digests) of the request.
pub async fn sign_doc(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: SignDocRequest,
    mut lifted: Lifted,
) -> Result<SignDocResponse, CscError> {
    if req.operation_mode.as_deref().is_some_and(|m| m != "S") {
        return Err(CscError::invalid(
            "Invalid parameter operationMode: only synchronous signing (S) is offered",
        ));
    }
    let (mut items, by_digest) = match (req.document_digests, req.documents) {
        (Some(_), Some(_)) => {
            return Err(CscError::invalid(
                "Both documentDigests and documents parameters passed",
            ))
        }
        (Some(d), None) if !d.is_empty() => (d, true),
        (None, Some(d)) if !d.is_empty() => (d, false),
        _ => return Err(CscError::invalid("Empty documentDigests and documents objects")),
    };
    if req.credential_id.is_none() {
        return Err(CscError::invalid(
            "Missing (or invalid type) string parameter credentialID: signatureQualifier alone is not offered",
        ));
    }
    let sad = req
        .sad
        .filter(|x| !x.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter SAD"))?;
    let v = view(state, caller, req.credential_id.as_deref()).await?;
    let now = state.clock.now();
    usable(&v, now)?;
    let Resolved { mechanism, hash } = algorithm(&items, v.spec, version)?;
    let mut jobs = Vec::new();
    for item in &mut items {
        jobs.extend(job_of(state, item, &mut lifted, by_digest, hash).await?);
    }
    if jobs.len() > MAX_DOCUMENTS {
        return Err(CscError::invalid(format!(
            "Too many documents: at most {MAX_DOCUMENTS} per request"
        )));
    }
    drop(items);
    drop(lifted);
    let digests: Vec<Vec<u8>> = jobs.iter().map(|j| j.digest.clone()).collect();
    let sad_hash = check_sad(state, version, caller, &v, &sad, &digests, hash, now).await?;
    let transactions: i64 = jobs.iter().map(|j| signer::transactions(j.level)).sum();
    if v.quota.remaining() < transactions {
        return Err(quota_exhausted(v.quota.remaining()));
    }
    let cert_der = crate::db::unb64(&v.cert_row.cert_der, "certificates.cert_der")?;
    let signer = Signer {
        user_id: &caller.user_id,
        client: &caller.client,
        credential_id: &v.cred.id,
        cert_der: &cert_der,
        sad_hash,
        bearer: Some(caller.token_hash.clone()),
        mechanism,
        hash,
    };
    let signed = sign_jobs(state, &signer, &mut jobs, now).await?;
    let mut out = answer(&jobs, signed);
    if req.return_validation_info == Some(true) {
        out.validation_info = Some(validation_info(state, &cert_der).await?);
    }
    Ok(out)
}

/// The one signature algorithm and hash of a request (its SAD was authorised for one hash algorithm), read from
/// its first document; the others must name the same.
fn algorithm(items: &[DocItem], spec: crate::hsm::KeySpec, version: Version) -> Result<Resolved, CscError> {
    let first = &items[0];
    let sign_algo = first
        .sign_algo
        .clone()
        .filter(|x| !x.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter signAlgo"))?;
    let resolved = algo::resolve(
        spec,
        &sign_algo,
        first.hash_algorithm.as_deref(),
        first.sign_algo_params.as_deref(),
        version.hash_param(),
    )?;
    for item in items {
        if item.sign_algo.as_deref() != Some(sign_algo.as_str()) || item.sign_algo_params != first.sign_algo_params {
            return Err(CscError::invalid(
                "Invalid parameter signAlgo: every document of one request uses the same algorithm",
            ));
        }
        if item
            .hash_algorithm
            .as_deref()
            .is_some_and(|h| h != resolved.hash.oid().to_string())
        {
            return Err(CscError::invalid(
                "String parameter hashAlgorithmOID contradicts with signAlgo parameter",
            ));
        }
    }
    Ok(resolved)
}

/// PAdES (`P`) or CAdES (`C`), and the level: from a document's `signature_format` and `conformance_level`.
fn format_of(item: &DocItem) -> Result<(bool, Level), CscError> {
    let pades = match item.signature_format.as_deref() {
        Some("C") => false,
        Some("P") => true,
        Some(_) => {
            return Err(CscError::invalid(
                "Invalid parameter signature_format: C (CAdES) and P (PAdES) are offered",
            ))
        }
        None => {
            return Err(CscError::invalid(
                "Missing (or invalid type) string parameter signature_format",
            ))
        }
    };
    let level = Level::parse(item.conformance_level.as_deref()).ok_or_else(|| {
        CscError::invalid("Invalid parameter conformance_level: AdES-B-B, AdES-B-T, AdES-B-LT or AdES-B-LTA")
    })?;
    if item.signed_props.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(CscError::invalid("Invalid parameter signed_props: none are supported"));
    }
    Ok((pades, level))
}

/// Whether the signature encloses what it signs, from `signed_envelope_property`: a PAdES revision does, a CAdES
/// signature of a document does by default, one of a digest cannot.
fn attached_of(item: &DocItem, pades: bool, by_digest: bool) -> Result<bool, CscError> {
    if pades {
        if by_digest {
            return Err(CscError::invalid(
                "Invalid parameter signature_format: PAdES signs the document itself; send documents, not digests",
            ));
        }
        return match item.signed_envelope_property.as_deref().unwrap_or("Revision") {
            "Revision" => Ok(true),
            "Certification" => Err(CscError::invalid(
                "Invalid parameter signed_envelope_property: certification signatures are not offered; use Revision",
            )),
            _ => Err(CscError::invalid(
                "Invalid parameter signed_envelope_property: Revision for PAdES",
            )),
        };
    }
    let default = if by_digest { "Detached" } else { "Attached" };
    match item.signed_envelope_property.as_deref().unwrap_or(default) {
        "Attached" if !by_digest => Ok(true),
        "Attached" => Err(CscError::invalid(
            "Invalid parameter signed_envelope_property: a signature of a digest can only be Detached",
        )),
        "Detached" => Ok(false),
        _ => Err(CscError::invalid(
            "Invalid parameter signed_envelope_property: Attached or Detached",
        )),
    }
}

/// What one entry of the request asks to sign: each of its digests, or its document (taken out of the request, so
/// its base64 is freed once decoded; a PDF is inspected first, within the memory budget).
async fn job_of(
    state: &AppState,
    item: &mut DocItem,
    lifted: &mut Lifted,
    by_digest: bool,
    hash: HashAlg,
) -> Result<Vec<Job>, CscError> {
    let (pades, level) = format_of(item)?;
    let attached = attached_of(item, pades, by_digest)?;
    let field = item.signature_field.take().filter(|f| !f.is_empty());
    if field.is_some() && !pades {
        return Err(CscError::invalid(
            "Invalid parameter signature_field: a signature field is filled by a PAdES signature (signature_format P)",
        ));
    }
    if by_digest {
        let hashes = item
            .hashes
            .as_ref()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| CscError::invalid("Empty hash array"))?;
        return hashes
            .iter()
            .map(|h| {
                let digest = b64d(h, "hash string parameter")?;
                if digest.len() != hash.output_len() {
                    return Err(CscError::invalid("Invalid digest value length"));
                }
                Ok(Job {
                    content: None,
                    digest,
                    fed: None,
                    attached: false,
                    level,
                    pades: false,
                    field: None,
                })
            })
            .collect();
    }
    let text = item
        .document
        .take()
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter document"))?;
    // A long document was decoded as it arrived, and hashed with SHA-256 on the way.
    let (document, sha256) = match lifted.take(&text) {
        Some(Ok(blob)) => (blob.bytes, Some(blob.sha256)),
        Some(Err(())) => return Err(CscError::invalid("Invalid Base64 document")),
        None => (b64d(&text, "document")?, None),
    };
    drop(text);
    let limits = &state.settings.documents;
    let pdf = crate::documents::jobs::is_pdf(&document);
    if document.len() > limits.max_document_bytes(pdf) {
        return Err(CscError::invalid(format!(
            "Invalid parameter document: {} bytes; a PDF is signed up to {} bytes, another file up to {} bytes",
            document.len(),
            limits.max_pdf_bytes,
            limits.max_file_bytes
        )));
    }
    if pades {
        let admission = &state.settings.admission;
        let _parse = state
            .admission
            .reserve_parse(document.len(), true, admission, crate::admission::Work::Pdf)
            .await?;
        let limits = crate::documents::pades::Limits::of(&state.settings);
        let inspected = match &field {
            Some(name) => crate::pdf::inspect_field(&document, name, &limits),
            None => crate::pdf::inspect(&document, &limits),
        };
        inspected.map_err(|e| {
            let parameter = if e.is_about_field() {
                "signature_field"
            } else {
                "document"
            };
            CscError::invalid(format!("Invalid parameter {parameter}: {e}"))
        })?;
    }
    let fed = match sha256 {
        Some(h) if hash == HashAlg::Sha256 => Hasher::Sha256(h),
        _ => {
            let mut h = hash.hasher();
            h.update(&document);
            h
        }
    };
    Ok(vec![Job {
        digest: fed.clone().finish(),
        fed: pades.then_some(fed),
        content: attached.then(|| Arc::new(document)),
        attached,
        level,
        pades,
        field,
    }])
}

/// Signs the jobs (their documents move into the signer's items, no second copy) within the memory budget. A
/// signature into a prepared field shows, where the field is visible, the certificate's common name and the time.
async fn sign_jobs(state: &AppState, signer: &Signer<'_>, jobs: &mut [Job], now: i64) -> Result<Vec<Output>, CscError> {
    let size = jobs.iter().map(|j| j.content.as_ref().map_or(0, |c| c.len())).sum();
    let pdf = jobs.iter().any(|j| j.pades);
    let _signing = (state.admission)
        .reserve_parse(size, pdf, &state.settings.admission, crate::admission::Work::Signature)
        .await?;
    let items: Vec<Item> = jobs
        .iter_mut()
        .map(|j| Item {
            content: j.content.take(),
            digest: j.digest.clone(),
            fed: j.fed.take(),
            format: match (j.pades, j.field.take()) {
                (true, Some(name)) => Format::Pades {
                    placement: Placement::Field {
                        name,
                        signer: signer::shown_name(signer.cert_der),
                        date: signer::shown_date(now),
                    },
                },
                (true, None) => Format::Pades {
                    placement: Placement::Invisible,
                },
                (false, _) => Format::Cades { attached: j.attached },
            },
            level: j.level,
        })
        .collect();
    signer::sign_batch(&state.documents(), signer, &items)
        .await
        .map_err(|e| match e {
            SignError::QuotaExhausted(left) => quota_exhausted(left),
            SignError::SadSpent | SignError::Invalid(_) => CscError::invalid(e.to_string()),
            SignError::TokenRevoked => CscError::InvalidToken(e.to_string()),
            SignError::Hsm(h) => CscError::Hsm(h),
            SignError::Db(d) => CscError::Db(d),
            SignError::Internal(m) => CscError::Internal(m),
        })
}

/// The answer: enclosing signatures in `documentWithSignature`, detached ones in `signatureObject`.
fn answer(jobs: &[Job], signed: Vec<Output>) -> SignDocResponse {
    let (mut documents, mut signatures) = (Vec::new(), Vec::new());
    for (attached, p) in jobs.iter().map(|j| j.attached).zip(signed) {
        if attached {
            documents.push(p);
        } else {
            signatures.push(p);
        }
    }
    SignDocResponse {
        document_with_signature: documents,
        signature_object: signatures,
        validation_info: None,
    }
}

/// Reads a `signDoc` body as it arrives, at most `limit` bytes (else 413): the documents are decoded from base64
/// and hashed on the way ([`crate::encoding::lifted`]), so that no document is held twice.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Lifted, ApiError> {
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n <= limit);
    let mut lifter = announced.map_or_else(Lifter::new, Lifter::announced);
    let mut read = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid_request(crate::text!("error.http.invalid_request_body", other = e)))?;
        read = read.saturating_add(chunk.len());
        if read > limit {
            return Err(ApiError::too_large(crate::text!("error.http.request_body_too_large")));
        }
        lifter.push(&chunk);
    }
    Ok(lifter.finish())
}

/// Bytes of a signed document encoded per piece of the answer (a multiple of 3: no padding inside the string).
const ENCODE_CHUNK: usize = 3 * 64 * 1024;

/// A piece of the answer's body.
enum Piece {
    /// JSON text as it is.
    Text(Option<Vec<u8>>),
    /// A signed document as base64, encoded as it is sent; `at` is how much of it was.
    Encoded { out: Output, at: usize },
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Text(t) => t.as_ref().map_or(0, Vec::len),
            Piece::Encoded { out, .. } => out.len().div_ceil(3) * 4,
        }
    }
}

impl Iterator for Piece {
    type Item = Result<web::Bytes, std::convert::Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Piece::Text(t) => t.take().map(|t| Ok(web::Bytes::from(t))),
            Piece::Encoded { out, at } => {
                let len = out.len();
                if *at >= len {
                    return None;
                }
                let end = (*at + ENCODE_CHUNK).min(len);
                let [head, tail] = out.parts();
                let n = head.len();
                let simd = base64_simd::STANDARD;
                let encoded = if end <= n {
                    simd.encode_to_string(&head[*at..end])
                } else if *at >= n {
                    simd.encode_to_string(&tail[*at - n..end - n])
                } else {
                    simd.encode_to_string([&head[*at..], &tail[..end - n]].concat())
                };
                *at = end;
                Some(Ok(web::Bytes::from(encoded)))
            }
        }
    }
}

/// The `signDoc` answer, sent as it is written: the JSON around each signed document's base64, encoded piece by
/// piece (a signed document is never held whole as base64, nor the answer as one string), its length announced.
pub fn respond(answer: SignDocResponse) -> HttpResponse {
    let mut pieces = Vec::new();
    let text = |t: &str| Piece::Text(Some(t.as_bytes().to_vec()));
    for (name, outputs) in [
        ("{\"DocumentWithSignature\":[", answer.document_with_signature),
        ("],\"SignatureObject\":[", answer.signature_object),
    ] {
        pieces.push(text(name));
        for (i, out) in outputs.into_iter().enumerate() {
            pieces.push(text(if i == 0 { "\"" } else { ",\"" }));
            pieces.push(Piece::Encoded { out, at: 0 });
            pieces.push(text("\""));
        }
    }
    pieces.push(text("]"));
    if let Some(info) = answer.validation_info {
        let mut field = b",\"validationInfo\":".to_vec();
        // A struct of strings always serialises.
        field.extend(serde_json::to_vec(&info).unwrap_or_else(|_| b"null".to_vec()));
        pieces.push(Piece::Text(Some(field)));
    }
    pieces.push(text("}"));
    let len = pieces.iter().map(Piece::len).sum::<usize>() as u64;
    let body = futures_util::stream::iter(pieces.into_iter().flatten());
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(actix_web::body::SizedStream::new(len, body))
}

/// `validationInfo`: the OCSP responses and CRLs for the signer's certificate, and the chain.
async fn validation_info(state: &AppState, cert_der: &[u8]) -> Result<ValidationInfo, CscError> {
    let r = signer::revocation_data(&state.documents(), cert_der)
        .await
        .map_err(|e| CscError::Internal(e.to_string()))?;
    let chain = state.ca.chain_der();
    Ok(ValidationInfo {
        ocsp: r.ocsp_responses.iter().map(|d| b64(d)).collect(),
        crl: r.crls.iter().map(|d| b64(d)).collect(),
        certificates: chain.iter().map(|d| b64(d)).collect(),
    })
}

/// `signatures/timestamp` request.
#[derive(Debug, Deserialize, Default)]
pub struct TimestampRequest {
    pub hash: Option<String>,
    #[serde(rename = "hashAlgo", alias = "hashAlgorithmOID")]
    pub hash_algo: Option<String>,
    /// Hex; the token carries it.
    pub nonce: Option<String>,
}

/// `signatures/timestamp`: an RFC 3161 token from Parafa's TSA over the hash sent, debited as one transaction
/// from the caller's current certificate and recorded in the ledger.
pub async fn timestamp(
    state: &AppState,
    caller: &Caller,
    req: TimestampRequest,
) -> Result<TimestampResponse, CscError> {
    let hash_b64 = req
        .hash
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CscError::invalid("Empty hash parameter"))?;
    let oid: const_oid::ObjectIdentifier = req
        .hash_algo
        .as_deref()
        .and_then(crate::csc::algo::oid)
        .ok_or_else(|| CscError::invalid("Invalid parameter hashAlgo"))?;
    let hash = crate::hsm::HashAlg::from_oid(&oid).ok_or_else(|| CscError::invalid("Invalid parameter hashAlgo"))?;
    let digest = b64d(&hash_b64, "hash string parameter")?;
    if digest.len() != hash.output_len() {
        return Err(CscError::invalid("Invalid digest value length"));
    }
    let nonce = match req.nonce.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => None,
        Some(hex_nonce) => {
            let bytes = hex::decode(hex_nonce.trim_start_matches("0x"))
                .ok()
                .filter(|b| !b.is_empty() && b.len() <= 32)
                .ok_or_else(|| CscError::invalid("Invalid parameter nonce"))?;
            // A positive INTEGER: a leading zero byte when the high bit is set.
            let mut positive = Vec::with_capacity(bytes.len() + 1);
            if bytes[0] & 0x80 != 0 {
                positive.push(0);
            }
            positive.extend(bytes);
            Some(der::asn1::Int::new(&positive).map_err(|_| CscError::invalid("Invalid parameter nonce"))?)
        }
    };
    let (cred, _) = crate::db::credentials::current(&state.db, &caller.user_id, state.clock.now())
        .await?
        .ok_or_else(|| CscError::invalid("A timestamp is debited from a valid certificate's package: you have none"))?;
    let quota = crate::db::credentials::quota(&state.db, &cred.id).await?;
    if quota.as_ref().is_none_or(|q| q.remaining() < 1) {
        return Err(quota_exhausted(quota.map_or(0, |q| q.remaining())));
    }
    let made = signer::timestamp_of(&state.documents(), hash, &digest, nonce)
        .await
        .map_err(|e| CscError::Internal(e.to_string()))?;
    let now = state.clock.now();
    let row = crate::tsa::ledger_row(hash, &digest, &made.token);
    let audit = super::service::audit_row(
        state,
        &caller.user_id,
        "timestamp.create",
        &cred.id,
        "ok",
        &caller.client,
        json!({ "serial": made.serial }),
    );
    let committed = state
        .ledger
        .commit(crate::db::signing::Commit {
            sad_hash: String::new(),
            bearer: None,
            credential_id: cred.id.clone(),
            user_id: caller.user_id.clone(),
            client: caller.client.clone(),
            rows: vec![row],
            audit,
            now,
        })
        .await?;
    match committed {
        Ok(()) => Ok(TimestampResponse {
            timestamp: b64(&made.token),
        }),
        Err(crate::db::signing::CommitRefusal::QuotaExhausted(left)) => Err(quota_exhausted(left)),
        // A timestamp's debit uses no SAD and checks neither the credential nor the token.
        Err(other) => Err(CscError::Internal(format!(
            "a timestamp's debit was refused: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_answer_is_the_json_object_it_announces_with_each_document_whole() {
        let pdf: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
        let straddling = Output {
            head: Arc::new(pdf[..ENCODE_CHUNK + 1].to_vec()),
            tail: pdf[ENCODE_CHUNK + 1..].to_vec(),
        };
        for info in [None, Some(())] {
            let answer = SignDocResponse {
                document_with_signature: vec![straddling.clone(), Output::whole(b"ab".to_vec())],
                signature_object: vec![Output::whole(b"p7s".to_vec())],
                validation_info: info.map(|()| ValidationInfo {
                    certificates: vec!["a".into()],
                    crl: vec!["b".into()],
                    ocsp: vec!["c".into()],
                }),
            };
            let response = respond(answer);
            let announced = match actix_web::body::MessageBody::size(response.body()) {
                actix_web::body::BodySize::Sized(n) => n as usize,
                other => panic!("the answer's length is not announced: {other:?}"),
            };
            let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
            assert_eq!(body.len(), announced);
            let v: Value = serde_json::from_slice(&body).expect("JSON");
            let mut expected = json!({
                "DocumentWithSignature": [b64(&pdf), b64(b"ab")],
                "SignatureObject": [b64(b"p7s")],
            });
            if info.is_some() {
                expected["validationInfo"] = json!({"certificates": ["a"], "crl": ["b"], "ocsp": ["c"]});
            }
            assert_eq!(v, expected);
        }
    }
}
