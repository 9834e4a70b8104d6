//! The background task that keeps one registry's named breakers in step with
//! the fleet. Nothing here runs on a call's path: calls only ever touch the
//! local breaker, and this task applies what the fleet decided.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Interval, MissedTickBehavior};

use futures_util::FutureExt;

use super::conn::{Conn, Event, Subscription, Timeouts};
use super::keys::{partition, Keys};
use super::members::Heartbeats;
use super::message::{unix_ms_now, Message};
use super::probes::Turn;
use super::scripts::PUBLISH;
use super::target::RedisTarget;
use super::{FleetInner, Known, Readiness};
use crate::{CircuitBreaker, CircuitState, Registry};

/// What the local side tells the task.
#[derive(Debug)]
pub(crate) enum Local {
    /// A named breaker changed state here: publish its current state.
    Changed(Arc<str>),
    /// A named breaker was created here: read its fleet state.
    Created(Arc<str>),
}

/// The bounds on connecting and on every answer: a hung server fails the
/// session (and the sync reconnects) instead of stalling it.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    response: Duration::from_secs(2),
};

/// Requests sent at once, at most, by one batch of local changes.
const BATCH: usize = 256;

/// What a publish script answers: `(sequence, published, partition
/// version, the version before)`.
type Published = (u64, u8, u64, u64);

/// One breaker's state, ready to publish.
struct Change {
    name: Arc<str>,
    state: CircuitState,
    until_unix_ms: Option<u64>,
    unless_reached: Option<u64>,
    instance: String,
    sharded: bool,
}

impl Change {
    /// Runs the publish script on a clone of the connection (so that
    /// several run at once).
    async fn send(&self, mut conn: Conn, keys: &Keys) -> redis::RedisResult<Published> {
        let name = &self.name;
        Script::new(PUBLISH)
            .key(keys.breaker(name))
            .key(keys.channel_of(name))
            .key(keys.lease(name))
            .key(keys.names_of(name))
            .key(keys.version_of(name))
            .arg(self.state.as_str())
            .arg(
                self.until_unix_ms
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            )
            .arg(&self.instance)
            .arg(&**name)
            .arg(if self.sharded { "1" } else { "0" })
            .arg(
                self.unless_reached
                    .map(|g| g.to_string())
                    .unwrap_or_default(),
            )
            .invoke_async(&mut conn)
            .await
    }
}

pub(crate) struct Task {
    pub(crate) inner: Arc<FleetInner>,
    pub(crate) registry: &'static Registry,
    pub(crate) target: RedisTarget,
    pub(crate) rx: UnboundedReceiver<Local>,
    pub(crate) keys: Keys,
    /// Whether this session announces through sharded pub/sub.
    pub(crate) sharded: bool,
    /// Breakers open here: the ones that may need a probe lease.
    pub(crate) open: HashSet<Arc<str>>,
    /// When this instance may next ask for each breaker's probe lease.
    pub(crate) turns: HashMap<Arc<str>, Turn>,
    /// Breakers with a `fleet_threshold`: their failures are sent to the fleet.
    pub(crate) counted: HashSet<Arc<str>>,
    pub(crate) heartbeats: Heartbeats,
    /// For each partition whose every change this instance has seen (read
    /// or announced): its version. A resync skips those.
    pub(crate) versions: HashMap<u16, u64>,
}

enum End {
    Shutdown,
    Lost(String),
}

fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

impl Task {
    pub(crate) fn new(
        inner: Arc<FleetInner>,
        registry: &'static Registry,
        target: RedisTarget,
        rx: UnboundedReceiver<Local>,
    ) -> Self {
        Task {
            keys: Keys::new(&inner.namespace),
            heartbeats: Heartbeats::new(inner.started_unix_ms),
            inner,
            registry,
            target,
            rx,
            sharded: false,
            open: HashSet::new(),
            turns: HashMap::new(),
            counted: HashSet::new(),
            versions: HashMap::new(),
        }
    }

