//! One call (or attempt) through each layer, as the expansions nest them,
//! and what the layers tell each other on the way ([`Flags`]): a retry stops
//! when a breaker rejected or opened, a breaker records a timed-out attempt
//! as a timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use super::returns::ResultLike;
use crate::breaker::CircuitBreaker;
use crate::bulkhead::Bulkhead;
use crate::rate_limit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::{CircuitState, Error, Outcome};

/// What inner layers tell outer ones during one call: the retry resets it
/// before each attempt.
#[derive(Debug, Default)]
pub struct Flags {
    stop_retry: AtomicBool,
    timed_out: AtomicBool,
    /// A rate limiter's `retry_after` for the next attempt, in nanoseconds
    /// (0: none).
    wait: AtomicU64,
}

impl Flags {
    /// Nothing happened yet.
    pub const fn new() -> Self {
        Flags {
            stop_retry: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            wait: AtomicU64::new(0),
        }
    }

    /// A new attempt starts.
    #[inline]
    pub fn reset(&self) {
        self.stop_retry.store(false, Ordering::Relaxed);
        self.timed_out.store(false, Ordering::Relaxed);
        self.wait.store(0, Ordering::Relaxed);
    }

    /// The delay a rate limiter asked for before the next attempt: the
    /// retry waits at least this long.
    #[inline]
    pub fn wait_hint(&self) -> Option<Duration> {
        match self.wait.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn set_wait(&self, wait: Duration) {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.wait.store(nanos, Ordering::Relaxed);
    }

    /// Whether a breaker rejected the attempt or the attempt opened it.
    #[inline]
    pub fn stop_retry(&self) -> bool {
        self.stop_retry.load(Ordering::Relaxed)
    }

    fn set_stop_retry(&self) {
        self.stop_retry.store(true, Ordering::Relaxed);
    }

    fn set_timed_out(&self) {
        self.timed_out.store(true, Ordering::Relaxed);
    }

    fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// `retry_if`, `failure_if`, `ignore_if`: asks the user's predicate about an
/// error. Called with the closure as written in the attribute, so that its
/// parameter is known to be `&E` before its body is checked (`|e|
/// e.is_transient()` and `|e| matches!(e, E::Timeout)` need no annotation).
#[inline(always)]
pub fn predicate<E: ?Sized, F: FnOnce(&E) -> bool>(f: F, error: &E) -> bool {
    f(error)
}

/// `retry_after`: the server's hint for the next delay, if the error has one.
#[inline(always)]
pub fn retry_after<E: ?Sized, F: FnOnce(&E) -> Option<Duration>>(
    f: F,
    error: &E,
) -> Option<Duration> {
    f(error)
}

/// `on_retry`: told the attempt that failed, its error and the delay before
/// the next one.
#[inline(always)]
pub fn on_retry<E: ?Sized, F: FnOnce(u32, &E, Duration)>(
    f: F,
    attempt: u32,
    error: &E,
    delay: Duration,
) {
    f(attempt, error, delay);
}

/// One pass through a circuit breaker: admit or reject, run, classify, record.
///
/// Tells an enclosing retry to stop (through `flags`) when the breaker
/// rejected the call or the call's failure opened it, so it never sleeps
/// against an open circuit. `classify` decides what an error counts as. A
/// panic in `call` is recorded as a failure and keeps unwinding; a cancelled
/// call records nothing and frees its probe slot.
pub fn breaker_call<'a, R, F, C>(
    breaker: &'a CircuitBreaker,
    flags: &'a Flags,
    call: F,
    classify: C,
    convert: fn(Error) -> R::Error,
) -> impl Future<Output = R> + 'a
where
    F: Future<Output = R> + 'a,
    R: ResultLike + 'a,
    C: FnOnce(&R::Error) -> Outcome + 'a,
{
    let classify = move |result: &R| match result.error() {
        None => Outcome::Success,
        Some(error) => classify(error),
    };
    breaker_call_described(breaker, flags, call, classify, undescribed, convert)
}

/// [`breaker_call`] for the expansions: `classify` judges the whole result
/// (an `Ok` may be a failure: `failure_if_ok`), and `describe` gives an
/// error's text to the transition the outcome may cause (see [`Describe`]).
pub fn breaker_call_described<'a, R, F, C>(
    breaker: &'a CircuitBreaker,
    flags: &'a Flags,
    call: F,
    classify: C,
    describe: Describer<R::Error>,
    convert: fn(Error) -> R::Error,
) -> impl Future<Output = R> + 'a
where
    F: Future<Output = R> + 'a,
    R: ResultLike + 'a,
    C: FnOnce(&R) -> Outcome + 'a,
{
    let guard = breaker.guard(call, move |result: &R, permit| {
        let outcome = classify(result);
        let error = result.error().and_then(describe);
        match (outcome == Outcome::Failure && flags.timed_out(), error) {
            (true, Some(error)) => permit.record_timeout_error(error),
            (true, None) => permit.record_timeout(),
            (false, Some(error)) => permit.record_error(outcome, error),
            (false, None) => permit.record(outcome),
        }
        outcome
    });
    BreakerCall {
        guard,
        breaker,
        flags,
        convert,
    }
}

