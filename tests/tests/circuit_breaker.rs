//! `#[circuit_breaker]` behaviour on the paused clock: body runs and breaker
//! outcomes counted, names shared, dynamic and private.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use resilience::{circuit_breaker, registry, CircuitState};
use support::{state, ApiError};
use tokio::time::advance;

static RUNS: AtomicU32 = AtomicU32::new(0);
static FAIL: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "cb-basic", failure_threshold = 3, recovery_timeout = 60)]
async fn basic() -> Result<u32, ApiError> {
    let n = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if FAIL.load(Ordering::SeqCst) {
        Err(ApiError::Upstream)
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_threshold_rejects_without_running_then_recovers() {
    for _ in 0..2 {
        assert_eq!(basic().await, Err(ApiError::Upstream));
    }
    assert_eq!(state("cb-basic"), CircuitState::Closed);
    assert_eq!(basic().await, Err(ApiError::Upstream));
    assert_eq!(state("cb-basic"), CircuitState::Open);
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);

    // Open: rejected at once, body not run, the error says how long to wait.
    match basic().await {
        Err(ApiError::Resilience(e)) if e.is_circuit_open() => {
            assert_eq!(e.name().as_deref(), Some("cb-basic"));
            assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);

    advance(Duration::from_secs(59)).await;
    assert!(basic().await.is_err());
    assert_eq!(RUNS.load(Ordering::SeqCst), 3, "still open after 59 s");

    // After 60 s one probe runs; its success closes the circuit.
    advance(Duration::from_secs(1)).await;
    FAIL.store(false, Ordering::SeqCst);
    assert_eq!(basic().await, Ok(4));
    assert_eq!(state("cb-basic"), CircuitState::Closed);
}

static SHARED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "cb-shared", failure_threshold = 2)]
async fn shared_a() -> Result<(), ApiError> {
    SHARED_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Upstream)
}

#[circuit_breaker(name = "cb-shared", failure_threshold = 2)]
async fn shared_b() -> Result<(), ApiError> {
    SHARED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_name_is_one_breaker_across_functions() {
    assert!(shared_a().await.is_err());
    assert!(shared_a().await.is_err());
    // `shared_b` has never failed, but shares the open breaker.
    assert!(matches!(
        shared_b().await,
        Err(ApiError::Resilience(e)) if e.is_circuit_open()
    ));
    assert_eq!(SHARED_RUNS.load(Ordering::SeqCst), 2);
}

struct Integration {
    name: String,
    healthy: bool,
    runs: AtomicU32,
}

impl Integration {
    #[circuit_breaker(name = self.name.as_str(), failure_threshold = 2, recovery_timeout = "30s")]
    async fn fetch(&self) -> Result<&str, ApiError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.healthy {
            Ok(&self.name)
        } else {
            Err(ApiError::Upstream)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_names_give_one_breaker_per_value() {
    let good = Integration {
        name: "cb-dyn-good".into(),
        healthy: true,
        runs: AtomicU32::new(0),
    };
    let bad = Integration {
        name: "cb-dyn-bad".into(),
        healthy: false,
        runs: AtomicU32::new(0),
    };
    for _ in 0..5 {
        assert_eq!(good.fetch().await.unwrap(), "cb-dyn-good");
        let _ = bad.fetch().await;
    }
    assert_eq!(state("cb-dyn-bad"), CircuitState::Open);
    assert_eq!(state("cb-dyn-good"), CircuitState::Closed);
    assert_eq!(bad.runs.load(Ordering::SeqCst), 2, "rejected after opening");
    assert_eq!(good.runs.load(Ordering::SeqCst), 5);
}

#[circuit_breaker(failure_threshold = 1)]
async fn private_one() -> Result<(), ApiError> {
    Err(ApiError::Upstream)
}

#[circuit_breaker(failure_threshold = 1)]
async fn private_two() -> Result<(), ApiError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_a_name_each_function_has_its_own_breaker() {
    assert_eq!(private_one().await, Err(ApiError::Upstream));
    assert!(matches!(
        private_one().await,
        Err(ApiError::Resilience(e)) if e.is_circuit_open()
    ));
    assert_eq!(private_two().await, Ok(()));
    let snapshot = registry().snapshot();
    let mine = snapshot
        .breaker("circuit_breaker::private_one")
        .expect("private breakers show in the snapshot, named `module::function`");
    assert_eq!(mine.state, CircuitState::Open);
    assert_eq!(
        snapshot
            .breaker("circuit_breaker::private_two")
            .map(|s| s.state),
        Some(CircuitState::Closed)
    );
    assert_eq!(
        registry().get(&mine.name).map(|b| b.state()),
        Some(CircuitState::Open),
        "and are found by that name"
    );
}

static PANICS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "cb-panic", failure_threshold = 2)]
async fn panics() -> Result<(), ApiError> {
    PANICS.fetch_add(1, Ordering::SeqCst);
    panic!("body panicked");
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failure_and_keeps_unwinding() {
    for _ in 0..2 {
        let join = tokio::spawn(panics()).await;
        assert!(join.unwrap_err().is_panic());
    }
    assert_eq!(state("cb-panic"), CircuitState::Open);
    assert!(tokio::spawn(panics()).await.unwrap().is_err());
    assert_eq!(PANICS.load(Ordering::SeqCst), 2);
}

static PROBE_STARTED: AtomicU32 = AtomicU32::new(0);
static HANG: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "cb-cancel", failure_threshold = 1, recovery_timeout = 10)]
async fn maybe_hangs() -> Result<(), ApiError> {
    PROBE_STARTED.fetch_add(1, Ordering::SeqCst);
    if HANG.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot_and_records_nothing() {
    assert!(maybe_hangs().await.is_err());
    assert_eq!(state("cb-cancel"), CircuitState::Open);
    advance(Duration::from_secs(10)).await;
    HANG.store(true, Ordering::SeqCst);
    let cancelled = tokio::time::timeout(Duration::from_secs(1), maybe_hangs()).await;
    assert!(cancelled.is_err());
    assert_eq!(state("cb-cancel"), CircuitState::HalfOpen);
    let status = registry().get("cb-cancel").unwrap().status();
    assert_eq!(status.probes_in_flight, 0);
    // The next call is the probe again; its failure reopens.
    HANG.store(false, Ordering::SeqCst);
    assert_eq!(maybe_hangs().await, Err(ApiError::Upstream));
    assert_eq!(state("cb-cancel"), CircuitState::Open);
    assert_eq!(PROBE_STARTED.load(Ordering::SeqCst), 3);
}

#[circuit_breaker(name = "cb-io", failure_threshold = 1)]
async fn read_config(fail: bool) -> std::io::Result<String> {
    if fail {
        return Err(std::io::Error::other("disk"));
    }
    Ok("config".to_owned())
}

#[tokio::test(start_paused = true)]
async fn io_results_get_circuit_open_as_an_io_error() {
    assert_eq!(read_config(false).await.unwrap(), "config");
    assert!(read_config(true).await.is_err());
    let err = read_config(false).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().contains("circuit breaker `cb-io` is open"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_static_breaker() {
    #[circuit_breaker(name = "cb-threads", failure_threshold = 1000)]
    async fn work(fail: bool) -> Result<(), ApiError> {
        if fail {
            Err(ApiError::Upstream)
        } else {
            Ok(())
        }
    }
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                for j in 0..500 {
                    let _ = work((i + j) % 2 == 0).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let breaker: Arc<_> = registry().get("cb-threads").unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
    // 4000 calls, alternating: never 1000 consecutive failures.
    for _ in 0..1000 {
        let _ = work(true).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}
