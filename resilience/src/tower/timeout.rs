//! The timeout as a tower layer: a response later than its bound is
//! cancelled and answered with `E::from` a timeout [`Error`], as under
//! `#[timeout]`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::{ConfigError, Error, Timeout};

/// A layer that bounds each call of the services it wraps.
///
/// # Errors
///
/// [`ConfigError`] if `after` is zero (the rule of `#[timeout]`).
pub fn timeout(after: Duration) -> Result<TimeoutLayer, ConfigError> {
    Ok(TimeoutLayer {
        bound: Timeout::new(after)?,
    })
}

/// See [`timeout`].
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    bound: Timeout,
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            after: self.bound.after(),
        }
    }
}

/// A service whose calls are bounded (see [`timeout`]).
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    after: Duration,
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
    S::Error: From<Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture {
            inner: tokio::time::timeout(self.after, self.inner.call(req)),
            after: self.after,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`TimeoutService`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        after: Duration,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(result) => Poll::Ready(result),
            Err(_) => Poll::Ready(Err(E::from(Error::timeout(*this.after)))),
        }
    }
}