pin_project_lite::pin_project! {
    /// [`breaker_call_described`]'s future: the breaker's [`Guard`](crate::breaker)
    /// and what it tells an enclosing retry.
    struct BreakerCall<'a, G, E> {
        #[pin]
        guard: G,
        breaker: &'a CircuitBreaker,
        flags: &'a Flags,
        convert: fn(Error) -> E,
    }
}

impl<'a, G, R> Future for BreakerCall<'a, G, R::Error>
where
    G: Future<Output = Result<(R, Outcome), Error>>,
    R: ResultLike,
{
    type Output = R;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.project();
        Poll::Ready(match std::task::ready!(this.guard.poll(cx)) {
            Err(rejected) => {
                this.flags.set_stop_retry();
                R::from_error((this.convert)(rejected))
            }
            Ok((result, outcome)) => {
                if outcome == Outcome::Failure && this.breaker.state() == CircuitState::Open {
                    this.flags.set_stop_retry();
                }
                result
            }
        })
    }
}

/// Gives an error's `Display` text, when its type has one.
pub type Describer<E> = for<'e> fn(&'e E) -> Option<&'e dyn std::fmt::Display>;

/// The describer of errors without a `Display` (or of unknown type).
pub fn undescribed<E>(_: &E) -> Option<&dyn std::fmt::Display> {
    None
}

/// Autoref specialisation, resolved where the error type is known (the
/// expansion): `(&&Describe(error)).describe()` is `Some(error)` when the
/// type implements `Display`, else `None`.
#[derive(Debug)]
pub struct Describe<'a, T: ?Sized>(pub &'a T);

/// Chosen first, when `T: Display`.
pub trait DescribeDisplay<'a> {
    /// The error as `Display`.
    fn describe(&self) -> Option<&'a dyn std::fmt::Display>;
}

impl<'a, T: std::fmt::Display + 'a> DescribeDisplay<'a> for &Describe<'a, T> {
    fn describe(&self) -> Option<&'a dyn std::fmt::Display> {
        Some(self.0)
    }
}

/// The fallback, for types without `Display`.
pub trait DescribeNothing<'a> {
    /// Nothing.
    fn describe(&self) -> Option<&'a dyn std::fmt::Display>;
}

impl<'a, T: ?Sized> DescribeNothing<'a> for Describe<'a, T> {
    fn describe(&self) -> Option<&'a dyn std::fmt::Display> {
        None
    }
}

/// One call (or attempt) through a bulkhead: the slot is held while `call`
/// runs and given back however it ends.
pub async fn bulkhead_call<R, F>(bulkhead: &Bulkhead, call: F, convert: fn(Error) -> R::Error) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
{
    match bulkhead.acquire().await {
        Ok(_slot) => call.await,
        Err(e) => R::from_error(convert(e)),
    }
}

