//! What the runtime reports through the `metrics` facade (feature `metrics`).
//! Without the feature every function here is an empty inline function.
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `resilience_calls_total` | counter | `breaker`, `outcome` | calls through a breaker; `outcome` is `success`, `failure`, `ignored`, `rejected` or `timeout` |
//! | `resilience_circuit_state` | gauge | `breaker` | 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled |
//! | `resilience_transitions_total` | counter | `breaker`, `from`, `to` | state changes |
//! | `resilience_retries_total` | counter | `name` | retries (attempts after the first) |
//! | `resilience_retries_exhausted_total` | counter | `name` | retried calls that gave up with an error |
//! | `resilience_bulkhead_in_flight` | gauge | `name` | calls holding a bulkhead slot |
//! | `resilience_call_duration_seconds` | histogram | `breaker` | duration of admitted calls |

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::sync::Arc;
use std::time::Duration;

use crate::CircuitState;

/// The number `resilience_circuit_state` reports for a state.
pub const fn state_gauge(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => 0.0,
        CircuitState::Open => 1.0,
        CircuitState::HalfOpen => 2.0,
        CircuitState::ForcedOpen => 3.0,
        CircuitState::Disabled => 4.0,
    }
}

#[inline]
pub(crate) fn call(breaker: &Arc<str>, outcome: &'static str, duration: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("resilience_calls_total", "breaker" => breaker.clone(), "outcome" => outcome)
            .increment(1);
        if let Some(d) = duration {
            metrics::histogram!("resilience_call_duration_seconds", "breaker" => breaker.clone())
                .record(d.as_secs_f64());
        }
    }
}

#[inline]
pub(crate) fn state(breaker: &Arc<str>, state: CircuitState) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("resilience_circuit_state", "breaker" => breaker.clone())
        .set(state_gauge(state));
}

#[inline]
pub(crate) fn transition(breaker: &Arc<str>, from: CircuitState, to: CircuitState) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "resilience_transitions_total",
        "breaker" => breaker.clone(),
        "from" => from.as_str(),
        "to" => to.as_str()
    )
    .increment(1);
    state(breaker, to);
}

#[inline]
pub(crate) fn retry(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_retries_total", "name" => name).increment(1);
}

#[inline]
pub(crate) fn retries_exhausted(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_retries_exhausted_total", "name" => name).increment(1);
}

#[inline]
pub(crate) fn bulkhead_in_flight(name: &Arc<str>, in_flight: u32) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("resilience_bulkhead_in_flight", "name" => name.clone())
        .set(f64::from(in_flight));
}
