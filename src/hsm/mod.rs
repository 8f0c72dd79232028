//! The PKCS#11 token, through cryptoki: provisioning, a pool of logged-in sessions, key generation, signing, and
//! the AES key that wraps secrets at rest.
//!
//! One `Pkcs11` per process, initialised with `CKF_OS_LOCKING_OK` (SoftHSM2 is not thread-safe otherwise), one
//! login for the whole application (PKCS#11 login state belongs to the application, not to a session), and a pool
//! of sessions so that concurrent requests sign in parallel, each on a session of its own. Every call here blocks:
//! async callers go through `spawn_blocking`, except signatures, which have threads of their own
//! ([`Hsm::sign_digests`], in `workers`).

mod gcm;
pub mod keys;
mod provision;
mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::Instant;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{aead::GcmParams, Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::Encode;
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

pub use keys::{HashAlg, Hasher, KeySpec, SignMechanism};
pub use provision::{prepare_softhsm, HsmSecrets};

use crate::config::Settings;
use crate::metrics;

/// `CKA_ID` of the AES-256 key that wraps secrets at rest.
pub const WRAP_KEY_ID: &[u8] = b"parafa-wrap-v1";
const GCM_IV_LEN: usize = gcm::IV_LEN;
const WRAPPED_VERSION: u8 = 1;

/// What went wrong in the token, in its own terms.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {module}: {source}")]
    Module { module: String, source: CkError },
    #[error("PKCS#11 {op} failed: {source}")]
    Pkcs11 { op: &'static str, source: CkError },
    #[error("the token {0:?} was not found and Parafa does not manage this HSM: create it, or set hsm.token_label")]
    TokenMissing(String),
    #[error("no key with id {0:?} in the token")]
    KeyNotFound(String),
    #[error("the token returned a malformed value: {0}")]
    Malformed(String),
    #[error("a wrapped secret could not be unwrapped (wrong key or altered data)")]
    Unwrap,
    #[error("HSM provisioning failed: {0}")]
    Provision(String),
    #[error("the token cannot be reached: {0}")]
    Unavailable(String),
}

impl HsmError {
    fn ck(op: &'static str) -> impl FnOnce(CkError) -> HsmError {
        move |source| HsmError::Pkcs11 { op, source }
    }
}

/// One row of `parafa hsm list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectSummary {
    pub class: String,
    pub key_type: Option<String>,
    pub label: String,
    pub id: String,
    pub token: Option<bool>,
    pub private: Option<bool>,
    pub sensitive: Option<bool>,
    pub extractable: Option<bool>,
    pub never_extractable: Option<bool>,
    pub sign: Option<bool>,
}

/// An open, logged-in token with its session pool.
pub struct Hsm {
    ctx: Pkcs11,
    slot: Slot,
    pool: SessionPool,
    /// Private-key handles by `CKA_ID`: handles are stable for the application, and a lookup per signature
    /// would cost a `C_FindObjects` round on the hot path.
    key_cache: RwLock<HashMap<Vec<u8>, ObjectHandle>>,
    token_label: String,
    /// The signing threads' queue.
    workers: workers::Workers,
    /// The module refused `CKM_AES_GCM` (p11-kit's RPC before 0.25 does): the wrap key's AES-GCM is built from its
    /// AES-ECB in the token instead (see [`gcm`]).
    gcm_refused: AtomicBool,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm").field("token", &self.token_label).finish()
    }
}

