//! Serves the health of every breaker, bulkhead and retry budget on
//! 127.0.0.1 while a simulated workload trips and recovers a few breakers:
//!
//! - `/health`: JSON, one verdict per policy (`healthy`, `degraded`, `open`)
//!   and the worst of them; HTTP 200, or 503 while a breaker is open;
//! - `/status`: the JSON snapshot (states, failure counts, slots, budgets);
//! - `/metrics`: Prometheus text, with a `# HELP` line for each metric.
//!
//! ```text
//! cargo run --example status_server --features status           # http://127.0.0.1:9898/health, /status and /metrics
//! cargo run --example status_server --features status -- 0 20    # any free port, stop after 20 s
//! ```
//!
//! Point Prometheus at `http://127.0.0.1:9898/metrics`, a readiness probe at
//! `/health`. Every 10 s the payments dependency is down for 3 s and the
//! search dependency for 4 s: watch `/health` turn 503 while payments is open.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use resilience::registry;
use resilience_examples::status::{serve, Workload};
use tokio::net::TcpListener;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(Ok(9898), |p| p.parse())?;
    let seconds: Option<u64> = args.next().map(|s| s.parse()).transpose()?;

    let metrics = PrometheusBuilder::new().install_recorder()?;
    resilience::metrics::describe();
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("serving http://{addr}/health, http://{addr}/status and http://{addr}/metrics");
    tokio::spawn(serve(listener, metrics));

    registry()
        .on_transition(|t| println!("{:>8}: {:?} -> {:?} ({})", t.name, t.from, t.to, t.cause));
    let workload = Arc::new(Workload::default());
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let t = start.elapsed();
        if seconds.is_some_and(|s| t >= Duration::from_secs(s)) {
            return Ok(());
        }
        let phase = t.as_secs() % 10;
        workload.set_payments_down((3..6).contains(&phase));
        workload.set_search_down((5..9).contains(&phase));
        for _ in 0..3 {
            let workload = workload.clone();
            tokio::spawn(async move { workload.round().await });
        }
    }
}
