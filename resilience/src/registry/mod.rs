//! The process-wide registry: one name, one breaker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::breaker::{
    BreakerConfig, BreakerStatus, CircuitBreaker, Listener, Listeners, Transition,
};
use crate::bulkhead::{Bulkhead, BulkheadStatus};
use crate::rate_limit::{RateLimitStatus, RateLimiter};
use crate::retry::{BudgetStatus, RetryBudget};
use crate::settings::Settings;
pub use already_exists::{AlreadyExists, Registered};
pub use apply::Applied;
pub use health::{Health, HealthState, PolicyHealth};
use resilience_spec::{BulkheadValues, RateLimitValues};

/// The process-wide registry the attribute macros use.
///
/// ```
/// use resilience::{registry, BreakerConfig};
///
/// // Operators may configure a breaker before its first use: this wins over the
/// // literals written in `#[circuit_breaker(name = "search", …)]`.
/// let config = BreakerConfig::builder().failure_threshold(10).build()?;
/// registry().configure("search", config).expect("not used yet");
/// assert_eq!(registry().get("search").unwrap().config().failure_threshold().get(), 10);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub fn registry() -> &'static Registry {
    // A test's own (feature `testing`, see `resilience::testing`).
    #[cfg(feature = "testing")]
    if let Some(scope) = crate::testing::Isolated::current() {
        return scope.registry();
    }
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

/// Where a named breaker's configuration came from.
#[derive(Debug)]
enum Origin {
    /// [`Registry::configure`]: wins over every call site.
    Configured,
    /// The first call site to ask for the name. Later call sites whose
    /// configuration differs are warned about once per distinct configuration.
    CallSite { warned: Mutex<Vec<BreakerConfig>> },
    /// An unnamed call site: the breaker is its alone.
    Unnamed,
}

#[derive(Debug)]
struct Named {
    breaker: Arc<CircuitBreaker>,
    origin: Origin,
    /// Created by a dynamic-name call site: may be evicted when idle.
    dynamic: AtomicBool,
    /// For dynamic breakers: when last seen in use by a sweep (seconds after
    /// the registry's creation).
    last_used: AtomicU64,
    /// For dynamic breakers: looked up since the last sweep. A flag, not a
    /// time, so that a lookup never reads the clock.
    used: AtomicBool,
    /// The breaker of an unnamed call site (or reserved for one by
    /// `configure`): found by name, never shared through a fleet.
    private: AtomicBool,
    /// An unnamed call site owns it: another one with the same default name
    /// gets a name of its own.
    claimed: AtomicBool,
}

/// Named, shared circuit breakers, and the private breakers of unnamed call
/// sites (found by their default names, never shared with a fleet).
///
/// Most code uses the process-wide [`registry()`]. A separate `Registry`
/// holds policies of its own; for tests of annotated code, the `testing`
/// feature runs each test against a registry of its own that every call
/// site uses (`#[resilience::test]`, `resilience::testing`).
pub struct Registry {
    /// foldhash: several times faster than SipHash on short names, and
    /// still seeded per process.
    named: DashMap<Arc<str>, Named, foldhash::fast::RandomState>,
    listeners: Arc<Listeners>,
    bulkheads: DashMap<Arc<str>, Arc<Bulkhead>>,
    budgets: DashMap<Arc<str>, Arc<RetryBudget>>,
    rate_limiters: DashMap<Arc<str>, Arc<RateLimiter>>,
    hedges: DashMap<Arc<str>, Arc<crate::Hedge>>,
    /// Called with every named breaker this registry creates.
    created: RwLock<Vec<CreationListener>>,
    /// Whether a fleet sync (feature `redis`) runs on this registry.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fleet_shared: AtomicBool,
    /// The fleet sync running on this registry (what the snapshot reads).
    #[cfg(feature = "redis")]
    pub(crate) fleet: std::sync::Mutex<std::sync::Weak<crate::fleet::FleetInner>>,
    /// Bounds on breakers of dynamic-name call sites; see `set_dynamic_limits`.
    dynamic: dynamic::Limits,
    /// The configuration by name in force (see `apply`).
    settings: RwLock<Settings>,
    /// What the creator of each bulkhead declared (what settings layer on).
    bulkhead_declared: DashMap<Arc<str>, BulkheadValues>,
    /// What the creator of each rate limiter declared.
    rate_declared: DashMap<Arc<str>, RateLimitValues>,
    /// What the creator of each hedge declared.
    hedge_declared: DashMap<Arc<str>, resilience_spec::HedgeValues>,
    /// Faults and latency injected by name (feature `chaos`).
    #[cfg(feature = "chaos")]
    pub(crate) chaos: crate::chaos::Chaos,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            named: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            listeners: Arc::default(),
            bulkheads: DashMap::new(),
            budgets: DashMap::new(),
            rate_limiters: DashMap::new(),
            hedges: DashMap::new(),
            created: RwLock::default(),
            fleet_shared: AtomicBool::new(false),
            #[cfg(feature = "redis")]
            fleet: std::sync::Mutex::default(),
            dynamic: dynamic::Limits::default(),
            settings: RwLock::default(),
            bulkhead_declared: DashMap::new(),
            rate_declared: DashMap::new(),
            hedge_declared: DashMap::new(),
            #[cfg(feature = "chaos")]
            chaos: crate::chaos::Chaos::default(),
        }
    }
}

