//! A point-in-time view of one breaker.

use std::sync::Arc;
use std::time::Duration;

use super::{CircuitState, Window};

/// What [`CircuitBreaker::status`](super::CircuitBreaker::status) and
/// [`Registry::snapshot`](crate::Registry::snapshot) report about a breaker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerStatus {
    /// The breaker's name.
    pub name: Arc<str>,
    /// Its state.
    pub state: CircuitState,
    /// Consecutive failures counted in the current closed period (breakers
    /// without a window); while open or half-open, the run that opened it.
    pub consecutive_failures: u32,
    /// Calls in the window (windowed breakers; 0 otherwise).
    pub window_calls: u32,
    /// Failed calls in the window (windowed breakers; 0 otherwise).
    pub window_failures: u32,
    /// Slow calls in the window (windowed breakers; 0 otherwise).
    pub window_slow_calls: u32,
    /// Probes running now (half-open only).
    pub probes_in_flight: u32,
    /// Probes that succeeded in the current half-open period.
    pub probe_successes: u32,
    /// Failures that open the circuit (consecutive, or in the window).
    pub failure_threshold: u32,
    /// The failure rate that opens the circuit, if one is set.
    pub failure_rate: Option<f64>,
    /// The window, if one is set.
    pub window: Option<Window>,
    /// Probe successes that close the circuit.
    pub success_threshold: u32,
    /// Probes allowed at once while half-open.
    pub half_open_max_calls: u32,
    /// How long the circuit stays open before probing (the configured base).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "recovery_timeout_seconds",
            serialize_with = "crate::serde_impls::secs"
        )
    )]
    pub recovery_timeout: Duration,
    /// How long the circuit stays open the next time it opens (grows after
    /// failed probes when `recovery_timeout_max` is set).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "current_open_time_seconds",
            serialize_with = "crate::serde_impls::secs"
        )
    )]
    pub current_open_time: Duration,
    /// While open: time until a probe may run (zero once it may).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "retry_after_seconds",
            serialize_with = "crate::serde_impls::opt_secs"
        )
    )]
    pub retry_after: Option<Duration>,
    /// Its place in the fleet (feature `redis`): how many instances share
    /// it and which one changed it last. Filled in by
    /// [`Registry::snapshot`](crate::Registry::snapshot) for the named
    /// breakers of a registry shared through Redis; `None` otherwise (and
    /// always from [`CircuitBreaker::status`](super::CircuitBreaker::status)).
    #[cfg(feature = "redis")]
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub fleet: Option<crate::BreakerFleetStatus>,
}
