//! The local side of a fleet-wide rate limit (feature `redis`): the stock of
//! tokens leased from the fleet, and the local share used without Redis.
//!
//! A fleet limiter is in one of three modes:
//!
//! - *local*: no fleet (the registry is not shared): the whole limit, on
//!   the local schedule, exactly as a limiter without `fleet`;
//! - *share*: attached to a fleet but without a lease (Redis unreachable,
//!   or before the first lease): the local schedule at the limit divided by
//!   the instances last seen sharing it;
//! - *leased*: calls take tokens from a stock the fleet's lease task fills
//!   (one compare-and-swap per call, no lock, no clock, no allocation).
//!
//! Only the lease task (`fleet::lease`) moves a limiter between modes, under
//! [`Share::control`], so a mode change never races a schedule change.
//! How the fleet side works, and what it guarantees, is documented on the
//! `fleet` module (`doc.md` beside this file).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use super::{full_schedule, nanos, RateLimitConfig, RateLimitStatus, RateLimiter};

/// No fleet: the whole limit, locally.
const LOCAL: u8 = 0;
/// Attached to a fleet, without a lease: the local share.
const SHARE: u8 = 1;
/// Calls take leased tokens.
const LEASED: u8 = 2;

/// What a refusal on leases says to wait at least, when the next tokens are
/// expected at once (a lease on its way): a retry above does not spin.
const MIN_WAIT: u64 = 1_000_000;

/// The most tokens one lease of `config` holds: enough for a tenth of the
/// period at the full rate, at least 1, at most the burst.
pub(crate) fn lease_size(config: &RateLimitConfig) -> u64 {
    (u64::from(config.rate.get()) / 10).clamp(1, config.burst.get().into())
}

/// The stock below which the next lease is asked for: half a lease.
pub(crate) fn low_water(lease: u64) -> u64 {
    lease.div_ceil(2)
}

/// The local schedule (interval, tolerance in ns) of one instance's share of
/// `config`'s limit when `instances` share it: the rate and the burst divided
/// by `instances` (the burst at least 1); the whole limit for 0 or 1.
pub(crate) fn share_schedule(config: &RateLimitConfig, instances: u32) -> (u64, u64) {
    let n = u64::from(instances.max(1));
    if n == 1 {
        return full_schedule(config);
    }
    let (interval, _) = full_schedule(config);
    let interval = interval.saturating_mul(n);
    let burst = (u64::from(config.burst.get()) / n).max(1);
    (interval, interval.saturating_mul(burst - 1))
}

/// One limiter's part of a fleet-wide limit.
#[derive(Debug)]
pub(crate) struct Share {
    /// [`LOCAL`], [`SHARE`] or [`LEASED`].
    mode: AtomicU8,
    /// Leased tokens not used yet.
    stock: AtomicU64,
    /// Below this stock, the next lease is asked for.
    low_water: AtomicU64,
    /// The lease task has been asked for tokens and has not acted on it yet
    /// (so that one call per lease wakes it, not every call).
    wanted: AtomicBool,
    /// Tokens arrived (or the mode changed): wakes calls waiting for a turn.
    refilled: Notify,
    /// The lease task of the fleet this limiter is attached to.
    wake: RwLock<Option<Arc<Notify>>>,
    /// The fleet (its lease hub's id) this limiter is attached to; held
    /// across every mode change and schedule change.
    control: Mutex<Option<u64>>,
    /// Instances the fleet last said share this limit (0: never heard).
    instances: AtomicU32,
    /// Redis commands sent for this limiter.
    commands: AtomicU64,
}

impl Share {
    pub(crate) fn new() -> Self {
        Share {
            mode: AtomicU8::new(LOCAL),
            stock: AtomicU64::new(0),
            low_water: AtomicU64::new(1),
            wanted: AtomicBool::new(false),
            refilled: Notify::new(),
            wake: RwLock::new(None),
            control: Mutex::new(None),
            instances: AtomicU32::new(0),
            commands: AtomicU64::new(0),
        }
    }

    /// Whether calls take leased tokens now.
    #[inline]
    pub(crate) fn is_leasing(&self) -> bool {
        self.mode.load(Ordering::Relaxed) == LEASED
    }

