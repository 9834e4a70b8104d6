//! One call through a breaker, as the attributes make it: admit or reject,
//! run, classify, record; a panic is a failure and keeps unwinding; a
//! cancelled call records nothing and frees its probe slot. Public, so that
//! a hand-written caller (or a tower layer) gets what the macros get.

use std::fmt::Display;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{CircuitBreaker, Outcome, Permit};
use crate::Error;

impl CircuitBreaker {
    /// Runs `call` through the breaker: rejected at once (without running it)
    /// while the circuit is open, else run and recorded: `Ok` is a success,
    /// `Err` a failure whose text the transition it causes carries.
    ///
    /// A panic in `call` is recorded as a failure and keeps unwinding; a
    /// call whose future is dropped (cancelled) records nothing and frees
    /// its probe slot.
    ///
    /// ```
    /// use resilience::{BreakerConfig, CircuitBreaker, CircuitState};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = BreakerConfig::builder().failure_threshold(1).build().unwrap();
    /// let breaker = CircuitBreaker::new("ledger", config);
    /// let failed: Result<(), anyhow::Error> =
    ///     breaker.call(async { Err(anyhow::anyhow!("connection refused")) }).await;
    /// assert!(failed.is_err());
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// // Rejected without running: the error converts from `resilience::Error`.
    /// let rejected: Result<(), anyhow::Error> = breaker.call(async { Ok(()) }).await;
    /// assert!(rejected.unwrap_err().downcast_ref::<resilience::Error>().unwrap().is_circuit_open());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` the breaker's rejection (an [`Error`] of kind
    /// [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen)) when rejected.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error> + Display,
    {
        let guarded = self.guard(call, |result, permit| match result {
            Ok(_) => {
                permit.record(Outcome::Success);
                Outcome::Success
            }
            Err(e) => {
                permit.record_error(Outcome::Failure, e);
                Outcome::Failure
            }
        });
        match guarded.await {
            Ok((result, _)) => result,
            Err(rejected) => Err(E::from(rejected)),
        }
    }

    /// [`call`](Self::call), where `classify` decides what each error counts
    /// as: a failure, a success (it breaks a run of failures), or nothing
    /// (`Outcome::Ignored`: a validation error says nothing about the
    /// dependency's health).
    ///
    /// ```
    /// use resilience::{CircuitBreaker, BreakerConfig, CircuitState, Outcome};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum ApiError { NotFound, Down, Layer }
    /// impl From<resilience::Error> for ApiError {
    ///     fn from(_: resilience::Error) -> Self { ApiError::Layer }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = BreakerConfig::builder().failure_threshold(1).build().unwrap();
    /// let breaker = CircuitBreaker::new("search", config);
    /// let classify = |e: &ApiError| match e {
    ///     ApiError::NotFound => Outcome::Ignored,
    ///     _ => Outcome::Failure,
    /// };
    /// let r: Result<(), _> = breaker.call_classified(async { Err(ApiError::NotFound) }, classify).await;
    /// assert_eq!(r, Err(ApiError::NotFound));
    /// assert_eq!(breaker.state(), CircuitState::Closed, "a 404 is no failure");
    /// let r: Result<(), _> = breaker.call_classified(async { Err(ApiError::Down) }, classify).await;
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// # let _ = r;
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` the breaker's rejection (an [`Error`] of kind
    /// [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen)) when rejected.
    pub async fn call_classified<T, E, F, C>(&self, call: F, classify: C) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
        C: FnOnce(&E) -> Outcome,
    {
        let guarded = self.guard(call, |result, permit| {
            let outcome = match result {
                Ok(_) => Outcome::Success,
                Err(e) => classify(e),
            };
            permit.record(outcome);
            outcome
        });
        match guarded.await {
            Ok((result, _)) => result,
            Err(rejected) => Err(E::from(rejected)),
        }
    }

    /// The engine of every call through a breaker: a future that asks for a
    /// permit when first polled and resolves to `Err` when the breaker
    /// rejected the call (it did not run), else to its output and the
    /// outcome `record` recorded with the permit. One hand-written future
    /// (no `async` state machines stacked on the call's own).
    pub(crate) fn guard<O, F, R>(&self, call: F, record: R) -> Guard<'_, F, R>
    where
        F: Future<Output = O>,
        R: FnOnce(&O, Permit<'_>) -> Outcome,
    {
        Guard {
            breaker: self,
            stage: Stage::Start,
            record: Some(record),
            inner: call,
        }
    }
}

/// Where a [`Guard`] is.
enum Stage<'a> {
    /// Not polled yet: the permit is asked for on the first poll, so a call
    /// dropped before it ever ran holds no probe slot.
    Start,
    Running(Permit<'a>),
    Done,
}

pin_project_lite::pin_project! {
    /// One call through a breaker (see [`CircuitBreaker::guard`]).
    pub(crate) struct Guard<'a, F, R> {
        breaker: &'a CircuitBreaker,
        stage: Stage<'a>,
        record: Option<R>,
        #[pin]
        inner: F,
    }
}

impl<'a, O, F, R> Future for Guard<'a, F, R>
where
    F: Future<Output = O>,
    R: FnOnce(&O, Permit<'_>) -> Outcome,
{
    type Output = Result<(O, Outcome), Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Stage::Start = this.stage {
            match this.breaker.try_acquire() {
                Ok(permit) => *this.stage = Stage::Running(permit),
                Err(rejected) => {
                    *this.stage = Stage::Done;
                    return Poll::Ready(Err(rejected));
                }
            }
        }
        let inner = this.inner;
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        let permit = match (&polled, std::mem::replace(this.stage, Stage::Done)) {
            (Ok(Poll::Pending), running) => {
                *this.stage = running;
                return Poll::Pending;
            }
            (_, Stage::Running(permit)) => permit,
            (_, _) => panic!("a breaker's call was polled after it completed"),
        };
        match polled {
            Ok(Poll::Ready(output)) => {
                let record = this.record.take().expect("recorded once");
                let outcome = record(&output, permit);
                if outcome == Outcome::Ignored {
                    ignored(this.breaker);
                }
                Poll::Ready(Ok((output, outcome)))
            }
            Ok(Poll::Pending) => unreachable!("handled above"),
            Err(panic) => {
                permit.record(Outcome::Failure);
                std::panic::resume_unwind(panic)
            }
        }
    }
}

#[cold]
fn ignored(breaker: &CircuitBreaker) {
    tracing::debug!(
        target: "resilience",
        breaker = breaker.name(),
        "circuit breaker `{}` ignored an error (neither success nor failure)",
        breaker.name()
    );
}
