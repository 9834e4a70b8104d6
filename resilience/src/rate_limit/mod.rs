//! Rate limiting: at most `rate` calls per `per` on average, `burst` at
//! once, shared by name.

mod gcra;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub(crate) use gcra::Gcra;
use resilience_spec::{RateLimitValues, Value};

use crate::error::{Identity, Owner};
use crate::sync::{AtomicU64, Ordering};
use crate::{ConfigError, Error};

/// How a [`RateLimiter`] paces calls: `rate` calls per `per` on average,
/// `burst` of them at once after a quiet period, and how long a call over
/// the limit may wait for its turn.
///
/// ```
/// use std::time::Duration;
/// use resilience::RateLimitConfig;
///
/// let config = RateLimitConfig::builder(50)   // 50 calls…
///     .per(Duration::from_secs(1))            // …a second
///     .burst(10)                              // 10 at once
///     .max_wait(Duration::from_millis(200))   // then wait up to 200 ms for a turn
///     .build()?;
/// assert_eq!(config.burst().get(), 10);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    rate: NonZeroU32,
    per: Duration,
    burst: NonZeroU32,
    max_wait: Duration,
}

const fn nz(n: u64) -> NonZeroU32 {
    match NonZeroU32::new(n as u32) {
        Some(n) => n,
        None => NonZeroU32::MIN, // unreachable for checked values
    }
}

impl RateLimitConfig {
    /// A builder for `rate` calls per second (change the period with
    /// [`per`](RateLimitConfigBuilder::per)).
    pub fn builder(rate: u32) -> RateLimitConfigBuilder {
        RateLimitConfigBuilder {
            values: RateLimitValues {
                rate: Value::Given(rate.into()),
                ..RateLimitValues::NONE
            },
        }
    }

    /// The configuration of values that passed [`RateLimitValues::check`].
    pub(crate) const fn from_checked(v: &RateLimitValues) -> Self {
        RateLimitConfig {
            rate: nz(v.rate_or_default()),
            per: match v.per.given() {
                Some(d) => d,
                None => RateLimitValues::DEFAULT_PER,
            },
            burst: nz(v.burst_or_default()),
            max_wait: match v.max_wait.given() {
                Some(d) => d,
                None => RateLimitValues::DEFAULT_MAX_WAIT,
            },
        }
    }

    /// The configuration of `values`, held to the attribute's rules.
    pub(crate) fn from_values(values: &RateLimitValues) -> Result<Self, ConfigError> {
        crate::spec::checked(values.check())?;
        Ok(Self::from_checked(values))
    }

    /// Calls per [`per`](Self::per), on average.
    pub const fn rate(&self) -> NonZeroU32 {
        self.rate
    }

    /// The period `rate` counts over (default 1 s).
    pub const fn per(&self) -> Duration {
        self.per
    }

    /// Calls allowed at once after a quiet period (default `rate`).
    pub const fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// How long a call over the limit may wait for its turn (default 0).
    pub const fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// `rate = 50, per = 1s, burst = 10, max_wait = 200ms`
impl fmt::Display for RateLimitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate = {}, per = {:?}, burst = {}, max_wait = {:?}",
            self.rate, self.per, self.burst, self.max_wait
        )
    }
}

/// Builds a [`RateLimitConfig`], held to exactly the rules of the
/// `#[rate_limit]` attribute (the same check, the same words).
#[derive(Debug, Clone)]
#[must_use = "call `.build()` to get the configuration"]
pub struct RateLimitConfigBuilder {
    values: RateLimitValues,
}

impl RateLimitConfigBuilder {
    /// The period `rate` counts over (default 1 s; > 0).
    pub fn per(mut self, per: Duration) -> Self {
        self.values.per = Value::Given(per);
        self
    }

    /// Calls allowed at once after a quiet period (default `rate`; ≥ 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.values.burst = Value::Given(burst.into());
        self
    }

    /// How long a call over the limit may wait for its turn (default 0).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.values.max_wait = Value::Given(max_wait);
        self
    }

    /// The configuration, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing every rule broken: a zero `rate` or `burst`,
    /// a zero `per`.
    pub fn build(self) -> Result<RateLimitConfig, ConfigError> {
        RateLimitConfig::from_values(&self.values)
    }
}

