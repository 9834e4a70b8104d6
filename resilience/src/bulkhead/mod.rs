//! Bulkheads: a named limit on calls in flight at once, which may be
//! changed while calls run (`Bulkhead::set_limits`).
//!
//! The slots are a tokio semaphore's permits. Raising the limit adds
//! permits. Lowering it forgets the permits free at that moment and records
//! the rest as a *debt*: slots that still exist (running calls hold them)
//! but must not be handed out again. Every permit coming back, from a
//! finished call (`Bulkhead::give_back`) or to a new one
//! (`Bulkhead::unless_owed`), first pays one slot of the debt if there is
//! any (the permit is forgotten), with a compare-and-swap on the debt, so
//! the debt never goes below zero. So at every moment the semaphore holds
//! `max_concurrent + debt` permits, free or held, and `in_flight` is
//! `max_concurrent + debt - available`. The limit and the debt share one
//! atomic word, so that a change moves both at once.
//!
//! Checking the debt when a permit is handed out too (not only when it is
//! given back) closes the race of a call that finishes while the limit is
//! being lowered: it may have found no debt yet and returned its permit
//! after the change forgot the free ones; whoever gets that permit next
//! pays the debt with it instead of running.

pub(crate) mod blocking;
mod call;
#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::error::{Identity, Owner};
use crate::Error;

/// A held bulkhead slot; given back (and reported) when dropped.
#[derive(Debug)]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for BulkheadPermit<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.bulkhead.give_back(permit);
        }
        crate::metrics::bulkhead_in_flight(&self.bulkhead.name, self.bulkhead.in_flight());
    }
}

/// A semaphore permit of a bulkhead: its own borrowed ones, the tower
/// layer's owned ones.
pub(crate) trait Permit {
    /// Drops the permit without giving it back to the semaphore.
    fn forget(self);
}

impl Permit for SemaphorePermit<'_> {
    fn forget(self) {
        SemaphorePermit::forget(self);
    }
}

impl Permit for OwnedSemaphorePermit {
    fn forget(self) {
        OwnedSemaphorePermit::forget(self);
    }
}

/// The limit (high half) and the debt (low half) in one word.
fn pack(max_concurrent: u32, debt: u32) -> u64 {
    (u64::from(max_concurrent) << 32) | u64::from(debt)
}

/// `(max_concurrent, debt)`.
fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// A wait in nanoseconds, saturating (at 584 years).
fn nanos(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX)
}

/// A named, shared concurrency limit: at most `max_concurrent` calls run at
/// once; a call waits up to `max_wait` for a slot, then fails with
/// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull). A slot is given back when the call completes,
/// fails, panics or is cancelled (the permit is dropped). Both limits may
/// be changed while calls run: [`set_limits`](Self::set_limits).
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
pub struct Bulkhead {
    name: Arc<str>,
    /// `max_concurrent` and the debt ([`pack`]): the slots the semaphore
    /// still has beyond the limit, forgotten as they come back.
    limits: AtomicU64,
    /// `max_concurrent` again, shared with this bulkhead's errors.
    shown_max: Arc<AtomicU32>,
    /// `max_wait` in nanoseconds.
    max_wait: AtomicU64,
    semaphore: Arc<Semaphore>,
    /// Taken by [`set_limits`](Self::set_limits) only, never on the call path.
    changing: Mutex<()>,
    /// What this bulkhead's errors refer to.
    identity: Identity,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (max_concurrent, debt) = unpack(self.limits.load(Ordering::SeqCst));
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("max_concurrent", &max_concurrent)
            .field("max_wait", &self.max_wait())
            .field("in_flight", &self.in_flight())
            .field("debt", &debt)
            .finish_non_exhaustive()
    }
}

