//! The fleet on a Redis Cluster, against real servers this test starts on
//! loopback ports (three primaries: `support::redis_cluster`): breakers
//! spread over the cluster's nodes trip and recover together through
//! sharded pub/sub, with one probe each; a late joiner reads the state
//! first; fleet failure counting, membership and a fleet rate limit run
//! their scripts on the node of each key's slot; a node that dies and comes
//! back is resynced. Instances are registries in this process; the real
//! clock, bounded waits.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resilience::{
    BreakerConfig, CircuitState, Fleet, FleetConfig, Outcome, RateLimitConfig, RedisTargetKind,
    Registry,
};
use support::fleet::{self, blocking, blocking_on, fail, instance, state, tuned, within};
use support::redis_cluster::ClusterSet;

/// Breakers in the tests: enough to land on every node.
const NAMES: usize = 48;

fn config(recovery: Duration) -> BreakerConfig {
    fleet::config(1, recovery)
}

/// [`fleet::fast`], with heartbeats every 100 ms: a member unheard of for
/// 600 ms is dropped.
fn fast() -> FleetConfig {
    tuned(fleet::fast(), |c| {
        c.heartbeat = Duration::from_millis(100);
        c.member_timeout = Duration::from_millis(600);
    })
}

fn names() -> Vec<String> {
    (0..NAMES).map(|i| format!("b{i:02}")).collect()
}

async fn start() -> Option<Arc<ClusterSet>> {
    blocking(ClusterSet::start).await.map(Arc::new)
}

async fn join(set: &ClusterSet, registry: &'static Registry, ns: &str) -> Fleet {
    let url = set.url();
    assert_eq!(
        url.parse::<resilience::RedisTarget>().unwrap().kind(),
        RedisTargetKind::Cluster
    );
    let fleet = registry.share_via_redis_with(url, ns, fast()).unwrap();
    assert!(fleet.ready().await, "the fleet sync reaches the cluster");
    fleet
}

/// The key of `name`'s breaker hash in namespace `ns`, if a node has it.
fn record_key(set: &ClusterSet, ns: &str, name: &str) -> Option<String> {
    set.ports().into_iter().find_map(|port| {
        let mut conn = set.connection_to(port);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("resilience:{{{ns}:*}}:breaker:{name}"))
            .query(&mut conn)
            .ok()?;
        keys.into_iter().next()
    })
}

