//! Circuit breaker configuration: validated once, immutable afterwards.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// The window over which failures (and calls) are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last `n` calls (`window = 100`).
    Calls(NonZeroU32),
    /// The calls of the last `d` (`window = "60s"`), kept in 20 time buckets
    /// of `d / 20` each, so the window slides in steps of 5 %.
    Time(Duration),
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Calls(n) => write!(f, "last {n} calls"),
            Window::Time(d) => write!(f, "last {d:?}"),
        }
    }
}

/// How a [`CircuitBreaker`](super::CircuitBreaker) trips and recovers.
///
/// Which rule opens the circuit:
///
/// | configured | opens when |
/// |---|---|
/// | `failure_threshold` only (default 5) | that many consecutive failures |
/// | `failure_threshold` + `window` | that many failures within the window |
/// | `failure_rate` + `window` (+ `min_calls`, default 10) | at least `min_calls` calls in the window and failures / calls ≥ the rate |
/// | `slow_call_rate` + `slow_call` + `window` | at least `min_calls` calls and slow calls / calls ≥ the rate |
///
/// A call slower than `slow_call` counts as a failure, unless
/// `slow_call_rate` is set: then slow calls are counted on their own.
///
/// Zero counts are unrepresentable (every count is a [`NonZeroU32`]); the
/// builder rejects every other inconsistent combination.
///
/// ```
/// use std::time::Duration;
/// use resilience::{BreakerConfig, Window};
///
/// let config = BreakerConfig::builder()
///     .failure_rate(0.5)
///     .window(Window::Time(Duration::from_secs(60)))
///     .min_calls(20)
///     .recovery_timeout(Duration::from_secs(30))
///     .recovery_timeout_max(Duration::from_secs(600))
///     .build()?;
/// assert_eq!(config.failure_rate(), Some(0.5));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    failure_threshold: NonZeroU32,
    window: Option<Window>,
    failure_rate: Option<f64>,
    min_calls: NonZeroU32,
    slow_call: Option<Duration>,
    slow_call_rate: Option<f64>,
    recovery_timeout: Duration,
    recovery_timeout_max: Option<Duration>,
    fleet_threshold: Option<NonZeroU32>,
    success_threshold: NonZeroU32,
    half_open_max_calls: NonZeroU32,
}

/// The largest count window (one byte per call, allocated once per breaker);
/// the attribute enforces the same limit.
pub(crate) const MAX_COUNT_WINDOW: u32 = 1_000_000;

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("resilience: a count must be at least 1"),
    }
}

