//! `#[circuit_breaker]` trip rules through the attribute, on the paused
//! clock: consecutive failures (the default), failures in a rolling time
//! window, a failure rate over the last calls or over time, slow calls and
//! their own rate, and an open time that grows with each failed probe.
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use resilience::{circuit_breaker, registry, CircuitState, TransitionCause};
use support::breaker::{caused_by, rejected, transition, ApiError};
use support::{secs, state, status};
use tokio::time::advance;

use ApiError::Timeout;
use CircuitState::{Closed, Open};

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
static TIME_WINDOW_OPENED: Mutex<Vec<support::breaker::Seen>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-time-window",
    failure_threshold = 5,
    window = "60s",
    on_open = |t| TIME_WINDOW_OPENED.lock().unwrap().push(support::breaker::Seen::from(t))
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
static RATE_OPENED: Mutex<Vec<support::breaker::Seen>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-rate-calls",
    failure_rate = 0.5,
    window = 10,
    on_open = |t| RATE_OPENED.lock().unwrap().push(support::breaker::Seen::from(t))
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

static SLOW_RATE_OPENED: Mutex<Vec<support::breaker::Seen>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-slow-rate",
    slow_call = "1s",
    slow_call_rate = 0.5,
    window = 4,
    min_calls = 4,
    on_open = |t| SLOW_RATE_OPENED.lock().unwrap().push(support::breaker::Seen::from(t))
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
