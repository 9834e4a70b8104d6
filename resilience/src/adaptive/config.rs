//! What an adaptive limit is built from: the algorithm with its
//! parameters, the bounds of the limit and the wait for a slot, checked
//! once in [`AdaptiveConfigBuilder::build`] with the words of every other
//! configuration ([`ConfigError`]).

use std::time::Duration;

use resilience_spec::{AdaptiveValues, Problem, Problems, Value};

use crate::ConfigError;

/// Additive increase, multiplicative decrease: the loss-based algorithm of
/// TCP's congestion avoidance, as in Netflix's `AIMDLimit`
/// (<https://github.com/Netflix/concurrency-limits>).
///
/// - A success no slower than [`latency_threshold`](Self::latency_threshold()),
///   of a call that started while at least half the limit was in use,
///   adds `1 / limit`: about one more slot per round of `limit` calls.
///   (Netflix adds 1 per call; a slot per round grows as fast as calls can
///   show the new slot is safe, and no faster.) Below half the limit in
///   use, the calls say nothing about a larger limit: it stays.
/// - A failure, or a success slower than the threshold, multiplies the
///   limit by [`backoff_ratio`](Self::backoff_ratio()). Calls that started
///   before the last decrease do not decrease it again: one cut per round
///   of calls, however many of that round fail (TCP's one cut per window),
///   so a burst of failures halves the limit once, not a hundred times.
/// - [`Outcome::Ignored`](crate::Outcome::Ignored) changes nothing.
///
/// ```
/// use std::time::Duration;
/// use resilience::Aimd;
///
/// let aimd = Aimd::default()
///     .latency_threshold(Duration::from_millis(250))
///     .backoff_ratio(0.5);
/// assert_eq!(aimd.latency_threshold, Duration::from_millis(250));
/// assert_eq!(Aimd::default().backoff_ratio, 0.9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Aimd {
    /// See [`latency_threshold`](Self::latency_threshold()).
    pub latency_threshold: Duration,
    /// See [`backoff_ratio`](Self::backoff_ratio()).
    pub backoff_ratio: f64,
}

impl Aimd {
    /// Default [`latency_threshold`](Self::latency_threshold()): 5 s (Netflix's).
    pub const DEFAULT_LATENCY_THRESHOLD: Duration = Duration::from_secs(5);
    /// Default [`backoff_ratio`](Self::backoff_ratio()): 0.9 (Netflix's).
    pub const DEFAULT_BACKOFF_RATIO: f64 = 0.9;
    /// The smallest [`backoff_ratio`](Self::backoff_ratio()) (Netflix's):
    /// a cut deeper than half overreacts to one round of bad calls.
    pub const MIN_BACKOFF_RATIO: f64 = 0.5;
    /// The largest [`backoff_ratio`](Self::backoff_ratio()).
    pub const MAX_BACKOFF_RATIO: f64 = 0.99;

    /// A success slower than this counts as a failure (the dependency is
    /// queueing). Default 5 s; must be longer than zero.
    pub fn latency_threshold(mut self, threshold: Duration) -> Self {
        self.latency_threshold = threshold;
        self
    }

    /// What the limit is multiplied by on a failure or a slow success:
    /// 0.5 halves it. Default 0.9; between 0.5 and 0.99.
    pub fn backoff_ratio(mut self, ratio: f64) -> Self {
        self.backoff_ratio = ratio;
        self
    }

    fn check(&self, p: &mut Problems) {
        if self.latency_threshold.is_zero() {
            p.push(Problem::NotPositive {
                key: "latency_threshold",
            });
        }
        in_range(
            p,
            "backoff_ratio",
            self.backoff_ratio,
            Self::MIN_BACKOFF_RATIO,
            Self::MAX_BACKOFF_RATIO,
        );
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd {
            latency_threshold: Self::DEFAULT_LATENCY_THRESHOLD,
            backoff_ratio: Self::DEFAULT_BACKOFF_RATIO,
        }
    }
}

