//! `#[bulkhead(max_concurrent = "adaptive")]`: a limit that grows with fast
//! successes and is cut by slow calls or failures, within its bounds,
//! shared by name, shown in the snapshot.

use std::time::Duration;

use resilience::{bulkhead, registry};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("upstream failed")]
    Upstream,
    #[error(transparent)]
    Layer(#[from] resilience::Error),
}

#[bulkhead(
    name = "ad-db",
    max_concurrent = "adaptive",
    min_limit = 2,
    max_limit = 8,
    initial_limit = 4,
    latency_threshold = "20ms"
)]
async fn query(latency_ms: u64, fail: bool) -> Result<u64, ApiError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    if fail {
        Err(ApiError::Upstream)
    } else {
        Ok(latency_ms)
    }
}

fn limit() -> u32 {
    registry()
        .snapshot()
        .adaptive_bulkheads
        .into_iter()
        .find(|b| &*b.name == "ad-db")
        .expect("in the snapshot")
        .limit
}

#[tokio::test(start_paused = true)]
async fn the_limit_follows_latency_within_its_bounds() {
    // Four at once fit the initial limit; a fifth is rejected (no wait).
    let calls = (0..5).map(|_| query(10, false));
    let results = futures::future::join_all(calls).await;
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(ApiError::Layer(e)) if e.is_bulkhead_full()))
        .count();
    assert_eq!(rejected, 1, "{results:?}");
    assert_eq!(limit(), 4);

    // Rounds of fast successes that use the limit grow it, up to the max.
    for _ in 0..40 {
        let n = limit() as usize;
        let calls = (0..n).map(|_| query(5, false));
        futures::future::join_all(calls).await;
    }
    assert_eq!(limit(), 8);

    // Slow calls cut it, never below the min.
    for _ in 0..10 {
        let n = limit() as usize;
        let calls = (0..n).map(|_| query(50, false));
        futures::future::join_all(calls).await;
    }
    assert_eq!(limit(), 2);

    // Failures cut it too.
    let _ = query(1, true).await;
    assert_eq!(limit(), 2);
}

#[bulkhead(
    name = "ad-sync",
    max_concurrent = "adaptive",
    max_limit = 1,
    initial_limit = 1
)]
fn blocking_query() -> Result<u64, ApiError> {
    Ok(1)
}

#[test]
fn blocking_code_holds_a_slot() {
    assert_eq!(blocking_query(), Ok(1));
    assert_eq!(blocking_query(), Ok(1));
}

#[bulkhead(
    name = "ad-gradient2",
    max_concurrent = "gradient2",
    tolerance = 1.5,
    min_limit = 2,
    max_limit = 40,
    initial_limit = 20
)]
async fn replica(latency_ms: u64) -> Result<u64, ApiError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    Ok(latency_ms)
}

fn gradient2() -> resilience::AdaptiveBulkheadStatus {
    registry()
        .snapshot()
        .adaptive_bulkheads
        .into_iter()
        .find(|b| &*b.name == "ad-gradient2")
        .expect("in the snapshot")
}

#[tokio::test(start_paused = true)]
async fn a_gradient2_limit_shrinks_when_latency_rises_above_its_long_term_average() {
    // Rounds of 20 concurrent calls: at 10 ms the latency is the long-term
    // average, and the limit holds or grows by its queue.
    for _ in 0..30 {
        let calls = (0..20).map(|_| replica(10));
        futures::future::join_all(calls).await;
    }
    let steady = gradient2();
    assert_eq!(steady.algorithm, "gradient2");
    assert!(steady.limit >= 20, "{steady:?}");
    // Five times slower: the gradient (1.5 × long / short) is below 1.
    for _ in 0..10 {
        let calls = (0..20).map(|_| replica(50));
        let results = futures::future::join_all(calls).await;
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(ApiError::Layer(e)) if e.is_bulkhead_full())));
    }
    let slow = gradient2();
    assert!(slow.limit < steady.limit, "{steady:?} then {slow:?}");
    assert!(slow.limit >= 2, "within its bounds: {slow:?}");
    let site = resilience::manifest::call_sites()
        .find(|s| s.name().as_static() == Some("ad-gradient2"))
        .unwrap();
    assert!(
        site.settings()
            .unwrap()
            .contains("\"adaptive\" (gradient2)"),
        "{:?}",
        site.settings()
    );
}
