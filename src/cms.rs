//! CMS SignedData (RFC 5652) built around a signature made in the HSM.
//!
//! The signer's private key never leaves the token, so nothing here takes a key. [`prepare`] builds the signed
//! attributes and the digest the token has to sign; [`Prepared::finish`] puts the signature the token returned into
//! the SignerInfo and encodes the ContentInfo; [`sign`] does both around a closure for callers that sign in one go.
//! The same SignedData serves the signed evidence of issuance terms, CAdES `.p7s` files (attached or detached) and
//! PAdES (detached, no signing-time). [`add_unsigned_attribute`] and [`signature_value`] let a signature timestamp
//! (RFC 3161) be added afterwards, [`add_validation_data`] puts certificates, CRLs and OCSP responses into the
//! SignedData (CAdES B-LT), and [`parts`] gives the encodings an index of hashes is made from (CAdES B-LTA).
//!
//! A SignedData is read here as [`WireSignedData`], not as the `cms` crate's type: that one (0.2) reads RFC 5652's
//! `OtherRevocationInfoFormat` as an AlgorithmIdentifier followed by ANY where RFC 5652 has an OBJECT IDENTIFIER, so
//! a SignedData with an OCSP response in `crls` (RFC 5940, as CAdES B-LT puts it) would not decode at all.

use std::convert::Infallible;
use std::time::Duration;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo,
    SignerInfos,
};
use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Header, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
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

/// id-ri-ocsp-response (RFC 5940 §3): an `OtherRevocationInfoFormat` holding a DER OCSPResponse.
pub const ID_RI_OCSP_RESPONSE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.16.2");

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
    #[error("CRL {index} of the validation data is not a DER CertificateList: {source}")]
    Crl { index: usize, source: der::Error },
    #[error("OCSP response {index} of the validation data is not a DER OCSPResponse: {source}")]
    OcspResponse { index: usize, source: der::Error },
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
    let mut signed_data = decode_canonical(content_info_der)?;
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

/// Validation data for [`add_validation_data`], each item DER.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationData<'a> {
    /// X.509 certificates, for `SignedData.certificates`.
    pub certificates: &'a [Vec<u8>],
    /// CertificateLists, for `SignedData.crls`.
    pub crls: &'a [Vec<u8>],
    /// OCSPResponses (the whole response, not only the BasicOCSPResponse), for `SignedData.crls` as
    /// `OtherRevocationInfoFormat` with [`ID_RI_OCSP_RESPONSE`] (RFC 5940 §3).
    pub ocsp_responses: &'a [Vec<u8>],
}

/// Adds validation data to the SignedData of a DER ContentInfo: the certificates to `certificates`, the CRLs and the
/// OCSP responses to `crls`, each once (what is already there is not repeated). Neither field is covered by the
/// signature, so the signature stays valid; only canonical DER is accepted, as for [`add_unsigned_attribute`]. With
/// an OCSP response in `crls` the SignedData's version becomes 5 (RFC 5652 §5.1).
pub fn add_validation_data(content_info_der: &[u8], data: &ValidationData) -> Result<Vec<u8>, CmsError> {
    let mut signed_data = decode_canonical(content_info_der)?;

    let mut certs = signed_data
        .certificates
        .take()
        .map(|c| c.0.into_vec())
        .unwrap_or_default();
    let mut seen = certs
        .iter()
        .map(Encode::to_der)
        .collect::<Result<Vec<_>, _>>()
        .map_err(CmsError::Encode)?;
    for (index, der) in data.certificates.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(|source| CmsError::ChainCertificate { index, source })?;
        let choice = CertificateChoices::Certificate(cert);
        let encoded = choice.to_der().map_err(CmsError::Encode)?;
        if !seen.contains(&encoded) {
            seen.push(encoded);
            certs.push(choice);
        }
    }
    if !certs.is_empty() {
        signed_data.certificates = Some(CertificateSet::try_from(certs).map_err(CmsError::Encode)?);
    }

    let mut revocation = signed_data.crls.take().map(SetOfVec::into_vec).unwrap_or_default();
    for (index, der) in data.crls.iter().enumerate() {
        x509_cert::crl::CertificateList::from_der(der).map_err(|source| CmsError::Crl { index, source })?;
        revocation.push(Any::from_der(der).map_err(|source| CmsError::Crl { index, source })?);
    }
    for (index, der) in data.ocsp_responses.iter().enumerate() {
        x509_ocsp::OcspResponse::from_der(der).map_err(|source| CmsError::OcspResponse { index, source })?;
        let mut content = ID_RI_OCSP_RESPONSE.to_der().map_err(CmsError::Encode)?;
        content.extend_from_slice(der);
        revocation.push(Any::new(other_revocation_tag(), content).map_err(CmsError::Encode)?);
    }
    // A SET OF refuses duplicates: the first copy of each stays.
    let mut unique: Vec<Any> = Vec::with_capacity(revocation.len());
    for choice in revocation {
        if !unique.contains(&choice) {
            unique.push(choice);
        }
    }
    if unique.iter().any(|c| c.tag() == other_revocation_tag()) {
        signed_data.version = CmsVersion::V5;
    }
    if !unique.is_empty() {
        signed_data.crls = Some(SetOfVec::try_from(unique).map_err(CmsError::Encode)?);
    }
    encode_content_info(&signed_data)
}

