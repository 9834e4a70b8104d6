//! loom model checks of the breaker's atomic core: every interleaving (up to
//! a preemption bound) of a few threads admitting calls, recording outcomes
//! and changing the state by hand.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p resilience --test loom --release
//! ```
//!
//! (`.ci/loom` runs exactly that.) Built with `--cfg loom`, the breaker's
//! atomics and its transition mutex are loom's (`src/sync.rs`) and its clock
//! is a counter that moves 1 ns per read, since loom cannot model tokio's: with
//! the `recovery_timeout` of 1 ns used here an open breaker is due at the next
//! read, so time never decides anything and every schedule is reproducible.
//!
//! What is checked: admission and the half-open probe limit (also across a
//! re-open, the regression of a lost probe count), that outcomes of an older
//! generation never count, and transitions racing with outcomes and with
//! `reset`, `force_open` and `disable`. After every interleaving the
//! transitions reported form a consistent chain and no probe slot is lost.
#![cfg(loom)]

use std::sync::Mutex;
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use resilience::{BreakerConfig, CircuitBreaker, CircuitState, Outcome, Window};

type Log = Arc<Mutex<Vec<(CircuitState, CircuitState)>>>;

const STATES: [CircuitState; 5] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
    CircuitState::ForcedOpen,
    CircuitState::Disabled,
];

fn config(failures: u32, successes: u32, probes: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(failures)
        .recovery_timeout(Duration::from_nanos(1))
        .success_threshold(successes)
        .half_open_max_calls(probes)
        .build()
        .unwrap()
}

/// A breaker whose transitions are logged (the listener does no loom
/// operation, so it cannot be preempted while holding the log's lock).
fn logged(config: BreakerConfig) -> (Arc<CircuitBreaker>, Log) {
    let breaker = Arc::new(CircuitBreaker::new("loom", config));
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    breaker.on_transition(move |t| sink.lock().unwrap().push((t.from, t.to)));
    (breaker, log)
}

fn trip(b: &CircuitBreaker) {
    for _ in 0..b.config().failure_threshold().get() {
        b.try_acquire().unwrap().record(Outcome::Failure);
    }
    assert_eq!(b.state(), CircuitState::Open);
}

/// Listeners run after the transition, so their order may differ from the
/// transitions' order; but for every state, entries minus exits must be what
/// the final state says. Returns the transitions.
fn check_chain(b: &CircuitBreaker, log: &Log) -> Vec<(CircuitState, CircuitState)> {
    let log = log.lock().unwrap().clone();
    let last = b.state();
    for s in STATES {
        let entries = log.iter().filter(|(_, to)| *to == s).count() as i64;
        let exits = log.iter().filter(|(from, _)| *from == s).count() as i64;
        let expected = i64::from(last == s) - i64::from(s == CircuitState::Closed);
        assert_eq!(entries - exits, expected, "{s:?} in {log:?}, now {last:?}");
    }
    assert_eq!(b.status().probes_in_flight, 0, "a probe slot was lost");
    log
}

fn count(log: &[(CircuitState, CircuitState)], from: CircuitState, to: CircuitState) -> usize {
    log.iter().filter(|t| **t == (from, to)).count()
}

/// A probe held while counted in `live`: counted after it was admitted and
/// uncounted before it is given back, so `live` never exceeds the probes the
/// breaker really has in flight.
fn hold_probe(live: &AtomicUsize, max: usize) {
    let n = live.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(n <= max, "{n} probes in flight, at most {max} allowed");
    live.fetch_sub(1, Ordering::SeqCst);
}

#[test]
fn failures_racing_to_the_threshold_open_the_circuit_once() {
    loom::model(|| {
        let (b, log) = logged(config(2, 1, 1));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire().unwrap().record(Outcome::Failure))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.status().consecutive_failures, 2);
        let log = check_chain(&b, &log);
        assert_eq!(log, [(CircuitState::Closed, CircuitState::Open)]);
    });
}

