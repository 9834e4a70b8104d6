//! The call path allocates nothing: admitting and recording calls, tripping
//! the breaker, rejecting calls; the text of the error that tripped it is
//! written only when a listener is there to read it.
//!
//! A counting global allocator, counted per thread: the other tests of this
//! binary, on their own threads, do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

use resilience::{BreakerConfig, CircuitBreaker, CircuitState, Outcome};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; the count is a
// thread-local `Cell` (no allocation, no lock).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn breaker(name: &str) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .failure_threshold(2)
        .build()
        .unwrap();
    CircuitBreaker::new(name, config)
}

/// Calls, failures with their errors, the trip and a rejection.
fn trip(b: &CircuitBreaker) {
    b.try_acquire().unwrap().record(Outcome::Success);
    b.try_acquire()
        .unwrap()
        .record_error(Outcome::Failure, &"connection refused");
    b.try_acquire()
        .unwrap()
        .record_error(Outcome::Failure, &"connection refused");
    assert!(b.try_acquire().is_err(), "open: rejected");
}

/// With the `metrics` feature, each count builds its labelled key (the
/// facade's way): the call path allocates there, and only the difference a
/// listener makes is checked.
#[test]
fn calls_and_a_trip_no_listener_hears_allocate_nothing() {
    // Once, so that what is set up on first use (the `tracing` call sites'
    // registration) is not counted.
    trip(&breaker("warm-up"));
    let b = breaker("quiet");
    let quiet = allocations(|| trip(&b));
    assert_eq!(b.state(), CircuitState::Open);
    #[cfg(not(feature = "metrics"))]
    assert_eq!(quiet, 0);
    let heard = breaker("heard");
    heard.on_transition(|_| {});
    let told = allocations(|| trip(&heard));
    assert!(
        told > quiet,
        "the error's text, written for the listener: {told} vs {quiet}"
    );
}

#[test]
fn a_listener_hears_the_error_that_tripped_the_breaker() {
    let b = breaker("heard");
    let errors = Arc::new(Mutex::new(Vec::new()));
    let heard = errors.clone();
    b.on_transition(move |t| heard.lock().unwrap().push(t.error().map(str::to_owned)));
    trip(&b);
    assert_eq!(
        *errors.lock().unwrap(),
        [Some("connection refused".to_owned())]
    );
}
