//! Retry policies: how many attempts, and how long to wait between them.
//!
//! The `#[retry]` attribute re-runs the function body inline (so `&mut self`
//! and `Send` futures work); this module holds the bookkeeping it calls:
//! attempt counting, the next delay, and the events.

mod backoff;
mod budget;

use std::num::NonZeroU32;
use std::time::Duration;

use resilience_spec::{RetryValues, Value};
use tokio::time::Instant;

use crate::ConfigError;
pub use backoff::{Backoff, BackoffKind, Delays, Jitter};
pub use budget::{BudgetStatus, RetryBudget};

/// How often to try a call and how long to wait in between.
///
/// ```
/// use std::time::Duration;
/// use resilience::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new(3, Backoff::exponential(Duration::from_secs(1)))?;
/// // 3 attempts: the first call plus 2 retries, after 1 s and 2 s.
/// assert_eq!(policy.delays().collect::<Vec<_>>(), [1, 2].map(Duration::from_secs));
///
/// // Key by key, held to the rules of the `#[retry]` attribute:
/// let policy = RetryPolicy::builder()
///     .max_attempts(5)
///     .delay(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(2))
///     .max_elapsed(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(policy.max_elapsed(), Some(Duration::from_secs(10)));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: NonZeroU32,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
}

impl RetryPolicy {
    /// The defaults: 3 attempts, exponential backoff from 1 s.
    pub const DEFAULT: RetryPolicy = RetryPolicy::from_checked(&RetryValues::NONE);

    /// `max_attempts` counts the first call (so `1` never retries).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule broken, as
    /// [`RetryPolicyBuilder::build`] does.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Result<Self, ConfigError> {
        Self::builder()
            .max_attempts(max_attempts)
            .backoff_schedule(backoff)
            .build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            values: RetryValues::NONE,
        }
    }

    /// The policy of values that passed [`RetryValues::check`].
    /// The policy of `values`, held to the attribute's rules.
    pub(crate) fn from_values(values: &RetryValues) -> Result<Self, ConfigError> {
        crate::spec::checked(values.check())?;
        Ok(RetryPolicy::from_checked(values))
    }

    pub(crate) const fn from_checked(v: &RetryValues) -> Self {
        let attempts = match v.max_attempts.given() {
            Some(n) => n,
            None => RetryValues::DEFAULT_MAX_ATTEMPTS,
        };
        RetryPolicy {
            max_attempts: match NonZeroU32::new(attempts as u32) {
                Some(n) => n,
                None => NonZeroU32::MIN, // unreachable for checked values
            },
            backoff: Backoff::from_checked(v),
            max_elapsed: v.max_elapsed.given(),
        }
    }

    /// The bound on the whole retried call, if any (`max_elapsed`): an
    /// attempt still running at the deadline is cancelled (it fails with
    /// a timeout [`Error`](crate::Error)), and no sleep starts that
    /// would end past it.
    pub const fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// Attempts in all, the first call included (`max_attempts`).
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

/// Builds a [`RetryPolicy`] key by key, held to exactly the rules of the
/// `#[retry]` attribute (the same check, the same words); every key not set
/// keeps its default.
#[derive(Debug, Clone)]
#[must_use = "call `.build()` to get the policy"]
pub struct RetryPolicyBuilder {
    values: RetryValues,
}

impl RetryPolicyBuilder {
    /// Attempts in all, the first call included (default 3; at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.values.max_attempts = Value::Given(n.into());
        self
    }

    /// How the delay grows (default exponential).
    pub fn backoff(mut self, kind: BackoffKind) -> Self {
        self.values.backoff = Value::Given(kind);
        self
    }

    /// Every key of `schedule`: its kind, delay, cap, multiplier and jitter.
    pub fn backoff_schedule(mut self, schedule: Backoff) -> Self {
        self.values = schedule.values(self.values);
        self
    }

    /// The first delay (default 1 s).
    pub fn delay(mut self, d: Duration) -> Self {
        self.values.delay = Value::Given(d);
        self
    }

    /// The cap on each delay (not below `delay`).
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.values.max_delay = Value::Given(d);
        self
    }

    /// The growth factor of the exponential backoff (default 2; at least 1).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.values.multiplier = Value::Given(m);
        self
    }

    /// The randomisation of each delay (default none).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.values.jitter = Value::Given(jitter);
        self
    }

    /// The bound on the whole retried call (longer than `delay`).
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.values.max_elapsed = Value::Given(d);
        self
    }

    /// The policy, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule the configuration breaks, in the
    /// words the attribute uses: `max_attempts` of zero, `max_delay` below
    /// `delay`, a `multiplier` below 1 or with a backoff other than
    /// exponential, `max_elapsed` not longer than `delay`.
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        crate::spec::checked(self.values.check())?;
        Ok(RetryPolicy::from_checked(&self.values))
    }
}

