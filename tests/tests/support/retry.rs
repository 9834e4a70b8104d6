//! For the `retry_*` tests (`#[retry]` policies): an error with kinds to
//! classify and hints to give, and [`Upstream`], a scripted upstream that
//! records when each attempt started. Each test file adds the annotated
//! methods it calls in an `impl Upstream` block of its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// An upstream's errors, of the kinds the retry policies tell apart; some
/// carry the server's hint of when to try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("timed out")]
    Timeout,
    #[error("unavailable")]
    Unavailable(Option<Duration>),
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error("bad request {0}")]
    BadRequest(u32),
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

use ApiError::{RateLimited, Timeout, Unavailable};

impl ApiError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Timeout | Unavailable(_))
    }
}

/// What one attempt does: wait `hang` (forever when `None`), then answer.
#[derive(Clone)]
pub struct Step {
    hang: Option<Duration>,
    answer: Result<u32, ApiError>,
}

pub fn fails(e: ApiError) -> Step {
    Step {
        hang: Some(Duration::ZERO),
        answer: Err(e),
    }
}

pub fn ok(n: u32) -> Step {
    Step {
        hang: Some(Duration::ZERO),
        answer: Ok(n),
    }
}

pub fn slow(after: Duration, answer: Result<u32, ApiError>) -> Step {
    Step {
        hang: Some(after),
        answer,
    }
}

pub fn hangs() -> Step {
    Step {
        hang: None,
        answer: Ok(0),
    }
}

/// A scripted upstream: each attempt takes the next step and records when it
/// started and whether it finished.
pub struct Upstream {
    script: Mutex<VecDeque<Step>>,
    started: Mutex<Vec<Duration>>,
    pub finished: AtomicU32,
    retries: Mutex<Vec<(u32, ApiError, Duration)>>,
    origin: Instant,
}

impl Upstream {
    pub fn new(script: impl IntoIterator<Item = Step>) -> Self {
        Upstream {
            script: Mutex::new(script.into_iter().collect()),
            started: Mutex::new(Vec::new()),
            finished: AtomicU32::new(0),
            retries: Mutex::new(Vec::new()),
            origin: Instant::now(),
        }
    }

    pub async fn call(&self) -> Result<u32, ApiError> {
        self.started.lock().unwrap().push(self.origin.elapsed());
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .expect("an attempt beyond the script");
        match step.hang {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
        step.answer
    }

    pub fn started(&self) -> Vec<Duration> {
        self.started.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> usize {
        self.started.lock().unwrap().len()
    }

    pub fn record_retry(&self, attempt: u32, error: &ApiError, delay: Duration) {
        self.retries
            .lock()
            .unwrap()
            .push((attempt, error.clone(), delay));
    }

    pub fn retries(&self) -> Vec<(u32, ApiError, Duration)> {
        self.retries.lock().unwrap().clone()
    }

    pub fn gaps(&self) -> Vec<Duration> {
        self.started().windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// The delay the server asked for, if any.
pub fn server_hint(e: &ApiError) -> Option<Duration> {
    match e {
        Unavailable(hint) => *hint,
        RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    }
}

/// The errors worth another attempt.
pub fn is_transient(e: &ApiError) -> bool {
    matches!(e, Timeout | Unavailable(_))
}
