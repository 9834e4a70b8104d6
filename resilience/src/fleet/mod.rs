//! Fleet-wide breakers and rate limits over Redis (feature `redis`): many
//! instances of a service trip and recover together, and share one rate
//! limit, with no network on the call path.
//!
//! ```no_run
//! # async fn demo() -> Result<(), resilience::FleetError> {
//! use resilience::registry;
//!
//! // Once at start-up, inside the tokio runtime:
//! let fleet = registry().share_via_redis("redis://127.0.0.1:6379", "checkout")?;
//! // Before serving traffic: read the fleet's state of every breaker.
//! fleet.ready().await;
//! # drop(fleet); Ok(()) }
//! ```
//!
//! # What is shared
//!
//! Every *named* breaker of the registry (private, unnamed ones stay local):
//! its state, when an open breaker lets a probe through, and who changed it;
//! and who the instances are ([`FleetStatus`], [`BreakerFleetStatus`] in the
//! snapshot). Everything lives under `resilience:{namespace:…}:…`, so
//! services sharing one Redis never collide, and every key of one breaker
//! shares one hash tag, so the same layout runs on one server, behind
//! Sentinel and on a Cluster:
//!
//! | key | what |
//! |---|---|
//! | `resilience:{ns:p}:breaker:NAME` | hash: `state`, `until_unix_ms`, `instance`, `fleet_gen` |
//! | `resilience:{ns:p}:probe:NAME` | the probe lease (`SET NX PX`) |
//! | `resilience:{ns:p}:names` | the partition's breaker names (read on resync) |
//! | `resilience:{ns:p}:events` | channel of the partition's changes (`SPUBLISH` on a cluster) |
//! | `resilience:{ns:p}:failures:NAME:…` | the fleet's failure counts (`fleet_threshold`) |
//! | `resilience:{ns:members}:…` | the instances: `live`, `info`, `version`, `set:FINGERPRINT` |
//! | `{ns:resilience:rate:NAME}…` | a fleet rate limit's schedule and instances |
//!
//! `p` is one of 16 partitions, by a hash of the name: a resync is 16 round
//! trips whatever the number of breakers, and a cluster spreads the
//! breakers over up to 16 slots.
//!
//! # Where Redis runs
//!
//! A [`RedisTarget`], or its URL: one server (`redis://`), the primary that
//! Redis Sentinel names (`redis+sentinel://s1:26379,s2:26379/primary`: asked
//! of the sentinels on every (re)connection, so a failover moves the fleet to
//! the new primary), or a Redis Cluster (`redis+cluster://n1:7000,n2:7000`:
//! commands go to the node owning each breaker's slot, announcements through
//! sharded pub/sub).
//!
//! After a failover, Redis may have lost the last writes that had not
//! reached the replica. Every instance resyncs when it reconnects, and a
//! change it knows of that the new primary lacks is published again, by
//! the first instance that notices: at worst one transition is announced
//! twice; no breaker is left open (or closed) against the fleet's state.
//!
//! # Who is in the fleet
//!
//! Every instance heartbeats ([`FleetConfig::heartbeat`], 2 s) its id, host,
//! process id, start time and a fingerprint of its breaker names; one that
//! stops is dropped after [`FleetConfig::member_timeout`] (10 s), or at once
//! when it shuts down. The snapshot lists the members ([`FleetStatus`]) and,
//! per shared breaker, how many live instances have it and which one made
//! its last change ([`BreakerFleetStatus`]).
//!
//! # How
//!
//! - The local breaker stays authoritative and the call path never waits on
//!   Redis: a call does exactly what it does without the feature.
//! - A background task publishes local transitions (one Lua script: bump the
//!   breaker's fleet sequence, store, publish, release our lease) and applies
//!   the fleet's transitions to local breakers, in fleet-sequence order.
//! - An instance that starts (or reconnects) reads the fleet's state first,
//!   of every name, whether or not it has a breaker of that name yet; a
//!   breaker created later (by its first call, typically) starts in the
//!   fleet's state, before anyone can call it. So once
//!   [`Fleet::ready`] has returned `true`, and while Redis is reachable, an
//!   instance never admits a call that the fleet's state rejects, however
//!   and whenever its breaker is created. Such a breaker starts open (or
//!   forced open, or disabled) without reporting a transition: it was never
//!   in another state; a `tracing` event says why. An open state whose time
//!   is up starts open too, and waits for the fleet's probe like the other
//!   instances.
//! - Fleet-wide probe: when an open breaker's time is up, instances race for
//!   a short lease; only the winner lets a probe through, the others keep
//!   rejecting until it publishes closed or open (or the lease expires: an
//!   instance killed while probing holds the probe for
//!   [`FleetConfig::lease`] at most).
//! - Fleet failure counting (`fleet_threshold = 20` on the attribute, or
//!   [`BreakerConfigBuilder::fleet_threshold`](crate::BreakerConfigBuilder::fleet_threshold)):
//!   failures are counted locally (one atomic operation on the failure path)
//!   and sent in batches every 100 ms into 1-second buckets in Redis; once the
//!   fleet's failures in the last 10 s reach the threshold, the instance that
//!   sees it opens the breaker and every other instance follows. Ten
//!   instances each seeing a few failures trip together. The fleet's rule
//!   reads like the local one:
//!   - Every state change starts a new count: failures recorded before a
//!     transition (on any instance) never count toward the next opening.
//!     Failures sent while the fleet has not yet heard of a transition made
//!     here, or that belong to an older state, are dropped.
//!   - Consecutive rule (no `window`): a success on any instance breaks the
//!     fleet's run, as a local success breaks the local one. Instances report
//!     in batches, so the fleet orders a success and another instance's
//!     failures as they reach Redis (within one flush interval). So that
//!     its successes count, an instance sends one report per flush interval
//!     in which it recorded a success or a failure (at most 10 commands a
//!     second by default, per breaker with `fleet_threshold`); breakers
//!     without `fleet_threshold` send none.
//!   - Windowed rule (`window = …`): the window's semantics; a success
//!     clears nothing, the fleet counts the failures of its last 10 s.
//! - Redis down, or hung (every answer is awaited 2 s at most): breakers
//!   keep working locally (probing on their own), one warning is logged, the
//!   task reconnects with jittered backoff (0.1 s doubling to 2 s, each
//!   wait ±50 %, so a fleet does not come back all at once) and resyncs.
//! - Messages are versioned and validated; a malformed or foreign payload is
//!   ignored with a warning and never trips a breaker.
//! - `redis://` URLs (and `rediss://` with the `redis-tls` feature) with
//!   credentials work; credentials never appear in logs or errors.
//!
#![doc = include_str!("../rate_limit/fleet/doc.md")]