/// A point-in-time view of a bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BulkheadStatus {
    /// The bulkhead's name.
    pub name: Arc<str>,
    /// Calls running now (more than the limit for a while after it was
    /// lowered below them).
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
    /// A bulkhead of `max_concurrent` slots; calls wait up to `max_wait`
    /// (kept to the nanosecond, up to 584 years).
    pub fn new(name: impl Into<Arc<str>>, max_concurrent: NonZeroU32, max_wait: Duration) -> Self {
        let name = name.into();
        let shown_max = Arc::new(AtomicU32::new(max_concurrent.get()));
        let identity = Identity::register(
            name.clone(),
            Owner::Bulkhead {
                max_concurrent: shown_max.clone(),
            },
        );
        Bulkhead {
            name,
            limits: AtomicU64::new(pack(max_concurrent.get(), 0)),
            shown_max,
            max_wait: AtomicU64::new(nanos(max_wait)),
            semaphore: Arc::new(Semaphore::new(max_concurrent.get() as usize)),
            changing: Mutex::new(()),
            identity,
        }
    }

    /// The semaphore behind the slots (for the tower layer's owned permits,
    /// which it hands to [`unless_owed`](Self::unless_owed) when it gets
    /// them and to [`give_back`](Self::give_back) when they are done).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn semaphore(&self) -> &Arc<Semaphore> {
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
        let (max_concurrent, _) = unpack(self.limits.load(Ordering::SeqCst));
        NonZeroU32::new(max_concurrent).unwrap_or(NonZeroU32::MIN)
    }

    /// How long a call may wait for a slot.
    pub fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.max_wait.load(Ordering::Relaxed))
    }

    /// Calls running now: more than [`max_concurrent`](Self::max_concurrent)
    /// while a lowered limit waits for running calls to finish. Never fewer
    /// than the calls running; while [`set_limits`](Self::set_limits) runs
    /// on another thread, the slots it is adding or forgetting may count
    /// for a moment.
    pub fn in_flight(&self) -> u32 {
        // `max_concurrent + debt - available`, with the limits word read
        // on both sides of `available`: a change of the word in between
        // reads again. (Each change lowers `available` before the word,
        // or raises the word before `available`, so what slips past the
        // check can only count too many, never too few.)
        let mut word = self.limits.load(Ordering::SeqCst);
        loop {
            let free = self.semaphore.available_permits();
            let again = self.limits.load(Ordering::SeqCst);
            if again == word {
                let (max_concurrent, debt) = unpack(word);
                let slots = u64::from(max_concurrent) + u64::from(debt);
                let free = u64::try_from(free).unwrap_or(u64::MAX);
                return u32::try_from(slots.saturating_sub(free)).unwrap_or(u32::MAX);
            }
            // Only `set_limits` and paid debt change the word: few retries.
            word = again;
        }
    }

    /// Pays one slot of the debt, if there is any: whether it did (then
    /// the caller forgets its permit). Never takes the debt below zero.
    fn pay_one(&self) -> bool {
        let mut word = self.limits.load(Ordering::SeqCst);
        loop {
            let (_, debt) = unpack(word);
            if debt == 0 {
                return false;
            }
            // The debt is the low half and not zero: no borrow from the limit.
            match self.limits.compare_exchange_weak(
                word,
                word - 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// `permit`, just taken from the semaphore, unless the bulkhead owes a
    /// slot: then the permit pays it (forgotten) and the caller must wait
    /// for another.
    pub(crate) fn unless_owed<P: Permit>(&self, permit: P) -> Option<P> {
        if self.pay_one() {
            permit.forget();
            None
        } else {
            Some(permit)
        }
    }

    /// Gives a held `permit` back: to the semaphore, or, while the
    /// bulkhead owes slots, forgotten to pay one.
    pub(crate) fn give_back<P: Permit>(&self, permit: P) {
        drop(self.unless_owed(permit));
    }

    /// Changes the limits for the calls that come next: a larger
    /// `max_concurrent` admits waiting calls at once; a smaller one admits
    /// no new call until enough running calls have finished (running calls
    /// are never cut). `max_wait` applies to the calls that start waiting
    /// from now on (a call already waiting keeps its deadline). Calls to
    /// `set_limits` take effect one after another; the call path takes no
    /// lock. Logs the change (an `info` event of target `resilience`), if
    /// anything changed. The errors of a full bulkhead report the limit in
    /// force when asked ([`Error::max_concurrent`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::{num::NonZeroU32, time::Duration};
    /// use resilience::Bulkhead;
    ///
    /// let db = Bulkhead::new("db-limits", NonZeroU32::new(2).unwrap(), Duration::ZERO);
    /// let (a, b) = (db.acquire().await.unwrap(), db.acquire().await.unwrap());
    ///
    /// // Lowered below the calls in flight: they run on, nothing new starts.
    /// db.set_limits(NonZeroU32::MIN, Duration::ZERO);
    /// assert_eq!((db.in_flight(), db.max_concurrent().get()), (2, 1));
    /// assert_eq!(db.acquire().await.unwrap_err().max_concurrent(), Some(1));
    /// drop(a);
    /// assert!(db.acquire().await.is_err(), "still one in flight, the new limit");
    /// drop(b);
    /// let c = db.acquire().await.unwrap();
    ///
    /// // Raised: room at once.
    /// db.set_limits(NonZeroU32::new(3).unwrap(), Duration::from_millis(10));
    /// let (d, e) = (db.acquire().await.unwrap(), db.acquire().await.unwrap());
    /// assert_eq!(db.in_flight(), 3);
    /// # drop((c, d, e));
    /// # }
    /// ```
    pub fn set_limits(&self, max_concurrent: NonZeroU32, max_wait: Duration) {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let old_wait = self.max_wait();
        let wait = nanos(max_wait);
        self.max_wait.store(wait, Ordering::Relaxed);
        let new_wait = Duration::from_nanos(wait);

        let old_max = self.max_concurrent().get();
        let new_max = max_concurrent.get();
        // The order of each step matters to `in_flight`: the word is
        // raised before the permits, the permits lowered before the word.
        if new_max > old_max {
            // Cancel debt first; the rest of the raise is new permits.
            let raise = new_max - old_max;
            let cancelled = self.update_limits(|debt| {
                let cancel = debt.min(raise);
                (pack(new_max, debt - cancel), cancel)
            });
            self.shown_max.store(new_max, Ordering::Release);
            self.semaphore.add_permits((raise - cancelled) as usize);
        } else if new_max < old_max {
            // Forget the free permits; the running calls owe the rest.
            let cut = old_max - new_max;
            let forgotten = self.semaphore.forget_permits(cut as usize);
            let owed = cut.saturating_sub(u32::try_from(forgotten).unwrap_or(cut));
            // Slots free or held never exceed the largest limit set, so
            // the debt fits (saturating only for the sake of it).
            self.update_limits(|debt| (pack(new_max, debt.saturating_add(owed)), ()));
            self.shown_max.store(new_max, Ordering::Release);
        }

        if (old_max, old_wait) != (new_max, new_wait) {
            tracing::info!(
                target: "resilience",
                bulkhead = &*self.name,
                old_max_concurrent = old_max,
                max_concurrent = new_max,
                old_max_wait = ?old_wait,
                max_wait = ?new_wait,
                "bulkhead `{}` limits changed: max_concurrent {old_max} → {new_max}, max_wait {old_wait:?} → {new_wait:?}",
                self.name
            );
        }
    }

    /// Replaces the limits word by `change(debt)`'s word (the limit is
    /// `set_limits`' to change: only it writes the high half, under its
    /// mutex), retrying while the debt moves under it.
    fn update_limits<T>(&self, mut change: impl FnMut(u32) -> (u64, T)) -> T {
        let mut word = self.limits.load(Ordering::SeqCst);
        loop {
            let (_, debt) = unpack(word);
            let (new, out) = change(debt);
            match self
                .limits
                .compare_exchange_weak(word, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return out,
                Err(now) => word = now,
            }
        }
    }

    /// A free permit now, if there is one the bulkhead does not owe.
    fn try_take(&self) -> Option<SemaphorePermit<'_>> {
        loop {
            // Each turn pays one slot of the debt with a free permit: the
            // loop ends when there are no more of either.
            let permit = self.semaphore.try_acquire().ok()?;
            if let Some(permit) = self.unless_owed(permit) {
                return Some(permit);
            }
        }
    }

    /// Waits for a permit the bulkhead does not owe (`None` only if the
    /// semaphore were closed, which it never is).
    async fn take(&self) -> Option<SemaphorePermit<'_>> {
        loop {
            let permit = self.semaphore.acquire().await.ok()?;
            if let Some(permit) = self.unless_owed(permit) {
                return Some(permit);
            }
        }
    }

    /// Waits up to `max_wait` for a slot; the slot is held until the permit drops.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) if no slot freed up in time.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        let max_wait = self.max_wait();
        let mut permit = self.try_take();
        if permit.is_none() && !max_wait.is_zero() {
            permit = tokio::time::timeout(max_wait, self.take())
                .await
                .ok()
                .flatten();
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
        let max_wait = self.max_wait();
        let mut permit = self.try_take();
        if permit.is_none() && !max_wait.is_zero() {
            permit = blocking::wait_for(self.take(), max_wait).flatten();
        }
        self.admitted(permit)
    }

    fn admitted<'a>(
        &'a self,
        permit: Option<SemaphorePermit<'a>>,
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
            max_concurrent: self.max_concurrent().get(),
            max_wait: self.max_wait(),
        }
    }
}
