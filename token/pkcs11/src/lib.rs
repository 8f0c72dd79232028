//! `libparafa_pkcs11.so`: Parafa's desktop virtual token as a PKCS#11 module (issue 17, `docs/TOKEN.md`).
//!
//! The holder's cloud credentials appear as one token in one slot: per credential the certificate, the CA
//! certificates of its chain, the public key and a private key that signs through the agent (`parafa-token
//! agent`, over the user's Unix socket, `parafa_token_proto`), which asks Parafa's CSC API. The module holds no key
//! and no secret; it starts no thread, keeps no connection open, and after `fork()` a child starts afresh.
//!
//! Logging in:
//! - The token has `CKF_PROTECTED_AUTHENTICATION_PATH` and not `CKF_LOGIN_REQUIRED`: the browser login unlocked the
//!   account, so every object is visible without `C_Login`, and `C_Login(CKU_USER)` with any PIN, or none, succeeds
//!   (pkcs11-tool logs in only when asked, python-pkcs11 only with a PIN or `PROTECTED_AUTH`, NSS only when the
//!   token says it must, so each signs without a login and still may log in).
//! - Each signature needs the holder's code: the private key has `CKA_ALWAYS_AUTHENTICATE`, and
//!   `C_Login(CKU_CONTEXT_SPECIFIC, code)` after `C_SignInit` gives the code for that one signature. Without that
//!   login, or with an empty code, the agent asks the holder through its prompt. In a process that uses NSS the
//!   key says `CKA_ALWAYS_AUTHENTICATE` false: NSS would only show the application's password dialog and pass no
//!   code (see [`host::uses_nss`]); the agent's prompt asks for each signature there.
//!
//! Set `PARAFA_PKCS11_DEBUG=1` to have the module say on stderr why it failed (never a code).

#![deny(unsafe_op_in_unsafe_fn)]

mod agent;
mod cert;
mod entry;
mod ffi;
mod host;
mod mechanism;
mod object;
mod sign;
mod state;
mod token;

use cryptoki_sys::{CKR_ARGUMENTS_BAD, CKR_OK, CK_FUNCTION_LIST, CK_RV};

/// The one symbol the module exports: the table of its functions. The functions themselves are not exported by
/// name, so that two modules loaded into one process cannot interpose each other's `C_Sign`.
///
/// # Safety
/// `list` is null or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // SAFETY: checked non-null; the caller vouches for it. The table is never written through this pointer
    // (PKCS#11 hands it out as mutable for historical reasons only).
    unsafe { *list = std::ptr::addr_of!(entry::FUNCTION_LIST).cast_mut() };
    CKR_OK
}

/// Says why something failed on stderr when `PARAFA_PKCS11_DEBUG` is set (an application's stderr is not ours to
/// fill otherwise).
pub(crate) fn debug(what: &str) {
    if std::env::var_os("PARAFA_PKCS11_DEBUG").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!("parafa-pkcs11[{}]: {what}", std::process::id());
    }
}
