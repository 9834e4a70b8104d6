//! Circuit breaker configuration: validated once, immutable afterwards.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use resilience_spec::{BreakerValues, Value, WindowValue};

use crate::ConfigError;

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
///
/// Two configurations are equal when they behave the same, whichever keys
/// were written to get there.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// The keys it was built from (what a configuration by name layers on).
    values: BreakerValues,
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

const fn nz(n: u64) -> NonZeroU32 {
    match NonZeroU32::new(n as u32) {
        Some(n) => n,
        None => NonZeroU32::MIN, // unreachable for checked values
    }
}

impl BreakerConfig {
    /// The defaults: 5 consecutive failures open the circuit, it stays open for
    /// 60 s, then 1 probe at a time is let through and 1 success closes it.
    pub const DEFAULT: BreakerConfig = BreakerConfig::from_checked(BreakerValues::NONE);

    /// A builder starting from [`BreakerConfig::DEFAULT`].
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            values: BreakerValues::NONE,
        }
    }

    /// The configuration of values that passed [`BreakerValues::check`];
    /// absent keys take the spec's defaults.
    pub(crate) const fn from_checked(v: BreakerValues) -> Self {
        let window = match v.window.given() {
            Some(WindowValue::Calls(n)) => Some(Window::Calls(nz(n))),
            Some(WindowValue::Time(d)) => Some(Window::Time(d)),
            None => None,
        };
        BreakerConfig {
            values: v,
            failure_threshold: nz(or(
                v.failure_threshold,
                BreakerValues::DEFAULT_FAILURE_THRESHOLD,
            )),
            window,
            failure_rate: v.failure_rate.given(),
            min_calls: nz(or(v.min_calls, BreakerValues::DEFAULT_MIN_CALLS)),
            slow_call: v.slow_call.given(),
            slow_call_rate: v.slow_call_rate.given(),
            recovery_timeout: match v.recovery_timeout.given() {
                Some(d) => d,
                None => BreakerValues::DEFAULT_RECOVERY_TIMEOUT,
            },
            recovery_timeout_max: v.recovery_timeout_max.given(),
            fleet_threshold: match v.fleet_threshold.given() {
                Some(n) => Some(nz(n)),
                None => None,
            },
            success_threshold: nz(or(
                v.success_threshold,
                BreakerValues::DEFAULT_SUCCESS_THRESHOLD,
            )),
            half_open_max_calls: nz(or(
                v.half_open_max_calls,
                BreakerValues::DEFAULT_HALF_OPEN_MAX_CALLS,
            )),
        }
    }

    /// The configuration of `values`, held to the attribute's rules.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule broken (see
    /// [`BreakerConfigBuilder::build`]).
    pub(crate) fn from_values(values: BreakerValues) -> Result<Self, ConfigError> {
        crate::spec::checked(values.check())?;
        Ok(BreakerConfig::from_checked(values))
    }

    /// The keys this configuration was built from, as the spec sees them
    /// (an absent key takes its default).
    pub(crate) const fn values(&self) -> BreakerValues {
        self.values
    }

    /// [`values`](Self::values), borrowed.
    pub(crate) const fn values_ref(&self) -> &BreakerValues {
        &self.values
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

impl PartialEq for BreakerConfig {
    /// Everything but `values`: what the breaker does. Field by field, the
    /// cheap ones first (a dynamic-name lookup compares on every call).
    fn eq(&self, other: &Self) -> bool {
        self.failure_threshold == other.failure_threshold
            && self.recovery_timeout == other.recovery_timeout
            && self.window == other.window
            && self.success_threshold == other.success_threshold
            && self.half_open_max_calls == other.half_open_max_calls
            && self.min_calls == other.min_calls
            && self.failure_rate == other.failure_rate
            && self.slow_call == other.slow_call
            && self.slow_call_rate == other.slow_call_rate
            && self.recovery_timeout_max == other.recovery_timeout_max
            && self.fleet_threshold == other.fleet_threshold
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

/// The value in force of a count.
const fn or(v: Value<u64>, default: u64) -> u64 {
    match v.given() {
        Some(n) => n,
        None => default,
    }
}

/// Builds a [`BreakerConfig`] key by key, held to exactly the rules of the
/// `#[circuit_breaker]` attribute (the same check, the same words); every
/// key not set keeps its default.
#[derive(Debug, Clone)]
#[must_use = "call `.build()` to get the configuration"]
pub struct BreakerConfigBuilder {
    values: BreakerValues,
}

impl BreakerConfigBuilder {
    /// Failures that open the circuit (default 5; at least 1): consecutive,
    /// or within the window when one is set.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.values.failure_threshold = Value::Given(n.into());
        self
    }

    /// Counts failures (and calls) in a window instead of consecutively.
    pub fn window(mut self, window: Window) -> Self {
        self.values.window = Value::Given(match window {
            Window::Calls(n) => WindowValue::Calls(n.get().into()),
            Window::Time(d) => WindowValue::Time(d),
        });
        self
    }

    /// Opens the circuit when this share of the window's calls failed
    /// (in (0, 1]; needs a window).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.values.failure_rate = Value::Given(rate);
        self
    }

    /// Calls the window must hold before a rate opens the circuit (default 10).
    pub fn min_calls(mut self, n: u32) -> Self {
        self.values.min_calls = Value::Given(n.into());
        self
    }

    /// Calls slower than this are slow: failures, unless
    /// [`slow_call_rate`](Self::slow_call_rate) is set.
    pub fn slow_call(mut self, d: Duration) -> Self {
        self.values.slow_call = Value::Given(d);
        self
    }

    /// Opens the circuit when this share of the window's calls were slow
    /// (in (0, 1]; needs `slow_call` and a window).
    pub fn slow_call_rate(mut self, rate: f64) -> Self {
        self.values.slow_call_rate = Value::Given(rate);
        self
    }

    /// Time spent open before a probe (default 60 s; must be positive).
    pub fn recovery_timeout(mut self, d: Duration) -> Self {
        self.values.recovery_timeout = Value::Given(d);
        self
    }

    /// Opens the breaker on every instance once the fleet counted this many
    /// failures in its failure window (feature `redis`; at least 1).
    pub fn fleet_threshold(mut self, n: u32) -> Self {
        self.values.fleet_threshold = Value::Given(n.into());
        self
    }

    /// Doubles the open time after each failed probe, up to `max` (at least
    /// `recovery_timeout`).
    pub fn recovery_timeout_max(mut self, max: Duration) -> Self {
        self.values.recovery_timeout_max = Value::Given(max);
        self
    }

    /// Successful probes that close the circuit (default 1; at least 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.values.success_threshold = Value::Given(n.into());
        self
    }

    /// Probes in flight at once while half-open (default 1; at least 1).
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.values.half_open_max_calls = Value::Given(n.into());
        self
    }

    /// The configuration, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule the configuration breaks, in the
    /// words the attribute uses: a zero count or duration, a rate outside
    /// (0, 1], a rate without a window, `slow_call_rate` without `slow_call`,
    /// `min_calls` without a rate or larger than a count window,
    /// `failure_threshold` together with `failure_rate` or larger than a
    /// count window, a count window over a million calls, and
    /// `recovery_timeout_max` below `recovery_timeout`.
    ///
    /// ```
    /// use resilience::BreakerConfig;
    ///
    /// let err = BreakerConfig::builder().failure_rate(0.5).failure_threshold(3).build().unwrap_err();
    /// assert_eq!(err.problems().len(), 2);
    /// assert_eq!(err.problems()[0].key(), "failure_rate");
    /// ```
    pub fn build(self) -> Result<BreakerConfig, ConfigError> {
        BreakerConfig::from_values(self.values)
    }
}
