//! Rate limiting: at most `rate` calls per `per` on average, `burst` at
//! once, shared by name; with feature `redis`, optionally shared by a whole
//! fleet of instances through Redis (see [`RateLimitConfigBuilder::fleet`]
//! and the `fleet` module's section on rate limits).

#[cfg(feature = "redis")]
pub(crate) mod fleet;
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
    /// One limit for the whole fleet (see [`RateLimitConfigBuilder::fleet`]).
    fleet: bool,
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
            fleet: matches!(v.fleet, Value::Given(true)),
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

    /// Whether the limit is one for the whole fleet (default `false`; see
    /// [`RateLimitConfigBuilder::fleet`]).
    pub const fn is_fleet(&self) -> bool {
        self.fleet
    }

    /// This configuration with `fleet` set (a limiter keeps the flag it
    /// was created with).
    pub(crate) const fn with_fleet(mut self, fleet: bool) -> Self {
        self.fleet = fleet;
        self
    }
}

/// `rate = 50, per = 1s, burst = 10, max_wait = 200ms` (and `, fleet = true`
/// for a fleet-wide limit)
impl fmt::Display for RateLimitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate = {}, per = {:?}, burst = {}, max_wait = {:?}",
            self.rate, self.per, self.burst, self.max_wait
        )?;
        if self.fleet {
            f.write_str(", fleet = true")?;
        }
        Ok(())
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

    /// One limit for the whole fleet (default `false`): with feature
    /// `redis`, every instance whose registry is shared through
    /// `Registry::share_via_redis` (same Redis, same namespace) takes its
    /// calls from one limit of `rate` per `per` with `burst`, as leases of
    /// tokens held locally, so that most calls never wait on Redis. Without
    /// a fleet (no `redis` feature, a
    /// limiter made with [`RateLimiter::new`] rather than by the registry, or
    /// before the registry is shared) the limiter is an ordinary local one.
    /// Whether a limiter is fleet-wide is decided when it is created.
    ///
    /// The fleet module's documentation (feature `redis`) says how leases
    /// work, what the fleet lets through at most, and what happens while
    /// Redis is unreachable (each instance falls back to its share of the
    /// limit, locally).
    ///
    /// ```
    /// use resilience::RateLimitConfig;
    ///
    /// // 200 calls a second across every instance of the service.
    /// let quota = RateLimitConfig::builder(200).burst(20).fleet(true).build()?;
    /// assert!(quota.is_fleet());
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn fleet(mut self, fleet: bool) -> Self {
        self.values.fleet = Value::Given(fleet);
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
/// [`Registry::rate_limiter`](crate::Registry::rate_limiter). A fleet-wide
/// one ([`RateLimitConfigBuilder::fleet`], feature `redis`) takes its turns
/// from tokens leased from the fleet's limit while the registry is shared
/// through Redis, and from its share of the limit otherwise.
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
    /// Its part of a fleet-wide limit: leased tokens, or the local share.
    #[cfg(feature = "redis")]
    share: fleet::Share,
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
    /// Whether the limit is one for the whole fleet (its configuration's
    /// [`is_fleet`](RateLimitConfig::is_fleet)).
    pub fleet: bool,
    /// Whether calls take their turns from tokens leased from the fleet right
    /// now; `false` for a fleet limiter means it runs on its local share
    /// (no fleet, Redis unreachable, or before its first lease).
    pub leasing: bool,
    /// Tokens leased from the fleet and not used yet (while `leasing`, what
    /// `available` counts).
    pub leased: u64,
    /// How many instances shared the limit when the fleet last answered this
    /// one (0: never heard); the local share is the limit divided by it.
    pub instances: u32,
    /// Redis commands this instance has sent for this limit (lease requests,
    /// returns and heartbeats: one command each).
    pub fleet_commands: u64,
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
        let (interval, tolerance) = full_schedule(&config);
        let gcra = Arc::new(Gcra::new(interval, tolerance));
        let identity = Identity::register(name.clone(), Owner::RateLimiter(Arc::downgrade(&gcra)));
        RateLimiter {
            name,
            gcra,
            max_wait: AtomicU64::new(nanos(config.max_wait)),
            config: Mutex::new(config),
            identity,
            #[cfg(feature = "redis")]
            share: fleet::Share::new(),
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
        #[cfg(feature = "redis")]
        if self.share.is_leasing() {
            return if self.share.take() {
                Ok(())
            } else {
                Err(self.refused())
            };
        }
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
        match self.turn().await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.refused()),
        }
    }

    /// [`acquire`](Self::acquire), with the refusal's wait until a call
    /// would be allowed, known without a lookup (what a retry above waits).
    pub(crate) async fn acquire_or_wait(&self) -> Result<(), (Error, Duration)> {
        match self.turn().await {
            Ok(()) => Ok(()),
            Err(wait) => Err((self.refused(), Duration::from_nanos(wait))),
        }
    }

    /// [`acquire_blocking`](Self::acquire_blocking), with the refusal's wait.
    pub(crate) fn acquire_blocking_or_wait(&self) -> Result<(), (Error, Duration)> {
        match self.turn_blocking() {
            Ok(()) => Ok(()),
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
        match self.turn_blocking() {
            Ok(()) => Ok(()),
            Err(_) => Err(self.refused()),
        }
    }

    /// Takes a turn within `max_wait` and waits for it; `Err(wait)`, how
    /// long until a call would be allowed, when it is further off.
    async fn turn(&self) -> Result<(), u64> {
        let max_wait = self.max_wait.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        if self.share.is_leasing() {
            return self.leased_turn(max_wait).await;
        }
        self.local_turn(max_wait).await
    }

    /// [`turn`](Self::turn) on the local schedule.
    async fn local_turn(&self, max_wait: u64) -> Result<(), u64> {
        match self.gcra.take(max_wait) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                tracing::trace!(target: "resilience", rate_limit = &*self.name, "waiting {wait} ns for a turn");
                tokio::time::sleep(Duration::from_nanos(wait)).await;
                Ok(())
            }
            Err(wait) => Err(wait),
        }
    }

    /// [`turn`](Self::turn) for blocking code.
    fn turn_blocking(&self) -> Result<(), u64> {
        let max_wait = self.max_wait.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        if self.share.is_leasing() {
            return self.leased_turn_blocking(max_wait);
        }
        self.local_turn_blocking(max_wait)
    }

    /// [`turn_blocking`](Self::turn_blocking) on the local schedule.
    fn local_turn_blocking(&self, max_wait: u64) -> Result<(), u64> {
        match self.gcra.take(max_wait) {
            Ok(0) => Ok(()),
            Ok(wait) => {
                std::thread::sleep(Duration::from_nanos(wait));
                Ok(())
            }
            Err(wait) => Err(wait),
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
        // On fleet leases a turn is a token in stock: none can be promised
        // ahead, so a call without one is refused at once.
        #[cfg(feature = "redis")]
        if self.share.is_leasing() {
            return if self.share.take() {
                Ok(Duration::ZERO)
            } else {
                Err(())
            };
        }
        self.gcra
            .take(self.max_wait.load(Ordering::Relaxed))
            .map(Duration::from_nanos)
            .map_err(|_| ())
    }

    /// Puts `config` in force from the next call on: calls already let
    /// through keep their share of the burst (a limiter that had used half
    /// of its burst has used half of the new one). Whether the limit is
    /// fleet-wide ([`is_fleet`](RateLimitConfig::is_fleet)) stays as it was
    /// when the limiter was created; `config`'s flag is ignored.
    /// Returns whether anything changed; a change is a `tracing` event.
    pub fn set_config(&self, config: RateLimitConfig) -> bool {
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if config.fleet != current.fleet {
            tracing::debug!(
                target: "resilience",
                rate_limit = &*self.name,
                "rate limit `{}`: whether it is fleet-wide is decided when it is created; kept as it is",
                self.name
            );
        }
        let config = config.with_fleet(current.fleet);
        if *current == config {
            return false;
        }
        let from = std::mem::replace(&mut *current, config);
        drop(current);
        self.max_wait
            .store(nanos(config.max_wait), Ordering::Relaxed);
        self.put_schedule_in_force();
        tracing::info!(
            target: "resilience",
            rate_limit = &*self.name,
            from = %from,
            to = %config,
            "rate limit `{}` reconfigured",
            self.name
        );
        true
    }

    /// Sets the local schedule from the configuration in force (and, for a
    /// fleet limiter on its local share, the share).
    #[cfg(not(feature = "redis"))]
    fn put_schedule_in_force(&self) {
        let (interval, tolerance) = full_schedule(&self.config());
        self.gcra.set(interval, tolerance);
    }

    /// A point-in-time view.
    pub fn status(&self) -> RateLimitStatus {
        let config = self.config();
        #[allow(unused_mut)]
        let mut status = RateLimitStatus {
            name: self.name.clone(),
            rate: config.rate.get(),
            per: config.per,
            burst: config.burst.get(),
            available: self.gcra.available(),
            retry_after: self.gcra.retry_after(),
            fleet: config.fleet,
            leasing: false,
            leased: 0,
            instances: 0,
            fleet_commands: 0,
        };
        #[cfg(feature = "redis")]
        self.share.fill_status(&mut status);
        status
    }
}

/// The interval and tolerance of `config`'s whole limit.
fn full_schedule(config: &RateLimitConfig) -> (u64, u64) {
    gcra::schedule(
        config.rate.get().into(),
        config.per,
        config.burst.get().into(),
    )
}

#[cfg(test)]
mod tests;
