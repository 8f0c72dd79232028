//! Key types, signature mechanisms and the DER shapes around them (SubjectPublicKeyInfo, DigestInfo, ECDSA-Sig-Value).
//!
//! PKCS#11 speaks raw values (an RSA modulus, an EC point, ECDSA `r‖s`); X.509 and CMS speak DER. This module
//! converts between the two and nothing else.

use const_oid::db::{rfc5912, rfc5912::ID_EC_PUBLIC_KEY};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The key types, named in the settings (defined there: the settings know nothing of the token); their
/// algorithms are here.
pub use crate::config::KeySpec;

impl KeySpec {
    /// The named curve, for EC keys.
    pub fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            KeySpec::P256 => Some(rfc5912::SECP_256_R_1),
            KeySpec::P384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    /// The hash that goes with this key when Parafa itself signs (certificates, CRLs, responses).
    pub fn default_hash(self) -> HashAlg {
        match self {
            KeySpec::P384 | KeySpec::Rsa3072 => HashAlg::Sha384,
            _ => HashAlg::Sha256,
        }
    }

    /// The mechanism Parafa uses to sign with this key and hash (PKCS#1 v1.5 for RSA).
    pub fn default_mechanism(self, hash: HashAlg) -> SignMechanism {
        if self.is_rsa() {
            SignMechanism::RsaPkcs1(hash)
        } else {
            SignMechanism::Ecdsa
        }
    }
}

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlg::Sha256 => rfc5912::ID_SHA_256,
            HashAlg::Sha384 => rfc5912::ID_SHA_384,
            HashAlg::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// The algorithm for an OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
            .into_iter()
            .find(|h| h.oid() == *oid)
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finish()
    }

    /// A running digest of this algorithm, fed piece by piece.
    pub fn hasher(self) -> Hasher {
        use sha2::Digest;
        match self {
            HashAlg::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The DER DigestInfo prefix (RFC 8017 §9.2 note 1) that precedes the digest for RSA PKCS#1 v1.5.
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        }
    }
}

/// A digest being computed: fed as the bytes come, cloned to finish it two ways (a document's digest, and the
/// digest of the document followed by what is appended to it).
#[derive(Debug, Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Which algorithm this is.
    pub fn alg(&self) -> HashAlg {
        match self {
            Hasher::Sha256(_) => HashAlg::Sha256,
            Hasher::Sha384(_) => HashAlg::Sha384,
            Hasher::Sha512(_) => HashAlg::Sha512,
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// How a digest is signed in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// `CKM_RSA_PKCS` over the DigestInfo of the given hash.
    RsaPkcs1(HashAlg),
    /// `CKM_RSA_PKCS_PSS` with MGF1 over `mgf_hash` and the given salt length.
    RsaPss {
        hash: HashAlg,
        mgf_hash: HashAlg,
        salt_len: usize,
    },
    /// `CKM_ECDSA` over the digest; the token's `r‖s` is returned as a DER ECDSA-Sig-Value.
    Ecdsa,
}

impl SignMechanism {
    /// The X.509/CMS signature algorithm identifier for this mechanism (`hash` is the digest actually signed).
    pub fn algorithm_identifier(self, hash: HashAlg) -> AlgorithmIdentifierOwned {
        let null = || Some(der::Any::from(der::asn1::Null));
        match self {
            SignMechanism::RsaPkcs1(h) => AlgorithmIdentifierOwned {
                oid: match h {
                    HashAlg::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                    HashAlg::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
                    HashAlg::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
                },
                parameters: null(),
            },
            SignMechanism::Ecdsa => AlgorithmIdentifierOwned {
                oid: match hash {
                    HashAlg::Sha256 => rfc5912::ECDSA_WITH_SHA_256,
                    HashAlg::Sha384 => rfc5912::ECDSA_WITH_SHA_384,
                    HashAlg::Sha512 => rfc5912::ECDSA_WITH_SHA_512,
                },
                parameters: None,
            },
            SignMechanism::RsaPss { .. } => AlgorithmIdentifierOwned {
                // Parameters of RSASSA-PSS are carried by the caller that asked for PSS (CSC signAlgoParams).
                oid: rfc5912::ID_RSASSA_PSS,
                parameters: None,
            },
        }
    }
}

/// An ECDSA-Sig-Value (RFC 3279 §2.2.3).
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts PKCS#11's raw ECDSA `r‖s` into the DER ECDSA-Sig-Value X.509 and CMS carry.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, der::Error> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(der::ErrorKind::Length {
            tag: der::Tag::Sequence,
        }
        .into());
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: UintRef::new(strip_zeros(r))?,
        s: UintRef::new(strip_zeros(s))?,
    }
    .to_der()
}

