//! A token bucket per instance, for the public services that sign in the token on every request (`POST /tsa`,
//! `POST /pki/ocsp`): a flood from anyone must not starve holders' signatures of HSM sessions or of CPU.
//!
//! Per instance, in memory: N instances allow N times the rate. That is accepted here because the limit protects
//! each instance's HSM sessions and cores, which are per instance too; a shared budget would cost a database write
//! per request.
//!
//! Two choices keep a flood cheap:
//! - **A burst of one second.** The bucket holds one second of the rate (at least [`MIN_BURST`] requests, never
//!   more than the minute's limit), not the whole minute: a flood gets the steady rate at once, not a minute's
//!   worth first.
//! - **Refusals are slow.** A refused request is answered after a pause ([`Admission::Refused`] carries it) of at
//!   most [`REFUSAL_PAUSE`], while fewer than [`MAX_PAUSED`] refusals wait. A client that honours `Retry-After`
//!   loses nothing (it was told to wait at least that long); a client that asks again at once gets its refusals at
//!   the pace of one per connection per pause instead of as fast as the server can say no, so a flood costs the
//!   server little CPU. Past [`MAX_PAUSED`] waiting refusals, refusals are immediate: a pause never holds memory
//!   without bound.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// The least burst a bucket allows (when the minute's limit is at least that).
pub const MIN_BURST: u32 = 10;
/// The longest a refusal is held before it is sent.
pub const REFUSAL_PAUSE: Duration = Duration::from_secs(1);
/// Refusals held at once, per limit, at most.
pub const MAX_PAUSED: usize = 4096;

/// Up to one second of `per_minute` in a burst, refilled evenly over a minute.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_minute: u32,
    burst: f64,
    bucket: Arc<Mutex<Bucket>>,
    paused: Arc<Semaphore>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A full bucket for `per_minute` (at least 1).
    pub fn per_minute(per_minute: u32) -> RateLimit {
        let per_minute = per_minute.max(1);
        let burst = f64::from(per_minute.div_ceil(60).max(MIN_BURST).min(per_minute));
        RateLimit {
            per_minute,
            burst,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            })),
            paused: Arc::new(Semaphore::new(MAX_PAUSED)),
        }
    }

    /// Takes one request's token, or says in how many seconds one will be there.
    pub fn take(&self) -> Result<(), u64> {
        let rate = f64::from(self.per_minute) / 60.0;
        // A poisoned lock only means another thread panicked mid-update: the counts are still usable.
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Takes one request's token; a refusal comes back after its pause (see the module's text), with the seconds
    /// to tell the client in `Retry-After`.
    pub async fn admit(&self) -> Result<(), u64> {
        let retry_after = match self.take() {
            Ok(()) => return Ok(()),
            Err(secs) => secs,
        };
        if let Ok(_held) = self.paused.try_acquire() {
            tokio::time::sleep(REFUSAL_PAUSE.min(Duration::from_secs(retry_after))).await;
        }
        Err(retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_limit_allows_its_whole_minute_in_a_burst_and_the_next_waits() {
        let limit = RateLimit::per_minute(3);
        assert!((0..3).all(|_| limit.take().is_ok()));
        let wait = limit.take().unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
    }

    #[test]
    fn a_high_limit_allows_one_second_of_its_rate_in_a_burst() {
        let limit = RateLimit::per_minute(6_000);
        let passed = (0..6_000).take_while(|_| limit.take().is_ok()).count();
        // 100 in the bucket, plus what refilled while counting (a few at most).
        assert!((100..110).contains(&passed), "{passed}");
        assert_eq!(limit.take(), Err(1));
    }

    #[test]
    fn a_middling_limit_still_allows_the_least_burst() {
        let limit = RateLimit::per_minute(120);
        let passed = (0..120).take_while(|_| limit.take().is_ok()).count();
        assert_eq!(passed, MIN_BURST as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_held_for_the_pause_and_a_grant_is_not() {
        let limit = RateLimit::per_minute(1);
        let start = tokio::time::Instant::now();
        assert_eq!(limit.admit().await, Ok(()));
        assert_eq!(start.elapsed(), Duration::ZERO);
        let refused = limit.admit().await;
        assert!(matches!(refused, Err(secs) if secs >= 59), "{refused:?}");
        assert_eq!(start.elapsed(), REFUSAL_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_held_refusals_a_refusal_is_immediate() {
        let limit = RateLimit::per_minute(1);
        assert_eq!(limit.admit().await, Ok(()));
        let _all = limit.paused.clone().try_acquire_many_owned(MAX_PAUSED as u32).unwrap();
        let start = tokio::time::Instant::now();
        assert!(limit.admit().await.is_err());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