impl BreakerConfig {
    /// The defaults: 5 consecutive failures open the circuit, it stays open for
    /// 60 s, then 1 probe at a time is let through and 1 success closes it.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: nz(5),
        window: None,
        failure_rate: None,
        min_calls: nz(10),
        slow_call: None,
        slow_call_rate: None,
        recovery_timeout: Duration::from_secs(60),
        recovery_timeout_max: None,
        fleet_threshold: None,
        success_threshold: nz(1),
        half_open_max_calls: nz(1),
    };

    /// A builder starting from [`BreakerConfig::DEFAULT`].
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: Self::DEFAULT,
            errors: Vec::new(),
            threshold_set: false,
        }
    }

    /// Builds the basic configuration in a `const` context; the attribute
    /// macros call this (and the `__with_*` setters) with values they already
    /// validated at compile time.
    ///
    /// # Panics
    ///
    /// At compile time (in a `const`), if a count or the recovery timeout is
    /// zero. Use [`BreakerConfig::builder`] at run time.
    #[doc(hidden)]
    pub const fn __from_macro(
        failure_threshold: u32,
        recovery_timeout: Duration,
        success_threshold: u32,
        half_open_max_calls: u32,
    ) -> Self {
        assert!(
            !recovery_timeout.is_zero(),
            "resilience: recovery_timeout must be positive"
        );
        let mut c = Self::DEFAULT;
        c.failure_threshold = nz(failure_threshold);
        c.recovery_timeout = recovery_timeout;
        c.success_threshold = nz(success_threshold);
        c.half_open_max_calls = nz(half_open_max_calls);
        c
    }

    #[doc(hidden)]
    pub const fn __with_count_window(mut self, calls: u32) -> Self {
        self.window = Some(Window::Calls(nz(calls)));
        self
    }

    #[doc(hidden)]
    pub const fn __with_time_window(mut self, window: Duration) -> Self {
        self.window = Some(Window::Time(window));
        self
    }

    #[doc(hidden)]
    pub const fn __with_failure_rate(mut self, rate: f64, min_calls: u32) -> Self {
        self.failure_rate = Some(rate);
        self.min_calls = nz(min_calls);
        self
    }

    #[doc(hidden)]
    pub const fn __with_slow_call(
        mut self,
        slow: Duration,
        rate: Option<f64>,
        min_calls: u32,
    ) -> Self {
        self.slow_call = Some(slow);
        self.slow_call_rate = rate;
        self.min_calls = nz(min_calls);
        self
    }

    #[doc(hidden)]
    pub const fn __with_fleet_threshold(mut self, failures: u32) -> Self {
        self.fleet_threshold = Some(nz(failures));
        self
    }

    #[doc(hidden)]
    pub const fn __with_recovery_timeout_max(mut self, max: Duration) -> Self {
        self.recovery_timeout_max = Some(max);
        self
    }

    /// Failures that open the circuit: consecutive ones, or within the
    /// [`window`](Self::window) when one is set (default 5).
    pub const fn failure_threshold(&self) -> NonZeroU32 {
        self.failure_threshold
    }

    /// The window failures and calls are counted in, if any.
    pub const fn window(&self) -> Option<Window> {
        self.window
    }

    /// The share of failed calls in the window that opens the circuit.
    pub const fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }

    /// Calls the window must hold before a rate can open the circuit (default 10).
    pub const fn min_calls(&self) -> NonZeroU32 {
        self.min_calls
    }

    /// A call slower than this counts as slow.
    pub const fn slow_call(&self) -> Option<Duration> {
        self.slow_call
    }

    /// The share of slow calls in the window that opens the circuit.
    pub const fn slow_call_rate(&self) -> Option<f64> {
        self.slow_call_rate
    }

    /// How long the circuit stays open before a probe is let through.
    pub const fn recovery_timeout(&self) -> Duration {
        self.recovery_timeout
    }

    /// When set, every breaker of this name across the fleet (feature
    /// `redis`) opens once the fleet as a whole counted this many failures
    /// within the fleet's failure window (10 s by default), however few each
    /// instance saw.
    pub const fn fleet_threshold(&self) -> Option<NonZeroU32> {
        self.fleet_threshold
    }

    /// When set, each re-open after a failed probe doubles the open time, up
    /// to this; closing resets it.
    pub const fn recovery_timeout_max(&self) -> Option<Duration> {
        self.recovery_timeout_max
    }

    /// Successful probes (in the half-open state) that close the circuit.
    pub const fn success_threshold(&self) -> NonZeroU32 {
        self.success_threshold
    }

    /// Probes allowed in flight at once in the half-open state.
    pub const fn half_open_max_calls(&self) -> NonZeroU32 {
        self.half_open_max_calls
    }

    /// The open time after `reopens` consecutive failed probes.
    pub(crate) fn open_time(&self, reopens: u32) -> Duration {
        match self.recovery_timeout_max {
            None => self.recovery_timeout,
            Some(max) => {
                let factor = 2u32.checked_pow(reopens.min(31)).unwrap_or(u32::MAX);
                self.recovery_timeout.saturating_mul(factor).min(max)
            }
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.failure_rate, self.window) {
            (Some(rate), Some(w)) => write!(
                f,
                "failure_rate = {rate}, window = {w}, min_calls = {}",
                self.min_calls
            )?,
            (_, Some(w)) => write!(
                f,
                "failure_threshold = {}, window = {w}",
                self.failure_threshold
            )?,
            _ => write!(f, "failure_threshold = {}", self.failure_threshold)?,
        }
        if let Some(slow) = self.slow_call {
            write!(f, ", slow_call = {slow:?}")?;
        }
        if let Some(rate) = self.slow_call_rate {
            write!(f, ", slow_call_rate = {rate}")?;
        }
        write!(f, ", recovery_timeout = {:?}", self.recovery_timeout)?;
        if let Some(max) = self.recovery_timeout_max {
            write!(f, ", recovery_timeout_max = {max:?}")?;
        }
        if let Some(n) = self.fleet_threshold {
            write!(f, ", fleet_threshold = {n}")?;
        }
        write!(
            f,
            ", success_threshold = {}, half_open_max_calls = {}",
            self.success_threshold, self.half_open_max_calls
        )
    }
}

