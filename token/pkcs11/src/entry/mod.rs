//! The PKCS#11 entry points, one module per group of the standard's functions, and the table
//! `C_GetFunctionList` hands out. Every entry point runs its body through [`crate::ffi::guard`]: no panic
//! crosses into the application.

#![allow(non_snake_case)]

mod crypto;
mod general;
mod objects;
mod session;
mod unsupported;

use cryptoki_sys::{CK_FUNCTION_LIST, CK_VERSION};

/// Every function of PKCS#11 2.40 is present; those the token does not do answer `CKR_FUNCTION_NOT_SUPPORTED`
/// (see [`unsupported`]).
pub static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION { major: 2, minor: 40 },
    C_Initialize: Some(general::C_Initialize),
    C_Finalize: Some(general::C_Finalize),
    C_GetInfo: Some(general::C_GetInfo),
    C_GetFunctionList: Some(crate::C_GetFunctionList),
    C_GetSlotList: Some(general::C_GetSlotList),
    C_GetSlotInfo: Some(general::C_GetSlotInfo),
    C_GetTokenInfo: Some(general::C_GetTokenInfo),
    C_GetMechanismList: Some(general::C_GetMechanismList),
    C_GetMechanismInfo: Some(general::C_GetMechanismInfo),
    C_InitToken: Some(unsupported::C_InitToken),
    C_InitPIN: Some(unsupported::C_InitPIN),
    C_SetPIN: Some(unsupported::C_SetPIN),
    C_OpenSession: Some(session::C_OpenSession),
    C_CloseSession: Some(session::C_CloseSession),
    C_CloseAllSessions: Some(session::C_CloseAllSessions),
    C_GetSessionInfo: Some(session::C_GetSessionInfo),
    C_GetOperationState: Some(unsupported::C_GetOperationState),
    C_SetOperationState: Some(unsupported::C_SetOperationState),
    C_Login: Some(session::C_Login),
    C_Logout: Some(session::C_Logout),
    C_CreateObject: Some(unsupported::C_CreateObject),
    C_CopyObject: Some(unsupported::C_CopyObject),
    C_DestroyObject: Some(unsupported::C_DestroyObject),
    C_GetObjectSize: Some(objects::C_GetObjectSize),
    C_GetAttributeValue: Some(objects::C_GetAttributeValue),
    C_SetAttributeValue: Some(unsupported::C_SetAttributeValue),
    C_FindObjectsInit: Some(objects::C_FindObjectsInit),
    C_FindObjects: Some(objects::C_FindObjects),
    C_FindObjectsFinal: Some(objects::C_FindObjectsFinal),
    C_EncryptInit: Some(unsupported::C_EncryptInit),
    C_Encrypt: Some(unsupported::C_Encrypt),
    C_EncryptUpdate: Some(unsupported::C_EncryptUpdate),
    C_EncryptFinal: Some(unsupported::C_EncryptFinal),
    C_DecryptInit: Some(unsupported::C_DecryptInit),
    C_Decrypt: Some(unsupported::C_Decrypt),
    C_DecryptUpdate: Some(unsupported::C_DecryptUpdate),
    C_DecryptFinal: Some(unsupported::C_DecryptFinal),
    C_DigestInit: Some(crypto::C_DigestInit),
    C_Digest: Some(crypto::C_Digest),
    C_DigestUpdate: Some(crypto::C_DigestUpdate),
    C_DigestKey: Some(unsupported::C_DigestKey),
    C_DigestFinal: Some(crypto::C_DigestFinal),
    C_SignInit: Some(crypto::C_SignInit),
    C_Sign: Some(crypto::C_Sign),
    C_SignUpdate: Some(crypto::C_SignUpdate),
    C_SignFinal: Some(crypto::C_SignFinal),
    C_SignRecoverInit: Some(unsupported::C_SignRecoverInit),
    C_SignRecover: Some(unsupported::C_SignRecover),
    C_VerifyInit: Some(unsupported::C_VerifyInit),
    C_Verify: Some(unsupported::C_Verify),
    C_VerifyUpdate: Some(unsupported::C_VerifyUpdate),
    C_VerifyFinal: Some(unsupported::C_VerifyFinal),
    C_VerifyRecoverInit: Some(unsupported::C_VerifyRecoverInit),
    C_VerifyRecover: Some(unsupported::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(unsupported::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(unsupported::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(unsupported::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(unsupported::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(unsupported::C_GenerateKey),
    C_GenerateKeyPair: Some(unsupported::C_GenerateKeyPair),
    C_WrapKey: Some(unsupported::C_WrapKey),
    C_UnwrapKey: Some(unsupported::C_UnwrapKey),
    C_DeriveKey: Some(unsupported::C_DeriveKey),
    C_SeedRandom: Some(unsupported::C_SeedRandom),
    C_GenerateRandom: Some(unsupported::C_GenerateRandom),
    C_GetFunctionStatus: Some(unsupported::C_GetFunctionStatus),
    C_CancelFunction: Some(unsupported::C_CancelFunction),
    C_WaitForSlotEvent: Some(unsupported::C_WaitForSlotEvent),
};

#[cfg(test)]
mod tests {
    use std::ptr::null_mut;

    use cryptoki_sys::*;

    use super::FUNCTION_LIST as F;

    unsafe extern "C" fn create_mutex(_: *mut *mut std::ffi::c_void) -> CK_RV {
        CKR_OK
    }
    unsafe extern "C" fn mutex_op(_: *mut std::ffi::c_void) -> CK_RV {
        CKR_OK
    }

    /// The whole life of the module through its table, without an agent: one test, since the module's state is the
    /// process's.
    #[test]
    fn the_table_checks_its_arguments_and_its_state() {
        let dir = std::env::temp_dir().join(format!("parafa-pkcs11-test-{}", std::process::id()));
        std::env::set_var(parafa_token_proto::SOCKET_ENV, dir.join("agent.sock"));
        std::env::set_var(parafa_token_proto::AGENT_ENV, dir.join("no-such-agent"));
        // SAFETY: every pointer below is null or points to a live local of the right type.
        unsafe {
            let mut list: *mut CK_FUNCTION_LIST = null_mut();
            assert_eq!(crate::C_GetFunctionList(&mut list), CKR_OK);
            assert!(std::ptr::eq(list, &F));
            assert_eq!(crate::C_GetFunctionList(null_mut()), CKR_ARGUMENTS_BAD);
            assert!(F.C_WaitForSlotEvent.is_some() && F.C_DecryptVerifyUpdate.is_some());

            let mut info: CK_INFO = std::mem::zeroed();
            assert_eq!(F.C_GetInfo.unwrap()(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
            assert_eq!(F.C_Finalize.unwrap()(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);

            // Application mutexes without CKF_OS_LOCKING_OK cannot be honoured; some but not all are a mistake.
            let mut args = CK_C_INITIALIZE_ARGS {
                CreateMutex: Some(create_mutex),
                DestroyMutex: Some(mutex_op),
                LockMutex: Some(mutex_op),
                UnlockMutex: Some(mutex_op),
                flags: 0,
                pReserved: null_mut(),
            };
            let init = F.C_Initialize.unwrap();
            assert_eq!(init(std::ptr::addr_of_mut!(args).cast()), CKR_CANT_LOCK);
            args.UnlockMutex = None;
            args.flags = CKF_OS_LOCKING_OK;
            assert_eq!(init(std::ptr::addr_of_mut!(args).cast()), CKR_ARGUMENTS_BAD);
            args.UnlockMutex = Some(mutex_op);
            assert_eq!(init(std::ptr::addr_of_mut!(args).cast()), CKR_OK);
            assert_eq!(init(null_mut()), CKR_CRYPTOKI_ALREADY_INITIALIZED);

            assert_eq!(F.C_GetInfo.unwrap()(&mut info), CKR_OK);
            assert_eq!(&info.manufacturerID[..6], b"Parafa");
            assert_eq!(F.C_GetInfo.unwrap()(null_mut()), CKR_ARGUMENTS_BAD);

            // No agent answers (and none can be started): the slot is there, its token is not.
            let mut slots = [0 as CK_SLOT_ID; 4];
            let mut n: CK_ULONG = 4;
            assert_eq!(F.C_GetSlotList.unwrap()(CK_TRUE, slots.as_mut_ptr(), &mut n), CKR_OK);
            assert_eq!(n, 0);
            n = 0;
            assert_eq!(
                F.C_GetSlotList.unwrap()(CK_FALSE, slots.as_mut_ptr(), &mut n),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(n, 1);
            assert_eq!(F.C_GetSlotList.unwrap()(CK_FALSE, null_mut(), &mut n), CKR_OK);
            assert_eq!(F.C_GetSlotList.unwrap()(CK_FALSE, slots.as_mut_ptr(), &mut n), CKR_OK);
            assert_eq!((n, slots[0]), (1, crate::state::SLOT_ID));
            assert_eq!(
                F.C_GetSlotList.unwrap()(CK_FALSE, null_mut(), null_mut()),
                CKR_ARGUMENTS_BAD
            );
            let mut slot: CK_SLOT_INFO = std::mem::zeroed();
            assert_eq!(F.C_GetSlotInfo.unwrap()(slots[0], &mut slot), CKR_OK);
            assert_eq!(slot.flags & CKF_TOKEN_PRESENT, 0);
            assert_eq!(F.C_GetSlotInfo.unwrap()(99, &mut slot), CKR_SLOT_ID_INVALID);
            let mut token: CK_TOKEN_INFO = std::mem::zeroed();
            assert_eq!(F.C_GetTokenInfo.unwrap()(slots[0], &mut token), CKR_TOKEN_NOT_PRESENT);
            let mut session: CK_SESSION_HANDLE = 0;
            let open = F.C_OpenSession.unwrap();
            assert_eq!(
                open(slots[0], CKF_SERIAL_SESSION, null_mut(), None, &mut session),
                CKR_TOKEN_NOT_PRESENT
            );
            assert_eq!(
                open(slots[0], 0, null_mut(), None, &mut session),
                CKR_SESSION_PARALLEL_NOT_SUPPORTED
            );

            // Calls on sessions that do not exist.
            let mut m = CK_MECHANISM {
                mechanism: CKM_SHA256,
                pParameter: null_mut(),
                ulParameterLen: 0,
            };
            assert_eq!(F.C_DigestInit.unwrap()(7, &mut m), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(F.C_DigestInit.unwrap()(7, null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(F.C_SignInit.unwrap()(7, &mut m, 1), CKR_SESSION_HANDLE_INVALID);
            let mut len: CK_ULONG = 0;
            assert_eq!(
                F.C_Sign.unwrap()(7, null_mut(), 0, null_mut(), &mut len),
                CKR_SESSION_HANDLE_INVALID
            );
            assert_eq!(F.C_FindObjectsInit.unwrap()(7, null_mut(), 1), CKR_ARGUMENTS_BAD);
            assert_eq!(
                F.C_Login.unwrap()(7, CKU_USER, null_mut(), 0),
                CKR_SESSION_HANDLE_INVALID
            );
            assert_eq!(F.C_CloseSession.unwrap()(7), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(F.C_GenerateRandom.unwrap()(7, null_mut(), 0), CKR_RANDOM_NO_RNG);
            assert_eq!(
                F.C_Encrypt.unwrap()(7, null_mut(), 0, null_mut(), null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );

            // A forked child inherits the parent's state but is not initialized: it starts afresh.
            let child = libc::fork();
            if child == 0 {
                let ok = F.C_GetInfo.unwrap()(&mut info) == CKR_CRYPTOKI_NOT_INITIALIZED
                    && init(null_mut()) == CKR_OK
                    && F.C_GetInfo.unwrap()(&mut info) == CKR_OK
                    && F.C_Finalize.unwrap()(null_mut()) == CKR_OK;
                libc::_exit(if ok { 0 } else { 1 });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &mut status, 0), child);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child: {status}"
            );
            // The parent's state is its own still.
            assert_eq!(F.C_GetInfo.unwrap()(&mut info), CKR_OK);

            assert_eq!(
                F.C_Finalize.unwrap()(&mut info as *mut CK_INFO as *mut _),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(F.C_Finalize.unwrap()(null_mut()), CKR_OK);
            assert_eq!(
                F.C_GetSlotList.unwrap()(CK_FALSE, null_mut(), &mut n),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
        }
    }
}
