//! Signature algorithms as CSC names them (OIDs), resolved to a token mechanism for a given key.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Sequence};
use spki::AlgorithmIdentifier;

use super::CscError;
use crate::hsm::{HashAlg, KeySpec, SignMechanism};

/// id-mgf1.
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// The `key.algo` list of credentials/info: the key OID and every signature OID this key can make.
pub fn key_algorithms(spec: KeySpec) -> Vec<String> {
    let oids = if spec.is_rsa() {
        vec![
            rfc5912::RSA_ENCRYPTION,
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            rfc5912::ID_RSASSA_PSS,
        ]
    } else {
        vec![
            rfc5912::ID_EC_PUBLIC_KEY,
            rfc5912::ECDSA_WITH_SHA_256,
            rfc5912::ECDSA_WITH_SHA_384,
            rfc5912::ECDSA_WITH_SHA_512,
        ]
    };
    oids.into_iter().map(|o| o.to_string()).collect()
}

/// A resolved signing request: the mechanism and the digest algorithm the hashes must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub mechanism: SignMechanism,
    pub hash: HashAlg,
}

fn parse_oid(value: &str, name: &str) -> Result<ObjectIdentifier, CscError> {
    oid(value).ok_or_else(|| CscError::invalid(format!("Invalid parameter {name}")))
}

/// An OID in dotted form from outside (`signAlgo`, `hashAlgo`, …). Each arc is checked to be a number that fits
/// before const-oid parses the text: its parser multiplies without a check, so an arc of 20 digits overflows
/// (a panic in debug builds, a wrong arc in release ones). Found by the `csc_body` fuzz target.
pub fn oid(text: &str) -> Option<ObjectIdentifier> {
    let text = text.trim();
    let arcs_fit = !text.is_empty()
        && text.len() <= 256
        && text
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()) && arc.parse::<u32>().is_ok());
    if !arcs_fit {
        return None;
    }
    ObjectIdentifier::new(text).ok()
}

/// The hash algorithm named by an OID (SHA-256/384/512 only; SHA-1 and MD5 are refused).
pub fn hash_from_oid(value: &str, name: &str) -> Result<HashAlg, CscError> {
    HashAlg::from_oid(&parse_oid(value, name)?).ok_or_else(|| CscError::invalid(format!("Invalid parameter {name}")))
}