    /// Takes one leased token: one compare-and-swap; below the low-water
    /// mark, the first call to see it wakes the lease task.
    #[inline]
    pub(crate) fn take(&self) -> bool {
        let mut stock = self.stock.load(Ordering::Relaxed);
        loop {
            if stock == 0 {
                self.want();
                return false;
            }
            match self.stock.compare_exchange_weak(
                stock,
                stock - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if stock - 1 < self.low_water.load(Ordering::Relaxed) {
                        self.want();
                    }
                    return true;
                }
                Err(actual) => stock = actual,
            }
        }
    }

    /// Asks the lease task for tokens, once until it acts on it.
    #[inline]
    fn want(&self) {
        if !self.wanted.load(Ordering::Relaxed) && !self.wanted.swap(true, Ordering::AcqRel) {
            self.wake_task();
        }
    }

    #[cold]
    fn wake_task(&self) {
        let wake = self.wake.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(wake) = &*wake {
            wake.notify_one();
        }
    }

    /// Fills the status's fleet fields.
    pub(super) fn fill_status(&self, status: &mut RateLimitStatus) {
        status.leasing = self.is_leasing();
        status.leased = self.stock.load(Ordering::Relaxed);
        if status.leasing {
            status.available = status.leased;
        }
        status.instances = self.instances.load(Ordering::Relaxed);
        status.fleet_commands = self.commands.load(Ordering::Relaxed);
    }
}

/// The lease task's hold on a limiter: everything it changes, it changes
/// through these, and only while the limiter is attached to its fleet.
impl RateLimiter {
    /// Attaches a fleet limiter to the fleet `hub`, whose lease task `wake`
    /// wakes: it runs on its local share until its first lease. `false` (and
    /// nothing done) for a limiter that is not fleet-wide or is attached
    /// elsewhere.
    pub(crate) fn fleet_attach(&self, hub: u64, wake: Arc<Notify>) -> bool {
        if !self.config().is_fleet() {
            return false;
        }
        let mut control = self
            .share
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if control.is_some_and(|h| h != hub) {
            return false;
        }
        *control = Some(hub);
        *self
            .share
            .wake
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(wake);
        self.share.stock.store(0, Ordering::Relaxed);
        self.share.wanted.store(false, Ordering::Relaxed);
        self.share.mode.store(SHARE, Ordering::Release);
        self.schedule_locked(SHARE);
        true
    }

    /// Leaves the fleet `hub`: the whole limit, locally, again. Returns the
    /// leased tokens that were not used.
    pub(crate) fn fleet_detach(&self, hub: u64) -> u64 {
        let mut control = self
            .share
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *control != Some(hub) {
            return 0;
        }
        *control = None;
        *self
            .share
            .wake
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.share.mode.store(LOCAL, Ordering::Release);
        self.gcra.set_lease_due(None);
        self.schedule_locked(LOCAL);
        let unused = self.share.stock.swap(0, Ordering::AcqRel);
        self.share.refilled.notify_waiters();
        unused
    }

    /// Off leases (Redis lost): the local share, the leased stock dropped
    /// (tokens the fleet cannot be told about are not used). Whether it was
    /// on leases.
    pub(crate) fn fleet_fall_back(&self, hub: u64) -> bool {
        let control = self
            .share
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *control != Some(hub) || self.share.mode.load(Ordering::Acquire) != LEASED {
            return false;
        }
        self.share.mode.store(SHARE, Ordering::Release);
        self.share.stock.store(0, Ordering::Relaxed);
        self.gcra.set_lease_due(None);
        self.schedule_locked(SHARE);
        drop(control);
        self.share.refilled.notify_waiters();
        true
    }

    /// On leases from now on (the fleet answered): the stock starts empty,
    /// the next tokens expected within `due`. Whether it was off leases.
    pub(crate) fn fleet_start_leasing(&self, hub: u64, due: Duration) -> bool {
        let control = self
            .share
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *control != Some(hub) || self.share.mode.load(Ordering::Acquire) == LEASED {
            return false;
        }
        self.share.stock.store(0, Ordering::Relaxed);
        self.gcra.set_lease_due(Some(due));
        self.share.mode.store(LEASED, Ordering::Release);
        drop(control);
        self.share.refilled.notify_waiters();
        true
    }

    /// Adds leased tokens to the stock and wakes the calls waiting for them.
    pub(crate) fn fleet_refill(&self, tokens: u64) {
        self.share.stock.fetch_add(tokens, Ordering::AcqRel);
        self.share.refilled.notify_waiters();
    }

