//! Our circuit breaker and retry against the peers, measured in one run.
//!
//! ```text
//! cargo bench -p resilience-bench --bench peers
//! ```
//!
//! prints one markdown table (progress goes to stderr). `benches/RESULTS.md`
//! holds a recorded run and its analysis.
//!
//! # The harness
//!
//! - Every call is a future polled on a no-op waker ([`run`]): all the futures
//!   here complete on their first poll, so there is no executor cost to hide
//!   the breakers' own. The bare baseline goes through the same [`run`].
//! - A counting `#[global_allocator]` (a thread-local counter in front of
//!   `System`) gives allocations per call.
//! - Each row is warmed up and calibrated, then timed [`RUNS`] times over the
//!   same iteration count (10^6 to 10^7 calls, fewer for whole breaker cycles);
//!   the best run is reported.
//! - Every timed loop checks every call's outcome (success, the body's error,
//!   or the library's rejection) and asserts the count at the end, so a row
//!   whose breaker is misconfigured cannot report a fast time. The half-open
//!   cycles are also checked state by state before timing ([`verify_cycles`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use failsafe::futures::CircuitBreaker as _;
use resilience::{
    circuit_breaker, registry, BreakerConfig, CircuitBreaker, CircuitState, Outcome, Window,
};
use tower::{Service, ServiceExt};

mod common;
use common::*;
use tower_resilience::circuitbreaker::{
    CircuitBreakerConfigBuilder, CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer,
    CircuitState as TowerState, DefaultClassifier,
};

// ---------------------------------------------------------------------------
// Allocation counting
// ---------------------------------------------------------------------------

thread_local! {
    /// Allocations (alloc, alloc_zeroed, realloc) made by this thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Polls of [`run`] that returned `Pending` on this thread.
    static PENDING: Cell<u64> = const { Cell::new(0) };
}

struct CountingAlloc;

#[inline]
fn count_alloc() {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

fn pendings() -> u64 {
    PENDING.with(Cell::get)
}

// ---------------------------------------------------------------------------
// The executor: poll on a no-op waker
// ---------------------------------------------------------------------------

/// Polls `future` to completion on a no-op waker, on this thread.
///
/// Every future of the single-thread rows is ready on its first poll (the
/// harness asserts no `Pending` was seen). Under two-thread contention a peer
/// built on `tokio::sync::Mutex` can return `Pending`; it is then re-polled at
/// once (a spinning executor), which is the cheapest way to wait for it.
#[inline(always)]
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        pending();
    }
}

#[cold]
#[inline(never)]
fn pending() {
    PENDING.with(|n| n.set(n.get() + 1));
    std::hint::spin_loop();
}

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

/// Timed runs per row; the best is reported.
const RUNS: usize = 5;
/// How long one timed run should take; the iteration count is derived from it.
const RUN_TARGET: Duration = Duration::from_millis(200);
/// Iterations of one timed run, for rows of single calls.
const CALLS: (u64, u64) = (1_000_000, 10_000_000);
/// Iterations of one timed run, for rows of whole breaker cycles (2-4 calls each).
const CYCLES: (u64, u64) = (100_000, 2_000_000);

#[derive(Clone, Copy, Debug)]
struct Measured {
    /// Nanoseconds per operation (best run); for two threads, wall time per
    /// call of the aggregate.
    ns: f64,
    /// Allocations per operation, over all timed runs.
    allocs: f64,
}

#[inline(never)]
fn timed_loop(iters: u64, op: &mut impl FnMut(u64) -> bool) -> u64 {
    let mut ok = 0u64;
    for i in 0..iters {
        ok += u64::from(op(black_box(i)));
    }
    ok
}

fn check(label: &str, ok: u64, iters: u64) {
    assert_eq!(
        ok,
        iters,
        "{label}: {} of {iters} operations had an unexpected outcome",
        iters - ok
    );
}

/// Measures `op` (one call or one cycle per invocation; it returns whether the
/// outcome was the expected one) on this thread.
fn measure(label: &str, (min, max): (u64, u64), mut op: impl FnMut(u64) -> bool) -> Measured {
    eprint!("  {label:<58}");
    let pending_before = pendings();
    // Warm-up, which also calibrates the iteration count.
    let calibration = 20_000;
    let start = Instant::now();
    check(label, timed_loop(calibration, &mut op), calibration);
    let per_op = start.elapsed().as_secs_f64() / calibration as f64;
    let iters = ((RUN_TARGET.as_secs_f64() / per_op) as u64).clamp(min, max);

    let allocs_before = allocs();
    let mut best = f64::INFINITY;
    for _ in 0..RUNS {
        let start = Instant::now();
        let ok = timed_loop(iters, &mut op);
        let elapsed = start.elapsed().as_secs_f64();
        check(label, ok, iters);
        best = best.min(elapsed);
    }
    let allocated = allocs() - allocs_before;
    assert_eq!(
        pendings(),
        pending_before,
        "{label}: a future returned Pending on a single thread"
    );
    let m = Measured {
        ns: best * 1e9 / iters as f64,
        allocs: allocated as f64 / (iters * RUNS as u64) as f64,
    };
    eprintln!(
        "{:>9.2} ns {:>6.2} allocs ({iters} x {RUNS})",
        m.ns, m.allocs
    );
    m
}

