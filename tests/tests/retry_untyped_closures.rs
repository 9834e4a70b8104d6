//! Closures without type annotations in `#[retry]` (`retry_if`,
//! `retry_after`, `on_retry`) and `#[circuit_breaker]` (`ignore_if`,
//! `failure_if`) get the error type, on the paused clock.

mod support;

use std::sync::Mutex;

use resilience::{circuit_breaker, registry, retry};
use support::retry::{fails, ApiError, Upstream};
use support::secs as s;

use ApiError::{BadRequest, Timeout, Unavailable};

static UNANNOTATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Upstream {
    /// Regression: the closures were called as `(closure)(error)`, so rustc
    /// typed `e` from the body first (`ApiError` from the pattern, or "type
    /// annotations needed" for the method call) and rejected the call.
    #[retry(
        max_attempts = 4,
        backoff = "fixed",
        delay = "1s",
        retry_if = |e| e.is_retryable(),
        retry_after = |e| match e { Unavailable(hint) => *hint, _ => None },
        on_retry = |n, e, d| UNANNOTATED.lock().unwrap().push(format!("{n} {e} {}", d.as_secs()))
    )]
    #[circuit_breaker(
        name = "rp-unannotated",
        failure_threshold = 2,
        ignore_if = |e| matches!(e, Unavailable(_)),
        failure_if = |e| e.is_retryable()
    )]
    async fn unannotated_closures(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn closures_without_annotations_get_the_error_type() {
    let up = Upstream::new([
        fails(Unavailable(Some(s(5)))), // retried after the hint; ignored by the breaker
        fails(Timeout),                 // retried after 1 s; a failure
        fails(BadRequest(1)),           // not retried; a success for the breaker
    ]);
    assert_eq!(up.unannotated_closures().await, Err(BadRequest(1)));
    assert_eq!(up.started(), [s(0), s(5), s(6)]);
    assert_eq!(
        *UNANNOTATED.lock().unwrap(),
        ["1 unavailable 5", "2 timed out 1"]
    );
    let status = registry().get("rp-unannotated").unwrap().status();
    assert_eq!(status.consecutive_failures, 0, "reset by the success");
    assert_eq!(status.state, resilience::CircuitState::Closed);
}
