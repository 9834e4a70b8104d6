//! The health view of a registry: one verdict per policy, and the worst of them.
//!
//! [`Registry::health`] reads the [`Snapshot`] and judges each entry:
//!
//! | policy | [`Healthy`](HealthState::Healthy) | [`Degraded`](HealthState::Degraded) | [`Open`](HealthState::Open) |
//! |---|---|---|---|
//! | circuit breaker | closed with fewer failures pending than half of what opens it; disabled | closed with at least half of what opens it pending; half-open | open; forced open |
//! | bulkhead | a slot is free | every slot is taken | never |
//! | retry budget | a retry may be withdrawn, or none was spent | exhausted: retries spent the allowance | never |
//!
//! A breaker shared through Redis (feature `redis`) ends its detail with its
//! place in the fleet: `"open, retry in 12s; shared by 8 instances, last
//! changed by 4121-9f2c0b1e"`.
//!
//! "What opens it" is the breaker's trip rule: `failure_threshold`
//! consecutive failures (no window), `failure_threshold` failures in the
//! window, or the window's failure rate reaching `failure_rate` (Degraded
//! from half that rate on, once a call failed).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Registry, Snapshot};
use crate::{BreakerStatus, BudgetStatus, BulkheadStatus, CircuitState};

/// The verdict on one policy, or on all of them; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum HealthState {
    /// Working normally.
    Healthy,
    /// Still letting calls through, but close to a limit or recovering: a
    /// breaker with failures pending or probing, a full bulkhead, a spent
    /// retry budget.
    Degraded,
    /// Rejecting calls: a breaker is open (or forced open).
    Open,
}

impl HealthState {
    /// The lower-case name (`"healthy"`, `"degraded"`, `"open"`), as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Open => "open",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one breaker, bulkhead or retry budget.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PolicyHealth {
    /// `"circuit_breaker"`, `"bulkhead"` or `"retry_budget"`.
    pub kind: &'static str,
    /// The policy's name.
    pub name: Arc<str>,
    /// The verdict.
    pub state: HealthState,
    /// Why, for a person: `"3 of 5 failures"`, `"open, retry in 12s"`.
    pub detail: String,
}

/// The health of everything in a [`Registry`]: see [`Registry::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Health {
    /// The worst state of all policies ([`Healthy`](HealthState::Healthy)
    /// when there are none).
    pub status: HealthState,
    /// Every breaker, then every bulkhead, then every retry budget, each
    /// sorted by name.
    pub policies: Vec<PolicyHealth>,
}

impl Health {
    /// The kind of a circuit breaker's entry.
    pub const CIRCUIT_BREAKER: &'static str = "circuit_breaker";
    /// The kind of a bulkhead's entry.
    pub const BULKHEAD: &'static str = "bulkhead";
    /// The kind of a retry budget's entry.
    pub const RETRY_BUDGET: &'static str = "retry_budget";

    /// The verdict of every policy of a snapshot, and the worst of them.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let policies: Vec<_> = snapshot
            .breakers
            .iter()
            .map(breaker)
            .chain(snapshot.bulkheads.iter().map(bulkhead))
            .chain(snapshot.retry_budgets.iter().map(budget))
            .collect();
        let status = policies
            .iter()
            .map(|p| p.state)
            .max()
            .unwrap_or(HealthState::Healthy);
        Health { status, policies }
    }

    /// Whether every policy is [`Healthy`](HealthState::Healthy). A
    /// [`Degraded`](HealthState::Degraded) registry still serves calls: a
    /// readiness check that should fail only while calls are rejected
    /// compares [`status`](Self::status) with [`HealthState::Open`].
    pub fn is_healthy(&self) -> bool {
        self.status == HealthState::Healthy
    }

    /// The entry of the policy of `kind` ([`Health::CIRCUIT_BREAKER`], …)
    /// named `name`, if present.
    pub fn policy(&self, kind: &str, name: &str) -> Option<&PolicyHealth> {
        self.policies
            .iter()
            .find(|p| p.kind == kind && &*p.name == name)
    }
}

