//! The one source of time. Services take a `&dyn Clock`; tests and the `PARAFA_CLOCK_OFFSET_SECS` variable of a
//! test server move it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Current time as Unix seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;
}

/// The system clock, shifted by an offset that tests may move.
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_secs: AtomicI64,
}

impl SystemClock {
    /// A clock `offset_secs` ahead of the system's (negative: behind).
    pub fn with_offset(offset_secs: i64) -> SystemClock {
        SystemClock {
            offset_secs: AtomicI64::new(offset_secs),
        }
    }

    /// Moves the clock forward (or back) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        secs + self.offset_secs.load(Ordering::SeqCst)
    }
}

/// Unix seconds as an RFC 3339 UTC string.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_when_told() {
        let c = SystemClock::with_offset(0);
        let before = c.now();
        c.advance(86_400);
        assert!(c.now() - before >= 86_400);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