/// Builds a [`BreakerConfig`] from plain numbers, collecting every problem.
#[derive(Debug, Clone)]
#[must_use = "call `.build()` to get the configuration"]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
    errors: Vec<String>,
    /// Whether `failure_threshold` was given (not the default).
    threshold_set: bool,
}

impl BreakerConfigBuilder {
    fn count(&mut self, key: &str, n: u32) -> Option<NonZeroU32> {
        let nz = NonZeroU32::new(n);
        if nz.is_none() {
            self.errors
                .push(format!("`{key}` must be at least 1, got 0"));
        }
        nz
    }

    fn rate(&mut self, key: &str, rate: f64) -> Option<f64> {
        if rate > 0.0 && rate <= 1.0 {
            Some(rate)
        } else {
            self.errors
                .push(format!("`{key}` must be in (0, 1], got {rate}"));
            None
        }
    }

    fn positive(&mut self, key: &str, d: Duration) -> Option<Duration> {
        if d.is_zero() {
            self.errors
                .push(format!("`{key}` must be positive, got 0s"));
            None
        } else {
            Some(d)
        }
    }

    /// Failures that open the circuit (default 5; at least 1): consecutive,
    /// or within the window when one is set.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.threshold_set = true;
        if let Some(n) = self.count("failure_threshold", n) {
            self.config.failure_threshold = n;
        }
        self
    }

    /// Counts failures (and calls) in a window instead of consecutively.
    pub fn window(mut self, window: Window) -> Self {
        match window {
            Window::Time(d) => {
                if self.positive("window", d).is_none() {
                    return self;
                }
            }
            Window::Calls(n) if n.get() > MAX_COUNT_WINDOW => {
                self.errors.push(format!(
                    "a `window` of {n} calls is too large (one byte per call): at most {MAX_COUNT_WINDOW}, or use a time window"
                ));
                return self;
            }
            Window::Calls(_) => {}
        }
        self.config.window = Some(window);
        self
    }

    /// Opens the circuit when this share of the window's calls failed
    /// (in (0, 1]; needs a window).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = self.rate("failure_rate", rate);
        self
    }

    /// Calls the window must hold before a rate opens the circuit (default 10).
    pub fn min_calls(mut self, n: u32) -> Self {
        if let Some(n) = self.count("min_calls", n) {
            self.config.min_calls = n;
        }
        self
    }

    /// Calls slower than this are slow: failures, unless
    /// [`slow_call_rate`](Self::slow_call_rate) is set.
    pub fn slow_call(mut self, d: Duration) -> Self {
        self.config.slow_call = self.positive("slow_call", d);
        self
    }

    /// Opens the circuit when this share of the window's calls were slow
    /// (in (0, 1]; needs `slow_call` and a window).
    pub fn slow_call_rate(mut self, rate: f64) -> Self {
        self.config.slow_call_rate = self.rate("slow_call_rate", rate);
        self
    }

    /// Time spent open before a probe (default 60 s; must be positive).
    pub fn recovery_timeout(mut self, d: Duration) -> Self {
        if let Some(d) = self.positive("recovery_timeout", d) {
            self.config.recovery_timeout = d;
        }
        self
    }

    /// Opens the breaker on every instance once the fleet counted this many
    /// failures in its failure window (feature `redis`; at least 1).
    pub fn fleet_threshold(mut self, n: u32) -> Self {
        if let Some(n) = self.count("fleet_threshold", n) {
            self.config.fleet_threshold = Some(n);
        }
        self
    }

    /// Doubles the open time after each failed probe, up to `max`.
    pub fn recovery_timeout_max(mut self, max: Duration) -> Self {
        self.config.recovery_timeout_max = Some(max);
        self
    }

    /// Successful probes that close the circuit (default 1; at least 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        if let Some(n) = self.count("success_threshold", n) {
            self.config.success_threshold = n;
        }
        self
    }

    /// Probes in flight at once while half-open (default 1; at least 1).
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        if let Some(n) = self.count("half_open_max_calls", n) {
            self.config.half_open_max_calls = n;
        }
        self
    }

    /// The configuration, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing each zero count or duration, each rate outside
    /// (0, 1], a rate without a window, `slow_call_rate` without `slow_call`,
    /// `min_calls` larger than a count window (with a rate),
    /// `failure_threshold` larger than a count window (without a
    /// `failure_rate`; the default threshold only when no `slow_call_rate`
    /// could open the circuit either), and `recovery_timeout_max` below
    /// `recovery_timeout`.
    pub fn build(mut self) -> Result<BreakerConfig, ConfigError> {
        let c = self.config;
        if c.window.is_none() {
            if c.failure_rate.is_some() {
                self.errors.push(
                    "`failure_rate` needs a `window` (a number of calls or a duration)".into(),
                );
            }
            if c.slow_call_rate.is_some() {
                self.errors.push(
                    "`slow_call_rate` needs a `window` (a number of calls or a duration)".into(),
                );
            }
        }
        if c.slow_call_rate.is_some() && c.slow_call.is_none() {
            self.errors.push(
                "`slow_call_rate` needs `slow_call`, the duration that makes a call slow".into(),
            );
        }
        if let Some(Window::Calls(n)) = c.window {
            if c.min_calls > n && (c.failure_rate.is_some() || c.slow_call_rate.is_some()) {
                self.errors.push(format!(
                    "`min_calls` ({}) cannot exceed the window of {n} calls",
                    c.min_calls
                ));
            }
            // The default threshold over a small window is no mistake when
            // slow calls have a rate of their own.
            if c.failure_rate.is_none()
                && c.failure_threshold > n
                && (self.threshold_set || c.slow_call_rate.is_none())
            {
                self.errors.push(format!(
                    "`failure_threshold` ({}) cannot exceed the window of {n} calls: that many failures never fit in it",
                    c.failure_threshold
                ));
            }
        }
        if let Some(max) = c.recovery_timeout_max {
            if max < c.recovery_timeout {
                self.errors.push(format!(
                    "`recovery_timeout_max` ({max:?}) must not be below `recovery_timeout` ({:?})",
                    c.recovery_timeout
                ));
            }
        }
        if self.errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError {
                problems: self.errors,
            })
        }
    }
}

