//! A runner of integrations: every integration is fetched in
//! parallel, each behind its own circuit breaker named after it (3 failures
//! to open, 60 s to recover) and a 30 s timeout, so one broken integration
//! never slows or breaks the others.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::time::Duration;

use resilience::{circuit_breaker, timeout};
use tokio::time::Instant;

/// How a simulated integration behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers after 200 ms.
    Healthy,
    /// Fails after 100 ms.
    Failing,
    /// Never answers.
    Hanging,
}

/// Why an integration's fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The upstream answered with an error.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// A resilience layer failed the call (timeout, open circuit).
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

/// A simulated integration (UniFi, Cloudflare, …).
#[derive(Debug)]
pub struct Integration {
    name: String,
    behaviour: Behaviour,
    calls: AtomicU32,
}

impl Integration {
    /// An integration called `name` behaving as `behaviour`.
    pub fn new(name: &str, behaviour: Behaviour) -> Self {
        Integration {
            name: name.to_owned(),
            behaviour,
            calls: AtomicU32::new(0),
        }
    }

    /// The integration's name (also its breaker's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How often the upstream was actually called.
    pub fn upstream_calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One fetch: its own breaker (by name) and a 30 s timeout.
    #[circuit_breaker(name = self.name.as_str(), failure_threshold = 3, recovery_timeout = 60)]
    #[timeout("30s")]
    pub async fn fetch(&self) -> Result<String, IntegrationError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.behaviour {
            Behaviour::Healthy => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(format!("{} records", 42))
            }
            Behaviour::Failing => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(IntegrationError::Upstream("503 Service Unavailable".into()))
            }
            Behaviour::Hanging => std::future::pending().await,
        }
    }
}

/// What one integration returned in a round, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Data.
    Data(String),
    /// The upstream failed.
    Upstream(String),
    /// No answer within the timeout.
    Timeout(Duration),
    /// Rejected by the open circuit without calling the upstream.
    CircuitOpen(Option<Duration>),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Data(d) => write!(f, "data: {d}"),
            Verdict::Upstream(e) => write!(f, "upstream error: {e}"),
            Verdict::Timeout(after) => write!(f, "timeout after {after:?}"),
            Verdict::CircuitOpen(Some(wait)) => {
                write!(f, "circuit open (probe in {}s)", wait.as_secs())
            }
            Verdict::CircuitOpen(None) => write!(f, "circuit open"),
        }
    }
}

/// One integration's result in a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The integration.
    pub name: String,
    /// What it returned.
    pub verdict: Verdict,
    /// How long its fetch took.
    pub took: Duration,
}

/// Fetches every integration in parallel; one report each, in order.
pub async fn run_round(integrations: &[Integration]) -> Vec<Report> {
    join_all(integrations.iter().map(|integration| async move {
        let start = Instant::now();
        let verdict = match integration.fetch().await {
            Ok(data) => Verdict::Data(data),
            Err(IntegrationError::Upstream(e)) => Verdict::Upstream(e),
            Err(IntegrationError::Resilience(e)) if e.is_timeout() => {
                Verdict::Timeout(e.timeout_after().unwrap_or_default())
            }
            Err(IntegrationError::Resilience(e)) if e.is_circuit_open() => {
                Verdict::CircuitOpen(e.retry_after())
            }
            Err(IntegrationError::Resilience(other)) => Verdict::Upstream(other.to_string()),
        };
        Report {
            name: integration.name.clone(),
            verdict,
            took: start.elapsed(),
        }
    }))
    .await
}

/// Runs every future concurrently on the current task and returns their
/// outputs in order: `futures::future::join_all` for a handful of futures,
/// written out so that this crate (and so the demo's build) needs no
/// `futures`.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in running.iter_mut().zip(&mut outputs) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("finished")).collect()
}
