//! `Ok` values that are failures (an HTTP 503 is an `Ok` response; a job API
//! answers `Ok(Status::Pending)`): `failure_if_ok` counts them for the
//! breaker, `retry_if_ok` retries them, on the paused clock.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{circuit_breaker, registry, resilient, retry, CircuitState};
use support::ApiError;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct Response {
    status: u16,
}

static HTTP_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "ok-503",
    failure_threshold = 2,
    recovery_timeout = "30s",
    failure_if_ok = |r: &Response| r.status >= 500
)]
async fn http(status: u16) -> Result<Response, ApiError> {
    HTTP_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(Response { status })
}

#[tokio::test(start_paused = true)]
async fn an_ok_the_classifier_calls_a_failure_opens_the_circuit_but_reaches_the_caller() {
    assert_eq!(http(200).await.unwrap().status, 200);
    // The caller gets the 503 responses as they are...
    assert_eq!(http(503).await.unwrap().status, 503);
    assert_eq!(
        registry().get("ok-503").unwrap().state(),
        CircuitState::Closed
    );
    assert_eq!(http(503).await.unwrap().status, 503);
    // ...and the breaker counted them: 2 consecutive failures open it.
    assert_eq!(
        registry().get("ok-503").unwrap().state(),
        CircuitState::Open
    );
    assert!(support::is_open(&http(200).await));
    assert_eq!(HTTP_RUNS.load(Ordering::SeqCst), 3, "not run while open");
    // A 200 is a success: it closes the circuit from half-open.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(http(200).await.unwrap().status, 200);
    assert_eq!(
        registry().get("ok-503").unwrap().state(),
        CircuitState::Closed
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    Pending,
    Done(u32),
}

static POLLS: AtomicU32 = AtomicU32::new(0);

/// Done on the third poll.
#[retry(
    max_attempts = 5,
    backoff = "fixed",
    delay = "1s",
    retry_if_ok = |s| matches!(s, Status::Pending)
)]
async fn job() -> Result<Status, ApiError> {
    let n = POLLS.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(if n < 3 {
        Status::Pending
    } else {
        Status::Done(n)
    })
}

#[tokio::test(start_paused = true)]
async fn an_ok_the_classifier_retries_is_retried_until_it_is_not() {
    let start = Instant::now();
    assert_eq!(job().await, Ok(Status::Done(3)));
    assert_eq!(start.elapsed(), Duration::from_secs(2), "two sleeps of 1 s");
}

static NEVER: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, backoff = "fixed", delay = "1s", retry_if_ok = |s: &Status| *s == Status::Pending)]
async fn never_done() -> Result<Status, ApiError> {
    NEVER.fetch_add(1, Ordering::SeqCst);
    Ok(Status::Pending)
}

#[tokio::test(start_paused = true)]
async fn a_retried_ok_that_runs_out_is_returned_unchanged() {
    assert_eq!(never_done().await, Ok(Status::Pending));
    assert_eq!(NEVER.load(Ordering::SeqCst), 3);
}

static BOTH: AtomicU32 = AtomicU32::new(0);

/// Both at once: every attempt answers 503; the breaker sees one failure per
/// call (the retried call's last `Ok`), the retry re-runs each.
#[resilient(
    name = "ok-resilient",
    failure_threshold = 1,
    recovery_timeout = "1m",
    failure_if_ok = |r: &Response| r.status == 503,
    max_attempts = 2,
    backoff = "fixed",
    delay = "100ms",
    retry_if_ok = |r: &Response| r.status == 503
)]
async fn flaky() -> Result<Response, ApiError> {
    BOTH.fetch_add(1, Ordering::SeqCst);
    Ok(Response { status: 503 })
}

#[tokio::test(start_paused = true)]
async fn resilient_classifies_and_retries_oks() {
    assert_eq!(flaky().await.unwrap().status, 503);
    assert_eq!(BOTH.load(Ordering::SeqCst), 2, "retried once");
    assert_eq!(
        registry().get("ok-resilient").unwrap().state(),
        CircuitState::Open,
        "the call's last Ok was a failure"
    );
    assert!(support::is_open(&flaky().await));
    assert_eq!(BOTH.load(Ordering::SeqCst), 2);
}
