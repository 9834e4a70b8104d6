//! What a hedge is configured with: its delay, how many extra attempts,
//! and how the percentile delay learns (`min_samples`, `period`).

use std::fmt;
use std::time::Duration;

use resilience_spec::{HedgeDelayValue, HedgeValues, Problem, Problems, Value};

use crate::ConfigError;

/// How long an attempt may run before the next one starts.
///
/// ```
/// use std::time::Duration;
/// use resilience::HedgeDelay;
///
/// let fixed = HedgeDelay::Fixed(Duration::from_millis(50));
/// assert_eq!(fixed.to_string(), "50ms");
/// // The 95th percentile of the recent successful calls; 200 ms until
/// // enough of them were seen.
/// let p95 = HedgeDelay::Percentile { p: 0.95, fallback: Duration::from_millis(200) };
/// assert_eq!(p95.to_string(), "p95 (fallback 200ms)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// Always this long. Zero starts every attempt at once (Polly's
    /// "parallel" mode).
    Fixed(Duration),
    /// The `p` quantile of the latency of the hedge's recent successful
    /// calls, or `fallback` while fewer than `min_samples` were seen.
    Percentile {
        /// The quantile, in (0, 1]: `0.95` is the 95th percentile.
        p: f64,
        /// The delay while the histogram has too few samples.
        fallback: Duration,
    },
}

impl fmt::Display for HedgeDelay {
    /// `50ms`, or `p95 (fallback 200ms)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HedgeDelay::Fixed(d) => write!(f, "{d:?}"),
            HedgeDelay::Percentile { p, fallback } => {
                // 0.999 reads `p99.9`, not `p99.89999999999999`.
                let percent = (p * 1e8).round() / 1e6;
                write!(f, "p{percent} (fallback {fallback:?})")
            }
        }
    }
}

/// The settings of a [`Hedge`](crate::Hedge): the delay before each extra
/// attempt, how many extra attempts at most, and how the percentile delay
/// learns.
///
/// ```
/// use std::time::Duration;
/// use resilience::{HedgeConfig, HedgeDelay};
///
/// let config = HedgeConfig::builder()
///     .percentile(0.99, Duration::from_millis(250))
///     .max_hedges(2)
///     .min_samples(50)
///     .build()?;
/// assert_eq!(config.max_hedges(), 2);
/// assert_eq!(
///     config.to_string(),
///     "delay = p99 (fallback 250ms), max_hedges = 2, min_samples = 50, period = 10s"
/// );
///
/// // Checked in a `const` (a bad constant fails the build with the same words):
/// const FAST: HedgeConfig = match HedgeConfig::builder()
///     .delay(Duration::from_millis(20))
///     .try_build()
/// {
///     Ok(config) => config,
///     Err(problem) => problem.panic(),
/// };
/// assert_eq!(FAST.delay(), HedgeDelay::Fixed(Duration::from_millis(20)));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeConfig {
    delay: HedgeDelay,
    max_hedges: u8,
    min_samples: u32,
    period: Duration,
}

impl HedgeConfig {
    /// The most extra attempts a call may start: every attempt lives inline
    /// in the call's future (no allocation), so the future has room for
    /// `1 + MAX_HEDGES` of them.
    pub const MAX_HEDGES: u32 = HedgeValues::MAX_HEDGES as u32;

    /// The default delay: the 95th percentile of recent successful calls
    /// ("The Tail at Scale"'s deferred hedge), 2 s until enough were seen
    /// (Polly's default delay).
    pub const DEFAULT_DELAY: HedgeDelay = HedgeDelay::Percentile {
        p: 0.95,
        fallback: HedgeValues::DEFAULT_WARMUP_DELAY,
    };

    /// The defaults: [`DEFAULT_DELAY`](Self::DEFAULT_DELAY), one hedge
    /// (Polly's default), 20 samples before the percentile is trusted, a
    /// histogram rotated every 10 s.
    pub const DEFAULT: HedgeConfig = HedgeConfig {
        delay: Self::DEFAULT_DELAY,
        max_hedges: 1,
        min_samples: 20,
        period: Duration::from_secs(10),
    };

    /// A builder starting from the [defaults](Self::DEFAULT).
    pub const fn builder() -> HedgeConfigBuilder {
        HedgeConfigBuilder {
            values: HedgeValues::NONE,
        }
    }

