//! Request coalescing as a tower layer: concurrent requests with an equal
//! key share one call of the inner service, whose response (or error) each
//! of them gets a clone of ([`Coalescer`]'s rules, cancellation and panics
//! included).
//!
//! The service is always ready: readiness is the inner service's business
//! at the moment a request is really sent. Each request takes a clone of
//! the inner service with it (tower's convention, as in the retry layer),
//! which waits for readiness and makes the call only if that request leads
//! (tower's `Oneshot`); a follower never asks for readiness, so it holds no
//! slot of an inner bulkhead or concurrency limit while it waits, and its
//! clone is dropped unused when the leader's response comes.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::{Coalesced, Coalescer};

/// A layer that coalesces the concurrent requests whose `key`s are equal
/// into one call of the inner service; `name` is what its `tracing` events
/// and [`CoalesceLayer::status`] report. The services one layer makes (and
/// their clones) share its flights.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use resilience::tower::coalesce;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// #[derive(Clone)]
/// struct Lookup { sent: Arc<AtomicU32> }
///
/// impl Service<u64> for Lookup {
///     type Response = String;
///     type Error = String;
///     type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>;
///     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), String>> {
///         std::task::Poll::Ready(Ok(()))
///     }
///     fn call(&mut self, id: u64) -> Self::Future {
///         self.sent.fetch_add(1, Ordering::Relaxed);
///         Box::pin(async move {
///             tokio::task::yield_now().await; // the network
///             Ok(format!("user {id}"))
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sent = Arc::new(AtomicU32::new(0));
/// let layer = coalesce("user-lookup", |id: &u64| *id);
/// let mut svc = layer.layer(Lookup { sent: sent.clone() });
/// let (a, b) = (svc.call(7), svc.call(7));
/// let (a, b) = tokio::join!(a, b);
/// assert_eq!((a.unwrap(), b.unwrap()), ("user 7".to_owned(), "user 7".to_owned()));
/// assert_eq!(sent.load(Ordering::Relaxed), 1, "one request went out");
/// println!("{:?}", layer.status());
/// # }
/// ```
pub fn coalesce<Req, K, KeyFn>(name: &str, key: KeyFn) -> CoalesceLayer<KeyFn>
where
    KeyFn: Fn(&Req) -> K,
    K: Hash + Eq + Send + Sync + 'static,
{
    CoalesceLayer {
        coalescer: Arc::new(Coalescer::named(name.to_owned())),
        key: Arc::new(key),
    }
}

/// See [`coalesce`].
pub struct CoalesceLayer<KeyFn> {
    coalescer: Arc<Coalescer>,
    key: Arc<KeyFn>,
}

impl<KeyFn> CoalesceLayer<KeyFn> {
    /// The counters of the layer's flights, and the keys in flight now.
    pub fn status(&self) -> crate::CoalesceStatus {
        self.coalescer.status()
    }
}

impl<KeyFn> Clone for CoalesceLayer<KeyFn> {
    fn clone(&self) -> Self {
        CoalesceLayer {
            coalescer: self.coalescer.clone(),
            key: self.key.clone(),
        }
    }
}

impl<KeyFn> fmt::Debug for CoalesceLayer<KeyFn> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceLayer")
            .field("coalescer", &self.coalescer)
            .finish_non_exhaustive()
    }
}

impl<S, KeyFn> Layer<S> for CoalesceLayer<KeyFn> {
    type Service = CoalesceService<S, KeyFn>;

    fn layer(&self, inner: S) -> Self::Service {
        CoalesceService {
            inner,
            coalescer: self.coalescer.clone(),
            key: self.key.clone(),
        }
    }
}

/// A service whose concurrent requests of equal keys are coalesced (see
/// [`coalesce`]).
pub struct CoalesceService<S, KeyFn> {
    inner: S,
    coalescer: Arc<Coalescer>,
    key: Arc<KeyFn>,
}

impl<S: Clone, KeyFn> Clone for CoalesceService<S, KeyFn> {
    fn clone(&self) -> Self {
        CoalesceService {
            inner: self.inner.clone(),
            coalescer: self.coalescer.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: fmt::Debug, KeyFn> fmt::Debug for CoalesceService<S, KeyFn> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceService")
            .field("inner", &self.inner)
            .field("coalescer", &self.coalescer.name())
            .finish_non_exhaustive()
    }
}

impl<S, KeyFn, Req, K> Service<Req> for CoalesceService<S, KeyFn>
where
    S: Service<Req> + Clone,
    S::Response: Clone + Send + 'static,
    S::Error: Clone + Send + 'static,
    KeyFn: Fn(&Req) -> K,
    K: Hash + Eq + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CoalesceFuture<S, Req, K>;

    /// Always ready: the request that leads waits for the inner service's
    /// readiness in its response future.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        let send = Oneshot::Waiting {
            service: self.inner.clone(),
            req: Some(req),
        };
        CoalesceFuture {
            inner: Coalesced::new(self.coalescer.clone(), key, send),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`CoalesceService`]: the inner service's
    /// response, or a clone of the response to the request of an equal key
    /// in flight.
    pub struct CoalesceFuture<S, Req, K>
    where
        S: Service<Req>,
    {
        #[pin]
        inner: Coalesced<Arc<Coalescer>, K, Oneshot<S, Req>>,
    }
}

impl<S: Service<Req>, Req, K> fmt::Debug for CoalesceFuture<S, Req, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CoalesceFuture").field(&self.inner).finish()
    }
}

