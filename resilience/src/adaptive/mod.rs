//! Adaptive concurrency limits: a bulkhead whose limit follows the
//! dependency's latency and failures ([`Aimd`], Netflix's [`Gradient2`]).
//!
//! Admission is lock-free: an atomic count of calls in flight, raised by a
//! compare-and-swap only while it is below the limit (an atomic word too),
//! so the calls in flight never exceed the limit in force when each was
//! admitted. A call that finds no slot waits (up to `max_wait`) on a
//! [`Notify`], first come, first served: while calls wait, a newcomer does
//! not take a freed slot ahead of them. Every finished call records its
//! latency and outcome into the [`AdaptiveLimit`] before it gives its slot
//! back, and wakes the first waiter; a waiter that gets a slot and sees
//! room for more wakes the next (a raised limit fills at once).
//!
//! Why the wake-ups are never lost: a waiter counts itself in `waiters`
//! and registers with the `Notify` before it looks for a slot; a finished
//! call lowers `in_flight` before it reads `waiters` (both sequentially
//! consistent). So either the finished call sees the waiter and notifies
//! it (a notification sent before the waiter sleeps is kept by the
//! `Notify`), or the first waiter sees the freed slot when it looks.

mod call;
mod config;
mod limit;
mod permit;
#[cfg(test)]
mod tests;

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use config::{AdaptiveConfig, AdaptiveConfigBuilder, Aimd, Algorithm, Gradient2};
pub use limit::AdaptiveLimit;
pub use permit::AdaptivePermit;

use crate::error::{Identity, Owner};
use crate::{Error, Outcome};

/// A slot taken: when the call started, and the calls in flight then
/// (itself included). Given back through [`AdaptiveBulkhead::release`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) started: Instant,
    pub(crate) in_flight: u32,
}

/// A named bulkhead whose limit adapts: at most [`limit`](Self::limit)
/// calls run at once, and the limit moves with each call's latency and
/// outcome by the configuration's [`Algorithm`], within its bounds. A call
/// waits up to `max_wait` for a slot, then fails with
/// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) (whose
/// [`Error::max_concurrent`] is the limit in force). A slot is given back
/// when the call completes, fails, panics or is cancelled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Aimd};
///
/// let config = AdaptiveConfig::builder(Aimd::default().latency_threshold(Duration::from_millis(100)))
///     .initial_limit(4)
///     .build()?;
/// let search = AdaptiveBulkhead::new("search", config);
///
/// // Fast successes with the limit in use raise it, about a slot per round.
/// for _ in 0..40 {
///     let calls = (0..4).map(|_| search.call(async {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///         Ok::<_, resilience::Error>(())
///     }));
///     for result in futures::future::join_all(calls).await {
///         result?;
///     }
/// }
/// assert!(search.limit() > 4);
///
/// // A failure cuts it (by the backoff ratio, 0.9 by default).
/// let before = search.limit();
/// let failed: anyhow::Result<()> = search.call(async { Err(anyhow::anyhow!("down")) }).await;
/// assert!(failed.is_err() && search.limit() < before);
/// # Ok(()) }
/// ```
pub struct AdaptiveBulkhead {
    name: Arc<str>,
    limit: AdaptiveLimit,
    /// Calls holding a slot.
    in_flight: AtomicU32,
    /// Calls waiting for a slot.
    waiters: AtomicU32,
    /// A slot was freed (or the limit rose): wakes the first waiter.
    freed: Notify,
    admitted: AtomicU64,
    rejected: AtomicU64,
    failures: AtomicU64,
    /// What this bulkhead's errors refer to.
    identity: Identity,
}

impl fmt::Debug for AdaptiveBulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveBulkhead")
            .field("name", &self.name)
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("waiters", &self.waiters.load(Ordering::Relaxed))
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

/// A point-in-time view of an [`AdaptiveBulkhead`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AdaptiveBulkheadStatus {
    /// The bulkhead's name.
    pub name: Arc<str>,
    /// `"aimd"` or `"gradient2"`.
    pub algorithm: &'static str,
    /// The limit now.
    pub limit: u32,
    /// Calls running now (more than the limit for a while after it fell
    /// below them: running calls are never cut).
    pub in_flight: u32,
    /// Calls waiting for a slot now.
    pub waiting: u32,
    /// The smallest limit.
    pub min_limit: u32,
    /// The largest limit.
    pub max_limit: u32,
    /// How long a call may wait for a slot.
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "max_wait_seconds",
            serialize_with = "crate::serde_impls::secs"
        )
    )]
    pub max_wait: Duration,
    /// Calls admitted since the bulkhead was created.
    pub admitted: u64,
    /// Calls rejected (no slot within `max_wait`).
    pub rejected: u64,
    /// Admitted calls recorded as failures.
    pub failures: u64,
    /// Gradient2's long-term latency (`None` for AIMD).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "long_rtt_seconds",
            serialize_with = "crate::serde_impls::opt_secs"
        )
    )]
    pub long_rtt: Option<Duration>,
}

