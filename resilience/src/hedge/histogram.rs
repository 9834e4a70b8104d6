//! The latency histogram a percentile delay is read from: lock-free,
//! allocation-free, `const`-constructible (a hedge can live in a `static`).
//!
//! Buckets are log-linear over microseconds, as HdrHistogram's: values
//! below 8 µs have a bucket each, and every power of two above is split in 8
//! equal buckets, so a bucket is at most 12.5 % wide and a percentile is
//! read as its bucket's upper edge (never below the true value, at most
//! 12.5 % above it). 240 buckets cover up to 2^32 µs (71 minutes); slower
//! calls count in the last one.
//!
//! Time is windowed as tower's hedge does it (`tower::hedge`'s
//! `RotatingHistogram`: a read and a write histogram behind a mutex, the
//! write one becoming the read one every `period`, both cleared after two
//! idle periods), without the mutex: two histograms tagged with the period
//! (epoch) they count, the one of epoch `e` in slot `e % 2`. The first
//! writer of a new epoch recycles the slot (a compare-and-swap on its tag
//! elects it; it zeroes the counts while other writers of that slot wait,
//! as `crate::buckets` does). Unlike tower, which reads only the previous
//! full period (and so needs a whole period before it can say anything),
//! a percentile reads both slots: the samples of the current period and
//! of the previous one, between one and two periods of history.
//!
//! Reading 2 × 240 counters on every call would cost more than the call
//! needs, so the last percentile is cached with the sample count and the
//! period it was computed in, and computed again only in a new period or
//! when the count moved by more than 1/32 (3 %).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Exact buckets below `2^SUB_BITS` µs, then `2^SUB_BITS` per power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// The largest exponent with buckets of its own (values up to 2^32 µs).
const MAX_EXP: u32 = 31;
/// Buckets in all.
pub(crate) const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

/// The sample counts the cache tells apart (24 bits).
const CACHED_SAMPLES_MAX: u64 = (1 << 24) - 1;

/// Tag of a slot holding nothing (tags are `epoch + 1`).
const EMPTY: u64 = 0;
/// Tag of a slot being zeroed by one writer.
const RECYCLING: u64 = u64::MAX;

/// The bucket of a latency of `micros` µs.
pub(crate) const fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros();
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (micros >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + (exp - SUB_BITS) as u64 * SUB + sub) as usize
}

/// The upper edge of bucket `index`, in µs: every latency counted in it is
/// below.
pub(crate) const fn upper_edge(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index + 1;
    }
    let exp = (index - SUB) / SUB + SUB_BITS as u64;
    let sub = (index - SUB) % SUB;
    let width = 1u64 << (exp - SUB_BITS as u64);
    (SUB + sub) * width + width
}

/// One period's counts.
#[derive(Debug)]
struct Slot {
    tag: AtomicU64,
    count: AtomicU64,
    buckets: [AtomicU32; BUCKETS],
}

impl Slot {
    const fn new() -> Self {
        Slot {
            tag: AtomicU64::new(EMPTY),
            count: AtomicU64::new(0),
            buckets: [const { AtomicU32::new(0) }; BUCKETS],
        }
    }
}

/// Successful calls' latencies over the last one to two periods.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    /// The start of epoch 0: the first use.
    origin: OnceLock<Instant>,
    slots: [Slot; 2],
    /// The last percentile: `samples << 40 | (tag & 0xff) << 32 | micros`
    /// (samples capped at 2^24 - 1), `0` for none.
    cache: AtomicU64,
}

impl LatencyHistogram {
    pub(crate) const fn new() -> Self {
        LatencyHistogram {
            origin: OnceLock::new(),
            slots: [Slot::new(), Slot::new()],
            cache: AtomicU64::new(0),
        }
    }

    /// The tag of the epoch `now` is in (`period` is not zero: checked by
    /// the configuration). Stops short of `RECYCLING` at the end of the
    /// clock's scale.
    fn tag(&self, now: Instant, period: Duration) -> u64 {
        let origin = *self.origin.get_or_init(|| now);
        let since = now.saturating_duration_since(origin).as_nanos();
        let period = period.as_nanos().max(1);
        u64::try_from(since / period)
            .unwrap_or(u64::MAX)
            .saturating_add(1)
            .min(RECYCLING - 1)
    }

