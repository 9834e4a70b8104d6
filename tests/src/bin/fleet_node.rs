//! `fleet_node`: one instance of a fleet, driven line by line over stdin, for
//! the multi-process test of fleet-wide breakers
//! (`tests/tests/fleet_processes.rs`).
//!
//! ```text
//! fleet_node <redis-url> <namespace> <breaker> <failure-threshold> <recovery-timeout-ms> [lazy]
//! ```
//!
//! It creates the breaker `<breaker>` in the global [`resilience::registry()`]
//! (consecutive-failure rule, `<failure-threshold>` failures, open for
//! `<recovery-timeout-ms>` ms), shares the registry through Redis under
//! `<namespace>` with a fast [`FleetConfig`](resilience::FleetConfig)
//! ([`fast_fleet`]: lease 2 s, lease poll 10 ms, lease retry 20 ms), prints
//! `ready <instance-id>` once connected and synced
//! ([`Fleet::ready`](resilience::Fleet::ready)), then answers every command
//! read on stdin with exactly one line on stdout:
//!
//! | command | answer |
//! |---|---|
//! | `call` | one successful call: `ok`, `probe-ok` if it was the half-open probe, or `rejected` |
//! | `fail` | one failing call: `failed`, `probe-failed`, or `rejected` |
//! | `state` | `closed`, `open`, `half_open`, `forced_open` or `disabled` (`absent` before a lazy breaker's first call) |
//! | `connected` | `true` or `false`: whether the fleet sync is connected to Redis |
//! | `id` | this instance's id in the fleet |
//! | `quit` | `bye`, then the process stops the sync and exits |
//! | anything else | `error <why>` |
//!
//! With `lazy`, the breaker is not created at start-up but by the first
//! `call` or `fail`, after the node joined the fleet (as an annotated call
//! site creates its breaker on its first call).
//!
//! Cargo names the binary after this file; integration tests of this package
//! reach it as `env!("CARGO_BIN_EXE_fleet_node")`.
//!
//! The process also exits when stdin closes. Logs (`tracing`, target
//! `resilience`, level from `RUST_LOG`, default `resilience=info`) go to
//! stderr. Bad arguments print the usage to stderr and exit with status 2;
//! a Redis that cannot be reached within 30 s prints `error …` and exits
//! with status 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use resilience::{registry, BreakerConfig, CircuitBreaker, Fleet, Outcome};
use resilience_tests::node::{fast_fleet, share, start, Stdout};

const NAME: &str = "fleet_node";
const USAGE: &str = "usage: fleet_node <redis-url> <namespace> <breaker> <failure-threshold> <recovery-timeout-ms> [lazy]";

/// The command-line arguments.
struct Args {
    url: String,
    namespace: String,
    breaker: String,
    config: BreakerConfig,
    /// Create the breaker on its first call, not at start-up.
    lazy: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let lazy = match args.get(5).map(String::as_str) {
        None => false,
        Some("lazy") if args.len() == 6 => true,
        Some(other) => return Err(format!("unexpected argument {other:?} (only `lazy`)")),
    };
    args.truncate(5);
    let [url, namespace, breaker, threshold, recovery_ms] = <[String; 5]>::try_from(args)
        .map_err(|args| format!("expected 5 arguments, got {}", args.len()))?;
    let threshold: u32 = threshold
        .parse()
        .map_err(|e| format!("bad failure threshold {threshold:?}: {e}"))?;
    let recovery_ms: u64 = recovery_ms
        .parse()
        .map_err(|e| format!("bad recovery timeout {recovery_ms:?}: {e}"))?;
    let config = BreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_millis(recovery_ms))
        .build()
        .map_err(|e| format!("bad breaker configuration: {e}"))?;
    Ok(Args {
        url,
        namespace,
        breaker,
        config,
        lazy,
    })
}

/// One call through the breaker with the given outcome; the answer's words
/// for a plain call, a probe, and a rejection.
fn one_call(breaker: &CircuitBreaker, outcome: Outcome, words: [&str; 3]) -> String {
    match breaker.try_acquire() {
        Ok(permit) => {
            let probe = permit.is_probe();
            permit.record(outcome);
            if probe { words[1] } else { words[0] }.to_owned()
        }
        Err(e) if e.is_circuit_open() => words[2].to_owned(),
        Err(other) => format!("error {other}"),
    }
}

/// The answer to one command line, or `None` for `quit`; `breaker` gives
/// the breaker, creating it on first use.
fn answer(
    line: &str,
    args: &Args,
    fleet: &Fleet,
    breaker: impl Fn() -> Arc<CircuitBreaker>,
) -> Option<String> {
    let mut words = line.split_whitespace();
    Some(match (words.next(), words.next()) {
        (None, _) => "error empty command".to_owned(),
        (Some(command), Some(extra)) => {
            format!("error `{command}` takes no argument (got {extra:?})")
        }
        (Some("call"), None) => {
            one_call(&breaker(), Outcome::Success, ["ok", "probe-ok", "rejected"])
        }
        (Some("fail"), None) => one_call(
            &breaker(),
            Outcome::Failure,
            ["failed", "probe-failed", "rejected"],
        ),
        (Some("state"), None) => registry()
            .get(&args.breaker)
            .map_or("absent", |b| b.state().as_str())
            .to_owned(),
        (Some("connected"), None) => fleet.is_connected().to_string(),
        (Some("id"), None) => fleet.instance_id().to_owned(),
        (Some("quit"), None) => return None,
        (Some(command), None) => {
            format!("error unknown command {command:?} (call, fail, state, connected, id, quit)")
        }
    })
}

fn main() -> ExitCode {
    run_node().err().unwrap_or(ExitCode::SUCCESS)
}

fn run_node() -> Result<(), ExitCode> {
    let (args, runtime) = start(NAME, USAGE, parse_args(), 1)?;
    // The breaker, created on first use (at once unless `lazy`).
    let breaker = || registry().breaker(&args.breaker, &args.config);
    if !args.lazy {
        breaker();
    }
    let fleet = share(NAME, &runtime, || {
        registry().share_via_redis_with(&args.url, &args.namespace, fast_fleet())
    })?;
    let mut out = Stdout::lock();
    out.synced(&runtime, &fleet)?;
    out.ready(&fleet)?;
    out.serve(&runtime, fleet, |line, fleet| {
        answer(line, &args, fleet, breaker)
    });
    Ok(())
}
