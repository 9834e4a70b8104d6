//! The statics of each call site: its breaker, bulkhead and retry budget,
//! resolved once (or, for a dynamic name, looked up per call), and its
//! callbacks.

use std::sync::{Arc, OnceLock};

use super::config::spec;
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::bulkhead::Bulkhead;
use crate::manifest::CallSite;
use crate::registry::registry;
use crate::retry::RetryBudget;
use crate::{Outcome, Transition};

/// A call site's callback (`on_open = alert`), checked to be a
/// `fn(&resilience::Transition)` (a path or a non-capturing closure).
#[inline(always)]
pub const fn callback(f: fn(&Transition)) -> Option<fn(&Transition)> {
    Some(f)
}

/// How a [`StaticBreaker`] finds its breaker.
#[derive(Debug)]
enum BreakerSite {
    /// `name = "unifi"`: the registry's breaker of that name. Its callbacks
    /// come from the manifest, attached by the registry when it creates it.
    Static(&'static str),
    /// No `name`: a breaker of this call site alone, named after the function
    /// (`module::function`, or `module::Type::function` for a method).
    Unnamed {
        module: &'static str,
        function: &'static str,
        site: &'static CallSite,
    },
}

/// A breaker resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticBreaker {
    name: BreakerSite,
    config: BreakerConfig,
    cell: OnceLock<Arc<CircuitBreaker>>,
}

impl StaticBreaker {
    /// The breaker named `name` in the process-wide registry.
    pub const fn named(name: &'static str, config: BreakerConfig) -> Self {
        StaticBreaker {
            name: BreakerSite::Static(name),
            config,
            cell: OnceLock::new(),
        }
    }

    /// A breaker of this call site alone (an attribute without `name`) in
    /// `module`'s `function`, with the callbacks of `site`.
    pub const fn unnamed(
        module: &'static str,
        function: &'static str,
        config: BreakerConfig,
        site: &'static CallSite,
    ) -> Self {
        StaticBreaker {
            name: BreakerSite::Unnamed {
                module,
                function,
                site,
            },
            config,
            cell: OnceLock::new(),
        }
    }

    /// The configuration its attribute declares.
    pub(crate) fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The breaker, created or looked up on first use. An unnamed one is
    /// named `module::function`.
    #[inline]
    pub fn get(&self) -> &CircuitBreaker {
        #[cfg(feature = "testing")]
        if let Some(b) = self.scoped(None) {
            return b;
        }
        match self.cell.get() {
            Some(b) => b,
            None => self.init(None),
        }
    }

    /// [`get`](Self::get) for a method: an unnamed breaker is named
    /// `module::Type::function`, `Type` read from `self_type` (the
    /// `type_name` of `Self`) on first use only.
    #[inline]
    pub fn get_for(&self, self_type: fn() -> &'static str) -> &CircuitBreaker {
        #[cfg(feature = "testing")]
        if let Some(b) = self.scoped(Some(self_type)) {
            return b;
        }
        match self.cell.get() {
            Some(b) => b,
            None => self.init(Some(self_type)),
        }
    }

    /// In a test with its own registry (feature `testing`): this call
    /// site's breaker there.
    #[cfg(feature = "testing")]
    fn scoped(&self, self_type: Option<fn() -> &'static str>) -> Option<&'static CircuitBreaker> {
        crate::testing::site(std::ptr::from_ref(self).cast(), || self.resolve(self_type))
            .map(|b| &**b)
    }

    #[cold]
    #[inline(never)]
    fn init(&self, self_type: Option<fn() -> &'static str>) -> &CircuitBreaker {
        self.cell.get_or_init(|| self.resolve(self_type))
    }

    /// The breaker this call site names, from the registry.
    fn resolve(&self, self_type: Option<fn() -> &'static str>) -> Arc<CircuitBreaker> {
        match &self.name {
            BreakerSite::Static(name) => registry().breaker(name, &self.config),
            BreakerSite::Unnamed {
                module,
                function,
                site,
            } => {
                let name = match self_type {
                    Some(ty) => format!("{module}::{}::{function}", short_type_name(ty())),
                    None => format!("{module}::{function}"),
                };
                registry().unnamed_breaker(&name, &self.config, |b| site.attach_callbacks(b))
            }
        }
    }
}

/// `Self`'s name as a person writes it in a breaker's name: the last path
/// segment, without generic arguments or references (`&mut app::Api<u32>` ->
/// `Api`); a tuple or slice keeps its shape (`(A, B)`, `[Item]`).
pub(crate) fn short_type_name(full: &str) -> String {
    let mut s = full.trim();
    loop {
        let before = s;
        for prefix in ["&", "mut ", "*const ", "*mut ", "dyn "] {
            s = s.strip_prefix(prefix).unwrap_or(s).trim_start();
        }
        if s == before {
            break;
        }
    }
    let mut out = String::with_capacity(s.len());
    // Where the current path segment starts in `out`.
    let mut segment = 0;
    let mut depth = 0u32;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                out.truncate(segment);
            }
            c if c.is_alphanumeric() || c == '_' => out.push(c),
            c => {
                out.push(c);
                segment = out.len();
            }
        }
    }
    out
}

