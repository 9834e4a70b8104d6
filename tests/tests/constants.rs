//! Keys written as constants and const expressions, and durations in the one
//! grammar (`"1m30s"`, `"500 ms"`), through every attribute: what they build
//! is what a literal would have built. (A bad constant is a compile error
//! naming its key: `tests/ui/*constant*`.)

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{bulkhead, circuit_breaker, registry, resilient, retry, timeout};
use support::ApiError;

mod config {
    use std::time::Duration;

    pub const THRESHOLD: u32 = 3;
    pub const OPEN: Duration = Duration::from_secs(90);
    pub const RATE: f64 = 0.25;
}

const ATTEMPTS: u32 = 4;
const DELAY: Duration = Duration::from_millis(250);

#[circuit_breaker(
    name = "const-breaker",
    failure_threshold = config::THRESHOLD,
    recovery_timeout = config::OPEN,
    success_threshold = config::THRESHOLD - 1
)]
async fn with_constants() -> Result<(), ApiError> {
    Ok(())
}

#[circuit_breaker(
    name = "const-rate",
    failure_rate = config::RATE,
    window = "1m",
    min_calls = 2 * 10
)]
async fn with_a_constant_rate() -> Result<(), ApiError> {
    Ok(())
}

#[circuit_breaker(name = "humantime", recovery_timeout = "1m30s", slow_call = "500 ms")]
async fn with_humantime() -> Result<(), ApiError> {
    Ok(())
}

#[tokio::test]
async fn constants_configure_the_breaker_as_literals_would() {
    with_constants().await.unwrap();
    let c = *registry().get("const-breaker").unwrap().config();
    assert_eq!(c.failure_threshold().get(), 3);
    assert_eq!(c.recovery_timeout(), Duration::from_secs(90));
    assert_eq!(c.success_threshold().get(), 2);

    with_a_constant_rate().await.unwrap();
    let c = *registry().get("const-rate").unwrap().config();
    assert_eq!(c.failure_rate(), Some(0.25));
    assert_eq!(c.min_calls().get(), 20);
    assert_eq!(
        c.window(),
        Some(resilience::Window::Time(Duration::from_secs(60)))
    );
}

#[tokio::test]
async fn durations_read_the_humantime_grammar() {
    with_humantime().await.unwrap();
    let c = *registry().get("humantime").unwrap().config();
    assert_eq!(c.recovery_timeout(), Duration::from_secs(90));
    assert_eq!(c.slow_call(), Some(Duration::from_millis(500)));
}

static RETRIED: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = ATTEMPTS, backoff = "fixed", delay = DELAY)]
async fn retried() -> Result<(), ApiError> {
    RETRIED.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn a_constant_retry_schedule_runs_as_written() {
    let start = tokio::time::Instant::now();
    assert!(matches!(retried().await, Err(ApiError::Upstream)));
    assert_eq!(RETRIED.load(Ordering::SeqCst), 4);
    assert_eq!(start.elapsed(), DELAY * 3, "three sleeps of 250 ms");
}

const LIMIT: u32 = 1;
const PATIENCE: Duration = Duration::from_millis(10);
const BOUND: Duration = Duration::from_secs(1);

#[bulkhead(name = "const-bulkhead", max_concurrent = LIMIT, max_wait = PATIENCE)]
#[timeout(BOUND)]
async fn bounded(hang: bool) -> Result<(), ApiError> {
    if hang {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn constant_bulkhead_limits_and_timeouts_apply() {
    let status = |name: &str| {
        registry()
            .snapshot()
            .bulkheads
            .into_iter()
            .find(|b| &*b.name == name)
    };
    bounded(false).await.unwrap();
    let b = status("const-bulkhead").expect("the bulkhead exists");
    assert_eq!(b.max_concurrent, 1);
    let start = tokio::time::Instant::now();
    match bounded(true).await {
        Err(ApiError::Resilience(e)) if e.is_timeout() => {
            assert_eq!(e.timeout_after(), Some(BOUND))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), BOUND);
}

#[resilient(
    name = "const-resilient",
    failure_threshold = config::THRESHOLD,
    max_attempts = ATTEMPTS - 3,
    timeout = BOUND,
    max_concurrent = LIMIT
)]
async fn everything(ok: bool) -> Result<(), ApiError> {
    if ok {
        Ok(())
    } else {
        Err(ApiError::Upstream)
    }
}

#[tokio::test(start_paused = true)]
async fn resilient_takes_constants_for_every_layer() {
    everything(true).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(everything(false).await, Err(ApiError::Upstream)));
    }
    let b = registry().get("const-resilient").unwrap();
    assert_eq!(
        b.state(),
        resilience::CircuitState::Open,
        "3 failures, 1 attempt each"
    );
}
