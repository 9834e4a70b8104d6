//! Every shape (`fn -> impl Future`, `#[async_trait]` methods, sync `fn`s;
//! `async fn` is covered by `stacking.rs`) through both stacking orders of
//! a breaker and a retry, with the same expectations:
//!
//! - breaker over retry: one breaker outcome per retried call; two calls
//!   whose attempts all fail open the breaker (threshold 2); then the body
//!   does not run;
//! - retry over breaker: every attempt passes the breaker; the attempt that
//!   opens it (threshold 2) ends the retry at once, so a call makes 2
//!   attempts out of 5, and the next is rejected without running.

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use resilience::{circuit_breaker, registry, retry, CircuitState};
use support::ApiError;

fn state(name: &str) -> CircuitState {
    registry().get(name).unwrap().state()
}

/// Checks the breaker-over-retry expectations for `call` (which always
/// fails) and its run counter.
async fn check_breaker_over_retry<F, Fut>(name: &str, runs: &AtomicU32, call: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u32, ApiError>>,
{
    assert_eq!(call().await, Err(ApiError::Upstream));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "{name}: 3 attempts, one breaker outcome"
    );
    assert_eq!(state(name), CircuitState::Closed, "{name}: 1 failure of 2");
    assert_eq!(call().await, Err(ApiError::Upstream));
    assert_eq!(state(name), CircuitState::Open, "{name}");
    assert!(support::is_open(&call().await), "{name}");
    assert_eq!(runs.load(Ordering::SeqCst), 6, "{name}: not run while open");
}

async fn check_retry_over_breaker<F, Fut>(name: &str, runs: &AtomicU32, call: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u32, ApiError>>,
{
    assert_eq!(call().await, Err(ApiError::Upstream));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "{name}: the second attempt opened it and ended the retry"
    );
    assert_eq!(state(name), CircuitState::Open, "{name}");
    assert!(support::is_open(&call().await), "{name}");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "{name}");
}

// ---- fn -> impl Future

static IF_OUTER: AtomicU32 = AtomicU32::new(0);
static IF_INNER: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "ss-if-outer", failure_threshold = 2, recovery_timeout = "1m")]
#[retry(max_attempts = 3, backoff = "fixed", delay = "10ms")]
fn if_breaker_over_retry() -> impl Future<Output = Result<u32, ApiError>> + Send {
    IF_OUTER.fetch_add(1, Ordering::SeqCst);
    async { Err(ApiError::Upstream) }
}

#[retry(max_attempts = 5, backoff = "fixed", delay = "10ms")]
#[circuit_breaker(name = "ss-if-inner", failure_threshold = 2, recovery_timeout = "1m")]
fn if_retry_over_breaker() -> impl Future<Output = Result<u32, ApiError>> + Send {
    IF_INNER.fetch_add(1, Ordering::SeqCst);
    async { Err(ApiError::Upstream) }
}

#[tokio::test(start_paused = true)]
async fn impl_future_fns_stack_both_ways() {
    check_breaker_over_retry("ss-if-outer", &IF_OUTER, if_breaker_over_retry).await;
    check_retry_over_breaker("ss-if-inner", &IF_INNER, if_retry_over_breaker).await;
}

// ---- #[async_trait] methods

static AT_OUTER: AtomicU32 = AtomicU32::new(0);
static AT_INNER: AtomicU32 = AtomicU32::new(0);

#[async_trait]
trait Upstream: Send + Sync {
    async fn outer(&self) -> Result<u32, ApiError>;
    async fn inner(&self) -> Result<u32, ApiError>;
}

struct Api;

#[async_trait]
impl Upstream for Api {
    #[circuit_breaker(name = "ss-at-outer", failure_threshold = 2, recovery_timeout = "1m")]
    #[retry(max_attempts = 3, backoff = "fixed", delay = "10ms")]
    async fn outer(&self) -> Result<u32, ApiError> {
        AT_OUTER.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Upstream)
    }

    #[retry(max_attempts = 5, backoff = "fixed", delay = "10ms")]
    #[circuit_breaker(name = "ss-at-inner", failure_threshold = 2, recovery_timeout = "1m")]
    async fn inner(&self) -> Result<u32, ApiError> {
        AT_INNER.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Upstream)
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_methods_stack_both_ways() {
    let api: Box<dyn Upstream> = Box::new(Api);
    check_breaker_over_retry("ss-at-outer", &AT_OUTER, || api.outer()).await;
    check_retry_over_breaker("ss-at-inner", &AT_INNER, || api.inner()).await;
}

