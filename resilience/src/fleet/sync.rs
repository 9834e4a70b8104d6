//! The background task that keeps one registry's named breakers in step with
//! the fleet. Nothing here runs on a call's path: calls only ever touch the
//! local breaker, and this task applies what the fleet decided.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Script};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::message::{state_from_str, unix_ms_now, Message};
use super::redact::{redact, scrub};
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

/// Bumps the fleet sequence, stores the state, publishes it, and shortens
/// this instance's probe lease: one round trip, atomically.
///
/// The sequence is `max(previous + 1, Redis time in ms)`: it keeps growing
/// even when the key expired or a restarted Redis lost it, so instances that
/// remember a higher number never ignore a fresh change. The lease is not
/// deleted but left to expire in 250 ms, so no instance can win it before it
/// has read this verdict.
const PUBLISH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = tonumber(redis.call('HGET', KEYS[1], 'fleet_gen') or '0') + 1
if now > gen then gen = now end
redis.call('HSET', KEYS[1], 'fleet_gen', string.format('%d', gen), 'state', ARGV[1],
    'until_unix_ms', ARGV[2], 'instance', ARGV[3])
redis.call('PEXPIRE', KEYS[1], 86400000)
local msg = {v = 1, instance = ARGV[3], breaker = ARGV[4], state = ARGV[1], fleet_gen = gen}
if ARGV[2] ~= '' then msg['until_unix_ms'] = tonumber(ARGV[2]) end
redis.call('PUBLISH', KEYS[2], cjson.encode(msg))
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('PEXPIRE', KEYS[3], 250) end
return gen
"#;

/// Adds this instance's failures to the fleet's count and returns the
/// fleet's failures over the window (in whole seconds, Redis time), or -1
/// when the failures are stale.
///
/// The count belongs to one *epoch*: the breaker's fleet sequence (so every
/// published transition starts a new count, and failures counted before it
/// never count toward the next opening) and, for the consecutive rule, a run
/// number that every reported success bumps (a success anywhere breaks the
/// fleet's run). Failures reported against an older sequence than the
/// breaker's, or while the fleet has it anything but closed (a closing that
/// is not published yet), are stale: they are dropped.
///
/// KEYS[1]: the breaker's hash; KEYS[2]: the prefix of its failure keys.
/// ARGV: failures, window in seconds, the fleet sequence this instance knows
/// (0: none), `1` if a success came before these failures.
const COUNT_FAILURES: &str = r#"
local gen, state = unpack(redis.call('HMGET', KEYS[1], 'fleet_gen', 'state'))
if gen and (gen ~= ARGV[3] or state ~= 'closed') then return -1 end
gen = gen or '0'
local window = tonumber(ARGV[2])
local run = 0
local epoch = redis.call('GET', KEYS[2] .. 'epoch')
if epoch then
  local g, r = string.match(epoch, '^(%d+):(%d+)$')
  if g == gen then run = tonumber(r) end
end
if ARGV[4] == '1' then run = run + 1 end
redis.call('SET', KEYS[2] .. 'epoch', gen .. ':' .. run, 'EX', window + 2)
local prefix = KEYS[2] .. gen .. ':' .. run .. ':'
local now = tonumber(redis.call('TIME')[1])
if tonumber(ARGV[1]) > 0 then
  redis.call('INCRBY', prefix .. now, ARGV[1])
  redis.call('EXPIRE', prefix .. now, window + 2)
end
local sum = 0
for i = 0, window - 1 do
  sum = sum + tonumber(redis.call('GET', prefix .. (now - i)) or '0')
end
return sum
"#;

struct Keys<'a>(&'a str);

