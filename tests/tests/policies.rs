//! `#[circuit_breaker]` policies through the attribute, on the paused clock:
//! trip rules (time window, failure rate, slow calls), growing open time,
//! which errors count, callbacks and manual control through the registry.
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use resilience::{
    circuit_breaker, registry, BreakerStatus, CircuitState, Transition, TransitionCause,
};
use tokio::time::advance;

#[derive(Debug, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream unavailable ({0})")]
    Unavailable(u16),
    #[error("bad request")]
    BadRequest,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

use ApiError::{BadRequest, NotFound, Timeout, Unavailable};
use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

fn status(name: &str) -> BreakerStatus {
    registry().get(name).expect("breaker exists").status()
}

fn state(name: &str) -> CircuitState {
    registry().get(name).expect("breaker exists").state()
}

/// The `retry_after` of a `CircuitOpen` rejection by breaker `name`; panics on
/// anything else.
#[track_caller]
fn rejected<T: std::fmt::Debug>(result: Result<T, ApiError>, name: &str) -> Option<Duration> {
    match result {
        Err(ApiError::Resilience(resilience::Error::CircuitOpen {
            name: actual,
            retry_after,
        })) => {
            assert_eq!(&*actual, name);
            retry_after
        }
        other => panic!("expected CircuitOpen from `{name}`, got {other:?}"),
    }
}

fn transition(
    name: &str,
    from: CircuitState,
    to: CircuitState,
    cause: TransitionCause,
    failures: u32,
    calls: u32,
) -> Transition {
    Transition {
        name: name.into(),
        from,
        to,
        cause,
        failures,
        calls,
        error: None,
    }
}

