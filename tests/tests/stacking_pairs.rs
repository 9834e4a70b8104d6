//! Every ordered pair of `#[circuit_breaker]`, `#[retry]`, `#[timeout]` and
//! `#[bulkhead]` not covered by `tests/stacking.rs` (which has breaker/retry
//! and retry/timeout both ways). The attribute written first is the outer
//! layer. Paused clock; body runs, breaker counts, slots, elapsed time and
//! error kinds asserted exactly.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{bulkhead, circuit_breaker, retry, timeout, CircuitState};
use support::{in_flight, is_open, ms, settle, status, ApiError};
use tokio::time::Instant;

/// What one run of a body does.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Answers `Ok` after this many milliseconds.
    Answer(u64),
    /// Fails at once.
    Fail,
    /// Never answers.
    Hang,
}

use Work::{Answer, Fail, Hang};

async fn run(runs: &AtomicU32, work: Work) -> Result<u32, ApiError> {
    let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
    match work {
        Answer(after) => {
            tokio::time::sleep(ms(after)).await;
            Ok(run)
        }
        Fail => Err(ApiError::Upstream),
        Hang => std::future::pending().await,
    }
}

fn timed_out(after: u64) -> ApiError {
    ApiError::Resilience(resilience::Error::timeout(ms(after)))
}

/// What the full bulkhead `name` (of one slot) answers.
fn full(name: &str) -> ApiError {
    let e = resilience::__private::bulkhead_full_of(name).expect("the bulkhead exists");
    assert_eq!(e.max_concurrent(), Some(1));
    ApiError::Resilience(e)
}

// ------------------------------------------------ circuit_breaker / timeout

static CB_TO: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "sp-cb-to", failure_threshold = 2, recovery_timeout = "10s")]
#[timeout("1s")]
async fn breaker_over_timeout(work: Work) -> Result<u32, ApiError> {
    run(&CB_TO, work).await
}

/// A timed-out call is a failure for the breaker around it.
#[tokio::test(start_paused = true)]
async fn breaker_over_timeout_counts_each_timeout_as_a_failure() {
    let start = Instant::now();
    assert_eq!(breaker_over_timeout(Hang).await, Err(timed_out(1_000)));
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(status("sp-cb-to").consecutive_failures, 1);

    assert_eq!(
        breaker_over_timeout(Answer(1_500)).await,
        Err(timed_out(1_000))
    );
    assert_eq!(status("sp-cb-to").state, CircuitState::Open);

    // Open: rejected at once, the body does not run, no timeout is waited.
    let start = Instant::now();
    assert!(is_open(&breaker_over_timeout(Answer(0)).await));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(CB_TO.load(Ordering::SeqCst), 2);

    // The probe is bounded by the timeout as well; a fast one closes.
    tokio::time::advance(ms(10_000)).await;
    assert_eq!(breaker_over_timeout(Answer(999)).await, Ok(3));
    assert_eq!(status("sp-cb-to").state, CircuitState::Closed);
}

static TO_CB: AtomicU32 = AtomicU32::new(0);

#[timeout("1s")]
#[circuit_breaker(name = "sp-to-cb", failure_threshold = 1, recovery_timeout = "10s")]
async fn timeout_over_breaker(work: Work) -> Result<u32, ApiError> {
    run(&TO_CB, work).await
}

/// The timeout cancels the breaker's call, and a cancelled call records
/// nothing: timeouts never trip an inner breaker, and a timed-out probe
/// frees its slot.
#[tokio::test(start_paused = true)]
async fn timeout_over_breaker_cancels_the_call_which_records_nothing() {
    for _ in 0..3 {
        assert_eq!(timeout_over_breaker(Hang).await, Err(timed_out(1_000)));
    }
    let s = status("sp-to-cb");
    assert_eq!((s.state, s.consecutive_failures), (CircuitState::Closed, 0));

    // A real failure opens it; the open circuit answers before any timeout.
    assert_eq!(timeout_over_breaker(Fail).await, Err(ApiError::Upstream));
    let start = Instant::now();
    assert!(is_open(&timeout_over_breaker(Answer(0)).await));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(TO_CB.load(Ordering::SeqCst), 4);

    // Half-open: the probe times out, its slot is free for the next probe.
    tokio::time::advance(ms(10_000)).await;
    assert_eq!(timeout_over_breaker(Hang).await, Err(timed_out(1_000)));
    assert_eq!(status("sp-to-cb").state, CircuitState::HalfOpen);
    assert_eq!(status("sp-to-cb").probes_in_flight, 0);
    assert_eq!(timeout_over_breaker(Answer(10)).await, Ok(6));
    assert_eq!(status("sp-to-cb").state, CircuitState::Closed);
}

// ----------------------------------------------- circuit_breaker / bulkhead

