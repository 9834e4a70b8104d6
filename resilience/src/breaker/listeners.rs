//! Transition listeners: per breaker and per registry. A listener that panics
//! is reported and skipped; it never breaks the breaker or the call.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::Transition;

/// A function called on every transition.
pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Listeners {
    list: RwLock<Vec<Listener>>,
    /// Whether `list` has ever had a listener: spares the lock when not.
    any: AtomicBool,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.list.read().map_or(0, |l| l.len());
        write!(f, "Listeners({n})")
    }
}

impl Listeners {
    pub(crate) fn add(&self, listener: Listener) {
        self.list
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
        self.any.store(true, Ordering::Release);
    }

    /// Whether a listener was ever added.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Calls every listener; a panicking one is logged and the rest still run.
    pub(crate) fn notify(&self, transition: &Transition) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let list = self.list.read().unwrap_or_else(PoisonError::into_inner);
        for listener in list.iter() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| listener(transition))) {
                let why = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(non-string panic)");
                tracing::error!(
                    target: "resilience",
                    breaker = &*transition.name,
                    "a transition listener of circuit breaker `{}` panicked: {why}",
                    transition.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_counts_the_listeners() {
        let listeners = Listeners::default();
        assert_eq!(format!("{listeners:?}"), "Listeners(0)");
        assert!(!listeners.any());
        listeners.add(Arc::new(|_| {}));
        listeners.add(Arc::new(|_| {}));
        assert_eq!(format!("{listeners:?}"), "Listeners(2)");
        assert!(listeners.any());
    }
}
