//! Revocation and status: revoking a certificate (its credential stops signing at once), CRLs signed in the token
//! (regenerated when a revocation is newer than the last CRL, and before the last one's nextUpdate), and an RFC 6960
//! OCSP responder whose answers the issuing CA signs itself.

use std::sync::Arc;

use const_oid::db::rfc5912::ID_SHA_1;
use der::asn1::{GeneralizedTime, OctetString};
use der::{Decode, Encode};
use sha1::Digest as _;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse, Version,
};

use super::{x509_time, Ca, CaError, CaKey};
use crate::clock::Clock;
use crate::db::credentials::CertificateStatus;
use crate::db::{self, Db};
use crate::hsm::Hsm;

/// How long a CRL or an OCSP answer is valid (nextUpdate − thisUpdate), in seconds.
pub const VALIDITY_SECS: i64 = 24 * 3600;
/// The longest OCSP nonce accepted, in bytes (RFC 8954 §2.1: 1 to 32).
pub const MAX_NONCE_BYTES: usize = 32;
/// The most OCSP answers kept per instance.
const OCSP_CACHE_ENTRIES: usize = 10_000;

/// Signed OCSP answers reused for `tsa_ocsp.ocsp_cache_secs` (RFC 5019 §2.1 style: a response made once serves
/// every request without a nonce for the same certificates). The key is the certificates asked about *and* the
/// statuses just read from the database, so a changed status (a revocation, also by another instance) never
/// matches a cached answer: the next request after a revocation is answered `revoked` at once. Per instance.
#[derive(Debug, Clone)]
pub struct OcspCache {
    secs: i64,
    entries: Arc<std::sync::Mutex<CachedAnswers>>,
}

/// Answers by the hash of (certificates asked, their statuses): when each was signed, and its DER.
type CachedAnswers = std::collections::HashMap<[u8; 32], (i64, Vec<u8>)>;

impl OcspCache {
    /// A cache keeping answers `secs` seconds (0: none kept).
    pub fn new(secs: i64) -> OcspCache {
        OcspCache {
            secs,
            entries: Arc::default(),
        }
    }

    fn get(&self, key: &[u8; 32], now: i64) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| *at <= now && now < at + self.secs)
            .map(|(_, der)| der.clone())
    }

    fn put(&self, key: [u8; 32], now: i64, der: &[u8]) {
        if self.secs <= 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= OCSP_CACHE_ENTRIES {
            entries.retain(|_, (at, _)| now < *at + self.secs);
            if entries.len() >= OCSP_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now, der.to_vec()));
    }
}

/// The request's nonce extension, if any: `Ok(None)` without one, `Err(())` when its length is outside 1–32 bytes.
fn nonce_of(req: &OcspRequest) -> Result<Option<Extension>, ()> {
    let Some(ext) = req
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE)
    else {
        return Ok(None);
    };
    // Nonce ::= OCTET STRING inside extnValue; some clients put the bare bytes: their length counts then.
    let value = ext.extn_value.as_bytes();
    let len = OctetString::from_der(value).map_or(value.len(), |n| n.as_bytes().len());
    if (1..=MAX_NONCE_BYTES).contains(&len) {
        Ok(Some(ext.clone()))
    } else {
        Err(())
    }
}
/// A CRL is regenerated when it is older than this, even without a new revocation.
pub const REFRESH_SECS: i64 = 3600;

/// The reasons Parafa accepts, as RFC 5280 names them (product rules §5: compromise → key_compromise, wrong data
/// → affiliation_changed, fraud → privilege_withdrawn, closure → cessation_of_operation).
pub const REASONS: [&str; 6] = [
    "unspecified",
    "key_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
    "privilege_withdrawn",
];

fn reason_code(name: &str) -> Option<CrlReason> {
    Some(match name {
        "unspecified" => CrlReason::Unspecified,
        "key_compromise" | "keyCompromise" => CrlReason::KeyCompromise,
        "affiliation_changed" | "affiliationChanged" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessation_of_operation" | "cessationOfOperation" => CrlReason::CessationOfOperation,
        "privilege_withdrawn" | "privilegeWithdrawn" => CrlReason::PrivilegeWithdrawn,
        _ => return None,
    })
}

