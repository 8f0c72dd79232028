//! Message digesting (computed here) and signing (through the agent).
//!
//! PKCS#11's rule for ending an operation: a call that finishes it (`C_Digest`, `C_DigestFinal`, `C_Sign`,
//! `C_SignFinal`) ends it unless it returns `CKR_BUFFER_TOO_SMALL` or answers a length query; any failure of an
//! update ends it too.

use cryptoki_sys::*;

use crate::ffi::{guard, input, out, room, write, Result, Room, Rv};
use crate::mechanism::{Hash, Params};
use crate::object::KeyKind;
use crate::sign::{Job, SignOp};
use crate::state::{self, Digesting, Session};

/// Whether an error leaves the operation active.
fn keeps_operation(rv: Rv) -> bool {
    matches!(
        rv.0,
        CKR_BUFFER_TOO_SMALL | CKR_OPERATION_NOT_INITIALIZED | CKR_SESSION_HANDLE_INVALID
    )
}

pub(super) unsafe extern "C" fn C_DigestInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM) -> CK_RV {
    guard(|| {
        // SAFETY: the application's pointer, checked non-null.
        let mechanism = unsafe { out(mechanism) }?;
        state::with(|m| {
            let s = m.session(session)?;
            if s.digest.is_some() {
                return Err(Rv(CKR_OPERATION_ACTIVE));
            }
            let hash = Hash::from_mechanism(mechanism.mechanism).ok_or(Rv(CKR_MECHANISM_INVALID))?;
            if mechanism.ulParameterLen != 0 {
                return Err(Rv(CKR_MECHANISM_PARAM_INVALID));
            }
            s.digest = Some(Digesting {
                hasher: hash.hasher(),
                multi: false,
            });
            Ok(())
        })
    })
}

/// Runs one step of the session's digest operation and ends it as the rule says.
fn digest_step(session: CK_SESSION_HANDLE, step: impl FnOnce(&mut Session) -> Result<()>) -> Result<()> {
    state::with(|m| {
        let s = m.session(session)?;
        if s.digest.is_none() {
            return Err(Rv(CKR_OPERATION_NOT_INITIALIZED));
        }
        let result = step(s);
        if result.is_err_and(|rv| !keeps_operation(rv)) {
            s.digest = None;
        }
        result
    })
}

/// Gives the digest of what the operation holds plus `data`: the length only, `CKR_BUFFER_TOO_SMALL`, or the
/// digest (which ends the operation).
///
/// # Safety
/// `digest` and `len` as PKCS#11 gives them (checked for null).
unsafe fn give_digest(s: &mut Session, data: &[u8], digest: *mut CK_BYTE, len: *mut CK_ULONG) -> Result<()> {
    let d = s.digest.as_ref().ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?;
    // SAFETY: the caller's contract.
    match unsafe { room(digest, len, d.hasher.output_len()) }? {
        Room::Query => Ok(()),
        Room::TooSmall => Err(Rv(CKR_BUFFER_TOO_SMALL)),
        Room::Fits => {
            let mut hasher = s.digest.take().map(|d| d.hasher).ok_or(Rv(CKR_GENERAL_ERROR))?;
            hasher.update(data);
            // SAFETY: the caller's contract; `room` found it big enough.
            unsafe { write(digest, len, &hasher.finish()) }
        }
    }
}

pub(super) unsafe extern "C" fn C_Digest(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        digest_step(session, |s| {
            // SAFETY: the application's input of `data_len` bytes.
            let data = unsafe { input(data, data_len) }?;
            if s.digest.as_ref().is_some_and(|d| d.multi) {
                return Err(Rv(CKR_OPERATION_ACTIVE));
            }
            // SAFETY: the application's output pointers.
            unsafe { give_digest(s, data, digest, digest_len) }
        })
    })
}

pub(super) unsafe extern "C" fn C_DigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard(|| {
        digest_step(session, |s| {
            // SAFETY: the application's input of `len` bytes.
            let part = unsafe { input(part, len) }?;
            let d = s.digest.as_mut().ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?;
            d.hasher.update(part);
            d.multi = true;
            Ok(())
        })
    })
}