mod config;
mod conn;
mod failures;
mod keys;
mod lease;
mod members;
mod message;
mod probes;
mod redact;
mod resync;
mod scripts;
#[cfg(test)]
mod scripts_tests;
mod status;
mod sync;
mod target;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::{BreakerStatus, CircuitBreaker, CircuitState, Registry, TransitionCause};
pub use config::{FleetConfig, FleetError};
pub(crate) use lease::rate_limiter_created;
use lease::Leases;
use members::Members;
pub use status::{BreakerFleetStatus, FleetMember, FleetStatus};
use sync::{Local, Task};
pub use target::{IntoRedisTarget, RedisTarget, RedisTargetKind};

/// What this instance knows of one breaker's fleet state: the last change
/// it read or heard of, whether or not the breaker exists here yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    /// The fleet sequence of that change.
    pub(crate) gen: u64,
    pub(crate) state: CircuitState,
    /// Until when an open breaker stays open (ms since the Unix epoch).
    pub(crate) until_unix_ms: Option<u64>,
    /// The instance that made it.
    pub(crate) by: Option<Arc<str>>,
}

/// How far the first sync has come (see [`Fleet::ready`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Connecting,
    Synced,
    Unreachable,
}

/// The shared state of one fleet sync.
pub(crate) struct FleetInner {
    instance: String,
    namespace: String,
    /// The Redis target, without credentials.
    redis: String,
    /// When this instance joined (ms since the Unix epoch).
    started_unix_ms: u64,
    config: FleetConfig,
    connected: AtomicBool,
    stop: Notify,
    /// When the last bad-message warning was logged (ms since the Unix epoch).
    last_bad_warning: AtomicU64,
    /// The fleet state of every name this instance has read or heard of,
    /// created here or not: a breaker created later starts from it.
    known: Mutex<HashMap<Arc<str>, Known>>,
    readiness: watch::Sender<Readiness>,
    /// The fleet's members, as last read.
    members: Mutex<Members>,
}