/// The breaker named by a runtime expression (`name = self.name.as_str()`);
/// the callbacks of `site` are attached when this lookup creates it.
#[inline]
pub fn dynamic_breaker(
    name: &str,
    config: &BreakerConfig,
    site: Option<&'static CallSite>,
) -> Arc<CircuitBreaker> {
    registry().dynamic_breaker(name, config, |b| {
        if let Some(site) = site {
            site.attach_callbacks(b);
        }
    })
}

/// The default classification: every error is a failure.
#[inline(always)]
pub fn every_error_fails<E>(_: &E) -> Outcome {
    Outcome::Failure
}

/// A bulkhead resolved once per call site and cached in a `static`.
#[derive(Debug)]
pub struct StaticBulkhead {
    name: &'static str,
    values: spec::BulkheadValues,
    cell: OnceLock<Arc<Bulkhead>>,
}

impl StaticBulkhead {
    /// The bulkhead named `name` with the limits of checked `values`
    /// (absent keys take the spec's defaults).
    pub const fn new(name: &'static str, values: spec::BulkheadValues) -> Self {
        StaticBulkhead {
            name,
            values,
            cell: OnceLock::new(),
        }
    }

    /// The bulkhead's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The limits its attribute declares.
    pub(crate) fn values(&self) -> spec::BulkheadValues {
        self.values
    }

    /// The bulkhead, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &Bulkhead {
        let make = || registry().declared_bulkhead(self.name, self.values);
        #[cfg(feature = "testing")]
        if let Some(b) = crate::testing::site(std::ptr::from_ref(self).cast(), make) {
            return b;
        }
        self.cell.get_or_init(make)
    }
}

/// A retry budget resolved once per call site.
#[derive(Debug)]
pub struct StaticBudget {
    name: &'static str,
    cell: OnceLock<Arc<RetryBudget>>,
}

impl StaticBudget {
    /// The budget named `name`.
    pub const fn new(name: &'static str) -> Self {
        StaticBudget {
            name,
            cell: OnceLock::new(),
        }
    }

    /// The budget, created or looked up on first use.
    #[inline]
    pub fn get(&self) -> &RetryBudget {
        let make = || registry().retry_budget(self.name);
        #[cfg(feature = "testing")]
        if let Some(b) = crate::testing::site(std::ptr::from_ref(self).cast(), make) {
            return b;
        }
        self.cell.get_or_init(make)
    }
}

/// The breaker an unnamed call site named `name` gets from `registry` (for
/// tests of the registry's rules: default names, `#2`, fleets).
pub fn registry_private_breaker(
    registry: &crate::Registry,
    name: &str,
    config: &BreakerConfig,
) -> Arc<CircuitBreaker> {
    registry.private_breaker(name, config)
}

/// The breaker a dynamic-name call site gets from `registry` (for tests of
/// eviction and memory).
pub fn registry_dynamic_breaker(
    registry: &crate::Registry,
    name: &str,
    config: &BreakerConfig,
) -> Arc<CircuitBreaker> {
    registry.dynamic_breaker(name, config, |_| {})
}

/// The error a rejection by `breaker` produces, equal to the errors its
/// rejections return (for tests comparing errors).
pub fn rejection_of(breaker: &CircuitBreaker) -> crate::Error {
    breaker.rejection_error()
}

/// The error the process-wide registry's bulkhead `name` produces when full,
/// if it exists (for tests comparing errors).
pub fn bulkhead_full_of(name: &str) -> Option<crate::Error> {
    registry().get_bulkhead(name).map(|b| b.full_error())
}
