//! Sliding windows of call outcomes: the last N calls, or the last D of time.
//!
//! Both record in O(1) with atomics only and never allocate after creation.
//! The count window keeps one byte per call slot and running totals (adding the
//! new slot, subtracting the evicted one); the time window is
//! [`TimeBuckets`] with three counters (calls, failures, slow calls).

use std::time::Duration;

use super::config::Window;
use crate::buckets::TimeBuckets;
use crate::sync::{AtomicI64, AtomicU64, AtomicU8, Ordering};

/// Totals of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

/// What one call adds to a window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Sample {
    const CALL: u8 = 1;
    const FAILURE: u8 = 2;
    const SLOW: u8 = 4;

    fn bits(self) -> u8 {
        Self::CALL | (u8::from(self.failure) * Self::FAILURE) | (u8::from(self.slow) * Self::SLOW)
    }
}

#[derive(Debug)]
pub(crate) enum Outcomes {
    Calls(CountWindow),
    Time(TimeWindow),
}

impl Outcomes {
    pub(crate) fn new(window: Window) -> Self {
        match window {
            Window::Calls(n) => Outcomes::Calls(CountWindow::new(n.get() as usize)),
            Window::Time(d) => Outcomes::Time(TimeWindow::new(d)),
        }
    }

    /// Whether this window counts time (and so needs the clock).
    pub(crate) fn is_timed(&self) -> bool {
        matches!(self, Outcomes::Time(_))
    }

    /// Adds a sample at `now_nanos` and returns the window's totals after it.
    pub(crate) fn record(&self, sample: Sample, now_nanos: u64) -> Totals {
        match self {
            Outcomes::Calls(w) => w.record(sample),
            Outcomes::Time(w) => w.record(sample, now_nanos),
        }
    }

    pub(crate) fn totals(&self, now_nanos: u64) -> Totals {
        match self {
            Outcomes::Calls(w) => w.totals(),
            Outcomes::Time(w) => w.totals(now_nanos),
        }
    }

    /// Forgets everything (on close and reset; under the transition lock).
    pub(crate) fn clear(&self) {
        match self {
            Outcomes::Calls(w) => w.clear(),
            Outcomes::Time(w) => w.clear(),
        }
    }
}

/// The last `n` calls.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    cursor: AtomicU64,
    // Signed so that a writer racing with `clear` can never wrap them; read
    // clamped at zero.
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

fn clamp(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl CountWindow {
    fn new(n: usize) -> Self {
        CountWindow {
            slots: (0..n).map(|_| AtomicU8::new(0)).collect(),
            cursor: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    fn record(&self, sample: Sample) -> Totals {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let new = sample.bits();
        let old = self.slots[i as usize].swap(new, Ordering::AcqRel);
        for (bit, total) in [
            (Sample::CALL, &self.calls),
            (Sample::FAILURE, &self.failures),
            (Sample::SLOW, &self.slow),
        ] {
            let delta = i64::from(new & bit != 0) - i64::from(old & bit != 0);
            if delta != 0 {
                total.fetch_add(delta, Ordering::AcqRel);
            }
        }
        self.totals()
    }

    fn totals(&self) -> Totals {
        Totals {
            calls: clamp(self.calls.load(Ordering::Acquire)),
            failures: clamp(self.failures.load(Ordering::Acquire)),
            slow: clamp(self.slow.load(Ordering::Acquire)),
        }
    }

    fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Release);
        }
        self.cursor.store(0, Ordering::Relaxed);
        for total in [&self.calls, &self.failures, &self.slow] {
            total.store(0, Ordering::Release);
        }
    }
}

/// The calls of the last `d`, in time buckets.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: TimeBuckets<3>,
}

impl TimeWindow {
    fn new(window: Duration) -> Self {
        TimeWindow {
            buckets: TimeBuckets::new(window),
        }
    }

    fn record(&self, sample: Sample, now: u64) -> Totals {
        self.buckets
            .add(now, [1, u64::from(sample.failure), u64::from(sample.slow)]);
        self.totals(now)
    }

    fn totals(&self, now: u64) -> Totals {
        let [calls, failures, slow] = self.buckets.totals(now);
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Totals {
            calls: sat(calls),
            failures: sat(failures),
            slow: sat(slow),
        }
    }

    fn clear(&self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const OK: Sample = Sample {
        failure: false,
        slow: false,
    };
    const FAIL: Sample = Sample {
        failure: true,
        slow: false,
    };
    const SLOW: Sample = Sample {
        failure: false,
        slow: true,
    };

    #[test]
    fn count_window_evicts_the_oldest_call() {
        let w = Outcomes::new(Window::Calls(NonZeroU32::new(3).unwrap()));
        assert_eq!(w.record(FAIL, 0).failures, 1);
        w.record(OK, 0);
        let t = w.record(SLOW, 0);
        assert_eq!((t.calls, t.failures, t.slow), (3, 1, 1));
        let t = w.record(OK, 0); // evicts the failure
        assert_eq!((t.calls, t.failures, t.slow), (3, 0, 1));
        let t = w.record(OK, 0);
        w.record(OK, 0); // evicts the slow call
        assert_eq!(t.slow, 1);
        assert_eq!(
            w.totals(0),
            Totals {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
        w.clear();
        assert_eq!(w.totals(0), Totals::default());
    }

    #[test]
    fn time_window_forgets_buckets_older_than_the_window() {
        let s = 1_000_000_000u64;
        let w = Outcomes::new(Window::Time(Duration::from_secs(20))); // 1 s buckets
        w.record(FAIL, 0);
        w.record(FAIL, 5 * s);
        let t = w.record(OK, 19 * s + s / 2);
        assert_eq!((t.calls, t.failures), (3, 2));
        // At 20 s the bucket of [0 s, 1 s) has left the window.
        assert_eq!(w.totals(20 * s).failures, 1);
        // At 25 s the one of [5 s, 6 s) too.
        assert_eq!(
            w.totals(25 * s),
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        // Recording in a recycled slot starts it from zero.
        let t = w.record(FAIL, 40 * s);
        assert_eq!((t.calls, t.failures), (1, 1));
        w.clear();
        assert_eq!(w.totals(40 * s), Totals::default());
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let w = std::sync::Arc::new(Outcomes::new(Window::Calls(NonZeroU32::new(1000).unwrap())));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let w = w.clone();
                scope.spawn(move || {
                    for i in 0..250 {
                        w.record(if i % 5 == 0 { FAIL } else { OK }, 0);
                    }
                });
            }
        });
        assert_eq!(
            w.totals(0),
            Totals {
                calls: 1000,
                failures: 200,
                slow: 0
            }
        );
    }
}
