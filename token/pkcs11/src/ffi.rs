//! The edge between C and Rust: return values, the guard that keeps a panic from crossing into the application,
//! and the few pointer helpers every entry point uses (null checks, the buffer-size protocol of PKCS#11 2.40 §5.2).

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::*;

/// A PKCS#11 return value other than `CKR_OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rv(pub CK_RV);

/// What the module's functions return: `Ok` becomes `CKR_OK`.
pub type Result<T> = std::result::Result<T, Rv>;

pub const ARGUMENTS_BAD: Rv = Rv(CKR_ARGUMENTS_BAD);

/// Runs one entry point's body: its error is the return value, and a panic (a bug) becomes `CKR_GENERAL_ERROR`
/// instead of unwinding into C, which is undefined behaviour.
pub fn guard(body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(Rv(rv))) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// The bytes the application passed in; a null pointer is allowed for an empty input only.
///
/// # Safety
/// `p` is null or valid for reads of `len` bytes for the returned lifetime.
pub unsafe fn input<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(ARGUMENTS_BAD);
    }
    let len = usize::try_from(len).map_err(|_| ARGUMENTS_BAD)?;
    // SAFETY: non-null, and the caller vouches for `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An output place the application must give.
///
/// # Safety
/// `p` is null or valid for writes of one `T`, properly aligned.
pub unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller vouches for the pointer when it is not null.
    unsafe { p.as_mut() }.ok_or(ARGUMENTS_BAD)
}

/// Where an output of `needed` bytes stands against the application's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// The buffer is null: the application asks for the length only (the length is written).
    Query,
    /// The buffer is too small (the length is written; the caller answers `CKR_BUFFER_TOO_SMALL`).
    TooSmall,
    /// The output fits.
    Fits,
}

/// Checks the buffer against `needed` and writes the length where the protocol says so.
///
/// # Safety
/// `len` is valid for reads and writes of one `CK_ULONG` (it was checked non-null by the caller or is checked here).
pub unsafe fn room(buf: *mut CK_BYTE, len: *mut CK_ULONG, needed: usize) -> Result<Room> {
    // SAFETY: the caller's contract.
    let len = unsafe { out(len) }?;
    let needed_ulong = CK_ULONG::try_from(needed).map_err(|_| Rv(CKR_GENERAL_ERROR))?;
    if buf.is_null() {
        *len = needed_ulong;
        return Ok(Room::Query);
    }
    if *len < needed_ulong {
        *len = needed_ulong;
        return Ok(Room::TooSmall);
    }
    Ok(Room::Fits)
}

/// Writes `data` into a buffer that [`room`] found to fit, and its length.
///
/// # Safety
/// `buf` is valid for writes of `data.len()` bytes and `len` for one `CK_ULONG`.
pub unsafe fn write(buf: *mut CK_BYTE, len: *mut CK_ULONG, data: &[u8]) -> Result<()> {
    if buf.is_null() {
        return Err(ARGUMENTS_BAD);
    }
    // SAFETY: the caller's contract; the regions cannot overlap (ours is a Rust-owned slice).
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        *out(len)? = data.len() as CK_ULONG;
    }
    Ok(())
}

/// A PKCS#11 text field: UTF-8, padded with spaces, cut at a character boundary when too long.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&text.as_bytes()[..end]);
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_padded_and_cut_between_characters() {
        assert_eq!(&padded::<8>("Parafa"), b"Parafa  ");
        assert_eq!(&padded::<4>("Parafa"), b"Para");
        // "Ștefan" starts with a two-byte character: a cut after one byte would split it.
        let f = padded::<3>("ȘȘ");
        assert_eq!(&f, "Ș ".as_bytes());
        assert!(std::str::from_utf8(&f).is_ok());
    }

    #[test]
    fn a_panic_becomes_a_general_error() {
        let rv = guard(|| panic!("a bug"));
        assert_eq!(rv, CKR_GENERAL_ERROR);
        assert_eq!(guard(|| Err(ARGUMENTS_BAD)), CKR_ARGUMENTS_BAD);
        assert_eq!(guard(|| Ok(())), CKR_OK);
    }

    #[test]
    fn the_buffer_size_protocol_is_followed() {
        let data = [1u8, 2, 3];
        let mut len: CK_ULONG = 0;
        // SAFETY: valid pointers to locals.
        unsafe {
            assert_eq!(room(std::ptr::null_mut(), &mut len, data.len()), Ok(Room::Query));
            assert_eq!(len, 3);
            let mut small = [0u8; 2];
            len = 2;
            assert_eq!(room(small.as_mut_ptr(), &mut len, data.len()), Ok(Room::TooSmall));
            assert_eq!(len, 3);
            let mut big = [0u8; 8];
            len = 8;
            assert_eq!(room(big.as_mut_ptr(), &mut len, data.len()), Ok(Room::Fits));
            assert_eq!(write(big.as_mut_ptr(), &mut len, &data), Ok(()));
            assert_eq!((len, &big[..3]), (3, &data[..]));
            assert_eq!(room(big.as_mut_ptr(), std::ptr::null_mut(), 3), Err(ARGUMENTS_BAD));
        }
    }
}