/// Counts a waiter while it waits (however its wait ends).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AdaptiveBulkhead {
    /// A bulkhead of `config`, its limit at `config`'s initial limit.
    pub fn new(name: impl Into<Arc<str>>, config: AdaptiveConfig) -> Self {
        let name = name.into();
        let limit = AdaptiveLimit::new(name.clone(), config);
        let identity = Identity::register(
            name.clone(),
            Owner::Bulkhead {
                max_concurrent: limit.shown().clone(),
            },
        );
        AdaptiveBulkhead {
            name,
            limit,
            in_flight: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            freed: Notify::new(),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            identity,
        }
    }

    /// The process-wide adaptive bulkhead named `name`, created with
    /// `config` on first use; later callers share it (and its limit),
    /// whatever configuration they pass. The tower layer
    /// (`resilience::tower::adaptive_concurrency`, feature `tower`) finds
    /// its bulkhead here.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Gradient2};
    ///
    /// let config = AdaptiveConfig::builder(Gradient2::default()).build()?;
    /// let a = AdaptiveBulkhead::shared("shared-doc", config);
    /// let b = AdaptiveBulkhead::shared("shared-doc", config);
    /// assert!(Arc::ptr_eq(&a, &b));
    /// assert_eq!(AdaptiveBulkhead::statuses_of_shared()[0].name.as_ref(), "shared-doc");
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn shared(name: &str, config: AdaptiveConfig) -> Arc<AdaptiveBulkhead> {
        // A test's own (feature `testing`).
        #[cfg(feature = "testing")]
        if let Some(b) = crate::testing::scoped_adaptive(name, &config) {
            return b;
        }
        if let Some(b) = shared().get(name) {
            return b.clone();
        }
        shared()
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(AdaptiveBulkhead::new(name, config)))
            .clone()
    }

    /// The status of every [`shared`](Self::shared) bulkhead, sorted by name.
    pub fn statuses_of_shared() -> Vec<AdaptiveBulkheadStatus> {
        #[cfg(feature = "testing")]
        if let Some(scoped) = crate::testing::scoped_adaptive_all() {
            let mut all: Vec<_> = scoped.iter().map(|b| b.status()).collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            return all;
        }
        let mut all: Vec<_> = shared().iter().map(|b| b.status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveConfig {
        self.limit.config()
    }

    /// The limit now.
    #[inline]
    pub fn limit(&self) -> u32 {
        self.limit.current()
    }

    /// The adaptive limit itself (its fraction, Gradient2's long-term
    /// latency).
    pub fn adaptive_limit(&self) -> &AdaptiveLimit {
        &self.limit
    }

    /// Calls holding a slot now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// How long a call may wait for a slot.
    pub fn max_wait(&self) -> Duration {
        self.config().max_wait()
    }

    /// A point-in-time view.
    pub fn status(&self) -> AdaptiveBulkheadStatus {
        let config = self.config();
        AdaptiveBulkheadStatus {
            name: self.name.clone(),
            algorithm: config.algorithm().name(),
            limit: self.limit(),
            in_flight: self.in_flight(),
            waiting: self.waiters.load(Ordering::SeqCst),
            min_limit: config.min_limit(),
            max_limit: config.max_limit(),
            max_wait: config.max_wait(),
            admitted: self.admitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            long_rtt: self.limit.long_rtt(),
        }
    }

    /// A slot now, if there is room and nobody waits for one; no waiting.
    ///
    /// ```
    /// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Aimd};
    ///
    /// let config = AdaptiveConfig::builder(Aimd::default()).min_limit(1).max_limit(1).build()?;
    /// let db = AdaptiveBulkhead::new("try-doc", config);
    /// let held = db.try_acquire().unwrap();
    /// let full = db.try_acquire().unwrap_err();
    /// assert!(full.is_bulkhead_full());
    /// assert_eq!(full.max_concurrent(), Some(1));
    /// drop(held);
    /// assert!(db.try_acquire().is_ok());
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if the
    /// calls in flight are at the limit, or others wait for a slot.
    pub fn try_acquire(&self) -> Result<AdaptivePermit<'_>, Error> {
        match self.try_admit_first() {
            Some(slot) => Ok(AdaptivePermit::new(self, slot)),
            None => Err(self.reject()),
        }
    }

    /// Waits up to `max_wait` for a slot, first come, first served; the
    /// slot is held until the permit is recorded or dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if no
    /// slot freed up in time.
    pub async fn acquire(&self) -> Result<AdaptivePermit<'_>, Error> {
        match self.admit_within(self.max_wait()).await {
            Some(slot) => Ok(AdaptivePermit::new(self, slot)),
            None => Err(self.reject()),
        }
    }

    /// [`acquire`](Self::acquire) for blocking code: the calling thread
    /// sleeps (parked, woken when a slot frees) up to `max_wait` of real
    /// time for a slot. Sync and async callers share the same slots.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if no
    /// slot freed up in time.
    pub fn acquire_blocking(&self) -> Result<AdaptivePermit<'_>, Error> {
        let mut slot = self.try_admit_first();
        let max_wait = self.max_wait();
        if slot.is_none() && !max_wait.is_zero() {
            slot = crate::bulkhead::blocking::wait_for(self.wait(), max_wait);
        }
        match slot {
            Some(slot) => Ok(AdaptivePermit::new(self, slot)),
            None => Err(self.reject()),
        }
    }

    /// A slot within `max_wait` (`None` if none freed up in time).
    pub(crate) async fn admit_within(&self, max_wait: Duration) -> Option<Slot> {
        if let Some(slot) = self.try_admit_first() {
            return Some(slot);
        }
        if max_wait.is_zero() {
            return None;
        }
        tokio::time::timeout(max_wait, self.wait()).await.ok()
    }

    /// A slot now, unless others wait (they come first) or there is no room.
    pub(crate) fn try_admit_first(&self) -> Option<Slot> {
        if self.waiters.load(Ordering::SeqCst) != 0 {
            return None;
        }
        self.try_admit()
    }

    /// A slot if the calls in flight are below the limit.
    fn try_admit(&self) -> Option<Slot> {
        let mut n = self.in_flight.load(Ordering::SeqCst);
        loop {
            if n >= self.limit() {
                return None;
            }
            match self
                .in_flight
                .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.admitted.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::bulkhead_in_flight(&self.name, n + 1);
                    return Some(Slot {
                        started: Instant::now(),
                        in_flight: n + 1,
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// Waits in line for a slot (for as long as it takes: callers bound it).
    async fn wait(&self) -> Slot {
        // Alone in line: nobody will be woken for the slot this waiter may
        // find free, so it looks at once; behind others, it waits its turn.
        let mut look = self.waiters.fetch_add(1, Ordering::SeqCst) == 0;
        let waiting = Waiting(&self.waiters);
        loop {
            let mut freed = pin!(self.freed.notified());
            // In the line before looking: a slot freed from now on wakes it.
            freed.as_mut().enable();
            if look {
                if let Some(slot) = self.try_admit() {
                    drop(waiting);
                    self.wake_next();
                    return slot;
                }
            }
            freed.await;
            look = true;
        }
    }

    /// Wakes the first waiter, if any and there is room for it.
    fn wake_next(&self) {
        if self.waiters.load(Ordering::SeqCst) != 0 && self.in_flight() < self.limit() {
            self.freed.notify_one();
        }
    }

    /// Gives `slot` back: records the call (its latency as of now, unless
    /// `outcome` is [`Outcome::Ignored`]), then frees the slot and wakes the
    /// first waiter.
    pub(crate) fn release(&self, slot: Slot, outcome: Outcome) {
        if outcome != Outcome::Ignored {
            if outcome == Outcome::Failure {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            let latency = slot.started.elapsed();
            self.limit
                .record(slot.started, latency, slot.in_flight, outcome);
        }
        let before = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        crate::metrics::bulkhead_in_flight(&self.name, before.saturating_sub(1));
        if self.waiters.load(Ordering::SeqCst) != 0 {
            self.freed.notify_one();
        }
    }

    /// The error of a call that found no slot (counted, logged).
    pub(crate) fn reject(&self) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "resilience",
            bulkhead = &*self.name,
            limit = self.limit(),
            "adaptive bulkhead `{}` is full; call rejected",
            self.name
        );
        self.full_error()
    }

    /// The error this bulkhead produces when full (not counted).
    pub(crate) fn full_error(&self) -> Error {
        Error::bulkhead_full(&self.identity)
    }
}

/// The [`AdaptiveBulkhead::shared`] bulkheads by name.
fn shared() -> &'static DashMap<Arc<str>, Arc<AdaptiveBulkhead>> {
    static SHARED: OnceLock<DashMap<Arc<str>, Arc<AdaptiveBulkhead>>> = OnceLock::new();
    SHARED.get_or_init(DashMap::new)
}
