//! What the attribute macros expand to. Not public API: no semver guarantees.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use std::num::NonZeroU32;

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::bulkhead::Bulkhead;
use crate::registry::registry;
use crate::retry::RetryBudget;
pub use crate::retry::{Backoff, BackoffKind, Jitter, RetryPolicy, RetryState};
use crate::Error;
pub use crate::{CircuitState, Outcome, Transition};

/// The `Result` a function under a resilience attribute returns, seen through
/// a trait so that aliases (`anyhow::Result<T>`, `io::Result<T>`) work.
#[diagnostic::on_unimplemented(
    message = "resilience attributes need an `async fn` returning `Result<_, _>`, found `{Self}`",
    label = "this must be a `Result<T, E>`"
)]
pub trait ResultLike {
    /// The error type.
    type Error;
    /// Whether this is `Ok`.
    fn is_ok(&self) -> bool;
    /// The error, if any.
    fn error(&self) -> Option<&Self::Error>;
    /// `Err(error)`.
    fn from_error(error: Self::Error) -> Self;
    /// `Ok(self)` when this is `Ok`, else the error taken out.
    fn split_error(self) -> Result<Self, Self::Error>
    where
        Self: Sized;
}

impl<T, E> ResultLike for Result<T, E> {
    type Error = E;
    #[inline]
    fn is_ok(&self) -> bool {
        Result::is_ok(self)
    }
    #[inline]
    fn error(&self) -> Option<&E> {
        self.as_ref().err()
    }
    #[inline]
    fn from_error(error: E) -> Self {
        Err(error)
    }
    #[inline]
    fn split_error(self) -> Result<Self, E> {
        match self {
            Ok(value) => Ok(Ok(value)),
            Err(error) => Err(error),
        }
    }
}

/// The return type of a `#[circuit_breaker]` function.
#[diagnostic::on_unimplemented(
    message = "`#[circuit_breaker]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait CircuitBreakerReturn {}
impl<T, E> CircuitBreakerReturn for Result<T, E> {}
/// Checks the return type of a `#[circuit_breaker]` function.
#[inline(always)]
pub fn check_circuit_breaker_return<R: CircuitBreakerReturn>(result: R) -> R {
    result
}

/// The return type of a `#[retry]` function.
#[diagnostic::on_unimplemented(
    message = "`#[retry]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait RetryReturn {}
impl<T, E> RetryReturn for Result<T, E> {}
/// Checks the return type of a `#[retry]` function.
#[inline(always)]
pub fn check_retry_return<R: RetryReturn>(result: R) -> R {
    result
}

/// The return type of a `#[resilient]` function.
#[diagnostic::on_unimplemented(
    message = "`#[resilient]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait ResilientReturn {}
impl<T, E> ResilientReturn for Result<T, E> {}
/// Checks the return type of a `#[resilient]` function.
#[inline(always)]
pub fn check_resilient_return<R: ResilientReturn>(result: R) -> R {
    result
}

/// The return type of a `#[timeout]` function.
#[diagnostic::on_unimplemented(
    message = "`#[timeout]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait TimeoutReturn {}
impl<T, E> TimeoutReturn for Result<T, E> {}
/// Checks the return type of a `#[timeout]` function.
#[inline(always)]
pub fn check_timeout_return<R: TimeoutReturn>(result: R) -> R {
    result
}

/// The return type of a `#[bulkhead]` function.
#[diagnostic::on_unimplemented(
    message = "`#[bulkhead]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait BulkheadReturn {}
impl<T, E> BulkheadReturn for Result<T, E> {}
/// Checks the return type of a `#[bulkhead]` function.
#[inline(always)]
pub fn check_bulkhead_return<R: BulkheadReturn>(result: R) -> R {
    result
}

/// An error type a resilience layer can produce values of.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` must implement `From<resilience::Error>`, because the circuit breaker or timeout can fail the call",
    label = "`{Self}` has no `From<resilience::Error>`",
    note = "add a variant such as `#[error(transparent)] Resilience(#[from] resilience::Error)`, or use `anyhow::Error`"
)]
pub trait FromResilienceError: From<Error> {}
impl<E: From<Error>> FromResilienceError for E {}

/// The conversion of the layers' own errors into the function's error type,
/// checked once per function (under its error type) rather than once per layer.
#[inline(always)]
pub fn converter<E: FromResilienceError>() -> fn(Error) -> E {
    E::from
}

/// What inner layers tell outer ones during one call: the retry resets it
/// before each attempt.
#[derive(Debug, Default)]
pub struct Flags {
    stop_retry: AtomicBool,
    timed_out: AtomicBool,
}

