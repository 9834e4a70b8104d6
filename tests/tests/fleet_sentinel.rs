//! The fleet behind Redis Sentinel, against real servers this test starts
//! on loopback ports (a primary, a replica, three sentinels:
//! `support::redis_sentinel`): the instances find the primary through the
//! sentinels, follow a failover to the new one (the old primary killed, or
//! hung) without a call failing or waiting, and a trip that the failover
//! lost (it never reached the replica) is published again. Instances are registries in this process;
//! the real clock, bounded waits.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resilience::{CircuitState, Fleet, FleetConfig, Outcome, RedisTarget, Registry};
use support::fleet::{self, blocking, blocking_on, fail, instance, state, tuned, within};
use support::redis_sentinel::SentinelSet;

/// How long a failover may take here (2 to 5 s measured) plus reconnecting.
const FAILOVER: Duration = Duration::from_secs(30);

/// The default tuning, with a 10 ms lease poll and heartbeats every 200 ms.
fn fast() -> FleetConfig {
    tuned(FleetConfig::default(), |c| {
        c.lease_poll = Duration::from_millis(10);
        c.heartbeat = Duration::from_millis(200);
    })
}

async fn start() -> Option<Arc<SentinelSet>> {
    blocking(SentinelSet::start).await.map(Arc::new)
}

async fn join(set: &SentinelSet, registry: &'static Registry, names: &[&str]) -> Fleet {
    for name in names {
        // One failure opens it, for longer than any test.
        registry.breaker(name, &fleet::config(1, Duration::from_secs(120)));
    }
    let target: RedisTarget = set.url().parse().unwrap();
    let fleet = registry
        .share_via_redis_with(target, "sentinel", fast())
        .unwrap();
    assert!(fleet.ready().await, "the fleet sync reaches the primary");
    fleet
}

/// One failure opens `registry`'s breaker `name` (threshold 1).
fn trip(registry: &Registry, name: &str) {
    fail(registry, name, 1);
    assert_eq!(state(registry, name), CircuitState::Open);
}

/// The fleet's record of `name` on the node at `port`: `(state, fleet_gen)`.
fn record(set: &SentinelSet, port: u16, name: &str) -> Option<(String, u64)> {
    let mut conn = set.connection_to(port);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("resilience:{{sentinel:*}}:breaker:{name}"))
        .query(&mut conn)
        .unwrap();
    let key = keys.first()?;
    let (state, gen): (String, u64) = redis::cmd("HMGET")
        .arg(key)
        .arg("state")
        .arg("fleet_gen")
        .query(&mut conn)
        .unwrap();
    Some((state, gen))
}

