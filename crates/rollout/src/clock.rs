//! Where the guard loop gets its time: one injected [`Clock`] both stamps each evaluation and
//! waits between evaluations, so the two can never disagree. [`SystemClock`] is the wall clock
//! (and tokio's timer); [`ManualClock`] is a simulated clock whose sleeps return at once after
//! moving it forward, so a test walks a 24-hour plan through the real loop in milliseconds.
//!
//! The engine itself takes `now` as an argument and reads no clock at all (see [`crate::engine`]).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The source of time of the guard loop.
pub trait Clock: Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
    /// Wait for `d` (of this clock's time).
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// The wall clock; sleeps on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// A simulated clock: it stands still until slept on or [advanced](ManualClock::advance), and a
/// sleep moves it forward by exactly the time asked and returns at once.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Move the clock forward by `d` (the time an evaluation "took").
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now
            .saturating_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
            .unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        self.advance(d);
        std::future::ready(())
    }
}
