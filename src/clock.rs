//! The one source of time. Services take a `&dyn Clock`. Tests move it: in-process through [`SystemClock::advance`],
//! and for a server process through `PARAFA_CLOCK_OFFSET_SECS` (fixed at start) or `PARAFA_TEST_CLOCK_FILE`, a file
//! holding an offset in seconds that the server rereads on every reading of the clock. Neither is set in
//! production; the file hook exists only when the variable names it.

use std::path::PathBuf;
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
    offset_file: Option<PathBuf>,
}

impl SystemClock {
    /// A clock `offset_secs` ahead of the system's (negative: behind).
    pub fn with_offset(offset_secs: i64) -> SystemClock {
        SystemClock {
            offset_secs: AtomicI64::new(offset_secs),
            offset_file: None,
        }
    }

    /// The clock a server uses: `PARAFA_CLOCK_OFFSET_SECS` and `PARAFA_TEST_CLOCK_FILE` if set.
    pub fn from_env() -> SystemClock {
        let offset = std::env::var("PARAFA_CLOCK_OFFSET_SECS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        SystemClock {
            offset_secs: AtomicI64::new(offset),
            offset_file: std::env::var_os("PARAFA_TEST_CLOCK_FILE").map(PathBuf::from),
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
        let from_file = self
            .offset_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        secs + self.offset_secs.load(Ordering::SeqCst) + from_file
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
