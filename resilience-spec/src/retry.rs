//! The retry's keys and rules.

use core::time::Duration;

use crate::{count, BackoffKind, Jitter, Problem, Problems, Value};

/// What a retry's configuration says, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RetryValues {
    /// Attempts in all, the first call included.
    pub max_attempts: Value<u64>,
    /// How the delay grows.
    pub backoff: Value<BackoffKind>,
    /// The first delay.
    pub delay: Value<Duration>,
    /// The cap on every delay.
    pub max_delay: Value<Duration>,
    /// The growth factor of an exponential backoff.
    pub multiplier: Value<f64>,
    /// The randomisation of each delay.
    pub jitter: Value<Jitter>,
    /// The bound on the whole retried call.
    pub max_elapsed: Value<Duration>,
}

impl RetryValues {
    /// No key written: every default.
    pub const NONE: RetryValues = RetryValues {
        max_attempts: Value::Absent,
        backoff: Value::Absent,
        delay: Value::Absent,
        max_delay: Value::Absent,
        multiplier: Value::Absent,
        jitter: Value::Absent,
        max_elapsed: Value::Absent,
    };

    /// Default `max_attempts`: 3 (the first call and 2 retries).
    pub const DEFAULT_MAX_ATTEMPTS: u64 = 3;
    /// Default `backoff`: exponential.
    pub const DEFAULT_BACKOFF: BackoffKind = BackoffKind::Exponential;
    /// Default `delay`: 1 s.
    pub const DEFAULT_DELAY: Duration = Duration::from_secs(1);
    /// Default `multiplier`: 2.
    pub const DEFAULT_MULTIPLIER: f64 = 2.0;
    /// Default `jitter`: none.
    pub const DEFAULT_JITTER: Jitter = Jitter::None;

    /// Every problem of this configuration, in the order of the keys.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        count(&mut p, "max_attempts", self.max_attempts);
        let delay = self.delay.or(Self::DEFAULT_DELAY);
        if let (Some(max), Some(delay)) = (self.max_delay.given(), delay) {
            if max.as_nanos() < delay.as_nanos() {
                p.push(Problem::BelowOther {
                    key: "max_delay",
                    found: max,
                    other: "delay",
                    limit: delay,
                });
            }
        }
        if let Some(m) = self.multiplier.given() {
            if m.is_nan() || m < 1.0 || m.is_infinite() {
                p.push(Problem::MultiplierBelowOne { found: m });
            }
        }
        if self.multiplier.is_present() {
            if let Some(backoff) = self.backoff.or(Self::DEFAULT_BACKOFF) {
                if !matches!(backoff, BackoffKind::Exponential) {
                    p.push(Problem::MultiplierWithoutExponential {
                        backoff: backoff.as_str(),
                    });
                }
            }
        }
        if let Some(max_elapsed) = self.max_elapsed.given() {
            if max_elapsed.is_zero() {
                p.push(Problem::NotPositive { key: "max_elapsed" });
            } else if let Some(delay) = delay {
                if max_elapsed.as_nanos() <= delay.as_nanos() {
                    p.push(Problem::MaxElapsedTooShort { max_elapsed, delay });
                }
            }
        }
        p
    }
}
