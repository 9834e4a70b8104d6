use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);

/// Counts the attempts dropped before they answered.
struct Cancel<'a> {
    cancelled: &'a Cell<u32>,
    armed: bool,
}

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cancelled.set(self.cancelled.get() + 1);
        }
    }
}

/// Attempt `i` takes `plan[i].0` ms and answers `plan[i].1`.
struct Script {
    plan: Vec<(u64, Result<u32, u32>)>,
    t0: Instant,
    starts: RefCell<Vec<Duration>>,
    cancelled: Cell<u32>,
}

impl Script {
    fn new(plan: &[(u64, Result<u32, u32>)]) -> Self {
        Script {
            plan: plan.to_vec(),
            t0: Instant::now(),
            starts: RefCell::new(Vec::new()),
            cancelled: Cell::new(0),
        }
    }

    fn attempt(&self) -> impl Future<Output = Result<u32, u32>> + '_ {
        let i = self.starts.borrow().len();
        self.starts.borrow_mut().push(self.t0.elapsed());
        let (ms, outcome) = self.plan[i];
        let guard = Cancel {
            cancelled: &self.cancelled,
            armed: true,
        };
        async move {
            let mut guard = guard; // moved in whole, not its field
            tokio::time::sleep(Duration::from_millis(ms)).await;
            guard.armed = false;
            outcome
        }
    }

    /// When each attempt started, in ms after the script was made.
    fn starts(&self) -> Vec<u64> {
        let starts = self.starts.borrow();
        starts.iter().map(|d| d.as_millis() as u64).collect()
    }

    fn elapsed_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }
}