/// Revokes the certificate with this serial (lower-case hex) for `reason`; false if it was revoked already.
pub async fn revoke(
    db: &Db,
    clock: &dyn Clock,
    serial: &str,
    reason: &str,
    actor: &str,
    client: &str,
) -> Result<bool, CaError> {
    if reason_code(reason).is_none() {
        return Err(CaError::UnknownReason {
            given: reason.to_owned(),
            known: REASONS.join(", "),
        });
    }
    let event = crate::audit::Event {
        actor,
        action: "certificate.revoke",
        target: serial,
        outcome: "ok",
        client,
        details: serde_json::json!({ "reason": reason }),
    };
    let row = crate::audit::row(clock, &event);
    Ok(db::ca::revoke(db, serial, reason, clock.now(), &row).await?)
}

fn issuer_of<'a>(ca: &'a Ca, role: &str) -> &'a CaKey {
    if role == "root" {
        &ca.root
    } else {
        &ca.issuing
    }
}

/// The current CRL of `role` (`issuing` or `root`), DER. A stored one is served while it is fresh and no
/// revocation is newer; otherwise a new one, with the next number, is signed in the token and stored.
pub async fn crl(db: &Db, hsm: &Arc<Hsm>, ca: &Ca, clock: &dyn Clock, role: &str) -> Result<Vec<u8>, CaError> {
    let revoked = db::ca::revoked_by(db, role).await?;
    let now = clock.now();
    let last = db::ca::crl(db, role).await?;
    if let Some((_, der, this_update, _, count)) = &last {
        let newest_revocation = revoked.iter().map(|r| r.revoked_at).max().unwrap_or(0);
        if *count == revoked.len() as i64 && newest_revocation <= *this_update && now < this_update + REFRESH_SECS {
            return Ok(db::unb64(der, "crls.der")?);
        }
    }
    let number = last.map(|l| l.0).unwrap_or(0) + 1;
    let issuer = issuer_of(ca, role).clone();
    let mut entries = Vec::with_capacity(revoked.len());
    for r in &revoked {
        let serial = SerialNumber::new(&hex::decode(&r.serial).map_err(|_| CaError::Invalid("stored serial".into()))?)?;
        let reason = r.reason.as_deref().and_then(reason_code);
        entries.push(RevokedCert {
            serial_number: serial,
            revocation_date: x509_time(r.revoked_at)?,
            crl_entry_extensions: match reason {
                Some(reason) => Some(vec![Extension {
                    extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                    critical: false,
                    extn_value: OctetString::new(reason.to_der()?)?,
                }]),
                None => None,
            },
        });
    }
    let hash = issuer.spec.default_hash();
    let mechanism = issuer.spec.default_mechanism(hash);
    let algorithm = mechanism.algorithm_identifier(hash);
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: algorithm.clone(),
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        this_update: x509_time(now)?,
        next_update: Some(x509_time(now + VALIDITY_SECS)?),
        revoked_certificates: if entries.is_empty() { None } else { Some(entries) },
        crl_extensions: Some(vec![
            Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
                critical: false,
                extn_value: OctetString::new(CrlNumber(der::asn1::Uint::new(&number.to_be_bytes())?).to_der()?)?,
            },
            Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
                critical: false,
                extn_value: OctetString::new(
                    AuthorityKeyIdentifier {
                        key_identifier: Some(OctetString::new(issuer.key_identifier())?),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    }
                    .to_der()?,
                )?,
            },
        ]),
    };
    let digest = hash.digest(&tbs.to_der()?);
    let h = hsm.clone();
    let key_id = issuer.key_id.clone();
    let signature = tokio::task::spawn_blocking(move || h.sign_digest(&key_id, mechanism, &digest))
        .await
        .map_err(|e| CaError::Invalid(format!("signing task failed: {e}")))??;
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: der::asn1::BitString::from_bytes(&signature)?,
    };
    let der = list.to_der()?;
    let stored = db::ca::store_crl(
        db,
        role,
        number,
        &db::b64(&der),
        now,
        now + VALIDITY_SECS,
        revoked.len() as i64,
    )
    .await?;
    if !stored {
        // Another instance published a CRL meanwhile: serve that one, so numbers never go back.
        if let Some((_, der, ..)) = db::ca::crl(db, role).await? {
            return Ok(db::unb64(&der, "crls.der")?);
        }
    }
    Ok(der)
}

fn sha1(data: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(data).to_vec()
}

