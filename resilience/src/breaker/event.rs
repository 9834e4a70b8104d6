//! Transitions between breaker states, and the `tracing` events that report them.

use std::fmt;
use std::sync::Arc;

use super::CircuitState;

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransitionCause {
    /// Consecutive failures reached the failure threshold while closed.
    FailureThreshold {
        /// Consecutive failures counted when the circuit opened.
        failures: u32,
    },
    /// The recovery timeout elapsed and a call arrived to probe.
    RecoveryTimeoutElapsed,
    /// Enough probes succeeded while half-open.
    ProbesSucceeded {
        /// Probe successes counted when the circuit closed.
        successes: u32,
    },
    /// A probe failed while half-open.
    ProbeFailed,
    /// [`CircuitBreaker::reset`](super::CircuitBreaker::reset) was called.
    Reset,
}

impl fmt::Display for TransitionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionCause::FailureThreshold { failures } => {
                write!(f, "{failures} consecutive failures")
            }
            TransitionCause::RecoveryTimeoutElapsed => f.write_str("recovery timeout elapsed"),
            TransitionCause::ProbesSucceeded { successes } => {
                write!(f, "{successes} probe(s) succeeded")
            }
            TransitionCause::ProbeFailed => f.write_str("probe failed"),
            TransitionCause::Reset => f.write_str("manual reset"),
        }
    }
}

/// One change of a breaker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
    /// Why.
    pub cause: TransitionCause,
}

impl Transition {
    /// Reports the transition as a `tracing` event with target `resilience`:
    /// `warn` when the circuit opens, `info` otherwise.
    pub(crate) fn emit(&self) {
        let name: &str = &self.name;
        match self.to {
            CircuitState::Open => tracing::warn!(
                target: "resilience",
                breaker = name,
                from = ?self.from,
                to = ?self.to,
                cause = %self.cause,
                "circuit breaker `{name}` opened: {}",
                self.cause
            ),
            _ => tracing::info!(
                target: "resilience",
                breaker = name,
                from = ?self.from,
                to = ?self.to,
                cause = %self.cause,
                "circuit breaker `{name}` is now {:?}: {}",
                self.to,
                self.cause
            ),
        }
    }
}
