//! The one source of "now" for everything that depends on wall time
//! (maintenance windows, timers that wait for one to open).
//!
//! Code asks a [`Clock`] instead of calling `Utc::now()` so that a test can
//! hold a [`ManualClock`] and move time forward instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Where the current instant comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock: what production uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move: for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(at) }
    }

    /// Jump to `at` (backwards too: a test may want that).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding the lock cannot leave a half-written instant.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), t0);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::minutes(90));
        assert_eq!(clock.now(), t0 + Duration::minutes(90));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }

    #[test]
    fn system_clock_is_close_to_now() {
        let d = SystemClock.now() - Utc::now();
        assert!(d.num_seconds().abs() < 5);
    }
}
