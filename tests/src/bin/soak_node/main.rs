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
//! Redis under `<namespace>` with a fast [`FleetConfig`] (lease 2 s, lease
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

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resilience::{registry, FleetConfig};

use args::parse_args;
use commands::answer;
use histogram::Histogram;
use node::{Change, Node};

const USAGE: &str = "usage: soak_node <redis-url> <namespace> <breakers> <failure-threshold> <recovery-timeout-ms> <probe-ms> [down=<selection>]";

/// The fleet tuning of this node: fast, so that the test runs quickly.
fn fleet_config() -> FleetConfig {
    let mut config = FleetConfig::default();
    config.lease = Duration::from_secs(2);
    config.lease_poll = Duration::from_millis(10);
    config.lease_retry = Duration::from_millis(20);
    config
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("soak_node: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("resilience=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak_node: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        if let Err(why) = node.set_down(selection, true) {
            eprintln!("soak_node: bad down= selection: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    registry().on_transition(|t| node.on_transition(t));
    let fleet = {
        // `share_via_redis_with` spawns the sync on the current runtime.
        let _entered = runtime.enter();
        match registry().share_via_redis_with(&args.url, &args.namespace, fleet_config()) {
            Ok(fleet) => fleet,
            Err(e) => {
                eprintln!("soak_node: {e}");
                return ExitCode::from(2);
            }
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Synced with the fleet, or Redis was unreachable at the first attempt
    // (then wait below until the sync connects).
    runtime.block_on(fleet.ready());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fleet.is_connected() {
        if Instant::now() >= deadline {
            let _ = writeln!(out, "error could not connect to Redis within 30 s");
            let _ = out.flush();
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Serving starts once the fleet's state is known, as a service would.
    runtime.spawn(node.call_loop());
    if writeln!(out, "ready {}", fleet.instance_id())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE; // nobody listens any more
    }

    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        match stdin.read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => break, // stdin closed: nobody asks any more
            Ok(_) => {}
        }
        let answer = match std::str::from_utf8(&bytes) {
            Ok(line) => answer(node, &fleet, line),
            Err(_) => Some("error the command is not UTF-8".to_owned()),
        };
        let Some(answer) = answer else {
            let _ = writeln!(out, "bye");
            let _ = out.flush();
            break;
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    runtime.block_on(fleet.shutdown());
    ExitCode::SUCCESS
}
