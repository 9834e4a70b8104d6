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
pub use crate::manifest::{CallSite, Kind as SiteKind, Name as SiteName};
use crate::registry::registry;
use crate::retry::RetryBudget;
pub use crate::retry::{Backoff, BackoffKind, Jitter, RetryPolicy, RetryState};
use crate::Error;
pub use crate::{CircuitState, Outcome, Transition};
/// The policy spec the expansions fill with the keys written.
pub use resilience_spec as spec;
pub use resilience_spec::{BreakerValues, RetryValues, Value, WindowValue};

/// The configuration of a `#[circuit_breaker]`'s keys, in a `const`: a
/// problem (a constant the macro could not read, out of its range) fails the
/// build with the spec's words, naming the key.
pub const fn breaker_config(values: BreakerValues) -> BreakerConfig {
    values.check().assert_none();
    BreakerConfig::from_checked(values)
}

/// The policy of a `#[retry]`'s keys, in a `const` (as [`breaker_config`]).
pub const fn retry_policy(values: RetryValues) -> RetryPolicy {
    values.check().assert_none();
    RetryPolicy::from_checked(&values)
}

/// A count written as a constant (`max_attempts = ATTEMPTS`): a `u32`.
pub const fn count(n: u32) -> u64 {
    n as u64
}

/// The limits of a `#[bulkhead]`, checked in a `const` (as [`breaker_config`]).
pub const fn bulkhead_values(values: spec::BulkheadValues) -> spec::BulkheadValues {
    values.check().assert_none();
    values
}

/// The duration of a `#[timeout]`, checked in a `const` (as [`breaker_config`]).
pub const fn timeout_after(values: spec::TimeoutValues) -> Duration {
    values.check().assert_none();
    match values.timeout.given() {
        Some(d) => d,
        None => Duration::ZERO, // unreachable: the macro always writes it
    }
}

/// The link-time list of call sites (see [`crate::manifest`]).
pub use crate::manifest::__CALL_SITES as CALL_SITES;
/// The `linkme` crate the manifest entries are declared with.
pub use linkme;

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

/// A call site's callback (`on_open = alert`), checked to be a
/// `fn(&resilience::Transition)` (a path or a non-capturing closure).
#[inline(always)]
pub const fn callback(f: fn(&Transition)) -> Option<fn(&Transition)> {
    Some(f)
}

/// How a [`StaticBreaker`] finds its breaker.
#[derive(Debug)]
enum BreakerSite {
    /// `name = "unifi"`: the registry's breaker of that name. Its callbacks
    /// come from the manifest, attached by the registry when it creates it.
    Static(&'static str),
    /// No `name`: a breaker of this call site alone, named after the function
    /// (`module::function`, or `module::Type::function` for a method).
    Unnamed {
        module: &'static str,
        function: &'static str,
        site: &'static CallSite,
    },
}

/// A breaker resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticBreaker {
    name: BreakerSite,
    config: BreakerConfig,
    cell: OnceLock<Arc<CircuitBreaker>>,
}

impl StaticBreaker {
    /// The breaker named `name` in the process-wide registry.
    pub const fn named(name: &'static str, config: BreakerConfig) -> Self {
        StaticBreaker {
            name: BreakerSite::Static(name),
            config,
            cell: OnceLock::new(),
        }
    }

    /// A breaker of this call site alone (an attribute without `name`) in
    /// `module`'s `function`, with the callbacks of `site`.
    pub const fn unnamed(
        module: &'static str,
        function: &'static str,
        config: BreakerConfig,
        site: &'static CallSite,
    ) -> Self {
        StaticBreaker {
            name: BreakerSite::Unnamed {
                module,
                function,
                site,
            },
            config,
            cell: OnceLock::new(),
        }
    }

    /// The breaker, created or looked up on first use. An unnamed one is
    /// named `module::function`.
    #[inline]
    pub fn get(&self) -> &CircuitBreaker {
        match self.cell.get() {
            Some(b) => b,
            None => self.init(None),
        }
    }

