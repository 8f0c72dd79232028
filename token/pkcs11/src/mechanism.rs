//! The signature mechanisms, and how each turns into one CSC signHash request (`signAlgo`, `signAlgoParams`,
//! `hashAlgo` and the digest) and back into the bytes PKCS#11 returns.
//!
//! The server signs digests only, with SHA-256, SHA-384 or SHA-512 (`src/csc/algo.rs`): `CKM_RSA_PKCS` is offered
//! for a DigestInfo of one of those, the way NSS and OpenSSL use it for TLS 1.2 and for documents. TLS 1.0/1.1 sign
//! the 36-byte MD5‖SHA-1 concatenation without a DigestInfo, which would need the server to apply PKCS#1 v1.5
//! padding to raw bytes (a `signAlgo` of "RSA, no hash"): CSC has no such algorithm and the server refuses MD5 and
//! SHA-1, so that input is refused here with `CKR_DATA_INVALID`, as is any other input that is not such a
//! DigestInfo.

use base64::Engine;
use cryptoki_sys::*;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use sha2::Digest;
use spki::{AlgorithmIdentifier, AlgorithmIdentifierOwned, AlgorithmIdentifierRef};

use crate::ffi::{Result, Rv};

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// The hash algorithms the server signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub const ALL: [Hash; 3] = [Hash::Sha256, Hash::Sha384, Hash::Sha512];

    /// The OID in dotted form (CSC `hashAlgo`).
    pub fn oid(self) -> &'static str {
        match self {
            Hash::Sha256 => "2.16.840.1.101.3.4.2.1",
            Hash::Sha384 => "2.16.840.1.101.3.4.2.2",
            Hash::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }

    /// The digest's length in bytes.
    pub fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest mechanism (`CKM_SHA256`, …), also the `hashAlg` of PSS parameters.
    pub fn mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            Hash::Sha256 => CKM_SHA256,
            Hash::Sha384 => CKM_SHA384,
            Hash::Sha512 => CKM_SHA512,
        }
    }

    fn mgf(self) -> CK_RSA_PKCS_MGF_TYPE {
        match self {
            Hash::Sha256 => CKG_MGF1_SHA256,
            Hash::Sha384 => CKG_MGF1_SHA384,
            Hash::Sha512 => CKG_MGF1_SHA512,
        }
    }

    pub fn from_mechanism(m: CK_MECHANISM_TYPE) -> Option<Hash> {
        Hash::ALL.into_iter().find(|h| h.mechanism() == m)
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Hash> {
        Hash::ALL.into_iter().find(|h| h.oid() == oid.to_string())
    }

    /// The hash a bare digest of this length was made with (`CKM_ECDSA` has no other clue).
    fn from_len(len: usize) -> Option<Hash> {
        Hash::ALL.into_iter().find(|h| h.len() == len)
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Hash::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Hash::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Hash::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// A running hash (`C_Digest*`, and the hashed signature mechanisms' `C_SignUpdate`).
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }

    pub fn output_len(&self) -> usize {
        match self {
            Hasher::Sha256(_) => 32,
            Hasher::Sha384(_) => 48,
            Hasher::Sha512(_) => 64,
        }
    }
}

/// A signature mechanism the module offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `CKM_RSA_PKCS`: a DigestInfo in.
    RsaPkcs,
    /// `CKM_SHA256_RSA_PKCS`, …: the message in, hashed here.
    RsaPkcsWith(Hash),
    /// `CKM_RSA_PKCS_PSS`: a digest in, with its `CK_RSA_PKCS_PSS_PARAMS`.
    RsaPss,
    /// `CKM_SHA256_RSA_PKCS_PSS`, …
    RsaPssWith(Hash),
    /// `CKM_ECDSA`: a digest in, raw `r‖s` out.
    Ecdsa,
    /// `CKM_ECDSA_SHA256`, …
    EcdsaWith(Hash),
}

