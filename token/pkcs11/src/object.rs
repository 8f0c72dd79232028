//! The token's objects: per credential its certificate, public key and private key, and the CA certificates of the
//! chains. Each object holds its attributes as PKCS#11 gives them out, so that `C_GetAttributeValue` and the
//! template matching of `C_FindObjectsInit` read the same values.

use std::collections::BTreeMap;
use std::sync::Arc;

use cryptoki_sys::*;

use crate::cert::{Cert, PublicKey};
use crate::mechanism::Mechanism;

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Ulong(CK_ULONG),
    Bytes(Vec<u8>),
    /// `CKA_ALLOWED_MECHANISMS`: an array of `CK_MECHANISM_TYPE`.
    Mechanisms(Vec<CK_MECHANISM_TYPE>),
    /// An attribute the object has and never gives out (the private key's numbers): `CKR_ATTRIBUTE_SENSITIVE`.
    Sensitive,
}

impl Value {
    /// The bytes PKCS#11 hands out (`None` for a sensitive attribute).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            Value::Bool(b) => vec![u8::from(*b)],
            Value::Ulong(v) => v.to_ne_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            Value::Mechanisms(ms) => ms.iter().flat_map(|m| m.to_ne_bytes()).collect(),
            Value::Sensitive => return None,
        })
    }

    /// Whether a template's value asks for this one. A boolean matches any true byte for true (applications pass
    /// `CK_TRUE` as 1, a few as other non-zero values); a sensitive attribute never matches.
    fn matches(&self, wanted: &[u8]) -> bool {
        match self {
            Value::Bool(b) => wanted.len() == 1 && (wanted[0] != 0) == *b,
            Value::Sensitive => false,
            other => other.bytes().as_deref() == Some(wanted),
        }
    }
}

/// What the module needs to sign with a private key object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The CSC credential id.
    pub credential: String,
    /// The mechanisms the credential's `key.algo` allows (`CKA_ALLOWED_MECHANISMS`).
    pub mechanisms: Vec<Mechanism>,
    pub kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { modulus_bits: usize },
    Ec { field_len: usize },
}

impl SigningKey {
    /// The signature's length in bytes: the modulus's for RSA, twice the field's for ECDSA (`r‖s`).
    pub fn signature_len(&self) -> usize {
        match self.kind {
            KeyKind::Rsa { modulus_bits } => modulus_bits.div_ceil(8),
            KeyKind::Ec { field_len } => 2 * field_len,
        }
    }
}

/// One object.
#[derive(Debug, Clone)]
pub struct Object {
    pub handle: CK_OBJECT_HANDLE,
    attributes: BTreeMap<CK_ATTRIBUTE_TYPE, Value>,
    /// For a private key: how to sign with it.
    pub key: Option<Arc<SigningKey>>,
}

impl Object {
    /// The attribute's value, `None` when the object has no such attribute.
    pub fn get(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&Value> {
        self.attributes.get(&kind)
    }

    /// Whether every attribute of the template is the object's (an empty template matches everything).
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template
            .iter()
            .all(|(kind, wanted)| self.get(*kind).is_some_and(|v| v.matches(wanted)))
    }
}

/// Builds objects' attribute sets.
struct Attributes(BTreeMap<CK_ATTRIBUTE_TYPE, Value>);

impl Attributes {
    /// The common attributes of a token object that nobody may change, copy or destroy.
    fn storage(class: CK_OBJECT_CLASS, label: &str, private: bool) -> Attributes {
        let mut a = Attributes(BTreeMap::new());
        a.ulong(CKA_CLASS, class)
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, private)
            .bool(CKA_MODIFIABLE, false)
            .bool(CKA_COPYABLE, false)
            .bool(CKA_DESTROYABLE, false)
            .bytes(CKA_LABEL, label.as_bytes());
        a
    }

    fn bool(&mut self, kind: CK_ATTRIBUTE_TYPE, v: bool) -> &mut Self {
        self.0.insert(kind, Value::Bool(v));
        self
    }

    fn ulong(&mut self, kind: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> &mut Self {
        self.0.insert(kind, Value::Ulong(v));
        self
    }

    fn bytes(&mut self, kind: CK_ATTRIBUTE_TYPE, v: &[u8]) -> &mut Self {
        self.0.insert(kind, Value::Bytes(v.to_vec()));
        self
    }

    fn sensitive(&mut self, kinds: &[CK_ATTRIBUTE_TYPE]) -> &mut Self {
        for &k in kinds {
            self.0.insert(k, Value::Sensitive);
        }
        self
    }

    fn into_object(self, handle: CK_OBJECT_HANDLE, key: Option<Arc<SigningKey>>) -> Object {
        Object {
            handle,
            attributes: self.0,
            key,
        }
    }
}

