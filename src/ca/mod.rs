//! The internal certification authority: a root and an issuing CA ("Parafa Qualified CA") whose keys live in the
//! token, created on first start; certificates are built with x509-cert and signed by the HSM.

pub mod profile;
pub mod registry;
pub mod revocation;
pub mod routes;

use std::sync::Arc;

use der::asn1::BitString;
use der::{Decode, Encode};
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, Db, DbError};
use crate::hsm::{Hsm, HsmError, KeySpec};
pub use profile::{HolderSubject, PkiUrls};

/// What went wrong in the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("certificate encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("the {role} CA certificate is in the database but its key {key_id:?} is not in the token: the token and the database do not belong together")]
    KeyMissing { role: String, key_id: String },
    #[error("invalid certificate request: {0}")]
    Invalid(String),
    /// A revocation reason that RFC 5280 does not define (or that Parafa does not take).
    #[error("unknown revocation reason {given:?}: use one of {known}")]
    UnknownReason { given: String, known: String },
}

/// A CA key in the token with its certificate.
#[derive(Debug, Clone)]
pub struct CaKey {
    pub role: String,
    /// `CKA_ID` of the key in the token.
    pub key_id: Vec<u8>,
    pub spec: KeySpec,
    pub cert: Certificate,
    pub der: Vec<u8>,
}

impl CaKey {
    fn key_identifier(&self) -> Vec<u8> {
        profile::key_identifier(&self.cert.tbs_certificate.subject_public_key_info)
    }
}

/// The provisioned CA hierarchy.
#[derive(Debug, Clone)]
pub struct Ca {
    pub root: CaKey,
    pub issuing: CaKey,
    urls: PkiUrls,
    base: String,
    /// Signed OCSP answers reused for a short time (see [`revocation::OcspCache`]).
    pub ocsp_cache: revocation::OcspCache,
    /// OCSP requests per minute on this instance.
    pub ocsp_limit: crate::ratelimit::RateLimit,
    /// OCSP requests with a nonce signed afresh per minute on this instance (past it the nonce is ignored).
    pub ocsp_fresh_limit: crate::ratelimit::RateLimit,
}

/// A certificate just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: Certificate,
    pub der: Vec<u8>,
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl Ca {
    /// Loads the root and issuing CA, creating keys and certificates on first start. A second start (or a second
    /// instance) finds them in the database and checks their keys are in the token.
    ///
    /// The base of the URLs written into certificates is `public_url` when configured; otherwise the one stored at
    /// first start, which was `default_base` then (the address the first server bound).
    pub async fn provision(
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        clock: &dyn Clock,
        default_base: &str,
    ) -> Result<Ca, CaError> {
        let public = match &settings.public_url {
            Some(_) => settings.public_url(),
            None => db::ca::deployment_value(db, "public_url", default_base, clock.now()).await?,
        };
        let urls = PkiUrls {
            crl: format!("{public}/pki/crl"),
            ocsp: format!("{public}/pki/ocsp"),
            ca_issuers: format!("{public}/pki/issuing.crt"),
            pds: settings
                .ca
                .pds_url
                .clone()
                .unwrap_or_else(|| format!("{public}/pki/pds-en.pdf")),
            // An operator's own PDS URL names its own languages; the served Romanian PDS goes with the served one.
            pds_ro: match settings.ca.pds_url {
                Some(_) => None,
                None => Some(format!("{public}/pki/pds-ro.pdf")),
            },
        };
        let c = &settings.ca;
        let root = ensure(
            db,
            hsm,
            clock,
            "root",
            c.key,
            &c.root_common_name,
            c.root_validity_days,
            None,
            settings,
            &public,
        )
        .await?;
        let issuing = ensure(
            db,
            hsm,
            clock,
            "issuing",
            c.key,
            &c.issuing_common_name,
            c.issuing_validity_days,
            Some(&root),
            settings,
            &public,
        )
        .await?;
        Ok(Ca {
            root,
            issuing,
            urls,
            base: public,
            ocsp_cache: revocation::OcspCache::new(settings.tsa_ocsp.ocsp_cache_secs),
            ocsp_limit: crate::ratelimit::RateLimit::per_minute(settings.tsa_ocsp.ocsp_per_minute),
            ocsp_fresh_limit: crate::ratelimit::RateLimit::per_minute(settings.tsa_ocsp.ocsp_fresh_per_minute),
        })
    }

    /// Issues a holder's qualified certificate for `spki`, valid from `not_before` to `not_after` (Unix seconds).
    /// Blocking (one HSM signature).
    pub fn issue_holder(
        &self,
        hsm: &Hsm,
        subject: &HolderSubject,
        spki: &SubjectPublicKeyInfoOwned,
        not_before: i64,
        not_after: i64,
    ) -> Result<Issued, CaError> {
        let exts = profile::holder_extensions(subject, spki, &self.issuing.key_identifier(), &self.urls)?;
        self.issue_end_entity(hsm, subject.to_name()?, spki, not_before, not_after, exts)
    }

    /// Issues the time-stamping unit's certificate for `spki` (profile: [`profile::tsa_extensions`]), valid from
    /// `not_before` to `not_after` (Unix seconds, within the issuing CA's validity). Blocking (one HSM signature).
    pub fn issue_tsa(
        &self,
        hsm: &Hsm,
        subject: Name,
        spki: &SubjectPublicKeyInfoOwned,
        not_before: i64,
        not_after: i64,
    ) -> Result<Issued, CaError> {
        let exts = profile::tsa_extensions(spki, &self.issuing.key_identifier(), &self.urls)?;
        self.issue_end_entity(hsm, subject, spki, not_before, not_after, exts)
    }

    /// Signs an end-entity certificate with the issuing CA, within the CA's validity.
    fn issue_end_entity(
        &self,
        hsm: &Hsm,
        subject: Name,
        spki: &SubjectPublicKeyInfoOwned,
        not_before: i64,
        not_after: i64,
        extensions: Vec<x509_cert::ext::Extension>,
    ) -> Result<Issued, CaError> {
        if not_after <= not_before {
            return Err(CaError::Invalid("the certificate would end before it starts".into()));
        }
        if not_after > unix(&self.issuing.cert.tbs_certificate.validity.not_after) {
            return Err(CaError::Invalid("the certificate would outlive the issuing CA".into()));
        }
        sign_certificate(
            hsm,
            &self.issuing,
            self.issuing.cert.tbs_certificate.subject.clone(),
            subject,
            spki.clone(),
            not_before,
            not_after,
            extensions,
        )
    }

    /// The service's public base URL (for links in certificates and messages), without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.base
    }

    /// The certificate chain above a holder certificate: issuing CA, then root.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        vec![self.issuing.der.clone(), self.root.der.clone()]
    }
}