/// Resolves `signAlgo` (+ `hashAlgo`, + `signAlgoParams`) for a key. A hash algorithm that contradicts the
/// signature algorithm is refused, as are PSS parameters that leave a field to its SHA-1 default.
pub fn resolve(
    spec: KeySpec,
    sign_algo: &str,
    hash_algo: Option<&str>,
    params: Option<&str>,
    hash_param_name: &str,
) -> Result<Resolved, CscError> {
    let oid = parse_oid(sign_algo, "signAlgo")?;
    let named_hash = hash_algo.map(|h| hash_from_oid(h, hash_param_name)).transpose()?;
    let implied = |h: HashAlg| -> Result<HashAlg, CscError> {
        match named_hash {
            Some(n) if n != h => Err(CscError::invalid(format!(
                "String parameter {hash_param_name} contradicts with signAlgo parameter"
            ))),
            _ => Ok(h),
        }
    };
    let need_hash = || {
        named_hash
            .ok_or_else(|| CscError::invalid(format!("Missing (or invalid type) string parameter {hash_param_name}")))
    };
    let wrong_key = || CscError::invalid("Invalid parameter signAlgo: it does not match the credential's key");
    let resolved = match oid {
        o if o == rfc5912::RSA_ENCRYPTION => {
            let hash = need_hash()?;
            Resolved {
                mechanism: SignMechanism::RsaPkcs1(hash),
                hash,
            }
        }
        o if o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => rsa(implied(HashAlg::Sha256)?),
        o if o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => rsa(implied(HashAlg::Sha384)?),
        o if o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => rsa(implied(HashAlg::Sha512)?),
        o if o == rfc5912::ID_RSASSA_PSS => {
            let params = params
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter signAlgoParams"))?;
            let (hash, salt_len) = pss_params(params)?;
            let hash = implied(hash)?;
            if !spec.is_rsa() {
                return Err(wrong_key());
            }
            let max_salt = (spec.bits() as usize / 8).saturating_sub(hash.output_len() + 2);
            if salt_len > max_salt {
                return Err(CscError::invalid(format!(
                    "Invalid parameter signAlgoParams: the salt length {salt_len} exceeds {max_salt} for this key"
                )));
            }
            Resolved {
                mechanism: SignMechanism::RsaPss {
                    hash,
                    mgf_hash: hash,
                    salt_len,
                },
                hash,
            }
        }
        o if o == rfc5912::ID_EC_PUBLIC_KEY => ecdsa(need_hash()?),
        o if o == rfc5912::ECDSA_WITH_SHA_256 => ecdsa(implied(HashAlg::Sha256)?),
        o if o == rfc5912::ECDSA_WITH_SHA_384 => ecdsa(implied(HashAlg::Sha384)?),
        o if o == rfc5912::ECDSA_WITH_SHA_512 => ecdsa(implied(HashAlg::Sha512)?),
        _ => return Err(CscError::invalid("Invalid parameter signAlgo")),
    };
    let is_rsa_mech = !matches!(resolved.mechanism, SignMechanism::Ecdsa);
    if is_rsa_mech != spec.is_rsa() {
        return Err(wrong_key());
    }
    Ok(resolved)
}

fn rsa(hash: HashAlg) -> Resolved {
    Resolved {
        mechanism: SignMechanism::RsaPkcs1(hash),
        hash,
    }
}

fn ecdsa(hash: HashAlg) -> Resolved {
    Resolved {
        mechanism: SignMechanism::Ecdsa,
        hash,
    }
}

/// RSASSA-PSS-params (RFC 8017 A.2.3). Every field that defaults to SHA-1 must be present.
#[derive(Sequence)]
struct PssParams<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifier<AnyRef<'a>>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifier<AlgorithmIdentifier<AnyRef<'a>>>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u8>,
}

/// The hash and salt length of base64 DER RSASSA-PSS parameters.
fn pss_params(b64: &str) -> Result<(HashAlg, usize), CscError> {
    let bad = |why: &str| CscError::invalid(format!("Invalid parameter signAlgoParams: {why}"));
    let der = decode_b64(b64).ok_or_else(|| bad("not base64"))?;
    let p = PssParams::from_der(&der).map_err(|_| bad("not DER RSASSA-PSS-params"))?;
    let hash = p
        .hash
        .ok_or_else(|| bad("the hash algorithm is missing (its default, SHA-1, is refused)"))?;
    let hash = HashAlg::from_oid(&hash.oid).ok_or_else(|| bad("unsupported hash algorithm"))?;
    let mgf = p
        .mask_gen
        .ok_or_else(|| bad("the mask generation function is missing"))?;
    let mgf_hash = mgf.parameters.as_ref().and_then(|a| HashAlg::from_oid(&a.oid));
    if mgf.oid != ID_MGF1 || mgf_hash != Some(hash) {
        return Err(bad("the mask generation function must be MGF1 with the same hash"));
    }
    let salt = p.salt_len.ok_or_else(|| bad("the salt length is missing"))?;
    if p.trailer.unwrap_or(1) != 1 {
        return Err(bad("the trailer field must be 1"));
    }
    Ok((hash, salt as usize))
}

