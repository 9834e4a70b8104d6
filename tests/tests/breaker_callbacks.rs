//! Callbacks of `#[circuit_breaker]`, on the paused clock: `on_open`,
//! `on_half_open` and `on_close` receive each transition, a panicking
//! callback breaks neither the call nor the breaker, and registry listeners
//! see the transitions of attribute-made breakers.
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use resilience::{circuit_breaker, registry, CircuitState, Transition, TransitionCause};
use support::breaker::{caused_by, rejected, transition, ApiError};
use support::{secs, state};
use tokio::time::advance;

use ApiError::{Timeout, Unavailable};
use CircuitState::{Closed, ForcedOpen, HalfOpen, Open};

static CALLBACKS: Mutex<Vec<(&str, support::breaker::Seen)>> = Mutex::new(Vec::new());

fn record_open(t: &Transition) {
    CALLBACKS
        .lock()
        .unwrap()
        .push(("on_open", support::breaker::Seen::from(t)));
}

#[circuit_breaker(
    name = "pol-callbacks",
    failure_threshold = 2,
    recovery_timeout = "10s",
    on_open = record_open,
    on_half_open = |t| CALLBACKS.lock().unwrap().push(("on_half_open", support::breaker::Seen::from(t))),
    on_close = |t: &resilience::Transition| CALLBACKS.lock().unwrap().push(("on_close", support::breaker::Seen::from(t)))
)]
async fn with_callbacks(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn on_open_on_half_open_and_on_close_receive_each_transition() {
    const NAME: &str = "pol-callbacks";
    let log = || std::mem::take(&mut *CALLBACKS.lock().unwrap());
    with_callbacks(Err(Timeout)).await.unwrap_err();
    assert_eq!(log(), [], "no transition yet");
    with_callbacks(Err(Unavailable(503))).await.unwrap_err();
    assert_eq!(
        log(),
        [(
            "on_open",
            caused_by(
                transition(
                    NAME,
                    Closed,
                    Open,
                    TransitionCause::FailureThreshold { failures: 2 },
                    2,
                    0,
                ),
                "upstream unavailable (503)"
            )
        )]
    );
    // Rejections are no transitions.
    with_callbacks(Ok(())).await.unwrap_err();
    assert_eq!(log(), []);

    advance(secs(10)).await;
    with_callbacks(Err(Timeout)).await.unwrap_err();
    assert_eq!(
        log(),
        [
            (
                "on_half_open",
                transition(
                    NAME,
                    Open,
                    HalfOpen,
                    TransitionCause::RecoveryTimeoutElapsed,
                    0,
                    0
                )
            ),
            (
                "on_open",
                caused_by(
                    transition(NAME, HalfOpen, Open, TransitionCause::ProbeFailed, 0, 0),
                    "upstream timed out"
                )
            ),
        ]
    );

    advance(secs(10)).await;
    with_callbacks(Ok(())).await.unwrap();
    assert_eq!(
        log(),
        [
            (
                "on_half_open",
                transition(
                    NAME,
                    Open,
                    HalfOpen,
                    TransitionCause::RecoveryTimeoutElapsed,
                    0,
                    0
                )
            ),
            (
                "on_close",
                transition(
                    NAME,
                    HalfOpen,
                    Closed,
                    TransitionCause::ProbesSucceeded { successes: 1 },
                    0,
                    0
                )
            ),
        ]
    );
    assert_eq!(state(NAME), Closed);
}

static PANICKY_RUNS: AtomicU32 = AtomicU32::new(0);
static PANICKY_CLOSED: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "pol-panicking-callback",
    failure_threshold = 2,
    recovery_timeout = "10s",
    on_open = |_| panic!("the alerting is down"),
    on_close = |_| {
        PANICKY_CLOSED.fetch_add(1, Ordering::SeqCst);
    }
)]
async fn panicky(result: Result<(), ApiError>) -> Result<(), ApiError> {
    PANICKY_RUNS.fetch_add(1, Ordering::SeqCst);
    result
}

#[tokio::test(start_paused = true)]
async fn a_panicking_on_open_breaks_neither_the_call_nor_the_breaker() {
    const NAME: &str = "pol-panicking-callback";
    assert_eq!(panicky(Err(Timeout)).await, Err(Timeout));
    // This failure opens the circuit and runs the panicking callback: the
    // caller still gets its own error.
    assert_eq!(panicky(Err(Unavailable(502))).await, Err(Unavailable(502)));
    assert_eq!(state(NAME), Open);
    assert_eq!(rejected(panicky(Ok(())).await, NAME), Some(secs(10)));
    assert_eq!(PANICKY_RUNS.load(Ordering::SeqCst), 2);

    // A failed probe re-opens it (the callback panics again), then a
    // successful one closes it.
    advance(secs(10)).await;
    assert_eq!(panicky(Err(Timeout)).await, Err(Timeout));
    assert_eq!(state(NAME), Open);
    advance(secs(10)).await;
    assert_eq!(panicky(Ok(())).await, Ok(()));
    assert_eq!(state(NAME), Closed);
    assert_eq!(PANICKY_CLOSED.load(Ordering::SeqCst), 1);
    assert_eq!(PANICKY_RUNS.load(Ordering::SeqCst), 4);
}

static REGISTRY_SEEN: Mutex<Vec<(String, CircuitState, CircuitState)>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "pol-registry-listener",
    failure_threshold = 1,
    recovery_timeout = 1
)]
async fn named_for_listener(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[circuit_breaker(failure_threshold = 1, recovery_timeout = 1)]
async fn private_for_listener(result: Result<(), ApiError>) -> Result<(), ApiError> {
    result
}

#[tokio::test(start_paused = true)]
async fn registry_listeners_see_transitions_of_attribute_made_breakers() {
    // Created before the listener is added: it still reports to it.
    named_for_listener(Ok(())).await.unwrap();
    registry().on_transition(|t| {
        if t.name.contains("pol-registry-listener") || t.name.ends_with("::private_for_listener") {
            let name = t.name.rsplit("::").next().unwrap().to_owned();
            REGISTRY_SEEN.lock().unwrap().push((name, t.from, t.to));
        }
    });
    named_for_listener(Err(Timeout)).await.unwrap_err();
    private_for_listener(Err(Timeout)).await.unwrap_err();
    advance(secs(1)).await;
    named_for_listener(Ok(())).await.unwrap();
    private_for_listener(Ok(())).await.unwrap();
    assert!(registry().force_open("pol-registry-listener"));
    assert!(registry().reset("pol-registry-listener"));
    let seen = |name: &str| -> Vec<_> {
        REGISTRY_SEEN
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|&(_, from, to)| (from, to))
            .collect()
    };
    let cycle = [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)];
    assert_eq!(seen("private_for_listener"), cycle);
    assert_eq!(
        seen("pol-registry-listener"),
        [&cycle[..], &[(Closed, ForcedOpen), (ForcedOpen, Closed)]].concat()
    );
}
