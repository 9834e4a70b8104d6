//! Who is in the fleet, against a real `redis-server` (started by each test
//! on a free loopback port): instances heartbeat, the snapshot lists them
//! and counts, per shared breaker, the instances that have it and names the
//! one that changed it last; an instance that stops is dropped after the
//! timeout (at once when it shuts down); a change Redis lost is published
//! again by exactly one instance. Instances are separate registries in
//! this process; real clock, bounded waits.

mod support;

use std::time::Duration;

use futures::StreamExt;
use resilience::{BreakerConfig, CircuitState, Fleet, FleetConfig, Health, Registry};
use support::eventually;
use support::fleet::{self, instance, open_everywhere, sharing, state, trip, tuned};
use support::redis_server::RedisServer;
use support::redis_stats::{command_calls, reset_commandstats};

fn config() -> BreakerConfig {
    fleet::config(1, Duration::from_secs(60))
}

/// The default tuning with a 10 ms lease poll and fast heartbeats: a member
/// unheard of for 600 ms is dropped.
fn fast() -> FleetConfig {
    tuned(FleetConfig::default(), |c| {
        c.lease_poll = Duration::from_millis(10);
        c.heartbeat = Duration::from_millis(100);
        c.member_timeout = Duration::from_millis(600);
    })
}

async fn join(
    server: &RedisServer,
    registry: &'static Registry,
    ns: &str,
    c: FleetConfig,
) -> Fleet {
    let fleet = registry.share_via_redis_with(server.url(), ns, c).unwrap();
    assert!(fleet.ready().await, "the fleet sync connects");
    fleet
}

/// How many live instances share `name`, as `registry`'s snapshot says.
fn sharers(registry: &Registry, name: &str) -> u32 {
    registry
        .snapshot()
        .breaker(name)
        .and_then(|b| b.fleet.as_ref())
        .map_or(0, |f| f.instances)
}

/// The instance that changed `name` last, as `registry`'s snapshot says
/// (the breaker is shared).
fn last_change_by(registry: &Registry, name: &str) -> Option<String> {
    let snapshot = registry.snapshot();
    let fleet = snapshot.breaker(name).unwrap().fleet.clone().unwrap();
    fleet.last_change_by
}