/// Which of our CAs a CertID names (by the hashes of the issuer's name and key, SHA-1 or SHA-256).
fn issuer_for<'a>(ca: &'a Ca, id: &CertId) -> Option<&'a CaKey> {
    let hash = |data: &[u8]| -> Option<Vec<u8>> {
        if id.hash_algorithm.oid == ID_SHA_1 {
            Some(sha1(data))
        } else {
            crate::hsm::HashAlg::from_oid(&id.hash_algorithm.oid).map(|h| h.digest(data))
        }
    };
    [&ca.issuing, &ca.root].into_iter().find(|k| {
        let tbs = &k.cert.tbs_certificate;
        let name = tbs.subject.to_der().ok().and_then(|d| hash(&d));
        let key = hash(tbs.subject_public_key_info.subject_public_key.raw_bytes());
        name.as_deref() == Some(id.issuer_name_hash.as_bytes()) && key.as_deref() == Some(id.issuer_key_hash.as_bytes())
    })
}

fn ocsp_time(secs: i64) -> Result<OcspGeneralizedTime, der::Error> {
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs.max(0) as u64))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

/// What an OCSP request may ask (the `parsers` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspLimits {
    /// Its size in bytes, checked before it is parsed.
    pub max_request_bytes: usize,
    /// Certificates asked about (the requestList), each a database lookup.
    pub max_requests: usize,
}

impl OcspLimits {
    /// The limits of the `parsers` settings.
    pub fn of(parsers: &crate::config::ParserLimits) -> OcspLimits {
        OcspLimits {
            max_request_bytes: parsers.ocsp_max_request_bytes,
            max_requests: parsers.ocsp_max_requests,
        }
    }
}

/// The request parsed, when it is within `limits`: the size is checked before any parsing, so the parse is
/// bounded; an empty or too long requestList is refused as well.
pub fn parse_request(request: &[u8], limits: &OcspLimits) -> Option<OcspRequest> {
    if request.len() > limits.max_request_bytes {
        return None;
    }
    let req = OcspRequest::from_der(request).ok()?;
    let asked = req.tbs_request.request_list.len();
    (1..=limits.max_requests).contains(&asked).then_some(req)
}

/// Answers a DER OCSP request with a DER OCSP response: good, revoked (with time and reason) or unknown for each
/// certificate asked about, signed by the CA that issued them; a request that does not parse or is past `limits`
/// gets `malformedRequest`. A nonce of 1–32 bytes is echoed in a response signed for it, within the instance's
/// budget of such answers (past it the nonce is left out, as RFC 8954 §2.1 allows); a longer (or empty) one gets
/// `malformedRequest`. Without a nonce the answer comes from [`OcspCache`] when it holds one
/// for the same certificates with the same statuses.
pub async fn ocsp(
    db: &Db,
    hsm: &Arc<Hsm>,
    ca: &Ca,
    clock: &dyn Clock,
    request: &[u8],
    limits: &OcspLimits,
) -> Result<Vec<u8>, CaError> {
    answer(db, hsm, ca, clock, request, limits, true).await
}

