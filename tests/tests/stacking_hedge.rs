//! `#[hedge]` stacked with the other layers, both ways: the attribute
//! written first is the outer layer. Paused clock; body runs, breaker
//! counts, slots, elapsed time and error kinds asserted exactly.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{
    bulkhead, circuit_breaker, coalesce, hedge, rate_limit, registry, retry, timeout, CircuitState,
};
use support::{in_flight, ms, state, status, ApiError};
use tokio::time::{sleep, Instant};

/// The hedge named `name`'s (calls, hedges started, hedges won).
fn hedged(name: &str) -> (u64, u64, u64) {
    let s = registry().hedge(name, &Default::default()).status();
    (s.calls, s.hedges, s.hedges_won)
}

// ------------------------------------------------ breaker / hedge

static CB_H: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "sh-cb-h", failure_threshold = 2)]
#[hedge(name = "sh-cb-h", delay = "10ms", max_hedges = 2)]
async fn breaker_over_hedge() -> Result<u32, ApiError> {
    CB_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(5)).await;
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn breaker_over_hedge_counts_one_outcome_per_hedged_call() {
    let start = Instant::now();
    assert_eq!(breaker_over_hedge().await, Err(ApiError::Upstream));
    // Each failure started the next hedge at once: three attempts, 5 ms each.
    assert_eq!(CB_H.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), ms(15));
    assert_eq!(
        status("sh-cb-h").consecutive_failures,
        1,
        "one call, one failure"
    );
    assert_eq!(breaker_over_hedge().await, Err(ApiError::Upstream));
    assert_eq!(state("sh-cb-h"), CircuitState::Open);
    // Open: rejected before any attempt.
    assert!(support::is_open(&breaker_over_hedge().await));
    assert_eq!(CB_H.load(Ordering::SeqCst), 6);
}

static H_CB: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "sh-h-cb", delay = "10ms", max_hedges = 2)]
#[circuit_breaker(name = "sh-h-cb", failure_threshold = 5)]
async fn hedge_over_breaker() -> Result<u32, ApiError> {
    H_CB.fetch_add(1, Ordering::SeqCst);
    sleep(ms(5)).await;
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn hedge_over_breaker_passes_every_attempt_through_the_breaker() {
    assert_eq!(hedge_over_breaker().await, Err(ApiError::Upstream));
    assert_eq!(H_CB.load(Ordering::SeqCst), 3);
    assert_eq!(
        status("sh-h-cb").consecutive_failures,
        3,
        "each attempt counted"
    );
    // The fifth failure opens the circuit: the hedge after it is not started.
    assert_eq!(hedge_over_breaker().await, Err(ApiError::Upstream));
    assert_eq!(state("sh-h-cb"), CircuitState::Open);
    assert_eq!(H_CB.load(Ordering::SeqCst), 5);
    assert_eq!(
        hedged("sh-h-cb"),
        (2, 3, 0),
        "2 + 1 hedges, the last one refused"
    );
}

// ------------------------------------------------ timeout / hedge

static H_TO: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "sh-h-to", delay = "1s", max_hedges = 1)]
#[timeout("30ms")]
async fn hedge_over_timeout() -> Result<u32, ApiError> {
    let n = H_TO.fetch_add(1, Ordering::SeqCst);
    sleep(if n == 0 { ms(10_000) } else { ms(5) }).await;
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn hedge_over_timeout_bounds_each_attempt_and_a_timed_out_one_is_hedged_at_once() {
    let start = Instant::now();
    assert_eq!(hedge_over_timeout().await, Ok(1));
    assert_eq!(
        start.elapsed(),
        ms(35),
        "30 ms timeout, then the hedge's 5 ms"
    );
}

static TO_H: AtomicU32 = AtomicU32::new(0);

#[timeout("50ms")]
#[hedge(name = "sh-to-h", delay = "10ms", max_hedges = 2)]
async fn timeout_over_hedge() -> Result<u32, ApiError> {
    TO_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(10_000)).await;
    Ok(0)
}

#[tokio::test(start_paused = true)]
async fn timeout_over_hedge_bounds_the_whole_hedged_call() {
    let start = Instant::now();
    let err = timeout_over_hedge().await.unwrap_err();
    assert!(matches!(err, ApiError::Resilience(e) if e.is_timeout()));
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(TO_H.load(Ordering::SeqCst), 3, "started at 0, 10 and 20 ms");
}

// ------------------------------------------------ retry / hedge

static RT_H: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 2, delay = "100ms", backoff = "fixed")]
#[hedge(name = "sh-rt-h", delay = "10ms", max_hedges = 1)]
async fn retry_over_hedge() -> Result<u32, ApiError> {
    RT_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(1)).await;
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn retry_over_hedge_hedges_every_attempt() {
    let start = Instant::now();
    assert_eq!(retry_over_hedge().await, Err(ApiError::Upstream));
    assert_eq!(
        RT_H.load(Ordering::SeqCst),
        4,
        "two retried attempts of two runs"
    );
    assert_eq!(start.elapsed(), ms(1 + 1 + 100 + 1 + 1));
    assert_eq!(hedged("sh-rt-h"), (2, 2, 0));
}

