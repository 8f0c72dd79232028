//! The RFC 3161 timestamp authority: one time-stamping unit whose key lives in the token (`CKA_ID` `tsa`) with a
//! certificate from the issuing CA (extendedKeyUsage id-kp-timeStamping, critical), both made on first start next
//! to the CA's.
//!
//! [`timestamp`] makes a TimeStampToken for a message imprint; it is what `POST /tsa` serves (through
//! [`protocol::answer`]) and what signature and document timestamps of CAdES and PAdES call. Nothing here is
//! process-local state: the serial number comes from the token's random generator, the time from the app's
//! [`Clock`], so any number of instances can issue timestamps at once without coordinating.

pub mod access;
pub mod credentials;
pub mod protocol;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, Int, OctetString};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;
use x509_tsp::{Accuracy, MessageImprint, TspVersion, TstInfo};

use crate::ca::{self, Ca, CaError};
use crate::clock::Clock;
use crate::cms;
use crate::config::Settings;
use crate::db::credentials::{CertificateRow, CertificateStatus};
use crate::db::{self, Db, DbError};
use crate::hsm::{HashAlg, Hsm, HsmError, KeySpec};

/// id-ct-TSTInfo (RFC 3161 §2.4.2): the eContentType of a TimeStampToken.
pub const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// The `ca_keys` role of the TSA key and certificate.
const ROLE: &str = "tsa";
/// `CKA_ID` of the TSA key in the token.
const KEY_ID: &str = "tsa";
/// Random bytes of a serial number: 128 bits, of which 126 are random once the sign bit is cleared and the next
/// one set (a positive INTEGER whose DER never needs a leading zero byte).
const SERIAL_BYTES: usize = 16;

/// What went wrong making a timestamp or provisioning the TSA.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("the TSA issues timestamps under policy {accepted} only, not under {requested}")]
    UnacceptedPolicy {
        requested: ObjectIdentifier,
        accepted: ObjectIdentifier,
    },
    #[error("the message imprint has {got} bytes where {hash:?} gives {expected}")]
    DigestLength { hash: HashAlg, expected: usize, got: usize },
    #[error("the TSA certificate is not valid at {0} (Unix seconds): it must be renewed")]
    CertificateNotValid(i64),
    #[error("the clock reads {0} (Unix seconds), which cannot be a genTime")]
    Time(i64),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("encoding the timestamp failed: {0}")]
    Der(#[from] der::Error),
    #[error("the timestamp token could not be built: {0}")]
    Cms(String),
    #[error("the TSA certificate is in the database but its key {0:?} is not in the token: the token and the database do not belong together")]
    KeyMissing(String),
    #[error("invalid TSA setting: {0}")]
    Settings(String),
    #[error("a provisioning task failed: {0}")]
    Task(String),
}

/// What a timestamp is requested for.
#[derive(Debug, Clone)]
pub struct TimestampRequest<'a> {
    /// The hash algorithm of the imprint.
    pub hash: HashAlg,
    /// The digest of the timestamped data (for a signature timestamp: of the signature value).
    pub digest: &'a [u8],
    /// Whether the request's hash AlgorithmIdentifier carried NULL parameters (OpenSSL writes them), so that the
    /// token's messageImprint repeats the request's byte for byte. False leaves them out (RFC 5754).
    pub null_parameters: bool,
    /// A nonce to echo, as the request's INTEGER.
    pub nonce: Option<Int>,
    /// The policy the requester asks for; anything but the TSA's policy is refused.
    pub policy: Option<ObjectIdentifier>,
    /// Whether the token carries the TSA certificate (and the issuing CA's): RFC 3161 `certReq`.
    pub cert_req: bool,
}

