//! `#[retry]`'s `retry_after` on the paused clock: a server's hint replaces
//! the computed delay, capped by `max_delay` when there is one, taken as is
//! otherwise; a path or a closure. Each test checks the attempts' exact start
//! times.

mod support;

use std::time::Duration;

use resilience::retry;
use support::retry::{fails, ok, server_hint, ApiError, Upstream};
use support::{ms, secs as s};
use tokio::time::Instant;

use ApiError::{RateLimited, Timeout, Unavailable};

impl Upstream {
    #[retry(
        max_attempts = 6,
        backoff = "fixed",
        delay = "1s",
        max_delay = "10s",
        retry_after = server_hint
    )]
    async fn hinted_capped(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(max_attempts = 3, backoff = "fixed", delay = "1s", retry_after = server_hint)]
    async fn hinted_uncapped(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 3,
        backoff = "exponential",
        delay = "1s",
        retry_after = |e: &ApiError| match e {
            RateLimited { retry_after } => Some(*retry_after * 2),
            _ => None,
        }
    )]
    async fn hinted_by_closure(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_delay_capped_by_max_delay() {
    let up = Upstream::new([
        fails(Unavailable(Some(s(3)))),            // hint 3 s
        fails(Unavailable(None)),                  // no hint: the fixed 1 s
        fails(RateLimited { retry_after: s(60) }), // hint 60 s, capped to 10 s
        fails(Unavailable(Some(ms(250)))),         // hint below the base delay
        fails(Unavailable(Some(Duration::ZERO))),  // retry at once
        ok(6),
    ]);
    let start = Instant::now();
    assert_eq!(up.hinted_capped().await, Ok(6));
    assert_eq!(
        up.started(),
        [s(0), s(3), s(4), s(14), ms(14_250), ms(14_250)]
    );
    assert_eq!(start.elapsed(), ms(14_250));
}

#[tokio::test(start_paused = true)]
async fn retry_after_without_max_delay_is_taken_as_is() {
    let up = Upstream::new([
        fails(RateLimited {
            retry_after: s(120),
        }),
        fails(Timeout),
        fails(Timeout),
    ]);
    assert_eq!(up.hinted_uncapped().await, Err(Timeout));
    assert_eq!(up.started(), [s(0), s(120), s(121)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_takes_a_closure() {
    let up = Upstream::new([
        fails(RateLimited { retry_after: s(5) }), // the closure doubles it
        fails(Timeout),                           // computed: 2 s (second delay)
        ok(3),
    ]);
    assert_eq!(up.hinted_by_closure().await, Ok(3));
    assert_eq!(up.started(), [s(0), s(10), s(12)]);
}