impl Hsm {
    /// Opens the token named in the settings, creating it first when Parafa manages a SoftHSM2 token, logs in
    /// once and opens the session pool. [`prepare_softhsm`] must have run before, while the process had one thread.
    pub fn open(settings: &Settings) -> Result<Hsm, HsmError> {
        let module = settings.hsm.module.display().to_string();
        let ctx = Pkcs11::new(&settings.hsm.module).map_err(|source| HsmError::Module {
            module: module.clone(),
            source,
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(source) => return Err(HsmError::Module { module, source }),
        }
        let secrets = HsmSecrets::load_or_create(settings)?;
        let label = settings.hsm.token_label.clone();
        let slot = match provision::find_token(&ctx, &label)? {
            Some(slot) => slot,
            None if settings.manages_softhsm() => provision::create_token(&ctx, &label, &secrets)?,
            None => return Err(HsmError::TokenMissing(label)),
        };
        let pool = SessionPool::open(&ctx, slot, settings.hsm_sessions(), &secrets)?;
        let hsm = Hsm {
            ctx,
            slot,
            pool,
            key_cache: RwLock::new(HashMap::new()),
            token_label: label,
            workers: workers::Workers::new(),
            gcm_refused: AtomicBool::new(false),
        };
        hsm.ensure_wrap_key()?;
        Ok(hsm)
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// Sessions in the pool (the token's parallelism as Parafa uses it).
    pub fn session_count(&self) -> usize {
        self.pool.size
    }

    /// Whether the token answers (for `/ready`).
    pub fn ping(&self) -> Result<(), HsmError> {
        self.ctx
            .get_token_info(self.slot)
            .map(|_| ())
            .map_err(HsmError::ck("C_GetTokenInfo"))
    }

    /// Generates a key pair in the token: private key sensitive, never extractable, usable only for signing.
    /// Returns the public key as a SubjectPublicKeyInfo.
    pub fn generate_key_pair(
        &self,
        spec: KeySpec,
        id: &[u8],
        label: &str,
    ) -> Result<SubjectPublicKeyInfoOwned, HsmError> {
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Id(id.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        };
        let mut public = common(false);
        public.extend([
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ]);
        let mut private = common(true);
        private.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            Attribute::Unwrap(false),
        ]);
        let mechanism = if spec.is_rsa() {
            public.push(Attribute::ModulusBits(u64::from(spec.bits()).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        } else {
            let curve = spec.curve_oid().ok_or_else(|| HsmError::Malformed("curve".into()))?;
            let params = curve.to_der().map_err(|e| HsmError::Malformed(e.to_string()))?;
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        };
        let (pub_handle, priv_handle) = self.timed("generate_key_pair", |s| {
            s.generate_key_pair(&mechanism, &public, &private)
                .map_err(HsmError::ck("C_GenerateKeyPair"))
        })?;
        self.key_cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_vec(), priv_handle);
        self.pool.with(|s| public_key_info(s, pub_handle, spec))
    }

    /// The public key of the key pair with this `CKA_ID`, if the token has it.
    pub fn public_key(&self, id: &[u8], spec: KeySpec) -> Result<Option<SubjectPublicKeyInfoOwned>, HsmError> {
        self.pool.with(|s| {
            let found = s
                .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.to_vec())])
                .map_err(HsmError::ck("C_FindObjects"))?;
            match found.first() {
                Some(h) => public_key_info(s, *h, spec).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Whether the token holds a private key with this `CKA_ID`.
    pub fn has_private_key(&self, id: &[u8]) -> Result<bool, HsmError> {
        match self.private_key(id) {
            Ok(_) => Ok(true),
            Err(HsmError::KeyNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Destroys both halves of the key pair with this `CKA_ID` (rekey: the old key must not outlive its use).
    pub fn destroy_key_pair(&self, id: &[u8]) -> Result<(), HsmError> {
        self.key_cache.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.pool.with(|s| {
            let handles = s
                .find_objects(&[Attribute::Id(id.to_vec())])
                .map_err(HsmError::ck("C_FindObjects"))?;
            for h in handles {
                s.destroy_object(h).map_err(HsmError::ck("C_DestroyObject"))?;
            }
            Ok(())
        })
    }

    /// Signs a digest with the private key whose `CKA_ID` is `key_id`. ECDSA signatures come back as DER.
    pub fn sign_digest(&self, key_id: &[u8], mechanism: SignMechanism, digest: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (ck_mech, data) = match mechanism {
            SignMechanism::RsaPkcs1(hash) => {
                check_len(hash, digest)?;
                let mut data = hash.digest_info_prefix().to_vec();
                data.extend_from_slice(digest);
                (Mechanism::RsaPkcs, data)
            }
            SignMechanism::RsaPss {
                hash,
                mgf_hash,
                salt_len,
            } => {
                check_len(hash, digest)?;
                let params = PkcsPssParams {
                    hash_alg: hash_mechanism(hash),
                    mgf: mgf(mgf_hash),
                    s_len: (salt_len as u64).into(),
                };
                (Mechanism::RsaPkcsPss(params), digest.to_vec())
            }
            SignMechanism::Ecdsa => (Mechanism::Ecdsa, digest.to_vec()),
        };
        let mut handle = self.private_key(key_id)?;
        let result = self.timed("sign", |s| {
            s.sign(&ck_mech, handle, &data).map_err(HsmError::ck("C_Sign"))
        });
        let raw = match result {
            // Another process (an admin command) may have replaced the key: look it up again, once.
            Err(HsmError::Pkcs11 {
                source: CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _),
                ..
            }) => {
                self.key_cache.write().unwrap_or_else(|e| e.into_inner()).remove(key_id);
                handle = self.private_key(key_id)?;
                self.timed("sign", |s| {
                    s.sign(&ck_mech, handle, &data).map_err(HsmError::ck("C_Sign"))
                })?
            }
            other => other?,
        };
        match mechanism {
            SignMechanism::Ecdsa => keys::ecdsa_raw_to_der(&raw).map_err(|e| HsmError::Malformed(e.to_string())),
            _ => Ok(raw),
        }
    }

    /// Encrypts a secret under the token's AES-256 wrap key (AES-GCM). `context` is bound as associated data, so a
    /// ciphertext moved to another row does not decrypt.
    pub fn wrap_secret(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, HsmError> {
        let key = self.wrap_key()?;
        let mut iv = [0u8; GCM_IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let ct = self.aes_gcm_seal(key, &iv, context, plaintext)?;
        let mut out = Vec::with_capacity(1 + GCM_IV_LEN + ct.len());
        out.push(WRAPPED_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`Hsm::wrap_secret`] produced with the same `context`.
    pub fn unwrap_secret(&self, wrapped: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        if wrapped.len() < 1 + GCM_IV_LEN + 16 || wrapped[0] != WRAPPED_VERSION {
            return Err(HsmError::Unwrap);
        }
        let key = self.wrap_key()?;
        let mut iv = [0u8; GCM_IV_LEN];
        iv.copy_from_slice(&wrapped[1..1 + GCM_IV_LEN]);
        self.aes_gcm_open(key, &iv, context, &wrapped[1 + GCM_IV_LEN..])
    }

    /// AES-GCM encryption under `key` by the token, or built from the token's AES-ECB when the module refuses
    /// `CKM_AES_GCM`: the ciphertext followed by the 16-byte tag, the same bytes either way.
    fn aes_gcm_seal(
        &self,
        key: ObjectHandle,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        if !self.gcm_refused.load(Ordering::Relaxed) {
            let mut iv_param = *iv;
            let params = GcmParams::new(&mut iv_param, aad, 128.into()).map_err(HsmError::ck("GCM parameters"))?;
            let sealed = self.timed("wrap", |s| {
                s.encrypt(&Mechanism::AesGcm(params), key, plaintext)
                    .map_err(HsmError::ck("C_Encrypt"))
            });
            if let Some(sealed) = self.unless_gcm_refused(sealed)? {
                return Ok(sealed);
            }
        }
        self.timed("wrap", |s| {
            gcm::seal(|blocks| aes_ecb(s, key, blocks), iv, aad, plaintext).map_err(from_gcm)
        })
    }

    /// The inverse of [`Hsm::aes_gcm_seal`]: [`HsmError::Unwrap`] when the tag does not match.
    fn aes_gcm_open(
        &self,
        key: ObjectHandle,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        if !self.gcm_refused.load(Ordering::Relaxed) {
            let mut iv_param = *iv;
            let params = GcmParams::new(&mut iv_param, aad, 128.into()).map_err(HsmError::ck("GCM parameters"))?;
            let opened = self.timed("unwrap", |s| {
                s.decrypt(&Mechanism::AesGcm(params), key, sealed)
                    .map(Zeroizing::new)
                    .map_err(HsmError::ck("C_Decrypt"))
            });
            // Any other failure of the token's own AES-GCM is a tag that does not match.
            if let Some(opened) = self.unless_gcm_refused(opened).map_err(|_| HsmError::Unwrap)? {
                return Ok(opened);
            }
        }
        self.timed("unwrap", |s| {
            gcm::open(|blocks| aes_ecb(s, key, blocks), iv, aad, sealed).map_err(from_gcm)
        })
    }

    /// `Some` of a result of the token's own AES-GCM, or `None` when the module refused the mechanism: then it is
    /// remembered, and AES-GCM is built from AES-ECB from then on.
    fn unless_gcm_refused<T>(&self, result: Result<T, HsmError>) -> Result<Option<T>, HsmError> {
        match result {
            Err(HsmError::Pkcs11 {
                source: CkError::Pkcs11(RvError::MechanismInvalid | RvError::MechanismParamInvalid, _),
                ..
            }) => {
                if !self.gcm_refused.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        token = %self.token_label,
                        "the PKCS#11 module refuses CKM_AES_GCM; secrets are wrapped with AES-GCM built from the \
                         token's AES-ECB"
                    );
                }
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Random bytes from the token's generator.
    pub fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.pool.with(|s| {
            let mut buf = Zeroizing::new(vec![0u8; len]);
            s.generate_random_slice(&mut buf)
                .map_err(HsmError::ck("C_GenerateRandom"))?;
            Ok(buf)
        })
    }

    /// Every object in the token with the attributes that show how its keys are protected.
    pub fn list_objects(&self) -> Result<Vec<ObjectSummary>, HsmError> {
        self.pool.with(|s| {
            let handles = s.find_objects(&[]).map_err(HsmError::ck("C_FindObjects"))?;
            let wanted = [
                AttributeType::Class,
                AttributeType::KeyType,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
            ];
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                let attrs = s
                    .get_attributes(h, &wanted)
                    .map_err(HsmError::ck("C_GetAttributeValue"))?;
                let mut o = ObjectSummary {
                    class: String::new(),
                    key_type: None,
                    label: String::new(),
                    id: String::new(),
                    token: None,
                    private: None,
                    sensitive: None,
                    extractable: None,
                    never_extractable: None,
                    sign: None,
                };
                for a in attrs {
                    match a {
                        Attribute::Class(c) => o.class = c.to_string(),
                        Attribute::KeyType(k) => o.key_type = Some(k.to_string()),
                        Attribute::Label(l) => o.label = String::from_utf8_lossy(&l).into_owned(),
                        Attribute::Id(id) => o.id = printable_id(&id),
                        Attribute::Token(b) => o.token = Some(b),
                        Attribute::Private(b) => o.private = Some(b),
                        Attribute::Sensitive(b) => o.sensitive = Some(b),
                        Attribute::Extractable(b) => o.extractable = Some(b),
                        Attribute::NeverExtractable(b) => o.never_extractable = Some(b),
                        Attribute::Sign(b) => o.sign = Some(b),
                        _ => {}
                    }
                }
                out.push(o);
            }
            out.sort_by(|a, b| (&a.id, &a.class).cmp(&(&b.id, &b.class)));
            Ok(out)
        })
    }

    fn private_key(&self, id: &[u8]) -> Result<ObjectHandle, HsmError> {
        if let Some(h) = self.key_cache.read().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(*h);
        }
        let handle = self.pool.with(|s| {
            let found = s
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.to_vec())])
                .map_err(HsmError::ck("C_FindObjects"))?;
            found
                .first()
                .copied()
                .ok_or_else(|| HsmError::KeyNotFound(printable_id(id)))
        })?;
        self.key_cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_vec(), handle);
        Ok(handle)
    }

    fn wrap_key(&self) -> Result<ObjectHandle, HsmError> {
        if let Some(h) = self
            .key_cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(WRAP_KEY_ID)
        {
            return Ok(*h);
        }
        let handle = self.pool.with(|s| {
            let found = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Id(WRAP_KEY_ID.to_vec()),
                ])
                .map_err(HsmError::ck("C_FindObjects"))?;
            found
                .first()
                .copied()
                .ok_or_else(|| HsmError::KeyNotFound(printable_id(WRAP_KEY_ID)))
        })?;
        self.key_cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(WRAP_KEY_ID.to_vec(), handle);
        Ok(handle)
    }

    /// Creates the AES-256 wrap key on first start.
    fn ensure_wrap_key(&self) -> Result<(), HsmError> {
        match self.wrap_key() {
            Ok(_) => return Ok(()),
            Err(HsmError::KeyNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Id(WRAP_KEY_ID.to_vec()),
            Attribute::Label(b"Parafa secrets wrap key".to_vec()),
        ];
        self.pool.with(|s| {
            s.generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(HsmError::ck("C_GenerateKey"))
        })?;
        Ok(())
    }

    /// Runs `f` on a pooled session and records its latency under `op`.
    fn timed<T>(&self, op: &'static str, f: impl FnOnce(&Session) -> Result<T, HsmError>) -> Result<T, HsmError> {
        let start = Instant::now();
        let r = self.pool.with(f);
        metrics::observe_hsm(op, start.elapsed(), r.is_ok());
        r
    }
}