/// Every key: `max_attempts = 3, backoff = exponential, delay = 1s,
/// multiplier = 2, jitter = none` (and `max_delay`, `max_elapsed` when set).
impl std::fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.backoff;
        write!(
            f,
            "max_attempts = {}, backoff = {}, delay = {:?}",
            self.max_attempts,
            b.kind(),
            b.delay()
        )?;
        if let Some(max) = b.max_delay() {
            write!(f, ", max_delay = {max:?}")?;
        }
        if b.kind() == BackoffKind::Exponential {
            write!(f, ", multiplier = {}", b.multiplier())?;
        }
        write!(f, ", jitter = {}", b.jitter())?;
        if let Some(max) = self.max_elapsed {
            write!(f, ", max_elapsed = {max:?}")?;
        }
        Ok(())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The bookkeeping of one retried call: attempts, delays, the deadline of
/// `max_elapsed`, the retry budget, and the events.
#[derive(Debug)]
pub struct RetryState<'a> {
    name: &'static str,
    /// A copy: a state owns what it needs but its budget, so that a
    /// `'static` future (a tower retry) can hold one.
    policy: RetryPolicy,
    attempt: u32,
    delays: Delays,
    deadline: Option<Instant>,
    budget: Option<BudgetRef<'a>>,
    /// The delays slept so far, recorded for a test's assertions (feature
    /// `testing`; empty, so never allocated, outside a test).
    #[cfg(feature = "testing")]
    slept: Vec<Duration>,
}

/// The call is over: a test (feature `testing`) records its attempts and
/// sleeps (`resilience::testing::attempts`).
#[cfg(feature = "testing")]
impl Drop for RetryState<'_> {
    fn drop(&mut self) {
        crate::testing::record_retry(self.name, self.attempt, std::mem::take(&mut self.slept));
    }
}

/// A retry budget, borrowed (a call site's, which lives for the program) or
/// shared (held by a `'static` future).
#[derive(Debug)]
enum BudgetRef<'a> {
    Borrowed(&'a RetryBudget),
    Shared(std::sync::Arc<RetryBudget>),
}

impl std::ops::Deref for BudgetRef<'_> {
    type Target = RetryBudget;
    fn deref(&self) -> &RetryBudget {
        match self {
            BudgetRef::Borrowed(b) => b,
            BudgetRef::Shared(b) => b,
        }
    }
}

impl<'a> RetryState<'a> {
    /// Starts a call: the first attempt is about to run.
    pub fn new(name: &'static str, policy: &RetryPolicy) -> Self {
        let policy = *policy;
        RetryState {
            name,
            policy,
            attempt: 1,
            delays: policy.backoff.delays(),
            // A deadline past the end of the clock is no deadline.
            deadline: policy
                .max_elapsed
                .and_then(|d| Instant::now().checked_add(d)),
            budget: None,
            #[cfg(feature = "testing")]
            slept: Vec::new(),
        }
    }

    /// Draws retries from `budget`; this call is deposited into it now.
    pub fn with_budget(mut self, budget: &'a RetryBudget) -> Self {
        budget.deposit();
        self.budget = Some(BudgetRef::Borrowed(budget));
        self
    }

    /// [`with_budget`](Self::with_budget) with a budget this state holds a
    /// reference to (for a state that outlives the caller's borrow).
    pub fn with_shared_budget(mut self, budget: std::sync::Arc<RetryBudget>) -> Self {
        budget.deposit();
        self.budget = Some(BudgetRef::Shared(budget));
        self
    }

