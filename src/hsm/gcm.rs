//! AES-GCM (NIST SP 800-38D, 96-bit IV, 128-bit tag) built from the token's AES-ECB, for a PKCS#11 layer that
//! refuses `CKM_AES_GCM`.
//!
//! p11-kit's RPC before version 0.25 (Debian 12 ships 0.24.1) forwards no mechanism parameters but those of
//! RSA-PSS and RSA-OAEP, so its client module answers `CKR_MECHANISM_INVALID` to `C_EncryptInit` with
//! `CKM_AES_GCM`; `CKM_AES_ECB` takes no parameter and passes. Every block cipher operation still happens in the
//! token under the wrap key: one `C_Encrypt` with `CKM_AES_ECB` over the hash subkey block, the pre-counter block
//! and the counter blocks. The counter mode is done here, GHASH by RustCrypto's `ghash`. The output is byte for
//! byte what the token's own AES-GCM gives (ciphertext followed by the tag), so secrets wrapped either way open
//! either way.

use zeroize::Zeroizing;

/// Bytes of an AES block.
const BLOCK: usize = 16;
/// Bytes of the IV this construction takes (the only length Parafa uses).
pub const IV_LEN: usize = 12;
/// Bytes of the tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// Why [`open`] or [`seal`] gave nothing; `E` is the error of the token's AES-ECB.
#[derive(Debug, PartialEq, Eq)]
pub enum GcmError<E> {
    /// The token's AES-ECB failed.
    Token(E),
    /// The token's AES-ECB returned another number of bytes than it was given.
    Length { given: usize, returned: usize },
    /// More data than one IV may cover (2³² − 2 blocks).
    TooLong,
    /// The tag does not match: wrong key, wrong context or altered data.
    Tag,
}

