//! The flights in progress of one coalescer, type-erased.
//!
//! The map goes from a 64-bit hash of (the flight's type, the key) to the
//! flights of that hash: one, almost always; more only when two keys in
//! flight at once collide. Each flight is an `Arc<dyn Any + Send + Sync>`
//! that downcasts to its `Flight<K, R>` (`K` the key, `R` the result), whose
//! full key is compared: a flight of another type, or of another key of
//! the same hash, is never joined. The hasher is seeded at random once per
//! coalescer, so callers cannot choose colliding keys.
//!
//! A flight is in the map exactly while its leader runs. Lock order: a
//! shard of the map, then a flight's state; never the other way (the leader
//! leaves the map before it answers), so that joining, which holds the
//! shard while it registers with the flight, cannot race an answer: a
//! follower found in the map is counted before the leader reads how many
//! are waiting.

use std::any::{Any, TypeId};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use foldhash::fast::RandomState;

/// A flight with its types erased.
type Erased = Arc<dyn Any + Send + Sync>;

/// The flights of one hash.
enum Slots {
    One(Erased),
    /// Only after a collision of two keys in flight at once.
    Many(Vec<Erased>),
}

impl Slots {
    fn all(&self) -> &[Erased] {
        match self {
            Slots::One(flight) => std::slice::from_ref(flight),
            Slots::Many(flights) => flights,
        }
    }

    fn push(&mut self, flight: Erased) {
        match self {
            Slots::One(first) => *self = Slots::Many(vec![first.clone(), flight]),
            Slots::Many(flights) => flights.push(flight),
        }
    }

    /// Takes out the flight at `address`, if it is here: whether none is
    /// left.
    fn remove(&mut self, address: *const ()) -> bool {
        match self {
            Slots::One(only) => same(only, address),
            Slots::Many(flights) => {
                flights.retain(|flight| !same(flight, address));
                if let [only] = flights.as_slice() {
                    *self = Slots::One(only.clone());
                }
                self.all().is_empty()
            }
        }
    }
}

fn same(flight: &Erased, address: *const ()) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(flight), address)
}

/// The flights in progress of one coalescer.
pub(super) struct Flights {
    hasher: RandomState,
    map: DashMap<u64, Slots, RandomState>,
}

/// What a call became by joining.
pub(super) enum Joined<K, R> {
    /// No flight of its key: it started one and runs its body.
    Lead(Arc<Flight<K, R>>),
    /// It waits for the flight's result; `slot` is its place in the
    /// flight's list of wakers; `key` is given back, for starting over.
    Follow {
        flight: Arc<Flight<K, R>>,
        slot: usize,
        key: K,
    },
}

impl Flights {
    pub(super) fn new() -> Self {
        Flights {
            hasher: RandomState::default(),
            map: DashMap::with_hasher(RandomState::default()),
        }
    }

    /// Joins the flight of `key` (registering `waker` to be woken by its
    /// answer), or starts one.
    pub(super) fn join<K, R>(&self, key: K, waker: &Waker) -> Joined<K, R>
    where
        K: Hash + Eq + Send + Sync + 'static,
        R: Send + 'static,
    {
        // User code (`Hash`) outside the lock; `Eq` runs under it.
        let hash = self.hasher.hash_one((TypeId::of::<Flight<K, R>>(), &key));
        match self.map.entry(hash) {
            Entry::Occupied(mut slots) => {
                let found = slots.get().all().iter().find(|flight| {
                    let flight: &(dyn Any + Send + Sync) = &***flight;
                    flight
                        .downcast_ref::<Flight<K, R>>()
                        .is_some_and(|flight| flight.key == key)
                });
                if let Some(flight) = found.cloned().and_then(|f| f.downcast().ok()) {
                    let flight: Arc<Flight<K, R>> = flight;
                    let slot = flight.register(waker);
                    return Joined::Follow { flight, slot, key };
                }
                let flight = Arc::new(Flight::new(key, hash));
                slots.get_mut().push(flight.clone());
                Joined::Lead(flight)
            }
            Entry::Vacant(vacant) => {
                let flight = Arc::new(Flight::new(key, hash));
                vacant.insert(Slots::One(flight.clone()));
                Joined::Lead(flight)
            }
        }
    }

    /// Takes `flight` out of the map, if it is still there: no call joins
    /// it any more.
    pub(super) fn leave<K, R>(&self, flight: &Arc<Flight<K, R>>) {
        let address = Arc::as_ptr(flight).cast::<()>();
        self.map
            .remove_if_mut(&flight.hash, |_, slots| slots.remove(address));
    }

