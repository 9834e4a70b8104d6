//! The race for a breaker's probe lease costs a few commands, not one (or
//! more) per instance: instances ask at random moments within a spread,
//! the winner's notice stops the others, and a loser does not ask again
//! while the lease runs. Against a real `redis-server` (started on a free
//! loopback port); instances are registries in this process.

mod support;

use std::time::Duration;

use resilience::FleetConfig;
use support::eventually;
use support::fleet::{call_until_closed, config, fail, instance, open_everywhere, tuned};
use support::ms;
use support::redis_server::RedisServer;
use support::redis_stats::{command_calls, reset_commandstats};

/// The instances sharing the breaker.
const INSTANCES: usize = 16;

/// The lease requests since the last `CONFIG RESETSTAT`: `SET NX PX` in
/// the lease script (nothing else of this test's fleet sets a string key).
fn lease_requests(conn: &mut redis::Connection) -> u64 {
    command_calls(conn, "set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_round_costs_a_few_lease_requests_whatever_the_fleet_size() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = config(1, Duration::from_millis(500));
    let fleet_config = tuned(FleetConfig::default(), |c| {
        c.lease_poll = Duration::from_millis(2);
        c.lease_retry = Duration::from_millis(5);
        c.heartbeat = Duration::from_millis(100);
    });
    let mut instances = Vec::new();
    let mut fleets = Vec::new();
    for _ in 0..INSTANCES {
        let r = instance();
        r.breaker("search", &cfg);
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
    reset_commandstats(&mut conn);

    fail(instances[0], "search", 1);
    open_everywhere("every instance sees search open", &instances, "search").await;
    // Everyone calls until closed; the probe takes 50 ms.
    let admitted = call_until_closed(&instances, "search", ms(50), ms(1)).await;
    assert_eq!(admitted.permits, 1, "one probe in the fleet");
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