/// The DER encodings, as they stand in a canonical DER ContentInfo, of what an index of hashes over a SignedData and
/// its first SignerInfo is made from (CAdES archive timestamps, EN 319 122-1 §5.5).
#[derive(Debug, Clone)]
pub struct Parts {
    /// `encapContentInfo.eContentType`.
    pub content_type: Vec<u8>,
    /// The SignerInfo's digest algorithm.
    pub digest_algorithm: ObjectIdentifier,
    /// The value of the message-digest signed attribute, if there is one: the content's hash with
    /// [`Parts::digest_algorithm`].
    pub message_digest: Option<Vec<u8>>,
    /// Each `CertificateChoices` of `certificates`, in the order of the SET.
    pub certificates: Vec<Vec<u8>>,
    /// Each `RevocationInfoChoice` of `crls`, in the order of the SET.
    pub crls: Vec<Vec<u8>>,
    /// The SignerInfo's version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm and signature, one after the
    /// other (everything but the unsigned attributes).
    pub signer_fields: Vec<u8>,
    /// For every value of every unsigned attribute: the attribute's type and that value.
    pub unsigned_values: Vec<(Vec<u8>, Vec<u8>)>,
}

/// [`Parts`] of a DER ContentInfo; only canonical DER is accepted, so that the encodings are the file's own bytes.
pub fn parts(content_info_der: &[u8]) -> Result<Parts, CmsError> {
    let signed_data = decode_canonical(content_info_der)?;
    let signer = signed_data.signer_infos.0.iter().next().ok_or(CmsError::NoSignerInfo)?;
    let each = |items: Vec<Result<Vec<u8>, der::Error>>| items.into_iter().collect::<Result<Vec<_>, _>>();
    let certificates = each(
        signed_data
            .certificates
            .iter()
            .flat_map(|c| c.0.iter())
            .map(Encode::to_der)
            .collect(),
    )
    .map_err(CmsError::Encode)?;
    let crls = each(
        signed_data
            .crls
            .iter()
            .flat_map(|c| c.iter())
            .map(Encode::to_der)
            .collect(),
    )
    .map_err(CmsError::Encode)?;
    let message_digest = signer
        .signed_attrs
        .iter()
        .flat_map(|a| a.iter())
        .find(|a| a.oid == rfc5911::ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .map(|v| v.decode_as::<OctetString>().map(|o| o.as_bytes().to_vec()))
        .transpose()
        .map_err(CmsError::Parse)?;
    let mut unsigned_values = Vec::new();
    for attribute in signer.unsigned_attrs.iter().flat_map(|a| a.iter()) {
        let oid = attribute.oid.to_der().map_err(CmsError::Encode)?;
        for value in attribute.values.iter() {
            unsigned_values.push((oid.clone(), value.to_der().map_err(CmsError::Encode)?));
        }
    }
    // The SignerInfo without its unsigned attributes, less its own SEQUENCE header: the signed fields in order.
    let mut bare = signer.clone();
    bare.unsigned_attrs = None;
    let encoded = bare.to_der().map_err(CmsError::Encode)?;
    let mut reader = SliceReader::new(&encoded).map_err(CmsError::Encode)?;
    let header = Header::decode(&mut reader).map_err(CmsError::Encode)?;
    let fields = reader.read_slice(header.length).map_err(CmsError::Encode)?.to_vec();
    Ok(Parts {
        content_type: signed_data
            .encap_content_info
            .econtent_type
            .to_der()
            .map_err(CmsError::Encode)?,
        digest_algorithm: signer.digest_alg.oid,
        message_digest,
        certificates,
        crls,
        signer_fields: fields,
        unsigned_values,
    })
}

/// The SignedData of a DER ContentInfo, without its `crls` (which the `cms` crate's type cannot hold when they
/// include an OCSP response; see [`WireSignedData`]): for readers that look at everything else.
pub fn read_signed_data(content_info_der: &[u8]) -> Result<SignedData, CmsError> {
    let wire = decode_signed_data(content_info_der)?;
    Ok(SignedData {
        version: wire.version,
        digest_algorithms: wire.digest_algorithms,
        encap_content_info: wire.encap_content_info,
        certificates: wire.certificates,
        crls: None,
        signer_infos: wire.signer_infos,
    })
}

/// RFC 5652's SignedData, with `crls` kept as each RevocationInfoChoice's DER (a CertificateList, or an
/// `[1] IMPLICIT OtherRevocationInfoFormat`) instead of the `cms` crate's misread `OtherRevocationInfoFormat`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct WireSignedData {
    pub version: CmsVersion,
    pub digest_algorithms: DigestAlgorithmIdentifiers,
    pub encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<CertificateSet>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<SetOfVec<Any>>,
    pub signer_infos: SignerInfos,
}

