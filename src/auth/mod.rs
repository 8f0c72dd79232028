//! Authentication factors: passwords (Argon2id) and TOTP pairings whose seeds are wrapped by the HSM.

pub mod codes;
pub mod password;
pub mod sessions;
pub mod tokens;
pub mod totp;