/// The transition, caused by a call that returned `error`.
fn caused_by(transition: Transition, error: &str) -> Transition {
    Transition {
        error: Some(error.into()),
        ..transition
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------
// Trip rules
// ---------------------------------------------------------------------------

static DEFAULT_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-default")]
async fn default_rule(result: Result<(), ApiError>) -> Result<(), ApiError> {
    DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn by_default_five_consecutive_failures_open_and_a_success_restarts_the_run() {
    for _ in 0..4 {
        assert_eq!(default_rule(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(status("pol-default").consecutive_failures, 4);
    assert_eq!(default_rule(Ok(())).await, Ok(()));
    assert_eq!(status("pol-default").consecutive_failures, 0);
    for _ in 0..4 {
        assert_eq!(default_rule(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(state("pol-default"), Closed, "4 in a row after the success");
    assert_eq!(default_rule(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state("pol-default"), Open);
    assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 10);
    assert_eq!(
        rejected(default_rule(Ok(())).await, "pol-default"),
        Some(secs(60))
    );
    assert_eq!(
        DEFAULT_RUNS.load(Ordering::SeqCst),
        10,
        "not run while open"
    );
}

static TIME_WINDOW_RUNS: AtomicU32 = AtomicU32::new(0);
static TIME_WINDOW_OPENED: Mutex<Vec<Transition>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-time-window",
    failure_threshold = 5,
    window = "60s",
    on_open = |t| TIME_WINDOW_OPENED.lock().unwrap().push(t.clone())
)]
async fn time_window(result: Result<(), ApiError>) -> Result<(), ApiError> {
    TIME_WINDOW_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn failures_count_within_a_rolling_time_window() {
    const NAME: &str = "pol-time-window";
    // t = 0: the breaker is created by the first call; 4 failures, and
    // successes in between do not reset a window.
    for _ in 0..4 {
        assert_eq!(time_window(Ok(())).await, Ok(()));
        assert_eq!(time_window(Err(Timeout)).await, Err(Timeout));
    }
    let s = status(NAME);
    assert_eq!((s.window_calls, s.window_failures), (8, 4));
    assert_eq!(s.window, Some(resilience::Window::Time(secs(60))));

    // t = 60 s: the 4 failures of t = 0 have left the window, so a 5th
    // failure is the first of a new count.
    advance(secs(60)).await;
    assert_eq!(status(NAME).window_failures, 0);
    assert_eq!(time_window(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Closed);
    assert_eq!(status(NAME).window_failures, 1);

    // t = 90 s: 3 more make 4 in the window.
    advance(secs(30)).await;
    for _ in 0..3 {
        assert_eq!(time_window(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(state(NAME), Closed);

    // t = 119 s: the failure of t = 60 s is still in the window; this is the 5th.
    advance(secs(29)).await;
    assert_eq!(time_window(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open);
    assert_eq!(TIME_WINDOW_RUNS.load(Ordering::SeqCst), 13);
    assert_eq!(
        *TIME_WINDOW_OPENED.lock().unwrap(),
        [caused_by(
            transition(
                NAME,
                Closed,
                Open,
                TransitionCause::FailuresInWindow {
                    failures: 5,
                    calls: 5,
                },
                5,
                5,
            ),
            "upstream timed out"
        )]
    );
    assert!(rejected(time_window(Ok(())).await, NAME).is_some());
    assert_eq!(TIME_WINDOW_RUNS.load(Ordering::SeqCst), 13);
}

static RATE_RUNS: AtomicU32 = AtomicU32::new(0);
static RATE_OPENED: Mutex<Vec<Transition>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-rate-calls",
    failure_rate = 0.5,
    window = 10,
    on_open = |t| RATE_OPENED.lock().unwrap().push(t.clone())
)]
async fn rate_over_calls(result: Result<(), ApiError>) -> Result<(), ApiError> {
    RATE_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_the_last_calls_waits_for_the_default_min_calls() {
    const NAME: &str = "pol-rate-calls";
    for _ in 0..3 {
        assert_eq!(rate_over_calls(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(
        state(NAME),
        Closed,
        "all failed, but 3 calls < min_calls 10"
    );
    for _ in 0..7 {
        rate_over_calls(Ok(())).await.unwrap();
    }
    let s = status(NAME);
    assert_eq!((s.window_calls, s.window_failures), (10, 3));
    assert_eq!(s.failure_rate, Some(0.5));
    // Each call now evicts the oldest: the 3 failures first, then a success.
    for _ in 0..4 {
        assert_eq!(rate_over_calls(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(state(NAME), Closed);
    let s = status(NAME);
    assert_eq!((s.window_calls, s.window_failures), (10, 4));
    // Evicting one more success: 5 of the last 10 failed, exactly the rate.
    assert_eq!(rate_over_calls(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open);
    assert_eq!(
        *RATE_OPENED.lock().unwrap(),
        [caused_by(
            transition(
                NAME,
                Closed,
                Open,
                TransitionCause::FailureRate {
                    failures: 5,
                    calls: 10,
                },
                5,
                10,
            ),
            "upstream timed out"
        )]
    );
    assert!(rejected(rate_over_calls(Ok(())).await, NAME).is_some());
    assert_eq!(RATE_RUNS.load(Ordering::SeqCst), 15);
}

static RATE_TIME_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-rate-time",
    failure_rate = 0.5,
    window = "60s",
    min_calls = 4
)]
async fn rate_over_time(result: Result<(), ApiError>) -> Result<(), ApiError> {
    RATE_TIME_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_time_window_needs_min_calls_and_forgets_old_calls() {
    const NAME: &str = "pol-rate-time";
    for _ in 0..3 {
        assert_eq!(rate_over_time(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(
        state(NAME),
        Closed,
        "3 calls, all failed, but min_calls = 4"
    );

    // A minute later those 3 failures are gone: had they stayed, the next
    // success would make 3 of 4 (75 %) and open the circuit.
    advance(secs(60)).await;
    rate_over_time(Ok(())).await.unwrap();
    rate_over_time(Ok(())).await.unwrap();
    assert_eq!(rate_over_time(Err(Timeout)).await, Err(Timeout));
    rate_over_time(Ok(())).await.unwrap();
    assert_eq!(state(NAME), Closed, "1 of 4 failed");
    assert_eq!(rate_over_time(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Closed, "2 of 5 failed: 40 %");
    assert_eq!(rate_over_time(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open, "3 of 6 failed: 50 %");
    let s = status(NAME);
    assert_eq!((s.window_calls, s.window_failures), (6, 3));
    assert!(rejected(rate_over_time(Ok(())).await, NAME).is_some());
    assert_eq!(RATE_TIME_RUNS.load(Ordering::SeqCst), 9);
}

static SLOW_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-slow",
    failure_threshold = 2,
    slow_call = "2s",
    recovery_timeout = "10s"
)]
async fn slow(took: Duration) -> Result<Duration, ApiError> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(took).await;
    Ok(took)
}

#[tokio::test(start_paused = true)]
async fn a_call_slower_than_slow_call_counts_as_a_failure() {
    const NAME: &str = "pol-slow";
    let at_limit = secs(2);
    let too_slow = Duration::from_millis(2001);
    for _ in 0..3 {
        assert_eq!(slow(at_limit).await, Ok(at_limit));
    }
    assert_eq!(
        status(NAME).consecutive_failures,
        0,
        "exactly 2 s is not slow"
    );

    // The slow call still returns its own value to the caller.
    assert_eq!(slow(too_slow).await, Ok(too_slow));
    assert_eq!(status(NAME).consecutive_failures, 1);
    // A fast success ends the run of failures like any success.
    slow(Duration::ZERO).await.unwrap();
    assert_eq!(status(NAME).consecutive_failures, 0);
    slow(too_slow).await.unwrap();
    assert_eq!(state(NAME), Closed);
    slow(too_slow).await.unwrap();
    assert_eq!(state(NAME), Open, "2 slow calls in a row");
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 7);
    assert_eq!(rejected(slow(Duration::ZERO).await, NAME), Some(secs(10)));

    // A slow probe is a failed probe.
    advance(secs(10)).await;
    assert_eq!(slow(too_slow).await, Ok(too_slow));
    assert_eq!(state(NAME), Open);
    advance(secs(10)).await;
    slow(secs(1)).await.unwrap();
    assert_eq!(state(NAME), Closed);
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 9);
}

static SLOW_RATE_OPENED: Mutex<Vec<Transition>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-slow-rate",
    slow_call = "1s",
    slow_call_rate = 0.5,
    window = 4,
    min_calls = 4,
    on_open = |t| SLOW_RATE_OPENED.lock().unwrap().push(t.clone())
)]
async fn slow_rate(took: Duration) -> Result<(), ApiError> {
    tokio::time::sleep(took).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_slow_call_rate_slow_calls_trip_on_their_own_share() {
    const NAME: &str = "pol-slow-rate";
    slow_rate(Duration::ZERO).await.unwrap();
    slow_rate(Duration::ZERO).await.unwrap();
    slow_rate(secs(3)).await.unwrap();
    let s = status(NAME);
    assert_eq!(
        (s.window_calls, s.window_failures, s.window_slow_calls),
        (3, 0, 1),
        "slow, not failed"
    );
    assert_eq!(state(NAME), Closed);
    slow_rate(secs(3)).await.unwrap();
    assert_eq!(state(NAME), Open, "2 of 4 calls slow: 50 %");
    assert_eq!(
        *SLOW_RATE_OPENED.lock().unwrap(),
        [transition(
            NAME,
            Closed,
            Open,
            TransitionCause::SlowCallRate { slow: 2, calls: 4 },
            0,
            4
        )]
    );
}

static GROWING_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-growing",
    failure_threshold = 1,
    recovery_timeout = "1m",
    recovery_timeout_max = "10m"
)]
async fn growing(result: Result<(), ApiError>) -> Result<(), ApiError> {
    GROWING_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn each_failed_probe_doubles_the_open_time_up_to_the_max_and_closing_resets_it() {
    const NAME: &str = "pol-growing";
    let retry_after = || status(NAME).retry_after;
    assert_eq!(growing(Err(Timeout)).await, Err(Timeout));
    let mut runs = 1;
    for open in [60, 120, 240, 480, 600, 600] {
        assert_eq!(retry_after(), Some(secs(open)));
        assert_eq!(status(NAME).current_open_time, secs(open));
        advance(secs(open - 1)).await;
        assert_eq!(rejected(growing(Ok(())).await, NAME), Some(secs(1)));
        assert_eq!(GROWING_RUNS.load(Ordering::SeqCst), runs, "still open");
        advance(secs(1)).await;
        assert_eq!(retry_after(), Some(Duration::ZERO));
        assert_eq!(growing(Err(Timeout)).await, Err(Timeout), "the probe fails");
        runs += 1;
        assert_eq!(GROWING_RUNS.load(Ordering::SeqCst), runs);
        assert_eq!(state(NAME), Open);
    }
    // A successful probe closes the circuit and the open time starts over.
    advance(secs(600)).await;
    growing(Ok(())).await.unwrap();
    assert_eq!(state(NAME), Closed);
    assert_eq!(status(NAME).current_open_time, secs(60));
    assert_eq!(growing(Err(Timeout)).await, Err(Timeout));
    assert_eq!(retry_after(), Some(secs(60)));

    // A reset through the registry starts it over too.
    advance(secs(60)).await;
    assert_eq!(growing(Err(Timeout)).await, Err(Timeout));
    assert_eq!(retry_after(), Some(secs(120)));
    assert!(registry().reset(NAME));
    assert_eq!(growing(Err(Timeout)).await, Err(Timeout));
    assert_eq!(retry_after(), Some(secs(60)));
}

// ---------------------------------------------------------------------------
// Which errors count
// ---------------------------------------------------------------------------

fn is_client_error(e: &ApiError) -> bool {
    matches!(e, BadRequest | NotFound)
}

static IGNORED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-ignore-path",
    failure_threshold = 3,
    recovery_timeout = "5s",
    ignore_if = is_client_error
)]
async fn ignoring(result: Result<(), ApiError>) -> Result<(), ApiError> {
    IGNORED_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn ignored_errors_neither_count_nor_reset_the_run() {
    const NAME: &str = "pol-ignore-path";
    assert_eq!(ignoring(Err(Timeout)).await, Err(Timeout));
    assert_eq!(ignoring(Err(Timeout)).await, Err(Timeout));
    for _ in 0..10 {
        // The caller still gets the ignored error.
        assert_eq!(ignoring(Err(BadRequest)).await, Err(BadRequest));
        assert_eq!(ignoring(Err(NotFound)).await, Err(NotFound));
    }
    assert_eq!(state(NAME), Closed, "20 ignored errors are not failures");
    assert_eq!(
        status(NAME).consecutive_failures,
        2,
        "nor successes: the run of 2 goes on"
    );
    assert_eq!(ignoring(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open);
    assert_eq!(IGNORED_RUNS.load(Ordering::SeqCst), 23);

    // An ignored probe decides nothing: the next call probes again.
    advance(secs(5)).await;
    assert_eq!(ignoring(Err(BadRequest)).await, Err(BadRequest));
    assert_eq!(state(NAME), HalfOpen);
    assert_eq!(status(NAME).probes_in_flight, 0);
    ignoring(Ok(())).await.unwrap();
    assert_eq!(state(NAME), Closed);
    assert_eq!(IGNORED_RUNS.load(Ordering::SeqCst), 25);
}

#[circuit_breaker(
    name = "pol-ignore-closure",
    failure_rate = 0.5,
    window = 4,
    min_calls = 2,
    ignore_if = |e: &ApiError| matches!(e, ApiError::NotFound)
)]
async fn ignoring_windowed(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn ignored_errors_stay_out_of_the_window() {
    const NAME: &str = "pol-ignore-closure";
    ignoring_windowed(Ok(())).await.unwrap();
    for _ in 0..5 {
        assert_eq!(ignoring_windowed(Err(NotFound)).await, Err(NotFound));
    }
    let s = status(NAME);
    assert_eq!((s.window_calls, s.window_failures), (1, 0));
    // Not ignored: 1 of 2 calls failed.
    assert_eq!(ignoring_windowed(Err(BadRequest)).await, Err(BadRequest));
    assert_eq!(state(NAME), Open);
}

fn is_transient(e: &ApiError) -> bool {
    matches!(e, Timeout | Unavailable(_))
}

static FAILURE_IF_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-failure-if-path", failure_threshold = 2, failure_if = is_transient)]
async fn failure_if_path(result: Result<(), ApiError>) -> Result<(), ApiError> {
    FAILURE_IF_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[circuit_breaker(
    name = "pol-failure-if-closure",
    failure_threshold = 2,
    failure_if = |e: &ApiError| *e == ApiError::Timeout
)]
async fn failure_if_closure(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn failure_if_decides_which_errors_are_failures() {
    // A path: `is_transient`. Other errors count as successes: they end the
    // run of failures.
    const PATH: &str = "pol-failure-if-path";
    for _ in 0..5 {
        assert_eq!(failure_if_path(Err(BadRequest)).await, Err(BadRequest));
    }
    assert_eq!(status(PATH).consecutive_failures, 0);
    assert_eq!(failure_if_path(Err(Timeout)).await, Err(Timeout));
    assert_eq!(failure_if_path(Err(NotFound)).await, Err(NotFound));
    assert_eq!(status(PATH).consecutive_failures, 0, "reset by NotFound");
    assert_eq!(failure_if_path(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(PATH), Closed);
    assert_eq!(
        failure_if_path(Err(Unavailable(503))).await,
        Err(Unavailable(503))
    );
    assert_eq!(state(PATH), Open);
    assert!(rejected(failure_if_path(Ok(())).await, PATH).is_some());
    assert_eq!(FAILURE_IF_RUNS.load(Ordering::SeqCst), 9);

    // A closure: only `Timeout` fails.
    const CLOSURE: &str = "pol-failure-if-closure";
    for _ in 0..5 {
        let unavailable = failure_if_closure(Err(Unavailable(503))).await;
        assert_eq!(unavailable, Err(Unavailable(503)));
    }
    assert_eq!(state(CLOSURE), Closed);
    assert_eq!(failure_if_closure(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(CLOSURE), Closed);
    assert_eq!(failure_if_closure(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(CLOSURE), Open);
}

static FAILURE_ON_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-failure-on",
    failure_threshold = 3,
    failure_on = [ApiError::Timeout, ApiError::Unavailable(..)]
)]
async fn failure_on(result: Result<(), ApiError>) -> Result<(), ApiError> {
    FAILURE_ON_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[circuit_breaker(
    name = "pol-failure-on-range",
    failure_threshold = 2,
    failure_on = [ApiError::Unavailable(500..=599)],
    ignore_if = |e: &ApiError| matches!(e, ApiError::Unavailable(503))
)]
async fn failure_on_range(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn failure_on_matches_typed_patterns() {
    const NAME: &str = "pol-failure-on";
    for _ in 0..10 {
        assert_eq!(failure_on(Err(BadRequest)).await, Err(BadRequest));
    }
    assert_eq!(status(NAME).consecutive_failures, 0, "not a listed pattern");
    assert_eq!(failure_on(Err(Timeout)).await, Err(Timeout));
    assert_eq!(
        failure_on(Err(Unavailable(502))).await,
        Err(Unavailable(502))
    );
    assert_eq!(status(NAME).consecutive_failures, 2);
    assert_eq!(failure_on(Err(NotFound)).await, Err(NotFound));
    assert_eq!(
        status(NAME).consecutive_failures,
        0,
        "a success for the breaker"
    );
    assert_eq!(failure_on(Err(Timeout)).await, Err(Timeout));
    assert_eq!(
        failure_on(Err(Unavailable(503))).await,
        Err(Unavailable(503))
    );
    assert_eq!(state(NAME), Closed);
    assert_eq!(failure_on(Err(Unavailable(0))).await, Err(Unavailable(0)));
    assert_eq!(state(NAME), Open, "`Unavailable(..)` matches any payload");
    assert!(rejected(failure_on(Ok(())).await, NAME).is_some());
    assert_eq!(FAILURE_ON_RUNS.load(Ordering::SeqCst), 16);

    // A literal range, with `ignore_if` taking precedence over the patterns.
    const RANGE: &str = "pol-failure-on-range";
    let call = |e| failure_on_range(Err(e));
    assert_eq!(call(Unavailable(500)).await, Err(Unavailable(500)));
    assert_eq!(call(Unavailable(503)).await, Err(Unavailable(503)));
    assert_eq!(status(RANGE).consecutive_failures, 1, "503 is ignored");
    assert_eq!(call(Unavailable(429)).await, Err(Unavailable(429)));
    assert_eq!(
        status(RANGE).consecutive_failures,
        0,
        "429 is outside 500..=599"
    );
    assert_eq!(call(Unavailable(599)).await, Err(Unavailable(599)));
    assert_eq!(call(Unavailable(503)).await, Err(Unavailable(503)));
    assert_eq!(call(Unavailable(500)).await, Err(Unavailable(500)));
    assert_eq!(state(RANGE), Open);
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

static CALLBACKS: Mutex<Vec<(&str, Transition)>> = Mutex::new(Vec::new());

fn record_open(t: &Transition) {
    CALLBACKS.lock().unwrap().push(("on_open", t.clone()));
}

#[circuit_breaker(
    name = "pol-callbacks",
    failure_threshold = 2,
    recovery_timeout = "10s",
    on_open = record_open,
    on_half_open = |t| CALLBACKS.lock().unwrap().push(("on_half_open", t.clone())),
    on_close = |t: &resilience::Transition| CALLBACKS.lock().unwrap().push(("on_close", t.clone()))
)]
async fn with_callbacks(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn on_open_on_half_open_and_on_close_receive_each_transition() {
    const NAME: &str = "pol-callbacks";
    let log = || std::mem::take(&mut *CALLBACKS.lock().unwrap());
    with_callbacks(Err(Timeout)).await.unwrap_err();
    assert_eq!(log(), [], "no transition yet");
    with_callbacks(Err(Unavailable(503))).await.unwrap_err();
    assert_eq!(
        log(),
        [(
            "on_open",
            caused_by(
                transition(
                    NAME,
                    Closed,
                    Open,
                    TransitionCause::FailureThreshold { failures: 2 },
                    2,
                    0,
                ),
                "upstream unavailable (503)"
            )
        )]
    );
    // Rejections are no transitions.
    with_callbacks(Ok(())).await.unwrap_err();
    assert_eq!(log(), []);

    advance(secs(10)).await;
    with_callbacks(Err(Timeout)).await.unwrap_err();
    assert_eq!(
        log(),
        [
            (
                "on_half_open",
                transition(
                    NAME,
                    Open,
                    HalfOpen,
                    TransitionCause::RecoveryTimeoutElapsed,
                    0,
                    0
                )
            ),
            (
                "on_open",
                caused_by(
                    transition(NAME, HalfOpen, Open, TransitionCause::ProbeFailed, 0, 0),
                    "upstream timed out"
                )
            ),
        ]
    );

    advance(secs(10)).await;
    with_callbacks(Ok(())).await.unwrap();
    assert_eq!(
        log(),
        [
            (
                "on_half_open",
                transition(
                    NAME,
                    Open,
                    HalfOpen,
                    TransitionCause::RecoveryTimeoutElapsed,
                    0,
                    0
                )
            ),
            (
                "on_close",
                transition(
                    NAME,
                    HalfOpen,
                    Closed,
                    TransitionCause::ProbesSucceeded { successes: 1 },
                    0,
                    0
                )
            ),
        ]
    );
    assert_eq!(state(NAME), Closed);
}

static PANICKY_RUNS: AtomicU32 = AtomicU32::new(0);
static PANICKY_CLOSED: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-panicking-callback",
    failure_threshold = 2,
    recovery_timeout = "10s",
    on_open = |_| panic!("the alerting is down"),
    on_close = |_| {
        PANICKY_CLOSED.fetch_add(1, Ordering::SeqCst);
    }
)]
async fn panicky(result: Result<(), ApiError>) -> Result<(), ApiError> {
    PANICKY_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn a_panicking_on_open_breaks_neither_the_call_nor_the_breaker() {
    const NAME: &str = "pol-panicking-callback";
    assert_eq!(panicky(Err(Timeout)).await, Err(Timeout));
    // This failure opens the circuit and runs the panicking callback: the
    // caller still gets its own error.
    assert_eq!(panicky(Err(Unavailable(502))).await, Err(Unavailable(502)));
    assert_eq!(state(NAME), Open);
    assert_eq!(rejected(panicky(Ok(())).await, NAME), Some(secs(10)));
    assert_eq!(PANICKY_RUNS.load(Ordering::SeqCst), 2);

    // A failed probe re-opens it (the callback panics again), then a
    // successful one closes it.
    advance(secs(10)).await;
    assert_eq!(panicky(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open);
    advance(secs(10)).await;
    assert_eq!(panicky(Ok(())).await, Ok(()));
    assert_eq!(state(NAME), Closed);
    assert_eq!(PANICKY_CLOSED.load(Ordering::SeqCst), 1);
    assert_eq!(PANICKY_RUNS.load(Ordering::SeqCst), 4);
}

static REGISTRY_SEEN: Mutex<Vec<(String, CircuitState, CircuitState)>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-registry-listener",
    failure_threshold = 1,
    recovery_timeout = 1
)]
async fn named_for_listener(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[circuit_breaker(failure_threshold = 1, recovery_timeout = 1)]
async fn private_for_listener(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn registry_listeners_see_transitions_of_attribute_made_breakers() {
    // Created before the listener is added: it still reports to it.
    named_for_listener(Ok(())).await.unwrap();
    registry().on_transition(|t| {
        if t.name.contains("pol-registry-listener") || t.name.ends_with("::private_for_listener") {
            let name = t.name.rsplit("::").next().unwrap().to_owned();
            REGISTRY_SEEN.lock().unwrap().push((name, t.from, t.to));
        }
    });
    named_for_listener(Err(Timeout)).await.unwrap_err();
    private_for_listener(Err(Timeout)).await.unwrap_err();
    advance(secs(1)).await;
    named_for_listener(Ok(())).await.unwrap();
    private_for_listener(Ok(())).await.unwrap();
    assert!(registry().force_open("pol-registry-listener"));
    assert!(registry().reset("pol-registry-listener"));
    let seen = |name: &str| -> Vec<_> {
        REGISTRY_SEEN
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|&(_, from, to)| (from, to))
            .collect()
    };
    let cycle = [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)];
    assert_eq!(seen("private_for_listener"), cycle);
    assert_eq!(
        seen("pol-registry-listener"),
        [&cycle[..], &[(Closed, ForcedOpen), (ForcedOpen, Closed)]].concat()
    );
}

// ---------------------------------------------------------------------------
// Manual control through the registry
// ---------------------------------------------------------------------------

static FORCED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-forced", failure_threshold = 100)]
async fn forced(result: Result<(), ApiError>) -> Result<(), ApiError> {
    FORCED_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn force_open_by_name_rejects_without_running_the_body_until_reset() {
    const NAME: &str = "pol-forced";
    // The breaker is made on the first call: before it, there is nothing to force.
    assert!(!registry().force_open(NAME));
    forced(Ok(())).await.unwrap();
    assert!(registry().force_open(NAME));
    assert_eq!(state(NAME), ForcedOpen);
    let snapshot = registry().snapshot();
    let s = snapshot.breaker(NAME).expect("in the snapshot");
    assert_eq!((s.state, s.retry_after), (ForcedOpen, None));

    assert_eq!(rejected(forced(Ok(())).await, NAME), None);
    advance(secs(24 * 3600)).await;
    assert_eq!(rejected(forced(Ok(())).await, NAME), None, "no probe, ever");
    assert_eq!(FORCED_RUNS.load(Ordering::SeqCst), 1);

    assert!(registry().reset(NAME));
    assert_eq!(state(NAME), Closed);
    forced(Ok(())).await.unwrap();
    assert_eq!(FORCED_RUNS.load(Ordering::SeqCst), 2);
}

static DISABLED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-disabled", failure_threshold = 2)]
async fn disabled(result: Result<(), ApiError>) -> Result<(), ApiError> {
    DISABLED_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn disable_by_name_lets_every_call_run_and_never_opens_until_reset() {
    const NAME: &str = "pol-disabled";
    for _ in 0..2 {
        disabled(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!(state(NAME), Open);
    // Disabling an open breaker lets calls through at once.
    assert!(registry().disable(NAME));
    for _ in 0..10 {
        assert_eq!(disabled(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(state(NAME), Disabled);
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 12);
    let snapshot = registry().snapshot();
    let s = snapshot.breaker(NAME).expect("in the snapshot");
    assert_eq!(s.state, Disabled);
    assert_eq!(s.consecutive_failures, 10, "still counted");

    assert!(registry().reset(NAME));
    assert_eq!(status(NAME).consecutive_failures, 0);
    disabled(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Closed);
    disabled(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Open, "the threshold applies again");
    assert!(rejected(disabled(Ok(())).await, NAME).is_some());
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 14);
}

static RESET_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-reset", failure_threshold = 3)]
async fn reset_me(result: Result<(), ApiError>) -> Result<(), ApiError> {
    RESET_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn reset_by_name_closes_the_circuit_and_forgets_failures() {
    const NAME: &str = "pol-reset";
    for _ in 0..3 {
        reset_me(Err(Timeout)).await.unwrap_err();
    }
    assert!(rejected(reset_me(Ok(())).await, NAME).is_some());
    assert!(registry().reset(NAME));
    assert_eq!(state(NAME), Closed);
    // Runs at once, well before the 60 s recovery timeout.
    reset_me(Err(Timeout)).await.unwrap_err();
    reset_me(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Closed, "the 3 earlier failures are forgotten");
    assert!(registry().reset(NAME));
    assert_eq!(status(NAME).consecutive_failures, 0);
    assert_eq!(RESET_RUNS.load(Ordering::SeqCst), 5);
    assert!(!registry().reset("pol-reset-no-such-breaker"));
}

// ---------------------------------------------------------------------------
// Dynamic names
// ---------------------------------------------------------------------------

static TENANT_OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn tenant_opened(t: &Transition) {
    TENANT_OPENED.lock().unwrap().push(t.name.to_string());
}

struct Tenant {
    breaker: String,
    runs: AtomicU32,
}

impl Tenant {
    fn new(breaker: &str) -> Self {
        Tenant {
            breaker: breaker.to_owned(),
            runs: AtomicU32::new(0),
        }
    }

    #[circuit_breaker(
        name = self.breaker.as_str(),
        failure_threshold = 2,
        recovery_timeout = "10s",
        on_open = tenant_opened
    )]
    async fn call(&self, result: Result<(), ApiError>) -> Result<(), ApiError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_names_attach_callbacks_once_per_created_breaker() {
    let (a, b) = (Tenant::new("pol-dyn-a"), Tenant::new("pol-dyn-b"));
    let opened = |name: &str| {
        TENANT_OPENED
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    };
    for _ in 0..5 {
        a.call(Ok(())).await.unwrap();
        b.call(Ok(())).await.unwrap();
    }
    for _ in 0..2 {
        a.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!(state("pol-dyn-a"), Open);
    assert_eq!(state("pol-dyn-b"), Closed);
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (1, 0));

    for _ in 0..2 {
        b.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (1, 1));
    assert!(rejected(b.call(Ok(())).await, "pol-dyn-b").is_some());

    // Recover and open `a` again: one more callback, not one per call made.
    advance(secs(10)).await;
    a.call(Ok(())).await.unwrap();
    for _ in 0..2 {
        a.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (2, 1));
    assert_eq!(a.runs.load(Ordering::SeqCst), 10);
    assert_eq!(b.runs.load(Ordering::SeqCst), 7);
}