impl Flags {
    /// Nothing happened yet.
    pub const fn new() -> Self {
        Flags {
            stop_retry: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
        }
    }

    /// A new attempt starts.
    #[inline]
    pub fn reset(&self) {
        self.stop_retry.store(false, Ordering::Relaxed);
        self.timed_out.store(false, Ordering::Relaxed);
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

/// A by-value argument a `fallback` receives after the body consumed its own.
#[diagnostic::on_unimplemented(
    message = "`fallback` is called with the function's arguments after the body ran, so this by-value argument must be `Clone`, but `{Self}` is not",
    label = "cloned for the fallback",
    note = "take the argument by reference, or derive or implement `Clone` for it"
)]
pub trait FallbackArg: Clone {}
impl<T: Clone> FallbackArg for T {}

/// A copy of an argument kept for the fallback.
#[inline(always)]
pub fn fallback_clone<T: FallbackArg>(value: &T) -> T {
    value.clone()
}

/// `fallback = path`: the type of the call's result, taken before the
/// fallback is called, so that a fallback returning another type is reported
/// as a mismatch under its path.
#[derive(Debug)]
pub struct Expect<R>(PhantomData<fn() -> R>);

/// The [`Expect`] of `result`'s type.
#[inline(always)]
pub fn expect<R: ResultLike>(_result: &R) -> Expect<R> {
    Expect(PhantomData)
}

impl<R> Expect<R> {
    /// The fallback's answer, which must be of the call's result type.
    #[inline(always)]
    pub fn fallback(self, answer: R) -> R {
        answer
    }
}

/// `Ok(result)` when the call succeeded, else its error.
#[inline(always)]
pub fn split_error<R: ResultLike>(result: R) -> Result<R, R::Error> {
    result.split_error()
}

/// A by-value argument of a function that `#[retry]` re-runs.
#[diagnostic::on_unimplemented(
    message = "`#[retry]` runs the body once per attempt, so this by-value argument must be `Clone`, but `{Self}` is not",
    label = "cloned for every attempt",
    note = "take the argument by reference, or derive or implement `Clone` for it"
)]
pub trait RetryArg: Clone {}
impl<T: Clone> RetryArg for T {}

/// A fresh copy of a by-value argument for one attempt.
#[inline(always)]
pub fn retry_clone<T: RetryArg>(value: &T) -> T {
    value.clone()
}

/// [`retry_clone`] for a `mut` argument (taking `&mut` keeps the user's `mut`
/// in use, so no `unused_mut` warning lands on their signature).
#[inline(always)]
pub fn retry_clone_mut<T: RetryArg>(value: &mut T) -> T {
    value.clone()
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

/// Callbacks a call site attaches to its breaker (`on_open = …`).
pub type Hooks = fn(&CircuitBreaker);

/// A breaker resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticBreaker {
    name: &'static str,
    shared: bool,
    config: BreakerConfig,
    hooks: Option<Hooks>,
    cell: OnceLock<Arc<CircuitBreaker>>,
}

impl StaticBreaker {
    /// The breaker named `name` in the process-wide registry.
    pub const fn named(name: &'static str, config: BreakerConfig) -> Self {
        StaticBreaker {
            name,
            shared: true,
            config,
            hooks: None,
            cell: OnceLock::new(),
        }
    }

    /// A breaker of this call site alone (an attribute without `name`).
    pub const fn private(name: &'static str, config: BreakerConfig) -> Self {
        StaticBreaker {
            name,
            shared: false,
            config,
            hooks: None,
            cell: OnceLock::new(),
        }
    }

    /// Attaches this call site's callbacks when it first resolves the breaker.
    pub const fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// The breaker, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &CircuitBreaker {
        match self.cell.get() {
            Some(b) => b,
            None => self.init(),
        }
    }

    #[cold]
    fn init(&self) -> &CircuitBreaker {
        self.cell.get_or_init(|| {
            let breaker = if self.shared {
                registry().breaker(self.name, &self.config)
            } else {
                registry().private_breaker(self.name, &self.config)
            };
            if let Some(hooks) = self.hooks {
                hooks(&breaker);
            }
            breaker
        })
    }
}

/// The breaker named by a runtime expression (`name = self.name.as_str()`);
/// `hooks` are attached when this lookup creates it.
#[inline]
pub fn dynamic_breaker(
    name: &str,
    config: &BreakerConfig,
    hooks: Option<Hooks>,
) -> Arc<CircuitBreaker> {
    registry().dynamic_breaker(name, config, |b| {
        if let Some(hooks) = hooks {
            hooks(b);
        }
    })
}