    /// Runs until shutdown: connects, syncs, and reconnects with backoff
    /// whenever Redis is lost (breakers work locally meanwhile).
    pub(crate) async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            let end = self.session(&mut warned, &mut backoff).await;
            self.set_connected(false);
            let why = match end {
                End::Shutdown => return,
                End::Lost(why) => why,
            };
            self.inner.set_readiness(Readiness::Unreachable);
            if warned {
                tracing::debug!(target: "resilience", "fleet sync: still no Redis: {why}");
            } else {
                tracing::warn!(
                    target: "resilience",
                    redis = %self.target,
                    "fleet sync lost Redis ({why}); breakers keep working locally, reconnecting with backoff"
                );
                warned = true;
            }
            tokio::select! {
                () = tokio::time::sleep(super::jittered(backoff)) => {}
                () = self.inner.stop.notified() => return,
            }
            // Capped low: after a failover the new primary is usually
            // there within seconds.
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn set_connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::Release);
        for breaker in self.registry.named_breakers() {
            breaker.set_fleet_gated(connected);
        }
    }

    async fn session(&mut self, warned: &mut bool, backoff: &mut Duration) -> End {
        let channels = self.keys.channels();
        let connected = tokio::select! {
            c = self.target.connect(TIMEOUTS, Some(&channels)) => c,
            () = self.inner.stop.notified() => return End::Shutdown,
        };
        let (mut conn, mut subscription) = match connected {
            Ok(c) => {
                self.sharded = c.sharded;
                let Some(subscription) = c.subscription else {
                    return End::Lost("no subscription".to_owned());
                };
                (c.conn, subscription)
            }
            Err(e) => return End::Lost(self.target.scrub(&e.to_string())),
        };
        // Local events queued while disconnected are superseded by the resync.
        while self.rx.try_recv().is_ok() {}
        self.heartbeats.reset();
        if let Err(e) = self.resync(&mut conn).await {
            return End::Lost(self.target.scrub(&e.to_string()));
        }
        self.set_connected(true);
        self.inner.set_readiness(Readiness::Synced);
        if std::mem::take(warned) {
            tracing::info!(target: "resilience", redis = %self.target, "fleet sync reconnected to Redis and resynced");
        }
        *backoff = Duration::from_millis(100);

        let config = self.inner.config.clone();
        let mut tick = every(config.lease_poll);
        let mut flush = every(config.failure_flush);
        let mut heartbeat = every(config.heartbeat);
        loop {
            let result = tokio::select! {
                event = subscription.next() => match event {
                    Event::Message(payload) => {
                        self.on_message(&payload);
                        Ok(())
                    }
                    Event::Lost(why) => return End::Lost(why.to_owned()),
                },
                local = self.rx.recv() => match local {
                    Some(local) => self.on_locals(&mut conn, local).await,
                    None => return End::Shutdown,
                },
                _ = tick.tick() => {
                    // Read the verdicts already here before racing for
                    // leases: a breaker the fleet closed is not probed.
                    if let Err(why) = self.read_ready(&mut subscription) {
                        return End::Lost(why.to_owned());
                    }
                    self.leases(&mut conn).await
                }
                _ = flush.tick() => self.count_failures(&mut conn).await,
                _ = heartbeat.tick() => self.heartbeat(&mut conn).await,
                () = self.inner.stop.notified() => {
                    self.leave(&mut conn).await;
                    return End::Shutdown;
                }
            };
            if let Err(e) = result {
                return End::Lost(self.target.scrub(&e.to_string()));
            }
        }
    }

    /// Handles every announcement already received, without waiting.
    fn read_ready(&mut self, subscription: &mut Subscription) -> Result<(), &'static str> {
        while let Some(event) = subscription.next().now_or_never() {
            match event {
                Event::Message(payload) => self.on_message(&payload),
                Event::Lost(why) => return Err(why),
            }
        }
        Ok(())
    }

    fn on_message(&mut self, payload: &[u8]) {
        let announcement = match Message::decode(payload) {
            Ok(a) => a,
            Err(why) => {
                self.inner.warn_bad_message(&why);
                return;
            }
        };
        let name: Arc<str> = Arc::from(announcement.breaker);
        let ours = announcement.instance == self.inner.instance;
        if let Some((before, after)) = announcement.versions {
            self.note_version(partition(&name), before, after);
        }
        if let Some(hold) = announcement.probe_for {
            if !ours {
                self.probe_noticed(&name, hold);
            }
            return;
        }
        let known = Known {
            gen: announcement.fleet_gen,
            state: announcement.state,
            until_unix_ms: announcement.until_unix_ms,
            by: Some(Arc::from(announcement.instance)),
        };
        if !self.inner.learn(&name, known.clone()) || ours {
            return; // older than what we applied, or our own
        }
        // Not used here yet: noted, and a breaker created later starts from it.
        let Some(breaker) = self.registry.shared(&name) else {
            return;
        };
        self.apply(&breaker, &known);
    }

    /// Applies a fleet state that [`FleetInner::learn`] found newer.
    pub(crate) fn apply(&mut self, breaker: &CircuitBreaker, known: &Known) {
        let state = known.state;
        let open_for = known
            .until_unix_ms
            .map(|until| Duration::from_millis(until.saturating_sub(unix_ms_now())));
        let open_for = match state {
            CircuitState::Open => Some(open_for.unwrap_or(Duration::ZERO)),
            _ => open_for,
        };
        if breaker.apply_fleet(state, open_for) {
            tracing::debug!(
                target: "resilience",
                breaker = breaker.name(),
                "fleet: circuit breaker `{}` is now {:?}",
                breaker.name(),
                state
            );
        }
        if matches!(state, CircuitState::Open | CircuitState::ForcedOpen) {
            self.open.insert(breaker.name_arc().clone());
        } else {
            self.open.remove(breaker.name());
        }
    }

    /// Publishes a breaker's state here; with `unless_reached`, only if the
    /// fleet's sequence is below it (see [`PUBLISH`]).
    pub(crate) async fn publish(
        &mut self,
        conn: &mut Conn,
        name: &Arc<str>,
        unless_reached: Option<u64>,
    ) -> redis::RedisResult<()> {
        let Some(change) = self.prepare(name, unless_reached) else {
            return Ok(());
        };
        let reply = change.send(conn.clone(), &self.keys).await?;
        self.published(change, reply);
        Ok(())
    }

    /// What publishing `name`'s state here takes (`None`: nothing to
    /// publish); notes it among the open breakers if it is open.
    fn prepare(&mut self, name: &Arc<str>, unless_reached: Option<u64>) -> Option<Change> {
        let breaker = self.registry.shared(name)?;
        let status = breaker.status();
        let state = match status.state {
            // Probing is this instance's business; the fleet keeps rejecting.
            CircuitState::HalfOpen => return None,
            s => s,
        };
        if matches!(state, CircuitState::Open | CircuitState::ForcedOpen) {
            self.open.insert(name.clone());
        } else {
            self.open.remove(&**name);
        }
        let until_unix_ms = match (state, status.retry_after) {
            (CircuitState::Open, Some(wait)) => Some(
                unix_ms_now().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            ),
            _ => None,
        };
        Some(Change {
            name: name.clone(),
            state,
            until_unix_ms,
            unless_reached,
            instance: self.inner.instance.clone(),
            sharded: self.sharded,
        })
    }

    /// Notes what a publish script answered.
    fn published(&mut self, change: Change, (gen, published, version, before): Published) {
        if published == 1 {
            self.note_version(partition(&change.name), before, version);
            self.inner.learn(
                &change.name,
                Known {
                    gen,
                    state: change.state,
                    until_unix_ms: change.until_unix_ms,
                    by: Some(Arc::from(change.instance.as_str())),
                },
            );
        }
    }

    /// Handles `first` and whatever is queued behind it: the breakers
    /// created here are read from the fleet, then the changes made here are
    /// published (a breaker changed several times once, in its state now),
    /// each kind in batches sent at once, so that a burst (hundreds of
    /// breakers created at start-up, or tripped together) takes a few
    /// round trips, not one per breaker.
    async fn on_locals(&mut self, conn: &mut Conn, first: Local) -> redis::RedisResult<()> {
        let (mut created, mut changed) = (Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        let mut next = Some(first);
        while let Some(local) = next.take().or_else(|| self.rx.try_recv().ok()) {
            match local {
                Local::Created(name) => created.push(name),
                Local::Changed(name) => {
                    if seen.insert(name.clone()) {
                        changed.push(name);
                    }
                }
            }
        }
        for batch in created.chunks(BATCH) {
            let reads = batch.iter().map(|name| {
                let (mut conn, key) = (conn.clone(), self.keys.breaker(name));
                async move { super::resync::read(&mut conn, &key).await }
            });
            let records = futures_util::future::join_all(reads).await;
            for (name, record) in batch.iter().zip(records) {
                self.note_counted(name);
                if let Some(known) = record? {
                    self.note(name, &known);
                }
            }
        }
        for batch in changed.chunks(BATCH) {
            let changes: Vec<Change> = batch.iter().filter_map(|n| self.prepare(n, None)).collect();
            let sends = changes.iter().map(|c| c.send(conn.clone(), &self.keys));
            let replies = futures_util::future::join_all(sends).await;
            for (change, reply) in changes.into_iter().zip(replies) {
                self.published(change, reply?);
            }
        }
        Ok(())
    }

    pub(crate) fn note_counted(&mut self, name: &Arc<str>) {
        let counted = self
            .registry
            .get(name)
            .is_some_and(|b| b.config().fleet_threshold().is_some());
        if counted {
            self.counted.insert(name.clone());
        }
    }

    /// A change took partition `p` from version `before` to `after`: this
    /// instance still knows all of it if it knew `before`; a change it
    /// missed (a gap) makes the next resync read the partition.
    pub(crate) fn note_version(&mut self, p: u16, before: u64, after: u64) {
        match self.versions.get(&p).copied() {
            Some(known) if known == before => {
                self.versions.insert(p, after);
            }
            Some(known) if known >= after => {} // already read
            _ => {
                self.versions.remove(&p);
            }
        }
    }

    /// Publishes the local transitions queued so far.
    pub(crate) async fn drain_local(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        match self.rx.try_recv() {
            Ok(first) => self.on_locals(conn, first).await,
            Err(_) => Ok(()),
        }
    }
}
