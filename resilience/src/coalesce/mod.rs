//! Request coalescing (singleflight): concurrent calls with an equal key
//! share one execution of their body.
//!
//! The pieces: [`Coalescer`] (this file: the type, its counters and its
//! status), `flights` (the type-erased map of the flights in progress, and
//! one flight's shared state), `call` (the [`Coalesced`] future: joining,
//! leading, following, taking over).

mod call;
mod flights;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub use call::Coalesced;
use flights::Flights;

/// Request coalescing (singleflight): concurrent calls with an equal key
/// share one execution. The first call of a key (the *leader*) runs its
/// body; the calls of that key that come while it runs (the *followers*)
/// wait for its result, which each gets a clone of. Nothing is kept once
/// the result is delivered: the next call of the key runs its body again
/// (this is not a cache).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use resilience::Coalescer;
///
/// static USERS: Coalescer = Coalescer::new("users");
/// static QUERIES: AtomicU32 = AtomicU32::new(0);
///
/// async fn load_user(id: u64) -> Result<String, String> {
///     USERS
///         .run(id, async move {
///             QUERIES.fetch_add(1, Ordering::Relaxed);
///             tokio::time::sleep(Duration::from_millis(10)).await; // the database
///             Ok(format!("user {id}"))
///         })
///         .await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (a, b, c) = tokio::join!(load_user(7), load_user(7), load_user(8));
/// assert_eq!((a.unwrap(), b.unwrap(), c.unwrap().as_str()), ("user 7".into(), "user 7".into(), "user 8"));
/// assert_eq!(QUERIES.load(Ordering::Relaxed), 2, "one query for user 7, one for user 8");
///
/// let status = USERS.status();
/// println!("{status:?}");
/// assert_eq!((status.calls, status.leaders, status.followers), (3, 2, 1));
///
/// load_user(7).await.unwrap();
/// assert_eq!(QUERIES.load(Ordering::Relaxed), 3, "done calls are not remembered");
/// # }
/// ```
///
/// # One coalescer, any keys and values
///
/// [`run`](Self::run) is generic: one coalescer (a `static` per call site,
/// made by a `const fn`) serves keys and results of any types. Calls
/// coalesce when their keys are equal *and* of the same type, and their
/// bodies' outputs are of the same type: a `u32` key 7 and a `u64` key 7
/// never share a flight, nor do bodies answering `Result<u32, E>` and
/// `Result<i32, E>` (mind an integer literal's inferred type). Calls of one
/// function, as a macro expands them, always agree.
///
/// A follower gets the result of a call that started before it did: share
/// reads, not writes whose every caller must take effect. A body must not
/// wait for a call of its own key through the same coalescer: that call
/// would follow it, and so wait for itself.
///
/// # Cancellation and panics
///
/// Each caller passes its own body; a follower keeps its body unpolled
/// while it waits. When the leader is cancelled (its future dropped before
/// its body finished) or its body panics, its followers start over: one of
/// them becomes the leader and runs its own body, the others follow it. No
/// follower is left waiting for a result that will not come, and none gets
/// an error it did not cause. (A body that panics every time panics in
/// each caller in turn, as it would without coalescing.) A panic keeps
/// unwinding in the caller whose body panicked.
///
/// # Cost
///
/// Joining a flight or starting one takes a lock of one shard of a
/// concurrent map (never held across an `.await`, never while a body runs).
/// A leader allocates the flight's shared state (one allocation) and a
/// place in the map; the list of its waiting followers grows by doubling.
/// Followers allocate nothing else. The leader clones its result once for
/// the followers if any are waiting, and not at all if none are; `n`
/// followers cost `n` clones in all (the last one takes the shared copy).
pub struct Coalescer {
    name: Cow<'static, str>,
    /// Made on first use, so that [`new`](Self::new) is `const`.
    flights: OnceLock<Flights>,
    calls: AtomicU64,
    leaders: AtomicU64,
    followers: AtomicU64,
    takeovers: AtomicU64,
}