impl Registry {
    /// The health of every breaker, bulkhead and retry budget, judged from
    /// [`snapshot`](Self::snapshot), with the worst verdict as
    /// [`Health::status`].
    ///
    /// - A breaker is [`Open`](HealthState::Open) while open or forced open,
    ///   [`Degraded`](HealthState::Degraded) while half-open or while closed
    ///   with at least half of what opens it pending (half of
    ///   `failure_threshold`, or half of `failure_rate` once a call in the
    ///   window failed), and [`Healthy`](HealthState::Healthy) otherwise,
    ///   disabled included (every call runs).
    /// - A bulkhead is Degraded while every slot is taken, Healthy otherwise.
    /// - A retry budget is Degraded while exhausted (no retry may be
    ///   withdrawn and retries were spent in its window), Healthy otherwise.
    ///
    /// ```
    /// use resilience::{BreakerConfig, Health, HealthState, Outcome, Registry};
    ///
    /// let registry = Registry::new();
    /// let config = BreakerConfig::builder().failure_threshold(4).build()?;
    /// let breaker = registry.breaker("payments", &config);
    /// assert!(registry.health().is_healthy());
    ///
    /// for _ in 0..2 {
    ///     breaker.try_acquire()?.record(Outcome::Failure);
    /// }
    /// let health = registry.health();
    /// assert_eq!(health.status, HealthState::Degraded);
    /// let payments = health.policy(Health::CIRCUIT_BREAKER, "payments").unwrap();
    /// assert_eq!(payments.detail, "2 of 4 failures");
    ///
    /// registry.force_open("payments");
    /// assert_eq!(registry.health().status, HealthState::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Health {
        Health::from_snapshot(&self.snapshot())
    }
}

/// A shared breaker's part of its detail: `"shared by 8 instances, last
/// changed by 4121-9f2c0b1e"`.
#[cfg(feature = "redis")]
fn fleet_detail(fleet: &crate::BreakerFleetStatus) -> String {
    let instances = match fleet.instances {
        1 => "shared by 1 instance".to_owned(),
        n => format!("shared by {n} instances"),
    };
    match &fleet.last_change_by {
        Some(by) => format!("{instances}, last changed by {by}"),
        None => instances,
    }
}

/// Input: a breaker's status. Output: its verdict (rules on
/// [`Registry::health`]).
fn breaker(s: &BreakerStatus) -> PolicyHealth {
    let (state, detail) = match s.state {
        CircuitState::Closed => closed(s),
        CircuitState::HalfOpen => (
            HealthState::Degraded,
            format!(
                "half-open, {} of {} probes succeeded",
                s.probe_successes, s.success_threshold
            ),
        ),
        CircuitState::Open => (
            HealthState::Open,
            match s.retry_after {
                Some(d) if !d.is_zero() => format!("open, retry in {}", Rounded(d)),
                _ => "open, probe due".to_owned(),
            },
        ),
        CircuitState::ForcedOpen => (HealthState::Open, "forced open until reset".to_owned()),
        CircuitState::Disabled => (
            HealthState::Healthy,
            "disabled until reset, every call runs".to_owned(),
        ),
    };
    #[cfg(feature = "redis")]
    let detail = match &s.fleet {
        Some(fleet) => format!("{detail}; {}", fleet_detail(fleet)),
        None => detail,
    };
    PolicyHealth {
        kind: Health::CIRCUIT_BREAKER,
        name: s.name.clone(),
        state,
        detail,
    }
}

/// Input: a closed breaker's status. Output: Degraded from half of its trip
/// rule on.
fn closed(s: &BreakerStatus) -> (HealthState, String) {
    let threshold = s.failure_threshold;
    let (failures, degraded, detail) = match (s.window, s.failure_rate) {
        (Some(_), Some(rate)) => {
            let failures = s.window_failures;
            let half = f64::from(failures) * 2.0 >= rate * f64::from(s.window_calls);
            let detail = format!(
                "{failures} of {} calls failed, opens at {}%",
                s.window_calls,
                // One decimal: 0.3 shows as 30, not 30.000000000000004.
                (rate * 1000.0).round() / 10.0
            );
            (failures, half, detail)
        }
        (Some(_), None) => {
            let failures = s.window_failures;
            let detail = format!("{failures} of {threshold} failures in the window");
            (failures, failures.saturating_mul(2) >= threshold, detail)
        }
        (None, _) => {
            let failures = s.consecutive_failures;
            let detail = format!("{failures} of {threshold} failures");
            (failures, failures.saturating_mul(2) >= threshold, detail)
        }
    };
    let state = if failures > 0 && degraded {
        HealthState::Degraded
    } else {
        HealthState::Healthy
    };
    (state, detail)
}

/// Input: a bulkhead's status. Output: Degraded while full.
fn bulkhead(s: &BulkheadStatus) -> PolicyHealth {
    let full = s.in_flight >= s.max_concurrent;
    let detail = format!("{} of {} slots in use", s.in_flight, s.max_concurrent);
    PolicyHealth {
        kind: Health::BULKHEAD,
        name: s.name.clone(),
        state: if full {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        },
        detail,
    }
}

/// Input: a retry budget's status. Output: Degraded while exhausted.
fn budget(s: &BudgetStatus) -> PolicyHealth {
    let exhausted = s.available == 0 && s.retries > 0;
    let detail = if exhausted {
        format!("exhausted, {} retries in the window", s.retries)
    } else {
        format!("{} retries available", s.available)
    };
    PolicyHealth {
        kind: Health::RETRY_BUDGET,
        name: s.name.clone(),
        state: if exhausted {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        },
        detail,
    }
}

