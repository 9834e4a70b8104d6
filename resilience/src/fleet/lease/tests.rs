//! The lease arithmetic and the lease task's rules, without Redis: the
//! script's arithmetic in Rust stands for Redis, and the paused tokio clock
//! for time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::plan::{Tracked, KEEP};
use super::script::{lease, Ask, Limits, Reply};
use crate::rate_limit::fleet::{lease_size, low_water, share_schedule};
use crate::{RateLimitConfig, RateLimiter};

const TTL: Duration = Duration::from_secs(1);
const HUB: u64 = 7;

fn config(rate: u32, burst: u32) -> RateLimitConfig {
    RateLimitConfig::builder(rate)
        .burst(burst)
        .fleet(true)
        .build()
        .unwrap()
}

fn ask(want: u64, back: u64) -> Ask {
    Ask {
        want,
        back,
        leaving: false,
    }
}

/// 200/s (5 ms apart), burst 20, grants usable within 1 s.
fn limits() -> Limits {
    Limits::new(200, Duration::from_secs(1), 20, TTL)
}

#[test]
fn a_fresh_schedule_grants_the_burst_at_once_then_reserves() {
    let l = limits();
    let now = 1e12;
    let (tat, granted, wait) = lease(None, now, &l, &ask(20, 0));
    assert_eq!((granted, wait), (20, 0.0));
    assert_eq!(tat, now + 20.0 * 5000.0);
    // The next 20 are the schedule's next 100 ms: usable once the last conforms.
    let (tat, granted, wait) = lease(Some(tat), now, &l, &ask(20, 0));
    assert_eq!((granted, wait), (20, 100_000.0));
    assert_eq!(tat, now + 40.0 * 5000.0);
}

#[test]
fn a_grant_never_reaches_past_the_horizon() {
    let l = limits();
    let now = 1e12;
    // The schedule is 1.1 s ahead: room for (1 s + 95 ms - 1.1 s) / 5 ms + 1 = 0.
    let tat = now + 1_100_000.0;
    let (same, granted, wait) = lease(Some(tat), now, &l, &ask(10, 0));
    assert_eq!((same, granted), (tat, 0));
    assert_eq!(
        wait, 5_000.0,
        "until the first token comes within the horizon"
    );
    // 20 ms later, 4 come within it, usable at the horizon's end.
    let later = now + 20_000.0;
    let (_, granted, wait) = lease(Some(tat), later, &l, &ask(10, 0));
    assert_eq!(granted, 4);
    assert_eq!(wait, 1_000_000.0);
}

#[test]
fn returned_tokens_move_the_schedule_back_never_before_now() {
    let l = limits();
    let now = 1e12;
    let (tat, _, _) = lease(None, now, &l, &ask(20, 0));
    // 15 unused come back: as if only 5 had been granted.
    let (back, granted, _) = lease(Some(tat), now, &l, &ask(0, 15));
    assert_eq!((back, granted), (now + 5.0 * 5000.0, 0));
    // Later, more than the schedule holds ahead: back to now, not before.
    let later = now + 50_000.0;
    let (back, _, _) = lease(Some(tat), later, &l, &ask(0, 20));
    assert_eq!(back, later);
    // Returned and re-granted in one request: the burst again.
    let (_, granted, wait) = lease(Some(tat), now, &l, &ask(20, 20));
    assert_eq!((granted, wait), (20, 0.0));
}

#[test]
fn a_bad_schedule_in_redis_counts_as_none() {
    let l = limits();
    let now = 1e12;
    for bad in [f64::NAN, now + 1e15, 0.0] {
        let (tat, granted, wait) = lease(Some(bad), now, &l, &ask(20, 0));
        assert_eq!((granted, wait), (20, 0.0), "{bad}");
        assert_eq!(tat, now + 100_000.0);
    }
}

#[test]
fn replies_are_checked_and_capped() {
    let l = limits();
    let a = ask(10, 0);
    let ok = Reply::parse(&[10, 2_000, 3], &a, &l).unwrap();
    assert_eq!(
        (ok.granted, ok.wait, ok.instances),
        (10, Duration::from_millis(2), 3)
    );
    // Never more than asked, whatever Redis says.
    assert_eq!(
        Reply::parse(&[1_000_000, 0, 1], &a, &l).unwrap().granted,
        10
    );
    assert_eq!(Reply::parse(&[0, 0, -4], &a, &l).unwrap().instances, 0);
    for bad in [&[][..], &[1, 2], &[1, 2, 3, 4], &[-1, 0, 1], &[1, -5, 1]] {
        assert_eq!(Reply::parse(bad, &a, &l), None, "{bad:?}");
    }
    // An absurd wait is bounded.
    let long = Reply::parse(&[0, i64::MAX, 1], &a, &l).unwrap();
    assert_eq!(long.wait, Duration::from_secs(86_401));
}

