//! The status server of examples/status_server.rs on free ports, scraped
//! with a real HTTP client (ureq) while scripted calls trip and recover
//! breakers.
//!
//! The tests of this binary share the process-wide registry and one
//! Prometheus recorder (a process has one). The overall health is the
//! registry's: the tests that open a breaker or read the overall verdict
//! hold [`SERIAL`] while they run, and close what they opened.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use resilience::{bulkhead, registry, resilient, BreakerConfig};
use resilience_examples::status::{router, serve, serve_with, Workload};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Held by the tests that change or judge the registry's overall health.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's Prometheus recorder, installed (and described) by the
/// first test that asks.
fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("the only recorder of this process");
            resilience::metrics::describe();
            handle
        })
        .clone()
}

/// A status server on a free loopback port, on the test's runtime.
async fn start() -> std::net::SocketAddr {
    let metrics = metrics();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, metrics));
    addr
}

/// The value of the Prometheus sample `series` (`name{labels}` as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The entry named `name` in a list of `/health` or `/status`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {list:#}"))
}

/// GET `/health`: the status code and the JSON.
async fn health(addr: std::net::SocketAddr) -> (u16, Value) {
    let response = support::http_get_response(addr, "/health").await;
    assert_eq!(response.content_type, "application/json");
    let json = serde_json::from_str(&response.body).expect("JSON");
    (response.status, json)
}

fn threshold(n: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(n)
        .build()
        .unwrap()
}

#[tokio::test]
async fn health_is_200_until_a_breaker_is_forced_open_then_503() {
    let _serial = SERIAL.lock().await;
    let addr = start().await;
    registry().breaker("health-flip", &threshold(3));

    let (code, json) = health(addr).await;
    assert_eq!(code, 200, "{json:#}");
    assert_eq!(json["status"], "healthy", "{json:#}");
    let flip = named(&json["policies"], "health-flip");
    assert_eq!(flip["kind"], "circuit_breaker");
    assert_eq!(flip["state"], "healthy");
    assert_eq!(flip["detail"], "0 of 3 failures");

    assert!(registry().force_open("health-flip"));
    let (code, json) = health(addr).await;
    assert_eq!(code, 503, "{json:#}");
    assert_eq!(json["status"], "open", "{json:#}");
    let flip = named(&json["policies"], "health-flip");
    assert_eq!(flip["state"], "open");
    assert_eq!(flip["detail"], "forced open until reset");

    registry().reset("health-flip");
    let (code, json) = health(addr).await;
    assert_eq!((code, &json["status"]), (200, &Value::from("healthy")));
}

/// Fails every time: two attempts, then the breaker (outside the retry)
/// counts one failure and opens.
#[resilient(
    name = "help-lines",
    failure_threshold = 1,
    max_attempts = 2,
    delay = "1ms"
)]
async fn always_down() -> Result<(), support::ApiError> {
    Err(support::ApiError::Upstream)
}

#[bulkhead(name = "help-lines", max_concurrent = 1)]
async fn one_at_a_time() -> Result<(), support::ApiError> {
    Ok(())
}

#[tokio::test]
async fn metrics_ignore_the_query_and_have_help_lines_for_every_metric() {
    let _serial = SERIAL.lock().await;
    let addr = start().await;
    // Every metric of the crate gets a value: calls, a transition, the
    // state, durations, retries, an exhausted retry, a bulkhead.
    assert!(always_down().await.is_err());
    one_at_a_time().await.unwrap();

    let response = support::http_get_response(addr, "/metrics?x=1").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.content_type, "text/plain; version=0.0.4");
    let text = response.body;
    for name in [
        "resilience_calls_total",
        "resilience_circuit_state",
        "resilience_transitions_total",
        "resilience_retries_total",
        "resilience_retries_exhausted_total",
        "resilience_bulkhead_in_flight",
        "resilience_call_duration_seconds",
    ] {
        let help = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# HELP {name} ")))
            .unwrap_or_else(|| panic!("no `# HELP {name}` in\n{text}"));
        assert!(!help.trim().is_empty(), "{name}");
    }
    let opened = r#"resilience_transitions_total{breaker="help-lines",from="closed",to="open"}"#;
    assert_eq!(sample(&text, opened), Some(1.0), "{text}");

    registry().reset("help-lines");
}