type CreationListener = Arc<dyn Fn(&CircuitBreaker) + Send + Sync>;

/// The status of everything in a [`Registry`], each list sorted by name.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Snapshot {
    /// Every circuit breaker, named and private.
    pub breakers: Vec<BreakerStatus>,
    /// Every bulkhead.
    pub bulkheads: Vec<BulkheadStatus>,
    /// Every retry budget.
    pub retry_budgets: Vec<BudgetStatus>,
    /// Every rate limiter.
    pub rate_limiters: Vec<RateLimitStatus>,
    /// Every hedge shared by name.
    pub hedges: Vec<crate::HedgeStatus>,
    /// Every adaptive bulkhead shared by name (the process-wide registry's
    /// snapshot only).
    pub adaptive_bulkheads: Vec<crate::AdaptiveBulkheadStatus>,
    /// Every `#[coalesce]` call site's coalescer (the process-wide
    /// registry's snapshot only).
    pub coalescers: Vec<crate::CoalesceStatus>,
    /// Every annotated call site of the program with the settings in force
    /// for it (the process-wide registry's snapshot only), in the order of
    /// [`manifest::call_sites`](crate::manifest::call_sites).
    pub call_sites: Vec<crate::manifest::SiteStatus>,
    /// This instance's view of its fleet, if the registry is shared through
    /// Redis (feature `redis`): its id, the Redis target, the live members.
    #[cfg(feature = "redis")]
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub fleet: Option<crate::FleetStatus>,
}

