//! The errors the resilience layers themselves produce.

mod identity;

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use identity::{Identity, OpenTiming, Owner};

/// An error produced by a resilience layer rather than by the protected call:
/// a circuit breaker rejected the call, a timeout cut it, a bulkhead had no
/// room for it.
///
/// Annotated functions hand these to the caller as `E::from(resilience::Error)`,
/// so the function's error type must implement `From<resilience::Error>` wherever
/// a layer can fail (`anyhow::Error`, `eyre::Report`, `Box<dyn Error + Send + Sync>`
/// and `std::io::Error` already do).
///
/// It is one word (`size_of::<Error>() == 8`, and `Option<Error>` too), so
/// that `Result`s stay small through every layer, and it is built with no
/// allocation, no clock read and no atomic read-modify-write: a rejection,
/// the path that runs on every call while a dependency is down, costs
/// nothing beyond the decision. What it is about (the breaker's or
/// bulkhead's name, how long until a probe may run) is looked up when asked:
///
/// ```
/// use resilience::{BreakerConfig, CircuitBreaker, ErrorKind, Outcome};
///
/// let breaker = CircuitBreaker::new("payments", BreakerConfig::builder().failure_threshold(1).build()?);
/// breaker.try_acquire()?.record(Outcome::Failure);
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.kind(), ErrorKind::CircuitOpen);
/// assert_eq!(rejected.name().as_deref(), Some("payments"));
/// assert!(rejected.retry_after().is_some());
/// assert!(rejected.to_string().starts_with("circuit breaker `payments` is open"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A retry that runs out of attempts never produces one of these: it returns the
/// last error of the call unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(NonZeroU64);

/// What kind of [`Error`] a layer produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A circuit breaker is open (or its half-open probes are all taken, or
    /// it was forced open) and rejected the call without running it.
    CircuitOpen,
    /// One attempt of the call took longer than its timeout and was cancelled.
    Timeout,
    /// A bulkhead had no free slot within the time it may wait.
    BulkheadFull,
    /// A rate limiter's limit was reached, and the call's turn was further
    /// off than it may wait.
    RateLimited,
}

/// The kind, in the error's top two bits (never zero).
const SHIFT: u32 = 62;
const PAYLOAD: u64 = (1 << SHIFT) - 1;
const OPEN: u64 = 1;
const TIMEOUT: u64 = 2;
const FULL: u64 = 3;
/// Of a `FULL` payload: a rate limiter's, not a bulkhead's (identities use
/// the 61 bits below).
const LIMITED: u64 = 1 << 61;

impl Error {
    fn pack(kind: u64, payload: u64) -> Self {
        match NonZeroU64::new((kind << SHIFT) | (payload & PAYLOAD)) {
            Some(bits) => Error(bits),
            None => unreachable!("the kind is never zero"),
        }
    }

    /// The breaker registered as `breaker` rejected a call.
    #[inline]
    pub(crate) fn circuit_open(breaker: &Identity) -> Self {
        Self::pack(OPEN, breaker.bits())
    }

    /// The error of a call that timed out after `after` (kept to the
    /// nanosecond, up to 146 years): what `#[timeout]` and [`Timeout`](crate::Timeout)
    /// produce; public for hand-written layers and tests.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let e = resilience::Error::timeout(Duration::from_millis(250));
    /// assert_eq!(e.timeout_after(), Some(Duration::from_millis(250)));
    /// assert_eq!(e.to_string(), "call timed out after 250ms");
    /// ```
    pub fn timeout(after: Duration) -> Self {
        let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        Self::pack(TIMEOUT, nanos.min(PAYLOAD))
    }

    /// The bulkhead registered as `bulkhead` had no slot.
    pub(crate) fn bulkhead_full(bulkhead: &Identity) -> Self {
        Self::pack(FULL, bulkhead.bits())
    }

    /// The rate limiter registered as `limiter` refused a call.
    pub(crate) fn rate_limited(limiter: &Identity) -> Self {
        Self::pack(FULL, limiter.bits() | LIMITED)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self.0.get() >> SHIFT {
            OPEN => ErrorKind::CircuitOpen,
            TIMEOUT => ErrorKind::Timeout,
            _ if self.payload() & LIMITED != 0 => ErrorKind::RateLimited,
            _ => ErrorKind::BulkheadFull,
        }
    }

    fn payload(&self) -> u64 {
        self.0.get() & PAYLOAD
    }

