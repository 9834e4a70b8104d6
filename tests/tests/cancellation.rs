//! Cancellation and panics through the attributes, on the paused clock.
//!
//! Each annotated future is polled by hand (`futures::poll!`), time advancing
//! between polls, and dropped after k polls for every k from 0 to the number
//! of polls it needs to finish: so it is dropped at every await point it has
//! (waiting for a bulkhead slot, in the body, in the timeout, in the retry
//! sleep, after the breaker admitted it as a probe). After each drop every
//! probe slot and bulkhead slot is back, and the breaker counted each
//! finished call or attempt exactly once and the cut one not at all.
//!
//! Panics: a panicking body or `fallback` unwinds to the caller and the
//! breaker keeps working (the body's panic is a failure); panicking
//! `on_open` callbacks and registry listeners are caught and logged, and
//! never reach the call.

mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Once;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use resilience::{circuit_breaker, registry, resilient, retry, BreakerConfig, CircuitState};
use support::{in_flight_or_zero, secs, ApiError};
use tokio::time::{advance, Instant};

/// What the bodies saw.
#[derive(Default)]
struct Runs {
    started: AtomicU32,
    finished: AtomicU32,
    /// Bodies that ran without holding their bulkhead slot.
    without_slot: AtomicU32,
}

/// Polls `fut` up to `k` times, advancing the paused clock by `step` before
/// each later poll (`between` runs then too, with the time elapsed), and
/// drops it if it has not finished. Returns its output if it finished, and
/// how many polls it took.
async fn poll_then_drop<F: Future>(
    fut: F,
    k: usize,
    step: Duration,
    mut between: impl FnMut(Duration),
) -> (Option<F::Output>, usize) {
    let start = Instant::now();
    let mut fut = std::pin::pin!(fut);
    for poll in 1..=k {
        if poll > 1 {
            advance(step).await;
            between(start.elapsed());
        }
        if let Poll::Ready(out) = futures::poll!(fut.as_mut()) {
            return (Some(out), poll);
        }
    }
    (None, k)
}

// ------------------------------------------------- the whole stack, per await

/// fallback → breaker → retry (1 s, 2 s) → bulkhead (1 slot, waits up to
/// 3 s) → timeout (5 s) → body: attempts take 2 s, 10 s (timed out) and 2 s.
macro_rules! stack {
    ($fn_name:ident, $breaker:tt, $bulkhead:tt) => {
        #[resilient(name = $breaker, failure_threshold = 100, recovery_timeout = "10s",
                                    max_attempts = 3, delay = "1s", timeout = "5s",
                                    max_concurrent = 1, max_wait = "3s", bulkhead = $bulkhead)]
        async fn $fn_name(runs: &Runs) -> Result<u32, ApiError> {
            let attempt = runs.started.fetch_add(1, SeqCst) + 1;
            if in_flight_or_zero($bulkhead) != 1 {
                runs.without_slot.fetch_add(1, SeqCst);
            }
            let took = if attempt == 2 { secs(10) } else { secs(2) };
            tokio::time::sleep(took).await;
            runs.finished.fetch_add(1, SeqCst);
            Err(ApiError::Upstream)
        }
    };
}

stack!(stack_closed, "cx-closed", "cx-closed-bh");
stack!(stack_probe, "cx-probe", "cx-probe-bh");

fn configure(name: &str, failure_threshold: u32) {
    let config = BreakerConfig::builder()
        .failure_threshold(failure_threshold)
        .recovery_timeout(secs(10))
        .half_open_max_calls(1)
        .build()
        .unwrap();
    registry()
        .configure(name, config)
        .expect("configured first");
}

