//! Hedging, coalescing and adaptive concurrency: ours against
//! tower-resilience 0.13, the peer that has all three, measured in one run.
//!
//! ```text
//! cargo bench -p resilience-bench --bench policies
//! ```
//!
//! prints one markdown table (progress goes to stderr); `benches/POLICIES.md`
//! holds a recorded run, how each side is configured, and its reading.
//!
//! The harness is `peers.rs`'s, in short: every call is a future polled on a
//! no-op waker inside a current-thread runtime's context ([`run`]: every
//! future of the common-path rows is ready on its first poll, and that is
//! asserted); a counting global allocator gives allocations per call; each
//! row is warmed up, calibrated and timed [`RUNS`] times (best reported); and
//! every call's outcome is checked (its result, and how many times the
//! protected body ran), so a misconfigured row fails instead of reporting a
//! fast number. The "hedge fires" rows run last, each call a `block_on` on
//! a runtime whose clock is paused: the first attempt never answers, the
//! timer fires at once (auto-advance), the hedge answers.
//!
//! Instructions instead of time: `POLICIES_ROW=<id> POLICIES_CALLS=<n>` runs
//! only that row's operation `n` times, untimed, for callgrind (ids:
//! `POLICIES_ROW=list`); `benches/POLICIES.md` has the loop.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use resilience::{AdaptiveBulkhead, AdaptiveConfig, Coalescer, Hedge, HedgeConfig, Outcome};
use tower::{Layer, Service, ServiceExt};

// ---------------------------------------------------------------------------
// Allocation counting, the protected body, its error
// ---------------------------------------------------------------------------

thread_local! {
    /// Allocations (alloc, alloc_zeroed, realloc) made by this thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Times a protected body ran on this thread ([`upstream`]).
    static BODY_RUNS: Cell<u64> = const { Cell::new(0) };
    /// Attempts made by the hedge-fires services ([`slow_first`]).
    static ATTEMPTS: Cell<u64> = const { Cell::new(0) };
    /// Closed: a [`Gate`] is pending (the coalesced body waits at it).
    static GATE: Cell<bool> = const { Cell::new(true) };
}

struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
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

fn body_runs() -> u64 {
    BODY_RUNS.with(Cell::get)
}

/// The error of every row: `Clone` (coalesced and hedged results are shared
/// or kept), with a variant for our layers' errors (the attributes need
/// `From<resilience::Error>`).
#[derive(Debug, Clone)]
enum BenchError {
    Failed,
    Layer(#[allow(dead_code)] resilience::Error),
}

impl From<resilience::Error> for BenchError {
    fn from(e: resilience::Error) -> Self {
        BenchError::Layer(e)
    }
}

/// The protected call of every row: counts its run, answers at once.
async fn upstream(fail: bool) -> Result<u64, BenchError> {
    BODY_RUNS.with(|n| n.set(n.get() + 1));
    if fail {
        Err(BenchError::Failed)
    } else {
        Ok(1)
    }
}

/// The coalesced rows' body: the key back.
async fn lookup(id: u64) -> Result<u64, BenchError> {
    upstream(false).await.map(|_| id)
}

/// Pending while the gate is closed (the no-op waker is never woken: the
/// harness polls again by itself).
struct Gate;

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if GATE.with(Cell::get) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// [`lookup`] once the gate opens: a body still running when the other
/// callers of its key come.
async fn gated(id: u64) -> Result<u64, BenchError> {
    Gate.await;
    lookup(id).await
}

/// An attempt that never answers if `slow`, else the call.
async fn slow_then_call(slow: bool) -> Result<u64, BenchError> {
    if slow {
        std::future::pending::<()>().await;
    }
    upstream(false).await
}

/// The hedge-fires services' attempts: odd ones never answer, even ones
/// answer at once (every hedged call makes exactly two).
fn slow_first(_: bool) -> impl Future<Output = Result<u64, BenchError>> + Send {
    let n = ATTEMPTS.with(|a| {
        a.set(a.get() + 1);
        a.get()
    });
    slow_then_call(n % 2 == 1)
}

fn attempts() -> u64 {
    ATTEMPTS.with(Cell::get)
}

// ---------------------------------------------------------------------------
// The executor: poll once on a no-op waker
// ---------------------------------------------------------------------------

/// Polls `future` once on a no-op waker; it must be ready.
#[inline(always)]
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => pending_on_common_path(),
    }
}