    /// Counts one successful call of `latency`, at `now`.
    pub(crate) fn record(&self, latency: Duration, now: Instant, period: Duration) {
        let tag = self.tag(now, period);
        let slot = &self.slots[(tag % 2) as usize];
        loop {
            let current = slot.tag.load(Ordering::Acquire);
            if current == tag {
                break;
            }
            if current == RECYCLING {
                std::hint::spin_loop(); // another writer zeroes it: 241 stores
                continue;
            }
            if current != EMPTY && current > tag {
                // A clock read older than the slot: count it in the newer
                // period rather than lose it.
                break;
            }
            if slot
                .tag
                .compare_exchange(current, RECYCLING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for b in &slot.buckets {
                    b.store(0, Ordering::Relaxed);
                }
                slot.count.store(0, Ordering::Relaxed);
                slot.tag.store(tag, Ordering::Release);
                break;
            }
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        slot.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        slot.count.fetch_add(1, Ordering::Release);
    }

    /// The slots of the current and the previous period at `now`.
    fn live(&self, now: Instant, period: Duration) -> impl Iterator<Item = &Slot> + '_ {
        let tag = self.tag(now, period);
        self.slots.iter().filter(move |s| {
            let t = s.tag.load(Ordering::Acquire);
            t != EMPTY && t != RECYCLING && (t == tag || t + 1 == tag)
        })
    }

    /// Samples in the window at `now`.
    pub(crate) fn samples(&self, now: Instant, period: Duration) -> u64 {
        self.live(now, period)
            .map(|s| s.count.load(Ordering::Acquire))
            .sum()
    }

    /// The `p` quantile of the window at `now`, once it holds `min_samples`
    /// samples (`None` before). The cache holds one quantile: a histogram
    /// is asked for one `p` only (its hedge's).
    pub(crate) fn quantile(
        &self,
        p: f64,
        min_samples: u32,
        now: Instant,
        period: Duration,
    ) -> Option<Duration> {
        let samples = self.samples(now, period);
        if samples < u64::from(min_samples.max(1)) {
            return None;
        }
        let samples24 = samples.min(CACHED_SAMPLES_MAX);
        let tag8 = self.tag(now, period) & 0xff;
        let cached = self.cache.load(Ordering::Relaxed);
        let (cached_samples, cached_tag) = (cached >> 40, (cached >> 32) & 0xff);
        if cached_samples != 0
            && cached_tag == tag8
            && cached_samples.abs_diff(samples24) <= samples24 / 32
        {
            return Some(Duration::from_micros(cached & u64::from(u32::MAX)));
        }
        let micros = self.compute(p, now, period)?;
        let micros32 = micros.min(u64::from(u32::MAX));
        self.cache
            .store(samples24 << 40 | tag8 << 32 | micros32, Ordering::Relaxed);
        Some(Duration::from_micros(micros))
    }

