//! The errors the resilience layers themselves produce.

use std::sync::Arc;
use std::time::Duration;

/// An error produced by a resilience layer rather than by the protected call.
///
/// Annotated functions hand these to the caller as `E::from(resilience::Error::…)`,
/// so the function's error type must implement `From<resilience::Error>` wherever
/// a layer can fail (`anyhow::Error`, `eyre::Report`, `Box<dyn Error + Send + Sync>`
/// and `std::io::Error` already do).
///
/// A retry that runs out of attempts never produces one of these: it returns the
/// last error of the call unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The circuit breaker `name` is open (or its half-open probes are all taken)
    /// and rejected the call without running it.
    #[error("circuit breaker `{name}` is open; {}", RetryAfter(*retry_after))]
    CircuitOpen {
        /// The breaker's name.
        name: Arc<str>,
        /// How long until the breaker lets a probe through, if known; `None` while
        /// the breaker is half-open and its probes are busy, or forced open.
        retry_after: Option<Duration>,
    },
    /// One attempt of the call took longer than its timeout and was cancelled.
    #[error("call timed out after {after:?}")]
    Timeout {
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A bulkhead had no free slot within the time it may wait.
    #[error("bulkhead `{name}` is full ({max_concurrent} calls in flight)")]
    BulkheadFull {
        /// The bulkhead's name.
        name: Arc<str>,
        /// The bulkhead's concurrency limit.
        max_concurrent: u32,
    },
}

impl Error {
    /// Whether this is [`Error::CircuitOpen`].
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Error::CircuitOpen { .. })
    }

    /// Whether this is [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// Formats the "may close in …" part of a circuit-open message.
struct RetryAfter(Option<Duration>);

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) if d.is_zero() => f.write_str("a probe may run now"),
            Some(d) => write!(f, "a probe may run in {d:.1?}"),
            None => f.write_str("waiting for its probes to finish"),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::Timeout { .. } => std::io::ErrorKind::TimedOut,
            Error::CircuitOpen { .. } | Error::BulkheadFull { .. } => {
                std::io::ErrorKind::ConnectionRefused
            }
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_breaker_and_the_wait() {
        let e = Error::CircuitOpen {
            name: "unifi".into(),
            retry_after: Some(Duration::from_secs(42)),
        };
        assert_eq!(
            e.to_string(),
            "circuit breaker `unifi` is open; a probe may run in 42.0s"
        );
        let e = Error::CircuitOpen {
            name: "llm".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "circuit breaker `llm` is open; waiting for its probes to finish"
        );
        let e = Error::Timeout {
            after: Duration::from_millis(250),
        };
        assert_eq!(e.to_string(), "call timed out after 250ms");
    }

    #[test]
    fn converts_into_io_error_with_a_fitting_kind() {
        let io: std::io::Error = Error::Timeout {
            after: Duration::from_secs(1),
        }
        .into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        let io: std::io::Error = Error::CircuitOpen {
            name: "x".into(),
            retry_after: None,
        }
        .into();
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        let inner = io.into_inner().unwrap();
        assert!(inner.downcast_ref::<Error>().unwrap().is_circuit_open());
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<Error>();
    }
}
