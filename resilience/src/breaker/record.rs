//! Recording outcomes: what a finished call does to the counters, and the
//! half-open probe slots.

use super::{
    Cause, CircuitBreaker, CircuitState, Outcome, Sample, Tagged, Totals, TransitionCause,
};
use crate::sync::Ordering;

/// In `fleet_report`: a success was recorded since the last report (and the
/// failures beside it came after it).
pub(super) const FLEET_SUCCESS: u32 = 1 << 31;
/// In `fleet_report`: failures since the last success (or report).
pub(super) const FLEET_FAILURES: u32 = FLEET_SUCCESS - 1;

impl CircuitBreaker {
    /// A call admitted while closed (or disabled) finished.
    #[inline]
    pub(super) fn on_closed(
        &self,
        generation: u32,
        outcome: Outcome,
        slow: bool,
        error: Cause<'_>,
    ) {
        if self.hot() & super::WINDOWED == 0 {
            match self.effective(outcome, slow) {
                Outcome::Success => self.on_closed_success(generation),
                Outcome::Failure => self.on_closed_failure(generation, error),
                Outcome::Ignored => {}
            }
        } else if outcome != Outcome::Ignored {
            self.on_windowed(generation, outcome, slow, error);
        }
    }

    /// A slow call is a failure unless slow calls have a rate of their own.
    #[inline]
    fn effective(&self, outcome: Outcome, slow: bool) -> Outcome {
        if slow && outcome == Outcome::Success && self.config().slow_call_rate().is_none() {
            Outcome::Failure
        } else {
            outcome
        }
    }

