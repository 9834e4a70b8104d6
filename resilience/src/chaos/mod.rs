//! Faults and latency injected by policy name (feature `chaos`).
