//! Certificate contents: names, extensions and the profiles of the root CA, the issuing CA and a natural person's
//! qualified certificate after ETSI EN 319 412-2 (with the QC statements of EN 319 412-5).

use const_oid::db::rfc4519;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString, PrintableStringRef, SetOfVec};
use der::{Any, Decode, Encode, Sequence, Tag};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// QCP-n-qscd: qualified certificate for a natural person, key in a QSCD (ETSI EN 319 411-2).
pub const QCP_N_QSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194112.1.2");
/// id-pe-qcStatements (RFC 3739).
pub const ID_PE_QC_STATEMENTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.3");
/// esi4-qcStatement-1: QcCompliance.
pub const QC_COMPLIANCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.1");
/// esi4-qcStatement-4: QcSSCD (the key is in a qualified signature creation device).
pub const QC_SSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.4");
/// esi4-qcStatement-5: QcPDS.
pub const QC_PDS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.5");
/// esi4-qcStatement-6: QcType.
pub const QC_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6");
/// id-etsi-qct-esign.
pub const QCT_ESIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.1");
/// id-at-pseudonym.
pub const AT_PSEUDONYM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.65");

/// Builds a Name from `(attribute, value)` pairs, one RDN each. Country and serialNumber are PrintableString,
/// the rest UTF8String (names keep their diacritics).
pub fn name(parts: &[(ObjectIdentifier, &str)]) -> Result<Name, der::Error> {
    let mut rdns = Vec::with_capacity(parts.len());
    for (oid, value) in parts {
        let printable = *oid == rfc4519::C || *oid == rfc4519::SERIAL_NUMBER;
        let value = if printable {
            Any::from(PrintableStringRef::new(value)?)
        } else {
            Any::new(Tag::Utf8String, value.as_bytes())?
        };
        let atv = AttributeTypeAndValue { oid: *oid, value };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// A CA's subject: C, O, CN.
pub fn ca_name(country: &str, organization: &str, common_name: &str) -> Result<Name, der::Error> {
    name(&[
        (rfc4519::C, country),
        (rfc4519::O, organization),
        (rfc4519::CN, common_name),
    ])
}

/// Who a holder certificate names.
#[derive(Debug, Clone)]
pub struct HolderSubject {
    pub given_name: String,
    pub surname: String,
    /// ISO 3166 two-letter code.
    pub country: String,
    /// serialNumber: a semantics identifier such as `PNORO-…` (EN 319 412-1 §5.1.3), or Parafa's own id.
    pub serial_number: String,
    /// When set, the certificate names the pseudonym instead of the given name and surname.
    pub pseudonym: Option<String>,
    pub email: Option<String>,
}

impl HolderSubject {
    /// The subject Name after EN 319 412-2 §4.2.4.
    pub fn to_name(&self) -> Result<Name, der::Error> {
        match &self.pseudonym {
            Some(p) => name(&[
                (rfc4519::C, &self.country),
                (AT_PSEUDONYM, p),
                (rfc4519::SERIAL_NUMBER, &self.serial_number),
                (rfc4519::CN, p),
            ]),
            None => {
                let cn = format!("{} {}", self.given_name, self.surname);
                name(&[
                    (rfc4519::C, &self.country),
                    (rfc4519::SURNAME, &self.surname),
                    (rfc4519::GIVEN_NAME, &self.given_name),
                    (rfc4519::SERIAL_NUMBER, &self.serial_number),
                    (rfc4519::CN, &cn),
                ])
            }
        }
    }
}

impl HolderSubject {
    /// The subject of an earlier certificate, read back (a successor keeps its holder's name).
    pub fn from_name(subject: &Name, email: Option<String>) -> HolderSubject {
        let mut out = HolderSubject {
            given_name: String::new(),
            surname: String::new(),
            country: String::new(),
            serial_number: String::new(),
            pseudonym: None,
            email,
        };
        for atv in subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
            let value = atv
                .value
                .decode_as::<der::asn1::Utf8StringRef>()
                .map(|v| v.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<PrintableStringRef>()
                        .map(|v| v.as_str().to_owned())
                })
                .unwrap_or_default();
            match atv.oid {
                o if o == rfc4519::GIVEN_NAME => out.given_name = value,
                o if o == rfc4519::SURNAME => out.surname = value,
                o if o == rfc4519::C => out.country = value,
                o if o == rfc4519::SERIAL_NUMBER => out.serial_number = value,
                o if o == AT_PSEUDONYM => out.pseudonym = Some(value),
                _ => {}
            }
        }
        out
    }
}

