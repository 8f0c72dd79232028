//! The token as the agent describes it: the account's label and server, the objects of its credentials with
//! handles that stay the same across sessions and answers, and the mechanisms the slot offers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cryptoki_sys::*;
use parafa_token_proto::{Account, Credential};
use sha2::{Digest, Sha256};

use crate::cert::{BadCert, Cert, PublicKey};
use crate::mechanism::{Hash, Mechanism};
use crate::object::{self, KeyKind, Object, SigningKey};

/// The kinds of objects, part of the derivation of their handles.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Certificate = 1,
    PublicKey = 2,
    PrivateKey = 3,
    Authority = 4,
}

/// The token of one logged-in account, built from one answer of the agent.
#[derive(Debug)]
pub struct TokenView {
    /// The server's base URL.
    pub server: String,
    /// The token's label: the holder's name.
    pub label: String,
    /// In a stable order: per credential (sorted by id) its certificate, public and private key, then the CA
    /// certificates.
    pub objects: Vec<Object>,
    index: HashMap<CK_OBJECT_HANDLE, usize>,
    /// The slot's mechanisms and what they do, in the order the module lists them.
    pub mechanisms: Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)>,
}

impl TokenView {
    /// Builds the token; a credential whose certificate cannot be read is left out.
    pub fn new(account: &Account) -> TokenView {
        let mut credentials: Vec<_> = account.credentials.iter().collect();
        credentials.sort_by(|a, b| a.id.cmp(&b.id));
        let mut builder = Builder::default();
        for credential in credentials {
            let Some((cert, chain)) = read_certificates(credential) else {
                continue;
            };
            builder.credential(account, credential, &cert);
            for ca in chain {
                if !builder.authorities.iter().any(|a| a.der == ca.der) {
                    builder.authorities.push(ca);
                }
            }
        }
        builder.finish(account)
    }

    pub fn object(&self, handle: CK_OBJECT_HANDLE) -> Option<&Object> {
        self.index.get(&handle).map(|&i| &self.objects[i])
    }

    /// Whether two answers describe the same account (then sessions carry on).
    pub fn same_account(&self, other: &TokenView) -> bool {
        self.server == other.server && self.label == other.label
    }

    /// The token's serial number: 16 hex digits of the SHA-256 of the server's URL.
    pub fn serial(&self) -> String {
        Sha256::digest(self.server.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    pub fn mechanism(&self, m: CK_MECHANISM_TYPE) -> Option<&CK_MECHANISM_INFO> {
        self.mechanisms.iter().find(|(t, _)| *t == m).map(|(_, info)| info)
    }
}

/// The signer's certificate and the readable ones of its chain; `None` (and a word in the debug log) when the
/// signer's cannot be read.
fn read_certificates(credential: &Credential) -> Option<(Cert, Vec<Cert>)> {
    let mut certs = credential.certificates.iter().map(|b64| {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| BadCert("not base64".into()))?;
        Cert::from_der(&der)
    });
    let cert = match certs.next() {
        Some(Ok(cert)) => cert,
        Some(Err(BadCert(why))) => {
            crate::debug(&format!(
                "credential {}: its certificate is unreadable ({why}), left out",
                credential.id
            ));
            return None;
        }
        None => {
            crate::debug(&format!("credential {}: no certificate, left out", credential.id));
            return None;
        }
    };
    let chain = certs
        .filter_map(|c| {
            c.map_err(|BadCert(why)| {
                crate::debug(&format!(
                    "credential {}: a CA certificate is unreadable ({why})",
                    credential.id
                ))
            })
            .ok()
        })
        .collect();
    Some((cert, chain))
}

/// Gathers the objects, in order, and what the slot's mechanisms need to say.
#[derive(Default)]
struct Builder {
    handles: Handles,
    objects: Vec<Object>,
    authorities: Vec<Cert>,
    /// Per signature mechanism, the smallest and largest key (bits) that allows it.
    key_sizes: HashMap<CK_MECHANISM_TYPE, (usize, usize)>,
}

impl Builder {
    /// The credential's certificate, labelled "<holder> <serial>", and its public and private key.
    fn credential(&mut self, account: &Account, credential: &Credential, cert: &Cert) {
        let id = credential.id.as_bytes();
        let holder = cert.common_name.clone().unwrap_or_else(|| account.label.clone());
        let label = format!("{holder} {}", cert.serial_hex);
        let handle = self.handles.next(Kind::Certificate, id);
        self.objects.push(object::certificate(
            handle,
            cert,
            id,
            &label,
            CK_CERTIFICATE_CATEGORY_TOKEN_USER,
        ));
        let kind = match cert.key {
            PublicKey::Rsa { .. } => KeyKind::Rsa {
                modulus_bits: cert.key.bits(),
            },
            PublicKey::Ec { field_len, .. } => KeyKind::Ec { field_len },
            PublicKey::Other => return,
        };
        let is_rsa = matches!(kind, KeyKind::Rsa { .. });
        let mechanisms: Vec<Mechanism> = Mechanism::allowed_by(&credential.key_algos)
            .into_iter()
            .filter(|m| m.is_rsa() == is_rsa)
            .collect();
        let bits = cert.key.bits();
        for m in &mechanisms {
            let e = self.key_sizes.entry(m.ck()).or_insert((bits, bits));
            *e = (e.0.min(bits), e.1.max(bits));
        }
        let key = Arc::new(SigningKey {
            credential: credential.id.clone(),
            mechanisms,
            kind,
        });
        let handle = self.handles.next(Kind::PublicKey, id);
        self.objects.push(object::public_key(handle, cert, &key, id, &label));
        let handle = self.handles.next(Kind::PrivateKey, id);
        let always_authenticate = !crate::host::uses_nss();
        self.objects
            .push(object::private_key(handle, cert, &key, id, &label, always_authenticate));
    }

