//! Password hashing with Argon2id (RFC 9106 parameters of the `argon2` crate's defaults: m=19 MiB, t=2, p=1).
//! Hashing is slow on purpose: async callers run it on the blocking pool.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};

/// Why a password was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Minimum length (product rules §3: at least 12 characters).
pub const MIN_LENGTH: usize = 12;

/// Hashes a password into a PHC string.
pub fn hash(password: &SecretString, min_length: usize) -> Result<String, PasswordError> {
    if password.expose_secret().chars().count() < min_length {
        return Err(PasswordError::TooShort(min_length));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string.
pub fn verify(password: &SecretString, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let pw: SecretString = "correct horse battery".to_owned().into();
        let h = hash(&pw, MIN_LENGTH).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&pw, &h));
        assert!(!verify(&"correct horse batterY".to_owned().into(), &h));
        assert_eq!(
            hash(&"short".to_owned().into(), MIN_LENGTH),
            Err(PasswordError::TooShort(12))
        );
    }
}