/// Encrypts `plaintext` with associated data `aad` under the key behind `ecb`, which must encrypt whole blocks with
/// AES-ECB in the token. Returns the ciphertext followed by the 16-byte tag.
pub fn seal<F, E>(ecb: F, iv: &[u8; IV_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, GcmError<E>>
where
    F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
{
    let stream = KeyStream::new(ecb, iv, plaintext.len())?;
    let mut out = xor(plaintext, &stream.counter_blocks);
    let tag = stream.tag(aad, &out);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts what [`seal`] (or the token's own AES-GCM) produced, after checking the tag over `aad` and the
/// ciphertext.
pub fn open<F, E>(ecb: F, iv: &[u8; IV_LEN], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, GcmError<E>>
where
    F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
{
    let split = sealed.len().checked_sub(TAG_LEN).ok_or(GcmError::Tag)?;
    let (ciphertext, tag) = sealed.split_at(split);
    let stream = KeyStream::new(ecb, iv, ciphertext.len())?;
    if !equal_in_constant_time(&stream.tag(aad, ciphertext), tag) {
        return Err(GcmError::Tag);
    }
    Ok(Zeroizing::new(xor(ciphertext, &stream.counter_blocks)))
}

/// What one ECB call in the token gives: the hash subkey H = E(0¹²⁸), E(J0) that masks the tag, and the key stream
/// E(inc32(J0)), E(inc32²(J0)), … for the data.
struct KeyStream {
    hash_key: Zeroizing<[u8; BLOCK]>,
    tag_mask: [u8; BLOCK],
    counter_blocks: Zeroizing<Vec<u8>>,
}

impl KeyStream {
    fn new<F, E>(ecb: F, iv: &[u8; IV_LEN], data_len: usize) -> Result<KeyStream, GcmError<E>>
    where
        F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
    {
        let counters = data_len.div_ceil(BLOCK);
        // 2³² − 2 blocks at most under one IV (the 32-bit counter must not wrap into J0).
        let counters_u32 = u32::try_from(counters)
            .ok()
            .filter(|n| *n < u32::MAX - 1)
            .ok_or(GcmError::TooLong)?;
        let mut input = Vec::with_capacity((2 + counters) * BLOCK);
        input.extend_from_slice(&[0u8; BLOCK]);
        for counter in 1..=counters_u32 + 1 {
            input.extend_from_slice(iv);
            input.extend_from_slice(&counter.to_be_bytes());
        }
        let output = Zeroizing::new(ecb(&input).map_err(GcmError::Token)?);
        if output.len() != input.len() {
            return Err(GcmError::Length {
                given: input.len(),
                returned: output.len(),
            });
        }
        let mut hash_key = Zeroizing::new([0u8; BLOCK]);
        hash_key.copy_from_slice(&output[..BLOCK]);
        let mut tag_mask = [0u8; BLOCK];
        tag_mask.copy_from_slice(&output[BLOCK..2 * BLOCK]);
        Ok(KeyStream {
            hash_key,
            tag_mask,
            counter_blocks: Zeroizing::new(output[2 * BLOCK..].to_vec()),
        })
    }

    /// The tag: E(J0) xor GHASH over the associated data, the ciphertext and their lengths in bits.
    fn tag(&self, aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        let lengths = (u128::from(bit_len(aad)) << 64) | u128::from(bit_len(ciphertext));
        let mut tag = ghash(&self.hash_key, aad, ciphertext, lengths);
        for (t, m) in tag.iter_mut().zip(self.tag_mask) {
            *t ^= m;
        }
        tag
    }
}

fn bit_len(data: &[u8]) -> u64 {
    (data.len() as u64) * 8
}

/// GHASH_H over `aad` and `ciphertext`, each zero-padded to whole blocks, then the lengths block: RustCrypto's
/// `ghash` (constant time), not a multiplication of our own.
fn ghash(hash_key: &[u8; BLOCK], aad: &[u8], ciphertext: &[u8], lengths: u128) -> [u8; BLOCK] {
    use ghash::universal_hash::{KeyInit, UniversalHash};
    let mut g = ghash::GHash::new(hash_key.into());
    g.update_padded(aad);
    g.update_padded(ciphertext);
    g.update(&[lengths.to_be_bytes().into()]);
    g.finalize().into()
}

fn xor(data: &[u8], stream: &[u8]) -> Vec<u8> {
    data.iter().zip(stream).map(|(d, s)| d ^ s).collect()
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex16(s: &str) -> [u8; 16] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// AES-ECB under the all-zero key, for the three blocks test case 2 of the GCM specification needs (its
    /// appendix gives H, E(K, Y0) and E(K, Y1)); any other block is a failure of the construction.
    fn zero_key_ecb(input: &[u8]) -> Result<Vec<u8>, String> {
        let known = [
            ("00000000000000000000000000000000", "66e94bd4ef8a2c3b884cfa59ca342b2e"),
            ("00000000000000000000000000000001", "58e2fccefa7e3061367f1d57a4e7455a"),
            ("00000000000000000000000000000002", "0388dace60b6a392f328c2b971b2fe78"),
        ];
        let mut out = Vec::new();
        for block in input.chunks(16) {
            let (_, e) = known
                .iter()
                .find(|(p, _)| hex16(p) == block)
                .ok_or_else(|| format!("unexpected block {}", hex::encode(block)))?;
            out.extend_from_slice(&hex16(e));
        }
        Ok(out)
    }

    #[test]
    fn seal_gives_the_specification_test_case_2() {
        // K = 0, IV = 0 (96 bits), P = 0 (128 bits), no associated data.
        let sealed = seal(zero_key_ecb, &[0u8; IV_LEN], &[], &[0u8; 16]).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"
        );
    }

    #[test]
    fn ghash_matches_the_specification_test_case_2() {
        let h = hex16("66e94bd4ef8a2c3b884cfa59ca342b2e");
        let c = hex16("0388dace60b6a392f328c2b971b2fe78");
        assert_eq!(ghash(&h, &[], &c, 128), hex16("f38cbb1ad69223dcc3457ae5b6b0f885"));
    }

    #[test]
    fn open_returns_the_plaintext_and_refuses_any_change() {
        let iv = [0u8; IV_LEN];
        let sealed = seal(zero_key_ecb, &iv, &[], &[0u8; 16]).unwrap();
        assert_eq!(open(zero_key_ecb, &iv, &[], &sealed).unwrap().as_slice(), &[0u8; 16]);
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert_eq!(open(zero_key_ecb, &iv, &[], &altered), Err(GcmError::Tag), "byte {i}");
        }
        assert_eq!(open(zero_key_ecb, &iv, b"other context", &sealed), Err(GcmError::Tag));
        assert_eq!(open(zero_key_ecb, &iv, &[], &sealed[..10]), Err(GcmError::Tag));
    }

    #[test]
    fn a_short_answer_from_the_token_is_an_error() {
        let short = |_: &[u8]| Ok::<_, String>(vec![0u8; 16]);
        assert_eq!(
            seal(short, &[0u8; IV_LEN], &[], b"secret"),
            Err(GcmError::Length {
                given: 48,
                returned: 16
            })
        );
    }
}