    /// The configuration of values that passed [`HedgeValues::check`] (the
    /// attribute's, checked in its `static`).
    pub(crate) const fn from_checked(v: &HedgeValues) -> HedgeConfig {
        let warmup = match v.warmup_delay.given() {
            Some(d) => d,
            None => HedgeValues::DEFAULT_WARMUP_DELAY,
        };
        let delay = match v.delay.given() {
            Some(HedgeDelayValue::Fixed(d)) => HedgeDelay::Fixed(d),
            Some(HedgeDelayValue::Percentile(p)) => HedgeDelay::Percentile {
                p,
                fallback: warmup,
            },
            None => Self::DEFAULT_DELAY,
        };
        let max_hedges = match v.max_hedges.given() {
            // At most `MAX_HEDGES` (checked): fits a `u8`.
            Some(n) => n as u8,
            None => HedgeValues::DEFAULT_MAX_HEDGES as u8,
        };
        HedgeConfig {
            delay,
            max_hedges,
            min_samples: match v.min_samples.given() {
                Some(n) => n as u32,
                None => HedgeValues::DEFAULT_MIN_SAMPLES as u32,
            },
            period: match v.period.given() {
                Some(d) => d,
                None => HedgeValues::DEFAULT_PERIOD,
            },
        }
    }

    /// What this configuration says, key by key (every key written).
    pub(crate) const fn values(&self) -> HedgeValues {
        let (delay, warmup) = match self.delay {
            HedgeDelay::Fixed(d) => (HedgeDelayValue::Fixed(d), Value::Absent),
            HedgeDelay::Percentile { p, fallback } => {
                (HedgeDelayValue::Percentile(p), Value::Given(fallback))
            }
        };
        let percentile = matches!(self.delay, HedgeDelay::Percentile { .. });
        HedgeValues {
            delay: Value::Given(delay),
            warmup_delay: warmup,
            max_hedges: Value::Given(self.max_hedges as u64),
            min_samples: if percentile {
                Value::Given(self.min_samples as u64)
            } else {
                Value::Absent
            },
            period: if percentile {
                Value::Given(self.period)
            } else {
                Value::Absent
            },
        }
    }

    /// The delay before each extra attempt.
    pub const fn delay(&self) -> HedgeDelay {
        self.delay
    }

    /// Extra attempts at most (the first attempt not counted).
    pub const fn max_hedges(&self) -> u32 {
        self.max_hedges as u32
    }

    /// Successful calls the histogram must hold before a percentile delay
    /// replaces its fallback.
    pub const fn min_samples(&self) -> u32 {
        self.min_samples
    }

    /// How often the latency histogram rotates: a percentile reads the
    /// successful calls of the current and the previous period.
    pub const fn period(&self) -> Duration {
        self.period
    }
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Every key: `delay = p95 (fallback 2s), max_hedges = 1, min_samples = 20,
/// period = 10s`.
impl fmt::Display for HedgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delay = {}, max_hedges = {}, min_samples = {}, period = {:?}",
            self.delay, self.max_hedges, self.min_samples, self.period
        )
    }
}

/// Builds a [`HedgeConfig`] key by key; every key not set keeps its
/// default. Each setter is a `const fn`, so a configuration can be built
/// and checked in a `const` ([`try_build`](Self::try_build)). The rules are
/// those of `#[hedge]`, in the same words.
///
/// ```
/// use std::time::Duration;
/// use resilience::HedgeConfig;
///
/// let err = HedgeConfig::builder().max_hedges(0).percentile(1.5, Duration::ZERO).build().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid resilience configuration: `delay` must be a share of the calls in (0, 1] \
///      (0.5 = half of them), found 1.5; `max_hedges` must be at least 1, found 0"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use = "call `.build()` to get the configuration"]
pub struct HedgeConfigBuilder {
    values: HedgeValues,
}

impl HedgeConfigBuilder {
    /// A fixed delay before each extra attempt (zero: all at once).
    pub const fn delay(mut self, delay: Duration) -> Self {
        self.values.delay = Value::Given(HedgeDelayValue::Fixed(delay));
        self
    }

    /// The `p` quantile of recent successful calls (in (0, 1]: `0.95` for
    /// the 95th percentile), `warmup` until `min_samples` were seen.
    pub const fn percentile(mut self, p: f64, warmup: Duration) -> Self {
        self.values.delay = Value::Given(HedgeDelayValue::Percentile(p));
        self.values.warmup_delay = Value::Given(warmup);
        self
    }