static CB_BH: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "sp-cb-bh", failure_threshold = 2, recovery_timeout = "10s")]
#[bulkhead(name = "sp-cb-bh", max_concurrent = 1, max_wait = "100ms")]
async fn breaker_over_bulkhead(work: Work) -> Result<u32, ApiError> {
    run(&CB_BH, work).await
}

/// A rejection by the bulkhead is an error of the call like any other: the
/// breaker around it counts it (as Hystrix and resilience4j do). An open
/// circuit rejects before a slot is taken.
#[tokio::test(start_paused = true)]
async fn breaker_over_bulkhead_counts_rejections_and_rejects_before_the_slot() {
    let holder = tokio::spawn(breaker_over_bulkhead(Answer(5_000)));
    settle().await;
    assert_eq!(in_flight("sp-cb-bh"), 1);

    let start = Instant::now();
    assert_eq!(
        breaker_over_bulkhead(Answer(0)).await,
        Err(full("sp-cb-bh"))
    );
    assert_eq!(start.elapsed(), ms(100), "waited max_wait");
    assert_eq!(status("sp-cb-bh").consecutive_failures, 1);
    assert_eq!(
        breaker_over_bulkhead(Answer(0)).await,
        Err(full("sp-cb-bh"))
    );
    assert_eq!(status("sp-cb-bh").state, CircuitState::Open);

    let start = Instant::now();
    assert!(is_open(&breaker_over_bulkhead(Answer(0)).await));
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting for a slot");
    assert_eq!(CB_BH.load(Ordering::SeqCst), 1, "only the holder ran");

    // The holder was admitted while closed: its success is recorded, and
    // the circuit it finds open stays open.
    assert_eq!(holder.await.unwrap(), Ok(1));
    assert_eq!(status("sp-cb-bh").state, CircuitState::Open);
    assert_eq!(in_flight("sp-cb-bh"), 0);
}

static BH_CB: AtomicU32 = AtomicU32::new(0);

#[bulkhead(name = "sp-bh-cb", max_concurrent = 1)]
#[circuit_breaker(name = "sp-bh-cb", failure_threshold = 1, recovery_timeout = "10s")]
async fn bulkhead_over_breaker(work: Work) -> Result<u32, ApiError> {
    run(&BH_CB, work).await
}

/// Calls the bulkhead rejects never reach the breaker; a call the open
/// circuit rejects gives its slot back at once.
#[tokio::test(start_paused = true)]
async fn bulkhead_over_breaker_keeps_rejections_from_the_breaker() {
    let holder = tokio::spawn(bulkhead_over_breaker(Answer(1_000)));
    settle().await;
    for _ in 0..3 {
        assert_eq!(bulkhead_over_breaker(Fail).await, Err(full("sp-bh-cb")));
    }
    let s = status("sp-bh-cb");
    assert_eq!((s.state, s.consecutive_failures), (CircuitState::Closed, 0));
    assert_eq!(holder.await.unwrap(), Ok(1));

    assert_eq!(bulkhead_over_breaker(Fail).await, Err(ApiError::Upstream));
    assert_eq!(status("sp-bh-cb").state, CircuitState::Open);
    assert!(is_open(&bulkhead_over_breaker(Answer(0)).await));
    assert_eq!(in_flight("sp-bh-cb"), 0, "the rejected call's slot is back");
    assert_eq!(BH_CB.load(Ordering::SeqCst), 2);
}

// ------------------------------------------------------- retry / bulkhead

static RE_BH: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
#[bulkhead(name = "sp-re-bh", max_concurrent = 1)]
async fn retry_over_bulkhead(work: Work) -> Result<u32, ApiError> {
    run(&RE_BH, work).await
}

/// Each attempt takes a slot of its own: a rejection is retried, and no slot
/// is held while sleeping between attempts.
#[tokio::test(start_paused = true)]
async fn retry_over_bulkhead_retries_rejections_and_sleeps_without_a_slot() {
    let holder = tokio::spawn(retry_over_bulkhead(Answer(1_500)));
    settle().await;
    let start = Instant::now();
    // Rejected at 0 s and 1 s; the holder leaves at 1.5 s; in at 2 s.
    assert_eq!(retry_over_bulkhead(Answer(0)).await, Ok(2));
    assert_eq!(start.elapsed(), ms(2_000));
    assert_eq!(holder.await.unwrap(), Ok(1));

    // Every attempt rejected: the last rejection reaches the caller.
    let holder = tokio::spawn(retry_over_bulkhead(Answer(10_000)));
    settle().await;
    assert_eq!(retry_over_bulkhead(Answer(0)).await, Err(full("sp-re-bh")));
    holder.abort();
    let _ = holder.await;

    // A failing call gives its slot back while it sleeps.
    let failing = tokio::spawn(retry_over_bulkhead(Fail));
    settle().await;
    assert_eq!(in_flight("sp-re-bh"), 0, "asleep after attempt 1");
    assert_eq!(retry_over_bulkhead(Answer(0)).await, Ok(5));
    assert_eq!(failing.await.unwrap(), Err(ApiError::Upstream));
    assert_eq!(RE_BH.load(Ordering::SeqCst), 7, "4 + 3 failing attempts");
}

