//! Reading objects: their attributes, and finding them by template.

use cryptoki_sys::*;

use crate::ffi::{guard, out, Result, Rv, ARGUMENTS_BAD};
use crate::object::Object;
use crate::state;

/// The application's template as (type, value) pairs.
///
/// # Safety
/// `template` is null or valid for reading `count` attributes, each value valid for its length.
unsafe fn read_template(template: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if template.is_null() {
        return Err(ARGUMENTS_BAD);
    }
    let count = usize::try_from(count).map_err(|_| ARGUMENTS_BAD)?;
    // SAFETY: the caller's contract.
    let attributes = unsafe { std::slice::from_raw_parts(template, count) };
    attributes
        .iter()
        // SAFETY: each value is valid for its length (the caller's contract); `input` checks null.
        .map(|a| {
            Ok((
                a.type_,
                unsafe { crate::ffi::input(a.pValue as *const u8, a.ulValueLen) }?.to_vec(),
            ))
        })
        .collect()
}

/// Answers each attribute of the template (see [`answer`]).
pub(super) unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        state::with(|m| {
            let view = &m.session(session)?.view;
            let object = view.object(object).ok_or(Rv(CKR_OBJECT_HANDLE_INVALID))?;
            if count == 0 {
                return Ok(());
            }
            if template.is_null() {
                return Err(ARGUMENTS_BAD);
            }
            let count = usize::try_from(count).map_err(|_| ARGUMENTS_BAD)?;
            // SAFETY: the application's template of `count` attributes, each buffer of its length.
            unsafe { answer(object, std::slice::from_raw_parts_mut(template, count)) }
        })
    })
}

/// Answers each attribute as PKCS#11 2.40 §5.7 says: the length when no buffer is given, the value when it fits;
/// `CK_UNAVAILABLE_INFORMATION` with `CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID` or
/// `CKR_BUFFER_TOO_SMALL` otherwise, every attribute processed whatever the others gave (the first failure is the
/// return value).
///
/// # Safety
/// Each attribute's `pValue` is null or valid for writing `ulValueLen` bytes.
unsafe fn answer(object: &Object, attributes: &mut [CK_ATTRIBUTE]) -> Result<()> {
    let mut result = Ok(());
    let mut fail = |attribute: &mut CK_ATTRIBUTE, rv: CK_RV| {
        attribute.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        if result.is_ok() {
            result = Err(Rv(rv));
        }
    };
    for attribute in attributes {
        let Some(value) = object.get(attribute.type_) else {
            fail(attribute, CKR_ATTRIBUTE_TYPE_INVALID);
            continue;
        };
        let Some(bytes) = value.bytes() else {
            fail(attribute, CKR_ATTRIBUTE_SENSITIVE);
            continue;
        };
        let len = bytes.len() as CK_ULONG;
        if attribute.pValue.is_null() {
            attribute.ulValueLen = len;
        } else if attribute.ulValueLen >= len {
            // SAFETY: the caller's contract: the buffer holds `ulValueLen >= len` bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), attribute.pValue as *mut u8, bytes.len()) };
            attribute.ulValueLen = len;
        } else {
            fail(attribute, CKR_BUFFER_TOO_SMALL);
        }
    }
    result
}

/// The size is not a number the token can tell meaningfully (`CK_UNAVAILABLE_INFORMATION`, as PKCS#11 allows).
pub(super) unsafe extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        state::with(|m| {
            let view = &m.session(session)?.view;
            view.object(object).ok_or(Rv(CKR_OBJECT_HANDLE_INVALID))?;
            // SAFETY: the application's pointer, checked non-null.
            *unsafe { out(size) }? = CK_UNAVAILABLE_INFORMATION;
            Ok(())
        })
    })
}

/// Finds the objects whose attributes match the template, in the token's order. The token is asked for afresh
/// first (credentials come and go); the session keeps the new answer while the account is the same.
pub(super) unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the application's template of `count` attributes.
        let template = unsafe { read_template(template, count) }?;
        let presence = state::presence()?;
        state::with(|m| {
            let s = m.session(session)?;
            if s.find.is_some() {
                return Err(Rv(CKR_OPERATION_ACTIVE));
            }
            if let Some(fresh) = presence.view().filter(|v| v.same_account(&s.view)) {
                s.view = fresh.clone();
            }
            s.find = Some(
                s.view
                    .objects
                    .iter()
                    .filter(|o| o.matches(&template))
                    .map(|o| o.handle)
                    .collect(),
            );
            Ok(())
        })
    })
}