// ---- synchronous fns (real clock: 1 ms delays)

static SY_OUTER: AtomicU32 = AtomicU32::new(0);
static SY_INNER: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "ss-sync-outer", failure_threshold = 2, recovery_timeout = "1m")]
#[retry(max_attempts = 3, backoff = "fixed", delay = "1ms")]
fn sync_breaker_over_retry() -> Result<u32, ApiError> {
    SY_OUTER.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[retry(max_attempts = 5, backoff = "fixed", delay = "1ms")]
#[circuit_breaker(name = "ss-sync-inner", failure_threshold = 2, recovery_timeout = "1m")]
fn sync_retry_over_breaker() -> Result<u32, ApiError> {
    SY_INNER.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test]
async fn sync_fns_stack_both_ways() {
    check_breaker_over_retry("ss-sync-outer", &SY_OUTER, || async {
        sync_breaker_over_retry()
    })
    .await;
    check_retry_over_breaker("ss-sync-inner", &SY_INNER, || async {
        sync_retry_over_breaker()
    })
    .await;
}

// ---- the other attributes on each shape: timeout, bulkhead, fallback

use resilience::{bulkhead, resilient, timeout};
use std::time::Duration;

#[timeout("1s")]
fn if_slow(hang: bool) -> impl Future<Output = Result<u32, ApiError>> + Send {
    async move {
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(1)
    }
}

async fn if_cached(_n: u32, _e: ApiError) -> Result<u32, ApiError> {
    Ok(0)
}

#[bulkhead(name = "ss-if-bulkhead", max_concurrent = 1, fallback = if_cached)]
fn if_limited(n: u32) -> impl Future<Output = Result<u32, ApiError>> + Send {
    async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn impl_future_fns_take_timeout_bulkhead_and_fallback() {
    assert_eq!(if_slow(false).await, Ok(1));
    match if_slow(true).await {
        Err(ApiError::Resilience(e)) => assert!(e.is_timeout()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let held = tokio::spawn(if_limited(5));
    support::settle().await;
    assert_eq!(if_limited(6).await, Ok(0), "full: the fallback answers");
    assert_eq!(held.await.unwrap(), Ok(5));
}

#[async_trait]
trait Slow: Send + Sync {
    async fn slow(&self, hang: bool) -> Result<u32, ApiError>;
    async fn limited(&self, n: u32) -> Result<u32, ApiError>;
}

struct Svc;

impl Svc {
    async fn cached(&self, _n: u32, _e: ApiError) -> Result<u32, ApiError> {
        Ok(0)
    }
}

#[async_trait]
impl Slow for Svc {
    #[resilient(
        name = "ss-at-resilient",
        timeout = "1s",
        max_attempts = 2,
        delay = "10ms"
    )]
    async fn slow(&self, hang: bool) -> Result<u32, ApiError> {
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(1)
    }

    #[bulkhead(name = "ss-at-bulkhead", max_concurrent = 1, fallback = Self::cached)]
    async fn limited(&self, n: u32) -> Result<u32, ApiError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_methods_take_timeout_bulkhead_and_fallback() {
    let svc: std::sync::Arc<dyn Slow> = std::sync::Arc::new(Svc);
    assert_eq!(svc.slow(false).await, Ok(1));
    let start = tokio::time::Instant::now();
    match svc.slow(true).await {
        Err(ApiError::Resilience(e)) => assert!(e.is_timeout()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(2010),
        "two attempts of 1 s, 10 ms apart"
    );
    let held = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.limited(5).await })
    };
    support::settle().await;
    assert_eq!(svc.limited(6).await, Ok(0), "full: the fallback answers");
    assert_eq!(held.await.unwrap(), Ok(5));
}