impl Mechanism {
    /// Every mechanism, in the order the module lists them.
    pub const ALL: [Mechanism; 12] = [
        Mechanism::RsaPkcs,
        Mechanism::RsaPkcsWith(Hash::Sha256),
        Mechanism::RsaPkcsWith(Hash::Sha384),
        Mechanism::RsaPkcsWith(Hash::Sha512),
        Mechanism::RsaPss,
        Mechanism::RsaPssWith(Hash::Sha256),
        Mechanism::RsaPssWith(Hash::Sha384),
        Mechanism::RsaPssWith(Hash::Sha512),
        Mechanism::Ecdsa,
        Mechanism::EcdsaWith(Hash::Sha256),
        Mechanism::EcdsaWith(Hash::Sha384),
        Mechanism::EcdsaWith(Hash::Sha512),
    ];

    pub fn ck(self) -> CK_MECHANISM_TYPE {
        match self {
            Mechanism::RsaPkcs => CKM_RSA_PKCS,
            Mechanism::RsaPkcsWith(Hash::Sha256) => CKM_SHA256_RSA_PKCS,
            Mechanism::RsaPkcsWith(Hash::Sha384) => CKM_SHA384_RSA_PKCS,
            Mechanism::RsaPkcsWith(Hash::Sha512) => CKM_SHA512_RSA_PKCS,
            Mechanism::RsaPss => CKM_RSA_PKCS_PSS,
            Mechanism::RsaPssWith(Hash::Sha256) => CKM_SHA256_RSA_PKCS_PSS,
            Mechanism::RsaPssWith(Hash::Sha384) => CKM_SHA384_RSA_PKCS_PSS,
            Mechanism::RsaPssWith(Hash::Sha512) => CKM_SHA512_RSA_PKCS_PSS,
            Mechanism::Ecdsa => CKM_ECDSA,
            Mechanism::EcdsaWith(Hash::Sha256) => CKM_ECDSA_SHA256,
            Mechanism::EcdsaWith(Hash::Sha384) => CKM_ECDSA_SHA384,
            Mechanism::EcdsaWith(Hash::Sha512) => CKM_ECDSA_SHA512,
        }
    }

    pub fn from_ck(m: CK_MECHANISM_TYPE) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|x| x.ck() == m)
    }

    pub fn is_rsa(self) -> bool {
        !matches!(self, Mechanism::Ecdsa | Mechanism::EcdsaWith(_))
    }

    /// The hash the module computes itself (the hashed forms), `None` when the input is already a digest.
    pub fn hashes_with(self) -> Option<Hash> {
        match self {
            Mechanism::RsaPkcsWith(h) | Mechanism::RsaPssWith(h) | Mechanism::EcdsaWith(h) => Some(h),
            Mechanism::RsaPkcs | Mechanism::RsaPss | Mechanism::Ecdsa => None,
        }
    }

    /// The mechanisms a credential's `key.algo` OIDs allow, exactly: the plain key OID allows the digest-in form
    /// (`rsaEncryption` → `CKM_RSA_PKCS`, `id-ecPublicKey` → `CKM_ECDSA`), each combined OID its hashed form, and
    /// `id-RSASSA-PSS` every PSS form (its parameters name the hash).
    pub fn allowed_by(key_algos: &[String]) -> Vec<Mechanism> {
        let allowed = |m: Mechanism| {
            key_algos.iter().any(|oid| match (oid.trim(), m) {
                (RSA_ENCRYPTION, Mechanism::RsaPkcs) => true,
                (RSASSA_PSS, Mechanism::RsaPss | Mechanism::RsaPssWith(_)) => true,
                (EC_PUBLIC_KEY, Mechanism::Ecdsa) => true,
                (o, Mechanism::RsaPkcsWith(h) | Mechanism::EcdsaWith(h)) => combined_oid(m, h) == Some(o),
                _ => false,
            })
        };
        Mechanism::ALL.into_iter().filter(|&m| allowed(m)).collect()
    }
}

/// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, …
fn combined_oid(m: Mechanism, h: Hash) -> Option<&'static str> {
    Some(match (m, h) {
        (Mechanism::RsaPkcsWith(_), Hash::Sha256) => "1.2.840.113549.1.1.11",
        (Mechanism::RsaPkcsWith(_), Hash::Sha384) => "1.2.840.113549.1.1.12",
        (Mechanism::RsaPkcsWith(_), Hash::Sha512) => "1.2.840.113549.1.1.13",
        (Mechanism::EcdsaWith(_), Hash::Sha256) => "1.2.840.10045.4.3.2",
        (Mechanism::EcdsaWith(_), Hash::Sha384) => "1.2.840.10045.4.3.3",
        (Mechanism::EcdsaWith(_), Hash::Sha512) => "1.2.840.10045.4.3.4",
        _ => return None,
    })
}

