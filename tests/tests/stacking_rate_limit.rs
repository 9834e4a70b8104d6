//! The rate limiter and coalescing stacked with the other layers, both
//! ways: the attribute written first is the outer layer. Paused clock; body
//! runs, breaker counts, elapsed time and error kinds asserted exactly.

mod support;

use resilience::{circuit_breaker, coalesce, rate_limit, retry, timeout, CircuitState};
use std::sync::atomic::{AtomicU32, Ordering};
use support::{ms, state, status, ApiError};
use tokio::time::Instant;

fn limited<T: std::fmt::Debug>(r: &Result<T, ApiError>) -> bool {
    matches!(r, Err(ApiError::Resilience(e)) if e.is_rate_limited())
}

// ------------------------------------------------ breaker / rate limit

static CB_RL: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "srl-cb-rl", failure_threshold = 2, recovery_timeout = "10s")]
#[rate_limit(name = "srl-cb-rl", rate = 1, per = "1m")]
async fn breaker_over_rate_limit() -> Result<u32, ApiError> {
    Ok(CB_RL.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test(start_paused = true)]
async fn breaker_over_rate_limit_counts_refusals_as_failures() {
    assert_eq!(breaker_over_rate_limit().await, Ok(1));
    // As a full bulkhead below a breaker: the refusal is the call's error.
    assert!(limited(&breaker_over_rate_limit().await));
    assert!(limited(&breaker_over_rate_limit().await));
    assert_eq!(state("srl-cb-rl"), CircuitState::Open);
    assert_eq!(CB_RL.load(Ordering::SeqCst), 1, "refused calls never ran");
}

static RL_CB: AtomicU32 = AtomicU32::new(0);

#[rate_limit(name = "srl-rl-cb", rate = 1, per = "1m")]
#[circuit_breaker(name = "srl-rl-cb", failure_threshold = 2, recovery_timeout = "10s")]
async fn rate_limit_over_breaker() -> Result<u32, ApiError> {
    Ok(RL_CB.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_over_breaker_keeps_refusals_from_the_breaker() {
    assert_eq!(rate_limit_over_breaker().await, Ok(1));
    for _ in 0..5 {
        assert!(limited(&rate_limit_over_breaker().await));
    }
    assert_eq!(state("srl-rl-cb"), CircuitState::Closed);
    assert_eq!(status("srl-rl-cb").consecutive_failures, 0);
}

// ------------------------------------------------ retry / rate limit

static RL_RT: AtomicU32 = AtomicU32::new(0);

#[rate_limit(name = "srl-rl-rt", rate = 1, per = "1m")]
#[retry(max_attempts = 3, delay = "100ms")]
async fn rate_limit_over_retry() -> Result<u32, ApiError> {
    RL_RT.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_over_retry_takes_one_turn_for_every_attempt_of_a_call() {
    let start = Instant::now();
    assert_eq!(rate_limit_over_retry().await, Err(ApiError::Upstream));
    assert_eq!(
        RL_RT.load(Ordering::SeqCst),
        3,
        "three attempts on one turn"
    );
    assert_eq!(
        start.elapsed(),
        ms(100 + 200),
        "exponential sleeps, no turn needed"
    );
    assert!(limited(&rate_limit_over_retry().await));
    assert_eq!(RL_RT.load(Ordering::SeqCst), 3);
}

// (retry over rate limit, waiting the limiter's `retry_after`, is in
// tests/tests/rate_limit.rs.)

// ------------------------------------------------ timeout / rate limit

#[timeout("150ms")]
#[rate_limit(name = "srl-to-rl", rate = 10, burst = 1, max_wait = "1s")]
async fn timeout_over_rate_limit() -> Result<u32, ApiError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn timeout_over_rate_limit_bounds_the_wait_for_a_turn() {
    assert_eq!(timeout_over_rate_limit().await, Ok(1));
    assert_eq!(timeout_over_rate_limit().await, Ok(1), "a wait of 100 ms");
    // Two turns ahead are 100 and 200 ms off; the second wait is cut.
    let (a, b) = tokio::join!(timeout_over_rate_limit(), timeout_over_rate_limit());
    assert_eq!(a, Ok(1));
    assert!(
        matches!(b, Err(ApiError::Resilience(e)) if e.is_timeout()),
        "{b:?}"
    );
}

static RL_TO: AtomicU32 = AtomicU32::new(0);

#[rate_limit(name = "srl-rl-to", rate = 10, burst = 1, max_wait = "1s")]
#[timeout("50ms")]
async fn rate_limit_over_timeout(work_ms: u64) -> Result<u32, ApiError> {
    RL_TO.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(work_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_over_timeout_starts_the_clock_at_the_turn() {
    assert_eq!(rate_limit_over_timeout(0).await, Ok(1));
    let start = Instant::now();
    // Its turn is 100 ms off; then 40 ms of work fits in the 50 ms timeout.
    assert_eq!(rate_limit_over_timeout(40).await, Ok(1));
    assert_eq!(start.elapsed(), ms(140));
}

// ------------------------------------------------ coalesce / breaker, retry

static CO_RT: AtomicU32 = AtomicU32::new(0);

#[coalesce(key = id)]
#[retry(max_attempts = 3, delay = "100ms")]
async fn coalesce_over_retry(id: u32) -> Result<u32, ApiError> {
    if CO_RT.fetch_add(1, Ordering::SeqCst) % 3 < 2 {
        Err(ApiError::Upstream)
    } else {
        Ok(id)
    }
}

#[tokio::test(start_paused = true)]
async fn coalesce_over_retry_shares_one_retried_call() {
    let calls = (0..20).map(|_| coalesce_over_retry(4));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r == &Ok(4)), "{results:?}");
    assert_eq!(CO_RT.load(Ordering::SeqCst), 3, "one call's three attempts");
}

static RT_CO: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 2, delay = "100ms")]
#[coalesce(key = id)]
async fn retry_over_coalesce(id: u32) -> Result<u32, ApiError> {
    RT_CO.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(10)).await;
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn retry_over_coalesce_shares_each_attempt() {
    let (a, b) = tokio::join!(retry_over_coalesce(1), retry_over_coalesce(1));
    assert_eq!((a, b), (Err(ApiError::Upstream), Err(ApiError::Upstream)));
    // Each caller's attempts share a run with the other's: two runs in all.
    assert_eq!(RT_CO.load(Ordering::SeqCst), 2);
}

// ------------------------------------------------ breaker, retry / adaptive bulkhead

static CB_AD: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "srl-cb-ad", failure_threshold = 2, recovery_timeout = "10s")]
#[resilience::bulkhead(
    name = "srl-cb-ad",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1
)]
async fn breaker_over_adaptive(hold_ms: u64) -> Result<u32, ApiError> {
    CB_AD.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(hold_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn breaker_over_adaptive_counts_a_full_bulkhead_as_a_failure() {
    let holder = tokio::spawn(breaker_over_adaptive(1_000));
    tokio::time::sleep(ms(1)).await;
    for _ in 0..2 {
        let r = breaker_over_adaptive(0).await;
        assert!(
            matches!(r, Err(ApiError::Resilience(e)) if e.is_bulkhead_full()),
            "{r:?}"
        );
    }
    assert_eq!(state("srl-cb-ad"), CircuitState::Open);
    assert_eq!(CB_AD.load(Ordering::SeqCst), 1, "rejected calls never ran");
    holder.await.unwrap().unwrap();
}

static RT_AD: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, delay = "100ms")]
#[resilience::bulkhead(
    name = "srl-rt-ad",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1
)]
async fn retry_over_adaptive(hold_ms: u64) -> Result<u32, ApiError> {
    RT_AD.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(hold_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn retry_over_adaptive_retries_a_full_bulkhead_without_holding_a_slot() {
    let holder = tokio::spawn(retry_over_adaptive(150));
    tokio::time::sleep(ms(1)).await;
    let start = Instant::now();
    // Full at 1 ms and at 101 ms; the slot is free by the third attempt (301 ms).
    assert_eq!(retry_over_adaptive(0).await, Ok(1));
    assert_eq!(start.elapsed(), ms(300));
    assert_eq!(
        RT_AD.load(Ordering::SeqCst),
        2,
        "the holder and the third attempt"
    );
    holder.await.unwrap().unwrap();
}

static AD_CB: AtomicU32 = AtomicU32::new(0);

#[resilience::bulkhead(
    name = "srl-ad-cb",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1
)]
#[circuit_breaker(name = "srl-ad-cb", failure_threshold = 1, recovery_timeout = "10s")]
async fn adaptive_over_breaker(hold_ms: u64) -> Result<u32, ApiError> {
    AD_CB.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(hold_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn adaptive_over_breaker_keeps_rejections_from_the_breaker() {
    let holder = tokio::spawn(adaptive_over_breaker(1_000));
    tokio::time::sleep(ms(1)).await;
    for _ in 0..3 {
        let r = adaptive_over_breaker(0).await;
        assert!(
            matches!(r, Err(ApiError::Resilience(e)) if e.is_bulkhead_full()),
            "{r:?}"
        );
    }
    assert_eq!(
        state("srl-ad-cb"),
        CircuitState::Closed,
        "a threshold of 1, never reached"
    );
    assert_eq!(AD_CB.load(Ordering::SeqCst), 1);
    holder.await.unwrap().unwrap();
}

static AD_RT: AtomicU32 = AtomicU32::new(0);

#[resilience::bulkhead(
    name = "srl-ad-rt",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1,
    latency_threshold = "10s"
)]
#[retry(max_attempts = 3, delay = "100ms", backoff = "fixed")]
async fn adaptive_over_retry() -> Result<u32, ApiError> {
    AD_RT.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn adaptive_over_retry_holds_one_slot_for_the_whole_retried_call() {
    let call = tokio::spawn(adaptive_over_retry());
    tokio::time::sleep(ms(50)).await;
    // Sleeping between attempts, the call still holds the only slot.
    let r = adaptive_over_retry().await;
    assert!(
        matches!(r, Err(ApiError::Resilience(e)) if e.is_bulkhead_full()),
        "{r:?}"
    );
    assert_eq!(call.await.unwrap(), Err(ApiError::Upstream));
    assert_eq!(AD_RT.load(Ordering::SeqCst), 3);
}

static TO_AD: AtomicU32 = AtomicU32::new(0);

#[timeout("50ms")]
#[resilience::bulkhead(
    name = "srl-to-ad",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1,
    max_wait = "1s"
)]
async fn timeout_over_adaptive(hold_ms: u64) -> Result<u32, ApiError> {
    TO_AD.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(hold_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn timeout_over_adaptive_covers_the_wait_for_a_slot() {
    let holder = tokio::spawn(timeout_over_adaptive(40));
    tokio::time::sleep(ms(1)).await;
    let start = Instant::now();
    // Waits 39 ms for the slot, then runs 40 ms: past the 50 ms timeout.
    let r = timeout_over_adaptive(40).await;
    assert!(
        matches!(r, Err(ApiError::Resilience(e)) if e.is_timeout()),
        "{r:?}"
    );
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(holder.await.unwrap(), Ok(1));
}

static AD_TO: AtomicU32 = AtomicU32::new(0);

#[resilience::bulkhead(
    name = "srl-ad-to",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1,
    max_wait = "1s"
)]
#[timeout("50ms")]
async fn adaptive_over_timeout(hold_ms: u64) -> Result<u32, ApiError> {
    AD_TO.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(ms(hold_ms)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn adaptive_over_timeout_starts_the_timeout_once_the_slot_is_taken() {
    let holder = tokio::spawn(adaptive_over_timeout(40));
    tokio::time::sleep(ms(1)).await;
    let start = Instant::now();
    // 39 ms for the slot, then 40 ms of the 50 ms timeout.
    assert_eq!(adaptive_over_timeout(40).await, Ok(1));
    assert_eq!(start.elapsed(), ms(79));
    assert_eq!(holder.await.unwrap(), Ok(1));
}