/// The default classification: every error is a failure.
#[inline(always)]
pub fn every_error_fails<E>(_: &E) -> Outcome {
    Outcome::Failure
}

/// Calls `f` with the transition if it entered `to`: the body of the hooks
/// the macros generate for `on_open`, `on_close` and `on_half_open`.
pub fn on_state(breaker: &CircuitBreaker, to: CircuitState, f: fn(&crate::Transition)) {
    breaker.on_transition(move |t| {
        if t.to == to {
            f(t);
        }
    });
}

/// A bulkhead resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticBulkhead {
    name: &'static str,
    max_concurrent: u32,
    max_wait: Duration,
    cell: OnceLock<Arc<Bulkhead>>,
}

impl StaticBulkhead {
    /// The bulkhead named `name` (`max_concurrent` ≥ 1, checked by the macro).
    pub const fn new(name: &'static str, max_concurrent: u32, max_wait: Duration) -> Self {
        StaticBulkhead {
            name,
            max_concurrent,
            max_wait,
            cell: OnceLock::new(),
        }
    }

    /// The bulkhead, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &Bulkhead {
        self.cell.get_or_init(|| {
            let max = NonZeroU32::new(self.max_concurrent).unwrap_or(NonZeroU32::MIN);
            registry().bulkhead(self.name, max, self.max_wait)
        })
    }
}

/// A retry budget resolved once per call site.
#[derive(Debug)]
pub struct StaticBudget {
    name: &'static str,
    cell: OnceLock<Arc<RetryBudget>>,
}

impl StaticBudget {
    /// The budget named `name`.
    pub const fn new(name: &'static str) -> Self {
        StaticBudget {
            name,
            cell: OnceLock::new(),
        }
    }

    /// The budget, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &RetryBudget {
        self.cell.get_or_init(|| registry().retry_budget(self.name))
    }
}

/// One pass through a circuit breaker: admit or reject, run, classify, record.
///
/// Tells an enclosing retry to stop (through `flags`) when the breaker
/// rejected the call or the call's failure opened it, so it never sleeps
/// against an open circuit. `classify` decides what an error counts as. A
/// panic in `call` is recorded as a failure and keeps unwinding; a cancelled
/// call records nothing and frees its probe slot.
pub async fn breaker_call<R, F, C>(
    breaker: &CircuitBreaker,
    flags: &Flags,
    call: F,
    classify: C,
    convert: fn(Error) -> R::Error,
) -> R
where
    F: Future<Output = R>,
    R: ResultLike,
    C: FnOnce(&R::Error) -> Outcome,
{
    let permit = match breaker.try_acquire() {
        Ok(permit) => permit,
        Err(e) => {
            flags.set_stop_retry();
            return R::from_error(convert(e));
        }
    };
    match (CatchUnwind { inner: call }).await {
        Ok(result) => {
            let outcome = match result.error() {
                None => Outcome::Success,
                Some(error) => classify(error),
            };
            if outcome == Outcome::Failure && flags.timed_out() {
                permit.record_timeout();
            } else {
                permit.record(outcome);
            }
            match outcome {
                Outcome::Failure if breaker.state() == CircuitState::Open => flags.set_stop_retry(),
                Outcome::Ignored => tracing::debug!(
                    target: "resilience",
                    breaker = breaker.name(),
                    "circuit breaker `{}` ignored an error (neither success nor failure)",
                    breaker.name()
                ),
                _ => {}
            }
            result
        }
        Err(panic) => {
            permit.record(Outcome::Failure);
            std::panic::resume_unwind(panic)
        }
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
    match tokio::time::timeout(after, call).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!(target: "resilience", ?after, "call timed out after {after:?}");
            flags.set_timed_out();
            R::from_error(convert(Error::Timeout { after }))
        }
    }
}

/// One attempt cut at the retry's `max_elapsed` deadline.
pub async fn deadline<R, F>(
    deadline: Option<tokio::time::Instant>,
    max_elapsed: Duration,
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
            R::from_error(convert(Error::Timeout { after: max_elapsed }))
        }
    }
}

/// The sleep between two attempts.
#[inline]
pub fn sleep(delay: Duration) -> tokio::time::Sleep {
    tokio::time::sleep(delay)
}

pin_project_lite::pin_project! {
    /// Catches a panic raised while polling the inner future.
    #[derive(Debug)]
    pub struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
