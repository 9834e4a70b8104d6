//! Faults and latency injected by policy name (feature `chaos`).

/// The injections of one [`Registry`](crate::Registry), by policy name.
#[derive(Debug, Default)]
pub struct Chaos {}
