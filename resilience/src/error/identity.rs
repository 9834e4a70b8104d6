//! Who an [`Error`](super::Error) is about. Breakers and bulkheads register
//! here when they are created and leave when they are dropped; an error
//! refers to one by slot and generation, packed with its kind into one
//! word. So a rejection builds its error with no allocation, no clock read
//! and no atomic read-modify-write (no reference count), and the error's
//! name and `retry_after` are looked up only when someone asks (cold).
//!
//! A slot is reused after its owner is dropped, with a new generation: an
//! error that outlives its breaker still tells its name until the slot is
//! taken again, and never names another breaker.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// Generations and slot indexes, as packed in an error.
pub(crate) const INDEX_BITS: u32 = 29;
const MAX_SLOTS: usize = 1 << INDEX_BITS;

/// When an open breaker lets a probe through: shared between the breaker
/// (which writes it on its transitions) and its errors (which read it).
#[derive(Debug)]
pub(crate) struct OpenTiming {
    /// While open: nanoseconds after the breaker's epoch when a probe may run.
    pub(crate) open_until: AtomicU64,
    /// Whether the breaker is open (not half-open, forced open or closed):
    /// only then does a rejection have a `retry_after`.
    pub(crate) open: AtomicBool,
    /// The breaker's clock starts here.
    #[cfg_attr(loom, allow(dead_code))] // loom's clock is a counter
    epoch: tokio::time::Instant,
}

impl OpenTiming {
    pub(crate) fn new() -> Self {
        OpenTiming {
            open_until: AtomicU64::new(0),
            open: AtomicBool::new(false),
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Nanoseconds since the breaker was created (tokio's clock, so a
    /// paused test clock drives it).
    #[cfg(not(loom))]
    pub(crate) fn now_nanos(&self) -> u64 {
        let since = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The breaker's clock under loom, which cannot model tokio's: a counter
    /// that moves 1 ns per read, so the order of clock reads is the order of
    /// the interleaving loom explores, and with a `recovery_timeout` of 1 ns
    /// an open breaker is due at the next read. (`tests/loom.rs` relies on
    /// this.)
    #[cfg(loom)]
    pub(crate) fn now_nanos(&self) -> u64 {
        static NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NOW.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the clock has not reached `nanos` after the epoch yet: what
    /// an open breaker asks on every rejection. Compares instants (the
    /// deadline is the epoch plus `nanos`) instead of turning the present
    /// into nanoseconds: no subtraction of time specs, no 128-bit product.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn is_before(&self, nanos: u64) -> bool {
        match self.epoch.checked_add(Duration::from_nanos(nanos)) {
            Some(deadline) => tokio::time::Instant::now() < deadline,
            None => true, // beyond what the clock can tell: not reached
        }
    }

    /// [`is_before`](Self::is_before) on loom's counter clock.
    #[cfg(loom)]
    pub(crate) fn is_before(&self, nanos: u64) -> bool {
        self.now_nanos() < nanos
    }

    /// How long until a probe may run, if the breaker is open.
    fn retry_after(&self) -> Option<Duration> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        let until = self.open_until.load(Ordering::Acquire);
        Some(Duration::from_nanos(until.saturating_sub(self.now_nanos())))
    }
}

/// What registered.
#[derive(Debug, Clone)]
pub(crate) enum Owner {
    Breaker(Weak<OpenTiming>),
    /// The bulkhead's limit, shared with it: `Bulkhead::set_limits` writes
    /// it, so an error reports the limit in force now (the one it was made
    /// under, unless the limit changed since).
    Bulkhead {
        max_concurrent: Arc<std::sync::atomic::AtomicU32>,
    },
    /// A rate limiter's schedule: its errors read their `retry_after` from it.
    RateLimiter(Weak<crate::rate_limit::Gcra>),
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    name: Arc<str>,
    owner: Owner,
    /// Dropped: the slot may be reused (the name stays until it is).
    free: bool,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static TABLE: RwLock<Table> = RwLock::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

/// A registration: the slot's index and generation, released on drop.
#[derive(Debug)]
pub(crate) struct Identity {
    index: u32,
    generation: u32,
}

impl Identity {
    /// Registers `name`.
    pub(crate) fn register(name: Arc<str>, owner: Owner) -> Identity {
        let mut table = TABLE.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = table.free.pop() {
            let slot = &mut table.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.name = name;
            slot.owner = owner;
            slot.free = false;
            return Identity {
                index,
                generation: slot.generation,
            };
        }
        let index = table.slots.len();
        if index >= MAX_SLOTS {
            // A billion live breakers and bulkheads: share the last slot
            // rather than fail (its errors may then show another's name).
            return Identity {
                index: (MAX_SLOTS - 1) as u32,
                generation: table.slots[MAX_SLOTS - 1].generation,
            };
        }
        table.slots.push(Slot {
            generation: 0,
            name,
            owner,
            free: false,
        });
        Identity {
            index: index as u32,
            generation: 0,
        }
    }

    /// The identity packed in 61 bits: slot index and generation.
    #[inline]
    pub(crate) fn bits(&self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        let mut table = TABLE.write().unwrap_or_else(PoisonError::into_inner);
        let index = self.index;
        if let Some(slot) = table.slots.get_mut(index as usize) {
            if slot.generation == self.generation && !slot.free {
                slot.free = true;
                table.free.push(index);
            }
        }
    }
}

/// What an error's identity bits refer to, if that slot still holds it.
pub(crate) struct Lookup {
    pub(crate) name: Arc<str>,
    pub(crate) owner: Owner,
}

pub(crate) fn lookup(bits: u64) -> Option<Lookup> {
    let (index, generation) = ((bits >> 32) as usize, bits as u32);
    let table = TABLE.read().unwrap_or_else(PoisonError::into_inner);
    let slot = table.slots.get(index)?;
    (slot.generation == generation).then(|| Lookup {
        name: slot.name.clone(),
        owner: slot.owner.clone(),
    })
}

impl Lookup {
    /// A breaker's wait until its next probe, as of now.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match &self.owner {
            Owner::Breaker(timing) => timing.upgrade()?.retry_after(),
            Owner::RateLimiter(gcra) => Some(gcra.upgrade()?.retry_after()),
            Owner::Bulkhead { .. } => None,
        }
    }

    /// A bulkhead's limit, as of now.
    pub(crate) fn max_concurrent(&self) -> Option<u32> {
        match &self.owner {
            Owner::Bulkhead { max_concurrent } => {
                Some(max_concurrent.load(std::sync::atomic::Ordering::Acquire))
            }
            Owner::Breaker(_) | Owner::RateLimiter(_) => None,
        }
    }
}
