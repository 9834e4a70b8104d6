//! The fleet's lease task: fills the token stock of every fleet-wide rate
//! limiter of one registry from Redis, gives unused tokens back, and puts
//! the limiters on their local share while Redis is unreachable. Nothing
//! here runs on a call's path: calls only take tokens from the stock (and
//! one call per lease wakes this task).

mod plan;
mod script;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::Script;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::conn::{Conn, Timeouts};
use super::target::RedisTarget;
use crate::{RateLimiter, Registry};
use plan::Tracked;
use script::{Ask, Reply, LEASE};

/// The bounds of [`FleetConfig::rate_lease_ttl`](crate::FleetConfig::rate_lease_ttl).
const MIN_TTL: Duration = Duration::from_millis(10);
const MAX_TTL: Duration = Duration::from_secs(3_600);

/// How long shutting down may spend giving tokens back, in all.
const LEAVE: Duration = Duration::from_secs(1);

/// The lease side of one running fleet.
#[derive(Debug)]
pub(crate) struct Hub {
    id: u64,
    /// The registry's address: how its limiters find this hub on creation.
    registry: usize,
    instance: String,
    namespace: String,
    /// How long a lease's unused tokens stay here (and the heartbeat).
    ttl: Duration,
    /// Wakes the task: a call wants tokens, or a limiter was attached.
    wake: Arc<Notify>,
    stop: Notify,
    attached: Mutex<Attached>,
    /// When the last per-limiter warning was logged (ms since the hub began).
    last_warning: AtomicU64,
    born: Instant,
}

#[derive(Debug, Default)]
struct Attached {
    /// The fleet stopped: nothing attaches any more.
    closed: bool,
    limiters: Vec<Arc<RateLimiter>>,
}

/// Every running hub, by the address of its registry (a registry shared
/// through Redis is `'static`, so the address names it for as long as the
/// hub runs).
static HUBS: Mutex<Vec<(usize, Weak<Hub>)>> = Mutex::new(Vec::new());

fn address(registry: &Registry) -> usize {
    std::ptr::from_ref(registry) as usize
}

/// A rate limiter was just created in `registry`: a fleet-wide one joins
/// the registry's fleet, if it has one.
pub(crate) fn rate_limiter_created(registry: &Registry, limiter: &Arc<RateLimiter>) {
    if !limiter.config().is_fleet() || !registry.fleet_shared.load(Ordering::Acquire) {
        return;
    }
    let at = address(registry);
    let hub = HUBS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(a, _)| *a == at)
        .and_then(|(_, hub)| hub.upgrade());
    if let Some(hub) = hub {
        hub.attach(limiter);
    }
}

impl Hub {
    fn attach(&self, limiter: &Arc<RateLimiter>) {
        let mut attached = self.attached.lock().unwrap_or_else(PoisonError::into_inner);
        if attached.closed || attached.limiters.iter().any(|l| Arc::ptr_eq(l, limiter)) {
            return;
        }
        if limiter.fleet_attach(self.id, self.wake.clone()) {
            attached.limiters.push(limiter.clone());
            drop(attached);
            self.wake.notify_one();
        }
    }

    /// Stops attaching, and puts every attached limiter back on its whole
    /// limit, locally.
    fn close(&self) {
        let limiters = {
            let mut attached = self.attached.lock().unwrap_or_else(PoisonError::into_inner);
            attached.closed = true;
            std::mem::take(&mut attached.limiters)
        };
        for limiter in limiters {
            limiter.fleet_detach(self.id);
        }
        let me: *const Hub = self;
        HUBS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, hub)| hub.as_ptr() != me && hub.strong_count() > 0);
    }

    /// A warning at most every 10 s; debug events in between.
    fn warn_limited(&self, limiter: &str, why: &str) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 10_000)
            && self
                .last_warning
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(target: "resilience", rate_limit = limiter, "fleet rate limit `{limiter}`: lease refused by Redis ({why}); its local share applies meanwhile");
        } else {
            tracing::debug!(target: "resilience", rate_limit = limiter, "fleet rate limit `{limiter}`: lease refused by Redis ({why})");
        }
    }
}