/// AES-ECB of whole blocks under `key`, in the token: the block cipher of [`gcm`].
fn aes_ecb(s: &Session, key: ObjectHandle, blocks: &[u8]) -> Result<Vec<u8>, HsmError> {
    s.encrypt(&Mechanism::AesEcb, key, blocks)
        .map_err(HsmError::ck("C_Encrypt(AES-ECB)"))
}

/// The token's errors pass through; a tag that does not match is [`HsmError::Unwrap`].
fn from_gcm(e: gcm::GcmError<HsmError>) -> HsmError {
    match e {
        gcm::GcmError::Token(e) => e,
        gcm::GcmError::Length { given, returned } => {
            HsmError::Malformed(format!("AES-ECB returned {returned} bytes for {given}"))
        }
        gcm::GcmError::TooLong => HsmError::Malformed("a secret too long for one AES-GCM IV".into()),
        gcm::GcmError::Tag => HsmError::Unwrap,
    }
}

fn check_len(hash: HashAlg, digest: &[u8]) -> Result<(), HsmError> {
    if digest.len() == hash.output_len() {
        Ok(())
    } else {
        Err(HsmError::Malformed(format!(
            "a {:?} digest has {} bytes, not {}",
            hash,
            hash.output_len(),
            digest.len()
        )))
    }
}

