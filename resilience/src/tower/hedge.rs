//! Hedged requests as a tower layer: the same [`Hedge`] engine (delay,
//! percentile histogram, counters) as [`Hedge::run`], for services and
//! requests that can be cloned.
//!
//! The ready service makes the first call, in `call` (tower's convention,
//! as the retry layer does); each hedge gets a clone of the service, made
//! ready inside the response future, and a clone of the request. A clone
//! that fails to become ready is a failed attempt. The response future is
//! written by hand and allocates nothing: the attempts live inline in it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::hedge::Core;
use crate::{Hedge, HedgeConfig};

/// A layer that hedges the calls of the services it wraps: a call that has
/// not answered after the `config`'s delay is raced by a call of a clone of
/// the service with a clone of the request (up to `max_hedges` of them);
/// the first `Ok` wins and the other calls are dropped.
///
/// The layer owns its [`Hedge`] (its latency histogram and counters, named
/// `name`), shared by every service it wraps; [`HedgeLayer::new`] takes one
/// made elsewhere.
///
/// ```
/// use std::time::Duration;
/// use resilience::HedgeConfig;
/// use resilience::tower::hedge;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[derive(Clone)] struct Replicas { calls: std::sync::Arc<std::sync::atomic::AtomicU32> }
/// # impl Service<&'static str> for Replicas {
/// #     type Response = String; type Error = std::io::Error;
/// #     type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, std::io::Error>>>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), std::io::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, key: &'static str) -> Self::Future {
/// #         let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
/// #         Box::pin(async move {
/// #             // The first call stalls; the hedge answers at once.
/// #             tokio::time::sleep(Duration::from_secs(if n == 0 { 60 } else { 0 })).await;
/// #             Ok(format!("{key} from call {n}"))
/// #         })
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// # let replicas = Replicas { calls: Default::default() };
/// let config = HedgeConfig::builder().delay(Duration::from_millis(50)).build().unwrap();
/// let layer = hedge("kv-get", config);
/// let mut kv = layer.layer(replicas);
/// let started = tokio::time::Instant::now();
/// assert_eq!(kv.call("user:7").await.unwrap(), "user:7 from call 1");
/// assert_eq!(started.elapsed(), Duration::from_millis(50));
/// assert_eq!(layer.hedge().status().hedges_won, 1);
/// # }
/// ```
pub fn hedge(name: &str, config: HedgeConfig) -> HedgeLayer {
    HedgeLayer::new(Arc::new(Hedge::with_name(name, config)))
}

/// Every request may be hedged (the default of [`HedgeLayer`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryRequest;

/// Whether a request may be hedged now (asked before each extra attempt).
pub trait HedgeIf<Req> {
    /// `false` starts no further attempt of `req`'s call (the running ones
    /// go on).
    fn may_hedge(&self, req: &Req) -> bool;
}

impl<Req> HedgeIf<Req> for EveryRequest {
    fn may_hedge(&self, _: &Req) -> bool {
        true
    }
}

impl<Req, F: Fn(&Req) -> bool> HedgeIf<Req> for F {
    fn may_hedge(&self, req: &Req) -> bool {
        self(req)
    }
}

/// See [`hedge`].
#[derive(Debug, Clone)]
pub struct HedgeLayer<P = EveryRequest> {
    hedge: Arc<Hedge>,
    may_hedge: P,
}

impl HedgeLayer {
    /// The layer of a hedge made elsewhere (its histogram and counters are
    /// shared with every other user of that `Arc`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use resilience::{Hedge, HedgeConfig};
    /// use resilience::tower::HedgeLayer;
    ///
    /// let shared = Arc::new(Hedge::with_name("search", HedgeConfig::DEFAULT));
    /// let layer = HedgeLayer::new(shared.clone());
    /// assert!(Arc::ptr_eq(layer.hedge(), &shared));
    /// ```
    pub fn new(hedge: Arc<Hedge>) -> Self {
        HedgeLayer {
            hedge,
            may_hedge: EveryRequest,
        }
    }
}

impl<P> HedgeLayer<P> {
    /// The hedge: its configuration and [`status`](Hedge::status).
    pub fn hedge(&self) -> &Arc<Hedge> {
        &self.hedge
    }