pub(super) unsafe extern "C" fn C_DigestFinal(
    session: CK_SESSION_HANDLE,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        digest_step(session, |s| {
            // SAFETY: the application's output pointers.
            unsafe { give_digest(s, &[], digest, digest_len) }
        })
    })
}

/// Starts a signature with a private key, if the credential allows the mechanism (`CKA_ALLOWED_MECHANISMS`).
pub(super) unsafe extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: the application's pointer, checked non-null.
        let mechanism = unsafe { out(mechanism) }?;
        state::with(|m| {
            let s = m.session(session)?;
            if s.sign.is_some() {
                return Err(Rv(CKR_OPERATION_ACTIVE));
            }
            let object = s.view.object(key).ok_or(Rv(CKR_KEY_HANDLE_INVALID))?;
            let key = object.key.clone().ok_or(Rv(CKR_KEY_FUNCTION_NOT_PERMITTED))?;
            // SAFETY: the mechanism's parameter as the application gave it.
            let params = unsafe { Params::read(mechanism) }?;
            let rsa_key = matches!(key.kind, KeyKind::Rsa { .. });
            if params.mechanism.is_rsa() != rsa_key {
                return Err(Rv(CKR_KEY_TYPE_INCONSISTENT));
            }
            if !key.mechanisms.contains(&params.mechanism) {
                return Err(Rv(CKR_MECHANISM_INVALID));
            }
            if let (Some(pss), KeyKind::Rsa { modulus_bits }) = (params.pss, key.kind) {
                if !pss.fits(modulus_bits) {
                    return Err(Rv(CKR_MECHANISM_PARAM_INVALID));
                }
            }
            s.sign = Some(SignOp::new(params, key));
            Ok(())
        })
    })
}

/// What finishing a signature came to under the lock.
enum Finish {
    /// A length query, or a buffer too small: answered without the agent.
    Answered(Result<()>),
    /// The signature to ask for.
    Ask(Job),
}

/// Finishes the session's signature: checks the room for it first (a length query or a small buffer reaches no
/// agent and spends no code), then takes the operation out and asks the agent without the lock held.
///
/// # Safety
/// `signature` and `len` as PKCS#11 gives them (checked for null).
unsafe fn finish_signature(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    len: *mut CK_ULONG,
    take: impl FnOnce(SignOp) -> Result<Job>,
    single_part: bool,
) -> Result<()> {
    let finish = state::with(|m| {
        let s = m.session(session)?;
        let op = s.sign.as_ref().ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?;
        let checked = if single_part && op.is_multi_part() {
            Err(Rv(CKR_OPERATION_ACTIVE))
        } else {
            // SAFETY: the caller's contract.
            unsafe { room(signature, len, op.signature_len()) }
        };
        match checked {
            Ok(Room::Query) => Ok(Finish::Answered(Ok(()))),
            Ok(Room::TooSmall) => Ok(Finish::Answered(Err(Rv(CKR_BUFFER_TOO_SMALL)))),
            Ok(Room::Fits) => {
                let op = s.sign.take().ok_or(Rv(CKR_GENERAL_ERROR))?;
                take(op).map(Finish::Ask)
            }
            Err(rv) => {
                s.sign = None;
                Err(rv)
            }
        }
    })?;
    match finish {
        Finish::Answered(r) => r,
        Finish::Ask(job) => {
            let bytes = job.run()?;
            // SAFETY: the caller's contract; the room was checked for exactly this length.
            unsafe { write(signature, len, &bytes) }
        }
    }
}

pub(super) unsafe extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the application's input of `data_len` bytes.
        let data = unsafe { input(data, data_len) };
        // SAFETY: the application's output pointers.
        unsafe { finish_signature(session, signature, signature_len, |op| op.single(data?), true) }
    })
}

pub(super) unsafe extern "C" fn C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: the application's input of `len` bytes.
        let part = unsafe { input(part, len) };
        state::with(|m| {
            let s = m.session(session)?;
            let op = s.sign.as_mut().ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?;
            let result = part.and_then(|p| op.update(p));
            if result.is_err() {
                s.sign = None;
            }
            result
        })
    })
}

pub(super) unsafe extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the application's output pointers.
        unsafe { finish_signature(session, signature, signature_len, SignOp::finish, false) }
    })
}
