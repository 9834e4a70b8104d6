//! Which errors `#[retry]` retries, on the paused clock: `retry_if` (a path
//! or a closure) and `retry_on` patterns (unit and tuple variants, nested
//! patterns, bindings, the timeout of an inner layer). Each test counts the
//! attempts and checks their start times.

mod support;

use resilience::{retry, timeout};
use support::retry::{fails, hangs, is_transient, ok, ApiError, Upstream};
use support::secs as s;

use ApiError::{BadRequest, RateLimited, Timeout, Unavailable};

impl Upstream {
    #[retry(max_attempts = 5, backoff = "fixed", delay = "1s", retry_if = is_transient)]
    async fn retry_if_path(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "1s",
        retry_if = |e| matches!(e, Timeout | RateLimited { .. })
    )]
    async fn retry_if_closure(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "1s",
        retry_on = [ApiError::Timeout, ApiError::Unavailable(..)]
    )]
    async fn retry_on_variants(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "1s",
        retry_on = [Unavailable(Some(_)), RateLimited { .. }, BadRequest(429 | 503)]
    )]
    async fn retry_on_nested(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    /// A pattern that is not an expression (`ref`, `@` bindings).
    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "1s",
        retry_on = [Unavailable(Some(ref _wait))]
    )]
    async fn retry_on_bindings(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn retry_if_path_stops_at_once_on_an_error_it_rejects() {
    let up = Upstream::new([fails(BadRequest(400))]);
    assert_eq!(up.retry_if_path().await, Err(BadRequest(400)));
    assert_eq!(up.started(), [s(0)]);

    let up = Upstream::new([
        fails(Timeout),
        fails(Unavailable(None)),
        fails(BadRequest(1)),
        ok(4),
    ]);
    assert_eq!(up.retry_if_path().await, Err(BadRequest(1)));
    assert_eq!(up.started(), [s(0), s(1), s(2)]);

    let up = Upstream::new([fails(Timeout), fails(Unavailable(None)), ok(3)]);
    assert_eq!(up.retry_if_path().await, Ok(3));
    assert_eq!(up.started(), [s(0), s(1), s(2)]);
}

#[tokio::test(start_paused = true)]
async fn retry_if_closure_stops_at_once_on_an_error_it_rejects() {
    let up = Upstream::new([
        fails(RateLimited { retry_after: s(9) }),
        fails(Timeout),
        fails(Unavailable(None)),
        ok(4),
    ]);
    assert_eq!(up.retry_if_closure().await, Err(Unavailable(None)));
    assert_eq!(up.started(), [s(0), s(1), s(2)]);
}

#[tokio::test(start_paused = true)]
async fn retry_on_matches_unit_and_tuple_variants_only() {
    let up = Upstream::new([
        fails(Timeout),
        fails(Unavailable(Some(s(1)))),
        fails(Unavailable(None)),
        fails(RateLimited { retry_after: s(1) }),
        ok(5),
    ]);
    assert_eq!(
        up.retry_on_variants().await,
        Err(RateLimited { retry_after: s(1) })
    );
    assert_eq!(up.started(), [s(0), s(1), s(2), s(3)]);

    let up = Upstream::new([fails(BadRequest(1))]);
    assert_eq!(up.retry_on_variants().await, Err(BadRequest(1)));
    assert_eq!(up.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_on_takes_nested_patterns() {
    let up = Upstream::new([
        fails(Unavailable(Some(s(5)))),
        fails(RateLimited { retry_after: s(5) }),
        fails(BadRequest(503)),
        fails(BadRequest(429)),
        ok(5),
    ]);
    assert_eq!(up.retry_on_nested().await, Ok(5));
    assert_eq!(up.attempts(), 5);

    for stop in [Unavailable(None), BadRequest(500), Timeout] {
        let up = Upstream::new([fails(BadRequest(429)), fails(stop.clone())]);
        assert_eq!(up.retry_on_nested().await, Err(stop));
        assert_eq!(up.started(), [s(0), s(1)]);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_on_takes_patterns_that_are_not_expressions() {
    let up = Upstream::new([
        fails(Unavailable(Some(s(1)))),
        fails(Unavailable(Some(s(2)))),
        ok(3),
    ]);
    assert_eq!(up.retry_on_bindings().await, Ok(3));
    let up = Upstream::new([fails(Unavailable(None))]);
    assert_eq!(up.retry_on_bindings().await, Err(Unavailable(None)));
    assert_eq!(up.attempts(), 1);
}

/// Each attempt is bounded by the inner timeout; `retry_on` names the
/// resilience error it produces.
#[retry(
    max_attempts = 3,
    backoff = "fixed",
    delay = "1s",
    retry_if = |e| matches!(e, ApiError::Resilience(r) if r.is_timeout())
)]
#[timeout("2s")]
async fn retried_timeouts(up: &Upstream) -> Result<u32, ApiError> {
    up.call().await
}

#[tokio::test(start_paused = true)]
async fn retry_on_can_name_the_timeout_of_an_inner_layer() {
    let up = Upstream::new([hangs(), hangs(), ok(3)]);
    assert_eq!(retried_timeouts(&up).await, Ok(3));
    assert_eq!(up.started(), [s(0), s(3), s(6)]);

    let up = Upstream::new([hangs(), fails(Timeout)]);
    assert_eq!(retried_timeouts(&up).await, Err(Timeout), "not a pattern");
    assert_eq!(up.attempts(), 2);
}
