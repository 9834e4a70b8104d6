//! `#[hedge]`: the winner, the cancelled losers, a failure that does not
//! wait for the delay, the retry budget, an open circuit below, cloned
//! arguments, the percentile delay, and configuration by name.
//!
//! Every test uses its own hedge and breaker names and its own counters:
//! they run in parallel on the one process-wide registry.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use resilience::{circuit_breaker, hedge, registry, RetryBudget};
use tokio::time::{sleep, Instant};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("replica {0} failed")]
    Replica(u32),
    #[error(transparent)]
    Layer(#[from] resilience::Error),
}

/// Counts attempts that were dropped before they finished.
struct Cancelled<'a>(&'a AtomicU32, bool);

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Replicas answer in turn: the first attempt takes `latencies[0]`, the
/// second `latencies[1]`, … (`None`: it fails at once).
struct Replicas {
    latencies: Vec<Option<u64>>,
    started: AtomicU32,
    cancelled: AtomicU32,
}

impl Replicas {
    fn new(latencies: &[Option<u64>]) -> Self {
        Replicas {
            latencies: latencies.to_vec(),
            started: AtomicU32::new(0),
            cancelled: AtomicU32::new(0),
        }
    }

    async fn answer(&self) -> Result<u32, ApiError> {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = Cancelled(&self.cancelled, false);
        let latency = self.latencies.get(n as usize).copied().flatten();
        let result = match latency {
            Some(ms) => {
                sleep(Duration::from_millis(ms)).await;
                Ok(n)
            }
            None => Err(ApiError::Replica(n)),
        };
        guard.1 = true;
        result
    }

    #[hedge(name = "hedge-winner", delay = "50ms", max_hedges = 2)]
    async fn winner(&self) -> Result<u32, ApiError> {
        self.answer().await
    }

    #[hedge(name = "hedge-fails-fast", delay = "1s", max_hedges = 1)]
    async fn fails_fast(&self) -> Result<u32, ApiError> {
        self.answer().await
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_success_wins_and_the_others_are_cancelled() {
    // The first replica hangs for 10 s, the second answers after 30 ms, the
    // third (started 50 ms after the second) never finishes before it.
    let replicas = Replicas::new(&[Some(10_000), Some(30), Some(500)]);
    let start = Instant::now();
    let answer = replicas.winner().await;
    assert_eq!(answer, Ok(1), "the second attempt won");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(80),
        "50 ms delay + 30 ms"
    );
    assert_eq!(replicas.started.load(Ordering::SeqCst), 2);
    assert_eq!(
        replicas.cancelled.load(Ordering::SeqCst),
        1,
        "the hanging first attempt was dropped"
    );
    let status = registry()
        .hedge("hedge-winner", &Default::default())
        .status();
    assert_eq!((status.calls, status.hedges, status.hedges_won), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_attempt_starts_the_hedge_without_waiting_for_the_delay() {
    let replicas = Replicas::new(&[None, Some(20)]);
    let start = Instant::now();
    assert_eq!(replicas.fails_fast().await, Ok(1));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(20),
        "not the 1 s delay"
    );
    // Every attempt failed and no hedge is left: the last error.
    let replicas = Replicas::new(&[None, None]);
    assert_eq!(replicas.fails_fast().await, Err(ApiError::Replica(1)));
    assert_eq!(replicas.started.load(Ordering::SeqCst), 2);
}

static BUDGET_RUNS: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "hedge-budgeted", delay = "10ms", budget = "hedge-budget")]
async fn budgeted() -> Result<u32, ApiError> {
    BUDGET_RUNS.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn hedges_are_drawn_from_the_retry_budget() {
    // One hedge per 10 s of calls on its own, none from the calls' deposits.
    let budget = RetryBudget::new("hedge-budget", Duration::from_secs(10), 0, 0.0).unwrap();
    registry().configure_retry_budget(budget).unwrap();
    let start = Instant::now();
    assert_eq!(budgeted().await, Ok(1));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "no hedge: no token"
    );
    assert_eq!(BUDGET_RUNS.load(Ordering::SeqCst), 1);
    let status = registry().snapshot();
    let hedge = status
        .hedges
        .iter()
        .find(|h| &*h.name == "hedge-budgeted")
        .unwrap();
    assert_eq!((hedge.calls, hedge.hedges), (1, 0));
    let budget = status
        .retry_budgets
        .iter()
        .find(|b| &*b.name == "hedge-budget")
        .unwrap();
    assert_eq!(budget.calls, 1, "the call was deposited");
}