pub(super) unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the application's pointer, checked non-null.
        let count = unsafe { out(count) }?;
        if objects.is_null() && max > 0 {
            return Err(ARGUMENTS_BAD);
        }
        state::with(|m| {
            let found = m
                .session(session)?
                .find
                .as_mut()
                .ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))?;
            let n = found.len().min(usize::try_from(max).unwrap_or(usize::MAX));
            for (i, handle) in found.drain(..n).enumerate() {
                // SAFETY: the application's array of `max >= n` handles.
                unsafe { *objects.add(i) = handle };
            }
            *count = n as CK_ULONG;
            Ok(())
        })
    })
}

pub(super) unsafe extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        state::with(|m| {
            m.session(session)?
                .find
                .take()
                .map(|_| ())
                .ok_or(Rv(CKR_OPERATION_NOT_INITIALIZED))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{tests::account, TokenView};

    fn attribute(kind: CK_ATTRIBUTE_TYPE, buf: Option<&mut [u8]>) -> CK_ATTRIBUTE {
        let (p, len) = match buf {
            Some(b) => (b.as_mut_ptr() as *mut std::ffi::c_void, b.len() as CK_ULONG),
            None => (std::ptr::null_mut(), 0),
        };
        CK_ATTRIBUTE {
            type_: kind,
            pValue: p,
            ulValueLen: len,
        }
    }

    #[test]
    fn attributes_answer_as_the_standard_says() {
        let view = TokenView::new(&account());
        let private = view.objects.iter().find(|o| o.key.is_some()).unwrap();
        let mut class = [0u8; size_of::<CK_ULONG>()];
        let mut small = [0u8; 2];
        let mut label = [0u8; 64];
        let mut template = [
            attribute(CKA_CLASS, Some(&mut class)),
            attribute(CKA_ID, None),
            attribute(CKA_VALUE, None),
            attribute(CKA_LABEL, Some(&mut small)),
            attribute(0x8765_4321, None),
            attribute(CKA_SIGN, None),
        ];
        // SAFETY: every buffer is a live local of the length given.
        let rv = unsafe { answer(private, &mut template) };
        // The first failure is the answer; every attribute got its own.
        assert_eq!(rv, Err(Rv(CKR_ATTRIBUTE_SENSITIVE)));
        assert_eq!(CK_ULONG::from_ne_bytes(class), CKO_PRIVATE_KEY);
        assert_eq!(template[0].ulValueLen, size_of::<CK_ULONG>() as CK_ULONG);
        assert_eq!(template[1].ulValueLen, "ec-cred".len() as CK_ULONG);
        assert_eq!(
            template[2].ulValueLen, CK_UNAVAILABLE_INFORMATION,
            "an EC private value is sensitive"
        );
        assert_eq!(template[3].ulValueLen, CK_UNAVAILABLE_INFORMATION, "too small");
        assert_eq!(template[4].ulValueLen, CK_UNAVAILABLE_INFORMATION, "unknown");
        assert_eq!(template[5].ulValueLen, 1);
        let mut template = [attribute(CKA_LABEL, Some(&mut label)), attribute(0x8765_4321, None)];
        // SAFETY: as above.
        let rv = unsafe { answer(private, &mut template) };
        assert_eq!(rv, Err(Rv(CKR_ATTRIBUTE_TYPE_INVALID)));
        let n = template[0].ulValueLen as usize;
        assert_eq!(&label[..n], b"Ana Popescu 1A2B3C4D5E6F");
        let mut small = [0u8; 2];
        let mut template = [attribute(CKA_LABEL, Some(&mut small))];
        // SAFETY: as above.
        assert_eq!(unsafe { answer(private, &mut template) }, Err(Rv(CKR_BUFFER_TOO_SMALL)));
    }
}
