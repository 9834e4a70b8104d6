//! Adaptive concurrency limits against a dependency that slows down under
//! load.
//!
//! The simulated dependency answers in 10 ms while it serves up to 20
//! calls at once; past that knee every extra call in flight adds 5 ms to
//! each call (it queues inside), so more concurrency means less
//! throughput. 100 clients arrive over the first five seconds and call it
//! back to back for a minute, each waiting up to a second for a slot,
//! through four bulkheads in turn, all starting at a limit of 100:
//!
//! - `fixed 100`: a `Bulkhead` of 100. Every client gets in, the dependency
//!   runs far past its knee, and every call is slow.
//! - `aimd`: an `AdaptiveBulkhead` with AIMD, a call slower than 20 ms
//!   cutting the limit by 10 % (once per round of calls), fast calls adding
//!   about a slot per round. Its threshold is absolute: it finds the knee.
//! - `gradient2`: Netflix's Gradient2 with its defaults, each call one
//!   sample. It cuts the limit while the latency rises above its long-term
//!   average, but that average follows the latency within a few hundred
//!   calls: once the latency stops rising (this dependency is steady at any
//!   fixed concurrency), the limit grows again, here up to its maximum.
//! - `gradient2/100ms`: Gradient2 fed one sample per 100 ms window (the mean
//!   latency of the window's calls), as Netflix pairs it with its
//!   `WindowedLimit`, and a long-term average over 3000 windows (five
//!   minutes, as Netflix's 600 windows of a second span ten). It learns
//!   the 10 ms baseline while traffic arrives, and holds the limit a little
//!   past the knee.
//!
//! The clients wait their turn in the bulkhead instead of inside the
//! dependency: with the limit near the knee, more calls get through and
//! each takes less time, waiting included (the latencies are the clients').
//!
//! ```text
//! cargo run --example adaptive_concurrency
//! ```
//!
//! It runs on tokio's paused clock: four simulated minutes take a few
//! seconds.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::{
    AdaptiveBulkhead, AdaptiveConfig, Aimd, Algorithm, Bulkhead, ConfigError, Gradient2,
};
use tokio::time::Instant;

const CLIENTS: usize = 100;
const RUN: Duration = Duration::from_secs(60);
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Between two clients' first calls.
const ARRIVAL: Duration = Duration::from_millis(50);

/// A dependency whose latency rises with the calls it serves at once.
#[derive(Default)]
struct Dependency {
    in_flight: AtomicU32,
}

impl Dependency {
    /// The knee: up to this many calls at once, each takes `BASE`.
    const KNEE: u32 = 20;
    const BASE: Duration = Duration::from_millis(10);
    /// What each call past the knee adds.
    const PER_EXTRA_CALL: Duration = Duration::from_millis(5);

    async fn call(&self) -> Result<(), resilience::Error> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let extra = now.saturating_sub(Self::KNEE);
        tokio::time::sleep(Self::BASE + Self::PER_EXTRA_CALL * extra).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The bulkhead in front of the dependency.
enum Guard {
    Fixed(Bulkhead),
    Adaptive(Box<AdaptiveBulkhead>),
}

impl Guard {
    async fn call(&self, dependency: &Dependency) -> Result<(), resilience::Error> {
        match self {
            Guard::Fixed(b) => b.call(dependency.call()).await,
            Guard::Adaptive(b) => b.call(dependency.call()).await,
        }
    }

    fn limit(&self) -> u32 {
        match self {
            Guard::Fixed(b) => b.max_concurrent().get(),
            Guard::Adaptive(b) => b.limit(),
        }
    }
}

/// What one run measured.
struct Report {
    name: &'static str,
    calls: usize,
    rejected: u32,
    /// Each call's latency, sorted.
    latencies: Vec<Duration>,
    /// The limit once a second.
    limits: Vec<u32>,
    final_limit: u32,
}

impl Report {
    fn percentile(&self, q: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        let at = (last as f64 * q).round() as usize;
        self.latencies.get(at).copied().unwrap_or_default()
    }