/// A rate limiter: lets at most `rate` calls per `per` through on average
/// and `burst` at once, by the generic cell rate algorithm (one atomic word,
/// no background task, no lock, no allocation per call). A call over the
/// limit waits for its turn up to `max_wait`, else is refused with an
/// [`Error`] of kind [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited)
/// whose [`retry_after`](Error::retry_after) says when a call would be
/// allowed.
///
/// Usually reached by name: `#[rate_limit(name = "openai", rate = 50)]`,
/// [`Registry::rate_limiter`](crate::Registry::rate_limiter).
///
/// ```
/// use resilience::{RateLimitConfig, RateLimiter};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let openai = RateLimiter::new("openai", RateLimitConfig::builder(2).build().unwrap());
/// assert!(openai.try_acquire().is_ok());
/// assert!(openai.try_acquire().is_ok());
/// let refused = openai.try_acquire().unwrap_err();
/// assert!(refused.is_rate_limited());
/// assert_eq!(refused.retry_after(), Some(std::time::Duration::from_millis(500)));
/// # }
/// ```
pub struct RateLimiter {
    name: Arc<str>,
    gcra: Arc<Gcra>,
    /// `max_wait` in nanoseconds.
    max_wait: AtomicU64,
    config: Mutex<RateLimitConfig>,
    /// What this limiter's errors refer to.
    identity: Identity,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A point-in-time view of a rate limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RateLimitStatus {
    /// The limiter's name.
    pub name: Arc<str>,
    /// Calls per `per`.
    pub rate: u32,
    /// The period.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "per_seconds", serialize_with = "crate::serde_impls::secs")
    )]
    pub per: Duration,
    /// Calls allowed at once.
    pub burst: u32,
    /// Calls that would be allowed right now, one after the other.
    pub available: u64,
    /// How long until a call would be allowed (zero when one is now).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "retry_after_seconds",
            serialize_with = "crate::serde_impls::secs"
        )
    )]
    pub retry_after: Duration,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimiter {
    /// A new limiter with a full burst available. It is not registered
    /// anywhere: use [`Registry::rate_limiter`](crate::Registry::rate_limiter)
    /// for a shared, named one.
    pub fn new(name: impl Into<Arc<str>>, config: RateLimitConfig) -> Self {
        let name = name.into();
        let (interval, tolerance) = gcra::schedule(
            config.rate.get().into(),
            config.per,
            config.burst.get().into(),
        );
        let gcra = Arc::new(Gcra::new(interval, tolerance));
        let identity = Identity::register(name.clone(), Owner::RateLimiter(Arc::downgrade(&gcra)));
        RateLimiter {
            name,
            gcra,
            max_wait: AtomicU64::new(nanos(config.max_wait)),
            config: Mutex::new(config),
            identity,
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration in force.
    pub fn config(&self) -> RateLimitConfig {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a turn now, or refuses without waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) when no
    /// call is allowed now.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Error> {
        match self.gcra.take(0) {
            Ok(_) => Ok(()),
            Err(_) => Err(self.refused()),
        }
    }

    /// Takes a turn, waiting for it up to `max_wait` (tokio's clock). A
    /// wait cancelled (the future dropped) gives its turn up unused, so the
    /// limit is never exceeded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) when the
    /// call's turn is further off than `max_wait`.
    pub async fn acquire(&self) -> Result<(), Error> {
        match self.gcra.take(self.max_wait.load(Ordering::Relaxed)) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                tracing::trace!(target: "resilience", rate_limit = &*self.name, "waiting {wait} ns for a turn");
                tokio::time::sleep(Duration::from_nanos(wait)).await;
                Ok(())
            }
            Err(_) => Err(self.refused()),
        }
    }

    /// [`acquire`](Self::acquire), with the refusal's wait until a call
    /// would be allowed, known without a lookup (what a retry above waits).
    pub(crate) async fn acquire_or_wait(&self) -> Result<(), (Error, Duration)> {
        match self.gcra.take(self.max_wait.load(Ordering::Relaxed)) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                tokio::time::sleep(Duration::from_nanos(wait)).await;
                Ok(())
            }
            Err(wait) => Err((self.refused(), Duration::from_nanos(wait))),
        }
    }

    /// [`acquire_blocking`](Self::acquire_blocking), with the refusal's wait.
    pub(crate) fn acquire_blocking_or_wait(&self) -> Result<(), (Error, Duration)> {
        match self.gcra.take(self.max_wait.load(Ordering::Relaxed)) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                std::thread::sleep(Duration::from_nanos(wait));
                Ok(())
            }
            Err(wait) => Err((self.refused(), Duration::from_nanos(wait))),
        }
    }

    /// [`acquire`](Self::acquire) for blocking code: the thread sleeps for
    /// its turn.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    pub fn acquire_blocking(&self) -> Result<(), Error> {
        match self.gcra.take(self.max_wait.load(Ordering::Relaxed)) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                std::thread::sleep(Duration::from_nanos(wait));
                Ok(())
            }
            Err(_) => Err(self.refused()),
        }
    }

    /// Runs `call` in its turn: refused (without running it) when its turn
    /// is further off than `max_wait`.
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` the limiter's refusal.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.acquire().await?;
        call.await
    }

    #[cold]
    fn refused(&self) -> Error {
        crate::metrics::rate_limited(&self.name);
        tracing::debug!(
            target: "resilience",
            rate_limit = &*self.name,
            "rate limit `{}` reached; call refused",
            self.name
        );
        Error::rate_limited(&self.identity)
    }

    /// The error this limiter's refusals produce (the tower layer's).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn refusal_error(&self) -> Error {
        self.refused()
    }

    /// Takes the next turn within `max_wait` without waiting for it:
    /// `Ok(wait)` until it is due, `Err(())` when it is further off (the
    /// tower layer waits on its own timer).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn take_turn(&self) -> Result<Duration, ()> {
        self.gcra
            .take(self.max_wait.load(Ordering::Relaxed))
            .map(Duration::from_nanos)
            .map_err(|_| ())
    }

    /// Puts `config` in force from the next call on: calls already let
    /// through keep their share of the burst (a limiter that had used half
    /// of its burst has used half of the new one).
    /// Returns whether anything changed; a change is a `tracing` event.
    pub fn set_config(&self, config: RateLimitConfig) -> bool {
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if *current == config {
            return false;
        }
        let (interval, tolerance) = gcra::schedule(
            config.rate.get().into(),
            config.per,
            config.burst.get().into(),
        );
        self.gcra.set(interval, tolerance);
        self.max_wait
            .store(nanos(config.max_wait), Ordering::Relaxed);
        tracing::info!(
            target: "resilience",
            rate_limit = &*self.name,
            from = %*current,
            to = %config,
            "rate limit `{}` reconfigured",
            self.name
        );
        *current = config;
        true
    }

    /// A point-in-time view.
    pub fn status(&self) -> RateLimitStatus {
        let config = self.config();
        RateLimitStatus {
            name: self.name.clone(),
            rate: config.rate.get(),
            per: config.per,
            burst: config.burst.get(),
            available: self.gcra.available(),
            retry_after: self.gcra.retry_after(),
        }
    }
}

#[cfg(test)]
mod tests;