    /// Which requests may be hedged, asked before each extra attempt: only
    /// idempotent ones (`|req: &Request<B>| req.method() == Method::GET`),
    /// or only while a retry budget has a token.
    ///
    /// ```
    /// use resilience::HedgeConfig;
    /// use resilience::tower::hedge;
    ///
    /// enum Query { Read(u32), Write(u32) }
    /// let layer = hedge("db", HedgeConfig::DEFAULT)
    ///     .may_hedge(|q: &Query| matches!(q, Query::Read(_)));
    /// # let _ = (layer, Query::Write(1), Query::Read(1));
    /// ```
    pub fn may_hedge<Q>(self, may_hedge: Q) -> HedgeLayer<Q> {
        HedgeLayer {
            hedge: self.hedge,
            may_hedge,
        }
    }
}

impl<S, P: Clone> Layer<S> for HedgeLayer<P> {
    type Service = HedgeService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        HedgeService {
            inner,
            hedge: self.hedge.clone(),
            may_hedge: self.may_hedge.clone(),
        }
    }
}

/// A service whose calls are hedged (see [`hedge`]).
#[derive(Debug, Clone)]
pub struct HedgeService<S, P = EveryRequest> {
    inner: S,
    hedge: Arc<Hedge>,
    may_hedge: P,
}

impl<S, P, Req> Service<Req> for HedgeService<S, P>
where
    S: Service<Req> + Clone,
    Req: Clone,
    P: HedgeIf<Req> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HedgeResponseFuture<S, Req, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The ready service makes the first call; a clone, made ready in
        // the future, each hedge.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let first = Attempt::Calling {
            future: ready.call(req.clone()),
        };
        HedgeResponseFuture {
            hedge: self.hedge.clone(),
            service: ready,
            req,
            may_hedge: self.may_hedge.clone(),
            core: Core::started(first, tokio::time::Instant::now()),
        }
    }
}

pin_project_lite::pin_project! {
    /// One attempt: a service clone being made ready, then its call.
    #[project = AttemptProj]
    enum Attempt<S, Req>
    where
        S: Service<Req>,
    {
        Readying { service: S, req: Option<Req> },
        Calling { #[pin] future: S::Future },
    }
}

impl<S: Service<Req>, Req> Future for Attempt<S, Req> {
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                AttemptProj::Calling { future } => return future.poll(cx),
                AttemptProj::Readying { service, req } => {
                    std::task::ready!(service.poll_ready(cx))?;
                    let Some(req) = req.take() else {
                        unreachable!("a hedge's request is taken once, by its call")
                    };
                    let future = service.call(req);
                    self.set(Attempt::Calling { future });
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`HedgeService`].
    pub struct HedgeResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        hedge: Arc<Hedge>,
        // Cloned for each hedge (a clone is made ready before its call).
        service: S,
        req: Req,
        may_hedge: P,
        #[pin]
        core: Core<Attempt<S, Req>>,
    }
}

impl<S: Service<Req>, Req, P> std::fmt::Debug for HedgeResponseFuture<S, Req, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HedgeResponseFuture")
            .field("hedge", &self.hedge.name())
            .field("attempts", &self.core.attempts())
            .finish_non_exhaustive()
    }
}

