//! Declarative resilience for async Rust.
//!
//! ```ignore
//! use resilience::{circuit_breaker, retry, resilient};
//!
//! impl UnifiClient {
//!     #[circuit_breaker(name = "unifi", failure_threshold = 5, recovery_timeout = 60)]
//!     #[retry(max_attempts = 3, backoff = "exponential")]
//!     async fn list_devices(&self) -> Result<Vec<Device>, ApiError> { /* plain code */ }
//! }
//! ```
//!
//! See the [README](https://example.invalid/resilience#readme) and the
//! documentation of each attribute: [`circuit_breaker`], [`retry`],
//! [`resilient`], [`timeout`].
//!
//! # The runtime
//!
//! - [`CircuitBreaker`]: a lock-free breaker (closed → open → half-open →
//!   closed) whose closed-state success path is two atomic loads.
//! - [`registry()`]: the process-wide map from names to breakers.
//! - [`RetryPolicy`] and [`Backoff`]: attempts and delay schedules.
//! - [`Error`]: what a layer itself produces (circuit open, timeout).
//!
//! Time is `tokio::time` throughout, so `#[tokio::test(start_paused = true)]`
//! drives every state change without real waiting.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod breaker;
mod buckets;
mod bulkhead;
mod error;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod metrics;
mod registry;
mod retry;
#[cfg(feature = "serde")]
mod serde_impls;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use breaker::{
    BreakerConfig, BreakerConfigBuilder, BreakerStatus, CircuitBreaker, CircuitState, ConfigError,
    Outcome, Permit, Transition, TransitionCause, Window,
};
pub use bulkhead::{Bulkhead, BulkheadPermit, BulkheadStatus};
pub use error::Error;
#[cfg(feature = "redis")]
pub use fleet::{Fleet, FleetConfig, FleetError};
pub use registry::{registry, AlreadyExists, Registry, Snapshot};
pub use retry::{
    Backoff, BackoffKind, BudgetStatus, Delays, Jitter, RetryBudget, RetryPolicy, RetryState,
};

pub use resilience_macros::{bulkhead, circuit_breaker, resilient, retry, timeout};