/// Calls `name` on `registry` every millisecond until stopped; returns the
/// slowest call (µs) and whether any call was rejected.
fn keep_calling(
    registry: &'static Registry,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, bool)> {
    tokio::spawn(async move {
        let slowest = AtomicU64::new(0);
        let mut rejected = false;
        let breaker = registry.get(name).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match breaker.try_acquire() {
                Ok(permit) => permit.record(Outcome::Success),
                Err(_) => rejected = true,
            }
            let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            slowest.fetch_max(took, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (slowest.load(Ordering::Relaxed), rejected)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_moves_the_fleet_to_the_new_primary_and_no_call_waits() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    let fa = join(&set, a, &["x", "y", "calls"]).await;
    let fb = join(&set, b, &["x", "y", "calls"]).await;
    trip(a, "x");
    within(Duration::from_secs(10), "b sees x open", || {
        state(b, "x") == CircuitState::Open
    })
    .await;

    // Calls go on through the failover, judged locally, never waiting.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = keep_calling(b, "calls", stop.clone());
    let old = blocking_on(&set, SentinelSet::kill_primary).await;
    let failed_over = Instant::now();
    let new = blocking_on(&set, move |set| set.wait_for_failover(old, FAILOVER)).await;
    assert_ne!(new, old);
    within(
        FAILOVER,
        "both instances reconnect to the new primary",
        || fa.is_connected() && fb.is_connected(),
    )
    .await;
    let reconnected = failed_over.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (slowest_us, rejected) = caller.await.unwrap();
    assert!(
        !rejected,
        "a closed breaker rejected a call during the failover"
    );
    // Local calls take microseconds; a call that waited on Redis would
    // take the failover's seconds. (A loaded machine may stall a thread
    // for a few ms: the bound is generous, the difference is 1,000-fold.)
    assert!(slowest_us < 200_000, "a call took {slowest_us} µs");
    eprintln!(
        "reconnected {reconnected:?} after the primary was killed; slowest call {slowest_us} µs"
    );

    // The fleet works through the new primary.
    trip(b, "y");
    within(Duration::from_secs(10), "a sees y open", || {
        state(a, "y") == CircuitState::Open
    })
    .await;
    assert_eq!(
        record(&set, new, "x").map(|r| r.0).as_deref(),
        Some("open"),
        "the new primary has x open"
    );
    // A late joiner reads the fleet's state from the new primary.
    let c = instance();
    let fc = join(&set, c, &["x", "y"]).await;
    assert_eq!(state(c, "x"), CircuitState::Open);
    assert_eq!(state(c, "y"), CircuitState::Open);
    assert!(c.get("x").unwrap().try_acquire().is_err());
    drop((fa, fb, fc));
}

/// The trip reaches the other instances through the old primary but never
/// the replica (its link is cut, then the primary dies): the promoted
/// replica has no record of it. The instances that know of it publish it
/// again when they resync, so the fleet's state in Redis is the state the
/// instances have, and a late joiner starts open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_lost_in_the_failover_is_published_again() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    let fa = join(&set, a, &["w"]).await;
    let fb = join(&set, b, &["w"]).await;
    let old = set.primary_port();
    let replica = set.node_ports().into_iter().find(|p| *p != old).unwrap();
    // Cut replication: the replica stops, the primary drops its link.
    set.pause_node(replica);
    let mut primary = set.connection_to(old);
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut primary)
        .unwrap();
    trip(a, "w");
    within(Duration::from_secs(10), "b sees w open", || {
        state(b, "w") == CircuitState::Open
    })
    .await;
    let (_, tripped_gen) = record(&set, old, "w").expect("the old primary has the trip");
    blocking_on(&set, move |set| {
        set.kill_primary();
        set.resume_node(replica);
    })
    .await;
    let new = blocking_on(&set, move |set| set.wait_for_failover(old, FAILOVER)).await;
    assert_eq!(new, replica);
    within(FAILOVER, "the trip is in the new primary again", || {
        record(&set, new, "w").is_some_and(|(state, gen)| state == "open" && gen > tripped_gen)
    })
    .await;
    assert_eq!(state(a, "w"), CircuitState::Open);
    assert_eq!(state(b, "w"), CircuitState::Open);
    let c = instance();
    let fc = join(&set, c, &["w"]).await;
    assert_eq!(
        state(c, "w"),
        CircuitState::Open,
        "a late joiner starts open"
    );
    drop((fa, fb, fc));
}

/// The primary hangs (`SIGSTOP`: its sockets stay open, nothing answers):
/// the instances stop waiting for it within their 2 s bound, the sentinels
/// promote the replica, the fleet moves there; when the old primary wakes
/// up as a replica, nothing goes back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_is_left_for_the_new_one() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    let fa = join(&set, a, &["h1", "h2", "calls"]).await;
    let fb = join(&set, b, &["h1", "h2", "calls"]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let caller = keep_calling(a, "calls", stop.clone());
    let old = blocking_on(&set, SentinelSet::pause_primary).await;
    let new = blocking_on(&set, move |set| set.wait_for_failover(old, FAILOVER)).await;
    // Trips made now reach the other instance through the new primary.
    within(
        FAILOVER,
        "both instances work through the new primary",
        || fa.is_connected() && fb.is_connected(),
    )
    .await;
    trip(a, "h1");
    within(FAILOVER, "b sees h1 open", || {
        state(b, "h1") == CircuitState::Open
    })
    .await;
    assert_eq!(
        record(&set, new, "h1").map(|r| r.0).as_deref(),
        Some("open")
    );
    blocking_on(&set, |set| {
        set.resume_primary();
        set.wait_until_healthy(FAILOVER);
    })
    .await;
    trip(b, "h2");
    within(Duration::from_secs(10), "a sees h2 open", || {
        state(a, "h2") == CircuitState::Open
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (slowest_us, rejected) = caller.await.unwrap();
    assert!(!rejected);
    assert!(slowest_us < 200_000, "a call took {slowest_us} µs");
    drop((fa, fb));
}
