//! Backoff schedules: how long to wait before each retry.

use std::time::Duration;

use resilience_spec::{RetryValues, Value};

pub use resilience_spec::{BackoffKind, Jitter};

/// A backoff schedule. Build one with the `const` constructors and the
/// `with_*` setters; read it back with the getters named after the keys:
///
/// ```
/// use std::time::Duration;
/// use resilience::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1)).with_max_delay(Duration::from_secs(5));
/// let delays: Vec<_> = backoff.delays().take(5).collect();
/// assert_eq!(delays, [1, 2, 4, 5, 5].map(Duration::from_secs));
/// assert_eq!(backoff.max_delay(), Some(Duration::from_secs(5)));
/// ```
///
/// A schedule is checked when a [`RetryPolicy`](crate::RetryPolicy) is built
/// from it, against the rules of the `#[retry]` attribute: `max_delay` not
/// below `delay`, `multiplier` at least 1 and only with the exponential kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    kind: BackoffKind,
    base: Duration,
    max_delay: Option<Duration>,
    /// `None`: the default, 2.
    multiplier: Option<f64>,
    jitter: Jitter,
}

impl Backoff {
    /// The default schedule: exponential from 1 s, doubling, no cap, no jitter.
    pub const DEFAULT: Backoff = Backoff::exponential(RetryValues::DEFAULT_DELAY);

    /// `base` before every retry.
    pub const fn fixed(base: Duration) -> Self {
        Self::new(BackoffKind::Fixed, base)
    }

    /// `base`, `2·base`, `3·base`, …
    pub const fn linear(base: Duration) -> Self {
        Self::new(BackoffKind::Linear, base)
    }

    /// `base`, `2·base`, `4·base`, … (see [`with_multiplier`](Self::with_multiplier)).
    pub const fn exponential(base: Duration) -> Self {
        Self::new(BackoffKind::Exponential, base)
    }

    /// A schedule of the given kind starting at `base`.
    pub const fn new(kind: BackoffKind, base: Duration) -> Self {
        Backoff {
            kind,
            base,
            max_delay: None,
            multiplier: None,
            jitter: RetryValues::DEFAULT_JITTER,
        }
    }

    /// Caps every delay (jitter included) at `max` (`max_delay`).
    pub const fn with_max_delay(mut self, max: Duration) -> Self {
        self.max_delay = Some(max);
        self
    }

    /// The growth factor of an exponential schedule (`multiplier`, default
    /// 2; at least 1). A schedule is never computed with a factor below 1:
    /// building a [`RetryPolicy`](crate::RetryPolicy) from it reports one.
    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = Some(multiplier);
        self
    }

    /// Randomises each delay (`jitter`, default [`Jitter::None`]).
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The schedule's kind (`backoff`).
    pub const fn kind(&self) -> BackoffKind {
        self.kind
    }

    /// The first delay (`delay`).
    pub const fn delay(&self) -> Duration {
        self.base
    }

    /// The cap, if any (`max_delay`).
    pub const fn max_delay(&self) -> Option<Duration> {
        self.max_delay
    }

    /// The growth factor (`multiplier`).
    pub const fn multiplier(&self) -> f64 {
        match self.multiplier {
            Some(m) => m,
            None => RetryValues::DEFAULT_MULTIPLIER,
        }
    }

    /// The jitter mode (`jitter`).
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The schedule's keys, for the spec's check.
    pub(crate) const fn values(&self, mut v: RetryValues) -> RetryValues {
        v.backoff = Value::Given(self.kind);
        v.delay = Value::Given(self.base);
        if let Some(max) = self.max_delay {
            v.max_delay = Value::Given(max);
        }
        if let Some(m) = self.multiplier {
            v.multiplier = Value::Given(m);
        }
        v.jitter = Value::Given(self.jitter);
        v
    }

    /// The schedule of checked values.
    pub(crate) const fn from_checked(v: &RetryValues) -> Self {
        let kind = match v.backoff.given() {
            Some(k) => k,
            None => RetryValues::DEFAULT_BACKOFF,
        };
        let base = match v.delay.given() {
            Some(d) => d,
            None => RetryValues::DEFAULT_DELAY,
        };
        Backoff {
            kind,
            base,
            max_delay: v.max_delay.given(),
            multiplier: v.multiplier.given(),
            jitter: match v.jitter.given() {
                Some(j) => j,
                None => RetryValues::DEFAULT_JITTER,
            },
        }
    }

    /// The delay before retry number `retry` (1 for the first retry), before
    /// jitter, capped by `max_delay`. Saturates instead of overflowing.
    pub fn delay_for(&self, retry: u32) -> Duration {
        let n = retry.max(1);
        let raw = match self.kind {
            BackoffKind::Fixed => self.base,
            BackoffKind::Linear => self.base.saturating_mul(n),
            // Never below 1 (an unchecked schedule): a delay never shrinks.
            BackoffKind::Exponential => exponential(self.base, self.multiplier().max(1.0), n - 1),
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
        let computed = self.backoff.delay_for(self.retry);
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
            .with_multiplier(3.0)
            .with_max_delay(Duration::from_secs(10));
        assert_eq!(
            b.delays().take(5).collect::<Vec<_>>(),
            [500, 1500, 4500, 10_000, 10_000].map(Duration::from_millis)
        );
        let b = Backoff::exponential(Duration::from_millis(100)).with_multiplier(1.5);
        assert_eq!(b.delay_for(3), Duration::from_millis(225));
        // An unchecked factor below 1 is computed as 1: never shrinking.
        let b = Backoff::exponential(Duration::from_secs(1)).with_multiplier(0.5);
        assert_eq!(b.delay_for(10), Duration::from_secs(1));
    }

    #[test]
    fn huge_retry_numbers_saturate() {
        let b = Backoff::exponential(Duration::from_secs(1));
        assert_eq!(b.delay_for(u32::MAX), Duration::MAX);
        assert_eq!(b.delay_for(200), Duration::MAX);
        let b = Backoff::linear(Duration::MAX);
        assert_eq!(b.delay_for(7), Duration::MAX);
        let b = Backoff::exponential(Duration::from_secs(1)).with_multiplier(1.7);
        assert_eq!(b.delay_for(100_000), Duration::MAX);
        let capped =
            Backoff::exponential(Duration::from_secs(1)).with_max_delay(Duration::from_secs(30));
        assert_eq!(capped.delay_for(u32::MAX), Duration::from_secs(30));
        // A zero base stays zero however far the exponent goes: never the
        // saturated `Duration::MAX` (a sleep that never ends).
        let zero = Backoff::exponential(Duration::ZERO);
        assert_eq!(zero.delay_for(100), Duration::ZERO);
        assert_eq!(zero.delay_for(u32::MAX), Duration::ZERO);
        let ones = Backoff::exponential(Duration::from_millis(3)).with_multiplier(1.0);
        assert_eq!(ones.delay_for(u32::MAX), Duration::from_millis(3));
    }

    #[test]
    fn jitter_stays_in_its_bounds() {
        let base = Duration::from_millis(100);
        let full = Backoff::exponential(base).with_jitter(Jitter::Full);
        let equal = Backoff::exponential(base).with_jitter(Jitter::Equal);
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
            .with_jitter(Jitter::Decorrelated)
            .with_max_delay(Duration::from_secs(1));
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
        let b = Backoff::fixed(Duration::from_secs(1)).with_jitter(Jitter::Full);
        let seen: std::collections::HashSet<_> = b.delays().take(50).collect();
        assert!(seen.len() > 10, "{seen:?}");
    }
}