fn hash_mechanism(h: HashAlg) -> MechanismType {
    match h {
        HashAlg::Sha256 => MechanismType::SHA256,
        HashAlg::Sha384 => MechanismType::SHA384,
        HashAlg::Sha512 => MechanismType::SHA512,
    }
}

fn mgf(h: HashAlg) -> PkcsMgfType {
    match h {
        HashAlg::Sha256 => PkcsMgfType::MGF1_SHA256,
        HashAlg::Sha384 => PkcsMgfType::MGF1_SHA384,
        HashAlg::Sha512 => PkcsMgfType::MGF1_SHA512,
    }
}

/// An id as text when it is printable, else hex.
fn printable_id(id: &[u8]) -> String {
    match std::str::from_utf8(id) {
        Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => s.to_owned(),
        _ => hex::encode(id),
    }
}

fn public_key_info(s: &Session, handle: ObjectHandle, spec: KeySpec) -> Result<SubjectPublicKeyInfoOwned, HsmError> {
    let malformed = |e: der::Error| HsmError::Malformed(e.to_string());
    if spec.is_rsa() {
        let attrs = s
            .get_attributes(handle, &[AttributeType::Modulus, AttributeType::PublicExponent])
            .map_err(HsmError::ck("C_GetAttributeValue"))?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        let (n, e) = n
            .zip(e)
            .ok_or_else(|| HsmError::Malformed("RSA public key without modulus".into()))?;
        keys::rsa_spki(&n, &e).map_err(malformed)
    } else {
        let attrs = s
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(HsmError::ck("C_GetAttributeValue"))?;
        let point = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| HsmError::Malformed("EC public key without CKA_EC_POINT".into()))?;
        let curve = spec.curve_oid().ok_or_else(|| HsmError::Malformed("curve".into()))?;
        keys::ec_spki(curve, &point).map_err(malformed)
    }
}

