//! Which errors count for `#[circuit_breaker]`, on the paused clock:
//! `ignore_if` (neither a failure nor a success, and out of the window),
//! `failure_if` and `failure_on` patterns (the other errors are successes).
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{circuit_breaker, CircuitState};
use support::breaker::{rejected, ApiError};
use support::{secs, state, status};
use tokio::time::advance;

use ApiError::{BadRequest, NotFound, Timeout, Unavailable};
use CircuitState::{Closed, HalfOpen, Open};

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