    /// Takes the stock down to `keep` tokens; returns how many were taken.
    pub(crate) fn fleet_take_back(&self, keep: u64) -> u64 {
        let mut stock = self.share.stock.load(Ordering::Acquire);
        while stock > keep {
            match self.share.stock.compare_exchange_weak(
                stock,
                keep,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return stock - keep,
                Err(actual) => stock = actual,
            }
        }
        0
    }

    /// Leased tokens not used yet.
    pub(crate) fn fleet_stock(&self) -> u64 {
        self.share.stock.load(Ordering::Acquire)
    }

    /// Whether calls take leased tokens now.
    pub(crate) fn fleet_leasing(&self) -> bool {
        self.share.is_leasing()
    }

    /// Sets the low-water mark; clears the request flag (the task acts on it).
    pub(crate) fn fleet_prepare(&self, low_water: u64, clear_wanted: bool) {
        self.share.low_water.store(low_water, Ordering::Relaxed);
        if clear_wanted {
            self.share.wanted.store(false, Ordering::Release);
        }
    }

    /// Whether a call asked for tokens since the task last acted on it.
    pub(crate) fn fleet_wanted(&self) -> bool {
        self.share.wanted.load(Ordering::Acquire)
    }

    /// The instances the fleet says share this limit.
    pub(crate) fn fleet_set_instances(&self, instances: u32) {
        self.share.instances.store(instances, Ordering::Relaxed);
    }

    /// One more Redis command sent for this limiter.
    pub(crate) fn fleet_count_command(&self) {
        self.share.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// On leases, the next tokens are expected within `due`.
    pub(crate) fn fleet_due(&self, due: Duration) {
        if self.share.is_leasing() {
            self.gcra.set_lease_due(Some(due));
        }
    }

    /// The local schedule from the configuration in force: the whole limit,
    /// or the local share while attached to a fleet without a lease.
    pub(super) fn put_schedule_in_force(&self) {
        let _control = self
            .share
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.schedule_locked(self.share.mode.load(Ordering::Acquire));
    }

    /// [`put_schedule_in_force`](Self::put_schedule_in_force) for `mode`,
    /// with [`Share::control`] held.
    fn schedule_locked(&self, mode: u8) {
        let config = self.config();
        let (interval, tolerance) = if mode == SHARE {
            share_schedule(&config, self.share.instances.load(Ordering::Relaxed))
        } else {
            full_schedule(&config)
        };
        self.gcra.set(interval, tolerance);
    }

    /// A turn on leases within `max_wait` (ns): a token now, or one that
    /// arrives within the wait; `Err(wait)` otherwise. A limiter that goes
    /// off leases meanwhile finishes the wait on its local share.
    pub(super) async fn leased_turn(&self, max_wait: u64) -> Result<(), u64> {
        if self.share.take() {
            return Ok(());
        }
        let due = nanos(self.gcra.retry_after());
        if due > max_wait || max_wait == 0 {
            return Err(due.max(MIN_WAIT));
        }
        // Boxed: the wait is the rare path, and the calls' futures stay small.
        Box::pin(self.wait_for_lease(Duration::from_nanos(max_wait))).await
    }

    /// Waits up to `max_wait` for a leased token.
    async fn wait_for_lease(&self, max_wait: Duration) -> Result<(), u64> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let refilled = self.share.refilled.notified();
            tokio::pin!(refilled);
            refilled.as_mut().enable();
            if self.share.take() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if !self.share.is_leasing() {
                return self.local_turn(nanos(deadline - now.min(deadline))).await;
            }
            if now >= deadline {
                return Err(nanos(self.gcra.retry_after()).max(MIN_WAIT));
            }
            tokio::select! {
                () = &mut refilled => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// [`leased_turn`](Self::leased_turn) for blocking code: the thread
    /// looks for a token every millisecond of the wait.
    pub(super) fn leased_turn_blocking(&self, max_wait: u64) -> Result<(), u64> {
        if self.share.take() {
            return Ok(());
        }
        let due = nanos(self.gcra.retry_after());
        if due > max_wait || max_wait == 0 {
            return Err(due.max(MIN_WAIT));
        }
        let deadline = std::time::Instant::now() + Duration::from_nanos(max_wait);
        loop {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(nanos(self.gcra.retry_after()).max(MIN_WAIT));
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
            if self.share.take() {
                return Ok(());
            }
            if !self.share.is_leasing() {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                return self.local_turn_blocking(nanos(left));
            }
        }
    }
}
