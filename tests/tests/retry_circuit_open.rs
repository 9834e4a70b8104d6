//! `#[retry]` over a `#[circuit_breaker]`, on the paused clock: a
//! circuit-open rejection is never retried, even when `retry_if` or
//! `retry_on` would retry it, and the retry resumes once the circuit lets a
//! probe through.

mod support;

use std::time::Duration;

use resilience::{circuit_breaker, retry};
use support::retry::{fails, ok, ApiError, Upstream};
use support::secs as s;
use tokio::time::Instant;

use ApiError::Timeout;

fn always(_: &ApiError) -> bool {
    true
}

impl Upstream {
    #[retry(max_attempts = 5, backoff = "fixed", delay = "1s", retry_if = always)]
    #[circuit_breaker(name = "rp-open-if", failure_threshold = 1)]
    async fn over_breaker_retry_if(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "1s",
        retry_on = [ApiError::Timeout, ApiError::Resilience(..)]
    )]
    #[circuit_breaker(name = "rp-open-on", failure_threshold = 1, recovery_timeout = "10s")]
    async fn over_breaker_retry_on(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

fn is_circuit_open(r: &Result<u32, ApiError>) -> bool {
    matches!(
        r,
        Err(ApiError::Resilience(e)) if e.is_circuit_open()
    )
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_never_retried_even_when_retry_if_says_so() {
    let up = Upstream::new([fails(Timeout)]);
    assert_eq!(up.over_breaker_retry_if().await, Err(Timeout));
    assert_eq!(up.attempts(), 1, "this failure opened the circuit");

    let up = Upstream::new([]);
    let start = Instant::now();
    let result = up.over_breaker_retry_if().await;
    assert!(is_circuit_open(&result), "{result:?}");
    assert_eq!(up.attempts(), 0);
    assert_eq!(start.elapsed(), Duration::ZERO, "no sleeping against it");
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_never_retried_even_when_retry_on_matches_it() {
    let up = Upstream::new([fails(Timeout)]);
    assert_eq!(up.over_breaker_retry_on().await, Err(Timeout));

    let up = Upstream::new([]);
    let start = Instant::now();
    assert!(is_circuit_open(&up.over_breaker_retry_on().await));
    assert_eq!(start.elapsed(), Duration::ZERO);

    // After the recovery timeout the probe runs, and the retry resumes.
    tokio::time::advance(s(10)).await;
    let up = Upstream::new([ok(1)]);
    assert_eq!(up.over_breaker_retry_on().await, Ok(1));
}
