//! Isolated registries (feature `testing`): tests that share a breaker name
//! never see each other's state, on either runtime flavor and across
//! `tokio::spawn`; the assertions of `resilience::testing`.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::testing::{self, Runtime};
use resilience::{circuit_breaker, registry, retry, CircuitState};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("inventory down")]
    Down,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

struct Inventory;

impl Inventory {
    #[circuit_breaker(name = "inventory", failure_threshold = 2, recovery_timeout = "60s")]
    async fn stock(&self, fail: bool) -> Result<u32, ApiError> {
        tokio::task::yield_now().await;
        if fail {
            Err(ApiError::Down)
        } else {
            Ok(7)
        }
    }
}

/// One test: the upstream fails until the breaker opens.
async fn opens_the_breaker() {
    assert_eq!(Inventory.stock(true).await, Err(ApiError::Down));
    assert_eq!(Inventory.stock(true).await, Err(ApiError::Down));
    assert_eq!(testing::breaker_state("inventory"), CircuitState::Open);
    let rejected = Inventory.stock(false).await.unwrap_err();
    assert!(matches!(rejected, ApiError::Resilience(e) if e.is_circuit_open()));
}

/// The other: the same name, a healthy upstream, a closed breaker.
async fn finds_the_breaker_closed() {
    for _ in 0..5 {
        assert_eq!(Inventory.stock(false).await, Ok(7));
    }
    assert_eq!(testing::breaker_state("inventory"), CircuitState::Closed);
    let status = registry().get("inventory").unwrap().status();
    assert_eq!(status.consecutive_failures, 0, "{status:?}");
}

#[resilience::test]
async fn a_test_that_opens_inventory() {
    opens_the_breaker().await;
}

#[resilience::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_needs_inventory_closed() {
    // A task spawned onto another worker thread uses this test's registry.
    tokio::spawn(finds_the_breaker_closed()).await.unwrap();
    finds_the_breaker_closed().await;
}

#[test]
fn two_tests_with_one_breaker_name_run_in_parallel_50_times_and_never_meet() {
    // 50 pairs at once, released together; the opener of each pair also
    // spawns tasks on a multi-thread runtime.
    let pairs = 50;
    let start = Arc::new(Barrier::new(pairs * 2));
    let threads: Vec<_> = (0..pairs * 2)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                if i % 2 == 0 {
                    testing::run(Runtime::multi_thread(1), async {
                        tokio::spawn(opens_the_breaker()).await.unwrap();
                    });
                } else {
                    testing::run(Runtime::current_thread(), finds_the_breaker_closed());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a test saw another's state");
    }
    // And the process-wide registry saw none of it.
    assert!(registry().get("inventory").is_none());
}

static UNNAMED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[circuit_breaker(failure_threshold = 1)]
async fn unnamed(fail: bool) -> Result<u32, ApiError> {
    UNNAMED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(1)
    }
}

#[test]
fn an_unnamed_call_sites_cached_breaker_does_not_leak_between_tests() {
    let name = concat!(module_path!(), "::unnamed");
    testing::run(Runtime::current_thread(), async move {
        assert_eq!(unnamed(true).await, Err(ApiError::Down));
        assert_eq!(testing::breaker_state(name), CircuitState::Open);
    });
    testing::run(Runtime::current_thread(), async move {
        assert_eq!(
            unnamed(false).await,
            Ok(1),
            "a fresh breaker, not the cached open one"
        );
        assert_eq!(testing::breaker_state(name), CircuitState::Closed);
    });
}

#[retry(max_attempts = 4, delay = "100ms", backoff = "exponential")]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::Down)
}

#[resilience::test(start_paused = true)]
async fn attempts_and_sleeps_read_what_the_last_call_did() {
    let started = tokio::time::Instant::now();
    assert_eq!(fetch().await, Err(ApiError::Down));
    let name = concat!(module_path!(), "::fetch");
    assert_eq!(testing::attempts(name), 4);
    assert_eq!(
        testing::sleeps(name),
        [100, 200, 400].map(Duration::from_millis)
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(700),
        "on the paused clock"
    );
}

#[test]
fn settings_applied_in_a_test_stay_in_that_test() {
    let settings: resilience::settings::Settings =
        serde_json::from_str(r#"{ "breakers": { "inventory": { "failure_threshold": 9 } } }"#)
            .unwrap();
    testing::run(Runtime::current_thread(), async move {
        registry().apply(&settings).unwrap();
        Inventory.stock(false).await.unwrap();
        let breaker = registry().get("inventory").unwrap();
        assert_eq!(breaker.config().failure_threshold().get(), 9);
    });
    testing::run(Runtime::current_thread(), async {
        Inventory.stock(false).await.unwrap();
        let breaker = registry().get("inventory").unwrap();
        assert_eq!(
            breaker.config().failure_threshold().get(),
            2,
            "the attribute's"
        );
    });
}
