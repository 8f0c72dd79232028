//! The document signer shared by CSC `signatures/signDoc` and the web signing jobs: each document is signed in the
//! token (CAdES enveloping or detached, or PAdES), timestamped when the level asks for it, given its validation data
//! for B-LT and an archive timestamp (CAdES) or a document timestamp (PAdES) for B-LTA, and then the whole batch is
//! committed by the signature ledger in one go: the SAD use (one per document, bound to the documents' digests), one
//! transaction per signature and per timestamp, and a ledger row for each. A batch the quota cannot cover is refused
//! whole; nothing is returned unless it was recorded.

use std::sync::Arc;

use serde_json::json;

use super::cades::{self, Level, Revocation};
use super::cms::{self, Encapsulation, SignerSpec};
use super::pades;
use super::{Output, Services};
use crate::clock::Clock;
use crate::db::signing::{CommitRefusal, SignatureRow};
use crate::hsm::{HashAlg, Hasher, SignMechanism};
use crate::i18n::Text;
use crate::signing::{self, SignFailure};
use crate::text;

/// What to make of one document.
#[derive(Debug, Clone)]
pub enum Format {
    /// A CAdES `.p7s`: enclosing the content (`attached`) or detached.
    Cades { attached: bool },
    /// A PAdES signature embedded in the PDF by an incremental update: in a new field, invisible or visible, or in
    /// the document's empty signature field.
    Pades { placement: pades::Placement },
}

/// One document of a batch.
#[derive(Debug, Clone)]
pub struct Item {
    /// The document; None when only its digest was sent (detached CAdES of a digest). Shared: a PDF's original
    /// goes out as it came, with the signature appended, and is never copied.
    pub content: Option<Arc<Vec<u8>>>,
    /// The digest the SAD covers: of the document, or the digest sent.
    pub digest: Vec<u8>,
    /// A digest with the signer's hash already fed with the whole document, if the caller computed one as the
    /// document arrived: a PAdES signature's digest continues it over the appended revision instead of reading the
    /// document again.
    pub fed: Option<Hasher>,
    pub format: Format,
    pub level: Level,
}

impl Item {
    /// Transactions this item costs (see [`transactions`]).
    pub fn transactions(&self) -> i64 {
        transactions(self.level)
    }
}

/// Transactions one document costs at `level`: the signature, its timestamp when the level has one, and at B-LTA
/// the archive timestamp (CAdES) or the document timestamp (PAdES).
pub fn transactions(level: Level) -> i64 {
    1 + i64::from(level.timestamped()) + i64::from(level == Level::BLTA)
}

/// How a visible signature shows when it was made: `2026-01-01 12:00:00 UTC`.
pub fn shown_date(now: i64) -> String {
    format!(
        "{} UTC",
        crate::clock::rfc3339(now).replace('T', " ").trim_end_matches('Z')
    )
}

/// The name a visible signature shows for the holder of the certificate `cert_der`: its subject's common name
/// (empty if it has none).
pub fn shown_name(cert_der: &[u8]) -> String {
    use der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(cert_der) else {
        return String::new();
    };
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == const_oid::db::rfc4519::CN)
        .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned())
        .unwrap_or_default()
}

/// The signer: who, with which key and algorithm, under which SAD.
pub struct Signer<'a> {
    pub user_id: &'a str,
    pub client: &'a str,
    pub credential_id: &'a str,
    pub cert_der: &'a [u8],
    pub sad_hash: String,
    /// The hash of the access token the request came with (CSC), checked again by the ledger.
    pub bearer: Option<String>,
    pub mechanism: SignMechanism,
    pub hash: HashAlg,
}

/// Why a batch was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{}", self.text())]
    QuotaExhausted(i64),
    #[error("{}", self.text())]
    SadSpent,
    /// The access token was revoked (or expired) while the request was being signed.
    #[error("{}", self.text())]
    TokenRevoked,
    #[error("{0}")]
    Invalid(Text),
    #[error(transparent)]
    Hsm(#[from] crate::hsm::HsmError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Internal(String),
}

impl SignError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            SignError::QuotaExhausted(f0) => text!("error.job.quota_exhausted_left", left = f0),
            SignError::SadSpent => text!("error.job.sad_was_used_meanwhile_by"),
            SignError::TokenRevoked => text!("error.sign.access_token_revoked"),
            SignError::Invalid(t) => t.clone(),
            SignError::Hsm(_) => text!("error.http.hsm_could_not_complete_operation"),
            SignError::Db(_) => text!("error.http.database_error"),
            SignError::Internal(_) => text!("error.http.signing"),
        }
    }
}