/// [`ocsp`], reusing cached answers when `cached` (a signature's embedded validation data is always fresh: it must
/// be produced after the signing time).
async fn answer(
    db: &Db,
    hsm: &Arc<Hsm>,
    ca: &Ca,
    clock: &dyn Clock,
    request: &[u8],
    limits: &OcspLimits,
    cached: bool,
) -> Result<Vec<u8>, CaError> {
    let Some(req) = parse_request(request, limits) else {
        return Ok(OcspResponse::malformed_request().to_der()?);
    };
    let Ok(mut nonce) = nonce_of(&req) else {
        tracing::info!("OCSP request refused: a nonce outside 1 to 32 bytes");
        return Ok(OcspResponse::malformed_request().to_der()?);
    };
    // A nonce asks for a signature of its own; past the instance's budget for those, the nonce is left out and the
    // answer may come from the cache (RFC 8954 §2.1: a responder may ignore the nonce).
    if cached && nonce.is_some() && ca.ocsp_fresh_limit.take().is_err() {
        tracing::debug!("OCSP nonce ignored: the budget of fresh answers is spent");
        nonce = None;
    }
    let list = &req.tbs_request.request_list;
    let now = clock.now();
    // One signer per response: the CA named by the first request (all must share it, as clients send them).
    let Some(signer) = issuer_for(ca, &list[0].req_cert) else {
        return Ok(OcspResponse {
            response_status: x509_ocsp::OcspResponseStatus::Unauthorized,
            response_bytes: None,
        }
        .to_der()?);
    };
    let mut statuses = Vec::with_capacity(list.len());
    for r in list {
        let id = &r.req_cert;
        let serial = hex::encode(id.serial_number.as_bytes());
        statuses.push(match issuer_for(ca, id) {
            Some(issuer) if issuer.role == signer.role => status_of(db, ca, issuer, &serial).await?,
            _ => CertStatus::unknown(),
        });
    }
    let cache_key = {
        let mut h = sha2::Sha256::new();
        for (r, status) in list.iter().zip(&statuses) {
            h.update(r.req_cert.to_der()?);
            h.update(status.to_der()?);
        }
        <[u8; 32]>::from(h.finalize())
    };
    if cached && nonce.is_none() {
        if let Some(der) = ca.ocsp_cache.get(&cache_key, now) {
            return Ok(der);
        }
    }
    let mut responses = Vec::with_capacity(list.len());
    for (r, status) in list.iter().zip(statuses) {
        let id = &r.req_cert;
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status: status,
            this_update: ocsp_time(now)?,
            next_update: Some(ocsp_time(now + VALIDITY_SECS)?),
            single_extensions: None,
        });
    }
    let key_hash = sha1(
        signer
            .cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    );
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash)?),
        produced_at: ocsp_time(now)?,
        responses,
        response_extensions: nonce.clone().map(|n| vec![n]),
    };
    let hash = signer.spec.default_hash();
    let mechanism = signer.spec.default_mechanism(hash);
    let algorithm = mechanism.algorithm_identifier(hash);
    let digest = hash.digest(&data.to_der()?);
    let h = hsm.clone();
    let key_id = signer.key_id.clone();
    let signature = tokio::task::spawn_blocking(move || h.sign_digest(&key_id, mechanism, &digest))
        .await
        .map_err(|e| CaError::Invalid(format!("signing task failed: {e}")))??;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: algorithm,
        signature: der::asn1::BitString::from_bytes(&signature)?,
        certs: None,
    };
    let der = OcspResponse::successful(basic)?.to_der()?;
    if nonce.is_none() {
        ca.ocsp_cache.put(cache_key, now, &der);
    }
    Ok(der)
}

/// The answer when this instance's OCSP rate limit is spent: `tryLater` (RFC 6960 §2.3), unsigned.
pub fn try_later() -> Result<Vec<u8>, CaError> {
    Ok(OcspResponse {
        response_status: x509_ocsp::OcspResponseStatus::TryLater,
        response_bytes: None,
    }
    .to_der()?)
}

async fn status_of(db: &Db, ca: &Ca, issuer: &CaKey, serial: &str) -> Result<CertStatus, CaError> {
    if issuer.role == "root" {
        // The root issued one certificate: the issuing CA's.
        let issuing = hex::encode(ca.issuing.cert.tbs_certificate.serial_number.as_bytes());
        return Ok(if issuing == serial {
            CertStatus::good()
        } else {
            CertStatus::unknown()
        });
    }
    let Some(row) = db::credentials::certificate(db, serial).await? else {
        return Ok(CertStatus::unknown());
    };
    if row.issuer_role != issuer.role {
        return Ok(CertStatus::unknown());
    }
    if row.status == CertificateStatus::Revoked {
        let revoked = db::ca::revocation_of(db, serial).await?;
        let (at, reason) = revoked.map(|r| (r.revoked_at, r.reason)).unwrap_or((0, None));
        return Ok(CertStatus::revoked(RevokedInfo {
            revocation_time: ocsp_time(at)?,
            revocation_reason: reason.as_deref().and_then(reason_code),
        }));
    }
    Ok(CertStatus::good())
}

/// An OCSP response about `cert` (issued by the issuing CA), as the responder would answer: for validation data
/// embedded in signatures (CAdES B-LT, the PDF DSS).
pub async fn ocsp_for(
    db: &Db,
    hsm: &Arc<Hsm>,
    ca: &Ca,
    clock: &dyn Clock,
    cert: &x509_cert::Certificate,
) -> Result<Vec<u8>, CaError> {
    let issuer = &ca.issuing.cert.tbs_certificate;
    let cert_id = CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&issuer.subject.to_der()?))?,
        issuer_key_hash: OctetString::new(sha1(issuer.subject_public_key_info.subject_public_key.raw_bytes()))?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    };
    let request = OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    let der = request.to_der()?;
    let limits = OcspLimits {
        max_request_bytes: der.len(),
        max_requests: 1,
    };
    answer(db, hsm, ca, clock, &der, &limits, false).await
}
