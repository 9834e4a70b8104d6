//! The tower breaker layer over the registry's named breakers: one breaker
//! with the attribute of the same name, a classifier for `Ok` responses that
//! are failures, `poll_ready` that reserves nothing, `'static` response
//! futures that can be spawned.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use resilience::{circuit_breaker, registry, BreakerConfig, CircuitState, Outcome};
use support::ApiError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

#[circuit_breaker(name = "tw-payments", failure_threshold = 2, recovery_timeout = "1m")]
async fn pay() -> Result<u32, ApiError> {
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn the_layer_and_the_attribute_of_one_name_share_one_breaker() {
    assert_eq!(pay().await, Err(ApiError::Upstream));
    assert_eq!(pay().await, Err(ApiError::Upstream));
    let calls = Arc::new(AtomicU32::new(0));
    let svc = {
        let calls = calls.clone();
        ServiceBuilder::new()
            .layer(resilience::tower::circuit_breaker("tw-payments"))
            .service(service_fn(move |n: u32| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, ApiError>(n) }
            }))
    };
    // Open since the attribute's two failures: rejected, the service never called.
    let rejected = svc.clone().oneshot(1).await;
    assert!(support::is_open(&rejected), "{rejected:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The layer's probe closes it for the attribute too.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(svc.clone().oneshot(2).await, Ok(2));
    assert_eq!(
        registry().get("tw-payments").unwrap().state(),
        CircuitState::Closed
    );
}

#[derive(Debug, Clone, PartialEq)]
struct Response {
    status: u16,
}

#[tokio::test(start_paused = true)]
async fn a_classifier_counts_ok_responses_that_are_failures() {
    let config = BreakerConfig::builder()
        .failure_threshold(2)
        .build()
        .unwrap();
    registry().configure("tw-classified", config).unwrap();
    let layer = resilience::tower::circuit_breaker("tw-classified").classify(
        |r: &Result<Response, ApiError>| match r {
            Ok(resp) if resp.status >= 500 => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        },
    );
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|status: u16| async move {
            Ok::<_, ApiError>(Response { status })
        }));
    assert_eq!(
        svc.clone().oneshot(503).await.unwrap().status,
        503,
        "the caller gets the 503"
    );
    assert_eq!(svc.clone().oneshot(503).await.unwrap().status, 503);
    assert_eq!(
        registry().get("tw-classified").unwrap().state(),
        CircuitState::Open
    );
    assert!(support::is_open(&svc.clone().oneshot(200).await));
}

