//! The retry as a tower layer: the same schedules ([`RetryPolicy`]), retry
//! budgets and `Retry-After` hints as `#[retry]`, for services whose
//! requests can be cloned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::{registry, RetryBudget, RetryPolicy, RetryState};

/// A layer that retries the calls of the services it wraps by `policy`:
/// every `Err` is retried until the attempts run out (see
/// [`RetryLayer::retry_if`] for what else, an `Ok` 503 included).
pub fn retry(policy: RetryPolicy) -> RetryLayer<EveryError, NoHint> {
    RetryLayer {
        name: "tower",
        policy,
        retry_if: EveryError,
        hint: NoHint,
        budget: None,
    }
}

/// Retries every `Err`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryError;

/// No `Retry-After` hint: the schedule's delays.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHint;

/// Whether a result is retried.
pub trait RetryIf<T, E> {
    /// `true` to retry `result`.
    fn retry_if(&self, result: &Result<T, E>) -> bool;
}

impl<T, E> RetryIf<T, E> for EveryError {
    fn retry_if(&self, result: &Result<T, E>) -> bool {
        result.is_err()
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> bool> RetryIf<T, E> for F {
    fn retry_if(&self, result: &Result<T, E>) -> bool {
        self(result)
    }
}

/// The server's hint for the next delay (`Retry-After`).
pub trait RetryAfter<T, E> {
    /// The delay to wait instead of the schedule's, if the result says.
    fn retry_after(&self, result: &Result<T, E>) -> Option<Duration>;
}

impl<T, E> RetryAfter<T, E> for NoHint {
    fn retry_after(&self, _: &Result<T, E>) -> Option<Duration> {
        None
    }
}

impl<T, E, F: Fn(&Result<T, E>) -> Option<Duration>> RetryAfter<T, E> for F {
    fn retry_after(&self, result: &Result<T, E>) -> Option<Duration> {
        self(result)
    }
}

/// See [`retry`].
#[derive(Debug, Clone)]
pub struct RetryLayer<R, H> {
    name: &'static str,
    policy: RetryPolicy,
    retry_if: R,
    hint: H,
    budget: Option<Arc<RetryBudget>>,
}

impl<R, H> RetryLayer<R, H> {
    /// The name its `tracing` events and metrics report (default `tower`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Which results are retried: `|r: &Result<Response, E>| match r {
    /// Ok(resp) => resp.status() == 503, Err(_) => true }`.
    pub fn retry_if<D>(self, retry_if: D) -> RetryLayer<D, H> {
        RetryLayer {
            name: self.name,
            policy: self.policy,
            retry_if,
            hint: self.hint,
            budget: self.budget,
        }
    }

    /// The server's hint (`Retry-After`) replaces the schedule's delay,
    /// capped by the policy's `max_delay`.
    pub fn retry_after<G>(self, hint: G) -> RetryLayer<R, G> {
        RetryLayer {
            name: self.name,
            policy: self.policy,
            retry_if: self.retry_if,
            hint,
            budget: self.budget,
        }
    }

    /// Draws retries from the registry's retry budget `name`, the one
    /// `#[retry(budget = "…")]` call sites of that name use.
    pub fn budget(mut self, name: &str) -> Self {
        self.budget = Some(registry().retry_budget(name));
        self
    }
}

impl<S, R: Clone, H: Clone> Layer<S> for RetryLayer<R, H> {
    type Service = RetryService<S, R, H>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose calls are retried (see [`retry`]).
#[derive(Debug, Clone)]
pub struct RetryService<S, R, H> {
    inner: S,
    layer: RetryLayer<R, H>,
}

impl<S, R, H, Req> Service<Req> for RetryService<S, R, H>
where
    S: Service<Req> + Clone,
    Req: Clone,
    R: RetryIf<S::Response, S::Error> + Clone,
    H: RetryAfter<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RetryFuture<S, Req, R, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The ready service makes the first call; a clone, made ready again,
        // each retry (tower's convention).
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let mut state = RetryState::new(self.layer.name, &self.layer.policy);
        if let Some(budget) = &self.layer.budget {
            state = state.with_shared_budget(budget.clone());
        }
        let first = service.call(req.clone());
        RetryFuture {
            service,
            req,
            state,
            retry_if: self.layer.retry_if.clone(),
            hint: self.layer.hint.clone(),
            stage: Stage::Calling { future: first },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`RetryService`].
    pub struct RetryFuture<S, Req, R, H>
    where
        S: Service<Req>,
    {
        service: S,
        req: Req,
        state: RetryState<'static>,
        retry_if: R,
        hint: H,
        #[pin]
        stage: Stage<S::Future>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Calling { #[pin] future: F },
        Sleeping { #[pin] sleep: tokio::time::Sleep },
        Readying,
    }
}

impl<S: Service<Req>, Req, R, H> std::fmt::Debug for RetryFuture<S, Req, R, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture")
            .field("attempt", &self.state.attempt())
            .finish_non_exhaustive()
    }
}

impl<S, Req, R, H> Future for RetryFuture<S, Req, R, H>
where
    S: Service<Req>,
    Req: Clone,
    R: RetryIf<S::Response, S::Error>,
    H: RetryAfter<S::Response, S::Error>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.stage.as_mut().project() {
                StageProj::Calling { future } => {
                    let result = std::task::ready!(future.poll(cx));
                    if !this.retry_if.retry_if(&result) {
                        return Poll::Ready(result);
                    }
                    let hint = this.hint.retry_after(&result);
                    match this.state.next_delay_after(hint) {
                        None => return Poll::Ready(result),
                        Some(delay) => this.stage.set(Stage::Sleeping {
                            sleep: tokio::time::sleep(delay),
                        }),
                    }
                }
                StageProj::Sleeping { sleep } => {
                    std::task::ready!(sleep.poll(cx));
                    this.stage.set(Stage::Readying);
                }
                StageProj::Readying => {
                    if let Err(e) = std::task::ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    let future = this.service.call(this.req.clone());
                    this.stage.set(Stage::Calling { future });
                }
            }
        }
    }
}
