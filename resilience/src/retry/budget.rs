//! Retry budgets: a shared allowance of retries that scales with traffic.
//!
//! Finagle's and tower's design: every call deposits `retry_ratio` of a
//! token, every retry withdraws one, over a sliding `ttl`; on top of that,
//! `min_per_sec` retries per second are always allowed. When a dependency is
//! down, every call fails and wants retries, but the budget only grows with
//! calls: retries stay a bounded fraction of traffic instead of multiplying
//! it (the retry storm).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::buckets::TimeBuckets;
use resilience_spec::{BudgetValues, Value};

use crate::ConfigError;

/// A named retry budget: retries limited to a share of recent calls plus a
/// floor per second, so an outage cannot turn into a retry storm.
///
/// ```
/// use std::time::Duration;
/// use resilience::RetryBudget;
///
/// // 20 % of the calls of the last 10 s may be retried, plus 1 retry per second.
/// let budget = RetryBudget::new("api", Duration::from_secs(10), 1, 0.2)?;
/// for _ in 0..100 {
///     budget.deposit();
/// }
/// let granted = (0..100).filter(|_| budget.withdraw()).count();
/// assert_eq!(granted, 30); // 10 s × 1/s + 20 % of 100
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    name: Arc<str>,
    ttl: Duration,
    min_per_sec: u32,
    retry_ratio: f64,
    /// `[deposits, withdrawals]` over the last `ttl`.
    buckets: TimeBuckets<2>,
    epoch: Instant,
}

/// A point-in-time view of a retry budget.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BudgetStatus {
    /// The budget's name.
    pub name: Arc<str>,
    /// Calls deposited in the window.
    pub calls: u64,
    /// Retries withdrawn in the window.
    pub retries: u64,
    /// Retries that may still be withdrawn now.
    pub available: u64,
    /// The window.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "ttl_seconds", serialize_with = "crate::serde_impls::secs")
    )]
    pub ttl: Duration,
    /// Retries per second always allowed.
    pub min_per_sec: u32,
    /// Share of calls that may be retried.
    pub retry_ratio: f64,
}

impl RetryBudget {
    /// The defaults (tower's): a 10 s window, 10 retries per second, 20 % of calls.
    pub fn with_defaults(name: impl Into<Arc<str>>) -> Self {
        Self::build(
            name.into(),
            BudgetValues::DEFAULT_TTL,
            BudgetValues::DEFAULT_MIN_PER_SEC as u32,
            BudgetValues::DEFAULT_RETRY_RATIO,
        )
    }

    /// A budget allowing `min_per_sec` retries per second plus `retry_ratio`
    /// of the calls made in the last `ttl`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `ttl` is not between 1 s and 60 s or `retry_ratio`
    /// is not between 0 and 1000.
    pub fn new(
        name: impl Into<Arc<str>>,
        ttl: Duration,
        min_per_sec: u32,
        retry_ratio: f64,
    ) -> Result<Self, ConfigError> {
        let values = BudgetValues {
            ttl: Value::Given(ttl),
            min_per_sec: Value::Given(min_per_sec.into()),
            retry_ratio: Value::Given(retry_ratio),
        };
        crate::spec::checked(values.check())?;
        Ok(Self::build(name.into(), ttl, min_per_sec, retry_ratio))
    }

    /// A budget of checked-or-not `values` (absent keys take the defaults).
    pub(crate) fn from_values(name: &str, values: &BudgetValues) -> Result<Self, ConfigError> {
        crate::spec::checked(values.check())?;
        let min_per_sec = values
            .min_per_sec
            .given()
            .unwrap_or(BudgetValues::DEFAULT_MIN_PER_SEC);
        Ok(Self::build(
            name.into(),
            values.ttl.given().unwrap_or(BudgetValues::DEFAULT_TTL),
            u32::try_from(min_per_sec).unwrap_or(u32::MAX),
            values
                .retry_ratio
                .given()
                .unwrap_or(BudgetValues::DEFAULT_RETRY_RATIO),
        ))
    }

    /// Whether `other` has the same settings.
    pub(crate) fn same_settings(&self, other: &RetryBudget) -> bool {
        (self.ttl, self.min_per_sec, self.retry_ratio)
            == (other.ttl, other.min_per_sec, other.retry_ratio)
    }

    fn build(name: Arc<str>, ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Self {
        RetryBudget {
            name,
            ttl,
            min_per_sec,
            retry_ratio,
            buckets: TimeBuckets::new(ttl),
            epoch: Instant::now(),
        }
    }

    /// The budget's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn now(&self) -> u64 {
        let since = Instant::now().saturating_duration_since(self.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn available_at(&self, now: u64) -> (u64, u64, u64) {
        let [calls, retries] = self.buckets.totals(now);
        let floor = u64::from(self.min_per_sec).saturating_mul(self.ttl.as_secs());
        let earned = (calls as f64 * self.retry_ratio) as u64;
        let allowed = floor.saturating_add(earned);
        (calls, retries, allowed.saturating_sub(retries))
    }

    /// Records one call (its first attempt).
    pub fn deposit(&self) {
        self.buckets.add(self.now(), [1, 0]);
    }

    /// Takes one retry from the budget; `false` (and nothing taken) when the
    /// budget is spent. Under heavy concurrency a few retries more than the
    /// budget may be granted: the check and the withdrawal are two steps.
    pub fn withdraw(&self) -> bool {
        let now = self.now();
        if self.available_at(now).2 == 0 {
            return false;
        }
        self.buckets.add(now, [0, 1]);
        true
    }

    /// A point-in-time view.
    pub fn status(&self) -> BudgetStatus {
        let (calls, retries, available) = self.available_at(self.now());
        BudgetStatus {
            name: self.name.clone(),
            calls,
            retries,
            available,
            ttl: self.ttl,
            min_per_sec: self.min_per_sec,
            retry_ratio: self.retry_ratio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_floor_refills_as_the_window_slides() {
        let b = RetryBudget::new("t", Duration::from_secs(2), 1, 0.0).unwrap();
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw(), "2 s × 1/s spent");
        assert_eq!(b.status().available, 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.withdraw(), "the old withdrawals left the window");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_earn_their_ratio() {
        let b = RetryBudget::new("t", Duration::from_secs(10), 0, 0.5).unwrap();
        assert!(!b.withdraw());
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!((0..10).filter(|_| b.withdraw()).count(), 5);
        let s = b.status();
        assert_eq!((s.calls, s.retries, s.available), (10, 5, 0));
    }

    #[test]
    fn bad_settings_are_errors() {
        let err = RetryBudget::new("t", Duration::ZERO, 1, -1.0).unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
    }
}
