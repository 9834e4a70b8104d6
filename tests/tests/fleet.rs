//! Fleet-wide breakers against a real `redis-server` (started by each test on
//! a free loopback port): instances are separate registries in this process,
//! each with its own fleet sync. These tests use the real clock, because the
//! network does; they wait for conditions with a bound, never for a time.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use resilience::{BreakerConfig, CircuitState, Fleet, FleetConfig, FleetError, Outcome, Registry};
use support::eventually;
use support::fleet::{
    call_until_closed, config, fail, fast, instance, open_everywhere, sharing, state, trip, tuned,
};
use support::ms;
use support::redis_server::RedisServer;
use support::redis_stats::reset_commandstats;

async fn join(server: &RedisServer, registry: &'static Registry, ns: &str) -> Fleet {
    let fleet = registry
        .share_via_redis_with(server.url(), ns, fast())
        .unwrap();
    eventually("the fleet sync connects", || fleet.is_connected()).await;
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_instance_opens_the_breaker_on_the_others() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = config(2, Duration::from_secs(30));
    let [a, b] = sharing("payments", &cfg);
    let _fa = join(&server, a, "trip").await;
    let _fb = join(&server, b, "trip").await;

    trip(a, "payments");
    eventually("b sees payments open", || {
        state(b, "payments") == CircuitState::Open
    })
    .await;
    match b.get("payments").unwrap().try_acquire() {
        Err(e) if e.is_circuit_open() && e.retry_after().is_some() => {
            let wait = e.retry_after().unwrap();
            assert!(
                wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
                "{wait:?}"
            );
        }
        other => panic!("b must reject: {other:?}"),
    }
    // Another namespace never hears of it.
    let c = instance();
    c.breaker("payments", &cfg);
    let _fc = join(&server, c, "other-service").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state(c, "payments"), CircuitState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_instance_probes_and_its_verdict_closes_every_one() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let instances: Vec<&'static Registry> = (0..3).map(|_| instance()).collect();
    let cfg = config(1, Duration::from_millis(300));
    let mut fleets = Vec::new();
    for r in &instances {
        r.breaker("search", &cfg);
        fleets.push(join(&server, r, "probe").await);
    }
    trip(instances[0], "search");
    open_everywhere("every instance sees search open", &instances, "search").await;
    // Everyone calls every 2 ms once the recovery time is up (a permit
    // held 20 ms: the probe call); count probes.
    let admitted = call_until_closed(&instances, "search", ms(20), ms(2)).await;
    assert_eq!(
        admitted.probes, admitted.permits,
        "every call admitted is the probe"
    );
    assert_eq!(admitted.permits, 1, "exactly one probe across the fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_starts_later_reads_the_fleet_state_first() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance();
    let cfg = config(1, Duration::from_secs(60));
    a.breaker("ledger", &cfg);
    let _fa = join(&server, a, "late").await;
    trip(a, "ledger");
    // Wait until the fleet has it (a second instance sees it).
    let b = instance();
    b.breaker("ledger", &cfg);
    let _fb = join(&server, b, "late").await;
    eventually("b reads ledger open at start-up", || {
        state(b, "ledger") == CircuitState::Open
    })
    .await;
    // A breaker created after joining reads its fleet state on creation.
    let c = instance();
    let _fc = join(&server, c, "late").await;
    c.breaker("ledger", &cfg);
    eventually("c reads ledger open on creation", || {
        state(c, "ledger") == CircuitState::Open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_messages_are_ignored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (instance(), instance());
    let cfg = config(1, Duration::from_secs(60));
    for r in [a, b] {
        r.breaker("victim", &cfg);
        r.breaker("marker", &cfg);
    }
    let _fa = join(&server, a, "bad").await;
    let _fb = join(&server, b, "bad").await;
    let mut conn = server.connection();
    let payloads = [
        "garbage",
        "{}",
        r#"{"v":2,"instance":"x","breaker":"victim","state":"open","until_unix_ms":1,"fleet_gen":99}"#,
        r#"{"v":1,"instance":"x","breaker":"victim","state":"melted","fleet_gen":99}"#,
        r#"{"v":1,"instance":"x","breaker":"victim","state":"open","fleet_gen":99}"#,
        "\u{0}\u{1}\u{2}",
    ];
    // Every partition's channel the instances listen to.
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("resilience:{bad:*}:events")
        .query(&mut conn)
        .unwrap();
    assert_eq!(channels.len(), 16, "{channels:?}");
    for p in payloads {
        for channel in &channels {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(p)
                .query(&mut conn)
                .unwrap();
        }
    }
    // Messages are handled in order: once the marker arrives, the garbage
    // before it has been seen, and ignored.
    trip(a, "marker");
    eventually("b sees the marker", || {
        state(b, "marker") == CircuitState::Open
    })
    .await;
    assert_eq!(state(b, "victim"), CircuitState::Closed);
    assert!(b.get("victim").unwrap().try_acquire().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_breakers_work_locally_and_resync_on_reconnect() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cfg = config(1, Duration::from_millis(200));
    let [a, b] = sharing("db", &cfg);
    let fa = join(&server, a, "down").await;
    let fb = join(&server, b, "down").await;

    server.kill();
    eventually("a notices", || !fa.is_connected()).await;
    eventually("b notices", || !fb.is_connected()).await;
    // Locally, everything still works: trip, reject, probe on its own, close.
    trip(a, "db");
    assert!(a.get("db").unwrap().try_acquire().is_err());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let db = a.get("db").unwrap();
    let probe = db.try_acquire().expect("a local probe without Redis");
    probe.record(Outcome::Failure); // re-opens, still locally
    assert_eq!(state(a, "db"), CircuitState::Open);
    assert_eq!(state(b, "db"), CircuitState::Closed, "nothing reached b");

    server.restart();
    eventually("a reconnects", || fa.is_connected()).await;
    eventually("b reconnects", || fb.is_connected()).await;
    // a's open breaker, unknown to the fleet, is published by the resync.
    eventually("b learns of db after the resync", || {
        state(b, "db") != CircuitState::Closed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_send_no_commands_to_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance();
    let cfg = config(1_000_000, Duration::from_secs(60));
    let breaker = a.breaker("quiet", &cfg);
    // No heartbeat during the calls: those are the sync's, not the calls'.
    let quiet = tuned(fast(), |c| c.heartbeat = Duration::from_secs(3600));
    let fleet = a
        .share_via_redis_with(server.url(), "quiet", quiet)
        .unwrap();
    eventually("the first heartbeat", || !fleet.status().members.is_empty()).await;
    let mut conn = server.connection();
    reset_commandstats(&mut conn);
    for i in 0..10_000u32 {
        let outcome = if i % 10 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        breaker.try_acquire().unwrap().record(outcome);
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // let the sync task run
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let commands: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter(|l| !l.starts_with("cmdstat_info:") && !l.starts_with("cmdstat_config"))
        .collect();
    assert!(commands.is_empty(), "the call path sent: {commands:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_never_appear_in_errors() {
    let err = instance()
        .share_via_redis("redis://admin:hunter22@[not a host", "ns")
        .unwrap_err();
    assert!(matches!(err, FleetError::InvalidUrl { .. }));
    assert!(!err.to_string().contains("hunter22"), "{err}");
    let err = instance()
        .share_via_redis("redis://127.0.0.1:6379", "bad ns")
        .unwrap_err();
    assert_eq!(err, FleetError::InvalidNamespace("bad ns".into()));
    // Unreachable: accepted at once, connecting in the background, never connected.
    let r = instance();
    let fleet = r
        .share_via_redis("redis://admin:hunter22@127.0.0.1:1", "ns")
        .unwrap();
    assert!(!fleet.is_connected());
    assert!(!format!("{fleet:?}").contains("hunter22"));
    assert_eq!(
        r.share_via_redis("redis://127.0.0.1:1", "ns").unwrap_err(),
        FleetError::AlreadyShared
    );
    fleet.shutdown().await;
    assert!(
        r.share_via_redis("redis://127.0.0.1:1", "ns").is_ok(),
        "shareable again after shutdown"
    );
}

/// Regression: the fleet sequence restarted at 1 when the breaker's key
/// expired (24 h without a transition) or a restarted Redis lost it, and
/// instances that had seen higher numbers ignored every later change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_after_the_fleet_key_vanished_still_propagates() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = config(1, Duration::from_secs(60));
    let [a, b] = sharing("x", &cfg);
    let _fa = join(&server, a, "expiry").await;
    let _fb = join(&server, b, "expiry").await;
    trip(a, "x");
    eventually("b open", || state(b, "x") == CircuitState::Open).await;
    a.get("x").unwrap().reset();
    eventually("b closed", || state(b, "x") == CircuitState::Closed).await;
    // What the key's expiry (or a Redis restart without persistence) does:
    let mut conn = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("resilience:{expiry:*}:breaker:x")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1, "one hash for the breaker: {keys:?}");
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn).unwrap();
    trip(a, "x");
    eventually("b open after the key vanished", || {
        state(b, "x") == CircuitState::Open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_across_the_fleet_trip_every_instance_together() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let instances: Vec<&'static Registry> = (0..3).map(|_| instance()).collect();
    // Locally a breaker would need 100 failures; the fleet needs 6 in all.
    let cfg = fleet_counted(6, Duration::from_secs(60));
    let fleet_config = flushing();
    let mut fleets = Vec::new();
    for r in &instances {
        r.breaker("shared-load", &cfg);
        let fleet = r
            .share_via_redis_with(server.url(), "counting", fleet_config.clone())
            .unwrap();
        eventually("connected", || fleet.is_connected()).await;
        fleets.push(fleet);
    }
    // Two failures on each instance: none of them could trip alone.
    for r in &instances[..2] {
        fail(r, "shared-load", 2);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for r in &instances {
        assert_eq!(
            state(r, "shared-load"),
            CircuitState::Closed,
            "4 of 6 so far"
        );
    }
    fail(instances[2], "shared-load", 2);
    open_everywhere("every instance opens", &instances, "shared-load").await;
}

/// A breaker that only the fleet's count opens: locally it would take 100.
fn fleet_counted(fleet_threshold: u32, recovery: Duration) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(100)
        .fleet_threshold(fleet_threshold)
        .recovery_timeout(recovery)
        .build()
        .unwrap()
}

/// [`fast`], the failures counted here sent to the fleet every 10 ms.
fn flushing() -> FleetConfig {
    tuned(fast(), |c| c.failure_flush = Duration::from_millis(10))
}

/// `n` instances sharing `name` with `cfg`, their failures flushed every 10 ms.
async fn counting_fleet(
    server: &RedisServer,
    ns: &str,
    name: &str,
    cfg: &BreakerConfig,
    n: usize,
) -> (Vec<&'static Registry>, Vec<Fleet>) {
    let fleet_config = flushing();
    let mut instances = Vec::new();
    let mut fleets = Vec::new();
    for _ in 0..n {
        let r = instance();
        r.breaker(name, cfg);
        let fleet = r
            .share_via_redis_with(server.url(), ns, fleet_config.clone())
            .unwrap();
        assert!(fleet.ready().await, "synced with the fleet");
        instances.push(r);
        fleets.push(fleet);
    }
    (instances, fleets)
}

fn succeed(registry: &Registry, name: &str) {
    let b = registry.get(name).unwrap();
    b.try_acquire().unwrap().record(Outcome::Success);
}

/// Many flushes of every instance (every 10 ms), so that whatever was
/// counted reached Redis and was read back, even on a loaded machine.
async fn flushed() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_counted_before_an_opening_never_count_again_after_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = fleet_counted(5, Duration::from_millis(300));
    let (instances, _fleets) = counting_fleet(&server, "recount", "reports", &cfg, 2).await;
    let (a, b) = (instances[0], instances[1]);
    fail(a, "reports", 3);
    fail(b, "reports", 2);
    open_everywhere("5 failures across the fleet open both", &[a, b], "reports").await;
    // After the recovery timeout the probe succeeds and every instance closes.
    eventually("the fleet probes and closes", || {
        for r in [a, b] {
            if let Ok(permit) = r.get("reports").unwrap().try_acquire() {
                permit.record(Outcome::Success);
            }
        }
        state(a, "reports") == CircuitState::Closed && state(b, "reports") == CircuitState::Closed
    })
    .await;
    // The successes of the loop above reach the fleet first.
    flushed().await;
    // One failure: 1 of 5 in this closed period, not 6.
    fail(a, "reports", 1);
    flushed().await;
    for r in [a, b] {
        assert_eq!(state(r, "reports"), CircuitState::Closed, "1 failure of 5");
    }
    // The count of this period still works: 4 more open it again.
    fail(b, "reports", 4);
    open_everywhere("5 failures of this period open both", &[a, b], "reports").await;
}

/// The fleet's consecutive rule reads like the local one: a success on any
/// instance breaks the fleet's run of failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_anywhere_breaks_the_fleets_run_of_failures() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = fleet_counted(5, Duration::from_secs(60));
    let (instances, _fleets) = counting_fleet(&server, "run", "ledger", &cfg, 2).await;
    let (a, b) = (instances[0], instances[1]);
    fail(a, "ledger", 4);
    flushed().await;
    succeed(b, "ledger");
    flushed().await;
    fail(a, "ledger", 1);
    fail(b, "ledger", 3);
    flushed().await;
    for r in [a, b] {
        assert_eq!(
            state(r, "ledger"),
            CircuitState::Closed,
            "4 failures since the success, not 8"
        );
    }
    fail(b, "ledger", 1);
    open_everywhere(
        "5 failures in a row across the fleet open both",
        &[a, b],
        "ledger",
    )
    .await;
}

/// A windowed breaker keeps the window's semantics across the fleet: its
/// failures count for the fleet's window, whatever succeeded in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_fleet_count_is_not_cleared_by_successes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = BreakerConfig::builder()
        .window(resilience::Window::Calls(NonZeroU32::new(1000).unwrap()))
        .failure_threshold(100)
        .fleet_threshold(5)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (instances, _fleets) = counting_fleet(&server, "windowed", "search", &cfg, 2).await;
    let (a, b) = (instances[0], instances[1]);
    fail(a, "search", 4);
    flushed().await;
    succeed(b, "search");
    succeed(a, "search");
    flushed().await;
    assert_eq!(state(a, "search"), CircuitState::Closed, "4 of 5");
    fail(b, "search", 1);
    open_everywhere(
        "5 failures in the fleet's window open both",
        &[a, b],
        "search",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_breakers_are_never_shared() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (instance(), instance());
    let cfg = config(1, Duration::from_secs(30));
    // What a `#[circuit_breaker]` without `name` uses, on two instances.
    let private_a = resilience::__private::registry_private_breaker(a, "app::Api::fetch", &cfg);
    let private_b = resilience::__private::registry_private_breaker(b, "app::Api::fetch", &cfg);
    a.breaker("private-marker", &cfg);
    b.breaker("private-marker", &cfg);
    let _fa = join(&server, a, "private").await;
    let _fb = join(&server, b, "private").await;

    private_a.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(private_a.state(), CircuitState::Open);
    // A named breaker tripped afterwards: once b sees it, b would have seen
    // the private one too.
    trip(a, "private-marker");
    eventually("b sees the named breaker open", || {
        state(b, "private-marker") == CircuitState::Open
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(private_b.state(), CircuitState::Closed);
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(
        keys.iter().all(|k| !k.contains("app::Api::fetch")),
        "{keys:?}"
    );
}
