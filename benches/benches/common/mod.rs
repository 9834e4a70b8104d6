//! What both benchmarks call: the protected `async fn`, its error, and the
//! annotated functions and runtime calls the rows measure.

use std::fmt;
use std::time::Duration;

use resilience::{circuit_breaker, resilient, retry, BreakerConfig, CircuitBreaker, Outcome};

#[derive(Debug)]
pub enum BenchError {
    /// The body failed.
    Failed,
    /// A resilience layer failed the call (circuit open).
    Layer(resilience::Error),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Failed => f.write_str("the upstream failed"),
            BenchError::Layer(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<resilience::Error> for BenchError {
    fn from(e: resilience::Error) -> Self {
        BenchError::Layer(e)
    }
}

/// The protected call of every row: an `async fn` that fails when asked to.
pub async fn upstream(fail: bool) -> Result<u64, BenchError> {
    if fail {
        Err(BenchError::Failed)
    } else {
        Ok(1)
    }
}

pub fn ours_breaker(failure_threshold: u32, recovery_timeout: Duration) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .failure_threshold(failure_threshold)
        .recovery_timeout(recovery_timeout)
        .build()
        .expect("valid breaker config");
    CircuitBreaker::new("bench-runtime", config)
}

/// Our runtime API by hand, as a user writes it in their own `async fn`:
/// `try_acquire`, the call, `record`.
pub async fn ours_api(breaker: &CircuitBreaker, fail: bool) -> Result<u64, BenchError> {
    let permit = breaker.try_acquire()?;
    let result = upstream(fail).await;
    permit.record(Outcome::of(&result));
    result
}

#[circuit_breaker(name = "bench-closed", failure_threshold = 5, recovery_timeout = "1h")]
pub async fn macro_closed(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[circuit_breaker(
    name = "bench-alternate",
    failure_threshold = 5,
    recovery_timeout = "1h"
)]
pub async fn macro_alternate(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[circuit_breaker(name = "bench-open", failure_threshold = 1, recovery_timeout = "1h")]
pub async fn macro_open(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[retry(max_attempts = 3, backoff = "exponential", delay = "100ms")]
pub async fn macro_retry(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[resilient(
    name = "bench-resilient",
    failure_threshold = 5,
    recovery_timeout = "1h",
    max_attempts = 3,
    backoff = "exponential",
    delay = "100ms"
)]
pub async fn macro_resilient(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

/// A client whose breaker is named at run time.
pub struct Client {
    pub name: String,
}

impl Client {
    #[circuit_breaker(name = self.name.as_str(), failure_threshold = 5, recovery_timeout = "1h")]
    pub async fn get(&self, fail: bool) -> Result<u64, BenchError> {
        upstream(fail).await
    }
}
