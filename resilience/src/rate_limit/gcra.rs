//! The generic cell rate algorithm (GCRA), as governor implements it: one
//! atomic word, the *theoretical arrival time* (TAT) of the next call, and
//! no background task. A call at `now` conforms when `max(tat, now)` is at
//! most `now` plus the tolerance, and then moves the TAT one emission
//! interval on; the tolerance (`burst - 1` intervals) is what lets `burst`
//! calls through at once after a quiet period.
//!
//! Sources: the ATM Forum's virtual scheduling algorithm (TM 4.0), Brandur
//! Leach's "Rate limiting, cells, and GCRA", and the governor crate.

use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// The schedule of one rate limiter: shared with its errors, which read
/// their `retry_after` from it.
#[derive(Debug)]
pub(crate) struct Gcra {
    /// Nanoseconds after `epoch` when the next call is due.
    tat: AtomicU64,
    /// The emission interval, `per / rate`, in nanoseconds (≥ 1).
    interval: AtomicU64,
    /// The tolerance, `(burst - 1) * interval`, in nanoseconds.
    tolerance: AtomicU64,
    #[cfg_attr(loom, allow(dead_code))]
    epoch: tokio::time::Instant,
    /// While the limiter runs on fleet leases (feature `redis`): 1 + when
    /// (nanoseconds after `epoch`) the next leased tokens are expected here,
    /// what [`retry_after`](Self::retry_after) reports then; 0 otherwise.
    #[cfg(feature = "redis")]
    lease_due: AtomicU64,
}

/// The interval and tolerance of `rate` calls per `per` with `burst`.
pub(crate) fn schedule(rate: u64, per: Duration, burst: u64) -> (u64, u64) {
    let per = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
    let interval = (per / rate.max(1)).max(1);
    (interval, interval.saturating_mul(burst.max(1) - 1))
}

impl Gcra {
    pub(crate) fn new(interval: u64, tolerance: u64) -> Self {
        Gcra {
            tat: AtomicU64::new(0),
            interval: AtomicU64::new(interval.max(1)),
            tolerance: AtomicU64::new(tolerance),
            epoch: tokio::time::Instant::now(),
            #[cfg(feature = "redis")]
            lease_due: AtomicU64::new(0),
        }
    }

    /// Nanoseconds after the epoch (tokio's clock, so a paused test clock
    /// drives it).
    fn now(&self) -> u64 {
        let since = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        // Seconds and nanoseconds in 64 bits (584 years), no 128-bit product.
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    /// Takes the next turn if it comes within `max_wait` (nanoseconds):
    /// `Ok(wait)` (0 = now), or `Err(wait)`, how long until a call would
    /// conform, and nothing taken.
    #[inline]
    pub(crate) fn take(&self, max_wait: u64) -> Result<u64, u64> {
        let now = self.now();
        let interval = self.interval.load(Ordering::Relaxed);
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            let wait = start.saturating_sub(tolerance).saturating_sub(now);
            if wait > max_wait {
                return Err(wait);
            }
            match self.tat.compare_exchange_weak(
                tat,
                start.saturating_add(interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(wait),
                Err(actual) => tat = actual,
            }
        }
    }

    /// How long until a call would conform, as of now (on fleet leases: until
    /// the next leased tokens are expected).
    pub(crate) fn retry_after(&self) -> Duration {
        let now = self.now();
        #[cfg(feature = "redis")]
        if let Some(due) = self.lease_due.load(Ordering::Acquire).checked_sub(1) {
            return Duration::from_nanos(due.saturating_sub(now));
        }
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let start = self.tat.load(Ordering::Acquire).max(now);
        Duration::from_nanos(start.saturating_sub(tolerance).saturating_sub(now))
    }

    /// Calls that would conform right now, one after the other.
    pub(crate) fn available(&self) -> u64 {
        let now = self.now();
        let interval = self.interval.load(Ordering::Relaxed);
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let start = self.tat.load(Ordering::Acquire).max(now);
        // Room left in the tolerance, in intervals, plus the call at `start`.
        let room = now.saturating_add(tolerance).checked_sub(start);
        room.map_or(0, |r| r / interval + 1)
    }

    /// A new schedule, from the next call on. The calls already let
    /// through keep their share of the burst: the time the TAT is ahead of
    /// now is rescaled to the new interval (a limiter that had used a
    /// fifth of its burst has used a fifth of the new one).
    pub(crate) fn set(&self, interval: u64, tolerance: u64) {
        let interval = interval.max(1);
        let old = self.interval.swap(interval, Ordering::AcqRel);
        self.tolerance.store(tolerance, Ordering::Release);
        let now = self.now();
        let mut tat = self.tat.load(Ordering::Acquire);
        while tat > now {
            let ahead = u128::from(tat - now) * u128::from(interval) / u128::from(old.max(1));
            let rescaled = now.saturating_add(u64::try_from(ahead).unwrap_or(u64::MAX));
            match self
                .tat
                .compare_exchange_weak(tat, rescaled, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => tat = actual,
            }
        }
    }

    /// On fleet leases, the next leased tokens are expected `wait` from now;
    /// `None`: off leases, [`retry_after`](Self::retry_after) is the local
    /// schedule's again.
    #[cfg(feature = "redis")]
    pub(crate) fn set_lease_due(&self, wait: Option<Duration>) {
        let due = wait.map_or(0, |w| {
            let w = u64::try_from(w.as_nanos()).unwrap_or(u64::MAX);
            self.now().saturating_add(w).saturating_add(1)
        });
        self.lease_due.store(due, Ordering::Release);
    }
}
