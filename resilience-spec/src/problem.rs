//! What can be wrong with a configuration, and the words that say so: one
//! [`Problem`] per broken rule, each naming its key. The words are written
//! by a `const fn` ([`Problem::write`]), so the compiler's const evaluation
//! reports a bad constant with exactly the words the macro and the builders
//! use.

use core::fmt;
use core::time::Duration;

/// Where the macro spans a problem: on the key (`failure_rate = 0.5` is
/// wrong because of what else is there) or on its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The key's name.
    Key,
    /// The key's value.
    Value,
}

/// One broken rule of a configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// A count of zero.
    Zero {
        /// The key.
        key: &'static str,
    },
    /// A count above what the key can hold.
    TooLarge {
        /// The key.
        key: &'static str,
        /// The value written.
        found: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A zero duration where a positive one is needed.
    NotPositive {
        /// The key.
        key: &'static str,
    },
    /// A share outside (0, 1].
    RateOutOfRange {
        /// The key.
        key: &'static str,
        /// The value written.
        found: f64,
    },
    /// A duration outside its range.
    DurationOutOfRange {
        /// The key.
        key: &'static str,
        /// The value written.
        found: Duration,
        /// The smallest value allowed.
        min: Duration,
        /// The largest value allowed.
        max: Duration,
    },
    /// A number outside its range (or NaN).
    NumberOutOfRange {
        /// The key.
        key: &'static str,
        /// The value written.
        found: f64,
        /// The smallest value allowed.
        min: f64,
        /// The largest value allowed.
        max: f64,
    },
    /// A duration that must not be below another key's.
    BelowOther {
        /// The key.
        key: &'static str,
        /// Its value.
        found: Duration,
        /// The other key.
        other: &'static str,
        /// The other key's value (given or default).
        limit: Duration,
    },
    /// `failure_rate` or `slow_call_rate` without a `window`.
    RateNeedsWindow {
        /// The rate's key.
        key: &'static str,
    },
    /// `slow_call_rate` without `slow_call`.
    SlowRateNeedsSlowCall,
    /// `min_calls` without a rate to apply to.
    MinCallsWithoutRate,
    /// `min_calls` above a count window.
    MinCallsExceedsWindow {
        /// `min_calls`.
        min_calls: u64,
        /// The window's calls.
        window: u64,
    },
    /// The default `min_calls` of a rate never fits a count window.
    DefaultMinCallsExceedsWindow {
        /// The default `min_calls`.
        min_calls: u64,
        /// The window's calls.
        window: u64,
    },
    /// `failure_threshold` above a count window.
    ThresholdExceedsWindow {
        /// `failure_threshold`.
        threshold: u64,
        /// The window's calls.
        window: u64,
    },
    /// The default `failure_threshold` never fits a count window.
    DefaultThresholdExceedsWindow {
        /// The default `failure_threshold`.
        threshold: u64,
        /// The window's calls.
        window: u64,
    },
    /// `failure_threshold` together with `failure_rate`.
    ThresholdWithRate,
    /// A count window above the largest one.
    WindowTooLarge {
        /// The window's calls.
        found: u64,
    },
    /// `multiplier` with another backoff than the exponential one.
    MultiplierWithoutExponential {
        /// The backoff written.
        backoff: &'static str,
    },
    /// A `multiplier` below 1.
    MultiplierBelowOne {
        /// The value written.
        found: f64,
    },
    /// A key of a percentile hedge delay (`warmup_delay`, `min_samples`,
    /// `period`) with a fixed `delay`.
    PercentileOnly {
        /// The key.
        key: &'static str,
    },
    /// A key of one adaptive algorithm with the other one.
    AlgorithmOnly {
        /// The key.
        key: &'static str,
        /// The `max_concurrent` the key needs (`"gradient2"`, `"adaptive"`).
        algorithm: &'static str,
    },
    /// `max_elapsed` no longer than `delay`.
    MaxElapsedTooShort {
        /// `max_elapsed`.
        max_elapsed: Duration,
        /// `delay` (given or default).
        delay: Duration,
    },
}