#[cold]
#[inline(never)]
fn pending_on_common_path() -> ! {
    panic!("a common-path row's future returned Pending")
}

/// One call through a tower service: `ready().await?.call(req).await`.
async fn tower_call<S, R>(svc: &mut S, req: R) -> Result<u64, S::Error>
where
    S: Service<R, Response = u64>,
{
    svc.ready().await?.call(req).await
}

/// The future of one call of a service that is ready at once.
fn called<S: Service<R>, R>(svc: &mut S, req: R) -> S::Future {
    if run(svc.ready()).is_err() {
        panic!("the service failed to become ready");
    }
    svc.call(req)
}

/// Callers of one key at once, in the coalesce fan-in rows.
const FAN: usize = 8;

/// [`FAN`] callers of key 7 at once, from `make`: each is polled once (the
/// first leads, its body waits at the gate, the others join it), then the
/// gate opens and each is polled again. Whether all were pending, then all
/// answered `Ok(7)`, with one run of the body in all.
fn fan_in<F, E>(mut make: impl FnMut() -> F) -> bool
where
    F: Future<Output = Result<u64, E>>,
{
    let before = body_runs();
    GATE.with(|g| g.set(false));
    let futures: [F; FAN] = std::array::from_fn(|_| make());
    let mut futures = pin!(futures);
    let mut cx = Context::from_waker(Waker::noop());
    let mut ok = true;
    for i in 0..FAN {
        ok &= nth(futures.as_mut(), i).poll(&mut cx).is_pending();
    }
    GATE.with(|g| g.set(true));
    for i in 0..FAN {
        ok &= matches!(nth(futures.as_mut(), i).poll(&mut cx), Poll::Ready(Ok(7)));
    }
    ok && body_runs() == before + 1
}

/// Element `i` of a pinned array, pinned.
fn nth<F, const N: usize>(array: Pin<&mut [F; N]>, i: usize) -> Pin<&mut F> {
    // SAFETY: the elements of a pinned array are pinned with it (the array
    // is never moved, and no element is moved out of it).
    unsafe { array.map_unchecked_mut(|a| &mut a[i]) }
}

/// `result` is `Ok` and the body ran exactly once since `before`.
fn once<T, E>(result: &Result<T, E>, before: u64) -> bool {
    result.is_ok() && body_runs() == before + 1
}

// ---------------------------------------------------------------------------
// Measurement (peers.rs's `measure`), and the table
// ---------------------------------------------------------------------------

/// Timed runs per row; the best is reported.
const RUNS: usize = 5;
/// How long one timed run should take; the iteration count is derived from it.
const RUN_TARGET: Duration = Duration::from_millis(200);
/// Iterations of one timed run, for rows of single calls.
const CALLS: (u64, u64) = (200_000, 10_000_000);
/// For the heavier rows (a `block_on` with a timer, a fan-in of 8 callers).
const BATCHES: (u64, u64) = (20_000, 2_000_000);

#[derive(Clone, Copy, Debug, Default)]
struct Measured {
    /// Nanoseconds per operation (best run).
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The floor of a section.
    Baseline,
    Ours,
    Peer,
}

struct Row {
    section: &'static str,
    name: &'static str,
    who: Who,
    m: Measured,
    floor: Measured,
    note: &'static str,
}

/// The rows measured so far, the current section and its floor; or, in the
/// instructions mode, the one row to run.
struct Bench {
    rows: Vec<Row>,
    section: &'static str,
    floor: Measured,
    /// `POLICIES_ROW` and `POLICIES_CALLS`.
    only: Option<(String, u64)>,
}

impl Bench {
    fn new() -> Self {
        let only = std::env::var("POLICIES_ROW").ok().map(|row| {
            let calls = std::env::var("POLICIES_CALLS")
                .map_or(Ok(0), |n| n.parse())
                .expect("POLICIES_CALLS: a number of calls");
            (row, calls)
        });
        Bench {
            rows: Vec::new(),
            section: "",
            floor: Measured::default(),
            only,
        }
    }

    fn section(&mut self, section: &'static str) {
        self.section = section;
        if self.only.is_none() {
            eprintln!("{section}:");
        }
    }

