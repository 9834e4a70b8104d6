//! `#[coalesce]`: concurrent calls of one key share one run, distinct keys
//! run apart, nothing is cached, and coalescing sits above a breaker so the
//! waiting callers take no permit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{circuit_breaker, coalesce, registry};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Layer(#[from] resilience::Error),
}

static RUNS: AtomicU32 = AtomicU32::new(0);

#[coalesce(key = id)]
async fn profile(id: u64) -> Result<String, ApiError> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if id == 0 {
        Err(ApiError::NotFound)
    } else {
        Ok(format!("user-{id}"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_hundred_callers_of_one_key_cause_one_run() {
    RUNS.store(0, Ordering::SeqCst);
    let calls = (0..100).map(|_| profile(7));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.as_deref() == Ok("user-7")));
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    // Not a cache: the next call runs again.
    profile(7).await.unwrap();
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
    // Distinct keys run apart, at the same time; errors are shared too.
    RUNS.store(0, Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    let (a, b, c, d) = tokio::join!(profile(1), profile(2), profile(0), profile(0));
    assert_eq!((a.unwrap(), b.unwrap()), ("user-1".into(), "user-2".into()));
    assert_eq!((c, d), (Err(ApiError::NotFound), Err(ApiError::NotFound)));
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
}

static BREAKER_RUNS: AtomicU32 = AtomicU32::new(0);

struct Client;

impl Client {
    #[coalesce(key = name)]
    #[circuit_breaker(name = "coalesce-lookup", failure_threshold = 2)]
    async fn lookup(&self, name: &str) -> Result<usize, ApiError> {
        BREAKER_RUNS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(ApiError::NotFound)
    }
}

#[tokio::test(start_paused = true)]
async fn callers_waiting_on_a_key_take_no_permit_of_the_breaker_below() {
    let client = Client;
    let calls = (0..10).map(|_| client.lookup("ada"));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r == &Err(ApiError::NotFound)));
    assert_eq!(BREAKER_RUNS.load(Ordering::SeqCst), 1);
    // One failure for the breaker, not ten: still closed.
    let breaker = registry().get("coalesce-lookup").unwrap();
    assert_eq!(breaker.state(), resilience::CircuitState::Closed);
}

static SLOW_RUNS: AtomicU32 = AtomicU32::new(0);

#[coalesce(key = id)]
async fn slow(id: u64) -> Result<u64, ApiError> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(id)
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_over_to_a_waiting_caller() {
    let leader = tokio::spawn(slow(9));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let follower = tokio::spawn(slow(9));
    tokio::time::sleep(Duration::from_millis(10)).await;
    leader.abort();
    assert_eq!(follower.await.unwrap().unwrap(), 9);
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        2,
        "the follower ran its own body"
    );
}