/// RSASSA-PSS parameters: the hash (also MGF1's, as the server requires) and the salt's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pss {
    pub hash: Hash,
    pub salt_len: u32,
}

/// RSASSA-PSS-params (RFC 8017 A.2.3) as the module writes them: the hash, MGF1 with that hash and the salt length
/// always present (the server refuses a field left to its SHA-1 or 20-byte default); the trailer field is left out,
/// as DER requires for its default value (1, the only one there is).
#[derive(Sequence)]
struct PssParamsDer {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifier<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_len: u32,
}

impl Pss {
    /// Reads `CK_RSA_PKCS_PSS_PARAMS` for `mechanism` (whose own hash, for the hashed forms, must be the same).
    fn from_ck(p: &CK_RSA_PKCS_PSS_PARAMS, mechanism: Mechanism) -> Result<Pss> {
        let invalid = Rv(CKR_MECHANISM_PARAM_INVALID);
        let hash = Hash::from_mechanism(p.hashAlg).ok_or(invalid)?;
        if p.mgf != hash.mgf() || mechanism.hashes_with().is_some_and(|h| h != hash) {
            return Err(invalid);
        }
        let salt_len = u32::try_from(p.sLen).map_err(|_| invalid)?;
        Ok(Pss { hash, salt_len })
    }

    /// Checks the salt against the key: at most k − hLen − 2 bytes (RFC 8017 §9.1.1), as the server checks.
    pub fn fits(&self, modulus_bits: usize) -> bool {
        let max = (modulus_bits / 8).saturating_sub(self.hash.len() + 2);
        (self.salt_len as usize) <= max
    }

    /// DER RSASSA-PSS-params.
    pub fn to_der(self) -> Vec<u8> {
        let hash_id = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(self.hash.oid()),
            // RFC 4055 §2.1: absent and NULL are both legal; NULL is what OpenSSL writes for PSS.
            parameters: Some(der::Any::null()),
        };
        let params = PssParamsDer {
            hash: hash_id.clone(),
            mask_gen: AlgorithmIdentifier {
                oid: ID_MGF1,
                parameters: Some(hash_id),
            },
            salt_len: self.salt_len,
        };
        params.to_der().expect("RSASSA-PSS-params always encode")
    }
}

/// A signing mechanism with its parameters, as `C_SignInit` got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub mechanism: Mechanism,
    pub pss: Option<Pss>,
}

impl Params {
    /// Reads the application's `CK_MECHANISM` for signing.
    ///
    /// # Safety
    /// `m.pParameter` is null or valid for reads of `m.ulParameterLen` bytes.
    pub unsafe fn read(m: &CK_MECHANISM) -> Result<Params> {
        let mechanism = Mechanism::from_ck(m.mechanism).ok_or(Rv(CKR_MECHANISM_INVALID))?;
        let invalid = Rv(CKR_MECHANISM_PARAM_INVALID);
        let pss = match mechanism {
            Mechanism::RsaPss | Mechanism::RsaPssWith(_) => {
                if m.pParameter.is_null() || m.ulParameterLen as usize != size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
                    return Err(invalid);
                }
                // SAFETY: non-null, of the struct's size (the caller vouches it is readable); it may be unaligned.
                let p = unsafe { std::ptr::read_unaligned(m.pParameter as *const CK_RSA_PKCS_PSS_PARAMS) };
                Some(Pss::from_ck(&p, mechanism)?)
            }
            _ if m.ulParameterLen != 0 => return Err(invalid),
            _ => None,
        };
        Ok(Params { mechanism, pss })
    }
}

/// One signHash request's algorithm fields and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub sign_algo: String,
    pub sign_algo_params: Option<String>,
    pub hash: Hash,
    pub digest: Vec<u8>,
}