/// Two threads, each with its own `make()` handle on one shared breaker, each
/// making the same number of calls; reports the aggregate.
fn two_threads<T>(
    label: &str,
    make: impl Fn() -> T + Sync,
    op: impl Fn(&mut T, u64) -> bool + Sync,
) -> Measured {
    eprint!("  {label:<58}");
    let once = |iters: u64| -> (f64, u64) {
        let barrier = Barrier::new(2);
        let results: Vec<(Instant, Instant, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut handle = make();
                        let mut call = |i| op(&mut handle, i);
                        // Per-thread warm-up (thread-local caches, first calls).
                        check(label, timed_loop(10_000, &mut call), 10_000);
                        barrier.wait();
                        let allocs_before = allocs();
                        let start = Instant::now();
                        let ok = timed_loop(iters, &mut call);
                        let end = Instant::now();
                        let allocated = allocs() - allocs_before;
                        check(label, ok, iters);
                        (start, end, ok, allocated)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let start = results.iter().map(|r| r.0).min().unwrap();
        let end = results.iter().map(|r| r.1).max().unwrap();
        let allocated = results.iter().map(|r| r.3).sum();
        ((end - start).as_secs_f64(), allocated)
    };
    let calibration = 50_000;
    let (secs, _) = once(calibration);
    let per_call = secs / (2 * calibration) as f64;
    let iters = ((RUN_TARGET.as_secs_f64() / per_call / 2.0) as u64).clamp(CALLS.0, CALLS.1);
    let mut best = f64::INFINITY;
    let mut allocated = 0;
    for _ in 0..RUNS {
        let (secs, a) = once(iters);
        best = best.min(secs);
        allocated += a;
    }
    let calls = 2 * iters;
    let m = Measured {
        ns: best * 1e9 / calls as f64,
        allocs: allocated as f64 / (calls * RUNS as u64) as f64,
    };
    eprintln!(
        "{:>9.2} M calls/s {:>6.2} allocs (2 x {iters} x {RUNS})",
        1e3 / m.ns,
        m.allocs
    );
    m
}

// ---------------------------------------------------------------------------
// The protected call
// ---------------------------------------------------------------------------

/// `i` odd: a failing call; `i` even: a successful one.
fn alternate(i: u64) -> bool {
    black_box(i & 1 == 1)
}

fn ok<T, E>(r: &Result<T, E>) -> bool {
    r.is_ok()
}

/// Our `Result` was the body's failure, or the breaker's rejection.
fn ours_failed<T>(r: &Result<T, BenchError>) -> bool {
    matches!(r, Err(BenchError::Failed))
}
fn ours_rejected<T>(r: &Result<T, BenchError>) -> bool {
    matches!(r, Err(BenchError::Layer(e)) if e.is_circuit_open())
}

// ---------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------

fn window_breaker(window: Window) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(window)
        .recovery_timeout(HOUR)
        .build()
        .expect("valid breaker config");
    CircuitBreaker::new("bench-window", config)
}

