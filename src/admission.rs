//! Admission control for memory: one budget, set by `[admission] memory_budget_mib`, from which every piece of
//! work whose memory grows with what a client sends (an Argon2 hash, a PDF or CMS parse, a large request body)
//! reserves its share *before* it starts, and gives it back when the reservation is dropped. When the budget is
//! spent, a request waits a little (`wait_ms`) for others to finish, then gets a 503 with `Retry-After`: the
//! process slows down under load instead of being killed by the allocator.
//!
//! Reservations are counted in KiB on a fair (FIFO) tokio semaphore, so a large reservation is not starved by a
//! stream of small ones. One reservation takes at most half the budget: a request holds at most two at once (its
//! body, then its parse or its password check), so even the largest request, alone, is always admitted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AdmissionSettings;
use crate::i18n::Text;
use crate::text;

const KIB: u64 = 1024;

/// What a reservation is for: the metrics' label and the 503's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    RequestBody,
    PasswordCheck,
    Pdf,
    Signature,
    Verification,
}

impl Work {
    /// Its label in the metrics (`a PDF`, …).
    pub fn label(self) -> &'static str {
        match self {
            Work::RequestBody => "a request body",
            Work::PasswordCheck => "a password check",
            Work::Pdf => "a PDF",
            Work::Signature => "a signature",
            Work::Verification => "a verification",
        }
    }

    /// Its name in a message.
    pub fn text(self) -> Text {
        text!(match self {
            Work::RequestBody => "error.login.request_body",
            Work::PasswordCheck => "error.login.password_check",
            Work::Pdf => "error.login.pdf",
            Work::Signature => "error.login.signature",
            Work::Verification => "error.login.verification",
        })
    }
}

/// The budget was spent for longer than the wait allowed: the caller answers 503 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overloaded {
    /// What could not be admitted.
    pub what: Work,
    /// What the 503 tells the client in `Retry-After`.
    pub retry_after_secs: u64,
}

impl Overloaded {
    /// What the 503 says.
    pub fn text(&self) -> Text {
        text!("error.login.server_busy_try_again_in", what => self.what.text(), seconds = self.retry_after_secs)
    }
}

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text().fmt(f)
    }
}

impl std::error::Error for Overloaded {}

/// A share of the budget; dropping it gives the share back.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// A reservation of nothing (work too small to count).
    pub fn none() -> Reservation {
        Reservation { _permit: None }
    }
}

/// The memory budget of the process.
#[derive(Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
    retry_after_secs: u64,
}

impl Budget {
    /// A budget of `total_mib` MiB; reservations wait up to `wait` for room.
    pub fn new(total_mib: u32, wait: Duration, retry_after_secs: u64) -> Budget {
        let total_kib = total_mib.saturating_mul(1024).max(1);
        Budget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait,
            retry_after_secs,
        }
    }

    /// The budget in force for these settings.
    pub fn from_settings(s: &AdmissionSettings) -> Budget {
        Budget::new(
            s.memory_budget_mib,
            Duration::from_millis(s.wait_ms),
            s.retry_after_secs,
        )
    }

    /// Reserves `bytes` (rounded up to a KiB, at most half the budget) for `what`, waiting up to the configured time
    /// for room.
    pub async fn reserve(&self, bytes: u64, what: Work) -> Result<Reservation, Overloaded> {
        if bytes == 0 {
            return Ok(Reservation::none());
        }
        let most = (self.total_kib / 2).max(1);
        let kib = u32::try_from(bytes.div_ceil(KIB).min(u64::from(most))).unwrap_or(most);
        let acquire = self.permits.clone().acquire_many_owned(kib);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation { _permit: Some(permit) }),
            // Timed out, or the semaphore was closed (never done): the same answer, try later.
            _ => {
                crate::metrics::count_admission_refusal(what.label());
                Err(self.overloaded(what))
            }
        }
    }

    /// Reserves what parsing (and re-writing) `len` bytes takes ([`parse_cost`]).
    pub async fn reserve_parse(
        &self,
        len: usize,
        pdf: bool,
        s: &AdmissionSettings,
        what: Work,
    ) -> Result<Reservation, Overloaded> {
        self.reserve(parse_cost(len, pdf, s), what).await
    }

    /// The refusal for `what`, with this budget's `Retry-After`.
    pub fn overloaded(&self, what: Work) -> Overloaded {
        Overloaded {
            what,
            retry_after_secs: self.retry_after_secs,
        }
    }

    /// The whole budget, in bytes.
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_kib) * KIB
    }

    /// What is not reserved now, in bytes.
    pub fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * KIB
    }
}

/// What parsing (and re-writing) `len` bytes reserves: `parse_factor` × the size, plus, for a PDF, the most its
/// compressed streams may decode to (`pdf_decoded_mib`: a small file may inflate to the reader's cap).
pub fn parse_cost(len: usize, pdf: bool, s: &AdmissionSettings) -> u64 {
    let scaled = (len as u64).saturating_mul(u64::from(s.parse_factor));
    let decoded = if pdf {
        u64::from(s.pdf_decoded_mib) * KIB * KIB
    } else {
        0
    };
    scaled.saturating_add(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn reservations_past_the_budget_wait_then_fail_and_are_released_on_drop() {
        let budget = Budget::new(10, Duration::from_millis(100), 3);
        let a = budget.reserve(5 * MIB, Work::Pdf).await.expect("fits");
        let b = budget.reserve(5 * MIB, Work::Pdf).await.expect("fits exactly");
        assert_eq!(budget.available_bytes(), 0);
        let refused = budget.reserve(1, Work::Pdf).await.unwrap_err();
        assert_eq!(
            refused,
            Overloaded {
                what: Work::Pdf,
                retry_after_secs: 3
            }
        );
        drop(a);
        assert_eq!(budget.available_bytes(), 5 * MIB);
        let c = budget
            .reserve(5 * MIB, Work::Pdf)
            .await
            .expect("room after a was dropped");
        drop((b, c));
        assert_eq!(budget.available_bytes(), 10 * MIB);
    }

    #[tokio::test]
    async fn a_waiting_reservation_is_admitted_when_room_is_freed_in_time() {
        let budget = Arc::new(Budget::new(4, Duration::from_secs(30), 1));
        let held = budget.reserve(4 * MIB, Work::Pdf).await.unwrap();
        let b = budget.clone();
        let waiter = tokio::spawn(async move { b.reserve(2 * MIB, Work::Pdf).await.is_ok() });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_reservation_larger_than_the_budget_takes_half_so_its_request_can_take_another() {
        let budget = Budget::new(4, Duration::from_millis(50), 1);
        let body = budget
            .reserve(100 * MIB, Work::Pdf)
            .await
            .expect("clamped to half the budget");
        assert_eq!(budget.available_bytes(), 2 * MIB);
        let parse = budget.reserve(100 * MIB, Work::Pdf).await.expect("the other half");
        assert!(budget.reserve(1, Work::Pdf).await.is_err());
        drop((body, parse));
        assert_eq!(budget.total_bytes(), 4 * MIB);
        assert!(budget.reserve(0, Work::Pdf).await.is_ok());
    }

    #[test]
    fn parse_cost_scales_with_the_input_and_a_pdf_adds_what_it_may_decode() {
        let s = AdmissionSettings {
            parse_factor: 10,
            pdf_decoded_mib: 8,
            ..AdmissionSettings::default()
        };
        assert_eq!(parse_cost(1024, false, &s), 10 * 1024);
        assert_eq!(parse_cost(2 * MIB as usize, true, &s), 28 * MIB);
    }
}