/// The latency-gradient algorithm of Netflix's `Gradient2Limit`
/// (<https://github.com/Netflix/concurrency-limits>, `concurrency-limits-core`,
/// `limit/Gradient2Limit.java`), step for step. Each recorded call is one
/// sample of its latency (its round-trip time, RTT):
///
/// ```text
/// short_rtt = this call's latency
/// long_rtt  = exponential average of the latencies over `long_window` calls
///             (the plain mean of the first 10)
/// if long_rtt / short_rtt > 2:  long_rtt = long_rtt * 0.95   // recovering from a long overload
/// if in_flight < limit / 2:     keep the limit               // too little use to learn from
/// gradient  = max(0.5, min(1.0, tolerance * long_rtt / short_rtt))
/// new_limit = limit * gradient + queue_size
/// limit     = limit * (1 - smoothing) + new_limit * smoothing
/// limit     = clamp(limit, min_limit, max_limit)
/// ```
///
/// While calls are as fast as usual the gradient is 1 and the limit grows
/// by `queue_size * smoothing` per call; once the latency rises above
/// `tolerance` times its long-term average, the gradient falls below 1 and
/// the limit shrinks, by at most half of `smoothing` per call. The long-term
/// average follows a lasting change of latency (the baseline of a
/// dependency that got slower for good) over about `long_window` calls.
/// As in Netflix's, the outcome does not matter (a failure's latency is a
/// sample like a success's; a timeout's is long) and
/// [`Outcome::Ignored`](crate::Outcome::Ignored) is no sample.
///
/// Each call is one sample by default, as in `Gradient2Limit` alone. With
/// a [`sample_window`](Self::sample_window()), the calls that end within
/// each window are one sample instead (their mean latency, the most calls
/// in flight among them; a window of fewer than
/// [`WINDOW_MIN_CALLS`](Self::WINDOW_MIN_CALLS) calls is dropped): Netflix's
/// `WindowedLimit`, which its README pairs with `Gradient2Limit`. Per call,
/// the limit moves within a round of calls, and a round of slow calls cuts
/// it many times over; per window it moves once a window, steadier and
/// slower.
///
/// ```
/// use resilience::Gradient2;
///
/// let g = Gradient2::default().tolerance(2.0).queue_size(2);
/// assert_eq!((g.tolerance, g.queue_size), (2.0, 2));
/// assert_eq!(Gradient2::default().smoothing, 0.2);
/// assert_eq!(Gradient2::default().long_window, 600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Gradient2 {
    /// See [`tolerance`](Self::tolerance()).
    pub tolerance: f64,
    /// See [`smoothing`](Self::smoothing()).
    pub smoothing: f64,
    /// See [`queue_size`](Self::queue_size()).
    pub queue_size: u32,
    /// See [`long_window`](Self::long_window()).
    pub long_window: u32,
    /// See [`sample_window`](Self::sample_window()).
    pub sample_window: Duration,
}

impl Gradient2 {
    /// Default [`tolerance`](Self::tolerance()): 1.5 (Netflix's `rttTolerance`).
    pub const DEFAULT_TOLERANCE: f64 = AdaptiveValues::DEFAULT_TOLERANCE;
    /// The largest [`tolerance`](Self::tolerance()).
    pub const MAX_TOLERANCE: f64 = AdaptiveValues::MAX_TOLERANCE;
    /// Default [`smoothing`](Self::smoothing()): 0.2 (Netflix's).
    pub const DEFAULT_SMOOTHING: f64 = 0.2;
    /// The smallest [`smoothing`](Self::smoothing()).
    pub const MIN_SMOOTHING: f64 = 0.01;
    /// Default [`queue_size`](Self::queue_size()): 4 (Netflix's).
    pub const DEFAULT_QUEUE_SIZE: u32 = 4;
    /// Default [`long_window`](Self::long_window()): 600 calls (Netflix's).
    pub const DEFAULT_LONG_WINDOW: u32 = 600;
    /// The calls averaged plainly before the long-term average starts
    /// (Netflix's warm-up).
    pub const WARMUP: u32 = 10;
    /// The shortest [`sample_window`](Self::sample_window()) but zero (Netflix's).
    pub const MIN_SAMPLE_WINDOW: Duration = AdaptiveValues::MIN_SAMPLE_WINDOW;
    /// The longest [`sample_window`](Self::sample_window()).
    pub const MAX_SAMPLE_WINDOW: Duration = AdaptiveValues::MAX_SAMPLE_WINDOW;
    /// The fewest calls a [`sample_window`](Self::sample_window()) needs to
    /// count (Netflix's `windowSize`).
    pub const WINDOW_MIN_CALLS: u32 = 10;

    /// How much slower than the long-term average a call may be before the
    /// limit shrinks: 1.5 lets latency rise by half. Default 1.5; between
    /// 1 and 10.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How much of each new estimate the limit takes: 1 jumps to it.
    /// Default 0.2; between 0.01 and 1.
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// The slots the estimate adds beyond what the gradient allows: how the
    /// limit grows while latency is normal. Default 4; at least 1.
    pub fn queue_size(mut self, queue_size: u32) -> Self {
        self.queue_size = queue_size;
        self
    }