    /// Measures the section's floor (the rows after it are divided by it).
    fn baseline(
        &mut self,
        id: &str,
        name: &'static str,
        range: (u64, u64),
        op: impl FnMut(u64) -> bool,
    ) {
        self.floor = self.row(id, name, Who::Baseline, range, op);
        if let Some(row) = self.rows.last_mut() {
            row.floor = row.m;
        }
    }

    /// Measures `op` (one call or one batch per invocation; it returns
    /// whether the outcome was the expected one) and adds its row.
    fn row(
        &mut self,
        id: &str,
        name: &'static str,
        who: Who,
        (min, max): (u64, u64),
        mut op: impl FnMut(u64) -> bool,
    ) -> Measured {
        if let Some((only, calls)) = &self.only {
            if only == "list" {
                println!("{id}\t{} / {name}", self.section);
            } else if only == id {
                check(id, timed_loop(*calls, &mut op), *calls);
                std::process::exit(0);
            }
            return Measured::default();
        }
        eprint!("  {name:<52}");
        // Warm-up, which also calibrates the iteration count.
        let calibration = 5_000;
        let start = Instant::now();
        check(name, timed_loop(calibration, &mut op), calibration);
        let per_op = start.elapsed().as_secs_f64() / calibration as f64;
        let iters = ((RUN_TARGET.as_secs_f64() / per_op) as u64).clamp(min, max);
        let allocs_before = allocs();
        let mut best = f64::INFINITY;
        for _ in 0..RUNS {
            let start = Instant::now();
            let ok = timed_loop(iters, &mut op);
            let elapsed = start.elapsed().as_secs_f64();
            check(name, ok, iters);
            best = best.min(elapsed);
        }
        let m = Measured {
            ns: best * 1e9 / iters as f64,
            allocs: (allocs() - allocs_before) as f64 / (iters * RUNS as u64) as f64,
        };
        eprintln!(
            "{:>9.2} ns {:>6.2} allocs ({iters} x {RUNS})",
            m.ns, m.allocs
        );
        self.rows.push(Row {
            section: self.section,
            name,
            who,
            m,
            floor: self.floor,
            note: "",
        });
        m
    }

    fn note(&mut self, note: &'static str) {
        if let Some(row) = self.rows.last_mut() {
            row.note = note;
        }
    }

    fn print(&self) {
        println!(
            "| row | implementation | ns/op | allocs/op | x floor | x tower-resilience | notes |"
        );
        println!("|---|---|---:|---:|---:|---:|---|");
        for r in &self.rows {
            // The section's first peer row (AIMD for the adaptive one).
            let peer = self
                .rows
                .iter()
                .find(|p| p.section == r.section && p.who == Who::Peer);
            let vs_peer = match peer {
                Some(p) if r.who != Who::Baseline => format!("{:.2}", r.m.ns / p.m.ns),
                _ => "-".to_owned(),
            };
            let name = match r.who {
                Who::Ours => format!("**{}**", r.name),
                _ => r.name.to_owned(),
            };
            let allocs = if r.m.allocs == 0.0 {
                "0".to_owned()
            } else {
                format!("{:.2}", r.m.allocs)
            };
            println!(
                "| {} | {name} | {:.2} | {allocs} | {:.2} | {vs_peer} | {} |",
                r.section,
                r.m.ns,
                r.m.ns / r.floor.ns,
                r.note
            );
        }
    }

    /// Every row of ours that allocated, for the zero-allocation contract.
    fn allocating(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.who == Who::Ours && r.m.allocs > 0.0)
            .map(|r| format!("{} / {} ({:.2})", r.section, r.name, r.m.allocs))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Ours: the attributes
// ---------------------------------------------------------------------------

#[resilience::hedge(name = "bench-hedge-macro", delay = "100ms", max_hedges = 1)]
async fn macro_hedge(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

#[resilience::hedge(name = "bench-hedge-macro-fires", delay = "100ms", max_hedges = 1)]
async fn macro_hedge_fires(fail: bool) -> Result<u64, BenchError> {
    slow_first(fail).await
}

#[resilience::coalesce(key = id)]
async fn macro_coalesce(id: u64) -> Result<u64, BenchError> {
    lookup(id).await
}

#[resilience::coalesce(key = id)]
async fn macro_coalesce_gated(id: u64) -> Result<u64, BenchError> {
    gated(id).await
}

#[resilience::bulkhead(
    name = "bench-adaptive-macro",
    max_concurrent = "adaptive",
    min_limit = 1,
    max_limit = 100,
    initial_limit = 10,
    latency_threshold = "100ms"
)]
async fn macro_adaptive(fail: bool) -> Result<u64, BenchError> {
    upstream(fail).await
}

