//! The traits that turn a signature that does not fit into an error naming
//! the macro (`#[diagnostic::on_unimplemented]`), and the helpers that put
//! each such check under the user's tokens.

use std::marker::PhantomData;

use crate::Error;

/// The `Result` a function under a resilience attribute returns, seen through
/// a trait so that aliases (`anyhow::Result<T>`, `io::Result<T>`) work.
#[diagnostic::on_unimplemented(
    message = "resilience attributes need an `async fn` returning `Result<_, _>`, found `{Self}`",
    label = "this must be a `Result<T, E>`"
)]
pub trait ResultLike {
    /// The value type.
    type Ok;
    /// The error type.
    type Error;
    /// The value, if this is `Ok`.
    fn ok_value(&self) -> Option<&Self::Ok>;
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
    type Ok = T;
    type Error = E;
    #[inline]
    fn ok_value(&self) -> Option<&T> {
        self.as_ref().ok()
    }
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

/// The return type of a `#[rate_limit]` function.
#[diagnostic::on_unimplemented(
    message = "`#[rate_limit]` needs the function to return `Result<_, _>`, found `{Self}`",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait RateLimitReturn {}
impl<T, E> RateLimitReturn for Result<T, E> {}
/// Checks the return type of a `#[rate_limit]` function.
#[inline(always)]
pub fn check_rate_limit_return<R: RateLimitReturn>(result: R) -> R {
    result
}

/// The return type of a `#[hedge]` function.
#[diagnostic::on_unimplemented(
    message = "`#[hedge]` needs the function to return `Result<_, _>`, found `{Self}`: the first `Ok` of the raced attempts wins",
    label = "not a `Result`",
    note = "any `Result` alias works too: `anyhow::Result<T>`, `std::io::Result<T>`, …"
)]
pub trait HedgeReturn {}
impl<T, E> HedgeReturn for Result<T, E> {}
/// Checks the return type of a `#[hedge]` function.
#[inline(always)]
pub fn check_hedge_return<R: HedgeReturn>(result: R) -> R {
    result
}

/// The return type of a `#[coalesce]` function: every caller gets a clone.
#[diagnostic::on_unimplemented(
    message = "`#[coalesce]` hands one result to every caller of a key: the function must return `Result<T, E>` with `T` and `E` both `Clone + Send + 'static`, found `{Self}`",
    label = "each waiting caller gets a clone of this",
    note = "derive `Clone` on the value and error types (an error type that cannot be cloned can be wrapped in an `Arc`)"
)]
pub trait CoalesceReturn {}
impl<T: Clone + Send + 'static, E: Clone + Send + 'static> CoalesceReturn for Result<T, E> {}
/// Checks the return type of a `#[coalesce]` function.
#[inline(always)]
pub fn check_coalesce_return<R: CoalesceReturn>(result: R) -> R {
    result
}

/// The key of a `#[coalesce]` call: owned, comparable, shareable.
#[diagnostic::on_unimplemented(
    message = "`#[coalesce]`'s `key` must give an owned `Hash + Eq + Send + Sync + 'static` value, found `{Self}`",
    label = "taken by `.to_owned()` from the `key` expression",
    note = "a key borrowing an argument (`&str` fields of a borrowed struct) must be made owned: `key = name.to_string()`"
)]
pub trait CoalesceKey: std::hash::Hash + Eq + Send + Sync + 'static {}
impl<K: std::hash::Hash + Eq + Send + Sync + 'static> CoalesceKey for K {}
/// Checks a `#[coalesce]` key.
#[inline(always)]
pub fn coalesce_key<K: CoalesceKey>(key: K) -> K {
    key
}

/// An error type a resilience layer can produce values of.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` must implement `From<resilience::Error>`, because a circuit breaker, timeout, bulkhead or rate limit can fail the call",
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

/// A by-value argument of a function whose attempts `#[hedge]` races.
#[diagnostic::on_unimplemented(
    message = "`#[hedge]` runs attempts of the body side by side, each with its own copy of this by-value argument, so it must be `Clone`, but `{Self}` is not",
    label = "cloned for every attempt",
    note = "take the argument by reference (`&`, shared by the attempts), or derive or implement `Clone` for it"
)]
pub trait HedgeArg: Clone {}
impl<T: Clone> HedgeArg for T {}

/// A fresh copy of a by-value argument for one hedged attempt.
#[inline(always)]
pub fn hedge_clone<T: HedgeArg>(value: &T) -> T {
    value.clone()
}
