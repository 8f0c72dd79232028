//! The public certificate registry (product rules §11): anyone may search the holders' certificates by name or by
//! e-mail address, see each one's status (as the CRL and the OCSP responder give it) and download it, alone (DER)
//! or with the issuing CA's certificate (PEM bundle, PKCS#7 certs-only), as some portals ask for both.
//!
//! Only holders' certificates are listed: certificates of a credential (never the CA, TSA or OCSP certificates),
//! of an account that was not erased. A name search is a case-insensitive substring of the name in the certificate
//! or of the holder's given name and surname (at least [`MIN_NAME`] characters; `%` and `_` are literal). An e-mail
//! search matches the whole address only, so the registry cannot be used to collect addresses, and no answer shows
//! an address. A pseudonymous certificate is found by its e-mail address only: a search by the real name must not
//! lead to it.
//!
//! Case folding is the database's `lower()`: PostgreSQL folds every letter, SQLite only ASCII letters (`Ș` and `ș`
//! then differ).

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::{rfc4519, rfc5911};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use serde::Serialize;
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::profile::HolderSubject;
use super::Ca;
use crate::clock::rfc3339;
use crate::db::credentials::{CertificateStatus, StatusAt};
use crate::db::{self, Db, DbError};
use crate::i18n::Text;
use crate::text;

/// The longest search text, in characters.
pub const MAX_QUERY: usize = 100;
/// The shortest name searched for, in characters.
pub const MIN_NAME: usize = 3;
/// The most certificates one search returns.
pub const MAX_RESULTS: usize = 50;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(Text),
    #[error("{}", self.text())]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored certificate does not decode: {0}")]
    Der(#[from] der::Error),
}

impl RegistryError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            RegistryError::Invalid(t) => t.clone(),
            RegistryError::NotFound => text!("error.registry.no_holder_certificate_with_serial"),
            RegistryError::Db(_) => text!("error.http.database_error"),
            RegistryError::Der(_) => text!("error.http.internal_error"),
        }
    }
}

/// How the search text was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchBy {
    Name,
    Email,
}

/// One certificate found.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The holder as the certificate names them (the pseudonym in a pseudonymous certificate).
    pub name: String,
    /// Lower-case hex.
    pub serial: String,
    pub valid_from: String,
    pub valid_to: String,
    /// Valid, expired, revoked, suspended or not yet valid, at the time of the search.
    pub status: StatusAt,
    pub revoked_at: Option<String>,
    /// RFC 5280 reason, snake case (`key_compromise`, …).
    pub revocation_reason: Option<String>,
    /// The issuing CA's common name.
    pub issuer: String,
    pub downloads: Downloads,
}

/// Where a certificate is downloaded (paths on this service).
#[derive(Debug, Clone, Serialize)]
pub struct Downloads {
    /// The certificate, DER (`application/pkix-cert`).
    pub der: String,
    /// The certificate and the issuing CA's, PEM.
    pub chain_pem: String,
    /// The certificate and the issuing CA's, PKCS#7 certs-only (DER).
    pub chain_p7b: String,
}

/// Where the status comes from.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSources {
    pub crl: String,
    pub ocsp: String,
    /// The issuing CA's certificate (DER).
    pub issuing_ca: String,
    /// The root CA's certificate (DER).
    pub root_ca: String,
}

/// A search's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub by: SearchBy,
    pub results: Vec<Entry>,
    /// More certificates matched than [`MAX_RESULTS`]: a longer text narrows the search.
    pub truncated: bool,
    pub status_sources: StatusSources,
}

/// The download paths of a certificate.
pub fn downloads(serial: &str) -> Downloads {
    Downloads {
        der: format!("/registry/{serial}.cer"),
        chain_pem: format!("/registry/{serial}-chain.pem"),
        chain_p7b: format!("/registry/{serial}-chain.p7b"),
    }
}

/// Where relying parties check a status: the URLs written into the certificates.
pub fn status_sources(ca: &Ca) -> StatusSources {
    let base = ca.public_base();
    StatusSources {
        crl: format!("{base}/pki/crl"),
        ocsp: format!("{base}/pki/ocsp"),
        issuing_ca: format!("{base}/pki/issuing.crt"),
        root_ca: format!("{base}/pki/ca.crt"),
    }
}

/// Checks the search text and says how it is searched: with an `@`, a whole e-mail address (lower case);
/// otherwise a name of at least [`MIN_NAME`] characters. Surrounding spaces are ignored.
pub fn parse_query(q: &str) -> Result<(SearchBy, String), RegistryError> {
    let q = q.trim();
    if q.chars().count() > MAX_QUERY {
        return Err(RegistryError::Invalid(text!(
            "error.registry.search_text_too_long_at",
            most = MAX_QUERY
        )));
    }
    if q.contains('@') {
        // Stored addresses are canonical: a text that is not a bare address (a part of one, a display name) is
        // searched as typed and finds nothing.
        let email = crate::encoding::email::canonical(q).unwrap_or_else(|_| q.to_lowercase());
        return Ok((SearchBy::Email, email));
    }
    if q.chars().count() < MIN_NAME {
        return Err(RegistryError::Invalid(text!(
            "error.registry.search_for_name_at_least",
            least = MIN_NAME
        )));
    }
    Ok((SearchBy::Name, q.to_lowercase()))
}

