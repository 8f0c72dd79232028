//! CAdES (ETSI EN 319 122-1) around the CMS builder: levels B-B, B-T and B-LT, enveloping (the `.p7s` encloses the
//! file, the default: the users' viewers open it and show the document) or detached.
//!
//! B-T adds a signature timestamp (an RFC 3161 token over the signature value) as the unsigned attribute
//! id-aa-signatureTimeStampToken. B-LT adds, as unsigned attributes, the certificate values (the whole chain) and the
//! revocation values (CRLs and OCSP responses for every certificate of the chain), so that the signature can be
//! validated later without fetching anything.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};

use super::cms::{self, CmsError, ID_AA_SIGNATURE_TIME_STAMP_TOKEN};

/// id-aa-ets-certValues (RFC 5126 §6.3.3).
pub const ID_AA_ETS_CERT_VALUES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.23");
/// id-aa-ets-revocationValues (RFC 5126 §6.3.4).
pub const ID_AA_ETS_REVOCATION_VALUES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.24");

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
    #[error("an OCSP response could not be read: {0}")]
    Ocsp(der::Error),
    #[error("the revocation data could not be encoded: {0}")]
    Encode(der::Error),
}

/// Adds the signature timestamp (B-T): `token` is the DER TimeStampToken over [`cms::signature_value`].
pub fn add_signature_timestamp(p7s: &[u8], token: &[u8]) -> Result<Vec<u8>, CadesError> {
    Ok(cms::add_unsigned_attribute(
        p7s,
        ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
        token,
    )?)
}

/// Adds the validation data (B-LT): the chain's certificates and revocation values.
pub fn add_validation_data(p7s: &[u8], chain: &[Vec<u8>], revocation: &Revocation) -> Result<Vec<u8>, CadesError> {
    // CertificateValues ::= SEQUENCE OF Certificate
    let certs = tlv(0x30, &chain.concat()).map_err(CadesError::Encode)?;
    let with_certs = cms::add_unsigned_attribute(p7s, ID_AA_ETS_CERT_VALUES, &certs)?;
    // RevocationValues ::= SEQUENCE { crlVals [0] SEQUENCE OF CertificateList OPTIONAL,
    //                                 ocspVals [1] SEQUENCE OF BasicOCSPResponse OPTIONAL, … }  (IMPLICIT TAGS)
    let mut body = Vec::new();
    if !revocation.crls.is_empty() {
        body.extend(tlv(0xA0, &revocation.crls.concat()).map_err(CadesError::Encode)?);
    }
    if !revocation.ocsp_responses.is_empty() {
        let mut basics = Vec::new();
        for r in &revocation.ocsp_responses {
            basics.extend(basic_ocsp_response(r)?);
        }
        body.extend(tlv(0xA1, &basics).map_err(CadesError::Encode)?);
    }
    let values = tlv(0x30, &body).map_err(CadesError::Encode)?;
    Ok(cms::add_unsigned_attribute(
        &with_certs,
        ID_AA_ETS_REVOCATION_VALUES,
        &values,
    )?)
}

/// The BasicOCSPResponse inside an OCSPResponse (RFC 6960 §4.2.1).
pub fn basic_ocsp_response(ocsp_response: &[u8]) -> Result<Vec<u8>, CadesError> {
    let r = x509_ocsp::OcspResponse::from_der(ocsp_response).map_err(CadesError::Ocsp)?;
    let bytes = r
        .response_bytes
        .ok_or(CadesError::Ocsp(der::Error::from(der::ErrorKind::Failed)))?;
    Ok(bytes.response.as_bytes().to_vec())
}

/// A DER TLV with a one-byte tag.
fn tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>, der::Error> {
    let mut out = vec![tag];
    der::Length::try_from(content.len())?.encode_to_vec(&mut out)?;
    out.extend_from_slice(content);
    Ok(out)
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
