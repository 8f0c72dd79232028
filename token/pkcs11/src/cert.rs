//! What the module reads from a certificate: the DER pieces PKCS#11 attributes carry (subject, issuer, serial,
//! SubjectPublicKeyInfo), the public key's numbers, the names for labels and the validity dates.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use sha1::{Digest, Sha1};
use x509_cert::name::Name;
use x509_cert::Certificate;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// A certificate, read once when the token is built.
#[derive(Debug, Clone)]
pub struct Cert {
    /// The whole certificate (`CKA_VALUE`).
    pub der: Vec<u8>,
    /// DER Name (`CKA_SUBJECT`).
    pub subject: Vec<u8>,
    /// DER Name (`CKA_ISSUER`).
    pub issuer: Vec<u8>,
    /// DER INTEGER (`CKA_SERIAL_NUMBER`).
    pub serial_der: Vec<u8>,
    /// The serial in upper-case hex, without leading zero bytes (labels).
    pub serial_hex: String,
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// DER SubjectPublicKeyInfo (`CKA_PUBLIC_KEY_INFO`).
    pub spki: Vec<u8>,
    pub key: PublicKey,
    /// The subject key identifier extension, else the SHA-1 of the public key (RFC 5280 §4.2.1.2, method 1).
    pub key_id: Vec<u8>,
    /// `CK_DATE` (`YYYYMMDD`) of notBefore and notAfter.
    pub not_before: [u8; 8],
    pub not_after: [u8; 8],
}

/// The certificate's public key, as PKCS#11 key objects give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`: big-endian, no leading zero.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// `CKA_EC_PARAMS` (DER namedCurve OID) and `CKA_EC_POINT` (DER OCTET STRING of the point); the field's size in
    /// bytes (each half of a raw signature) and bits.
    Ec {
        params: Vec<u8>,
        point: Vec<u8>,
        field_len: usize,
        bits: usize,
    },
    /// Another kind of key: the certificate is shown, no key objects.
    Other,
}

impl PublicKey {
    /// The key's size in bits (`key.len`), 0 when unknown.
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { modulus, .. } => bit_len(modulus),
            PublicKey::Ec { bits, .. } => *bits,
            PublicKey::Other => 0,
        }
    }
}

/// Why a certificate could not be read.
#[derive(Debug)]
pub struct BadCert(pub String);

impl Cert {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Cert, BadCert> {
        let bad = |what: &str, e: der::Error| BadCert(format!("{what}: {e}"));
        let cert = Certificate::from_der(der).map_err(|e| bad("not an X.509 certificate", e))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let key_bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| BadCert("the public key is not whole bytes".into()))?;
        let key = if spki.algorithm.oid == RSA_ENCRYPTION {
            let rsa = pkcs1::RsaPublicKey::from_der(key_bits).map_err(|e| bad("not an RSA public key", e))?;
            PublicKey::Rsa {
                modulus: rsa.modulus.as_bytes().to_vec(),
                exponent: rsa.public_exponent.as_bytes().to_vec(),
            }
        } else if spki.algorithm.oid == EC_PUBLIC_KEY {
            let params = spki
                .algorithm
                .parameters
                .as_ref()
                .ok_or_else(|| BadCert("an EC key without its curve".into()))?;
            let curve: ObjectIdentifier = params.decode_as().map_err(|e| bad("an EC key's curve", e))?;
            let (field_len, bits) = match curve {
                c if c == P256 => (32, 256),
                c if c == P384 => (48, 384),
                c if c == P521 => (66, 521),
                _ => return Err(BadCert(format!("an unknown curve {curve}"))),
            };
            PublicKey::Ec {
                params: params.to_der().map_err(|e| bad("an EC key's curve", e))?,
                point: OctetString::new(key_bits)
                    .and_then(|o| o.to_der())
                    .map_err(|e| bad("an EC point", e))?,
                field_len,
                bits,
            }
        } else {
            PublicKey::Other
        };
        let key_id = tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .map(|o| o.as_bytes().to_vec())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| Sha1::digest(key_bits).to_vec());
        let serial = tbs.serial_number.as_bytes();
        let serial_trimmed = match serial.iter().position(|&b| b != 0) {
            Some(i) => &serial[i..],
            None => &serial[serial.len().saturating_sub(1)..],
        };
        Ok(Cert {
            der: der.to_vec(),
            subject: tbs.subject.to_der().map_err(|e| bad("the subject", e))?,
            issuer: tbs.issuer.to_der().map_err(|e| bad("the issuer", e))?,
            serial_der: tbs.serial_number.to_der().map_err(|e| bad("the serial number", e))?,
            serial_hex: serial_trimmed.iter().map(|b| format!("{b:02X}")).collect(),
            common_name: common_name(&tbs.subject),
            spki: spki.to_der().map_err(|e| bad("the public key", e))?,
            key,
            key_id,
            not_before: ck_date(tbs.validity.not_before.to_date_time()),
            not_after: ck_date(tbs.validity.not_after.to_date_time()),
        })
    }
}