impl<S, Req, K> Future for CoalesceFuture<S, Req, K>
where
    S: Service<Req>,
    S::Response: Clone + Send + 'static,
    S::Error: Clone + Send + 'static,
    K: Hash + Eq + Send + Sync + 'static,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

pin_project_lite::pin_project! {
    /// One request to a service: readiness, then the call, then its
    /// response (tower's `Oneshot`). Nothing happens until it is polled.
    #[project = OneshotProj]
    enum Oneshot<S, Req>
    where
        S: Service<Req>,
    {
        Waiting { service: S, req: Option<Req> },
        Calling { #[pin] future: S::Future },
    }
}

impl<S: Service<Req>, Req> Future for Oneshot<S, Req> {
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                OneshotProj::Waiting { service, req } => {
                    std::task::ready!(service.poll_ready(cx))?;
                    let req = req.take().expect("a request is sent once");
                    let future = service.call(req);
                    self.set(Oneshot::Calling { future });
                }
                OneshotProj::Calling { future } => return future.poll(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::time::{sleep, Instant};

    use super::*;

    /// Answers `key * 10` (or an error for odd keys) after a second,
    /// counting the requests it gets and the readiness it was asked for.
    #[derive(Clone, Default)]
    struct Slow {
        calls: Arc<AtomicU32>,
        readied: Arc<AtomicU32>,
    }

    impl Service<(u32, u64)> for Slow {
        type Response = u32;
        type Error = String;
        type Future = Pin<Box<dyn Future<Output = Result<u32, String>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            self.readied.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (key, _): (u32, u64)) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                sleep(Duration::from_secs(1)).await;
                match key % 2 {
                    0 => Ok(key * 10),
                    _ => Err(format!("{key} is odd")),
                }
            })
        }
    }

    fn by_key(req: &(u32, u64)) -> u32 {
        req.0
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_of_one_key_make_one_call() {
        let slow = Slow::default();
        let layer = coalesce("tower-coalesce", by_key);
        let svc = layer.layer(slow.clone());
        let start = Instant::now();
        let calls: Vec<_> = (0..20u32)
            .map(|i| {
                let mut svc = svc.clone();
                // The part of a request its key ignores: a trace id, say.
                tokio::spawn(async move { svc.call((i % 4, u64::from(i))).await })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            let key = i as u32 % 4;
            let expected = if key.is_multiple_of(2) {
                Ok(key * 10)
            } else {
                Err(format!("{key} is odd"))
            };
            assert_eq!(call.await.unwrap(), expected, "errors are shared too");
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "the four keys at once"
        );
        assert_eq!(slow.calls.load(Ordering::SeqCst), 4, "one call per key");
        assert_eq!(
            slow.readied.load(Ordering::SeqCst),
            4,
            "followers never ask for readiness"
        );
        let status = layer.status();
        assert_eq!(
            (
                &*status.name,
                status.calls,
                status.leaders,
                status.followers,
                status.in_flight
            ),
            ("tower-coalesce", 20, 4, 16, 0)
        );

        // Done requests are not remembered.
        let mut svc = svc;
        assert_eq!(svc.call((0, 1)).await, Ok(0));
        assert_eq!(slow.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn followers_hold_no_slot_of_an_inner_bulkhead() {
        let slow = Slow::default();
        let inner =
            crate::tower::bulkhead("tower-coalesce-bulkhead", NonZeroU32::MIN, Duration::ZERO)
                .layer(MapErr(slow.clone()));
        let svc = coalesce("tower-coalesce-over-bulkhead", by_key).layer(inner);
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let mut svc = svc.clone();
                tokio::spawn(async move { svc.call((2, 0)).await })
            })
            .collect();
        for call in calls {
            assert_eq!(
                call.await.unwrap(),
                Ok(20),
                "none shed by the full bulkhead"
            );
        }
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leading_request_hands_over() {
        let slow = Slow::default();
        let layer = coalesce("tower-coalesce-cancelled", by_key);
        let svc = layer.layer(slow.clone());
        let spawn = || {
            let mut svc = svc.clone();
            tokio::spawn(async move { svc.call((2, 0)).await })
        };
        let leader = spawn();
        tokio::task::yield_now().await;
        let followers: Vec<_> = (0..3).map(|_| spawn()).collect();
        sleep(Duration::from_millis(500)).await;
        leader.abort();
        for follower in followers {
            assert_eq!(follower.await.unwrap(), Ok(20));
        }
        assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
        assert_eq!(layer.status().takeovers, 1);
    }

    /// `Slow` with the error type a bulkhead needs (`From<resilience::Error>`).
    #[derive(Clone)]
    struct MapErr(Slow);

    #[derive(Debug, Clone, PartialEq)]
    enum Failed {
        Inner(String),
        Layer(crate::Error),
    }

    impl From<crate::Error> for Failed {
        fn from(e: crate::Error) -> Self {
            Failed::Layer(e)
        }
    }

    impl Service<(u32, u64)> for MapErr {
        type Response = u32;
        type Error = Failed;
        type Future = Pin<Box<dyn Future<Output = Result<u32, Failed>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failed>> {
            self.0.poll_ready(cx).map_err(Failed::Inner)
        }

        fn call(&mut self, req: (u32, u64)) -> Self::Future {
            let call = self.0.call(req);
            Box::pin(async move { call.await.map_err(Failed::Inner) })
        }
    }
}
