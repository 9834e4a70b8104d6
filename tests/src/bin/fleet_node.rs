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
//! `<namespace>` with a fast [`FleetConfig`] (lease 2 s, lease poll 10 ms,
//! lease retry 20 ms), prints `ready <instance-id>` once connected and synced
//! ([`Fleet::ready`](resilience::Fleet::ready)), then
//! answers every command read on stdin with exactly one line on stdout:
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

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use resilience::{registry, BreakerConfig, CircuitBreaker, FleetConfig, Outcome};

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

/// The fleet tuning of this node: fast, so that the test runs quickly.
fn fleet_config() -> FleetConfig {
    let mut config = FleetConfig::default();
    config.lease = Duration::from_secs(2);
    config.lease_poll = Duration::from_millis(10);
    config.lease_retry = Duration::from_millis(20);
    config
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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("fleet_node: {why}\n{USAGE}");
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
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fleet_node: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The breaker, created on first use (at once unless `lazy`).
    let breaker = || registry().breaker(&args.breaker, &args.config);
    if !args.lazy {
        breaker();
    }
    let fleet = {
        // `share_via_redis_with` spawns the sync on the current runtime.
        let _entered = runtime.enter();
        match registry().share_via_redis_with(&args.url, &args.namespace, fleet_config()) {
            Ok(fleet) => fleet,
            Err(e) => {
                eprintln!("fleet_node: {e}");
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
        let line = std::str::from_utf8(&bytes);
        let mut words = line.unwrap_or_default().split_whitespace();
        let (command, extra) = (words.next(), words.next());
        let answer = match (command, extra) {
            _ if line.is_err() => "error the command is not UTF-8".to_owned(),
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
            (Some("quit"), None) => {
                let _ = writeln!(out, "bye");
                let _ = out.flush();
                break;
            }
            (Some(command), None) => format!(
                "error unknown command {command:?} (call, fail, state, connected, id, quit)"
            ),
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
