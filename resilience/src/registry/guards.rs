//! The registry's named bulkheads, rate limiters and retry budgets: created
//! on first use with the settings in force, or registered beforehand.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use resilience_spec::{BulkheadValues, RateLimitValues, Value};

use super::{AlreadyExists, Registry};
use crate::bulkhead::Bulkhead;
use crate::rate_limit::{RateLimitConfig, RateLimiter};
use crate::retry::RetryBudget;

/// Every key of `config`, as given values.
fn rate_values(config: &RateLimitConfig) -> RateLimitValues {
    RateLimitValues {
        rate: Value::Given(config.rate().get().into()),
        per: Value::Given(config.per()),
        burst: Value::Given(config.burst().get().into()),
        max_wait: Value::Given(config.max_wait()),
        fleet: Value::Given(config.is_fleet()),
    }
}

impl Registry {
    /// The bulkhead named `name`, created with these limits on first use
    /// (later call sites share the first one's limits).
    pub fn bulkhead(
        &self,
        name: &str,
        max_concurrent: NonZeroU32,
        max_wait: Duration,
    ) -> Arc<Bulkhead> {
        let declared = BulkheadValues {
            max_concurrent: Value::Given(max_concurrent.get().into()),
            max_wait: Value::Given(max_wait),
        };
        self.declared_bulkhead(name, declared)
    }

    /// The bulkhead named `name`, created on first use with the settings in
    /// force over what its call site declares.
    pub(crate) fn declared_bulkhead(&self, name: &str, declared: BulkheadValues) -> Arc<Bulkhead> {
        if let Some(b) = self.bulkheads.get(name) {
            return b.clone();
        }
        let mut created = false;
        let bulkhead = self
            .bulkheads
            .entry(Arc::from(name))
            .or_insert_with(|| {
                created = true;
                let (max, wait) = self.bulkhead_in_force(name, declared);
                Arc::new(Bulkhead::new(name, max, wait))
            })
            .clone();
        if created {
            self.bulkhead_declared.insert(Arc::from(name), declared);
            // An `apply` may have run while it was created (the same limits
            // again change nothing).
            let (max, wait) = self.bulkhead_in_force(name, declared);
            bulkhead.set_limits(max, wait);
        }
        bulkhead
    }

    /// The rate limiter named `name`, if one exists.
    pub(crate) fn get_rate_limiter(&self, name: &str) -> Option<Arc<RateLimiter>> {
        self.rate_limiters.get(name).map(|l| l.clone())
    }

    /// The bulkhead named `name`, if one exists.
    pub(crate) fn get_bulkhead(&self, name: &str) -> Option<Arc<Bulkhead>> {
        self.bulkheads.get(name).map(|b| b.clone())
    }

    /// Registers `bulkhead` under its name before any call site creates it.
    ///
    /// # Errors
    ///
    /// [`AlreadyExists`] (carrying the existing bulkhead) if the name is taken.
    pub fn configure_bulkhead(
        &self,
        bulkhead: Bulkhead,
    ) -> Result<Arc<Bulkhead>, AlreadyExists<Bulkhead>> {
        match self.bulkheads.entry(Arc::from(bulkhead.name())) {
            Entry::Occupied(e) => Err(AlreadyExists {
                existing: e.get().clone(),
            }),
            Entry::Vacant(e) => Ok(e.insert(Arc::new(bulkhead)).clone()),
        }
    }

    /// The retry budget named `name`, created with
    /// [`RetryBudget::with_defaults`] on first use.
    pub fn retry_budget(&self, name: &str) -> Arc<RetryBudget> {
        if let Some(b) = self.budgets.get(name) {
            return b.clone();
        }
        self.budgets
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(self.budget_in_force(name)))
            .clone()
    }

    /// The rate limiter named `name`, created with `config` on first use
    /// (later call sites share the first one's limit; the settings in force
    /// for the name, see [`apply`](Self::apply), go over `config`).
    ///
    /// A fleet-wide limit ([`RateLimitConfigBuilder::fleet`](crate::RateLimitConfigBuilder::fleet))
    /// created while the registry is shared through Redis (feature `redis`)
    /// joins the fleet at once; one that exists when the registry is shared
    /// joins it then.
    pub fn rate_limiter(&self, name: &str, config: &RateLimitConfig) -> Arc<RateLimiter> {
        self.declared_rate_limiter(name, rate_values(config))
    }

    /// The rate limiter named `name`, created on first use with the
    /// settings in force over what its call site declares (fleet-wide if it
    /// declares `fleet = true`).
    pub(crate) fn declared_rate_limiter(
        &self,
        name: &str,
        declared: RateLimitValues,
    ) -> Arc<RateLimiter> {
        if let Some(l) = self.rate_limiters.get(name) {
            return l.clone();
        }
        let in_force = |declared: &RateLimitValues| self.rate_limit_in_force(name, declared);
        let mut created = false;
        let limiter = self
            .rate_limiters
            .entry(Arc::from(name))
            .or_insert_with(|| {
                created = true;
                Arc::new(RateLimiter::new(name, in_force(&declared)))
            })
            .clone();
        if created {
            self.rate_declared.insert(Arc::from(name), declared);
            // An `apply` may have run while it was created.
            limiter.set_config(in_force(&declared));
            #[cfg(feature = "redis")]
            crate::fleet::rate_limiter_created(self, &limiter);
        }
        limiter
    }

    /// Every rate limiter (what a fleet shares, if fleet-wide).
    #[cfg(feature = "redis")]
    pub(crate) fn rate_limiter_list(&self) -> Vec<Arc<RateLimiter>> {
        self.rate_limiters
            .iter()
            .map(|l| l.value().clone())
            .collect()
    }

    /// Registers `limiter` under its name before any call site creates it.
    ///
    /// # Errors
    ///
    /// [`AlreadyExists`] (carrying the existing limiter) if the name is taken.
    pub fn configure_rate_limiter(
        &self,
        limiter: RateLimiter,
    ) -> Result<Arc<RateLimiter>, AlreadyExists<RateLimiter>> {
        match self.rate_limiters.entry(Arc::from(limiter.name())) {
            Entry::Occupied(e) => Err(AlreadyExists {
                existing: e.get().clone(),
            }),
            Entry::Vacant(e) => {
                self.rate_declared
                    .insert(Arc::from(limiter.name()), rate_values(&limiter.config()));
                let limiter = e.insert(Arc::new(limiter)).clone();
                #[cfg(feature = "redis")]
                crate::fleet::rate_limiter_created(self, &limiter);
                Ok(limiter)
            }
        }
    }

    /// Registers `budget` under its name before first use.
    ///
    /// # Errors
    ///
    /// [`AlreadyExists`] (carrying the existing budget) if the name is taken.
    pub fn configure_retry_budget(
        &self,
        budget: RetryBudget,
    ) -> Result<Arc<RetryBudget>, AlreadyExists<RetryBudget>> {
        match self.budgets.entry(Arc::from(budget.name())) {
            Entry::Occupied(e) => Err(AlreadyExists {
                existing: e.get().clone(),
            }),
            Entry::Vacant(e) => Ok(e.insert(Arc::new(budget)).clone()),
        }
    }
}