#[allow(clippy::too_many_arguments)]
async fn ensure(
    db: &Db,
    hsm: &Arc<Hsm>,
    clock: &dyn Clock,
    role: &str,
    spec: KeySpec,
    common_name: &str,
    validity_days: u32,
    parent: Option<&CaKey>,
    settings: &Settings,
    public: &str,
) -> Result<CaKey, CaError> {
    if let Some(row) = db::ca::get(db, role).await? {
        return from_row(hsm, row);
    }
    let key_id = format!("ca-{role}").into_bytes();
    let label = format!("Parafa {role} CA key");
    let h = hsm.clone();
    let (kid, l) = (key_id.clone(), label.clone());
    // A key left by an interrupted first start is reused rather than duplicated.
    let spki = tokio::task::spawn_blocking(move || match h.public_key(&kid, spec)? {
        Some(spki) => Ok::<_, HsmError>(spki),
        None => h.generate_key_pair(spec, &kid, &l),
    })
    .await
    .map_err(|e| CaError::Invalid(format!("key generation task failed: {e}")))??;

    let subject = profile::ca_name(&settings.ca.country, &settings.ca.organization, common_name)?;
    let now = clock.now();
    let not_before = now - 60;
    let not_after = now + i64::from(validity_days) * 86_400;
    let (issuer_name, signer, issuer_kid, exts_urls) = match parent {
        None => (subject.clone(), None, profile::key_identifier(&spki), None),
        Some(p) => (
            p.cert.tbs_certificate.subject.clone(),
            Some(p),
            p.key_identifier(),
            Some((format!("{public}/pki/root.crl"), format!("{public}/pki/ca.crt"))),
        ),
    };
    let exts = profile::ca_extensions(
        &spki,
        &issuer_kid,
        parent.map(|_| 0),
        exts_urls.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
    )?;
    let self_key = CaKey {
        role: role.into(),
        key_id: key_id.clone(),
        spec,
        cert: placeholder_cert(&spki)?,
        der: Vec::new(),
    };
    let signer = signer.cloned().unwrap_or(self_key);
    let h = hsm.clone();
    let issued = tokio::task::spawn_blocking(move || {
        sign_certificate(&h, &signer, issuer_name, subject, spki, not_before, not_after, exts)
    })
    .await
    .map_err(|e| CaError::Invalid(format!("signing task failed: {e}")))??;
    let row = db::ca::CaKeyRow {
        role: role.into(),
        key_id: String::from_utf8_lossy(&key_id).into_owned(),
        key_spec: spec.as_str().into(),
        cert_der: db::b64(&issued.der),
        subject: common_name.into(),
        not_after: issued.not_after,
    };
    let stored = db::ca::insert_or_get(db, &row, now).await?;
    if stored.cert_der == row.cert_der {
        tracing::info!(role, subject = common_name, "created the CA certificate");
        let event = crate::audit::Event {
            actor: crate::audit::SYSTEM,
            action: "ca.create",
            target: role,
            outcome: "ok",
            client: "provisioning",
            details: serde_json::json!({ "serial": issued.serial, "subject": common_name, "key": spec.as_str() }),
        };
        crate::audit::record(db, clock, event).await?;
    }
    from_row(hsm, stored)
}