    #[inline(always)]
    pub(super) fn on_closed_success(&self, generation: u32) {
        let f = Tagged(self.failures.load(Ordering::Relaxed));
        if self.hot() & super::FLEET != 0 {
            self.fleet_success(generation);
        }
        if f.value_in(generation) == 0 {
            return; // the hot path: nothing pending, nothing written
        }
        // A success breaks the run of consecutive failures.
        let _ = self.failures.compare_exchange(
            f.0,
            Tagged::new(generation, 0).0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Counts a failure of `generation` for the fleet, when the fleet counts
    /// failures. A count left from an older generation is dropped: failures
    /// recorded before a transition never count toward the next opening.
    #[inline]
    fn count_for_fleet(&self, generation: u32) {
        if self.hot() & super::FLEET == 0 {
            return;
        }
        let mut current = self.fleet_report.load(Ordering::Relaxed);
        loop {
            let t = Tagged(current);
            let value = t.value_in(generation);
            let failures = (value & FLEET_FAILURES)
                .saturating_add(1)
                .min(FLEET_FAILURES);
            let next = Tagged::new(generation, (value & FLEET_SUCCESS) | failures);
            match self.fleet_report.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// A success of `generation`, for a fleet that counts consecutive
    /// failures: it breaks the fleet's run. (Windowed breakers never get
    /// here: they keep the window's semantics, where a success clears
    /// nothing.) Writes only when there is something to change, so a run of
    /// successes writes once per report.
    #[cold]
    fn fleet_success(&self, generation: u32) {
        let current = self.fleet_report.load(Ordering::Relaxed);
        if Tagged(current).value_in(generation) == FLEET_SUCCESS {
            return;
        }
        let _ = self.fleet_report.compare_exchange(
            current,
            Tagged::new(generation, FLEET_SUCCESS).0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    fn on_closed_failure(&self, generation: u32, error: Cause<'_>) {
        self.count_for_fleet(generation);
        let mut current = self.failures.load(Ordering::Relaxed);
        loop {
            let (g, state) = self.load();
            if g != generation || !state.admits_all() {
                return; // stale: the breaker moved on since this call was admitted
            }
            let count = Tagged(current).value_in(generation).saturating_add(1);
            match self.failures.compare_exchange_weak(
                current,
                Tagged::new(generation, count).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Only the failure that reached the threshold opens the
                    // circuit: it reports exactly the count that opened it.
                    // Failures that land past it (other threads, before the
                    // state changed) find the transition already asked for.
                    // (A threshold lowered live clamps the count below it,
                    // see `reconfigure`.)
                    if count == self.config().failure_threshold().get() {
                        self.transition_from(
                            generation,
                            CircuitState::Closed,
                            CircuitState::Open,
                            TransitionCause::FailureThreshold { failures: count },
                            error,
                        );
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn on_windowed(&self, generation: u32, outcome: Outcome, slow: bool, error: Cause<'_>) {
        let (g, state) = self.load();
        if g != generation || !state.admits_all() {
            return;
        }
        let Some(window) = self.window() else { return };
        let sample = Sample {
            failure: self.effective(outcome, slow) == Outcome::Failure,
            slow,
        };
        if sample.failure {
            self.count_for_fleet(generation);
        }
        // Only a time window needs the clock.
        let now = if window.is_timed() {
            self.now_nanos()
        } else {
            0
        };
        let totals = window.record(sample, now);
        if state == CircuitState::Closed {
            if let Some(cause) = self.trip_cause(totals) {
                self.transition_from(
                    generation,
                    CircuitState::Closed,
                    CircuitState::Open,
                    cause,
                    error,
                );
            }
        }
    }

    /// Whether the window's totals open the circuit, and why.
    fn trip_cause(&self, t: Totals) -> Option<TransitionCause> {
        let c = self.config();
        let enough = t.calls >= c.min_calls().get();
        let reached = |n: u32, rate: f64| f64::from(n) >= rate * f64::from(t.calls);
        match c.failure_rate() {
            Some(rate) if enough && t.failures > 0 && reached(t.failures, rate) => {
                return Some(TransitionCause::FailureRate {
                    failures: t.failures,
                    calls: t.calls,
                })
            }
            Some(_) => {}
            None if t.failures >= c.failure_threshold().get() => {
                return Some(TransitionCause::FailuresInWindow {
                    failures: t.failures,
                    calls: t.calls,
                })
            }
            None => {}
        }
        match c.slow_call_rate() {
            Some(rate) if enough && t.slow > 0 && reached(t.slow, rate) => {
                Some(TransitionCause::SlowCallRate {
                    slow: t.slow,
                    calls: t.calls,
                })
            }
            _ => None,
        }
    }

    /// A half-open probe finished. A slow probe is a failed probe.
    pub(super) fn on_probe(&self, generation: u32, outcome: Outcome, slow: bool, error: Cause<'_>) {
        match (outcome, slow) {
            (Outcome::Ignored, _) => {}
            (Outcome::Success, false) => self.on_probe_success(generation),
            _ => {
                self.transition_from(
                    generation,
                    CircuitState::HalfOpen,
                    CircuitState::Open,
                    TransitionCause::ProbeFailed,
                    error,
                );
            }
        }
    }

    fn on_probe_success(&self, generation: u32) {
        let mut current = self.successes.load(Ordering::Relaxed);
        loop {
            if self.load() != (generation, CircuitState::HalfOpen) {
                return;
            }
            let count = Tagged(current).value_in(generation).saturating_add(1);
            match self.successes.compare_exchange_weak(
                current,
                Tagged::new(generation, count).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if count >= self.config().success_threshold().get() {
                        self.transition_from(
                            generation,
                            CircuitState::HalfOpen,
                            CircuitState::Closed,
                            TransitionCause::ProbesSucceeded { successes: count },
                            None,
                        );
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes one of the half-open generation's probe slots, if one is free.
    ///
    /// Never overwrites the counter of a later generation: a caller that read
    /// the state before the breaker re-opened and turned half-open again
    /// would otherwise reset the new generation's count and let more than
    /// `half_open_max_calls` probes in.
    pub(super) fn take_probe_slot(&self, generation: u32) -> ProbeSlot {
        let max = self.config().half_open_max_calls().get();
        let mut current = self.probes.load(Ordering::Acquire);
        loop {
            if newer(Tagged(current).generation(), generation) {
                return ProbeSlot::Stale;
            }
            let in_flight = Tagged(current).value_in(generation);
            if in_flight >= max {
                return ProbeSlot::Full;
            }
            match self.probes.compare_exchange_weak(
                current,
                Tagged::new(generation, in_flight + 1).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return ProbeSlot::Taken,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives a probe slot back, unless its generation is already over.
    pub(super) fn release_probe_slot(&self, generation: u32) {
        let mut current = self.probes.load(Ordering::Relaxed);
        loop {
            let t = Tagged(current);
            if t.generation() != generation || t.value() == 0 {
                return;
            }
            match self.probes.compare_exchange_weak(
                current,
                Tagged::new(generation, t.value() - 1).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

/// What [`CircuitBreaker::take_probe_slot`] got.
pub(super) enum ProbeSlot {
    Taken,
    /// `half_open_max_calls` probes are in flight.
    Full,
    /// A later generation has begun since the caller read the state.
    Stale,
}

/// Whether generation `a` comes after `b` (generations wrap around).
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
