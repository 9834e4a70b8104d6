//! The tower breaker layer in a real HTTP stack: an axum server on a free
//! loopback port, its route behind `resilience::tower::circuit_breaker`,
//! whose classifier counts the handler's 503 responses as failures; a real
//! HTTP client (ureq, off the runtime thread) sees the breaker open and the
//! rejection answered as 503 with the breaker's words.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use resilience::{registry, BreakerConfig, CircuitState, Outcome};
use tokio::net::TcpListener;
use tower::{BoxError, ServiceBuilder};

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Unavailable for its first two calls, then fine.
async fn pay() -> Response {
    if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        (StatusCode::SERVICE_UNAVAILABLE, "upstream down").into_response()
    } else {
        (StatusCode::OK, "paid").into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_route_behind_the_breaker_layer_over_a_real_socket() {
    let config = BreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    registry().configure("ax-pay", config).unwrap();
    let breaker =
        resilience::tower::circuit_breaker("ax-pay").classify(|r: &Result<Response, BoxError>| {
            match r {
                Ok(resp) if resp.status().is_server_error() => Outcome::Failure,
                Ok(_) => Outcome::Success,
                Err(_) => Outcome::Failure,
            }
        });
    let app = Router::new().route("/pay", get(pay)).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|e: BoxError| async move {
                (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }))
            .layer(breaker)
            .map_err(|never: Infallible| -> BoxError { match never {} }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    assert_eq!(
        support::http_get(addr, "/pay").await,
        (503, "upstream down".to_owned())
    );
    assert_eq!(
        support::http_get(addr, "/pay").await,
        (503, "upstream down".to_owned())
    );
    assert_eq!(
        registry().get("ax-pay").unwrap().state(),
        CircuitState::Open
    );
    // Rejected by the breaker: the handler is not called.
    let (status, body) = support::http_get(addr, "/pay").await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("circuit breaker `ax-pay` is open"),
        "{body}"
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    // After the recovery timeout (real time: a real server), the probe
    // succeeds and closes the circuit.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        support::http_get(addr, "/pay").await,
        (200, "paid".to_owned())
    );
    assert_eq!(
        registry().get("ax-pay").unwrap().state(),
        CircuitState::Closed
    );
}