    /// The flights in progress now.
    pub(super) fn in_flight(&self) -> usize {
        self.map.iter().map(|slots| slots.all().len()).sum()
    }
}

/// One execution and the calls that wait for it.
pub(super) struct Flight<K, R> {
    key: K,
    hash: u64,
    state: Mutex<State<R>>,
}

struct State<R> {
    phase: Phase<R>,
    /// Followers registered and neither answered nor gone.
    waiting: usize,
    /// The followers' wakers, by slot (`None`: gone).
    wakers: Vec<Option<Waker>>,
}

enum Phase<R> {
    /// The leader runs (and the flight is in the map).
    Running,
    /// The leader's result, for the followers still waiting.
    Answered(R),
    /// No result for those still waiting: the leader was cancelled or
    /// panicked (or the last follower took the result).
    Over,
}

impl<K, R> Flight<K, R> {
    fn new(key: K, hash: u64) -> Self {
        Flight {
            key,
            hash,
            state: Mutex::new(State {
                phase: Phase::Running,
                waiting: 0,
                wakers: Vec::new(),
            }),
        }
    }

    /// The state; a panic elsewhere (in a result's `Clone`) leaves it
    /// consistent, so a poisoned lock is used as it is.
    fn state(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a follower (the flight is running: it is in the map, whose
    /// shard the caller holds); its slot.
    fn register(&self, waker: &Waker) -> usize {
        let mut state = self.state();
        state.waiting += 1;
        state.wakers.push(Some(waker.clone()));
        state.wakers.len() - 1
    }

    /// The leader is done: `output` for the followers waiting (a clone, if
    /// any are; none are joining, the flight left the map). May panic in
    /// `R::clone`, leaving the flight running for [`abandon`](Self::abandon).
    pub(super) fn answer(&self, output: &R)
    where
        R: Clone,
    {
        let wakers = {
            let mut state = self.state();
            state.phase = match state.waiting {
                0 => Phase::Over,
                _ => Phase::Answered(output.clone()),
            };
            std::mem::take(&mut state.wakers)
        };
        wake(wakers);
    }

    /// The leader is gone without a result: those waiting start over.
    /// How many were waiting.
    pub(super) fn abandon(&self) -> usize {
        let (wakers, waiting) = {
            let mut state = self.state();
            if !matches!(state.phase, Phase::Running) {
                return 0;
            }
            state.phase = Phase::Over;
            (std::mem::take(&mut state.wakers), state.waiting)
        };
        wake(wakers);
        waiting
    }

    /// A follower's poll: `Some` result (a clone, or the shared copy for the
    /// last one), `None` if the flight ended without one for it, or pending
    /// (with `waker` registered in its `slot`).
    pub(super) fn poll_answer(&self, slot: usize, waker: &Waker) -> Poll<Option<R>>
    where
        R: Clone,
    {
        let mut state = self.state();
        let state = &mut *state;
        match &state.phase {
            Phase::Running => {
                if let Some(registered) = state.wakers.get_mut(slot) {
                    match registered {
                        Some(known) if known.will_wake(waker) => {}
                        _ => *registered = Some(waker.clone()),
                    }
                }
                Poll::Pending
            }
            Phase::Answered(output) => {
                // Counted out before the clone, which may panic.
                state.waiting = state.waiting.saturating_sub(1);
                if state.waiting > 0 {
                    return Poll::Ready(Some(output.clone()));
                }
                match std::mem::replace(&mut state.phase, Phase::Over) {
                    Phase::Answered(output) => Poll::Ready(Some(output)),
                    _ => Poll::Ready(None),
                }
            }
            Phase::Over => Poll::Ready(None),
        }
    }

    /// A follower is gone (cancelled) before it was answered.
    pub(super) fn deregister(&self, slot: usize) {
        let unclaimed = {
            let mut state = self.state();
            state.waiting = state.waiting.saturating_sub(1);
            match state.phase {
                Phase::Running => {
                    if let Some(registered) = state.wakers.get_mut(slot) {
                        *registered = None;
                    }
                    None
                }
                // The last one waiting: the shared copy goes now.
                Phase::Answered(_) if state.waiting == 0 => {
                    Some(std::mem::replace(&mut state.phase, Phase::Over))
                }
                Phase::Answered(_) | Phase::Over => None,
            }
        };
        // The result's `Drop` runs outside the lock.
        drop(unclaimed);
    }
}

/// Wakes the followers, outside the flight's lock.
fn wake(wakers: Vec<Option<Waker>>) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}