pub(crate) fn from_row(hsm: &Hsm, row: db::ca::CaKeyRow) -> Result<CaKey, CaError> {
    let key_id = row.key_id.clone().into_bytes();
    if !hsm.has_private_key(&key_id)? {
        return Err(CaError::KeyMissing {
            role: row.role,
            key_id: row.key_id,
        });
    }
    let der = db::unb64(&row.cert_der, "ca_keys.cert_der")?;
    let cert = Certificate::from_der(&der)?;
    let spec = row
        .key_spec
        .parse()
        .map_err(|_| CaError::Db(DbError::Corrupt("ca_keys.key_spec")))?;
    Ok(CaKey {
        role: row.role,
        key_id,
        spec,
        cert,
        der,
    })
}

/// A stand-in holding only the subject key, so a self-signed root can be signed by "itself" through the same path.
pub(crate) fn placeholder_cert(spki: &SubjectPublicKeyInfoOwned) -> Result<Certificate, CaError> {
    let alg = spki.algorithm.clone();
    Ok(Certificate {
        tbs_certificate: TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[1])?,
            signature: alg.clone(),
            issuer: Name::default(),
            validity: Validity {
                not_before: x509_time(0)?,
                not_after: x509_time(0)?,
            },
            subject: Name::default(),
            subject_public_key_info: spki.clone(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: None,
        },
        signature_algorithm: alg,
        signature: BitString::from_bytes(&[])?,
    })
}

/// A random positive 128-bit serial number (RFC 5280 allows up to 20 octets; CA/B asks for 64 random bits).
fn random_serial() -> Result<(SerialNumber, String), der::Error> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok((SerialNumber::new(&bytes)?, hex::encode(bytes)))
}

/// Unix seconds as an X.509 Time (UTCTime until 2049, GeneralizedTime after, as RFC 5280 requires).
pub fn x509_time(secs: i64) -> Result<Time, der::Error> {
    let d = std::time::Duration::from_secs(secs.max(0) as u64);
    let dt = der::DateTime::from_unix_duration(d)?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(der::asn1::UtcTime::from_date_time(dt)?))
    } else {
        Ok(Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt)))
    }
}

/// An X.509 Time as Unix seconds.
pub fn unix(t: &Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Builds the TBSCertificate, hashes it, signs the hash in the token with the issuer's key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_certificate(
    hsm: &Hsm,
    issuer: &CaKey,
    issuer_name: Name,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    not_before: i64,
    not_after: i64,
    extensions: Vec<x509_cert::ext::Extension>,
) -> Result<Issued, CaError> {
    let hash = issuer.spec.default_hash();
    let mechanism = issuer.spec.default_mechanism(hash);
    let algorithm = mechanism.algorithm_identifier(hash);
    let (serial_number, serial) = random_serial()?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: algorithm.clone(),
        issuer: issuer_name,
        validity: Validity {
            not_before: x509_time(not_before)?,
            not_after: x509_time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let digest = hash.digest(&tbs.to_der()?);
    let signature = hsm.sign_digest(&issuer.key_id, mechanism, &digest)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature)?,
    };
    let der = cert.to_der()?;
    Ok(Issued {
        cert,
        der,
        serial,
        not_before,
        not_after,
    })
}

/// PEM of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_2050_are_utc_time_and_after_generalized_time() {
        assert!(matches!(x509_time(1_800_000_000).unwrap(), Time::UtcTime(_)));
        assert!(matches!(x509_time(2_600_000_000).unwrap(), Time::GeneralTime(_)));
        assert_eq!(unix(&x509_time(1_800_000_000).unwrap()), 1_800_000_000);
    }
}
