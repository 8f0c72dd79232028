//! CAdES (ETSI EN 319 122-1) around the CMS builder: levels B-B, B-T, B-LT and B-LTA, enveloping (the `.p7s` encloses
//! the file, the default: the users' viewers open it and show the document) or detached.
//!
//! B-T adds a signature timestamp (an RFC 3161 token over the signature value) as the unsigned attribute
//! id-aa-signatureTimeStampToken. B-LT adds the validation data where EN 319 122-1 puts it for the baseline levels:
//! the chain's certificates (the TSA's too) in `SignedData.certificates`, the CRLs and the OCSP responses
//! (`OtherRevocationInfoFormat` id-ri-ocsp-response, RFC 5940) in `SignedData.crls`, none of them signed, so the
//! signature can be validated later without fetching anything. (The certificate-values and revocation-values
//! attributes belong to the older -X-L forms; baseline checkers refuse them at B-LT.) B-LTA then adds an
//! archive-time-stamp-v3 (§5.5.3) over the document, the signature and all of that, whose token carries the
//! ats-hash-index-v3 (§5.5.2) naming what it covers.

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierOwned;

use super::cms::{self, CmsError, ValidationData, ID_AA_SIGNATURE_TIME_STAMP_TOKEN};
use crate::hsm::HashAlg;

/// id-aa-ets-archiveTimestampV3 (EN 319 122-1 §5.5.3, Annex D): the archive-time-stamp-v3 unsigned attribute.
pub const ID_AA_ETS_ARCHIVE_TIMESTAMP_V3: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1733.2.4");
/// id-aa-ATSHashIndex-v3 (EN 319 122-1 §5.5.2, Annex D): the ats-hash-index-v3 unsigned attribute of an archive
/// timestamp's token.
pub const ID_AA_ATS_HASH_INDEX_V3: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19122.1.5");

/// A conformance level (CSC `conformance_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    BB,
    BT,
    BLT,
    BLTA,
}

impl Level {
    /// `AdES-B-B`, `Ades-B-T`, … (case-insensitive; `AdES-B`, `AdES-T`, … as their B- forms). None: unknown.
    pub fn parse(s: Option<&str>) -> Option<Level> {
        let s = s.unwrap_or("AdES-B-B").trim().to_ascii_uppercase();
        match s.as_str() {
            "ADES-B-B" | "ADES-B" => Some(Level::BB),
            "ADES-B-T" | "ADES-T" => Some(Level::BT),
            "ADES-B-LT" | "ADES-LT" => Some(Level::BLT),
            "ADES-B-LTA" | "ADES-LTA" => Some(Level::BLTA),
            _ => None,
        }
    }

    /// The CSC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::BB => "AdES-B-B",
            Level::BT => "AdES-B-T",
            Level::BLT => "AdES-B-LT",
            Level::BLTA => "AdES-B-LTA",
        }
    }

    /// Whether the level carries a signature timestamp (one more transaction).
    pub fn timestamped(self) -> bool {
        self >= Level::BT
    }
}

/// Revocation data for the chain: DER CRLs and DER OCSPResponses.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub crls: Vec<Vec<u8>>,
    pub ocsp_responses: Vec<Vec<u8>>,
}

/// Why a CAdES level could not be added.
#[derive(Debug, thiserror::Error)]
pub enum CadesError {
    #[error(transparent)]
    Cms(#[from] CmsError),
    #[error("the signature has no message-digest attribute to take the content's hash from")]
    NoMessageDigest,
    #[error("the signature's digest algorithm {0} is not one an archive timestamp is taken with")]
    DigestAlgorithm(ObjectIdentifier),
    #[error("the archive timestamp's hash index could not be encoded: {0}")]
    Encode(der::Error),
    #[error("the archive timestamp carries no readable ats-hash-index-v3")]
    NoHashIndex,
}

/// Adds the signature timestamp (B-T): `token` is the DER TimeStampToken over [`cms::signature_value`].
pub fn add_signature_timestamp(p7s: &[u8], token: &[u8]) -> Result<Vec<u8>, CadesError> {
    Ok(cms::add_unsigned_attribute(
        p7s,
        ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
        token,
    )?)
}

/// Adds the validation data (B-LT) to `SignedData`: `certificates` (the chain above the signer's, and the TSA's) to
/// its certificates, the CRLs and OCSP responses of `revocation` to its crls.
pub fn add_validation_data(
    p7s: &[u8],
    certificates: &[Vec<u8>],
    revocation: &Revocation,
) -> Result<Vec<u8>, CadesError> {
    Ok(cms::add_validation_data(
        p7s,
        &ValidationData {
            certificates,
            crls: &revocation.crls,
            ocsp_responses: &revocation.ocsp_responses,
        },
    )?)
}

/// ATSHashIndexV3 (EN 319 122-1 Annex D: hashIndAlgorithm has no DEFAULT there, so it is always written).
#[derive(Sequence)]
struct AtsHashIndexV3 {
    hash_ind_algorithm: AlgorithmIdentifierOwned,
    certificates_hash_index: Vec<OctetString>,
    crls_hash_index: Vec<OctetString>,
    unsigned_attr_values_hash_index: Vec<OctetString>,
}

/// What to timestamp for an archive-time-stamp-v3, and the hash index its token will carry.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    /// The hash of the imprint and of the index entries.
    pub hash: HashAlg,
    /// The message imprint to have timestamped.
    pub imprint: Vec<u8>,
    /// The DER ATSHashIndexV3.
    index: Vec<u8>,
}