const WINDOW_HINT: &str =
    "add `window = 100` (the last 100 calls) or `window = \"60s\"` (the last minute)";

impl Problem {
    /// The key the problem is about (where the macro spans it).
    pub const fn key(&self) -> &'static str {
        match *self {
            Problem::Zero { key }
            | Problem::TooLarge { key, .. }
            | Problem::NotPositive { key }
            | Problem::RateOutOfRange { key, .. }
            | Problem::DurationOutOfRange { key, .. }
            | Problem::NumberOutOfRange { key, .. }
            | Problem::BelowOther { key, .. }
            | Problem::RateNeedsWindow { key }
            | Problem::PercentileOnly { key }
            | Problem::AlgorithmOnly { key, .. } => key,
            Problem::SlowRateNeedsSlowCall => "slow_call_rate",
            Problem::MinCallsWithoutRate | Problem::MinCallsExceedsWindow { .. } => "min_calls",
            Problem::DefaultMinCallsExceedsWindow { .. }
            | Problem::DefaultThresholdExceedsWindow { .. }
            | Problem::WindowTooLarge { .. } => "window",
            Problem::ThresholdExceedsWindow { .. } | Problem::ThresholdWithRate => {
                "failure_threshold"
            }
            Problem::MultiplierWithoutExponential { .. } | Problem::MultiplierBelowOne { .. } => {
                "multiplier"
            }
            Problem::MaxElapsedTooShort { .. } => "max_elapsed",
        }
    }

    /// Whether the problem is the key's presence or its value.
    pub const fn place(&self) -> Place {
        match self {
            Problem::RateNeedsWindow { .. }
            | Problem::SlowRateNeedsSlowCall
            | Problem::MinCallsWithoutRate
            | Problem::ThresholdWithRate
            | Problem::MultiplierWithoutExponential { .. }
            | Problem::PercentileOnly { .. }
            | Problem::AlgorithmOnly { .. } => Place::Key,
            _ => Place::Value,
        }
    }

    /// Writes the problem's words: the one place they are written, for
    /// `Display` and for the compiler's const evaluation alike.
    pub const fn write(&self, w: &mut Words) {
        match *self {
            Problem::Zero { key } => {
                w.key(key).str(" must be at least 1, found 0");
            }
            Problem::TooLarge { key, found, max } => {
                w.key(key).str(" is too large: at most ").u64(max);
                w.str(", found ").u64(found);
            }
            Problem::NotPositive { key } => {
                w.key(key).str(" must be longer than zero");
            }
            Problem::RateOutOfRange { key, found } => {
                w.key(key).str(" must be a share of the calls in (0, 1]");
                w.str(" (0.5 = half of them), found ").f64(found);
            }
            Problem::DurationOutOfRange {
                key,
                found,
                min,
                max,
            } => {
                w.key(key).str(" must be between ").duration(min);
                w.str(" and ").duration(max).str(", found ").duration(found);
            }
            Problem::NumberOutOfRange {
                key,
                found,
                min,
                max,
            } => {
                w.key(key)
                    .str(" must be between ")
                    .f64(min)
                    .str(" and ")
                    .f64(max);
                w.str(", found ").f64(found);
            }
            Problem::BelowOther {
                key,
                found,
                other,
                limit,
            } => {
                w.key(key)
                    .str(" (")
                    .duration(found)
                    .str(") must not be below ");
                w.key(other).str(" (").duration(limit).str(")");
            }
            Problem::RateNeedsWindow { key } => {
                w.key(key).str(" needs a window to measure a rate in: ");
                w.str(WINDOW_HINT);
            }
            Problem::SlowRateNeedsSlowCall => {
                w.str("`slow_call_rate` needs `slow_call`, the duration that makes a call slow (`slow_call = \"2s\"`)");
            }
            Problem::MinCallsWithoutRate => {
                w.str("`min_calls` only applies to `failure_rate` or `slow_call_rate`");
            }
            Problem::MinCallsExceedsWindow { min_calls, window } => {
                w.str("`min_calls` (")
                    .u64(min_calls)
                    .str(") cannot exceed the window of ");
                w.u64(window)
                    .str(" calls: the rate could never be measured");
            }
            Problem::DefaultMinCallsExceedsWindow { min_calls, window } => {
                w.str("a window of ").u64(window);
                w.str(" calls never reaches the default `min_calls` of ")
                    .u64(min_calls);
                w.str(", so the rate could never be measured: add `min_calls = ")
                    .u64(window);
                w.str("` (or fewer), or widen the window");
            }
            Problem::ThresholdExceedsWindow { threshold, window } => {
                w.str("`failure_threshold` (").u64(threshold);
                w.str(") cannot exceed the window of ").u64(window);
                w.str(" calls: that many failures never fit in it");
            }
            Problem::DefaultThresholdExceedsWindow { threshold, window } => {
                w.str("a window of ").u64(window);
                w.str(" calls never holds the default `failure_threshold` of ")
                    .u64(threshold);
                w.str(" failures, so the circuit could never open: add `failure_threshold = ")
                    .u64(window);
                w.str("` (or fewer), or widen the window");
            }
            Problem::ThresholdWithRate => {
                w.str("`failure_threshold` and `failure_rate` are two trip rules; keep one (`failure_rate` trips on the share of failed calls, `failure_threshold` on their number)");
            }
            Problem::WindowTooLarge { found } => {
                w.str("a `window` of ").u64(found);
                w.str(" calls is too large (one byte per call): at most ")
                    .u64(crate::MAX_COUNT_WINDOW);
                w.str(", or use a time window such as `window = \"60s\"`");
            }
            Problem::MultiplierWithoutExponential { backoff } => {
                w.str("`multiplier` only applies to `backoff = \"exponential\"`, not \"");
                w.str(backoff).str("\"");
            }
            Problem::MultiplierBelowOne { found } => {
                w.str("`multiplier` must be at least 1.0 (a delay never shrinks), found ")
                    .f64(found);
            }
            Problem::PercentileOnly { key } => {
                w.key(key)
                    .str(" only applies to a percentile `delay` (`delay = \"p95\"`); ");
                w.str("with a fixed delay it would do nothing: remove it");
            }
            Problem::AlgorithmOnly { key, algorithm } => {
                w.key(key).str(" only applies to `max_concurrent = \"");
                w.str(algorithm)
                    .str("\"`: remove it, or use that algorithm");
            }
            Problem::MaxElapsedTooShort { max_elapsed, delay } => {
                w.str("`max_elapsed` (").duration(max_elapsed);
                w.str(") must be longer than `delay` (").duration(delay);
                w.str("), or no retry could ever run");
            }
        }
    }

    /// Panics with the problem's words: how a bad constant is reported by
    /// the compiler's const evaluation.
    pub const fn panic(&self) -> ! {
        let mut w = Words::new();
        self.write(&mut w);
        panic!("{}", w.as_str())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Words::new();
        self.write(&mut w);
        f.write_str(w.as_str())
    }
}

