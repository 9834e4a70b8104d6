//! Faults and latency injected by policy name (feature `chaos`), for game
//! days and tests: errors, `Ok` values, latency and panics, each at a rate,
//! switched on and off at run time, optionally for the next N calls only.
//!
//! An injection for a name applies to every annotated function that has the
//! name: the static `name` of any of its layers (`#[circuit_breaker(name =
//! "unifi")]`, a bulkhead's, a rate limiter's, a hedge's, a coalescer's) or
//! its default name, `module::function` (a breaker's run-time `name = expr`
//! is not one of them). It takes the place of the function's body,
//! innermost, so an injected outcome passes through every layer exactly as
//! a real one would: the breaker counts an injected error (and records an
//! injected panic as a failure), the retry retries it, the timeout cuts
//! injected latency, a bulkhead's slot stays taken during it, a fallback
//! answers. Each attempt of a retry (each hedged attempt) is one
//! call to the injection.
//!
//! ```
//! use std::time::Duration;
//! use resilience::chaos::{self, Injection};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ApiError {
//!     #[error("upstream answered 503")]
//!     Unavailable,
//!     #[error(transparent)]
//!     Resilience(#[from] resilience::Error),
//! }
//!
//! #[resilience::circuit_breaker(name = "chaos-doc-unifi", failure_threshold = 3)]
//! async fn list_devices() -> Result<Vec<String>, ApiError> {
//!     Ok(vec!["ap-1".to_owned()])
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Every call fails as the upstream would, for the next 3 calls.
//! chaos::inject("chaos-doc-unifi", Injection::new().error(|| ApiError::Unavailable).calls(3))?;
//! for _ in 0..3 {
//!     assert!(matches!(list_devices().await, Err(ApiError::Unavailable)));
//! }
//! // The breaker counted them: it is open now.
//! let rejected = list_devices().await.unwrap_err();
//! assert!(matches!(rejected, ApiError::Resilience(e) if e.is_circuit_open()));
//! assert_eq!(chaos::status("chaos-doc-unifi").unwrap().errors, 3);
//! # Ok(()) }
//! ```
//!
//! # From a configuration file
//!
//! A file cannot build the program's error values, so the program registers
//! named constructors ([`errors()`], [`values()`]) and the file names one;
//! [`Registry::apply`](crate::Registry::apply) puts the `chaos` section in
//! force with the rest of the settings (feature `serde` to read them):
//!
//! ```toml
//! [chaos.unifi]
//! error = "unavailable"     # registered: chaos::errors().register("unavailable", || ApiError::Unavailable)
//! error_rate = 0.5
//! latency = "200ms"
//! latency_rate = 0.1
//! enabled = true
//! calls = 100
//! ```
//!
//! | key | value | default |
//! |---|---|---|
//! | `error` | the name of a registered error constructor | none |
//! | `error_rate` | share of calls (0 to 1) that fail with it | 1 |
//! | `value` | the name of a registered `Ok` value constructor | none |
//! | `value_rate` | share of calls that return it | 1 |
//! | `latency` | a duration added before the call (at most 1 h) | none |
//! | `latency_rate` | share of calls delayed | 1 |
//! | `panic_rate` | share of calls that panic | 0 |
//! | `enabled` | the switch | `true` |
//! | `calls` | only the next N calls (at least 1) | every call |
//!
//! Names are checked against the program's declared names (with a "did you
//! mean"), constructor names against the catalogs, rates against 0..=1. An
//! entry left unchanged by a later `apply` keeps its counts and calls left;
//! one the settings no longer name is removed.
//!
//! # Scope and cost
//!
//! The injections live in a [`Registry`] ([`Registry::chaos`]),
//! the one [`registry()`](crate::registry()) returns at the call: the
//! process-wide one, or a test's own. While no injection is active anywhere
//! in the process, an annotated call pays one relaxed atomic load; without
//! the feature, nothing at all.
//!
//! Errors and `Ok` values are injected into functions whose error (`Ok`)
//! type is owned and is the constructor's type; a function whose type may
//! borrow (a lifetime, a reference, `Self`, a type parameter) or that has
//! another type gets only latency and panics, with one warning per function.

