//! The race for a breaker's probe lease costs a few commands, not one (or
//! more) per instance: instances ask at random moments within a spread,
//! the winner's notice stops the others, and a loser does not ask again
//! while the lease runs. Against a real `redis-server` (started on a free
//! loopback port); instances are registries in this process.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use resilience::{BreakerConfig, CircuitState, FleetConfig, Outcome, Registry};
use support::eventually;
use support::redis_server::RedisServer;

/// The instances sharing the breaker.
const INSTANCES: usize = 16;

/// `cmdstat_set`'s calls: the lease requests (`SET NX PX` in the lease
/// script; nothing else of this test's fleet sets a string key).
fn lease_requests(conn: &mut redis::Connection) -> u64 {
    let stats: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_round_costs_a_few_lease_requests_whatever_the_fleet_size() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let mut fleet_config = FleetConfig::default();
    fleet_config.lease_poll = Duration::from_millis(2);
    fleet_config.lease_retry = Duration::from_millis(5);
    fleet_config.heartbeat = Duration::from_millis(100);
    let mut instances = Vec::new();
    let mut fleets = Vec::new();
    for _ in 0..INSTANCES {
        let r: &'static Registry = Box::leak(Box::new(Registry::new()));
        r.breaker("search", &config);
        let fleet = r
            .share_via_redis_with(server.url(), "race", fleet_config.clone())
            .unwrap();
        assert!(fleet.ready().await);
        instances.push(r);
        fleets.push(fleet);
    }
    // Every instance knows the others (the spread grows with the members).
    eventually("every instance sees the whole fleet", || {
        instances.iter().all(|r| {
            r.snapshot()
                .fleet
                .is_some_and(|f| f.members.len() == INSTANCES)
        })
    })
    .await;
    let mut conn = server.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();

    let first = instances[0].get("search").unwrap();
    first.try_acquire().unwrap().record(Outcome::Failure);
    for r in &instances {
        eventually("every instance sees search open", || {
            r.get("search").unwrap().state() == CircuitState::Open
        })
        .await;
    }
    // Everyone calls until closed; the probe takes 50 ms.
    let probes = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = instances
        .iter()
        .map(|r| {
            let (r, probes) = (*r, probes.clone());
            tokio::spawn(async move {
                let b = r.get("search").unwrap();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while b.state() != CircuitState::Closed {
                    assert!(tokio::time::Instant::now() < deadline, "never closed");
                    if let Ok(permit) = b.try_acquire() {
                        probes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        permit.record(Outcome::Success);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(probes.load(Ordering::SeqCst), 1, "one probe in the fleet");
    let requests = lease_requests(&mut conn);
    // Each of the 16 asking once would be 16; asking every `lease_retry`
    // while the probe runs, about 160. The spread and the winner's notice
    // keep it to one or two, rarely a few more.
    assert!(
        (1..=INSTANCES as u64 / 2).contains(&requests),
        "{requests} lease requests for one probe among {INSTANCES} instances"
    );
    eprintln!("{requests} lease request(s) for one probe among {INSTANCES} instances");
    drop(fleets);
}
