//! The fleet sync's tuning and the reasons it cannot start.

use std::time::Duration;

/// Tuning of the fleet sync; [`FleetConfig::default`] suits most services.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// How long a probe lease lasts (default 5 s): if the winner does not
    /// publish a result in time, the others race again.
    pub lease: Duration,
    /// How often open breakers whose time is up are checked (default 50 ms):
    /// the granularity of the probe race, whose requests are also spread
    /// over 2 ms per member of the fleet (1 s at most).
    pub lease_poll: Duration,
    /// The least time an instance waits before asking again for a
    /// breaker's probe lease (default 200 ms): after losing the race it
    /// waits until the winner's lease runs out (at least this long), after
    /// learning that it was behind the fleet's state, this long.
    pub lease_retry: Duration,
    /// The window in which the fleet's failures are counted for
    /// `fleet_threshold` (default 10 s, in 1 s buckets).
    pub failure_window: Duration,
    /// How often the failures counted here are sent to the fleet (default 100 ms).
    pub failure_flush: Duration,
    /// How long the unused tokens of a fleet rate limit's lease stay with
    /// an instance before they go back to the fleet (default 1 s); also how
    /// far ahead a lease may be granted, and how often an idle instance
    /// tells the fleet it still shares the limit (an instance unheard of
    /// for three times this stops counting). Kept within 10 ms and 1 hour.
    pub rate_lease_ttl: Duration,
    /// How often this instance tells the fleet it is alive (default 2 s):
    /// one script of a few commands, whatever the number of breakers.
    pub heartbeat: Duration,
    /// How long an instance unheard of stays a member (default 10 s): after
    /// it, the instance no longer counts among those sharing a breaker
    /// ([`BreakerFleetStatus::instances`](crate::BreakerFleetStatus::instances))
    /// and leaves [`FleetStatus::members`](crate::FleetStatus::members).
    /// At least twice [`heartbeat`](Self::heartbeat) (it is raised to that).
    pub member_timeout: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            lease: Duration::from_secs(5),
            lease_poll: Duration::from_millis(50),
            lease_retry: Duration::from_millis(200),
            failure_window: Duration::from_secs(10),
            failure_flush: Duration::from_millis(100),
            rate_lease_ttl: Duration::from_secs(1),
            heartbeat: Duration::from_secs(2),
            member_timeout: Duration::from_secs(10),
        }
    }
}

/// Why [`Registry::share_via_redis`](crate::Registry::share_via_redis) could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The URL is not a Redis URL, or a target is malformed (the message
    /// never contains credentials); see [`RedisTarget`](crate::RedisTarget).
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL without credentials.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The namespace is empty or contains whitespace, `*` or `:`.
    #[error("invalid fleet namespace {0:?}: use letters, digits, `-`, `_` or `.`")]
    InvalidNamespace(String),
    /// Not called inside a tokio runtime.
    #[error("share_via_redis must be called inside a tokio runtime")]
    NoRuntime,
    /// The registry is already shared.
    #[error("this registry is already shared through Redis")]
    AlreadyShared,
}
