use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::Problem;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn aimd(initial: u32, min: u32, max: u32, threshold: Duration, ratio: f64) -> AdaptiveConfig {
    AdaptiveConfig::builder(
        Aimd::default()
            .latency_threshold(threshold)
            .backoff_ratio(ratio),
    )
    .initial_limit(initial)
    .min_limit(min)
    .max_limit(max)
    .build()
    .unwrap()
}

fn gradient2(initial: u32, min: u32, max: u32) -> AdaptiveConfig {
    AdaptiveConfig::builder(Gradient2::default())
        .initial_limit(initial)
        .min_limit(min)
        .max_limit(max)
        .build()
        .unwrap()
}

/// `actual` within a microsecond of `expected` (an average of equal
/// latencies may be off by a rounding).
#[track_caller]
fn close(actual: Option<Duration>, expected: Duration) {
    let actual = actual.expect("a long-term latency");
    let off = actual.abs_diff(expected);
    assert!(
        off < Duration::from_micros(1),
        "{actual:?} is not {expected:?}"
    );
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

// ---- the configuration ----------------------------------------------------

#[test]
fn defaults_are_netflix_s_and_the_initial_limit_fits_the_bounds() {
    let config = AdaptiveConfig::builder(Aimd::default()).build().unwrap();
    assert_eq!(
        (
            config.min_limit(),
            config.initial_limit(),
            config.max_limit()
        ),
        (1, 20, 200)
    );
    assert_eq!(config.max_wait(), Duration::ZERO);
    assert_eq!(
        config.algorithm(),
        &Algorithm::Aimd(Aimd {
            latency_threshold: Duration::from_secs(5),
            backoff_ratio: 0.9
        })
    );
    let low = AdaptiveConfig::builder(Gradient2::default())
        .max_limit(5)
        .build()
        .unwrap();
    assert_eq!(low.initial_limit(), 5, "the default initial limit, clamped");
    let high = AdaptiveConfig::builder(Gradient2::default())
        .min_limit(30)
        .build()
        .unwrap();
    assert_eq!(high.initial_limit(), 30);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let error = AdaptiveConfig::builder(
        Aimd::default()
            .latency_threshold(Duration::ZERO)
            .backoff_ratio(1.0),
    )
    .min_limit(0)
    .max_limit(0)
    .initial_limit(0)
    .build()
    .unwrap_err();
    let keys: Vec<_> = error.problems().iter().map(Problem::key).collect();
    assert_eq!(
        keys,
        [
            "min_limit",
            "max_limit",
            "initial_limit",
            "latency_threshold",
            "backoff_ratio"
        ]
    );
    assert_eq!(
        error.to_string(),
        "invalid resilience configuration: `min_limit` must be at least 1, found 0; \
         `max_limit` must be at least 1, found 0; `initial_limit` must be at least 1, found 0; \
         `latency_threshold` must be longer than zero; \
         `backoff_ratio` must be between 0.5 and 0.99, found 1"
    );

    let error = AdaptiveConfig::builder(
        Gradient2::default()
            .tolerance(0.5)
            .smoothing(f64::NAN)
            .queue_size(0)
            .long_window(0),
    )
    .min_limit(5)
    .max_limit(10)
    .initial_limit(11)
    .build()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid resilience configuration: `initial_limit` must be between 5 and 10, found 11; \
         `tolerance` must be between 1 and 10, found 0.5; `smoothing` must be between 0.01 and 1, found NaN; \
         `queue_size` must be at least 1, found 0; `long_window` must be at least 1, found 0"
    );
}

#[test]
fn min_limit_above_max_limit_is_refused() {
    let error = AdaptiveConfig::builder(Aimd::default())
        .min_limit(20)
        .max_limit(10)
        .initial_limit(15)
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [Problem::TooLarge {
            key: "min_limit",
            found: 20,
            max: 10
        }]
    );
}

// ---- AIMD -----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn aimd_grows_under_fast_successes_up_to_max() {
    let limit = AdaptiveLimit::new("aimd-grows", aimd(10, 1, 50, ms(100), 0.5));
    let mut last = limit.current();
    let mut calls = 0;
    while limit.current() < 50 {
        let now = limit.current();
        let after = limit.record(Instant::now(), ms(5), now, Outcome::Success);
        assert!(after >= last && after <= 50);
        last = after;
        calls += 1;
        assert!(calls < 10_000, "stuck at {}", limit.current());
    }
    // About one slot per round of `limit` calls: 10 + 11 + … + 49.
    assert!((1100..1300).contains(&calls), "{calls} calls");
    for _ in 0..1000 {
        limit.record(Instant::now(), ms(5), 50, Outcome::Success);
    }
    assert_eq!(limit.current(), 50);
    assert_eq!(limit.estimate(), 50.0, "never past the bound");
}