/// A key identifier: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits (RFC 7093 §2 method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha256::digest(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn uri(url: &str) -> Result<GeneralName, der::Error> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

/// Extensions of a CA certificate. `path_len` None for the root, Some(0) for the issuing CA. The issuing CA also
/// gets the root's CRL and certificate URLs.
pub fn ca_extensions(
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
    path_len: Option<u8>,
    urls: Option<(&str, &str)>,
) -> Result<Vec<Extension>, der::Error> {
    let mut exts = vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(subject_key))?),
            false,
        )?,
        ext(&authority_key_id(issuer_key_id)?, false)?,
    ];
    if let Some((crl_url, issuer_url)) = urls {
        exts.push(ext(&crl_distribution(crl_url)?, false)?);
        exts.push(ext(
            &AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: ID_AD_CA_ISSUERS,
                access_location: uri(issuer_url)?,
            }]),
            false,
        )?);
    }
    Ok(exts)
}

fn authority_key_id(key_id: &[u8]) -> Result<AuthorityKeyIdentifier, der::Error> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

fn crl_distribution(url: &str) -> Result<CrlDistributionPoints, der::Error> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    }]))
}

/// The URLs a holder certificate points at.
#[derive(Debug, Clone)]
pub struct PkiUrls {
    pub crl: String,
    pub ocsp: String,
    pub ca_issuers: String,
    /// The PKI disclosure statement in English (QcPDS).
    pub pds: String,
    /// The same in Romanian, a second PdsLocation when set.
    pub pds_ro: Option<String>,
}

/// One QCStatement (RFC 3739).
#[derive(Sequence)]
struct QcStatement {
    statement_id: ObjectIdentifier,
    statement_info: Option<Any>,
}

/// PdsLocation (EN 319 412-5 §4.3.4).
#[derive(Sequence)]
struct PdsLocation {
    url: Ia5String,
    language: der::asn1::PrintableString,
}

/// The qcStatements extension value: QcCompliance, QcSSCD, QcType esign, QcPDS (English, and Romanian when given).
fn qc_statements(pds_url: &str, pds_ro: Option<&str>) -> Result<Vec<u8>, der::Error> {
    let qc_type = vec![QCT_ESIGN];
    let mut pds = vec![PdsLocation {
        url: Ia5String::new(pds_url)?,
        language: der::asn1::PrintableString::new("en")?,
    }];
    if let Some(ro) = pds_ro {
        pds.push(PdsLocation {
            url: Ia5String::new(ro)?,
            language: der::asn1::PrintableString::new("ro")?,
        });
    }
    let statements = vec![
        QcStatement {
            statement_id: QC_COMPLIANCE,
            statement_info: None,
        },
        QcStatement {
            statement_id: QC_SSCD,
            statement_info: None,
        },
        QcStatement {
            statement_id: QC_TYPE,
            statement_info: Some(Any::from_der(&qc_type.to_der()?)?),
        },
        QcStatement {
            statement_id: QC_PDS,
            statement_info: Some(Any::from_der(&pds.to_der()?)?),
        },
    ];
    statements.to_der()
}

/// esi4-qtstStatement-1 (ETSI EN 319 422 §9.1): the QcStatement a qualified electronic time-stamp carries in its
/// TSTInfo.
pub const QTST_STATEMENT: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19422.1.1");

/// A qcStatements value holding statements without information (`QcCompliance` for the TSA certificate,
/// `esi4-qtstStatement-1` for a timestamp).
pub fn bare_qc_statements(ids: &[ObjectIdentifier]) -> Result<Vec<u8>, der::Error> {
    ids.iter()
        .map(|id| QcStatement {
            statement_id: *id,
            statement_info: None,
        })
        .collect::<Vec<_>>()
        .to_der()
}

