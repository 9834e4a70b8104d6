//! Backoff schedules: how long to wait before each retry.

use std::time::Duration;

/// How the delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackoffKind {
    /// `d, d, d, …`
    Fixed,
    /// `d, 2d, 3d, …`
    Linear,
    /// `d, m·d, m²·d, …` with multiplier `m` (default 2: `1 s, 2 s, 4 s`).
    Exponential,
}

/// Randomisation of each delay, as defined in AWS's "Exponential Backoff And
/// Jitter". Off by default, so schedules are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The computed delay, unchanged.
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay / 2, delay]`.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped by `max_delay`; the
    /// previous delay starts at `base`.
    Decorrelated,
}

/// A backoff schedule. Build one with the `const` constructors and setters:
///
/// ```
/// use std::time::Duration;
/// use resilience::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(5));
/// let delays: Vec<_> = backoff.delays().take(5).collect();
/// assert_eq!(delays, [1, 2, 4, 5, 5].map(Duration::from_secs));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    kind: BackoffKind,
    base: Duration,
    max_delay: Option<Duration>,
    multiplier: f64,
    jitter: Jitter,
}

impl Backoff {
    /// The default schedule: exponential from 1 s, doubling, no cap, no jitter.
    pub const DEFAULT: Backoff = Backoff::exponential(Duration::from_secs(1));

    /// `base` before every retry.
    pub const fn fixed(base: Duration) -> Self {
        Self::new(BackoffKind::Fixed, base)
    }

    /// `base`, `2·base`, `3·base`, …
    pub const fn linear(base: Duration) -> Self {
        Self::new(BackoffKind::Linear, base)
    }

    /// `base`, `2·base`, `4·base`, … (see [`multiplier`](Self::multiplier)).
    pub const fn exponential(base: Duration) -> Self {
        Self::new(BackoffKind::Exponential, base)
    }

    /// A schedule of the given kind starting at `base`.
    pub const fn new(kind: BackoffKind, base: Duration) -> Self {
        Backoff {
            kind,
            base,
            max_delay: None,
            multiplier: 2.0,
            jitter: Jitter::None,
        }
    }