    /// The calls the long-term average of latency spans. Default 600; at
    /// least 1.
    pub fn long_window(mut self, calls: u32) -> Self {
        self.long_window = calls;
        self
    }

    /// Takes the calls that end within each `window` as one sample, instead
    /// of each call. Default zero (each call); else between 100 ms and 60 s.
    pub fn sample_window(mut self, window: Duration) -> Self {
        self.sample_window = window;
        self
    }

    fn check(&self, p: &mut Problems) {
        // The attribute's rules for the keys it has.
        resilience_spec::check_gradient2(
            p,
            Value::Given(self.tolerance),
            Value::Given(self.sample_window),
        );
        in_range(p, "smoothing", self.smoothing, Self::MIN_SMOOTHING, 1.0);
        if self.queue_size == 0 {
            p.push(Problem::Zero { key: "queue_size" });
        }
        if self.long_window == 0 {
            p.push(Problem::Zero { key: "long_window" });
        }
    }
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2 {
            tolerance: Self::DEFAULT_TOLERANCE,
            smoothing: Self::DEFAULT_SMOOTHING,
            queue_size: Self::DEFAULT_QUEUE_SIZE,
            long_window: Self::DEFAULT_LONG_WINDOW,
            sample_window: Duration::ZERO,
        }
    }
}

/// How an adaptive limit moves: [`Aimd`] or [`Gradient2`].
///
/// ```
/// use resilience::{Aimd, Algorithm};
///
/// let algorithm = Algorithm::from(Aimd::default());
/// assert_eq!(algorithm.name(), "aimd");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Algorithm {
    /// Additive increase, multiplicative decrease.
    Aimd(Aimd),
    /// Netflix's latency gradient.
    Gradient2(Gradient2),
}

impl Algorithm {
    /// `"aimd"` or `"gradient2"`.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Aimd(_) => "aimd",
            Algorithm::Gradient2(_) => "gradient2",
        }
    }
}

impl From<Aimd> for Algorithm {
    fn from(aimd: Aimd) -> Self {
        Algorithm::Aimd(aimd)
    }
}

impl From<Gradient2> for Algorithm {
    fn from(gradient2: Gradient2) -> Self {
        Algorithm::Gradient2(gradient2)
    }
}

/// A checked configuration of an adaptive limit: the algorithm, the bounds
/// the limit stays within, where it starts, and how long a call waits for
/// a slot. Built with [`AdaptiveConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use resilience::{AdaptiveConfig, Aimd};
///
/// let config = AdaptiveConfig::builder(Aimd::default().latency_threshold(Duration::from_millis(50)))
///     .min_limit(2)
///     .max_limit(64)
///     .initial_limit(8)
///     .max_wait(Duration::from_millis(100))
///     .build()?;
/// assert_eq!((config.min_limit(), config.initial_limit(), config.max_limit()), (2, 8, 64));
/// assert_eq!(config.algorithm().name(), "aimd");
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    algorithm: Algorithm,
    min_limit: u32,
    max_limit: u32,
    initial_limit: u32,
    max_wait: Duration,
}

impl AdaptiveConfig {
    /// Default [`min_limit`](AdaptiveConfigBuilder::min_limit): 1.
    pub const DEFAULT_MIN_LIMIT: u32 = 1;
    /// Default [`max_limit`](AdaptiveConfigBuilder::max_limit): 200 (Netflix's).
    pub const DEFAULT_MAX_LIMIT: u32 = 200;
    /// Default [`initial_limit`](AdaptiveConfigBuilder::initial_limit): 20
    /// (Netflix's), or the nearest bound when the bounds exclude 20.
    pub const DEFAULT_INITIAL_LIMIT: u32 = 20;

    /// A builder of a configuration of `algorithm` with every default.
    pub fn builder(algorithm: impl Into<Algorithm>) -> AdaptiveConfigBuilder {
        AdaptiveConfigBuilder {
            algorithm: algorithm.into(),
            min_limit: Self::DEFAULT_MIN_LIMIT,
            max_limit: Self::DEFAULT_MAX_LIMIT,
            initial_limit: None,
            max_wait: Duration::ZERO,
        }
    }