/// Every problem of one configuration (at most [`Problems::CAPACITY`]; a
/// configuration cannot break more rules than that).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Problems {
    items: [Option<Problem>; Problems::CAPACITY],
    len: usize,
}

impl Default for Problems {
    fn default() -> Self {
        Self::new()
    }
}

impl Problems {
    /// More than any configuration can have.
    pub const CAPACITY: usize = 24;

    /// No problem.
    pub const fn new() -> Self {
        Problems {
            items: [None; Problems::CAPACITY],
            len: 0,
        }
    }

    /// Adds a problem.
    pub const fn push(&mut self, problem: Problem) {
        if self.len < Self::CAPACITY {
            self.items[self.len] = Some(problem);
            self.len += 1;
        }
    }

    /// Adds every problem of `other`.
    pub const fn extend(&mut self, other: &Problems) {
        let mut i = 0;
        while i < other.len {
            if let Some(p) = other.items[i] {
                self.push(p);
            }
            i += 1;
        }
    }

    /// Whether there is none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many there are.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// The first one, if any.
    pub const fn first(&self) -> Option<Problem> {
        self.items[0]
    }

    /// Panics (in const evaluation: fails the build) with the first
    /// problem's words, if there is one.
    pub const fn assert_none(&self) {
        if let Some(p) = self.first() {
            p.panic()
        }
    }