/// Logged-in sessions handed out one per caller; a caller waits when all are busy.
struct SessionPool {
    idle: Mutex<Vec<Session>>,
    available: Condvar,
    size: usize,
    ctx: Pkcs11,
    slot: Slot,
}

impl SessionPool {
    fn open(ctx: &Pkcs11, slot: Slot, size: usize, secrets: &HsmSecrets) -> Result<SessionPool, HsmError> {
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            sessions.push(ctx.open_rw_session(slot).map_err(HsmError::ck("C_OpenSession"))?);
        }
        // One login for the whole application; the open sessions keep it alive.
        match sessions[0].login(UserType::User, Some(&secrets.user_pin())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(source) => return Err(HsmError::Pkcs11 { op: "C_Login", source }),
        }
        Ok(SessionPool {
            size: sessions.len(),
            idle: Mutex::new(sessions),
            available: Condvar::new(),
            ctx: ctx.clone(),
            slot,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Session) -> Result<T, HsmError>) -> Result<T, HsmError> {
        let session = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(s) = idle.pop() {
                    break s;
                }
                idle = self.available.wait(idle).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = f(&session);
        // A session the token closed under us is replaced, so the pool keeps its size.
        let session = match &result {
            Err(HsmError::Pkcs11 {
                source: CkError::Pkcs11(RvError::SessionHandleInvalid | RvError::SessionClosed, _),
                ..
            }) => match self.ctx.open_rw_session(self.slot) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "could not reopen an HSM session; the pool shrinks");
                    self.available.notify_one();
                    return result;
                }
            },
            _ => session,
        };
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(session);
        self.available.notify_one();
        result
    }
}
