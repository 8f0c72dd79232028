//! CMS SignedData (RFC 5652) built around a signature made in the HSM.
//!
//! The signer's private key never leaves the token, so nothing here takes a key. [`prepare`] builds the signed
//! attributes and the digest the token has to sign; [`Prepared::finish`] puts the signature the token returned into
//! the SignerInfo and encodes the ContentInfo; [`sign`] does both around a closure for callers that sign in one go.
//! The same SignedData serves the signed evidence of issuance terms, CAdES `.p7s` files (attached or detached) and
//! PAdES (detached, no signing-time). [`add_unsigned_attribute`] and [`signature_value`] let a signature timestamp
//! (RFC 3161) be added afterwards.

use std::convert::Infallible;
use std::time::Duration;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_cert::Certificate;

use crate::hsm::{HashAlg, SignMechanism};

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A): the unsigned attribute holding a timestamp token taken over
/// the signature value.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// 2050-01-01T00:00:00Z in Unix seconds: from then on RFC 5652 §11.3 wants GeneralizedTime instead of UTCTime.
const YEAR_2050: u64 = 2_524_608_000;

/// RSASSA-PSS-params leave the salt length out when it is the default, 20 (DER omits DEFAULT values).
const PSS_DEFAULT_SALT_LEN: u32 = 20;

/// Where the signed content goes.
#[derive(Debug, Clone, Copy)]
pub enum Encapsulation<'a> {
    /// The content travels inside the SignedData (CAdES enveloping `.p7s`).
    Attached(&'a [u8]),
    /// Only the content's digest, made with [`SignerSpec::hash`], is signed; the content travels beside the
    /// SignedData (detached `.p7s`, PAdES, the evidence of accepted terms).
    Detached {
        /// The hash of the content.
        digest: &'a [u8],
    },
}

/// Who signs and how.
#[derive(Debug, Clone)]
pub struct SignerSpec<'a> {
    /// The signer's certificate (DER).
    pub cert_der: &'a [u8],
    /// Further certificates for `SignedData.certificates` (intermediates, root), DER.
    pub chain_der: &'a [Vec<u8>],
    /// The digest algorithm, for the content and for the signed attributes.
    pub hash: HashAlg,
    /// How the token signs the digest; its hash, for RSA, must be [`SignerSpec::hash`].
    pub mechanism: SignMechanism,
    /// The signing-time attribute, in Unix seconds; `None` leaves it out (PAdES takes the time from the PDF).
    pub signing_time: Option<i64>,
    /// The content type, `id-data` (`const_oid::db::rfc5911::ID_DATA`) unless the content is itself CMS.
    pub content_type: ObjectIdentifier,
}

