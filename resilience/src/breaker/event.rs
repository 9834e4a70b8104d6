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
    /// Failures within the window reached the failure threshold.
    FailuresInWindow {
        /// Failures in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
    },
    /// The share of failed calls in the window reached the failure rate.
    FailureRate {
        /// Failures in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
    },
    /// The share of slow calls in the window reached the slow-call rate.
    SlowCallRate {
        /// Slow calls in the window.
        slow: u32,
        /// Calls in the window.
        calls: u32,
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
    /// [`CircuitBreaker::force_open`](super::CircuitBreaker::force_open) was called.
    ForcedOpen,
    /// [`CircuitBreaker::disable`](super::CircuitBreaker::disable) was called.
    Disabled,
    /// Another instance of the fleet changed the breaker (feature `redis`).
    Fleet,
    /// The fleet as a whole counted `fleet_threshold` failures in its
    /// failure window (feature `redis`).
    FleetFailures {
        /// Failures the fleet counted in the window.
        failures: u32,
    },
}

impl fmt::Display for TransitionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionCause::FailureThreshold { failures } => {
                write!(f, "{failures} consecutive failures")
            }
            TransitionCause::FailuresInWindow { failures, calls } => {
                write!(f, "{failures} failures in the window ({calls} calls)")
            }
            TransitionCause::FailureRate { failures, calls } => {
                write!(f, "failure rate {failures}/{calls} reached the threshold")
            }
            TransitionCause::SlowCallRate { slow, calls } => {
                write!(f, "slow-call rate {slow}/{calls} reached the threshold")
            }
            TransitionCause::RecoveryTimeoutElapsed => f.write_str("recovery timeout elapsed"),
            TransitionCause::ProbesSucceeded { successes } => {
                write!(f, "{successes} probe(s) succeeded")
            }
            TransitionCause::ProbeFailed => f.write_str("probe failed"),
            TransitionCause::Reset => f.write_str("manual reset"),
            TransitionCause::ForcedOpen => f.write_str("forced open"),
            TransitionCause::Disabled => f.write_str("disabled"),
            TransitionCause::Fleet => f.write_str("changed by another instance of the fleet"),
            TransitionCause::FleetFailures { failures } => {
                write!(f, "{failures} failures across the fleet")
            }
        }
    }
}

/// One change of a breaker's state. Only a breaker makes one
/// (`#[non_exhaustive]`): read it through the fields or the accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
    /// Why.
    pub cause: TransitionCause,
    /// Failures counted when it happened: consecutive ones, or those in the
    /// window for windowed breakers.
    pub failures: u32,
    /// Calls in the window when it happened (0 without a window).
    pub calls: u32,
    /// The `Display` text of the error returned by the call that caused the
    /// transition (the failure that opened the circuit, the probe that
    /// failed), when its outcome was recorded with the error: the attribute
    /// macros always do for error types that implement `Display`; by hand,
    /// see [`Permit::record_error`](super::Permit::record_error). `None` for
    /// transitions no error caused (a recovery timeout, successful probes,
    /// a slow call, manual control, the fleet). Written only when the
    /// breaker (or its registry) has a listener to read it, so a breaker
    /// nobody listens to allocates nothing on its transitions.
    pub error: Option<Arc<str>>,
}

impl Transition {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state it left.
    pub fn from(&self) -> CircuitState {
        self.from
    }

    /// The state it entered.
    pub fn to(&self) -> CircuitState {
        self.to
    }

    /// Why.
    pub fn cause(&self) -> TransitionCause {
        self.cause
    }

    /// Failures counted when it happened: consecutive ones, or those in the
    /// window for windowed breakers.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Calls in the window when it happened (0 without a window).
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The error text of the call that caused the transition, if any
    /// (see [`error`](Self#structfield.error)).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

impl Transition {
    /// Reports the transition as a `tracing` event with target `resilience`:
    /// `warn` when the circuit opens, `info` otherwise.
    pub(crate) fn emit(&self) {
        let name: &str = &self.name;
        match self.to {
            CircuitState::Open | CircuitState::ForcedOpen => tracing::warn!(
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
