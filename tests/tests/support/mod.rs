//! What the integration tests share; each test file includes it as
//! `mod support;` and uses what it needs (hence `dead_code` allowed).
//!
//! - here: the plain error of annotated functions ([`ApiError`]), durations,
//!   and the registry as the tests read it (breaker state and status,
//!   bulkhead slots), plus [`eventually`] and [`settle`];
//! - [`breaker`]: the classified error and transition helpers of the
//!   `breaker_*` policy tests;
//! - [`retry`]: the classified error and the scripted [`retry::Upstream`] of
//!   the `retry_*` policy tests;
//! - [`fleet`]: the in-process fleet tests' instances (leaked registries),
//!   breaker configurations, fast fleet tuning, trips and states, bounded
//!   waits on the real clock, and a topology's blocking calls off the
//!   runtime;
//! - [`redis_server`]: a real `redis-server` for the fleet tests;
//! - [`redis_stats`]: its server-wide figures (commands, memory), and the
//!   calls of one command since the last `CONFIG RESETSTAT`;
//! - [`redis_sentinel`]: a real Sentinel topology (a primary, a replica,
//!   three sentinels) that fails over in seconds, for the fleet sync tests;
//! - [`redis_cluster`]: a real Redis Cluster (three primaries), for the
//!   fleet sync tests;
//! - [`redis_node`]: what the Redis topologies share (one node process,
//!   its temporary directory, free ports, bounded probes);
//! - [`process`]: a child process of a multi-process test, driven over stdin.
//!
//! Every breaker, bulkhead and budget a test creates has a name of its own:
//! the tests of one binary run in parallel and share the process-wide
//! registry these helpers read.
#![allow(dead_code)]

pub mod breaker;
pub mod fleet;
pub mod process;
pub mod redis_cluster;
pub mod redis_node;
pub mod redis_sentinel;
pub mod redis_server;
pub mod redis_stats;
pub mod retry;

use std::time::Duration;

use resilience::{registry, BreakerStatus, CircuitState};

/// The error of the tests' annotated functions: the upstream failed, or a
/// resilience layer failed the call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("upstream failed")]
    Upstream,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

/// Whether `r` is a rejection by an open circuit.
pub fn is_open<T: std::fmt::Debug>(r: &Result<T, ApiError>) -> bool {
    matches!(
        r,
        Err(ApiError::Resilience(e)) if e.is_circuit_open()
    )
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The state of the registry's breaker `name`; panics if there is none.
pub fn state(name: &str) -> CircuitState {
    registry().get(name).expect("breaker exists").state()
}

/// The status of the registry's breaker `name`; panics if there is none.
pub fn status(name: &str) -> BreakerStatus {
    registry().get(name).expect("breaker exists").status()
}

/// The slots in use of the registry's bulkhead `name`; panics if there is
/// none (the bulkhead must exist by now).
pub fn in_flight(name: &str) -> u32 {
    registry()
        .snapshot()
        .bulkheads
        .into_iter()
        .find(|b| &*b.name == name)
        .unwrap_or_else(|| panic!("no bulkhead `{name}`"))
        .in_flight
}

/// The slots in use of the registry's bulkhead `name`, 0 while there is none
/// (a call dropped before its first poll never created it).
pub fn in_flight_or_zero(name: &str) -> u32 {
    registry()
        .snapshot()
        .bulkheads
        .into_iter()
        .find(|b| &*b.name == name)
        .map_or(0, |b| b.in_flight)
}

/// Lets the task scheduler run every task that is ready (the clock stays put).
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Polls `condition` every 5 ms until it holds; fails after 10 s (the test
/// must not hang). Checks behaviour, not speed.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A response read by [`http_get_response`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The `content-type` header, empty if there is none.
    pub content_type: String,
    pub body: String,
}

/// GET `path` with a real HTTP client (ureq), off the runtime thread (the
/// client blocks; a blocking task also keeps a paused clock from
/// auto-advancing while the request is under way). Gives up after 10 s.
pub async fn http_get_response(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        );
        let mut response = agent.get(&url).call().expect("request");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("a text content type").to_owned())
            .unwrap_or_default();
        HttpResponse {
            status: response.status().as_u16(),
            content_type,
            body: response.body_mut().read_to_string().expect("body"),
        }
    })
    .await
    .unwrap()
}

/// GET `path` (see [`http_get_response`]): the status and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = http_get_response(addr, path).await;
    (response.status, response.body)
}
