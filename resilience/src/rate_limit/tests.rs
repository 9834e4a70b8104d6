use std::time::Duration;

use super::{RateLimitConfig, RateLimiter};

fn limiter(rate: u32, per_ms: u64, burst: u32, wait_ms: u64) -> RateLimiter {
    let config = RateLimitConfig::builder(rate)
        .per(Duration::from_millis(per_ms))
        .burst(burst)
        .max_wait(Duration::from_millis(wait_ms))
        .build()
        .unwrap();
    RateLimiter::new("api", config)
}

#[tokio::test(start_paused = true)]
async fn a_burst_then_one_call_per_interval() {
    let l = limiter(10, 1000, 3, 0);
    for _ in 0..3 {
        l.try_acquire().unwrap();
    }
    let refused = l.try_acquire().unwrap_err();
    assert!(refused.is_rate_limited());
    assert_eq!(refused.name().as_deref(), Some("api"));
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
    assert_eq!(
        refused.to_string(),
        "rate limit `api` reached; the next call may run in 100.0ms"
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    l.try_acquire().unwrap();
    assert!(l.try_acquire().is_err());
}

#[tokio::test(start_paused = true)]
async fn over_a_long_run_the_rate_holds() {
    let l = limiter(50, 1000, 10, 0);
    let mut allowed = 0;
    // 10 s, one attempt per millisecond.
    for _ in 0..10_000 {
        if l.try_acquire().is_ok() {
            allowed += 1;
        }
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    // 50 a second for 10 s, plus the first burst.
    assert!((500..=510).contains(&allowed), "{allowed}");
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_its_turn_up_to_max_wait() {
    let l = limiter(10, 1000, 1, 250);
    let start = tokio::time::Instant::now();
    l.acquire().await.unwrap();
    l.acquire().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    l.acquire().await.unwrap();
    l.acquire().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    // Two turns taken ahead: the next is 200 ms off, within 250 ms; the
    // one after is 300 ms off.
    let a = l.gcra.take(250_000_000);
    let b = l.gcra.take(250_000_000);
    assert_eq!(a, Ok(100_000_000));
    assert_eq!(b, Ok(200_000_000));
    assert!(l.acquire().await.unwrap_err().is_rate_limited());
}

#[tokio::test(start_paused = true)]
async fn status_and_a_live_change() {
    let l = limiter(10, 1000, 5, 0);
    assert_eq!(l.status().available, 5);
    l.try_acquire().unwrap();
    assert_eq!(l.status().available, 4);
    let faster = RateLimitConfig::builder(100).burst(5).build().unwrap();
    assert!(l.set_config(faster));
    assert!(!l.set_config(faster));
    for _ in 0..4 {
        l.try_acquire().unwrap();
    }
    assert!(l.try_acquire().is_err());
    tokio::time::advance(Duration::from_millis(10)).await;
    l.try_acquire().unwrap();
    assert_eq!(l.status().rate, 100);
}

#[test]
fn bad_settings_are_errors_in_the_attributes_words() {
    let err = RateLimitConfig::builder(0)
        .burst(0)
        .per(Duration::ZERO)
        .build()
        .unwrap_err();
    let keys: Vec<_> = err.problems().iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["rate", "per", "burst"]);
}

#[tokio::test(start_paused = true)]
async fn threads_never_get_more_than_the_burst() {
    let l = std::sync::Arc::new(limiter(1, 60_000, 100, 0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let l = l.clone();
            std::thread::spawn(move || (0..1000).filter(|_| l.try_acquire().is_ok()).count())
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 100);
}