#[tokio::test(start_paused = true)]
async fn poll_ready_reserves_no_probe_slot() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(1))
        .half_open_max_calls(1)
        .build()
        .unwrap();
    registry().configure("tw-ready", config).unwrap();
    let svc = ServiceBuilder::new()
        .layer(resilience::tower::circuit_breaker("tw-ready"))
        .service(service_fn(|fail: bool| async move {
            if fail {
                Err(ApiError::Upstream)
            } else {
                Ok(1u32)
            }
        }));
    assert_eq!(svc.clone().oneshot(true).await, Err(ApiError::Upstream));
    tokio::time::advance(Duration::from_secs(1)).await;
    // Readiness polled and the service dropped, many times: nothing reserved.
    for _ in 0..10 {
        let mut ready = svc.clone();
        std::future::poll_fn(|cx| ready.poll_ready(cx))
            .await
            .unwrap();
    }
    // The one probe slot is still free: the probe runs and closes the circuit.
    assert_eq!(svc.clone().oneshot(false).await, Ok(1));
    assert_eq!(
        registry().get("tw-ready").unwrap().state(),
        CircuitState::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_futures_are_static_and_send() {
    let mut svc = ServiceBuilder::new()
        .layer(resilience::tower::circuit_breaker("tw-spawned"))
        .service(service_fn(|n: u32| async move { Ok::<_, ApiError>(n * 2) }));
    let fut = svc.ready().await.unwrap().call(21);
    assert_eq!(tokio::spawn(fut).await.unwrap(), Ok(42));
}

#[tokio::test(start_paused = true)]
async fn the_timeout_layer_cancels_a_slow_call_with_the_timeout_error() {
    let svc = ServiceBuilder::new()
        .layer(resilience::tower::timeout(Duration::from_secs(2)).unwrap())
        .service(service_fn(|hang: bool| async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Ok::<_, ApiError>(1u32)
        }));
    assert_eq!(svc.clone().oneshot(false).await, Ok(1));
    let start = tokio::time::Instant::now();
    match svc.clone().oneshot(true).await {
        Err(ApiError::Resilience(e)) => assert_eq!(e.timeout_after(), Some(Duration::from_secs(2))),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(
        resilience::tower::timeout(Duration::ZERO).is_err(),
        "the attribute's rule"
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_layer_follows_the_schedule_retries_503s_and_honours_retry_after() {
    let policy = resilience::RetryPolicy::builder()
        .max_attempts(4)
        .backoff(resilience::BackoffKind::Fixed)
        .delay(Duration::from_secs(1))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let svc = {
        let calls = calls.clone();
        ServiceBuilder::new()
            .layer(
                resilience::tower::retry(policy)
                    .retry_if(|r: &Result<Response, ApiError>| {
                        matches!(r, Ok(resp) if resp.status == 503) || r.is_err()
                    })
                    .retry_after(|r: &Result<Response, ApiError>| {
                        matches!(r, Ok(resp) if resp.status == 503).then(|| Duration::from_secs(5))
                    }),
            )
            .service(service_fn(move |_: ()| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    match n {
                        1 => Err(ApiError::Upstream),
                        2 => Ok(Response { status: 503 }),
                        _ => Ok(Response { status: 200 }),
                    }
                }
            }))
    };
    let start = tokio::time::Instant::now();
    assert_eq!(svc.oneshot(()).await.unwrap().status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 1 s after the error, 5 s (the hint) after the 503.
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_runs_out_returns_the_last_result_and_spends_the_named_budget() {
    let budget = resilience::RetryBudget::new("tw-budget", Duration::from_secs(1), 1, 0.0).unwrap();
    registry().configure_retry_budget(budget).unwrap();
    let policy = resilience::RetryPolicy::builder()
        .max_attempts(10)
        .backoff(resilience::BackoffKind::Fixed)
        .delay(Duration::from_millis(10))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(resilience::tower::retry(policy).budget("tw-budget"))
        .service(service_fn(|_: ()| async {
            Err::<u32, _>(ApiError::Upstream)
        }));
    // One retry a second is all the budget allows: 2 attempts, then the last error.
    assert_eq!(svc.oneshot(()).await, Err(ApiError::Upstream));
    assert_eq!(
        registry()
            .snapshot()
            .retry_budgets
            .iter()
            .find(|b| &*b.name == "tw-budget")
            .unwrap()
            .retries,
        1
    );
}

#[resilience::bulkhead(name = "tw-db", max_concurrent = 1, max_wait = "100ms")]
async fn hold_db(gate: Arc<tokio::sync::Semaphore>) -> Result<(), ApiError> {
    let _open = gate.acquire().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_layer_shares_the_attributes_slots_and_sheds_when_full() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let holder = tokio::spawn(hold_db(gate.clone()));
    support::settle().await;
    assert_eq!(
        support::in_flight("tw-db"),
        1,
        "the attribute's call holds the only slot"
    );
    let calls = Arc::new(AtomicU32::new(0));
    let layer = resilience::tower::bulkhead(
        "tw-db",
        std::num::NonZeroU32::MIN,
        Duration::from_millis(100),
    );
    let svc = {
        let calls = calls.clone();
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(move |_: ()| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, ApiError>(7u32) }
            }))
    };
    let start = tokio::time::Instant::now();
    let shed = svc.clone().oneshot(()).await;
    assert!(
        matches!(&shed, Err(ApiError::Resilience(e)) if e.is_bulkhead_full()),
        "{shed:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "waited max_wait"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the inner service was not called"
    );
    gate.add_permits(1);
    holder.await.unwrap().unwrap();
    // A service made ready and dropped gives its slot back.
    {
        let mut ready = svc.clone();
        std::future::poll_fn(|cx| ready.poll_ready(cx))
            .await
            .unwrap();
        assert_eq!(support::in_flight("tw-db"), 1);
    }
    assert_eq!(support::in_flight("tw-db"), 0);
    assert_eq!(svc.oneshot(()).await, Ok(7));
    assert_eq!(
        support::in_flight("tw-db"),
        0,
        "released when the response is ready"
    );
}
