//! `#[retry]` behaviour on the paused clock: attempts, exact delays, what is
//! cloned, what ends an attempt, what reaches the caller.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::retry;
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
struct Fail(u32);

/// Fails the first `failures` attempts, recording when each attempt started.
struct Flaky {
    failures: u32,
    attempts: u32,
    started: Vec<Duration>,
    origin: Instant,
}

impl Flaky {
    fn new(failures: u32) -> Self {
        Flaky {
            failures,
            attempts: 0,
            started: Vec::new(),
            origin: Instant::now(),
        }
    }

    fn attempt(&mut self) -> Result<u32, Fail> {
        self.attempts += 1;
        self.started.push(self.origin.elapsed());
        if self.attempts <= self.failures {
            Err(Fail(self.attempts))
        } else {
            Ok(self.attempts)
        }
    }

    #[retry(max_attempts = 4, backoff = "fixed", delay = "1s")]
    async fn fixed(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 4, backoff = "linear", delay = "1s")]
    async fn linear(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 4, backoff = "exponential", delay = 1)]
    async fn exponential(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 5, delay = "100ms", max_delay = "250ms")]
    async fn capped(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 4, delay = "100ms", multiplier = 3.0)]
    async fn tripled(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 1)]
    async fn once(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry]
    async fn defaults(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }

    #[retry(max_attempts = 3, delay = "1s", jitter = "full")]
    async fn jittered(&mut self) -> Result<u32, Fail> {
        self.attempt()
    }
}

fn secs(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn each_backoff_sleeps_its_exact_schedule() {
    let mut f = Flaky::new(3);
    assert_eq!(f.fixed().await, Ok(4));
    assert_eq!(f.started, secs(&[0.0, 1.0, 2.0, 3.0]));

    let mut f = Flaky::new(3);
    assert_eq!(f.linear().await, Ok(4));
    assert_eq!(f.started, secs(&[0.0, 1.0, 3.0, 6.0]));

    let mut f = Flaky::new(3);
    assert_eq!(f.exponential().await, Ok(4));
    assert_eq!(f.started, secs(&[0.0, 1.0, 3.0, 7.0]));

    let mut f = Flaky::new(4);
    assert_eq!(f.capped().await, Ok(5));
    assert_eq!(f.started, secs(&[0.0, 0.1, 0.3, 0.55, 0.8]));

    let mut f = Flaky::new(3);
    assert_eq!(f.tripled().await, Ok(4));
    assert_eq!(f.started, secs(&[0.0, 0.1, 0.4, 1.3]));
}

#[tokio::test(start_paused = true)]
async fn defaults_are_three_attempts_one_then_two_seconds() {
    let mut f = Flaky::new(10);
    assert_eq!(f.defaults().await, Err(Fail(3)));
    assert_eq!(f.started, secs(&[0.0, 1.0, 3.0]));
}

#[tokio::test(start_paused = true)]
async fn full_jitter_stays_within_the_computed_delays() {
    let mut f = Flaky::new(10);
    assert_eq!(f.jittered().await, Err(Fail(3)));
    let gaps: Vec<_> = f.started.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] <= Duration::from_secs(1), "{gaps:?}");
    assert!(gaps[1] <= Duration::from_secs(2), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn stops_at_the_first_success() {
    let mut f = Flaky::new(1);
    assert_eq!(f.fixed().await, Ok(2));
    assert_eq!(f.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn running_out_returns_the_last_error_unchanged() {
    let mut f = Flaky::new(100);
    assert_eq!(f.fixed().await, Err(Fail(4)));
    assert_eq!(f.attempts, 4);
}

#[tokio::test(start_paused = true)]
async fn one_attempt_never_retries() {
    let mut f = Flaky::new(100);
    assert_eq!(f.once().await, Err(Fail(1)));
    assert_eq!(f.attempts, 1);
    assert_eq!(f.origin.elapsed(), Duration::ZERO);
}

static SEEN: AtomicU32 = AtomicU32::new(0);

/// `text` is moved into the body on every attempt: it is cloned per attempt.
#[retry(max_attempts = 3, delay = "10ms")]
async fn consume(text: String, mut buf: Vec<u8>) -> Result<usize, String> {
    buf.extend_from_slice(text.as_bytes());
    let owned: String = text; // moves the argument
    if SEEN.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(owned);
    }
    Ok(buf.len())
}

#[tokio::test(start_paused = true)]
async fn by_value_arguments_are_fresh_for_every_attempt() {
    // Each attempt sees the original `buf`, not the previous attempt's.
    assert_eq!(consume("abc".into(), vec![1]).await, Ok(4));
    assert_eq!(SEEN.load(Ordering::SeqCst), 3);
}

#[derive(Debug, PartialEq)]
enum Step {
    Early,
    Parse,
}

static Q_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, delay = "1ms")]
async fn return_and_question_mark(input: &str) -> Result<u32, Step> {
    let n = Q_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        return Err(Step::Early); // ends attempt 1 only
    }
    let parsed: u32 = input.parse().map_err(|_| Step::Parse)?; // ends attempt 2
    Ok(parsed)
}

#[tokio::test(start_paused = true)]
async fn return_and_question_mark_end_one_attempt() {
    assert_eq!(return_and_question_mark("x").await, Err(Step::Parse));
    assert_eq!(Q_ATTEMPTS.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_future_is_send_when_the_body_is() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let mut f = Flaky::new(0);
    assert_eq!(assert_send(f.fixed()).await, Ok(1));
    let handle = tokio::spawn(spawnable(vec![1, 2, 3]));
    assert_eq!(handle.await.unwrap(), Ok(3));
}

#[retry(max_attempts = 2)]
async fn spawnable(items: Vec<u8>) -> Result<usize, String> {
    tokio::task::yield_now().await;
    Ok(items.len())
}
