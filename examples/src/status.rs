//! The status server of `examples/status_server.rs`: `GET /metrics` answers
//! Prometheus text (through `metrics-exporter-prometheus`), `GET /status` the
//! JSON snapshot of every breaker, bulkhead and retry budget. A minimal
//! HTTP/1.1 server on a tokio `TcpListener`: one request per connection.
//!
//! [`Workload`] drives a few annotated functions whose upstreams fail on
//! command, so the figures move: breakers trip and recover.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use resilience::{bulkhead, circuit_breaker, registry, resilient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head the server reads.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves `/metrics` and `/status` until the listener fails.
///
/// # Errors
///
/// The listener's accept error.
pub async fn serve(listener: TcpListener, metrics: PrometheusHandle) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &metrics).await {
                tracing::debug!("status server: connection failed: {e}");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, metrics: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            )
            .await;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path) {
        ("GET", "/metrics") => {
            metrics.run_upkeep();
            let body = metrics.render();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        ("GET", "/status") => {
            let body = serde_json::to_string_pretty(&registry().snapshot())
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "try /metrics or /status\n",
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Calls to three simulated dependencies whose health is switched by hand.
#[derive(Debug, Default)]
pub struct Workload {
    payments_down: AtomicBool,
    search_down: AtomicBool,
    upstream_calls: AtomicU32,
}

/// The error of the simulated dependencies.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// The dependency is down.
    #[error("dependency down")]
    Down,
    /// A resilience layer failed the call.
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

impl Workload {
    /// Switches the payments dependency down or up.
    pub fn set_payments_down(&self, down: bool) {
        self.payments_down.store(down, Ordering::Relaxed);
    }

    /// Switches the search dependency down or up.
    pub fn set_search_down(&self, down: bool) {
        self.search_down.store(down, Ordering::Relaxed);
    }

    /// How often a dependency was really called.
    pub fn upstream_calls(&self) -> u32 {
        self.upstream_calls.load(Ordering::Relaxed)
    }

    /// The payments dependency: opens after 3 failures, probes after 2 s.
    #[circuit_breaker(name = "payments", failure_threshold = 3, recovery_timeout = "2s")]
    pub async fn pay(&self) -> Result<(), DependencyError> {
        self.upstream_calls.fetch_add(1, Ordering::Relaxed);
        if self.payments_down.load(Ordering::Relaxed) {
            return Err(DependencyError::Down);
        }
        Ok(())
    }

    /// The search dependency: a failure rate over the last 10 calls, retried
    /// once, drawing retries from the `search` budget.
    #[resilient(
        name = "search",
        failure_rate = 0.5,
        window = 10,
        min_calls = 4,
        recovery_timeout = "3s",
        max_attempts = 2,
        delay = "10ms",
        budget = "search"
    )]
    pub async fn search(&self) -> Result<(), DependencyError> {
        self.upstream_calls.fetch_add(1, Ordering::Relaxed);
        if self.search_down.load(Ordering::Relaxed) {
            return Err(DependencyError::Down);
        }
        Ok(())
    }

    /// A database behind a bulkhead of 4.
    #[bulkhead(name = "db", max_concurrent = 4, max_wait = "50ms")]
    pub async fn query(&self) -> Result<(), DependencyError> {
        self.upstream_calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }

    /// One round of calls to every dependency (results are counted by the
    /// metrics and the snapshot).
    pub async fn round(&self) {
        let _ = self.pay().await;
        let _ = self.search().await;
        let _ = self.query().await;
    }
}
