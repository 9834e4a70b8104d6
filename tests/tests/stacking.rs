//! Stacked attributes read top-down; `#[resilient]` composes breaker -> retry
//! -> timeout -> body. Counted body runs and breaker outcomes, paused clock.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{circuit_breaker, registry, resilient, retry, timeout, CircuitState, Error};
use support::state;
use tokio::time::Instant;

fn is_open(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Error>()
        .is_some_and(Error::is_circuit_open)
}

static OUTER_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "stack-breaker-outer", failure_threshold = 2)]
#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
async fn breaker_outside() -> anyhow::Result<()> {
    OUTER_RUNS.fetch_add(1, Ordering::SeqCst);
    anyhow::bail!("down")
}

#[tokio::test(start_paused = true)]
async fn breaker_over_retry_records_one_outcome_per_retried_call() {
    let start = Instant::now();
    let err = breaker_outside().await.unwrap_err();
    assert_eq!(err.to_string(), "down", "the last error, unchanged");
    assert_eq!(OUTER_RUNS.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let status = registry().get("stack-breaker-outer").unwrap().status();
    assert_eq!(status.consecutive_failures, 1, "3 attempts, 1 outcome");

    assert!(breaker_outside().await.is_err());
    assert_eq!(OUTER_RUNS.load(Ordering::SeqCst), 6);
    assert_eq!(state("stack-breaker-outer"), CircuitState::Open);

    // Open: rejected before any attempt, no sleeping.
    let start = Instant::now();
    assert!(is_open(&breaker_outside().await.unwrap_err()));
    assert_eq!(OUTER_RUNS.load(Ordering::SeqCst), 6);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

static INNER_RUNS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 5, backoff = "fixed", delay = "1s")]
#[circuit_breaker(name = "stack-breaker-inner", failure_threshold = 2)]
async fn breaker_inside() -> anyhow::Result<()> {
    INNER_RUNS.fetch_add(1, Ordering::SeqCst);
    anyhow::bail!("down")
}

#[tokio::test(start_paused = true)]
async fn retry_over_breaker_passes_every_attempt_and_stops_when_it_opens() {
    let start = Instant::now();
    let err = breaker_inside().await.unwrap_err();
    // Attempt 2's failure opened the circuit: the retry stops right there
    // with that failure, without sleeping against the open circuit.
    assert_eq!(err.to_string(), "down");
    assert_eq!(INNER_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(state("stack-breaker-inner"), CircuitState::Open);

    // Already open: the first attempt is rejected and the retry ends at once
    // with CircuitOpen.
    let start = Instant::now();
    assert!(is_open(&breaker_inside().await.unwrap_err()));
    assert_eq!(INNER_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

static RESILIENT_RUNS: AtomicU32 = AtomicU32::new(0);

/// Hangs on its first attempt of each call, answers on the second.
#[resilient(
    name = "stack-resilient",
    failure_threshold = 2,
    recovery_timeout = "60s",
    max_attempts = 2,
    backoff = "fixed",
    delay = "500ms",
    timeout = "30s"
)]
async fn hangs_once(answer: u32) -> anyhow::Result<u32> {
    let run = RESILIENT_RUNS.fetch_add(1, Ordering::SeqCst);
    if run.is_multiple_of(2) {
        std::future::pending::<()>().await;
    }
    Ok(answer)
}

#[tokio::test(start_paused = true)]
async fn resilient_times_out_one_attempt_and_retries_it() {
    let start = Instant::now();
    assert_eq!(hangs_once(7).await.unwrap(), 7);
    assert_eq!(start.elapsed(), Duration::from_millis(30_500));
    assert_eq!(RESILIENT_RUNS.load(Ordering::SeqCst), 2);
    let status = registry().get("stack-resilient").unwrap().status();
    assert_eq!(status.consecutive_failures, 0, "the retried call succeeded");
}

static SLOW_RUNS: AtomicU32 = AtomicU32::new(0);

#[resilient(
    name = "stack-slow",
    failure_threshold = 1,
    max_attempts = 2,
    delay = 1,
    timeout = "100ms"
)]
async fn always_slow() -> anyhow::Result<()> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timed_out_attempts_fail_the_breaker_after_the_retries() {
    let err = always_slow().await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Error>(),
        Some(&Error::timeout(Duration::from_millis(100)))
    );
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(state("stack-slow"), CircuitState::Open);
    assert!(is_open(&always_slow().await.unwrap_err()));
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 2);
}

static T_RUNS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
#[timeout("2s")]
async fn per_attempt_timeout() -> anyhow::Result<u32> {
    let run = T_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if run < 3 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    Ok(run)
}

#[tokio::test(start_paused = true)]
async fn retry_over_timeout_bounds_each_attempt() {
    let start = Instant::now();
    assert_eq!(per_attempt_timeout().await.unwrap(), 3);
    // 2 s timeout + 1 s sleep, twice.
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

#[timeout("1500ms")]
#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
async fn whole_call_timeout() -> anyhow::Result<u32> {
    anyhow::bail!("never works")
}

#[tokio::test(start_paused = true)]
async fn timeout_over_retry_bounds_the_whole_call() {
    let start = Instant::now();
    let err = whole_call_timeout().await.unwrap_err();
    assert!(err.downcast_ref::<Error>().unwrap().is_timeout());
    // Cut during the second sleep, not after the third attempt at 2 s.
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

#[resilient(name = "stack-defaults")]
async fn resilient_defaults() -> anyhow::Result<()> {
    anyhow::bail!("down")
}

#[tokio::test(start_paused = true)]
async fn resilient_defaults_are_five_failures_and_three_attempts() {
    let start = Instant::now();
    for call in 1..=5 {
        assert!(!is_open(&resilient_defaults().await.unwrap_err()));
        let s = registry().get("stack-defaults").unwrap().status();
        assert_eq!(s.failure_threshold, 5);
        if call < 5 {
            assert_eq!(s.consecutive_failures, call);
        }
    }
    // Each call: 3 attempts with 1 s + 2 s between them.
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(state("stack-defaults"), CircuitState::Open);
    let s = registry().get("stack-defaults").unwrap().status();
    assert_eq!(s.retry_after, Some(Duration::from_secs(60)));
}