    /// The algorithm and its parameters.
    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The limit never goes below this.
    pub fn min_limit(&self) -> u32 {
        self.min_limit
    }

    /// The limit never goes above this.
    pub fn max_limit(&self) -> u32 {
        self.max_limit
    }

    /// The limit before any call was recorded.
    pub fn initial_limit(&self) -> u32 {
        self.initial_limit
    }

    /// How long a call waits for a slot before it is rejected.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// Builds an [`AdaptiveConfig`]; see [`AdaptiveConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfigBuilder {
    algorithm: Algorithm,
    min_limit: u32,
    max_limit: u32,
    initial_limit: Option<u32>,
    max_wait: Duration,
}

impl AdaptiveConfigBuilder {
    /// The smallest limit. Default 1; at least 1, at most `max_limit`.
    pub fn min_limit(mut self, min_limit: u32) -> Self {
        self.min_limit = min_limit;
        self
    }

    /// The largest limit. Default 200; at least 1.
    pub fn max_limit(mut self, max_limit: u32) -> Self {
        self.max_limit = max_limit;
        self
    }

    /// Where the limit starts. Default 20, or the nearest bound when
    /// `min_limit` and `max_limit` exclude 20; between them.
    pub fn initial_limit(mut self, initial_limit: u32) -> Self {
        self.initial_limit = Some(initial_limit);
        self
    }

    /// How long a call waits for a slot before it is rejected (kept to the
    /// nanosecond, up to 584 years). Default zero: a full bulkhead rejects
    /// at once.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The configuration, if it holds to every rule.
    ///
    /// ```
    /// use resilience::{AdaptiveConfig, Gradient2};
    ///
    /// let error = AdaptiveConfig::builder(Gradient2::default().smoothing(0.0))
    ///     .min_limit(50)
    ///     .max_limit(10)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "invalid resilience configuration: `min_limit` is too large: at most 10, found 50; \
    ///      `smoothing` must be between 0.01 and 1, found 0"
    /// );
    /// assert_eq!(error.problems()[0].key(), "min_limit");
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every problem, each naming its key:
    /// - `min_limit`, `max_limit` or `initial_limit` of 0;
    /// - `min_limit` above `max_limit`;
    /// - `initial_limit` outside `min_limit..=max_limit`;
    /// - [`Aimd`]: a zero `latency_threshold`, a `backoff_ratio` outside
    ///   0.5..=0.99;
    /// - [`Gradient2`]: a `sample_window` neither zero nor within
    ///   100 ms..=60 s, a `tolerance` outside 1..=10, a `smoothing` outside
    ///   0.01..=1, a `queue_size` or `long_window` of 0.
    pub fn build(self) -> Result<AdaptiveConfig, ConfigError> {
        let mut p = Problems::new();
        let (min, max) = (self.min_limit, self.max_limit);
        if min == 0 {
            p.push(Problem::Zero { key: "min_limit" });
        }
        if max == 0 {
            p.push(Problem::Zero { key: "max_limit" });
        }
        let bounded = min != 0 && max != 0;
        if bounded && min > max {
            p.push(Problem::TooLarge {
                key: "min_limit",
                found: u64::from(min),
                max: u64::from(max),
            });
        }
        let initial = match self.initial_limit {
            Some(0) => {
                p.push(Problem::Zero {
                    key: "initial_limit",
                });
                0
            }
            Some(n) => {
                if bounded && min <= max && !(min..=max).contains(&n) {
                    p.push(Problem::NumberOutOfRange {
                        key: "initial_limit",
                        found: f64::from(n),
                        min: f64::from(min),
                        max: f64::from(max),
                    });
                }
                n
            }
            None => AdaptiveConfig::DEFAULT_INITIAL_LIMIT.clamp(min.min(max), max.max(min)),
        };
        match &self.algorithm {
            Algorithm::Aimd(aimd) => aimd.check(&mut p),
            Algorithm::Gradient2(g) => g.check(&mut p),
        }
        crate::spec::checked(p)?;
        Ok(AdaptiveConfig {
            algorithm: self.algorithm,
            min_limit: min,
            max_limit: max,
            initial_limit: initial,
            max_wait: self.max_wait,
        })
    }
}

/// `key`'s `value` within `min..=max` (NaN is not).
fn in_range(p: &mut Problems, key: &'static str, value: f64, min: f64, max: f64) {
    if !(value >= min && value <= max) {
        p.push(Problem::NumberOutOfRange {
            key,
            found: value,
            min,
            max,
        });
    }
}