/// The last common name of a Name (the most specific), read from the string types X.520 allows.
fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter_map(|atv| {
            let value = atv.value.value();
            match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                    Some(String::from_utf8_lossy(value).into_owned())
                }
                Tag::BmpString => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    Some(String::from_utf16_lossy(&units))
                }
                _ => None,
            }
        })
        .next_back()
}

fn ck_date(t: der::DateTime) -> [u8; 8] {
    let text = format!("{:04}{:02}{:02}", t.year(), t.month(), t.day());
    let mut date = [b'0'; 8];
    date.copy_from_slice(&text.as_bytes()[..8]);
    date
}

fn bit_len(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&b| b != 0) {
        Some(i) => (big_endian.len() - i) * 8 - big_endian[i].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn pem(text: &str) -> Vec<u8> {
        use base64::Engine;
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    }

    pub const RSA_LEAF: &str = include_str!("../testdata/rsa-leaf.pem");
    pub const EC_LEAF: &str = include_str!("../testdata/ec-leaf.pem");
    pub const CA: &str = include_str!("../testdata/ca.pem");

    #[test]
    fn an_rsa_certificate_gives_its_pieces() {
        let c = Cert::from_der(&pem(RSA_LEAF)).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("Ana Popescu"));
        let PublicKey::Rsa { modulus, exponent } = &c.key else {
            panic!("not RSA")
        };
        assert_eq!(modulus.len(), 256);
        assert_eq!(c.key.bits(), 2048);
        assert_eq!(exponent, &[1, 0, 1]);
        assert_eq!(c.serial_der[0], 0x02);
        assert!(!c.serial_hex.starts_with("00"));
        assert_eq!(&c.not_before[..2], b"20");
        // The subject key identifier extension, as openssl wrote it (SHA-1 of the key: 20 bytes).
        assert_eq!(c.key_id.len(), 20);
        assert_eq!(
            Name::from_der(&c.subject).unwrap().to_string(),
            "CN=Ana Popescu,O=Parafa test"
        );
    }

    #[test]
    fn an_ec_certificate_gives_its_curve_and_point() {
        let c = Cert::from_der(&pem(EC_LEAF)).unwrap();
        let PublicKey::Ec {
            params,
            point,
            field_len,
            bits,
        } = &c.key
        else {
            panic!("not EC")
        };
        assert_eq!((*field_len, *bits), (32, 256));
        assert_eq!(params, &hex("06082a8648ce3d030107"));
        // OCTET STRING of 65 bytes: 04 41 04 x y.
        assert_eq!(&point[..3], &[0x04, 0x41, 0x04]);
        assert_eq!(point.len(), 67);
    }

    #[test]
    fn the_ca_id_is_its_subject_key_identifier() {
        let ca = Cert::from_der(&pem(CA)).unwrap();
        let leaf = Certificate::from_der(&pem(RSA_LEAF)).unwrap();
        let aki = leaf
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.35"))
            .unwrap();
        let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), &ca.key_id[..]);
        assert_eq!(ca.common_name.as_deref(), Some("Parafa Test CA"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Cert::from_der(b"not a certificate").is_err());
        assert_eq!(bit_len(&[0x01, 0xff]), 9);
        assert_eq!(bit_len(&[]), 0);
    }

    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