/// What went wrong building or reading a SignedData. `E` is the error of the caller's signing closure.
#[derive(Debug, thiserror::Error)]
pub enum CmsError<E = Infallible> {
    #[error("the signer certificate is not a DER X.509 certificate: {0}")]
    SignerCertificate(#[source] der::Error),
    #[error("certificate {index} of the chain is not a DER X.509 certificate: {source}")]
    ChainCertificate { index: usize, source: der::Error },
    #[error("the content digest has {got} bytes where {hash:?} gives {expected}")]
    DigestLength { hash: HashAlg, expected: usize, got: usize },
    #[error("the mechanism signs {mechanism:?} digests but the SignedData uses {hash:?}")]
    MechanismHash { mechanism: HashAlg, hash: HashAlg },
    #[error("the signing time {0} (Unix seconds) cannot be encoded")]
    SigningTime(i64),
    #[error("the signature is empty")]
    EmptySignature,
    #[error("encoding the SignedData failed: {0}")]
    Encode(#[source] der::Error),
    #[error("not a DER ContentInfo holding a SignedData: {0}")]
    Parse(#[source] der::Error),
    #[error("the ContentInfo holds {0}, not a SignedData")]
    NotSignedData(ObjectIdentifier),
    #[error("the SignedData is not in canonical DER: re-encoding it would change bytes covered by its signature")]
    NotCanonical,
    #[error("the SignedData has no SignerInfo")]
    NoSignerInfo,
    #[error("the attribute value is not DER, or the attribute already holds it: {0}")]
    AttributeValue(#[source] der::Error),
    #[error("signing failed: {0}")]
    Signer(#[source] E),
}

/// A SignedData waiting for its signature: the signed attributes are fixed, so is the digest to sign.
///
/// [`prepare`] is deterministic: the same spec and content give the same digest, so a signing job that must wait
/// for the holder's authorisation can keep its inputs and prepare again when the signature arrives.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Everything but the SignerInfo.
    signed_data: SignedData,
    /// The SignerInfo with an empty signature.
    signer: SignerInfo,
    digest: Vec<u8>,
}

impl Prepared {
    /// The digest to sign: the spec's hash of the DER signed attributes (a SET OF, in DER order).
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The DER ContentInfo with `signature` as the token returned it (RSA: the raw signature; ECDSA: a DER
    /// ECDSA-Sig-Value, as `Hsm::sign_digest` gives them).
    pub fn finish(self, signature: Vec<u8>) -> Result<Vec<u8>, CmsError> {
        self.finish_with(signature)
    }

    fn finish_with<E>(self, signature: Vec<u8>) -> Result<Vec<u8>, CmsError<E>> {
        if signature.is_empty() {
            return Err(CmsError::EmptySignature);
        }
        let Prepared {
            mut signed_data,
            mut signer,
            ..
        } = self;
        signer.signature = OctetString::new(signature).map_err(CmsError::Encode)?;
        signed_data.signer_infos = SignerInfos(SetOfVec::try_from(vec![signer]).map_err(CmsError::Encode)?);
        encode_content_info(&signed_data)
    }
}

/// Builds the signed attributes (content-type, message-digest, signing-time when given, ESS
/// signing-certificate-v2) and the digest the token has to sign.
pub fn prepare(spec: &SignerSpec, content: Encapsulation) -> Result<Prepared, CmsError> {
    prepare_with(spec, content)
}

/// Builds a SignedData and has `sign` sign the digest of its signed attributes; returns the DER ContentInfo.
/// `sign` receives the digest and returns the signature as [`Prepared::finish`] takes it.
pub fn sign<E>(
    spec: &SignerSpec,
    content: Encapsulation,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, CmsError<E>> {
    let prepared = prepare_with(spec, content)?;
    let signature = sign(prepared.digest()).map_err(CmsError::Signer)?;
    prepared.finish_with(signature)
}

/// Adds an unsigned attribute (e.g. [`ID_AA_SIGNATURE_TIME_STAMP_TOKEN`] with a DER TimeStampToken) to the first
/// SignerInfo of a DER ContentInfo, next to the values it may already have. Only canonical DER is accepted, so that
/// nothing the signature covers changes on the way.
pub fn add_unsigned_attribute(
    content_info_der: &[u8],
    oid: ObjectIdentifier,
    value_der: &[u8],
) -> Result<Vec<u8>, CmsError> {
    let mut signed_data = decode_signed_data(content_info_der)?;
    // The decoder sorts every SET OF it reads: only if the input comes back unchanged can it be rewritten safely.
    if encode_content_info::<Infallible>(&signed_data)? != content_info_der {
        return Err(CmsError::NotCanonical);
    }
    let value = Any::from_der(value_der).map_err(CmsError::AttributeValue)?;
    let mut signers = signed_data.signer_infos.0.into_vec();
    let first = signers.first_mut().ok_or(CmsError::NoSignerInfo)?;
    let mut attributes = first.unsigned_attrs.take().map(SetOfVec::into_vec).unwrap_or_default();
    match attributes.iter_mut().find(|a| a.oid == oid) {
        Some(attribute) => attribute.values.insert(value).map_err(CmsError::AttributeValue)?,
        None => attributes.push(attribute(oid, value).map_err(CmsError::Encode)?),
    }
    // Rebuilt from vectors, because a changed element can change its place in the DER order of its set.
    first.unsigned_attrs = Some(SetOfVec::try_from(attributes).map_err(CmsError::Encode)?);
    signed_data.signer_infos = SignerInfos(SetOfVec::try_from(signers).map_err(CmsError::Encode)?);
    encode_content_info(&signed_data)
}

/// The signature value of the first SignerInfo of a DER ContentInfo: what a signature timestamp is taken over.
pub fn signature_value(content_info_der: &[u8]) -> Result<Vec<u8>, CmsError> {
    let signed_data = decode_signed_data(content_info_der)?;
    let first = signed_data.signer_infos.0.iter().next().ok_or(CmsError::NoSignerInfo)?;
    Ok(first.signature.as_bytes().to_vec())
}

fn prepare_with<E>(spec: &SignerSpec, content: Encapsulation) -> Result<Prepared, CmsError<E>> {
    let cert = Certificate::from_der(spec.cert_der).map_err(CmsError::SignerCertificate)?;
    let content_digest = match content {
        Encapsulation::Attached(bytes) => spec.hash.digest(bytes),
        Encapsulation::Detached { digest } if digest.len() == spec.hash.output_len() => digest.to_vec(),
        Encapsulation::Detached { digest } => {
            return Err(CmsError::DigestLength {
                hash: spec.hash,
                expected: spec.hash.output_len(),
                got: digest.len(),
            })
        }
    };
    let signature_algorithm = signature_algorithm(spec.mechanism, spec.hash)?;
    let signing_time = spec
        .signing_time
        .map(|t| signing_time(t).ok_or(CmsError::SigningTime(t)))
        .transpose()?;
    let attributes = signed_attributes(spec, &cert, &content_digest, signing_time).map_err(CmsError::Encode)?;
    let digest = spec.hash.digest(&attributes.to_der().map_err(CmsError::Encode)?);

    // RFC 5754: the SHA-2 digest algorithm identifiers go without parameters.
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: spec.hash.oid(),
        parameters: None,
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(attributes),
        signature_algorithm,
        signature: OctetString::new(Vec::new()).map_err(CmsError::Encode)?,
        unsigned_attrs: None,
    };
    let econtent = match content {
        Encapsulation::Attached(bytes) => {
            Some(Any::encode_from(&OctetString::new(bytes).map_err(CmsError::Encode)?).map_err(CmsError::Encode)?)
        }
        Encapsulation::Detached { .. } => None,
    };
    let signed_data = SignedData {
        // RFC 5652 §5.1: version 3 as soon as the content is not id-data, 1 otherwise (no attribute certificates,
        // no other certificate formats, issuerAndSerialNumber only).
        version: if spec.content_type == rfc5911::ID_DATA {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        },
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm]).map_err(CmsError::Encode)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: spec.content_type,
            econtent,
        },
        certificates: Some(certificates(cert, spec.cert_der, spec.chain_der)?),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    Ok(Prepared {
        signed_data,
        signer,
        digest,
    })
}

/// The signer's certificate and the chain. `certificates` is a SET OF, so DER puts them in its own order; a chain
/// that repeats a certificate is not an error, the copy is left out.
fn certificates<E>(
    signer: Certificate,
    signer_der: &[u8],
    chain_der: &[Vec<u8>],
) -> Result<CertificateSet, CmsError<E>> {
    let mut seen = vec![signer_der];
    let mut certs = vec![CertificateChoices::Certificate(signer)];
    for (index, der) in chain_der.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(|source| CmsError::ChainCertificate { index, source })?;
        if !seen.contains(&der.as_slice()) {
            seen.push(der);
            certs.push(CertificateChoices::Certificate(cert));
        }
    }
    SetOfVec::try_from(certs).map(CertificateSet).map_err(CmsError::Encode)
}

/// The signatureAlgorithm of the SignerInfo. RSA mechanisms carry their own hash, which must be the one the
/// SignedData declares, or a verifier would hash with one and check with the other.
fn signature_algorithm<E>(mechanism: SignMechanism, hash: HashAlg) -> Result<AlgorithmIdentifierOwned, CmsError<E>> {
    let check = |mechanism_hash: HashAlg| {
        if mechanism_hash == hash {
            Ok(())
        } else {
            Err(CmsError::MechanismHash {
                mechanism: mechanism_hash,
                hash,
            })
        }
    };
    match mechanism {
        SignMechanism::RsaPkcs1(h) => {
            check(h)?;
            Ok(mechanism.algorithm_identifier(hash))
        }
        SignMechanism::RsaPss {
            hash: h,
            mgf_hash,
            salt_len,
        } => {
            check(h)?;
            pss_algorithm(hash, mgf_hash, salt_len).map_err(CmsError::Encode)
        }
        SignMechanism::Ecdsa => Ok(mechanism.algorithm_identifier(hash)),
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1).
#[derive(Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    // trailerField is left to its DEFAULT, 1 (the only value RFC 4055 defines).
}

/// `id-RSASSA-PSS` with explicit parameters: absent ones would mean SHA-1, which the token did not use.
fn pss_algorithm(hash: HashAlg, mgf_hash: HashAlg, salt_len: usize) -> der::Result<AlgorithmIdentifierOwned> {
    // Inside RSASSA-PSS-params the hash identifiers carry NULL, as OpenSSL writes and CSC clients send them.
    let with_null = |h: HashAlg| AlgorithmIdentifierOwned {
        oid: h.oid(),
        parameters: Some(Any::from(der::asn1::Null)),
    };
    let salt_len = u32::try_from(salt_len).map_err(|_| der::Error::from(der::ErrorKind::Overflow))?;
    let params = RsaPssParams {
        hash: with_null(hash),
        mask_gen: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_MGF_1,
            parameters: Some(Any::encode_from(&with_null(mgf_hash))?),
        },
        salt_len: (salt_len != PSS_DEFAULT_SALT_LEN).then_some(salt_len),
    };
    Ok(AlgorithmIdentifierOwned {
        oid: rfc5912::ID_RSASSA_PSS,
        parameters: Some(Any::encode_from(&params)?),
    })
}

/// SigningCertificateV2 (RFC 5035 §3), without policies.
#[derive(Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// ESSCertIDv2 (RFC 5035 §4). hashAlgorithm is always left out: the hash is SHA-256, its DEFAULT, which DER omits.
#[derive(Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

/// IssuerSerial (RFC 5035 §4).
#[derive(Sequence)]
struct IssuerSerial {
    issuer: GeneralNames,
    serial_number: SerialNumber,
}

fn signed_attributes(
    spec: &SignerSpec,
    cert: &Certificate,
    content_digest: &[u8],
    signing_time: Option<Time>,
) -> der::Result<Attributes> {
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(HashAlg::Sha256.digest(spec.cert_der))?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(cert.tbs_certificate.issuer.clone())],
                serial_number: cert.tbs_certificate.serial_number.clone(),
            },
        }],
    };
    let mut attributes = vec![
        attribute(rfc5911::ID_CONTENT_TYPE, Any::encode_from(&spec.content_type)?)?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(content_digest)?)?,
        )?,
        attribute(
            rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2,
            Any::encode_from(&signing_certificate)?,
        )?,
    ];
    if let Some(time) = signing_time {
        attributes.push(attribute(rfc5911::ID_SIGNING_TIME, Any::encode_from(&time)?)?);
    }
    // The SET OF is sorted here, once: the digest and the SignerInfo both take these very bytes.
    SetOfVec::try_from(attributes)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5652 §11.3); `None` before 1970.
