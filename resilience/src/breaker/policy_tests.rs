//! Trip rules, slow calls, growing open time, manual control and listeners,
//! on the paused tokio clock.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::advance;

use super::*;

fn calls(n: u32) -> Window {
    Window::Calls(NonZeroU32::new(n).unwrap())
}

fn record(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire().expect("admitted").record(outcome);
}

fn record_n(b: &CircuitBreaker, n: u32, outcome: Outcome) {
    for _ in 0..n {
        record(b, outcome);
    }
}

#[tokio::test(start_paused = true)]
async fn failures_within_a_time_window() {
    // The seeds' "5 failures in 60 seconds".
    let config = BreakerConfig::builder()
        .failure_threshold(5)
        .window(Window::Time(Duration::from_secs(60)))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record_n(&b, 3, Outcome::Failure);
    record_n(&b, 10, Outcome::Success); // successes do not reset a window
    advance(Duration::from_secs(61)).await; // the 3 failures leave the window
    record_n(&b, 4, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.status().window_failures, 4);
    advance(Duration::from_secs(30)).await;
    record(&b, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_count_window_waits_for_min_calls() {
    let config = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(calls(10))
        .min_calls(4)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record_n(&b, 3, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Closed, "3 calls < min_calls 4");
    record(&b, Outcome::Success); // 3 of 4 failed: 75 % >= 50 %
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_trips_exactly_at_the_rate_and_evicts_old_calls() {
    let config = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(calls(4))
        .min_calls(4)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    let cause = std::sync::Arc::new(Mutex::new(None));
    let seen = cause.clone();
    b.on_transition(move |t| *seen.lock().unwrap() = Some((t.cause, t.failures, t.calls)));
    record_n(&b, 3, Outcome::Success);
    record(&b, Outcome::Failure); // 1/4
    record(&b, Outcome::Success); // evicts a success: still 1/4
    assert_eq!(b.status().window_failures, 1);
    assert_eq!(b.status().window_calls, 4);
    record(&b, Outcome::Success); // 1/4
    record(&b, Outcome::Failure); // 2/4 = 50 %
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(
        *cause.lock().unwrap(),
        Some((
            TransitionCause::FailureRate {
                failures: 2,
                calls: 4
            },
            2,
            4
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_do_not_enter_the_window() {
    let config = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(calls(4))
        .min_calls(2)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record(&b, Outcome::Success);
    record_n(&b, 5, Outcome::Ignored);
    assert_eq!(b.status().window_calls, 1);
    record(&b, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures() {
    let config = BreakerConfig::builder()
        .failure_threshold(2)
        .slow_call(Duration::from_secs(2))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    for _ in 0..2 {
        let permit = b.try_acquire().unwrap();
        advance(Duration::from_millis(2001)).await;
        assert!(permit.is_slow());
        permit.record(Outcome::Success);
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_call_exactly_at_the_slow_threshold_is_not_slow() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .slow_call(Duration::from_secs(2))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    let permit = b.try_acquire().unwrap();
    advance(Duration::from_secs(2)).await;
    permit.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_trips_on_slow_calls_alone() {
    let config = BreakerConfig::builder()
        .failure_rate(1.0)
        .slow_call(Duration::from_secs(1))
        .slow_call_rate(0.5)
        .window(calls(4))
        .min_calls(4)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record_n(&b, 2, Outcome::Success);
    for i in 0..2 {
        let permit = b.try_acquire().unwrap();
        advance(Duration::from_secs(2)).await;
        permit.record(Outcome::Success);
        if i == 0 {
            assert_eq!(b.status().window_slow_calls, 1);
            assert_eq!(b.status().window_failures, 0, "slow, not failed");
        }
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn open_time_doubles_after_each_failed_probe_and_resets_on_close() {
    let config = BreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .recovery_timeout_max(Duration::from_secs(35))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record(&b, Outcome::Failure);
    for expected in [10, 20, 35, 35] {
        assert_eq!(b.status().retry_after, Some(Duration::from_secs(expected)));
        advance(Duration::from_secs(expected - 1)).await;
        assert!(b.try_acquire().is_err());
        advance(Duration::from_secs(1)).await;
        record(&b, Outcome::Failure); // the probe fails
    }
    advance(Duration::from_secs(35)).await;
    record(&b, Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
    record(&b, Outcome::Failure);
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_until_reset() {
    let b = CircuitBreaker::new("t", BreakerConfig::DEFAULT);
    b.force_open();
    assert_eq!(b.state(), CircuitState::ForcedOpen);
    advance(Duration::from_secs(3600)).await;
    let forced = b.try_acquire().unwrap_err();
    assert!(forced.is_circuit_open() && forced.retry_after().is_none());
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_and_counts_but_never_opens() {
    let config = BreakerConfig::builder()
        .failure_threshold(2)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    b.disable();
    record_n(&b, 10, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Disabled);
    assert_eq!(b.status().consecutive_failures, 10);
    b.reset();
    record_n(&b, 2, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn listeners_see_every_transition_and_a_panicking_one_breaks_nothing() {
    let b = CircuitBreaker::new(
        "t",
        BreakerConfig::builder()
            .failure_threshold(2)
            .recovery_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let panics = std::sync::Arc::new(AtomicU32::new(0));
    {
        let panics = panics.clone();
        b.on_transition(move |_| {
            panics.fetch_add(1, Ordering::SeqCst);
            panic!("listener bug");
        });
    }
    {
        let seen = seen.clone();
        b.on_transition(move |t| {
            seen.lock()
                .unwrap()
                .push((t.from, t.to, t.cause, t.failures))
        });
    }
    record_n(&b, 2, Outcome::Failure);
    advance(Duration::from_secs(5)).await;
    record(&b, Outcome::Success);
    b.force_open();
    b.disable();
    b.reset();
    use CircuitState::*;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                Closed,
                Open,
                TransitionCause::FailureThreshold { failures: 2 },
                2
            ),
            (Open, HalfOpen, TransitionCause::RecoveryTimeoutElapsed, 0),
            (
                HalfOpen,
                Closed,
                TransitionCause::ProbesSucceeded { successes: 1 },
                0
            ),
            (Closed, ForcedOpen, TransitionCause::ForcedOpen, 0),
            (ForcedOpen, Disabled, TransitionCause::Disabled, 0),
            (Disabled, Closed, TransitionCause::Reset, 0),
        ]
    );
    assert_eq!(
        panics.load(Ordering::SeqCst),
        6,
        "the panicking listener ran every time"
    );
    assert!(b.try_acquire().is_ok(), "the breaker still works");
}

#[tokio::test(start_paused = true)]
async fn windows_are_cleared_when_the_circuit_closes() {
    let config = BreakerConfig::builder()
        .failure_threshold(3)
        .window(calls(100))
        .recovery_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    record_n(&b, 3, Outcome::Failure);
    advance(Duration::from_secs(1)).await;
    record(&b, Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.status().window_calls, 0);
    record_n(&b, 2, Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_below_min_calls_never_open_the_circuit() {
    // Every call slow from the first one: the rate is 100 %, but the window
    // holds fewer than `min_calls` calls until the fourth.
    let config = BreakerConfig::builder()
        .failure_rate(1.0)
        .slow_call(Duration::from_secs(1))
        .slow_call_rate(0.5)
        .window(calls(10))
        .min_calls(4)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("t", config);
    for n in 1..=4 {
        let permit = b.try_acquire().unwrap();
        advance(Duration::from_secs(2)).await;
        permit.record(Outcome::Success);
        let expected = if n < 4 {
            CircuitState::Closed
        } else {
            CircuitState::Open
        };
        assert_eq!(b.state(), expected, "after {n} slow calls");
    }
}
