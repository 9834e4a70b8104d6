//! Measures fleet-wide breakers over Redis (feature `redis`):
//!
//! 1. **Propagation**: how long after a trip on instance A the same breaker
//!    rejects on instance B. A and B are two registries in this process, each
//!    with its own fleet sync (and instance id) over the same Redis. For each
//!    of 200 fresh breaker names (after 20 unrecorded warm-up rounds), A's
//!    breaker is tripped by one failing call, and B's `on_transition` listener
//!    stamps the moment B's breaker opens (from then on B rejects; the example
//!    checks it). Printed: p50, p90, p99 and max, in ms.
//! 2. **Per-call overhead**: ns per successful call on a closed breaker of a
//!    registry *with* the fleet sync running, against a breaker of a plain
//!    local registry, measured in the same loop, alternating, in the same run.
//!    Its feature `fleet` turns on `resilience`'s `metrics` feature, so both
//!    numbers also include what that costs per call (a clock read, a counter
//!    and a histogram through the `metrics` facade): compare them with each
//!    other, not with a build without `metrics`.
//!
//! ```text
//! redis-server &                                                    # or any Redis you can use
//! cargo run --release --example fleet_propagation --features fleet  # redis://127.0.0.1:6379
//! RESILIENCE_REDIS_URL=redis://127.0.0.1:6390 cargo run --release --example fleet_propagation --features fleet
//! ```
//!
//! The keys it writes live under a namespace of their own
//! (`fleet-propagation-<pid>-<n>`) and are deleted at the end.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Commands;
use resilience::{BreakerConfig, CircuitBreaker, CircuitState, Fleet, Outcome, Registry};

/// Measured propagation rounds.
const ROUNDS: usize = 200;
/// Rounds run first and not recorded (connections, allocations, caches).
const WARM_UP: usize = 20;
/// Calls per timed run of the overhead measurement.
const CALLS: u32 = 1_000_000;
/// Timed runs per breaker, alternating; the fastest run (least disturbed by
/// the rest of the machine) and the median are printed.
const RUNS: usize = 25;

/// The URL without credentials, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn leak() -> &'static Registry {
    Box::leak(Box::new(Registry::new()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// ns per successful call through a closed breaker.
fn ns_per_call(breaker: &CircuitBreaker) -> f64 {
    let started = Instant::now();
    for _ in 0..CALLS {
        match black_box(breaker).try_acquire() {
            Ok(permit) => permit.record(black_box(Outcome::Success)),
            Err(e) => panic!("the breaker must stay closed: {e}"),
        }
    }
    started.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

/// The fastest run and the median run.
fn min_and_median(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2])
}

async fn connected(fleets: &[&Fleet], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !fleets.iter().all(|f| f.is_connected()) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let url = std::env::var("RESILIENCE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let shown = redact(&url);

    // Reachable at all? Say why not, plainly.
    let mut admin = match redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn).map(|_| conn))
    {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!(
                "error: cannot reach Redis at {shown}: {}\n\
                 Start one (`redis-server`) or point RESILIENCE_REDIS_URL at one, e.g.\n\
                 RESILIENCE_REDIS_URL=redis://127.0.0.1:6390 cargo run --release --example fleet_propagation",
                redact(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };

    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let namespace = format!("fleet-propagation-{}-{nonce}", std::process::id());
    let (a, b) = (leak(), leak());
    let (fleet_a, fleet_b) = match (
        a.share_via_redis(&url, &namespace),
        b.share_via_redis(&url, &namespace),
    ) {
        (Ok(fa), Ok(fb)) => (fa, fb),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !connected(&[&fleet_a, &fleet_b], Duration::from_secs(5)).await {
        eprintln!("error: the fleet sync did not connect to {shown} within 5 s");
        return ExitCode::FAILURE;
    }
    println!(
        "Redis {shown}, namespace {namespace}; instance A = {}, instance B = {}",
        fleet_a.instance_id(),
        fleet_b.instance_id()
    );

    // 1. Propagation: trip on A, stamp the opening on B.
    let (tx, mut opened_on_b) = tokio::sync::mpsc::unbounded_channel::<(Arc<str>, Instant)>();
    b.on_transition(move |t| {
        if t.to == CircuitState::Open {
            let _ = tx.send((t.name.clone(), Instant::now()));
        }
    });
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .expect("a valid configuration");
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..WARM_UP + ROUNDS {
        let name = format!("propagation-{round}");
        let on_a = a.breaker(&name, &config);
        let on_b = b.breaker(&name, &config);
        // Let both syncs read the (empty) fleet state of the new name first.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let tripped = Instant::now();
        on_a.try_acquire()
            .expect("a fresh breaker is closed")
            .record(Outcome::Failure);
        let wait = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some((opened, at)) = opened_on_b.recv().await {
                if *opened == *name {
                    return Some(at);
                }
            }
            None
        })
        .await;
        let Ok(Some(at)) = wait else {
            eprintln!("error: B never saw `{name}` open (5 s)");
            return ExitCode::FAILURE;
        };
        if !on_b.try_acquire().is_err_and(|e| e.is_circuit_open()) {
            eprintln!("error: B's `{name}` is open but did not reject");
            return ExitCode::FAILURE;
        }
        if round >= WARM_UP {
            samples.push(at.saturating_duration_since(tripped));
        }
    }
    samples.sort();
    println!(
        "\npropagation, trip on A -> B rejects ({ROUNDS} trips over loopback, {WARM_UP} warm-up rounds not counted):"
    );
    println!(
        "  p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   max {:.3} ms   (min {:.3} ms)",
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.90)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1]),
        ms(samples[0]),
    );

    // 2. Per-call overhead: a shared breaker (fleet sync running) against a
    // plain local one, alternating in the same loop.
    let shared = a.breaker("overhead", &BreakerConfig::DEFAULT);
    let local = Registry::new().breaker("overhead", &BreakerConfig::DEFAULT);
    tokio::time::sleep(Duration::from_millis(50)).await; // let A's sync read its fleet state
    let (mut with_fleet, mut without) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        with_fleet.push(ns_per_call(&shared));
        without.push(ns_per_call(&local));
    }
    assert!(fleet_a.is_connected(), "the fleet sync ran throughout");
    let (with_fleet, without) = (min_and_median(with_fleet), min_and_median(without));
    println!(
        "\nper-call cost, closed breaker, successful call ({RUNS} alternating runs x {CALLS} calls each):"
    );
    println!(
        "  with the fleet sync running: {:.2} ns/call fastest run, {:.2} median",
        with_fleet.0, with_fleet.1
    );
    println!(
        "  plain local breaker:         {:.2} ns/call fastest run, {:.2} median",
        without.0, without.1
    );
    println!(
        "  difference (fastest runs): {:+.2} ns/call ({}the call path never touches Redis)",
        with_fleet.0 - without.0,
        if cfg!(debug_assertions) {
            "debug build, use --release; "
        } else {
            ""
        }
    );

    fleet_a.shutdown().await;
    fleet_b.shutdown().await;
    let pattern = format!("resilience:{{{namespace}:*");
    let keys: redis::RedisResult<Vec<String>> = admin
        .scan_match::<_, String>(&pattern)
        .and_then(|keys| keys.collect());
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("warning: could not list the example's keys ({pattern}): {e}");
            Vec::new()
        }
    };
    if !keys.is_empty() {
        if let Err(e) = admin.del::<_, ()>(&keys) {
            eprintln!("warning: could not delete the example's keys ({pattern}): {e}");
        }
    }
    ExitCode::SUCCESS
}