    /// The delay, fixed or a percentile (default
    /// [`HedgeConfig::DEFAULT_DELAY`]).
    pub const fn hedge_delay(self, delay: HedgeDelay) -> Self {
        match delay {
            HedgeDelay::Fixed(d) => self.delay(d),
            HedgeDelay::Percentile { p, fallback } => self.percentile(p, fallback),
        }
    }

    /// Extra attempts at most (default 1; from 1 to
    /// [`HedgeConfig::MAX_HEDGES`]).
    pub const fn max_hedges(mut self, n: u32) -> Self {
        self.values.max_hedges = Value::Given(n as u64);
        self
    }

    /// Successful calls seen before a percentile delay is used (default 20;
    /// at least 1; only with a percentile delay).
    pub const fn min_samples(mut self, n: u32) -> Self {
        self.values.min_samples = Value::Given(n as u64);
        self
    }

    /// How often the latency histogram rotates (default 10 s; longer than
    /// zero; only with a percentile delay).
    pub const fn period(mut self, period: Duration) -> Self {
        self.values.period = Value::Given(period);
        self
    }

    /// Every rule the configuration breaks, in the order of the keys.
    pub(crate) const fn check(&self) -> Problems {
        self.values.check()
    }

    /// The configuration, or the first problem found, in a `const fn` (see
    /// the example of [`HedgeConfig`]: `Err(problem) => problem.panic()`
    /// fails the build with the problem's words).
    ///
    /// # Errors
    ///
    /// The first [`Problem`] of those [`build`](Self::build) lists.
    pub const fn try_build(self) -> Result<HedgeConfig, Problem> {
        if let Some(problem) = self.check().first() {
            return Err(problem);
        }
        Ok(HedgeConfig::from_checked(&self.values))
    }

    /// The configuration, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule broken: a percentile `delay`
    /// outside (0, 1] (or NaN), `max_hedges` of zero or above
    /// [`HedgeConfig::MAX_HEDGES`], `min_samples` of zero, a zero `period`,
    /// `min_samples` or `period` with a fixed delay.
    pub fn build(self) -> Result<HedgeConfig, ConfigError> {
        crate::spec::checked(self.check())?;
        Ok(HedgeConfig::from_checked(&self.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported() {
        let problems = HedgeConfig::builder()
            .percentile(f64::NAN, Duration::ZERO)
            .max_hedges(HedgeConfig::MAX_HEDGES + 1)
            .min_samples(0)
            .period(Duration::ZERO)
            .check();
        let keys: Vec<_> = problems.iter().map(|p| p.key()).collect();
        assert_eq!(keys, ["delay", "max_hedges", "min_samples", "period"]);
        let fixed = HedgeConfig::builder()
            .delay(Duration::from_millis(5))
            .min_samples(3)
            .build()
            .unwrap_err();
        assert!(
            fixed
                .to_string()
                .contains("`min_samples` only applies to a percentile `delay`"),
            "{fixed}"
        );
    }

    #[test]
    fn bounds_are_inclusive_where_they_should_be() {
        let ok = |b: HedgeConfigBuilder| b.build().is_ok();
        assert!(ok(HedgeConfig::builder().percentile(1.0, Duration::ZERO)));
        assert!(!ok(HedgeConfig::builder().percentile(0.0, Duration::ZERO)));
        assert!(ok(
            HedgeConfig::builder().max_hedges(HedgeConfig::MAX_HEDGES)
        ));
        assert!(ok(HedgeConfig::builder().delay(Duration::ZERO)));
        assert_eq!(HedgeConfig::builder().build(), Ok(HedgeConfig::DEFAULT));
        for config in [
            HedgeConfig::DEFAULT,
            HedgeConfig::builder()
                .delay(Duration::from_millis(7))
                .max_hedges(3)
                .build()
                .unwrap(),
        ] {
            assert!(config.values().check().is_empty());
            assert_eq!(HedgeConfig::from_checked(&config.values()), config);
        }
    }

    #[test]
    fn display_reads_like_the_keys() {
        assert_eq!(
            HedgeConfig::DEFAULT.to_string(),
            "delay = p95 (fallback 2s), max_hedges = 1, min_samples = 20, period = 10s"
        );
        let p = HedgeDelay::Percentile {
            p: 0.999,
            fallback: Duration::from_millis(5),
        };
        assert_eq!(p.to_string(), "p99.9 (fallback 5ms)");
    }
}