#[circuit_breaker(
    name = "bench-count-window",
    failure_rate = 0.5,
    window = 100,
    recovery_timeout = "1h"
)]
async fn macro_count_window(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[circuit_breaker(
    name = "bench-time-window",
    failure_rate = 0.5,
    window = "60s",
    recovery_timeout = "1h"
)]
async fn macro_time_window(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[circuit_breaker(
    name = "bench-half-open",
    failure_threshold = 1,
    recovery_timeout = "1ns"
)]
async fn macro_half_open(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[circuit_breaker(
    name = "bench-two-threads",
    failure_threshold = 5,
    recovery_timeout = "1h"
)]
async fn macro_two_threads(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

fn registered(name: &str) -> Arc<CircuitBreaker> {
    registry()
        .get(name)
        .expect("the macro registered its breaker")
}

// ---------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------

type Failsafe<I = ()> = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    I,
>;

/// failsafe with its consecutive-failures policy and a constant open time.
fn failsafe_breaker(failures: u32, open: Duration) -> Failsafe {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            failures,
            failsafe::backoff::constant(open),
        ))
        .build()
}

fn failsafe_rejected<T, E>(r: &Result<T, failsafe::Error<E>>) -> bool {
    matches!(r, Err(failsafe::Error::Rejected))
}
fn failsafe_failed<T>(r: &Result<T, failsafe::Error<BenchError>>) -> bool {
    matches!(r, Err(failsafe::Error::Inner(BenchError::Failed)))
}

fn recloser_breaker(builder: recloser::RecloserBuilder) -> recloser::AsyncRecloser {
    recloser::AsyncRecloser::from(builder.build())
}

fn recloser_rejected<T, E>(r: &Result<T, recloser::Error<E>>) -> bool {
    matches!(r, Err(recloser::Error::Rejected))
}
fn recloser_failed<T>(r: &Result<T, recloser::Error<BenchError>>) -> bool {
    matches!(r, Err(recloser::Error::Inner(BenchError::Failed)))
}

/// tower-resilience's circuit breaker around `service_fn(upstream)`, plus the
/// handle that observes its state.
fn tower_breaker(
    builder: CircuitBreakerConfigBuilder<DefaultClassifier>,
) -> (
    impl Service<bool, Response = u64, Error = CircuitBreakerError<BenchError>> + Clone + Send + Sync,
    CircuitBreakerHandle,
) {
    let (layer, handle) = builder.build_with_handle().expect("valid tower config");
    (layer.layer_fn(tower::service_fn(upstream)), handle)
}

/// Our tower breaker layer (a breaker of its own, not the registry's)
/// around `service_fn(upstream)`.
fn ours_tower(
    failure_threshold: u32,
) -> impl Service<bool, Response = u64, Error = BenchError> + Clone + Send + Sync {
    let breaker = Arc::new(ours_breaker(failure_threshold, HOUR));
    tower::ServiceBuilder::new()
        .layer(resilience::tower::CircuitBreakerLayer::new(breaker))
        .service(tower::service_fn(upstream))
}

/// One call through a tower service: `ready().await?.call(req).await`.
async fn tower_call<S>(svc: &mut S, fail: bool) -> Result<u64, S::Error>
where
    S: Service<bool, Response = u64>,
{
    svc.ready().await?.call(fail).await
}

fn tower_rejected<T, E>(r: &Result<T, CircuitBreakerError<E>>) -> bool {
    matches!(r, Err(CircuitBreakerError::OpenCircuit))
}
fn tower_failed<T>(r: &Result<T, CircuitBreakerError<BenchError>>) -> bool {
    matches!(r, Err(CircuitBreakerError::Inner(BenchError::Failed)))
}

type CbRs = circuitbreaker_rs::CircuitBreaker<circuitbreaker_rs::DefaultPolicy, BenchError>;

fn cbrs_rejected<T>(r: &Result<T, circuitbreaker_rs::BreakerError<BenchError>>) -> bool {
    matches!(r, Err(circuitbreaker_rs::BreakerError::Open))
}
fn cbrs_failed<T>(r: &Result<T, circuitbreaker_rs::BreakerError<BenchError>>) -> bool {
    matches!(
        r,
        Err(circuitbreaker_rs::BreakerError::Operation(
            BenchError::Failed
        ))
    )
}

/// circuitbreaker-rs: its sync `call` around the polled upstream (what its
/// feature-gated `call_async` does: pre_call, run the future, post_call).
fn cbrs_call(cb: &CbRs, fail: bool) -> Result<u64, circuitbreaker_rs::BreakerError<BenchError>> {
    cb.call(|| run(upstream(fail)))
}

const HOUR: Duration = Duration::from_secs(3600);
const NS: Duration = Duration::from_nanos(1);

// ---------------------------------------------------------------------------
// Checking the half-open cycles state by state (untimed)
// ---------------------------------------------------------------------------

/// A failsafe instrument counting transitions.
#[derive(Clone, Default)]
struct Transitions(Arc<[AtomicU64; 3]>);

impl Transitions {
    fn get(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.0[i].load(Ordering::Relaxed))
    }
}

impl failsafe::Instrument for Transitions {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.0[0].fetch_add(1, Ordering::Relaxed);
    }
    fn on_half_open(&self) {
        self.0[1].fetch_add(1, Ordering::Relaxed);
    }
    fn on_closed(&self) {
        self.0[2].fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the half-open cycles of every library for a while and checks that each
/// one really goes closed → open → half-open → closed, so that the timed loops
/// (which check outcomes only) measure what they claim.
fn verify_cycles(ours: &CircuitBreaker, tower_handle: &CircuitBreakerHandle) {
    const N: u64 = 1_000;
    // Ours, by hand and through the macro: the states after each call.
    let by_macro = {
        assert!(ours_failed(&run(macro_half_open(true))));
        registered("bench-half-open")
    };
    assert!(ok(&run(macro_half_open(false))));
    for _ in 0..N {
        assert!(ours_failed(&run(ours_api(ours, true))));
        assert_eq!(ours.state(), CircuitState::Open);
        let permit = ours.try_acquire().expect("probe admitted");
        assert!(permit.is_probe());
        permit.record(Outcome::Success);
        assert_eq!(ours.state(), CircuitState::Closed);

        assert!(ours_failed(&run(macro_half_open(true))));
        assert_eq!(by_macro.state(), CircuitState::Open);
        assert!(ok(&run(macro_half_open(false))));
        assert_eq!(by_macro.state(), CircuitState::Closed);
    }

    // failsafe: count the transitions with an instrument.
    let transitions = Transitions::default();
    let fs = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(NS),
        ))
        .instrument(transitions.clone())
        .build();
    for _ in 0..N {
        assert!(failsafe_failed(&run(fs.call(upstream(true)))));
        assert!(ok(&run(fs.call(upstream(false)))));
    }
    assert_eq!(
        transitions.get(),
        [N, N, N + 1],
        "failsafe open/half-open/closed"
    );

    // tower-resilience: its handle reads the state.
    let (mut svc, handle) = tower_breaker(tower_half_open_config());
    for _ in 0..N {
        assert!(tower_failed(&run(tower_call(&mut svc, true))));
        assert_eq!(handle.state(), TowerState::Open);
        assert!(ok(&run(tower_call(&mut svc, false))));
        assert_eq!(handle.state(), TowerState::Closed);
    }
    assert_eq!(tower_handle.state(), TowerState::Closed);

    // circuitbreaker-rs: `current_state`.
    let cb = cbrs_half_open_config();
    for _ in 0..N {
        assert!(cbrs_failed(&cbrs_call(&cb, true)));
        assert_eq!(cb.current_state(), circuitbreaker_rs::State::Open);
        assert!(ok(&cbrs_call(&cb, false)));
        assert_eq!(cb.current_state(), circuitbreaker_rs::State::Closed);
    }

    // recloser has no state getter: check its cycle by behaviour, on a twin
    // whose open time is long enough to observe.
    let open = Duration::from_millis(30);
    let twin = recloser_breaker(recloser_half_open_config().open_wait(open));
    for _ in 0..3 {
        // A fresh closed ring of 1 reports no rate on its first record, so it
        // takes two failures to open...
        assert!(recloser_failed(&run(twin.call(upstream(true)))));
        assert!(recloser_failed(&run(twin.call(upstream(true)))));
        assert!(recloser_rejected(&run(twin.call(upstream(false)))), "open");
        std::thread::sleep(open + Duration::from_millis(5));
        // ...and two probe successes to close.
        assert!(ok(&run(twin.call(upstream(false)))));
        assert!(ok(&run(twin.call(upstream(false)))));
        // Closed (fresh ring): one failure does not open it; half-open would.
        assert!(recloser_failed(&run(twin.call(upstream(true)))));
        assert!(ok(&run(twin.call(upstream(false)))), "closed again");
        // The closed ring is full now: the next failure opens it, and two
        // probes close it again.
        assert!(recloser_failed(&run(twin.call(upstream(true)))));
        assert!(recloser_rejected(&run(twin.call(upstream(false)))));
        std::thread::sleep(open + Duration::from_millis(5));
        assert!(ok(&run(twin.call(upstream(false)))));
        assert!(ok(&run(twin.call(upstream(false)))));
    }
}