/// Converts a DER ECDSA-Sig-Value back into the fixed-width `r‖s` XML signatures carry (RFC 4050 / XMLDSig 1.1:
/// each half `field_len` bytes, big-endian, left-padded with zeros).
pub fn ecdsa_der_to_raw(der_sig: &[u8], field_len: usize) -> Result<Vec<u8>, der::Error> {
    let sig = EcdsaSigValue::from_der(der_sig)?;
    let mut raw = vec![0u8; 2 * field_len];
    for (half, value) in [sig.r.as_bytes(), sig.s.as_bytes()].into_iter().enumerate() {
        if value.len() > field_len {
            return Err(der::ErrorKind::Length { tag: der::Tag::Integer }.into());
        }
        let end = (half + 1) * field_len;
        raw[end - value.len()..end].copy_from_slice(value);
    }
    Ok(raw)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

/// SubjectPublicKeyInfo of an RSA key from its modulus and public exponent (big-endian, as PKCS#11 gives them).
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    let key = pkcs1::RsaPublicKey {
        modulus: UintRef::new(strip_zeros(modulus))?,
        public_exponent: UintRef::new(strip_zeros(exponent))?,
    };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(der::Any::from(der::asn1::Null)),
        },
        subject_public_key: BitString::from_bytes(&key.to_der()?)?,
    })
}

/// SubjectPublicKeyInfo of an EC key from PKCS#11's `CKA_EC_POINT` (a DER OCTET STRING holding the point).
pub fn ec_spki(curve: ObjectIdentifier, ec_point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    // Some modules return the bare point instead of the DER-wrapped one; accept both.
    let point = match OctetString::from_der(ec_point) {
        Ok(os) if os.as_bytes().first() == Some(&0x04) => os.as_bytes().to_vec(),
        _ => ec_point.to_vec(),
    };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::from(&curve)),
        },
        subject_public_key: BitString::from_bytes(&point)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_prefixes_are_the_der_of_digest_info() {
        // DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest }
        for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let mut full = h.digest_info_prefix().to_vec();
            full.extend(h.digest(b"x"));
            #[derive(Sequence)]
            struct DigestInfo {
                alg: AlgorithmIdentifierOwned,
                digest: OctetString,
            }
            let di = DigestInfo::from_der(&full).unwrap();
            assert_eq!(di.alg.oid, h.oid());
            assert_eq!(di.digest.as_bytes().len(), h.output_len());
        }
    }

    #[test]
    fn ecdsa_raw_signature_becomes_der_with_positive_integers() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r's top bit set: needs a leading zero in DER
        raw[63] = 1; // s is 1 after stripping zeros
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        let sig = EcdsaSigValue::from_der(&der).unwrap();
        assert_eq!(sig.r.as_bytes().len(), 32);
        assert_eq!(sig.s.as_bytes(), &[1]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn key_specs_parse_and_print() {
        for k in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::P256, KeySpec::P384] {
            assert_eq!(k.as_str().parse::<KeySpec>().unwrap(), k);
        }
        assert!("ed25519".parse::<KeySpec>().is_err());
    }
}
