//! `rate_node`: one instance of a fleet sharing one rate limit through Redis,
//! driven line by line over stdin, for the multi-process test of fleet-wide
//! rate limits (`tests/tests/fleet_rate_limit.rs`).
//!
//! ```text
//! rate_node <redis-url> <namespace> <limiter> <rate> <per-ms> <burst>
//! ```
//!
//! It creates the fleet-wide rate limiter `<limiter>` (`<rate>` calls per
//! `<per-ms>` ms, `<burst>` at once, `max_wait` 0) in the global
//! [`resilience::registry()`], shares the registry through Redis under
//! `<namespace>` (default [`FleetConfig`](resilience::FleetConfig)), waits
//! until the limiter takes its calls from fleet leases, prints `ready
//! <instance-id>`, then answers every command read on stdin with exactly one
//! line on stdout:
//!
//! | command | answer |
//! |---|---|
//! | `run <ms>` | calls `try_acquire` as fast as it can for `<ms>` ms: `allowed=<n> refused=<n> commands=<n> slowest_us=<n> leasing=<bool> buckets=<first>:<n>,<n>,…` (Redis commands sent meanwhile; the slowest single call, in µs; whether it was on leases at the end; the calls allowed in each 50 ms of Unix time from bucket `<first>` = Unix ms / 50 on) |
//! | `status` | `leasing=<bool> leased=<n> instances=<n> commands=<n> connected=<bool>` |
//! | `quit` | `bye`, then the process shuts the fleet down (unused tokens go back) and exits |
//! | anything else | `error <why>` |
//!
//! Cargo names the binary after this file; integration tests of this package
//! reach it as `env!("CARGO_BIN_EXE_rate_node")`.
//!
//! The process also exits when stdin closes. Logs (`tracing`, target
//! `resilience`, level from `RUST_LOG`, default `resilience=info`) go to
//! stderr. Bad arguments print the usage to stderr and exit with status 2;
//! a limiter not on leases within 30 s prints `error …` and exits with
//! status 1.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use resilience::{registry, Fleet, RateLimitConfig, RateLimiter};
use resilience_tests::node::{share, start, Stdout};

const NAME: &str = "rate_node";
const USAGE: &str = "usage: rate_node <redis-url> <namespace> <limiter> <rate> <per-ms> <burst>";

/// The command-line arguments.
struct Args {
    url: String,
    namespace: String,
    limiter: String,
    config: RateLimitConfig,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, limiter, rate, per_ms, burst] = <[String; 6]>::try_from(args)
        .map_err(|args| format!("expected 6 arguments, got {}", args.len()))?;
    let number = |what: &str, s: &str| {
        s.parse::<u32>()
            .map_err(|e| format!("bad {what} {s:?}: {e}"))
    };
    let (rate, per_ms, burst) = (
        number("rate", &rate)?,
        number("period", &per_ms)?,
        number("burst", &burst)?,
    );
    let config = RateLimitConfig::builder(rate)
        .per(Duration::from_millis(per_ms.into()))
        .burst(burst)
        .fleet(true)
        .build()
        .map_err(|e| format!("bad rate limit: {e}"))?;
    Ok(Args {
        url,
        namespace,
        limiter,
        config,
    })
}

/// The width of the buckets `run` counts allowed calls in.
const BUCKET_MS: u128 = 50;

/// Calls as fast as it can for `length`; the answer line.
fn run(limiter: &RateLimiter, length: Duration) -> String {
    let commands = limiter.status().fleet_commands;
    let (mut allowed, mut refused, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let start = Instant::now();
    let first = unix_ms / BUCKET_MS;
    let mut buckets = vec![0u64; usize::try_from(length.as_millis() / BUCKET_MS).unwrap_or(0) + 2];
    let end = start + length;
    let mut now = start;
    while now < end {
        let ok = limiter.try_acquire().is_ok();
        let after = Instant::now();
        slowest = slowest.max(after - now);
        now = after;
        if ok {
            allowed += 1;
            let bucket = (unix_ms + (now - start).as_millis()) / BUCKET_MS - first;
            if let Some(count) = usize::try_from(bucket)
                .ok()
                .and_then(|b| buckets.get_mut(b))
            {
                *count += 1;
            }
        } else {
            refused += 1;
            // Let the lease task (and the other processes) have the core.
            std::thread::yield_now();
            now = Instant::now();
        }
    }
    let status = limiter.status();
    let mut answer = format!(
        "allowed={allowed} refused={refused} commands={} slowest_us={} leasing={} buckets={first}:",
        status.fleet_commands - commands,
        slowest.as_micros(),
        status.leasing
    );
    for (i, count) in buckets.iter().enumerate() {
        let _ = write!(answer, "{}{count}", if i == 0 { "" } else { "," });
    }
    answer
}

fn status(limiter: &RateLimiter, fleet: &Fleet) -> String {
    let s = limiter.status();
    format!(
        "leasing={} leased={} instances={} commands={} connected={}",
        s.leasing,
        s.leased,
        s.instances,
        s.fleet_commands,
        fleet.is_connected()
    )
}

/// One command line's answer; `None` for `quit`.
fn answer(line: &str, limiter: &RateLimiter, fleet: &Fleet) -> Option<String> {
    let mut words = line.split_whitespace();
    Some(match (words.next(), words.next(), words.next()) {
        (None, ..) => "error empty command".to_owned(),
        (Some("run"), Some(ms), None) => match ms.parse::<u64>() {
            Ok(ms) if ms <= 60_000 => run(limiter, Duration::from_millis(ms)),
            _ => format!("error bad length {ms:?} (milliseconds, at most 60000)"),
        },
        (Some("status"), None, _) => status(limiter, fleet),
        (Some("quit"), None, _) => return None,
        (Some(command), ..) => {
            format!("error unknown command {command:?} (run <ms>, status, quit)")
        }
    })
}

fn main() -> ExitCode {
    run_node().err().unwrap_or(ExitCode::SUCCESS)
}

fn run_node() -> Result<(), ExitCode> {
    let (args, runtime) = start(NAME, USAGE, parse_args(), 1)?;
    let limiter = registry().rate_limiter(&args.limiter, &args.config);
    let fleet = share(NAME, &runtime, || {
        registry().share_via_redis(&args.url, &args.namespace)
    })?;
    let mut out = Stdout::lock();
    out.wait_for(
        Duration::from_millis(2),
        "the limiter was not on fleet leases",
        || limiter.status().leasing,
    )?;
    out.ready(&fleet)?;
    out.serve(&runtime, fleet, |line, fleet| answer(line, &limiter, fleet));
    Ok(())
}
