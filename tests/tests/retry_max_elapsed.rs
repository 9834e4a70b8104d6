//! `#[retry]`'s `max_elapsed` deadline on the paused clock: no sleep that
//! would end past it is started, the attempt running at it is cancelled, a
//! server's hint that ends past it is refused, a call that ends in time is
//! left alone. Each test checks the attempts' exact start times.

mod support;

use std::sync::atomic::Ordering;

use resilience::retry;
use support::retry::{fails, hangs, server_hint, slow, ApiError, Upstream};
use support::secs as s;
use tokio::time::Instant;

use ApiError::{Timeout, Unavailable};

impl Upstream {
    #[retry(max_attempts = 10, backoff = "fixed", delay = "2s", max_elapsed = "5s")]
    async fn bounded_fast_failures(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(max_attempts = 10, backoff = "fixed", delay = "1s", max_elapsed = "5s")]
    async fn bounded(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 10,
        backoff = "fixed",
        delay = "1s",
        max_elapsed = "10s",
        retry_after = server_hint
    )]
    async fn bounded_hinted(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_starts_no_sleep_that_would_end_past_it() {
    let up = Upstream::new(vec![fails(Timeout); 10]);
    let start = Instant::now();
    // Attempts at 0 s, 2 s, 4 s; sleeping 2 s more would end at 6 s > 5 s, so
    // the call gives up at 4 s with the last error, unchanged.
    assert_eq!(up.bounded_fast_failures().await, Err(Timeout));
    assert_eq!(up.started(), [s(0), s(2), s(4)]);
    assert_eq!(start.elapsed(), s(4));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_cancels_the_attempt_running_at_the_deadline() {
    let up = Upstream::new([
        slow(s(2), Err(Timeout)), // 0 s .. 2 s, then 1 s of sleep
        hangs(),                  // 3 s .. cut at 5 s
    ]);
    let start = Instant::now();
    let err = up.bounded().await.unwrap_err();
    assert_eq!(err, ApiError::Resilience(resilience::Error::timeout(s(5))));
    assert_eq!(start.elapsed(), s(5), "exactly the deadline");
    assert_eq!(up.started(), [s(0), s(3)]);
    assert_eq!(up.finished.load(Ordering::SeqCst), 1, "attempt 2 cancelled");
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_cuts_a_slow_attempt_that_would_have_succeeded() {
    let up = Upstream::new([
        fails(Timeout),     // 0 s, then 1 s of sleep
        slow(s(10), Ok(2)), // 1 s .. would answer at 11 s: cut at 5 s
    ]);
    let start = Instant::now();
    assert_eq!(
        up.bounded().await,
        Err(ApiError::Resilience(resilience::Error::timeout(s(5))))
    );
    assert_eq!(start.elapsed(), s(5));
    assert_eq!(up.finished.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_refuses_a_server_hint_that_ends_past_it() {
    let up = Upstream::new([
        fails(Unavailable(Some(s(4)))),  // 0 s + 4 s < 10 s: slept
        fails(Unavailable(Some(s(30)))), // 4 s + 30 s > 10 s: gives up at once
    ]);
    let start = Instant::now();
    assert_eq!(up.bounded_hinted().await, Err(Unavailable(Some(s(30)))));
    assert_eq!(up.started(), [s(0), s(4)]);
    assert_eq!(start.elapsed(), s(4));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_does_not_touch_a_call_that_ends_in_time() {
    let up = Upstream::new([fails(Timeout), slow(s(3), Ok(2))]);
    let start = Instant::now();
    assert_eq!(up.bounded().await, Ok(2));
    assert_eq!(start.elapsed(), s(4), "1 s of sleep + 3 s attempt < 5 s");
}