    /// [`get`](Self::get) for a method: an unnamed breaker is named
    /// `module::Type::function`, `Type` read from `self_type` (the
    /// `type_name` of `Self`) on first use only.
    #[inline]
    pub fn get_for(&self, self_type: fn() -> &'static str) -> &CircuitBreaker {
        match self.cell.get() {
            Some(b) => b,
            None => self.init(Some(self_type)),
        }
    }

    #[cold]
    #[inline(never)]
    fn init(&self, self_type: Option<fn() -> &'static str>) -> &CircuitBreaker {
        self.cell.get_or_init(|| match &self.name {
            BreakerSite::Static(name) => registry().breaker(name, &self.config),
            BreakerSite::Unnamed {
                module,
                function,
                site,
            } => {
                let name = match self_type {
                    Some(ty) => format!("{module}::{}::{function}", short_type_name(ty())),
                    None => format!("{module}::{function}"),
                };
                registry().unnamed_breaker(&name, &self.config, |b| site.attach_callbacks(b))
            }
        })
    }
}

/// `Self`'s name as a person writes it in a breaker's name: the last path
/// segment, without generic arguments or references (`&mut app::Api<u32>` ->
/// `Api`); a tuple or slice keeps its shape (`(A, B)`, `[Item]`).
pub(crate) fn short_type_name(full: &str) -> String {
    let mut s = full.trim();
    loop {
        let before = s;
        for prefix in ["&", "mut ", "*const ", "*mut ", "dyn "] {
            s = s.strip_prefix(prefix).unwrap_or(s).trim_start();
        }
        if s == before {
            break;
        }
    }
    let mut out = String::with_capacity(s.len());
    // Where the current path segment starts in `out`.
    let mut segment = 0;
    let mut depth = 0u32;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                out.truncate(segment);
            }
            c if c.is_alphanumeric() || c == '_' => out.push(c),
            c => {
                out.push(c);
                segment = out.len();
            }
        }
    }
    out
}

/// The breaker named by a runtime expression (`name = self.name.as_str()`);
/// the callbacks of `site` are attached when this lookup creates it.
#[inline]
pub fn dynamic_breaker(
    name: &str,
    config: &BreakerConfig,
    site: Option<&'static CallSite>,
) -> Arc<CircuitBreaker> {
    registry().dynamic_breaker(name, config, |b| {
        if let Some(site) = site {
            site.attach_callbacks(b);
        }
    })
}

/// The default classification: every error is a failure.
#[inline(always)]
pub fn every_error_fails<E>(_: &E) -> Outcome {
    Outcome::Failure
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
    /// The bulkhead named `name` with the limits of checked `values`
    /// (absent keys take the spec's defaults).
    pub const fn new(name: &'static str, values: spec::BulkheadValues) -> Self {
        StaticBulkhead {
            name,
            max_concurrent: match values.max_concurrent.given() {
                Some(n) => n as u32,
                None => spec::BulkheadValues::DEFAULT_MAX_CONCURRENT as u32,
            },
            max_wait: match values.max_wait.given() {
                Some(d) => d,
                None => spec::BulkheadValues::DEFAULT_MAX_WAIT,
            },
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
    breaker_call_described(breaker, flags, call, classify, undescribed, convert).await
}

/// [`breaker_call`], where `describe` gives the error's text to the
/// transition the outcome may cause (see [`Describe`]).
pub async fn breaker_call_described<R, F, C>(
    breaker: &CircuitBreaker,
    flags: &Flags,
    call: F,
    classify: C,
    describe: Describer<R::Error>,
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
            let (outcome, error) = match result.error() {
                None => (Outcome::Success, None),
                Some(error) => (classify(error), describe(error)),
            };
            match (outcome == Outcome::Failure && flags.timed_out(), error) {
                (true, Some(error)) => permit.record_timeout_error(error),
                (true, None) => permit.record_timeout(),
                (false, Some(error)) => permit.record_error(outcome, error),
                (false, None) => permit.record(outcome),
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
            R::from_error(convert(Error::Timeout { after }))
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