impl<'a> TimestampRequest<'a> {
    /// A request for `digest` under the TSA's own policy, without nonce, carrying the certificates (what a CAdES
    /// or PAdES signature timestamp wants).
    pub fn new(hash: HashAlg, digest: &'a [u8]) -> TimestampRequest<'a> {
        TimestampRequest {
            hash,
            digest,
            null_parameters: false,
            nonce: None,
            policy: None,
            cert_req: true,
        }
    }
}

/// A timestamp just made.
#[derive(Debug, Clone)]
pub struct Timestamp {
    /// The TimeStampToken: a DER ContentInfo holding a SignedData over a TSTInfo.
    pub token: Vec<u8>,
    /// Lower-case hex of the TSTInfo serial number.
    pub serial: String,
    /// genTime, Unix seconds.
    pub gen_time: i64,
}

/// The time-stamping unit: its key in the token, its certificate and the settings every token states.
#[derive(Debug, Clone)]
pub struct Tsa {
    key_id: Vec<u8>,
    spec: KeySpec,
    cert: Certificate,
    cert_der: Vec<u8>,
    /// The certificates above the TSA's that a token with certReq carries: the issuing CA's.
    chain_der: Vec<Vec<u8>>,
    policy: ObjectIdentifier,
    accuracy: Option<Accuracy>,
    name: Option<GeneralName>,
    /// The TSTInfo's extensions, the same in every token: qcStatements with esi4-qtstStatement-1 (a qualified
    /// electronic time-stamp says so, ETSI EN 319 422 §9.1; whether it is one is for the trusted list to confirm).
    extensions: Vec<x509_cert::ext::Extension>,
    /// Requests per minute to `POST /tsa` on this instance (all callers).
    pub limit: crate::ratelimit::RateLimit,
    /// Anonymous requests per minute on this instance, when the anonymous mode is on.
    pub anonymous_limit: crate::ratelimit::RateLimit,
    /// Basic credentials checked lately (see [`credentials`]).
    pub credentials: Arc<credentials::CheckedCredentials>,
}

impl Tsa {
    /// Loads the TSA key and certificate, creating them on first start: a key pair in the token (a key left by an
    /// interrupted start is reused) and a certificate from the issuing CA, stored in `ca_keys` (role `tsa`) and in
    /// `certificates`, so that the OCSP responder answers for it and the CRL can list it. A second start, or a
    /// second instance, finds the row and checks the key is in the token.
    pub async fn provision(
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        clock: &dyn Clock,
        ca: &Ca,
    ) -> Result<Tsa, TsaError> {
        let t = &settings.tsa;
        let policy = ObjectIdentifier::new(&t.policy)
            .map_err(|e| TsaError::Settings(format!("policy {:?} is not an OID: {e}", t.policy)))?;
        let row = match db::ca::get(db, ROLE).await? {
            Some(row) => row,
            None => create(db, hsm, settings, clock, ca).await?,
        };
        let key_id = row.key_id.clone().into_bytes();
        let h = hsm.clone();
        let kid = key_id.clone();
        let present = tokio::task::spawn_blocking(move || h.has_private_key(&kid))
            .await
            .map_err(|e| TsaError::Task(e.to_string()))??;
        if !present {
            return Err(TsaError::KeyMissing(row.key_id));
        }
        let cert_der = db::unb64(&row.cert_der, "ca_keys.cert_der")?;
        let cert = Certificate::from_der(&cert_der)?;
        let spec = row
            .key_spec
            .parse()
            .map_err(|_| TsaError::Db(DbError::Corrupt("ca_keys.key_spec")))?;
        if spec != t.key {
            tracing::warn!(
                stored = %spec,
                configured = %t.key,
                "the TSA key was made with another key type than tsa.key now names; it stays in use"
            );
        }
        list_certificate(db, clock, &cert, &cert_der, &row.subject).await?;
        let accuracy = (t.accuracy_secs > 0 || t.accuracy_millis > 0).then(|| Accuracy {
            seconds: (t.accuracy_secs > 0).then_some(u64::from(t.accuracy_secs)),
            millis: (t.accuracy_millis > 0).then_some(t.accuracy_millis as i16),
            micros: None,
        });
        let name = t
            .include_tsa_name
            .then(|| GeneralName::DirectoryName(cert.tbs_certificate.subject.clone()));
        let extensions = vec![x509_cert::ext::Extension {
            extn_id: ca::profile::ID_PE_QC_STATEMENTS,
            critical: false,
            extn_value: OctetString::new(ca::profile::bare_qc_statements(&[ca::profile::QTST_STATEMENT])?)?,
        }];
        Ok(Tsa {
            key_id,
            spec,
            cert,
            cert_der,
            chain_der: vec![ca.issuing.der.clone()],
            policy,
            accuracy,
            name,
            extensions,
            limit: crate::ratelimit::RateLimit::per_minute(settings.tsa_ocsp.tsa_per_minute),
            anonymous_limit: crate::ratelimit::RateLimit::per_minute(settings.tsa_ocsp.tsa_anonymous_per_minute),
            credentials: Arc::default(),
        })
    }

    /// The TSA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The TSA certificate.
    pub fn cert(&self) -> &Certificate {
        &self.cert
    }