/// Signs the batch and commits it; returns one output per item, in order.
pub async fn sign_batch(state: &Services, s: &Signer<'_>, items: &[Item]) -> Result<Vec<Output>, SignError> {
    let now = state.clock.now();
    let chain = state.ca.chain_der();
    let revocation = if items.iter().any(|i| i.level >= Level::BLT) {
        Some(revocation_data(state, s.cert_der).await?)
    } else {
        None
    };

    // Every signature in one blocking task (the HSM calls stay off the async runtime).
    let hsm = state.hsm.clone();
    let key = Key {
        id: s.credential_id.to_owned(),
        cert: s.cert_der.to_vec(),
        chain: chain.clone(),
        mechanism: s.mechanism,
        hash: s.hash,
    };
    // The documents are shared, not copied.
    let work: Vec<Item> = items.to_vec();
    let limits = crate::pdf::Limits::of(&state.settings);
    let signed: Vec<Signed> = tokio::task::spawn_blocking(move || {
        work.iter()
            .map(|item| sign_item(&hsm, &key, item, &limits, now))
            .collect::<Result<Vec<_>, SignError>>()
    })
    .await
    .map_err(|e| SignError::Internal(e.to_string()))??;

    let sign_algo_oid = s.mechanism.algorithm_identifier(s.hash).oid.to_string();
    let mut rows = Vec::new();
    let mut outputs = Vec::with_capacity(items.len());
    for (item, signed) in items.iter().zip(signed) {
        let (mut cms_der, raw, prepared) = match signed {
            Signed::Cades { p7s, raw } => (p7s, raw, None),
            Signed::Pades { prepared, cms, raw } => (cms, raw, Some(prepared)),
        };
        rows.push(signing::signature_row(&item.digest, s.hash, &sign_algo_oid, &raw));
        if item.level.timestamped() {
            let imprint = HashAlg::Sha256.digest(&raw);
            let token = timestamp(state, &imprint).await?;
            rows.push(crate::tsa::ledger_row(HashAlg::Sha256, &imprint, &token));
            cms_der =
                cades::add_signature_timestamp(&cms_der, &token).map_err(|e| SignError::Internal(e.to_string()))?;
        }
        let out = match prepared {
            None => {
                Output::whole(cades_levels(state, cms_der, item.level, &chain, revocation.as_ref(), &mut rows).await?)
            }
            Some(prepared) => {
                pades_levels(
                    state,
                    *prepared,
                    &cms_der,
                    item.level,
                    &chain,
                    revocation.as_ref(),
                    &mut rows,
                )
                .await?
            }
        };
        outputs.push(out);
    }

    let transactions: i64 = items.iter().map(Item::transactions).sum();
    let event = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: s.user_id,
            action: "signature.document",
            target: s.credential_id,
            outcome: "ok",
            client: s.client,
            details: json!({ "documents": items.len(), "transactions": transactions,
                             "levels": items.iter().map(|i| i.level.as_str()).collect::<Vec<_>>(),
                             "digests": items.iter().map(|i| hex::encode(&i.digest)).collect::<Vec<_>>() }),
        },
    );
    let by = signing::Signatory {
        user_id: s.user_id,
        client: s.client,
        credential_id: s.credential_id,
        authorization: s.sad_hash.clone(),
        bearer: s.bearer.clone(),
    };
    match signing::commit(&state.ledger, &by, rows, event, now).await {
        Ok(()) => Ok(outputs),
        Err(SignFailure::Refused(CommitRefusal::QuotaExhausted(left))) => Err(SignError::QuotaExhausted(left)),
        Err(SignFailure::Refused(CommitRefusal::SadSpent)) => Err(SignError::SadSpent),
        Err(SignFailure::Refused(CommitRefusal::TokenRevoked)) => Err(SignError::TokenRevoked),
        Err(SignFailure::Refused(CommitRefusal::Unusable)) => {
            let why = signing::why_unusable(&state.db, s.credential_id, now).await?;
            Err(SignError::Invalid(Text::new(why.key())))
        }
        Err(SignFailure::Hsm(e)) => Err(SignError::Hsm(e)),
        Err(SignFailure::Db(e)) => Err(SignError::Db(e)),
    }
}