/// Turns the signature's input into the request: `payload` is the application's input for the digest-in
/// mechanisms, the digest the module computed for the hashed ones.
pub fn prepare(params: &Params, payload: &[u8]) -> Result<Prepared> {
    let len_range = Rv(CKR_DATA_LEN_RANGE);
    let b64 = |der: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(der);
    let (sign_algo, sign_algo_params, hash, digest) = match params.mechanism {
        Mechanism::RsaPkcs => {
            let (hash, digest) = digest_info(payload)?;
            (RSA_ENCRYPTION.to_string(), None, hash, digest.to_vec())
        }
        Mechanism::RsaPss | Mechanism::RsaPssWith(_) => {
            let pss = params.pss.ok_or(Rv(CKR_MECHANISM_PARAM_INVALID))?;
            if payload.len() != pss.hash.len() {
                return Err(len_range);
            }
            (
                RSASSA_PSS.to_string(),
                Some(b64(pss.to_der())),
                pss.hash,
                payload.to_vec(),
            )
        }
        Mechanism::Ecdsa => {
            let hash = Hash::from_len(payload.len()).ok_or(len_range)?;
            (EC_PUBLIC_KEY.to_string(), None, hash, payload.to_vec())
        }
        m @ (Mechanism::RsaPkcsWith(h) | Mechanism::EcdsaWith(h)) => {
            if payload.len() != h.len() {
                return Err(len_range);
            }
            let oid = combined_oid(m, h).ok_or(Rv(CKR_GENERAL_ERROR))?;
            (oid.to_string(), None, h, payload.to_vec())
        }
    };
    Ok(Prepared {
        sign_algo,
        sign_algo_params,
        hash,
        digest,
    })
}

#[derive(Sequence)]
struct DigestInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    digest: OctetStringRef<'a>,
}

/// Reads a DER DigestInfo (RFC 8017 §9.2): the hash (SHA-256/384/512, parameters NULL or absent) and the digest of
/// that hash's length; anything else is `CKR_DATA_INVALID`.
pub fn digest_info(input: &[u8]) -> Result<(Hash, &[u8])> {
    let invalid = Rv(CKR_DATA_INVALID);
    let info = DigestInfo::from_der(input).map_err(|_| invalid)?;
    let hash = Hash::from_oid(&info.algorithm.oid).ok_or(invalid)?;
    if !info.algorithm.parameters.is_none_or(|p: AnyRef<'_>| p.is_null()) {
        return Err(invalid);
    }
    let digest = info.digest.as_bytes();
    if digest.len() != hash.len() {
        return Err(invalid);
    }
    Ok((hash, digest))
}