fn members(registry: &Registry) -> usize {
    registry.snapshot().fleet.map_or(0, |f| f.members.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_lists_the_members_and_who_shares_each_breaker() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let [a, b, c] = sharing("payments", &config());
    c.breaker("search", &config());
    let fa = join(&server, a, "members", fast()).await;
    let fb = join(&server, b, "members", fast()).await;
    let fc = join(&server, c, "members", fast()).await;

    eventually("a sees three members", || members(a) == 3).await;
    eventually("a counts three sharers of payments", || {
        sharers(a, "payments") == 3
    })
    .await;
    eventually("c counts one sharer of search", || {
        sharers(c, "search") == 1
    })
    .await;
    let fleet = a
        .snapshot()
        .fleet
        .expect("a shared registry's snapshot has its fleet");
    assert_eq!(fleet.instance, fa.instance_id());
    assert_eq!(fleet.namespace, "members");
    assert_eq!(fleet.redis, server.url());
    assert!(fleet.connected);
    let ids: Vec<&str> = fleet.members.iter().map(|m| m.id.as_str()).collect();
    let mut expected = vec![fa.instance_id(), fb.instance_id(), fc.instance_id()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "sorted by id");
    for m in &fleet.members {
        assert_eq!(m.pid, std::process::id());
        assert!(!m.host.is_empty());
        assert!(m.started_unix_ms > 0 && m.last_seen_unix_ms >= m.started_unix_ms - 1_000);
    }
    let of_c = fleet
        .members
        .iter()
        .find(|m| m.id == fc.instance_id())
        .unwrap();
    assert_eq!(of_c.breakers, 2);

    // Nobody changed payments yet; a trip on b names b everywhere.
    assert_eq!(last_change_by(a, "payments"), None);
    trip(b, "payments");
    for r in [a, c] {
        eventually("the trip reaches every instance", || {
            state(r, "payments") == CircuitState::Open
        })
        .await;
        assert_eq!(
            last_change_by(r, "payments").as_deref(),
            Some(fb.instance_id())
        );
    }
    assert_eq!(
        last_change_by(b, "payments").as_deref(),
        Some(fb.instance_id())
    );
    // The health view says it in words.
    let health = a.health();
    let entry = health.policy(Health::CIRCUIT_BREAKER, "payments").unwrap();
    assert!(
        entry.detail.ends_with(&format!(
            "; shared by 3 instances, last changed by {}",
            fb.instance_id()
        )),
        "{}",
        entry.detail
    );

    // A breaker created later joins the counts.
    a.breaker("search", &config());
    eventually("c counts a's new search breaker", || {
        sharers(c, "search") == 2
    })
    .await;

    // Unshared registries and private breakers have no fleet part.
    let alone = instance();
    alone.breaker("payments", &config());
    assert!(alone.snapshot().fleet.is_none());
    assert!(alone
        .snapshot()
        .breaker("payments")
        .unwrap()
        .fleet
        .is_none());
    drop((fa, fb, fc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_instance_drops_out_after_the_timeout_and_a_stopped_one_at_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let [a, b, c] = sharing("ledger", &config());
    // Members drop out after 30 s here: only the drop test uses a short one.
    let slow = tuned(fast(), |c| c.member_timeout = Duration::from_secs(30));
    let fa = join(&server, a, "leaving", slow.clone()).await;
    let fb = join(&server, b, "leaving", slow.clone()).await;
    let fc = join(&server, c, "leaving", slow).await;
    eventually("three sharers", || sharers(a, "ledger") == 3).await;

    // Shutting down leaves at once, far within the 30 s timeout.
    let started = std::time::Instant::now();
    fc.shutdown().await;
    eventually("c left", || members(a) == 2 && sharers(a, "ledger") == 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // A dropped handle stops heartbeating without leaving (as a crash
    // would): it stays a member until the timeout.
    let fast_ns = instance();
    fast_ns.breaker("ledger", &config());
    let watcher = join(&server, fast_ns, "silent", fast()).await;
    let gone = instance();
    gone.breaker("ledger", &config());
    let fg = join(&server, gone, "silent", fast()).await;
    eventually("two members", || members(fast_ns) == 2).await;
    let silent_since = std::time::Instant::now();
    drop(fg);
    eventually("the silent instance is dropped", || {
        members(fast_ns) == 1 && sharers(fast_ns, "ledger") == 1
    })
    .await;
    // Not before the timeout (600 ms) has passed since its last heartbeat.
    assert!(
        silent_since.elapsed() >= Duration::from_millis(400),
        "dropped after {:?}",
        silent_since.elapsed()
    );
    drop((fa, fb, watcher));
}

/// Redis loses a change (a failover before the write reached the replica):
/// its record goes back to an older sequence. When the instances reconnect
/// and resync, the first to notice publishes the change again; the others
/// see that it did and stay quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_redis_lost_is_published_again_by_one_instance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let instances: Vec<&'static Registry> = (0..3).map(|_| instance()).collect();
    let mut fleets = Vec::new();
    for r in &instances {
        r.breaker("orders", &config());
        fleets.push(join(&server, r, "lost", fast()).await);
    }
    trip(instances[0], "orders");
    open_everywhere("every instance sees orders open", &instances, "orders").await;
    let mut conn = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("resilience:{lost:*}:breaker:orders")
        .query(&mut conn)
        .unwrap();
    let [key] = <[String; 1]>::try_from(keys).expect("one hash");
    let gen: u64 = redis::cmd("HGET")
        .arg(&key)
        .arg("fleet_gen")
        .query(&mut conn)
        .unwrap();
    // What the new primary has: the state before the trip, and the
    // partition's version before it (one script wrote both).
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("fleet_gen")
        .arg(gen - 1_000)
        .arg("state")
        .arg("closed")
        .arg("until_unix_ms")
        .arg("")
        .query(&mut conn)
        .unwrap();
    let version_key = key.replace(":breaker:orders", ":version");
    let version: u64 = redis::cmd("GET")
        .arg(&version_key)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&version_key)
        .arg(version - 1_000)
        .query(&mut conn)
        .unwrap();

    // Listen to the breaker's channel, then cut every client off.
    let channel = key.replace(":breaker:orders", ":events");
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();
    let mut announcements = pubsub.into_on_message();
    // (This connection is one of them: the test opens another below.)
    let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut conn);
    let first = tokio::time::timeout(Duration::from_secs(10), announcements.next())
        .await
        .expect("the lost change is published again")
        .unwrap();
    let payload = String::from_utf8_lossy(first.get_payload_bytes()).into_owned();
    assert!(payload.contains(r#""state":"open""#), "{payload}");
    // No second announcement: the others saw that Redis has it again.
    let second = tokio::time::timeout(Duration::from_millis(1_500), announcements.next()).await;
    assert!(second.is_err(), "published twice: {second:?}");
    let mut conn = server.connection();
    let state: String = redis::cmd("HGET")
        .arg(&key)
        .arg("state")
        .query(&mut conn)
        .unwrap();
    assert_eq!(state, "open");
    for r in &instances {
        assert_eq!(r.get("orders").unwrap().state(), CircuitState::Open);
    }

    // Cut off again, with nothing changed meanwhile: every instance knows
    // every partition's version, and reads none of them again.
    reset_commandstats(&mut conn);
    let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut conn);
    let mut conn = server.connection();
    // Each notices within a heartbeat (100 ms), reconnects and resyncs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    eventually("every instance is connected again", || {
        fleets.iter().all(Fleet::is_connected)
    })
    .await;
    assert!(
        command_calls(&mut conn, "get") >= 3 * 16,
        "the version checks ran"
    );
    assert_eq!(
        command_calls(&mut conn, "smembers"),
        0,
        "a partition was read again"
    );
    drop(fleets);
}