pub use crate::encoding::decode_b64;

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use der::Encode;

    fn pss(hash: &str, mgf_hash: &str, salt: Option<u32>) -> String {
        #[derive(Sequence)]
        struct P {
            #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
            hash: spki::AlgorithmIdentifierOwned,
            #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
            mgf: AlgorithmIdentifier<spki::AlgorithmIdentifierOwned>,
            #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
            salt: Option<u32>,
        }
        let alg = |o: &str| spki::AlgorithmIdentifierOwned {
            oid: o.parse().unwrap(),
            parameters: None,
        };
        let p = P {
            hash: alg(hash),
            mgf: AlgorithmIdentifier {
                oid: ID_MGF1,
                parameters: Some(alg(mgf_hash)),
            },
            salt,
        };
        base64::engine::general_purpose::STANDARD.encode(p.to_der().unwrap())
    }

    const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    const SHA384: &str = "2.16.840.1.101.3.4.2.2";

    #[test]
    fn combined_and_plain_oids_resolve_for_the_right_key() {
        let r = resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.11",
            Some(SHA256),
            None,
            "hashAlgo",
        )
        .unwrap();
        assert_eq!(r.mechanism, SignMechanism::RsaPkcs1(HashAlg::Sha256));
        let r = resolve(KeySpec::Rsa2048, "1.2.840.113549.1.1.1", Some(SHA384), None, "hashAlgo").unwrap();
        assert_eq!(r.hash, HashAlg::Sha384);
        let r = resolve(KeySpec::P256, "1.2.840.10045.4.3.2", None, None, "hashAlgo").unwrap();
        assert_eq!(r.mechanism, SignMechanism::Ecdsa);
        let r = resolve(KeySpec::P256, "1.2.840.10045.2.1", Some(SHA384), None, "hashAlgo").unwrap();
        assert_eq!(r.hash, HashAlg::Sha384);
        // Wrong key type, missing hash, contradiction, unknown or SHA-1 based algorithms.
        assert!(resolve(KeySpec::P256, "1.2.840.113549.1.1.11", None, None, "hashAlgo").is_err());
        assert!(resolve(KeySpec::Rsa2048, "1.2.840.10045.4.3.2", None, None, "hashAlgo").is_err());
        assert!(resolve(KeySpec::Rsa2048, "1.2.840.113549.1.1.1", None, None, "hashAlgo").is_err());
        assert!(resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.11",
            Some(SHA384),
            None,
            "hashAlgo"
        )
        .is_err());
        assert!(resolve(KeySpec::Rsa2048, "1.2.840.113549.1.1.5", None, None, "hashAlgo").is_err());
        assert!(resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.1",
            Some("1.3.14.3.2.26"),
            None,
            "hashAlgo"
        )
        .is_err());
        assert!(resolve(KeySpec::Rsa2048, "not an oid", None, None, "hashAlgo").is_err());
    }

    #[test]
    fn pss_parameters_are_read_and_checked() {
        let r = resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.10",
            None,
            Some(&pss(SHA256, SHA256, Some(222))),
            "h",
        )
        .unwrap();
        assert_eq!(
            r.mechanism,
            SignMechanism::RsaPss {
                hash: HashAlg::Sha256,
                mgf_hash: HashAlg::Sha256,
                salt_len: 222
            }
        );
        // The salt cannot exceed k - hLen - 2; MGF1 must use the same hash; the salt may not default.
        assert!(resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.10",
            None,
            Some(&pss(SHA256, SHA256, Some(223))),
            "h"
        )
        .is_err());
        assert!(resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.10",
            None,
            Some(&pss(SHA256, SHA384, Some(32))),
            "h"
        )
        .is_err());
        assert!(resolve(
            KeySpec::Rsa2048,
            "1.2.840.113549.1.1.10",
            None,
            Some(&pss(SHA256, SHA256, None)),
            "h"
        )
        .is_err());
        assert!(resolve(KeySpec::Rsa2048, "1.2.840.113549.1.1.10", None, None, "h").is_err());
        assert!(resolve(KeySpec::Rsa2048, "1.2.840.113549.1.1.10", None, Some("!!"), "h").is_err());
    }
}