#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// The raw `r‖s` PKCS#11 returns for ECDSA, from the server's DER ECDSA-Sig-Value, each half left-padded to the
/// curve's size. `None` when the DER is not such a value or a half is longer than the curve.
pub fn ecdsa_raw(der: &[u8], field_len: usize) -> Option<Vec<u8>> {
    let sig = EcdsaSigValue::from_der(der).ok()?;
    let mut raw = vec![0u8; 2 * field_len];
    for (half, value) in [sig.r, sig.s].iter().enumerate() {
        let bytes = value.as_bytes();
        if bytes.len() > field_len {
            return None;
        }
        let end = (half + 1) * field_len;
        raw[end - bytes.len()..end].copy_from_slice(bytes);
    }
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::hex;

    const SHA256_PREFIX: &str = "3031300d060960864801650304020105000420";

    #[test]
    fn a_digest_info_gives_its_hash_and_digest() {
        let digest = [7u8; 32];
        let mut input = hex(SHA256_PREFIX);
        input.extend_from_slice(&digest);
        assert_eq!(digest_info(&input), Ok((Hash::Sha256, &digest[..])));
        // SHA-512, parameters absent (also legal).
        let mut input = hex("304f300b0609608648016503040203" /* SEQ { SEQ { OID sha512 } */);
        input.extend_from_slice(&hex("0440"));
        input.extend_from_slice(&[9u8; 64]);
        assert_eq!(digest_info(&input).map(|(h, d)| (h, d.len())), Ok((Hash::Sha512, 64)));
    }

    #[test]
    fn an_input_that_is_not_a_sha2_digest_info_is_refused() {
        let invalid = Err(Rv(CKR_DATA_INVALID));
        // TLS 1.0/1.1: MD5‖SHA-1, 36 bytes, no DigestInfo.
        assert_eq!(digest_info(&[0x30; 36]), invalid);
        // A SHA-1 DigestInfo (what pkcs11-tool --test signs).
        let sha1 = hex("3021300906052b0e03021a05000414");
        assert_eq!(digest_info(&[sha1, vec![0; 20]].concat()), invalid);
        // The right prefix, the wrong digest length; trailing bytes; a bare digest.
        assert_eq!(digest_info(&[hex(SHA256_PREFIX), vec![0; 31]].concat()), invalid);
        assert_eq!(digest_info(&[hex(SHA256_PREFIX), vec![0; 33]].concat()), invalid);
        assert_eq!(digest_info(&[0u8; 32]), invalid);
        assert_eq!(digest_info(&[]), invalid);
        // Parameters that are not NULL.
        let odd = hex("3033300f0609608648016503040201040201020420");
        assert_eq!(digest_info(&[odd, vec![0; 32]].concat()), invalid);
    }

    #[test]
    fn pss_parameters_are_written_with_every_field_the_server_needs() {
        let der = Pss {
            hash: Hash::Sha256,
            salt_len: 32,
        }
        .to_der();
        // What `openssl asn1parse` shows for OpenSSL's own sha256/mgf1-sha256/salt 32 parameters.
        assert_eq!(
            der,
            hex(concat!(
                "3034",
                "a00f300d06096086480165030402010500",
                "a11c301a06092a864886f70d010108300d06096086480165030402010500",
                "a203020120"
            ))
        );
        // The default salt length (20) is still written: the server refuses a missing one.
        let der = Pss {
            hash: Hash::Sha512,
            salt_len: 20,
        }
        .to_der();
        assert!(der.ends_with(&hex("a203020114")));
    }

    #[test]
    fn pss_parameters_are_read_and_checked() {
        let p = |hash, mgf, s| CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: s,
        };
        let ok = Pss::from_ck(&p(CKM_SHA384, CKG_MGF1_SHA384, 48), Mechanism::RsaPss).unwrap();
        assert_eq!((ok.hash, ok.salt_len), (Hash::Sha384, 48));
        let invalid = Err(Rv(CKR_MECHANISM_PARAM_INVALID));
        // MGF1 with another hash, SHA-1, a hashed form with another hash.
        assert_eq!(
            Pss::from_ck(&p(CKM_SHA256, CKG_MGF1_SHA384, 32), Mechanism::RsaPss),
            invalid
        );
        assert_eq!(
            Pss::from_ck(&p(CKM_SHA_1, CKG_MGF1_SHA1, 20), Mechanism::RsaPss),
            invalid
        );
        assert_eq!(
            Pss::from_ck(&p(CKM_SHA256, CKG_MGF1_SHA256, 32), Mechanism::RsaPssWith(Hash::Sha512)),
            invalid
        );
        // The salt's bound for a 2048-bit key and SHA-256: 256 − 32 − 2 = 222.
        let salt = |s| Pss {
            hash: Hash::Sha256,
            salt_len: s,
        };
        assert!(salt(222).fits(2048));
        assert!(!salt(223).fits(2048));
    }

    #[test]
    fn the_mechanism_parameter_block_is_checked() {
        let mut params = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 32,
        };
        let mut m = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_PSS,
            pParameter: &mut params as *mut _ as *mut _,
            ulParameterLen: size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        // SAFETY: the parameter points to a live local of the size given.
        unsafe {
            assert_eq!(Params::read(&m).unwrap().pss.unwrap().salt_len, 32);
            m.ulParameterLen = 4;
            assert_eq!(Params::read(&m), Err(Rv(CKR_MECHANISM_PARAM_INVALID)));
            m.pParameter = std::ptr::null_mut();
            m.ulParameterLen = 0;
            assert_eq!(Params::read(&m), Err(Rv(CKR_MECHANISM_PARAM_INVALID)));
            m.mechanism = CKM_ECDSA;
            assert_eq!(Params::read(&m).unwrap().mechanism, Mechanism::Ecdsa);
            m.mechanism = CKM_SHA1_RSA_PKCS;
            assert_eq!(Params::read(&m), Err(Rv(CKR_MECHANISM_INVALID)));
        }
    }

    #[test]
    fn ecdsa_der_becomes_padded_r_and_s() {
        // r = 0x00ff.. (a leading zero in DER because its top bit is set), s = 0x01 (short: left-padded).
        let mut der = hex("3026");
        der.extend_from_slice(&hex("022100"));
        der.extend_from_slice(&[0xff; 32]);
        der.extend_from_slice(&hex("020101"));
        let raw = ecdsa_raw(&der, 32).unwrap();
        assert_eq!(raw.len(), 64);
        assert_eq!(&raw[..32], &[0xff; 32]);
        assert_eq!(&raw[32..63], &[0; 31]);
        assert_eq!(raw[63], 1);
        // A half longer than the curve, trailing bytes and garbage are refused.
        assert_eq!(ecdsa_raw(&der, 16), None);
        assert_eq!(ecdsa_raw(&[der.clone(), vec![0]].concat(), 32), None);
        assert_eq!(ecdsa_raw(b"garbage", 32), None);
        // P-521: 66-byte halves.
        assert_eq!(ecdsa_raw(&hex("3006020101020102"), 66).unwrap().len(), 132);
    }

    #[test]
    fn mechanisms_follow_the_credentials_algorithms_exactly() {
        let algos = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // What the server lists for an RSA key.
        let rsa = Mechanism::allowed_by(&algos(&[
            "1.2.840.113549.1.1.1",
            "1.2.840.113549.1.1.11",
            "1.2.840.113549.1.1.12",
            "1.2.840.113549.1.1.13",
            "1.2.840.113549.1.1.10",
        ]));
        assert_eq!(rsa, Mechanism::ALL[..8].to_vec());
        // An EC key without the bare id-ecPublicKey: no CKM_ECDSA.
        let ec = Mechanism::allowed_by(&algos(&["1.2.840.10045.4.3.2"]));
        assert_eq!(ec, vec![Mechanism::EcdsaWith(Hash::Sha256)]);
        assert!(Mechanism::allowed_by(&algos(&["1.2.840.113549.1.1.5"])).is_empty());
    }

    #[test]
    fn each_mechanism_becomes_its_csc_request() {
        let params = |mechanism, pss| Params { mechanism, pss };
        let d32 = [1u8; 32];
        let p = prepare(&params(Mechanism::Ecdsa, None), &[2u8; 48]).unwrap();
        assert_eq!((p.sign_algo.as_str(), p.hash), ("1.2.840.10045.2.1", Hash::Sha384));
        assert_eq!(
            prepare(&params(Mechanism::Ecdsa, None), &[2u8; 20]),
            Err(Rv(CKR_DATA_LEN_RANGE))
        );
        let p = prepare(&params(Mechanism::EcdsaWith(Hash::Sha256), None), &d32).unwrap();
        assert_eq!(p.sign_algo, "1.2.840.10045.4.3.2");
        let p = prepare(&params(Mechanism::RsaPkcsWith(Hash::Sha256), None), &d32).unwrap();
        assert_eq!(
            (p.sign_algo.as_str(), p.hash.oid()),
            ("1.2.840.113549.1.1.11", "2.16.840.1.101.3.4.2.1")
        );
        let pss = Pss {
            hash: Hash::Sha256,
            salt_len: 32,
        };
        let p = prepare(&params(Mechanism::RsaPss, Some(pss)), &d32).unwrap();
        assert_eq!(p.sign_algo, "1.2.840.113549.1.1.10");
        assert!(p.sign_algo_params.unwrap().starts_with("MDSgDzAN"));
        assert_eq!(
            prepare(&params(Mechanism::RsaPss, Some(pss)), &[0; 48]),
            Err(Rv(CKR_DATA_LEN_RANGE))
        );
        let input = [hex(SHA256_PREFIX), d32.to_vec()].concat();
        let p = prepare(&params(Mechanism::RsaPkcs, None), &input).unwrap();
        assert_eq!((p.sign_algo.as_str(), p.digest), ("1.2.840.113549.1.1.1", d32.to_vec()));
    }
}