/// Extensions of a natural person's qualified signing certificate (EN 319 412-2 §4.3).
pub fn holder_extensions(
    subject: &HolderSubject,
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
    urls: &PkiUrls,
) -> Result<Vec<Extension>, der::Error> {
    let mut exts = vec![
        ext(&KeyUsage(KeyUsages::NonRepudiation | KeyUsages::DigitalSignature), true)?,
        ext(
            &CertificatePolicies(vec![PolicyInformation {
                policy_identifier: QCP_N_QSCD,
                policy_qualifiers: None,
            }]),
            false,
        )?,
        Extension {
            extn_id: ID_PE_QC_STATEMENTS,
            critical: false,
            extn_value: OctetString::new(qc_statements(&urls.pds, urls.pds_ro.as_deref())?)?,
        },
    ];
    exts.extend(end_entity_pointers(subject_key, issuer_key_id, urls)?);
    if let Some(email) = &subject.email {
        exts.push(ext(
            &SubjectAltName(vec![GeneralName::Rfc822Name(Ia5String::new(email)?)]),
            false,
        )?);
    }
    Ok(exts)
}

/// Extensions of the time-stamping unit's certificate (RFC 3161 §2.3, ETSI EN 319 422 §6): extendedKeyUsage
/// id-kp-timeStamping as the only purpose, marked critical (verifiers such as OpenSSL refuse it otherwise);
/// keyUsage digitalSignature and nonRepudiation; revocation pointers as in a holder certificate, so that a
/// long-term validation can fetch the TSA certificate's status too; and QcCompliance: the unit belongs to the
/// qualified time stamp service of Parafa's trusted list, which validators such as pyHanko read from the
/// certificate before they call its timestamps qualified.
pub fn tsa_extensions(
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
    urls: &PkiUrls,
) -> Result<Vec<Extension>, der::Error> {
    let mut exts = vec![
        ext(&KeyUsage(KeyUsages::NonRepudiation | KeyUsages::DigitalSignature), true)?,
        ext(
            &ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_TIME_STAMPING]),
            true,
        )?,
        Extension {
            extn_id: ID_PE_QC_STATEMENTS,
            critical: false,
            extn_value: OctetString::new(bare_qc_statements(&[QC_COMPLIANCE])?)?,
        },
    ];
    exts.extend(end_entity_pointers(subject_key, issuer_key_id, urls)?);
    Ok(exts)
}

/// id-tsl-kp-tslSigning (ETSI TS 119 612 §5.7.1): the purpose of a trusted list signing certificate.
pub const ID_TSL_KP_TSL_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2231.3.0");

/// Extensions of the trusted list scheme operator's certificate (ETSI TS 119 612 §5.7.1, self-signed): keyUsage
/// digitalSignature and nonRepudiation, extendedKeyUsage id-tsl-kp-tslSigning, not a CA, its key identifier.
pub fn tl_operator_extensions(subject_key: &SubjectPublicKeyInfoOwned) -> Result<Vec<Extension>, der::Error> {
    Ok(vec![
        ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::NonRepudiation | KeyUsages::DigitalSignature), true)?,
        ext(&ExtendedKeyUsage(vec![ID_TSL_KP_TSL_SIGNING]), false)?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(subject_key))?),
            false,
        )?,
    ])
}

/// What every end-entity certificate of the issuing CA ends with: CRL distribution point, AIA (OCSP and CA
/// issuers), subject and authority key identifiers.
fn end_entity_pointers(
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
    urls: &PkiUrls,
) -> Result<Vec<Extension>, der::Error> {
    Ok(vec![
        ext(&crl_distribution(&urls.crl)?, false)?,
        ext(
            &AuthorityInfoAccessSyntax(vec![
                AccessDescription {
                    access_method: ID_AD_OCSP,
                    access_location: uri(&urls.ocsp)?,
                },
                AccessDescription {
                    access_method: ID_AD_CA_ISSUERS,
                    access_location: uri(&urls.ca_issuers)?,
                },
            ]),
            false,
        )?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(subject_key))?),
            false,
        )?,
        ext(&authority_key_id(issuer_key_id)?, false)?,
    ])
}
