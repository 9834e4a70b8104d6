//! Stress on a multi-thread runtime: 8 tasks × 100,000 calls each through one
//! breaker, with mixed outcomes (successes, failures, timeouts, ignored
//! errors, cancelled calls, permits held across an `.await`) and a real
//! recovery timeout of 20 µs, so the breaker cycles closed → open →
//! half-open thousands of times while calls race.
//!
//! Checked inside the bodies: never more probes in flight than
//! `half_open_max_calls` (each task counts the probes it holds). Checked
//! after: the transitions form a consistent chain, every transition is backed
//! by enough recorded outcomes, no probe slot is lost, and (feature
//! `metrics`, as in `cargo test --workspace`) the breaker's own counters
//! (calls by outcome, rejections, transitions) equal the calls the tasks
//! made: no outcome lost or counted twice. Each scenario runs on its own
//! thread and must finish within [`LIMIT`]: a deadlock fails the test instead
//! of hanging it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use resilience::__private::{breaker_call, converter, Flags};
use resilience::{
    BreakerConfig, CircuitBreaker, CircuitState, Error, Outcome, TransitionCause, Window,
};

const TASKS: u64 = 8;
const CALLS: u64 = 100_000;
/// A scenario still running after this has deadlocked (or livelocked).
const LIMIT: Duration = Duration::from_secs(120);

const STATES: [CircuitState; 5] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
    CircuitState::ForcedOpen,
    CircuitState::Disabled,
];

fn index(s: CircuitState) -> usize {
    STATES.iter().position(|x| *x == s).unwrap()
}

/// What the tasks did, counted by themselves.
#[derive(Default)]
struct Tally {
    rejected: AtomicU64,
    success: AtomicU64,
    failure: AtomicU64,
    timeout: AtomicU64,
    ignored: AtomicU64,
    cancelled: AtomicU64,
    probes: AtomicU64,
    probe_successes: AtomicU64,
    probe_failures: AtomicU64,
    /// Failures (and timeouts) of calls admitted while closed.
    closed_failures: AtomicU64,
    /// Probes held right now (id, the generation that admitted them),
    /// added after admission and removed before the outcome is recorded.
    live_probes: Mutex<Vec<(u64, u32)>>,
    max_live_probes: AtomicU32,
    /// Transitions out of half-open, counted by the listener.
    half_open_exits: AtomicU64,
    /// `transitions[from][to]`, from the breaker's listener.
    transitions: [[AtomicU64; 5]; 5],
    /// `FailureThreshold` / `ProbesSucceeded` transitions reporting fewer
    /// failures or successes than the thresholds.
    short_causes: AtomicU64,
}

impl Tally {
    fn transitions(&self, from: CircuitState, to: CircuitState) -> u64 {
        self.transitions[index(from)][index(to)].load(SeqCst)
    }
}

#[derive(Debug)]
enum CallError {
    Fails,
    Ignored,
    Layer(Error),
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Layer(e)
    }
}

/// Runs `scenario` on its own thread; panics if it does not finish within
/// [`LIMIT`] and re-raises its panic if it failed.
fn bounded(scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        scenario();
        let _ = done.send(());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario ended without reporting"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the stress scenario did not finish within {LIMIT:?}: deadlock or livelock")
        }
    }
}

fn breaker(name: &str, config: BreakerConfig, tally: &Arc<Tally>) -> Arc<CircuitBreaker> {
    let breaker = Arc::new(CircuitBreaker::new(name, config));
    let t = tally.clone();
    let (failure_threshold, success_threshold) = (
        config.failure_threshold().get(),
        config.success_threshold().get(),
    );
    breaker.on_transition(move |tr| {
        t.transitions[index(tr.from)][index(tr.to)].fetch_add(1, SeqCst);
        if tr.from == CircuitState::HalfOpen {
            t.half_open_exits.fetch_add(1, SeqCst);
        }
        let short = match tr.cause {
            TransitionCause::FailureThreshold { failures } => failures < failure_threshold,
            TransitionCause::ProbesSucceeded { successes } => successes < success_threshold,
            _ => false,
        };
        if short {
            t.short_causes.fetch_add(1, SeqCst);
        }
    });
    breaker
}

/// A roll in 0..100 deciding a call's fate: below 5 cancelled, below 45 a
/// failure (or timeout), below 55 ignored, else a success. The dependency
/// is healthy for 2,000 calls, then failing for 2,000, and so on.
fn roll(rng: &mut fastrand::Rng, call: u64) -> u8 {
    let roll = rng.u8(..100);
    if (call / 2_000).is_multiple_of(2) && (5..45).contains(&roll) && rng.u8(..100) < 95 {
        60 // healthy: most failures become successes
    } else {
        roll
    }
}

