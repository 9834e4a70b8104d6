//! The configurations the expansions build in a `const`: the spec's values
//! struct filled with the keys written, checked by the spec in const
//! evaluation (a bad constant fails the build with the spec's words).

use std::time::Duration;

use crate::breaker::BreakerConfig;
use crate::retry::RetryPolicy;
/// The policy spec the expansions fill with the keys written.
pub use resilience_spec as spec;
pub use resilience_spec::{BreakerValues, RetryValues, Value, WindowValue};

/// The configuration of a `#[circuit_breaker]`'s keys, in a `const`: a
/// problem (a constant the macro could not read, out of its range) fails the
/// build with the spec's words, naming the key.
pub const fn breaker_config(values: BreakerValues) -> BreakerConfig {
    values.check().assert_none();
    BreakerConfig::from_checked(values)
}

/// The policy of a `#[retry]`'s keys, in a `const` (as [`breaker_config`]).
pub const fn retry_policy(values: RetryValues) -> RetryPolicy {
    values.check().assert_none();
    RetryPolicy::from_checked(&values)
}

/// A `#[retry]`'s keys, checked in a `const` (as [`breaker_config`]).
pub const fn checked_retry_values(values: RetryValues) -> RetryValues {
    values.check().assert_none();
    values
}

/// A `#[timeout]`'s duration, checked in a `const` (as [`breaker_config`]).
pub const fn checked_timeout_values(values: spec::TimeoutValues) -> spec::TimeoutValues {
    values.check().assert_none();
    values
}

/// A `#[rate_limit]`'s keys, checked in a `const` (as [`breaker_config`]).
pub const fn checked_rate_limit_values(values: spec::RateLimitValues) -> spec::RateLimitValues {
    values.check().assert_none();
    values
}

/// An adaptive bulkhead's keys, checked in a `const` (as [`breaker_config`]).
pub const fn checked_adaptive_values(values: spec::AdaptiveValues) -> spec::AdaptiveValues {
    values.check().assert_none();
    values
}

/// A count written as a constant (`max_attempts = ATTEMPTS`): a `u32`.
pub const fn count(n: u32) -> u64 {
    n as u64
}

/// The limits of a `#[bulkhead]`, checked in a `const` (as [`breaker_config`]).
pub const fn bulkhead_values(values: spec::BulkheadValues) -> spec::BulkheadValues {
    values.check().assert_none();
    values
}

/// The duration of a `#[timeout]`, checked in a `const` (as [`breaker_config`]).
pub const fn timeout_after(values: spec::TimeoutValues) -> Duration {
    values.check().assert_none();
    match values.timeout.given() {
        Some(d) => d,
        None => Duration::ZERO, // unreachable: the macro always writes it
    }
}