static BH_RE: AtomicU32 = AtomicU32::new(0);

#[bulkhead(name = "sp-bh-re", max_concurrent = 1, max_wait = "10s")]
#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
async fn bulkhead_over_retry(work: Work) -> Result<u32, ApiError> {
    run(&BH_RE, work).await
}

/// One slot covers the whole retried call, sleeps included.
#[tokio::test(start_paused = true)]
async fn bulkhead_over_retry_holds_one_slot_across_attempts_and_sleeps() {
    let failing = tokio::spawn(bulkhead_over_retry(Fail));
    settle().await;
    assert_eq!(in_flight("sp-bh-re"), 1, "held while asleep");

    let start = Instant::now();
    assert_eq!(bulkhead_over_retry(Answer(0)).await, Ok(4));
    assert_eq!(start.elapsed(), ms(2_000), "waited for all 3 attempts");
    assert_eq!(failing.await.unwrap(), Err(ApiError::Upstream));
    assert_eq!(in_flight("sp-bh-re"), 0);
}

// ------------------------------------------------------ timeout / bulkhead

static TO_BH: AtomicU32 = AtomicU32::new(0);

#[timeout("1s")]
#[bulkhead(name = "sp-to-bh", max_concurrent = 1, max_wait = "10s")]
async fn timeout_over_bulkhead(work: Work) -> Result<u32, ApiError> {
    run(&TO_BH, work).await
}

/// The timeout covers waiting for a slot: the caller gets `Timeout` after
/// 1 s rather than `BulkheadFull` after 10 s, and stops waiting.
#[tokio::test(start_paused = true)]
async fn timeout_over_bulkhead_bounds_the_wait_for_a_slot() {
    let holder = tokio::spawn(timeout_over_bulkhead(Answer(900)));
    settle().await;
    let start = Instant::now();
    // Waits 900 ms for the slot, runs 200 ms: cut at 1 s.
    assert_eq!(
        timeout_over_bulkhead(Answer(200)).await,
        Err(timed_out(1_000))
    );
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(holder.await.unwrap(), Ok(1));
    assert_eq!(in_flight("sp-to-bh"), 0, "the cut call's slot is back");

    // A hog without a timeout holds the shared slot for 5 s: the waiter is
    // cut at 1 s without ever running, and leaves the queue.
    let hog = tokio::spawn(hog_to_bh());
    settle().await;
    let start = Instant::now();
    assert_eq!(
        timeout_over_bulkhead(Answer(0)).await,
        Err(timed_out(1_000))
    );
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(TO_BH.load(Ordering::SeqCst), 2, "the waiter never ran");
    assert_eq!(in_flight("sp-to-bh"), 1, "the hog only");
    assert_eq!(hog.await.unwrap(), Ok(0));
    assert_eq!(in_flight("sp-to-bh"), 0);
}

/// Shares `timeout_over_bulkhead`'s bulkhead, without a timeout.
#[bulkhead(name = "sp-to-bh", max_concurrent = 1, max_wait = "10s")]
async fn hog_to_bh() -> Result<u32, ApiError> {
    tokio::time::sleep(ms(5_000)).await;
    Ok(0)
}

static BH_TO: AtomicU32 = AtomicU32::new(0);

#[bulkhead(name = "sp-bh-to", max_concurrent = 1, max_wait = "10s")]
#[timeout("1s")]
async fn bulkhead_over_timeout(work: Work) -> Result<u32, ApiError> {
    run(&BH_TO, work).await
}

/// The timeout starts once the slot is taken: waiting does not count, and a
/// timed-out call gives its slot back.
#[tokio::test(start_paused = true)]
async fn bulkhead_over_timeout_starts_the_clock_in_the_slot() {
    let holder = tokio::spawn(bulkhead_over_timeout(Answer(900)));
    settle().await;
    let start = Instant::now();
    assert_eq!(bulkhead_over_timeout(Answer(800)).await, Ok(2));
    assert_eq!(
        start.elapsed(),
        ms(1_700),
        "900 ms waiting + 800 ms running"
    );
    assert_eq!(holder.await.unwrap(), Ok(1));

    let start = Instant::now();
    assert_eq!(bulkhead_over_timeout(Hang).await, Err(timed_out(1_000)));
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(in_flight("sp-bh-to"), 0);
    assert_eq!(bulkhead_over_timeout(Answer(0)).await, Ok(4));
}
