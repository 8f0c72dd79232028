//! Basic credentials already checked, remembered for a few minutes so that a TSA client sending its e-mail and
//! password with every query (as TSP clients do) costs one Argon2 check per few minutes, not one per timestamp,
//! and no write to the login throttle per timestamp.
//!
//! Only a keyed hash of the pair is kept: HMAC-SHA-256 under a key drawn at start and never stored, so the memory
//! of the process does not hold passwords, and the entries are worthless to another process. An entry is used only
//! while the account's stored password hash is the one it was checked against and the account is active: a
//! password change or a suspension takes effect at the next request. A wrong password never matches an entry and
//! goes through the login's own check and throttle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::db::{users, Db, DbError};

/// How long a checked pair is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(300);
/// Pairs remembered at most; past it the oldest half is forgotten.
pub const MAX_ENTRIES: usize = 10_000;

/// The pairs checked lately, per instance.
pub struct CheckedCredentials {
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    mac: Vec<u8>,
    user_id: String,
    password_hash: String,
    at: Instant,
}

impl std::fmt::Debug for CheckedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCredentials").finish_non_exhaustive()
    }
}

impl Default for CheckedCredentials {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CheckedCredentials {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl CheckedCredentials {
    fn mac(&self, email: &str, password: &SecretString) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(email.as_bytes());
        mac.update(&[0]);
        mac.update(password.expose_secret().as_bytes());
        mac
    }

    /// The user whose pair this is, when it was checked less than [`REMEMBER_FOR`] ago and the account still has
    /// that password and is active; `None` means "check it the usual way".
    pub async fn recall(&self, db: &Db, email: &str, password: &SecretString) -> Result<Option<String>, DbError> {
        let remembered = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.get(email).and_then(|e| {
                let fresh = e.at.elapsed() < REMEMBER_FOR;
                let same = self.mac(email, password).verify_slice(&e.mac).is_ok();
                (fresh && same).then(|| (e.user_id.clone(), e.password_hash.clone()))
            })
        };
        let Some((user_id, password_hash)) = remembered else {
            return Ok(None);
        };
        let current = users::by_email(db, email).await?;
        Ok(current
            .filter(|u| u.id == user_id && u.password_hash == password_hash && u.status == users::UserStatus::Active)
            .map(|u| u.id))
    }

    /// Remembers a pair the login's check has just accepted for `user`.
    pub fn remember(&self, email: &str, password: &SecretString, user_id: &str, password_hash: &str) {
        let mac = self.mac(email, password).finalize().into_bytes().to_vec();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(email) {
            entries.retain(|_, e| e.at.elapsed() < REMEMBER_FOR);
            if entries.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = entries.values().map(|e| e.at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                entries.retain(|_, e| e.at > cut);
            }
        }
        entries.insert(
            email.to_owned(),
            Entry {
                mac,
                user_id: user_id.to_owned(),
                password_hash: password_hash.to_owned(),
                at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        s.to_owned().into()
    }

    #[test]
    fn the_pair_is_kept_as_a_keyed_hash_that_only_the_same_pair_matches() {
        let c = CheckedCredentials::default();
        c.remember("a@b.test", &secret("right one"), "u1", "$argon2id$x");
        let entries = c.entries.lock().unwrap();
        let e = &entries["a@b.test"];
        assert_eq!(e.mac.len(), 32);
        assert!(!e.mac.windows(9).any(|w| w == b"right one"));
        assert!(c.mac("a@b.test", &secret("right one")).verify_slice(&e.mac).is_ok());
        assert!(c.mac("a@b.test", &secret("right on")).verify_slice(&e.mac).is_err());
        assert!(c.mac("a@b.tes", &secret("tright one")).verify_slice(&e.mac).is_err());
        // Another process (another key) cannot use the entry.
        let other = CheckedCredentials::default();
        assert!(other
            .mac("a@b.test", &secret("right one"))
            .verify_slice(&e.mac)
            .is_err());
    }

    #[test]
    fn the_entries_stay_bounded() {
        let c = CheckedCredentials::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.remember(&format!("{i}@b.test"), &secret("pw"), "u", "h");
        }
        let entries = c.entries.lock().unwrap();
        assert!(entries.len() <= MAX_ENTRIES, "{}", entries.len());
        assert!(entries.contains_key(&format!("{}@b.test", MAX_ENTRIES + 9)));
    }
}
