//! The keys and rules of an adaptive bulkhead
//! (`#[bulkhead(max_concurrent = "adaptive", ..)]`).

use core::time::Duration;

use crate::{count, positive, Problem, Problems, Value};

/// What an adaptive bulkhead's configuration says, key by key: an AIMD
/// limit between `min_limit` and `max_limit`, starting at `initial_limit`,
/// cut when a call fails or takes longer than `latency_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdaptiveValues {
    /// The smallest limit.
    pub min_limit: Value<u64>,
    /// The largest limit.
    pub max_limit: Value<u64>,
    /// Where the limit starts.
    pub initial_limit: Value<u64>,
    /// A call slower than this cuts the limit.
    pub latency_threshold: Value<Duration>,
    /// How long a call waits for a slot before it is rejected.
    pub max_wait: Value<Duration>,
}

impl AdaptiveValues {
    /// No key written: every default.
    pub const NONE: AdaptiveValues = AdaptiveValues {
        min_limit: Value::Absent,
        max_limit: Value::Absent,
        initial_limit: Value::Absent,
        latency_threshold: Value::Absent,
        max_wait: Value::Absent,
    };
    /// Default `min_limit`: 1.
    pub const DEFAULT_MIN_LIMIT: u64 = 1;
    /// Default `max_limit`: 200 (Netflix concurrency-limits').
    pub const DEFAULT_MAX_LIMIT: u64 = 200;
    /// Default `initial_limit`: 20, or the nearest bound.
    pub const DEFAULT_INITIAL_LIMIT: u64 = 20;
    /// Default `latency_threshold`: 5 s.
    pub const DEFAULT_LATENCY_THRESHOLD: Duration = Duration::from_secs(5);

    /// `min_limit` in force.
    pub const fn min(&self) -> u64 {
        match self.min_limit.given() {
            Some(n) => n,
            None => Self::DEFAULT_MIN_LIMIT,
        }
    }

    /// `max_limit` in force.
    pub const fn max(&self) -> u64 {
        match self.max_limit.given() {
            Some(n) => n,
            None => Self::DEFAULT_MAX_LIMIT,
        }
    }

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        count(&mut p, "min_limit", self.min_limit);
        count(&mut p, "max_limit", self.max_limit);
        count(&mut p, "initial_limit", self.initial_limit);
        positive(&mut p, "latency_threshold", self.latency_threshold);
        if p.is_empty() && self.min() > self.max() {
            p.push(Problem::TooLarge {
                key: "min_limit",
                found: self.min(),
                max: self.max(),
            });
        }
        if let Some(initial) = self.initial_limit.given() {
            if p.is_empty() && (initial < self.min() || initial > self.max()) {
                p.push(Problem::NumberOutOfRange {
                    key: "initial_limit",
                    found: initial as f64,
                    min: self.min() as f64,
                    max: self.max() as f64,
                });
            }
        }
        p
    }
}
