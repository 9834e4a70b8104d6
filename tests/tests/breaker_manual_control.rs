//! Manual control of attribute-made breakers through the registry, by name,
//! on the paused clock: `force_open`, `disable` and `reset`.
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{circuit_breaker, registry, CircuitState};
use support::breaker::{rejected, ApiError};
use support::{secs, state, status};
use tokio::time::advance;

use ApiError::Timeout;
use CircuitState::{Closed, Disabled, ForcedOpen, Open};

static FORCED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-forced", failure_threshold = 100)]
async fn forced(result: Result<(), ApiError>) -> Result<(), ApiError> {
    FORCED_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn force_open_by_name_rejects_without_running_the_body_until_reset() {
    const NAME: &str = "pol-forced";
    // The breaker is made on the first call: before it, there is nothing to force.
    assert!(!registry().force_open(NAME));
    forced(Ok(())).await.unwrap();
    assert!(registry().force_open(NAME));
    assert_eq!(state(NAME), ForcedOpen);
    let snapshot = registry().snapshot();
    let s = snapshot.breaker(NAME).expect("in the snapshot");
    assert_eq!((s.state, s.retry_after), (ForcedOpen, None));

    assert_eq!(rejected(forced(Ok(())).await, NAME), None);
    advance(secs(24 * 3600)).await;
    assert_eq!(rejected(forced(Ok(())).await, NAME), None, "no probe, ever");
    assert_eq!(FORCED_RUNS.load(Ordering::SeqCst), 1);

    assert!(registry().reset(NAME));
    assert_eq!(state(NAME), Closed);
    forced(Ok(())).await.unwrap();
    assert_eq!(FORCED_RUNS.load(Ordering::SeqCst), 2);
}

static DISABLED_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-disabled", failure_threshold = 2)]
async fn disabled(result: Result<(), ApiError>) -> Result<(), ApiError> {
    DISABLED_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn disable_by_name_lets_every_call_run_and_never_opens_until_reset() {
    const NAME: &str = "pol-disabled";
    for _ in 0..2 {
        disabled(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!(state(NAME), Open);
    // Disabling an open breaker lets calls through at once.
    assert!(registry().disable(NAME));
    for _ in 0..10 {
        assert_eq!(disabled(Err(Timeout)).await, Err(Timeout));
    }
    assert_eq!(state(NAME), Disabled);
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 12);
    let snapshot = registry().snapshot();
    let s = snapshot.breaker(NAME).expect("in the snapshot");
    assert_eq!(s.state, Disabled);
    assert_eq!(s.consecutive_failures, 10, "still counted");

    assert!(registry().reset(NAME));
    assert_eq!(status(NAME).consecutive_failures, 0);
    disabled(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Closed);
    disabled(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Open, "the threshold applies again");
    assert!(rejected(disabled(Ok(())).await, NAME).is_some());
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 14);
}

static RESET_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "pol-reset", failure_threshold = 3)]
async fn reset_me(result: Result<(), ApiError>) -> Result<(), ApiError> {
    RESET_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn reset_by_name_closes_the_circuit_and_forgets_failures() {
    const NAME: &str = "pol-reset";
    for _ in 0..3 {
        reset_me(Err(Timeout)).await.unwrap_err();
    }
    assert!(rejected(reset_me(Ok(())).await, NAME).is_some());
    assert!(registry().reset(NAME));
    assert_eq!(state(NAME), Closed);
    // Runs at once, well before the 60 s recovery timeout.
    reset_me(Err(Timeout)).await.unwrap_err();
    reset_me(Err(Timeout)).await.unwrap_err();
    assert_eq!(state(NAME), Closed, "the 3 earlier failures are forgotten");
    assert!(registry().reset(NAME));
    assert_eq!(status(NAME).consecutive_failures, 0);
    assert_eq!(RESET_RUNS.load(Ordering::SeqCst), 5);
    assert!(!registry().reset("pol-reset-no-such-breaker"));
}