/// A wait for a person: whole seconds rounded up from 1 s on, milliseconds
/// (rounded up) below.
struct Rounded(Duration);

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if self.0 >= Duration::from_secs(1) {
            write!(f, "{}s", nanos.div_ceil(1_000_000_000))
        } else {
            write!(f, "{}ms", nanos.div_ceil(1_000_000))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use super::*;
    use crate::{BreakerConfig, Outcome, RetryBudget, Window};

    fn threshold(n: u32) -> BreakerConfig {
        BreakerConfig::builder()
            .failure_threshold(n)
            .recovery_timeout(Duration::from_secs(12))
            .build()
            .unwrap()
    }

    fn entry<'a>(health: &'a Health, kind: &str, name: &str) -> &'a PolicyHealth {
        health
            .policy(kind, name)
            .unwrap_or_else(|| panic!("no {kind} `{name}` in {health:#?}"))
    }

    #[test]
    fn an_empty_registry_is_healthy() {
        let health = Registry::new().health();
        assert_eq!(health.status, HealthState::Healthy);
        assert!(health.is_healthy());
        assert!(health.policies.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_goes_healthy_degraded_open_half_open_and_back() {
        let reg = Registry::new();
        let b = reg.breaker("pay", &threshold(5));
        let state = |reg: &Registry| {
            let health = reg.health();
            let pay = entry(&health, Health::CIRCUIT_BREAKER, "pay").clone();
            assert_eq!(health.status, pay.state, "the only policy");
            (pay.state, pay.detail)
        };
        assert_eq!(
            state(&reg),
            (HealthState::Healthy, "0 of 5 failures".into())
        );

        for _ in 0..2 {
            b.try_acquire().unwrap().record(Outcome::Failure);
        }
        assert_eq!(
            state(&reg),
            (HealthState::Healthy, "2 of 5 failures".into())
        );
        b.try_acquire().unwrap().record(Outcome::Failure);
        assert_eq!(
            state(&reg),
            (HealthState::Degraded, "3 of 5 failures".into())
        );

        for _ in 0..2 {
            b.try_acquire().unwrap().record(Outcome::Failure);
        }
        assert_eq!(
            state(&reg),
            (HealthState::Open, "open, retry in 12s".into())
        );
        tokio::time::advance(Duration::from_millis(11_500)).await;
        assert_eq!(
            state(&reg),
            (HealthState::Open, "open, retry in 500ms".into())
        );

        tokio::time::advance(Duration::from_millis(500)).await;
        let probe = b.try_acquire().unwrap();
        assert_eq!(
            state(&reg),
            (
                HealthState::Degraded,
                "half-open, 0 of 1 probes succeeded".into()
            )
        );
        probe.record(Outcome::Success);
        assert_eq!(
            state(&reg),
            (HealthState::Healthy, "0 of 5 failures".into())
        );
    }

    #[test]
    fn forced_open_is_open_and_disabled_is_healthy() {
        let reg = Registry::new();
        reg.breaker("forced", &threshold(5));
        reg.breaker("off", &threshold(1));
        assert!(reg.force_open("forced"));
        assert!(reg.disable("off"));
        reg.get("off")
            .unwrap()
            .try_acquire()
            .unwrap()
            .record(Outcome::Failure);

        let health = reg.health();
        assert_eq!(health.status, HealthState::Open);
        assert!(!health.is_healthy());
        let forced = entry(&health, Health::CIRCUIT_BREAKER, "forced");
        assert_eq!(
            (forced.state, forced.detail.as_str()),
            (HealthState::Open, "forced open until reset")
        );
        let off = entry(&health, Health::CIRCUIT_BREAKER, "off");
        assert_eq!(off.state, HealthState::Healthy);

        reg.reset("forced");
        assert_eq!(reg.health().status, HealthState::Healthy);
    }

    #[test]
    fn windowed_breakers_count_the_window() {
        let reg = Registry::new();
        let counted = BreakerConfig::builder()
            .window(Window::Calls(NonZeroU32::new(10).unwrap()))
            .failure_threshold(4)
            .build()
            .unwrap();
        let rated = BreakerConfig::builder()
            .window(Window::Calls(NonZeroU32::new(10).unwrap()))
            .failure_rate(0.5)
            .min_calls(10)
            .build()
            .unwrap();
        let counted = reg.breaker("counted", &counted);
        let rated = reg.breaker("rated", &rated);
        for outcome in [Outcome::Failure, Outcome::Success, Outcome::Failure] {
            counted.try_acquire().unwrap().record(outcome);
        }
        for outcome in [Outcome::Failure, Outcome::Success, Outcome::Success] {
            rated.try_acquire().unwrap().record(outcome);
        }

        let health = reg.health();
        let counted = entry(&health, Health::CIRCUIT_BREAKER, "counted");
        assert_eq!(
            (counted.state, counted.detail.as_str()),
            (HealthState::Degraded, "2 of 4 failures in the window")
        );
        // 1 in 3 failed: at least half of the 50 % that opens it.
        let rated_entry = entry(&health, Health::CIRCUIT_BREAKER, "rated");
        assert_eq!(
            (rated_entry.state, rated_entry.detail.as_str()),
            (HealthState::Degraded, "1 of 3 calls failed, opens at 50%")
        );

        for _ in 0..3 {
            rated.try_acquire().unwrap().record(Outcome::Success);
        }
        // 1 in 6 is under 25 %.
        let health = reg.health();
        let rated_entry = entry(&health, Health::CIRCUIT_BREAKER, "rated");
        assert_eq!(rated_entry.state, HealthState::Healthy, "{rated_entry:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bulkhead_is_degraded() {
        let reg = Registry::new();
        let two = NonZeroU32::new(2).unwrap();
        let b = reg.bulkhead("db", two, Duration::ZERO);
        let first = b.acquire().await.unwrap();
        let health = reg.health();
        let db = entry(&health, Health::BULKHEAD, "db");
        assert_eq!(
            (db.state, db.detail.as_str()),
            (HealthState::Healthy, "1 of 2 slots in use")
        );

        let second = b.acquire().await.unwrap();
        let health = reg.health();
        assert_eq!(health.status, HealthState::Degraded);
        let db = entry(&health, Health::BULKHEAD, "db");
        assert_eq!(
            (db.state, db.detail.as_str()),
            (HealthState::Degraded, "2 of 2 slots in use")
        );

        drop((first, second));
        assert!(reg.health().is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_retry_budget_is_degraded() {
        let reg = Registry::new();
        let budget = RetryBudget::new("api", Duration::from_secs(1), 2, 0.0).unwrap();
        let budget = reg.configure_retry_budget(budget).unwrap();
        let api = |reg: &Registry| {
            let p = entry(&reg.health(), Health::RETRY_BUDGET, "api").clone();
            (p.state, p.detail)
        };
        assert_eq!(
            api(&reg),
            (HealthState::Healthy, "2 retries available".into())
        );

        while budget.withdraw() {}
        assert_eq!(
            api(&reg),
            (
                HealthState::Degraded,
                "exhausted, 2 retries in the window".into()
            )
        );

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            api(&reg),
            (HealthState::Healthy, "2 retries available".into())
        );
    }

    #[test]
    fn a_budget_that_allows_nothing_but_was_never_asked_is_healthy() {
        let reg = Registry::new();
        let budget = RetryBudget::new("never", Duration::from_secs(1), 0, 0.0).unwrap();
        reg.configure_retry_budget(budget).unwrap();
        let health = reg.health();
        let never = entry(&health, Health::RETRY_BUDGET, "never");
        assert_eq!(
            (never.state, never.detail.as_str()),
            (HealthState::Healthy, "0 retries available")
        );
    }

    #[test]
    fn the_worst_policy_decides_and_the_order_is_breakers_bulkheads_budgets() {
        let reg = Registry::new();
        reg.retry_budget("a-budget");
        reg.bulkhead("b-bulkhead", NonZeroU32::MIN, Duration::ZERO);
        reg.breaker("z-open", &threshold(1));
        reg.breaker("c-fine", &threshold(1));
        reg.force_open("z-open");
        let health = reg.health();
        let order: Vec<_> = health
            .policies
            .iter()
            .map(|p| (p.kind, &*p.name, p.state))
            .collect();
        assert_eq!(
            order,
            [
                (Health::CIRCUIT_BREAKER, "c-fine", HealthState::Healthy),
                (Health::CIRCUIT_BREAKER, "z-open", HealthState::Open),
                (Health::BULKHEAD, "b-bulkhead", HealthState::Healthy),
                (Health::RETRY_BUDGET, "a-budget", HealthState::Healthy),
            ]
        );
        assert_eq!(health.status, HealthState::Open);
        assert!(HealthState::Healthy < HealthState::Degraded);
        assert!(HealthState::Degraded < HealthState::Open);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serializes_with_lower_case_states() {
        let reg = Registry::new();
        reg.breaker("pay", &threshold(1));
        reg.force_open("pay");
        let json = serde_json::to_value(reg.health()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "open",
                "policies": [{
                    "kind": "circuit_breaker",
                    "name": "pay",
                    "state": "open",
                    "detail": "forced open until reset",
                }],
            })
        );
    }

    #[test]
    fn waits_round_up() {
        let shown = |d| Rounded(d).to_string();
        assert_eq!(shown(Duration::from_millis(11_001)), "12s");
        assert_eq!(shown(Duration::from_secs(1)), "1s");
        assert_eq!(shown(Duration::from_micros(1)), "1ms");
    }
}
