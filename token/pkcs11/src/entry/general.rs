//! General, slot and token management: initialization, the library's, slot's and token's descriptions, the
//! mechanisms.

use std::ffi::c_void;

use cryptoki_sys::*;

use crate::ffi::{guard, out, padded, Result, Rv, ARGUMENTS_BAD};
use crate::state::{self, check_slot, SLOT_ID};

const MANUFACTURER: &str = "Parafa";

fn version() -> CK_VERSION {
    let part = |s: &str| s.parse::<u8>().unwrap_or(0);
    CK_VERSION {
        major: part(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: part(env!("CARGO_PKG_VERSION_MINOR")),
    }
}

/// Checks that the module is initialized (in this process).
pub(super) fn initialized() -> Result<()> {
    state::with(|_| Ok(()))
}

/// Accepts no arguments, or arguments that let the module use the OS's locks (`CKF_OS_LOCKING_OK`); mutex
/// functions of the application's own without that flag cannot be honoured (`CKR_CANT_LOCK`).
pub(super) unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 says a non-null argument points to a CK_C_INITIALIZE_ARGS.
        if let Some(args) = unsafe { (init_args as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            if !args.pReserved.is_null() {
                return Err(ARGUMENTS_BAD);
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            let all = given.iter().all(|&g| g);
            if !all && given.iter().any(|&g| g) {
                return Err(ARGUMENTS_BAD);
            }
            if all && args.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(Rv(CKR_CANT_LOCK));
            }
        }
        state::initialize()
    })
}

pub(super) unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(ARGUMENTS_BAD);
        }
        state::finalize()
    })
}

pub(super) unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let info = unsafe { out(info) }?;
        *info = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 2, minor: 40 },
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded("Parafa virtual token"),
            libraryVersion: version(),
        };
        Ok(())
    })
}

/// The one slot; with `token_present`, only while the agent says an account is logged in.
pub(super) unsafe extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let count = unsafe { out(count) }?;
        let slots: &[CK_SLOT_ID] = if token_present == CK_FALSE || state::presence()?.view().is_some() {
            &[SLOT_ID]
        } else {
            &[]
        };
        // SAFETY: a list of `*count` slot ids when not null, as PKCS#11 says.
        unsafe { give_ulongs(list, count, slots) }
    })
}

pub(super) unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let info = unsafe { out(info) }?;
        check_slot(slot)?;
        let mut flags = CKF_REMOVABLE_DEVICE;
        if state::presence()?.view().is_some() {
            flags |= CKF_TOKEN_PRESENT;
        }
        *info = CK_SLOT_INFO {
            slotDescription: padded("Parafa virtual token (parafa-token agent)"),
            manufacturerID: padded(MANUFACTURER),
            flags,
            hardwareVersion: version(),
            firmwareVersion: version(),
        };
        Ok(())
    })
}

/// The token: labelled with the holder's name, its serial from the server's URL. Write-protected, initialized,
/// with a protected authentication path and no `CKF_LOGIN_REQUIRED` (see the crate's documentation).
pub(super) unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let info = unsafe { out(info) }?;
        check_slot(slot)?;
        let view = state::present_view()?;
        let (sessions, rw_sessions) = state::with(|m| Ok((m.session_count(), m.rw_session_count())))?;
        *info = CK_TOKEN_INFO {
            label: padded(&view.label),
            manufacturerID: padded(MANUFACTURER),
            model: padded("virtual token"),
            serialNumber: padded(&view.serial()),
            flags: CKF_TOKEN_INITIALIZED
                | CKF_USER_PIN_INITIALIZED
                | CKF_WRITE_PROTECTED
                | CKF_PROTECTED_AUTHENTICATION_PATH,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_sessions as CK_ULONG,
            // No PIN for the user's login; the code for each signature is 6 to 8 digits.
            ulMaxPinLen: 8,
            ulMinPinLen: 0,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: version(),
            firmwareVersion: version(),
            utcTime: [b' '; 16],
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let count = unsafe { out(count) }?;
        check_slot(slot)?;
        let view = state::present_view()?;
        let types: Vec<CK_MECHANISM_TYPE> = view.mechanisms.iter().map(|(t, _)| *t).collect();
        // SAFETY: a list of `*count` mechanism types when not null, as PKCS#11 says.
        unsafe { give_ulongs(list, count, &types) }
    })
}

pub(super) unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        initialized()?;
        // SAFETY: the application's pointer, checked non-null.
        let info = unsafe { out(info) }?;
        check_slot(slot)?;
        let view = state::present_view()?;
        *info = *view.mechanism(kind).ok_or(Rv(CKR_MECHANISM_INVALID))?;
        Ok(())
    })
}

/// The buffer-size protocol for a list of `CK_ULONG`s (slot ids, mechanism types).
///
/// # Safety
/// `list` is null or valid for writing `*count` values.
unsafe fn give_ulongs(list: *mut CK_ULONG, count: &mut CK_ULONG, values: &[CK_ULONG]) -> Result<()> {
    let n = values.len() as CK_ULONG;
    if list.is_null() {
        *count = n;
        return Ok(());
    }
    if *count < n {
        *count = n;
        return Err(Rv(CKR_BUFFER_TOO_SMALL));
    }
    // SAFETY: the caller's contract, and `*count >= n`.
    unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), list, values.len()) };
    *count = n;
    Ok(())
}
