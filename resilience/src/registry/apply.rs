//! Configuration by name put in force: checked whole against the program's
//! declared names and every policy it would change, then applied live.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use resilience_spec::{
    did_you_mean, BreakerValues, BudgetValues, BulkheadValues, Problems, RateLimitValues,
    RetryValues, TimeoutValues, Value,
};

use super::{registry, Registry};
use crate::breaker::BreakerConfig;
use crate::manifest::{self, Kind, Name, Policy};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::settings::{
    layer_breaker, layer_budget, layer_bulkhead, layer_rate_limit, layer_retry, layer_timeout,
    Settings, SettingsError, SettingsProblem,
};

/// What [`Registry::apply`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Each policy whose settings changed, as `section.name`
    /// (`breakers.payments`, `retries.app::sync`), sorted.
    pub changed: Vec<String>,
}

/// A plan: every change, computed before anything is applied.
#[derive(Default)]
struct Plan {
    retries: Vec<(&'static crate::__private::StaticRetry, RetryPolicy)>,
    timeouts: Vec<(&'static crate::__private::StaticTimeout, Duration)>,
    bulkheads: Vec<(Arc<crate::Bulkhead>, NonZeroU32, Duration)>,
    rate_limiters: Vec<(Arc<crate::RateLimiter>, crate::RateLimitConfig)>,
    hedges: Vec<(Arc<crate::Hedge>, crate::HedgeConfig)>,
}

/// The problems of `problems` under `section.name`.
pub(super) fn report(
    out: &mut BTreeSet<(String, String)>,
    section: &str,
    name: &str,
    problems: &Problems,
) {
    for p in problems.iter() {
        out.insert((format!("{section}.{name}.{}", p.key()), p.to_string()));
    }
}

impl Registry {
    /// Puts `settings` in force, live: the next call of each policy it
    /// names uses them, and each policy it no longer names goes back to what
    /// its attribute declares. Nothing else changes: a closed breaker keeps
    /// its counts (unless its trip rule changed), an open one its open time
    /// (see [`CircuitBreaker::reconfigure`](crate::CircuitBreaker::reconfigure)); running calls finish under the
    /// settings they started with. Each change is a `tracing` event and
    /// shows in the [`snapshot`](Self::snapshot). Policies created later
    /// (their first call) are created with these settings.
    ///
    /// Everything is checked first, and nothing is applied when anything is
    /// wrong: every name must be one the program declares (an attribute's
    /// literal or default name, listed in the [`manifest`](crate::manifest),
    /// a policy already in this registry, or a match of `dynamic_names`),
    /// and every policy's settings, layered over its attribute's keys, must
    /// pass the attribute's rules.
    ///
    /// ```
    /// # #[cfg(feature = "serde")] {
    /// use resilience::{registry, settings::Settings};
    ///
    /// #[resilience::circuit_breaker(name = "inventory", failure_threshold = 5)]
    /// async fn stock() -> Result<u32, resilience::Error> { Ok(1) }
    ///
    /// let settings: Settings = serde_json::from_str(
    ///     r#"{ "breakers": { "inventroy": { "failure_threshold": 3 } } }"#,
    /// )?;
    /// let err = registry().apply(&settings).unwrap_err();
    /// assert!(err.to_string().contains("did you mean `inventory`?"), "{err}");
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SettingsError`] with every problem found, each with its path
    /// (`breakers.payments.failure_threshold`); nothing was applied.
    pub fn apply(&self, settings: &Settings) -> Result<Applied, SettingsError> {
        let global = std::ptr::eq(self, registry());
        let mut problems = BTreeSet::new();
        self.check_names(settings, global, &mut problems);
        let plan = self.plan(settings, global, &mut problems);
        #[cfg(feature = "chaos")]
        let chaos = self.plan_chaos(settings, global, &mut problems);
        if !problems.is_empty() {
            return Err(SettingsError::new(
                problems
                    .into_iter()
                    .map(|(path, message)| SettingsProblem::new(path, message))
                    .collect(),
            ));
        }
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings.clone();
        let mut changed = BTreeSet::new();
        // Every breaker, those created while this ran included (with either
        // settings), gets these: checked by `plan`, recomputed from them.
        for breaker in self.all() {
            let config = self.breaker_in_force(breaker.name(), breaker.declared());
            if breaker.reconfigure(config) {
                changed.insert(format!("breakers.{}", breaker.name()));
            }
        }
        for (site, policy) in plan.retries {
            if site.set(policy) {
                tracing::info!(target: "resilience", retry = site.name(), "retry `{}` reconfigured: {policy:?}", site.name());
                changed.insert(format!("retries.{}", site.name()));
            }
        }
        for (site, after) in plan.timeouts {
            if site.set(after) {
                tracing::info!(target: "resilience", timeout = site.name(), "timeout `{}` reconfigured: {after:?}", site.name());
                changed.insert(format!("timeouts.{}", site.name()));
            }
        }
        for (limiter, config) in plan.rate_limiters {
            if limiter.set_config(config) {
                changed.insert(format!("rate_limits.{}", limiter.name()));
            }
        }
        for (hedge, config) in plan.hedges {
            if hedge.set_config(config) {
                changed.insert(format!("hedges.{}", hedge.name()));
            }
        }
        for (bulkhead, max, wait) in plan.bulkheads {
            if (bulkhead.max_concurrent(), bulkhead.max_wait()) != (max, wait) {
                bulkhead.set_limits(max, wait);
                changed.insert(format!("bulkheads.{}", bulkhead.name()));
            }
        }
        #[cfg(feature = "chaos")]
        self.install_chaos(settings, chaos, &mut changed);
        Ok(Applied {
            changed: changed.into_iter().collect(),
        })
    }

    /// The settings last put in force by [`apply`](Self::apply).
    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every name of `settings` is declared.
    fn check_names(&self, settings: &Settings, global: bool, out: &mut BTreeSet<(String, String)>) {
        let sites: Vec<&manifest::CallSite> = if global {
            manifest::call_sites().collect()
        } else {
            Vec::new()
        };
        let declared = |kind: Kind| -> Vec<String> {
            sites
                .iter()
                .filter(|s| s.kind() == kind)
                .filter_map(|s| match s.name() {
                    Name::Static(n) => Some(n.to_owned()),
                    Name::Default => Some(format!("{}::{}", s.module(), s.function())),
                    Name::Dynamic(_) => None,
                })
                .collect()
        };
        let budgets: Vec<String> = sites
            .iter()
            .filter_map(|s| s.key("budget"))
            .map(|v| v.trim_matches('"').to_owned())
            .collect();
        let sections: [(&str, &str, Vec<String>, Vec<String>); 7] = [
            ("hedges", "hedge", declared(Kind::Hedge), self.hedge_names()),
            (
                "rate_limits",
                "rate limiter",
                declared(Kind::RateLimit),
                self.rate_limiters
                    .iter()
                    .map(|l| l.key().to_string())
                    .collect(),
            ),
            (
                "breakers",
                "circuit breaker",
                declared(Kind::CircuitBreaker),
                self.named.iter().map(|n| n.key().to_string()).collect(),
            ),
            ("retries", "retry", declared(Kind::Retry), Vec::new()),
            ("timeouts", "timeout", declared(Kind::Timeout), Vec::new()),
            (
                "bulkheads",
                "bulkhead",
                declared(Kind::Bulkhead),
                self.bulkheads.iter().map(|b| b.key().to_string()).collect(),
            ),
            (
                "retry_budgets",
                "retry budget",
                budgets,
                self.budgets.iter().map(|b| b.key().to_string()).collect(),
            ),
        ];
        for (section, name) in settings.names() {
            let Some((_, policy, declared, existing)) =
                sections.iter().find(|(s, ..)| *s == section)
            else {
                continue;
            };
            let known = declared.iter().chain(existing).any(|n| n == name)
                || (section == "breakers" && sites.iter().any(|s| s.may_have_default_name(name)))
                || settings.allows_dynamic(name);
            if known {
                continue;
            }
            let candidates = declared.iter().chain(existing).map(String::as_str);
            let message = match did_you_mean(name, candidates) {
                Some(near) => format!("no {policy} of this program is named `{name}`: did you mean `{near}`?"),
                None => format!("no {policy} of this program is named `{name}` (a name created at run time needs a `dynamic_names` pattern)"),
            };
            out.insert((format!("{section}.{name}"), message));
        }
    }

    /// Every change `settings` makes, each checked.
    fn plan(
        &self,
        settings: &Settings,
        global: bool,
        out: &mut BTreeSet<(String, String)>,
    ) -> Plan {
        let mut plan = Plan::default();
        // Breakers are only checked here: `apply` recomputes each one's
        // configuration once the settings are stored.
        for breaker in self.all() {
            let values = match settings.breakers.get(breaker.name()) {
                Some(top) => layer_breaker(breaker.declared(), top),
                None => *breaker.declared(),
            };
            report(out, "breakers", breaker.name(), &values.check());
        }
        for (name, budget) in &settings.retry_budgets {
            if let Some(existing) = self.budgets.get(name.as_str()) {
                let wanted =
                    RetryBudget::from_values(name, &layer_budget(&BudgetValues::NONE, budget));
                if let Ok(wanted) = wanted {
                    if !existing.same_settings(&wanted) {
                        out.insert((
                            format!("retry_budgets.{name}"),
                            "in use: a retry budget's settings are read when it is created (its first call); restart to change them".to_owned(),
                        ));
                    }
                }
            }
        }
        for bulkhead in self.bulkheads.iter() {
            let declared = self.bulkhead_declared(bulkhead.key());
            let values = match settings.bulkheads.get(&**bulkhead.key()) {
                Some(top) => layer_bulkhead(&declared, top),
                None => declared,
            };
            let (max, wait) = limits(&values);
            plan.bulkheads.push((bulkhead.value().clone(), max, wait));
        }
        for limiter in self.rate_limiters.iter() {
            let declared = self.rate_declared(limiter.key());
            let values = match settings.rate_limits.get(&**limiter.key()) {
                Some(top) => layer_rate_limit(&declared, top),
                None => declared,
            };
            match crate::RateLimitConfig::from_values(&values) {
                Ok(config) => plan.rate_limiters.push((limiter.value().clone(), config)),
                Err(_) => report(out, "rate_limits", limiter.key(), &values.check()),
            }
        }
        plan.hedges = self.plan_hedges(settings, out);
        if !global {
            return plan;
        }
        for site in manifest::call_sites() {
            match site.policy() {
                Policy::Retry(retry) => {
                    let values = match settings.retries.get(retry.name()) {
                        Some(top) => layer_retry(retry.values(), top),
                        None => *retry.values(),
                    };
                    match RetryPolicy::from_values(&values) {
                        Ok(policy) => plan.retries.push((retry, policy)),
                        Err(_) => report(out, "retries", retry.name(), &values.check()),
                    }
                }
                Policy::Timeout(timeout) => {
                    let values = match settings.timeouts.get(timeout.name()) {
                        Some(top) => layer_timeout(timeout.values(), top),
                        None => *timeout.values(),
                    };
                    let problems = values.check();
                    match values.timeout.given() {
                        Some(after) if problems.is_empty() => plan.timeouts.push((timeout, after)),
                        _ => report(out, "timeouts", timeout.name(), &problems),
                    }
                }
                // Declared but not created yet: what its creation will get.
                Policy::Breaker(site_breaker) => {
                    if let (Name::Static(name), Some(top)) = (
                        site.name(),
                        settings
                            .breakers
                            .get(site.name().as_static().unwrap_or_default()),
                    ) {
                        let values = layer_breaker(&site_breaker.config().values(), top);
                        report(out, "breakers", name, &values.check());
                    }
                }
                Policy::Bulkhead(site_bulkhead) => {
                    if let Some(top) = settings.bulkheads.get(site_bulkhead.name()) {
                        let values = layer_bulkhead(&site_bulkhead.values(), top);
                        report(out, "bulkheads", site_bulkhead.name(), &values.check());
                    }
                }
                Policy::RateLimit(site_limiter) => {
                    if let Some(top) = settings.rate_limits.get(site_limiter.name()) {
                        let values = layer_rate_limit(&site_limiter.values(), top);
                        report(out, "rate_limits", site_limiter.name(), &values.check());
                    }
                }
                Policy::Hedge(site_hedge) => {
                    if let Some(top) = settings.hedges.get(site_hedge.name()) {
                        let values = crate::settings::layer_hedge(&site_hedge.values(), top);
                        report(out, "hedges", site_hedge.name(), &values.check());
                    }
                }
                // Adaptive bulkheads set their own limit; their bounds are
                // the attribute's (not configured by name yet).
                Policy::Adaptive(_)
                | Policy::DynamicBreaker(_)
                | Policy::Coalesce(_)
                | Policy::None => {}
            }
        }
        plan
    }

    /// A breaker's configuration in force: what its creator declared, under
    /// the settings for its name. Settings that do not fit are reported and
    /// left out (only names no check saw: dynamic ones).
    pub(crate) fn breaker_in_force(&self, name: &str, declared: &BreakerValues) -> BreakerConfig {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.breakers.get(name) {
            Some(top) => layer_breaker(declared, top),
            None => *declared,
        };
        drop(settings);
        BreakerConfig::from_values(values).unwrap_or_else(|e| {
            tracing::error!(target: "resilience", breaker = name, "settings for circuit breaker `{name}` left out: {e}");
            BreakerConfig::from_values(*declared).unwrap_or_default()
        })
    }

    /// A call site's retry policy in force.
    pub(crate) fn retry_in_force(&self, name: &str, declared: &RetryValues) -> RetryPolicy {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.retries.get(name) {
            Some(top) => layer_retry(declared, top),
            None => *declared,
        };
        drop(settings);
        RetryPolicy::from_values(&values)
            .or_else(|_| RetryPolicy::from_values(declared))
            .unwrap_or_default()
    }

    /// A call site's timeout in force.
    pub(crate) fn timeout_in_force(&self, name: &str, declared: &TimeoutValues) -> Duration {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.timeouts.get(name) {
            Some(top) => layer_timeout(declared, top),
            None => *declared,
        };
        let fallback = declared.timeout.given().unwrap_or(Duration::MAX);
        match values.timeout {
            Value::Given(after) if values.check().is_empty() => after,
            _ => fallback,
        }
    }

    /// A bulkhead's limits in force: what its creator declared, under the
    /// settings for its name.
    pub(crate) fn bulkhead_in_force(
        &self,
        name: &str,
        declared: BulkheadValues,
    ) -> (NonZeroU32, Duration) {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.bulkheads.get(name) {
            Some(top) => layer_bulkhead(&declared, top),
            None => declared,
        };
        if values.check().is_empty() {
            limits(&values)
        } else {
            limits(&declared)
        }
    }

    /// A retry budget's settings in force (the defaults under the settings
    /// for its name).
    pub(crate) fn budget_in_force(&self, name: &str) -> RetryBudget {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.retry_budgets.get(name) {
            Some(top) => layer_budget(&BudgetValues::NONE, top),
            None => BudgetValues::NONE,
        };
        drop(settings);
        RetryBudget::from_values(name, &values).unwrap_or_else(|_| RetryBudget::with_defaults(name))
    }

    /// A rate limiter's configuration in force.
    pub(crate) fn rate_limit_in_force(
        &self,
        name: &str,
        declared: &RateLimitValues,
    ) -> crate::RateLimitConfig {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        let values = match settings.rate_limits.get(name) {
            Some(top) => layer_rate_limit(declared, top),
            None => *declared,
        };
        drop(settings);
        crate::RateLimitConfig::from_values(&values)
            .or_else(|_| crate::RateLimitConfig::from_values(declared))
            .unwrap_or_else(|_| crate::RateLimitConfig::from_checked(&RateLimitValues::NONE))
    }

    fn rate_declared(&self, name: &str) -> RateLimitValues {
        match self.rate_declared.get(name) {
            Some(v) => *v,
            None => RateLimitValues::NONE,
        }
    }

    fn bulkhead_declared(&self, name: &str) -> BulkheadValues {
        match self.bulkhead_declared.get(name) {
            Some(v) => *v,
            None => match self.bulkheads.get(name) {
                Some(b) => BulkheadValues {
                    max_concurrent: Value::Given(b.max_concurrent().get().into()),
                    max_wait: Value::Given(b.max_wait()),
                },
                None => BulkheadValues::NONE,
            },
        }
    }
}

/// A bulkhead's limits from checked values.
fn limits(values: &BulkheadValues) -> (NonZeroU32, Duration) {
    let max = values
        .max_concurrent
        .given()
        .unwrap_or(BulkheadValues::DEFAULT_MAX_CONCURRENT);
    let max = NonZeroU32::new(u32::try_from(max).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    let wait = values
        .max_wait
        .given()
        .unwrap_or(BulkheadValues::DEFAULT_MAX_WAIT);
    (max, wait)
}