/// One run of the stack, dropped after `k` polls. The bulkhead's only slot
/// is held by someone else for the first 1.5 s, so the call first waits.
async fn stack_run<F: Future<Output = Result<u32, ApiError>>>(
    call: F,
    bulkhead: &str,
    k: usize,
) -> (Option<Result<u32, ApiError>>, usize) {
    let other = registry().bulkhead(bulkhead, 1.try_into().unwrap(), secs(3));
    let mut holder = Some(other.acquire().await.expect("a free slot"));
    let out = poll_then_drop(call, k, Duration::from_millis(500), |elapsed| {
        if elapsed >= Duration::from_millis(1500) {
            holder = None;
        }
    })
    .await;
    drop(holder);
    out
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stack_at_every_await_leaks_nothing_and_counts_once() {
    configure("cx-closed", 100);
    let breaker = registry().get("cx-closed").unwrap();
    for k in 0..100 {
        breaker.reset();
        let runs = Runs::default();
        let (out, polls) = stack_run(stack_closed(&runs), "cx-closed-bh", k).await;
        assert_eq!(
            in_flight_or_zero("cx-closed-bh"),
            0,
            "k = {k}: a bulkhead slot leaked"
        );
        assert_eq!(
            runs.without_slot.load(SeqCst),
            0,
            "k = {k}: a body ran without its slot"
        );
        let status = breaker.status();
        assert_eq!(status.probes_in_flight, 0);
        let (started, finished) = (runs.started.load(SeqCst), runs.finished.load(SeqCst));
        assert!(
            finished <= started && started <= 3,
            "k = {k}: {started} started, {finished} finished"
        );
        match out {
            Some(result) => {
                // The retry ran out: one failure for the breaker, recorded once.
                assert_eq!(result, Err(ApiError::Upstream));
                assert_eq!((started, finished), (3, 2), "the second attempt timed out");
                assert_eq!(status.consecutive_failures, 1, "k = {k}");
                assert!(polls > 20, "every await point was visited ({polls} polls)");
                return;
            }
            None => assert_eq!(
                status.consecutive_failures, 0,
                "k = {k}: a cancelled call recorded an outcome"
            ),
        }
    }
    panic!("the call never finished");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_at_every_await_gives_its_slot_back() {
    configure("cx-probe", 1);
    let breaker = registry().get("cx-probe").unwrap();
    for k in 0..100 {
        breaker.reset();
        breaker
            .try_acquire()
            .unwrap()
            .record(resilience::Outcome::Failure);
        assert_eq!(breaker.state(), CircuitState::Open);
        advance(secs(10)).await; // the next call is the probe
        let runs = Runs::default();
        let (out, _) = stack_run(stack_probe(&runs), "cx-probe-bh", k).await;
        assert_eq!(
            in_flight_or_zero("cx-probe-bh"),
            0,
            "k = {k}: a bulkhead slot leaked"
        );
        assert_eq!(
            breaker.status().probes_in_flight,
            0,
            "k = {k}: a probe slot leaked"
        );
        if let Some(result) = out {
            assert_eq!(result, Err(ApiError::Upstream));
            assert_eq!(breaker.state(), CircuitState::Open, "the probe failed");
            return;
        }
        // Cut before its outcome: the next call may probe at once.
        let expected = if k == 0 {
            CircuitState::Open // never polled: never admitted
        } else {
            CircuitState::HalfOpen
        };
        assert_eq!(breaker.state(), expected, "k = {k}");
        let probe = breaker.try_acquire().expect("the probe slot is free again");
        assert!(probe.is_probe());
        assert!(breaker.try_acquire().is_err(), "one probe at a time");
        drop(probe);
    }
    panic!("the call never finished");
}

// ------------------------------------------- retry outside: once per attempt

#[retry(max_attempts = 3, delay = "1s")]
#[circuit_breaker(name = "cx-attempts", failure_threshold = 100)]
async fn per_attempt(runs: &Runs) -> Result<u32, ApiError> {
    runs.started.fetch_add(1, SeqCst);
    tokio::time::sleep(secs(2)).await;
    runs.finished.fetch_add(1, SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn each_finished_attempt_is_recorded_once_and_the_cut_one_never() {
    configure("cx-attempts", 100);
    let breaker = registry().get("cx-attempts").unwrap();
    for k in 0..100 {
        breaker.reset();
        let runs = Runs::default();
        let step = Duration::from_millis(500);
        let (out, _) = poll_then_drop(per_attempt(&runs), k, step, drop).await;
        let finished = runs.finished.load(SeqCst);
        assert_eq!(
            breaker.status().consecutive_failures,
            finished,
            "k = {k}: the breaker counted another number of attempts than finished"
        );
        if out.is_some() {
            assert_eq!(finished, 3);
            return;
        }
    }
    panic!("the call never finished");
}

// ------------------------------------------------------------------- panics

/// The payload of the panics these tests cause on purpose.
struct Deliberate;

fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Deliberate>() {
                default(info);
            }
        }));
    });
}

static OPENED: AtomicU32 = AtomicU32::new(0);
static LISTENED: AtomicU32 = AtomicU32::new(0);

fn panicking_on_open(_: &resilience::Transition) {
    OPENED.fetch_add(1, SeqCst);
    std::panic::panic_any(Deliberate);
}

#[circuit_breaker(name = "cx-panics", failure_threshold = 2, recovery_timeout = "10s",
                  on_open = panicking_on_open)]
async fn may_panic(panic: bool) -> Result<u32, ApiError> {
    if panic {
        std::panic::panic_any(Deliberate);
    }
    Err(ApiError::Upstream)
}

#[circuit_breaker(name = "cx-recovers", failure_threshold = 1, recovery_timeout = "10s")]
async fn recovers() -> Result<u32, ApiError> {
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn panics_in_bodies_callbacks_and_listeners_leave_the_breaker_working() {
    quiet_deliberate_panics();
    registry().on_transition(|t| {
        if &*t.name == "cx-panics" {
            LISTENED.fetch_add(1, SeqCst);
            std::panic::panic_any(Deliberate);
        }
    });
    // The body's panic reaches the caller, and counts as a failure.
    let panicked = AssertUnwindSafe(may_panic(true)).catch_unwind().await;
    assert!(panicked.unwrap_err().is::<Deliberate>());
    let breaker = registry().get("cx-panics").unwrap();
    assert_eq!(breaker.status().consecutive_failures, 1);
    assert_eq!(breaker.status().probes_in_flight, 0);
    // The second failure opens it: `on_open` and the listener panic, are
    // caught, and the call returns its error as usual.
    assert_eq!(may_panic(false).await, Err(ApiError::Upstream));
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!((OPENED.load(SeqCst), LISTENED.load(SeqCst)), (1, 1));
    // Still working: rejects, then probes and closes.
    assert!(matches!(
        may_panic(true).await,
        Err(ApiError::Resilience(e)) if e.is_circuit_open()
    ));
    advance(secs(10)).await;
    let probe = AssertUnwindSafe(may_panic(true)).catch_unwind().await;
    assert!(probe.is_err(), "the probe's panic unwinds too");
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "a panicking probe failed"
    );
    assert_eq!(LISTENED.load(SeqCst), 3, "half-open, then open again");
    advance(secs(10)).await;
    breaker.reset();
    assert_eq!(may_panic(false).await, Err(ApiError::Upstream));
    assert_eq!(breaker.status().consecutive_failures, 1);
    // Other breakers never noticed.
    assert_eq!(recovers().await, Ok(7));
}

