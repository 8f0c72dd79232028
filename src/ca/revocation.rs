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
use crate::db::{self, Db};
use crate::hsm::Hsm;

/// How long a CRL or an OCSP answer is valid (nextUpdate − thisUpdate), in seconds.
pub const VALIDITY_SECS: i64 = 24 * 3600;
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
        return Err(CaError::Invalid(format!(
            "unknown revocation reason {reason:?}: use one of {}",
            REASONS.join(", ")
        )));
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
/// gets `malformedRequest`. A nonce in the request is echoed.
pub async fn ocsp(
    db: &Db,
    hsm: &Arc<Hsm>,
    ca: &Ca,
    clock: &dyn Clock,
    request: &[u8],
    limits: &OcspLimits,
) -> Result<Vec<u8>, CaError> {
    let Some(req) = parse_request(request, limits) else {
        return Ok(OcspResponse::malformed_request().to_der()?);
    };
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
    let mut responses = Vec::with_capacity(list.len());
    for r in list {
        let id = &r.req_cert;
        let serial = hex::encode(id.serial_number.as_bytes());
        let status = match issuer_for(ca, id) {
            Some(issuer) if issuer.role == signer.role => status_of(db, ca, issuer, &serial).await?,
            _ => CertStatus::unknown(),
        };
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
        response_extensions: req.tbs_request.request_extensions.as_ref().and_then(|exts| {
            let nonce: Vec<Extension> = exts
                .iter()
                .filter(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE)
                .cloned()
                .collect();
            (!nonce.is_empty()).then_some(nonce)
        }),
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
    Ok(OcspResponse::successful(basic)?.to_der()?)
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
    if row.status == "revoked" {
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
    ocsp(db, hsm, ca, clock, &der, &limits).await
}