    /// The CA certificates after the credentials' objects, then the index and the mechanisms.
    fn finish(mut self, account: &Account) -> TokenView {
        for ca in &self.authorities {
            let label = ca
                .common_name
                .clone()
                .unwrap_or_else(|| format!("CA {}", ca.serial_hex));
            let handle = self.handles.next(Kind::Authority, &Sha256::digest(&ca.der));
            self.objects.push(object::certificate(
                handle,
                ca,
                &ca.key_id,
                &label,
                CK_CERTIFICATE_CATEGORY_AUTHORITY,
            ));
        }
        let index = self.objects.iter().enumerate().map(|(i, o)| (o.handle, i)).collect();
        TokenView {
            server: account.server.clone(),
            label: account.label.clone(),
            objects: self.objects,
            index,
            mechanisms: mechanism_infos(&self.key_sizes),
        }
    }
}

/// The signature mechanisms that some credential allows, with the smallest and largest key (bits), then the
/// digests, which the module computes itself.
fn mechanism_infos(
    key_sizes: &HashMap<CK_MECHANISM_TYPE, (usize, usize)>,
) -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    let mut list = Vec::new();
    for m in Mechanism::ALL {
        let Some(&(min, max)) = key_sizes.get(&m.ck()) else {
            continue;
        };
        let mut flags = CKF_SIGN;
        if !m.is_rsa() {
            flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
        }
        list.push((
            m.ck(),
            CK_MECHANISM_INFO {
                ulMinKeySize: min as CK_ULONG,
                ulMaxKeySize: max as CK_ULONG,
                flags,
            },
        ));
    }
    for h in Hash::ALL {
        list.push((
            h.mechanism(),
            CK_MECHANISM_INFO {
                ulMinKeySize: 0,
                ulMaxKeySize: 0,
                flags: CKF_DIGEST,
            },
        ));
    }
    list
}

/// Object handles: the first 31 bits of a SHA-256 over the object's kind and its key (the credential id, or the CA
/// certificate's hash), so that the same object has the same handle in every session and after every refresh; on
/// a collision (or 0, `CK_INVALID_HANDLE`) a counter goes into the hash until the handle is free. 31 bits keep it
/// positive for consumers that hold handles in a signed int.
#[derive(Default)]
struct Handles {
    taken: HashSet<CK_OBJECT_HANDLE>,
}

impl Handles {
    fn next(&mut self, kind: Kind, key: &[u8]) -> CK_OBJECT_HANDLE {
        for counter in 0u32.. {
            let mut h = Sha256::new();
            h.update(b"parafa-pkcs11 object\0");
            h.update([kind as u8]);
            h.update(counter.to_be_bytes());
            h.update(key);
            let d = h.finalize();
            let handle = CK_OBJECT_HANDLE::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff);
            if handle != CK_INVALID_HANDLE && self.taken.insert(handle) {
                return handle;
            }
        }
        unreachable!("2^32 collisions in a row")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cert::tests::{pem, CA, EC_LEAF, RSA_LEAF};
    use crate::object::Value;

    fn b64(p: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(pem(p))
    }

    pub fn account() -> Account {
        Account {
            server: "https://sign.example.ro".into(),
            label: "Ana Popescu".into(),
            credentials: vec![
                Credential {
                    id: "rsa-cred".into(),
                    key_status: "enabled".into(),
                    cert_status: "valid".into(),
                    key_algos: vec![
                        "1.2.840.113549.1.1.1".into(),
                        "1.2.840.113549.1.1.11".into(),
                        "1.2.840.113549.1.1.10".into(),
                    ],
                    key_len: 2048,
                    curve: None,
                    certificates: vec![b64(RSA_LEAF), b64(CA)],
                    transactions_left: Some(3),
                },
                Credential {
                    id: "ec-cred".into(),
                    key_status: "enabled".into(),
                    cert_status: "valid".into(),
                    key_algos: vec!["1.2.840.10045.2.1".into(), "1.2.840.10045.4.3.2".into()],
                    key_len: 256,
                    curve: Some("1.2.840.10045.3.1.7".into()),
                    certificates: vec![b64(EC_LEAF), b64(CA)],
                    transactions_left: None,
                },
                Credential {
                    id: "broken".into(),
                    key_status: "enabled".into(),
                    cert_status: "valid".into(),
                    key_algos: vec![],
                    key_len: 0,
                    curve: None,
                    certificates: vec!["bm90IGEgY2VydA==".into()],
                    transactions_left: None,
                },
            ],
        }
    }

