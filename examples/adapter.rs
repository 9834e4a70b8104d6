//! The README's "see it work" demo: an API adapter whose upstream fails, trips its breakers and recovers.
//!
//! A client's methods call a simulated upstream that is healthy, then has an
//! outage, then recovers. The methods carry `#[circuit_breaker]`, `#[retry]`
//! and `#[resilient]`; each call prints what happened (ran, retried, rejected
//! by the open circuit, recovered) and the breakers' states.
//!
//! ```text
//! cargo run --example adapter
//! ```
//!
//! It runs on the real clock and finishes in about five seconds, then writes
//! a timeline picture of the run to `target/adapter-timeline.svg`: calls over
//! time coloured by outcome, each breaker's state as bands.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{circuit_breaker, registry, resilient, retry, CircuitState};
use resilience_examples::timeline::{Mark, Timeline};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("upstream answered 503")]
    Unavailable,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

/// A fake upstream: down between `outage.0` and `outage.1` after `start`.
struct Upstream {
    start: Instant,
    outage: (Duration, Duration),
    attempts: AtomicU32,
}

impl Upstream {
    async fn request(&self, what: &str) -> Result<String, ApiError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await; // network
        let t = self.start.elapsed();
        if t >= self.outage.0 && t < self.outage.1 {
            Err(ApiError::Unavailable)
        } else {
            Ok(format!("{what} ok"))
        }
    }
}

struct UnifiClient {
    upstream: Upstream,
    site: String,
}

impl UnifiClient {
    /// One breaker shared by every call site named "unifi"; each call retried
    /// once after 50 ms before it counts as one failure.
    #[circuit_breaker(name = "unifi", failure_threshold = 3, recovery_timeout = "1s")]
    #[retry(max_attempts = 2, backoff = "fixed", delay = "50ms")]
    async fn list_devices(&self) -> Result<String, ApiError> {
        self.upstream.request("devices").await
    }

    /// One breaker per site (`name` is an expression), with retries and a
    /// per-attempt timeout.
    #[resilient(
        name = self.site.as_str(),
        failure_threshold = 3,
        recovery_timeout = "1500ms",
        max_attempts = 2,
        delay = "50ms",
        timeout = "500ms"
    )]
    async fn site_health(&self) -> Result<String, ApiError> {
        self.upstream.request("health").await
    }
}

fn breaker_line() -> String {
    registry()
        .snapshot()
        .breakers
        .iter()
        .map(|s| {
            let state = match s.state {
                CircuitState::Closed if s.consecutive_failures > 0 => {
                    format!(
                        "closed ({}/{} failures)",
                        s.consecutive_failures, s.failure_threshold
                    )
                }
                CircuitState::Open => format!(
                    "OPEN (probe in {:.1}s)",
                    s.retry_after.unwrap_or_default().as_secs_f64()
                ),
                CircuitState::HalfOpen => "half-open".to_owned(),
                _ => "closed".to_owned(),
            };
            format!("{}: {state}", s.name)
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn state(name: &str) -> CircuitState {
    registry()
        .get(name)
        .map_or(CircuitState::Closed, |b| b.state())
}

/// What one call did, from its result, the upstream attempts it made and the
/// state of its breaker before and after.
fn describe(
    result: &Result<String, ApiError>,
    attempts: u32,
    (before, after): (CircuitState, CircuitState),
) -> String {
    let probe = before == CircuitState::Open && attempts > 0;
    match (result, attempts) {
        (Ok(body), _) if probe => format!("probe ran: {body} -> circuit closed"),
        (Err(e), _) if probe => format!("probe failed ({e}) -> circuit re-opened"),
        (Err(e), _) if before == CircuitState::Closed && after == CircuitState::Open => {
            format!("failed after {attempts} attempts ({e}) -> circuit OPENED")
        }
        (Ok(body), 1) => format!("ran: {body}"),
        (Ok(body), n) => format!("recovered after {n} attempts: {body}"),
        (Err(ApiError::Resilience(e)), 0) if e.is_circuit_open() => {
            "rejected by the open circuit (upstream not called)".to_owned()
        }
        (Err(e), 1) => format!("failed: {e}"),
        (Err(e), n) => format!("retried, failed after {n} attempts: {e}"),
    }
}

#[tokio::main]
async fn main() {
    println!("resilience demo: the upstream is down from 0.6 s to 2.4 s\n");
    let start = Instant::now();
    let client = UnifiClient {
        upstream: Upstream {
            start,
            outage: (Duration::from_millis(600), Duration::from_millis(2400)),
            attempts: AtomicU32::new(0),
        },
        site: "site:hq".to_owned(),
    };

    let timeline = Timeline::new(&["unifi", "site:hq"]);
    let mark = |result: &Result<String, ApiError>, attempts: u32| match (result, attempts) {
        (Ok(_), 1) => Mark::Success,
        (Ok(_), _) => Mark::Recovered,
        (Err(_), 0) => Mark::Rejected,
        (Err(_), _) => Mark::Failure,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rejected = 0;
    for _ in 0..24 {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();

        let (before, state_before) = (
            client.upstream.attempts.load(Ordering::Relaxed),
            state("unifi"),
        );
        let devices = client.list_devices().await;
        let attempts = client.upstream.attempts.load(Ordering::Relaxed) - before;
        rejected += u32::from(attempts == 0);
        timeline.call("unifi", mark(&devices, attempts));
        let states = (state_before, state("unifi"));
        println!(
            "t={t:4.1}s  list_devices  {}",
            describe(&devices, attempts, states)
        );

        let (before, state_before) = (
            client.upstream.attempts.load(Ordering::Relaxed),
            state(&client.site),
        );
        let health = client.site_health().await;
        let attempts = client.upstream.attempts.load(Ordering::Relaxed) - before;
        let states = (state_before, state(&client.site));
        timeline.call(&client.site, mark(&health, attempts));
        println!(
            "         site_health   {}",
            describe(&health, attempts, states)
        );
        println!("         breakers      {}", breaker_line());
    }
    println!(
        "\n{rejected} calls to list_devices were rejected without touching the failing upstream;\n\
         every breaker closed again once the upstream recovered."
    );
    timeline.span("upstream down", 0.6, 2.4);
    timeline.save(
        "adapter-timeline.svg",
        "resilience demo: an outage from 0.6 s to 2.4 s",
    );
}