static OPEN_RUNS: AtomicU32 = AtomicU32::new(0);

#[hedge(name = "hedge-over-breaker", delay = "10ms", max_hedges = 3)]
#[circuit_breaker(name = "hedge-breaker", failure_threshold = 1)]
async fn over_breaker() -> Result<u32, ApiError> {
    let n = OPEN_RUNS.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(5)).await;
    Err(ApiError::Replica(n))
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_below_stops_hedging() {
    // The first attempt fails and opens the circuit: no hedge follows.
    let err = over_breaker().await.unwrap_err();
    assert_eq!(err, ApiError::Replica(0));
    assert_eq!(OPEN_RUNS.load(Ordering::SeqCst), 1);
    // Open: the first attempt is rejected, and no hedge is tried.
    let err = over_breaker().await.unwrap_err();
    assert!(
        matches!(err, ApiError::Layer(e) if e.is_circuit_open()),
        "{err:?}"
    );
    assert_eq!(OPEN_RUNS.load(Ordering::SeqCst), 1);
    let status = registry()
        .hedge("hedge-over-breaker", &Default::default())
        .status();
    assert_eq!(status.hedges, 0);
}

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Store {
    prefix: &'static str,
}

impl Store {
    /// `key` is by value (each attempt gets a clone, and may consume it);
    /// `&self` and `suffix` are shared by the attempts.
    #[hedge(name = "hedge-args", delay = 0, max_hedges = 2)]
    async fn get(&self, mut key: String, suffix: &str) -> Result<String, ApiError> {
        key.push_str(suffix);
        let attempt = {
            let mut seen = SEEN.lock().unwrap();
            seen.push(key.clone());
            seen.len()
        };
        // Attempts start together (`delay = 0`); the last answers first.
        sleep(Duration::from_millis(100 - 10 * attempt as u64)).await;
        Ok(format!("{}{key}#{attempt}", self.prefix))
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_its_own_clone_of_the_arguments() {
    let store = Store { prefix: "v:" };
    let answer = store.get("user".to_owned(), "-1").await.unwrap();
    assert_eq!(answer, "v:user-1#3", "the third attempt answered first");
    assert_eq!(*SEEN.lock().unwrap(), ["user-1", "user-1", "user-1"]);
}

static P50_RUNS: AtomicU32 = AtomicU32::new(0);

#[hedge(
    name = "hedge-p50",
    delay = "p50",
    min_samples = 4,
    warmup_delay = "1s"
)]
async fn adaptive(latency_ms: u64) -> Result<u64, ApiError> {
    P50_RUNS.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(latency_ms)).await;
    Ok(latency_ms)
}

#[tokio::test(start_paused = true)]
async fn a_percentile_delay_learns_from_the_calls() {
    let hedge = || {
        registry()
            .snapshot()
            .hedges
            .into_iter()
            .find(|h| &*h.name == "hedge-p50")
    };
    for _ in 0..4 {
        adaptive(40).await.unwrap();
    }
    assert_eq!(
        P50_RUNS.load(Ordering::SeqCst),
        4,
        "no hedge below the 1 s warm-up delay"
    );
    let status = hedge().unwrap();
    assert_eq!(status.samples, 4);
    assert!(
        status.delay >= Duration::from_millis(40) && status.delay <= Duration::from_millis(45),
        "the median of the samples: {:?}",
        status.delay
    );
    // A slow call is now hedged after about 40 ms (the hedge is slow too).
    adaptive(200).await.unwrap();
    assert_eq!(P50_RUNS.load(Ordering::SeqCst), 6);
    assert_eq!(hedge().unwrap().hedges, 1);
}

#[test]
fn the_manifest_lists_every_hedge_with_its_settings() {
    let site = resilience::manifest::call_sites()
        .find(|s| s.name().as_static() == Some("hedge-winner"))
        .expect("declared");
    assert_eq!(site.kind(), resilience::manifest::Kind::Hedge);
    assert_eq!(site.attribute(), "hedge");
    assert_eq!(
        site.settings().unwrap(),
        "delay = 50ms, max_hedges = 2, min_samples = 20, period = 10s"
    );
}