#[test]
fn lease_sizes_and_shares() {
    assert_eq!(lease_size(&config(200, 20)), 20);
    assert_eq!(lease_size(&config(200, 8)), 8, "at most the burst");
    assert_eq!(lease_size(&config(5, 5)), 1, "at least one");
    assert_eq!(lease_size(&config(1000, 500)), 100, "a tenth of the period");
    assert_eq!((low_water(20), low_water(1), low_water(5)), (10, 1, 3));

    let c = config(200, 20);
    // Interval 5 ms; a third of the rate: 15 ms apart, burst 6 (5 intervals of tolerance).
    assert_eq!(share_schedule(&c, 3), (15_000_000, 75_000_000));
    assert_eq!(share_schedule(&c, 0), share_schedule(&c, 1));
    assert_eq!(share_schedule(&c, 1), (5_000_000, 95_000_000));
    // More instances than the burst: a burst of one each.
    assert_eq!(share_schedule(&c, 40), (200_000_000, 0));
}

/// Redis, for the tests: the script's arithmetic on one schedule.
struct FakeRedis {
    tat: Option<f64>,
    base: Instant,
    commands: u64,
}

impl FakeRedis {
    fn new() -> Self {
        FakeRedis {
            tat: None,
            base: Instant::now(),
            commands: 0,
        }
    }

    fn now(&self) -> f64 {
        1e12 + self.base.elapsed().as_micros() as f64
    }

    fn answer(&mut self, t: &Tracked, ask: &Ask, instances: u32) -> Reply {
        self.commands += 1;
        let limits = t.limits(TTL);
        let (tat, granted, wait) = lease(self.tat, self.now(), &limits, ask);
        self.tat = Some(tat);
        let values = [granted as i64, wait.ceil() as i64, i64::from(instances)];
        Reply::parse(&values, ask, &limits).unwrap()
    }
}

/// One instance: a fleet limiter attached to a (pretend) fleet.
struct Node {
    limiter: Arc<RateLimiter>,
    tracked: Tracked,
}

impl Node {
    fn new(config: RateLimitConfig) -> Node {
        let limiter = Arc::new(RateLimiter::new("api", config));
        assert!(limiter.fleet_attach(HUB, Arc::new(Notify::new())));
        let tracked = Tracked::new(limiter.clone(), "test", Instant::now());
        Node { limiter, tracked }
    }

    /// What the lease task does when it looks at this limiter.
    fn step(&mut self, redis: &mut FakeRedis, instances: u32) {
        let now = Instant::now();
        if let Some(ask) = self.tracked.plan(now, TTL) {
            let reply = redis.answer(&self.tracked, &ask, instances);
            self.tracked.on_reply(&ask, reply, now, HUB);
        }
    }
}

/// Three instances calling as fast as they can (10 attempts per ms each)
/// against 200/s with a burst of 20, for 3 s: over every window, the fleet
/// lets through at most the limit plus one lease per instance, and it uses
/// the quota.
#[tokio::test(start_paused = true)]
async fn a_busy_fleet_never_exceeds_the_limit_plus_one_lease_per_instance() {
    let c = config(200, 20);
    let mut redis = FakeRedis::new();
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::new(c)).collect();
    let mut per_ms = Vec::new();
    let mut calls = 0u64;
    for _ in 0..3_000 {
        let mut allowed = 0u64;
        for node in &mut nodes {
            node.step(&mut redis, 3);
            for _ in 0..10 {
                calls += 1;
                allowed += u64::from(node.limiter.try_acquire().is_ok());
            }
        }
        per_ms.push(allowed);
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    let lease = lease_size(&c);
    for window in [1usize, 5, 50, 100, 500, 1000, 3000] {
        let most = (200 * window as u64).div_ceil(1000) + 20 + lease * 3;
        let worst = per_ms.windows(window).map(|w| w.iter().sum::<u64>()).max();
        assert!(worst.unwrap() <= most, "{worst:?} > {most} in {window} ms");
    }
    let total: u64 = per_ms.iter().sum();
    assert!(total >= 600 * 95 / 100, "the quota is used: {total} of 620");
    // One command per lease of 11 to 20 tokens.
    assert!(
        redis.commands * 11 <= total + 3 * 20,
        "{} commands",
        redis.commands
    );
    assert!(calls > 10 * total);
    for node in &nodes {
        assert!(node.limiter.status().leasing);
        assert_eq!(node.limiter.status().instances, 3);
    }
}

