//! Circuit breakers: a lock-free state machine shared by every caller of a name.
//!
//! # The state machine
//!
//! ```text
//!            failure_threshold consecutive failures
//!   Closed ─────────────────────────────────────────▶ Open
//!     ▲                                               │  recovery_timeout elapsed,
//!     │ success_threshold probe successes             │  next call becomes a probe
//!     │                                               ▼
//!     └──────────────────────────────────────────── HalfOpen ──▶ Open (a probe failed)
//! ```
//!
//! # How it is stored
//!
//! The state and a *generation* number share one `AtomicU64`; every transition
//! bumps the generation. The counters (consecutive failures, probes in flight,
//! probe successes) each live in an `AtomicU64` tagged with the generation they
//! belong to, so a counter left over from an older generation reads as zero and
//! never needs resetting. Every admitted call holds a [`Permit`] carrying the
//! generation it was admitted in; an outcome from an older generation is ignored.
//!
//! A call in the closed state with no failures pending costs two atomic loads:
//! one to admit, one to see there is nothing to reset. No write, no lock, no
//! clock read. Transitions (rare) take a mutex so that "check the state, set the
//! open-until time, publish the new state" happens as one step.

mod config;
mod event;
mod permit;
mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use config::{BreakerConfig, BreakerConfigBuilder, ConfigError};
pub use event::{Transition, TransitionCause};
pub use permit::{Outcome, Permit};
pub use status::BreakerStatus;

use crate::Error;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls run; consecutive failures are counted.
    Closed,
    /// Calls are rejected with [`Error::CircuitOpen`] until the recovery timeout
    /// has elapsed.
    Open,
    /// A limited number of probe calls run; their outcome closes or re-opens
    /// the circuit. Other calls are rejected.
    HalfOpen,
}