/// An X.509 certificate object: the holder's (`category` 1, token user) or a CA's (2, authority).
pub fn certificate(handle: CK_OBJECT_HANDLE, cert: &Cert, id: &[u8], label: &str, category: CK_ULONG) -> Object {
    use sha1::Digest;
    let mut a = Attributes::storage(CKO_CERTIFICATE, label, false);
    a.ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .bool(CKA_TRUSTED, false)
        .ulong(CKA_CERTIFICATE_CATEGORY, category)
        .bytes(CKA_CHECK_VALUE, &sha1::Sha1::digest(&cert.der)[..3])
        .bytes(CKA_START_DATE, &cert.not_before)
        .bytes(CKA_END_DATE, &cert.not_after)
        .bytes(CKA_PUBLIC_KEY_INFO, &cert.spki)
        .bytes(CKA_SUBJECT, &cert.subject)
        .bytes(CKA_ID, id)
        .bytes(CKA_ISSUER, &cert.issuer)
        .bytes(CKA_SERIAL_NUMBER, &cert.serial_der)
        .bytes(CKA_VALUE, &cert.der)
        .bytes(CKA_URL, b"")
        .bytes(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, b"")
        .bytes(CKA_HASH_OF_ISSUER_PUBLIC_KEY, b"")
        .ulong(CKA_JAVA_MIDP_SECURITY_DOMAIN, CK_SECURITY_DOMAIN_UNSPECIFIED)
        .ulong(CKA_NAME_HASH_ALGORITHM, CKM_SHA_1);
    a.into_object(handle, None)
}

/// The attributes both key objects share (PKCS#11 2.40 §4.7 and 4.8).
fn key_common(class: CK_OBJECT_CLASS, cert: &Cert, key: &SigningKey, id: &[u8], label: &str) -> Attributes {
    let private = class == CKO_PRIVATE_KEY;
    let mut a = Attributes::storage(class, label, private);
    let (key_type, generated_by) = match key.kind {
        KeyKind::Rsa { .. } => (CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN),
        KeyKind::Ec { .. } => (CKK_EC, CKM_EC_KEY_PAIR_GEN),
    };
    a.ulong(CKA_KEY_TYPE, key_type)
        .bytes(CKA_ID, id)
        .bytes(CKA_START_DATE, &cert.not_before)
        .bytes(CKA_END_DATE, &cert.not_after)
        .bool(CKA_DERIVE, false)
        // Parafa generates every key in its HSM, where it stays.
        .bool(CKA_LOCAL, true)
        .ulong(CKA_KEY_GEN_MECHANISM, generated_by)
        .bytes(CKA_SUBJECT, &cert.subject)
        .bytes(CKA_PUBLIC_KEY_INFO, &cert.spki);
    a.0.insert(
        CKA_ALLOWED_MECHANISMS,
        Value::Mechanisms(key.mechanisms.iter().map(|m| m.ck()).collect()),
    );
    match &cert.key {
        PublicKey::Rsa { modulus, exponent } => {
            a.bytes(CKA_MODULUS, modulus)
                .ulong(CKA_MODULUS_BITS, cert.key.bits() as CK_ULONG)
                .bytes(CKA_PUBLIC_EXPONENT, exponent);
        }
        // CKA_EC_POINT is a public key attribute; NSS and OpenSSL's engine also read it from the private key.
        PublicKey::Ec { params, point, .. } => {
            a.bytes(CKA_EC_PARAMS, params).bytes(CKA_EC_POINT, point);
        }
        PublicKey::Other => {}
    }
    a
}

/// The public key object. It verifies nothing here (`CKA_VERIFY` false: the module offers no verify mechanism;
/// applications verify with the certificate).
pub fn public_key(handle: CK_OBJECT_HANDLE, cert: &Cert, key: &Arc<SigningKey>, id: &[u8], label: &str) -> Object {
    let mut a = key_common(CKO_PUBLIC_KEY, cert, key, id, label);
    a.bool(CKA_ENCRYPT, false)
        .bool(CKA_VERIFY, false)
        .bool(CKA_VERIFY_RECOVER, false)
        .bool(CKA_WRAP, false)
        .bool(CKA_TRUSTED, false)
        .bytes(CKA_WRAP_TEMPLATE, b"");
    a.into_object(handle, None)
}

