//! What the in-process fleet tests share (`fleet*.rs`): instances of a fleet
//! are separate registries in the test's process, each with its own fleet
//! sync; these helpers make them, configure their breakers and their fleet
//! tuning, trip and read their breakers, wait on the real clock with a
//! bound, and run a Redis topology's blocking calls off the runtime.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resilience::{BreakerConfig, CircuitState, FleetConfig, Outcome, Registry};

/// A new instance: a registry of its own, leaked so that it lives as long
/// as the fleet sync it starts (`share_via_redis…` takes `&'static`).
pub fn instance() -> &'static Registry {
    Box::leak(Box::new(Registry::new()))
}

/// `N` new [`instance`]s, each with the breaker `name` configured `cfg`.
pub fn sharing<const N: usize>(name: &str, cfg: &BreakerConfig) -> [&'static Registry; N] {
    std::array::from_fn(|_| {
        let r = instance();
        r.breaker(name, cfg);
        r
    })
}

/// A consecutive-failure breaker: `failures` in a row open it for
/// `recovery`.
pub fn config(failures: u32, recovery: Duration) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(failures)
        .recovery_timeout(recovery)
        .build()
        .unwrap()
}

/// The fast fleet tuning of the tests (probe lease 2 s, lease poll 10 ms,
/// lease retry 20 ms; the child processes' too: `node::fast_fleet`).
pub fn fast() -> FleetConfig {
    resilience_tests::node::fast_fleet()
}

/// `base` with `changes` made: a test's own tuning, its differences from
/// `base` in plain sight.
pub fn tuned(mut base: FleetConfig, changes: impl FnOnce(&mut FleetConfig)) -> FleetConfig {
    changes(&mut base);
    base
}

/// Records failures on `registry`'s breaker `name` until it is no longer
/// closed.
pub fn trip(registry: &Registry, name: &str) {
    let b = registry.get(name).unwrap();
    while b.state() == CircuitState::Closed {
        b.try_acquire().unwrap().record(Outcome::Failure);
    }
}

/// `times` failing calls through `registry`'s breaker `name` (each must be
/// admitted).
pub fn fail(registry: &Registry, name: &str, times: u32) {
    let b = registry.get(name).unwrap();
    for _ in 0..times {
        b.try_acquire().unwrap().record(Outcome::Failure);
    }
}

/// The state of `registry`'s breaker `name`; panics if there is none.
pub fn state(registry: &Registry, name: &str) -> CircuitState {
    registry.get(name).unwrap().state()
}

/// Waits ([`eventually`](super::eventually), 10 s each) until `name` is
/// open on every one of `instances`, in turn.
pub async fn open_everywhere(what: &str, instances: &[&Registry], name: &str) {
    for r in instances {
        super::eventually(what, || state(r, name) == CircuitState::Open).await;
    }
}

/// Polls `condition` every 10 ms until it holds; fails after `bound` (the
/// test must not hang).
pub async fn within(bound: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `f` on a blocking thread, off the runtime's: a Redis topology's
/// calls block for seconds (starting, killing a node, waiting for a
/// failover) while the instances' syncs must go on.
pub async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// [`blocking`] on a clone of `shared` (a topology the test keeps using).
pub async fn blocking_on<T: Send + Sync + 'static, R: Send + 'static>(
    shared: &Arc<T>,
    f: impl FnOnce(&T) -> R + Send + 'static,
) -> R {
    let shared = shared.clone();
    blocking(move || f(&shared)).await
}

/// The calls [`call_until_closed`] got through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The permits the instances got.
    pub permits: u32,
    /// Those of them that were a half-open probe.
    pub probes: u32,
}

/// Every one of `instances` calls its breaker `name`, in a task of its own,
/// until the breaker is closed there (fails after 10 s): a permit it gets
/// is held for `hold` (the probe call) and recorded a success; `pause`
/// between two calls. What got through, over all the instances.
pub async fn call_until_closed(
    instances: &[&'static Registry],
    name: &'static str,
    hold: Duration,
    pause: Duration,
) -> Admitted {
    let permits = Arc::new(AtomicU32::new(0));
    let probes = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = instances
        .iter()
        .map(|r| {
            let (r, permits, probes) = (*r, permits.clone(), probes.clone());
            tokio::spawn(async move {
                let b = r.get(name).unwrap();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while b.state() != CircuitState::Closed {
                    assert!(tokio::time::Instant::now() < deadline, "never closed");
                    if let Ok(permit) = b.try_acquire() {
                        permits.fetch_add(1, Ordering::SeqCst);
                        if permit.is_probe() {
                            probes.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(hold).await;
                        permit.record(Outcome::Success);
                    }
                    tokio::time::sleep(pause).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Admitted {
        permits: permits.load(Ordering::SeqCst),
        probes: probes.load(Ordering::SeqCst),
    }
}
