//! Bulkheads: a named limit on calls in flight at once.

mod blocking;
mod call;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// A held bulkhead slot; given back (and reported) when dropped.
#[derive(Debug)]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for BulkheadPermit<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        crate::metrics::bulkhead_in_flight(&self.bulkhead.name, self.bulkhead.in_flight());
    }
}

use crate::error::{Identity, Owner};
use crate::Error;

/// A named, shared concurrency limit: at most `max_concurrent` calls run at
/// once; a call waits up to `max_wait` for a slot, then fails with
/// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull). A slot is given back when the call completes,
/// fails, panics or is cancelled (the permit is dropped).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::{num::NonZeroU32, time::Duration};
/// use resilience::Bulkhead;
///
/// let db = Bulkhead::new("db", NonZeroU32::new(1).unwrap(), Duration::ZERO);
/// let held = db.acquire().await.unwrap();
/// assert!(db.acquire().await.is_err()); // full, and no waiting allowed
/// drop(held);
/// assert!(db.acquire().await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct Bulkhead {
    name: Arc<str>,
    max_concurrent: NonZeroU32,
    max_wait: Duration,
    semaphore: std::sync::Arc<Semaphore>,
    /// What this bulkhead's errors refer to.
    identity: Identity,
}

/// A point-in-time view of a bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BulkheadStatus {
    /// The bulkhead's name.
    pub name: Arc<str>,
    /// Calls running now.
    pub in_flight: u32,
    /// The limit.
    pub max_concurrent: u32,
    /// How long a call may wait for a slot.
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "max_wait_seconds",
            serialize_with = "crate::serde_impls::secs"
        )
    )]
    pub max_wait: Duration,
}

impl Bulkhead {
    /// A bulkhead of `max_concurrent` slots; calls wait up to `max_wait`.
    pub fn new(name: impl Into<Arc<str>>, max_concurrent: NonZeroU32, max_wait: Duration) -> Self {
        let name = name.into();
        let identity = Identity::register(
            name.clone(),
            Owner::Bulkhead {
                max_concurrent: max_concurrent.get(),
            },
        );
        Bulkhead {
            name,
            max_concurrent,
            max_wait,
            semaphore: std::sync::Arc::new(Semaphore::new(max_concurrent.get() as usize)),
            identity,
        }
    }

    /// The semaphore behind the slots (for the tower layer's owned permits).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn semaphore(&self) -> &std::sync::Arc<Semaphore> {
        &self.semaphore
    }

    /// The error this bulkhead produces when full (for tests comparing
    /// errors, through `__private`; the tower layer's rejection).
    pub(crate) fn full_error(&self) -> Error {
        Error::bulkhead_full(&self.identity)
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limit.
    pub fn max_concurrent(&self) -> NonZeroU32 {
        self.max_concurrent
    }

    /// How long a call may wait for a slot.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Calls running now.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.semaphore.available_permits()).unwrap_or(u32::MAX);
        self.max_concurrent.get().saturating_sub(free)
    }

    /// Waits up to `max_wait` for a slot; the slot is held until the permit drops.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if no slot freed up in time.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        let mut permit = self.semaphore.try_acquire().ok();
        if permit.is_none() && !self.max_wait.is_zero() {
            if let Ok(Ok(p)) = tokio::time::timeout(self.max_wait, self.semaphore.acquire()).await {
                permit = Some(p);
            }
        }
        self.admitted(permit)
    }

    /// [`acquire`](Self::acquire) for blocking code: the calling thread
    /// sleeps (parked, woken when a slot frees) up to `max_wait` for a slot.
    /// Sync and async call sites of one name share the same slots.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if no
    /// slot freed up in time.
    pub fn acquire_blocking(&self) -> Result<BulkheadPermit<'_>, Error> {
        let mut permit = self.semaphore.try_acquire().ok();
        if permit.is_none() && !self.max_wait.is_zero() {
            permit =
                blocking::wait_for(self.semaphore.acquire(), self.max_wait).and_then(Result::ok);
        }
        self.admitted(permit)
    }

    fn admitted<'a>(
        &'a self,
        permit: Option<tokio::sync::SemaphorePermit<'a>>,
    ) -> Result<BulkheadPermit<'a>, Error> {
        if let Some(permit) = permit {
            crate::metrics::bulkhead_in_flight(&self.name, self.in_flight());
            return Ok(BulkheadPermit {
                bulkhead: self,
                permit: Some(permit),
            });
        }
        tracing::debug!(
            target: "resilience",
            bulkhead = &*self.name,
            "bulkhead `{}` is full; call rejected",
            self.name
        );
        Err(Error::bulkhead_full(&self.identity))
    }

    /// A point-in-time view.
    pub fn status(&self) -> BulkheadStatus {
        BulkheadStatus {
            name: self.name.clone(),
            in_flight: self.in_flight(),
            max_concurrent: self.max_concurrent.get(),
            max_wait: self.max_wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulkhead(n: u32, wait_ms: u64) -> Bulkhead {
        Bulkhead::new(
            "b",
            NonZeroU32::new(n).unwrap(),
            Duration::from_millis(wait_ms),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn waits_up_to_max_wait_then_rejects() {
        let b = bulkhead(1, 100);
        let held = b.acquire().await.unwrap();
        let start = tokio::time::Instant::now();
        let err = b.acquire().await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        assert!(err.is_bulkhead_full());
        assert_eq!(
            (err.name().as_deref(), err.max_concurrent()),
            (Some("b"), Some(1))
        );
        assert_eq!(b.in_flight(), 1);
        drop(held);
        assert_eq!(b.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_freed_while_waiting_is_taken() {
        let b = Arc::new(bulkhead(1, 100));
        let held = b.acquire().await.unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire().await.map(drop).is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }
}