    /// The mean limit over the last half of the run.
    fn settled_limit(&self) -> f64 {
        let half = &self.limits[self.limits.len() / 2..];
        half.iter().map(|&l| f64::from(l)).sum::<f64>() / half.len().max(1) as f64
    }
}

/// 100 clients calling through `guard` back to back for a minute.
async fn run(name: &'static str, guard: Guard) -> Report {
    let guard = Arc::new(guard);
    let dependency = Arc::new(Dependency::default());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let rejected = Arc::new(AtomicU32::new(0));
    let end = Instant::now() + RUN;

    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (guard, dependency) = (guard.clone(), dependency.clone());
            let (latencies, rejected) = (latencies.clone(), rejected.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(start + ARRIVAL * i as u32).await;
                let mut mine = Vec::new();
                while Instant::now() < end {
                    let start = Instant::now();
                    match guard.call(&dependency).await {
                        Ok(()) => mine.push(start.elapsed()),
                        Err(_) => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let sampler = {
        let guard = guard.clone();
        tokio::spawn(async move {
            let mut limits = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < end {
                tick.tick().await;
                limits.push(guard.limit());
            }
            limits
        })
    };
    for client in clients {
        client.await.unwrap();
    }
    let limits = sampler.await.unwrap();

    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    Report {
        name,
        calls: latencies.len(),
        rejected: rejected.load(Ordering::Relaxed),
        latencies,
        limits,
        final_limit: guard.limit(),
    }
}

fn print(reports: &[Report]) {
    println!(
        "{:<16} {:>8} {:>9} {:>9} {:>9} {:>14} {:>9}",
        "bulkhead", "calls/s", "p50", "p99", "limit", "limit (mean,", "rejected"
    );
    println!(
        "{:<16} {:>8} {:>9} {:>9} {:>9} {:>14} {:>9}",
        "", "", "", "", "(final)", "last 30 s)", ""
    );
    for r in reports {
        println!(
            "{:<16} {:>8.0} {:>9} {:>9} {:>9} {:>14.1} {:>9}",
            r.name,
            r.calls as f64 / RUN.as_secs_f64(),
            format!("{:.0?}", r.percentile(0.50)),
            format!("{:.0?}", r.percentile(0.99)),
            r.final_limit,
            r.settled_limit(),
            r.rejected,
        );
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), ConfigError> {
    let hundred = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
    let adaptive = |algorithm: Algorithm| {
        AdaptiveConfig::builder(algorithm)
            .initial_limit(100)
            .max_wait(MAX_WAIT)
            .build()
    };
    let aimd = adaptive(
        Aimd::default()
            .latency_threshold(Duration::from_millis(20))
            .into(),
    )?;
    let gradient2 = adaptive(Gradient2::default().into())?;
    let windowed = adaptive(
        Gradient2::default()
            .sample_window(Duration::from_millis(100))
            .long_window(3000)
            .into(),
    )?;

    println!(
        "{CLIENTS} clients for {}s against a dependency that takes {:?} up to {} calls at once, \
         then {:?} more per extra call\n",
        RUN.as_secs(),
        Dependency::BASE,
        Dependency::KNEE,
        Dependency::PER_EXTRA_CALL,
    );
    let reports = [
        run(
            "fixed 100",
            Guard::Fixed(Bulkhead::new("fixed", hundred, MAX_WAIT)),
        )
        .await,
        run(
            "aimd",
            Guard::Adaptive(Box::new(AdaptiveBulkhead::new("aimd", aimd))),
        )
        .await,
        run(
            "gradient2",
            Guard::Adaptive(Box::new(AdaptiveBulkhead::new("gradient2", gradient2))),
        )
        .await,
        run(
            "gradient2/100ms",
            Guard::Adaptive(Box::new(AdaptiveBulkhead::new(
                "gradient2-windowed",
                windowed,
            ))),
        )
        .await,
    ];
    print(&reports);

    println!("\nthe limit, second by second (first 10 s):");
    for r in &reports[1..] {
        let first: Vec<String> = r.limits.iter().take(10).map(u32::to_string).collect();
        println!("  {:<16} {}", r.name, first.join(" "));
    }
    Ok(())
}