// `pub(crate)`: the expansions' glue (`__private`) re-exports two of their
// items, `Maker` and `Typed`.
pub(crate) mod armed;
pub(crate) mod catalog;
mod injection;
mod settings;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;

use armed::Armed;
pub(crate) use armed::Decision;
pub use armed::{Fault, InjectionStatus};
pub use catalog::Catalog;
pub use injection::{Injection, InjectionError, InjectionProblem};

use crate::registry::{registry, Registry};

/// Active injections in every table of the process: while 0, a call reads
/// this and nothing else.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether any table of the process has an active injection.
#[inline(always)]
pub(crate) fn active_anywhere() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// The draw of one call of the function named `names` (its default name
/// last), in the registry in scope.
#[cold]
#[inline(never)]
pub(crate) fn decide(names: &[&'static str]) -> Option<Decision> {
    registry().chaos.decide(names)
}

/// The injections of one [`Registry`], by policy name, with the catalogs of
/// named constructors they use ([`Registry::chaos`]; the free functions of
/// this module use the one of [`registry()`](crate::registry())).
///
/// ```
/// use resilience::chaos::Injection;
/// use resilience::Registry;
///
/// let registry = Registry::new();
/// let chaos = registry.chaos();
/// chaos.inject("search", Injection::new().panic_rate(0.01))?;
/// assert!(chaos.is_active());
/// chaos.disable("search");
/// assert!(!chaos.is_active());
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
pub struct Chaos {
    /// Active injections of this table.
    active: AtomicUsize,
    injections: DashMap<Arc<str>, Arc<Armed>, foldhash::fast::RandomState>,
    errors: Catalog,
    values: Catalog,
    /// Set by [`seed`](Self::seed): every draw comes from it.
    rng: Mutex<Option<fastrand::Rng>>,
    seeded: AtomicBool,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            active: AtomicUsize::new(0),
            injections: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            errors: Catalog::new("error"),
            values: Catalog::new("value"),
            rng: Mutex::new(None),
            seeded: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("active", &self.active.load(Ordering::Relaxed))
            .field("injections", &self.statuses())
            .field("errors", &self.errors)
            .field("values", &self.values)
            .finish()
    }
}

