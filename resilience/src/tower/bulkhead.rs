//! The bulkhead as a tower layer over the registry's bulkhead of a name:
//! the slot is taken in `poll_ready` (a service that is ready holds one),
//! waiting up to `max_wait`; a service that could not get one in time is
//! still ready, and its call answers `E::from` the bulkhead's error without
//! calling the inner service (tower's load-shedding convention). A slot
//! taken and never used is given back when the service is dropped.
//!
//! The permits are the bulkhead's semaphore's, taken through
//! `PollSemaphore`; every one goes through the bulkhead's debt,
//! so a limit lowered with [`Bulkhead::set_limits`] holds here too: a
//! permit handed out or given back while the bulkhead owes slots is
//! forgotten instead (`Held`).

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::PollSemaphore;
use tower_layer::Layer;
use tower_service::Service;

use crate::{registry, Bulkhead, Error};

/// The layer of the registry's bulkhead `name` (created with these limits
/// if nothing created it yet; `#[bulkhead(name = "…")]` call sites of that
/// name share its slots).
pub fn bulkhead(name: &str, max_concurrent: NonZeroU32, max_wait: Duration) -> BulkheadLayer {
    BulkheadLayer {
        bulkhead: registry().bulkhead(name, max_concurrent, max_wait),
    }
}

/// See [`bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Arc<Bulkhead>,
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            inner,
            semaphore: PollSemaphore::new(self.bulkhead.semaphore().clone()),
            bulkhead: self.bulkhead.clone(),
            slot: Slot::None,
            deadline: None,
        }
    }
}

/// A slot held by a service or its response future: given back through
/// the bulkhead's debt when dropped.
#[derive(Debug)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    bulkhead: Arc<Bulkhead>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.bulkhead.give_back(permit);
        }
    }
}

/// What the service holds between `poll_ready` and `call`.
#[derive(Debug)]
enum Slot {
    None,
    Taken(Held),
    /// No slot within `max_wait`: the next call is rejected.
    Full,
}

