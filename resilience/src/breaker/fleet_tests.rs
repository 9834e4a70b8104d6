//! What the fleet sync does to a breaker (`fleet.rs`), without Redis: the
//! probe gate, states applied from elsewhere, a breaker started in the
//! fleet's state, and the failures handed over to the fleet. On the paused
//! tokio clock; every boundary is tested on both sides, to the nanosecond.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::advance;

use super::fleet::FleetReport;
use super::tests::{fail, succeed, trip};
use super::*;

const NS: Duration = Duration::from_nanos(1);

fn config(failures: u32, recovery_secs: u64, probes: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(failures)
        .recovery_timeout(Duration::from_secs(recovery_secs))
        .success_threshold(1)
        .half_open_max_calls(probes)
        .build()
        .unwrap()
}

/// A breaker of a connected fleet: its probes wait for the fleet's lease.
fn gated(config: BreakerConfig) -> CircuitBreaker {
    let b = CircuitBreaker::new("t", config);
    b.set_fleet_gated(true);
    b
}

/// The causes of the transitions `b` reports, in order.
fn causes(b: &CircuitBreaker) -> Arc<Mutex<Vec<TransitionCause>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    b.on_transition(move |t| into.lock().unwrap().push(t.cause));
    seen
}

fn rejected(b: &CircuitBreaker) -> bool {
    match b.try_acquire() {
        Err(e) => e.is_circuit_open(),
        Ok(_) => false,
    }
}

// The probe gate: `waiting_for_probe_grant`, `grant_probe`, and the gate in
// `try_acquire`.

#[tokio::test(start_paused = true)]
async fn a_breaker_that_is_not_open_never_waits_for_a_grant() {
    let b = gated(config(1, 10, 1));
    advance(Duration::from_secs(3600)).await;
    assert_eq!(b.waiting_for_probe_grant(), None, "closed");

    trip(&b);
    advance(Duration::from_secs(10)).await;
    b.grant_probe(1);
    let probe = b.try_acquire().expect("the granted probe");
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(b.waiting_for_probe_grant(), None, "half-open");
    drop(probe);

    // Forced open and disabled: no open time (it was left in the past), no
    // grant, gated; still nothing to wait for.
    b.force_open();
    advance(Duration::from_secs(3600)).await;
    assert_eq!(b.waiting_for_probe_grant(), None, "forced open");
    b.disable();
    assert_eq!(b.waiting_for_probe_grant(), None, "disabled");
}

#[tokio::test(start_paused = true)]
async fn an_ungated_breaker_never_waits_and_probes_on_its_own() {
    let b = CircuitBreaker::new("t", config(1, 10, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.waiting_for_probe_grant(), None);
    assert!(b
        .try_acquire()
        .expect("a probe, no lease needed")
        .is_probe());

    // Gated, then ungated again (the fleet's connection was lost).
    let b = gated(config(1, 10, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(1));
    b.set_fleet_gated(false);
    assert_eq!(b.waiting_for_probe_grant(), None);
    assert!(b.try_acquire().expect("a probe").is_probe());
}

#[tokio::test(start_paused = true)]
async fn an_open_gated_breaker_waits_from_the_end_of_its_open_time_on() {
    let b = gated(config(1, 10, 1));
    trip(&b);
    advance(Duration::from_secs(10) - NS).await;
    assert_eq!(b.waiting_for_probe_grant(), None, "a nanosecond early");
    assert!(rejected(&b));
    advance(NS).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(1), "exactly on time");
    assert!(rejected(&b), "no probe without the lease");
    // Polled late, it still waits (and still for the same opening).
    advance(Duration::from_secs(3600)).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(1), "an hour late");
    assert!(rejected(&b));
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_grant_ends_the_wait_and_admits_exactly_the_probes() {
    let b = gated(config(1, 10, 2));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(1));
    b.grant_probe(1);
    assert_eq!(b.waiting_for_probe_grant(), None);
    assert_eq!(
        b.state(),
        CircuitState::Open,
        "the grant alone moves nothing"
    );
    let p1 = b.try_acquire().expect("first probe");
    let p2 = b.try_acquire().expect("second probe");
    assert!(p1.is_probe() && p2.is_probe());
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(rejected(&b), "half_open_max_calls = 2");
    p1.record(Outcome::Success);
    assert_eq!(b.state(), CircuitState::Closed);
    drop(p2);
}

#[tokio::test(start_paused = true)]
async fn a_grant_for_an_older_opening_does_not_open_a_newer_one() {
    let b = gated(config(1, 10, 1));
    trip(&b);
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(1));
    b.grant_probe(1);
    let probe = b.try_acquire().expect("the granted probe");
    probe.record(Outcome::Failure);
    // Re-opened: generation 3 (1 open, 2 half-open, 3 open again).
    assert_eq!(b.load(), (3, CircuitState::Open));
    let open_for = b.status().retry_after.expect("open");
    advance(open_for - NS).await;
    assert_eq!(b.waiting_for_probe_grant(), None, "not due yet");
    advance(NS).await;
    assert_eq!(b.waiting_for_probe_grant(), Some(3));
    assert!(rejected(&b), "generation 1's grant is spent");
    // Neither the old opening's grant nor the half-open one's counts.
    b.grant_probe(1);
    b.grant_probe(2);
    assert_eq!(b.waiting_for_probe_grant(), Some(3));
    assert!(rejected(&b));
    b.grant_probe(3);
    assert_eq!(b.waiting_for_probe_grant(), None);
    assert!(b.try_acquire().expect("the new grant").is_probe());
}