static FALLBACKS: AtomicU32 = AtomicU32::new(0);

async fn panicking_fallback(_error: ApiError) -> Result<u32, ApiError> {
    FALLBACKS.fetch_add(1, SeqCst);
    std::panic::panic_any(Deliberate)
}

#[circuit_breaker(name = "cx-fallback", failure_threshold = 1, recovery_timeout = "10s",
                  fallback = panicking_fallback)]
async fn with_fallback() -> Result<u32, ApiError> {
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn a_panicking_fallback_unwinds_to_the_caller_and_the_breaker_keeps_working() {
    quiet_deliberate_panics();
    let first = AssertUnwindSafe(with_fallback()).catch_unwind().await;
    assert!(first.unwrap_err().is::<Deliberate>());
    let breaker = registry().get("cx-fallback").unwrap();
    // The failure was recorded before the fallback ran.
    assert_eq!(breaker.state(), CircuitState::Open);
    // Rejected while open: the fallback runs (and panics) for that too.
    let second = AssertUnwindSafe(with_fallback()).catch_unwind().await;
    assert!(second.unwrap_err().is::<Deliberate>());
    assert_eq!(FALLBACKS.load(SeqCst), 2);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(breaker.status().retry_after.is_some());
    advance(secs(10)).await;
    let probe = breaker
        .try_acquire()
        .expect("probes after the recovery timeout");
    assert!(probe.is_probe());
    probe.record(resilience::Outcome::Success);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

// ----------------------------------------------------------- extreme values

#[retry(max_attempts = 3, delay = "1s", max_elapsed = "10s",
        retry_after = |_: &ApiError| Some(Duration::MAX))]
async fn hinted_forever(runs: &Runs) -> Result<u32, ApiError> {
    runs.started.fetch_add(1, SeqCst);
    Err(ApiError::Upstream)
}

#[retry(
    max_attempts = 2,
    delay = "9223372036854775807s",
    max_elapsed = "18446744073709551615s"
)]
async fn sleeps_forever(runs: &Runs) -> Result<u32, ApiError> {
    runs.started.fetch_add(1, SeqCst);
    Err(ApiError::Upstream)
}

#[circuit_breaker(
    name = "cx-forever",
    failure_threshold = 1,
    recovery_timeout = "18446744073709551615s"
)]
async fn open_forever() -> Result<u32, ApiError> {
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn huge_durations_saturate_instead_of_panicking() {
    // A `retry_after` hint of `Duration::MAX` under `max_elapsed`: the sleep
    // would end past the deadline (and past the end of the clock), so the
    // retry gives up after the first attempt.
    let runs = Runs::default();
    assert_eq!(hinted_forever(&runs).await, Err(ApiError::Upstream));
    assert_eq!(runs.started.load(SeqCst), 1);

    // A delay of 292 and a `max_elapsed` of 584 billion years: the deadline
    // is past the end of the clock (no deadline) and the retry sleeps for
    // good; the clock jumping by years, then millennia, panics nowhere.
    let runs = Runs::default();
    let year = secs(365 * 24 * 3600);
    let (out, _) = poll_then_drop(sleeps_forever(&runs), 5, year, drop).await;
    assert!(out.is_none(), "still sleeping after 4 years");
    assert_eq!(runs.started.load(SeqCst), 1);
    let runs = Runs::default();
    let step = year * 1000;
    let (out, _) = poll_then_drop(sleeps_forever(&runs), 5, step, drop).await;
    match out {
        None => assert_eq!(runs.started.load(SeqCst), 1),
        // tokio caps the sleeps it can time (at decades): then the second
        // attempt ran.
        Some(result) => {
            assert_eq!(result, Err(ApiError::Upstream));
            assert_eq!(runs.started.load(SeqCst), 2);
        }
    }

    // A breaker open for as long as a Duration holds: rejects, saturated.
    assert_eq!(open_forever().await, Err(ApiError::Upstream));
    let step = year * 100;
    advance(step).await;
    match open_forever().await {
        Err(ApiError::Resilience(e)) if e.is_circuit_open() => {
            let left = e.retry_after().expect("a wait while open");
            assert_eq!(
                left,
                Duration::from_nanos(u64::MAX) - step,
                "saturated at u64 ns"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}
