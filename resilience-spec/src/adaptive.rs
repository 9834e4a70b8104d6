//! The keys and rules of an adaptive bulkhead
//! (`#[bulkhead(max_concurrent = "adaptive", ..)]`).

use core::time::Duration;

use crate::{count, positive, Problem, Problems, Value};

/// How an adaptive limit moves, as written: `max_concurrent = "adaptive"`
/// (or `"aimd"`) or `max_concurrent = "gradient2"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptiveAlgorithm {
    /// Additive increase, multiplicative decrease on a latency threshold.
    Aimd,
    /// Netflix concurrency-limits' Gradient2: the ratio of the long-term to
    /// the recent latency.
    Gradient2,
}

impl AdaptiveAlgorithm {
    /// Reads `max_concurrent`'s text: `"adaptive"` and `"aimd"` are AIMD,
    /// `"gradient2"` is Gradient2.
    pub fn parse(text: &str) -> Option<AdaptiveAlgorithm> {
        match text.trim() {
            "adaptive" | "aimd" => Some(AdaptiveAlgorithm::Aimd),
            "gradient2" => Some(AdaptiveAlgorithm::Gradient2),
            _ => None,
        }
    }
}

/// What an adaptive bulkhead's configuration says, key by key: a limit
/// between `min_limit` and `max_limit`, starting at `initial_limit`, moved
/// by AIMD (cut when a call fails or takes longer than `latency_threshold`)
/// or Gradient2 (`tolerance`, `sample_window`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdaptiveValues {
    /// The algorithm (absent: AIMD).
    pub algorithm: Value<AdaptiveAlgorithm>,
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
    /// Gradient2: how much slower than the long-term latency a call may be
    /// before the limit shrinks.
    pub tolerance: Value<f64>,
    /// Gradient2: the calls ending within each window are one sample (zero:
    /// each call).
    pub sample_window: Value<Duration>,
}

impl AdaptiveValues {
    /// No key written: every default.
    pub const NONE: AdaptiveValues = AdaptiveValues {
        algorithm: Value::Absent,
        tolerance: Value::Absent,
        sample_window: Value::Absent,
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

    /// Default `tolerance`: 1.5 (Netflix's `rttTolerance`).
    pub const DEFAULT_TOLERANCE: f64 = 1.5;
    /// The largest `tolerance`.
    pub const MAX_TOLERANCE: f64 = 10.0;
    /// The shortest `sample_window` but zero (Netflix's).
    pub const MIN_SAMPLE_WINDOW: Duration = Duration::from_millis(100);
    /// The longest `sample_window`.
    pub const MAX_SAMPLE_WINDOW: Duration = Duration::from_secs(60);

    /// The algorithm in force.
    pub const fn algorithm_or_default(&self) -> AdaptiveAlgorithm {
        match self.algorithm.given() {
            Some(a) => a,
            None => AdaptiveAlgorithm::Aimd,
        }
    }

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
        check_gradient2(&mut p, self.tolerance, self.sample_window);
        match self.algorithm_or_default() {
            AdaptiveAlgorithm::Aimd => {
                if self.tolerance.is_present() {
                    p.push(Problem::AlgorithmOnly {
                        key: "tolerance",
                        algorithm: "gradient2",
                    });
                }
                if self.sample_window.is_present() {
                    p.push(Problem::AlgorithmOnly {
                        key: "sample_window",
                        algorithm: "gradient2",
                    });
                }
            }
            AdaptiveAlgorithm::Gradient2 => {
                if self.latency_threshold.is_present() {
                    p.push(Problem::AlgorithmOnly {
                        key: "latency_threshold",
                        algorithm: "adaptive",
                    });
                }
            }
        }
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

/// Gradient2's `tolerance` (between 1 and [`AdaptiveValues::MAX_TOLERANCE`])
/// and `sample_window` (zero, or between
/// [`AdaptiveValues::MIN_SAMPLE_WINDOW`] and
/// [`AdaptiveValues::MAX_SAMPLE_WINDOW`]): the attribute's rules and the
/// `Gradient2` builder's.
pub const fn check_gradient2(
    p: &mut Problems,
    tolerance: Value<f64>,
    sample_window: Value<Duration>,
) {
    if let Some(w) = sample_window.given() {
        let (min, max) = (
            AdaptiveValues::MIN_SAMPLE_WINDOW,
            AdaptiveValues::MAX_SAMPLE_WINDOW,
        );
        if !w.is_zero() && (w.as_nanos() < min.as_nanos() || w.as_nanos() > max.as_nanos()) {
            p.push(Problem::DurationOutOfRange {
                key: "sample_window",
                found: w,
                min,
                max,
            });
        }
    }
    if let Some(t) = tolerance.given() {
        // Written so that NaN fails too.
        if !(t >= 1.0 && t <= AdaptiveValues::MAX_TOLERANCE) {
            p.push(Problem::NumberOutOfRange {
                key: "tolerance",
                found: t,
                min: 1.0,
                max: AdaptiveValues::MAX_TOLERANCE,
            });
        }
    }
}
