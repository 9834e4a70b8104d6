//! Configuration by name: every policy of the program tuned from a file or
//! the environment, checked like the attributes, and changed live.
//!
//! A [`Settings`] is read by any serde loader (feature `serde`: `figment`,
//! `config`, `toml`, `serde_json`…) and put in force with
//! [`Registry::apply`](crate::Registry::apply). Each entry names one policy
//! and gives only the keys it changes: the rest come from the attribute's
//! literals, then the defaults. Keys are the attributes' own, durations are
//! written as in the attributes (`"30s"`, `"1m 30s"`).
//!
//! ```toml
//! # Names the program creates at run time (`name = self.tenant.as_str()`).
//! dynamic_names = ["tenant-*"]
//!
//! [profiles.critical]          # shared by several names
//! failure_threshold = 3
//! recovery_timeout = "10s"
//! max_attempts = 2
//!
//! [breakers.payments]
//! profile = "critical"
//! recovery_timeout = "30s"     # wins over the profile
//!
//! [retries.payments]
//! profile = "critical"         # takes the profile's retry keys
//!
//! [bulkheads.db]
//! max_concurrent = 8
//! max_wait = "50ms"
//!
//! [timeouts."inventory::fetch"] # default names, quoted
//! timeout = "2s"
//!
//! [retry_budgets.shared]
//! retry_ratio = 0.1
//! ```
//!
//! What each section configures, and the names it accepts:
//!
//! | section | keys | names |
//! |---|---|---|
//! | `breakers` | `failure_threshold`, `recovery_timeout`, `success_threshold`, `half_open_max_calls`, `window`, `failure_rate`, `min_calls`, `slow_call`, `slow_call_rate`, `recovery_timeout_max`, `fleet_threshold` | a breaker's `name`, or an unnamed one's default name (`module::Type::method`) |
//! | `retries` | `max_attempts`, `backoff`, `delay`, `max_delay`, `multiplier`, `jitter`, `max_elapsed` | the breaker's static name in `#[resilient]`, else `module::function` |
//! | `timeouts` | `timeout` | as `retries` |
//! | `bulkheads` | `max_concurrent`, `max_wait` | the bulkhead's `name` |
//! | `retry_budgets` | `ttl`, `min_per_sec`, `retry_ratio` | a retry's `budget` |
//! | `rate_limits` | `rate`, `per`, `burst`, `max_wait` | a rate limiter's `name` |
//! | `hedges` | `delay`, `max_hedges`, `warmup_delay`, `min_samples`, `period` | a hedge's `name` |
//! | `chaos` (feature `chaos`) | `error`, `error_rate`, `value`, `value_rate`, `latency`, `latency_rate`, `panic_rate`, `enabled`, `calls` | any static name of a layer, or a function's default name (`module::function`); see [`chaos`](crate::chaos) |
//!
//! Every entry may also name a `profile` (except in `chaos`); a profile may
//! name another one.

mod layer;
#[cfg(feature = "serde")]
mod parse;

use std::collections::BTreeMap;
use std::fmt;

use resilience_spec::{
    BreakerValues, BudgetValues, BulkheadValues, HedgeValues, RateLimitValues, RetryValues,
    TimeoutValues,
};

pub(crate) use layer::{
    breaker as layer_breaker, budget as layer_budget, bulkhead as layer_bulkhead,
    hedge as layer_hedge, rate_limit as layer_rate_limit, retry as layer_retry,
    timeout as layer_timeout,
};

/// A whole-process configuration by name (see the [module docs](self)): read
/// it with any serde loader (feature `serde`), put it in force with
/// [`Registry::apply`](crate::Registry::apply).
///
/// Reading checks every key and value, and every profile, against the
/// attributes' rules: a `Settings` that deserialized is well-formed. Whether
/// its names exist in the program is checked when it is applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub(crate) breakers: BTreeMap<String, BreakerValues>,
    pub(crate) retries: BTreeMap<String, RetryValues>,
    pub(crate) timeouts: BTreeMap<String, TimeoutValues>,
    pub(crate) bulkheads: BTreeMap<String, BulkheadValues>,
    pub(crate) retry_budgets: BTreeMap<String, BudgetValues>,
    pub(crate) rate_limits: BTreeMap<String, RateLimitValues>,
    pub(crate) hedges: BTreeMap<String, HedgeValues>,
    /// Faults injected by name (feature `chaos`).
    #[cfg(feature = "chaos")]
    pub(crate) chaos: BTreeMap<String, crate::chaos::Injection>,
    /// Glob patterns (`*` for any run of characters) of names created at
    /// run time, which no attribute declares literally.
    pub(crate) dynamic_names: Vec<String>,
}

impl Settings {
    /// No entry: every policy as its attribute declares it.
    pub fn new() -> Self {
        Settings::default()
    }

    /// The names this configuration sets, per section (`"breakers"`,
    /// `"retries"`, `"timeouts"`, `"bulkheads"`, `"retry_budgets"`,
    /// `"rate_limits"`, `"hedges"`, and `"chaos"` with the feature `chaos`).
    pub fn names(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        #[cfg(feature = "chaos")]
        let chaos = self.chaos.keys().map(|n| ("chaos", n.as_str()));
        #[cfg(not(feature = "chaos"))]
        let chaos = std::iter::empty::<(&'static str, &str)>();
        self.breakers
            .keys()
            .map(|n| ("breakers", n.as_str()))
            .chain(self.retries.keys().map(|n| ("retries", n.as_str())))
            .chain(self.timeouts.keys().map(|n| ("timeouts", n.as_str())))
            .chain(self.bulkheads.keys().map(|n| ("bulkheads", n.as_str())))
            .chain(
                self.retry_budgets
                    .keys()
                    .map(|n| ("retry_budgets", n.as_str())),
            )
            .chain(self.rate_limits.keys().map(|n| ("rate_limits", n.as_str())))
            .chain(self.hedges.keys().map(|n| ("hedges", n.as_str())))
            .chain(chaos)
    }

    /// Whether `name` matches one of the `dynamic_names` patterns.
    pub(crate) fn allows_dynamic(&self, name: &str) -> bool {
        self.dynamic_names.iter().any(|p| glob(p, name))
    }
}

/// `*` matches any run of characters (none included); everything else
/// matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: the whole name
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One problem of a configuration by name, with the path of what it is
/// about: `breakers.payments.failure_rate: ` and what is wrong, in the words
/// the attribute uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    path: String,
    message: String,
}

impl SettingsProblem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsProblem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Where: `breakers.payments.failure_rate`, `profiles.critical.profile`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A configuration by name that was not put in force, with every problem
/// found; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    problems: Vec<SettingsProblem>,
}

impl SettingsError {
    pub(crate) fn new(problems: Vec<SettingsProblem>) -> Self {
        SettingsError { problems }
    }

    /// Each problem, in the order of the file's sections and names.
    pub fn problems(&self) -> &[SettingsProblem] {
        &self.problems
    }
}

/// One problem per line.
impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid resilience settings ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("tenant-*", "tenant-42"));
        assert!(glob("tenant-*", "tenant-"));
        assert!(!glob("tenant-*", "tenants"));
        assert!(glob("*-eu-*", "db-eu-1"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*bc", "abc-bc-x"));
    }
}