#[tokio::test(start_paused = true)]
async fn aimd_halves_on_failure_and_on_slow_calls_once_per_round() {
    let limit = AdaptiveLimit::new("aimd-halves", aimd(64, 4, 100, ms(100), 0.5));
    let round = Instant::now();
    tokio::time::advance(ms(10)).await;
    assert_eq!(limit.record(round, ms(10), 64, Outcome::Failure), 32);

    // The rest of that round fails too: the limit was cut for it already.
    assert_eq!(limit.record(round, ms(10), 64, Outcome::Failure), 32);
    assert_eq!(limit.record(round, ms(200), 64, Outcome::Success), 32);

    // A call of the next round: slower than the threshold, cut again.
    let next = Instant::now();
    tokio::time::advance(ms(200)).await;
    assert_eq!(limit.record(next, ms(200), 32, Outcome::Success), 16);

    // Never below `min_limit`.
    for _ in 0..10 {
        let start = Instant::now();
        tokio::time::advance(ms(1)).await;
        limit.record(start, ms(1), 16, Outcome::Failure);
    }
    assert_eq!(limit.current(), 4);
    assert_eq!(limit.estimate(), 4.0);
}

#[tokio::test(start_paused = true)]
async fn aimd_does_not_grow_while_little_of_the_limit_is_used() {
    let limit = AdaptiveLimit::new("aimd-app-limited", aimd(20, 1, 100, ms(100), 0.9));
    for _ in 0..1000 {
        limit.record(Instant::now(), ms(1), 9, Outcome::Success);
    }
    assert_eq!(limit.estimate(), 20.0);
    limit.record(Instant::now(), ms(1), 10, Outcome::Success);
    assert!(
        (limit.estimate() - 20.05).abs() < 1e-9,
        "half the limit in use: it grows"
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_calls_change_nothing() {
    for config in [aimd(20, 1, 100, ms(1), 0.5), gradient2(20, 1, 100)] {
        let limit = AdaptiveLimit::new("ignored", config);
        for _ in 0..100 {
            limit.record(Instant::now(), Duration::from_secs(9), 20, Outcome::Ignored);
        }
        assert_eq!(limit.estimate(), 20.0);
        assert_eq!(limit.long_rtt(), None);
    }
}

// ---- Gradient2 ------------------------------------------------------------

/// Records `n` calls of `latency` with the limit in full use.
fn run(limit: &AdaptiveLimit, n: u32, latency: Duration) {
    for _ in 0..n {
        let in_flight = limit.current();
        limit.record(Instant::now(), latency, in_flight, Outcome::Success);
    }
}

#[tokio::test(start_paused = true)]
async fn gradient2_shrinks_when_latency_rises_above_the_baseline_and_grows_back() {
    let limit = AdaptiveLimit::new("gradient2-shrinks", gradient2(50, 5, 200));
    // Steady at 10 ms: the gradient is 1, the limit grows by
    // queue_size * smoothing = 0.8 a call, up to the bound.
    run(&limit, 10, ms(10));
    assert!(
        (limit.estimate() - 58.0).abs() < 1e-9,
        "{}",
        limit.estimate()
    );
    run(&limit, 300, ms(10));
    assert_eq!(limit.current(), 200);
    close(limit.long_rtt(), ms(10));

    // Five times slower: the gradient floors at 0.5, the limit falls fast.
    run(&limit, 60, ms(50));
    let low = limit.current();
    assert!(low < 20, "{low}");
    assert!(limit.long_rtt().unwrap() < ms(30), "the baseline lags");

    // Back to 10 ms (below the baseline, which has risen a little): it grows back.
    run(&limit, 100, ms(10));
    assert!(limit.current() > low + 60, "{}", limit.current());
    run(&limit, 300, ms(10));
    assert_eq!(limit.current(), 200);
}

#[tokio::test(start_paused = true)]
async fn gradient2_learns_a_baseline_that_rose_for_good() {
    let limit = AdaptiveLimit::new("gradient2-baseline", gradient2(100, 5, 200));
    run(&limit, 100, ms(10));
    run(&limit, 50, ms(30));
    let low = limit.current();
    assert!(low < 50, "{low}");
    // 30 ms from now on: the long-term average catches up with it
    // (tolerance 1.5: once it passes 20 ms), and the limit grows again.
    run(&limit, 1500, ms(30));
    assert_eq!(limit.current(), 200);
    assert!(limit.long_rtt().unwrap() > ms(25));
}

#[tokio::test(start_paused = true)]
async fn gradient2_keeps_the_limit_while_less_than_half_is_used() {
    let limit = AdaptiveLimit::new("gradient2-app-limited", gradient2(40, 5, 200));
    for _ in 0..100 {
        limit.record(Instant::now(), ms(10), 19, Outcome::Success);
    }
    assert_eq!(limit.estimate(), 40.0);
    close(limit.long_rtt(), ms(10)); // the latency is still learned
}

#[tokio::test(start_paused = true)]
async fn gradient2_recovers_its_baseline_after_a_long_overload() {
    let limit = AdaptiveLimit::new("gradient2-decay", gradient2(100, 5, 200));
    run(&limit, 2000, ms(100));
    close(limit.long_rtt(), ms(100));
    // Much faster now: the long-term average decays by 5 % a call while
    // more than twice the latency, instead of over `long_window` calls.
    run(&limit, 50, ms(10));
    assert!(limit.long_rtt().unwrap() < ms(25), "{:?}", limit.long_rtt());
}

#[tokio::test(start_paused = true)]
async fn gradient2_with_a_sample_window_moves_once_a_window() {
    let config = AdaptiveConfig::builder(Gradient2::default().sample_window(ms(100)))
        .initial_limit(50)
        .build()
        .unwrap();
    let limit = AdaptiveLimit::new("gradient2-window", config);
    let mut changes = 0;
    let mut last = limit.estimate();
    // A call ending every millisecond for a second, 10 ms each.
    for _ in 0..1000 {
        let start = Instant::now();
        tokio::time::advance(ms(1)).await;
        limit.record(start, ms(10), 50, Outcome::Success);
        if limit.estimate() != last {
            changes += 1;
            last = limit.estimate();
        }
    }
    // The first window closes at the first call, with too few calls to count.
    assert_eq!(changes, 9, "once a window");
    assert!((limit.estimate() - (50.0 + 9.0 * 0.8)).abs() < 1e-9);
    close(limit.long_rtt(), ms(10));

    // Five times slower for 300 ms: three windows (the first mixed), at
    // most 10 % each.
    for _ in 0..300 {
        let start = Instant::now();
        tokio::time::advance(ms(1)).await;
        limit.record(start, ms(50), 57, Outcome::Success);
    }
    let e = limit.estimate();
    assert!((57.2 * 0.9f64.powi(3)..52.0).contains(&e), "{e}");
}

#[test]
fn a_sample_window_is_zero_or_at_least_100ms() {
    let error = AdaptiveConfig::builder(Gradient2::default().sample_window(ms(50)))
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid resilience configuration: `sample_window` must be between 100ms and 60s, found 50ms"
    );
}

// ---- bounds ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn bounds_hold_whatever_the_calls() {
    let mut rng = fastrand::Rng::with_seed(7);
    let configs = [
        aimd(3, 3, 9, ms(50), 0.5),
        aimd(1, 1, 1, ms(50), 0.9),
        gradient2(5, 3, 9),
        AdaptiveConfig::builder(Gradient2::default().sample_window(ms(100)))
            .min_limit(3)
            .max_limit(9)
            .build()
            .unwrap(),
        AdaptiveConfig::builder(Gradient2::default().smoothing(1.0).queue_size(1000))
            .min_limit(2)
            .max_limit(40)
            .build()
            .unwrap(),
    ];
    for config in configs {
        let limit = AdaptiveLimit::new("bounds", config);
        let (min, max) = (config.min_limit(), config.max_limit());
        for _ in 0..20_000 {
            let latency = match rng.u8(..10) {
                0 => Duration::ZERO,
                1 => Duration::from_secs(3600),
                _ => Duration::from_micros(rng.u64(..200_000)),
            };
            let outcome = match rng.u8(..3) {
                0 => Outcome::Success,
                1 => Outcome::Failure,
                _ => Outcome::Ignored,
            };
            let start = Instant::now();
            if rng.bool() {
                tokio::time::advance(Duration::from_micros(rng.u64(..1000))).await;
            }
            let after = limit.record(start, latency, rng.u32(..=max * 2), outcome);
            assert!(
                (min..=max).contains(&after),
                "{after} outside {min}..={max}"
            );
            let e = limit.estimate();
            assert!(e >= f64::from(min) && e <= f64::from(max), "{e}");
        }
    }
}