/// The signing key and what a signature carries of it.
struct Key {
    /// The key's id in the token (the credential's).
    id: String,
    cert: Vec<u8>,
    chain: Vec<Vec<u8>>,
    mechanism: SignMechanism,
    hash: HashAlg,
}

/// Signs one item in the token (a blocking call): a CAdES `.p7s`, or a PAdES CMS for the prepared PDF.
fn sign_item(
    hsm: &crate::hsm::Hsm,
    key: &Key,
    item: &Item,
    limits: &crate::pdf::Limits,
    now: i64,
) -> Result<Signed, SignError> {
    let mut spec = SignerSpec {
        cert_der: &key.cert,
        chain_der: &key.chain,
        hash: key.hash,
        mechanism: key.mechanism,
        signing_time: Some(now),
        content_type: const_oid::db::rfc5911::ID_DATA,
    };
    let mut raw = Vec::new();
    let mut sign = |d: &[u8]| {
        let sig = hsm.sign_digest(key.id.as_bytes(), key.mechanism, d)?;
        raw = sig.clone();
        Ok::<_, crate::hsm::HsmError>(sig)
    };
    let cms_error = |e: cms::CmsError<crate::hsm::HsmError>| match e {
        cms::CmsError::Signer(h) => SignError::Hsm(h),
        other => SignError::Internal(format!("CMS: {other}")),
    };
    match &item.format {
        Format::Cades { attached } => {
            let enc = match (&item.content, attached) {
                (Some(c), true) => Encapsulation::Attached(c.as_slice()),
                _ => Encapsulation::Detached { digest: &item.digest },
            };
            let p7s = cms::sign(&spec, enc, &mut sign).map_err(cms_error)?;
            Ok(Signed::Cades { p7s, raw })
        }
        Format::Pades { placement } => {
            let pdf = item
                .content
                .clone()
                .ok_or_else(|| SignError::Invalid(text!("error.job.pades_needs_document")))?;
            // Room for the CMS: the certificates, the signature, the signature timestamp, and a margin.
            let room = key.cert.len() + key.chain.iter().map(Vec::len).sum::<usize>() + 2 * 512 + 12_288 + 4_096;
            let prepared = pades::prepare_shared(
                pdf,
                pades::Kind::Signature { signing_time: now },
                placement,
                room,
                limits,
            )
            .map_err(|e| SignError::Invalid(e.text()))?;
            // PAdES: no signing-time attribute (the time is the signature dictionary's /M).
            spec.signing_time = None;
            let digest = match &item.fed {
                Some(fed) if fed.alg() == key.hash => prepared.digest_after(fed.clone()),
                _ => prepared.digest(key.hash),
            };
            let cms_der =
                cms::sign(&spec, Encapsulation::Detached { digest: &digest }, &mut sign).map_err(cms_error)?;
            Ok(Signed::Pades {
                prepared: Box::new(prepared),
                cms: cms_der,
                raw,
            })
        }
    }
}

/// What the token produced for one item.
enum Signed {
    Cades {
        p7s: Vec<u8>,
        raw: Vec<u8>,
    },
    Pades {
        prepared: Box<pades::Prepared>,
        cms: Vec<u8>,
        raw: Vec<u8>,
    },
}

/// Adds to a (timestamped) `.p7s` what the level asks: B-LT the chain's certificates (the TSA's too), CRLs and OCSP
/// responses in the SignedData; B-LTA an archive-time-stamp-v3 over all of it, one more timestamp recorded in `rows`.
async fn cades_levels(
    state: &Services,
    p7s: Vec<u8>,
    level: Level,
    chain: &[Vec<u8>],
    revocation: Option<&Revocation>,
    rows: &mut Vec<SignatureRow>,
) -> Result<Vec<u8>, SignError> {
    if level < Level::BLT {
        return Ok(p7s);
    }
    let internal = |e: cades::CadesError| SignError::Internal(e.to_string());
    let r = revocation.ok_or_else(|| SignError::Internal("no revocation data for B-LT".into()))?;
    let mut certs = chain.to_vec();
    certs.push(state.tsa.cert_der().to_vec());
    let mut p7s = cades::add_validation_data(&p7s, &certs, r).map_err(internal)?;
    if level == Level::BLTA {
        let request = cades::archive_request(&p7s).map_err(internal)?;
        let token = timestamp_of(state, request.hash, &request.imprint, None).await?.token;
        rows.push(crate::tsa::ledger_row(request.hash, &request.imprint, &token));
        p7s = cades::add_archive_timestamp(&p7s, &request, &token).map_err(internal)?;
    }
    Ok(p7s)
}