#[tokio::test(start_paused = true)]
async fn a_grant_given_early_is_used_once_the_open_time_is_up() {
    let b = gated(config(1, 10, 1));
    trip(&b);
    b.grant_probe(1);
    assert_eq!(b.waiting_for_probe_grant(), None);
    advance(Duration::from_secs(10) - NS).await;
    assert!(rejected(&b), "the grant does not shorten the open time");
    advance(NS).await;
    assert!(b.try_acquire().expect("granted and due").is_probe());
}

// States decided elsewhere: `apply_fleet`.

#[tokio::test(start_paused = true)]
async fn apply_fleet_opens_for_the_fleets_time() {
    let b = CircuitBreaker::new("t", config(5, 60, 1));
    let seen = causes(&b);
    assert!(b.apply_fleet(CircuitState::Open, Some(Duration::from_secs(30))));
    assert_eq!(b.load(), (1, CircuitState::Open));
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(30)));
    advance(Duration::from_secs(30) - NS).await;
    assert!(rejected(&b));
    advance(NS).await;
    assert!(b.try_acquire().expect("the fleet's time is up").is_probe());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            TransitionCause::Fleet,
            TransitionCause::RecoveryTimeoutElapsed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn apply_fleet_on_an_open_breaker_adopts_the_fleets_time_only() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    trip(&b);
    let seen = causes(&b);
    advance(Duration::from_secs(10)).await;
    assert!(!b.apply_fleet(CircuitState::Open, Some(Duration::from_secs(5))));
    assert_eq!(b.load(), (1, CircuitState::Open), "no transition");
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(5)));
    // Later than its own time, too.
    assert!(!b.apply_fleet(CircuitState::Open, Some(Duration::from_secs(90))));
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(90)));
    assert!(!b.apply_fleet(CircuitState::Open, Some(Duration::from_secs(5))));
    advance(Duration::from_secs(5) - NS).await;
    assert!(rejected(&b));
    advance(NS).await;
    assert!(b.try_acquire().expect("due").is_probe());
    assert_eq!(
        *seen.lock().unwrap(),
        [TransitionCause::RecoveryTimeoutElapsed]
    );
}

#[tokio::test(start_paused = true)]
async fn apply_fleet_opens_a_half_open_breaker_for_the_fleets_time() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    trip(&b);
    advance(Duration::from_secs(60)).await;
    let probe = b.try_acquire().expect("probe");
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(b.apply_fleet(CircuitState::Open, Some(Duration::from_secs(7))));
    assert_eq!(b.load(), (3, CircuitState::Open));
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(7)));
    probe.record(Outcome::Success); // stale: changes nothing
    assert_eq!(b.load(), (3, CircuitState::Open));
}

#[tokio::test(start_paused = true)]
async fn apply_fleet_changes_other_states_once() {
    let b = CircuitBreaker::new("t", config(5, 60, 1));
    let seen = causes(&b);
    assert!(!b.apply_fleet(CircuitState::Closed, None), "already closed");
    assert_eq!(b.load(), (0, CircuitState::Closed));
    assert!(b.apply_fleet(CircuitState::HalfOpen, None));
    assert_eq!(b.load(), (1, CircuitState::HalfOpen));
    assert!(!b.apply_fleet(CircuitState::HalfOpen, None));
    assert_eq!(b.load(), (1, CircuitState::HalfOpen));
    assert!(b.apply_fleet(CircuitState::Closed, None));
    assert_eq!(b.load(), (2, CircuitState::Closed));
    // Open without the fleet's time: its own recovery timeout.
    assert!(b.apply_fleet(CircuitState::Open, None));
    assert_eq!(b.load(), (3, CircuitState::Open));
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(60)));
    assert!(!b.apply_fleet(CircuitState::Open, None));
    assert_eq!(b.load(), (3, CircuitState::Open));
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|c| *c == TransitionCause::Fleet));
}

// A breaker created in the fleet's state: `start_in_fleet_state`.

#[tokio::test(start_paused = true)]
async fn a_breaker_started_closed_is_a_new_breaker() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    b.start_in_fleet_state(CircuitState::Closed, Duration::from_secs(30));
    assert_eq!(b.load(), (0, CircuitState::Closed));
    assert!(b.is_pristine());
    assert_eq!(b.status().retry_after, None);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_started_open_rejects_for_the_fleets_time() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    let seen = causes(&b);
    b.start_in_fleet_state(CircuitState::Open, Duration::from_secs(30));
    assert_eq!(b.load(), (1, CircuitState::Open));
    let err = b.try_acquire().unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    advance(Duration::from_secs(30) - NS).await;
    assert!(rejected(&b));
    advance(NS).await;
    assert!(b.try_acquire().expect("due").is_probe());
    assert_eq!(
        *seen.lock().unwrap(),
        [TransitionCause::RecoveryTimeoutElapsed],
        "starting open is no transition"
    );
}

