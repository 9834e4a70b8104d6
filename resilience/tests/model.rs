//! Model-based property tests of the circuit breaker.
//!
//! Random sequences of operations run against the real [`CircuitBreaker`] on
//! tokio's paused clock and, step by step, against [`Model`]: a small,
//! sequential, obviously correct description of what the breaker promises.
//! After every step every observable must agree: `state()`, the result of
//! every `try_acquire()` (admitted or not, probe or not, `retry_after`), every
//! field of `status()` that the model knows, and the transitions reported to
//! `on_transition` (from, to, cause, failures, calls). A failure is shrunk by
//! proptest to a minimal configuration and sequence of operations.
//!
//! The operations: whole calls (success, failure, ignored error, timeout) by
//! hand and through `__private::breaker_call` (the attribute macros' path),
//! a panicking body (caught: `breaker_call` must record a failure and keep the
//! panic unwinding, so the model records a failure), a body cut by
//! `__private::timeout` (the paused clock moves by the timeout), calls started
//! and finished later in any order (concurrent probes), cancelled calls (a
//! permit dropped without an outcome), time advancing (from nothing to a
//! thousand years, past what `u64` nanoseconds hold), and `reset`,
//! `force_open`, `disable`.
//!
//! Two trip rules are modelled: consecutive failures, and a window of the
//! last N calls (a failure count or a failure rate). Run more cases with
//! `PROPTEST_CASES=10000 cargo test -p resilience --test model`.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures::FutureExt;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use resilience::__private::{breaker_call, converter, every_error_fails, timeout, Flags};
use resilience::{
    BreakerConfig, CircuitBreaker, CircuitState, Error, Outcome, Permit, TransitionCause, Window,
};

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// How an admitted call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Success,
    Failure,
    Ignored,
    /// `Permit::record_timeout`: a failure reported as a timeout.
    Timeout,
}

