//! The bulkhead as a tower layer over the registry's bulkhead of a name:
//! the slot is taken in `poll_ready` (a service that is ready holds one),
//! waiting up to `max_wait`; a service that could not get one in time is
//! still ready, and its call answers `E::from` the bulkhead's error without
//! calling the inner service (tower's load-shedding convention). A slot
//! taken and never used is given back when the service is dropped.

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

/// What the service holds between `poll_ready` and `call`.
#[derive(Debug)]
enum Slot {
    None,
    Taken(OwnedSemaphorePermit),
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
        if let Slot::None = self.slot {
            match self.semaphore.poll_acquire(cx) {
                Poll::Ready(Some(permit)) => {
                    self.deadline = None;
                    self.slot = Slot::Taken(permit);
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
            Slot::Taken(permit) => BulkheadFuture {
                inner: Some(self.inner.call(req)),
                slot: Some(permit),
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
        slot: Option<OwnedSemaphorePermit>,
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