    /// Each problem, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> + '_ {
        self.items[..self.len].iter().flatten()
    }
}

/// A fixed buffer the problems' words are written into, in `const fn`s.
/// Text past its capacity is cut at a character boundary.
#[derive(Debug)]
pub struct Words {
    buf: [u8; 512],
    len: usize,
}

impl Default for Words {
    fn default() -> Self {
        Self::new()
    }
}

impl Words {
    /// An empty buffer.
    pub const fn new() -> Self {
        Words {
            buf: [0; 512],
            len: 0,
        }
    }

    /// The words written so far.
    pub const fn as_str(&self) -> &str {
        let (bytes, _) = self.buf.split_at(self.len);
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => "",
        }
    }

    /// Appends `s` (whole characters only, up to the capacity).
    pub const fn str(&mut self, s: &str) -> &mut Self {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // The length of the character starting at `i`.
            let b = bytes[i];
            let n = if b < 0x80 {
                1
            } else if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else {
                2
            };
            if self.len + n > self.buf.len() {
                return self;
            }
            let mut k = 0;
            while k < n {
                self.buf[self.len] = bytes[i + k];
                self.len += 1;
                k += 1;
            }
            i += n;
        }
        self
    }

    /// Appends `` `key` ``.
    pub const fn key(&mut self, key: &str) -> &mut Self {
        self.str("`").str(key).str("`")
    }

    /// Appends a whole number.
    pub const fn u64(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut len = 0;
        let mut n = n;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while len > 0 {
            len -= 1;
            let d = [digits[len]];
            match core::str::from_utf8(&d) {
                Ok(s) => self.str(s),
                Err(_) => self,
            };
        }
        self
    }

    /// Appends a number with up to 6 decimals, trailing zeros cut (`0.5`,
    /// `1.25`, `-3`, `NaN`, `inf`).
    pub const fn f64(&mut self, x: f64) -> &mut Self {
        if x.is_nan() {
            return self.str("NaN");
        }
        if x.is_sign_negative() && x != 0.0 {
            self.str("-");
        }
        let x = x.abs();
        if x.is_infinite() || x >= 1e15 {
            return self.str("inf");
        }
        let micros = (x * 1e6 + 0.5) as u64;
        self.u64(micros / 1_000_000);
        let mut frac = micros % 1_000_000;
        if frac != 0 {
            self.str(".");
            let mut scale = 100_000;
            while frac != 0 {
                self.u64(frac / scale);
                frac %= scale;
                scale /= 10;
            }
        }
        self
    }

    /// Appends a duration in its largest whole unit: `90s`, `250ms`, `1500ms`,
    /// `10us`, `7ns`.
    pub const fn duration(&mut self, d: Duration) -> &mut Self {
        let nanos = d.as_nanos();
        let (n, unit) = if nanos.is_multiple_of(1_000_000_000) {
            (nanos / 1_000_000_000, "s")
        } else if nanos.is_multiple_of(1_000_000) {
            (nanos / 1_000_000, "ms")
        } else if nanos.is_multiple_of(1_000) {
            (nanos / 1_000, "us")
        } else {
            (nanos, "ns")
        };
        let n = if n > u64::MAX as u128 {
            u64::MAX
        } else {
            n as u64
        };
        self.u64(n).str(unit)
    }
}
