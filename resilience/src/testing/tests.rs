use std::time::Duration;

use super::*;
use crate::{BreakerConfig, Outcome, Registry};

#[test]
fn each_isolated_registry_is_its_own_and_the_previous_one_comes_back() {
    let global = registry() as *const Registry;
    let (a, b) = isolated(|| {
        let a = registry() as *const Registry;
        let b = isolated(|| registry() as *const Registry);
        assert_eq!(
            registry() as *const Registry,
            a,
            "restored after the inner one"
        );
        (a, b)
    });
    assert_ne!(a, global);
    assert_ne!(a, b);
    assert_eq!(registry() as *const Registry, global);
    assert!(current().is_none());
}

#[test]
fn a_panic_inside_leaves_the_thread_outside_any_test() {
    let caught = std::panic::catch_unwind(|| isolated(|| panic!("boom")));
    assert!(caught.is_err());
    assert!(current().is_none());
}

#[test]
fn every_thread_of_a_multi_thread_runtime_uses_the_tests_registry() {
    let (here, spawned, blocking) = run(Runtime::multi_thread(2), async {
        let here = registry() as *const Registry as usize;
        let spawned = tokio::spawn(async { registry() as *const Registry as usize })
            .await
            .unwrap();
        let blocking = tokio::task::spawn_blocking(|| registry() as *const Registry as usize)
            .await
            .unwrap();
        (here, spawned, blocking)
    });
    assert_eq!(here, spawned);
    assert_eq!(here, blocking);
    assert_ne!(here, crate::registry() as *const Registry as usize);
}

#[test]
fn breaker_state_names_the_breakers_there_are() {
    isolated(|| {
        let config = BreakerConfig::builder()
            .failure_threshold(1)
            .build()
            .unwrap();
        registry()
            .breaker("payments", &config)
            .try_acquire()
            .unwrap()
            .record(Outcome::Failure);
        assert_eq!(breaker_state("payments"), CircuitState::Open);
        let message = std::panic::catch_unwind(|| breaker_state("paymnets"))
            .unwrap_err()
            .downcast::<String>()
            .unwrap();
        assert!(
            message.contains("no circuit breaker named `paymnets`"),
            "{message}"
        );
        assert!(message.contains("known: `payments`"), "{message}");
    });
}

#[test]
fn attempts_outside_a_test_says_how_to_get_one() {
    let message = std::panic::catch_unwind(|| attempts("fetch"))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("#[resilience::test]"), "{message}");
    let message = std::panic::catch_unwind(|| isolated(|| sleeps("fetch")))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("no call through a retry named `fetch`"),
        "{message}"
    );
    assert!(message.contains("none yet"), "{message}");
}

#[test]
fn a_retry_records_its_attempts_and_sleeps_in_the_test() {
    let policy =
        crate::RetryPolicy::new(3, crate::Backoff::fixed(Duration::from_millis(5))).unwrap();
    isolated(|| {
        let mut state = crate::RetryState::new("fetch", &policy);
        assert!(state.next_delay().is_some());
        assert!(state.next_delay().is_some());
        assert!(state.next_delay().is_none());
        drop(state);
        assert_eq!(attempts("fetch"), 3);
        assert_eq!(sleeps("fetch"), [Duration::from_millis(5); 2]);
    });
}
