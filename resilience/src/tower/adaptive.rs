//! The adaptive bulkhead as a tower layer: the slot is taken in
//! `poll_ready` (a service that is ready holds one), waiting up to
//! `max_wait`, first come, first served; a service that could not get one
//! in time is still ready, and its call answers `E::from` the bulkhead's
//! error without calling the inner service (tower's load-shedding
//! convention). The call's latency counts from `call` (not from
//! readiness) to its response, whose outcome a classifier decides. A slot
//! taken and never used, or a response future dropped before its response,
//! is given back and records nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tokio_util::sync::ReusableBoxFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::{Classify, DefaultClassifier};
use crate::adaptive::Slot;
use crate::{AdaptiveBulkhead, AdaptiveConfig, Error, Outcome};

/// The layer of the shared adaptive bulkhead `name`
/// ([`AdaptiveBulkhead::shared`]: created with `config` if nothing created
/// it yet; every layer and caller of that name shares its limit).
///
/// ```
/// use std::time::Duration;
/// use resilience::tower::adaptive_concurrency;
/// use resilience::{AdaptiveConfig, Gradient2};
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[derive(Clone)] struct Echo;
/// # impl Service<u32> for Echo {
/// #     type Response = u32; type Error = resilience::Error; type Future = std::future::Ready<Result<u32, resilience::Error>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), resilience::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, n: u32) -> Self::Future { std::future::ready(Ok(n)) }
/// # }
/// let config = AdaptiveConfig::builder(Gradient2::default())
///     .max_wait(Duration::from_millis(50))
///     .build()?;
/// let layer = adaptive_concurrency("tower-adaptive-doc", config);
/// let mut svc = layer.layer(Echo);
/// std::future::poll_fn(|cx| svc.poll_ready(cx)).await?; // holds a slot
/// assert_eq!(layer.bulkhead().in_flight(), 1);
/// assert_eq!(svc.call(7).await?, 7);
/// assert_eq!(layer.bulkhead().in_flight(), 0);
/// # Ok(()) }
/// ```
pub fn adaptive_concurrency(name: &str, config: AdaptiveConfig) -> AdaptiveConcurrencyLayer {
    AdaptiveConcurrencyLayer::new(AdaptiveBulkhead::shared(name, config))
}

/// See [`adaptive_concurrency`].
#[derive(Debug, Clone)]
pub struct AdaptiveConcurrencyLayer<C = DefaultClassifier> {
    bulkhead: Arc<AdaptiveBulkhead>,
    classify: C,
}

impl AdaptiveConcurrencyLayer<DefaultClassifier> {
    /// The layer of `bulkhead`: every `Ok` response a success, every `Err`
    /// a failure.
    pub fn new(bulkhead: Arc<AdaptiveBulkhead>) -> Self {
        AdaptiveConcurrencyLayer {
            bulkhead,
            classify: DefaultClassifier,
        }
    }
}

impl<C> AdaptiveConcurrencyLayer<C> {
    /// Decides what each result counts as for the limit: `|r: &Result<Response, E>|
    /// match r { Ok(resp) if resp.status() == 503 => Outcome::Failure, .. }`.
    pub fn classify<D>(self, classify: D) -> AdaptiveConcurrencyLayer<D> {
        AdaptiveConcurrencyLayer {
            bulkhead: self.bulkhead,
            classify,
        }
    }

    /// The bulkhead.
    pub fn bulkhead(&self) -> &Arc<AdaptiveBulkhead> {
        &self.bulkhead
    }
}

impl<S, C: Clone> Layer<S> for AdaptiveConcurrencyLayer<C> {
    type Service = AdaptiveConcurrencyService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveConcurrencyService {
            inner,
            bulkhead: self.bulkhead.clone(),
            classify: self.classify.clone(),
            slot: Ready::None,
            wait: None,
            waiting: false,
        }
    }
}

/// A slot held by a service or its response future: given back, recording
/// nothing, if dropped before [`finish`](Held::finish).
#[derive(Debug)]
struct Held {
    bulkhead: Arc<AdaptiveBulkhead>,
    slot: Option<Slot>,
}

impl Held {
    /// Records the call's outcome and gives the slot back.
    fn finish(mut self, outcome: Outcome) {
        if let Some(slot) = self.slot.take() {
            self.bulkhead.release(slot, outcome);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.bulkhead.release(slot, Outcome::Ignored);
        }
    }
}

/// What the service holds between `poll_ready` and `call`.
#[derive(Debug)]
enum Ready {
    None,
    Taken(Held),
    /// No slot within `max_wait`: the next call is rejected.
    Full,
}

