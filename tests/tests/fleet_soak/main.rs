//! The fleet's soak test with faults: 8 `soak_node` processes (this crate's
//! binary, `tests/src/bin/soak_node/`) share 200 breakers through one real
//! `redis-server` on a free loopback port, each of them calling every
//! breaker every 5 ms the whole time, while the test breaks things:
//!
//! 1. every node trips its own 25 breakers (their dependency is down on that
//!    node only), the others follow through Redis: every node has all 200
//!    open (the propagation times come from the nodes' transition
//!    timestamps); then the dependency is healthy again and all 200 close,
//!    each through one probe in the fleet;
//! 2. steady calls: nothing happens, every breaker stays closed everywhere
//!    (the memory Redis holds for 200 closed breakers is measured here);
//! 3. Redis killed: every node notices, one node trips 20 breakers that
//!    stay local; Redis restarted empty: every node reconnects and the trip
//!    made meanwhile reaches all of them; then they close;
//! 4. Redis hung (`SIGSTOP`) for 5 s: one node trips 20 breakers; Redis
//!    resumed (`SIGCONT`): the trip reaches all; then they close;
//! 5. 20 breakers tripped, their dependency healthy again, and the node that
//!    holds one of their probe leases (it reports `probing`) killed with
//!    `SIGKILL`: its lease expires, a survivor probes, and every survivor
//!    closes them (no probe lease is held forever);
//! 6. 100 breakers open (the dependency down everywhere), a new node joins:
//!    right after `ready` its states are the fleet's and its first calls to
//!    the open ones are rejected; then they close.
//!
//! After each step: every node reports the same `states`, the ones the test
//! made happen (half-open counts as open: it is how the fleet's open state
//! looks on the one instance holding its probe; while every node stayed
//! connected, at most one node may be half-open per breaker), within a bound;
//! no call waited on Redis (the slowest `try_acquire` + `record` and the
//! longest gap between two rounds of calls stay under 1 s, against outages
//! of 1 s and 5 s); every breaker closes once its dependency is healthy;
//! while every node stays connected, a recovering breaker is probed once in
//! the fleet (`check_one_probe`).
//!
//! It prints (`--nocapture`) a table per step: Redis commands (from
//! `total_commands_processed`, which counts the commands run inside scripts
//! too, less the test's own), calls, transitions and probes (from the
//! nodes), the time to converge and to close again, call latency (the worst
//! node's p99, the slowest call, the longest gap); then the propagation
//! delay of trips, the time from a breaker's first successful probe until
//! every node has it closed, the bytes per breaker in Redis (every key of
//! the dedicated server, by `SCAN` and `MEMORY USAGE`, over the breaker
//! count) and the commands by name. Key names are the runtime's business:
//! the test never reads or writes a key by name, it observes the nodes and
//! server-wide figures.
//!
//! One round takes ~35 s. `RESILIENCE_SOAK_SECS=<n>` repeats the rounds, with
//! longer steady phases, until `<n>` seconds have passed.
//! `RESILIENCE_SOAK_LOGS=<dir>` saves every node's log as `<dir>/<node>.log`
//! (the nodes log at `RUST_LOG`, default `resilience=info`).
//!
//! As in `fleet_processes.rs`, every answer is awaited with a bound (the test
//! fails, it never hangs), the children are killed when their guards drop,
//! and a failing test prints their logs.

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod nodes;
mod report;
mod steps;

use std::time::{Duration, Instant};

use nodes::expected;
use report::{Counters, Row};
use support::process::Process;
use support::redis_server::RedisServer;
use support::redis_stats::Meter;

