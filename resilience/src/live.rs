//! A value changed while running: every version is kept in an append-only
//! list and readers load the index of the current one, so a reader never
//! takes a lock and a reference it holds stays valid while a new version is
//! published. Configurations change rarely (an operator applies a file), so
//! keeping the old versions costs little; an equal version is reused rather
//! than stored twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

pub(crate) struct Versions<T> {
    all: boxcar::Vec<T>,
    current: AtomicUsize,
    /// Serialises writers (never taken by readers).
    write: Mutex<()>,
}

impl<T> Versions<T> {
    pub(crate) fn new(first: T) -> Self {
        let all = boxcar::Vec::new();
        let current = all.push(first);
        Versions {
            all,
            current: AtomicUsize::new(current),
            write: Mutex::new(()),
        }
    }

    /// The version in force.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        let index = self.current.load(Ordering::Acquire);
        // Only indexes of pushed, fully written entries are ever stored.
        match self.all.get(index) {
            Some(value) => value,
            None => unreachable!("a published version"),
        }
    }

    /// Publishes `value` as a new version.
    pub(crate) fn publish(&self, value: T) {
        let _write = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let index = self.all.push(value);
        self.current.store(index, Ordering::Release);
    }
}

impl<T: PartialEq> Versions<T> {
    /// Publishes `value` unless it is the version in force; an earlier equal
    /// version is reused. Returns whether the version in force changed.
    pub(crate) fn set(&self, value: T) -> bool {
        let _write = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load(Ordering::Acquire);
        let same = self.all.iter().find(|(_, v)| **v == value).map(|(i, _)| i);
        let index = match same {
            Some(index) if index == current => return false,
            Some(index) => index,
            None => self.all.push(value),
        };
        self.current.store(index, Ordering::Release);
        true
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Versions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::Versions;

    #[test]
    fn a_reference_outlives_the_next_version() {
        let v = Versions::new(1);
        let first = v.get();
        assert!(v.set(2));
        assert_eq!((*first, *v.get()), (1, 2));
        assert!(!v.set(2), "the version in force");
        assert!(v.set(1), "an earlier version, reused");
        assert_eq!(v.all.count(), 2);
        v.publish(3);
        assert_eq!(*v.get(), 3);
    }
}