#[test]
fn a_success_racing_with_the_opening_failure_is_one_or_the_other() {
    loom::model(|| {
        let (b, log) = logged(config(2, 1, 1));
        b.try_acquire().unwrap().record(Outcome::Failure);
        let fails = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire().unwrap().record(Outcome::Failure))
        };
        let succeeds = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire().unwrap().record(Outcome::Success))
        };
        fails.join().unwrap();
        succeeds.join().unwrap();
        let log = check_chain(&b, &log);
        let reclosed = count(&log, CircuitState::HalfOpen, CircuitState::Closed) == 1;
        match b.state() {
            // The failure came second and opened it: the run shown is the
            // one that reached the threshold, whenever the success landed.
            CircuitState::Open => assert_eq!(b.status().consecutive_failures, 2),
            // The success was admitted after the opening failure, as the
            // probe (the breaker is due at once) that closed it again.
            CircuitState::Closed if reclosed => assert_eq!(b.status().consecutive_failures, 0),
            // The success came first and broke the run.
            CircuitState::Closed => assert_eq!(b.status().consecutive_failures, 1),
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn probe_limit(max: u32, threads: usize) {
    loom::model(move || {
        let (b, log) = logged(config(1, 1, max));
        trip(&b);
        let live = Arc::new(AtomicUsize::new(0));
        let admitted = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (b, live, admitted) = (b.clone(), live.clone(), admitted.clone());
                thread::spawn(move || {
                    if let Ok(probe) = b.try_acquire() {
                        assert!(probe.is_probe());
                        admitted.fetch_add(1, Ordering::SeqCst);
                        hold_probe(&live, max as usize);
                        drop(probe); // cancelled: the slot comes back
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(admitted.load(Ordering::SeqCst) >= max.min(threads as u32) as usize);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let log = check_chain(&b, &log);
        assert_eq!(count(&log, CircuitState::Open, CircuitState::HalfOpen), 1);
        // Every slot came back: `max` new probes fit.
        let again: Vec<_> = (0..max).map(|_| b.try_acquire().unwrap()).collect();
        assert!(b.try_acquire().is_err());
        drop(again);
    });
}

#[test]
fn half_open_admits_one_probe_of_two_callers() {
    probe_limit(1, 2);
}

#[test]
fn half_open_admits_two_probes_of_three_callers() {
    probe_limit(2, 3);
}

/// Regression: a caller that read "half-open, generation g" could take its
/// slot after the breaker had re-opened and turned half-open again (g + 2),
/// overwriting the new generation's probe count, and then be admitted as a
/// second probe while another was in flight.
#[test]
fn probes_never_outnumber_the_limit_across_a_reopen() {
    loom::model(|| {
        let (b, log) = logged(config(1, 1, 1));
        trip(&b);
        let live = Arc::new(AtomicUsize::new(0));
        let reprobe = {
            let (b, live) = (b.clone(), live.clone());
            thread::spawn(move || {
                // Probe, fail (re-open), probe again once due.
                for _ in 0..2 {
                    if let Ok(probe) = b.try_acquire() {
                        hold_probe(&live, 1);
                        probe.record(Outcome::Failure);
                    }
                }
            })
        };
        let other = {
            let (b, live) = (b.clone(), live.clone());
            thread::spawn(move || {
                if let Ok(probe) = b.try_acquire() {
                    hold_probe(&live, 1);
                    drop(probe);
                }
            })
        };
        reprobe.join().unwrap();
        other.join().unwrap();
        check_chain(&b, &log);
    });
}

#[test]
fn a_stale_outcome_never_counts() {
    loom::model(|| {
        let (b, log) = logged(config(1, 1, 1));
        let call = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(permit) = b.try_acquire() {
                    permit.record(Outcome::Failure);
                }
            })
        };
        let reset = {
            let b = b.clone();
            thread::spawn(move || b.reset())
        };
        call.join().unwrap();
        reset.join().unwrap();
        check_chain(&b, &log);
        // Either the failure counted (admitted after the reset: open with a
        // run of 1), or it did not survive the reset.
        let status = b.status();
        match status.state {
            CircuitState::Open => assert_eq!(status.consecutive_failures, 1),
            CircuitState::Closed => assert_eq!(status.consecutive_failures, 0),
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn a_probe_outcome_racing_with_reset_leaves_it_closed() {
    loom::model(|| {
        let (b, log) = logged(config(1, 1, 1));
        trip(&b);
        let probe = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(permit) = b.try_acquire() {
                    permit.record(Outcome::Success);
                }
            })
        };
        let reset = {
            let b = b.clone();
            thread::spawn(move || b.reset())
        };
        probe.join().unwrap();
        reset.join().unwrap();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.status().consecutive_failures, 0);
        check_chain(&b, &log);
    });
}

#[test]
fn probe_outcomes_racing_never_close_without_enough_successes() {
    loom::model(|| {
        let (b, log) = logged(config(1, 2, 2));
        trip(&b);
        let handles: Vec<_> = [Outcome::Success, Outcome::Failure]
            .into_iter()
            .map(|outcome| {
                let b = b.clone();
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire() {
                        assert!(permit.is_probe());
                        permit.record(outcome);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = check_chain(&b, &log);
        assert_eq!(count(&log, CircuitState::HalfOpen, CircuitState::Closed), 0);
        assert!(matches!(
            b.state(),
            CircuitState::Open | CircuitState::HalfOpen
        ));
    });
}

fn manual_wins(manual: fn(&CircuitBreaker), expected: CircuitState) {
    loom::model(move || {
        let (b, log) = logged(config(1, 1, 1));
        let call = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(permit) = b.try_acquire() {
                    permit.record(Outcome::Failure);
                }
            })
        };
        let control = {
            let b = b.clone();
            thread::spawn(move || manual(&b))
        };
        call.join().unwrap();
        control.join().unwrap();
        assert_eq!(b.state(), expected);
        check_chain(&b, &log);
    });
}

#[test]
fn force_open_wins_over_a_racing_failure() {
    manual_wins(CircuitBreaker::force_open, CircuitState::ForcedOpen);
}

#[test]
fn disable_wins_over_a_racing_failure() {
    manual_wins(CircuitBreaker::disable, CircuitState::Disabled);
}

#[test]
fn count_window_failures_racing_open_the_circuit_once() {
    loom::model(|| {
        let config = BreakerConfig::builder()
            .failure_threshold(2)
            .window(Window::Calls(std::num::NonZeroU32::new(2).unwrap()))
            .recovery_timeout(Duration::from_nanos(1))
            .build()
            .unwrap();
        let (b, log) = logged(config);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire().unwrap().record(Outcome::Failure))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.state(), CircuitState::Open);
        let status = b.status();
        assert_eq!((status.window_calls, status.window_failures), (2, 2));
        let log = check_chain(&b, &log);
        assert_eq!(log, [(CircuitState::Closed, CircuitState::Open)]);
    });
}