// ---------------------------------------------------------------------------
// The configurations, both sides
// ---------------------------------------------------------------------------

/// The hedge delay of every hedge row: fixed, far above a call's latency.
const DELAY: Duration = Duration::from_millis(100);

/// Ours: a fixed delay, one hedge (two attempts at most).
fn hedge_config() -> HedgeConfig {
    HedgeConfig::builder()
        .delay(DELAY)
        .max_hedges(1)
        .build()
        .expect("valid hedge config")
}

/// tower-resilience: the same, `max_hedged_attempts` counting the first.
fn tower_hedge() -> tower_resilience::hedge::HedgeLayer {
    tower_resilience::hedge::HedgeLayer::builder()
        .delay(DELAY)
        .max_hedged_attempts(2)
        .build()
}

/// Ours: AIMD from 10 within [1, 100], a call slower than 100 ms (or failing)
/// cuts it by 0.9 (the attribute's keys, whose backoff is the default 0.9).
fn adaptive_config() -> AdaptiveConfig {
    AdaptiveConfig::builder(
        resilience::Aimd::default().latency_threshold(Duration::from_millis(100)),
    )
    .initial_limit(10)
    .min_limit(1)
    .max_limit(100)
    .build()
    .expect("valid adaptive config")
}

/// tower-resilience: the same AIMD bounds, threshold and cut.
fn tower_aimd() -> tower_resilience::adaptive::Aimd {
    tower_resilience::adaptive::Aimd::builder()
        .initial_limit(10)
        .min_limit(1)
        .max_limit(100)
        .latency_threshold(Duration::from_millis(100))
        .decrease_factor(0.9)
        .build()
        .expect("valid tower AIMD")
}

// ---------------------------------------------------------------------------
// The rows
// ---------------------------------------------------------------------------

const BARE: &str = "bare call";
const HEDGE: &str = "hedge, first attempt answers";
const HEDGE_FIRES: &str = "hedge fires (paused clock, per call)";
const COALESCE: &str = "coalesce, one caller";
const FAN_IN: &str = "coalesce, 8 callers of one key (per batch)";
const ADAPTIVE: &str = "adaptive, uncontended";

const TOWER: &str = "tower-resilience 0.13";

