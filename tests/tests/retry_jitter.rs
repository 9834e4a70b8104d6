//! `#[retry]` jitter on the paused clock: `full`, `equal` and `decorrelated`
//! draw each delay within their bounds, and the sleeps are the delays passed
//! to `on_retry`.

mod support;

use std::time::Duration;

use resilience::retry;
use support::retry::{fails, ApiError, Upstream};
use support::{ms, secs as s};

use ApiError::Timeout;

impl Upstream {
    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        jitter = "full",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn full_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        jitter = "equal",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn equal_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 4,
        backoff = "exponential",
        delay = "1s",
        max_delay = "5s",
        jitter = "decorrelated",
        on_retry = |n, e, d| self.record_retry(n, e, d)
    )]
    async fn decorrelated_jitter(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

fn ceil_ms(d: Duration) -> Duration {
    ms(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap())
}

#[derive(Clone, Copy)]
enum Mode {
    Full,
    Equal,
    Decorrelated,
}

/// Runs 50 calls against an always-failing upstream and returns each call's
/// delays, after checking that the sleeps were those delays.
async fn jitter_samples(mode: Mode) -> Vec<Vec<Duration>> {
    let mut samples = Vec::new();
    for _ in 0..50 {
        let up = Upstream::new(vec![fails(Timeout); 4]);
        let result = match mode {
            Mode::Full => up.full_jitter().await,
            Mode::Equal => up.equal_jitter().await,
            Mode::Decorrelated => up.decorrelated_jitter().await,
        };
        assert_eq!(result, Err(Timeout));
        let delays: Vec<Duration> = up.retries().into_iter().map(|(_, _, d)| d).collect();
        assert_eq!(delays.len(), 3);
        // tokio's timer rounds a sleep up to the next millisecond.
        let slept: Vec<Duration> = delays.iter().map(|d| ceil_ms(*d)).collect();
        assert_eq!(up.gaps(), slept, "the sleeps are the reported delays");
        samples.push(delays);
    }
    samples
}

#[tokio::test(start_paused = true)]
async fn full_jitter_draws_each_delay_from_zero_to_the_computed_one() {
    let samples = jitter_samples(Mode::Full).await;
    let caps = [s(1), s(2), s(4)];
    for delays in &samples {
        assert_eq!(delays.len(), 3);
        for (d, cap) in delays.iter().zip(caps) {
            assert!(*d <= cap, "{d:?} > {cap:?}");
        }
    }
    assert!(
        samples.iter().any(|d| d[..] != caps[..]),
        "jitter applied at all"
    );
    assert!(
        samples.iter().any(|d| d[0] < ms(500)),
        "the lower half is reached"
    );
}

#[tokio::test(start_paused = true)]
async fn equal_jitter_draws_each_delay_from_half_to_the_computed_one() {
    let samples = jitter_samples(Mode::Equal).await;
    let caps = [s(1), s(2), s(4)];
    for delays in &samples {
        for (d, cap) in delays.iter().zip(caps) {
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
    }
    assert!(samples.iter().any(|d| d[..] != caps[..]));
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_draws_from_base_to_three_times_the_previous_capped() {
    let samples = jitter_samples(Mode::Decorrelated).await;
    for delays in &samples {
        let mut previous = s(1);
        for d in delays {
            let high = (previous * 3).min(s(5));
            assert!(*d >= s(1) && *d <= high, "{d:?} outside [1s, {high:?}]");
            previous = *d;
        }
    }
    assert!(
        samples.iter().any(|d| d.iter().any(|d| *d > s(3))),
        "grows past 3 × base once the previous delay grew"
    );
    assert!(samples.iter().any(|d| d[0] != d[1]));
}
