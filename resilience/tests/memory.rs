//! A million distinct dynamic names (one breaker per tenant…) keep the
//! registry and the process's resident memory bounded.

use std::time::Duration;

use resilience::{BreakerConfig, Outcome, Registry};

/// Resident set size in bytes (Linux), if readable.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test(start_paused = true)]
async fn a_million_dynamic_names_stay_bounded() {
    let reg = Registry::new();
    let cap = 10_000;
    reg.set_dynamic_limits(Duration::from_secs(60), cap);
    let config = BreakerConfig::builder()
        .failure_threshold(3)
        .build()
        .unwrap();
    let before = rss();
    let mut peak = 0;
    let mut name = String::new();
    for i in 0..1_000_000u32 {
        name.clear();
        name.push_str("tenant-");
        name.push_str(&i.to_string());
        let breaker = resilience::__private::registry_dynamic_breaker(&reg, &name, &config);
        breaker.try_acquire().unwrap().record(Outcome::Success);
        if i % 1000 == 0 {
            tokio::time::advance(Duration::from_millis(100)).await;
            peak = peak.max(reg.dynamic_breaker_count());
        }
    }
    assert!(peak <= cap, "the registry grew to {peak} dynamic breakers");
    assert!(reg.dynamic_breaker_count() <= cap);
    if let (Some(before), Some(after)) = (before, rss()) {
        let grown = after.saturating_sub(before);
        // 1,000,000 breakers kept would be hundreds of MB.
        assert!(
            grown < 64 << 20,
            "resident memory grew by {} MiB",
            grown >> 20
        );
    }
    // Idle ones go after the idle time, even under the cap.
    tokio::time::advance(Duration::from_secs(60)).await;
    reg.evict_idle();
    assert_eq!(reg.dynamic_breaker_count(), 0);
}