fn main() {
    // `cargo bench` passes `--bench`: the arguments are ignored.
    let mut b = Bench::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let guard = rt.enter();

    b.section(BARE);
    b.baseline("bare", "bare `async fn` -> Ok", CALLS, |_| {
        let before = body_runs();
        once(&black_box(run(upstream(black_box(false)))), before)
    });
    b.note("the floor of the single-call rows: the protected `async fn`, polled once");
    let mut svc = tower::service_fn(upstream);
    b.row(
        "bare-tower",
        "bare `service_fn`, ready + call",
        Who::Baseline,
        CALLS,
        |_| {
            let before = body_runs();
            once(
                &black_box(run(tower_call(&mut svc, black_box(false)))),
                before,
            )
        },
    );
    b.note("for reference: tower's own cost, no layer");
    let mut last = tokio::time::Instant::now();
    b.row(
        "clock",
        "one `tokio::time::Instant::now()`",
        Who::Baseline,
        CALLS,
        |_| {
            let now = black_box(tokio::time::Instant::now());
            let later = now >= last;
            last = now;
            later
        },
    );
    b.note("for reference: one clock read (our rows make one to three per call)");
    let bare = b.floor;

    // ---- hedge: the first attempt answers on its first poll ----
    b.section(HEDGE);
    {
        let hedge = Hedge::new("bench-hedge", hedge_config());
        b.row("hedge-run", "ours: Hedge::run", Who::Ours, CALLS, |_| {
            let before = body_runs();
            once(
                &black_box(run(hedge.run(|| upstream(black_box(false))))),
                before,
            )
        });
        b.note("fixed 100 ms delay, max_hedges = 1");
        let p95 = Hedge::new("bench-hedge-p95", HedgeConfig::DEFAULT);
        b.row(
            "hedge-run-p95",
            "ours: Hedge::run, default p95 delay",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(
                    &black_box(run(p95.run(|| upstream(black_box(false))))),
                    before,
                )
            },
        );
        b.note("HedgeConfig::DEFAULT: reads the histogram's quantile, records each call's latency");
        let status = hedge.status();
        assert_eq!(
            (status.hedges, p95.status().hedges),
            (0, 0),
            "no hedge fired"
        );

        b.row("hedge-macro", "ours: #[hedge]", Who::Ours, CALLS, |_| {
            let before = body_runs();
            once(&black_box(run(macro_hedge(black_box(false)))), before)
        });
        b.note("delay = \"100ms\", max_hedges = 1");
        let by_macro = resilience::registry().hedge("bench-hedge-macro", &hedge_config());
        assert_eq!(*by_macro.config(), hedge_config(), "the attribute's hedge");
        assert_eq!(by_macro.status().hedges, 0, "no hedge fired");

        let layer = resilience::tower::hedge("bench-hedge-tower", hedge_config());
        let mut svc = layer.layer(tower::service_fn(upstream));
        b.row(
            "hedge-tower",
            "ours: resilience::tower::hedge",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(
                    &black_box(run(tower_call(&mut svc, black_box(false)))),
                    before,
                )
            },
        );
        assert_eq!(layer.hedge().status().hedges, 0, "no hedge fired");

        let mut svc = tower_hedge().layer(tower::service_fn(upstream));
        b.row("hedge-peer", TOWER, Who::Peer, CALLS, |_| {
            let before = body_runs();
            once(
                &black_box(run(tower_call(&mut svc, black_box(false)))),
                before,
            )
        });
        b.note("delay(100 ms), max_hedged_attempts(2); boxed call future");
    }

    // ---- coalesce: one caller, nothing to share ----
    b.section(COALESCE);
    b.floor = bare;
    {
        let coalescer = Coalescer::new("bench-coalesce");
        b.row(
            "coalesce-run",
            "ours: Coalescer::run",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                let r = black_box(run(coalescer.run(7u64, lookup(black_box(7)))));
                once(&r, before) && matches!(r, Ok(7))
            },
        );
        b.note("key 7 (u64): joins the map, leads, leaves it");
        b.row(
            "coalesce-macro",
            "ours: #[coalesce(key = id)]",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                let r = black_box(run(macro_coalesce(black_box(7))));
                once(&r, before) && matches!(r, Ok(7))
            },
        );
        assert_eq!(coalescer.status().followers, 0);

        let layer = resilience::tower::coalesce("bench-coalesce-tower", |id: &u64| *id);
        let mut svc = layer.layer(tower::service_fn(lookup));
        b.row(
            "coalesce-tower",
            "ours: resilience::tower::coalesce",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                let r = black_box(run(tower_call(&mut svc, black_box(7))));
                once(&r, before) && matches!(r, Ok(7))
            },
        );

        let peer = tower_resilience::coalesce::CoalesceLayer::new(|id: &u64| *id);
        let mut svc = peer.layer(tower::service_fn(lookup));
        b.row("coalesce-peer", TOWER, Who::Peer, CALLS, |_| {
            let before = body_runs();
            let r = black_box(run(tower_call(&mut svc, black_box(7))));
            once(&r, before) && matches!(r, Ok(7))
        });
        b.note("`CoalesceLayer::new(key)`: a broadcast channel per leader, a boxed call future");
    }

    // ---- coalesce: 8 callers of one key, one run of the body ----
    b.section(FAN_IN);
    {
        b.baseline("fan-in-bare", "8 bare calls, 8 bodies", BATCHES, |_| {
            let before = body_runs();
            let mut ok = true;
            for _ in 0..FAN {
                ok &= matches!(black_box(run(lookup(black_box(7)))), Ok(7));
            }
            ok && body_runs() == before + FAN as u64
        });
        b.note("the floor: no coalescing, each caller runs its body");
        let coalescer = Coalescer::new("bench-fan-in");
        b.row(
            "fan-in-run",
            "ours: Coalescer::run",
            Who::Ours,
            BATCHES,
            |_| fan_in(|| coalescer.run(7u64, gated(7))),
        );
        b.note("each batch: 1 leader, 7 followers, 1 body run (checked)");
        let status = coalescer.status();
        assert_eq!(
            status.leaders * 7,
            status.followers,
            "7 followers per leader"
        );
        b.row(
            "fan-in-macro",
            "ours: #[coalesce(key = id)]",
            Who::Ours,
            BATCHES,
            |_| fan_in(|| macro_coalesce_gated(7)),
        );

        let layer = resilience::tower::coalesce("bench-fan-in-tower", |id: &u64| *id);
        let mut svc = layer.layer(tower::service_fn(gated));
        b.row(
            "fan-in-tower",
            "ours: resilience::tower::coalesce",
            Who::Ours,
            BATCHES,
            |_| fan_in(|| called(&mut svc, 7)),
        );

        let peer = tower_resilience::coalesce::CoalesceLayer::new(|id: &u64| *id);
        let mut svc = peer.layer(tower::service_fn(gated));
        b.row("fan-in-peer", TOWER, Who::Peer, BATCHES, |_| {
            fan_in(|| called(&mut svc, 7))
        });
        b.note("its followers spin (`wake_by_ref` on every pending poll)");
    }

    // ---- adaptive concurrency: one call at a time, far below the limit ----
    b.section(ADAPTIVE);
    b.floor = bare;
    {
        let ours = AdaptiveBulkhead::new("bench-adaptive", adaptive_config());
        b.row(
            "adaptive-call",
            "ours: AdaptiveBulkhead::call",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(
                    &black_box(run(ours.call(upstream(black_box(false))))),
                    before,
                )
            },
        );
        b.note("AIMD from 10 in [1, 100], threshold 100 ms");
        b.row(
            "adaptive-permit",
            "ours: try_acquire + record",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                let Ok(permit) = ours.try_acquire() else {
                    return false;
                };
                let r = black_box(run(upstream(black_box(false))));
                permit.record(Outcome::of(&r));
                once(&r, before)
            },
        );
        assert_eq!((ours.in_flight(), ours.status().rejected), (0, 0));
        assert_eq!(
            ours.limit(),
            10,
            "one call in flight says nothing about a larger limit"
        );
        b.row(
            "adaptive-macro",
            "ours: #[bulkhead(max_concurrent = \"adaptive\")]",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(&black_box(run(macro_adaptive(black_box(false)))), before)
            },
        );
        b.note("min_limit = 1, max_limit = 100, initial_limit = 10, latency_threshold = \"100ms\"");
        let by_macro = AdaptiveBulkhead::shared("bench-adaptive-macro", adaptive_config());
        let status = by_macro.status();
        assert_eq!(
            (status.in_flight, status.rejected, status.limit),
            (0, 0, 10)
        );

        let layer =
            resilience::tower::adaptive_concurrency("bench-adaptive-tower", adaptive_config());
        let mut svc = layer.layer(tower::service_fn(upstream));
        b.row(
            "adaptive-tower",
            "ours: resilience::tower::adaptive_concurrency",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(
                    &black_box(run(tower_call(&mut svc, black_box(false)))),
                    before,
                )
            },
        );
        let status = layer.bulkhead().status();
        assert_eq!((status.in_flight, status.rejected), (0, 0));
        assert_eq!(
            status.limit, 10,
            "one call in flight says nothing about a larger limit"
        );

        let gradient = resilience::AdaptiveConfig::builder(resilience::Gradient2::default())
            .initial_limit(10)
            .min_limit(1)
            .max_limit(100)
            .build()
            .expect("valid gradient2 config");
        let g2 = AdaptiveBulkhead::new("bench-gradient2", gradient);
        b.row(
            "adaptive-gradient2",
            "ours: AdaptiveBulkhead::call, Gradient2",
            Who::Ours,
            CALLS,
            |_| {
                let before = body_runs();
                once(&black_box(run(g2.call(upstream(black_box(false))))), before)
            },
        );
        b.note("Gradient2::default(): every call moves the long-term latency");

        let peer = tower_resilience::adaptive::AdaptiveLimiterLayer::new(tower_aimd());
        let mut svc = peer.layer(tower::service_fn(upstream));
        b.row("adaptive-peer", TOWER, Who::Peer, CALLS, |_| {
            let before = body_runs();
            once(
                &black_box(run(tower_call(&mut svc, black_box(false)))),
                before,
            )
        });
        b.note("AIMD, same bounds, threshold and cut; its limit climbs to 100 (+1 per success)");
        assert_eq!(svc.in_flight(), 0);

        let vegas = tower_resilience::adaptive::Vegas::builder()
            .initial_limit(10)
            .min_limit(1)
            .max_limit(100)
            .build()
            .expect("valid tower Vegas");
        let mut svc = tower_resilience::adaptive::AdaptiveLimiterLayer::new(vegas)
            .layer(tower::service_fn(upstream));
        b.row(
            "adaptive-peer-vegas",
            "tower-resilience 0.13, Vegas",
            Who::Peer,
            CALLS,
            |_| {
                let before = body_runs();
                once(
                    &black_box(run(tower_call(&mut svc, black_box(false)))),
                    before,
                )
            },
        );
        b.note("its latency-based algorithm, for Gradient2");
    }
    drop(guard);

    // ---- hedge fires: last, since a paused clock slows tokio's `Instant::now()` from then on ----
    // The first attempt never answers; the 100 ms timer fires at once (the
    // paused clock auto-advances when the runtime is idle); the hedge answers.
    b.section(HEDGE_FIRES);
    {
        let paused = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a paused current-thread runtime");
        b.baseline(
            "fires-bare",
            "bare: sleep(100 ms), then the call",
            BATCHES,
            |_| {
                let before = body_runs();
                let r = paused.block_on(async {
                    tokio::time::sleep(DELAY).await;
                    upstream(black_box(false)).await
                });
                once(&r, before)
            },
        );
        b.note("the floor: one timer and one `block_on`, no hedging");

        let hedge = Hedge::new("bench-hedge-fires", hedge_config());
        b.row("fires-run", "ours: Hedge::run", Who::Ours, BATCHES, |_| {
            let before = body_runs();
            let mut made = 0;
            let r = paused.block_on(hedge.run(|| {
                made += 1;
                slow_then_call(made == 1)
            }));
            once(&r, before) && made == 2
        });
        b.note("2 attempts, the second wins (checked: attempts made, body runs, hedges won)");
        let status = hedge.status();
        assert_eq!(status.hedges, status.calls);
        assert_eq!(status.hedges_won, status.calls);

        b.row("fires-macro", "ours: #[hedge]", Who::Ours, BATCHES, |_| {
            let (before, made) = (body_runs(), attempts());
            let r = paused.block_on(macro_hedge_fires(false));
            once(&r, before) && attempts() == made + 2
        });
        let by_macro = resilience::registry().hedge("bench-hedge-macro-fires", &hedge_config());
        let status = by_macro.status();
        assert_eq!(status.hedges_won, status.calls);

        let layer = resilience::tower::hedge("bench-hedge-fires-tower", hedge_config());
        let mut svc = layer.layer(tower::service_fn(slow_first));
        b.row(
            "fires-tower",
            "ours: resilience::tower::hedge",
            Who::Ours,
            BATCHES,
            |_| {
                let (before, made) = (body_runs(), attempts());
                let r = paused.block_on(tower_call(&mut svc, false));
                once(&r, before) && attempts() == made + 2
            },
        );
        let status = layer.hedge().status();
        assert_eq!(status.hedges_won, status.calls);

        let mut svc = tower_hedge().layer(tower::service_fn(slow_first));
        b.row("fires-peer", TOWER, Who::Peer, BATCHES, |_| {
            let (before, made) = (body_runs(), attempts());
            let r = paused.block_on(tower_call(&mut svc, false));
            once(&r, before) && attempts() == made + 2
        });
    }

    if let Some((only, _)) = &b.only {
        assert!(
            only == "list",
            "no row {only:?} (POLICIES_ROW=list lists them)"
        );
        return;
    }
    b.print();
    println!();
    let allocating = b.allocating();
    if allocating.is_empty() {
        println!("Zero allocations per call on every path of ours: met");
    } else {
        println!(
            "Zero allocations per call on every path of ours: MISSED: {}",
            allocating.join(", ")
        );
    }
}