/// Instances that come and go: an idle one gives its lease back (all but
/// one token), so the busy ones get the quota.
#[tokio::test(start_paused = true)]
async fn an_idle_instance_gives_its_unused_tokens_back() {
    let c = config(200, 20);
    let mut redis = FakeRedis::new();
    let mut a = Node::new(c);
    a.step(&mut redis, 1);
    let status = a.limiter.status();
    assert!(status.leasing);
    assert_eq!((status.leased, status.available), (20, 20));
    for _ in 0..3 {
        a.limiter.try_acquire().unwrap();
    }
    // 17 in stock, above the low-water mark: no request, until the lease expires.
    a.step(&mut redis, 1);
    assert_eq!(redis.commands, 1);
    tokio::time::advance(TTL).await;
    let before = redis.tat.unwrap();
    a.step(&mut redis, 1);
    assert_eq!(redis.commands, 2);
    assert_eq!(a.limiter.status().leased, KEEP);
    let interval = 5_000.0;
    // The schedule was behind now (1 s passed): back to now, 16 freed.
    assert!(before < redis.now());
    assert_eq!(redis.tat.unwrap(), redis.now());
    // An idle instance asks for nothing more: one heartbeat per ttl.
    tokio::time::advance(TTL / 2).await;
    a.step(&mut redis, 1);
    assert_eq!(redis.commands, 2);
    tokio::time::advance(TTL / 2).await;
    a.step(&mut redis, 1);
    assert_eq!(redis.commands, 3, "a heartbeat");
    assert_eq!(a.limiter.status().leased, KEEP);
    // Its next call passes at once and asks for a full lease.
    a.limiter.try_acquire().unwrap();
    a.step(&mut redis, 1);
    assert_eq!(redis.commands, 4);
    assert_eq!(a.limiter.status().leased, 20);
    assert_eq!(redis.tat.unwrap(), redis.now() + 20.0 * interval);
}

/// Without Redis, a fleet limiter runs on its share of the limit: the rate
/// and the burst divided by the instances last seen.
#[tokio::test(start_paused = true)]
async fn without_redis_the_local_share_applies() {
    let c = config(200, 20);
    let mut redis = FakeRedis::new();
    let mut node = Node::new(c);
    // Attached, never answered: the whole limit locally (no count known).
    let status = node.limiter.status();
    assert!(status.fleet && !status.leasing);
    assert_eq!((status.available, status.instances), (20, 0));
    node.step(&mut redis, 4);
    assert!(node.limiter.status().leasing);
    // Redis lost: 200 / 4 = 50 a second, a burst of 5.
    assert!(node.tracked.on_lost(HUB));
    let status = node.limiter.status();
    assert!(!status.leasing);
    assert_eq!(
        (status.leased, status.available, status.instances),
        (0, 5, 4)
    );
    let mut allowed = 0;
    for _ in 0..10_000 {
        allowed += u32::from(node.limiter.try_acquire().is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    assert!((500..=506).contains(&allowed), "{allowed}");
    // Redis back: leases again from the first answer on.
    node.step(&mut redis, 4);
    assert!(node.limiter.status().leasing);
    assert_eq!(node.limiter.status().leased, 20);
    // Leaving the fleet: the whole limit again, the unused tokens returned.
    assert_eq!(node.limiter.fleet_detach(HUB), 20);
    tokio::time::advance(Duration::from_millis(200)).await;
    let status = node.limiter.status();
    assert!(!status.leasing);
    assert_eq!(status.available, 20);
}

/// A call on leases waits for the next tokens up to `max_wait`; beyond
/// that, it is refused with the wait for the next tokens.
#[tokio::test(start_paused = true)]
async fn a_call_waits_for_a_lease_up_to_max_wait() {
    let c = RateLimitConfig::builder(200)
        .burst(20)
        .max_wait(Duration::from_millis(50))
        .fleet(true)
        .build()
        .unwrap();
    let mut redis = FakeRedis::new();
    let mut node = Node::new(c);
    // The fleet's schedule is taken for the next 60 ms by others.
    redis.tat = Some(redis.now() + 60_000.0 + 95_000.0);
    node.step(&mut redis, 2);
    // A reservation of 20, usable when the last conforms, 60 + 95 ms from
    // now: beyond max_wait.
    let status = node.limiter.status();
    assert!(status.leasing);
    assert_eq!(status.leased, 0);
    assert_eq!(status.retry_after, Duration::from_millis(155));
    let refused = node.limiter.acquire().await.unwrap_err();
    assert!(refused.is_rate_limited());
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(155)));
    assert!(node.limiter.try_acquire().is_err());
    tokio::time::advance(Duration::from_millis(125)).await;
    // Now 30 ms off: the call waits, and passes when the tokens arrive.
    let limiter = node.limiter.clone();
    let start = Instant::now();
    let call = tokio::spawn(async move { limiter.acquire().await });
    tokio::task::yield_now().await;
    assert!(!call.is_finished());
    tokio::time::advance(Duration::from_millis(30)).await;
    node.step(&mut redis, 2);
    call.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert_eq!(node.limiter.status().leased, 19);
}

#[test]
fn a_fleet_limiter_without_a_fleet_is_a_local_one() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let fleet = RateLimiter::new("alone", config(10, 3));
        for _ in 0..3 {
            fleet.try_acquire().unwrap();
        }
        let refused = fleet.try_acquire().unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
        let status = fleet.status();
        assert!(status.fleet && !status.leasing);
        assert_eq!(status.fleet_commands, 0);
    });
    // A limiter that is not fleet-wide never attaches.
    let local = RateLimiter::new("local", RateLimitConfig::builder(10).build().unwrap());
    assert!(!local.fleet_attach(HUB, Arc::new(Notify::new())));
}
