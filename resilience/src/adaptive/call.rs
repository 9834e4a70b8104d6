//! One call through an adaptive bulkhead: the slot is held while the call
//! runs, and its latency and outcome move the limit. Public, so that a
//! hand-written caller gets what an attribute gets.

use std::future::Future;

use super::AdaptiveBulkhead;
use crate::{Error, Outcome};

impl AdaptiveBulkhead {
    /// Runs `call` in one of the bulkhead's slots, waiting up to `max_wait`
    /// for one; records its latency and outcome (`Ok` a success, `Err` a
    /// failure). A cancelled call records nothing.
    ///
    /// ```
    /// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Gradient2};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
    /// let db = AdaptiveBulkhead::new("call-doc", AdaptiveConfig::builder(Gradient2::default()).build()?);
    /// let rows: Result<u32, anyhow::Error> = db.call(async { Ok(3) }).await;
    /// assert_eq!(rows?, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Allocation
    ///
    /// None per call, admitted or rejected (this example counts them with a
    /// global allocator), unless the `metrics` feature is on: its in-flight
    /// gauge allocates its label.
    ///
    /// ```
    /// # use std::alloc::{GlobalAlloc, Layout, System};
    /// # use std::sync::atomic::{AtomicU64, Ordering};
    /// # struct Counting;
    /// # static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    /// # // SAFETY: forwards to `System` unchanged.
    /// # unsafe impl GlobalAlloc for Counting {
    /// #     unsafe fn alloc(&self, l: Layout) -> *mut u8 { ALLOCATIONS.fetch_add(1, Ordering::Relaxed); unsafe { System.alloc(l) } }
    /// #     unsafe fn dealloc(&self, p: *mut u8, l: Layout) { unsafe { System.dealloc(p, l) } }
    /// #     unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 { ALLOCATIONS.fetch_add(1, Ordering::Relaxed); unsafe { System.realloc(p, l, n) } }
    /// # }
    /// # #[global_allocator]
    /// # static GLOBAL: Counting = Counting;
    /// # fn allocations() -> u64 { ALLOCATIONS.load(Ordering::Relaxed) }
    /// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Aimd, Error};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> anyhow::Result<()> {
    /// let config = AdaptiveConfig::builder(Aimd::default()).initial_limit(1).max_limit(1).build()?;
    /// let db = AdaptiveBulkhead::new("no-alloc-doc", config);
    /// let before = allocations();
    /// for i in 0..10_000 {
    ///     let result: Result<u32, Error> = db.call(async move { Ok(i) }).await;
    ///     assert_eq!(result?, i);
    ///     let _held = db.try_acquire()?;
    ///     let rejected = db.call(async { Ok::<_, Error>(()) }).await.unwrap_err();
    ///     assert!(rejected.is_bulkhead_full());
    /// }
    /// # #[cfg(not(feature = "metrics"))]
    /// assert_eq!(allocations() - before, 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` the bulkhead's [`Error`] (of kind
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull)) when no
    /// slot freed up in time (then `call` does not run).
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let permit = self.acquire().await?;
        let result = call.await;
        permit.record(Outcome::of(&result));
        result
    }
}