#[tokio::test]
async fn status_is_the_json_snapshot() {
    let addr = start().await;
    registry().breaker("status-listed", &threshold(4));

    let response = support::http_get_response(addr, "/status").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.content_type, "application/json");
    let json: Value = serde_json::from_str(&response.body).expect("JSON");
    let listed = named(&json["breakers"], "status-listed");
    assert_eq!(listed["state"], "closed");
    assert_eq!(listed["failure_threshold"], 4);
    assert!(json["bulkheads"].is_array() && json["retry_budgets"].is_array());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let addr = start().await;
    let (status, body) = support::http_get(addr, "/nope").await;
    assert_eq!(
        (status, body.as_str()),
        (404, "try /health, /status or /metrics\n")
    );
    let (status, _) = support::http_get(addr, "/health/extra").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(20);
    tokio::spawn(serve_with(listener, router(metrics()), timeout));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // No blank line: the head never ends.
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    // Closed by the server (an error, such as a reset, closes it too).
    let _ = closed.await.expect("the server closes the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200"), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn metrics_health_and_status_follow_the_breakers() {
    let _serial = SERIAL.lock().await;
    let addr = start().await;
    let work = Workload::default();

    for _ in 0..5 {
        work.round().await;
    }
    let (status, text) = support::http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let payments_ok = r#"resilience_calls_total{breaker="payments",outcome="success"}"#;
    let payments_state = r#"resilience_circuit_state{breaker="payments"}"#;
    assert_eq!(sample(&text, payments_ok), Some(5.0), "{text}");
    assert_eq!(sample(&text, payments_state), Some(0.0), "{text}");
    assert_eq!(health(addr).await.0, 200);

    // Payments goes down: 3 failures open it, the next 2 calls are rejected.
    work.set_payments_down(true);
    for _ in 0..5 {
        let _ = work.pay().await;
    }
    let (_, text) = support::http_get(addr, "/metrics").await;
    let failures = r#"resilience_calls_total{breaker="payments",outcome="failure"}"#;
    let rejected = r#"resilience_calls_total{breaker="payments",outcome="rejected"}"#;
    let opened = r#"resilience_transitions_total{breaker="payments",from="closed",to="open"}"#;
    assert_eq!(sample(&text, failures), Some(3.0), "{text}");
    assert_eq!(sample(&text, rejected), Some(2.0), "{text}");
    assert_eq!(sample(&text, opened), Some(1.0), "{text}");
    assert_eq!(sample(&text, payments_state), Some(1.0), "{text}");

    let (code, json) = health(addr).await;
    assert_eq!((code, &json["status"]), (503, &Value::from("open")));
    let payments = named(&json["policies"], "payments");
    assert_eq!(payments["state"], "open");
    assert_eq!(payments["detail"], "open, retry in 2s");

    let (status, json) = support::http_get(addr, "/status").await;
    assert_eq!(status, 200);
    let snapshot: Value = serde_json::from_str(&json).unwrap();
    let payments = named(&snapshot["breakers"], "payments");
    assert_eq!(payments["state"], "open");
    assert_eq!(payments["consecutive_failures"], 3);
    assert_eq!(payments["retry_after_seconds"], 2.0);
    let db = named(&snapshot["bulkheads"], "db");
    assert_eq!(db["in_flight"], 0);
    named(&snapshot["retry_budgets"], "search");

    // It recovers: after 2 s a probe succeeds and the breaker closes.
    work.set_payments_down(false);
    tokio::time::advance(Duration::from_secs(2)).await;
    work.pay().await.unwrap();
    let (_, text) = support::http_get(addr, "/metrics").await;
    let closed = r#"resilience_transitions_total{breaker="payments",from="half_open",to="closed"}"#;
    assert_eq!(sample(&text, closed), Some(1.0), "{text}");
    assert_eq!(sample(&text, payments_state), Some(0.0), "{text}");
    let (_, json) = support::http_get(addr, "/status").await;
    let snapshot: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(named(&snapshot["breakers"], "payments")["state"], "closed");
    let (code, json) = health(addr).await;
    assert_eq!(code, 200, "{json:#}");
    assert_eq!(named(&json["policies"], "payments")["state"], "healthy");
}
