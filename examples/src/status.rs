//! The status server of `examples/status_server.rs`, an axum [`router`]:
//!
//! - `GET /health`: [`registry().health()`](resilience::Registry::health) as
//!   JSON; 200 while no policy is open, 503 while one is (a load balancer's
//!   or orchestrator's probe reads the status code, a person the details);
//! - `GET /status`: the JSON [`Snapshot`](resilience::Snapshot) of every
//!   breaker, bulkhead and retry budget;
//! - `GET /metrics`: Prometheus text, through `metrics-exporter-prometheus`.
//!
//! [`serve`] runs the router on a tokio `TcpListener` with hyper's HTTP/1
//! connection and a timeout on reading each request head ([`serve_with`]
//! serves any router that way).
//!
//! [`Workload`] drives a few annotated functions whose upstreams fail on
//! command, so the figures move: breakers trip and recover.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use resilience::{bulkhead, circuit_breaker, registry, resilient, HealthState};
use tokio::net::TcpListener;

/// How long a client may take to send a request head (slow or idle clients
/// are disconnected after it).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// `GET /health`, `GET /status` and `GET /metrics` (other paths are 404,
/// other methods 405; query strings are ignored).
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let metrics = PrometheusBuilder::new().install_recorder()?;
/// resilience::metrics::describe();
/// let app = resilience_examples::status::router(metrics);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9898").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
pub fn router(metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(metrics)
}

/// Serves [`router`] on `listener`, one task per connection, until the
/// returned future is dropped: [`serve_with`] with [`HEADER_READ_TIMEOUT`].
pub async fn serve(listener: TcpListener, metrics: PrometheusHandle) {
    serve_with(listener, router(metrics), HEADER_READ_TIMEOUT).await;
}

/// Serves `app` on `listener` over HTTP/1, one task per connection, until
/// the returned future is dropped. A connection whose request head (the
/// first, or the next one on a kept-alive connection) does not arrive within
/// `header_read_timeout` is closed. A failed accept is logged and retried,
/// after 100 ms when the listener itself is in trouble (such as too many open
/// files).
pub async fn serve_with(listener: TcpListener, app: Router, header_read_timeout: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!("status server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("status server: connection failed: {e}");
            }
        });
    }
}

/// An accept error about one connection (the peer gave up), not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// The registry's health: 503 while any policy is open.
async fn health() -> Response {
    let health = registry().health();
    let code = if health.status == HealthState::Open {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json(code, serde_json::to_string_pretty(&health))
}

/// The registry's snapshot.
async fn status() -> Response {
    json(
        StatusCode::OK,
        serde_json::to_string_pretty(&registry().snapshot()),
    )
}

/// Everything the recorder holds, as Prometheus text.
async fn prometheus(State(metrics): State<PrometheusHandle>) -> Response {
    metrics.run_upkeep();
    let body = metrics.render();
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "try /health, /status or /metrics\n").into_response()
}

/// A JSON `body` with status `code` (500 if it could not be serialized).
fn json(code: StatusCode, body: serde_json::Result<String>) -> Response {
    match body {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