impl CircuitState {
    const fn to_bits(self) -> u64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    const fn from_bits(bits: u64) -> Self {
        match bits {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    /// The state's name in lower snake case (`closed`, `open`, `half_open`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A generation-tagged word: generation in the high 32 bits, a value in the low.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Tagged(u64);

impl Tagged {
    const fn new(generation: u32, value: u32) -> Self {
        Tagged(((generation as u64) << 32) | value as u64)
    }
    const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    const fn value(self) -> u32 {
        self.0 as u32
    }
    /// The value if it belongs to `generation`, else zero.
    const fn value_in(self, generation: u32) -> u32 {
        if self.generation() == generation {
            self.value()
        } else {
            0
        }
    }
}

/// A circuit breaker: counts failures of the calls it admits and, past a
/// threshold, rejects calls for a while so a failing dependency can recover.
///
/// Usually reached through the attribute macros or [`registry()`](crate::registry);
/// it can also be driven by hand:
///
/// ```
/// use resilience::{BreakerConfig, CircuitBreaker, CircuitState, Outcome};
///
/// let breaker = CircuitBreaker::new("payments", BreakerConfig::DEFAULT);
/// let permit = breaker.try_acquire()?;   // Err(CircuitOpen) when open
/// let result: Result<u32, &str> = Ok(7); // ...the protected call...
/// permit.record(Outcome::of(&result));
/// assert_eq!(breaker.state(), CircuitState::Closed);
/// # Ok::<(), resilience::Error>(())
/// ```
pub struct CircuitBreaker {
    name: Arc<str>,
    config: BreakerConfig,
    /// `Tagged(generation, state bits)`.
    word: AtomicU64,
    /// Consecutive failures in the closed generation it is tagged with.
    failures: AtomicU64,
    /// Probes in flight in the half-open generation it is tagged with.
    probes: AtomicU64,
    /// Probe successes in the half-open generation it is tagged with.
    successes: AtomicU64,
    /// While open: nanoseconds after `epoch` when a probe may run.
    open_until: AtomicU64,
    epoch: Instant,
    /// Serialises transitions (never taken on the call path).
    transition: Mutex<()>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A new, closed breaker. It is not registered anywhere: use
    /// [`Registry::breaker`](crate::Registry::breaker) for a shared, named one.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        CircuitBreaker {
            name: name.into(),
            config,
            word: AtomicU64::new(Tagged::new(0, CircuitState::Closed.to_bits() as u32).0),
            failures: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            epoch: Instant::now(),
            transition: Mutex::new(()),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state.
    ///
    /// An open breaker whose recovery timeout has elapsed still reports
    /// [`CircuitState::Open`] until the next call turns it half-open;
    /// [`status`](Self::status) then shows a zero `retry_after`.
    pub fn state(&self) -> CircuitState {
        self.load().1
    }

    /// Asks to run one call.
    ///
    /// Closed: always admitted. Open: rejected until the recovery timeout has
    /// elapsed; the first call after that turns the breaker half-open and becomes
    /// a probe. Half-open: admitted while fewer than `half_open_max_calls` probes
    /// are in flight.
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`] when the call must not run.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Error> {
        let (generation, state) = self.load();
        if state == CircuitState::Closed {
            return Ok(Permit::new(self, generation, false));
        }
        self.try_acquire_slow(generation, state)
    }

    #[cold]
    fn try_acquire_slow(&self, generation: u32, state: CircuitState) -> Result<Permit<'_>, Error> {
        let (mut generation, mut state) = (generation, state);
        loop {
            match state {
                CircuitState::Closed => return Ok(Permit::new(self, generation, false)),
                CircuitState::Open => {
                    let now = self.now_nanos();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(self.rejection(Some(Duration::from_nanos(until - now))));
                    }
                    self.transition_from(
                        generation,
                        CircuitState::Open,
                        CircuitState::HalfOpen,
                        TransitionCause::RecoveryTimeoutElapsed,
                    );
                }
                CircuitState::HalfOpen => {
                    if self.take_probe_slot(generation) {
                        // The state may have moved on while we took the slot.
                        if self.load() == (generation, CircuitState::HalfOpen) {
                            return Ok(Permit::new(self, generation, true));
                        }
                        self.release_probe_slot(generation);
                    } else {
                        return Err(self.rejection(None));
                    }
                }
            }
            (generation, state) = self.load();
        }
    }

    /// Forgets all failures and closes the circuit.
    pub fn reset(&self) {
        let (generation, state) = self.load();
        self.transition_from(
            generation,
            state,
            CircuitState::Closed,
            TransitionCause::Reset,
        );
    }

    /// A point-in-time view of the breaker.
    pub fn status(&self) -> BreakerStatus {
        let (generation, state) = self.load();
        let retry_after = match state {
            CircuitState::Open => Some(Duration::from_nanos(
                self.open_until
                    .load(Ordering::Acquire)
                    .saturating_sub(self.now_nanos()),
            )),
            _ => None,
        };
        BreakerStatus {
            name: self.name.clone(),
            state,
            consecutive_failures: Tagged(self.failures.load(Ordering::Acquire))
                .value_in(generation),
            probes_in_flight: Tagged(self.probes.load(Ordering::Acquire)).value_in(generation),
            probe_successes: Tagged(self.successes.load(Ordering::Acquire)).value_in(generation),
            failure_threshold: self.config.failure_threshold().get(),
            success_threshold: self.config.success_threshold().get(),
            half_open_max_calls: self.config.half_open_max_calls().get(),
            recovery_timeout: self.config.recovery_timeout(),
            retry_after,
        }
    }

    #[inline]
    fn load(&self) -> (u32, CircuitState) {
        let w = Tagged(self.word.load(Ordering::Acquire));
        (
            w.generation(),
            CircuitState::from_bits(u64::from(w.value())),
        )
    }

    fn now_nanos(&self) -> u64 {
        let since = Instant::now().saturating_duration_since(self.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn rejection(&self, retry_after: Option<Duration>) -> Error {
        tracing::debug!(
            target: "resilience",
            breaker = &*self.name,
            ?retry_after,
            "circuit breaker `{}` rejected a call",
            self.name
        );
        Error::CircuitOpen {
            name: self.name.clone(),
            retry_after,
        }
    }

    // ---- outcomes (called by `Permit`) ----

    #[inline]
    fn on_closed_success(&self, generation: u32) {
        let f = Tagged(self.failures.load(Ordering::Relaxed));
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

    fn on_closed_failure(&self, generation: u32) {
        let mut current = self.failures.load(Ordering::Relaxed);
        loop {
            if self.load() != (generation, CircuitState::Closed) {
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
                    if count >= self.config.failure_threshold().get() {
                        self.transition_from(
                            generation,
                            CircuitState::Closed,
                            CircuitState::Open,
                            TransitionCause::FailureThreshold { failures: count },
                        );
                    }
                    return;
                }
                Err(actual) => current = actual,
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
                    if count >= self.config.success_threshold().get() {
                        self.transition_from(
                            generation,
                            CircuitState::HalfOpen,
                            CircuitState::Closed,
                            TransitionCause::ProbesSucceeded { successes: count },
                        );
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn on_probe_failure(&self, generation: u32) {
        self.transition_from(
            generation,
            CircuitState::HalfOpen,
            CircuitState::Open,
            TransitionCause::ProbeFailed,
        );
    }

    /// Takes one of the half-open generation's probe slots, if one is free.
    fn take_probe_slot(&self, generation: u32) -> bool {
        let max = self.config.half_open_max_calls().get();
        let mut current = self.probes.load(Ordering::Relaxed);
        loop {
            let in_flight = Tagged(current).value_in(generation);
            if in_flight >= max {
                return false;
            }
            match self.probes.compare_exchange_weak(
                current,
                Tagged::new(generation, in_flight + 1).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives a probe slot back, unless its generation is already over.
    fn release_probe_slot(&self, generation: u32) {
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

    /// Moves from `(generation, from)` to `to` if the breaker is still there;
    /// reports the transition. Returns whether it happened.
    fn transition_from(
        &self,
        generation: u32,
        from: CircuitState,
        to: CircuitState,
        cause: TransitionCause,
    ) -> bool {
        {
            let _guard = self
                .transition
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.load() != (generation, from) {
                return false;
            }
            if to == CircuitState::Open {
                let until = self
                    .now_nanos()
                    .saturating_add(duration_nanos(self.config.recovery_timeout()));
                self.open_until.store(until, Ordering::Release);
            }
            let next = generation.wrapping_add(1);
            self.word
                .store(Tagged::new(next, to.to_bits() as u32).0, Ordering::Release);
        }
        if from != to {
            Transition {
                name: self.name.clone(),
                from,
                to,
                cause,
            }
            .emit();
        }
        true
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