impl Keys<'_> {
    fn breaker(&self, name: &str) -> String {
        format!("{}:resilience:breaker:{name}", self.0)
    }
    fn lease(&self, name: &str) -> String {
        format!("{}:resilience:probe:{name}", self.0)
    }
    fn channel(&self) -> String {
        format!("{}:resilience:events", self.0)
    }
    /// The prefix of a breaker's failure keys: `epoch` (the current epoch),
    /// and one bucket per epoch and second.
    fn failures(&self, name: &str) -> String {
        format!("{}:resilience:failures:{name}:", self.0)
    }
    fn breaker_pattern(&self) -> String {
        format!("{}:resilience:breaker:*", self.0)
    }
}

pub(crate) struct Task {
    pub(crate) inner: Arc<FleetInner>,
    pub(crate) registry: &'static Registry,
    pub(crate) client: redis::Client,
    pub(crate) url: String,
    pub(crate) rx: UnboundedReceiver<Local>,
    /// Breakers open here: the ones that may need a probe lease.
    open: HashSet<Arc<str>>,
    /// When this instance last asked for each breaker's lease.
    asked: HashMap<Arc<str>, Instant>,
    /// Breakers with a `fleet_threshold`: their failures are sent to the fleet.
    counted: HashSet<Arc<str>>,
}

enum End {
    Shutdown,
    Lost(String),
}

