//! CSC v2 `signatures/signDoc`: CAdES (`signature_format` C) for documents or document digests, at levels B-B,
//! B-T and B-LT, enveloping (`Attached`, the default) or detached.
//!
//! The SAD is bound to the documents' digests: the client authorises with `hashes` = the digests of the documents
//! (or of the digests it sends), and each document signed must be one of them. Each signature and each timestamp
//! is one transaction; the whole request is debited at once by the signature ledger together with the SAD use, or
//! refused whole (a batch that does not fit the quota is not partly signed). Nothing is returned unless recorded.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::algo::{self, Resolved};
use super::service::{audit_row, check_sad, quota_exhausted, usable, view, Caller};
use super::{CscError, Version};
use crate::clock::Clock;
use crate::db::signing::{Commit, CommitRefusal, SignatureRow};
use crate::documents::cades::{self, Level, Revocation};
use crate::documents::cms::{self, Encapsulation, SignerSpec};
use crate::hsm::HashAlg;
use crate::startup::AppState;

/// Whether the timestamp authority is wired in (B-T and B-LT).
const TIMESTAMPS: bool = false;

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
    content: Option<Vec<u8>>,
    /// The digest the SAD must cover: of the document, or the digest sent.
    digest: Vec<u8>,
    attached: bool,
    level: Level,
}