/// The node serving `name`'s breaker hash in namespace `ns`.
fn node_of(set: &ClusterSet, ns: &str, name: &str) -> u16 {
    let key = record_key(set, ns, name).unwrap_or_else(|| panic!("no node has a record of {name}"));
    set.node_for_key(&key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_on_every_node_trip_and_recover_together_with_one_probe_each() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    let recovery = Duration::from_millis(800);
    for r in [a, b] {
        for name in names() {
            r.breaker(&name, &config(recovery));
        }
    }
    let fa = join(&set, a, "spread").await;
    let fb = join(&set, b, "spread").await;
    for name in names() {
        fail(a, &name, 1);
    }
    within(Duration::from_secs(10), "b sees every breaker open", || {
        names().iter().all(|n| state(b, n) == CircuitState::Open)
    })
    .await;
    // The records are spread over the cluster's nodes.
    let nodes: HashSet<u16> = names().iter().map(|n| node_of(&set, "spread", n)).collect();
    assert_eq!(nodes.len(), set.ports().len(), "records on {nodes:?}");

    // Once the open time is up both call until closed: one probe each.
    tokio::time::sleep(recovery).await;
    let mut probes = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !names()
        .iter()
        .all(|n| state(a, n) == CircuitState::Closed && state(b, n) == CircuitState::Closed)
    {
        assert!(Instant::now() < deadline, "not every breaker closed");
        for r in [a, b] {
            for name in names() {
                if let Ok(permit) = r.get(&name).unwrap().try_acquire() {
                    if permit.is_probe() {
                        probes += 1;
                    }
                    permit.record(Outcome::Success);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(probes, NAMES, "one probe per breaker across the fleet");

    // A late joiner reads the state first: open again on a, open on c.
    fail(a, "b07", 1);
    within(Duration::from_secs(10), "b sees b07 open", || {
        state(b, "b07") == CircuitState::Open
    })
    .await;
    let c = instance();
    let fc = join(&set, c, "spread").await;
    assert!(c.breaker("b07", &config(recovery)).try_acquire().is_err());
    assert!(c.breaker("b08", &config(recovery)).try_acquire().is_ok());

    // Membership runs on the cluster too.
    within(
        Duration::from_secs(10),
        "three members, two sharing b00",
        || {
            let snapshot = a.snapshot();
            snapshot
                .fleet
                .as_ref()
                .is_some_and(|f| f.members.len() == 3)
                && snapshot
                    .breaker("b00")
                    .and_then(|s| s.fleet.clone())
                    .map(|f| f.instances)
                    == Some(2)
        },
    )
    .await;
    drop((fa, fb, fc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_counting_and_rate_limits_run_their_scripts_on_the_cluster() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    let counted = BreakerConfig::builder()
        .failure_threshold(1_000)
        .fleet_threshold(6)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let limit = RateLimitConfig::builder(100)
        .burst(10)
        .fleet(true)
        .build()
        .unwrap();
    for r in [a, b] {
        r.breaker("counted", &counted);
        r.rate_limiter("quota", &limit);
    }
    let fa = join(&set, a, "scripts").await;
    let fb = join(&set, b, "scripts").await;
    // Three failures on each instance: the fleet counts six and opens.
    for r in [a, b] {
        fail(r, "counted", 3);
    }
    within(
        Duration::from_secs(10),
        "the fleet's count opens both",
        || state(a, "counted") == CircuitState::Open && state(b, "counted") == CircuitState::Open,
    )
    .await;
    // The rate limit leases from the cluster: both instances count.
    within(
        Duration::from_secs(10),
        "both instances share the limit",
        || {
            [a, b].iter().all(|r| {
                r.snapshot()
                    .rate_limiters
                    .iter()
                    .any(|l| &*l.name == "quota" && l.instances == 2)
            })
        },
    )
    .await;
    drop((fa, fb));
}

/// The node serving some breakers dies: every instance keeps deciding its
/// calls locally; once the node is back (empty: no persistence), the
/// instances resync, publish what it lost, and propagate through it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_and_comes_back_is_resynced() {
    let Some(set) = start().await else {
        return;
    };
    let (a, b) = (instance(), instance());
    for r in [a, b] {
        for name in names() {
            r.breaker(&name, &config(Duration::from_secs(120)));
        }
    }
    let fa = join(&set, a, "node").await;
    let fb = join(&set, b, "node").await;
    fail(a, "b03", 1);
    within(Duration::from_secs(10), "b sees b03 open", || {
        state(b, "b03") == CircuitState::Open
    })
    .await;
    let victim = node_of(&set, "node", "b03");
    blocking_on(&set, move |set| set.kill_node(victim)).await;
    within(Duration::from_secs(10), "the instances notice", || {
        !fa.is_connected() || !fb.is_connected()
    })
    .await;
    // Calls are still decided locally, at once.
    let started = Instant::now();
    assert!(a.get("b03").unwrap().try_acquire().is_err());
    assert!(b.get("b05").unwrap().try_acquire().is_ok());
    assert!(started.elapsed() < Duration::from_millis(100));
    blocking_on(&set, move |set| set.restart_node(victim)).await;
    within(Duration::from_secs(30), "both reconnect", || {
        fa.is_connected() && fb.is_connected()
    })
    .await;
    within(Duration::from_secs(10), "the lost record is back", || {
        record_key(&set, "node", "b03").is_some()
    })
    .await;
    fail(a, "b09", 1);
    within(Duration::from_secs(10), "b sees b09 open", || {
        state(b, "b09") == CircuitState::Open
    })
    .await;
    drop((fa, fb));
}
