//! The status server of examples/status_server.rs on a free port, scraped
//! with a real HTTP client while scripted calls trip and recover breakers.

mod support;

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use resilience_examples::status::{serve, Workload};
use tokio::net::TcpListener;

/// The value of the Prometheus sample `series` (`name{labels}` as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn metrics_and_status_follow_the_breakers() {
    let metrics = PrometheusBuilder::new().install_recorder().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, metrics));
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

    let (status, json) = support::http_get(addr, "/status").await;
    assert_eq!(status, 200);
    let snapshot: serde_json::Value = serde_json::from_str(&json).unwrap();
    let payments = snapshot["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "payments")
        .expect("payments in /status");
    assert_eq!(payments["state"], "open");
    assert_eq!(payments["consecutive_failures"], 3);
    assert_eq!(payments["retry_after_seconds"], 2.0);
    let db = &snapshot["bulkheads"][0];
    assert_eq!(
        (db["name"].as_str(), db["in_flight"].as_u64()),
        (Some("db"), Some(0))
    );
    assert_eq!(snapshot["retry_budgets"][0]["name"], "search");

    // It recovers: after 2 s a probe succeeds and the breaker closes.
    work.set_payments_down(false);
    tokio::time::advance(Duration::from_secs(2)).await;
    work.pay().await.unwrap();
    let (_, text) = support::http_get(addr, "/metrics").await;
    let closed = r#"resilience_transitions_total{breaker="payments",from="half_open",to="closed"}"#;
    assert_eq!(sample(&text, closed), Some(1.0), "{text}");
    assert_eq!(sample(&text, payments_state), Some(0.0), "{text}");
    let (_, json) = support::http_get(addr, "/status").await;
    assert!(json.contains(r#""state": "closed""#), "{json}");

    let (status, _) = support::http_get(addr, "/nope").await;
    assert_eq!(status, 404);
}