/// A point-in-time view of a [`Coalescer`].
///
/// Every call counts once when first polled, as a leader or a follower
/// (the role it had first); a follower that took over from a cancelled
/// leader counts as a leader and a takeover too, so
/// `calls == leaders + followers - takeovers` once the calls counted so
/// far have joined.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CoalesceStatus {
    /// The coalescer's name.
    pub name: Arc<str>,
    /// Calls made (polled at least once).
    pub calls: u64,
    /// Calls that ran their own body: executions.
    pub leaders: u64,
    /// Calls that joined a call of an equal key in flight (coalesced).
    pub followers: u64,
    /// Followers that ran their own body after their leader was cancelled
    /// or panicked.
    pub takeovers: u64,
    /// Keys with a call in flight now.
    pub in_flight: usize,
}

impl Coalescer {
    /// A coalescer named `name` (what its `tracing` events and status
    /// report); usable as a `static`.
    ///
    /// ```
    /// static PROFILES: resilience::Coalescer = resilience::Coalescer::new("profiles");
    /// assert_eq!(PROFILES.name(), "profiles");
    /// ```
    pub const fn new(name: &'static str) -> Self {
        Coalescer {
            name: Cow::Borrowed(name),
            flights: OnceLock::new(),
            calls: AtomicU64::new(0),
            leaders: AtomicU64::new(0),
            followers: AtomicU64::new(0),
            takeovers: AtomicU64::new(0),
        }
    }

    /// A coalescer of a name known at run time.
    ///
    /// ```
    /// let tenant = "acme";
    /// let coalescer = resilience::Coalescer::named(format!("{tenant}-search"));
    /// assert_eq!(coalescer.name(), "acme-search");
    /// ```
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        Coalescer {
            name: name.into(),
            ..Coalescer::new("")
        }
    }

    /// The coalescer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `body`, unless a call of an equal `key` is in flight: then
    /// waits for that call's result instead, and resolves to a clone of
    /// it (see [`Coalescer`] for cancellation and panics). Nothing happens
    /// until the returned future is first polled: that is when the call
    /// joins a flight or starts one.
    ///
    /// `body` need not be `'static` (it may borrow); the key and the result
    /// must be, since other calls hold them.
    ///
    /// ```
    /// use resilience::Coalescer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let coalescer = Coalescer::new("stock");
    /// let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    /// let leader = coalescer.run("sku-1".to_owned(), async { Ok::<_, String>(rx.await.unwrap()) });
    /// let follower = coalescer.run("sku-1".to_owned(), async { Err::<u32, _>("never run: it follows".to_owned()) });
    /// let (a, b, ()) = tokio::join!(leader, follower, async { tx.send(12).unwrap() });
    /// assert_eq!((a, b), (Ok(12), Ok(12)));
    /// assert_eq!(coalescer.status().followers, 1);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The body's error (the leader's, cloned for the followers): errors
    /// are shared like values.
    pub fn run<K, F, T, E>(&self, key: K, body: F) -> Coalesced<&Self, K, F>
    where
        K: Hash + Eq + Send + Sync + 'static,
        F: Future<Output = Result<T, E>>,
        T: Clone + Send + 'static,
        E: Clone + Send + 'static,
    {
        Coalesced::new(self, key, body)
    }

    /// The counters and the keys in flight now (the in-flight count visits
    /// the map's shards one after another: a moment's view, not a
    /// snapshot of one instant).
    ///
    /// ```
    /// let status = resilience::Coalescer::new("idle").status();
    /// assert_eq!((status.calls, status.in_flight), (0, 0));
    /// ```
    pub fn status(&self) -> CoalesceStatus {
        CoalesceStatus {
            name: Arc::from(&*self.name),
            calls: self.calls.load(Ordering::Relaxed),
            leaders: self.leaders.load(Ordering::Relaxed),
            followers: self.followers.load(Ordering::Relaxed),
            takeovers: self.takeovers.load(Ordering::Relaxed),
            in_flight: self.flights.get().map_or(0, Flights::in_flight),
        }
    }

    /// The flights in progress (made on first use).
    fn flights(&self) -> &Flights {
        self.flights.get_or_init(Flights::new)
    }
}

impl fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct("Coalescer")
            .field("name", &status.name)
            .field("calls", &status.calls)
            .field("leaders", &status.leaders)
            .field("followers", &status.followers)
            .field("takeovers", &status.takeovers)
            .field("in_flight", &status.in_flight)
            .finish()
    }
}
