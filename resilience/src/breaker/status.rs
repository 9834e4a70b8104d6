//! A point-in-time view of one breaker.

use std::sync::Arc;
use std::time::Duration;

use super::CircuitState;

/// What [`CircuitBreaker::status`](super::CircuitBreaker::status) and
/// [`Registry::snapshot`](crate::Registry::snapshot) report about a breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// The breaker's name.
    pub name: Arc<str>,
    /// Its state.
    pub state: CircuitState,
    /// Consecutive failures counted in the current closed period.
    pub consecutive_failures: u32,
    /// Probes running now (half-open only).
    pub probes_in_flight: u32,
    /// Probes that succeeded in the current half-open period.
    pub probe_successes: u32,
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// Probe successes that close the circuit.
    pub success_threshold: u32,
    /// Probes allowed at once while half-open.
    pub half_open_max_calls: u32,
    /// How long the circuit stays open before probing.
    pub recovery_timeout: Duration,
    /// While open: time until a probe may run (zero once it may).
    pub retry_after: Option<Duration>,
}
