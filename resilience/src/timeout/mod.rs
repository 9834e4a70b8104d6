//! A bound on how long a call may take: the home of what `#[timeout]` (and
//! `timeout = …` in `#[resilient]`) does, for hand-written callers too.

use std::future::Future;
use std::time::Duration;

use resilience_spec::{TimeoutValues, Value};

use crate::{ConfigError, Error};

/// Cancels a call that takes longer than its duration; the call then fails
/// with an [`Error`] of kind [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
///
/// ```
/// use std::time::Duration;
/// use resilience::Timeout;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bound = Timeout::new(Duration::from_secs(30))?;
/// let answer: Result<u32, anyhow::Error> = bound.call(async { Ok(7) }).await;
/// assert_eq!(answer?, 7);
/// assert!(Timeout::new(Duration::ZERO).is_err(), "the attribute's rule: longer than zero");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    after: Duration,
}

impl Timeout {
    /// A bound of `after`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `after` is zero (the rule of `#[timeout]`).
    pub fn new(after: Duration) -> Result<Self, ConfigError> {
        let values = TimeoutValues {
            timeout: Value::Given(after),
        };
        crate::spec::checked(values.check())?;
        Ok(Timeout { after })
    }

    /// The bound.
    pub const fn after(&self) -> Duration {
        self.after
    }

    /// Runs `call`, cancelling it (dropping its future) once the bound has
    /// passed.
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` a timeout [`Error`].
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        match bounded(self.after, call).await {
            Some(result) => result,
            None => Err(E::from(Error::timeout(self.after))),
        }
    }
}

/// `call`'s output, or `None` (reported to `tracing`) once `after` passed.
pub(crate) async fn bounded<F: Future>(after: Duration, call: F) -> Option<F::Output> {
    match tokio::time::timeout(after, call).await {
        Ok(output) => Some(output),
        Err(_) => {
            tracing::debug!(target: "resilience", ?after, "call timed out after {after:?}");
            None
        }
    }
}
