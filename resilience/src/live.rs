//! A value changed while running: every version is kept in an append-only
//! list and readers load the index of the current one, so a reader never
//! takes a lock and a reference it holds stays valid while a new version is
//! published. Configurations change rarely (an operator applies a file), so
//! keeping the old versions costs little; an equal version is reused rather
//! than stored twice. The first version is stored inline (a breaker that is
//! never reconfigured costs a few words more than a plain field), later ones
//! in chunks of [`CHUNK`] allocated when first needed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Versions per chunk after the first.
const CHUNK: usize = 8;

struct Chunk<T> {
    items: [OnceLock<T>; CHUNK],
    next: OnceLock<Box<Chunk<T>>>,
}

impl<T> Chunk<T> {
    fn new() -> Box<Self> {
        Box::new(Chunk {
            items: std::array::from_fn(|_| OnceLock::new()),
            next: OnceLock::new(),
        })
    }
}

pub(crate) struct Versions<T> {
    first: T,
    rest: OnceLock<Box<Chunk<T>>>,
    current: AtomicUsize,
    /// How many versions are stored; serialises writers (never taken by
    /// readers).
    len: Mutex<usize>,
}

impl<T> Versions<T> {
    pub(crate) const fn new(first: T) -> Self {
        Versions {
            first,
            rest: OnceLock::new(),
            current: AtomicUsize::new(0),
            len: Mutex::new(1),
        }
    }

    /// The version in force.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        match self.current.load(Ordering::Acquire) {
            0 => &self.first,
            index => self.stored(index),
        }
    }

    /// Version `index` (> 0), which was stored before its index was published.
    #[cold]
    fn stored(&self, index: usize) -> &T {
        let (mut chunk, mut i) = (self.rest.get(), index - 1);
        while i >= CHUNK {
            chunk = chunk.and_then(|c| c.next.get());
            i -= CHUNK;
        }
        match chunk.and_then(|c| c.items[i].get()) {
            Some(value) => value,
            None => unreachable!("a published version is stored"),
        }
    }

    /// Stores `value` as version `index` (> 0).
    fn store(&self, index: usize, value: T) {
        let mut chunk = self.rest.get_or_init(Chunk::new);
        let mut i = index - 1;
        while i >= CHUNK {
            chunk = chunk.next.get_or_init(Chunk::new);
            i -= CHUNK;
        }
        let _ = chunk.items[i].set(value); // a fresh slot, under the writers' lock
    }

    /// Publishes `value` as a new version.
    pub(crate) fn publish(&self, value: T) {
        let mut len = self.len.lock().unwrap_or_else(PoisonError::into_inner);
        let index = *len;
        self.store(index, value);
        *len += 1;
        self.current.store(index, Ordering::Release);
    }
}

impl<T: PartialEq> Versions<T> {
    /// Publishes `value` unless it is the version in force; an earlier equal
    /// version is reused. Returns whether the version in force changed.
    pub(crate) fn set(&self, value: T) -> bool {
        let mut len = self.len.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load(Ordering::Acquire);
        let same = (0..*len).find(|&i| self.at(i) == &value);
        let index = match same {
            Some(index) if index == current => return false,
            Some(index) => index,
            None => {
                let index = *len;
                self.store(index, value);
                *len += 1;
                index
            }
        };
        self.current.store(index, Ordering::Release);
        true
    }

    fn at(&self, index: usize) -> &T {
        match index {
            0 => &self.first,
            i => self.stored(i),
        }
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
        assert_eq!(*v.len.lock().unwrap(), 2);
        v.publish(3);
        assert_eq!(*v.get(), 3);
    }

    #[test]
    fn versions_past_a_chunk_are_kept() {
        let v = Versions::new(0);
        for i in 1..40 {
            assert!(v.set(i));
            assert_eq!(*v.get(), i);
        }
        assert!(v.set(17));
        assert_eq!(*v.get(), 17);
    }
}