/// The running lease task of a fleet; stops it when dropped.
#[derive(Debug)]
pub(crate) struct Leases {
    hub: Arc<Hub>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Leases {
    /// Starts leasing for every fleet-wide rate limiter of `registry`,
    /// present and future.
    pub(crate) fn start(
        registry: &'static Registry,
        target: RedisTarget,
        instance: String,
        namespace: String,
        ttl: Duration,
        runtime: &tokio::runtime::Handle,
    ) -> Leases {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let hub = Arc::new(Hub {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            registry: address(registry),
            instance,
            namespace,
            ttl: ttl.clamp(MIN_TTL, MAX_TTL),
            wake: Arc::new(Notify::new()),
            stop: Notify::new(),
            attached: Mutex::default(),
            last_warning: AtomicU64::new(0),
            born: Instant::now(),
        });
        HUBS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((hub.registry, Arc::downgrade(&hub)));
        // After the hub is findable: a limiter created meanwhile is found
        // by this loop or finds the hub (or both: attaching is idempotent).
        for limiter in registry.rate_limiter_list() {
            hub.attach(&limiter);
        }
        let task = LeaseTask {
            hub: hub.clone(),
            target,
            script: Script::new(LEASE),
            tracked: Vec::new(),
        };
        let task = runtime.spawn(task.run());
        Leases {
            hub,
            task: Some(task),
        }
    }

    /// Gives the unused tokens back to the fleet and stops.
    pub(crate) async fn shutdown(&mut self) {
        self.hub.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.hub.close();
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.hub.close();
    }
}

struct LeaseTask {
    hub: Arc<Hub>,
    target: RedisTarget,
    script: Script,
    tracked: Vec<Tracked>,
}

enum End {
    Shutdown(Conn),
    Stopped,
    Lost(String),
}

/// Whether `e` means the connection is gone (rather than Redis refusing
/// one request).
fn is_lost(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        // A primary demoted by a failover: find the new one.
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

impl LeaseTask {
    async fn run(mut self) {
        // No connection until a fleet limiter needs one.
        if !self.wait_for_a_limiter().await {
            return;
        }
        let mut backoff = Duration::from_millis(50);
        let mut warned = false;
        loop {
            let why = match self.session(&mut warned, &mut backoff).await {
                End::Shutdown(mut conn) => return self.leave(&mut conn).await,
                End::Stopped => return,
                End::Lost(why) => why,
            };
            for t in &mut self.tracked {
                if t.on_lost(self.hub.id) {
                    let (name, n) = (t.limiter.name(), t.limiter.status().instances.max(1));
                    tracing::debug!(target: "resilience", rate_limit = name, "rate limit `{name}` runs on its local share, 1/{n} of the limit");
                }
            }
            if warned {
                tracing::debug!(target: "resilience", "fleet rate limits: still no Redis: {why}");
            } else {
                tracing::warn!(
                    target: "resilience",
                    redis = %self.target,
                    "fleet rate limits: no Redis ({why}); each fleet rate limiter runs on its local share of the limit, reconnecting with backoff"
                );
                warned = true;
            }
            tokio::select! {
                () = tokio::time::sleep(super::jittered(backoff)) => {}
                () = self.hub.stop.notified() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Waits until a limiter is attached (`true`) or the fleet stops.
    async fn wait_for_a_limiter(&self) -> bool {
        loop {
            let woken = self.hub.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let empty = self
                .hub
                .attached
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .limiters
                .is_empty();
            if !empty {
                return true;
            }
            tokio::select! {
                () = &mut woken => {}
                () = self.hub.stop.notified() => return false,
            }
        }
    }

    /// Takes the limiters attached since the last look.
    fn sync(&mut self) {
        let attached = self
            .hub
            .attached
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        for limiter in attached.limiters.iter().skip(self.tracked.len()) {
            self.tracked
                .push(Tracked::new(limiter.clone(), &self.hub.namespace, now));
        }
    }

    async fn session(&mut self, warned: &mut bool, backoff: &mut Duration) -> End {
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            response: Duration::from_millis(500),
        };
        let connect = self.target.connect(timeouts, None);
        let mut conn = tokio::select! {
            conn = connect => match conn {
                Ok(connected) => connected.conn,
                Err(e) => return End::Lost(self.target.scrub(&e.to_string())),
            },
            () = self.hub.stop.notified() => return End::Stopped,
        };
        if std::mem::take(warned) {
            tracing::info!(target: "resilience", "fleet rate limits reconnected to Redis; leasing again");
        }
        *backoff = Duration::from_millis(50);
        let ttl = self.hub.ttl;
        let wake = self.hub.wake.clone();
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            self.sync();
            let mut next = Instant::now() + ttl;
            for i in 0..self.tracked.len() {
                let now = Instant::now();
                let Some(ask) = self.tracked[i].plan(now, ttl) else {
                    next = next.min(self.tracked[i].next_wake(now, ttl));
                    continue;
                };
                match self.send(&mut conn, i, &ask).await {
                    Ok(reply) => self.tracked[i].on_reply(&ask, reply, now, self.hub.id),
                    Err(e) if is_lost(&e) => return End::Lost(self.target.scrub(&e.to_string())),
                    Err(e) => {
                        let t = &mut self.tracked[i];
                        self.hub
                            .warn_limited(t.limiter.name(), &self.target.scrub(&e.to_string()));
                        t.on_lost(self.hub.id);
                        t.on_failure(now, ttl);
                    }
                }
                next = next.min(self.tracked[i].next_wake(Instant::now(), ttl));
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(next) => {}
                () = self.hub.stop.notified() => return End::Shutdown(conn),
            }
        }
    }

    /// One lease request for `self.tracked[i]`: one command.
    async fn send(&self, conn: &mut Conn, i: usize, ask: &Ask) -> redis::RedisResult<Reply> {
        let t = &self.tracked[i];
        let limits = t.limits(self.hub.ttl);
        let member_ttl = u64::try_from(self.hub.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(3)
            .max(1);
        t.limiter.fleet_count_command();
        let values: Vec<i64> = self
            .script
            .key(&t.schedule_key)
            .key(&t.instances_key)
            .arg(limits.interval.to_string())
            .arg(limits.tolerance.to_string())
            .arg(ask.want)
            .arg(ask.back)
            .arg(limits.horizon.to_string())
            .arg(&self.hub.instance)
            .arg(member_ttl)
            .arg(if ask.leaving { "1" } else { "0" })
            .invoke_async(conn)
            .await?;
        Reply::parse(&values, ask, &limits).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected reply to a rate-limit lease",
                format!("{values:?}"),
            ))
        })
    }

    /// Shutdown: every limiter runs on its whole limit locally again, then
    /// gives its unused tokens back and leaves the fleet's count of
    /// instances (best effort, within [`LEAVE`] in all).
    async fn leave(&mut self, conn: &mut Conn) {
        self.sync();
        let deadline = Instant::now() + LEAVE;
        let mut leaving = Vec::new();
        for (i, t) in self.tracked.iter_mut().enumerate() {
            let unused = t.limiter.fleet_detach(self.hub.id) + t.take_pending();
            if t.limiter.config().is_fleet() {
                leaving.push((i, unused));
            }
        }
        for (i, unused) in leaving {
            let ask = Ask {
                want: 0,
                back: unused,
                leaving: true,
            };
            let why = match tokio::time::timeout_at(deadline, self.send(conn, i, &ask)).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => self.target.scrub(&e.to_string()),
                Err(_) => "timed out".to_owned(),
            };
            let name = self.tracked[i].limiter.name();
            tracing::debug!(
                target: "resilience",
                rate_limit = name,
                "fleet rate limit `{name}`: {unused} unused token(s) not given back ({why}); the fleet's schedule frees them in time"
            );
        }
    }
}
