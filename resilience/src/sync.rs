//! The atomics and the mutex of the breaker's core: `std`'s, or loom's when
//! built with `RUSTFLAGS="--cfg loom"` so that `tests/loom.rs` can explore
//! every interleaving of them. Plain re-exports: the normal build is
//! unchanged.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Mutex,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Mutex,
};
