//! The calling loop, and what the node records of its calls and transitions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use resilience::{CircuitBreaker, CircuitState, Outcome, Transition, TransitionCause};

use crate::histogram::Histogram;

/// How often every breaker is called.
const ROUND: Duration = Duration::from_millis(5);

fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The last transition of one breaker here.
#[derive(Clone, Copy, Default)]
pub(crate) struct Change {
    /// Unix µs; 0: none.
    pub(crate) at_us: u64,
    pub(crate) state: Option<CircuitState>,
    pub(crate) fleet: bool,
}

/// Everything the call loop, the transition listener and the command loop
/// share (leaked: it lives as long as the process, and a probe's permit can
/// be held by a task of its own).
pub(crate) struct Node {
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) index: HashMap<Arc<str>, usize>,
    pub(crate) breakers: Vec<Arc<CircuitBreaker>>,
    /// Whether each breaker's dependency is down.
    pub(crate) down: Vec<AtomicBool>,
    /// Whether this instance holds each breaker's half-open probe now.
    pub(crate) probing: Vec<AtomicBool>,
    /// How each breaker's first call went: 0 none yet, or `a`, `p`, `r`.
    pub(crate) first: Vec<AtomicU8>,
    /// The last transition of each breaker, and its last closed → open one.
    pub(crate) changes: Mutex<Vec<(Change, Change)>>,
    pub(crate) transitions: AtomicU64,
    pub(crate) local_transitions: AtomicU64,
    pub(crate) calls: AtomicU64,
    pub(crate) probes: AtomicU64,
    /// Probes per breaker.
    pub(crate) probes_of: Vec<AtomicU64>,
    pub(crate) latency: Histogram,
    /// The longest time between the starts of two rounds of calls (ns).
    pub(crate) gap: AtomicU64,
    pub(crate) probe: Duration,
}

impl Node {
    pub(crate) fn on_transition(&self, t: &Transition) {
        let Some(&i) = self.index.get(t.name()) else {
            return;
        };
        let change = Change {
            at_us: unix_us_now(),
            state: Some(t.to()),
            fleet: t.cause() == TransitionCause::Fleet,
        };
        self.transitions.fetch_add(1, Relaxed);
        if !change.fleet {
            self.local_transitions.fetch_add(1, Relaxed);
        }
        let mut changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        changes[i].0 = change;
        if t.from() == CircuitState::Closed && t.to() == CircuitState::Open {
            changes[i].1 = change;
        }
    }

    fn outcome(&self, i: usize) -> Outcome {
        if self.down[i].load(Relaxed) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }

    /// One call through breaker `i`.
    fn call(&'static self, i: usize) {
        let outcome = self.outcome(i);
        let started = Instant::now();
        let acquired = self.breakers[i].try_acquire();
        self.calls.fetch_add(1, Relaxed);
        let first = match acquired {
            Ok(permit) if permit.is_probe() => {
                let acquiring = started.elapsed();
                self.probes.fetch_add(1, Relaxed);
                self.probes_of[i].fetch_add(1, Relaxed);
                self.probing[i].store(true, Relaxed);
                let probe = self.probe;
                tokio::spawn(async move {
                    tokio::time::sleep(probe).await;
                    let outcome = self.outcome(i);
                    let recording = Instant::now();
                    permit.record(outcome);
                    self.latency.add(acquiring + recording.elapsed());
                    self.probing[i].store(false, Relaxed);
                });
                b'p'
            }
            Ok(permit) => {
                permit.record(outcome);
                self.latency.add(started.elapsed());
                b'a'
            }
            Err(_) => {
                self.latency.add(started.elapsed());
                b'r'
            }
        };
        if self.first[i].load(Relaxed) == 0 {
            let _ = self.first[i].compare_exchange(0, first, Relaxed, Relaxed);
        }
    }

    /// Calls every breaker every [`ROUND`], forever.
    pub(crate) async fn call_loop(&'static self) {
        let mut tick = tokio::time::interval(ROUND);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            if let Some(last) = last {
                let gap = u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX);
                self.gap.fetch_max(gap, Relaxed);
            }
            last = Some(now);
            for i in 0..self.breakers.len() {
                self.call(i);
            }
        }
    }
}
