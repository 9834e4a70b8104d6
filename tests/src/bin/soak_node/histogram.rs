//! The latency histogram of the calls.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A latency histogram in nanoseconds: exact below 32 ns, then 16 buckets
/// per power of two (at most ~6 % wide). Lock-free: the call loop adds, the
/// command loop takes and resets.
pub(crate) struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

/// Sub-buckets per power of two (the first 32 buckets are exact).
const SUB: u32 = 16;

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..(64 - 4) * SUB as usize + SUB as usize)
                .map(|_| AtomicU64::new(0))
                .collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return usize::try_from(ns).expect("small");
        }
        let msb = 63 - ns.leading_zeros(); // >= 4
        let sub = (ns >> (msb - 4)) & u64::from(SUB - 1);
        usize::try_from(u64::from(msb - 3) * u64::from(SUB) + sub).expect("small")
    }

    /// The largest value of bucket `index`.
    fn upper(index: usize) -> u64 {
        let index = u64::try_from(index).expect("small");
        if index < u64::from(SUB) {
            return index;
        }
        let exp = index / u64::from(SUB) - 1;
        let sub = index % u64::from(SUB) + u64::from(SUB);
        ((sub + 1) << exp) - 1
    }

    pub(crate) fn add(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(ns)].fetch_add(1, Relaxed);
        self.max.fetch_max(ns, Relaxed);
    }

    /// `(count, p50, p99, max)` in ns since the last call; resets.
    pub(crate) fn take(&self) -> (u64, u64, u64, u64) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.swap(0, Relaxed)).collect();
        let max = self.max.swap(0, Relaxed);
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| {
            // The smallest value with at least q of the samples at or below it.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Self::upper(i).min(max);
                }
            }
            max
        };
        if total == 0 {
            return (0, 0, 0, 0);
        }
        (total, quantile(0.50), quantile(0.99), max)
    }
}
