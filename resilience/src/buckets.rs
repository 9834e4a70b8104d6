//! Epoch-tagged time buckets: lock-free counters over a sliding time window.
//!
//! `BUCKETS` buckets of `window / BUCKETS` each; a bucket is tagged with the
//! time epoch it counts and recycled (zeroed by the one writer that wins a
//! compare-and-swap) when time moves past it. Recording is O(1), reading is
//! O(`BUCKETS`), nothing allocates after creation. Used by the breaker's time
//! window and by retry budgets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per window: the window slides in steps of 5 %.
pub(crate) const BUCKETS: usize = 20;
/// Epoch value of a bucket being recycled by one writer.
const RECYCLING: u64 = u64::MAX;
/// Epoch value of a bucket holding nothing.
const EMPTY: u64 = u64::MAX - 1;

#[derive(Debug)]
struct Bucket<const N: usize> {
    epoch: AtomicU64,
    counts: [AtomicU64; N],
}

/// `N` counters summed over the last `window` of time.
#[derive(Debug)]
pub(crate) struct TimeBuckets<const N: usize> {
    buckets: Box<[Bucket<N>]>,
    width: u64,
}

impl<const N: usize> TimeBuckets<N> {
    pub(crate) fn new(window: Duration) -> Self {
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        TimeBuckets {
            buckets: (0..BUCKETS)
                .map(|_| Bucket {
                    epoch: AtomicU64::new(EMPTY),
                    counts: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            width: (nanos / BUCKETS as u64).max(1),
        }
    }

    /// The epoch of `now`. At the very end of the clock's scale (a clock
    /// saturated at `u64::MAX` nanoseconds, with buckets of 1 ns) epochs stop
    /// short of the two reserved values, or cleared buckets would count
    /// again and a bucket could stay `RECYCLING` for good.
    fn epoch(&self, now: u64) -> u64 {
        (now / self.width).min(EMPTY - 1)
    }

    /// Adds `deltas` at time `now` (nanoseconds on any monotonic scale).
    pub(crate) fn add(&self, now: u64, deltas: [u64; N]) {
        let epoch = self.epoch(now);
        let bucket = &self.buckets[(epoch % BUCKETS as u64) as usize];
        loop {
            let current = bucket.epoch.load(Ordering::Acquire);
            if current == epoch {
                break;
            }
            if current == RECYCLING {
                std::hint::spin_loop(); // another writer is zeroing it: N stores
                continue;
            }
            if current != EMPTY && current > epoch {
                // This caller's clock read is older than the bucket: count it
                // in the newer epoch rather than lose it.
                break;
            }
            if bucket
                .epoch
                .compare_exchange(current, RECYCLING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for c in &bucket.counts {
                    c.store(0, Ordering::Relaxed);
                }
                bucket.epoch.store(epoch, Ordering::Release);
                break;
            }
        }
        for (c, d) in bucket.counts.iter().zip(deltas) {
            if d != 0 {
                c.fetch_add(d, Ordering::AcqRel);
            }
        }
    }

    /// The sums over the window ending at `now`.
    pub(crate) fn totals(&self, now: u64) -> [u64; N] {
        let epoch = self.epoch(now);
        let oldest = epoch.saturating_sub(BUCKETS as u64 - 1);
        let mut sums = [0u64; N];
        for b in self.buckets.iter() {
            let e = b.epoch.load(Ordering::Acquire);
            if e >= oldest && e <= epoch {
                for (sum, c) in sums.iter_mut().zip(&b.counts) {
                    *sum = sum.saturating_add(c.load(Ordering::Acquire));
                }
            }
        }
        sums
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        for b in self.buckets.iter() {
            b.epoch.store(EMPTY, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn buckets_older_than_the_window_are_forgotten() {
        let w = TimeBuckets::<2>::new(Duration::from_secs(20)); // 1 s buckets
        w.add(0, [1, 1]);
        w.add(5 * S, [1, 0]);
        w.add(19 * S + S / 2, [1, 0]);
        assert_eq!(w.totals(19 * S), [3, 1]);
        assert_eq!(w.totals(20 * S), [2, 0]);
        assert_eq!(w.totals(25 * S), [1, 0]);
        w.add(40 * S, [1, 1]); // recycles a slot
        assert_eq!(w.totals(40 * S), [1, 1]);
        w.clear();
        assert_eq!(w.totals(40 * S), [0, 0]);
    }

    #[test]
    fn a_stale_clock_read_counts_in_the_newer_bucket() {
        let w = TimeBuckets::<1>::new(Duration::from_secs(20));
        w.add(21 * S, [1]); // slot 1 holds epoch 21
        w.add(S, [1]); // epoch 1 maps to slot 1 too, but is older
        assert_eq!(w.totals(S), [0]);
        assert_eq!(w.totals(21 * S), [2], "not lost");
    }

    #[test]
    fn concurrent_adds_are_all_counted() {
        let w = TimeBuckets::<1>::new(Duration::from_secs(60));
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let w = &w;
                scope.spawn(move || {
                    for i in 0..10_000u64 {
                        w.add((t * 10_000 + i) * 1_000, [1]); // spans 13 buckets
                    }
                });
            }
        });
        assert_eq!(w.totals(40 * S), [40_000]);
    }
}