impl Verdict {
    fn outcome(self) -> Outcome {
        match self {
            Verdict::Success => Outcome::Success,
            Verdict::Failure | Verdict::Timeout => Outcome::Failure,
            Verdict::Ignored => Outcome::Ignored,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// `try_acquire`, then record at once.
    Call(Verdict),
    /// A whole call through `breaker_call` whose body returns `Ok`, a failing
    /// error or an error the classifier ignores.
    Wrapped(Outcome),
    /// A call through `breaker_call` whose body panics.
    Panic,
    /// A call through `breaker_call` around `__private::timeout` whose body
    /// never finishes: the paused clock jumps by the timeout, then the call
    /// is recorded as a timed-out failure.
    TimedOut(Duration),
    /// `try_acquire` and keep the permit: a call in flight.
    Start,
    /// Record the outcome of the held permit at this index (modulo).
    Finish(usize, Verdict),
    /// Drop the held permit at this index without an outcome (cancelled).
    Cancel(usize),
    Advance(Duration),
    Reset,
    ForceOpen,
    Disable,
}

// ---------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// `failure_threshold` consecutive failures.
    Consecutive,
    /// `failure_threshold` failures within the last `window` calls.
    Count { window: u32 },
    /// A failure rate over the last `window` calls, from `min_calls` on.
    Rate {
        window: u32,
        rate: f64,
        min_calls: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Params {
    rule: Rule,
    failure_threshold: u32,
    recovery: Duration,
    recovery_max: Option<Duration>,
    success_threshold: u32,
    half_open_max_calls: u32,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

impl Params {
    fn config(&self) -> BreakerConfig {
        let mut b = BreakerConfig::builder()
            .recovery_timeout(self.recovery)
            .success_threshold(self.success_threshold)
            .half_open_max_calls(self.half_open_max_calls);
        match self.rule {
            Rule::Consecutive => b = b.failure_threshold(self.failure_threshold),
            Rule::Count { window } => {
                b = b
                    .failure_threshold(self.failure_threshold)
                    .window(Window::Calls(nz(window)));
            }
            Rule::Rate {
                window,
                rate,
                min_calls,
            } => {
                b = b
                    .failure_rate(rate)
                    .min_calls(min_calls)
                    .window(Window::Calls(nz(window)));
            }
        }
        if let Some(max) = self.recovery_max {
            b = b.recovery_timeout_max(max);
        }
        b.build().expect("the strategy builds valid configurations")
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const YEAR: u64 = 365 * 24 * 3600;

fn common() -> impl Strategy<Value = (Duration, Option<Duration>, u32, u32)> {
    (
        1..=4u64,
        prop_oneof![2 => Just(None), 1 => (1..=8u64).prop_map(Some)],
        1..=3u32,
        1..=3u32,
    )
        .prop_map(|(recovery, max_factor, successes, probes)| {
            (
                secs(recovery),
                max_factor.map(|f| secs(recovery * f)),
                successes,
                probes,
            )
        })
}

fn consecutive_params() -> impl Strategy<Value = Params> {
    (1..=4u32, common()).prop_map(
        |(failure_threshold, (recovery, recovery_max, s, p))| Params {
            rule: Rule::Consecutive,
            failure_threshold,
            recovery,
            recovery_max,
            success_threshold: s,
            half_open_max_calls: p,
        },
    )
}

fn windowed_params() -> impl Strategy<Value = Params> {
    let rule = (1..=6u32).prop_flat_map(|window| {
        prop_oneof![
            (1..=window).prop_map(move |threshold| (Rule::Count { window }, threshold)),
            (prop::sample::select(vec![0.25, 0.5, 0.75, 1.0]), 1..=window).prop_map(
                move |(rate, min_calls)| (
                    Rule::Rate {
                        window,
                        rate,
                        min_calls
                    },
                    5
                )
            ),
        ]
    });
    (rule, common()).prop_map(
        |((rule, failure_threshold), (recovery, recovery_max, s, p))| Params {
            rule,
            failure_threshold,
            recovery,
            recovery_max,
            success_threshold: s,
            half_open_max_calls: p,
        },
    )
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        3 => Just(Verdict::Success),
        3 => Just(Verdict::Failure),
        1 => Just(Verdict::Ignored),
        1 => Just(Verdict::Timeout),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Ignored)
    ]
}

fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        // Whole seconds hit the recovery timeouts (whole seconds) exactly.
        8 => (0..=5u64).prop_map(secs),
        3 => (1..=2_000u64).prop_map(Duration::from_millis),
        1 => Just(Duration::from_nanos(1)),
        // A clock that jumps by a century, or past what u64 nanoseconds hold.
        1 => Just(secs(100 * YEAR)),
        1 => Just(secs(1000 * YEAR)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => verdict().prop_map(Op::Call),
        2 => outcome().prop_map(Op::Wrapped),
        1 => Just(Op::Panic),
        1 => (1..=3u64).prop_map(|s| Op::TimedOut(secs(s))),
        3 => Just(Op::Start),
        3 => (0..4usize, verdict()).prop_map(|(i, v)| Op::Finish(i, v)),
        1 => (0..4usize).prop_map(Op::Cancel),
        5 => advance().prop_map(Op::Advance),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
    ]
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

/// A transition as `on_transition` reports it.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    from: CircuitState,
    to: CircuitState,
    cause: TransitionCause,
    failures: u32,
    calls: u32,
}

/// What the model remembers of an admitted call.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    /// The number of transitions before it was admitted: its outcome counts
    /// only if none happened since.
    era: u64,
    probe: bool,
}

/// The breaker as a plain sequential state machine. Every transition starts
/// a new era; a call's outcome counts only in the era that admitted it.
#[derive(Debug)]
struct Model {
    p: Params,
    /// Nanoseconds since the breaker was created, saturating (as the breaker
    /// reads its clock).
    now: u64,
    era: u64,
    state: CircuitState,
    /// Consecutive failures in the current closed (or disabled) period.
    run: u32,
    /// The run when the circuit last stopped admitting calls: what
    /// `consecutive_failures` shows while open, half-open or forced open.
    opened_with: u32,
    /// The last calls (true: failed) of windowed rules.
    window: VecDeque<bool>,
    probes: u32,
    successes: u32,
    open_until: u64,
    reopens: u32,
    events: Vec<Event>,
}

fn admits_all(state: CircuitState) -> bool {
    matches!(state, CircuitState::Closed | CircuitState::Disabled)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Model {
    fn new(p: Params) -> Self {
        Model {
            p,
            now: 0,
            era: 0,
            state: CircuitState::Closed,
            run: 0,
            opened_with: 0,
            window: VecDeque::new(),
            probes: 0,
            successes: 0,
            open_until: 0,
            reopens: 0,
            events: Vec::new(),
        }
    }

    fn windowed(&self) -> bool {
        self.p.rule != Rule::Consecutive
    }

    fn window_failures(&self) -> u32 {
        self.window.iter().filter(|f| **f).count() as u32
    }

    /// `recovery_timeout`, doubled per consecutive failed probe up to
    /// `recovery_timeout_max` when that is set.
    fn open_time(&self, reopens: u32) -> Duration {
        match self.p.recovery_max {
            None => self.p.recovery,
            Some(max) => self
                .p
                .recovery
                .saturating_mul(1u32 << reopens.min(31))
                .min(max),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(nanos(d));
    }

    fn transition(&mut self, to: CircuitState, cause: TransitionCause) {
        let from = self.state;
        let (failures, calls) = if self.windowed() {
            (self.window_failures(), self.window.len() as u32)
        } else if admits_all(from) {
            (self.run, 0)
        } else {
            (0, 0)
        };
        if admits_all(from) && !admits_all(to) {
            self.opened_with = self.run;
        }
        match to {
            CircuitState::Open => {
                self.reopens = if from == CircuitState::HalfOpen {
                    self.reopens + 1
                } else {
                    0
                };
                self.open_until = self.now.saturating_add(nanos(self.open_time(self.reopens)));
            }
            CircuitState::Closed | CircuitState::Disabled => {
                self.reopens = 0;
                self.run = 0;
                self.window.clear();
            }
            _ => {}
        }
        self.era += 1;
        self.probes = 0;
        self.successes = 0;
        self.state = to;
        if from != to {
            self.events.push(Event {
                from,
                to,
                cause,
                failures,
                calls,
            });
        }
    }

    fn try_acquire(&mut self) -> Result<Ticket, Option<Duration>> {
        loop {
            match self.state {
                CircuitState::Closed | CircuitState::Disabled => {
                    return Ok(Ticket {
                        era: self.era,
                        probe: false,
                    })
                }
                CircuitState::Open if self.now < self.open_until => {
                    return Err(Some(Duration::from_nanos(self.open_until - self.now)))
                }
                CircuitState::Open => self.transition(
                    CircuitState::HalfOpen,
                    TransitionCause::RecoveryTimeoutElapsed,
                ),
                CircuitState::HalfOpen if self.probes < self.p.half_open_max_calls => {
                    self.probes += 1;
                    return Ok(Ticket {
                        era: self.era,
                        probe: true,
                    });
                }
                _ => return Err(None),
            }
        }
    }

    /// A call that never records: frees its probe slot if its era is current.
    fn release(&mut self, t: Ticket) {
        if t.probe && t.era == self.era {
            self.probes -= 1;
        }
    }

    fn record(&mut self, t: Ticket, outcome: Outcome) {
        let current = t.era == self.era;
        if t.probe {
            match outcome {
                Outcome::Success if current => {
                    self.successes += 1;
                    if self.successes >= self.p.success_threshold {
                        let successes = self.successes;
                        self.transition(
                            CircuitState::Closed,
                            TransitionCause::ProbesSucceeded { successes },
                        );
                    }
                }
                Outcome::Failure if current => {
                    self.transition(CircuitState::Open, TransitionCause::ProbeFailed)
                }
                _ => {}
            }
            self.release(t);
            return;
        }
        if !current || outcome == Outcome::Ignored {
            return;
        }
        let failed = outcome == Outcome::Failure;
        let cause = match self.p.rule {
            Rule::Consecutive => {
                self.run = if failed {
                    self.run.saturating_add(1)
                } else {
                    0
                };
                (self.run >= self.p.failure_threshold)
                    .then_some(TransitionCause::FailureThreshold { failures: self.run })
            }
            Rule::Count { window } | Rule::Rate { window, .. } => {
                self.window.push_back(failed);
                if self.window.len() > window as usize {
                    self.window.pop_front();
                }
                let (failures, calls) = (self.window_failures(), self.window.len() as u32);
                match self.p.rule {
                    Rule::Rate {
                        rate, min_calls, ..
                    } => (calls >= min_calls
                        && failures > 0
                        && f64::from(failures) >= rate * f64::from(calls))
                    .then_some(TransitionCause::FailureRate { failures, calls }),
                    _ => (failures >= self.p.failure_threshold)
                        .then_some(TransitionCause::FailuresInWindow { failures, calls }),
                }
            }
        };
        if let (Some(cause), CircuitState::Closed) = (cause, self.state) {
            self.transition(CircuitState::Open, cause);
        }
    }

    fn observed(&self) -> Observed {
        Observed {
            state: self.state,
            consecutive_failures: if admits_all(self.state) {
                self.run
            } else {
                self.opened_with
            },
            window_calls: self.window.len() as u32,
            window_failures: self.window_failures(),
            window_slow_calls: 0,
            probes_in_flight: self.probes,
            probe_successes: self.successes,
            current_open_time: self.open_time(self.reopens),
            retry_after: (self.state == CircuitState::Open)
                .then(|| Duration::from_nanos(self.open_until.saturating_sub(self.now))),
        }
    }
}

/// Everything `state()` and `status()` show that the model knows.
#[derive(Debug, PartialEq)]
struct Observed {
    state: CircuitState,
    consecutive_failures: u32,
    window_calls: u32,
    window_failures: u32,
    window_slow_calls: u32,
    probes_in_flight: u32,
    probe_successes: u32,
    current_open_time: Duration,
    retry_after: Option<Duration>,
}

fn observe(b: &CircuitBreaker) -> Observed {
    let s = b.status();
    assert_eq!(s.state, b.state(), "state() and status() agree");
    Observed {
        state: s.state,
        consecutive_failures: s.consecutive_failures,
        window_calls: s.window_calls,
        window_failures: s.window_failures,
        window_slow_calls: s.window_slow_calls,
        probes_in_flight: s.probes_in_flight,
        probe_successes: s.probe_successes,
        current_open_time: s.current_open_time,
        retry_after: s.retry_after,
    }
}

// ---------------------------------------------------------------------------
// Running a sequence against both
// ---------------------------------------------------------------------------

/// The payload of the bodies that panic on purpose (kept out of the output).
struct ModelPanic;

fn quiet_model_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ModelPanic>() {
                default(info);
            }
        }));
    });
}