/// A configuration that could not be built, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resilience configuration: {}", problems.join("; "))]
pub struct ConfigError {
    problems: Vec<String>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<String>) -> Self {
        ConfigError { problems }
    }

    /// Each problem, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let c = BreakerConfig::default();
        assert_eq!(c.failure_threshold().get(), 5);
        assert_eq!(c.recovery_timeout(), Duration::from_secs(60));
        assert_eq!(c.success_threshold().get(), 1);
        assert_eq!(c.half_open_max_calls().get(), 1);
        assert_eq!(c.min_calls().get(), 10);
        assert_eq!(c.window(), None);
    }

    #[test]
    fn builder_reports_every_problem() {
        let err = BreakerConfig::builder()
            .failure_threshold(0)
            .recovery_timeout(Duration::ZERO)
            .success_threshold(0)
            .half_open_max_calls(0)
            .build()
            .unwrap_err();
        assert_eq!(err.problems().len(), 4, "{err}");
        assert!(err
            .to_string()
            .contains("`failure_threshold` must be at least 1"));
        assert!(err
            .to_string()
            .contains("`recovery_timeout` must be positive"));
    }

    #[test]
    fn cross_key_combinations_are_checked() {
        let err = BreakerConfig::builder()
            .failure_rate(1.5)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("`failure_rate` must be in (0, 1]"),
            "{err}"
        );
        let err = BreakerConfig::builder()
            .failure_rate(0.5)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("`failure_rate` needs a `window`"),
            "{err}"
        );
        let err = BreakerConfig::builder()
            .slow_call_rate(0.5)
            .window(Window::Calls(nz(10)))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("needs `slow_call`"), "{err}");
        let err = BreakerConfig::builder()
            .failure_rate(0.5)
            .window(Window::Calls(nz(5)))
            .min_calls(6)
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot exceed the window of 5 calls"),
            "{err}"
        );
        // The default threshold of 5 failures never fits in 3 calls.
        let err = BreakerConfig::builder()
            .window(Window::Calls(nz(3)))
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`failure_threshold` (5) cannot exceed the window of 3 calls"),
            "{err}"
        );
        assert!(BreakerConfig::builder()
            .failure_threshold(3)
            .window(Window::Calls(nz(3)))
            .build()
            .is_ok());
        assert!(
            BreakerConfig::builder()
                .failure_rate(0.5)
                .window(Window::Calls(nz(3)))
                .min_calls(3)
                .build()
                .is_ok(),
            "a rate does not use the threshold"
        );
        let slow_only = BreakerConfig::builder()
            .slow_call(Duration::from_secs(1))
            .slow_call_rate(0.5)
            .window(Window::Calls(nz(3)))
            .min_calls(3);
        assert!(
            slow_only.clone().build().is_ok(),
            "slow calls have a rule of their own"
        );
        assert!(slow_only.failure_threshold(4).build().is_err());
        let err = BreakerConfig::builder()
            .recovery_timeout(Duration::from_secs(60))
            .recovery_timeout_max(Duration::from_secs(30))
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("must not be below `recovery_timeout`"),
            "{err}"
        );
    }

    #[test]
    fn huge_count_windows_are_refused() {
        let err = BreakerConfig::builder()
            .window(Window::Calls(NonZeroU32::MAX))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(BreakerConfig::builder()
            .window(Window::Calls(nz(MAX_COUNT_WINDOW)))
            .build()
            .is_ok());
    }

    #[test]
    fn builder_sets_every_field() {
        let c = BreakerConfig::builder()
            .failure_threshold(2)
            .recovery_timeout(Duration::from_millis(1500))
            .success_threshold(3)
            .half_open_max_calls(4)
            .build()
            .unwrap();
        assert_eq!(
            c,
            BreakerConfig::__from_macro(2, Duration::from_millis(1500), 3, 4)
        );
        assert_eq!(
            c.to_string(),
            "failure_threshold = 2, recovery_timeout = 1.5s, success_threshold = 3, half_open_max_calls = 4"
        );
    }

    #[test]
    fn open_time_doubles_up_to_the_max() {
        let c = BreakerConfig::builder()
            .recovery_timeout(Duration::from_secs(10))
            .recovery_timeout_max(Duration::from_secs(60))
            .build()
            .unwrap();
        let times: Vec<_> = (0..5).map(|n| c.open_time(n).as_secs()).collect();
        assert_eq!(times, [10, 20, 40, 60, 60]);
        assert_eq!(c.open_time(u32::MAX), Duration::from_secs(60));
        assert_eq!(BreakerConfig::DEFAULT.open_time(7), Duration::from_secs(60));
    }
}
