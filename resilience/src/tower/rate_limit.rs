//! The rate limiter as a tower layer over the registry's limiter of a name:
//! the turn is taken in `poll_ready` (a ready service holds one), waiting
//! for it up to `max_wait`; a service whose turn is further off is still
//! ready, and its call answers `E::from` the limiter's refusal without
//! calling the inner service (tower's load-shedding convention). A turn
//! taken and never used is not given back: the limit is never exceeded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::{registry, Error, RateLimitConfig, RateLimiter};

/// The layer of the registry's rate limiter `name` (created with `config`
/// if nothing created it yet; `#[rate_limit(name = "…")]` call sites of
/// that name share its limit).
///
/// ```
/// use resilience::{tower::rate_limit, RateLimitConfig};
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// # #[derive(Clone)] struct Echo;
/// # impl Service<u32> for Echo {
/// #     type Response = u32; type Error = resilience::Error; type Future = std::future::Ready<Result<u32, resilience::Error>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), resilience::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, n: u32) -> Self::Future { std::future::ready(Ok(n)) }
/// # }
/// let mut svc = rate_limit("tower-rate-doc", RateLimitConfig::builder(1).build().unwrap()).layer(Echo);
/// std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
/// assert_eq!(svc.call(7).await.unwrap(), 7);
/// std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
/// let refused = svc.call(8).await.unwrap_err();
/// assert!(refused.is_rate_limited());
/// # }
/// ```
pub fn rate_limit(name: &str, config: RateLimitConfig) -> RateLimitLayer {
    RateLimitLayer {
        limiter: registry().rate_limiter(name, &config),
    }
}

/// See [`rate_limit`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            turn: Turn::None,
            sleep: None,
        }
    }
}

/// What the service holds between `poll_ready` and `call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    None,
    /// Taken, due at the sleep's deadline (or now).
    Waiting,
    Taken,
    /// Further off than `max_wait`: the next call is refused.
    Refused,
}

/// A service behind a rate limiter (see [`rate_limit`]).
#[derive(Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
    turn: Turn,
    /// The wait for a turn taken ahead (allocated on the first wait, then
    /// reset for each one).
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: Clone> Clone for RateLimitService<S> {
    /// A clone holds no turn of its own until it is made ready.
    fn clone(&self) -> Self {
        RateLimitService {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            turn: Turn::None,
            sleep: None,
        }
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req>,
    S::Error: From<Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RateLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.turn == Turn::None {
            self.turn = match self.limiter.take_turn() {
                Ok(Duration::ZERO) => Turn::Taken,
                Ok(wait) => {
                    let at = tokio::time::Instant::now() + wait;
                    match &mut self.sleep {
                        Some(sleep) => sleep.as_mut().reset(at),
                        None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                    Turn::Waiting
                }
                Err(()) => Turn::Refused,
            };
        }
        if self.turn == Turn::Waiting {
            if let Some(sleep) = &mut self.sleep {
                std::task::ready!(sleep.as_mut().poll(cx));
            }
            self.turn = Turn::Taken;
        }
        match self.turn {
            // Refused in `call`, without readying the inner service.
            Turn::Refused => Poll::Ready(Ok(())),
            _ => self.inner.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.turn, Turn::None) {
            Turn::Taken => RateLimitFuture {
                inner: Some(self.inner.call(req)),
                refused: None,
            },
            _ => RateLimitFuture {
                inner: None,
                refused: Some(self.limiter.refusal_error()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`RateLimitService`].
    #[derive(Debug)]
    pub struct RateLimitFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Error>,
    }
}

impl<F, T, E> Future for RateLimitFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx),
            None => Poll::Ready(Err(E::from(
                this.refused.take().expect("polled after completion"),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower_layer::Layer;

    use super::*;

    #[derive(Clone)]
    struct Echo;

    impl Service<u32> for Echo {
        type Response = u32;
        type Error = Error;
        type Future = std::future::Ready<Result<u32, Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, n: u32) -> Self::Future {
            std::future::ready(Ok(n))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_its_turn_within_max_wait_then_sheds() {
        let config = RateLimitConfig::builder(10)
            .burst(1)
            .max_wait(Duration::from_millis(150))
            .build()
            .unwrap();
        let mut svc = rate_limit("tower-rate-wait", config).layer(Echo);
        let start = tokio::time::Instant::now();
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        assert_eq!(svc.call(1).await.unwrap(), 1);
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        assert_eq!(svc.call(2).await.unwrap(), 2);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        // The next turn is 100 ms off (taken by `svc`); the one after, 200 ms:
        // beyond `max_wait`, so `other` is refused at once.
        let mut other = svc.clone();
        let mut ready = std::pin::pin!(std::future::poll_fn(|cx| svc.poll_ready(cx)));
        assert!(futures_poll_once(ready.as_mut()).is_pending());
        std::future::poll_fn(|cx| other.poll_ready(cx))
            .await
            .unwrap();
        let refused = other.call(3).await.unwrap_err();
        assert!(refused.is_rate_limited());
        ready.await.unwrap();
        assert_eq!(svc.call(4).await.unwrap(), 4);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    fn futures_poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx)
    }
}