impl<S, Req, P> Future for HedgeResponseFuture<S, Req, P>
where
    S: Service<Req> + Clone,
    Req: Clone,
    P: HedgeIf<Req>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (service, req, may_hedge) = (&*this.service, &*this.req, &*this.may_hedge);
        this.core.poll_hedged(
            cx,
            this.hedge,
            &mut || Attempt::Readying {
                service: service.clone(),
                req: Some(req.clone()),
            },
            &mut || may_hedge.may_hedge(req),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// Call `n` takes `plan[n].0` ms and answers `plan[n].1`; counts the
    /// calls dropped before they answered.
    #[derive(Clone)]
    struct Plan {
        plan: Arc<Vec<(u64, Result<u32, u32>)>>,
        calls: Arc<AtomicU32>,
        cancelled: Arc<AtomicU32>,
        ready_fails: bool,
        readied: Arc<AtomicU32>,
    }

    impl Plan {
        fn new(plan: &[(u64, Result<u32, u32>)]) -> Self {
            Plan {
                plan: Arc::new(plan.to_vec()),
                calls: Arc::default(),
                cancelled: Arc::default(),
                ready_fails: false,
                readied: Arc::default(),
            }
        }
    }

    struct Cancel(Arc<AtomicU32>, bool);

    impl Drop for Cancel {
        fn drop(&mut self) {
            if self.1 {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    impl Service<&'static str> for Plan {
        type Response = (u32, &'static str);
        type Error = u32;
        type Future = std::pin::Pin<Box<dyn Future<Output = Result<(u32, &'static str), u32>>>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), u32>> {
            let n = self.readied.fetch_add(1, Ordering::Relaxed);
            if self.ready_fails && n > 0 {
                return Poll::Ready(Err(100 + n));
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: &'static str) -> Self::Future {
            let n = self.calls.fetch_add(1, Ordering::Relaxed) as usize;
            let (ms, outcome) = self.plan[n];
            let guard = Cancel(self.cancelled.clone(), true);
            Box::pin(async move {
                let mut guard = guard; // moved in whole, not its field
                tokio::time::sleep(Duration::from_millis(ms)).await;
                guard.1 = false;
                outcome.map(|n| (n, req))
            })
        }
    }

    fn layer(delay_ms: u64, max_hedges: u32) -> HedgeLayer {
        let config = HedgeConfig::builder()
            .delay(Duration::from_millis(delay_ms))
            .max_hedges(max_hedges)
            .build()
            .unwrap();
        hedge("tower-test", config)
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_is_beaten_by_a_hedge_with_a_clone_of_the_request() {
        let plan = Plan::new(&[(10_000, Ok(0)), (20, Ok(1))]);
        let layer = layer(100, 1);
        let mut svc = layer.layer(plan.clone());
        let t0 = tokio::time::Instant::now();
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        assert_eq!(svc.call("k").await, Ok((1, "k")));
        assert_eq!(t0.elapsed(), Duration::from_millis(120));
        assert_eq!(plan.cancelled.load(Ordering::Relaxed), 1);
        assert_eq!(plan.calls.load(Ordering::Relaxed), 2);
        // Made ready twice: by the caller, and the hedge's clone.
        assert_eq!(plan.readied.load(Ordering::Relaxed), 2);
        let status = layer.hedge().status();
        assert_eq!((status.calls, status.hedges, status.hedges_won), (1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_call_is_not_hedged() {
        let plan = Plan::new(&[(10, Ok(0))]);
        let mut svc = layer(100, 2).layer(plan.clone());
        assert_eq!(svc.call("k").await, Ok((0, "k")));
        assert_eq!(plan.calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_hedge_at_once_and_the_last_error_is_returned() {
        let plan = Plan::new(&[(10, Err(0)), (10, Err(1)), (10, Err(2))]);
        let mut svc = layer(1_000, 2).layer(plan.clone());
        let t0 = tokio::time::Instant::now();
        assert_eq!(svc.call("k").await, Err(2));
        assert_eq!(t0.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_clone_that_is_not_ready_is_a_failed_attempt() {
        let mut plan = Plan::new(&[(10, Err(0))]);
        plan.ready_fails = true;
        let mut svc = layer(1_000, 1).layer(plan.clone());
        // The caller's readiness is the first; the hedge's clone fails its own.
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        assert_eq!(svc.call("k").await, Err(101));
    }

    #[tokio::test(start_paused = true)]
    async fn may_hedge_sees_the_request() {
        let plan = Plan::new(&[(100, Ok(0)), (100, Ok(1)), (10, Ok(2))]);
        let layer = layer(10, 1).may_hedge(|req: &&'static str| req.starts_with("get"));
        let mut svc = layer.layer(plan.clone());
        assert_eq!(svc.call("put k").await, Ok((0, "put k")));
        assert_eq!(plan.calls.load(Ordering::Relaxed), 1, "not hedged");
        assert_eq!(svc.call("get k").await.unwrap().1, "get k");
        assert_eq!(plan.calls.load(Ordering::Relaxed), 3, "hedged");
    }
}