impl FleetInner {
    /// What is known of `name`'s fleet state.
    pub(crate) fn known(&self, name: &str) -> Option<Known> {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The fleet sequence last seen for `name` (0: none).
    pub(crate) fn known_gen(&self, name: &str) -> u64 {
        self.known(name).map_or(0, |k| k.gen)
    }

    /// Notes a change of `name`'s fleet state; returns `false` (and notes
    /// nothing) if it is not newer than what is known.
    pub(crate) fn learn(&self, name: &Arc<str>, known: Known) -> bool {
        let mut map = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(name) {
            Some(k) if k.gen >= known.gen => false,
            Some(k) => {
                *k = known;
                true
            }
            None => {
                map.insert(name.clone(), known);
                true
            }
        }
    }

    /// Puts a breaker being created into the fleet's state: what would
    /// reject a call in the fleet rejects its first call here too.
    fn seed(&self, breaker: &CircuitBreaker) {
        let connected = self.connected.load(Ordering::Acquire);
        breaker.set_fleet_gated(connected);
        if !connected {
            return; // Redis unreachable: local-only, as documented
        }
        let Some(known) = self.known(breaker.name()) else {
            return;
        };
        let open_for = known.until_unix_ms.map_or(Duration::ZERO, |until| {
            Duration::from_millis(until.saturating_sub(message::unix_ms_now()))
        });
        // An open state whose time is up starts open too: the instance that
        // holds the fleet's probe lease probes, the others wait for it.
        breaker.start_in_fleet_state(known.state, open_for);
    }

    /// This instance's view of the fleet.
    pub(crate) fn status(&self) -> FleetStatus {
        FleetStatus {
            instance: self.instance.clone(),
            namespace: self.namespace.clone(),
            redis: self.redis.clone(),
            connected: self.connected.load(Ordering::Acquire),
            members: self
                .members
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .list
                .clone(),
        }
    }

    /// Fills in the fleet's part of the named breakers' statuses.
    pub(crate) fn annotate(&self, breakers: &mut [BreakerStatus], shared: impl Fn(&str) -> bool) {
        let members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for status in breakers.iter_mut().filter(|s| shared(&s.name)) {
            status.fleet = Some(BreakerFleetStatus {
                instances: members.sharers.get(&status.name).copied().unwrap_or(0),
                last_change_by: known
                    .get(&status.name)
                    .and_then(|k| k.by.as_deref().map(str::to_owned)),
            });
        }
    }

    fn set_readiness(&self, readiness: Readiness) {
        self.readiness.send_if_modified(|r| {
            // Once synced, a later loss is `is_connected`'s business.
            let change = *r != readiness && *r != Readiness::Synced;
            if change {
                *r = readiness;
            }
            change
        });
    }

    /// One warning per 10 s at most for bad messages; the rest are debug.
    fn warn_bad_message(&self, why: &str) {
        let now = message::unix_ms_now();
        let last = self.last_bad_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_bad_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(target: "resilience", "fleet sync ignored a message: {why}");
        } else {
            tracing::debug!(target: "resilience", "fleet sync ignored a message: {why}");
        }
    }
}

/// The handle of a running fleet sync. Dropping it (or
/// [`shutdown`](Fleet::shutdown)) stops the sync; the breakers then work
/// locally, and the registry may be shared again.
pub struct Fleet {
    inner: Arc<FleetInner>,
    registry: &'static Registry,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The leases of the fleet-wide rate limits (stopped when dropped).
    leases: Leases,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("instance", &self.inner.instance)
            .field("namespace", &self.inner.namespace)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Fleet {
    /// This instance's id in the fleet's messages.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// Whether the sync is connected to Redis right now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// This instance's view of the fleet: who it is, where Redis is, and
    /// the live members as last read (also in
    /// [`Snapshot::fleet`](crate::Snapshot::fleet)).
    pub fn status(&self) -> FleetStatus {
        self.inner.status()
    }

    /// Waits until the first sync with the fleet is done: `true` once this
    /// instance has read the fleet's state of every breaker (from then on, no
    /// call is admitted that the fleet rejects), `false` if the first
    /// attempt to reach Redis failed (breakers work locally; the sync keeps
    /// reconnecting in the background).
    ///
    /// [`share_via_redis`](Registry::share_via_redis) returns at once and
    /// never makes calls wait; await this at start-up, before serving
    /// traffic, so that an instance joining a fleet whose breaker is open
    /// never calls the dependency the fleet has given up on:
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), resilience::FleetError> {
    /// let fleet = resilience::registry().share_via_redis("redis://127.0.0.1:6379", "checkout")?;
    /// if !fleet.ready().await {
    ///     eprintln!("Redis unreachable: breakers work locally for now");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self) -> bool {
        let mut rx = self.inner.readiness.subscribe();
        let synced = match rx.wait_for(|r| *r != Readiness::Connecting).await {
            Ok(r) => *r == Readiness::Synced,
            Err(_) => false, // the sync ended
        };
        synced
    }

