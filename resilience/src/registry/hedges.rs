//! The registry's named hedges: created on first use with the settings in
//! force, or registered beforehand; configured by name (`hedges.NAME`).

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError};

use dashmap::mapref::entry::Entry;
use resilience_spec::HedgeValues;

use super::{AlreadyExists, Registry};
use crate::hedge::{Hedge, HedgeConfig};
use crate::settings::{layer_hedge, Settings};

impl Registry {
    /// The hedge named `name`, created with `config` on first use (later
    /// call sites share the first one's configuration and its latency
    /// histogram; the settings in force for the name, see
    /// [`apply`](Self::apply), go over `config`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::{HedgeConfig, Registry};
    ///
    /// let registry = Registry::new();
    /// let config = HedgeConfig::builder().delay(Duration::from_millis(40)).build()?;
    /// let search = registry.hedge("search", &config);
    /// assert!(std::sync::Arc::ptr_eq(&search, &registry.hedge("search", &HedgeConfig::DEFAULT)));
    /// assert_eq!(registry.snapshot().hedges[0].delay, Duration::from_millis(40));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn hedge(&self, name: &str, config: &HedgeConfig) -> Arc<Hedge> {
        self.declared_hedge(name, config.values())
    }

    /// The hedge named `name`, created on first use with the settings in
    /// force over what its call site declares.
    pub(crate) fn declared_hedge(&self, name: &str, declared: HedgeValues) -> Arc<Hedge> {
        if let Some(h) = self.hedges.get(name) {
            return h.clone();
        }
        let mut created = false;
        let hedge = self
            .hedges
            .entry(Arc::from(name))
            .or_insert_with(|| {
                created = true;
                Arc::new(Hedge::with_name(name, self.hedge_in_force(name, &declared)))
            })
            .clone();
        if created {
            self.hedge_declared.insert(Arc::from(name), declared);
            // An `apply` may have run while it was created.
            hedge.set_config(self.hedge_in_force(name, &declared));
        }
        hedge
    }

    /// The hedge named `name`, if one exists.
    pub(crate) fn get_hedge(&self, name: &str) -> Option<Arc<Hedge>> {
        self.hedges.get(name).map(|h| h.clone())
    }

    /// Registers `hedge` under its name before any call site creates it.
    ///
    /// # Errors
    ///
    /// [`AlreadyExists`] (carrying the existing hedge) if the name is taken.
    pub fn configure_hedge(&self, hedge: Hedge) -> Result<Arc<Hedge>, AlreadyExists<Hedge>> {
        match self.hedges.entry(Arc::from(hedge.name())) {
            Entry::Occupied(e) => Err(AlreadyExists {
                existing: e.get().clone(),
            }),
            Entry::Vacant(e) => {
                self.hedge_declared
                    .insert(Arc::from(hedge.name()), hedge.config().values());
                Ok(e.insert(Arc::new(hedge)).clone())
            }
        }
    }

    /// A hedge's configuration in force: what its creator declared, under
    /// the settings for its name (left out when they do not fit).
    pub(crate) fn hedge_in_force(&self, name: &str, declared: &HedgeValues) -> HedgeConfig {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.hedges.get(name) {
            Some(top) => layer_hedge(declared, top),
            None => *declared,
        };
        drop(settings);
        for values in [values, *declared] {
            if values.check().is_empty() {
                return HedgeConfig::from_checked(&values);
            }
        }
        HedgeConfig::DEFAULT
    }

    /// What `settings` would make of every existing hedge, each checked
    /// (problems go to `out` under `hedges.NAME.key`).
    pub(super) fn plan_hedges(
        &self,
        settings: &Settings,
        out: &mut BTreeSet<(String, String)>,
    ) -> Vec<(Arc<Hedge>, HedgeConfig)> {
        let mut plan = Vec::new();
        for hedge in self.hedges.iter() {
            let declared = match self.hedge_declared.get(&**hedge.key()) {
                Some(v) => *v,
                None => hedge.config().values(),
            };
            let values = match settings.hedges.get(&**hedge.key()) {
                Some(top) => layer_hedge(&declared, top),
                None => declared,
            };
            let problems = values.check();
            if problems.is_empty() {
                plan.push((hedge.value().clone(), HedgeConfig::from_checked(&values)));
            } else {
                super::apply::report(out, "hedges", hedge.key(), &problems);
            }
        }
        plan
    }

    /// The names of the hedges in this registry.
    pub(super) fn hedge_names(&self) -> Vec<String> {
        self.hedges.iter().map(|h| h.key().to_string()).collect()
    }
}