fn tower_half_open_config() -> CircuitBreakerConfigBuilder<DefaultClassifier> {
    CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .wait_duration_in_open(NS)
        .permitted_calls_in_half_open(1)
}

fn cbrs_half_open_config() -> CbRs {
    CbRs::builder()
        .consecutive_failures(1)
        .consecutive_successes(1)
        .probe_interval(1)
        .cooldown(NS)
        .build()
}

fn recloser_half_open_config() -> recloser::RecloserBuilder {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(1)
        .half_open_len(1)
        .open_wait(NS)
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The floor of a section.
    Baseline,
    Ours,
    Peer,
}

struct Row {
    section: &'static str,
    implementation: &'static str,
    who: Who,
    /// `None`: not measurable for this library ("n/a", see `note`).
    m: Option<Measured>,
    note: &'static str,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(&mut self, section: &'static str, implementation: &'static str, who: Who, m: Measured) {
        self.rows.push(Row {
            section,
            implementation,
            who,
            m: Some(m),
            note: "",
        });
    }

    fn note(&mut self, note: &'static str) {
        self.rows.last_mut().expect("a row").note = note;
    }

    fn na(&mut self, section: &'static str, implementation: &'static str, note: &'static str) {
        self.rows.push(Row {
            section,
            implementation,
            who: Who::Peer,
            m: None,
            note,
        });
    }

    fn get(&self, section: &str, implementation: &str) -> Measured {
        self.rows
            .iter()
            .find(|r| r.section == section && r.implementation == implementation)
            .and_then(|r| r.m)
            .unwrap_or_else(|| panic!("no row {section} / {implementation}"))
    }

    fn fastest_peer(&self, section: &str) -> Option<(&'static str, Measured)> {
        self.rows
            .iter()
            .filter(|r| r.section == section && r.who == Who::Peer)
            .filter_map(|r| r.m.map(|m| (r.implementation, m)))
            .min_by(|a, b| a.1.ns.total_cmp(&b.1.ns))
    }

    fn print(&self, bare: Measured, two_thread_base: Measured) {
        println!(
            "| row | implementation | ns/call | allocs/call | x bare | x fastest peer | notes |"
        );
        println!("|---|---|---:|---:|---:|---:|---|");
        for r in &self.rows {
            let Some(m) = r.m else {
                println!(
                    "| {} | {} | n/a | n/a | n/a | n/a | {} |",
                    r.section, r.implementation, r.note
                );
                continue;
            };
            let floor = if r.section.starts_with("two threads") {
                two_thread_base
            } else {
                bare
            };
            let vs_peer = match self.fastest_peer(r.section) {
                Some((_, p)) if r.who != Who::Baseline => format!("{:.2}", m.ns / p.ns),
                _ => "-".to_owned(),
            };
            let name = match r.who {
                Who::Ours => format!("**{}**", r.implementation),
                _ => r.implementation.to_owned(),
            };
            let mut note = r.note.to_owned();
            if r.section.starts_with("two threads") {
                let share = two_thread_base.ns / m.ns * 100.0;
                // Scaling: 2 threads vs the same call on 1 thread (100% = no
                // contention at all).
                let one = self
                    .rows
                    .iter()
                    .find(|o| {
                        o.implementation == r.implementation
                            && (o.section == CLOSED
                                || (o.section == BARE && r.who == Who::Baseline))
                    })
                    .and_then(|o| o.m);
                let scaling = one
                    .map(|o| {
                        format!(
                            ", scaling {:.0}% of 2x one thread",
                            o.ns / (2.0 * m.ns) * 100.0
                        )
                    })
                    .unwrap_or_default();
                note = format!(
                    "{:.1} M calls/s ({share:.0}% of no breaker{scaling}). {note}",
                    1e3 / m.ns
                );
            }
            println!(
                "| {} | {} | {:.2} | {} | {:.2} | {} | {} |",
                r.section,
                name,
                m.ns,
                fmt_allocs(m.allocs),
                m.ns / floor.ns,
                vs_peer,
                note.trim_end()
            );
        }
    }
}

fn fmt_allocs(a: f64) -> String {
    if a == 0.0 {
        "0".to_owned()
    } else {
        format!("{a:.2}")
    }
}

// ---------------------------------------------------------------------------
// The rows
// ---------------------------------------------------------------------------

const BARE: &str = "bare `async fn` -> Ok";
const CLOSED: &str = "closed, success";
const FAILURE: &str = "closed, failure recorded (alternating fail/ok)";
const OPEN: &str = "open, rejection";
const HALF_OPEN: &str = "half-open cycle (per cycle)";
const WINDOW_CALLS: &str = "closed success, failure rate over the last 100 calls";
const WINDOW_TIME: &str = "closed success, failure rate over the last 60 s";
const RETRY: &str = "retry, first attempt succeeds";
const BREAKER_RETRY: &str = "breaker + retry, success";
const DYNAMIC: &str = "breaker named at run time, success";
const TWO: &str = "two threads, one closed breaker";
const RATE_OK: &str = "rate limit, call allowed";
const RATE_REFUSED: &str = "rate limit, call refused";

