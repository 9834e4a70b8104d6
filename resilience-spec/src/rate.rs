//! The rate limiter's keys and rules.

use core::time::Duration;

use crate::{count, positive, Problems, Value};

/// What a rate limiter's configuration says, key by key
/// (`#[rate_limit(name = "openai", rate = 50, per = "1s", burst = 10)]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimitValues {
    /// Calls allowed per `per` (on average).
    pub rate: Value<u64>,
    /// The period `rate` is counted over.
    pub per: Value<Duration>,
    /// Calls allowed at once after a quiet period.
    pub burst: Value<u64>,
    /// How long a call over the limit may wait for its turn.
    pub max_wait: Value<Duration>,
    /// One limit for every instance of a fleet sharing the registry through
    /// Redis.
    pub fleet: Value<bool>,
}

impl RateLimitValues {
    /// No key written.
    pub const NONE: RateLimitValues = RateLimitValues {
        rate: Value::Absent,
        per: Value::Absent,
        burst: Value::Absent,
        max_wait: Value::Absent,
        fleet: Value::Absent,
    };
    /// Default `rate`, for a limiter configured without one (the attribute
    /// requires it): 10 calls.
    pub const DEFAULT_RATE: u64 = 10;
    /// Default `per`: 1 s.
    pub const DEFAULT_PER: Duration = Duration::from_secs(1);
    /// Default `max_wait`: zero (a call over the limit is rejected at once).
    pub const DEFAULT_MAX_WAIT: Duration = Duration::ZERO;

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        count(&mut p, "rate", self.rate);
        positive(&mut p, "per", self.per);
        count(&mut p, "burst", self.burst);
        p
    }

    /// `rate` in force.
    pub const fn rate_or_default(&self) -> u64 {
        match self.rate.given() {
            Some(n) => n,
            None => Self::DEFAULT_RATE,
        }
    }

    /// `burst` in force: `rate` when not written.
    pub const fn burst_or_default(&self) -> u64 {
        match self.burst.given() {
            Some(n) => n,
            None => self.rate_or_default(),
        }
    }
}