    #[test]
    fn each_credential_gives_three_objects_and_the_ca_one() {
        let view = TokenView::new(&account());
        // ec-cred sorts first; the broken credential is left out; the shared CA appears once.
        assert_eq!(view.objects.len(), 7);
        let classes: Vec<_> = view.objects.iter().map(|o| o.get(CKA_CLASS).cloned()).collect();
        let class = |c| Some(Value::Ulong(c));
        assert_eq!(
            classes,
            vec![
                class(CKO_CERTIFICATE),
                class(CKO_PUBLIC_KEY),
                class(CKO_PRIVATE_KEY),
                class(CKO_CERTIFICATE),
                class(CKO_PUBLIC_KEY),
                class(CKO_PRIVATE_KEY),
                class(CKO_CERTIFICATE),
            ]
        );
        let first = &view.objects[0];
        assert_eq!(first.get(CKA_ID), Some(&Value::Bytes(b"ec-cred".to_vec())));
        assert_eq!(
            first.get(CKA_LABEL),
            Some(&Value::Bytes(b"Ana Popescu 1A2B3C4D5E6F".to_vec()))
        );
        let ca = &view.objects[6];
        assert_eq!(
            ca.get(CKA_CERTIFICATE_CATEGORY),
            Some(&Value::Ulong(CK_CERTIFICATE_CATEGORY_AUTHORITY))
        );
        assert_eq!(ca.get(CKA_LABEL), Some(&Value::Bytes(b"Parafa Test CA".to_vec())));
        let Some(Value::Bytes(ca_id)) = ca.get(CKA_ID) else {
            panic!("the CA has no id")
        };
        assert_eq!(ca_id.len(), 20);
    }

    #[test]
    fn handles_are_stable_and_distinct() {
        let a = TokenView::new(&account());
        let mut changed = account();
        changed.credentials.reverse();
        changed.credentials[0].transactions_left = Some(1);
        let b = TokenView::new(&changed);
        let handles = |v: &TokenView| v.objects.iter().map(|o| o.handle).collect::<Vec<_>>();
        assert_eq!(handles(&a), handles(&b));
        let distinct: HashSet<_> = handles(&a).into_iter().collect();
        assert_eq!(distinct.len(), a.objects.len());
        assert!(handles(&a).iter().all(|&h| h != 0 && h <= 0x7fff_ffff));
        for o in &a.objects {
            assert_eq!(a.object(o.handle).unwrap().handle, o.handle);
        }
        // Dropping a credential leaves the others' handles as they were.
        let mut fewer = account();
        fewer.credentials.remove(0);
        let c = TokenView::new(&fewer);
        assert_eq!(handles(&c)[..3], handles(&a)[..3]);
        assert!(a.same_account(&c));
    }

    #[test]
    fn a_collision_moves_to_the_next_free_handle() {
        let mut handles = Handles::default();
        let first = handles.next(Kind::Certificate, b"x");
        let again = handles.next(Kind::Certificate, b"x");
        assert_ne!(first, again);
        let mut fresh = Handles::default();
        assert_eq!(fresh.next(Kind::Certificate, b"x"), first);
    }

    #[test]
    fn the_slot_offers_what_some_credential_allows() {
        let view = TokenView::new(&account());
        let types: Vec<_> = view.mechanisms.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            types,
            vec![
                CKM_RSA_PKCS,
                CKM_SHA256_RSA_PKCS,
                CKM_RSA_PKCS_PSS,
                CKM_SHA256_RSA_PKCS_PSS,
                CKM_SHA384_RSA_PKCS_PSS,
                CKM_SHA512_RSA_PKCS_PSS,
                CKM_ECDSA,
                CKM_ECDSA_SHA256,
                CKM_SHA256,
                CKM_SHA384,
                CKM_SHA512,
            ]
        );
        let ecdsa = view.mechanism(CKM_ECDSA).unwrap();
        assert_eq!((ecdsa.ulMinKeySize, ecdsa.ulMaxKeySize), (256, 256));
        assert!(ecdsa.flags & CKF_SIGN != 0 && ecdsa.flags & CKF_EC_NAMEDCURVE != 0);
        assert_eq!(view.mechanism(CKM_RSA_PKCS).unwrap().ulMaxKeySize, 2048);
        assert!(view.mechanism(CKM_SHA384_RSA_PKCS).is_none());
        assert_eq!(view.serial().len(), 16);
    }
}