const OURS_API: &str = "ours: try_acquire + record";
const OURS_MACRO: &str = "ours: #[circuit_breaker]";
const FAILSAFE: &str = "failsafe 1.3";
const RECLOSER: &str = "recloser 1.4";
const TOWER: &str = "tower-resilience 0.13";
const OURS_TOWER: &str = "ours: resilience::tower::circuit_breaker";
const CBRS: &str = "circuitbreaker-rs 0.1";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing we need either. Ignore the arguments.
    let mut t = Table::default();

    eprintln!("checking the half-open cycles state by state...");
    let ours_half_open = ours_breaker(1, NS);
    let (tower_half_open, tower_half_open_handle) = tower_breaker(tower_half_open_config());
    verify_cycles(&ours_half_open, &tower_half_open_handle);

    eprintln!("single calls (one thread):");
    let bare = measure(BARE, CALLS, |_| {
        ok(&black_box(run(upstream(black_box(false)))))
    });
    t.add(BARE, "no breaker", Who::Baseline, bare);
    t.note("the floor: the protected `async fn`, polled once on a no-op waker");

    // ---- closed, success ----
    {
        let ours = ours_breaker(5, HOUR);
        let m = measure(OURS_API, CALLS, |_| {
            ok(&black_box(run(ours_api(&ours, black_box(false)))))
        });
        t.add(CLOSED, OURS_API, Who::Ours, m);
        let m = measure(OURS_MACRO, CALLS, |_| {
            ok(&black_box(run(macro_closed(black_box(false)))))
        });
        t.add(CLOSED, OURS_MACRO, Who::Ours, m);

        let fs = failsafe_breaker(5, HOUR);
        let m = measure(FAILSAFE, CALLS, |_| {
            ok(&black_box(run(fs.call(upstream(black_box(false))))))
        });
        t.add(CLOSED, FAILSAFE, Who::Peer, m);

        let rc = recloser_breaker(recloser::Recloser::custom().error_rate(0.9).open_wait(HOUR));
        let m = measure(RECLOSER, CALLS, |_| {
            ok(&black_box(run(rc.call(upstream(black_box(false))))))
        });
        t.add(CLOSED, RECLOSER, Who::Peer, m);

        let (mut tw, _) = tower_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .wait_duration_in_open(HOUR),
        );
        let m = measure(TOWER, CALLS, |_| {
            ok(&black_box(run(tower_call(&mut tw, black_box(false)))))
        });
        t.add(CLOSED, TOWER, Who::Peer, m);
        t.note("boxed response future");

        let mut ours_tw = ours_tower(5);
        let m = measure(OURS_TOWER, CALLS, |_| {
            ok(&black_box(run(tower_call(&mut ours_tw, black_box(false)))))
        });
        t.add(CLOSED, OURS_TOWER, Who::Ours, m);
        t.note("our tower layer, in the same harness as tower-resilience's");

        let cb = CbRs::builder()
            .failure_threshold(0.9)
            .consecutive_failures(5)
            .cooldown(HOUR)
            .build();
        let m = measure(CBRS, CALLS, |_| {
            ok(&black_box(cbrs_call(&cb, black_box(false))))
        });
        t.add(CLOSED, CBRS, Who::Peer, m);
        t.note("sync `call` (its `call_async` is feature-gated)");
    }

    // ---- closed, failure recorded ----
    // Every odd call fails, every even one succeeds: the breakers count the
    // failure and the next success resets the run, so none ever opens.
    {
        let ours = ours_breaker(5, HOUR);
        let m = measure(OURS_API, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(run(ours_api(&ours, fail)));
            if fail {
                ours_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, OURS_API, Who::Ours, m);
        t.note("consecutive failures >= 5 would open");
        let m = measure(OURS_MACRO, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(run(macro_alternate(fail)));
            if fail {
                ours_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, OURS_MACRO, Who::Ours, m);

        let fs = failsafe_breaker(5, HOUR);
        let m = measure(FAILSAFE, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(run(fs.call(upstream(fail))));
            if fail {
                failsafe_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, FAILSAFE, Who::Peer, m);
        t.note("consecutive_failures(5)");

        let rc = recloser_breaker(recloser::Recloser::custom().error_rate(0.9).open_wait(HOUR));
        let m = measure(RECLOSER, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(run(rc.call(upstream(fail))));
            if fail {
                recloser_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, RECLOSER, Who::Peer, m);
        t.note("failure rate 0.9 over a ring of 100 (it has no consecutive policy)");

        let (mut tw, _) = tower_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .wait_duration_in_open(HOUR),
        );
        let m = measure(TOWER, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(run(tower_call(&mut tw, fail)));
            if fail {
                tower_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, TOWER, Who::Peer, m);
        t.note("consecutive_failures(5)");

        let cb = CbRs::builder()
            .failure_threshold(0.9)
            .consecutive_failures(5)
            .cooldown(HOUR)
            .build();
        let m = measure(CBRS, CALLS, |i| {
            let fail = alternate(i);
            let r = black_box(cbrs_call(&cb, fail));
            if fail {
                cbrs_failed(&r)
            } else {
                ok(&r)
            }
        });
        t.add(FAILURE, CBRS, Who::Peer, m);
        t.note("consecutive_failures(5), failure rate 0.9");
    }

    // ---- open, rejection ----
    // Each breaker is tripped once, with a one-hour recovery time, then every
    // call must be rejected without running the body.
    {
        let ours = ours_breaker(1, HOUR);
        assert!(ours_failed(&run(ours_api(&ours, true))));
        let m = measure(OURS_API, CALLS, |_| {
            ours_rejected(&black_box(run(ours_api(&ours, black_box(false)))))
        });
        t.add(OPEN, OURS_API, Who::Ours, m);
        assert!(ours_failed(&run(macro_open(true))));
        let m = measure(OURS_MACRO, CALLS, |_| {
            ours_rejected(&black_box(run(macro_open(black_box(false)))))
        });
        t.add(OPEN, OURS_MACRO, Who::Ours, m);

        let fs = failsafe_breaker(1, HOUR);
        assert!(failsafe_failed(&run(fs.call(upstream(true)))));
        let m = measure(FAILSAFE, CALLS, |_| {
            failsafe_rejected(&black_box(run(fs.call(upstream(black_box(false))))))
        });
        t.add(OPEN, FAILSAFE, Who::Peer, m);

        let rc = recloser_breaker(
            recloser::Recloser::custom()
                .error_rate(0.5)
                .closed_len(1)
                .open_wait(HOUR),
        );
        for _ in 0..2 {
            assert!(recloser_failed(&run(rc.call(upstream(true)))));
        }
        let m = measure(RECLOSER, CALLS, |_| {
            recloser_rejected(&black_box(run(rc.call(upstream(black_box(false))))))
        });
        t.add(OPEN, RECLOSER, Who::Peer, m);

        let (mut tw, handle) = tower_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_failures(1)
                .wait_duration_in_open(HOUR),
        );
        assert!(tower_failed(&run(tower_call(&mut tw, true))));
        assert_eq!(handle.state(), TowerState::Open);
        let m = measure(TOWER, CALLS, |_| {
            tower_rejected(&black_box(run(tower_call(&mut tw, black_box(false)))))
        });
        t.add(OPEN, TOWER, Who::Peer, m);

        let mut ours_tw = ours_tower(1);
        assert!(ours_failed(&run(tower_call(&mut ours_tw, true))));
        let m = measure(OURS_TOWER, CALLS, |_| {
            ours_rejected(&black_box(run(tower_call(&mut ours_tw, black_box(false)))))
        });
        t.add(OPEN, OURS_TOWER, Who::Ours, m);

        let cb = CbRs::builder()
            .consecutive_failures(1)
            .cooldown(HOUR)
            .build();
        assert!(cbrs_failed(&cbrs_call(&cb, true)));
        let m = measure(CBRS, CALLS, |_| {
            cbrs_rejected(&black_box(cbrs_call(&cb, black_box(false))))
        });
        t.add(OPEN, CBRS, Who::Peer, m);
    }

    // ---- half-open cycle ----
    // Failure threshold 1 and a 1 ns recovery time: a failing call opens the
    // breaker, the next call finds the recovery time elapsed, becomes the
    // probe, succeeds and closes it. One row = one such cycle (2 calls, or
    // what the library needs; `verify_cycles` checked every transition).
    {
        let ours = &ours_half_open;
        let m = measure(OURS_API, CYCLES, |_| {
            ours_failed(&black_box(run(ours_api(ours, black_box(true)))))
                & ok(&black_box(run(ours_api(ours, black_box(false)))))
        });
        t.add(HALF_OPEN, OURS_API, Who::Ours, m);
        t.note("2 calls: fail (opens), probe ok (closes)");
        let m = measure(OURS_MACRO, CYCLES, |_| {
            ours_failed(&black_box(run(macro_half_open(black_box(true)))))
                & ok(&black_box(run(macro_half_open(black_box(false)))))
        });
        t.add(HALF_OPEN, OURS_MACRO, Who::Ours, m);
        t.note("2 calls");

        let fs = failsafe_breaker(1, NS);
        let m = measure(FAILSAFE, CYCLES, |_| {
            failsafe_failed(&black_box(run(fs.call(upstream(black_box(true))))))
                & ok(&black_box(run(fs.call(upstream(black_box(false))))))
        });
        t.add(HALF_OPEN, FAILSAFE, Who::Peer, m);
        t.note("2 calls");

        let rc = recloser_breaker(recloser_half_open_config());
        let m = measure(RECLOSER, CYCLES, |_| {
            recloser_failed(&black_box(run(rc.call(upstream(black_box(true))))))
                & recloser_failed(&black_box(run(rc.call(upstream(black_box(true))))))
                & ok(&black_box(run(rc.call(upstream(black_box(false))))))
                & ok(&black_box(run(rc.call(upstream(black_box(false))))))
        });
        t.add(HALF_OPEN, RECLOSER, Who::Peer, m);
        t.note("4 calls: its rings of 1 report no rate on their first record, so 2 to open, 2 probes to close");

        let mut tw = tower_half_open;
        let m = measure(TOWER, CYCLES, |_| {
            tower_failed(&black_box(run(tower_call(&mut tw, black_box(true)))))
                & ok(&black_box(run(tower_call(&mut tw, black_box(false)))))
        });
        t.add(HALF_OPEN, TOWER, Who::Peer, m);
        t.note("2 calls");

        let cb = cbrs_half_open_config();
        let m = measure(CBRS, CYCLES, |_| {
            cbrs_failed(&black_box(cbrs_call(&cb, black_box(true))))
                & ok(&black_box(cbrs_call(&cb, black_box(false))))
        });
        t.add(HALF_OPEN, CBRS, Who::Peer, m);
        t.note("2 calls");
    }

    // ---- window policies, closed success ----
    // A failure rate over the last 100 calls, and over the last 60 s: every
    // call writes into the window (O(1), no allocation), unlike the
    // consecutive mode whose success path only reads. recloser's ring is the
    // peer's count window; the others' windows are not measured here.
    {
        let count = window_breaker(Window::Calls(NonZeroU32::new(100).unwrap()));
        let m = measure(OURS_API, CALLS, |_| {
            ok(&black_box(run(ours_api(&count, black_box(false)))))
        });
        t.add(WINDOW_CALLS, OURS_API, Who::Ours, m);
        t.note("failure_rate = 0.5 over the last 100 calls");
        let m = measure(OURS_MACRO, CALLS, |_| {
            ok(&black_box(run(macro_count_window(black_box(false)))))
        });
        t.add(WINDOW_CALLS, OURS_MACRO, Who::Ours, m);
        let rc = recloser_breaker(
            recloser::Recloser::custom()
                .error_rate(0.5)
                .closed_len(100)
                .open_wait(HOUR),
        );
        let m = measure(RECLOSER, CALLS, |_| {
            ok(&black_box(run(rc.call(upstream(black_box(false))))))
        });
        t.add(WINDOW_CALLS, RECLOSER, Who::Peer, m);
        t.note("error rate 0.5 over a ring of 100 calls");

        let time = window_breaker(Window::Time(Duration::from_secs(60)));
        let m = measure(OURS_API, CALLS, |_| {
            ok(&black_box(run(ours_api(&time, black_box(false)))))
        });
        t.add(WINDOW_TIME, OURS_API, Who::Ours, m);
        t.note("failure_rate = 0.5 over the last 60 s (20 buckets; reads the clock)");
        let m = measure(OURS_MACRO, CALLS, |_| {
            ok(&black_box(run(macro_time_window(black_box(false)))))
        });
        t.add(WINDOW_TIME, OURS_MACRO, Who::Ours, m);
    }

    // ---- retry, first attempt succeeds ----
    // 3 attempts, exponential from 100 ms; the first attempt succeeds, so no
    // sleep happens (and no runtime is needed).
    {
        let m = measure("ours: #[retry]", CALLS, |_| {
            ok(&black_box(run(macro_retry(black_box(false)))))
        });
        t.add(RETRY, "ours: #[retry]", Who::Ours, m);

        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(2);
        let m = measure("backon 1.6", CALLS, |_| {
            ok(&black_box(run(
                (|| upstream(black_box(false))).retry(backoff)
            )))
        });
        t.add(RETRY, "backon 1.6", Who::Peer, m);
        t.note(
            "a closure `.retry(ExponentialBuilder)`: builds the backoff (seeds an RNG) per call",
        );

        let m = measure("tokio-retry2 0.9", CALLS, |_| {
            let strategy =
                tokio_retry2::strategy::ExponentialFactorBackoff::from_millis(100, 2.0).take(2);
            ok(&black_box(run(tokio_retry2::Retry::spawn(
                strategy,
                || async {
                    upstream(black_box(false))
                        .await
                        .map_err(tokio_retry2::RetryError::transient)
                },
            ))))
        });
        t.add(RETRY, "tokio-retry2 0.9", Who::Peer, m);
        t.note("`Retry::spawn(strategy, action)`");
    }

    // ---- breaker + retry ----
    {
        let m = measure("ours: #[resilient]", CALLS, |_| {
            ok(&black_box(run(macro_resilient(black_box(false)))))
        });
        t.add(BREAKER_RETRY, "ours: #[resilient]", Who::Ours, m);

        let fs = failsafe_breaker(5, HOUR);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(2);
        let m = measure("failsafe 1.3 + backon 1.6", CALLS, |_| {
            ok(&black_box(run(
                fs.call((|| upstream(black_box(false))).retry(backoff))
            )))
        });
        t.add(BREAKER_RETRY, "failsafe 1.3 + backon 1.6", Who::Peer, m);
        t.note("composed by hand: breaker outside, retry inside (as #[resilient])");
    }

    // ---- dynamic name ----
    {
        let client = Client {
            name: "bench-dynamic".to_owned(),
        };
        let client = &client;
        let m = measure(
            "ours: #[circuit_breaker(name = self.name.as_str())]",
            CALLS,
            |_| ok(&black_box(run(client.get(black_box(false))))),
        );
        t.add(
            DYNAMIC,
            "ours: #[circuit_breaker(name = self.name.as_str())]",
            Who::Ours,
            m,
        );
        t.note("a registry lookup per call");
        t.na(
            DYNAMIC,
            "peers",
            "n/a: no peer has a registry of named breakers; a user keeps their own map",
        );
    }

    // ---- two threads ----
    eprintln!("two threads sharing one closed breaker:");
    let two_base = two_threads(
        "no breaker",
        || (),
        |_, _| ok(&black_box(run(upstream(black_box(false))))),
    );
    t.add(TWO, "no breaker", Who::Baseline, two_base);
    {
        let ours = ours_breaker(5, HOUR);
        let m = two_threads(
            OURS_API,
            || &ours,
            |b, _| ok(&black_box(run(ours_api(b, black_box(false))))),
        );
        t.add(TWO, OURS_API, Who::Ours, m);
        let m = two_threads(
            OURS_MACRO,
            || (),
            |_, _| ok(&black_box(run(macro_two_threads(black_box(false))))),
        );
        t.add(TWO, OURS_MACRO, Who::Ours, m);

        let fs = failsafe_breaker(5, HOUR);
        let m = two_threads(
            FAILSAFE,
            || &fs,
            |fs, _| ok(&black_box(run(fs.call(upstream(black_box(false)))))),
        );
        t.add(TWO, FAILSAFE, Who::Peer, m);

        let rc = recloser_breaker(recloser::Recloser::custom().error_rate(0.9).open_wait(HOUR));
        let m = two_threads(
            RECLOSER,
            || &rc,
            |rc, _| ok(&black_box(run(rc.call(upstream(black_box(false)))))),
        );
        t.add(TWO, RECLOSER, Who::Peer, m);

        let (tw, _) = tower_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .wait_duration_in_open(HOUR),
        );
        let m = two_threads(
            TOWER,
            || tw.clone(),
            |tw, _| ok(&black_box(run(tower_call(tw, black_box(false))))),
        );
        t.add(TWO, TOWER, Who::Peer, m);
        t.note("a clone of the service per thread; a contended tokio Mutex returns Pending and is re-polled");

        let cb = CbRs::builder()
            .failure_threshold(0.9)
            .consecutive_failures(5)
            .cooldown(HOUR)
            .build();
        let m = two_threads(
            CBRS,
            || &cb,
            |cb, _| ok(&black_box(cbrs_call(cb, black_box(false)))),
        );
        t.add(TWO, CBRS, Who::Peer, m);
    }

    // ---- rate limit ----
    {
        let plenty = NonZeroU32::new(1_000_000_000).unwrap();
        let ours = resilience::RateLimiter::new(
            "bench-rate",
            resilience::RateLimitConfig::builder(plenty.get())
                .burst(plenty.get())
                .build()
                .unwrap(),
        );
        let m = measure("ours: RateLimiter::try_acquire", CALLS, |_| {
            black_box(ours.try_acquire()).is_ok()
        });
        t.add(RATE_OK, "ours: RateLimiter::try_acquire", Who::Ours, m);
        t.note("a billion a second, a burst of a billion: never refused");
        let m = measure("ours: #[rate_limit]", CALLS, |_| {
            ok(&black_box(run(macro_rate_limited(black_box(false)))))
        });
        t.add(RATE_OK, "ours: #[rate_limit]", Who::Ours, m);
        let gov =
            governor::RateLimiter::direct(governor::Quota::per_second(plenty).allow_burst(plenty));
        let m = measure("governor 0.10", CALLS, |_| black_box(gov.check()).is_ok());
        t.add(RATE_OK, "governor 0.10", Who::Peer, m);
        t.note("`RateLimiter::direct(Quota).check()` (its own clock, quanta)");

        let one = NonZeroU32::new(1).unwrap();
        let ours = resilience::RateLimiter::new(
            "bench-rate-refused",
            resilience::RateLimitConfig::builder(1)
                .per(HOUR)
                .burst(1)
                .build()
                .unwrap(),
        );
        let _ = ours.try_acquire();
        let m = measure("ours: RateLimiter::try_acquire", CALLS, |_| {
            black_box(ours.try_acquire()).is_err_and(|e| e.is_rate_limited())
        });
        t.add(RATE_REFUSED, "ours: RateLimiter::try_acquire", Who::Ours, m);
        let _ = run(macro_rate_refused(false));
        let m = measure(
            "ours: #[rate_limit]",
            CALLS,
            |_| matches!(black_box(run(macro_rate_refused(black_box(false)))), Err(BenchError::Layer(e)) if e.is_rate_limited()),
        );
        t.add(RATE_REFUSED, "ours: #[rate_limit]", Who::Ours, m);
        let gov = governor::RateLimiter::direct(governor::Quota::per_hour(one));
        let _ = gov.check();
        let m = measure("governor 0.10", CALLS, |_| black_box(gov.check()).is_err());
        t.add(RATE_REFUSED, "governor 0.10", Who::Peer, m);
    }

    t.print(bare, two_base);
    targets(&t, bare, two_base);
}

#[resilience::rate_limit(name = "bench-rate-macro", rate = 1_000_000_000, burst = 1_000_000_000)]
async fn macro_rate_limited(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[resilience::rate_limit(name = "bench-rate-macro-refused", rate = 1, per = "1h")]
async fn macro_rate_refused(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

/// The targets, judged on this run.
fn targets(t: &Table, bare: Measured, two_base: Measured) {
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!();
    println!("Targets (from this run):");
    for imp in [OURS_API, OURS_MACRO] {
        let m = t.get(CLOSED, imp);
        let (peer, p) = t.fastest_peer(CLOSED).expect("peers");
        let over = m.ns - bare.ns;
        let speedup = p.ns / m.ns;
        println!(
            "- closed success, {imp}: {over:+.2} ns over bare (target <= 3) {}; {speedup:.1}x faster than {peer} (target >= 3x) {}",
            verdict(over <= 3.0),
            verdict(speedup >= 3.0)
        );
    }
    for imp in [OURS_API, OURS_MACRO] {
        let m = t.get(OPEN, imp);
        let (peer, p) = t.fastest_peer(OPEN).expect("peers");
        println!(
            "- open rejection, {imp}: {:.2} ns vs {:.2} ns for {peer}, the fastest peer: {}",
            m.ns,
            p.ns,
            verdict(m.ns < p.ns)
        );
    }
    for imp in [OURS_API, OURS_MACRO] {
        let m = t.get(TWO, imp);
        let share = two_base.ns / m.ns;
        println!(
            "- two threads, {imp}: {:.0}% of the no-breaker aggregate (target >= 80%) {}",
            share * 100.0,
            verdict(share >= 0.8)
        );
    }
    let allocating: Vec<String> = t
        .rows
        .iter()
        .filter(|r| r.who == Who::Ours)
        .filter_map(|r| {
            let m = r.m?;
            (m.allocs > 0.0)
                .then(|| format!("{} / {} ({:.2})", r.section, r.implementation, m.allocs))
        })
        .collect();
    println!(
        "- zero allocations on every path of ours: {}{}",
        verdict(allocating.is_empty()),
        if allocating.is_empty() {
            String::new()
        } else {
            format!(": {}", allocating.join(", "))
        }
    );
    let ours = t.get(RETRY, "ours: #[retry]");
    let backon = t.get(RETRY, "backon 1.6");
    println!(
        "- retry, first attempt succeeds: {:.2} ns vs {:.2} ns for backon (target: no slower) {}",
        ours.ns,
        backon.ns,
        verdict(ours.ns <= backon.ns)
    );
}
