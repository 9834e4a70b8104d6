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

mod call;
mod config;
mod event;
mod listeners;
mod permit;
mod reconfigure;
mod status;
mod window;

use std::sync::{Arc, PoisonError};
use std::time::Duration;

pub use config::{BreakerConfig, BreakerConfigBuilder, Window};
pub use event::{Transition, TransitionCause};
pub(crate) use listeners::{Listener, Listeners};
pub use permit::{Outcome, OwnedPermit, Permit};
pub use status::BreakerStatus;
use window::{Outcomes, Sample, Totals};

use crate::error::{Identity, OpenTiming, Owner};
use crate::live::Versions;
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Mutex, Ordering};
use crate::Error;
use resilience_spec::BreakerValues;

/// The error of the call whose outcome is being recorded, if it returned one
/// (carried by the transition it may cause).
type Cause<'a> = Option<&'a dyn std::fmt::Display>;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are rejected with [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen) until the recovery timeout
    /// has elapsed.
    Open,
    /// A limited number of probe calls run; their outcome closes or re-opens
    /// the circuit. Other calls are rejected.
    HalfOpen,
    /// Opened by hand ([`CircuitBreaker::force_open`]): every call is rejected
    /// until [`CircuitBreaker::reset`].
    ForcedOpen,
    /// Switched off by hand ([`CircuitBreaker::disable`]): every call runs and
    /// is counted, but the circuit never opens until [`CircuitBreaker::reset`].
    Disabled,
}

impl CircuitState {
    const fn to_bits(self) -> u32 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            CircuitState::ForcedOpen => 3,
            CircuitState::Disabled => 4,
        }
    }

    const fn from_bits(bits: u32) -> Self {
        match bits {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            3 => CircuitState::ForcedOpen,
            _ => CircuitState::Disabled,
        }
    }

    /// The state's name in lower snake case (`closed`, `open`, `half_open`,
    /// `forced_open`, `disabled`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
        }
    }

    /// Whether calls run and are counted (closed or disabled).
    const fn admits_all(self) -> bool {
        matches!(self, CircuitState::Closed | CircuitState::Disabled)
    }
}

/// Of [`CircuitBreaker::hot`]: calls are timed (a `slow_call` is set).
pub(crate) const TIMED: u8 = 1;
/// Of [`CircuitBreaker::hot`]: the trip rule counts in a window.
pub(crate) const WINDOWED: u8 = 2;
/// Of [`CircuitBreaker::hot`]: the fleet counts failures (`fleet_threshold`).
pub(crate) const FLEET: u8 = 4;

