//! Hedged requests: a call that has not answered after a delay is raced by
//! another attempt, and the first success wins.

mod config;
mod future;
mod histogram;
mod metrics;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use config::{HedgeConfig, HedgeConfigBuilder, HedgeDelay};
#[cfg(feature = "tower")]
pub(crate) use future::Core;
pub use future::HedgeFuture;
use histogram::LatencyHistogram;

use crate::live::Versions;

/// A named hedging policy: the attempts of a call are raced, the next one
/// starting when the running ones have not answered after the delay (or at
/// once when one fails); the first `Ok` wins and the others are dropped
/// (cancelled); when every attempt failed and no hedge is left, the call
/// fails with the last error. The semantics of Polly's hedging strategy and
/// of tower's `hedge` (which starts one hedge at most).
///
/// ```
/// use std::time::Duration;
/// use resilience::{Hedge, HedgeConfig};
///
/// // Lives in a `static`: `new` and every builder step are `const fn`s.
/// static SEARCH: Hedge = Hedge::new("search", HedgeConfig::DEFAULT);
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let replicas = ["slow-replica", "fast-replica"];
/// let mut next = 0;
/// let answer: Result<&str, std::io::Error> = SEARCH
///     .run(|| {
///         let replica = replicas[next];
///         next += 1;
///         async move {
///             let took = if replica == "slow-replica" { 30 } else { 1 };
///             tokio::time::sleep(Duration::from_secs(took)).await;
///             Ok(replica)
///         }
///     })
///     .await;
/// // The first attempt had not answered after the 2 s fallback delay; the
/// // hedge answered 1 s later, and the first attempt was dropped.
/// assert_eq!(answer.unwrap(), "fast-replica");
/// let status = SEARCH.status();
/// assert_eq!((status.hedges, status.hedges_won), (1, 1));
/// println!("{status:?}");
/// # }
/// ```
///
/// # The delay
///
/// [`HedgeDelay::Fixed`], or [`HedgeDelay::Percentile`]: the `p` quantile
/// of the latency of this hedge's recent successful calls (each call's
/// winning attempt, from its start), read from a lock-free histogram of
/// log-linear buckets over microseconds (at most 12.5 % coarse; the
/// quantile is read as its bucket's upper edge). The histogram is windowed
/// as tower's hedge windows its own (`RotatingHistogram`): two histograms
/// tagged with the `period` they count; a quantile reads the current and the
/// previous period, so samples older than two periods are forgotten. Until
/// the window holds `min_samples` samples the fallback delay is used. The
/// delay is fixed when a call is first polled.
///
/// Only winning attempts are measured: a losing attempt is cancelled before
/// it answers, so a quantile of a heavily hedged dependency reads low
/// (tower's hedge has the same bias).
///
/// # Attempts
///
/// At most `1 +` [`max_hedges`](HedgeConfig::max_hedges) attempts per call
/// ([`HedgeConfig::MAX_HEDGES`] extra ones at most): each lives inline in
/// the call's future, which allocates nothing. Each hedge starts `delay`
/// after the previous attempt started, or at once when an attempt fails.
#[derive(Debug)]
pub struct Hedge {
    name: Name,
    /// Read per call; [`set_config`](Hedge::set_config) publishes a new
    /// version without a lock on the readers' side.
    config: Versions<HedgeConfig>,
    latency: Latency,
    calls: AtomicU64,
    hedges: AtomicU64,
    won: AtomicU64,
}

/// A hedge's name: written in the program, or made at run time.
#[derive(Debug, Clone)]
pub(crate) enum Name {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Static(name) => name,
            Name::Shared(name) => name,
        }
    }
}

/// The histogram, shown in `Debug` by what it holds rather than its 480
/// counters.
struct Latency(LatencyHistogram);

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LatencyHistogram { .. }")
    }
}

/// A point-in-time view of a [`Hedge`] ([`Hedge::status`]).
///
/// ```
/// use resilience::{Hedge, HedgeConfig};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let hedge = Hedge::with_name(String::from("ledger"), HedgeConfig::DEFAULT);
/// let status = hedge.status();
/// assert_eq!(&*status.name, "ledger");
/// assert_eq!(status.calls, 0);
/// assert_eq!(status.delay, std::time::Duration::from_secs(2), "the fallback, no samples yet");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HedgeStatus {
    /// The hedge's name.
    pub name: Arc<str>,
    /// Calls made through it.
    pub calls: u64,
    /// Extra attempts started (hedges).
    pub hedges: u64,
    /// Calls an extra attempt answered.
    pub hedges_won: u64,
    /// The delay a call starting now would wait before its first hedge.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "delay_seconds", serialize_with = "crate::serde_impls::secs")
    )]
    pub delay: Duration,
    /// Successful calls in the latency histogram's window (always 0 for a
    /// fixed delay, which keeps no histogram).
    pub samples: u64,
    /// Extra attempts a call may start.
    pub max_hedges: u32,
}

