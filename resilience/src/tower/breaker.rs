//! The circuit breaker as a tower layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::{registry, BreakerConfig, CircuitBreaker, Error, Outcome, OwnedPermit};

/// The layer of the registry's breaker `name`: the one every
/// `#[circuit_breaker(name = "…")]` call site of that name uses. Created
/// with [`BreakerConfig::DEFAULT`] if nothing created it yet (configure it
/// first with `registry().configure(..)`, or use
/// [`CircuitBreakerLayer::new`] with a breaker of your own).
pub fn circuit_breaker(name: &str) -> CircuitBreakerLayer<DefaultClassifier> {
    let breaker = registry()
        .get(name)
        .unwrap_or_else(|| registry().breaker(name, &BreakerConfig::DEFAULT));
    CircuitBreakerLayer::new(breaker)
}

/// Every `Ok` is a success, every `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

/// What a response (or error) counts as for the breaker.
pub trait Classify<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E> Classify<T, E> for DefaultClassifier {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        Outcome::of(result)
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> Outcome> Classify<T, E> for F {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// A layer that puts services behind a circuit breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C> {
    breaker: Arc<CircuitBreaker>,
    classify: C,
}

impl CircuitBreakerLayer<DefaultClassifier> {
    /// The layer of `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        CircuitBreakerLayer {
            breaker,
            classify: DefaultClassifier,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Decides what each result counts as: `|r: &Result<Response, E>|
    /// match r { Ok(resp) if resp.status() == 503 => Outcome::Failure, .. }`.
    pub fn classify<D>(self, classify: D) -> CircuitBreakerLayer<D> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// A service behind a circuit breaker (see [`circuit_breaker`]).
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: Arc<CircuitBreaker>,
    classify: C,
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: From<Error>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Nothing is reserved here: a rejected or never-made call holds no
        // probe slot.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => ResponseFuture {
                state: State::Running {
                    future: self.inner.call(req),
                    permit: Some(permit),
                    classify: self.classify.clone(),
                },
            },
            Err(rejected) => ResponseFuture {
                state: State::Rejected {
                    error: Some(rejected),
                },
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`CircuitBreakerService`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Running { #[pin] future: F, permit: Option<OwnedPermit>, classify: C },
        Rejected { error: Option<Error> },
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
    C: Classify<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Rejected { error } => {
                Poll::Ready(Err(E::from(error.take().expect("polled after completion"))))
            }
            StateProj::Running {
                future,
                permit,
                classify,
            } => {
                // A panic is a failure and keeps unwinding, as under the
                // attributes.
                let polled =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(cx)));
                let result = match polled {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => result,
                    Err(panic) => {
                        if let Some(permit) = permit.take() {
                            permit.record(Outcome::Failure);
                        }
                        std::panic::resume_unwind(panic)
                    }
                };
                if let Some(permit) = permit.take() {
                    permit.record(classify.classify(&result));
                }
                Poll::Ready(result)
            }
        }
    }
}
