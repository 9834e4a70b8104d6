//! One test's registry, the thread-local that points at it, and what the
//! test's calls recorded (retries' attempts and sleeps).

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;

use crate::{AdaptiveBulkhead, AdaptiveConfig, Registry};

thread_local! {
    /// The isolated registry this thread's code runs against, if any.
    static CURRENT: Cell<Option<&'static Isolated>> = const { Cell::new(None) };
}

/// One test's world: its registry, the per-call-site entries the
/// production path caches in `static`s, and its adaptive bulkheads (which
/// are shared by name outside any registry).
pub(crate) struct Isolated {
    registry: Registry,
    /// Call site (its `static`'s address) -> what it resolved to here.
    sites: DashMap<usize, &'static (dyn Any + Send + Sync)>,
    adaptive: DashMap<Arc<str>, Arc<AdaptiveBulkhead>>,
    /// Retry name -> its finished calls, oldest first.
    retries: Mutex<HashMap<String, Vec<RetryCall>>>,
}

impl std::fmt::Debug for Isolated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolated")
            .field("call_sites", &self.sites.len())
            .finish_non_exhaustive()
    }
}

/// One finished call through a retry.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetryCall {
    pub(crate) attempts: u32,
    pub(crate) sleeps: Vec<Duration>,
}

impl Isolated {
    /// A new world, alive until the process exits (references into its
    /// registry are handed out as `'static`).
    pub(crate) fn new() -> &'static Isolated {
        Box::leak(Box::new(Isolated {
            registry: Registry::new(),
            sites: DashMap::new(),
            adaptive: DashMap::new(),
            retries: Mutex::default(),
        }))
    }

    /// The test's registry.
    pub(crate) fn registry(&'static self) -> &'static Registry {
        &self.registry
    }

    /// Runs `f` with this world current on this thread (the previous one,
    /// if any, back afterwards, also on a panic).
    pub(crate) fn run<R>(&'static self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<&'static Isolated>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self))));
        f()
    }

    /// The world of the code running on this thread, if any.
    #[inline]
    pub(crate) fn current() -> Option<&'static Isolated> {
        current()
    }

    /// Makes this world current on a runtime thread that just started.
    pub(crate) fn enter_thread(&'static self) {
        CURRENT.with(|c| c.set(Some(self)));
    }
}

/// A runtime thread stops: it belongs to no test any more.
pub(crate) fn leave_thread() {
    CURRENT.with(|c| c.set(None));
}

/// The isolated registry of the code running on this thread, if any.
#[inline]
pub(crate) fn current() -> Option<&'static Isolated> {
    CURRENT.try_with(Cell::get).ok().flatten()
}

/// Whether this thread's code runs in a test's isolated registry.
#[inline]
pub(crate) fn in_test() -> bool {
    current().is_some()
}

/// What the call site at `key` resolves to in the current test, made by
/// `make` on its first use there; `None` outside a test (the caller uses
/// its own cache).
#[inline]
pub(crate) fn site<T: Any + Send + Sync>(
    key: *const (),
    make: impl FnOnce() -> T,
) -> Option<&'static T> {
    let scope = current()?;
    let key = key as usize;
    if let Some(found) = scope.sites.get(&key) {
        return found.downcast_ref::<T>();
    }
    // Made outside the map's lock: `make` may resolve other sites.
    let made: &'static (dyn Any + Send + Sync) = Box::leak(Box::new(make()));
    let entry = *scope.sites.entry(key).or_insert(made);
    entry.downcast_ref::<T>()
}

/// The adaptive bulkhead `name` of the current test, if in one.
pub(crate) fn scoped_adaptive(
    name: &str,
    config: &AdaptiveConfig,
) -> Option<Arc<AdaptiveBulkhead>> {
    let scope = current()?;
    if let Some(b) = scope.adaptive.get(name) {
        return Some(b.clone());
    }
    Some(
        scope
            .adaptive
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(AdaptiveBulkhead::new(name, *config)))
            .clone(),
    )
}

/// Every adaptive bulkhead of the current test, if in one.
pub(crate) fn scoped_adaptive_all() -> Option<Vec<Arc<AdaptiveBulkhead>>> {
    let scope = current()?;
    Some(scope.adaptive.iter().map(|b| b.value().clone()).collect())
}

/// A call through the retry `name` finished after `attempts`, having slept
/// `sleeps`: recorded in the current test, if in one.
pub(crate) fn record_retry(name: &str, attempts: u32, sleeps: Vec<Duration>) {
    let Some(scope) = current() else { return };
    scope
        .retries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name.to_owned())
        .or_default()
        .push(RetryCall { attempts, sleeps });
}

/// The last finished call through the retry `name` in this test, for the
/// assertion `what`.
pub(crate) fn last_retry(name: &str, what: &str) -> RetryCall {
    let Some(scope) = current() else {
        panic!(
            "resilience::testing::{what}(\"{name}\") reads the calls of an isolated registry: run the test with `#[resilience::test]` (or inside `resilience::testing::run` / `isolated`)"
        );
    };
    let retries = scope.retries.lock().unwrap_or_else(PoisonError::into_inner);
    match retries.get(name).and_then(|calls| calls.last()) {
        Some(call) => call.clone(),
        None => {
            let mut seen: Vec<&String> = retries.keys().collect();
            seen.sort();
            panic!(
                "no call through a retry named `{name}` has finished in this test; {}",
                super::known(seen.into_iter().cloned())
            )
        }
    }
}
