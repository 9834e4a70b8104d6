//! The keys and rules of the timeout, the bulkhead and the retry budget.

use core::time::Duration;

use crate::{count, positive, Problem, Problems, Value};

/// What a timeout's configuration says (`#[timeout("30s")]`, or
/// `timeout = "30s"` in `#[resilient]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeoutValues {
    /// How long one attempt may take.
    pub timeout: Value<Duration>,
}

impl TimeoutValues {
    /// No key written (a timeout always has its duration written).
    pub const NONE: TimeoutValues = TimeoutValues {
        timeout: Value::Absent,
    };

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        positive(&mut p, "timeout", self.timeout);
        p
    }
}

/// What a bulkhead's configuration says, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BulkheadValues {
    /// Calls in flight at once.
    pub max_concurrent: Value<u64>,
    /// How long a call waits for a slot before it is rejected.
    pub max_wait: Value<Duration>,
}

impl BulkheadValues {
    /// No key written: every default.
    pub const NONE: BulkheadValues = BulkheadValues {
        max_concurrent: Value::Absent,
        max_wait: Value::Absent,
    };
    /// Default `max_concurrent`: 10 calls.
    pub const DEFAULT_MAX_CONCURRENT: u64 = 10;
    /// Default `max_wait`: zero (a full bulkhead rejects at once).
    pub const DEFAULT_MAX_WAIT: Duration = Duration::ZERO;

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        count(&mut p, "max_concurrent", self.max_concurrent);
        p
    }
}

/// What a retry budget's configuration says, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetValues {
    /// How long a deposited call counts.
    pub ttl: Value<Duration>,
    /// Retries per second always allowed.
    pub min_per_sec: Value<u64>,
    /// The share of calls that may be retried.
    pub retry_ratio: Value<f64>,
}

impl BudgetValues {
    /// No key written: every default.
    pub const NONE: BudgetValues = BudgetValues {
        ttl: Value::Absent,
        min_per_sec: Value::Absent,
        retry_ratio: Value::Absent,
    };
    /// Default `ttl`: 10 s.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
    /// Default `min_per_sec`: 10 retries a second.
    pub const DEFAULT_MIN_PER_SEC: u64 = 10;
    /// Default `retry_ratio`: 20 % of the calls.
    pub const DEFAULT_RETRY_RATIO: f64 = 0.2;
    /// The shortest `ttl`.
    pub const MIN_TTL: Duration = Duration::from_secs(1);
    /// The longest `ttl`.
    pub const MAX_TTL: Duration = Duration::from_secs(60);
    /// The largest `retry_ratio`.
    pub const MAX_RETRY_RATIO: f64 = 1000.0;

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        if let Some(ttl) = self.ttl.given() {
            if ttl.as_nanos() < Self::MIN_TTL.as_nanos()
                || ttl.as_nanos() > Self::MAX_TTL.as_nanos()
            {
                p.push(Problem::DurationOutOfRange {
                    key: "ttl",
                    found: ttl,
                    min: Self::MIN_TTL,
                    max: Self::MAX_TTL,
                });
            }
        }
        if let Some(n) = self.min_per_sec.given() {
            if n > crate::MAX_COUNT {
                p.push(Problem::TooLarge {
                    key: "min_per_sec",
                    found: n,
                    max: crate::MAX_COUNT,
                });
            }
        }
        if let Some(r) = self.retry_ratio.given() {
            // Written so that NaN fails too.
            if !(r >= 0.0 && r <= Self::MAX_RETRY_RATIO) {
                p.push(Problem::NumberOutOfRange {
                    key: "retry_ratio",
                    found: r,
                    min: 0.0,
                    max: Self::MAX_RETRY_RATIO,
                });
            }
        }
        p
    }
}
