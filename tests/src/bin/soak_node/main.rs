//! `soak_node`: one instance of a fleet holding many named breakers and
//! calling every one of them continuously, driven line by line over stdin,
//! for the soak test with faults (`tests/tests/fleet_soak/`).
//!
//! ```text
//! soak_node <redis-url> <namespace> <breakers> <failure-threshold> <recovery-timeout-ms> <probe-ms> [down=<selection>]
//! ```
//!
//! It creates `<breakers>` breakers `b000`, `b001`, … in the global
//! [`resilience::registry()`] (consecutive-failure rule, `<failure-threshold>`
//! failures, open for `<recovery-timeout-ms>` ms), shares the registry through
//! Redis under `<namespace>` with a fast
//! [`FleetConfig`](resilience::FleetConfig) ([`fast_fleet`]: lease 2 s, lease
//! poll 10 ms, lease retry 20 ms), waits until it is connected and synced
//! ([`Fleet::ready`](resilience::Fleet::ready)), marks the breakers of the
//! optional `down=<selection>` as down, starts calling, prints `ready
//! <instance-id>`, then answers every command read on stdin with exactly one
//! line on stdout.
//!
//! The calls: every 5 ms, one call through every breaker (`try_acquire`, then
//! `record`) on the node's tokio runtime. The dependency behind a breaker is
//! healthy (the call succeeds) or down (it fails), as the commands `down` and
//! `up` say, so breakers open by themselves while their dependency is down.
//! A call admitted as the half-open probe ([`Permit::is_probe`]) holds its
//! permit for `<probe-ms>` ms before recording (the dependency's state then
//! decides its outcome), while the other calls go on: the test can see which
//! instance holds the fleet's probe (`probing`). The latency of a call is the
//! time spent in `try_acquire` and `record` (a probe's holding time left
//! out), kept in a histogram of ~6 % wide buckets, not sample by sample.
//!
//! A `<selection>` is a comma-separated list of breaker names (`b007`),
//! inclusive ranges (`b000-b019`) and `all`.
//!
//! | command | answer |
//! |---|---|
//! | `states` | one character per breaker, in order: `c` closed, `o` open, `h` half-open, `f` forced open, `d` disabled |
//! | `changed <selection>` | per breaker, space-separated: `<unix-µs>:<state>:<cause>` of its last transition here (state as in `states`; cause `l` local, `f` applied from the fleet), `0:c:-` if none |
//! | `tripped <selection>` | per breaker, space-separated: `<unix-µs>:<cause>` of its last closed → open transition here, `0:-` if none |
//! | `probing` | `<n>` then the names of the breakers half-open here whose probe this instance holds now |
//! | `first` | one character per breaker: how its first call went: `a` admitted, `p` admitted as the probe, `r` rejected |
//! | `lat` | `calls=<n> p50_us=<x> p99_us=<x> max_us=<x> gap_us=<x>` since the last `lat`, then reset (`gap_us`: the longest time between two rounds of calls) |
//! | `calls` | the calls made since start-up |
//! | `probes` | the calls admitted as a half-open probe since start-up |
//! | `probes <selection>` | per breaker, space-separated: the calls through it admitted as a half-open probe since start-up |
//! | `transitions` | `<all> <local>`: the transitions here since start-up, and those not applied from the fleet |
//! | `down <selection>` / `up <selection>` | `ok <n>`: the dependency of those `<n>` breakers is now down (up) |
//! | `connected` | `true` or `false`: whether the fleet sync is connected to Redis |
//! | `id` | this instance's id in the fleet |
//! | `quit` | `bye`, then the process stops the sync and exits |
//! | anything else | `error <why>` |
//!
//! Cargo names the binary after this directory; integration tests of this
//! package reach it as `env!("CARGO_BIN_EXE_soak_node")`.
//!
//! The process also exits when stdin closes. Logs (`tracing`, target
//! `resilience`, level from `RUST_LOG`, default `resilience=info`) go to
//! stderr. Bad arguments print the usage to stderr and exit with status 2;
//! a Redis that cannot be reached within 30 s prints `error …` and exits
//! with status 1.
//!
//! [`Permit::is_probe`]: resilience::Permit::is_probe

mod args;
mod commands;
mod histogram;
mod node;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex};

use resilience::registry;
use resilience_tests::node::{fast_fleet, share, start, usage_error, Stdout};

use args::parse_args;
use commands::answer;
use histogram::Histogram;
use node::{Change, Node};

const NAME: &str = "soak_node";
const USAGE: &str = "usage: soak_node <redis-url> <namespace> <breakers> <failure-threshold> <recovery-timeout-ms> <probe-ms> [down=<selection>]";

fn main() -> ExitCode {
    run_node().err().unwrap_or(ExitCode::SUCCESS)
}

fn run_node() -> Result<(), ExitCode> {
    let (args, runtime) = start(NAME, USAGE, parse_args(), 2)?;
    let width = (args.breakers - 1).to_string().len().max(3);
    let names: Vec<Arc<str>> = (0..args.breakers)
        .map(|i| Arc::from(format!("b{i:0width$}")))
        .collect();
    let count = names.len();
    let node: &'static Node = Box::leak(Box::new(Node {
        index: names.iter().cloned().zip(0..).collect(),
        breakers: names
            .iter()
            .map(|name| registry().breaker(name, &args.config))
            .collect(),
        names,
        down: (0..count).map(|_| AtomicBool::new(false)).collect(),
        probing: (0..count).map(|_| AtomicBool::new(false)).collect(),
        first: (0..count).map(|_| AtomicU8::new(0)).collect(),
        changes: Mutex::new(vec![(Change::default(), Change::default()); count]),
        transitions: AtomicU64::new(0),
        local_transitions: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        probes: AtomicU64::new(0),
        probes_of: (0..count).map(|_| AtomicU64::new(0)).collect(),
        latency: Histogram::new(),
        gap: AtomicU64::new(0),
        probe: args.probe,
    }));
    if let Some(selection) = &args.down {
        node.set_down(selection, true)
            .map_err(|why| usage_error(NAME, &format!("bad down= selection: {why}"), USAGE))?;
    }
    registry().on_transition(|t| node.on_transition(t));
    let fleet = share(NAME, &runtime, || {
        registry().share_via_redis_with(&args.url, &args.namespace, fast_fleet())
    })?;
    let mut out = Stdout::lock();
    out.synced(&runtime, &fleet)?;
    // Serving starts once the fleet's state is known, as a service would.
    runtime.spawn(node.call_loop());
    out.ready(&fleet)?;
    out.serve(&runtime, fleet, |line, fleet| answer(node, fleet, line));
    Ok(())
}
