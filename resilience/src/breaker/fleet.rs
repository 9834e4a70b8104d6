//! What the fleet sync (feature `redis`) does to a breaker: gate its probes
//! on the fleet's lease, apply states decided elsewhere, start a new breaker
//! in the fleet's state, and hand over the failures counted for the fleet.
//! Nothing here runs on a call's path.

use std::sync::Arc;
use std::time::Duration;

use super::record::{FLEET_FAILURES, FLEET_SUCCESS};
use super::{duration_nanos, CircuitBreaker, CircuitState, Tagged, TransitionCause};
use crate::sync::Ordering;

/// What a breaker counted for the fleet since the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FleetReport {
    /// A success was recorded (consecutive rule only): the fleet's run of
    /// failures is broken, and `failures` came after it.
    pub(crate) success: bool,
    /// Failures to add to the fleet's count.
    pub(crate) failures: u32,
}

impl CircuitBreaker {
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether an open breaker whose time is up must wait for the fleet's
    /// probe lease before probing (while connected).
    pub(crate) fn set_fleet_gated(&self, gated: bool) {
        self.fleet_gated.store(gated, Ordering::Release);
    }

    /// The generation of an open state whose time is up and that waits for
    /// the fleet's probe lease, if this breaker is in that state.
    pub(crate) fn waiting_for_probe_grant(&self) -> Option<u32> {
        let (generation, state) = self.load();
        let waiting = state == CircuitState::Open
            && self.fleet_gated.load(Ordering::Acquire)
            && self.probe_grant.load(Ordering::Acquire) != u64::from(generation) + 1
            && self.now_nanos() >= self.timing.open_until.load(Ordering::Acquire);
        waiting.then_some(generation)
    }

    /// Takes what was counted for the fleet (with `fleet_threshold`) since
    /// the last report. Only the current closed generation's counts are
    /// reported: failures (and successes) recorded before a transition are
    /// dropped, so they never count toward the next opening.
    pub(crate) fn take_fleet_report(&self) -> FleetReport {
        let taken = Tagged(self.fleet_report.swap(0, Ordering::AcqRel));
        let (generation, state) = self.load();
        if taken.generation() != generation || state != CircuitState::Closed {
            return FleetReport::default();
        }
        let value = taken.value();
        FleetReport {
            success: value & FLEET_SUCCESS != 0,
            failures: value & FLEET_FAILURES,
        }
    }

    /// Opens a closed breaker because the fleet counted `failures`.
    pub(crate) fn open_for_fleet_failures(&self, failures: u32) -> bool {
        let (generation, state) = self.load();
        state == CircuitState::Closed
            && self.transition_from(
                generation,
                CircuitState::Closed,
                CircuitState::Open,
                TransitionCause::FleetFailures { failures },
                None,
            )
    }

    /// Lets this instance probe the open state of `generation`.
    pub(crate) fn grant_probe(&self, generation: u32) {
        self.probe_grant
            .store(u64::from(generation) + 1, Ordering::Release);
    }

    /// Applies a state decided elsewhere in the fleet; `open_for` is how long
    /// an open breaker stays open from now. Returns whether anything changed.
    pub(crate) fn apply_fleet(&self, to: CircuitState, open_for: Option<Duration>) -> bool {
        loop {
            let (generation, from) = self.load();
            if let (CircuitState::Open, Some(open_for)) = (to, open_for) {
                let until = self.now_nanos().saturating_add(duration_nanos(open_for));
                if from == CircuitState::Open {
                    // Already open: adopt the fleet's time.
                    self.timing.open_until.store(until, Ordering::Release);
                    return false;
                }
                if self.transition_from(generation, from, to, TransitionCause::Fleet, None) {
                    self.timing.open_until.store(until, Ordering::Release);
                    return true;
                }
                continue;
            }
            if from == to {
                return false;
            }
            if self.transition_from(generation, from, to, TransitionCause::Fleet, None) {
                return true;
            }
        }
    }

    /// Puts a breaker that nobody can reach yet (the registry is creating
    /// it) into the fleet's state, so that its very first call is judged by
    /// what the fleet decided. No transition is reported: the breaker was
    /// never in another state for anyone; a `tracing` event says why it
    /// starts this way.
    pub(crate) fn start_in_fleet_state(&self, state: CircuitState, open_for: Duration) {
        if state == CircuitState::Closed {
            return;
        }
        let state = if state == CircuitState::HalfOpen {
            // Another instance probes: here it is open, as on every instance
            // but the prober.
            CircuitState::Open
        } else {
            state
        };
        if state == CircuitState::Open {
            let until = self.now_nanos().saturating_add(duration_nanos(open_for));
            self.timing.open_until.store(until, Ordering::Release);
        }
        self.timing
            .open
            .store(state == CircuitState::Open, Ordering::Release);
        let (generation, _) = self.load();
        self.word.store(
            Tagged::new(generation.wrapping_add(1), state.to_bits()).0,
            Ordering::Release,
        );
        crate::metrics::state(&self.name, state);
        tracing::info!(
            target: "resilience",
            breaker = &*self.name,
            state = state.as_str(),
            "circuit breaker `{}` starts {}: the fleet has it so",
            self.name,
            state.as_str(),
        );
    }
}
