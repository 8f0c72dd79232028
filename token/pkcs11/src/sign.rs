//! A signing operation, from `C_SignInit` to the agent's answer: the input gathered (hashed here for the hashed
//! mechanisms), the holder's code from a context-specific login, and the request sent once the application gives
//! room for the signature. A length query never reaches the agent, so it spends no code.

use std::sync::Arc;

use cryptoki_sys::*;
use parafa_token_proto::{self as proto, SignRequest};
use secrecy::{ExposeSecret, SecretString};

use crate::agent;
use crate::ffi::{Result, Rv};
use crate::mechanism::{self, ecdsa_raw, Hasher, Params};
use crate::object::{KeyKind, SigningKey};

/// The most a digest-in mechanism gathers through `C_SignUpdate` (a SHA-512 DigestInfo is 83 bytes).
const MAX_RAW_INPUT: usize = 1024;

enum Input {
    /// The hashed mechanisms: the message goes through the hash.
    Hashing(Box<Hasher>),
    /// The digest-in mechanisms: the bytes, gathered.
    Gathered(Vec<u8>),
}

/// An active signing operation.
pub struct SignOp {
    params: Params,
    key: Arc<SigningKey>,
    input: Input,
    /// `C_SignUpdate` was called: only `C_SignFinal` may end the operation.
    multi: bool,
    /// The holder's code from `C_Login(CKU_CONTEXT_SPECIFIC)`; `None`: the agent asks through its prompt.
    code: Option<SecretString>,
}

impl SignOp {
    pub fn new(params: Params, key: Arc<SigningKey>) -> SignOp {
        let input = match params.mechanism.hashes_with() {
            Some(h) => Input::Hashing(Box::new(h.hasher())),
            None => Input::Gathered(Vec::new()),
        };
        SignOp {
            params,
            key,
            input,
            multi: false,
            code: None,
        }
    }

    /// The signature's length, known before signing.
    pub fn signature_len(&self) -> usize {
        self.key.signature_len()
    }

    pub fn is_multi_part(&self) -> bool {
        self.multi
    }

    /// Keeps the holder's code for this operation's signature; an empty one (a protected authentication path)
    /// leaves the asking to the agent's prompt.
    pub fn set_code(&mut self, code: &[u8]) -> Result<()> {
        let code = std::str::from_utf8(code).map_err(|_| Rv(CKR_PIN_INVALID))?.trim();
        self.code = (!code.is_empty()).then(|| SecretString::from(code.to_string()));
        Ok(())
    }

    pub fn update(&mut self, part: &[u8]) -> Result<()> {
        self.multi = true;
        match &mut self.input {
            Input::Hashing(h) => h.update(part),
            Input::Gathered(bytes) => {
                if bytes.len() + part.len() > MAX_RAW_INPUT {
                    return Err(Rv(CKR_DATA_LEN_RANGE));
                }
                bytes.extend_from_slice(part);
            }
        }
        Ok(())
    }

    /// The request for a single-part signature of `data` (`C_Sign`).
    pub fn single(self, data: &[u8]) -> Result<Job> {
        let payload = match &self.input {
            Input::Hashing(h) => {
                let mut h = (**h).clone();
                h.update(data);
                h.finish()
            }
            Input::Gathered(_) => data.to_vec(),
        };
        self.job(&payload)
    }

    /// The request for what `C_SignUpdate` gathered (`C_SignFinal`).
    pub fn finish(self) -> Result<Job> {
        let payload = match &self.input {
            Input::Hashing(h) => (**h).clone().finish(),
            Input::Gathered(bytes) => bytes.clone(),
        };
        self.job(&payload)
    }

    fn job(self, payload: &[u8]) -> Result<Job> {
        use base64::Engine;
        let prepared = mechanism::prepare(&self.params, payload)?;
        let request = SignRequest {
            version: proto::VERSION,
            credential: self.key.credential.clone(),
            sign_algo: prepared.sign_algo,
            sign_algo_params: prepared.sign_algo_params,
            hash_algo: prepared.hash.oid().to_string(),
            hash: base64::engine::general_purpose::STANDARD.encode(&prepared.digest),
            code: self.code.as_ref().map(|c| c.expose_secret().to_string()),
            app: agent::application(),
            // A digest does not tell a document from a TLS handshake: the module says nothing rather than guess.
            purpose: None,
        };
        Ok(Job { request, key: self.key })
    }
}