/// The wait for a slot: its future lives in a box the service reuses.
type Wait = ReusableBoxFuture<'static, Option<Slot>>;

/// A service behind an adaptive bulkhead (see [`adaptive_concurrency`]).
pub struct AdaptiveConcurrencyService<S, C = DefaultClassifier> {
    inner: S,
    bulkhead: Arc<AdaptiveBulkhead>,
    classify: C,
    slot: Ready,
    /// The wait for a slot, allocated at the service's first wait and
    /// reused by the next ones.
    wait: Option<Wait>,
    /// Whether `wait` holds a wait not finished yet.
    waiting: bool,
}

impl<S: fmt::Debug, C> fmt::Debug for AdaptiveConcurrencyService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveConcurrencyService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead.name())
            .field("slot", &self.slot)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, C: Clone> Clone for AdaptiveConcurrencyService<S, C> {
    /// A clone holds no slot of its own until it is made ready.
    fn clone(&self) -> Self {
        AdaptiveConcurrencyService {
            inner: self.inner.clone(),
            bulkhead: self.bulkhead.clone(),
            classify: self.classify.clone(),
            slot: Ready::None,
            wait: None,
            waiting: false,
        }
    }
}

impl<S, C> AdaptiveConcurrencyService<S, C> {
    fn held(&self, slot: Slot) -> Ready {
        Ready::Taken(Held {
            bulkhead: self.bulkhead.clone(),
            slot: Some(slot),
        })
    }

    /// Starts a wait of up to `max_wait` for a slot, in the reused box.
    fn start_wait(&mut self) {
        let bulkhead = self.bulkhead.clone();
        let wait = async move { bulkhead.admit_within(bulkhead.max_wait()).await };
        self.waiting = true;
        match &mut self.wait {
            Some(boxed) => boxed.set(wait),
            None => self.wait = Some(ReusableBoxFuture::new(wait)),
        }
    }
}