    /// The certificates above the TSA's (the issuing CA's), for a validator or a PAdES DSS.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The policy every token names.
    pub fn policy(&self) -> ObjectIdentifier {
        self.policy
    }
}

/// Makes a TimeStampToken for `request`: a TSTInfo (version 1, the TSA's policy, the imprint, a 128-bit serial
/// from the token's random generator, genTime from `clock`, the configured accuracy, the nonce echoed, the TSA's
/// name when configured) in a CMS SignedData signed in the token, with content-type, message-digest and
/// signing-certificate-v2 as signed attributes; the certificates only when `cert_req` (RFC 3161 §2.4.1).
/// Blocking: one random draw and one signature in the token.
pub fn timestamp(
    tsa: &Tsa,
    hsm: &Hsm,
    clock: &dyn Clock,
    request: &TimestampRequest<'_>,
) -> Result<Timestamp, TsaError> {
    if let Some(requested) = request.policy {
        if requested != tsa.policy {
            return Err(TsaError::UnacceptedPolicy {
                requested,
                accepted: tsa.policy,
            });
        }
    }
    if request.digest.len() != request.hash.output_len() {
        return Err(TsaError::DigestLength {
            hash: request.hash,
            expected: request.hash.output_len(),
            got: request.digest.len(),
        });
    }
    let now = clock.now();
    let validity = &tsa.cert.tbs_certificate.validity;
    if now < ca::unix(&validity.not_before) || now > ca::unix(&validity.not_after) {
        return Err(TsaError::CertificateNotValid(now));
    }
    let gen_time = u64::try_from(now)
        .ok()
        .and_then(|secs| GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).ok())
        .ok_or(TsaError::Time(now))?;

    let mut serial = hsm.random(SERIAL_BYTES)?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial_hex = hex::encode(&serial[..]);

    let tst = TstInfo {
        version: TspVersion::V1,
        policy: tsa.policy,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                oid: request.hash.oid(),
                parameters: request.null_parameters.then(|| Any::from(der::asn1::Null)),
            },
            hashed_message: OctetString::new(request.digest)?,
        },
        serial_number: Int::new(&serial)?,
        gen_time,
        accuracy: tsa.accuracy.clone(),
        ordering: false,
        nonce: request.nonce.clone(),
        tsa: tsa.name.clone(),
        extensions: Some(tsa.extensions.clone()),
    };
    let tst_der = tst.to_der()?;

    let hash = tsa.spec.default_hash();
    let mechanism = tsa.spec.default_mechanism(hash);
    let spec = cms::SignerSpec {
        cert_der: &tsa.cert_der,
        chain_der: if request.cert_req { &tsa.chain_der } else { &[] },
        hash,
        mechanism,
        // genTime is the time the token states; a signing-time beside it would only be a second, unchecked one.
        signing_time: None,
        content_type: ID_CT_TST_INFO,
    };
    let token = cms::sign(&spec, cms::Encapsulation::Attached(&tst_der), |digest| {
        hsm.sign_digest(&tsa.key_id, mechanism, digest)
    })
    .map_err(|e| TsaError::Cms(e.to_string()))?;
    let token = if request.cert_req {
        token
    } else {
        without_certificates(&token)?
    };
    tracing::info!(
        serial = %serial_hex,
        gen_time = now,
        hash = ?request.hash,
        cert_req = request.cert_req,
        "timestamp issued"
    );
    Ok(Timestamp {
        token,
        serial: serial_hex,
        gen_time: now,
    })
}

/// The token without `SignedData.certificates`, which RFC 3161 §2.4.1 forbids when certReq is false. The CMS
/// builder always includes the signer's certificate; the signature covers only the signed attributes, which this
/// re-encoding leaves byte for byte as they were (they were built in DER).
fn without_certificates(content_info_der: &[u8]) -> Result<Vec<u8>, TsaError> {
    let content_info = ::cms::content_info::ContentInfo::from_der(content_info_der)?;
    let mut signed_data: ::cms::signed_data::SignedData = content_info.content.decode_as()?;
    signed_data.certificates = None;
    Ok(::cms::content_info::ContentInfo {
        content_type: content_info.content_type,
        content: Any::encode_from(&signed_data)?,
    }
    .to_der()?)
}

