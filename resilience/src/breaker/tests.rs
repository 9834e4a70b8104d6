//! State-machine tests on the paused tokio clock.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::time::advance;

use super::*;
use crate::__private::{breaker_call, converter, every_error_fails, Flags};

fn config(failures: u32, recovery_secs: u64, successes: u32, probes: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(failures)
        .recovery_timeout(Duration::from_secs(recovery_secs))
        .success_threshold(successes)
        .half_open_max_calls(probes)
        .build()
        .unwrap()
}

pub(super) fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").record(Outcome::Failure);
}

pub(super) fn succeed(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").record(Outcome::Success);
}

pub(super) fn trip(b: &CircuitBreaker) {
    for _ in 0..b.config().failure_threshold().get() {
        fail(b);
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn opens_exactly_at_the_failure_threshold() {
    let b = CircuitBreaker::new("t", config(3, 60, 1, 1));
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.status().consecutive_failures, 2);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let b = CircuitBreaker::new("t", config(3, 60, 1, 1));
    fail(&b);
    fail(&b);
    succeed(&b);
    assert_eq!(b.status().consecutive_failures, 0);
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_count_for_nothing() {
    let b = CircuitBreaker::new("t", config(2, 60, 1, 1));
    fail(&b);
    b.try_acquire().unwrap().record(Outcome::Ignored);
    assert_eq!(b.status().consecutive_failures, 1);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn open_rejects_until_the_recovery_timeout() {
    let b = CircuitBreaker::new("t", config(1, 60, 1, 1));
    trip(&b);
    advance(Duration::from_secs(59)).await;
    match b.try_acquire() {
        Err(e) if e.is_circuit_open() => {
            assert_eq!(e.name().as_deref(), Some("t"));
            assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(1)));
    advance(Duration::from_secs(1)).await;
    assert_eq!(b.status().retry_after, Some(Duration::ZERO));
    let probe = b.try_acquire().expect("a probe after 60 s");
    assert!(probe.is_probe());
    assert_eq!(b.state(), CircuitState::HalfOpen);
    probe.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_max_calls_probes() {
    let b = CircuitBreaker::new("t", config(1, 10, 3, 2));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    let busy = b.try_acquire().unwrap_err();
    assert!(busy.is_circuit_open() && busy.retry_after().is_none());
    assert_eq!(b.status().probes_in_flight, 2);
    p1.record(Outcome::Success);
    // A finished probe frees its slot.
    let p3 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    p2.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::HalfOpen, "2 of 3 successes");
    p3.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.status().probes_in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_a_full_recovery_timeout() {
    let b = CircuitBreaker::new("t", config(1, 10, 1, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    b.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(10)));
    advance(Duration::from_secs(9)).await;
    assert!(b.try_acquire().is_err());
    advance(Duration::from_secs(1)).await;
    assert!(b.try_acquire().unwrap().is_probe());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot_and_records_nothing() {
    let b = CircuitBreaker::new("t", config(1, 10, 1, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(probe);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(b.status().probe_successes, 0);
    let probe = b.try_acquire().expect("slot freed");
    probe.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_future_under_breaker_call_frees_the_probe() {
    let b = CircuitBreaker::new("t", config(1, 10, 1, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let flags = Flags::new();
    let hung = breaker_call(
        &b,
        &flags,
        std::future::pending::<Result<(), Error>>(),
        every_error_fails,
        converter(),
    );
    let timed = tokio::time::timeout(Duration::from_secs(1), hung).await;
    assert!(timed.is_err(), "the probe never finished and was dropped");
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(b.status().probes_in_flight, 0);
    let r: Result<u8, Error> =
        breaker_call(&b, &flags, async { Ok(1) }, every_error_fails, converter()).await;
    assert_eq!(r, Ok(1));
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(!flags.stop_retry());
}

#[tokio::test(start_paused = true)]
async fn outcomes_from_an_older_generation_are_ignored() {
    let b = CircuitBreaker::new("t", config(2, 10, 1, 1));
    let stale = b.try_acquire().unwrap();
    fail(&b);
    b.reset();
    stale.record(Outcome::Failure);
    assert_eq!(b.status().consecutive_failures, 0);

    // A probe admitted before a reset cannot close or reopen the new generation.
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let probe = b.try_acquire().unwrap();
    b.reset();
    fail(&b);
    probe.record(Outcome::Success);
    assert_eq!(
        b.status().consecutive_failures,
        1,
        "the probe's success was stale"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_counts_as_a_failure_and_keeps_unwinding() {
    let b = CircuitBreaker::new("t", config(1, 10, 1, 1));
    let flags = Flags::new();
    let body = async {
        if true {
            panic!("boom");
        }
        Ok::<(), Error>(())
    };
    let call = breaker_call(&b, &flags, body, every_error_fails, converter());
    let caught = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(call)).await;
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_ignored_error_is_reported_at_debug_and_a_counted_one_is_not() {
    let events = crate::test_events::Events::at(tracing::Level::DEBUG);
    let _default = tracing::subscriber::set_default(events.clone());
    let b = CircuitBreaker::new("ig", config(1, 10, 1, 1));
    let flags = Flags::new();
    let ignored = |_: &Error| Outcome::Ignored;
    let failing = async { Err::<(), _>(b.rejection_error()) };
    let r = breaker_call(&b, &flags, failing, ignored, converter()).await;
    assert!(r.is_err());
    assert_eq!(b.state(), CircuitState::Closed, "ignored: not a failure");
    let said = || events.containing("ignored an error").len();
    assert_eq!(said(), 1, "{:?}", events.lines());
    let ok: Result<u8, Error> =
        breaker_call(&b, &flags, async { Ok(1) }, ignored, converter()).await;
    assert_eq!(ok, Ok(1));
    let failing = async { Err::<(), _>(b.rejection_error()) };
    let r = breaker_call(&b, &flags, failing, every_error_fails, converter()).await;
    assert!(r.is_err());
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(said(), 1, "a success and a failure are not ignored ones");
}

#[tokio::test(start_paused = true)]
async fn opening_is_reported_at_warn_and_every_other_transition_at_info() {
    use crate::test_events::Events;
    let b = CircuitBreaker::new("tr", config(1, 10, 1, 1));
    let warned = Events::at(tracing::Level::WARN);
    {
        let _default = tracing::subscriber::set_default(warned.clone());
        trip(&b);
    }
    let line = warned.only_line();
    assert!(
        line.contains("circuit breaker `tr` opened: 1 consecutive failures"),
        "{line}"
    );
    assert!(line.contains("to=Open"), "{line}");
    advance(Duration::from_secs(10)).await;
    let told = Events::at(tracing::Level::INFO);
    {
        let _default = tracing::subscriber::set_default(told.clone());
        succeed(&b);
    }
    let lines = told.containing("circuit breaker `tr` is now");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("is now HalfOpen: recovery timeout elapsed"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("is now Closed: 1 probe(s) succeeded"),
        "{}",
        lines[1]
    );
}

#[tokio::test(start_paused = true)]
async fn an_owned_permit_knows_a_probe_and_records_an_error_for_the_listeners() {
    let b = Arc::new(CircuitBreaker::new("own", config(1, 10, 1, 1)));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = seen.clone();
    b.on_transition(move |t| {
        heard
            .lock()
            .unwrap()
            .push((t.to, t.error().map(str::to_owned)));
    });
    let call = b.try_acquire_owned().unwrap();
    assert!(!call.is_probe());
    call.record_error(Outcome::Failure, &"connection refused");
    assert_eq!(b.state(), CircuitState::Open);
    advance(Duration::from_secs(10)).await;
    let probe = b.try_acquire_owned().unwrap();
    assert!(probe.is_probe());
    probe.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (CircuitState::Open, Some("connection refused".to_owned())),
            (CircuitState::HalfOpen, None),
            (CircuitState::Closed, None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lowered_threshold_keeps_the_run_one_failure_short_of_it() {
    let b = CircuitBreaker::new("lowered", config(5, 10, 1, 1));
    for _ in 0..4 {
        fail(&b);
    }
    assert!(b.reconfigure(config(3, 10, 1, 1)));
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(
        b.status().consecutive_failures,
        2,
        "one short of the new threshold"
    );
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_owned_probe_dropped_unrecorded_frees_its_slot() {
    let b = Arc::new(CircuitBreaker::new("owned-drop", config(1, 10, 1, 1)));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let probe = b.try_acquire_owned().unwrap();
    assert!(b.try_acquire_owned().is_err(), "one probe at a time");
    drop(probe);
    let again = b.try_acquire_owned().expect("the slot was freed");
    assert!(again.is_probe());
}

#[tokio::test(start_paused = true)]
async fn breaker_call_rejects_without_running_and_flags_it() {
    let b = CircuitBreaker::new("t", config(1, 10, 1, 1));
    trip(&b);
    let flags = Flags::new();
    let ran = AtomicBool::new(false);
    let body = async {
        ran.store(true, Ordering::Relaxed);
        Ok(())
    };
    let r: Result<(), Error> = breaker_call(&b, &flags, body, every_error_fails, converter()).await;
    assert!(r.unwrap_err().is_circuit_open());
    assert!(flags.stop_retry());
    assert!(!ran.load(Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn reset_closes_an_open_breaker() {
    let b = CircuitBreaker::new("t", config(1, 3600, 1, 1));
    trip(&b);
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    succeed(&b);
    assert_eq!(b.status().retry_after, None);
}

#[tokio::test(start_paused = true)]
async fn status_reports_thresholds_and_counts() {
    let b = CircuitBreaker::new("s", config(4, 30, 2, 3));
    fail(&b);
    let s = b.status();
    assert_eq!(&*s.name, "s");
    assert_eq!(s.state, CircuitState::Closed);
    assert_eq!(
        (
            s.consecutive_failures,
            s.failure_threshold,
            s.success_threshold,
            s.half_open_max_calls
        ),
        (1, 4, 2, 3)
    );
    assert_eq!(s.recovery_timeout, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn huge_recovery_timeouts_saturate() {
    let b = CircuitBreaker::new("t", config(1, u64::MAX, 1, 1));
    trip(&b);
    advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert!(b.try_acquire().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_from_many_tasks_open_the_breaker() {
    let b = std::sync::Arc::new(CircuitBreaker::new("t", config(50, 3600, 1, 1)));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..1000 {
                    if let Ok(p) = b.try_acquire() {
                        p.record(Outcome::Failure);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_windowed_breaker_with_failures_in_its_window_is_not_pristine() {
    // What dynamic-name eviction asks: only a breaker with nothing to lose
    // may be dropped. A windowed one keeps its failures in the window, not
    // in the consecutive count.
    for window in [
        Window::Calls(std::num::NonZeroU32::new(10).unwrap()),
        Window::Time(Duration::from_secs(60)),
    ] {
        let config = BreakerConfig::builder()
            .failure_threshold(5)
            .window(window)
            .build()
            .unwrap();
        let b = CircuitBreaker::new("w", config);
        assert!(b.is_pristine(), "{window:?}: new");
        b.try_acquire().unwrap().record(Outcome::Success);
        assert!(b.is_pristine(), "{window:?}: successes only");
        b.try_acquire().unwrap().record(Outcome::Failure);
        assert!(!b.is_pristine(), "{window:?}: a failure in the window");
        b.reset();
        assert!(b.is_pristine(), "{window:?}: reset");
    }
}

#[tokio::test(start_paused = true)]
async fn debug_output_names_the_breaker_its_state_and_its_configuration() {
    let b = CircuitBreaker::new("ledger", config(1, 30, 1, 1));
    let shown = format!("{b:?}");
    assert!(
        shown.starts_with(r#"CircuitBreaker { name: "ledger", state: Closed, config: "#),
        "{shown}"
    );
    assert!(shown.ends_with(", .. }"), "{shown}");
    fail(&b);
    assert!(format!("{b:?}").contains("state: Open"));
}