/// `[1]` constructed: the `other` choice of RevocationInfoChoice.
fn other_revocation_tag() -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N1,
    }
}

/// [`decode_signed_data`], refusing input that would not come back byte for byte from the encoder: rewriting it
/// could change bytes a signature covers.
fn decode_canonical(content_info_der: &[u8]) -> Result<WireSignedData, CmsError> {
    let signed_data = decode_signed_data(content_info_der)?;
    // The decoder sorts every SET OF it reads: only if the input comes back unchanged can it be rewritten safely.
    if encode_content_info::<Infallible>(&signed_data)? != content_info_der {
        return Err(CmsError::NotCanonical);
    }
    Ok(signed_data)
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

fn encode_content_info<E>(signed_data: &(impl der::EncodeValue + Tagged)) -> Result<Vec<u8>, CmsError<E>> {
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(signed_data).map_err(CmsError::Encode)?,
    }
    .to_der()
    .map_err(CmsError::Encode)
}

fn decode_signed_data(content_info_der: &[u8]) -> Result<WireSignedData, CmsError> {
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

    /// An enclosing signature of "x" at a fixed time, with a stand-in signature value.
    fn signed_x(cert: &[u8]) -> Vec<u8> {
        sign(
            &spec(cert, &[], Some(1_767_225_600)),
            Encapsulation::Attached(b"x"),
            |_| Ok::<_, Infallible>(vec![9; 64]),
        )
        .unwrap()
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
        let der = signed_x(&cert);
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

    /// A CertificateList issued by the test certificate's subject (its signature is not checked here).
    fn crl_der(cert: &Certificate, this_update: i64) -> Vec<u8> {
        x509_cert::crl::CertificateList {
            tbs_cert_list: x509_cert::crl::TbsCertList {
                version: x509_cert::Version::V2,
                signature: AlgorithmIdentifierOwned {
                    oid: rfc5912::ECDSA_WITH_SHA_256,
                    parameters: None,
                },
                issuer: cert.tbs_certificate.subject.clone(),
                this_update: signing_time(this_update).unwrap(),
                next_update: None,
                revoked_certificates: None,
                crl_extensions: None,
            },
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: der::asn1::BitString::from_bytes(&[1, 2, 3]).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn validation_data_goes_into_certificates_and_crls_once_with_ocsp_as_rfc_5940_other_revocation_info() {
        let cert = cert_der();
        let der = signed_x(&cert);
        let before = signer_info(&der);
        let parsed = Certificate::from_der(&cert).unwrap();
        let crls = vec![crl_der(&parsed, 1_767_225_600), crl_der(&parsed, 1_767_225_601)];
        let ocsp = vec![x509_ocsp::OcspResponse::try_later().to_der().unwrap()];
        let certs = vec![cert.clone(), cert.clone()];
        let data = ValidationData {
            certificates: &certs,
            crls: &crls,
            ocsp_responses: &ocsp,
        };
        let lt = add_validation_data(&der, &data).unwrap();
        assert_eq!(
            add_validation_data(&lt, &data).unwrap(),
            lt,
            "what is already there is not added again"
        );

        let wire = decode_signed_data(&lt).unwrap();
        assert_eq!(
            wire.version,
            CmsVersion::V5,
            "RFC 5652 §5.1: an other revocation format"
        );
        assert_eq!(
            wire.certificates.as_ref().unwrap().0.len(),
            1,
            "the signer's certificate, once"
        );
        let choices = wire.crls.as_ref().unwrap();
        assert_eq!(choices.len(), 3);
        let other = choices.iter().find(|c| c.tag() == other_revocation_tag()).unwrap();
        let mut expected = ID_RI_OCSP_RESPONSE.to_der().unwrap();
        expected.extend_from_slice(&ocsp[0]);
        assert_eq!(other.value(), expected, "[1] {{ id-ri-ocsp-response, OCSPResponse }}");
        assert_eq!(signer_info(&lt), before, "the signer and what it signed are untouched");

        // The `cms` crate's own SignedData cannot read it; the readers here can.
        let content_info = ContentInfo::from_der(&lt).unwrap();
        assert!(content_info.content.decode_as::<SignedData>().is_err());
        let read = read_signed_data(&lt).unwrap();
        assert!(read.crls.is_none() && read.certificates.is_some());
        assert_eq!(signature_value(&lt).unwrap(), vec![9; 64]);
        let token = OctetString::new(vec![1]).unwrap().to_der().unwrap();
        let stamped = add_unsigned_attribute(&lt, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token).unwrap();

        let parts = parts(&stamped).unwrap();
        assert_eq!(parts.certificates.len(), 1);
        assert_eq!(parts.crls.len(), 3);
        assert!(parts
            .crls
            .iter()
            .all(|c| stamped.windows(c.len()).any(|w| w == c.as_slice())));
        assert_eq!(
            parts.unsigned_values,
            vec![(ID_AA_SIGNATURE_TIME_STAMP_TOKEN.to_der().unwrap(), token)]
        );
        assert_eq!(parts.message_digest.unwrap(), HashAlg::Sha256.digest(b"x"));
        assert_eq!(parts.content_type, rfc5911::ID_DATA.to_der().unwrap());
        assert_eq!(parts.digest_algorithm, HashAlg::Sha256.oid());
        let info = signer_info(&stamped);
        assert!(parts.signer_fields.starts_with(&info.version.to_der().unwrap()));
        assert!(parts.signer_fields.ends_with(&info.signature.to_der().unwrap()));
        let signed = info.signed_attrs.unwrap().to_der().unwrap();
        assert!(
            parts.signer_fields.windows(signed.len() - 1).any(|w| w == &signed[1..]),
            "the signed attributes, as the SignerInfo carries them"
        );

        let junk = vec![b"junk".to_vec()];
        for bad in [
            ValidationData {
                certificates: &junk,
                ..ValidationData::default()
            },
            ValidationData {
                crls: &junk,
                ..ValidationData::default()
            },
            ValidationData {
                ocsp_responses: &junk,
                ..ValidationData::default()
            },
        ] {
            assert!(add_validation_data(&der, &bad).is_err());
        }
    }
}