/// First start: the key pair in the token, the certificate from the issuing CA, the `ca_keys` row. Another
/// instance may store its row first; the row in force is returned either way.
async fn create(
    db: &Db,
    hsm: &Arc<Hsm>,
    settings: &Settings,
    clock: &dyn Clock,
    ca: &Ca,
) -> Result<db::ca::CaKeyRow, TsaError> {
    let t = &settings.tsa;
    let spec = t.key;
    let h = hsm.clone();
    // A key left by an interrupted first start is reused rather than duplicated.
    let spki = tokio::task::spawn_blocking(move || match h.public_key(KEY_ID.as_bytes(), spec)? {
        Some(spki) => Ok::<_, HsmError>(spki),
        None => h.generate_key_pair(spec, KEY_ID.as_bytes(), "Parafa TSA key"),
    })
    .await
    .map_err(|e| TsaError::Task(e.to_string()))??;

    let subject = ca::profile::ca_name(&settings.ca.country, &settings.ca.organization, &t.common_name)?;
    let now = clock.now();
    let not_before = now - 60;
    let ca_end = ca::unix(&ca.issuing.cert.tbs_certificate.validity.not_after);
    let not_after = (now + i64::from(t.validity_days) * 86_400).min(ca_end);
    let (h, issuer) = (hsm.clone(), ca.clone());
    let issued = tokio::task::spawn_blocking(move || issuer.issue_tsa(&h, subject, &spki, not_before, not_after))
        .await
        .map_err(|e| TsaError::Task(e.to_string()))??;
    let row = db::ca::CaKeyRow {
        role: ROLE.into(),
        key_id: KEY_ID.into(),
        key_spec: spec.as_str().into(),
        cert_der: db::b64(&issued.der),
        subject: t.common_name.clone(),
        not_after: issued.not_after,
    };
    let stored = db::ca::insert_or_get(db, &row, now).await?;
    if stored.cert_der == row.cert_der {
        tracing::info!(serial = %issued.serial, subject = %t.common_name, "created the TSA certificate");
        let event = crate::audit::Event {
            actor: crate::audit::SYSTEM,
            action: "tsa.create",
            target: ROLE,
            outcome: "ok",
            client: "provisioning",
            details: serde_json::json!({
                "serial": issued.serial,
                "subject": t.common_name,
                "key": spec.as_str(),
                "not_after": issued.not_after,
            }),
        };
        crate::audit::record(db, clock, event).await?;
    }
    Ok(stored)
}

/// Records the TSA certificate in `certificates` (no credential) unless it is there: the OCSP responder and the
/// CRL know the issuing CA's certificates from that table. Runs on every start, so a start interrupted between
/// the `ca_keys` row and this one is completed by the next.
async fn list_certificate(
    db: &Db,
    clock: &dyn Clock,
    cert: &Certificate,
    cert_der: &[u8],
    subject: &str,
) -> Result<(), TsaError> {
    let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    if db::credentials::certificate(db, &serial).await?.is_some() {
        return Ok(());
    }
    let row = CertificateRow {
        serial: serial.clone(),
        issuer_role: "issuing".into(),
        credential_id: None,
        subject: subject.into(),
        cert_der: db::b64(cert_der),
        not_before: ca::unix(&cert.tbs_certificate.validity.not_before),
        not_after: ca::unix(&cert.tbs_certificate.validity.not_after),
        status: CertificateStatus::Valid,
    };
    if let Err(e) = db::credentials::insert_certificate(db.writer(), &row, clock.now()).await {
        // Another instance starting at the same time may have inserted it first.
        if db::credentials::certificate(db, &serial).await?.is_none() {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The ledger row of a timestamp over `imprint`, made with `hash` (a debited timestamp is recorded as a
/// signature of kind `timestamp`: the hash of its token, not the token).
pub fn ledger_row(hash: HashAlg, imprint: &[u8], token: &[u8]) -> db::signing::SignatureRow {
    use base64::Engine;
    db::signing::SignatureRow {
        id: uuid::Uuid::now_v7().to_string(),
        digest: hex::encode(imprint),
        hash_algo: hash.oid().to_string(),
        sign_algo: "timestamp".into(),
        signature: base64::engine::general_purpose::STANDARD.encode(HashAlg::Sha256.digest(token)),
        kind: "timestamp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_tsa_settings_default_to_the_etsi_policy_one_second_and_p256() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!(s.tsa.policy, "0.4.0.2023.1.1");
        assert_eq!((s.tsa.accuracy_secs, s.tsa.accuracy_millis), (1, 0));
        assert_eq!(s.tsa.key, KeySpec::P256);
        assert_eq!(s.tsa.max_request_bytes, 16 * 1024);
        let s = Settings::load_from(None, &env(&[("PARAFA_TSA_POLICY", "1.3.6.1.4.1.99999.1")])).unwrap();
        assert_eq!(s.tsa.policy, "1.3.6.1.4.1.99999.1");
        let err = Settings::load_from(None, &env(&[("PARAFA_TSA_POLICY", "not-an-oid")])).unwrap_err();
        assert!(err.to_string().contains("tsa.policy"), "{err}");
    }

    #[test]
    fn a_timestamp_request_for_a_signature_carries_the_certificates_and_no_nonce() {
        let digest = HashAlg::Sha256.digest(b"signature value");
        let r = TimestampRequest::new(HashAlg::Sha256, &digest);
        assert!(r.cert_req && r.nonce.is_none() && r.policy.is_none() && !r.null_parameters);
    }
}