impl Task {
    pub(crate) fn new(
        inner: Arc<FleetInner>,
        registry: &'static Registry,
        client: redis::Client,
        url: String,
        rx: UnboundedReceiver<Local>,
    ) -> Self {
        Task {
            inner,
            registry,
            client,
            url,
            rx,
            open: HashSet::new(),
            asked: HashMap::new(),
            counted: HashSet::new(),
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
                    redis = %redact(&self.url),
                    "fleet sync lost Redis ({why}); breakers keep working locally, reconnecting with backoff"
                );
                warned = true;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.inner.stop.notified() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    fn set_connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::Release);
        for breaker in self.registry.named_breakers() {
            breaker.set_fleet_gated(connected);
        }
    }

    async fn session(&mut self, warned: &mut bool, backoff: &mut Duration) -> End {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let mut conn = match self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(e) => return End::Lost(scrub(&e.to_string(), &self.url)),
        };
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => return End::Lost(scrub(&e.to_string(), &self.url)),
        };
        let keys = Keys(&self.inner.namespace);
        if let Err(e) = pubsub.subscribe(keys.channel()).await {
            return End::Lost(scrub(&e.to_string(), &self.url));
        }
        // Local events queued while disconnected are superseded by the resync.
        while self.rx.try_recv().is_ok() {}
        if let Err(e) = self.resync(&mut conn).await {
            return End::Lost(scrub(&e.to_string(), &self.url));
        }
        self.set_connected(true);
        self.inner.set_readiness(Readiness::Synced);
        if std::mem::take(warned) {
            tracing::info!(target: "resilience", "fleet sync reconnected to Redis and resynced");
        }
        *backoff = Duration::from_millis(100);

        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(self.inner.config.lease_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval(self.inner.config.failure_flush);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                msg = messages.next() => match msg {
                    Some(msg) => {
                        self.on_message(msg.get_payload_bytes());
                        Ok(())
                    }
                    None => return End::Lost("subscription closed".to_owned()),
                },
                local = self.rx.recv() => match local {
                    Some(local) => self.on_local(&mut conn, local).await,
                    None => return End::Shutdown,
                },
                _ = tick.tick() => self.leases(&mut conn).await,
                _ = flush.tick() => self.count_failures(&mut conn).await,
                () = self.inner.stop.notified() => return End::Shutdown,
            };
            if let Err(e) = result {
                return End::Lost(scrub(&e.to_string(), &self.url));
            }
        }
    }

    /// Reconciles after (re)connecting. Open wins: the fleet's open breakers
    /// are applied here, and breakers open here that the fleet has never
    /// heard of (or forced open here) are published. A breaker open here but
    /// closed in the fleet stays open and probes when its time is up: a
    /// stale local state never overrides a fresher fleet decision.
    async fn resync(&mut self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let keys = Keys(&self.inner.namespace);
        let prefix = keys.breaker("");
        let mut found: Vec<String> = Vec::new();
        {
            let mut iter: redis::AsyncIter<'_, String> =
                conn.scan_match(keys.breaker_pattern()).await?;
            while let Some(key) = iter.next_item().await {
                found.push(key?);
            }
        }
        let mut fleet: HashMap<String, CircuitState> = HashMap::new();
        for key in found {
            let Some(name) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(state) = self.fetch(conn, name).await? {
                fleet.insert(name.to_owned(), state);
            }
        }
        for breaker in self.registry.named_breakers() {
            self.note_counted(breaker.name_arc());
            let here = breaker.state();
            let there = fleet.get(breaker.name()).copied();
            let publish = match here {
                CircuitState::Open => there.is_none(),
                CircuitState::ForcedOpen | CircuitState::Disabled => there != Some(here),
                _ => false,
            };
            if publish {
                self.publish(conn, breaker.name_arc()).await?;
            } else if here == CircuitState::Open {
                self.open.insert(breaker.name_arc().clone());
            }
        }
        Ok(())
    }

    /// Reads one breaker's fleet state, notes it (a breaker created here
    /// later starts from it), applies it here unless it is closed (the state
    /// every breaker starts in) or not newer than what was applied, and
    /// returns it. An open state whose time is up is applied as open: the
    /// instance holding the fleet's probe lease probes, the others wait.
    async fn fetch(
        &mut self,
        conn: &mut MultiplexedConnection,
        name: &str,
    ) -> redis::RedisResult<Option<CircuitState>> {
        let key = Keys(&self.inner.namespace).breaker(name);
        let fields: HashMap<String, String> =
            redis::cmd("HGETALL").arg(&key).query_async(conn).await?;
        let (Some(state), Some(gen)) = (
            fields.get("state").and_then(|s| state_from_str(s)),
            fields.get("fleet_gen").and_then(|g| g.parse::<u64>().ok()),
        ) else {
            return Ok(None);
        };
        let until_unix_ms = fields
            .get("until_unix_ms")
            .and_then(|u| u.parse::<u64>().ok());
        let known = Known {
            gen,
            state,
            until_unix_ms,
        };
        let name: Arc<str> = Arc::from(name);
        if !self.inner.learn(&name, known) {
            return Ok(Some(state)); // already applied
        }
        if let Some(breaker) = self.registry.shared(&name) {
            if state != CircuitState::Closed {
                self.apply(&breaker, known);
            }
        }
        Ok(Some(state))
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
        let known = Known {
            gen: announcement.fleet_gen,
            state: announcement.state,
            until_unix_ms: announcement.until_unix_ms,
        };
        if !self.inner.learn(&name, known) || announcement.instance == self.inner.instance {
            return; // older than what we applied, or our own
        }
        // Not used here yet: noted, and a breaker created later starts from it.
        let Some(breaker) = self.registry.shared(&name) else {
            return;
        };
        self.apply(&breaker, known);
    }

    /// Applies a fleet state that [`FleetInner::learn`] found newer.
    fn apply(&mut self, breaker: &CircuitBreaker, known: Known) {
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

    async fn publish(
        &mut self,
        conn: &mut MultiplexedConnection,
        name: &Arc<str>,
    ) -> redis::RedisResult<()> {
        let Some(breaker) = self.registry.shared(name) else {
            return Ok(());
        };
        let status = breaker.status();
        let state = match status.state {
            // Probing is this instance's business; the fleet keeps rejecting.
            CircuitState::HalfOpen => return Ok(()),
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
        let until = until_unix_ms.map(|u| u.to_string()).unwrap_or_default();
        let keys = Keys(&self.inner.namespace);
        let gen: u64 = Script::new(PUBLISH)
            .key(keys.breaker(name))
            .key(keys.channel())
            .key(keys.lease(name))
            .arg(state.as_str())
            .arg(until)
            .arg(&self.inner.instance)
            .arg(&**name)
            .invoke_async(conn)
            .await?;
        self.inner.learn(
            name,
            Known {
                gen,
                state,
                until_unix_ms,
            },
        );
        Ok(())
    }

    async fn on_local(
        &mut self,
        conn: &mut MultiplexedConnection,
        local: Local,
    ) -> redis::RedisResult<()> {
        match local {
            Local::Changed(name) => self.publish(conn, &name).await,
            Local::Created(name) => {
                self.note_counted(&name);
                self.fetch(conn, &name).await.map(drop)
            }
        }
    }

    fn note_counted(&mut self, name: &Arc<str>) {
        let counted = self
            .registry
            .get(name)
            .is_some_and(|b| b.config().fleet_threshold().is_some());
        if counted {
            self.counted.insert(name.clone());
        }
    }

    /// Sends the failures counted here since the last flush and opens a
    /// breaker whose fleet-wide count reached its `fleet_threshold`.
    async fn count_failures(&mut self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        // Publish local transitions first: failures of a period that began
        // here count only once the fleet knows the period began.
        while let Ok(local) = self.rx.try_recv() {
            self.on_local(conn, local).await?;
        }
        let window = self.inner.config.failure_window.as_secs().max(1);
        let names: Vec<Arc<str>> = self.counted.iter().cloned().collect();
        for name in names {
            let Some(breaker) = self.registry.shared(&name) else {
                self.counted.remove(&name);
                continue;
            };
            let report = breaker.take_fleet_report();
            let Some(threshold) = breaker.config().fleet_threshold() else {
                continue;
            };
            if report.failures == 0 && !report.success {
                continue;
            }
            let keys = Keys(&self.inner.namespace);
            let total: i64 = Script::new(COUNT_FAILURES)
                .key(keys.breaker(&name))
                .key(keys.failures(&name))
                .arg(report.failures)
                .arg(window)
                .arg(self.inner.known_gen(&name))
                .arg(if report.success { "1" } else { "0" })
                .invoke_async(conn)
                .await?;
            // Negative: counted before a transition this instance has not
            // heard of yet; dropped.
            let Ok(total) = u64::try_from(total) else {
                continue;
            };
            if report.failures > 0 && total >= u64::from(threshold.get()) {
                let total = u32::try_from(total).unwrap_or(u32::MAX);
                // The transition is logged and published like any other.
                breaker.open_for_fleet_failures(total);
            }
        }
        Ok(())
    }

    /// For open breakers whose time is up: race for the fleet's probe lease;
    /// the winner probes, the others keep rejecting until it publishes.
    async fn leases(&mut self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let now = Instant::now();
        let names: Vec<Arc<str>> = self.open.iter().cloned().collect();
        for name in names {
            let Some(breaker) = self.registry.shared(&name) else {
                self.open.remove(&name);
                continue;
            };
            let Some(generation) = breaker.waiting_for_probe_grant() else {
                if !matches!(
                    breaker.state(),
                    CircuitState::Open | CircuitState::ForcedOpen
                ) {
                    self.open.remove(&name);
                }
                continue;
            };
            if self
                .asked
                .get(&name)
                .is_some_and(|at| now.duration_since(*at) < self.inner.config.lease_retry)
            {
                continue;
            }
            self.asked.insert(name.clone(), now);
            let lease_ms = u64::try_from(self.inner.config.lease.as_millis()).unwrap_or(u64::MAX);
            let won: Option<String> = redis::cmd("SET")
                .arg(Keys(&self.inner.namespace).lease(&name))
                .arg(&self.inner.instance)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query_async(conn)
                .await?;
            if won.is_some() {
                tracing::debug!(
                    target: "resilience",
                    breaker = &*name,
                    "fleet: this instance probes `{name}`"
                );
                breaker.grant_probe(generation);
            }
        }
        Ok(())
    }
}
