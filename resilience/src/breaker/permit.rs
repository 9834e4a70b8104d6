//! The guard an admitted call holds, and the outcomes it can record.

use std::fmt;
use std::time::Duration;

use super::{Cause, CircuitBreaker};

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
/// ignored. When the breaker has a `slow_call` threshold (or the `metrics`
/// feature is on), the permit notes when the call started and
/// [`record`](Permit::record) measures it, to the microsecond (durations are
/// measured modulo 35 minutes: a call that long is slow by any threshold
/// shorter than that).
///
/// A permit is two words, so that moving it through a future costs nothing.
#[derive(Debug)]
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
    /// Bit 31: a half-open probe. Bits 0-30: when the call started, in
    /// microseconds after the breaker's epoch modulo 2^31, or 0 when the call
    /// is not timed.
    meta: u32,
}

const PROBE: u32 = 1 << 31;
const STARTED: u32 = PROBE - 1;

impl<'a> Permit<'a> {
    #[inline]
    pub(super) fn new(breaker: &'a CircuitBreaker, generation: u32, probe: bool) -> Self {
        // The clock is read only when slow calls or durations are measured.
        let started = if cfg!(feature = "metrics") || breaker.hot() & super::TIMED != 0 {
            // Stored plus one, so that 0 can mean "not timed".
            ((breaker.now_micros() as u32).wrapping_add(1) & STARTED).max(1)
        } else {
            0
        };
        Permit {
            breaker,
            generation,
            meta: started | if probe { PROBE } else { 0 },
        }
    }

    /// The breaker generation that admitted this call: every transition
    /// starts a new one, so two permits of one generation were admitted in
    /// the same period (the same half-open period, for probes).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.meta & PROBE != 0
    }

    /// How long the call has been running, if it is timed.
    fn elapsed(&self) -> Option<Duration> {
        let started = self.meta & STARTED;
        (started != 0).then(|| {
            let now = (self.breaker.now_micros() as u32).wrapping_add(1);
            Duration::from_micros(u64::from(now.wrapping_sub(started) & STARTED))
        })
    }

    /// Whether the call has taken longer than the breaker's `slow_call`.
    pub fn is_slow(&self) -> bool {
        // `elapsed` is `None` for a call that is not timed.
        match (self.elapsed(), self.breaker.config().slow_call()) {
            (Some(elapsed), Some(limit)) => elapsed > limit,
            _ => false,
        }
    }

    /// Records the call's outcome and gives the permit back.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        if self.meta == 0
            && outcome == Outcome::Success
            && self.breaker.hot() & super::WINDOWED == 0
        {
            // The hot path: a closed-state success, not timed, no window.
            self.breaker.on_closed_success(self.generation);
            return;
        }
        let label = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        };
        self.record_labelled(outcome, label, None);
    }

    /// Records the outcome of a call that returned `error` (classified as
    /// `outcome`: a failure, or an error that counts as a success or is
    /// ignored) and gives the permit back. If this outcome changes the
    /// breaker's state, the [`Transition`](crate::Transition) carries the
    /// error's text, so an `on_open` listener can log why:
    ///
    /// ```
    /// use resilience::{BreakerConfig, CircuitBreaker, Outcome};
    ///
    /// let config = BreakerConfig::builder().failure_threshold(1).build()?;
    /// let breaker = CircuitBreaker::new("ledger", config);
    /// breaker.on_transition(|t| assert_eq!(t.error(), Some("connection refused")));
    /// let result: Result<(), &str> = Err("connection refused");
    /// if let Err(e) = &result {
    ///     breaker.try_acquire()?.record_error(Outcome::Failure, e);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_error(self, outcome: Outcome, error: &dyn fmt::Display) {
        let label = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        };
        self.record_labelled(outcome, label, Some(error));
    }

    /// Records a failure caused by a timeout (reported as `outcome="timeout"`).
    pub fn record_timeout(self) {
        self.record_labelled(Outcome::Failure, "timeout", None);
    }

    /// [`record_timeout`](Self::record_timeout), with the error the call
    /// returned (see [`record_error`](Self::record_error)).
    pub fn record_timeout_error(self, error: &dyn fmt::Display) {
        self.record_labelled(Outcome::Failure, "timeout", Some(error));
    }

    #[inline(never)]
    fn record_labelled(self, outcome: Outcome, label: &'static str, error: Cause<'_>) {
        crate::metrics::call(&self.breaker.name, label, self.elapsed());
        let slow = outcome != Outcome::Ignored && self.is_slow();
        if slow {
            tracing::debug!(
                target: "resilience",
                breaker = self.breaker.name(),
                "a call through circuit breaker `{}` was slow",
                self.breaker.name()
            );
        }
        if self.is_probe() {
            self.breaker.on_probe(self.generation, outcome, slow, error);
            // `self` drops here and frees the probe slot.
        } else {
            // Nothing to release: `Drop` does nothing for closed-state permits.
            self.breaker
                .on_closed(self.generation, outcome, slow, error);
        }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.meta & PROBE != 0 {
            self.breaker.release_probe_slot(self.generation);
        }
    }
}

/// A [`Permit`] that owns its breaker (an `Arc`), for futures that must be
/// `'static` (a tower service's response future): the same recording, the
/// same release of a probe slot when dropped unrecorded.
#[derive(Debug)]
#[must_use = "a permit records nothing unless `record` is called"]
pub struct OwnedPermit {
    breaker: std::sync::Arc<CircuitBreaker>,
    generation: u32,
    meta: u32,
    /// Still to be recorded or released.
    live: bool,
}

impl OwnedPermit {
    /// The borrowed permit this one stands for.
    fn borrowed(&mut self) -> Permit<'_> {
        self.live = false;
        Permit {
            breaker: &self.breaker,
            generation: self.generation,
            meta: self.meta,
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.meta & PROBE != 0
    }

    /// Records the call's outcome (see [`Permit::record`]).
    pub fn record(mut self, outcome: Outcome) {
        self.borrowed().record(outcome);
    }

    /// Records the outcome of a call that returned `error` (see
    /// [`Permit::record_error`]).
    pub fn record_error(mut self, outcome: Outcome, error: &dyn fmt::Display) {
        self.borrowed().record_error(outcome, error);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.live {
            drop(self.borrowed()); // frees a probe slot, records nothing
        }
    }
}

impl CircuitBreaker {
    /// [`try_acquire`](Self::try_acquire), for a breaker held in an `Arc`:
    /// the permit owns a reference to the breaker.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    pub fn try_acquire_owned(self: &std::sync::Arc<Self>) -> Result<OwnedPermit, crate::Error> {
        let permit = self.try_acquire()?;
        let (generation, meta) = (permit.generation, permit.meta);
        std::mem::forget(permit); // handed over to the owned permit
        Ok(OwnedPermit {
            breaker: self.clone(),
            generation,
            meta,
            live: true,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_permit_is_two_words() {
        assert_eq!(std::mem::size_of::<super::Permit<'_>>(), 16);
    }
}
