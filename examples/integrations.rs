//! A runner of integrations: three integrations fetched in parallel each
//! round, each behind its own breaker (named after it) and a 30 s timeout.
//! One is healthy, one fails, one hangs. Each round prints what every
//! integration returned and why, and how long it took: the healthy one is
//! never slowed down by the others.
//!
//! ```text
//! cargo run --example integrations
//! ```
//!
//! It runs on tokio's paused clock, so six simulated minutes take a moment.

use std::time::Duration;

use resilience::registry;
use resilience_examples::integrations::{run_round, Behaviour, Integration};
use tokio::time::Instant;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let integrations = [
        Integration::new("unifi", Behaviour::Healthy),
        Integration::new("cloudflare", Behaviour::Failing),
        Integration::new("cybersecure", Behaviour::Hanging),
    ];
    let start = Instant::now();
    for round in 1..=8 {
        let began = start.elapsed();
        let reports = run_round(&integrations).await;
        println!(
            "round {round} at t={:>3}s (took {:.1}s)",
            began.as_secs(),
            (start.elapsed() - began).as_secs_f64()
        );
        for r in &reports {
            let state = registry().get(&r.name).map(|b| b.state().as_str());
            println!(
                "  {:<12} {:>6.1}s  {:<45} breaker: {}",
                r.name,
                r.took.as_secs_f64(),
                r.verdict.to_string(),
                state.unwrap_or("-")
            );
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    println!("\nupstream calls per integration:");
    for i in &integrations {
        println!("  {:<12} {}", i.name(), i.upstream_calls());
    }
}