impl<S, C, Req> Service<Req> for AdaptiveConcurrencyService<S, C>
where
    S: Service<Req>,
    S::Error: From<Error>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AdaptiveConcurrencyFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while let Ready::None = self.slot {
            if !self.waiting {
                if let Some(slot) = self.bulkhead.try_admit_first() {
                    self.slot = self.held(slot);
                    break;
                }
                if self.bulkhead.max_wait().is_zero() {
                    self.slot = Ready::Full;
                    break;
                }
                self.start_wait();
            }
            let Some(wait) = self.wait.as_mut() else {
                // `start_wait` has just filled it.
                self.waiting = false;
                continue;
            };
            let admitted = std::task::ready!(wait.poll(cx));
            self.waiting = false;
            self.slot = match admitted {
                Some(slot) => self.held(slot),
                None => Ready::Full,
            };
        }
        match self.slot {
            // Rejected in `call`, without readying the inner service.
            Ready::Full => Poll::Ready(Ok(())),
            _ => self.inner.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.slot, Ready::None) {
            Ready::Taken(mut held) => {
                // The latency counts from the call, not from readiness.
                if let Some(slot) = held.slot.as_mut() {
                    slot.started = Instant::now();
                }
                AdaptiveConcurrencyFuture {
                    inner: Some(self.inner.call(req)),
                    held: Some(held),
                    classify: self.classify.clone(),
                    full: self.bulkhead.full_error(),
                }
            }
            Ready::Full | Ready::None => AdaptiveConcurrencyFuture {
                inner: None,
                held: None,
                classify: self.classify.clone(),
                full: self.bulkhead.reject(),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of an [`AdaptiveConcurrencyService`]: holds the
    /// slot until the response is ready, then records it.
    pub struct AdaptiveConcurrencyFuture<F, C> {
        #[pin]
        inner: Option<F>,
        held: Option<Held>,
        classify: C,
        full: Error,
    }
}

impl<F, C> fmt::Debug for AdaptiveConcurrencyFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveConcurrencyFuture")
            .field("rejected", &self.inner.is_none())
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for AdaptiveConcurrencyFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
    C: Classify<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let result = std::task::ready!(inner.poll(cx));
                if let Some(held) = this.held.take() {
                    held.finish(this.classify.classify(&result));
                }
                Poll::Ready(result)
            }
            // The rejection (`Copy`: polled again, the same error).
            None => Poll::Ready(Err(E::from(*this.full))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;
    use crate::Aimd;

    /// Answers after the request's delay.
    #[derive(Clone, Default)]
    struct Sleepy {
        calls: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Service<Duration> for Sleepy {
        type Response = u32;
        type Error = Error;
        type Future = Pin<Box<dyn Future<Output = Result<u32, Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, delay: Duration) -> Self::Future {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(n)
            })
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bulkhead(name: &str, initial: u32, max: u32, max_wait: Duration) -> Arc<AdaptiveBulkhead> {
        let aimd = Aimd::default()
            .latency_threshold(ms(100))
            .backoff_ratio(0.5);
        let config = AdaptiveConfig::builder(aimd)
            .initial_limit(initial)
            .max_limit(max)
            .max_wait(max_wait)
            .build()
            .unwrap();
        Arc::new(AdaptiveBulkhead::new(name, config))
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_waits_for_a_slot_then_sheds_and_gives_unused_slots_back() {
        let bulkhead = bulkhead("tower-adaptive-shed", 1, 1, ms(100));
        let inner = Sleepy::default();
        let mut first = AdaptiveConcurrencyLayer::new(bulkhead.clone()).layer(inner.clone());
        let mut second = first.clone();
        poll_fn(|cx| first.poll_ready(cx)).await.unwrap();
        assert_eq!(bulkhead.in_flight(), 1, "a ready service holds its slot");

        let start = Instant::now();
        poll_fn(|cx| second.poll_ready(cx)).await.unwrap();
        assert_eq!(start.elapsed(), ms(100), "waited max_wait");
        let shed = second.call(ms(1)).await.unwrap_err();
        assert!(shed.is_bulkhead_full());
        assert_eq!(shed.name().as_deref(), Some("tower-adaptive-shed"));
        assert_eq!(inner.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

        drop(first); // ready, never called
        assert_eq!(bulkhead.in_flight(), 0);
        let status = bulkhead.status();
        assert_eq!((status.admitted, status.rejected), (1, 1));
        assert_eq!(
            bulkhead.adaptive_limit().estimate(),
            1.0,
            "nothing recorded"
        );

        // A slot freed while a service waits is its own.
        let mut held = second.clone();
        poll_fn(|cx| held.poll_ready(cx)).await.unwrap();
        let waiting = tokio::spawn(async move {
            poll_fn(|cx| second.poll_ready(cx)).await.unwrap();
            second.call(ms(1)).await
        });
        tokio::time::sleep(ms(50)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap().unwrap(), 1);
        assert_eq!(bulkhead.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_counts_from_the_call_and_the_classifier_decides_the_outcome() {
        let bulkhead = bulkhead("tower-adaptive-latency", 2, 8, Duration::ZERO);
        let mut svc = AdaptiveConcurrencyLayer::new(bulkhead.clone()).layer(Sleepy::default());
        poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await; // ready long before the call
        svc.call(ms(10)).await.unwrap();
        // A fast success (10 ms, not 1 s) with half the limit in use: 2 + 1/2.
        assert_eq!(bulkhead.adaptive_limit().estimate(), 2.5);

        let mut failing = AdaptiveConcurrencyLayer::new(bulkhead.clone())
            .classify(|_: &Result<u32, Error>| Outcome::Failure)
            .layer(Sleepy::default());
        poll_fn(|cx| failing.poll_ready(cx)).await.unwrap();
        assert!(
            failing.call(ms(10)).await.is_ok(),
            "the response is unchanged"
        );
        assert_eq!(bulkhead.limit(), 1, "counted a failure: halved");
        assert_eq!(bulkhead.status().failures, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_future_dropped_early_records_nothing() {
        let bulkhead = bulkhead("tower-adaptive-dropped", 2, 8, Duration::ZERO);
        let mut svc = AdaptiveConcurrencyLayer::new(bulkhead.clone()).layer(Sleepy::default());
        poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        let cut = tokio::time::timeout(ms(10), svc.call(Duration::from_secs(5))).await;
        assert!(cut.is_err());
        assert_eq!(bulkhead.in_flight(), 0);
        assert_eq!(bulkhead.adaptive_limit().estimate(), 2.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_dropped_while_waiting_leaves_the_line() {
        let bulkhead = bulkhead("tower-adaptive-leave", 1, 1, Duration::from_secs(10));
        let mut svc = AdaptiveConcurrencyLayer::new(bulkhead.clone()).layer(Sleepy::default());
        let mut waiter = svc.clone();
        poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        let pending = poll_fn(|cx| Poll::Ready(waiter.poll_ready(cx).is_pending())).await;
        assert!(pending);
        assert_eq!(bulkhead.status().waiting, 1);
        drop(waiter);
        assert_eq!(bulkhead.status().waiting, 0);
        drop(svc);
        assert!(bulkhead.try_acquire().is_ok());
    }

    #[test]
    fn services_and_futures_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AdaptiveConcurrencyService<Sleepy, DefaultClassifier>>();
        check::<AdaptiveConcurrencyLayer>();
    }
}