impl Snapshot {
    /// The breaker named `name`, if present.
    pub fn breaker(&self, name: &str) -> Option<&BreakerStatus> {
        self.breakers.iter().find(|b| &*b.name == name)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.named.len())
            .field("bulkheads", &self.bulkheads.len())
            .field("retry_budgets", &self.budgets.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The breaker named `name`, if one exists: a named one, or the private
    /// breaker of an unnamed call site by its default name
    /// (`my_crate::adapters::ReportsApi::fetch_report`).
    pub fn get(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        self.named.get(name).map(|n| n.breaker.clone())
    }

    /// The breaker named `name` if it may be shared with a fleet: not the
    /// private breaker of an unnamed call site. (The fleet's lookups by name
    /// belong here rather than on [`get`](Self::get), which finds those too.)
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn shared(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        self.named
            .get(name)
            .filter(|n| !n.private.load(Ordering::Acquire))
            .map(|n| n.breaker.clone())
    }

    /// Creates the breaker `name` with `config`, before any call site does;
    /// this configuration wins over every call site's.
    ///
    /// `name` may be the default name of an unnamed call site
    /// (`my_crate::adapters::ReportsApi::fetch_report`): that call site then
    /// uses this breaker, which stays private to it.
    ///
    /// # Errors
    ///
    /// [`AlreadyExists`] (carrying the existing breaker) if `name` is taken.
    pub fn configure(
        &self,
        name: impl Into<Arc<str>>,
        config: BreakerConfig,
    ) -> Result<Arc<CircuitBreaker>, AlreadyExists> {
        let name = name.into();
        match self.named.entry(name.clone()) {
            Entry::Occupied(e) => Err(AlreadyExists {
                existing: e.get().breaker.clone(),
            }),
            Entry::Vacant(e) => {
                // Reserved for the unnamed call site whose default name this is.
                let private = crate::manifest::is_default_breaker_name(&name);
                let breaker = if private {
                    self.create_private(name, config)
                } else {
                    self.create(name, config)
                };
                let named = Named::new(breaker.clone(), Origin::Configured, false);
                named.private.store(private, Ordering::Release);
                e.insert(named);
                if !private {
                    self.notify_created(&breaker);
                }
                Ok(breaker)
            }
        }
    }

    /// The breaker named `name`, created with `config` on first use.
    ///
    /// If the breaker exists and was created by a call site with a different
    /// configuration, the existing breaker is returned and a `tracing` warning
    /// names both configurations (once per distinct configuration). A breaker
    /// created by [`configure`](Self::configure) silently wins.
    pub fn breaker(&self, name: &str, config: &BreakerConfig) -> Arc<CircuitBreaker> {
        self.breaker_with(name, config, |_| {})
    }

    /// [`breaker`](Self::breaker), running `on_create` on the breaker if this
    /// call created it (the macros attach `on_open`-style callbacks this way).
    ///
    /// A breaker obtained this way is never evicted (see
    /// [`set_dynamic_limits`](Self::set_dynamic_limits)).
    #[inline]
    pub(crate) fn breaker_with(
        &self,
        name: &str,
        config: &BreakerConfig,
        on_create: impl FnOnce(&CircuitBreaker),
    ) -> Arc<CircuitBreaker> {
        if let Some(named) = self.named.get(name) {
            // Pinned: no longer evictable (written once, not on every lookup).
            if named.dynamic.load(Ordering::Relaxed) {
                named.dynamic.store(false, Ordering::Relaxed);
            }
            check_config(&named, config);
            return named.breaker.clone();
        }
        self.breaker_slow(name, config, on_create, false)
    }

    /// Creates (or finds) the breaker `name`; `dynamic` marks it evictable.
    #[cold]
    fn breaker_slow(
        &self,
        name: &str,
        config: &BreakerConfig,
        on_create: impl FnOnce(&CircuitBreaker),
        dynamic: bool,
    ) -> Arc<CircuitBreaker> {
        let mut created = false;
        let named = self.named.entry(Arc::from(name)).or_insert_with(|| {
            let breaker = self.create(Arc::from(name), *config);
            // Before anyone can reach it: the fleet puts it in the fleet's state.
            self.notify_created(&breaker);
            on_create(&breaker);
            created = true;
            let origin = Origin::CallSite {
                warned: Mutex::new(Vec::new()),
            };
            let named = Named::new(breaker, origin, dynamic);
            named.last_used.store(self.dynamic.now(), Ordering::Relaxed);
            named
        });
        if !dynamic {
            named.dynamic.store(false, Ordering::Relaxed);
        }
        check_config(&named, config);
        let breaker = named.breaker.clone();
        drop(named);
        if created {
            self.settle(&breaker);
        }
        if created && dynamic {
            self.dynamic.count.fetch_add(1, Ordering::Relaxed);
        }
        breaker
    }

    /// A breaker for `name`, with the callbacks that call sites declare for
    /// that name (`#[circuit_breaker(name = "..", on_open = ..)]`) attached
    /// before anyone can use it.
    fn create(&self, name: Arc<str>, config: BreakerConfig) -> Arc<CircuitBreaker> {
        let breaker = self.create_private(name, config);
        crate::manifest::attach_declared_callbacks(&breaker);
        breaker
    }

    /// A breaker for an unnamed call site: only its own callbacks apply.
    /// Created with the settings in force for its name, over `config`.
    fn create_private(&self, name: Arc<str>, config: BreakerConfig) -> Arc<CircuitBreaker> {
        let in_force = self.breaker_in_force(&name, &config.values());
        let mut breaker =
            CircuitBreaker::with_listeners(name, in_force, Some(self.listeners.clone()));
        breaker.set_declared(config);
        Arc::new(breaker)
    }

    /// A breaker just created, with the settings in force now (an `apply`
    /// may have run while it was created).
    fn settle(&self, breaker: &CircuitBreaker) {
        breaker.reconfigure(self.breaker_in_force(breaker.name(), breaker.declared()));
    }

    fn notify_created(&self, breaker: &CircuitBreaker) {
        let listeners = self.created.read().unwrap_or_else(PoisonError::into_inner);
        for listener in listeners.iter() {
            listener(breaker);
        }
    }

    /// Calls `listener` with every named breaker created from now on, before
    /// the breaker is reachable by anyone (so before its first call). It runs
    /// while the registry creates the breaker: it must not call back into the
    /// registry.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_named_breaker_created(
        &self,
        listener: impl Fn(&CircuitBreaker) + Send + Sync + 'static,
    ) {
        self.created
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(listener));
    }

    /// Every named breaker (those a fleet shares): not the private breakers
    /// of unnamed call sites.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn named_breakers(&self) -> Vec<Arc<CircuitBreaker>> {
        self.named
            .iter()
            .filter(|n| !n.private.load(Ordering::Acquire))
            .map(|n| n.breaker.clone())
            .collect()
    }

    /// Calls `listener` on every transition of every breaker of this registry,
    /// present and future. A listener that panics is logged and skipped.
    ///
    /// ```
    /// use resilience::{registry, CircuitState};
    ///
    /// registry().on_transition(|t| {
    ///     if t.to == CircuitState::Open {
    ///         eprintln!("{} opened: {}", t.name, t.cause);
    ///     }
    /// });
    /// ```
    pub fn on_transition(&self, listener: impl Fn(&Transition) + Send + Sync + 'static) {
        let listener: Listener = Arc::new(listener);
        self.listeners.add(listener);
    }

    /// Opens the breaker `name` until it is reset; `false` if there is none.
    pub fn force_open(&self, name: &str) -> bool {
        self.get(name).map(|b| b.force_open()).is_some()
    }

    /// Lets every call of breaker `name` through until it is reset; `false`
    /// if there is none.
    pub fn disable(&self, name: &str) -> bool {
        self.get(name).map(|b| b.disable()).is_some()
    }

    /// Closes the breaker `name` and forgets its failures; `false` if there
    /// is none.
    pub fn reset(&self, name: &str) -> bool {
        self.get(name).map(|b| b.reset()).is_some()
    }

    /// A new breaker private to one call site (what an attribute without
    /// `name` uses), registered under `name` so that [`get`](Self::get),
    /// [`reset`](Self::reset), [`force_open`](Self::force_open) and the
    /// snapshot find it. It is never shared with a fleet.
    ///
    /// If [`configure`](Self::configure) created `name` and no call site took
    /// it yet, that breaker is returned: its configuration wins over
    /// `config`. If `name` is taken otherwise (another call site with the
    /// same default name, or a named breaker), the new breaker is named
    /// `name#2` (or `#3`, …: the first one free) and a `tracing` warning says
    /// so, once.
    pub(crate) fn private_breaker(
        &self,
        name: &str,
        config: &BreakerConfig,
    ) -> Arc<CircuitBreaker> {
        self.unnamed_breaker(name, config, |_| {})
    }

    /// [`private_breaker`](Self::private_breaker), running `on_create` on the
    /// breaker when this call takes it (the call site's callbacks).
    pub(crate) fn unnamed_breaker(
        &self,
        name: &str,
        config: &BreakerConfig,
        on_create: impl FnOnce(&CircuitBreaker),
    ) -> Arc<CircuitBreaker> {
        let mut on_create = Some(on_create);
        for n in 1u32.. {
            let candidate: Arc<str> = if n == 1 {
                Arc::from(name)
            } else {
                Arc::from(format!("{name}#{n}"))
            };
            // The callbacks are attached under the map's lock: before anyone
            // can reach the breaker by its name.
            let breaker = match self.named.entry(candidate.clone()) {
                Entry::Vacant(e) => {
                    let breaker = self.create_private(candidate, *config);
                    if let Some(on_create) = on_create.take() {
                        on_create(&breaker);
                    }
                    let named = Named::new(breaker.clone(), Origin::Unnamed, false);
                    named.private.store(true, Ordering::Release);
                    named.claimed.store(true, Ordering::Relaxed);
                    e.insert(named);
                    breaker
                }
                Entry::Occupied(e) => {
                    let named = e.get();
                    let free = matches!(named.origin, Origin::Configured)
                        && !named.claimed.swap(true, Ordering::AcqRel);
                    if !free {
                        continue;
                    }
                    named.private.store(true, Ordering::Release);
                    if let Some(on_create) = on_create.take() {
                        on_create(&named.breaker);
                    }
                    named.breaker.clone()
                }
            };
            if n > 1 {
                tracing::warn!(
                    target: "resilience",
                    breaker = breaker.name(),
                    "two circuit breakers without `name` have the default name `{name}`; this one is `{}`. Give them names (`name = \"..\"`) to choose them",
                    breaker.name(),
                );
            }
            return breaker;
        }
        unreachable!("u32 names ran out")
    }

    /// Closes every breaker and forgets its failures (for tests).
    pub fn reset_all(&self) {
        for breaker in self.all() {
            breaker.reset();
        }
    }

    /// The status of every breaker (named and private), bulkhead and retry
    /// budget, each list sorted by name. The process-wide registry's
    /// snapshot also shows every breaker the program declares with a literal
    /// name (per the [`manifest`](crate::manifest)) before its first call:
    /// closed, with no calls.
    pub fn snapshot(&self) -> Snapshot {
        let mut breakers: Vec<_> = self.all().iter().map(|b| b.status()).collect();
        breakers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut bulkheads: Vec<_> = self.bulkheads.iter().map(|b| b.status()).collect();
        bulkheads.sort_by(|a, b| a.name.cmp(&b.name));
        let mut retry_budgets: Vec<_> = self.budgets.iter().map(|b| b.status()).collect();
        retry_budgets.sort_by(|a, b| a.name.cmp(&b.name));
        let mut rate_limiters: Vec<_> = self.rate_limiters.iter().map(|l| l.status()).collect();
        rate_limiters.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hedges: Vec<_> = self.hedges.iter().map(|h| h.status()).collect();
        hedges.sort_by(|a, b| a.name.cmp(&b.name));
        let global = std::ptr::eq(self, registry());
        let (mut call_sites, mut adaptive_bulkheads, mut coalescers) =
            (Vec::new(), Vec::new(), Vec::new());
        if global {
            self.declared_breakers(&mut breakers);
            for site in crate::manifest::call_sites() {
                call_sites.push(site.status());
                if let crate::manifest::Policy::Coalesce(c) = site.policy() {
                    coalescers.push(c.status());
                }
            }
            adaptive_bulkheads = crate::AdaptiveBulkhead::statuses_of_shared();
        }
        coalescers.sort_by(|a: &crate::CoalesceStatus, b| a.name.cmp(&b.name));
        #[cfg(feature = "redis")]
        let fleet = self.fleet_inner().map(|fleet| {
            fleet.annotate(&mut breakers, |name| self.shared(name).is_some());
            fleet.status()
        });
        adaptive_bulkheads.sort_by(|a: &crate::AdaptiveBulkheadStatus, b| a.name.cmp(&b.name));
        Snapshot {
            breakers,
            bulkheads,
            retry_budgets,
            rate_limiters,
            hedges,
            adaptive_bulkheads,
            coalescers,
            call_sites,
            #[cfg(feature = "redis")]
            fleet,
        }
    }

    /// Adds to `breakers` (sorted by name) the status of every breaker the
    /// program declares with a literal name that is not created yet: closed,
    /// no calls, its settings in force. Nothing is created (a breaker may
    /// still be `configure`d before its first call).
    fn declared_breakers(&self, breakers: &mut Vec<BreakerStatus>) {
        use crate::manifest::{Name, Policy};
        // Every created breaker, named or private, sorted by name; the
        // declared ones follow as they are added (a name can be declared at
        // several call sites).
        let created = breakers.len();
        for site in crate::manifest::call_sites() {
            let (Policy::Breaker(b), Name::Static(name)) = (site.policy(), site.name()) else {
                continue;
            };
            let (made, declared) = breakers.split_at(created);
            if made.binary_search_by(|s| (*s.name).cmp(name)).is_ok()
                || declared.iter().any(|s| &*s.name == name)
            {
                continue;
            }
            let config = self.breaker_in_force(name, &b.config().values());
            breakers.push(CircuitBreaker::new(name, config).status());
        }
        breakers.sort_by(|a, b| a.name.cmp(&b.name));
    }

    fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        self.named.iter().map(|n| n.breaker.clone()).collect()
    }
}

impl Named {
    fn new(breaker: Arc<CircuitBreaker>, origin: Origin, dynamic: bool) -> Self {
        Named {
            breaker,
            origin,
            dynamic: AtomicBool::new(dynamic),
            last_used: AtomicU64::new(0),
            used: AtomicBool::new(false),
            private: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
        }
    }
}

fn check_config(named: &Named, asked: &BreakerConfig) {
    let Origin::CallSite { warned } = &named.origin else {
        return;
    };
    // Compared with what the first call site declared, not with what is in
    // force (a configuration by name may have changed that).
    let existing = named.breaker.declared_config();
    if existing == asked {
        return;
    }
    let mut warned = warned.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.contains(asked) {
        return;
    }
    warned.push(*asked);
    tracing::warn!(
        target: "resilience",
        breaker = named.breaker.name(),
        "circuit breaker `{}` is declared with two configurations; the first one is used.\n  in use:  {existing}\n  ignored: {asked}\nGive the call sites one configuration, or set it once with `registry().configure(..)`",
        named.breaker.name(),
    );
}

mod already_exists;
mod apply;
mod dynamic;
mod guards;
mod health;
mod hedges;
#[cfg(test)]
mod tests;