/// The error of wrapped bodies.
#[derive(Debug)]
enum WrapError {
    Fails,
    Ignored,
    Layer(Error),
}

impl From<Error> for WrapError {
    fn from(e: Error) -> Self {
        WrapError::Layer(e)
    }
}

fn classify(e: &WrapError) -> Outcome {
    match e {
        WrapError::Ignored => Outcome::Ignored,
        _ => Outcome::Failure,
    }
}

/// Compares one admission decision; `Ok(true)` when both admitted.
fn same_admission<T>(
    real: &Result<T, Error>,
    is_probe: impl Fn(&T) -> bool,
    model: &Result<Ticket, Option<Duration>>,
) -> Result<(), TestCaseError> {
    match (real, model) {
        (Ok(permit), Ok(ticket)) => {
            prop_assert_eq!(is_probe(permit), ticket.probe, "probe or not");
        }
        (Err(e), Err(expected)) if e.is_circuit_open() => {
            prop_assert_eq!(e.retry_after(), *expected, "retry_after of a rejection");
        }
        (Ok(_), Err(expected)) => {
            return Err(TestCaseError::fail(format!(
                "admitted; the model rejects with retry_after {expected:?}"
            )))
        }
        (Err(e), Ok(ticket)) => {
            return Err(TestCaseError::fail(format!(
                "rejected ({e}); the model admits {ticket:?}"
            )))
        }
        (Err(e), Err(_)) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn check(params: Params, ops: &[Op]) -> Result<(), TestCaseError> {
    quiet_model_panics();
    runtime().block_on(check_async(params, ops))
}

async fn check_async(params: Params, ops: &[Op]) -> Result<(), TestCaseError> {
    let breaker = CircuitBreaker::new("model", params.config());
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    breaker.on_transition(move |t| {
        sink.lock().unwrap().push(Event {
            from: t.from,
            to: t.to,
            cause: t.cause,
            failures: t.failures,
            calls: t.calls,
        });
    });
    let mut model = Model::new(params);
    let mut held: Vec<(Permit<'_>, Ticket)> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        apply(&breaker, &mut model, &mut held, op)
            .await
            .map_err(|e| TestCaseError::fail(format!("step {step} ({op:?}): {e}")))?;
        compare(&breaker, &mut model, &events)
            .map_err(|e| TestCaseError::fail(format!("after step {step} ({op:?}): {e}")))?;
    }
    // Whatever is still in flight is cancelled: every probe slot comes back.
    while let Some((permit, ticket)) = held.pop() {
        drop(permit);
        model.release(ticket);
        compare(&breaker, &mut model, &events)
            .map_err(|e| TestCaseError::fail(format!("after the final cancellations: {e}")))?;
    }
    prop_assert_eq!(breaker.status().probes_in_flight, 0);
    Ok(())
}

fn compare(
    breaker: &CircuitBreaker,
    model: &mut Model,
    events: &Mutex<Vec<Event>>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(observe(breaker), model.observed());
    let seen = std::mem::take(&mut *events.lock().unwrap());
    let expected = std::mem::take(&mut model.events);
    prop_assert_eq!(seen, expected, "transitions");
    Ok(())
}

async fn apply<'b>(
    breaker: &'b CircuitBreaker,
    model: &mut Model,
    held: &mut Vec<(Permit<'b>, Ticket)>,
    op: &Op,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Call(verdict) => {
            let real = breaker.try_acquire();
            let expected = model.try_acquire();
            same_admission(&real, Permit::is_probe, &expected)?;
            if let (Ok(permit), Ok(ticket)) = (real, expected) {
                finish(permit, verdict);
                model.record(ticket, verdict.outcome());
            }
        }
        Op::Wrapped(outcome) => {
            let flags = Flags::new();
            let body = async move {
                match outcome {
                    Outcome::Success => Ok(()),
                    Outcome::Failure => Err(WrapError::Fails),
                    Outcome::Ignored => Err(WrapError::Ignored),
                }
            };
            let result = breaker_call(breaker, &flags, body, classify, converter()).await;
            let expected = model.try_acquire();
            match (result, expected) {
                (Err(WrapError::Layer(e)), expected) => {
                    same_admission::<()>(&Err(e), |_| false, &expected)?
                }
                (result, Ok(ticket)) => {
                    let got = match result {
                        Ok(()) => Outcome::Success,
                        Err(e) => classify(&e),
                    };
                    prop_assert_eq!(got, outcome, "the body's result is returned as is");
                    model.record(ticket, outcome);
                }
                (_, Err(retry_after)) => {
                    return Err(TestCaseError::fail(format!(
                        "the body ran; the model rejects with retry_after {retry_after:?}"
                    )))
                }
            }
        }
        Op::Panic => {
            let flags = Flags::new();
            let body = async {
                if std::hint::black_box(true) {
                    std::panic::panic_any(ModelPanic);
                }
                Ok::<(), Error>(())
            };
            let call = breaker_call(breaker, &flags, body, every_error_fails, converter());
            let result = AssertUnwindSafe(call).catch_unwind().await;
            let expected = model.try_acquire();
            match (result, expected) {
                (Err(payload), Ok(ticket)) => {
                    prop_assert!(payload.is::<ModelPanic>(), "the body's panic unwinds");
                    model.record(ticket, Outcome::Failure);
                }
                (Ok(result), expected) => {
                    same_admission(&result, |_| false, &expected)?;
                    prop_assert!(expected.is_err(), "no panic although the body ran");
                }
                (Err(_), Err(retry_after)) => {
                    return Err(TestCaseError::fail(format!(
                        "the body ran; the model rejects with retry_after {retry_after:?}"
                    )))
                }
            }
        }
        Op::TimedOut(after) => {
            let flags = Flags::new();
            let body = timeout(
                after,
                &flags,
                std::future::pending::<Result<(), Error>>(),
                converter(),
            );
            let started = tokio::time::Instant::now();
            let result = breaker_call(breaker, &flags, body, every_error_fails, converter()).await;
            let expected = model.try_acquire();
            match (result, expected) {
                (Err(e), Ok(ticket)) if e.is_timeout() => {
                    prop_assert_eq!(e.timeout_after(), Some(after));
                    // tokio's timers tick in milliseconds: the deadline is
                    // rounded up to the next one.
                    let elapsed = started.elapsed();
                    prop_assert!(
                        elapsed >= after && elapsed <= after + Duration::from_millis(1),
                        "the paused clock jumped by the timeout, not {elapsed:?}"
                    );
                    model.advance(elapsed);
                    model.record(ticket, Outcome::Failure);
                }
                (result, expected) => same_admission(&result, |_| false, &expected)?,
            }
        }
        Op::Start => {
            let real = breaker.try_acquire();
            let expected = model.try_acquire();
            same_admission(&real, Permit::is_probe, &expected)?;
            if let (Ok(permit), Ok(ticket)) = (real, expected) {
                held.push((permit, ticket));
            }
        }
        Op::Finish(i, verdict) => {
            if !held.is_empty() {
                let (permit, ticket) = held.remove(i % held.len());
                finish(permit, verdict);
                model.record(ticket, verdict.outcome());
            }
        }
        Op::Cancel(i) => {
            if !held.is_empty() {
                let (permit, ticket) = held.remove(i % held.len());
                drop(permit);
                model.release(ticket);
            }
        }
        Op::Advance(d) => {
            tokio::time::advance(d).await;
            model.advance(d);
        }
        Op::Reset => {
            breaker.reset();
            model.transition(CircuitState::Closed, TransitionCause::Reset);
        }
        Op::ForceOpen => {
            breaker.force_open();
            model.transition(CircuitState::ForcedOpen, TransitionCause::ForcedOpen);
        }
        Op::Disable => {
            breaker.disable();
            model.transition(CircuitState::Disabled, TransitionCause::Disabled);
        }
    }
    Ok(())
}

fn finish(permit: Permit<'_>, verdict: Verdict) {
    match verdict {
        Verdict::Timeout => permit.record_timeout(),
        v => permit.record(v.outcome()),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // The minimal failing input is printed; no regression files beside
        // the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn consecutive_breaker_matches_the_model(
        params in consecutive_params(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        check(params, &ops)?;
    }

    #[test]
    fn count_window_breaker_matches_the_model(
        params in windowed_params(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        check(params, &ops)?;
    }
}

// ---------------------------------------------------------------------------
// Extreme values: saturate, never overflow; a clock that stands still or
// jumps by centuries never panics
// ---------------------------------------------------------------------------

fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").record(Outcome::Failure);
}

#[tokio::test(start_paused = true)]
async fn the_longest_recovery_timeout_saturates_the_clock() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::MAX)
        .recovery_timeout_max(Duration::MAX)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("forever", config);
    fail(&b);
    let retry_after = b.status().retry_after.unwrap();
    assert_eq!(
        retry_after,
        Duration::from_nanos(u64::MAX),
        "saturated, not wrapped"
    );
    assert!(matches!(
        b.try_acquire(),
        Err(e) if e.retry_after() == Some(retry_after)
    ));
    assert_eq!(b.status().current_open_time, Duration::MAX);
    // A century later: still open, the wait shrank by a century.
    tokio::time::advance(secs(100 * YEAR)).await;
    assert_eq!(
        b.status().retry_after,
        Some(Duration::from_nanos(u64::MAX) - secs(100 * YEAR))
    );
    assert!(b.try_acquire().is_err());
    // Past what u64 nanoseconds hold (584 years), time stops at the end of
    // the scale, which is where the circuit was due: it probes.
    tokio::time::advance(secs(1000 * YEAR)).await;
    assert_eq!(b.status().retry_after, Some(Duration::ZERO));
    let probe = b.try_acquire().expect("due at the end of time");
    probe.record(Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
    tokio::time::advance(secs(1000 * YEAR)).await;
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn doubling_open_times_saturate() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_nanos(1))
        .recovery_timeout_max(Duration::MAX)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("doubling", config);
    fail(&b);
    let mut previous = Duration::ZERO;
    for reopens in 0..70u32 {
        let open_time = b.status().current_open_time;
        assert_eq!(
            open_time,
            Duration::from_nanos(1 << reopens.min(31)),
            "after {reopens}"
        );
        assert!(open_time >= previous);
        previous = open_time;
        assert_eq!(b.status().retry_after, Some(open_time));
        tokio::time::advance(open_time).await;
        let probe = b.try_acquire().expect("due");
        probe.record(Outcome::Failure); // re-opens for twice as long
    }
    // And a recovery timeout so long that doubling it overflows a Duration.
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::MAX / 2 + Duration::from_secs(1))
        .recovery_timeout_max(Duration::MAX)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("overflowing", config);
    fail(&b);
    tokio::time::advance(secs(1000 * YEAR)).await;
    b.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(b.status().current_open_time, Duration::MAX);
}