    /// Stops the sync and waits for its task to end. Fleet rate limits give
    /// their unused tokens back to the fleet first (at most a second), then
    /// run on their whole limit locally.
    pub async fn shutdown(mut self) {
        self.inner.stop.notify_one();
        self.leases.shutdown().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.inner.connected.store(false, Ordering::Release);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        for breaker in self.registry.named_breakers() {
            breaker.set_fleet_gated(false);
        }
        *self
            .registry
            .fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Weak::new();
        self.registry.fleet_shared.store(false, Ordering::Release);
    }
}

/// `backoff` give or take half: a fleet that lost Redis all at once (a
/// restart, a failover) does not come back all at once.
pub(crate) fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64())
}

fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 128
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Registry {
    /// Shares every named breaker and every fleet-wide rate limiter of this
    /// registry with the other instances using the same Redis and
    /// `namespace`; see the [module documentation](crate::fleet). `redis` is
    /// a [`RedisTarget`] or its URL: `redis://host:6379`,
    /// `redis+sentinel://s1:26379,s2:26379/primary`,
    /// `redis+cluster://n1:7000,n2:7000`.
    ///
    /// Returns at once: connecting happens in the background, and until it
    /// succeeds (or whenever Redis is lost) breakers work locally.
    ///
    /// # Errors
    ///
    /// [`FleetError`] for a malformed URL or namespace, outside a tokio
    /// runtime, or if the registry is already shared.
    pub fn share_via_redis(
        &'static self,
        redis: impl IntoRedisTarget,
        namespace: &str,
    ) -> Result<Fleet, FleetError> {
        self.share_via_redis_with(redis, namespace, FleetConfig::default())
    }

    /// [`share_via_redis`](Self::share_via_redis) with explicit tuning.
    ///
    /// # Errors
    ///
    /// As [`share_via_redis`](Self::share_via_redis).
    pub fn share_via_redis_with(
        &'static self,
        redis: impl IntoRedisTarget,
        namespace: &str,
        config: FleetConfig,
    ) -> Result<Fleet, FleetError> {
        if !valid_namespace(namespace) {
            return Err(FleetError::InvalidNamespace(namespace.to_owned()));
        }
        let target = redis.into_redis_target()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        if self.fleet_shared.swap(true, Ordering::AcqRel) {
            return Err(FleetError::AlreadyShared);
        }
        let inner = Arc::new(FleetInner {
            instance: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
            namespace: namespace.to_owned(),
            redis: target.to_string(),
            started_unix_ms: message::unix_ms_now(),
            config,
            connected: AtomicBool::new(false),
            stop: Notify::new(),
            last_bad_warning: AtomicU64::new(0),
            known: Mutex::default(),
            readiness: watch::Sender::new(Readiness::Connecting),
            members: Mutex::default(),
        });
        *self.fleet.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&inner);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let tx = tx.clone();
            let inner = inner.clone();
            self.on_transition(move |t| {
                // After a shutdown the channel is closed and nothing is sent.
                if t.cause != TransitionCause::Fleet && inner.connected.load(Ordering::Acquire) {
                    let _ = tx.send(Local::Changed(t.name.clone()));
                }
            });
        }
        {
            let inner = inner.clone();
            self.on_named_breaker_created(move |breaker| {
                inner.seed(breaker);
                let _ = tx.send(Local::Created(breaker.name_arc().clone()));
            });
        }
        let leases = Leases::start(
            self,
            target.clone(),
            inner.instance.clone(),
            inner.namespace.clone(),
            inner.config.rate_lease_ttl,
            &runtime,
        );
        let task = Task::new(inner.clone(), self, target, rx);
        let task = runtime.spawn(task.run());
        Ok(Fleet {
            inner,
            registry: self,
            task: Some(task),
            leases,
        })
    }

    /// The fleet sync running on this registry, if any.
    pub(crate) fn fleet_inner(&self) -> Option<Arc<FleetInner>> {
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()
    }
}
