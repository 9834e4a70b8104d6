//! What hedges report through the `metrics` facade (feature `metrics`), in
//! the pattern of `crate::metrics` (empty inline functions without the
//! feature):
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `resilience_hedges_total` | counter | `name` | extra attempts started |
//! | `resilience_hedges_won_total` | counter | `name` | calls an extra attempt answered |

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use super::Name;

#[cfg(feature = "metrics")]
fn label(name: &Name) -> metrics::SharedString {
    match name {
        Name::Static(name) => metrics::SharedString::const_str(name),
        Name::Shared(name) => name.clone().into(),
    }
}

#[inline]
pub(crate) fn hedge_started(name: &Name) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_hedges_total", "name" => label(name)).increment(1);
}

#[inline]
pub(crate) fn hedge_won(name: &Name) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_hedges_won_total", "name" => label(name)).increment(1);
}