    /// The upper edge of the bucket holding the `p` quantile, in µs.
    fn compute(&self, p: f64, now: Instant, period: Duration) -> Option<u64> {
        let mut slots = self.live(now, period);
        let (a, b) = (slots.next(), slots.next());
        let count = |i: usize| {
            a.map_or(0, |s| u64::from(s.buckets[i].load(Ordering::Relaxed)))
                + b.map_or(0, |s| u64::from(s.buckets[i].load(Ordering::Relaxed)))
        };
        let total: u64 = (0..BUCKETS).map(count).sum();
        if total == 0 {
            return None;
        }
        // The smallest latency at least `p` of the samples do not exceed.
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += count(i);
            if seen >= rank {
                return Some(upper_edge(i));
            }
        }
        Some(upper_edge(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_at_most_an_eighth_wide() {
        assert_eq!(BUCKETS, 240);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(7), 7);
        assert_eq!(bucket_of(8), 8);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(u64::from(u32::MAX)), BUCKETS - 1);
        let mut previous = 0;
        for micros in (0..20_000u64).chain([99_999, 100_000, 1 << 31, (1 << 32) - 1]) {
            let b = bucket_of(micros);
            assert!(b >= previous, "monotonic at {micros}");
            previous = b;
            let upper = upper_edge(b);
            assert!(upper > micros, "{micros} µs below its edge {upper}");
            assert!(
                (upper - 1) as f64 <= micros as f64 * 1.125 + 1.0,
                "{micros} µs read as {upper}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn quantiles_read_the_window_and_forget_old_periods() {
        let h = LatencyHistogram::new();
        let period = Duration::from_secs(10);
        let now = Instant::now();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms), now, period);
        }
        assert_eq!(h.quantile(0.5, 101, now, period), None, "too few samples");
        let p50 = h.quantile(0.5, 20, now, period).unwrap();
        assert!(p50 >= Duration::from_millis(50) && p50 <= Duration::from_micros(56_250));
        // A histogram caches the quantile of its hedge's one `p`: ask another.
        let other = LatencyHistogram::new();
        for ms in 1..=100 {
            other.record(Duration::from_millis(ms), now, period);
        }
        let p99 = other.quantile(0.99, 20, now, period).unwrap();
        assert!(p99 >= Duration::from_millis(99) && p99 <= Duration::from_micros(111_375));
        // The next period still sees them; the one after forgets them.
        let later = now + Duration::from_secs(15);
        assert_eq!(h.samples(later, period), 100);
        assert_eq!(h.samples(now + Duration::from_secs(20), period), 0);
        h.record(Duration::from_secs(1), later, period);
        assert_eq!(h.samples(later, period), 101);
        // A new period recycles the slot of the period before the previous one.
        let much_later = now + Duration::from_secs(25);
        h.record(Duration::from_secs(2), much_later, period);
        assert_eq!(h.samples(much_later, period), 2);
        let top = h.quantile(1.0, 1, much_later, period).unwrap();
        assert!(top >= Duration::from_secs(2) && top <= Duration::from_millis(2_250));
    }

    #[tokio::test(start_paused = true)]
    async fn the_cached_quantile_is_not_kept_across_periods() {
        let h = LatencyHistogram::new();
        let period = Duration::from_secs(10);
        let now = Instant::now();
        for _ in 0..20 {
            h.record(Duration::from_millis(100), now, period);
        }
        let fast = h.quantile(0.5, 20, now, period).unwrap();
        assert!(fast < Duration::from_millis(113), "{fast:?}");
        // As many samples, two periods later, ten times slower.
        let later = now + 2 * period;
        for _ in 0..20 {
            h.record(Duration::from_secs(1), later, period);
        }
        let slow = h.quantile(0.5, 20, later, period).unwrap();
        assert!(slow >= Duration::from_secs(1), "{slow:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_quantile_is_computed_again_when_the_count_moves_by_3_percent() {
        let h = LatencyHistogram::new();
        let period = Duration::from_secs(10);
        let now = Instant::now();
        for _ in 0..64 {
            h.record(Duration::from_millis(100), now, period);
        }
        let max = h.quantile(1.0, 1, now, period).unwrap();
        assert!(max < Duration::from_millis(113));
        h.record(Duration::from_secs(60), now, period);
        assert_eq!(
            h.quantile(1.0, 1, now, period),
            Some(max),
            "65 is within 3 % of 64"
        );
        h.record(Duration::from_secs(60), now, period);
        h.record(Duration::from_secs(60), now, period);
        let max = h.quantile(1.0, 1, now, period).unwrap();
        assert!(max >= Duration::from_secs(60), "67 is not: {max:?}");
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = LatencyHistogram::new();
        let now = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let h = &h;
                scope.spawn(move || {
                    for i in 0..5_000u64 {
                        h.record(
                            Duration::from_micros(t * 1_000 + i),
                            now,
                            Duration::from_secs(1),
                        );
                    }
                });
            }
        });
        assert_eq!(h.samples(now, Duration::from_secs(1)), 20_000);
    }
}
