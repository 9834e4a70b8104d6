//! A game day on the demo adapter: half of the calls behind the `unifi`
//! breaker fail by injection for two seconds, and the breaker, its fallback
//! and its recovery do what they would in a real outage.
//!
//! ```text
//! cargo run -p resilience-examples --example game_day --features chaos
//! ```
//!
//! The upstream itself stays healthy: from 0.5 s to 2.5 s an injection
//! (`resilience::chaos`) makes 50 % of the calls fail with the upstream's
//! own `ApiError::Unavailable`, where the body would run. The breaker counts
//! those failures like real ones and opens; while it is open the fallback
//! answers from the cache; once the injection is switched off, the next
//! probe closes the circuit. Each call prints a line, then a text timeline
//! (one mark per 100 ms) sums the run up, and the run is drawn to
//! `target/game-day-timeline.svg`.
//!
//! It runs on tokio's paused clock (four seconds of game day in a few
//! milliseconds), and the injection table is seeded, so every run prints the
//! same story. In production the same injection is one entry of the
//! configuration file (`[chaos.unifi] error = "unavailable", error_rate =
//! 0.5`), put in force by `registry().apply(..)` once the program registered
//! `chaos::errors().register("unavailable", || ApiError::Unavailable)`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::chaos::{self, Injection};
use resilience::{circuit_breaker, registry, CircuitState};
use resilience_examples::timeline::{Mark, Timeline};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("upstream answered 503")]
    Unavailable,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

struct UnifiClient {
    /// Calls that reached the upstream (ran the body).
    upstream_calls: AtomicU32,
}

impl UnifiClient {
    /// The adapter's `unifi` breaker, opening when half of the last 10
    /// calls failed, with the cached answer as its fallback.
    #[circuit_breaker(
        name = "unifi",
        window = 10,
        failure_rate = 0.5,
        min_calls = 6,
        recovery_timeout = "400ms",
        fallback = Self::cached_devices
    )]
    async fn list_devices(&self) -> Result<String, ApiError> {
        self.upstream_calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await; // network
        Ok("3 devices (live)".to_owned())
    }

    async fn cached_devices(&self, error: ApiError) -> Result<String, ApiError> {
        let why = match &error {
            ApiError::Resilience(e) if e.is_circuit_open() => "circuit open",
            _ => "upstream answered 503",
        };
        Ok(format!("3 devices (cached; {why})"))
    }
}

/// What one call amounted to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Live,
    InjectedError,
    Rejected,
}

impl Outcome {
    fn glyph(self) -> char {
        match self {
            Outcome::Live => '.',
            Outcome::InjectedError => 'x',
            Outcome::Rejected => '#',
        }
    }

    fn mark(self) -> Mark {
        match self {
            Outcome::Live => Mark::Success,
            Outcome::InjectedError => Mark::Failure,
            Outcome::Rejected => Mark::Rejected,
        }
    }
}

fn state_glyph(state: CircuitState) -> char {
    match state {
        CircuitState::Closed => 'C',
        CircuitState::Open => 'O',
        CircuitState::HalfOpen => 'H',
        _ => '?',
    }
}

fn breaker_state() -> CircuitState {
    registry()
        .get("unifi")
        .map_or(CircuitState::Closed, |b| b.state())
}

const TICK: Duration = Duration::from_millis(100);
const CHAOS_FROM: Duration = Duration::from_millis(500);
const CHAOS_UNTIL: Duration = Duration::from_millis(2500);
const END: Duration = Duration::from_millis(4000);

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    println!("game day: 50 % of `unifi` calls fail by injection from 0.5 s to 2.5 s\n");
    let client = UnifiClient {
        upstream_calls: AtomicU32::new(0),
    };
    // The same draws on every run.
    registry().chaos().seed(seed());
    let timeline = Timeline::new(&["unifi"]);
    let start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let (mut calls, mut states) = (String::new(), String::new());
    let mut injecting = false;
    while start.elapsed() < END {
        tick.tick().await;
        let t = start.elapsed();
        if !injecting && t >= CHAOS_FROM && t < CHAOS_UNTIL {
            chaos::inject(
                "unifi",
                Injection::new()
                    .error(|| ApiError::Unavailable)
                    .error_rate(0.5),
            )
            .expect("a valid injection");
            injecting = true;
            println!(
                "t={:3.1}s  chaos ON: 50 % errors into `unifi`",
                t.as_secs_f64()
            );
        } else if injecting && t >= CHAOS_UNTIL {
            chaos::disable("unifi");
            injecting = false;
            println!("t={:3.1}s  chaos OFF", t.as_secs_f64());
        }

        let before = breaker_state();
        let ran = client.upstream_calls.load(Ordering::Relaxed);
        let injected = chaos::status("unifi").map_or(0, |s| s.errors);
        let answer = client.list_devices().await.expect("the fallback answers");
        let after = breaker_state();
        let outcome = if chaos::status("unifi").map_or(0, |s| s.errors) > injected {
            Outcome::InjectedError
        } else if client.upstream_calls.load(Ordering::Relaxed) > ran {
            Outcome::Live
        } else {
            Outcome::Rejected
        };
        timeline.call("unifi", outcome.mark());
        calls.push(outcome.glyph());
        states.push(state_glyph(after));

        let probe = before == CircuitState::Open && outcome != Outcome::Rejected;
        let what = match outcome {
            Outcome::Live if probe => "probe ran",
            Outcome::Live => "ran",
            Outcome::InjectedError if probe => "probe: injected",
            Outcome::InjectedError => "injected error",
            Outcome::Rejected => "rejected",
        };
        let transition = match (before, after) {
            (CircuitState::Open, CircuitState::Open) if probe => {
                "  -> circuit re-opened".to_owned()
            }
            (b, a) if b != a => format!("  -> circuit {}", a.as_str().replace('_', "-")),
            _ => String::new(),
        };
        let line = format!(
            "t={:3.1}s  {what:<16} {answer:<38}{transition}",
            t.as_secs_f64()
        );
        println!("{}", line.trim_end());
    }

    let status = chaos::status("unifi").expect("injected");
    let rejected = calls.chars().filter(|c| *c == '#').count();
    println!(
        "\nthe injection saw {} calls and failed {} of them; the open circuit rejected {rejected} \
         more; the fallback answered all {} from the cache, so no caller saw an error; \
         the upstream ran {} times.",
        status.calls,
        status.errors,
        status.errors as usize + rejected,
        client.upstream_calls.load(Ordering::Relaxed)
    );
    println!("\ntimeline, one mark per 100 ms:");
    let ruler: String = (0..calls.len())
        .map(|i| if i % 10 == 0 { '|' } else { ' ' })
        .collect();
    let chaos_row: String = (0..calls.len())
        .map(|i| {
            let t = TICK * i as u32;
            if t >= CHAOS_FROM && t < CHAOS_UNTIL {
                '~'
            } else {
                ' '
            }
        })
        .collect();
    println!("  seconds {ruler}  (| every second from 0 s)");
    println!("  chaos   {chaos_row}  (~ = injection on)");
    println!("  calls   {calls}  (. ran  x injected error  # rejected, circuit open)");
    println!("  circuit {states}  (C closed  O open, after each call; a probe is half-open while it runs)");

    timeline.span("chaos: 50 % errors", 0.5, 2.5);
    println!();
    timeline.save(
        "game-day-timeline.svg",
        "game day: 50 % injected errors into `unifi` from 0.5 s to 2.5 s",
    );
}

fn seed() -> u64 {
    std::env::var("GAME_DAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}