const NAMESPACE: &str = "soak";
const BREAKERS: usize = 200;
const NODES: usize = 8;
/// Consecutive failures that open a breaker (a node calls every breaker every
/// 5 ms, so a breaker whose dependency is down opens within ~25 ms).
const THRESHOLD: u32 = 5;
/// How long a breaker stays open before the fleet probes it.
const RECOVERY: Duration = Duration::from_millis(2_000);
/// How long a node holds a probe's permit before recording it.
const PROBE: Duration = Duration::from_millis(1_000);
/// The nodes' probe lease (`soak_node`'s `FleetConfig::lease`).
const LEASE: Duration = Duration::from_secs(2);
/// How long Redis stays killed.
const OUTAGE: Duration = Duration::from_millis(1_000);
/// How long Redis stays hung.
const PAUSE: Duration = Duration::from_secs(5);
/// The bound on any single call and on the gap between two rounds of calls:
/// far below the outages, so a call that waited on Redis would show.
const AT_ONCE: Duration = Duration::from_secs(1);
/// The bound on a node's transition listener recording a transition that
/// its `states` already shows (it runs just after the state changes).
const RECORDED: Duration = Duration::from_secs(2);
/// The bound on conditions that take the fleet some time.
const EVENTUALLY: Duration = Duration::from_secs(30);

/// The fleet under test: the server, the nodes, and what was measured.
struct Soak {
    /// Dropped first (killed, their logs printed if the test fails), while
    /// the server still runs.
    nodes: Vec<Process>,
    server: RedisServer,
    url: String,
    /// Nodes started so far (for their labels).
    started: usize,
    /// The counters of the nodes killed, as last read.
    retired: Counters,
    meter: Meter,
    rows: Vec<Row>,
    /// Propagation delays (µs): a trip's transition on its node to the same
    /// breaker's transition on each other node.
    propagation_us: Vec<u64>,
    /// Per breaker recovering (µs): from the first successful probe until
    /// the last node closed it.
    closing_us: Vec<u64>,
    /// `(when, keys, bytes)` of the server's memory.
    memory: Vec<(&'static str, u64, u64)>,
    /// Of each node killed while probing: the breakers of its step it was
    /// probing, and how long after the kill the last of them closed.
    dead_probers: Vec<(usize, Duration)>,
    /// The joiners' first calls admitted as the fleet's probe.
    joiner_probes: usize,
}

#[test]
fn eight_processes_share_200_breakers_through_faults() {
    let began = Instant::now();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let soak_secs: Option<u64> = std::env::var("RESILIENCE_SOAK_SECS")
        .ok()
        .map(|s| s.parse().expect("RESILIENCE_SOAK_SECS: whole seconds"));
    let steady = soak_secs.map_or(LEASE, |s| Duration::from_secs((s / 10).clamp(2, 60)));
    let url = server.url();
    let meter = Meter::new(&server);
    let mut soak = Soak {
        server,
        url,
        nodes: Vec::new(),
        started: 0,
        retired: Counters::default(),
        meter,
        rows: Vec::new(),
        propagation_us: Vec::new(),
        closing_us: Vec::new(),
        memory: Vec::new(),
        dead_probers: Vec::new(),
        joiner_probes: 0,
    };
    let spawned: Vec<Process> = (0..NODES).map(|_| soak.spawn(None)).collect();
    let mut ids: Vec<String> = spawned.iter().map(Soak::ready).collect();
    soak.nodes = spawned;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), NODES, "each process has its own instance id");
    // Bad input gets an error line, never a crash.
    for bad in [
        "explode",
        "",
        "states now",
        "down",
        "down b999",
        "up b010-b002",
        "\u{7f}\u{1}",
    ] {
        let answer = soak.nodes[0].ask(bad);
        assert!(answer.starts_with("error "), "{bad:?} -> {answer:?}");
    }
    let answer = soak.nodes[0].send_bytes(b"st\xffte\n");
    assert!(answer.starts_with("error "), "not UTF-8 -> {answer:?}");
    soak.converge(
        "start-up: all closed",
        &expected(None),
        true,
        Instant::now(),
    );

    let mut rounds = 0;
    loop {
        soak.trip_everywhere();
        soak.steady(steady);
        soak.redis_killed();
        soak.redis_paused();
        soak.prober_killed();
        soak.join();
        rounds += 1;
        let done = soak_secs.is_none_or(|s| began.elapsed() >= Duration::from_secs(s));
        if done {
            break;
        }
    }
    soak.meter.fold_commandstats();
    let nodes = std::mem::take(&mut soak.nodes);
    for node in nodes {
        Soak::save_log(&node);
        node.quit();
    }
    soak.print(rounds, began.elapsed());
}