/// Checks, when a probe is admitted, that at most `max` probes of its
/// half-open period (its generation) are in flight.
///
/// The breaker lets a new half-open period admit `max` probes even while
/// probes of an earlier period (whose outcomes no longer count) are still
/// held, so a plain count of held probes may exceed `max` legitimately; the
/// permits' generations tell the periods apart exactly, with no timing.
fn probe_admitted(tally: &Tally, id: u64, generation: u32, max: u32) {
    let mut live = tally.live_probes.lock().unwrap();
    live.push((id, generation));
    tally.max_live_probes.fetch_max(live.len() as u32, SeqCst);
    let same_period = live.iter().filter(|(_, g)| *g == generation).count();
    assert!(
        same_period <= max as usize,
        "{same_period} probes of one half-open period in flight, at most {max} allowed"
    );
}

/// One task's calls by hand: `try_acquire`, sometimes hold the permit across
/// an `.await`, then record, time out or cancel.
async fn raw_calls(b: Arc<CircuitBreaker>, tally: Arc<Tally>, seed: u64) {
    let max = b.config().half_open_max_calls().get();
    let mut rng = fastrand::Rng::with_seed(seed);
    for i in 0..CALLS {
        match b.try_acquire() {
            Err(e) if e.is_circuit_open() => {
                tally.rejected.fetch_add(1, SeqCst);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(permit) => {
                let probe = permit.is_probe();
                let id = (seed << 32) | i;
                if probe {
                    tally.probes.fetch_add(1, SeqCst);
                    probe_admitted(&tally, id, permit.generation(), max);
                }
                if rng.u8(..) < 24 {
                    tokio::task::yield_now().await; // a call in flight across an await
                }
                if probe {
                    tally.live_probes.lock().unwrap().retain(|p| p.0 != id);
                }
                let roll = roll(&mut rng, i);
                let failed = (5..45).contains(&roll);
                match roll {
                    0..5 => {
                        drop(permit);
                        tally.cancelled.fetch_add(1, SeqCst);
                    }
                    5..40 => {
                        permit.record(Outcome::Failure);
                        tally.failure.fetch_add(1, SeqCst);
                    }
                    40..45 => {
                        permit.record_timeout();
                        tally.timeout.fetch_add(1, SeqCst);
                    }
                    45..55 => {
                        permit.record(Outcome::Ignored);
                        tally.ignored.fetch_add(1, SeqCst);
                    }
                    _ => {
                        permit.record(Outcome::Success);
                        tally.success.fetch_add(1, SeqCst);
                    }
                }
                match (probe, failed, roll >= 55) {
                    (true, true, _) => tally.probe_failures.fetch_add(1, SeqCst),
                    (true, _, true) => tally.probe_successes.fetch_add(1, SeqCst),
                    (false, true, _) => tally.closed_failures.fetch_add(1, SeqCst),
                    _ => 0,
                };
            }
        }
        if i % 128 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// One task's calls through `__private::breaker_call`, the path the
/// attribute macros take; some bodies await before they end.
async fn wrapped_calls(b: Arc<CircuitBreaker>, tally: Arc<Tally>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let classify = |e: &CallError| match e {
        CallError::Ignored => Outcome::Ignored,
        _ => Outcome::Failure,
    };
    for i in 0..CALLS {
        let roll = roll(&mut rng, i);
        let pause = rng.u8(..) < 24;
        let flags = Flags::new();
        let body = async move {
            if pause {
                tokio::task::yield_now().await;
            }
            match roll {
                0..40 => Err(CallError::Fails),
                40..50 => Err(CallError::Ignored),
                _ => Ok(()),
            }
        };
        match breaker_call(&b, &flags, body, classify, converter()).await {
            Err(CallError::Layer(e)) if e.is_circuit_open() => &tally.rejected,
            Err(CallError::Layer(other)) => panic!("unexpected error {other}"),
            Err(CallError::Fails) => &tally.failure,
            Err(CallError::Ignored) => &tally.ignored,
            Ok(()) => &tally.success,
        }
        .fetch_add(1, SeqCst);
        if i % 128 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// Runs the tasks (`wrapped` of them through `breaker_call`) on a 4-worker
/// runtime and returns when all are done.
fn run(b: &Arc<CircuitBreaker>, tally: &Arc<Tally>, wrapped: u64) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (b, tally) = (b.clone(), tally.clone());
                if t < wrapped {
                    tokio::spawn(wrapped_calls(b, tally, t))
                } else {
                    tokio::spawn(raw_calls(b, tally, t))
                }
            })
            .collect();
        for t in tasks {
            t.await.expect("a task panicked");
        }
    });
    started.elapsed()
}

