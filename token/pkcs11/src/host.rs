//! What the module can tell about the application that loaded it.

use std::sync::OnceLock;

/// Whether the process uses NSS (Firefox, Chromium, Thunderbird, LibreOffice, NSS's own tools): its library is
/// loaded. NSS loads the module itself, so by the first call it is there.
///
/// It matters for `CKA_ALWAYS_AUTHENTICATE`. NSS answers that attribute with a context login, and on a token with a
/// protected authentication path it first calls the application's password callback, then throws the answer away
/// and logs in with no PIN (`PK11_DoPassword`, `pk11_CheckPassword`). The callback is a dialog (Chromium's, Firefox's)
/// asking for a password nobody needs, and in headless Chromium nobody answers it: the TLS handshake waits for
/// ever. So in an NSS process the private key says it needs no context login, and NSS signs at once; the agent
/// asks the holder for the code of each signature all the same, through its prompt.
pub fn uses_nss() -> bool {
    static NSS: OnceLock<bool> = OnceLock::new();
    *NSS.get_or_init(|| {
        // SAFETY: a NUL-terminated name; RTLD_NOLOAD only looks among the libraries already loaded (by their
        // soname too) and loads nothing, so no library's initializer runs.
        let handle = unsafe { libc::dlopen(c"libnss3.so".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            return false;
        }
        // SAFETY: the handle dlopen just gave; closing it drops the reference that call took.
        unsafe { libc::dlclose(handle) };
        true
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tests_do_not_run_in_an_nss_process() {
        assert!(!super::uses_nss());
    }
}