// ---- the bulkhead ---------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn in_flight_never_exceeds_the_limit_under_concurrency() {
    let config =
        AdaptiveConfig::builder(Aimd::default().latency_threshold(ms(40)).backoff_ratio(0.7))
            .initial_limit(8)
            .min_limit(2)
            .max_limit(30)
            .max_wait(Duration::from_secs(60))
            .build()
            .unwrap();
    let bulkhead = Arc::new(AdaptiveBulkhead::new("adaptive-concurrency", config));
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let limits = Rc::new(RefCell::new(std::collections::BTreeSet::new()));
    let local = tokio::task::LocalSet::new();
    for client in 0..100u64 {
        let (bulkhead, running, peak, limits) = (
            bulkhead.clone(),
            running.clone(),
            peak.clone(),
            limits.clone(),
        );
        local.spawn_local(async move {
            let mut rng = fastrand::Rng::with_seed(client);
            for _ in 0..50 {
                let latency = ms(rng.u64(1..60));
                let fails = rng.u8(..20) == 0;
                let result: Result<(), Error> = bulkhead
                    .call(async {
                        // First polled right after admission (one thread):
                        // the limit is the one it was admitted under.
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(
                            now <= bulkhead.limit(),
                            "{now} running, limit {}",
                            bulkhead.limit()
                        );
                        peak.fetch_max(now, Ordering::SeqCst);
                        limits.borrow_mut().insert(bulkhead.limit());
                        tokio::time::sleep(latency).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        if fails {
                            Err(Error::timeout(latency))
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                if let Err(e) = result {
                    assert!(e.is_timeout(), "{e}: nobody waits a minute");
                }
            }
        });
    }
    local.await;
    let status = bulkhead.status();
    assert_eq!(
        (status.in_flight, status.admitted, status.rejected),
        (0, 5000, 0)
    );
    assert!(status.failures > 100);
    assert!(peak.load(Ordering::SeqCst) <= 30);
    assert!(
        limits.borrow().len() > 5,
        "the limit moved: {:?}",
        limits.borrow()
    );
}

#[test]
fn in_flight_never_exceeds_a_limit_across_threads() {
    let config = AdaptiveConfig::builder(Aimd::default())
        .min_limit(4)
        .max_limit(4)
        .max_wait(Duration::from_secs(30))
        .build()
        .unwrap();
    let bulkhead = Arc::new(AdaptiveBulkhead::new("adaptive-threads", config));
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (bulkhead, running, peak) = (bulkhead.clone(), running.clone(), peak.clone());
            std::thread::spawn(move || {
                let mut rejected = 0;
                for i in 0..2000 {
                    // Half the threads wait (parked), half try and move on.
                    let permit = if t % 2 == 0 {
                        bulkhead.acquire_blocking()
                    } else {
                        bulkhead.try_acquire()
                    };
                    let Ok(permit) = permit else {
                        rejected += 1;
                        continue;
                    };
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::hint::spin_loop();
                    running.fetch_sub(1, Ordering::SeqCst);
                    permit.record(if i % 7 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                }
                (t, rejected)
            })
        })
        .collect();
    for thread in threads {
        let (t, rejected) = thread.join().unwrap();
        if t % 2 == 0 {
            assert_eq!(rejected, 0, "waiting threads always get a slot");
        }
    }
    assert!(peak.load(Ordering::SeqCst) <= 4);
    assert_eq!(bulkhead.in_flight(), 0);
    assert_eq!(bulkhead.waiters.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_up_to_max_wait_then_is_rejected_with_the_limit() {
    let config = AdaptiveConfig::builder(Aimd::default())
        .min_limit(1)
        .max_limit(1)
        .max_wait(ms(100))
        .build()
        .unwrap();
    let bulkhead = Arc::new(AdaptiveBulkhead::new("adaptive-wait", config));
    let held = bulkhead.try_acquire().unwrap();
    let start = Instant::now();
    let waiting = {
        let bulkhead = bulkhead.clone();
        tokio::spawn(async move {
            let permit = bulkhead.acquire().await.map(|p| p.started());
            (permit, start.elapsed())
        })
    };
    tokio::time::sleep(ms(50)).await;
    drop(held);
    let (permit, waited) = waiting.await.unwrap();
    assert_eq!(waited, ms(50), "admitted when the slot freed");
    assert_eq!(
        permit.unwrap(),
        start + ms(50),
        "its latency counts from there"
    );

    let _held = bulkhead.try_acquire().unwrap();
    let start = Instant::now();
    let full = bulkhead.acquire().await.unwrap_err();
    assert_eq!(start.elapsed(), ms(100));
    assert!(full.is_bulkhead_full());
    assert_eq!(full.name().as_deref(), Some("adaptive-wait"));
    assert_eq!(full.max_concurrent(), Some(1));
    assert_eq!(bulkhead.status().rejected, 1);
    assert_eq!(bulkhead.waiters.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let config = AdaptiveConfig::builder(Aimd::default())
        .min_limit(1)
        .max_limit(1)
        .max_wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let bulkhead = Arc::new(AdaptiveBulkhead::new("adaptive-fifo", config));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = bulkhead.try_acquire().unwrap();
    let mut tasks = Vec::new();
    for who in ["a", "b", "c"] {
        let (bulkhead, order) = (bulkhead.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let permit = bulkhead.acquire().await.unwrap();
            order.lock().unwrap().push(who);
            tokio::time::sleep(ms(10)).await;
            drop(permit);
        }));
        settle().await;
    }
    drop(held);
    // The slot is a's, though nobody has run yet: no newcomer takes it.
    assert!(bulkhead.try_acquire().is_err());
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_raised_limit_admits_several_waiters_at_once() {
    // Smoothing 1 and a queue of 2: each fast call raises the limit by 2.
    let config = AdaptiveConfig::builder(Gradient2::default().smoothing(1.0).queue_size(2))
        .initial_limit(2)
        .max_limit(10)
        .max_wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let bulkhead = Arc::new(AdaptiveBulkhead::new("adaptive-raise", config));
    let (a, b) = (
        bulkhead.try_acquire().unwrap(),
        bulkhead.try_acquire().unwrap(),
    );
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let bulkhead = bulkhead.clone();
            tokio::spawn(async move {
                let _permit = bulkhead.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            })
        })
        .collect();
    settle().await;
    assert_eq!(bulkhead.waiters.load(Ordering::SeqCst), 3);
    tokio::time::advance(ms(10)).await;
    a.record(Outcome::Success);
    assert_eq!(bulkhead.limit(), 4);
    settle().await;
    assert_eq!(bulkhead.in_flight(), 4, "b and all three waiters");
    assert_eq!(bulkhead.waiters.load(Ordering::SeqCst), 0);
    drop(b);
    for w in waiters {
        w.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_frees_its_slot_and_records_nothing() {
    let bulkhead = AdaptiveBulkhead::new("adaptive-cancel", aimd(4, 1, 8, ms(10), 0.5));
    let call = bulkhead.call(async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, Error>(())
    });
    let cut = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert!(cut.is_err());
    let status = bulkhead.status();
    assert_eq!(
        (status.in_flight, status.admitted, status.failures),
        (0, 1, 0)
    );
    assert_eq!(bulkhead.adaptive_limit().estimate(), 4.0);
}

#[tokio::test(start_paused = true)]
async fn errors_and_status_report_the_limit_in_force() {
    let config = AdaptiveConfig::builder(Gradient2::default())
        .initial_limit(20)
        .max_limit(100)
        .build()
        .unwrap();
    let bulkhead = AdaptiveBulkhead::new("adaptive-status", config);
    let mut held = Vec::new();
    while let Ok(p) = bulkhead.try_acquire() {
        held.push(p);
    }
    assert_eq!(held.len(), 20);
    let error = bulkhead.try_acquire().unwrap_err();
    assert_eq!(error.max_concurrent(), Some(20));
    tokio::time::advance(ms(10)).await;
    for p in held.drain(..) {
        p.record(Outcome::Success);
    }
    let limit = bulkhead.limit();
    assert!(limit > 20);
    assert_eq!(error.max_concurrent(), Some(limit), "the limit now");
    let mut status = bulkhead.status();
    close(status.long_rtt, ms(10));
    status.long_rtt = Some(ms(10));
    assert_eq!(
        status,
        AdaptiveBulkheadStatus {
            name: "adaptive-status".into(),
            algorithm: "gradient2",
            limit,
            in_flight: 0,
            waiting: 0,
            min_limit: 1,
            max_limit: 100,
            max_wait: Duration::ZERO,
            admitted: 20,
            rejected: 2,
            failures: 0,
            long_rtt: Some(ms(10)),
        }
    );
}

#[test]
fn shared_bulkheads_are_one_per_name() {
    let a = AdaptiveBulkhead::shared("adaptive-shared", gradient2(5, 1, 10));
    let b = AdaptiveBulkhead::shared("adaptive-shared", gradient2(7, 1, 10));
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(b.limit(), 5, "the first configuration wins");
    assert!(AdaptiveBulkhead::statuses_of_shared()
        .iter()
        .any(|s| &*s.name == "adaptive-shared"));
}
