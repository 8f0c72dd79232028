//! A token bucket per instance, for the public services that sign in the token on every request (`POST /tsa`,
//! `POST /pki/ocsp`): a flood from anyone must not starve holders' signatures of HSM sessions.
//!
//! Per instance, in memory: N instances allow N times the rate. That is accepted here because the limit protects
//! each instance's HSM sessions, which are per instance too; a shared budget would cost a database write per request.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Up to `per_minute` requests in a burst, refilled evenly over a minute.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_minute: u32,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A full bucket of `per_minute` (at least 1).
    pub fn per_minute(per_minute: u32) -> RateLimit {
        let per_minute = per_minute.max(1);
        RateLimit {
            per_minute,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(per_minute),
                at: Instant::now(),
            })),
        }
    }

    /// Takes one request's token, or says in how many seconds one will be there.
    pub fn take(&self) -> Result<(), u64> {
        let rate = f64::from(self.per_minute) / 60.0;
        // A poisoned lock only means another thread panicked mid-update: the counts are still usable.
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(f64::from(self.per_minute));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_passes_and_the_next_waits() {
        let limit = RateLimit::per_minute(3);
        assert!((0..3).all(|_| limit.take().is_ok()));
        let wait = limit.take().unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
    }
}