    fn who(&self) -> Option<identity::Lookup> {
        match self.kind() {
            ErrorKind::CircuitOpen | ErrorKind::BulkheadFull | ErrorKind::RateLimited => {
                identity::lookup(self.payload() & !LIMITED)
            }
            ErrorKind::Timeout => None,
        }
    }

    /// Whether a rate limiter refused the call ([`ErrorKind::RateLimited`]).
    pub fn is_rate_limited(&self) -> bool {
        self.kind() == ErrorKind::RateLimited
    }

    /// Whether a circuit breaker rejected the call ([`ErrorKind::CircuitOpen`]).
    pub fn is_circuit_open(&self) -> bool {
        self.kind() == ErrorKind::CircuitOpen
    }

    /// Whether the call timed out ([`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether a bulkhead was full ([`ErrorKind::BulkheadFull`]).
    pub fn is_bulkhead_full(&self) -> bool {
        self.kind() == ErrorKind::BulkheadFull
    }

    /// The name of the breaker that rejected the call, of the full
    /// bulkhead or of the rate limiter; `None` for a timeout (or once the breaker is gone and its
    /// slot reused).
    pub fn name(&self) -> Option<Arc<str>> {
        self.who().map(|w| w.name)
    }

    /// For a rejection: how long until the breaker lets a probe through, as
    /// of now (zero once the open time is over); `None` while the breaker is
    /// half-open with its probes busy, forced open, no longer open, or gone.
    /// Callers may pass it on (a `Retry-After` header). For a rate
    /// limiter's refusal: how long until a call would be allowed, as of now
    /// (a retry above the limiter waits that long).
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind() {
            ErrorKind::CircuitOpen | ErrorKind::RateLimited => self.who()?.retry_after(),
            _ => None,
        }
    }

    /// For a timeout: the timeout that elapsed.
    pub fn timeout_after(&self) -> Option<Duration> {
        (self.kind() == ErrorKind::Timeout).then(|| Duration::from_nanos(self.payload()))
    }

    /// For a full bulkhead: its limit of calls in flight.
    pub fn max_concurrent(&self) -> Option<u32> {
        match self.kind() {
            ErrorKind::BulkheadFull => self.who()?.max_concurrent(),
            _ => None,
        }
    }
}

/// A name for messages: the registered one, or a placeholder.
fn named(name: Option<Arc<str>>) -> String {
    name.map_or_else(|| "(dropped)".to_owned(), |n| n.to_string())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            ErrorKind::CircuitOpen => {
                let who = self.who();
                let retry_after = who.as_ref().and_then(identity::Lookup::retry_after);
                write!(
                    f,
                    "circuit breaker `{}` is open; {}",
                    named(who.map(|w| w.name)),
                    RetryAfter(retry_after)
                )
            }
            ErrorKind::Timeout => {
                write!(
                    f,
                    "call timed out after {:?}",
                    Duration::from_nanos(self.payload())
                )
            }
            ErrorKind::RateLimited => {
                let who = self.who();
                let retry_after = who.as_ref().and_then(identity::Lookup::retry_after);
                write!(f, "rate limit `{}` reached", named(who.map(|w| w.name)))?;
                match retry_after {
                    Some(d) => write!(f, "; the next call may run in {d:.1?}"),
                    None => Ok(()),
                }
            }
            ErrorKind::BulkheadFull => {
                let who = self.who();
                let max = who.as_ref().and_then(identity::Lookup::max_concurrent);
                write!(f, "bulkhead `{}` is full", named(who.map(|w| w.name)))?;
                match max {
                    Some(max) => write!(f, " ({max} calls in flight)"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind());
        match self.kind() {
            ErrorKind::CircuitOpen => d
                .field("name", &self.name())
                .field("retry_after", &self.retry_after()),
            ErrorKind::Timeout => d.field("after", &self.timeout_after()),
            ErrorKind::BulkheadFull => d
                .field("name", &self.name())
                .field("max_concurrent", &self.max_concurrent()),
            ErrorKind::RateLimited => d
                .field("name", &self.name())
                .field("retry_after", &self.retry_after()),
        };
        d.finish()
    }
}

impl std::error::Error for Error {}

/// Formats the "may close in …" part of a circuit-open message.
struct RetryAfter(Option<Duration>);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) if d.is_zero() => f.write_str("a probe may run now"),
            Some(d) => write!(f, "a probe may run in {d:.1?}"),
            None => f.write_str("waiting for its probes to finish"),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::Timeout => std::io::ErrorKind::TimedOut,
            ErrorKind::CircuitOpen | ErrorKind::BulkheadFull | ErrorKind::RateLimited => {
                std::io::ErrorKind::ConnectionRefused
            }
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests;