impl Hedge {
    /// A hedge named `name` (the name its `tracing` events and metrics
    /// report); a `const fn`, for a `static` (see [`Hedge`]).
    pub const fn new(name: &'static str, config: HedgeConfig) -> Hedge {
        Hedge::build(Name::Static(name), config)
    }

    /// A hedge whose name is made at run time.
    ///
    /// ```
    /// use resilience::{Hedge, HedgeConfig};
    ///
    /// let region = "eu-west-1";
    /// let hedge = Hedge::with_name(format!("blobs-{region}"), HedgeConfig::DEFAULT);
    /// assert_eq!(hedge.name(), "blobs-eu-west-1");
    /// ```
    pub fn with_name(name: impl Into<Arc<str>>, config: HedgeConfig) -> Hedge {
        Hedge::build(Name::Shared(name.into()), config)
    }

    const fn build(name: Name, config: HedgeConfig) -> Hedge {
        Hedge {
            name,
            config: Versions::new(config),
            latency: Latency(LatencyHistogram::new()),
            calls: AtomicU64::new(0),
            hedges: AtomicU64::new(0),
            won: AtomicU64::new(0),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The configuration in force (a reference into its versions: no
    /// copy, no lock).
    #[inline]
    pub fn config(&self) -> &HedgeConfig {
        self.config.get()
    }

    /// Puts `config` in force from the next call on (calls under way keep
    /// the delay they started with). The latency histogram is kept.
    /// Returns whether anything changed; a change is a `tracing` event.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::{Hedge, HedgeConfig, HedgeDelay};
    ///
    /// let hedge = Hedge::with_name("search", HedgeConfig::DEFAULT);
    /// let faster = HedgeConfig::builder().delay(Duration::from_millis(30)).build().unwrap();
    /// assert!(hedge.set_config(faster));
    /// assert_eq!(hedge.config().delay(), HedgeDelay::Fixed(Duration::from_millis(30)));
    /// assert!(!hedge.set_config(faster), "no change");
    /// ```
    pub fn set_config(&self, config: HedgeConfig) -> bool {
        let from = *self.config();
        if !self.config.set(config) {
            return false;
        }
        tracing::info!(
            target: "resilience",
            hedge = self.name(),
            from = %from,
            to = %config,
            "hedge `{}` reconfigured",
            self.name()
        );
        true
    }

    /// The delay a call starting now would wait before its first hedge:
    /// the fixed delay, the percentile of the recent successful calls, or
    /// the fallback while there are fewer than `min_samples` of them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::{Hedge, HedgeConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let config = HedgeConfig::builder()
    ///     .percentile(0.9, Duration::from_secs(1))
    ///     .min_samples(10)
    ///     .build()
    ///     .unwrap();
    /// let hedge = Hedge::new("profile", config);
    /// assert_eq!(hedge.delay(), Duration::from_secs(1), "the fallback");
    /// for _ in 0..10 {
    ///     let ok = hedge.run(|| async {
    ///         tokio::time::sleep(Duration::from_millis(40)).await;
    ///         Ok::<(), ()>(())
    ///     });
    ///     ok.await.unwrap();
    /// }
    /// // 40 ms, read as the upper edge of its bucket (at most 12.5 % above).
    /// let p90 = hedge.delay();
    /// assert!(p90 >= Duration::from_millis(40) && p90 <= Duration::from_millis(45), "{p90:?}");
    /// # }
    /// ```
    pub fn delay(&self) -> Duration {
        self.delay_at(Instant::now())
    }

    pub(crate) fn delay_at(&self, now: Instant) -> Duration {
        let config = self.config();
        match config.delay() {
            HedgeDelay::Fixed(delay) => delay,
            HedgeDelay::Percentile { p, fallback } => self
                .latency
                .0
                .quantile(p, config.min_samples(), now, config.period())
                .unwrap_or(fallback),
        }
    }

    /// Its counters and its current delay.
    ///
    /// ```
    /// use resilience::{Hedge, HedgeConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let hedge = Hedge::new("quotes", HedgeConfig::DEFAULT);
    /// hedge.run(|| async { Ok::<u8, ()>(1) }).await.unwrap();
    /// let status = hedge.status();
    /// assert_eq!((status.calls, status.hedges, status.samples), (1, 0, 1));
    /// # }
    /// ```
    pub fn status(&self) -> HedgeStatus {
        let now = Instant::now();
        let samples = match self.config().delay() {
            HedgeDelay::Fixed(_) => 0,
            HedgeDelay::Percentile { .. } => self.latency.0.samples(now, self.config().period()),
        };
        HedgeStatus {
            name: match &self.name {
                Name::Static(name) => Arc::from(*name),
                Name::Shared(name) => name.clone(),
            },
            calls: self.calls.load(Ordering::Relaxed),
            hedges: self.hedges.load(Ordering::Relaxed),
            hedges_won: self.won.load(Ordering::Relaxed),
            delay: self.delay_at(now),
            samples,
            max_hedges: self.config().max_hedges(),
        }
    }

    /// Runs a hedged call: `attempt` makes one attempt each time it is
    /// called (it clones what the attempt needs), first when the returned
    /// future is first polled, then once per hedge.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::{Hedge, HedgeConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let config = HedgeConfig::builder().delay(Duration::from_millis(100)).max_hedges(2).build().unwrap();
    /// let hedge = Hedge::new("dns", config);
    /// let mut attempts = 0;
    /// let started = tokio::time::Instant::now();
    /// let answer = hedge
    ///     .run(|| {
    ///         attempts += 1;
    ///         let n = attempts;
    ///         async move {
    ///             if n == 1 {
    ///                 return Err(format!("attempt {n}: connection reset"));
    ///             }
    ///             tokio::time::sleep(Duration::from_millis(30)).await;
    ///             Ok(format!("answer of attempt {n}"))
    ///         }
    ///     })
    ///     .await;
    /// // The failure started the hedge at once, without waiting for the delay.
    /// assert_eq!(answer.unwrap(), "answer of attempt 2");
    /// assert_eq!(started.elapsed(), Duration::from_millis(30));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The error of the last attempt to fail, once every attempt failed
    /// and no hedge is left.
    pub fn run<F, Fut, T, E>(&self, attempt: F) -> HedgeFuture<'_, F, Fut>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        HedgeFuture::new(self, attempt, future::always as fn() -> bool)
    }

    /// [`run`](Self::run), asking `may_hedge` before each extra attempt:
    /// `false` starts none (and no later one) — the running attempts go
    /// on. The attributes pass "the circuit is not open and the retry
    /// budget has a token".
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::{Hedge, HedgeConfig, RetryBudget};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// // Hedges are extra load: draw them from a retry budget.
    /// let budget = RetryBudget::new("search", Duration::from_secs(10), 0, 0.0).unwrap();
    /// let hedge = Hedge::new("search", HedgeConfig::builder().delay(Duration::from_millis(5)).build().unwrap());
    /// let answer = hedge
    ///     .run_with(
    ///         || async {
    ///             tokio::time::sleep(Duration::from_millis(50)).await;
    ///             Ok::<_, ()>("slow but alone")
    ///         },
    ///         || budget.withdraw(),
    ///     )
    ///     .await;
    /// assert_eq!(answer, Ok("slow but alone"));
    /// assert_eq!(hedge.status().hedges, 0, "the budget had no token");
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_with<F, Fut, G, T, E>(&self, attempt: F, may_hedge: G) -> HedgeFuture<'_, F, Fut, G>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        G: FnMut() -> bool,
    {
        HedgeFuture::new(self, attempt, may_hedge)
    }

    /// A call's winning attempt answered `Ok` after `latency`.
    pub(crate) fn record(&self, latency: Duration, now: Instant) {
        let config = self.config();
        if let HedgeDelay::Percentile { .. } = config.delay() {
            self.latency.0.record(latency, now, config.period());
        }
    }

    /// Whether calls are timed (a percentile delay learns from them).
    pub(crate) fn learns(&self) -> bool {
        matches!(self.config().delay(), HedgeDelay::Percentile { .. })
    }

    pub(crate) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_hedge(&self) {
        self.hedges.fetch_add(1, Ordering::Relaxed);
        metrics::hedge_started(&self.name);
    }

    pub(crate) fn count_won(&self) {
        self.won.fetch_add(1, Ordering::Relaxed);
        metrics::hedge_won(&self.name);
    }
}
