//! `#[retry]`'s `on_retry` on the paused clock: it receives the attempt, the
//! error and the next delay (a server's hint included), is never called for
//! an error that is not retried nor after the last attempt, and as a closure
//! may use `self`.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use resilience::retry;
use support::retry::{fails, is_transient, ok, server_hint, ApiError, Upstream};
use support::{ms, secs as s};

use ApiError::{BadRequest, Timeout, Unavailable};

static LOGGED: Mutex<Vec<(u32, ApiError, Duration)>> = Mutex::new(Vec::new());

fn log_retry(attempt: u32, error: &ApiError, delay: Duration) {
    LOGGED.lock().unwrap().push((attempt, error.clone(), delay));
}

impl Upstream {
    #[retry(max_attempts = 4, backoff = "exponential", delay = "1s", on_retry = log_retry)]
    async fn logged_by_path(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    /// The closure runs in the function's body, so it may use `self`.
    #[retry(
        max_attempts = 4,
        backoff = "linear",
        delay = "100ms",
        retry_after = server_hint,
        retry_if = is_transient,
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn logged_by_closure(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn on_retry_receives_the_attempt_the_error_and_the_next_delay() {
    let up = Upstream::new([
        fails(Timeout),
        fails(Unavailable(None)),
        fails(BadRequest(3)),
        fails(BadRequest(4)),
    ]);
    assert_eq!(up.logged_by_path().await, Err(BadRequest(4)));
    // No call after the last attempt: nothing is retried then.
    assert_eq!(
        *LOGGED.lock().unwrap(),
        [
            (1, Timeout, s(1)),
            (2, Unavailable(None), s(2)),
            (3, BadRequest(3), s(4)),
        ]
    );
    assert_eq!(up.started(), [s(0), s(1), s(3), s(7)]);
}

#[tokio::test(start_paused = true)]
async fn on_retry_closure_sees_hints_and_is_not_called_for_errors_not_retried() {
    let up = Upstream::new([
        fails(Timeout),
        fails(Unavailable(Some(s(7)))),
        fails(BadRequest(3)), // not transient: ends the call, no on_retry
    ]);
    assert_eq!(up.logged_by_closure().await, Err(BadRequest(3)));
    assert_eq!(
        up.retries(),
        [(1, Timeout, ms(100)), (2, Unavailable(Some(s(7))), s(7))]
    );
    assert_eq!(up.started(), [s(0), ms(100), ms(7_100)]);

    let up = Upstream::new([ok(1)]);
    assert_eq!(up.logged_by_closure().await, Ok(1));
    assert_eq!(up.retries(), [], "no retry, no call");
}
