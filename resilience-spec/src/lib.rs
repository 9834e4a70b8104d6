//! The policy specification of the `resilience` crate: for every policy
//! (circuit breaker, retry, timeout, bulkhead, retry budget, rate limit,
//! hedge), each key's
//! name, default, valid range and cross-key rules, and one `check` that
//! returns every problem, each naming its key.
//!
//! Depend on `resilience`, not on this crate: it is the one place both
//! doors to a configuration consult, so that they agree word for word:
//!
//! - the attribute macros parse the syntax, fill a `*Values` struct with what
//!   the user wrote ([`Value::Given`]), or [`Value::Unknown`] for a constant
//!   the macro cannot read, and report every [`Problem`] of
//!   [`BreakerValues::check`] (and the others) spanned on its key's tokens;
//!   constants are checked by the same `check`, run by the compiler's const
//!   evaluation;
//! - the runtime builders (`BreakerConfig::builder()`, …) fill the same
//!   struct and return the same problems in a `ConfigError`.
//!
//! Every `check` is a `const fn`: nothing here allocates until a problem is
//! turned into words ([`Problem`]'s `Display`).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![no_std]

extern crate alloc;

mod adaptive;
mod breaker;
mod choice;
pub mod duration;
mod guard;
pub mod hedge;
pub mod keys;
mod problem;
mod rate;
mod retry;

pub use adaptive::{check_gradient2, AdaptiveAlgorithm, AdaptiveValues};
pub use breaker::{BreakerValues, WindowValue, MAX_COUNT_WINDOW};
pub use choice::{BackoffKind, Jitter, UnknownChoice};
pub use guard::{BudgetValues, BulkheadValues, TimeoutValues};
pub use hedge::{HedgeDelayValue, HedgeValues};
pub use problem::{Place, Problem, Problems};
pub use rate::RateLimitValues;
pub use retry::RetryValues;

/// A key's value as the spec sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Value<T> {
    /// Not written: the key's default applies.
    #[default]
    Absent,
    /// Written, with this value.
    Given(T),
    /// Written as an expression whose value is not known yet (a constant,
    /// seen by the macro before const evaluation): rules that need the value
    /// wait for it; rules that only need the key to be present apply.
    Unknown,
}

impl<T: Copy> Value<T> {
    /// The value, if given.
    pub const fn given(self) -> Option<T> {
        match self {
            Value::Given(v) => Some(v),
            _ => None,
        }
    }

    /// The value in force: the given one, or `default` when absent; `None`
    /// while unknown.
    pub const fn or(self, default: T) -> Option<T> {
        match self {
            Value::Given(v) => Some(v),
            Value::Absent => Some(default),
            Value::Unknown => None,
        }
    }

    /// Whether the key was written (with a known value or not).
    pub const fn is_present(self) -> bool {
        !matches!(self, Value::Absent)
    }
}

/// The candidate closest to `word`, if it is close enough to be a typo (an
/// edit distance of at most a third of its length, and at least 2): the
/// "did you mean" of unknown keys, units and choices alike.
///
/// ```
/// use resilience_spec::did_you_mean;
///
/// let keys = ["max_attempts", "backoff", "delay"];
/// assert_eq!(did_you_mean("max_attempt", keys), Some("max_attempts"));
/// assert_eq!(did_you_mean("colour", keys), None);
/// ```
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The largest value of a count (`u32::MAX`).
pub const MAX_COUNT: u64 = u32::MAX as u64;

/// Checks a count that must be at least 1 (and fit in a `u32`).
const fn count(problems: &mut Problems, key: &'static str, value: Value<u64>) {
    match value.given() {
        Some(0) => problems.push(Problem::Zero { key }),
        Some(n) if n > MAX_COUNT => problems.push(Problem::TooLarge {
            key,
            found: n,
            max: MAX_COUNT,
        }),
        _ => {}
    }
}

/// Checks a duration that must be positive.
const fn positive(problems: &mut Problems, key: &'static str, value: Value<core::time::Duration>) {
    if let Some(d) = value.given() {
        if d.is_zero() {
            problems.push(Problem::NotPositive { key });
        }
    }
}

/// Checks a share in (0, 1].
const fn rate(problems: &mut Problems, key: &'static str, value: Value<f64>) {
    if let Some(r) = value.given() {
        // Written so that NaN fails too.
        if !(r > 0.0 && r <= 1.0) {
            problems.push(Problem::RateOutOfRange { key, found: r });
        }
    }
}

#[cfg(test)]
mod tests;