/// A signature to ask the agent for; run without the module's lock held.
pub struct Job {
    request: SignRequest,
    key: Arc<SigningKey>,
}

impl Job {
    /// Asks the agent and turns its answer into PKCS#11's bytes: RSA left-padded to the modulus's length, ECDSA
    /// as raw `r‖s`.
    pub fn run(self) -> Result<Vec<u8>> {
        let len = self.key.signature_len();
        let signature = agent::sign(self.request).map_err(|f| {
            crate::debug(&format!("the signature failed: {f}"));
            f.sign_rv()
        })?;
        let device_error = Rv(CKR_DEVICE_ERROR);
        match self.key.kind {
            KeyKind::Rsa { .. } => {
                if signature.len() > len || signature.is_empty() {
                    return Err(device_error);
                }
                let mut padded = vec![0u8; len - signature.len()];
                padded.extend_from_slice(&signature);
                Ok(padded)
            }
            KeyKind::Ec { field_len } => ecdsa_raw(&signature, field_len).ok_or(device_error),
        }
    }

    #[cfg(test)]
    pub fn request(&self) -> &SignRequest {
        &self.request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::{Hash, Mechanism, Pss};
    use sha2::Digest;

    fn key(kind: KeyKind) -> Arc<SigningKey> {
        Arc::new(SigningKey {
            credential: "cred-1".into(),
            mechanisms: Mechanism::ALL.to_vec(),
            kind,
        })
    }

    fn op(mechanism: Mechanism, pss: Option<Pss>) -> SignOp {
        SignOp::new(Params { mechanism, pss }, key(KeyKind::Rsa { modulus_bits: 2048 }))
    }

    #[test]
    fn single_and_multi_part_hash_the_same_message() {
        let message = b"the document to sign";
        let single = op(Mechanism::RsaPkcsWith(Hash::Sha384), None).single(message).unwrap();
        let mut multi = op(Mechanism::RsaPkcsWith(Hash::Sha384), None);
        multi.update(&message[..5]).unwrap();
        multi.update(&message[5..]).unwrap();
        assert!(multi.is_multi_part());
        let multi = multi.finish().unwrap();
        assert_eq!(single.request(), multi.request());
        use base64::Engine;
        let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(message));
        assert_eq!(single.request().hash, digest);
        assert_eq!(single.request().sign_algo, "1.2.840.113549.1.1.12");
        assert_eq!(single.request().code, None);
    }

    #[test]
    fn the_code_of_a_context_login_goes_with_the_one_request() {
        let mut with_code = op(Mechanism::Ecdsa, None);
        with_code.set_code(b"123456").unwrap();
        assert_eq!(
            with_code.single(&[0; 32]).unwrap().request().code.as_deref(),
            Some("123456")
        );
        // An empty code (a protected authentication path): the agent asks.
        let mut empty = op(Mechanism::Ecdsa, None);
        empty.set_code(b"").unwrap();
        assert_eq!(empty.single(&[0; 32]).unwrap().request().code, None);
        assert_eq!(op(Mechanism::Ecdsa, None).set_code(&[0xff]), Err(Rv(CKR_PIN_INVALID)));
    }

    #[test]
    fn gathered_input_is_bounded_and_checked_at_the_end() {
        let mut raw = op(Mechanism::RsaPkcs, None);
        assert_eq!(raw.update(&[0; MAX_RAW_INPUT + 1]), Err(Rv(CKR_DATA_LEN_RANGE)));
        let mut raw = op(Mechanism::RsaPkcs, None);
        raw.update(&[0; 40]).unwrap();
        assert_eq!(raw.finish().err(), Some(Rv(CKR_DATA_INVALID)));
        let pss = Pss {
            hash: Hash::Sha256,
            salt_len: 32,
        };
        let job = op(Mechanism::RsaPssWith(Hash::Sha256), Some(pss)).single(b"m").unwrap();
        assert!(job.request().sign_algo_params.is_some());
        assert_eq!(job.request().hash_algo, Hash::Sha256.oid());
    }
}
