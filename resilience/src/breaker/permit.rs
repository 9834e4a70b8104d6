//! The guard an admitted call holds, and the outcomes it can record.

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
/// ignored.
#[derive(Debug)]
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
    probe: bool,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(super) fn new(breaker: &'a CircuitBreaker, generation: u32, probe: bool) -> Self {
        Permit {
            breaker,
            generation,
            probe,
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the call's outcome and gives the permit back.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let breaker = self.breaker;
        let generation = self.generation;
        if !self.probe {
            // Nothing to release: `Drop` is a no-op for closed-state permits.
            match outcome {
                Outcome::Success => breaker.on_closed_success(generation),
                Outcome::Failure => breaker.on_closed_failure(generation),
                Outcome::Ignored => {}
            }
            return;
        }
        match outcome {
            Outcome::Success => breaker.on_probe_success(generation),
            Outcome::Failure => breaker.on_probe_failure(generation),
            Outcome::Ignored => {}
        }
        // `self` drops here and frees the probe slot.
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
