//! The injectable clock. Services read the time only through [`Clock`], so tests
//! move time forward instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real time plus an offset that a test moves forward: time passes as
/// usual, and "30 minutes later" is one call to [`OffsetClock::advance`]. Shared
/// by a system and its restarts, so a restarted system sees the same time.
#[derive(Default)]
pub struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    pub fn new() -> OffsetClock {
        OffsetClock::default()
    }

    /// A clock already `by` ahead of (or behind) the real time.
    pub fn skewed(by: Duration) -> OffsetClock {
        OffsetClock { offset: Mutex::new(by) }
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().expect("clock lock is never poisoned");
        *offset += by;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().expect("clock lock is never poisoned")
    }
}
