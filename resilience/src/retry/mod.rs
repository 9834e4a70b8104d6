//! Retry policies: how many attempts, and how long to wait between them.
//!
//! The `#[retry]` attribute re-runs the function body inline (so `&mut self`
//! and `Send` futures work); this module holds the bookkeeping it calls:
//! attempt counting, the next delay, and the events.

mod backoff;

use std::num::NonZeroU32;
use std::time::Duration;

pub use backoff::{Backoff, BackoffKind, Delays, Jitter};

/// How often to try a call and how long to wait in between.
///
/// ```
/// use std::time::Duration;
/// use resilience::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new(3, Backoff::exponential(Duration::from_secs(1)))?;
/// // 3 attempts: the first call plus 2 retries, after 1 s and 2 s.
/// assert_eq!(policy.delays().collect::<Vec<_>>(), [1, 2].map(Duration::from_secs));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: NonZeroU32,
    backoff: Backoff,
}

impl RetryPolicy {
    /// The defaults: 3 attempts, exponential backoff from 1 s.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: match NonZeroU32::new(3) {
            Some(n) => n,
            None => unreachable!(),
        },
        backoff: Backoff::DEFAULT,
    };

    /// `max_attempts` counts the first call (so `1` never retries).
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::ConfigError) if `max_attempts` is zero or the
    /// backoff's `max_delay` is below its base delay.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Result<Self, crate::ConfigError> {
        let mut problems = Vec::new();
        let max_attempts = NonZeroU32::new(max_attempts);
        if max_attempts.is_none() {
            problems.push("`max_attempts` must be at least 1, got 0".to_owned());
        }
        if let Some(max) = backoff.max() {
            if max < backoff.base() {
                problems.push(format!(
                    "`max_delay` ({max:?}) must not be below `delay` ({:?})",
                    backoff.base()
                ));
            }
        }
        match max_attempts {
            Some(max_attempts) if problems.is_empty() => Ok(RetryPolicy {
                max_attempts,
                backoff,
            }),
            _ => Err(crate::ConfigError::new(problems)),
        }
    }

    /// Builds a policy in a `const` context from values the macros validated.
    #[doc(hidden)]
    pub const fn __from_macro(max_attempts: u32, backoff: Backoff) -> Self {
        RetryPolicy {
            max_attempts: match NonZeroU32::new(max_attempts) {
                Some(n) => n,
                None => panic!("resilience: max_attempts must be at least 1"),
            },
            backoff,
        }
    }

    /// Attempts in all, the first call included.
    pub const fn max_attempts(&self) -> NonZeroU32 {
        self.max_attempts
    }

    /// The backoff schedule.
    pub const fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The delays this policy sleeps, one per retry (`max_attempts - 1` of them).
    pub fn delays(&self) -> std::iter::Take<Delays> {
        self.backoff
            .delays()
            .take(self.max_attempts.get() as usize - 1)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The bookkeeping of one retried call.
#[derive(Debug)]
pub struct RetryState<'a> {
    name: &'a str,
    policy: &'a RetryPolicy,
    attempt: u32,
    delays: Delays,
}

impl<'a> RetryState<'a> {
    /// Starts a call: the first attempt is about to run.
    pub fn new(name: &'a str, policy: &'a RetryPolicy) -> Self {
        RetryState {
            name,
            policy,
            attempt: 1,
            delays: policy.backoff.delays(),
        }
    }

    /// The attempt running now (1 for the first call).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: the delay to sleep before the next one, or
    /// `None` when the attempts are used up. Emits a `debug` event for each
    /// retry and a `warn` event when giving up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= self.policy.max_attempts.get() {
            if self.policy.max_attempts.get() > 1 {
                tracing::warn!(
                    target: "resilience",
                    retry = self.name,
                    attempts = self.attempt,
                    "`{}` failed after {} attempts",
                    self.name,
                    self.attempt
                );
            }
            return None;
        }
        let delay = self.delays.next().unwrap_or_default();
        tracing::debug!(
            target: "resilience",
            retry = self.name,
            attempt = self.attempt,
            ?delay,
            "`{}` attempt {} failed; retrying in {delay:?}",
            self.name,
            self.attempt
        );
        self.attempt += 1;
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_attempts_counts_the_first_call() {
        let p = RetryPolicy::new(3, Backoff::fixed(Duration::from_millis(10))).unwrap();
        let mut s = RetryState::new("t", &p);
        assert_eq!(s.attempt(), 1);
        assert_eq!(s.next_delay(), Some(Duration::from_millis(10)));
        assert_eq!(s.attempt(), 2);
        assert_eq!(s.next_delay(), Some(Duration::from_millis(10)));
        assert_eq!(s.attempt(), 3);
        assert_eq!(s.next_delay(), None);
        assert_eq!(s.next_delay(), None);
    }

    #[test]
    fn one_attempt_never_retries() {
        let p = RetryPolicy::new(1, Backoff::DEFAULT).unwrap();
        assert_eq!(p.delays().count(), 0);
        assert_eq!(RetryState::new("t", &p).next_delay(), None);
    }

    #[test]
    fn invalid_policies_are_errors() {
        let err = RetryPolicy::new(
            0,
            Backoff::fixed(Duration::from_secs(2)).max_delay(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
    }

    #[test]
    fn defaults_are_three_attempts_exponential_from_one_second() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts().get(), 3);
        assert_eq!(
            p.delays().collect::<Vec<_>>(),
            [1, 2].map(Duration::from_secs)
        );
    }
}
