//! Declarative resilience for async Rust: circuit breakers, retries,
//! timeouts, bulkheads (fixed or adaptive), rate limits, hedged requests,
//! request coalescing and fallbacks as attributes, checked at compile time,
//! with the same policies as runtime types and tower layers.
//!
//! ```
//! use resilience::{circuit_breaker, retry, resilient};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ApiError {
//!     #[error("upstream failed")]
//!     Upstream,
//!     #[error(transparent)]
//!     Resilience(#[from] resilience::Error), // circuit open, timeout, bulkhead full
//! }
//!
//! struct UnifiClient;
//!
//! impl UnifiClient {
//!     #[circuit_breaker(name = "unifi", failure_threshold = 5, recovery_timeout = 60)]
//!     #[retry(max_attempts = 3, backoff = "exponential")]
//!     async fn list_devices(&self) -> Result<Vec<String>, ApiError> {
//!         Ok(vec!["ap-1".to_owned()]) // plain code
//!     }
//! }
//!
//! #[resilient(name = "llm", failure_threshold = 5, recovery_timeout = "60s",
//!             max_attempts = 3, delay = "500ms", timeout = "30s")]
//! async fn complete(prompt: &str) -> anyhow::Result<String> {
//!     Ok(format!("answer to {prompt}"))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     assert_eq!(UnifiClient.list_devices().await.unwrap(), ["ap-1"]);
//! #     complete("hi").await.unwrap();
//! # }
//! ```
//!
//! # The attributes
//!
//! Each is documented key by key, with its default and the code it stands
//! for: [`circuit_breaker`], [`retry`], [`timeout`], [`bulkhead`],
//! [`rate_limit`], [`coalesce`], [`hedge`] and [`resilient`] (the first four in one,
//! composed fallback → breaker → retry → bulkhead → timeout → body). Stacked attributes read top-down: the first is
//! the outermost layer.
//!
//! # The runtime
//!
//! - [`CircuitBreaker`]: a lock-free breaker (closed → open → half-open →
//!   closed) whose closed-state success path is two atomic loads;
//!   [`BreakerConfig`] and [`Window`] for the trip rules.
//! - [`registry()`]: the process-wide map from names to breakers, bulkheads
//!   and retry budgets; runtime configuration, manual control, listeners and
//!   the [`Snapshot`].
//! - [`RetryPolicy`], [`Backoff`], [`RetryBudget`], [`Bulkhead`],
//!   [`Timeout`]; each layer's call behaviour is public for hand-written
//!   callers: [`CircuitBreaker::call`], [`Bulkhead::call`], [`Timeout::call`].
//! - [`RateLimiter`] (the generic cell rate algorithm, one atomic word),
//!   [`Coalescer`] (singleflight), [`Hedge`] (hedged requests, fixed or
//!   percentile delay), [`AdaptiveBulkhead`] (AIMD or Gradient2 limits).
//! - [`settings`]: every policy configured by name from a file or the
//!   environment (feature `serde`), checked against the manifest, applied
//!   live with [`Registry::apply`]; [`Registry::health`] for readiness.
//! - [`Error`]: what a layer itself produces (one word; [`ErrorKind`]).
//! - [`ConfigError`]: a configuration built at run time is held to the
//!   attributes' rules, with the same words ([`Problem`]).
//! - [`manifest`]: every annotated call site of the program (kind, name, keys,
//!   location, callbacks), listed at link time, before anything runs.
//! - [`metrics`] (feature `metrics`), `Serialize` for the snapshot (feature
//!   `serde`), fleet-wide breakers and rate limits through Redis (feature
//!   `redis`: one server, Sentinel or Cluster, see `Registry::share_via_redis`
//!   and the `fleet` module), tower layers (feature `tower`: the
//!   `tower` module), isolated registries and assertions for tests (feature
//!   `testing`: the `testing` module, `#[resilience::test]`), faults injected by
//!   policy name (feature `chaos`: `chaos`).
//!
//! The attributes work on `async fn`s, on `fn`s returning `impl Future`, on
//! methods inside `#[async_trait]` impls, and on synchronous `fn`s.
//!
//! Time is `tokio::time` throughout, so `#[tokio::test(start_paused = true)]`
//! drives every state change of annotated code without real waiting.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod adaptive;
mod breaker;
mod buckets;
mod bulkhead;
#[cfg(feature = "chaos")]
pub mod chaos;
mod coalesce;
mod error;
#[cfg(feature = "redis")]
pub mod fleet;
mod hedge;
mod live;
pub mod manifest;
pub mod metrics;
mod rate_limit;
mod registry;
mod retry;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod settings;
mod spec;
mod sync;
#[cfg(test)]
mod test_events;
#[cfg(feature = "testing")]
pub mod testing;
mod timeout;
#[cfg(feature = "tower")]
pub mod tower;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;

#[allow(unused_imports)]
pub use adaptive::*;
pub use breaker::{
    BreakerConfig, BreakerConfigBuilder, BreakerStatus, CircuitBreaker, CircuitState, Outcome,
    OwnedPermit, Permit, Transition, TransitionCause, Window,
};
pub use bulkhead::{Bulkhead, BulkheadPermit, BulkheadStatus};
#[allow(unused_imports)]
pub use coalesce::*;
pub use error::{Error, ErrorKind};
#[cfg(feature = "redis")]
pub use fleet::{
    BreakerFleetStatus, Fleet, FleetConfig, FleetError, FleetMember, FleetStatus, IntoRedisTarget,
    RedisTarget, RedisTargetKind,
};
#[allow(unused_imports)]
pub use hedge::*;
pub use rate_limit::{RateLimitConfig, RateLimitConfigBuilder, RateLimitStatus, RateLimiter};
pub use registry::{
    registry, AlreadyExists, Applied, Health, HealthState, PolicyHealth, Registered, Registry,
    Snapshot,
};
pub use retry::{
    Backoff, BackoffKind, BudgetStatus, Delays, Jitter, RetryBudget, RetryPolicy,
    RetryPolicyBuilder, RetryState,
};
pub use spec::{ConfigError, Place, Problem};
pub use timeout::Timeout;

/// A test against an isolated registry (feature `testing`): see
/// [`testing`].
#[cfg(feature = "testing")]
pub use resilience_macros::test;
pub use resilience_macros::{
    bulkhead, circuit_breaker, coalesce, hedge, rate_limit, resilient, retry, timeout,
};