    /// Caps every delay (jitter included) at `max`.
    pub const fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = Some(max);
        self
    }

    /// The growth factor of an exponential schedule (default 2). Values below 1
    /// (and NaN) are treated as 1.
    pub const fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier >= 1.0 { multiplier } else { 1.0 };
        self
    }

    /// Randomises each delay (default [`Jitter::None`]).
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The schedule's kind.
    pub const fn kind(&self) -> BackoffKind {
        self.kind
    }

    /// The first delay.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The cap, if any.
    pub const fn max(&self) -> Option<Duration> {
        self.max_delay
    }

    /// The jitter mode.
    pub const fn jitter_mode(&self) -> Jitter {
        self.jitter
    }

    /// The delay before retry number `retry` (1 for the first retry), before
    /// jitter, capped by `max_delay`. Saturates instead of overflowing.
    pub fn delay(&self, retry: u32) -> Duration {
        let n = retry.max(1);
        let raw = match self.kind {
            BackoffKind::Fixed => self.base,
            BackoffKind::Linear => self.base.saturating_mul(n),
            BackoffKind::Exponential => exponential(self.base, self.multiplier, n - 1),
        };
        self.cap(raw)
    }

    /// The infinite sequence of delays (jitter applied), one per retry.
    pub fn delays(&self) -> Delays {
        Delays {
            backoff: *self,
            retry: 0,
            previous: self.base,
        }
    }

    fn cap(&self, d: Duration) -> Duration {
        match self.max_delay {
            Some(max) if d > max => max,
            _ => d,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `base · multiplier^exp`, saturating; exact for integral multipliers.
fn exponential(base: Duration, multiplier: f64, exp: u32) -> Duration {
    if multiplier.fract() == 0.0 && multiplier <= f64::from(u32::MAX) {
        // Integral multiplier: exact integer arithmetic.
        let m = multiplier as u32;
        let factor = m.checked_pow(exp);
        return match factor {
            Some(f) => base.saturating_mul(f),
            None if base.is_zero() || m <= 1 => base,
            None => Duration::MAX,
        };
    }
    let factor = multiplier.powf(f64::from(exp));
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// The delays of a [`Backoff`], one per retry; never ends.
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    retry: u32,
    previous: Duration,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let computed = self.backoff.delay(self.retry);
        let delay = match self.backoff.jitter {
            Jitter::None => computed,
            Jitter::Full => uniform(Duration::ZERO, computed),
            Jitter::Equal => uniform(computed / 2, computed),
            Jitter::Decorrelated => {
                let high = self.previous.saturating_mul(3).max(self.backoff.base);
                self.backoff.cap(uniform(self.backoff.base, high))
            }
        };
        self.previous = delay;
        Some(delay)
    }
}

/// Uniform in `[low, high]` at nanosecond resolution.
fn uniform(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let low_n = low.as_nanos();
    let span = high.as_nanos() - low_n;
    let span = u64::try_from(span).unwrap_or(u64::MAX);
    let pick = fastrand::u64(0..=span);
    let nanos = low_n + u128::from(pick);
    Duration::new(
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX),
        (nanos % 1_000_000_000) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().copied().map(Duration::from_secs).collect()
    }

    #[test]
    fn fixed_linear_exponential_schedules() {
        let d = Duration::from_secs(1);
        assert_eq!(
            Backoff::fixed(d).delays().take(4).collect::<Vec<_>>(),
            secs(&[1, 1, 1, 1])
        );
        assert_eq!(
            Backoff::linear(d).delays().take(4).collect::<Vec<_>>(),
            secs(&[1, 2, 3, 4])
        );
        assert_eq!(
            Backoff::exponential(d).delays().take(4).collect::<Vec<_>>(),
            secs(&[1, 2, 4, 8])
        );
    }

    #[test]
    fn max_delay_caps_and_multiplier_scales() {
        let b = Backoff::exponential(Duration::from_millis(500))
            .multiplier(3.0)
            .max_delay(Duration::from_secs(10));
        assert_eq!(
            b.delays().take(5).collect::<Vec<_>>(),
            [500, 1500, 4500, 10_000, 10_000].map(Duration::from_millis)
        );
        let b = Backoff::exponential(Duration::from_millis(100)).multiplier(1.5);
        assert_eq!(b.delay(3), Duration::from_millis(225));
        // Below 1 is treated as 1: never shrinking.
        let b = Backoff::exponential(Duration::from_secs(1)).multiplier(0.5);
        assert_eq!(b.delay(10), Duration::from_secs(1));
    }

    #[test]
    fn huge_retry_numbers_saturate() {
        let b = Backoff::exponential(Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::MAX);
        assert_eq!(b.delay(200), Duration::MAX);
        let b = Backoff::linear(Duration::MAX);
        assert_eq!(b.delay(7), Duration::MAX);
        let b = Backoff::exponential(Duration::from_secs(1)).multiplier(1.7);
        assert_eq!(b.delay(100_000), Duration::MAX);
        let capped =
            Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(30));
        assert_eq!(capped.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_its_bounds() {
        let base = Duration::from_millis(100);
        let full = Backoff::exponential(base).jitter(Jitter::Full);
        let equal = Backoff::exponential(base).jitter(Jitter::Equal);
        for _ in 0..200 {
            for (i, d) in full.delays().take(5).enumerate() {
                assert!(d <= base * 2u32.pow(i as u32), "{d:?}");
            }
            for (i, d) in equal.delays().take(5).enumerate() {
                let c = base * 2u32.pow(i as u32);
                assert!(d >= c / 2 && d <= c, "{d:?}");
            }
        }
        let deco = Backoff::exponential(base)
            .jitter(Jitter::Decorrelated)
            .max_delay(Duration::from_secs(1));
        for _ in 0..200 {
            let mut previous = base;
            for d in deco.delays().take(10) {
                assert!(
                    d >= base && d <= (previous * 3).min(Duration::from_secs(1)),
                    "{d:?}"
                );
                previous = d;
            }
        }
    }

    #[test]
    fn jitter_actually_varies() {
        let b = Backoff::fixed(Duration::from_secs(1)).jitter(Jitter::Full);
        let seen: std::collections::HashSet<_> = b.delays().take(50).collect();
        assert!(seen.len() > 10, "{seen:?}");
    }
}
