//! Sessions and logging in.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::general::initialized;
use crate::ffi::{guard, input, out, Rv};
use crate::state::{self, check_slot, SLOT_ID};

/// Serial sessions. A read-write one is opened when asked (pkcs11-tool's `--test` asks), though the token is
/// write-protected: every function that would write answers `CKR_FUNCTION_NOT_SUPPORTED`.
pub(super) unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let session = unsafe { out(session) }?;
        check_slot(slot)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Rv(CKR_SESSION_PARALLEL_NOT_SUPPORTED));
        }
        let view = state::present_view()?;
        let rw = flags & CKF_RW_SESSION != 0;
        *session = state::with(|m| Ok(m.open_session(view, rw)))?;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| state::with(|m| m.close_session(session)))
}

pub(super) unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| {
        state::with(|m| {
            check_slot(slot)?;
            m.close_all_sessions();
            Ok(())
        })
    })
}

pub(super) unsafe extern "C" fn C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let info = unsafe { out(info) }?;
        state::with(|m| {
            let user = m.user_logged_in;
            let rw = m.session(session)?.rw;
            let (state, flags) = match (rw, user) {
                (false, false) => (CKS_RO_PUBLIC_SESSION, CKF_SERIAL_SESSION),
                (false, true) => (CKS_RO_USER_FUNCTIONS, CKF_SERIAL_SESSION),
                (true, false) => (CKS_RW_PUBLIC_SESSION, CKF_SERIAL_SESSION | CKF_RW_SESSION),
                (true, true) => (CKS_RW_USER_FUNCTIONS, CKF_SERIAL_SESSION | CKF_RW_SESSION),
            };
            *info = CK_SESSION_INFO {
                slotID: SLOT_ID,
                state,
                flags,
                ulDeviceError: 0,
            };
            Ok(())
        })
    })
}

/// `CKU_USER`: any PIN or none (the account was unlocked by the browser login; the path is protected).
/// `CKU_CONTEXT_SPECIFIC`: the holder's code for the signature the session has begun; none or an empty one: the
/// agent asks the holder.
pub(super) unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: a PIN of `pin_len` bytes when not null, as PKCS#11 says.
        let pin = unsafe { input(pin, pin_len) }?;
        state::with(|m| {
            m.session(session)?;
            match user {
                CKU_USER if m.user_logged_in => Err(Rv(CKR_USER_ALREADY_LOGGED_IN)),
                CKU_USER => {
                    m.user_logged_in = true;
                    Ok(())
                }
                CKU_CONTEXT_SPECIFIC => m
                    .session(session)?
                    .sign
                    .as_mut()
                    .ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?
                    .set_code(pin),
                // The token has no security officer.
                _ => Err(Rv(CKR_USER_TYPE_INVALID)),
            }
        })
    })
}

pub(super) unsafe extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        state::with(|m| {
            m.session(session)?;
            if !m.user_logged_in {
                return Err(Rv(CKR_USER_NOT_LOGGED_IN));
            }
            m.user_logged_in = false;
            Ok(())
        })
    })
}