fn b64d(s: &str, what: &str) -> Result<Vec<u8>, CscError> {
    let s = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .map_err(|_| CscError::invalid(format!("Invalid Base64 {what}")))
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// Signs the documents (or digests) of the request.
pub async fn sign_doc(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: SignDocRequest,
) -> Result<Value, CscError> {
    if req.operation_mode.as_deref().is_some_and(|m| m != "S") {
        return Err(CscError::invalid(
            "Invalid parameter operationMode: only synchronous signing (S) is offered",
        ));
    }
    let (items, by_digest) = match (req.document_digests, req.documents) {
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

    // One signature algorithm and hash for the request (the SAD was authorised for one hash algorithm).
    let first = &items[0];
    let sign_algo = first
        .sign_algo
        .as_deref()
        .filter(|x| !x.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter signAlgo"))?;
    let Resolved { mechanism, hash } = algo::resolve(
        v.spec,
        sign_algo,
        first.hash_algorithm.as_deref(),
        first.sign_algo_params.as_deref(),
        version.hash_param(),
    )?;
    let mut jobs = Vec::new();
    for item in &items {
        if item.sign_algo.as_deref() != Some(sign_algo) || item.sign_algo_params != first.sign_algo_params {
            return Err(CscError::invalid(
                "Invalid parameter signAlgo: every document of one request uses the same algorithm",
            ));
        }
        if let Some(h) = item.hash_algorithm.as_deref() {
            if h != hash.oid().to_string() {
                return Err(CscError::invalid(
                    "String parameter hashAlgorithmOID contradicts with signAlgo parameter",
                ));
            }
        }
        match item.signature_format.as_deref() {
            Some("C") => {}
            Some("P") => {
                return Err(CscError::invalid(
                    "Invalid parameter signature_format: PAdES (P) is not offered by signDoc yet; use C (CAdES)",
                ))
            }
            Some(_) => {
                return Err(CscError::invalid(
                    "Invalid parameter signature_format: C (CAdES) is offered",
                ))
            }
            None => {
                return Err(CscError::invalid(
                    "Missing (or invalid type) string parameter signature_format",
                ))
            }
        }
        let level = Level::parse(item.conformance_level.as_deref())
            .filter(|l| *l != Level::BLTA)
            .ok_or_else(|| {
                CscError::invalid("Invalid parameter conformance_level: AdES-B-B, AdES-B-T or AdES-B-LT for CAdES")
            })?;
        // Enclosing is the default for documents; a digest can only be signed detached.
        let default = if by_digest { "Detached" } else { "Attached" };
        let attached = match item.signed_envelope_property.as_deref().unwrap_or(default) {
            "Attached" if !by_digest => true,
            "Attached" => {
                return Err(CscError::invalid(
                    "Invalid parameter signed_envelope_property: a signature of a digest can only be Detached",
                ))
            }
            "Detached" => false,
            _ => {
                return Err(CscError::invalid(
                    "Invalid parameter signed_envelope_property: Attached or Detached",
                ))
            }
        };
        if item.signed_props.as_ref().is_some_and(|p| !p.is_null()) {
            return Err(CscError::invalid("Invalid parameter signed_props: none are supported"));
        }
        if by_digest {
            let hashes = item
                .hashes
                .as_ref()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| CscError::invalid("Empty hash array"))?;
            for h in hashes {
                let digest = b64d(h, "hash string parameter")?;
                if digest.len() != hash.output_len() {
                    return Err(CscError::invalid("Invalid digest value length"));
                }
                jobs.push(Job {
                    content: None,
                    digest,
                    attached: false,
                    level,
                });
            }
        } else {
            let document = b64d(
                item.document
                    .as_deref()
                    .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter document"))?,
                "document",
            )?;
            jobs.push(Job {
                digest: hash.digest(&document),
                content: attached.then_some(document),
                attached,
                level,
            });
        }
    }
    if jobs.len() > MAX_DOCUMENTS {
        return Err(CscError::invalid(format!(
            "Too many documents: at most {MAX_DOCUMENTS} per request"
        )));
    }
    if jobs.iter().any(|j| j.level.timestamped()) && !TIMESTAMPS {
        return Err(CscError::invalid(
            "Invalid parameter conformance_level: AdES-B-B is offered (timestamped levels come with the TSA)",
        ));
    }
    let digests: Vec<Vec<u8>> = jobs.iter().map(|j| j.digest.clone()).collect();
    let sad_hash = check_sad(state, version, caller, &v, &sad, &digests, hash, now).await?;
    let transactions: i64 = jobs.iter().map(|j| 1 + i64::from(j.level.timestamped())).sum();
    if v.quota.remaining() < transactions {
        return Err(quota_exhausted(v.quota.remaining()));
    }

    // The signer's certificate and chain; the revocation data for B-LT is fetched once.
    let cert_der = crate::db::unb64(&v.cert_row.cert_der, "certificates.cert_der")?;
    let chain = state.ca.chain_der();
    let revocation = if jobs.iter().any(|j| j.level >= Level::BLT) {
        Some(revocation_data(state, &cert_der).await?)
    } else {
        None
    };

    // Sign every document in the token (one blocking task), then timestamp where asked.
    let hsm = state.hsm.clone();
    let key_id = v.cred.id.clone();
    let (cert, ch) = (cert_der.clone(), chain.clone());
    let signed_time = now;
    let inputs: Vec<(Option<Vec<u8>>, Vec<u8>)> = jobs.iter().map(|j| (j.content.clone(), j.digest.clone())).collect();
    let signed: Vec<(Vec<u8>, Vec<u8>)> = tokio::task::spawn_blocking(move || {
        inputs
            .iter()
            .map(|(content, digest)| {
                let spec = SignerSpec {
                    cert_der: &cert,
                    chain_der: &ch,
                    hash,
                    mechanism,
                    signing_time: Some(signed_time),
                    content_type: const_oid::db::rfc5911::ID_DATA,
                };
                let enc = match content {
                    Some(c) => Encapsulation::Attached(c),
                    None => Encapsulation::Detached { digest },
                };
                let mut raw = Vec::new();
                let p7s = cms::sign(&spec, enc, |d| {
                    let s = hsm.sign_digest(key_id.as_bytes(), mechanism, d)?;
                    raw = s.clone();
                    Ok::<_, crate::hsm::HsmError>(s)
                })
                .map_err(|e| match e {
                    cms::CmsError::Signer(h) => CscError::from(h),
                    other => CscError::Internal(format!("CMS: {other}")),
                })?;
                Ok((p7s, raw))
            })
            .collect::<Result<Vec<_>, CscError>>()
    })
    .await
    .map_err(|e| CscError::Internal(e.to_string()))??;

    let sign_algo_oid = mechanism.algorithm_identifier(hash).oid.to_string();
    let mut rows = Vec::new();
    let mut outputs = Vec::new();
    for (job, (p7s, raw)) in jobs.iter().zip(signed) {
        rows.push(SignatureRow {
            id: uuid::Uuid::now_v7().to_string(),
            digest: hex::encode(&job.digest),
            hash_algo: hash.oid().to_string(),
            sign_algo: sign_algo_oid.clone(),
            signature: b64(&raw),
            kind: "signature",
        });
        let mut p7s = p7s;
        if job.level.timestamped() {
            let imprint = HashAlg::Sha256.digest(&raw);
            let token = timestamp(state, &imprint).await?;
            rows.push(SignatureRow {
                id: uuid::Uuid::now_v7().to_string(),
                digest: hex::encode(&imprint),
                hash_algo: HashAlg::Sha256.oid().to_string(),
                sign_algo: "timestamp".into(),
                signature: b64(&HashAlg::Sha256.digest(&token)),
                kind: "timestamp",
            });
            p7s =
                cades::add_signature_timestamp(&p7s, &token).map_err(|e| CscError::Internal(format!("CAdES: {e}")))?;
        }
        if job.level >= Level::BLT {
            if let Some(r) = &revocation {
                p7s = cades::add_validation_data(&p7s, &chain, r)
                    .map_err(|e| CscError::Internal(format!("CAdES: {e}")))?;
            }
        }
        outputs.push((job.attached, p7s));
    }

    let event = audit_row(
        state,
        &caller.user_id,
        "signature.document",
        &v.cred.id,
        "ok",
        &caller.client,
        json!({ "documents": jobs.len(), "transactions": transactions, "format": "CAdES",
                "levels": jobs.iter().map(|j| j.level.as_str()).collect::<Vec<_>>() }),
    );
    let committed = state
        .ledger
        .commit(Commit {
            sad_hash,
            credential_id: v.cred.id.clone(),
            user_id: caller.user_id.clone(),
            client: caller.client.clone(),
            rows,
            audit: event,
            now,
        })
        .await?;
    match committed {
        Ok(()) => {}
        Err(CommitRefusal::QuotaExhausted(left)) => return Err(quota_exhausted(left)),
        Err(CommitRefusal::SadSpent) => {
            return Err(CscError::invalid(
                "The SAD was used meanwhile by another request, or expired: authorise again",
            ))
        }
    }
    let documents: Vec<String> = outputs.iter().filter(|(a, _)| *a).map(|(_, p)| b64(p)).collect();
    let signatures: Vec<String> = outputs.iter().filter(|(a, _)| !*a).map(|(_, p)| b64(p)).collect();
    let mut out = json!({ "DocumentWithSignature": documents, "SignatureObject": signatures });
    if req.return_validation_info == Some(true) {
        let r = match revocation {
            Some(r) => r,
            None => revocation_data(state, &cert_der).await?,
        };
        out["validationInfo"] = json!({
            "ocsp": r.ocsp_responses.iter().map(|d| b64(d)).collect::<Vec<_>>(),
            "crl": r.crls.iter().map(|d| b64(d)).collect::<Vec<_>>(),
            "certificates": chain.iter().map(|d| b64(d)).collect::<Vec<_>>(),
        });
    }
    Ok(out)
}

/// The CRLs of both CAs and an OCSP response for the signer: validation data for the whole chain.
pub async fn revocation_data(state: &AppState, cert_der: &[u8]) -> Result<Revocation, CscError> {
    use crate::ca::revocation;
    let unavailable = |e: crate::ca::CaError| CscError::Internal(format!("revocation data: {e}"));
    let cert = <x509_cert::Certificate as der::Decode>::from_der(cert_der)
        .map_err(|e| CscError::Internal(format!("stored certificate: {e}")))?;
    let clock = state.clock.as_ref();
    let issuing = revocation::crl(&state.db, &state.hsm, &state.ca, clock, "issuing")
        .await
        .map_err(unavailable)?;
    let root = revocation::crl(&state.db, &state.hsm, &state.ca, clock, "root")
        .await
        .map_err(unavailable)?;
    let ocsp = revocation::ocsp_for(&state.db, &state.hsm, &state.ca, clock, &cert)
        .await
        .map_err(unavailable)?;
    Ok(Revocation {
        crls: vec![issuing, root],
        ocsp_responses: vec![ocsp],
    })
}

/// A signature timestamp from Parafa's TSA over a SHA-256 imprint.
async fn timestamp(state: &AppState, imprint: &[u8]) -> Result<Vec<u8>, CscError> {
    let _ = (state, imprint);
    Err(CscError::invalid(
        "Invalid parameter conformance_level: timestamped levels need the timestamp authority",
    ))
}
