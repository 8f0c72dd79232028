//! Encodings of outside input that several areas read: base64 as clients send it, HTTP Basic credentials, e-mail
//! addresses.

pub mod email;
pub mod lifted;

use secrecy::SecretString;

/// Decodes base64 in either alphabet, with or without padding (clients mix them).
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let s = s.trim();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The user name and password of an `Authorization: Basic …` header value; `None` when it is malformed (another
/// scheme, not base64, not UTF-8, no colon, or an empty user name).
pub fn basic_credentials(header: &str) -> Option<(String, SecretString)> {
    let decoded = decode_b64(header.strip_prefix("Basic ")?)?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn base64_in_either_alphabet_with_or_without_padding() {
        assert_eq!(decode_b64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_b64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_b64("not base64!").is_none());
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon_and_refuse_what_is_malformed() {
        let (user, pw) = basic_credentials("Basic YW5hQGV4LnJvOnA6dw==").unwrap();
        assert_eq!((user.as_str(), pw.expose_secret()), ("ana@ex.ro", "p:w"));
        for bad in ["Bearer YW5hOnB3", "Basic !!!", "Basic OnB3", "Basic YW5h", "Basic /w=="] {
            assert!(basic_credentials(bad).is_none(), "{bad}");
        }
    }
}