#[tokio::test(start_paused = true)]
async fn the_largest_counts_never_overflow() {
    let config = BreakerConfig::builder()
        .failure_threshold(u32::MAX)
        .success_threshold(u32::MAX)
        .half_open_max_calls(u32::MAX)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("huge-counts", config);
    for _ in 0..100_000 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.status().consecutive_failures, 100_000);

    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(secs(1))
        .success_threshold(u32::MAX)
        .half_open_max_calls(u32::MAX)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("huge-probes", config);
    fail(&b);
    tokio::time::advance(secs(1)).await;
    let probes: Vec<_> = (0..100_000).map(|_| b.try_acquire().unwrap()).collect();
    assert_eq!(b.status().probes_in_flight, 100_000);
    for p in probes {
        p.record(Outcome::Success);
    }
    let status = b.status();
    assert_eq!(status.state, CircuitState::HalfOpen);
    assert_eq!(
        (status.probe_successes, status.probes_in_flight),
        (100_000, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_stands_still_keeps_the_circuit_open() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_nanos(1))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("still", config);
    fail(&b);
    for _ in 0..1000 {
        assert!(matches!(
            b.try_acquire(),
            Err(e) if e.retry_after() == Some(Duration::from_nanos(1))
        ));
    }
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert!(b.try_acquire().unwrap().is_probe());
}

#[tokio::test(start_paused = true)]
async fn time_windows_survive_the_end_of_the_clock() {
    for window in [Duration::from_nanos(1), secs(1), Duration::MAX] {
        let config = BreakerConfig::builder()
            .failure_threshold(3)
            .window(Window::Time(window))
            .build()
            .unwrap();
        let b = CircuitBreaker::new("time-window", config);
        fail(&b);
        fail(&b);
        assert_eq!(b.status().window_failures, 2, "{window:?}");
        b.reset(); // forgets both
                   // Every reading of the clock from here to past its end.
        for jump in [
            u64::MAX / 2,
            u64::MAX / 2 - 3,
            1,
            1, // at u64::MAX - 1 ns
            1, // at u64::MAX ns
            1,
            YEAR,
        ] {
            tokio::time::advance(Duration::from_nanos(jump)).await;
            let status = b.status();
            assert_eq!(status.state, CircuitState::Closed, "{window:?}");
            assert!(status.window_failures <= 2, "{window:?}: {status:?}");
        }
        fail(&b);
        assert_eq!(
            b.status().window_failures,
            1,
            "{window:?}: nothing older counts"
        );
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open, "{window:?}");
    }
}
