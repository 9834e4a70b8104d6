//! The retry and timeout of each call site, as declared and as configured
//! by name ([`Registry::apply`](crate::Registry::apply)): read once per
//! call, without a lock, changed live.

use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use super::config::spec::{AdaptiveValues, RateLimitValues, RetryValues, TimeoutValues};
use crate::live::Versions;
use crate::rate_limit::RateLimiter;
use crate::registry::registry;
use crate::retry::RetryPolicy;

/// A call site's retry policy: its attribute's keys, and the policy in
/// force (those keys under the configuration by name of its name).
#[derive(Debug)]
pub struct StaticRetry {
    name: &'static str,
    values: RetryValues,
    live: OnceLock<Versions<RetryPolicy>>,
}

impl StaticRetry {
    /// The retry found by `name`, declared with `values` (checked by
    /// `checked_retry_values`).
    pub const fn new(name: &'static str, values: RetryValues) -> Self {
        StaticRetry {
            name,
            values,
            live: OnceLock::new(),
        }
    }

    /// The policy in force.
    #[inline]
    pub fn get(&self) -> &RetryPolicy {
        self.versions().get()
    }

    #[inline]
    fn versions(&self) -> &Versions<RetryPolicy> {
        #[cfg(feature = "testing")]
        if let Some(v) = crate::testing::site(std::ptr::from_ref(self).cast(), || {
            Versions::new(registry().retry_in_force(self.name, &self.values))
        }) {
            return v;
        }
        match self.live.get() {
            Some(v) => v,
            None => self.init(),
        }
    }

    #[cold]
    fn init(&self) -> &Versions<RetryPolicy> {
        self.live
            .get_or_init(|| Versions::new(registry().retry_in_force(self.name, &self.values)))
    }

    /// The name it is configured by.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The keys its attribute wrote.
    pub(crate) fn values(&self) -> &RetryValues {
        &self.values
    }

    /// Puts `policy` in force; whether it changed.
    pub(crate) fn set(&self, policy: RetryPolicy) -> bool {
        self.versions().set(policy)
    }
}

/// A call site's timeout: its attribute's duration, and the one in force.
#[derive(Debug)]
pub struct StaticTimeout {
    name: &'static str,
    values: TimeoutValues,
    live: OnceLock<Versions<Duration>>,
}

impl StaticTimeout {
    /// The timeout found by `name`, declared with `values` (checked by
    /// `checked_timeout_values`).
    pub const fn new(name: &'static str, values: TimeoutValues) -> Self {
        StaticTimeout {
            name,
            values,
            live: OnceLock::new(),
        }
    }

    /// The duration in force.
    #[inline]
    pub fn get(&self) -> Duration {
        *self.versions().get()
    }

    #[inline]
    fn versions(&self) -> &Versions<Duration> {
        #[cfg(feature = "testing")]
        if let Some(v) = crate::testing::site(std::ptr::from_ref(self).cast(), || {
            Versions::new(registry().timeout_in_force(self.name, &self.values))
        }) {
            return v;
        }
        match self.live.get() {
            Some(v) => v,
            None => self.init(),
        }
    }

    #[cold]
    fn init(&self) -> &Versions<Duration> {
        self.live
            .get_or_init(|| Versions::new(registry().timeout_in_force(self.name, &self.values)))
    }

    /// The name it is configured by.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The keys its attribute wrote.
    pub(crate) fn values(&self) -> &TimeoutValues {
        &self.values
    }

    /// Puts `after` in force; whether it changed.
    pub(crate) fn set(&self, after: Duration) -> bool {
        self.versions().set(after)
    }
}

/// A rate limiter resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticRateLimiter {
    name: &'static str,
    values: RateLimitValues,
    cell: OnceLock<Arc<RateLimiter>>,
}

impl StaticRateLimiter {
    /// The limiter named `name`, declared with `values` (checked by
    /// `checked_rate_limit_values`).
    pub const fn new(name: &'static str, values: RateLimitValues) -> Self {
        StaticRateLimiter {
            name,
            values,
            cell: OnceLock::new(),
        }
    }

    /// The limiter, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &RateLimiter {
        let make = || registry().declared_rate_limiter(self.name, self.values);
        #[cfg(feature = "testing")]
        if let Some(l) = crate::testing::site(std::ptr::from_ref(self).cast(), make) {
            return l;
        }
        self.cell.get_or_init(make)
    }

    /// The name it is found by.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The keys its attribute wrote.
    pub(crate) fn values(&self) -> RateLimitValues {
        self.values
    }
}

/// An adaptive bulkhead resolved once per call site and cached in a `static`
/// (`#[bulkhead(max_concurrent = "adaptive")]`): the process-wide adaptive
/// bulkhead of its name.
#[derive(Debug)]
pub struct StaticAdaptive {
    name: &'static str,
    values: AdaptiveValues,
    cell: OnceLock<Arc<crate::AdaptiveBulkhead>>,
}

impl StaticAdaptive {
    /// The adaptive bulkhead named `name`, declared with `values` (checked
    /// by `checked_adaptive_values`).
    pub const fn new(name: &'static str, values: AdaptiveValues) -> Self {
        StaticAdaptive {
            name,
            values,
            cell: OnceLock::new(),
        }
    }

    /// The bulkhead, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &crate::AdaptiveBulkhead {
        let make = || crate::AdaptiveBulkhead::shared(self.name, self.config());
        #[cfg(feature = "testing")]
        if let Some(b) = crate::testing::site(std::ptr::from_ref(self).cast(), make) {
            return b;
        }
        self.cell.get_or_init(make)
    }

    /// The configuration of its checked keys: AIMD or Gradient2 within the
    /// bounds.
    pub(crate) fn config(&self) -> crate::AdaptiveConfig {
        let v = &self.values;
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let algorithm: crate::Algorithm = match v.algorithm_or_default() {
            resilience_spec::AdaptiveAlgorithm::Aimd => crate::Aimd::default()
                .latency_threshold(
                    v.latency_threshold
                        .given()
                        .unwrap_or(AdaptiveValues::DEFAULT_LATENCY_THRESHOLD),
                )
                .into(),
            resilience_spec::AdaptiveAlgorithm::Gradient2 => crate::Gradient2::default()
                .tolerance(
                    v.tolerance
                        .given()
                        .unwrap_or(AdaptiveValues::DEFAULT_TOLERANCE),
                )
                .sample_window(v.sample_window.given().unwrap_or_default())
                .into(),
        };
        let mut builder = crate::AdaptiveConfig::builder(algorithm)
            .min_limit(count(v.min()))
            .max_limit(count(v.max()))
            .max_wait(v.max_wait.given().unwrap_or_default());
        if let Some(initial) = v.initial_limit.given() {
            builder = builder.initial_limit(count(initial));
        }
        // Checked at compile time by the same bounds.
        builder.build().unwrap_or_else(|_| {
            crate::AdaptiveConfig::builder(crate::Aimd::default())
                .build()
                .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
        })
    }
}
