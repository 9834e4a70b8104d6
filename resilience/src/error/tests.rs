use std::time::Duration;

use super::*;
use crate::{BreakerConfig, CircuitBreaker, Outcome};

fn open(name: &str) -> (CircuitBreaker, Error) {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(42))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(name, config);
    breaker.try_acquire().unwrap().record(Outcome::Failure);
    let error = breaker.try_acquire().unwrap_err();
    (breaker, error)
}

#[test]
fn an_error_is_one_word() {
    assert_eq!(std::mem::size_of::<Error>(), 8);
    assert_eq!(std::mem::size_of::<Option<Error>>(), 8);
    assert_eq!(std::mem::size_of::<Result<(), Error>>(), 8);
}

#[tokio::test(start_paused = true)]
async fn messages_name_the_breaker_and_the_wait() {
    let (_unifi, e) = open("unifi");
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert_eq!(
        e.to_string(),
        "circuit breaker `unifi` is open; a probe may run in 42.0s"
    );
    // Computed when asked: the wait shrinks with the clock.
    tokio::time::advance(Duration::from_secs(40)).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        e.to_string(),
        "circuit breaker `unifi` is open; a probe may run now"
    );
    let e = Error::timeout(Duration::from_millis(250));
    assert_eq!(e.to_string(), "call timed out after 250ms");
    assert_eq!(e.timeout_after(), Some(Duration::from_millis(250)));
    assert_eq!(
        (e.name(), e.retry_after(), e.max_concurrent()),
        (None, None, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_forced_open_breaker_has_no_wait() {
    let (breaker, _) = open("forced");
    breaker.force_open();
    let e = breaker.try_acquire().unwrap_err();
    assert_eq!(e.retry_after(), None);
    assert_eq!(
        e.to_string(),
        "circuit breaker `forced` is open; waiting for its probes to finish"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_that_outlives_its_breaker_never_names_another() {
    let (breaker, e) = open("gone");
    drop(breaker);
    assert_eq!(
        e.name().as_deref(),
        Some("gone"),
        "the name stays until the slot is reused"
    );
    assert_eq!(e.retry_after(), None, "no breaker, no wait");
    // Reusing the slot gives it a new generation: the old error is not
    // about the new breaker.
    let (_again, fresh) = open("again");
    assert_eq!(fresh.name().as_deref(), Some("again"));
    assert_ne!(e.name().as_deref(), Some("again"));
}

#[tokio::test]
async fn bulkhead_errors_name_the_bulkhead_and_its_limit() {
    let db = crate::Bulkhead::new("db", std::num::NonZeroU32::MIN, Duration::ZERO);
    let _slot = db.acquire().await.unwrap();
    let e = db.acquire().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BulkheadFull);
    assert_eq!(e.to_string(), "bulkhead `db` is full (1 calls in flight)");
    assert_eq!(e.max_concurrent(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn converts_into_io_error_with_a_fitting_kind() {
    let io: std::io::Error = Error::timeout(Duration::from_secs(1)).into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    let (_b, e) = open("x");
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    let inner = io.into_inner().unwrap();
    assert!(inner.downcast_ref::<Error>().unwrap().is_circuit_open());
}

#[test]
fn is_send_sync_static() {
    fn check<T: Send + Sync + 'static + std::error::Error>() {}
    check::<Error>();
}