fn fixed(delay_ms: u64, max_hedges: u32) -> Hedge {
    let config = HedgeConfig::builder()
        .delay(Duration::from_millis(delay_ms))
        .max_hedges(max_hedges)
        .build()
        .unwrap();
    Hedge::new("test", config)
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_is_beaten_by_a_fast_hedge_and_cancelled() {
    let hedge = fixed(100, 1);
    let script = Script::new(&[(10_000, Ok(1)), (50, Ok(2))]);
    let mut call = pin!(hedge.run(|| script.attempt()));
    assert_eq!(call.as_mut().await, Ok(2));
    // Dropped when the hedge won, not when the call's future is dropped.
    assert_eq!(script.cancelled.get(), 1);
    assert_eq!(script.starts(), [0, 100]);
    assert_eq!(script.elapsed_ms(), 150);
    let status = hedge.status();
    assert_eq!((status.calls, status.hedges, status.hedges_won), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_fast_first_attempt_starts_no_hedge() {
    let hedge = fixed(100, 3);
    let script = Script::new(&[(99, Ok(1))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Ok(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(script.starts(), [0]);
    assert_eq!(hedge.status().hedges, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_first_attempt_starts_the_hedge_at_once() {
    let hedge = fixed(1_000, 1);
    let script = Script::new(&[(10, Err(1)), (20, Ok(2))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Ok(2));
    assert_eq!(script.starts(), [0, 10]);
    assert_eq!(script.elapsed_ms(), 30);
    assert_eq!(hedge.status().hedges_won, 1);
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_last_error_is_returned() {
    let hedge = fixed(80, 2);
    // Attempt 1 fails at 130 ms and starts attempt 2 at once (not at
    // 160 ms), which fails at 180 ms; attempt 0 is the last to fail, at 300 ms.
    let script = Script::new(&[(300, Err(0)), (50, Err(1)), (50, Err(2))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Err(0));
    assert_eq!(script.starts(), [0, 80, 130]);
    assert_eq!(script.elapsed_ms(), 300);
    assert_eq!(script.cancelled.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn max_hedges_bounds_the_attempts() {
    for max in 1..=HedgeConfig::MAX_HEDGES {
        let hedge = fixed(10, max);
        let plan: Vec<_> = (0..=max).map(|i| (1_000, Err(i))).collect();
        let script = Script::new(&plan);
        assert_eq!(hedge.run(|| script.attempt()).await, Err(max));
        let expected: Vec<u64> = (0..=u64::from(max)).map(|i| i * 10).collect();
        assert_eq!(script.starts(), expected);
        assert_eq!(hedge.status().hedges, u64::from(max));
    }
}

#[tokio::test(start_paused = true)]
async fn failures_never_start_more_than_max_hedges() {
    let hedge = fixed(1_000, 2);
    let script = Script::new(&[(1, Err(0)), (1, Err(1)), (1, Err(2))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Err(2));
    assert_eq!(script.starts(), [0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_delay_starts_every_attempt_at_once() {
    let hedge = fixed(0, 2);
    let script = Script::new(&[(30, Ok(0)), (10, Ok(1)), (20, Ok(2))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Ok(1));
    assert_eq!(script.starts(), [0, 0, 0]);
    assert_eq!(script.cancelled.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn may_hedge_false_stops_hedging() {
    let hedge = fixed(10, 3);
    let script = Script::new(&[(100, Ok(0)), (1_000, Ok(1))]);
    let asked = Cell::new(0);
    let may_hedge = || {
        asked.set(asked.get() + 1);
        asked.get() == 1
    };
    assert_eq!(hedge.run_with(|| script.attempt(), may_hedge).await, Ok(0));
    assert_eq!(script.starts(), [0, 10]);
    assert_eq!(asked.get(), 2, "asked once more, then never again");
    assert_eq!(script.cancelled.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_may_not_hedge_is_the_answer() {
    let hedge = fixed(1_000, 3);
    let script = Script::new(&[(10, Err(7))]);
    assert_eq!(hedge.run_with(|| script.attempt(), || false).await, Err(7));
    assert_eq!(script.elapsed_ms(), 10);
    assert_eq!(hedge.status().hedges, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_cancels_every_attempt() {
    let hedge = fixed(10, 2);
    let script = Script::new(&[(1_000, Ok(0)), (1_000, Ok(1)), (1_000, Ok(2))]);
    let call = hedge.run(|| script.attempt());
    assert!(tokio::time::timeout(25 * MS, call).await.is_err());
    assert_eq!(script.starts(), [0, 10, 20]);
    assert_eq!(script.cancelled.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_percentile_delay_follows_observed_latency() {
    let config = HedgeConfig::builder()
        .percentile(0.5, Duration::from_secs(1))
        .min_samples(20)
        .build()
        .unwrap();
    let hedge = Hedge::new("p50", config);
    for i in 0..20 {
        assert_eq!(hedge.delay(), Duration::from_secs(1), "fallback at {i}");
        let script = Script::new(&[(100, Ok(i))]);
        assert_eq!(hedge.run(|| script.attempt()).await, Ok(i));
    }
    let p50 = hedge.delay();
    assert!(
        p50 >= 100 * MS && p50 <= Duration::from_micros(112_500),
        "{p50:?}"
    );
    assert_eq!(hedge.status().samples, 20);
    // The next call hedges after the percentile, not the fallback.
    let script = Script::new(&[(10_000, Ok(1)), (10, Ok(2))]);
    assert_eq!(hedge.run(|| script.attempt()).await, Ok(2));
    // tokio's timer ticks in whole milliseconds: the deadline rounds up.
    let started = script.starts()[1];
    assert_eq!(script.starts().len(), 2);
    assert!(
        started >= p50.as_millis() as u64 && started <= p50.as_millis() as u64 + 1,
        "hedged at {started} ms, p50 {p50:?}"
    );
    // Two idle periods later the samples are forgotten.
    tokio::time::sleep(2 * HedgeConfig::DEFAULT.period()).await;
    assert_eq!(hedge.status().samples, 0);
    assert_eq!(hedge.delay(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_delay_is_fixed_when_the_call_starts() {
    let config = HedgeConfig::builder()
        .percentile(0.5, 50 * MS)
        .min_samples(1)
        .build()
        .unwrap();
    let hedge = Hedge::new("p50", config);
    let script = Script::new(&[(200, Ok(0)), (500, Ok(1))]);
    let call = hedge.run(|| script.attempt());
    // Samples recorded while the call runs do not move its delay.
    let fast = async {
        tokio::time::sleep(MS).await;
        hedge.record(Duration::from_secs(5), Instant::now());
    };
    let (answer, ()) = tokio::join!(call, fast);
    assert_eq!(answer, Ok(0));
    assert_eq!(script.starts(), [0, 50]);
}

#[tokio::test(start_paused = true)]
async fn a_delay_past_the_end_of_the_clock_never_hedges_but_failures_do() {
    let config = HedgeConfig::builder().delay(Duration::MAX).build().unwrap();
    let never = Hedge::new("never", config);
    let script = Script::new(&[(50, Ok(0))]);
    assert_eq!(never.run(|| script.attempt()).await, Ok(0));
    let script = Script::new(&[(50, Err(0)), (50, Ok(1))]);
    assert_eq!(never.run(|| script.attempt()).await, Ok(1));
    assert_eq!(script.starts(), [0, 50]);
}

#[test]
fn the_call_is_send_when_its_attempts_are() {
    fn is_send<T: Send>(_: &T) {}
    static HEDGE: Hedge = Hedge::new("send", HedgeConfig::DEFAULT);
    let call = HEDGE.run(|| async {
        tokio::time::sleep(MS).await;
        Ok::<(), String>(())
    });
    is_send(&call);
    assert!(format!("{call:?}").starts_with("HedgeFuture { hedge: \"send\""));
}

#[cfg(feature = "metrics")]
#[test]
fn hedges_are_counted_in_metrics() {
    let figures = crate::metrics::tests::recorded(|| async {
        let hedge = Hedge::with_name("metered", *fixed(10, 2).config());
        let script = Script::new(&[(1_000, Ok(0)), (1_000, Ok(1)), (1, Ok(2))]);
        assert_eq!(hedge.run(|| script.attempt()).await, Ok(2));
    });
    assert_eq!(
        figures.into_iter().collect::<Vec<_>>(),
        [
            ("resilience_hedges_total{name=metered}".to_owned(), 2.0),
            ("resilience_hedges_won_total{name=metered}".to_owned(), 1.0),
        ]
    );
}
