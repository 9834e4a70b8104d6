//! What the attribute macros expand to. Not public API: no semver guarantees.
//!
//! Only glue lives here, each concern in its module: the diagnostics that
//! name the macro when a signature does not fit (`returns`), the checked
//! `const` configurations (`config`), the per-call-site statics (`sites`),
//! and the pass of one call through each layer (`calls`), which calls each
//! layer's public home (`CircuitBreaker::call`'s engine, `Bulkhead`,
//! `Timeout`) and adds only what stacked layers tell each other.

mod calls;
mod chaos;
mod config;
mod hedged;
mod live_sites;
mod returns;
mod sites;

pub use calls::*;
pub use chaos::*;
pub use config::*;
pub use hedged::{checked_hedge_values, hedge_call, StaticHedge};
pub use live_sites::{StaticAdaptive, StaticRateLimiter, StaticRetry, StaticTimeout};
pub use returns::*;
#[cfg(test)]
pub(crate) use sites::short_type_name;
pub use sites::{
    bulkhead_full_of, callback, dynamic_breaker, every_error_fails, registry_dynamic_breaker,
    registry_private_breaker, rejection_of, StaticBreaker, StaticBudget, StaticBulkhead,
};

/// The link-time list of call sites (see [`crate::manifest`]).
pub use crate::manifest::__CALL_SITES as CALL_SITES;
pub use crate::manifest::{CallSite, Kind as SiteKind, Name as SiteName, Policy as SitePolicy};
pub use crate::retry::{Backoff, BackoffKind, Jitter, RetryPolicy, RetryState};
pub use crate::{CircuitState, Outcome, Transition};
/// The `linkme` crate the manifest entries are declared with.
pub use linkme;