fn signing_time(unix_seconds: i64) -> Option<Time> {
    let seconds = u64::try_from(unix_seconds).ok()?;
    let since_epoch = Duration::from_secs(seconds);
    if seconds < YEAR_2050 {
        UtcTime::from_unix_duration(since_epoch).ok().map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(since_epoch)
            .ok()
            .map(Time::GeneralTime)
    }
}

fn encode_content_info<E>(signed_data: &SignedData) -> Result<Vec<u8>, CmsError<E>> {
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(signed_data).map_err(CmsError::Encode)?,
    }
    .to_der()
    .map_err(CmsError::Encode)
}

fn decode_signed_data(content_info_der: &[u8]) -> Result<SignedData, CmsError> {
    let content_info = ContentInfo::from_der(content_info_der).map_err(CmsError::Parse)?;
    if content_info.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(CmsError::NotSignedData(content_info.content_type));
    }
    content_info.content.decode_as().map_err(CmsError::Parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::DecodePem;

    /// A self-signed P-256 certificate (OpenSSL, valid to 2126): only its structure matters here.
    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUIG1WprScyK6+qrOEao5l/bgrWb4wCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUUGFyYWZhIENNUyB1bml0IHRlc3QwIBcNMjYxMTI1MDMxNzE3
WhgPMjEyNjExMDEwMzE3MTdaMB8xHTAbBgNVBAMMFFBhcmFmYSBDTVMgdW5pdCB0
ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1feuDnkpRo8FQRI3UkMhhUdK
2EeZaDtCr5e+n85/nAtpIhAQZSkBS/JLnBX6osbfBT7k7QEuUSiEwdC3lJoP/aNT
MFEwHQYDVR0OBBYEFH2QqJd4TXdfO2E1RE3IusYktrwRMB8GA1UdIwQYMBaAFH2Q
qJd4TXdfO2E1RE3IusYktrwRMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhAIV7LkeTTger12S+AHvZplNKxYUQmLRJJOcWuoNBGIEMAiEAyub+qEgq
ayN23kE9c2Nef5CSOn2QpCj1h9Ndmg7ee1Q=
-----END CERTIFICATE-----
";

    fn cert_der() -> Vec<u8> {
        Certificate::from_pem(CERT_PEM).unwrap().to_der().unwrap()
    }

    fn spec<'a>(cert_der: &'a [u8], chain: &'a [Vec<u8>], signing_time: Option<i64>) -> SignerSpec<'a> {
        SignerSpec {
            cert_der,
            chain_der: chain,
            hash: HashAlg::Sha256,
            mechanism: SignMechanism::Ecdsa,
            signing_time,
            content_type: rfc5911::ID_DATA,
        }
    }

    fn signer_info(content_info_der: &[u8]) -> SignerInfo {
        let signed_data = decode_signed_data(content_info_der).unwrap();
        assert_eq!(signed_data.signer_infos.0.len(), 1);
        signed_data.signer_infos.0.iter().next().unwrap().clone()
    }

    #[test]
    fn the_digest_to_sign_is_the_hash_of_the_der_signed_attributes_the_signer_info_carries() {
        let cert = cert_der();
        let chain = vec![cert.clone()];
        let spec = spec(&cert, &chain, Some(1_767_225_600));
        let prepared = prepare(&spec, Encapsulation::Attached(b"terms, version 3")).unwrap();
        let digest = prepared.digest().to_vec();
        assert_eq!(
            prepare(&spec, Encapsulation::Attached(b"terms, version 3"))
                .unwrap()
                .digest(),
            digest
        );
        let der = prepared.finish(vec![0x30, 0x00]).unwrap();

        let info = signer_info(&der);
        let attributes = info.signed_attrs.clone().unwrap();
        assert_eq!(HashAlg::Sha256.digest(&attributes.to_der().unwrap()), digest);
        let oids: Vec<_> = attributes.iter().map(|a| a.oid).collect();
        for oid in [
            rfc5911::ID_CONTENT_TYPE,
            rfc5911::ID_MESSAGE_DIGEST,
            rfc5911::ID_SIGNING_TIME,
            rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2,
        ] {
            assert!(oids.contains(&oid), "{oid} missing");
        }
        let message_digest = attributes.iter().find(|a| a.oid == rfc5911::ID_MESSAGE_DIGEST).unwrap();
        let value: OctetString = message_digest.values.get(0).unwrap().decode_as().unwrap();
        assert_eq!(value.as_bytes(), HashAlg::Sha256.digest(b"terms, version 3"));
        assert_eq!(info.version, CmsVersion::V1);
        assert_eq!(info.signature.as_bytes(), [0x30, 0x00]);
        assert_eq!(info.signature_algorithm.oid, rfc5912::ECDSA_WITH_SHA_256);

        let signed_data = decode_signed_data(&der).unwrap();
        assert_eq!(signed_data.version, CmsVersion::V1);
        assert_eq!(
            signed_data.certificates.unwrap().0.len(),
            1,
            "the signer's certificate repeated in the chain is included once"
        );
        let econtent: OctetString = signed_data.encap_content_info.econtent.unwrap().decode_as().unwrap();
        assert_eq!(econtent.as_bytes(), b"terms, version 3");
    }

    #[test]
    fn a_detached_signature_has_no_content_and_no_signing_time_when_none_is_given() {
        let cert = cert_der();
        let digest = HashAlg::Sha256.digest(b"a PDF byte range");
        let spec = spec(&cert, &[], None);
        let der = sign(&spec, Encapsulation::Detached { digest: &digest }, |d| {
            assert_eq!(d.len(), 32);
            Ok::<_, Infallible>(vec![1, 2, 3])
        })
        .unwrap();
        let signed_data = decode_signed_data(&der).unwrap();
        assert!(signed_data.encap_content_info.econtent.is_none());
        let info = signer_info(&der);
        let attributes = info.signed_attrs.unwrap();
        assert_eq!(attributes.len(), 3);
        assert!(attributes.iter().all(|a| a.oid != rfc5911::ID_SIGNING_TIME));
    }

    #[test]
    fn signing_time_is_utc_time_before_2050_and_generalized_time_from_then_on() {
        assert!(matches!(signing_time(1_767_225_600), Some(Time::UtcTime(_))));
        assert!(matches!(signing_time(YEAR_2050 as i64 - 1), Some(Time::UtcTime(_))));
        assert!(matches!(signing_time(YEAR_2050 as i64), Some(Time::GeneralTime(_))));
        assert!(signing_time(-1).is_none());
        let cert = cert_der();
        assert!(matches!(
            prepare(&spec(&cert, &[], Some(-1)), Encapsulation::Attached(b"x")),
            Err(CmsError::SigningTime(-1))
        ));
    }

    #[test]
    fn the_signing_certificate_v2_names_the_sha256_of_the_certificate_and_its_issuer_and_serial() {
        let cert = cert_der();
        let der = prepare(&spec(&cert, &[], None), Encapsulation::Attached(b"x"))
            .unwrap()
            .finish(vec![1])
            .unwrap();
        let attributes = signer_info(&der).signed_attrs.unwrap();
        let ess = attributes
            .iter()
            .find(|a| a.oid == rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2)
            .unwrap();
        let expected = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(HashAlg::Sha256.digest(&cert)).unwrap(),
                issuer_serial: IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(
                        Certificate::from_der(&cert).unwrap().tbs_certificate.issuer,
                    )],
                    serial_number: Certificate::from_der(&cert).unwrap().tbs_certificate.serial_number,
                },
            }],
        };
        assert_eq!(ess.values.get(0).unwrap().to_der().unwrap(), expected.to_der().unwrap());
        // SEQUENCE { SEQUENCE OF { SEQUENCE { OCTET STRING (no hashAlgorithm: SHA-256 is the DEFAULT) ...
        let value = ess.values.get(0).unwrap().to_der().unwrap();
        assert_eq!(value[0], 0x30);
        assert_eq!(value[2..4], [0x30, value[3]]);
        assert_eq!(value[4..7], [0x30, value[5], 0x04]);
    }

    #[test]
    fn inputs_that_cannot_make_a_valid_signature_are_refused() {
        let cert = cert_der();
        let short = [0u8; 20];
        assert!(matches!(
            prepare(&spec(&cert, &[], None), Encapsulation::Detached { digest: &short }),
            Err(CmsError::DigestLength {
                expected: 32,
                got: 20,
                ..
            })
        ));
        let mut rsa = spec(&cert, &[], None);
        rsa.mechanism = SignMechanism::RsaPkcs1(HashAlg::Sha384);
        assert!(matches!(
            prepare(&rsa, Encapsulation::Attached(b"x")),
            Err(CmsError::MechanismHash { .. })
        ));
        assert!(matches!(
            prepare(&spec(b"not a certificate", &[], None), Encapsulation::Attached(b"x")),
            Err(CmsError::SignerCertificate(_))
        ));
        let bad_chain = vec![b"junk".to_vec()];
        assert!(matches!(
            prepare(&spec(&cert, &bad_chain, None), Encapsulation::Attached(b"x")),
            Err(CmsError::ChainCertificate { index: 0, .. })
        ));
        let prepared = prepare(&spec(&cert, &[], None), Encapsulation::Attached(b"x")).unwrap();
        assert!(matches!(prepared.finish(Vec::new()), Err(CmsError::EmptySignature)));
        let failed = sign(&spec(&cert, &[], None), Encapsulation::Attached(b"x"), |_| {
            Err::<Vec<u8>, _>(std::fmt::Error)
        });
        assert!(matches!(failed, Err(CmsError::Signer(std::fmt::Error))));
    }

    #[test]
    fn rsa_pss_carries_its_parameters_as_csc_clients_send_them() {
        let alg = pss_algorithm(HashAlg::Sha256, HashAlg::Sha256, 222).unwrap();
        assert_eq!(alg.oid, rfc5912::ID_RSASSA_PSS);
        // SHA-256, MGF1 with SHA-256, salt 222: the same bytes OpenSSL writes for these parameters.
        let expected = concat!(
            "3035",
            "a00f300d06096086480165030402010500",
            "a11c301a06092a864886f70d010108300d06096086480165030402010500",
            "a204020200de"
        );
        assert_eq!(hex::encode(alg.parameters.unwrap().to_der().unwrap()), expected);
        let default_salt = pss_algorithm(HashAlg::Sha256, HashAlg::Sha256, 20).unwrap();
        assert!(!hex::encode(default_salt.parameters.unwrap().to_der().unwrap()).contains("a203"));
    }

    #[test]
    fn unsigned_attributes_are_added_without_changing_the_signed_bytes() {
        let cert = cert_der();
        let der = sign(
            &spec(&cert, &[], Some(1_767_225_600)),
            Encapsulation::Attached(b"x"),
            |_| Ok::<_, Infallible>(vec![9; 64]),
        )
        .unwrap();
        let before = signer_info(&der);
        let token = OctetString::new(vec![1, 2, 3]).unwrap().to_der().unwrap();
        let once = add_unsigned_attribute(&der, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token).unwrap();
        let other = OctetString::new(vec![4]).unwrap().to_der().unwrap();
        let twice = add_unsigned_attribute(&once, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &other).unwrap();
        let after = signer_info(&twice);
        assert_eq!(after.signed_attrs, before.signed_attrs);
        assert_eq!(signature_value(&twice).unwrap(), vec![9; 64]);
        let unsigned = after.unsigned_attrs.unwrap();
        assert_eq!(unsigned.len(), 1);
        assert_eq!(unsigned.get(0).unwrap().values.len(), 2);

        assert!(matches!(
            add_unsigned_attribute(&once, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token),
            Err(CmsError::AttributeValue(_))
        ));
        assert!(matches!(
            add_unsigned_attribute(&der, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, b"\x04\x05"),
            Err(CmsError::AttributeValue(_))
        ));
        assert!(matches!(signature_value(&der[1..]), Err(CmsError::Parse(_))));
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            add_unsigned_attribute(&trailing, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token),
            Err(CmsError::Parse(_))
        ));
        // Signed attributes out of DER order decode (sorted on the way) but would be rewritten: refused.
        let unordered = {
            let der = sign(&spec(&cert, &[], None), Encapsulation::Attached(b"x"), |_| {
                Ok::<_, Infallible>(vec![9; 64])
            })
            .unwrap();
            let attributes = signer_info(&der).signed_attrs.unwrap();
            let (first, second) = (
                attributes.get(0).unwrap().to_der().unwrap(),
                attributes.get(1).unwrap().to_der().unwrap(),
            );
            let sorted = [first.as_slice(), second.as_slice()].concat();
            let swapped = [second.as_slice(), first.as_slice()].concat();
            let at = der.windows(sorted.len()).position(|w| w == sorted).unwrap();
            [&der[..at], swapped.as_slice(), &der[at + sorted.len()..]].concat()
        };
        assert_eq!(
            signature_value(&unordered).unwrap(),
            vec![9; 64],
            "it is still readable"
        );
        assert!(matches!(
            add_unsigned_attribute(&unordered, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token),
            Err(CmsError::NotCanonical)
        ));
        let not_signed_data = ContentInfo {
            content_type: rfc5911::ID_DATA,
            content: Any::encode_from(&OctetString::new(vec![1]).unwrap()).unwrap(),
        }
        .to_der()
        .unwrap();
        assert!(matches!(
            signature_value(&not_signed_data),
            Err(CmsError::NotSignedData(_))
        ));
    }
}