    /// The attempt running now (1 for the first call).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the whole call must be over (`max_elapsed`), if anywhen.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// After a failed attempt: the delay to sleep before the next one, or
    /// `None` to give up (see [`next_delay_after`](Self::next_delay_after)).
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_after(None)
    }

    /// After a failed attempt: the delay before the next one, or `None` to
    /// give up because the attempts are used up, the sleep would end past the
    /// `max_elapsed` deadline, or the retry budget is spent. `hint` (the
    /// server's `Retry-After`) replaces the computed delay, capped by
    /// `max_delay`. Emits a `debug` event per retry, a `warn` event when the
    /// attempts are used up.
    pub fn next_delay_after(&mut self, hint: Option<Duration>) -> Option<Duration> {
        let max = self.policy.max_attempts.get();
        if self.attempt >= max {
            if max > 1 {
                crate::metrics::retries_exhausted(self.name);
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
        let computed = self.delays.next().unwrap_or_default();
        let delay = match hint {
            Some(hint) => self
                .policy
                .backoff
                .max_delay()
                .map_or(hint, |max| hint.min(max)),
            None => computed,
        };
        if let Some(deadline) = self.deadline {
            // A delay past the end of the clock (a huge `retry_after` hint)
            // certainly ends past the deadline.
            if Instant::now()
                .checked_add(delay)
                .is_none_or(|end| end >= deadline)
            {
                tracing::debug!(
                    target: "resilience",
                    retry = self.name,
                    attempt = self.attempt,
                    ?delay,
                    "`{}` gives up after attempt {}: sleeping {delay:?} would pass max_elapsed",
                    self.name,
                    self.attempt
                );
                crate::metrics::retries_exhausted(self.name);
                return None;
            }
        }
        if let Some(budget) = &self.budget {
            if !budget.withdraw() {
                tracing::warn!(
                    target: "resilience",
                    retry = self.name,
                    budget = budget.name(),
                    "`{}` gives up after attempt {}: retry budget `{}` is spent",
                    self.name,
                    self.attempt,
                    budget.name()
                );
                crate::metrics::retries_exhausted(self.name);
                return None;
            }
        }
        tracing::debug!(
            target: "resilience",
            retry = self.name,
            attempt = self.attempt,
            ?delay,
            "`{}` attempt {} failed; retrying in {delay:?}",
            self.name,
            self.attempt
        );
        crate::metrics::retry(self.name);
        self.attempt += 1;
        #[cfg(feature = "testing")]
        if crate::testing::in_test() {
            self.slept.push(delay);
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_elapsed_reads_back_as_set() {
        let bounded = RetryPolicy::builder()
            .max_elapsed(Duration::from_secs(5))
            .build()
            .unwrap();
        assert_eq!(bounded.max_elapsed(), Some(Duration::from_secs(5)));
        assert_eq!(RetryPolicy::builder().build().unwrap().max_elapsed(), None);
    }

    #[test]
    fn display_writes_the_multiplier_of_an_exponential_backoff_only() {
        let exponential = RetryPolicy::builder()
            .backoff(BackoffKind::Exponential)
            .delay(Duration::from_millis(100))
            .multiplier(3.0)
            .build()
            .unwrap();
        assert_eq!(
            exponential.to_string(),
            "max_attempts = 3, backoff = exponential, delay = 100ms, multiplier = 3, jitter = none"
        );
        let fixed = RetryPolicy::new(4, Backoff::fixed(Duration::from_millis(10))).unwrap();
        assert_eq!(
            fixed.to_string(),
            "max_attempts = 4, backoff = fixed, delay = 10ms, jitter = none"
        );
    }

    #[test]
    fn giving_up_is_reported_only_where_there_were_retries() {
        let events = crate::test_events::Events::at(tracing::Level::WARN);
        tracing::subscriber::with_default(events.clone(), || {
            let once = RetryPolicy::new(1, Backoff::fixed(Duration::from_millis(10))).unwrap();
            let mut s = RetryState::new("once", &once);
            assert_eq!(s.next_delay(), None);
            assert!(
                events.lines().is_empty(),
                "one attempt: nothing retried, nothing to report"
            );
            let twice = RetryPolicy::new(2, Backoff::fixed(Duration::from_millis(10))).unwrap();
            let mut s = RetryState::new("twice", &twice);
            assert!(s.next_delay().is_some());
            assert_eq!(s.next_delay(), None);
        });
        let line = events.only_line();
        assert!(line.contains("`twice` failed after 2 attempts"), "{line}");
    }

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
            Backoff::fixed(Duration::from_secs(2)).with_max_delay(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hint_replaces_the_delay_capped_by_max_delay() {
        let p = RetryPolicy::new(
            5,
            Backoff::fixed(Duration::from_secs(1)).with_max_delay(Duration::from_secs(10)),
        )
        .unwrap();
        let mut s = RetryState::new("t", &p);
        assert_eq!(
            s.next_delay_after(Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            s.next_delay_after(Some(Duration::from_secs(60))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(s.next_delay_after(None), Some(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn no_sleep_starts_that_would_end_past_max_elapsed() {
        let p = RetryPolicy::builder()
            .max_attempts(10)
            .backoff(BackoffKind::Fixed)
            .delay(Duration::from_secs(2))
            .max_elapsed(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut s = RetryState::new("t", &p);
        assert_eq!(s.next_delay(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.next_delay(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.next_delay(), None, "4 s + 2 s > 5 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_ends_the_retry() {
        let budget = RetryBudget::new("b", Duration::from_secs(1), 1, 0.0).unwrap();
        let p = RetryPolicy::new(10, Backoff::fixed(Duration::ZERO)).unwrap();
        let mut s = RetryState::new("t", &p).with_budget(&budget);
        assert!(s.next_delay().is_some());
        assert_eq!(s.next_delay(), None);
        assert_eq!(budget.status().calls, 1);
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
