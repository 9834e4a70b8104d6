//! The circuit breaker's keys and rules.

use core::time::Duration;

use crate::{count, positive, rate, Problem, Problems, Value};

/// The largest count window: one byte per call, allocated once per breaker.
pub const MAX_COUNT_WINDOW: u64 = 1_000_000;

/// A `window`: a number of calls, or a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowValue {
    /// The last `n` calls (`window = 100`).
    Calls(u64),
    /// The calls of the last `d` (`window = "60s"`).
    Time(Duration),
}

/// What a circuit breaker's configuration says, key by key.
///
/// ```
/// use resilience_spec::{BreakerValues, Value};
///
/// let values = BreakerValues {
///     failure_rate: Value::Given(0.5),
///     ..BreakerValues::NONE
/// };
/// let problems = values.check();
/// assert_eq!(problems.len(), 1);
/// assert!(problems.iter().next().unwrap().to_string().starts_with(
///     "`failure_rate` needs a window to measure a rate in"
/// ));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BreakerValues {
    /// Failures that open the circuit: consecutive, or within the window.
    pub failure_threshold: Value<u64>,
    /// How long the circuit stays open before a probe.
    pub recovery_timeout: Value<Duration>,
    /// Successful probes that close the circuit.
    pub success_threshold: Value<u64>,
    /// Probes in flight at once while half-open.
    pub half_open_max_calls: Value<u64>,
    /// The window failures and calls are counted in.
    pub window: Value<WindowValue>,
    /// The share of failed calls in the window that opens the circuit.
    pub failure_rate: Value<f64>,
    /// Calls the window must hold before a rate can open the circuit.
    pub min_calls: Value<u64>,
    /// A call slower than this is slow.
    pub slow_call: Value<Duration>,
    /// The share of slow calls in the window that opens the circuit.
    pub slow_call_rate: Value<f64>,
    /// The open time doubles after each failed probe, up to this.
    pub recovery_timeout_max: Value<Duration>,
    /// Failures across the fleet that open the breaker everywhere.
    pub fleet_threshold: Value<u64>,
}

impl BreakerValues {
    /// No key written: every default.
    pub const NONE: BreakerValues = BreakerValues {
        failure_threshold: Value::Absent,
        recovery_timeout: Value::Absent,
        success_threshold: Value::Absent,
        half_open_max_calls: Value::Absent,
        window: Value::Absent,
        failure_rate: Value::Absent,
        min_calls: Value::Absent,
        slow_call: Value::Absent,
        slow_call_rate: Value::Absent,
        recovery_timeout_max: Value::Absent,
        fleet_threshold: Value::Absent,
    };

    /// Default `failure_threshold`: 5 failures.
    pub const DEFAULT_FAILURE_THRESHOLD: u64 = 5;
    /// Default `recovery_timeout`: 60 s.
    pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default `success_threshold`: 1 probe.
    pub const DEFAULT_SUCCESS_THRESHOLD: u64 = 1;
    /// Default `half_open_max_calls`: 1 probe at a time.
    pub const DEFAULT_HALF_OPEN_MAX_CALLS: u64 = 1;
    /// Default `min_calls`: 10 calls.
    pub const DEFAULT_MIN_CALLS: u64 = 10;

    /// Every problem of this configuration, in the order of the keys.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        count(&mut p, "failure_threshold", self.failure_threshold);
        positive(&mut p, "recovery_timeout", self.recovery_timeout);
        count(&mut p, "success_threshold", self.success_threshold);
        count(&mut p, "half_open_max_calls", self.half_open_max_calls);
        match self.window.given() {
            Some(WindowValue::Calls(0)) => p.push(Problem::Zero { key: "window" }),
            Some(WindowValue::Calls(n)) if n > MAX_COUNT_WINDOW => {
                p.push(Problem::WindowTooLarge { found: n })
            }
            Some(WindowValue::Time(d)) if d.is_zero() => {
                p.push(Problem::NotPositive { key: "window" })
            }
            _ => {}
        }
        rate(&mut p, "failure_rate", self.failure_rate);
        count(&mut p, "min_calls", self.min_calls);
        positive(&mut p, "slow_call", self.slow_call);
        rate(&mut p, "slow_call_rate", self.slow_call_rate);
        positive(&mut p, "recovery_timeout_max", self.recovery_timeout_max);
        count(&mut p, "fleet_threshold", self.fleet_threshold);
        self.cross_key(&mut p);
        p
    }

    /// The rules between keys.
    const fn cross_key(&self, p: &mut Problems) {
        let has_window = self.window.is_present();
        let failure_rate = self.failure_rate.is_present();
        let slow_rate = self.slow_call_rate.is_present();
        if failure_rate && !has_window {
            p.push(Problem::RateNeedsWindow {
                key: "failure_rate",
            });
        }
        if slow_rate && !has_window {
            p.push(Problem::RateNeedsWindow {
                key: "slow_call_rate",
            });
        }
        if slow_rate && !self.slow_call.is_present() {
            p.push(Problem::SlowRateNeedsSlowCall);
        }
        if self.min_calls.is_present() && !failure_rate && !slow_rate {
            p.push(Problem::MinCallsWithoutRate);
        }
        if failure_rate && self.failure_threshold.is_present() {
            p.push(Problem::ThresholdWithRate);
        }
        if let Some(WindowValue::Calls(n)) = self.window.given() {
            self.count_window(n, p);
        }
        if let (Some(max), Some(min)) = (
            self.recovery_timeout_max.given(),
            self.recovery_timeout.or(Self::DEFAULT_RECOVERY_TIMEOUT),
        ) {
            if max.as_nanos() < min.as_nanos() && !max.is_zero() && !min.is_zero() {
                p.push(Problem::BelowOther {
                    key: "recovery_timeout_max",
                    found: max,
                    other: "recovery_timeout",
                    limit: min,
                });
            }
        }
    }

    /// A window of `n` calls must hold what the trip rules count: the
    /// `min_calls` of a rate, and the failures of `failure_threshold` (the
    /// rule without a `failure_rate`). A written value that does not fit is
    /// reported under its key; a default that does not fit under the window.
    /// The default threshold is only an error when no rate could open the
    /// circuit either, so `slow_call_rate` over a small window stays a rule
    /// of its own.
    const fn count_window(&self, n: u64, p: &mut Problems) {
        if n == 0 || n > MAX_COUNT_WINDOW {
            return; // reported above
        }
        let has_rate = self.failure_rate.is_present() || self.slow_call_rate.is_present();
        match self.min_calls {
            Value::Given(m) if has_rate && m > n && m <= crate::MAX_COUNT => {
                p.push(Problem::MinCallsExceedsWindow {
                    min_calls: m,
                    window: n,
                })
            }
            Value::Absent if has_rate && Self::DEFAULT_MIN_CALLS > n => {
                p.push(Problem::DefaultMinCallsExceedsWindow {
                    min_calls: Self::DEFAULT_MIN_CALLS,
                    window: n,
                })
            }
            _ => {}
        }
        if self.failure_rate.is_present() {
            return;
        }
        match self.failure_threshold {
            Value::Given(t) if t > n && t <= crate::MAX_COUNT => {
                p.push(Problem::ThresholdExceedsWindow {
                    threshold: t,
                    window: n,
                })
            }
            Value::Absent if !has_rate && Self::DEFAULT_FAILURE_THRESHOLD > n => {
                p.push(Problem::DefaultThresholdExceedsWindow {
                    threshold: Self::DEFAULT_FAILURE_THRESHOLD,
                    window: n,
                })
            }
            _ => {}
        }
    }
}