/// The private key object: it signs, each use authenticated (the holder's code), and never leaves the HSM.
/// `always_authenticate` is whether it asks the application for a context login before each signature (see
/// [`crate::host::uses_nss`] for where it does not).
pub fn private_key(
    handle: CK_OBJECT_HANDLE,
    cert: &Cert,
    key: &Arc<SigningKey>,
    id: &[u8],
    label: &str,
    always_authenticate: bool,
) -> Object {
    let mut a = key_common(CKO_PRIVATE_KEY, cert, key, id, label);
    a.bool(CKA_SENSITIVE, true)
        .bool(CKA_DECRYPT, false)
        .bool(CKA_SIGN, true)
        .bool(CKA_SIGN_RECOVER, false)
        .bool(CKA_UNWRAP, false)
        .bool(CKA_EXTRACTABLE, false)
        .bool(CKA_ALWAYS_SENSITIVE, true)
        .bool(CKA_NEVER_EXTRACTABLE, true)
        .bool(CKA_WRAP_WITH_TRUSTED, false)
        .bytes(CKA_UNWRAP_TEMPLATE, b"")
        .bool(CKA_ALWAYS_AUTHENTICATE, always_authenticate);
    match key.kind {
        KeyKind::Rsa { .. } => a.sensitive(&[
            CKA_PRIVATE_EXPONENT,
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_EXPONENT_1,
            CKA_EXPONENT_2,
            CKA_COEFFICIENT,
        ]),
        KeyKind::Ec { .. } => a.sensitive(&[CKA_VALUE]),
    };
    a.into_object(handle, Some(Arc::clone(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::tests::{pem, RSA_LEAF};

    fn rsa_objects() -> (Object, Object, Object) {
        let cert = Cert::from_der(&pem(RSA_LEAF)).unwrap();
        let key = Arc::new(SigningKey {
            credential: "cred-1".into(),
            mechanisms: vec![Mechanism::RsaPkcs, Mechanism::RsaPss],
            kind: KeyKind::Rsa { modulus_bits: 2048 },
        });
        (
            certificate(
                1,
                &cert,
                b"cred-1",
                "Ana Popescu 01",
                CK_CERTIFICATE_CATEGORY_TOKEN_USER,
            ),
            public_key(2, &cert, &key, b"cred-1", "Ana Popescu 01"),
            private_key(3, &cert, &key, b"cred-1", "Ana Popescu 01", true),
        )
    }

    fn ulong(v: CK_ULONG) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn templates_match_on_any_attribute() {
        let (cert, public, private) = rsa_objects();
        let by_class = |c| vec![(CKA_CLASS, ulong(c))];
        assert!(cert.matches(&by_class(CKO_CERTIFICATE)));
        assert!(!public.matches(&by_class(CKO_CERTIFICATE)));
        assert!(private.matches(&[]));
        let id_and_sign = vec![(CKA_ID, b"cred-1".to_vec()), (CKA_SIGN, vec![1])];
        assert!(private.matches(&id_and_sign));
        assert!(!public.matches(&id_and_sign), "the public key has no CKA_SIGN true");
        assert!(!cert.matches(&id_and_sign), "a certificate has no CKA_SIGN");
        // A boolean given as another non-zero byte, a wrong size, a wrong id.
        assert!(private.matches(&[(CKA_ALWAYS_AUTHENTICATE, vec![0xff])]));
        assert!(!private.matches(&[(CKA_TOKEN, vec![1, 0])]));
        assert!(!private.matches(&[(CKA_ID, b"cred-2".to_vec())]));
        assert!(
            !private.matches(&[(CKA_CLASS, vec![3])]),
            "a CK_ULONG is the platform's size"
        );
        // A sensitive attribute never matches, whatever is asked.
        assert!(!private.matches(&[(CKA_PRIVATE_EXPONENT, vec![])]));
        // The certificate by its DER subject and its value.
        let subject = cert.get(CKA_SUBJECT).unwrap().bytes().unwrap();
        assert!(public.matches(&[(CKA_SUBJECT, subject)]));
        let value = cert.get(CKA_VALUE).unwrap().bytes().unwrap();
        assert!(cert.matches(&[(CKA_VALUE, value.clone()), (CKA_CLASS, ulong(CKO_CERTIFICATE))]));
        assert!(!cert.matches(&[(CKA_VALUE, value[1..].to_vec())]));
    }

    #[test]
    fn the_private_key_says_what_it_allows_and_hides_its_numbers() {
        let (_, public, private) = rsa_objects();
        assert_eq!(private.get(CKA_SENSITIVE), Some(&Value::Bool(true)));
        assert_eq!(private.get(CKA_EXTRACTABLE), Some(&Value::Bool(false)));
        assert_eq!(private.get(CKA_PRIVATE), Some(&Value::Bool(true)));
        assert_eq!(private.get(CKA_PRIVATE_EXPONENT), Some(&Value::Sensitive));
        assert_eq!(private.get(CKA_PRIVATE_EXPONENT).unwrap().bytes(), None);
        assert_eq!(
            private.get(CKA_ALLOWED_MECHANISMS).unwrap().bytes().unwrap(),
            [ulong(CKM_RSA_PKCS), ulong(CKM_RSA_PKCS_PSS)].concat()
        );
        assert_eq!(public.get(CKA_MODULUS), private.get(CKA_MODULUS));
        assert_eq!(public.get(CKA_PRIVATE), Some(&Value::Bool(false)));
        assert_eq!(private.key.as_ref().unwrap().signature_len(), 256);
        assert_eq!(public.get(CKA_SIGN), None);
        assert_eq!(public.get(CKA_EC_POINT), None);
    }
}