static H_RT: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "sh-h-rt", delay = "50ms", max_hedges = 1)]
#[retry(max_attempts = 3, delay = "100ms", backoff = "fixed")]
async fn hedge_over_retry() -> Result<u32, ApiError> {
    let n = H_RT.fetch_add(1, Ordering::SeqCst);
    sleep(ms(1)).await;
    if n == 0 {
        Err(ApiError::Upstream)
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn hedge_over_retry_races_whole_retried_calls() {
    // The first retried call failed once and sleeps 100 ms; the hedge, a
    // second retried call started at 50 ms, answers first.
    let start = Instant::now();
    assert_eq!(hedge_over_retry().await, Ok(1));
    assert_eq!(start.elapsed(), ms(51));
    assert_eq!(H_RT.load(Ordering::SeqCst), 2);
    assert_eq!(hedged("sh-h-rt"), (1, 1, 1));
}

// ------------------------------------------------ bulkhead / hedge

static BH_H: AtomicU32 = AtomicU32::new(0);

#[bulkhead(name = "sh-bh-h", max_concurrent = 1)]
#[hedge(name = "sh-bh-h", delay = "10ms", max_hedges = 1)]
async fn bulkhead_over_hedge() -> Result<u32, ApiError> {
    BH_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn bulkhead_over_hedge_holds_one_slot_for_every_attempt() {
    let call = tokio::spawn(bulkhead_over_hedge());
    sleep(ms(20)).await;
    assert_eq!(BH_H.load(Ordering::SeqCst), 2, "the hedge started");
    assert_eq!(in_flight("sh-bh-h"), 1, "one slot for the call");
    assert_eq!(call.await.unwrap(), Ok(1));
    assert_eq!(in_flight("sh-bh-h"), 0);
}

static H_BH: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "sh-h-bh", delay = "10ms", max_hedges = 1)]
#[bulkhead(name = "sh-h-bh", max_concurrent = 1)]
async fn hedge_over_bulkhead() -> Result<u32, ApiError> {
    H_BH.fetch_add(1, Ordering::SeqCst);
    sleep(ms(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn hedge_over_bulkhead_takes_a_slot_per_attempt_and_never_exceeds_it() {
    let start = Instant::now();
    assert_eq!(hedge_over_bulkhead().await, Ok(1));
    assert_eq!(start.elapsed(), ms(100), "the first attempt answered");
    assert_eq!(
        H_BH.load(Ordering::SeqCst),
        1,
        "the hedge found the bulkhead full"
    );
    assert_eq!(hedged("sh-h-bh"), (1, 1, 0));
}

// ------------------------------------------------ rate limit / hedge

static RL_H: AtomicU32 = AtomicU32::new(0);

#[rate_limit(name = "sh-rl-h", rate = 1, per = "1m")]
#[hedge(name = "sh-rl-h", delay = "10ms", max_hedges = 1)]
async fn rate_limit_over_hedge() -> Result<u32, ApiError> {
    RL_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_over_hedge_takes_one_turn_per_call() {
    assert_eq!(rate_limit_over_hedge().await, Ok(1));
    assert_eq!(RL_H.load(Ordering::SeqCst), 2, "both attempts on one turn");
    let refused = rate_limit_over_hedge().await.unwrap_err();
    assert!(matches!(refused, ApiError::Resilience(e) if e.is_rate_limited()));
    assert_eq!(RL_H.load(Ordering::SeqCst), 2);
}

static H_RL: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "sh-h-rl", delay = "10ms", max_hedges = 1)]
#[rate_limit(name = "sh-h-rl", rate = 1, per = "1m")]
async fn hedge_over_rate_limit() -> Result<u32, ApiError> {
    H_RL.fetch_add(1, Ordering::SeqCst);
    sleep(ms(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn hedge_over_rate_limit_takes_a_turn_per_attempt() {
    assert_eq!(hedge_over_rate_limit().await, Ok(1));
    assert_eq!(H_RL.load(Ordering::SeqCst), 1, "the hedge had no turn");
    assert_eq!(hedged("sh-h-rl"), (1, 1, 0));
}

// ------------------------------------------------ coalesce / hedge

static CO_H: AtomicU32 = AtomicU32::new(0);

#[coalesce(key = id)]
#[hedge(name = "sh-co-h", delay = "10ms", max_hedges = 1)]
async fn coalesce_over_hedge(id: u64) -> Result<u64, ApiError> {
    CO_H.fetch_add(1, Ordering::SeqCst);
    sleep(ms(100)).await;
    Ok(id)
}

#[tokio::test(start_paused = true)]
async fn coalesce_over_hedge_shares_one_hedged_run() {
    let calls = (0..10).map(|_| coalesce_over_hedge(7));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| *r == Ok(7)));
    assert_eq!(
        CO_H.load(Ordering::SeqCst),
        2,
        "one call and its hedge for ten callers"
    );
    assert_eq!(hedged("sh-co-h"), (1, 1, 0));
}

// ------------------------------------------------ fallback

static FB: AtomicU32 = AtomicU32::new(0);

async fn cached(_error: ApiError) -> Result<u32, ApiError> {
    Ok(0)
}

#[hedge(name = "sh-fallback", delay = "10ms", max_hedges = 1, fallback = cached)]
async fn with_fallback() -> Result<u32, ApiError> {
    FB.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn a_fallback_answers_once_every_attempt_failed() {
    assert_eq!(with_fallback().await, Ok(0));
    assert_eq!(FB.load(Ordering::SeqCst), 2);
}