/// The archive-time-stamp-v3 request for a `.p7s` as it stands (its validation data already in, B-LT): the
/// ats-hash-index-v3 over every certificate, every CRL and OCSP response and every unsigned attribute value
/// (§5.5.2), and the message imprint over the content type, the content's hash, the SignerInfo's signed fields and
/// that index (§5.5.3).
///
/// The hash is the signature's own digest algorithm: the content's hash under it is the message-digest attribute's
/// value, so a detached signature, or one made over a digest only, needs no content to be archived.
pub fn archive_request(p7s: &[u8]) -> Result<ArchiveRequest, CadesError> {
    let parts = cms::parts(p7s)?;
    let hash = HashAlg::from_oid(&parts.digest_algorithm).ok_or(CadesError::DigestAlgorithm(parts.digest_algorithm))?;
    let content_hash = parts.message_digest.as_ref().ok_or(CadesError::NoMessageDigest)?;
    let hashes = |items: &[Vec<u8>]| {
        items
            .iter()
            .map(|bytes| OctetString::new(hash.digest(bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CadesError::Encode)
    };
    // Each unsigned attribute value with its attribute's type in front (v3: per value, not per attribute).
    let values: Vec<Vec<u8>> = parts
        .unsigned_values
        .iter()
        .map(|(t, v)| [t.as_slice(), v].concat())
        .collect();
    let index = AtsHashIndexV3 {
        hash_ind_algorithm: AlgorithmIdentifierOwned {
            oid: hash.oid(),
            parameters: None,
        },
        certificates_hash_index: hashes(&parts.certificates)?,
        crls_hash_index: hashes(&parts.crls)?,
        unsigned_attr_values_hash_index: hashes(&values)?,
    }
    .to_der()
    .map_err(CadesError::Encode)?;
    let input = [
        parts.content_type.as_slice(),
        content_hash,
        &parts.signer_fields,
        &index,
    ]
    .concat();
    Ok(ArchiveRequest {
        hash,
        imprint: hash.digest(&input),
        index,
    })
}

/// What an archive-time-stamp-v3 `token` of `p7s` covers, to check it (EN 319 102-1 §5.6.2.2 in outline): the
/// bytes its message imprint is the hash of — the content type, the content's hash, the SignerInfo's signed fields
/// and the token's own ats-hash-index-v3 — and whether every certificate, CRL or OCSP response and unsigned
/// attribute value that index lists is still in the file unchanged (a hash in the index that matches nothing means
/// something the timestamp covered was removed or altered).
pub fn archive_coverage(p7s: &[u8], token: &[u8]) -> Result<(Vec<u8>, bool), CadesError> {
    use der::Decode;
    let parts = cms::parts(p7s)?;
    let token_data = cms::read_signed_data(token)?;
    let index_der = token_data
        .signer_infos
        .0
        .iter()
        .next()
        .and_then(|si| si.unsigned_attrs.as_ref())
        .and_then(|attrs| attrs.iter().find(|a| a.oid == ID_AA_ATS_HASH_INDEX_V3))
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.to_der().ok())
        .ok_or(CadesError::NoHashIndex)?;
    let index = AtsHashIndexV3::from_der(&index_der).map_err(|_| CadesError::NoHashIndex)?;
    let hash = HashAlg::from_oid(&index.hash_ind_algorithm.oid)
        .ok_or(CadesError::DigestAlgorithm(index.hash_ind_algorithm.oid))?;
    if parts.digest_algorithm != hash.oid() {
        // The content's hash is the message-digest attribute's only under the signature's own algorithm.
        return Err(CadesError::DigestAlgorithm(index.hash_ind_algorithm.oid));
    }
    let content_hash = parts.message_digest.as_ref().ok_or(CadesError::NoMessageDigest)?;
    let present = |listed: &[OctetString], items: Vec<Vec<u8>>| {
        let hashes: Vec<Vec<u8>> = items.iter().map(|i| hash.digest(i)).collect();
        listed
            .iter()
            .all(|h| hashes.iter().any(|x| x.as_slice() == h.as_bytes()))
    };
    let values: Vec<Vec<u8>> = parts
        .unsigned_values
        .iter()
        .map(|(t, v)| [t.as_slice(), v].concat())
        .collect();
    let intact = present(&index.certificates_hash_index, parts.certificates.clone())
        && present(&index.crls_hash_index, parts.crls.clone())
        && present(&index.unsigned_attr_values_hash_index, values);
    let input = [
        parts.content_type.as_slice(),
        content_hash,
        &parts.signer_fields,
        &index_der,
    ]
    .concat();
    Ok((input, intact))
}

/// Adds the archive-time-stamp-v3 (B-LTA): `token` is the DER TimeStampToken over `request.imprint`; the
/// ats-hash-index-v3 goes into its SignerInfo's unsigned attributes (outside what the TSA signed), then the token
/// into the signature's.
pub fn add_archive_timestamp(p7s: &[u8], request: &ArchiveRequest, token: &[u8]) -> Result<Vec<u8>, CadesError> {
    let indexed = cms::add_unsigned_attribute(token, ID_AA_ATS_HASH_INDEX_V3, &request.index)?;
    Ok(cms::add_unsigned_attribute(
        p7s,
        ID_AA_ETS_ARCHIVE_TIMESTAMP_V3,
        &indexed,
    )?)
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn levels_are_read_as_the_csc_samples_spell_them() {
        assert_eq!(Level::parse(None), Some(Level::BB));
        assert_eq!(Level::parse(Some("Ades-B-T")), Some(Level::BT));
        assert_eq!(Level::parse(Some("AdES-B-LT")), Some(Level::BLT));
        assert_eq!(Level::parse(Some("ades-lta")), Some(Level::BLTA));
        assert_eq!(Level::parse(Some("AdES-X")), None);
        assert!(Level::BT.timestamped() && !Level::BB.timestamped());
    }
}