/// A service behind a bulkhead (see [`bulkhead`]).
#[derive(Debug)]
pub struct BulkheadService<S> {
    inner: S,
    semaphore: PollSemaphore,
    bulkhead: Arc<Bulkhead>,
    slot: Slot,
    /// While waiting for a slot: when to give up (allocated once per wait).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: Clone> Clone for BulkheadService<S> {
    /// A clone holds no slot of its own until it is made ready.
    fn clone(&self) -> Self {
        BulkheadService {
            inner: self.inner.clone(),
            semaphore: self.semaphore.clone(),
            bulkhead: self.bulkhead.clone(),
            slot: Slot::None,
            deadline: None,
        }
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req>,
    S::Error: From<Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BulkheadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while let Slot::None = self.slot {
            match self.semaphore.poll_acquire(cx) {
                Poll::Ready(Some(permit)) => {
                    // A permit the bulkhead owes pays its debt; wait for another.
                    if let Some(permit) = self.bulkhead.unless_owed(permit) {
                        self.deadline = None;
                        self.slot = Slot::Taken(Held {
                            permit: Some(permit),
                            bulkhead: self.bulkhead.clone(),
                        });
                    }
                }
                Poll::Ready(None) => unreachable!("a bulkhead's semaphore is never closed"),
                Poll::Pending => {
                    let wait = self.bulkhead.max_wait();
                    let deadline = self
                        .deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                    if deadline.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.deadline = None;
                    // Leave the queue: a service that gave up must not be
                    // handed the next free slot and sit on it until it is
                    // polled again.
                    self.semaphore = PollSemaphore::new(self.bulkhead.semaphore().clone());
                    self.slot = Slot::Full;
                }
            }
        }
        match self.slot {
            // Rejected in `call`, without readying the inner service.
            Slot::Full => Poll::Ready(Ok(())),
            _ => self.inner.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.slot, Slot::None) {
            Slot::Taken(held) => BulkheadFuture {
                inner: Some(self.inner.call(req)),
                slot: Some(held),
                full: None,
            },
            Slot::Full | Slot::None => BulkheadFuture {
                inner: None,
                slot: None,
                full: Some(self.bulkhead.full_error()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`BulkheadService`]: holds the slot until
    /// the response is ready (or the future is dropped).
    #[derive(Debug)]
    pub struct BulkheadFuture<F> {
        #[pin]
        inner: Option<F>,
        slot: Option<Held>,
        full: Option<Error>,
    }
}

impl<F, T, E> Future for BulkheadFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let result = std::task::ready!(inner.poll(cx));
                drop(this.slot.take());
                Poll::Ready(result)
            }
            None => Poll::Ready(Err(E::from(
                this.full.take().expect("polled after completion"),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::sync::oneshot;

    use super::*;

    /// Answers a call when its channel fires (or is dropped).
    #[derive(Clone)]
    struct Gate;

    impl Service<oneshot::Receiver<()>> for Gate {
        type Response = ();
        type Error = Error;
        type Future = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, open: oneshot::Receiver<()>) -> Self::Future {
            Box::pin(async move {
                let _ = open.await;
                Ok(())
            })
        }
    }

    fn limit(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_honours_a_lowered_limit() {
        let wait = Duration::from_secs(10);
        let bulkhead = Arc::new(Bulkhead::new("tower-lowered", limit(2), wait));
        let layer = BulkheadLayer {
            bulkhead: bulkhead.clone(),
        };
        let mut svc = layer.layer(Gate);
        let mut running = Vec::new();
        for _ in 0..2 {
            poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
            let (open, gate) = oneshot::channel();
            running.push((open, tokio::spawn(svc.call(gate))));
        }
        settle().await;
        assert_eq!(bulkhead.in_flight(), 2);

        bulkhead.set_limits(limit(1), wait);
        let start = tokio::time::Instant::now();
        let (open_third, gate) = oneshot::channel();
        let third = {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
                let admitted = start.elapsed();
                svc.call(gate).await.map(|()| admitted)
            })
        };
        settle().await;

        // The first call ends at 1 s: its slot pays the debt.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (open, first) = running.remove(0);
        open.send(()).unwrap();
        first.await.unwrap().unwrap();
        settle().await;
        assert_eq!(bulkhead.in_flight(), 1, "2 running, limit 1: nothing new");
        assert!(!third.is_finished());

        // The second ends at 2 s: now the third may run, and only it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (open, second) = running.remove(0);
        open.send(()).unwrap();
        second.await.unwrap().unwrap();
        settle().await;
        assert_eq!(bulkhead.in_flight(), 1);
        let mut fourth = svc.clone();
        let shed_at = tokio::time::Instant::now();
        poll_fn(|cx| fourth.poll_ready(cx)).await.unwrap();
        let (_open, gate) = oneshot::channel();
        let shed = fourth.call(gate).await.unwrap_err();
        assert!(shed.is_bulkhead_full());
        assert_eq!(shed.max_concurrent(), Some(1));
        assert_eq!(shed_at.elapsed(), wait, "waited max_wait, then shed");

        open_third.send(()).unwrap();
        assert_eq!(third.await.unwrap().unwrap(), Duration::from_secs(2));
        assert_eq!(bulkhead.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_honours_a_raised_limit_and_a_slot_never_used() {
        let wait = Duration::from_secs(10);
        let bulkhead = Arc::new(Bulkhead::new("tower-raised", limit(1), wait));
        let mut svc = BulkheadLayer {
            bulkhead: bulkhead.clone(),
        }
        .layer(Gate);
        poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        let (open, gate) = oneshot::channel();
        let first = tokio::spawn(svc.call(gate));
        let start = tokio::time::Instant::now();
        let waiting = {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
                (start.elapsed(), svc) // ready: holds a slot, never called
            })
        };
        settle().await;
        assert!(!waiting.is_finished());
        bulkhead.set_limits(limit(2), wait);
        let (admitted, ready) = waiting.await.unwrap();
        assert_eq!(admitted, Duration::ZERO, "admitted by the raise at once");
        assert_eq!(bulkhead.in_flight(), 2);

        // Lowered back while both hold slots: the unused one pays the debt.
        bulkhead.set_limits(limit(1), wait);
        drop(ready);
        assert_eq!(bulkhead.in_flight(), 1);
        open.send(()).unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(bulkhead.in_flight(), 0);
        assert_eq!(bulkhead.semaphore().available_permits(), 1);
    }
}
