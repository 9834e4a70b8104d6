//! Tests of resilient code (feature `testing`, for `[dev-dependencies]`):
//! each test runs against a registry of its own, and reads what happened
//! with assertions that say what they saw.
//!
//! Two tests that use one breaker name share that breaker in the
//! process-wide [`registry()`](crate::registry()), and `cargo test` runs
//! them on parallel threads: one test's failures open the breaker the
//! other one calls. Run each against an isolated registry instead:
//!
//! ```
//! use resilience::{circuit_breaker, CircuitState};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ApiError {
//!     #[error("upstream down")]
//!     Down,
//!     #[error(transparent)]
//!     Resilience(#[from] resilience::Error),
//! }
//!
//! #[circuit_breaker(name = "inventory", failure_threshold = 2)]
//! async fn stock(fail: bool) -> Result<u32, ApiError> {
//!     if fail { Err(ApiError::Down) } else { Ok(7) }
//! }
//!
//! // In a test: `#[resilience::test]` in place of `#[tokio::test]`.
//! # fn main() {
//! resilience::testing::run(resilience::testing::Runtime::current_thread(), async {
//!     let _ = stock(true).await;
//!     let _ = stock(true).await;
//!     assert_eq!(resilience::testing::breaker_state("inventory"), CircuitState::Open);
//! });
//! // Another test, or the rest of the program, never saw it open.
//! resilience::testing::run(resilience::testing::Runtime::current_thread(), async {
//!     assert_eq!(stock(false).await.unwrap(), 7);
//! });
//! # }
//! ```
//!
//! # What is isolated
//!
//! Inside [`run`] (what `#[resilience::test]` expands to) and [`isolated`],
//! [`registry()`](crate::registry()) is the test's own registry, on the
//! test's thread and on every thread of its runtime (so tasks it
//! `tokio::spawn`s, on either flavor, and `spawn_blocking` closures use it
//! too). Every annotated call site resolves its breaker, bulkhead, rate
//! limiter, retry budget, hedge, adaptive bulkhead, and the retry and
//! timeout settings in force, in that registry: the per-call-site caches
//! that make the production path one load hold one entry per test, so
//! nothing leaks from one test to the next. Configuration by name
//! ([`Registry::apply`](crate::Registry::apply)) applied in a test is that
//! test's. Threads the test starts itself with `std::thread::spawn` are
//! outside it: they see the process-wide registry (wrap their body in
//! [`isolated`] with the registry you pass them, or use `spawn_blocking`).
//!
//! A test's registry is never shared through Redis unless the test shares
//! it: `registry().share_via_redis(..)` inside the test shares the test's
//! registry, and nothing else.
//!
//! Each isolated registry lives until the process exits (a few kilobytes
//! per test), so that references into it stay valid.
//!
//! # Cost
//!
//! Without the feature nothing here is compiled and the call path is
//! unchanged (the benchmark's closed-breaker row measures the build
//! without it). With it, each call site reads one thread-local before its
//! cached policy.

mod scope;

use std::future::Future;
use std::time::Duration;

#[cfg(test)]
pub(crate) use scope::current;
pub(crate) use scope::Isolated;
pub(crate) use scope::{in_test, record_retry, scoped_adaptive, scoped_adaptive_all, site};

use crate::{registry, CircuitState};

/// The runtime [`run`] builds for a test: tokio's, with the test's
/// registry on each of its threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Runtime {
    worker_threads: Option<usize>,
    start_paused: bool,
}

impl Runtime {
    /// A current-thread runtime (`#[tokio::test]`'s default).
    pub const fn current_thread() -> Runtime {
        Runtime {
            worker_threads: None,
            start_paused: false,
        }
    }

    /// A multi-thread runtime with `workers` worker threads (at least 1).
    pub const fn multi_thread(workers: usize) -> Runtime {
        Runtime {
            worker_threads: Some(if workers == 0 { 1 } else { workers }),
            start_paused: false,
        }
    }

    /// Starts with tokio's clock paused (`start_paused = true`): sleeps end
    /// at once, in order, and timing is exact. Current-thread runtimes only
    /// (tokio's rule).
    pub const fn start_paused(mut self, paused: bool) -> Runtime {
        self.start_paused = paused;
        self
    }
}

/// Runs `future` to completion on a new runtime, against a new isolated
/// registry (see the [module docs](self)): what `#[resilience::test]`
/// expands to.
///
/// # Panics
///
/// If tokio cannot build the runtime (`start_paused` with a multi-thread
/// runtime, or the system refuses a thread), with tokio's reason; and if
/// `future` panics.
pub fn run<F: Future>(runtime: Runtime, future: F) -> F::Output {
    let scope = Isolated::new();
    let mut builder = match runtime.worker_threads {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().start_paused(runtime.start_paused);
    builder.on_thread_start(move || scope.enter_thread());
    builder.on_thread_stop(scope::leave_thread);
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("resilience::testing::run: cannot build the test's runtime: {e}"),
    };
    scope.run(|| rt.block_on(future))
}

/// Runs `f` on this thread against a new isolated registry (see the
/// [module docs](self)): for synchronous code, or inside a runtime the test
/// built itself.
///
/// ```
/// let (outside, inside) = (
///     resilience::registry() as *const _,
///     resilience::testing::isolated(|| resilience::registry() as *const _),
/// );
/// assert_ne!(outside, inside);
/// ```
pub fn isolated<R>(f: impl FnOnce() -> R) -> R {
    Isolated::new().run(f)
}

/// The state of the breaker `name` in this test's registry.
///
/// # Panics
///
/// When there is no breaker of that name (yet): the message lists those
/// there are.
pub fn breaker_state(name: &str) -> CircuitState {
    match registry().get(name) {
        Some(breaker) => breaker.state(),
        None => panic!(
            "no circuit breaker named `{name}` in this test's registry (a breaker is created by its first call); {}",
            known(registry().snapshot().breakers.iter().map(|b| b.name.to_string()))
        ),
    }
}

/// How many attempts the last finished call through the retry `name` made
/// (the breaker's static name in `#[resilient]`, else `module::function`,
/// as in the configuration by name), the first one included.
///
/// ```
/// #[resilience::retry(max_attempts = 3, delay = "1ms")]
/// async fn fetch() -> Result<(), std::io::Error> {
///     Err(std::io::Error::other("down"))
/// }
///
/// # fn main() {
/// let rt = resilience::testing::Runtime::current_thread().start_paused(true);
/// resilience::testing::run(rt, async {
///     fetch().await.unwrap_err();
///     let name = concat!(module_path!(), "::fetch");
///     assert_eq!(resilience::testing::attempts(name), 3);
///     assert_eq!(resilience::testing::sleeps(name), [std::time::Duration::from_millis(1), std::time::Duration::from_millis(2)]);
/// });
/// # }
/// ```
///
/// # Panics
///
/// Outside an isolated registry, or when no call through `name` finished
/// in this test: the message says which retries did.
pub fn attempts(name: &str) -> u32 {
    scope::last_retry(name, "attempts").attempts
}

/// The delays the last finished call through the retry `name` slept
/// between its attempts, in order (on the paused clock, exactly those of
/// the policy; a `retry_after` hint replaces one).
///
/// # Panics
///
/// As [`attempts`].
pub fn sleeps(name: &str) -> Vec<Duration> {
    scope::last_retry(name, "sleeps").sleeps
}

/// "known: `a`, `b`" or "none yet", for messages.
fn known(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none yet".to_owned()
    } else {
        format!("known: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests;