/// What the closed path needs of `config`, as [`CircuitBreaker::hot`] bits.
pub(crate) fn hot_bits(config: &BreakerConfig) -> u8 {
    let mut bits = 0;
    if config.slow_call().is_some() {
        bits |= TIMED;
    }
    if config.window().is_some() {
        bits |= WINDOWED;
    }
    if config.fleet_threshold().is_some() {
        bits |= FLEET;
    }
    bits
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
    /// The configuration in force (changed live by `reconfigure`).
    config: Versions<BreakerConfig>,
    /// What the closed path needs of the configuration in force, in one
    /// byte next to the state word: [`TIMED`], [`WINDOWED`], [`FLEET`].
    hot: AtomicU8,
    /// What its creator declared (what a configuration by name layers on,
    /// and what other call sites of the name are compared with).
    declared: BreakerConfig,
    /// `Tagged(generation, state bits)`.
    word: AtomicU64,
    /// Consecutive failures in the closed generation it is tagged with.
    failures: AtomicU64,
    /// The consecutive failures when the circuit last stopped admitting
    /// calls (written under the transition lock): what `status` shows while
    /// open, half-open or forced open.
    opened_with: AtomicU32,
    /// Probes in flight in the half-open generation it is tagged with.
    probes: AtomicU64,
    /// Probe successes in the half-open generation it is tagged with.
    successes: AtomicU64,
    /// When an open breaker lets a probe through, and the breaker's clock:
    /// shared with its errors, which read their `retry_after` from it.
    timing: Arc<OpenTiming>,
    /// What this breaker's errors refer to (one word, no reference count).
    identity: Identity,
    /// Consecutive failed probes since the circuit last closed.
    reopens: AtomicU32,
    /// Outcomes in the window, for windowed trip rules (a new window when
    /// `reconfigure` changes the trip rule).
    window: Versions<Option<Outcomes>>,
    /// Serialises transitions (never taken on the call path).
    transition: Mutex<()>,
    listeners: Listeners,
    registry_listeners: Option<Arc<Listeners>>,
    /// Shared through a fleet (feature `redis`) and connected: an open
    /// breaker whose time is up waits for the fleet's probe lease.
    fleet_gated: AtomicBool,
    /// `generation + 1` of the open state this instance may probe (0: none).
    probe_grant: AtomicU64,
    /// Failures not yet reported to the fleet (only with `fleet_threshold`):
    /// `Tagged(generation, FLEET_SUCCESS bit | failures since the last
    /// success)`, see `fleet.rs`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fleet_report: AtomicU64,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A new, closed breaker. It is not registered anywhere: use
    /// [`Registry::breaker`](crate::Registry::breaker) for a shared, named one.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        Self::with_listeners(name.into(), config, None)
    }

    pub(crate) fn with_listeners(
        name: Arc<str>,
        config: BreakerConfig,
        registry_listeners: Option<Arc<Listeners>>,
    ) -> Self {
        crate::metrics::state(&name, CircuitState::Closed);
        let timing = Arc::new(OpenTiming::new());
        let identity = Identity::register(name.clone(), Owner::Breaker(Arc::downgrade(&timing)));
        CircuitBreaker {
            timing,
            identity,
            name,
            config: Versions::new(config),
            hot: AtomicU8::new(hot_bits(&config)),
            declared: config,
            word: AtomicU64::new(Tagged::new(0, CircuitState::Closed.to_bits()).0),
            failures: AtomicU64::new(0),
            opened_with: AtomicU32::new(0),
            probes: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            reopens: AtomicU32::new(0),
            window: Versions::new(config.window().map(Outcomes::new)),
            transition: Mutex::new(()),
            listeners: Listeners::default(),
            registry_listeners,
            fleet_gated: AtomicBool::new(false),
            probe_grant: AtomicU64::new(0),
            fleet_report: AtomicU64::new(0),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's configuration in force (see [`reconfigure`](Self::reconfigure)).
    #[inline]
    pub fn config(&self) -> &BreakerConfig {
        self.config.get()
    }

    /// [`TIMED`], [`WINDOWED`] and [`FLEET`] of the configuration in force.
    #[inline(always)]
    pub(crate) fn hot(&self) -> u8 {
        self.hot.load(Ordering::Relaxed)
    }

    /// The keys its creator declared.
    pub(crate) fn declared(&self) -> &BreakerValues {
        self.declared.values_ref()
    }

    /// The configuration its creator declared.
    pub(crate) fn declared_config(&self) -> &BreakerConfig {
        &self.declared
    }

    /// Records what its creator declared, when a configuration by name made
    /// it with more.
    pub(crate) fn set_declared(&mut self, declared: BreakerConfig) {
        self.declared = declared;
    }

    /// The window of a windowed trip rule.
    #[inline]
    fn window(&self) -> Option<&Outcomes> {
        self.window.get().as_ref()
    }

    /// The current state.
    ///
    /// An open breaker whose recovery timeout has elapsed still reports
    /// [`CircuitState::Open`] until the next call turns it half-open;
    /// [`status`](Self::status) then shows a zero `retry_after`.
    pub fn state(&self) -> CircuitState {
        self.load().1
    }

    /// Calls `listener` on every transition of this breaker, after the
    /// transition happened (never on the call path of other calls). A
    /// listener that panics is logged and skipped.
    pub fn on_transition(&self, listener: impl Fn(&Transition) + Send + Sync + 'static) {
        self.listeners.add(Arc::new(listener));
    }

    /// Asks to run one call.
    ///
    /// Closed or disabled: always admitted. Open: rejected until the recovery
    /// timeout has elapsed; the first call after that turns the breaker
    /// half-open and becomes a probe. Half-open: admitted while fewer than
    /// `half_open_max_calls` probes are in flight. Forced open: rejected.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen) when the call must not run.
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
                CircuitState::Closed | CircuitState::Disabled => {
                    return Ok(Permit::new(self, generation, false))
                }
                CircuitState::ForcedOpen => return Err(self.rejection()),
                CircuitState::Open => {
                    let until = self.timing.open_until.load(Ordering::Acquire);
                    if self.timing.is_before(until) {
                        return Err(self.rejection());
                    }
                    if self.fleet_gated.load(Ordering::Acquire)
                        && self.probe_grant.load(Ordering::Acquire) != u64::from(generation) + 1
                    {
                        // Another instance of the fleet probes; wait for its verdict.
                        return Err(self.rejection());
                    }
                    self.transition_from(
                        generation,
                        CircuitState::Open,
                        CircuitState::HalfOpen,
                        TransitionCause::RecoveryTimeoutElapsed,
                        None,
                    );
                }
                CircuitState::HalfOpen => match self.take_probe_slot(generation) {
                    ProbeSlot::Taken => {
                        // The state may have moved on while we took the slot.
                        if self.load() == (generation, CircuitState::HalfOpen) {
                            return Ok(Permit::new(self, generation, true));
                        }
                        self.release_probe_slot(generation);
                    }
                    ProbeSlot::Stale => {} // look again
                    ProbeSlot::Full => return Err(self.rejection()),
                },
            }
            (generation, state) = self.load();
        }
    }

    /// Forgets all failures and closes the circuit (also ends
    /// [`force_open`](Self::force_open) and [`disable`](Self::disable)).
    pub fn reset(&self) {
        self.force(CircuitState::Closed, TransitionCause::Reset);
    }

    /// Opens the circuit until [`reset`](Self::reset): every call is
    /// rejected, with no probe.
    pub fn force_open(&self) {
        self.force(CircuitState::ForcedOpen, TransitionCause::ForcedOpen);
    }

    /// Lets every call through until [`reset`](Self::reset); outcomes are
    /// still counted (and reported), but the circuit never opens.
    pub fn disable(&self) {
        self.force(CircuitState::Disabled, TransitionCause::Disabled);
    }

    fn force(&self, to: CircuitState, cause: TransitionCause) {
        loop {
            let (generation, state) = self.load();
            if self.transition_from(generation, state, to, cause, None) {
                return;
            }
        }
    }

    /// A point-in-time view of the breaker.
    pub fn status(&self) -> BreakerStatus {
        let (generation, state) = self.load();
        let now = self.now_nanos();
        let retry_after = match state {
            CircuitState::Open => Some(Duration::from_nanos(
                self.timing
                    .open_until
                    .load(Ordering::Acquire)
                    .saturating_sub(now),
            )),
            _ => None,
        };
        let totals = self.window().map(|w| w.totals(now)).unwrap_or_default();
        BreakerStatus {
            name: self.name.clone(),
            state,
            consecutive_failures: if state.admits_all() {
                Tagged(self.failures.load(Ordering::Acquire)).value_in(generation)
            } else {
                // While open: the run of failures that opened it.
                self.opened_with.load(Ordering::Acquire)
            },
            window_calls: totals.calls,
            window_failures: totals.failures,
            window_slow_calls: totals.slow,
            probes_in_flight: Tagged(self.probes.load(Ordering::Acquire)).value_in(generation),
            probe_successes: Tagged(self.successes.load(Ordering::Acquire)).value_in(generation),
            failure_threshold: self.config().failure_threshold().get(),
            failure_rate: self.config().failure_rate(),
            window: self.config().window(),
            success_threshold: self.config().success_threshold().get(),
            half_open_max_calls: self.config().half_open_max_calls().get(),
            recovery_timeout: self.config().recovery_timeout(),
            current_open_time: self
                .config()
                .open_time(self.reopens.load(Ordering::Acquire)),
            retry_after,
            #[cfg(feature = "redis")]
            fleet: None,
        }
    }

    /// Closed with nothing counted: indistinguishable from a new breaker.
    pub(crate) fn is_pristine(&self) -> bool {
        let (generation, state) = self.load();
        state == CircuitState::Closed
            && Tagged(self.failures.load(Ordering::Acquire)).value_in(generation) == 0
            && self
                .window()
                .is_none_or(|w| w.totals(self.now_nanos()).failures == 0)
    }

    #[inline]
    fn load(&self) -> (u32, CircuitState) {
        let w = Tagged(self.word.load(Ordering::Acquire));
        (w.generation(), CircuitState::from_bits(w.value()))
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        self.timing.now_nanos()
    }

    /// Microseconds since the breaker was created (for timing calls).
    pub(crate) fn now_micros(&self) -> u64 {
        self.now_nanos() / 1000
    }

    /// The error this breaker's rejections produce (for tests comparing
    /// errors, through `__private`).
    pub(crate) fn rejection_error(&self) -> Error {
        Error::circuit_open(&self.identity)
    }

    /// The error of a rejected call: one word, naming this breaker; its
    /// `retry_after` is read from the breaker when asked.
    #[inline]
    fn rejection(&self) -> Error {
        crate::metrics::call(&self.name, "rejected", None);
        tracing::debug!(
            target: "resilience",
            breaker = &*self.name,
            "circuit breaker `{}` rejected a call",
            self.name
        );
        self.rejection_error()
    }

    /// Moves from `(generation, from)` to `to` if the breaker is still there;
    /// reports the transition to `tracing` and the listeners, with the error
    /// of the call that caused it, if any. Returns whether it happened.
    fn transition_from(
        &self,
        generation: u32,
        from: CircuitState,
        to: CircuitState,
        cause: TransitionCause,
        error: Cause<'_>,
    ) -> bool {
        let (failures, calls);
        {
            let _guard = self
                .transition
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.load() != (generation, from) {
                return false;
            }
            // The clock is read only when it matters: to open, or to total a
            // time window.
            let now = if to == CircuitState::Open || self.window().is_some_and(|w| w.is_timed()) {
                self.now_nanos()
            } else {
                0
            };
            // The run of consecutive failures this generation ends with (the
            // one that reached the threshold, even if a success landed since).
            let consecutive = match cause {
                TransitionCause::FailureThreshold { failures } => failures,
                _ => Tagged(self.failures.load(Ordering::Acquire)).value_in(generation),
            };
            if from.admits_all() && !to.admits_all() {
                self.opened_with.store(consecutive, Ordering::Release);
            }
            let totals = self.window().map(|w| w.totals(now));
            (failures, calls) = match totals {
                Some(t) => (t.failures, t.calls),
                None => (consecutive, 0),
            };
            match (from, to) {
                (_, CircuitState::Open) => {
                    let reopens = if from == CircuitState::HalfOpen {
                        self.reopens
                            .fetch_add(1, Ordering::AcqRel)
                            .saturating_add(1)
                    } else {
                        self.reopens.store(0, Ordering::Release);
                        0
                    };
                    let open_for = duration_nanos(self.config().open_time(reopens));
                    self.timing
                        .open_until
                        .store(now.saturating_add(open_for), Ordering::Release);
                }
                (_, CircuitState::Closed | CircuitState::Disabled) => {
                    self.reopens.store(0, Ordering::Release);
                    if let Some(w) = self.window() {
                        w.clear();
                    }
                }
                _ => {}
            }
            self.timing
                .open
                .store(to == CircuitState::Open, Ordering::Release);
            self.word.store(
                Tagged::new(generation.wrapping_add(1), to.to_bits()).0,
                Ordering::Release,
            );
        }
        if from != to {
            let transition = Transition {
                name: self.name.clone(),
                from,
                to,
                cause,
                failures,
                calls,
                // The error's text is written only for listeners to read:
                // with none, a transition allocates nothing.
                error: error
                    .filter(|_| {
                        self.listeners.any()
                            || self.registry_listeners.as_ref().is_some_and(|l| l.any())
                    })
                    .map(|e| Arc::from(e.to_string())),
            };
            transition.emit();
            crate::metrics::transition(&self.name, from, to);
            self.listeners.notify(&transition);
            if let Some(registry) = &self.registry_listeners {
                registry.notify(&transition);
            }
        }
        true
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(feature = "redis")]
mod fleet;
// Two attributes, not `cfg(all(test, …))`: cargo-mutants skips a module
// only when it sees a plain `#[cfg(test)]`.
#[cfg(test)]
#[cfg(feature = "redis")]
mod fleet_tests;
mod record;
use record::ProbeSlot;

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