/// A LIKE pattern matching `text` anywhere, with `\` as the escape character: the user's `%`, `_` and `\` are
/// literal.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Searches the registry at `now` (Unix seconds): the newest certificates first.
pub async fn search(db: &Db, ca: &Ca, now: i64, q: &str) -> Result<Results, RegistryError> {
    let (by, text) = parse_query(q)?;
    let limit = (MAX_RESULTS + 1) as i64;
    let rows = match by {
        SearchBy::Email => db::registry::by_email(db, &text, limit).await?,
        SearchBy::Name => db::registry::by_name(db, &like_pattern(&text), limit).await?,
    };
    let truncated = rows.len() > MAX_RESULTS;
    let mut results = Vec::with_capacity(rows.len().min(MAX_RESULTS));
    for r in rows.iter().take(MAX_RESULTS) {
        let der = db::unb64(&r.cert_der, "certificates.cert_der")?;
        let cert = Certificate::from_der(&der)?;
        let subject = HolderSubject::from_name(&cert.tbs_certificate.subject, None);
        if by == SearchBy::Name && subject.pseudonym.is_some() {
            continue;
        }
        let (status, not_before, not_after) = (r.status, r.not_before, r.not_after);
        let revoked = status == CertificateStatus::Revoked;
        let serial = r.serial.clone();
        results.push(Entry {
            name: holder_name(&cert.tbs_certificate.subject),
            status: status_at(status, not_before, not_after, now),
            valid_from: rfc3339(not_before),
            valid_to: rfc3339(not_after),
            revoked_at: r.revoked_at.filter(|_| revoked).map(rfc3339),
            revocation_reason: r.revocation_reason.as_deref().filter(|_| revoked).map(reason_name),
            issuer: common_name(&cert.tbs_certificate.issuer)
                .unwrap_or_else(|| cert.tbs_certificate.issuer.to_string()),
            downloads: downloads(&serial),
            serial,
        });
    }
    Ok(Results {
        by,
        results,
        truncated,
        status_sources: status_sources(ca),
    })
}

/// A certificate's status at `now`, as the CRL and OCSP say it (revoked or not) with its validity period.
pub fn status_at(stored: CertificateStatus, not_before: i64, not_after: i64, now: i64) -> StatusAt {
    match stored {
        CertificateStatus::Revoked => StatusAt::Revoked,
        CertificateStatus::Suspended => StatusAt::Suspended,
        _ if now >= not_after => StatusAt::Expired,
        _ if now < not_before => StatusAt::NotYetValid,
        _ => StatusAt::Valid,
    }
}

/// A stored revocation reason in the snake case the API uses (`cessationOfOperation` → `cessation_of_operation`).
pub fn reason_name(stored: &str) -> String {
    let mut out = String::with_capacity(stored.len() + 4);
    for c in stored.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The holder's name in a certificate subject: the pseudonym, else the common name, else given name and surname.
fn holder_name(subject: &Name) -> String {
    let s = HolderSubject::from_name(subject, None);
    if let Some(p) = s.pseudonym {
        return p;
    }
    common_name(subject).unwrap_or_else(|| format!("{} {}", s.given_name, s.surname).trim().to_owned())
}

/// The first common name of a Name.
fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == rfc4519::CN)
        .and_then(|atv| {
            atv.value
                .decode_as::<der::asn1::Utf8StringRef>()
                .map(|v| v.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<der::asn1::PrintableStringRef>()
                        .map(|v| v.as_str().to_owned())
                })
                .ok()
        })
}

/// The DER of the holder certificate with this serial (hex, any case), if the registry lists it.
pub async fn certificate_der(db: &Db, serial: &str) -> Result<Vec<u8>, RegistryError> {
    let serial = serial.to_ascii_lowercase();
    if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegistryError::NotFound);
    }
    let row = db::registry::by_serial(db, &serial)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let der = db::unb64(&row.cert_der, "certificates.cert_der")?;
    Ok(der)
}

/// The certificate and the issuing CA's, PEM, holder first.
pub fn chain_pem(ca: &Ca, der: &[u8]) -> String {
    super::pem(der) + &super::pem(&ca.issuing.der)
}

/// The certificate and the issuing CA's as a PKCS#7 (CMS) SignedData with no signer and no content
/// ("certs-only", RFC 5652 §5 / RFC 8551 §3.6.2.2), DER: what a `.p7b` file holds.
pub fn chain_p7b(ca: &Ca, der: &[u8]) -> Result<Vec<u8>, RegistryError> {
    let certs = vec![
        CertificateChoices::Certificate(Certificate::from_der(der)?),
        CertificateChoices::Certificate(ca.issuing.cert.clone()),
    ];
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certs)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    Ok(ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed)?,
    }
    .to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_the_text_are_literal() {
        assert_eq!(like_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_pattern("ana"), "%ana%");
    }

    #[test]
    fn a_query_is_an_address_or_a_name_of_three_characters() {
        assert_eq!(
            parse_query("  Ana@Example.RO ").unwrap(),
            (SearchBy::Email, "ana@example.ro".into())
        );
        assert_eq!(parse_query("Pop").unwrap(), (SearchBy::Name, "pop".into()));
        assert!(parse_query("po").is_err());
        assert!(parse_query(&"a".repeat(MAX_QUERY + 1)).is_err());
        assert!(parse_query(&"ă".repeat(MAX_QUERY)).is_ok());
    }

    #[test]
    fn stored_reasons_read_in_snake_case() {
        assert_eq!(reason_name("cessationOfOperation"), "cessation_of_operation");
        assert_eq!(reason_name("key_compromise"), "key_compromise");
    }

    #[test]
    fn status_follows_revocation_then_validity() {
        use CertificateStatus::{Revoked, Valid};
        assert_eq!(status_at(Revoked, 0, 100, 200), StatusAt::Revoked);
        assert_eq!(status_at(Valid, 0, 100, 200), StatusAt::Expired);
        assert_eq!(status_at(Valid, 50, 100, 10), StatusAt::NotYetValid);
        assert_eq!(status_at(Valid, 0, 100, 50), StatusAt::Valid);
    }
}