/// Embeds the CMS in the PDF, then adds what the level asks: B-LT the DSS with the chain's certificates (the TSA's
/// too), CRLs and OCSP responses; B-LTA a document timestamp over all of it.
async fn pades_levels(
    state: &Services,
    prepared: pades::Prepared,
    cms_der: &[u8],
    level: Level,
    chain: &[Vec<u8>],
    revocation: Option<&Revocation>,
    rows: &mut Vec<SignatureRow>,
) -> Result<Output, SignError> {
    let limits = crate::pdf::Limits::of(&state.settings);
    let signed = prepared
        .finish_parts(cms_der)
        .map_err(|e| SignError::Invalid(e.text()))?;
    if level < Level::BLT {
        return Ok(signed);
    }
    // The long-term levels read the signed file again, whole.
    let r = revocation.ok_or_else(|| SignError::Internal("no revocation data for B-LT".into()))?;
    let mut certs = chain.to_vec();
    certs.push(state.tsa.cert_der().to_vec());
    let (p, c, crls, ocsps) = (signed.into_vec(), certs, r.crls.clone(), r.ocsp_responses.clone());
    let pdf = tokio::task::spawn_blocking(move || pades::add_dss(&p, &c, &crls, &ocsps, &limits))
        .await
        .map_err(|e| SignError::Internal(e.to_string()))?
        .map_err(|e| SignError::Invalid(e.text()))?;
    if level == Level::BLTA {
        let p = Arc::new(pdf);
        let prepared = tokio::task::spawn_blocking(move || {
            pades::prepare_shared(
                p,
                pades::Kind::DocumentTimestamp,
                &pades::Placement::Invisible,
                16_384,
                &limits,
            )
        })
        .await
        .map_err(|e| SignError::Internal(e.to_string()))?
        .map_err(|e| SignError::Invalid(e.text()))?;
        let imprint = prepared.digest(HashAlg::Sha256);
        let token = timestamp(state, &imprint).await?;
        rows.push(crate::tsa::ledger_row(HashAlg::Sha256, &imprint, &token));
        return prepared.finish_parts(&token).map_err(|e| SignError::Invalid(e.text()));
    }
    Ok(Output::whole(pdf))
}

/// The CRLs of both CAs and an OCSP response for the signer: validation data for the whole chain.
pub async fn revocation_data(state: &Services, cert_der: &[u8]) -> Result<Revocation, SignError> {
    use crate::ca::revocation;
    let unavailable = |e: crate::ca::CaError| SignError::Internal(format!("revocation data: {e}"));
    let cert = <x509_cert::Certificate as der::Decode>::from_der(cert_der)
        .map_err(|e| SignError::Internal(format!("stored certificate: {e}")))?;
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
    // The TSA's certificate is in the chain of every timestamp: its status too.
    let tsa = revocation::ocsp_for(&state.db, &state.hsm, &state.ca, clock, state.tsa.cert())
        .await
        .map_err(unavailable)?;
    Ok(Revocation {
        crls: vec![issuing, root],
        ocsp_responses: vec![ocsp, tsa],
    })
}

/// A signature timestamp from Parafa's TSA over a SHA-256 imprint (the DER TimeStampToken, with the TSA's
/// certificates).
pub async fn timestamp(state: &Services, imprint: &[u8]) -> Result<Vec<u8>, SignError> {
    Ok(timestamp_of(state, HashAlg::Sha256, imprint, None).await?.token)
}

/// A timestamp from Parafa's TSA over `digest` (made with `hash`), with the requester's nonce if any; the HSM work
/// off the async runtime.
pub async fn timestamp_of(
    state: &Services,
    hash: HashAlg,
    digest: &[u8],
    nonce: Option<der::asn1::Int>,
) -> Result<crate::tsa::Timestamp, SignError> {
    let (tsa, hsm, clock, digest) = (
        state.tsa.clone(),
        state.hsm.clone(),
        state.clock.clone(),
        digest.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        let mut request = crate::tsa::TimestampRequest::new(hash, &digest);
        request.nonce = nonce;
        crate::tsa::timestamp(&tsa, &hsm, clock.as_ref(), &request)
    })
    .await
    .map_err(|e| SignError::Internal(e.to_string()))?
    .map_err(|e| SignError::Internal(format!("timestamp: {e}")))
}
