//! Password hashing with Argon2id (RFC 9106 parameters of the `argon2` crate's defaults: m=19 MiB, t=2, p=1).
//! Hashing is slow and memory-hungry on purpose: the server runs it through [`Hasher`], a bounded pool of workers
//! that each reserve the Argon2 memory from the admission budget first, and that checks an unknown account
//! against a dummy hash so that a login costs the same whether the e-mail exists or not.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::admission::{Budget, Overloaded, Work};
use crate::i18n::Text;
use crate::text;

/// Why a password was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("{}", self.text())]
    TooShort(usize),
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    /// Every hashing worker stayed busy (or the memory budget spent) for the whole wait.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
}

impl PasswordError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            PasswordError::TooShort(f0) => text!("error.password.password_must_have_at_least", min = f0),
            PasswordError::Hash(_) => text!("error.http.internal_error"),
            PasswordError::Overloaded(e) => e.text(),
        }
    }
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

/// Bytes of memory an Argon2 computation with the parameters of `stored` (a PHC string) takes; the defaults' when
/// the string does not parse (the check will then fail at once anyway).
fn memory_of(stored: &str) -> u64 {
    let kib = PasswordHash::new(stored)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .map_or(Params::DEFAULT_M_COST, |p| p.m_cost());
    u64::from(kib) * 1024
}

/// The pool of Argon2 workers: at most `workers` computations at once, each reserving its memory from the budget
/// before it starts; a caller waits for a worker at most the budget's wait, then gets [`Overloaded`].
pub struct Hasher {
    workers: Arc<Semaphore>,
    budget: Arc<Budget>,
    wait: Duration,
    /// An Argon2id hash (default parameters, as [`hash`] makes) of a random password nobody knows.
    dummy: String,
}

impl Hasher {
    /// A pool of `workers` (at least one) reserving from `budget`; makes the dummy hash (one Argon2 computation).
    pub fn new(workers: usize, budget: Arc<Budget>, wait: Duration) -> Result<Hasher, PasswordError> {
        let unknown: SecretString = uuid::Uuid::new_v4().to_string().into();
        let dummy = hash(&unknown, 0)?;
        Ok(Hasher {
            workers: Arc::new(Semaphore::new(workers.max(1))),
            budget,
            wait,
            dummy,
        })
    }

    /// Runs `work` on a worker once one is free and the memory of `stored` is reserved.
    async fn run<T: Send + 'static>(
        &self,
        memory: u64,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let worker = tokio::time::timeout(self.wait, self.workers.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                crate::metrics::count_admission_refusal(Work::PasswordCheck.label());
                self.budget.overloaded(Work::PasswordCheck)
            })?;
        let memory = self.budget.reserve(memory, Work::PasswordCheck).await?;
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop((memory, worker));
            out
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(out)
    }

    /// Hashes a new password on the pool.
    pub async fn hash(&self, password: SecretString, min_length: usize) -> Result<String, PasswordError> {
        let memory = memory_of(&self.dummy);
        self.run(memory, move || {
            crate::metrics::count_password_hash("hash");
            hash(&password, min_length)
        })
        .await?
    }

    /// Whether `password` matches `stored`. With no stored hash (an unknown account, or none set) the password is
    /// checked against the dummy hash, through the same pool, and the answer is `false`: the caller cannot be
    /// told apart by time from one whose account exists.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> Result<bool, PasswordError> {
        let (stored, known) = match stored.filter(|s| !s.is_empty()) {
            Some(s) => (s, true),
            None => (self.dummy.clone(), false),
        };
        let memory = memory_of(&stored);
        self.run(memory, move || {
            crate::metrics::count_password_hash(if known { "verify" } else { "dummy" });
            verify(&password, &stored) && known
        })
        .await
    }
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

    #[test]
    fn the_reserved_memory_is_the_argon2_memory_of_the_hash() {
        let h = hash(&"correct horse battery".to_owned().into(), 0).unwrap();
        assert_eq!(memory_of(&h), 19 * 1024 * 1024);
    }

    #[tokio::test]
    async fn an_unknown_account_is_checked_against_the_dummy_hash_through_the_pool() {
        let budget = Arc::new(Budget::new(64, Duration::from_secs(30), 1));
        let hasher = Hasher::new(1, budget.clone(), Duration::from_secs(30)).unwrap();
        let pw: SecretString = "correct horse battery".to_owned().into();
        let stored = hasher.hash(pw.clone(), 0).await.unwrap();
        assert!(hasher.verify(pw.clone(), Some(stored)).await.unwrap());
        // The dummy's own password is unknown; even an empty stored hash is no shortcut.
        assert!(!hasher.verify(pw.clone(), None).await.unwrap());
        assert!(!hasher.verify(pw, Some(String::new())).await.unwrap());
        assert_eq!(budget.available_bytes(), budget.total_bytes(), "memory given back");
    }

    #[tokio::test]
    async fn a_busy_pool_refuses_after_the_wait() {
        let budget = Arc::new(Budget::new(64, Duration::from_millis(50), 7));
        let hasher = Hasher::new(1, budget, Duration::from_millis(50)).unwrap();
        let _busy = hasher.workers.clone().acquire_owned().await.unwrap();
        let refused = hasher.verify("x".to_owned().into(), None).await.unwrap_err();
        assert!(matches!(
            refused,
            PasswordError::Overloaded(Overloaded {
                retry_after_secs: 7,
                ..
            })
        ));
    }
}
