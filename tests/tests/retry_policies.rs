//! `#[retry]` policies on the paused clock: `retry_after` hints, the
//! `max_elapsed` deadline, `retry_if` / `retry_on` classification, `on_retry`,
//! jitter, shared retry budgets, and circuit-open errors that are never
//! retried. Each test counts attempts and their exact start times.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use resilience::{circuit_breaker, registry, retry, timeout, RetryBudget};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("timed out")]
    Timeout,
    #[error("unavailable")]
    Unavailable(Option<Duration>),
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error("bad request {0}")]
    BadRequest(u32),
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

use ApiError::{BadRequest, RateLimited, Timeout, Unavailable};

impl ApiError {
    fn is_retryable(&self) -> bool {
        matches!(self, Timeout | Unavailable(_))
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What one attempt does: wait `hang` (forever when `None`), then answer.
#[derive(Clone)]
struct Step {
    hang: Option<Duration>,
    answer: Result<u32, ApiError>,
}

fn fails(e: ApiError) -> Step {
    Step {
        hang: Some(Duration::ZERO),
        answer: Err(e),
    }
}

fn ok(n: u32) -> Step {
    Step {
        hang: Some(Duration::ZERO),
        answer: Ok(n),
    }
}

fn slow(after: Duration, answer: Result<u32, ApiError>) -> Step {
    Step {
        hang: Some(after),
        answer,
    }
}

fn hangs() -> Step {
    Step {
        hang: None,
        answer: Ok(0),
    }
}

/// A scripted upstream: each attempt takes the next step and records when it
/// started and whether it finished.
struct Upstream {
    script: Mutex<VecDeque<Step>>,
    started: Mutex<Vec<Duration>>,
    finished: AtomicU32,
    retries: Mutex<Vec<(u32, ApiError, Duration)>>,
    origin: Instant,
}

impl Upstream {
    fn new(script: impl IntoIterator<Item = Step>) -> Self {
        Upstream {
            script: Mutex::new(script.into_iter().collect()),
            started: Mutex::new(Vec::new()),
            finished: AtomicU32::new(0),
            retries: Mutex::new(Vec::new()),
            origin: Instant::now(),
        }
    }

    async fn call(&self) -> Result<u32, ApiError> {
        self.started.lock().unwrap().push(self.origin.elapsed());
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .expect("an attempt beyond the script");
        match step.hang {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
        step.answer
    }

    fn started(&self) -> Vec<Duration> {
        self.started.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        self.started.lock().unwrap().len()
    }

    fn record_retry(&self, attempt: u32, error: &ApiError, delay: Duration) {
        self.retries
            .lock()
            .unwrap()
            .push((attempt, error.clone(), delay));
    }

    fn retries(&self) -> Vec<(u32, ApiError, Duration)> {
        self.retries.lock().unwrap().clone()
    }

    fn gaps(&self) -> Vec<Duration> {
        self.started().windows(2).map(|w| w[1] - w[0]).collect()
    }
}

// ---------------------------------------------------------------- retry_after

fn server_hint(e: &ApiError) -> Option<Duration> {
    match e {
        Unavailable(hint) => *hint,
        RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    }
}

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

// ---------------------------------------------------------------- max_elapsed

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
    assert_eq!(
        err,
        ApiError::Resilience(resilience::Error::Timeout { after: s(5) })
    );
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
        Err(ApiError::Resilience(resilience::Error::Timeout {
            after: s(5)
        }))
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

// ------------------------------------------------------- retry_if / retry_on

fn is_transient(e: &ApiError) -> bool {
    matches!(e, Timeout | Unavailable(_))
}

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
    retry_on = [ApiError::Resilience(resilience::Error::Timeout { .. })]
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

// ------------------------------------------------------------------- on_retry

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

// --------------------------------------------------------------------- jitter

impl Upstream {
    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        jitter = "full",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn full_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        jitter = "equal",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn equal_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        max_delay = "5s",
        jitter = "decorrelated",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn decorrelated_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

fn ceil_ms(d: Duration) -> Duration {
    ms(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap())
}

#[derive(Clone, Copy)]
enum Mode {
    Full,
    Equal,
    Decorrelated,
}

/// Runs 50 calls against an always-failing upstream and returns each call's
/// delays, after checking that the sleeps were those delays.
async fn jitter_samples(mode: Mode) -> Vec<Vec<Duration>> {
    let mut samples = Vec::new();
    for _ in 0..50 {
        let up = Upstream::new(vec![fails(Timeout); 4]);
        let result = match mode {
            Mode::Full => up.full_jitter().await,
            Mode::Equal => up.equal_jitter().await,
            Mode::Decorrelated => up.decorrelated_jitter().await,
        };
        assert_eq!(result, Err(Timeout));
        let delays: Vec<Duration> = up.retries().into_iter().map(|(_, _, d)| d).collect();
        assert_eq!(delays.len(), 3);
        // tokio's timer rounds a sleep up to the next millisecond.
        let slept: Vec<Duration> = delays.iter().map(|d| ceil_ms(*d)).collect();
        assert_eq!(up.gaps(), slept, "the sleeps are the reported delays");
        samples.push(delays);
    }
    samples
}

#[tokio::test(start_paused = true)]
async fn full_jitter_draws_each_delay_from_zero_to_the_computed_one() {
    let samples = jitter_samples(Mode::Full).await;
    let caps = [s(1), s(2), s(4)];
    for delays in &samples {
        assert_eq!(delays.len(), 3);
        for (d, cap) in delays.iter().zip(caps) {
            assert!(*d <= cap, "{d:?} > {cap:?}");
        }
    }
    assert!(
        samples.iter().any(|d| d[..] != caps[..]),
        "jitter applied at all"
    );
    assert!(
        samples.iter().any(|d| d[0] < ms(500)),
        "the lower half is reached"
    );
}

#[tokio::test(start_paused = true)]
async fn equal_jitter_draws_each_delay_from_half_to_the_computed_one() {
    let samples = jitter_samples(Mode::Equal).await;
    let caps = [s(1), s(2), s(4)];
    for delays in &samples {
        for (d, cap) in delays.iter().zip(caps) {
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
    }
    assert!(samples.iter().any(|d| d[..] != caps[..]));
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_draws_from_base_to_three_times_the_previous_capped() {
    let samples = jitter_samples(Mode::Decorrelated).await;
    for delays in &samples {
        let mut previous = s(1);
        for d in delays {
            let high = (previous * 3).min(s(5));
            assert!(*d >= s(1) && *d <= high, "{d:?} outside [1s, {high:?}]");
            previous = *d;
        }
    }
    assert!(
        samples.iter().any(|d| d.iter().any(|d| *d > s(3))),
        "grows past 3 × base once the previous delay grew"
    );
    assert!(samples.iter().any(|d| d[0] != d[1]));
}

// ---------------------------------------------------------------- retry budget

fn budget(name: &str, ttl: Duration, min_per_sec: u32, ratio: f64) {
    let budget = RetryBudget::new(name, ttl, min_per_sec, ratio).unwrap();
    registry()
        .configure_retry_budget(budget)
        .expect("budget configured before first use");
}

fn budget_status(name: &str) -> resilience::BudgetStatus {
    registry()
        .snapshot()
        .retry_budgets
        .into_iter()
        .find(|b| &*b.name == name)
        .expect("budget exists")
}

impl Upstream {
    #[retry(
        max_attempts = 3,
        backoff = "fixed",
        delay = "100ms",
        budget = "rp-floor"
    )]
    async fn floor_budgeted(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "100ms",
        budget = "rp-ratio"
    )]
    async fn ratio_budgeted(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_ends_the_retry_with_the_last_error_then_refills() {
    // 2 retries per 2 s window, whatever the traffic.
    budget("rp-floor", s(2), 1, 0.0);

    let up = Upstream::new([fails(Timeout), fails(Timeout), fails(BadRequest(3))]);
    assert_eq!(up.floor_budgeted().await, Err(BadRequest(3)));
    assert_eq!(up.started(), [ms(0), ms(100), ms(200)]);
    let status = budget_status("rp-floor");
    assert_eq!((status.calls, status.retries, status.available), (1, 2, 0));

    // Spent: the first error ends the call at once.
    let up = Upstream::new([fails(BadRequest(1))]);
    let start = Instant::now();
    assert_eq!(up.floor_budgeted().await, Err(BadRequest(1)));
    assert_eq!(up.attempts(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // Once the retries left the window, the budget grants them again.
    tokio::time::advance(s(2)).await;
    assert_eq!(budget_status("rp-floor").available, 2);
    let up = Upstream::new([fails(Timeout), ok(2)]);
    assert_eq!(up.floor_budgeted().await, Ok(2));
    assert_eq!(up.attempts(), 2);
    assert_eq!(budget_status("rp-floor").available, 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_grows_with_the_calls_made() {
    // No floor: each call earns half a retry.
    budget("rp-ratio", s(10), 0, 0.5);

    let up = Upstream::new([fails(Timeout)]);
    assert_eq!(up.ratio_budgeted().await, Err(Timeout), "1 call: 0 retries");
    assert_eq!(up.attempts(), 1);

    let up = Upstream::new([fails(Timeout), fails(Unavailable(None))]);
    assert_eq!(up.ratio_budgeted().await, Err(Unavailable(None)));
    assert_eq!(up.attempts(), 2, "2 calls: 1 retry");

    for _ in 0..4 {
        let up = Upstream::new([ok(1)]);
        assert_eq!(up.ratio_budgeted().await, Ok(1));
    }
    let up = Upstream::new(vec![fails(Timeout); 5]);
    assert_eq!(up.ratio_budgeted().await, Err(Timeout));
    assert_eq!(up.attempts(), 3, "7 calls: 3 retries, 1 taken before");
    let status = budget_status("rp-ratio");
    assert_eq!((status.calls, status.retries, status.available), (7, 3, 0));
}

// ------------------------------------------------------- circuit-open errors

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
        Err(ApiError::Resilience(resilience::Error::CircuitOpen { .. }))
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

// ------------------------------------------- closures without type annotations

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
