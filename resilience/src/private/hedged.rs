//! `#[hedge]`'s glue: the call site's hedge, resolved once and cached in a
//! `static`, and one hedged call, whose extra attempts ask the stacked
//! layers first (an open circuit below, a retry budget).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use resilience_spec::HedgeValues;

use super::Flags;
use crate::hedge::{Hedge, HedgeFuture};
use crate::registry::registry;
use crate::retry::RetryBudget;

/// A `#[hedge]` call site's hedge: the process-wide hedge of its name.
#[derive(Debug)]
pub struct StaticHedge {
    name: &'static str,
    values: HedgeValues,
    cell: OnceLock<Arc<Hedge>>,
}

impl StaticHedge {
    /// The hedge named `name`, declared with `values` (checked by
    /// `checked_hedge_values`).
    pub const fn new(name: &'static str, values: HedgeValues) -> Self {
        StaticHedge {
            name,
            values,
            cell: OnceLock::new(),
        }
    }

    /// The hedge, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &Hedge {
        let make = || registry().declared_hedge(self.name, self.values);
        #[cfg(feature = "testing")]
        if let Some(h) = crate::testing::site(std::ptr::from_ref(self).cast(), make) {
            return h;
        }
        self.cell.get_or_init(make)
    }

    /// The name it is found by.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The keys its attribute wrote.
    pub(crate) fn values(&self) -> HedgeValues {
        self.values
    }
}

/// A `#[hedge]`'s keys, checked in a `const` (as `breaker_config`).
pub const fn checked_hedge_values(values: HedgeValues) -> HedgeValues {
    values.check().assert_none();
    values
}

/// One hedged call: `attempt` makes each attempt (the body with its
/// arguments cloned). An extra attempt starts only while no layer below
/// said stop (an open circuit) and, with a `budget`, while it has a token;
/// the call itself is deposited into the budget.
pub fn hedge_call<'a, F, Fut, T, E>(
    hedge: &'a Hedge,
    flags: &'a Flags,
    budget: Option<&'a RetryBudget>,
    attempt: F,
) -> HedgeFuture<'a, F, Fut, impl FnMut() -> bool + 'a>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    if let Some(budget) = budget {
        budget.deposit();
    }
    let may_hedge = move || {
        if flags.stop_retry() {
            tracing::debug!(target: "resilience", hedge = hedge.name(), "no hedge: a circuit below is open");
            return false;
        }
        match budget {
            Some(budget) if !budget.withdraw() => {
                tracing::debug!(target: "resilience", hedge = hedge.name(), budget = budget.name(), "no hedge: the retry budget is empty");
                false
            }
            _ => true,
        }
    };
    hedge.run_with(attempt, may_hedge)
}