#[tokio::test(start_paused = true)]
async fn a_breaker_started_half_open_is_open_here() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    b.start_in_fleet_state(CircuitState::HalfOpen, Duration::from_secs(30));
    assert_eq!(b.load(), (1, CircuitState::Open));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(30))
    );
}

#[tokio::test(start_paused = true)]
async fn a_breaker_started_forced_open_or_disabled_stays_so() {
    let b = CircuitBreaker::new("t", config(1, 60, 1));
    b.start_in_fleet_state(CircuitState::ForcedOpen, Duration::from_secs(30));
    assert_eq!(b.load(), (1, CircuitState::ForcedOpen));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), None);
    advance(Duration::from_secs(3600)).await;
    assert!(rejected(&b));

    let b = CircuitBreaker::new("t", config(1, 60, 1));
    b.start_in_fleet_state(CircuitState::Disabled, Duration::from_secs(30));
    assert_eq!(b.load(), (1, CircuitState::Disabled));
    fail(&b);
    assert_eq!(b.state(), CircuitState::Disabled);
}

// Failures counted by the fleet: `open_for_fleet_failures`.

#[tokio::test(start_paused = true)]
async fn the_fleets_failures_open_only_a_closed_breaker() {
    let b = CircuitBreaker::new("t", config(5, 60, 1));
    let seen = causes(&b);
    assert!(b.open_for_fleet_failures(7));
    assert_eq!(b.load(), (1, CircuitState::Open));
    assert_eq!(b.status().retry_after, Some(Duration::from_secs(60)));
    assert!(!b.open_for_fleet_failures(7), "already open");
    assert_eq!(b.load(), (1, CircuitState::Open));
    b.disable();
    assert!(!b.open_for_fleet_failures(7), "disabled");
    assert_eq!(b.state(), CircuitState::Disabled);
    b.force_open();
    assert!(!b.open_for_fleet_failures(7), "forced open");
    assert_eq!(b.state(), CircuitState::ForcedOpen);
    assert_eq!(
        seen.lock().unwrap()[0],
        TransitionCause::FleetFailures { failures: 7 }
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

// Failures handed over to the fleet: `take_fleet_report`.

fn counted(failures: u32) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .failure_threshold(failures)
        .fleet_threshold(3)
        .build()
        .unwrap();
    CircuitBreaker::new("t", config)
}

fn report(success: bool, failures: u32) -> FleetReport {
    FleetReport { success, failures }
}

#[tokio::test(start_paused = true)]
async fn the_fleet_report_hands_over_each_count_once() {
    let b = counted(5);
    assert_eq!(b.take_fleet_report(), report(false, 0));
    fail(&b);
    fail(&b);
    assert_eq!(b.take_fleet_report(), report(false, 2));
    assert_eq!(b.take_fleet_report(), report(false, 0), "taken");
    succeed(&b);
    assert_eq!(b.take_fleet_report(), report(true, 0));
    succeed(&b);
    fail(&b);
    assert_eq!(b.take_fleet_report(), report(true, 1));
    fail(&b);
    fail(&b);
    succeed(&b);
    assert_eq!(b.take_fleet_report(), report(true, 0), "the run was broken");
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_fleet_report_drops_counts_of_an_older_generation() {
    let b = counted(5);
    fail(&b);
    fail(&b);
    b.reset(); // closed again, in generation 1
    assert_eq!(b.load(), (1, CircuitState::Closed));
    assert_eq!(Tagged(b.fleet_report.load(Ordering::Acquire)).value(), 2);
    assert_eq!(b.take_fleet_report(), report(false, 0));

    // The failure that opened the breaker is not reported either.
    let b = counted(1);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.take_fleet_report(), report(false, 0));
}

#[tokio::test(start_paused = true)]
async fn calls_from_before_the_fleet_counted_are_not_reported() {
    let b = CircuitBreaker::new("t", config(5, 10, 1));
    succeed(&b);
    fail(&b);
    fail(&b);
    assert!(
        b.reconfigure(*counted(5).config()),
        "now with a fleet_threshold"
    );
    assert_eq!(b.take_fleet_report(), report(false, 0));
    fail(&b);
    assert_eq!(b.take_fleet_report(), report(false, 1));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_breaker_reports_nothing_to_the_fleet() {
    let b = counted(5);
    b.disable();
    fail(&b);
    fail(&b);
    // Counted in the disabled state's own generation...
    assert_eq!(b.fleet_report.load(Ordering::Acquire), Tagged::new(1, 2).0);
    // ...but only a closed breaker reports.
    assert_eq!(b.take_fleet_report(), report(false, 0));
}