/// One call (or attempt) through an adaptive bulkhead: the slot is held
/// while `call` runs, and its latency and outcome (`Ok` a success, `Err` a
/// failure) move the limit.
pub async fn adaptive_call<R, F>(
    bulkhead: &crate::AdaptiveBulkhead,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
{
    match bulkhead.acquire().await {
        Ok(permit) => {
            let result = call.await;
            permit.record(outcome(&result));
            result
        }
        Err(e) => R::from_error(convert(e)),
    }
}

/// [`adaptive_call`] for a synchronous function: the thread waits (parked)
/// for a slot up to `max_wait`.
pub fn adaptive_call_sync<R, F>(
    bulkhead: &crate::AdaptiveBulkhead,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: FnOnce() -> R,
    R: ResultLike,
{
    match bulkhead.acquire_blocking() {
        Ok(permit) => {
            let result = call();
            permit.record(outcome(&result));
            result
        }
        Err(e) => R::from_error(convert(e)),
    }
}

fn outcome<R: ResultLike>(result: &R) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

/// One call (or attempt) through a rate limiter: it waits for its turn up to
/// the limiter's `max_wait`, else fails with the limiter's refusal, telling
/// an enclosing retry to wait until a call would be allowed.
pub async fn rate_limit_call<R, F>(
    limiter: &RateLimiter,
    flags: &Flags,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
{
    match limiter.acquire_or_wait().await {
        Ok(()) => call.await,
        Err((e, wait)) => {
            flags.set_wait(wait);
            R::from_error(convert(e))
        }
    }
}

/// [`rate_limit_call`] for a synchronous function: the thread sleeps for
/// its turn.
pub fn rate_limit_call_sync<R, F>(
    limiter: &RateLimiter,
    flags: &Flags,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: FnOnce() -> R,
    R: ResultLike,
{
    match limiter.acquire_blocking_or_wait() {
        Ok(()) => call(),
        Err((e, wait)) => {
            flags.set_wait(wait);
            R::from_error(convert(e))
        }
    }
}

/// One attempt under a timeout.
pub async fn timeout<R, F>(
    after: Duration,
    flags: &Flags,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
{
    match crate::timeout::bounded(after, call).await {
        Some(result) => result,
        None => {
            flags.set_timed_out();
            R::from_error(convert(Error::timeout(after)))
        }
    }
}

/// One attempt cut at the retry's `max_elapsed` deadline.
pub async fn deadline<R, F>(
    deadline: Option<tokio::time::Instant>,
    policy: &RetryPolicy,
    flags: &Flags,
    call: F,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
{
    let Some(at) = deadline else {
        return call.await;
    };
    match tokio::time::timeout_at(at, call).await {
        Ok(result) => result,
        Err(_) => {
            flags.set_timed_out();
            let after = policy.max_elapsed().unwrap_or_default();
            R::from_error(convert(Error::timeout(after)))
        }
    }
}

/// The sleep between two attempts.
#[inline]
pub fn sleep(delay: Duration) -> tokio::time::Sleep {
    tokio::time::sleep(delay)
}

/// [`breaker_call_described`] for a synchronous function: `call` runs on
/// the calling thread; a panic is recorded as a failure and keeps
/// unwinding.
pub fn breaker_call_sync<R, F, C>(
    breaker: &CircuitBreaker,
    flags: &Flags,
    call: F,
    classify: C,
    describe: Describer<R::Error>,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: FnOnce() -> R,
    R: ResultLike,
    C: FnOnce(&R) -> Outcome,
{
    let permit = match breaker.try_acquire() {
        Ok(permit) => permit,
        Err(rejected) => {
            flags.set_stop_retry();
            return R::from_error(convert(rejected));
        }
    };
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result,
        Err(panic) => {
            permit.record(Outcome::Failure);
            std::panic::resume_unwind(panic)
        }
    };
    let outcome = classify(&result);
    match result.error().and_then(describe) {
        Some(error) => permit.record_error(outcome, error),
        None => permit.record(outcome),
    }
    if outcome == Outcome::Failure && breaker.state() == CircuitState::Open {
        flags.set_stop_retry();
    }
    result
}

/// [`bulkhead_call`] for a synchronous function: the thread waits (parked)
/// up to the bulkhead's `max_wait` for a slot.
pub fn bulkhead_call_sync<R, F>(bulkhead: &Bulkhead, call: F, convert: fn(Error) -> R::Error) -> R
where
    F: FnOnce() -> R,
    R: ResultLike,
{
    match bulkhead.acquire_blocking() {
        Ok(_slot) => call(),
        Err(e) => R::from_error(convert(e)),
    }
}

/// The sleep between two attempts of a synchronous function.
#[inline]
pub fn sleep_blocking(delay: Duration) {
    std::thread::sleep(delay);
}
