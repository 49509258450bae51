//! The node's clock: the one place wall time is read for alert timing (escalation, lost
//! contact, alert timestamps).
//!
//! Production clocks run at real time. Tests move a clock forward with [`Clock::advance`] to
//! show that time-driven behaviour (escalation) happens on time without waiting for it. The
//! rule engine never reads a clock: its callers pass `now` in.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Wall time plus an offset (zero unless a test advanced it). Cheap to clone; clones share
/// the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_runs_ahead_in_every_clone() {
        let clock = Clock::system();
        let twin = clock.clone();
        clock.advance(Duration::from_secs(3600));
        let ahead = twin.now() - Utc::now();
        assert!(
            ahead >= chrono::Duration::seconds(3599) && ahead <= chrono::Duration::seconds(3601)
        );
    }
}