/// What holds after any run, whatever the interleaving.
fn check_common(b: &CircuitBreaker, tally: &Tally) {
    let final_state = b.state();
    for s in STATES {
        let entries: u64 = STATES.iter().map(|f| tally.transitions(*f, s)).sum();
        let exits: u64 = STATES.iter().map(|t| tally.transitions(s, *t)).sum();
        let expected = i64::from(final_state == s) - i64::from(s == CircuitState::Closed);
        assert_eq!(
            entries as i64 - exits as i64,
            expected,
            "entries into and exits from {s:?} do not chain up (now {final_state:?})"
        );
    }
    assert_eq!(b.status().probes_in_flight, 0, "a probe slot was lost");
    assert!(tally.live_probes.lock().unwrap().is_empty());
    assert_eq!(
        tally.short_causes.load(SeqCst),
        0,
        "a transition below its threshold"
    );
    let calls = tally.rejected.load(SeqCst)
        + tally.success.load(SeqCst)
        + tally.failure.load(SeqCst)
        + tally.timeout.load(SeqCst)
        + tally.ignored.load(SeqCst)
        + tally.cancelled.load(SeqCst);
    assert_eq!(calls, TASKS * CALLS, "every call ended exactly one way");
    assert!(
        tally.transitions(CircuitState::Closed, CircuitState::Open) > 10,
        "the scenario should cycle the breaker many times"
    );
    // A probe slot is given back when its generation ends: after the run the
    // breaker still admits exactly `half_open_max_calls` probes.
    let max = b.config().half_open_max_calls().get();
    b.force_open();
    b.reset();
    for _ in 0..b.config().failure_threshold().get() * 20 {
        if b.state() == CircuitState::Open {
            break;
        }
        if let Ok(p) = b.try_acquire() {
            p.record(Outcome::Failure);
        }
    }
    assert_eq!(b.state(), CircuitState::Open);
    std::thread::sleep(
        b.config()
            .recovery_timeout_max()
            .unwrap_or(b.config().recovery_timeout()),
    );
    let probes: Vec<_> = (0..max)
        .map(|_| b.try_acquire().expect("a free probe slot"))
        .collect();
    assert!(probes.iter().all(|p| p.is_probe()));
    assert!(
        b.try_acquire().is_err(),
        "more probes than half_open_max_calls"
    );
}

#[test]
fn eight_tasks_of_raw_calls_keep_every_invariant() {
    bounded(|| {
        #[cfg(feature = "metrics")]
        recorder();
        let tally = Arc::new(Tally::default());
        let config = BreakerConfig::builder()
            .failure_threshold(3)
            .recovery_timeout(Duration::from_micros(20))
            .success_threshold(2)
            .half_open_max_calls(3)
            .build()
            .unwrap();
        let b = breaker("stress-raw", config, &tally);
        let took = run(&b, &tally, 0);
        let t = &tally;
        eprintln!(
            "stress-raw: {} calls in {took:?}; {} rejected, {} probes (at most {} at once), {} openings",
            TASKS * CALLS,
            t.rejected.load(SeqCst),
            t.probes.load(SeqCst),
            t.max_live_probes.load(SeqCst),
            t.transitions(CircuitState::Closed, CircuitState::Open),
        );
        // Every transition is backed by outcomes the tasks recorded.
        assert!(
            t.transitions(CircuitState::Closed, CircuitState::Open) * 3
                <= t.closed_failures.load(SeqCst),
            "more openings than failures allow"
        );
        assert!(
            t.transitions(CircuitState::HalfOpen, CircuitState::Closed) * 2
                <= t.probe_successes.load(SeqCst),
            "more closings than probe successes allow"
        );
        assert!(
            t.transitions(CircuitState::HalfOpen, CircuitState::Open)
                <= t.probe_failures.load(SeqCst),
            "more re-openings than failed probes"
        );
        assert!(t.max_live_probes.load(SeqCst) >= 2, "probes should overlap");
        #[cfg(feature = "metrics")]
        check_metrics("stress-raw", &tally);
        check_common(&b, &tally);
    });
}

#[test]
fn eight_tasks_through_breaker_call_with_a_rate_window_keep_every_invariant() {
    bounded(|| {
        #[cfg(feature = "metrics")]
        recorder();
        let tally = Arc::new(Tally::default());
        let config = BreakerConfig::builder()
            .failure_rate(0.5)
            .min_calls(10)
            .window(Window::Calls(NonZeroU32::new(20).unwrap()))
            .recovery_timeout(Duration::from_micros(20))
            .recovery_timeout_max(Duration::from_micros(400))
            .success_threshold(3)
            .half_open_max_calls(2)
            .build()
            .unwrap();
        let b = breaker("stress-window", config, &tally);
        let took = run(&b, &tally, 4);
        eprintln!(
            "stress-window: {} calls in {took:?}; {} rejected, {} openings",
            TASKS * CALLS,
            tally.rejected.load(SeqCst),
            tally.transitions(CircuitState::Closed, CircuitState::Open),
        );
        assert!(
            tally.transitions(CircuitState::HalfOpen, CircuitState::Closed) * 3
                <= tally.success.load(SeqCst)
        );
        #[cfg(feature = "metrics")]
        check_metrics("stress-window", &tally);
        check_common(&b, &tally);
    });
}

