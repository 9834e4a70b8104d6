//! The hedged call itself: up to `1 + MAX_HEDGES` attempts held inline in
//! one hand-written future, with one inline `tokio::time::Sleep` for the
//! next hedge.
//!
//! The engine (`Core`) does not know how attempts are made: `Hedge::run`'s
//! future hands it the caller's closure, the tower layer's a service clone
//! made ready for each attempt.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::Hedge;

/// Attempts a call has room for: the first plus `HedgeConfig::MAX_HEDGES`.
pub(crate) const MAX_ATTEMPTS: usize = super::HedgeConfig::MAX_HEDGES as usize + 1;

pin_project_lite::pin_project! {
    /// One attempt's place.
    #[project = SlotProj]
    enum Slot<Fut> {
        Empty,
        Running { #[pin] attempt: Fut },
    }
}

impl<Fut: Future> Slot<Fut> {
    /// The attempt's output once it is done (the slot is emptied then);
    /// `Pending` for an empty slot.
    fn poll_attempt(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        match self.as_mut().project() {
            SlotProj::Empty => Poll::Pending,
            SlotProj::Running { attempt } => {
                let output = std::task::ready!(attempt.poll(cx));
                self.set(Slot::Empty);
                Poll::Ready(output)
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// `MAX_ATTEMPTS` attempts, pinned in place (pin-project-lite projects
    /// named fields, not arrays: one field each).
    struct Slots<Fut> {
        #[pin] a0: Slot<Fut>,
        #[pin] a1: Slot<Fut>,
        #[pin] a2: Slot<Fut>,
        #[pin] a3: Slot<Fut>,
        #[pin] a4: Slot<Fut>,
    }
}

// One field per attempt above: a `MAX_HEDGES` raised needs a field more.
const _: () = assert!(MAX_ATTEMPTS == 5);

impl<Fut> Slots<Fut> {
    const fn new() -> Self {
        Slots {
            a0: Slot::Empty,
            a1: Slot::Empty,
            a2: Slot::Empty,
            a3: Slot::Empty,
            a4: Slot::Empty,
        }
    }

    /// Attempt `i`'s slot (`i < MAX_ATTEMPTS`).
    fn get(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<Fut>> {
        let this = self.project();
        match i {
            0 => this.a0,
            1 => this.a1,
            2 => this.a2,
            3 => this.a3,
            _ => this.a4,
        }
    }
}

pin_project_lite::pin_project! {
    /// When the next hedge starts, if one is to.
    #[project = TimerProj]
    enum Timer {
        Idle,
        Armed { #[pin] sleep: Sleep },
    }
}

impl Timer {
    /// Fires at `deadline` (a sleep made once per call, then reset).
    fn arm(mut self: Pin<&mut Self>, deadline: Instant) {
        match self.as_mut().project() {
            TimerProj::Armed { sleep } => sleep.reset(deadline),
            TimerProj::Idle => self.set(Timer::Armed {
                sleep: tokio::time::sleep_until(deadline),
            }),
        }
    }

    fn poll_fired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            TimerProj::Idle => Poll::Pending,
            TimerProj::Armed { sleep } => sleep.poll(cx),
        }
    }
}

/// Why a hedge starts (for its `tracing` event).
#[derive(Debug, Clone, Copy)]
enum Cause {
    Slow,
    Failed,
}

pin_project_lite::pin_project! {
    /// The engine of a hedged call (see the module's documentation).
    #[project = CoreProj]
    pub(crate) struct Core<Fut> {
        // Attempts started (slot `i` is attempt `i`; slots are never reused).
        started: u8,
        // Attempts running now.
        running: u8,
        // No further hedge: `may_hedge` said no.
        stopped: bool,
        // The first hedge's timer is still to be armed: only once the
        // running attempts are pending (a call answered on its first poll
        // never makes a timer).
        arm_first: bool,
        done: bool,
        // Fixed at the first poll.
        delay: Option<Duration>,
        starts: [Option<Instant>; MAX_ATTEMPTS],
        #[pin]
        timer: Timer,
        #[pin]
        slots: Slots<Fut>,
    }
}

impl<Fut> Core<Fut> {
    /// A call whose first attempt is made on its first poll.
    pub(crate) const fn new() -> Self {
        Core {
            started: 0,
            running: 0,
            stopped: false,
            arm_first: false,
            done: false,
            delay: None,
            starts: [None; MAX_ATTEMPTS],
            timer: Timer::Idle,
            slots: Slots::new(),
        }
    }

    /// A call whose first attempt, `first`, started at `now` (the tower
    /// layer calls the ready service in `call`).
    #[cfg(feature = "tower")]
    pub(crate) fn started(first: Fut, now: Instant) -> Self {
        let mut core = Self::new();
        core.slots.a0 = Slot::Running { attempt: first };
        core.starts[0] = Some(now);
        core.started = 1;
        core.running = 1;
        core
    }

    /// Attempts started so far.
    pub(crate) fn attempts(&self) -> u8 {
        self.started
    }
}

impl<T, E, Fut> Core<Fut>
where
    Fut: Future<Output = Result<T, E>>,
{
    /// Drives every running attempt and the timer; `make` makes the next
    /// attempt, `may_hedge` is asked before each extra one.
    pub(crate) fn poll_hedged(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        hedge: &Hedge,
        make: &mut impl FnMut() -> Fut,
        may_hedge: &mut impl FnMut() -> bool,
    ) -> Poll<Result<T, E>> {
        let mut this = self.project();
        assert!(!*this.done, "a hedged call was polled after it completed");
        let delay = match *this.delay {
            Some(delay) => delay,
            None => {
                let now = Instant::now();
                let delay = hedge.delay_at(now);
                *this.delay = Some(delay);
                hedge.count_call();
                if *this.started == 0 {
                    this.start(make(), now);
                }
                *this.arm_first = true;
                delay
            }
        };
        // Attempts below `from` were polled in this call already.
        let mut from = 0;
        loop {
            let mut i = from;
            while i < usize::from(*this.started) {
                if let Poll::Ready(result) = this.slots.as_mut().get(i).poll_attempt(cx) {
                    *this.running -= 1;
                    match result {
                        Ok(value) => {
                            this.win(i, hedge);
                            return Poll::Ready(Ok(value));
                        }
                        Err(error) => {
                            // A failure starts the next hedge at once.
                            if !this.hedge(hedge, delay, Cause::Failed, make, may_hedge)
                                && *this.running == 0
                            {
                                this.finish();
                                return Poll::Ready(Err(error));
                            }
                        }
                    }
                }
                i += 1;
            }
            from = usize::from(*this.started);
            if *this.arm_first {
                if let Some(first) = this.starts[0] {
                    this.arm(first, delay, hedge);
                }
            }
            if this.timer.as_mut().poll_fired(cx).is_pending()
                || !this.hedge(hedge, delay, Cause::Slow, make, may_hedge)
            {
                return Poll::Pending;
            }
            // A new attempt (and maybe an expired timer again, for a zero
            // delay): poll them.
        }
    }
}

impl<Fut> CoreProj<'_, Fut> {
    fn start(&mut self, attempt: Fut, now: Instant) {
        let i = usize::from(*self.started);
        self.slots.as_mut().get(i).set(Slot::Running { attempt });
        self.starts[i] = Some(now);
        *self.started += 1;
        *self.running += 1;
    }

    /// The timer for the next hedge: `delay` after `from`, or none when no
    /// hedge is left (or the deadline is past the end of the clock).
    fn arm(&mut self, from: Instant, delay: Duration, hedge: &Hedge) {
        *self.arm_first = false;
        let left = u32::from(*self.started) <= hedge.config().max_hedges() && !*self.stopped;
        match from.checked_add(delay).filter(|_| left) {
            Some(deadline) => self.timer.as_mut().arm(deadline),
            None => self.timer.set(Timer::Idle),
        }
    }

    /// Starts the next hedge if one is left and `may_hedge` allows it.
    fn hedge(
        &mut self,
        hedge: &Hedge,
        delay: Duration,
        cause: Cause,
        make: &mut impl FnMut() -> Fut,
        may_hedge: &mut impl FnMut() -> bool,
    ) -> bool {
        if u32::from(*self.started) > hedge.config().max_hedges() || *self.stopped {
            *self.arm_first = false;
            self.timer.set(Timer::Idle);
            return false;
        }
        if !may_hedge() {
            *self.stopped = true;
            *self.arm_first = false;
            self.timer.set(Timer::Idle);
            tracing::debug!(
                target: "resilience",
                hedge = hedge.name(),
                attempt = *self.started + 1,
                "hedge `{}`: attempt {} not started (not allowed now)",
                hedge.name(),
                *self.started + 1
            );
            return false;
        }
        let now = Instant::now();
        let attempt = make();
        self.start(attempt, now);
        hedge.count_hedge();
        match cause {
            Cause::Slow => tracing::debug!(
                target: "resilience",
                hedge = hedge.name(),
                attempt = *self.started,
                ?delay,
                "hedge `{}`: attempt {} started, no answer after {delay:?}",
                hedge.name(),
                *self.started
            ),
            Cause::Failed => tracing::debug!(
                target: "resilience",
                hedge = hedge.name(),
                attempt = *self.started,
                "hedge `{}`: attempt {} started, an attempt failed",
                hedge.name(),
                *self.started
            ),
        }
        self.arm(now, delay, hedge);
        true
    }

    /// Attempt `winner` answered `Ok`: the others are cancelled (dropped).
    fn win(&mut self, winner: usize, hedge: &Hedge) {
        // Only a percentile delay needs the winner's latency: a fixed one
        // reads no clock here.
        if let (true, Some(start)) = (hedge.learns(), self.starts[winner]) {
            let now = Instant::now();
            hedge.record(now.saturating_duration_since(start), now);
        }
        if winner > 0 {
            hedge.count_won();
        }
        self.finish();
    }

    /// Drops every attempt still running and the timer.
    fn finish(&mut self) {
        for i in 0..usize::from(*self.started) {
            self.slots.as_mut().get(i).set(Slot::Empty);
        }
        self.timer.set(Timer::Idle);
        *self.arm_first = false;
        *self.running = 0;
        *self.done = true;
    }
}

/// Asks nothing: every hedge may start (the `may_hedge` of [`Hedge::run`]).
pub(crate) fn always() -> bool {
    true
}

pin_project_lite::pin_project! {
    /// A hedged call ([`Hedge::run`], [`Hedge::run_with`]): resolves to the
    /// first `Ok` of its attempts (the others are dropped at that moment),
    /// or to the last error when every attempt failed.
    ///
    /// Allocation-free: the attempts (up to `1 +`
    /// [`HedgeConfig::MAX_HEDGES`](crate::HedgeConfig::MAX_HEDGES)) and the
    /// timer live inline, so the future is about five attempt futures
    /// large. Each wake polls every running attempt (as `select!` does).
    /// With the `metrics` feature, a hedge started and a hedge won each
    /// build their counter's labelled key (the crate's metrics all do).
    /// Polled again once it has completed, it panics.
    ///
    /// ```
    /// # use std::alloc::{GlobalAlloc, Layout, System};
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # struct Counting;
    /// # static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
    /// # unsafe impl GlobalAlloc for Counting {
    /// #     unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    /// #         ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    /// #         unsafe { System.alloc(layout) }
    /// #     }
    /// #     unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    /// #         unsafe { System.dealloc(ptr, layout) }
    /// #     }
    /// # }
    /// # #[global_allocator]
    /// # static GLOBAL: Counting = Counting;
    /// use std::cell::Cell;
    /// use std::time::Duration;
    /// use resilience::{Hedge, HedgeConfig};
    ///
    /// static HEDGE: Hedge = Hedge::new("alloc-free", HedgeConfig::DEFAULT);
    ///
    /// # fn main() {
    /// let rt = tokio::runtime::Builder::new_current_thread()
    ///     .enable_time()
    ///     .start_paused(true)
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async {
    ///     let calls = Cell::new(0);
    ///     let attempt = || {
    ///         calls.set(calls.get() + 1);
    ///         let n = calls.get();
    ///         // Each call's first attempt takes a minute, its hedge a second.
    ///         let took = Duration::from_secs(if n % 2 == 1 { 60 } else { 1 });
    ///         async move {
    ///             tokio::time::sleep(took).await;
    ///             Ok::<u32, ()>(n)
    ///         }
    ///     };
    ///     assert_eq!(HEDGE.run(attempt).await, Ok(2)); // warms the timer wheel up
    ///
    ///     let before = ALLOCATIONS.load(Ordering::Relaxed);
    ///     assert_eq!(HEDGE.run(attempt).await, Ok(4), "the hedge won, after 2 s");
    ///     // With the `metrics` feature, each counter increment builds its
    ///     // labelled key, as every metric of the crate does: one allocation
    ///     // per hedge started, one per hedge won. Nothing else allocates.
    ///     let metric_keys = if cfg!(feature = "metrics") { 2 } else { 0 };
    ///     assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, metric_keys);
    ///
    ///     let before = ALLOCATIONS.load(Ordering::Relaxed);
    ///     let fast = HEDGE.run(|| async { Ok::<u32, ()>(0) });
    ///     assert_eq!(fast.await, Ok(0));
    ///     assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), before, "a call not hedged");
    ///     assert_eq!(HEDGE.status().hedges_won, 2);
    /// });
    /// # }
    /// ```
    pub struct HedgeFuture<'h, F, Fut, G = fn() -> bool> {
        hedge: &'h Hedge,
        attempt: F,
        may_hedge: G,
        #[pin]
        core: Core<Fut>,
    }
}

impl<'h, F, Fut, G> HedgeFuture<'h, F, Fut, G> {
    pub(crate) const fn new(hedge: &'h Hedge, attempt: F, may_hedge: G) -> Self {
        HedgeFuture {
            hedge,
            attempt,
            may_hedge,
            core: Core::new(),
        }
    }
}

impl<F, Fut, G> std::fmt::Debug for HedgeFuture<'_, F, Fut, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HedgeFuture")
            .field("hedge", &self.hedge.name())
            .field("attempts", &self.core.attempts())
            .finish_non_exhaustive()
    }
}

impl<F, Fut, G, T, E> Future for HedgeFuture<'_, F, Fut, G>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    G: FnMut() -> bool,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.core
            .poll_hedged(cx, this.hedge, this.attempt, this.may_hedge)
    }
}
