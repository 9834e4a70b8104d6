//! For the `breaker_*` tests (`#[circuit_breaker]` policies): an error with
//! kinds to classify, what a rejection says, and the transitions expected.

use std::time::Duration;

use resilience::{CircuitState, Transition, TransitionCause};

/// An upstream's errors, of the kinds the breaker policies tell apart.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream unavailable ({0})")]
    Unavailable(u16),
    #[error("bad request")]
    BadRequest,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

/// The `retry_after` of a `CircuitOpen` rejection by breaker `name`; panics on
/// anything else.
#[track_caller]
pub fn rejected<T: std::fmt::Debug>(result: Result<T, ApiError>, name: &str) -> Option<Duration> {
    match result {
        Err(ApiError::Resilience(e)) if e.is_circuit_open() => {
            assert_eq!(e.name().as_deref(), Some(name));
            e.retry_after()
        }
        other => panic!("expected CircuitOpen from `{name}`, got {other:?}"),
    }
}

/// What a listener saw of a transition, read through its accessors (a
/// `Transition` is `#[non_exhaustive]`: only the breaker makes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub from: CircuitState,
    pub to: CircuitState,
    pub cause: TransitionCause,
    pub failures: u32,
    pub calls: u32,
    pub error: Option<String>,
}

impl From<&Transition> for Seen {
    fn from(t: &Transition) -> Self {
        Seen {
            name: t.name().to_owned(),
            from: t.from(),
            to: t.to(),
            cause: t.cause(),
            failures: t.failures(),
            calls: t.calls(),
            error: t.error().map(str::to_owned),
        }
    }
}

pub fn transition(
    name: &str,
    from: CircuitState,
    to: CircuitState,
    cause: TransitionCause,
    failures: u32,
    calls: u32,
) -> Seen {
    Seen {
        name: name.into(),
        from,
        to,
        cause,
        failures,
        calls,
        error: None,
    }
}

/// The transition, caused by a call that returned `error`.
pub fn caused_by(transition: Seen, error: &str) -> Seen {
    Seen {
        error: Some(error.into()),
        ..transition
    }
}
