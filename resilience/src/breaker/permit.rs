//! The guard an admitted call holds, and the outcomes it can record.

use tokio::time::Instant;

use super::CircuitBreaker;

/// What a call admitted by a breaker amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed: it counts towards opening the circuit.
    Failure,
    /// The call's result says nothing about the dependency's health (for example
    /// a validation error): it is neither a success nor a failure.
    Ignored,
}

impl Outcome {
    /// `Success` for `Ok`, `Failure` for `Err`.
    pub fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

/// Permission to run one call, tagged with the breaker generation that gave it.
///
/// Record the call's outcome with [`Permit::record`]. A permit dropped without a
/// recorded outcome (the call's future was cancelled) records nothing and frees
/// its half-open probe slot. An outcome recorded after the breaker has moved to
/// a later generation (it was reset, or other calls opened or closed it) is
/// ignored. When the breaker has a `slow_call` threshold, the permit notes when
/// the call started and [`record`](Permit::record) measures it.
#[derive(Debug)]
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
    probe: bool,
    started: Option<Instant>,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(super) fn new(breaker: &'a CircuitBreaker, generation: u32, probe: bool) -> Self {
        // The clock is read only when slow calls or durations are measured.
        let started = if cfg!(feature = "metrics") || breaker.config.slow_call().is_some() {
            Some(Instant::now())
        } else {
            None
        };
        Permit {
            breaker,
            generation,
            probe,
            started,
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Whether the call has taken longer than the breaker's `slow_call`.
    pub fn is_slow(&self) -> bool {
        match (self.started, self.breaker.config.slow_call()) {
            (Some(started), Some(limit)) => started.elapsed() > limit,
            _ => false,
        }
    }

    /// Records the call's outcome and gives the permit back.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let label = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        };
        self.record_labelled(outcome, label);
    }

    /// Records a failure caused by a timeout (reported as `outcome="timeout"`).
    pub fn record_timeout(self) {
        self.record_labelled(Outcome::Failure, "timeout");
    }

    #[inline]
    fn record_labelled(self, outcome: Outcome, label: &'static str) {
        crate::metrics::call(&self.breaker.name, label, self.started.map(|s| s.elapsed()));
        let slow = outcome != Outcome::Ignored && self.is_slow();
        if slow {
            tracing::debug!(
                target: "resilience",
                breaker = self.breaker.name(),
                "a call through circuit breaker `{}` was slow",
                self.breaker.name()
            );
        }
        if self.probe {
            self.breaker.on_probe(self.generation, outcome, slow);
            // `self` drops here and frees the probe slot.
        } else {
            // Nothing to release: `Drop` does nothing for closed-state permits.
            self.breaker.on_closed(self.generation, outcome, slow);
        }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.breaker.release_probe_slot(self.generation);
        }
    }
}