/// The breaker's own counters equal the tasks' (feature `metrics`).
#[cfg(feature = "metrics")]
fn check_metrics(name: &str, tally: &Tally) {
    let m = |metric: &str, labels: &[(&str, &str)]| counter(name, metric, labels);
    let calls = |outcome| m("resilience_calls_total", &[("outcome", outcome)]);
    assert_eq!(calls("success"), tally.success.load(SeqCst), "successes");
    assert_eq!(calls("failure"), tally.failure.load(SeqCst), "failures");
    assert_eq!(calls("timeout"), tally.timeout.load(SeqCst), "timeouts");
    assert_eq!(calls("ignored"), tally.ignored.load(SeqCst), "ignored");
    assert_eq!(calls("rejected"), tally.rejected.load(SeqCst), "rejections");
    for from in STATES {
        for to in STATES {
            let reported = m(
                "resilience_transitions_total",
                &[("from", from.as_str()), ("to", to.as_str())],
            );
            assert_eq!(
                reported,
                tally.transitions(from, to),
                "{from:?} -> {to:?} transitions"
            );
        }
    }
}

/// The process-wide debugging recorder, installed on first use (before any
/// breaker of this file reports anything).
#[cfg(feature = "metrics")]
fn recorder() -> &'static metrics_util::debugging::Snapshotter {
    use metrics_util::debugging::{DebuggingRecorder, Snapshotter};
    static RECORDER: std::sync::OnceLock<Snapshotter> = std::sync::OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
        snapshotter
    })
}

/// Reads a counter of the process-wide debugging recorder. Reading resets
/// every counter, so all readings are summed into one table.
#[cfg(feature = "metrics")]
fn counter(breaker: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    use metrics_util::debugging::DebugValue;
    use std::sync::Mutex;

    /// (metric, sorted labels, total)
    type Totals = Vec<(String, Vec<(String, String)>, u64)>;
    static TOTALS: Mutex<Totals> = Mutex::new(Vec::new());
    let snapshotter = recorder();
    let mut totals = TOTALS.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            let key = key.key();
            let mut l: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            l.sort();
            match totals
                .iter_mut()
                .find(|(name, labels, _)| name == key.name() && *labels == l)
            {
                Some(entry) => entry.2 += n,
                None => totals.push((key.name().to_owned(), l, n)),
            }
        }
    }
    let mut want: Vec<(String, String)> = labels
        .iter()
        .chain(&[("breaker", breaker)])
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    totals
        .iter()
        .find(|(name, labels, _)| name == metric && *labels == want)
        .map_or(0, |e| e.2)
}

/// Three threads fail calls through one consecutive-count breaker at once.
/// Every round, the circuit opens once and reports exactly the threshold:
/// failures that land past it (another thread's, before the state changed)
/// never change the count that opened it.
#[test]
fn the_count_that_opened_a_circuit_is_exactly_the_threshold() {
    const THREADS: u32 = 3;
    const THRESHOLD: u32 = 300;
    const ROUNDS: u32 = 300;
    bounded(|| {
        let config = BreakerConfig::builder()
            .failure_threshold(THRESHOLD)
            .recovery_timeout(Duration::from_secs(3600))
            .build()
            .unwrap();
        let breaker = Arc::new(CircuitBreaker::new("overshoot", config));
        let reported = Arc::new(Mutex::new(Vec::new()));
        {
            let reported = reported.clone();
            breaker.on_transition(move |t| {
                if t.to == CircuitState::Open {
                    reported.lock().unwrap().push(t.failures);
                }
            });
        }
        let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize));
        for round in 0..ROUNDS {
            breaker.reset();
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (breaker, barrier) = (breaker.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        for _ in 0..THRESHOLD {
                            if let Ok(permit) = breaker.try_acquire() {
                                permit.record(Outcome::Failure);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(breaker.state(), CircuitState::Open, "round {round}");
            let status = breaker.status();
            assert_eq!(
                status.consecutive_failures, THRESHOLD,
                "round {round}: status shows the count that opened the circuit"
            );
            let reported = std::mem::take(&mut *reported.lock().unwrap());
            assert_eq!(
                reported,
                [THRESHOLD],
                "round {round}: one opening, reporting exactly the threshold"
            );
        }
    });
}
