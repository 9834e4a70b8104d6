//! `#[rate_limit]`: a named limit shared by every call site, waiting for a
//! turn up to `max_wait`, a refusal whose `retry_after` a retry above
//! honours, the snapshot, configuration by name, blocking code.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{rate_limit, registry, retry, ErrorKind};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Layer(#[from] resilience::Error),
}

#[rate_limit(name = "rl-quota", rate = 2, per = "1s")]
async fn complete() -> Result<u32, ApiError> {
    Ok(1)
}

#[rate_limit(name = "rl-quota", rate = 2, per = "1s")]
async fn embed() -> Result<u32, ApiError> {
    Ok(2)
}

#[tokio::test(start_paused = true)]
async fn call_sites_of_one_name_share_the_limit_and_a_refusal_says_when() {
    complete().await.unwrap();
    embed().await.unwrap();
    let ApiError::Layer(refused) = complete().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert_eq!(refused.name().as_deref(), Some("rl-quota"));
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(500)));
    tokio::time::advance(Duration::from_millis(500)).await;
    embed().await.unwrap();
    let status = registry().snapshot();
    let limiter = status
        .rate_limiters
        .iter()
        .find(|l| &*l.name == "rl-quota")
        .expect("in the snapshot");
    assert_eq!((limiter.rate, limiter.burst, limiter.available), (2, 2, 0));
}

#[rate_limit(name = "rl-wait", rate = 10, burst = 1, max_wait = "250ms")]
async fn paced() -> Result<u32, ApiError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_its_turn_up_to_max_wait() {
    let start = Instant::now();
    for _ in 0..3 {
        paced().await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    // Three calls at once: 100, 200 and 300 ms off; the third is refused.
    let (a, b, c) = tokio::join!(paced(), paced(), paced());
    assert!(a.is_ok() && b.is_ok());
    assert!(matches!(c, Err(ApiError::Layer(e)) if e.is_rate_limited()));
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, delay = "1ms")]
#[rate_limit(name = "rl-retried", rate = 1, per = "1s", burst = 1)]
async fn retried() -> Result<u32, ApiError> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_retry_above_waits_the_limiters_retry_after_not_its_own_delay() {
    retried().await.unwrap();
    let start = Instant::now();
    retried().await.unwrap();
    // Refused at once (its turn 1 s off), then retried after 1 s, not 1 ms.
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(
        ATTEMPTS.load(Ordering::SeqCst),
        2,
        "the refused attempt never ran the body"
    );
}

#[rate_limit(name = "rl-blocking", rate = 20, burst = 1, max_wait = "100ms")]
fn blocking_call() -> Result<u32, ApiError> {
    Ok(1)
}

#[test]
fn blocking_code_sleeps_for_its_turn() {
    let start = std::time::Instant::now();
    blocking_call().unwrap();
    blocking_call().unwrap();
    // 50 ms apart on the real clock: bounded and short.
    assert!(start.elapsed() >= Duration::from_millis(45));
}

#[tokio::test(start_paused = true)]
async fn configuration_by_name_changes_a_running_limit() {
    use resilience::settings::Settings;
    #[rate_limit(name = "rl-configured", rate = 1, per = "1m")]
    async fn scarce() -> Result<u32, ApiError> {
        Ok(1)
    }
    scarce().await.unwrap();
    assert!(scarce().await.is_err());
    let settings: Settings = serde_json::from_str(
        r#"{"rate_limits": {"rl-configured": {"rate": 100, "per": "1s", "burst": 5}}}"#,
    )
    .unwrap();
    let applied = registry().apply(&settings).unwrap();
    assert!(applied
        .changed
        .contains(&"rate_limits.rl-configured".to_owned()));
    tokio::time::advance(Duration::from_millis(10)).await;
    scarce().await.unwrap();
    let typo: Settings =
        serde_json::from_str(r#"{"rate_limits": {"rl-configurd": {"rate": 1}}}"#).unwrap();
    let err = registry().apply(&typo).unwrap_err().to_string();
    assert!(err.contains("did you mean `rl-configured`?"), "{err}");
    registry().apply(&Settings::new()).unwrap();
}

#[rate_limit(name = "rl-fleet-quota", rate = 3, per = "1s", fleet = true)]
async fn fleet_quota() -> Result<u32, ApiError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_fleet_limit_without_a_fleet_is_the_whole_limit_locally() {
    // `fleet = true` reaches the limiter; with no fleet shared (no
    // `share_via_redis`), it runs the whole limit in this process.
    for _ in 0..3 {
        fleet_quota().await.unwrap();
    }
    let ApiError::Layer(refused) = fleet_quota().await.unwrap_err();
    assert!(refused.is_rate_limited());
    let limiter = registry()
        .snapshot()
        .rate_limiters
        .into_iter()
        .find(|l| &*l.name == "rl-fleet-quota")
        .unwrap();
    assert!(limiter.fleet && !limiter.leasing, "{limiter:?}");
    let site = resilience::manifest::call_sites()
        .find(|s| s.name().as_static() == Some("rl-fleet-quota"))
        .unwrap();
    assert_eq!(
        site.settings().unwrap(),
        "rate = 3, per = 1s, burst = 3, max_wait = 0ns, fleet = true"
    );
}