impl Chaos {
    /// Puts `injection` in force for `name`, replacing the one there (whose
    /// counts start over). The name need not exist yet.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("db", Injection::new().latency(Duration::from_millis(300)))?;
    /// assert_eq!(registry.chaos().status("db").unwrap().calls, 0);
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InjectionError`] with every problem: a rate outside 0..=1, a rate
    /// without its fault, `calls = 0`, a latency of zero or above one hour,
    /// nothing to inject, a constructor name not registered (with a "did
    /// you mean"). What was in force for `name` stays.
    pub fn inject(&self, name: &str, injection: Injection) -> Result<(), InjectionError> {
        let armed = self.arm(name, injection, false)?;
        self.install(armed);
        Ok(())
    }

    /// Checks `injection` and resolves its constructors.
    pub(crate) fn arm(
        &self,
        name: &str,
        injection: Injection,
        from_settings: bool,
    ) -> Result<Armed, InjectionError> {
        let mut problems = injection.check();
        let (error, value, unresolved) = injection.resolve(&self.errors, &self.values);
        problems.extend(unresolved);
        if !problems.is_empty() {
            return Err(InjectionError::new(name, problems));
        }
        Ok(Armed::new(name, injection, error, value, from_settings))
    }

    pub(crate) fn install(&self, armed: Armed) {
        let armed = Arc::new(armed);
        armed.refresh(self);
        if let Some(old) = self.injections.insert(armed.name.clone(), armed) {
            old.set_active(self, false);
        }
    }

    /// Switches the injection for `name` on (with its calls left, if
    /// limited); `false` when there is none.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("db", Injection::new().panic_rate(1.0).enabled(false))?;
    /// assert!(!registry.chaos().is_active());
    /// assert!(registry.chaos().enable("db"));
    /// assert!(registry.chaos().is_active());
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn enable(&self, name: &str) -> bool {
        self.switch(name, true)
    }

    /// Switches the injection for `name` off, keeping it (and its counts)
    /// for [`enable`](Self::enable); `false` when there is none.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("db", Injection::new().panic_rate(1.0))?;
    /// assert!(registry.chaos().disable("db"));
    /// assert!(!registry.chaos().status("db").unwrap().enabled);
    /// assert!(!registry.chaos().disable("nothing-injected"));
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn disable(&self, name: &str) -> bool {
        self.switch(name, false)
    }

    fn switch(&self, name: &str, enabled: bool) -> bool {
        let Some(armed) = self.injections.get(name).map(|a| Arc::clone(&a)) else {
            return false;
        };
        armed.set_enabled(self, enabled);
        true
    }

    /// Removes the injection for `name`; `false` when there is none.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("db", Injection::new().panic_rate(1.0))?;
    /// assert!(registry.chaos().remove("db"));
    /// assert!(registry.chaos().status("db").is_none());
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn remove(&self, name: &str) -> bool {
        match self.injections.remove(name) {
            Some((_, armed)) => {
                armed.set_active(self, false);
                true
            }
            None => false,
        }
    }

    /// Removes every injection (the catalogs stay).
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("a", Injection::new().panic_rate(1.0))?;
    /// registry.chaos().inject("b", Injection::new().panic_rate(1.0))?;
    /// registry.chaos().clear();
    /// assert!(registry.chaos().statuses().is_empty());
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn clear(&self) {
        let names: Vec<Arc<str>> = self.injections.iter().map(|e| e.key().clone()).collect();
        for name in names {
            self.remove(&name);
        }
    }

    /// Makes every later draw of this table come from one generator seeded
    /// with `seed`, so that a run (single-threaded, in a given order of
    /// calls) injects the same faults into the same calls every time.
    ///
    /// ```
    /// let registry = resilience::Registry::new();
    /// registry.chaos().seed(7);
    /// ```
    pub fn seed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(fastrand::Rng::with_seed(seed));
        self.seeded.store(true, Ordering::Release);
    }

    /// What the injection for `name` did so far.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let registry = resilience::Registry::new();
    /// registry.chaos().inject("db", Injection::new().panic_rate(1.0).calls(5))?;
    /// let status = registry.chaos().status("db").unwrap();
    /// assert_eq!((status.calls, status.calls_left, status.active), (0, Some(5), true));
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn status(&self, name: &str) -> Option<InjectionStatus> {
        self.injections.get(name).map(|a| a.status())
    }

    /// Every injection's [`status`](Self::status), sorted by name.
    ///
    /// ```
    /// let registry = resilience::Registry::new();
    /// assert!(registry.chaos().statuses().is_empty());
    /// ```
    pub fn statuses(&self) -> Vec<InjectionStatus> {
        let mut all: Vec<InjectionStatus> = self.injections.iter().map(|a| a.status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Whether any injection of this table is switched on with calls left.
    ///
    /// ```
    /// assert!(!resilience::Registry::new().chaos().is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// The named error constructors this table's injections may use (a
    /// file's `error = "…"`).
    ///
    /// ```
    /// let registry = resilience::Registry::new();
    /// registry.chaos().errors().register("refused", || std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(registry.chaos().errors().names(), ["refused"]);
    /// ```
    pub fn errors(&self) -> &Catalog {
        &self.errors
    }

    /// The named `Ok` value constructors this table's injections may use (a
    /// file's `value = "…"`).
    ///
    /// ```
    /// let registry = resilience::Registry::new();
    /// registry.chaos().values().register("empty", String::new);
    /// assert!(registry.chaos().values().contains("empty"));
    /// ```
    pub fn values(&self) -> &Catalog {
        &self.values
    }

    /// The draw of one call of the function named `names`.
    fn decide(&self, names: &[&'static str]) -> Option<Decision> {
        if self.active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        for name in names {
            if let Some(armed) = self.injections.get(*name) {
                if armed.is_active() {
                    return armed.draw(self);
                }
            }
        }
        None
    }

    pub(crate) fn count_active(&self, active: bool) {
        if active {
            self.active.fetch_add(1, Ordering::AcqRel);
            ACTIVE.fetch_add(1, Ordering::AcqRel);
        } else {
            self.active.fetch_sub(1, Ordering::AcqRel);
            ACTIVE.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A number in [0, 1).
    pub(crate) fn draw(&self) -> f64 {
        if self.seeded.load(Ordering::Acquire) {
            if let Some(rng) = self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut()
            {
                return rng.f64();
            }
        }
        fastrand::f64()
    }

    /// The injections a configuration file put in force, by name.
    pub(crate) fn set_by_settings(&self) -> Vec<(Arc<str>, Injection)> {
        self.injections
            .iter()
            .filter(|a| a.from_settings)
            .map(|a| (a.key().clone(), a.spec.clone()))
            .collect()
    }
}

/// A table that goes away (a test's registry) takes its active injections
/// out of the process's count.
impl Drop for Chaos {
    fn drop(&mut self) {
        let this: &Chaos = self;
        for armed in this.injections.iter() {
            armed.set_active(this, false);
        }
    }
}

impl Registry {
    /// This registry's injections and their catalogs (feature `chaos`).
    ///
    /// ```
    /// use resilience::{chaos::Injection, registry};
    ///
    /// registry().chaos().inject("registry-chaos-doc", Injection::new().panic_rate(0.5))?;
    /// assert!(registry().chaos().status("registry-chaos-doc").is_some());
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn chaos(&self) -> &Chaos {
        &self.chaos
    }
}

/// [`Chaos::inject`] on the [`registry()`](crate::registry()) in scope.
///
/// ```
/// use std::time::Duration;
/// use resilience::chaos::{self, Injection};
///
/// chaos::inject("inject-doc", Injection::new().latency(Duration::from_millis(200)).latency_rate(0.1))?;
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
///
/// # Errors
///
/// As [`Chaos::inject`].
pub fn inject(name: &str, injection: Injection) -> Result<(), InjectionError> {
    registry().chaos().inject(name, injection)
}

/// [`Chaos::enable`] on the [`registry()`](crate::registry()) in scope.
///
/// ```
/// use resilience::chaos::{self, Injection};
///
/// chaos::inject("enable-doc", Injection::new().panic_rate(1.0).enabled(false))?;
/// assert!(chaos::enable("enable-doc"));
/// # chaos::remove("enable-doc");
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
pub fn enable(name: &str) -> bool {
    registry().chaos().enable(name)
}

/// [`Chaos::disable`] on the [`registry()`](crate::registry()) in scope.
///
/// ```
/// use resilience::chaos::{self, Injection};
///
/// chaos::inject("disable-doc", Injection::new().panic_rate(1.0))?;
/// assert!(chaos::disable("disable-doc"));
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
pub fn disable(name: &str) -> bool {
    registry().chaos().disable(name)
}

/// [`Chaos::remove`] on the [`registry()`](crate::registry()) in scope.
///
/// ```
/// use resilience::chaos::{self, Injection};
///
/// chaos::inject("remove-doc", Injection::new().panic_rate(1.0))?;
/// assert!(chaos::remove("remove-doc"));
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
pub fn remove(name: &str) -> bool {
    registry().chaos().remove(name)
}

/// [`Chaos::status`] on the [`registry()`](crate::registry()) in scope.
///
/// ```
/// assert!(resilience::chaos::status("status-doc-never-injected").is_none());
/// ```
pub fn status(name: &str) -> Option<InjectionStatus> {
    registry().chaos().status(name)
}

/// [`Chaos::errors`] of the [`registry()`](crate::registry()) in scope.
///
/// ```
/// #[derive(Debug)]
/// enum ApiError { Unavailable }
///
/// resilience::chaos::errors().register("unavailable", || ApiError::Unavailable);
/// ```
pub fn errors() -> &'static Catalog {
    registry().chaos().errors()
}

/// [`Chaos::values`] of the [`registry()`](crate::registry()) in scope.
///
/// ```
/// resilience::chaos::values().register("no-devices", Vec::<String>::new);
/// ```
pub fn values() -> &'static Catalog {
    registry().chaos().values()
}
