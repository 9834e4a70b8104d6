//! The limit itself and its algorithms, lock-free: the estimate is an `f64`
//! in an atomic word, moved by compare-and-swap from each recorded call;
//! the state of each algorithm (AIMD's last cut, Gradient2's long-term
//! latency, its sample window) is a few more atomic words. No lock, no
//! allocation, no clock read: the caller passes the call's start and
//! latency.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{AdaptiveConfig, Aimd, Algorithm, Gradient2};
use crate::Outcome;

/// What Gradient2 multiplies a long-term latency by when it is more than
/// twice the last call's (Netflix's recovery after a long overload).
const LONG_RTT_DECAY: f64 = 0.95;

/// A concurrency limit that moves with each call's latency and outcome,
/// within the bounds of its [`AdaptiveConfig`], by [`Aimd`] or
/// [`Gradient2`]. [`AdaptiveBulkhead`](crate::AdaptiveBulkhead) holds one
/// and records every call it admits; a limit of one's own serves another
/// kind of admission (a queue, a connection pool).
///
/// ```
/// use std::time::Duration;
/// use resilience::{AdaptiveConfig, AdaptiveLimit, Aimd, Outcome};
/// use tokio::time::Instant;
///
/// let config = AdaptiveConfig::builder(Aimd::default().backoff_ratio(0.5))
///     .initial_limit(10)
///     .build()?;
/// let limit = AdaptiveLimit::new("search", config);
/// let fast = Duration::from_millis(5);
///
/// // A round of fast successes with the limit in full use (each adds
/// // 1 / limit): one more slot.
/// for _ in 0..11 {
///     limit.record(Instant::now(), fast, 10, Outcome::Success);
/// }
/// assert_eq!(limit.current(), 11);
///
/// // A failure halves it.
/// assert_eq!(limit.record(Instant::now(), fast, 11, Outcome::Failure), 5);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct AdaptiveLimit {
    name: Arc<str>,
    config: AdaptiveConfig,
    /// The limit, an `f64` (fractions accumulate between whole slots).
    estimate: AtomicU64,
    /// The whole limit, as last published: shared with the errors of a
    /// bulkhead (`Error::max_concurrent`).
    shown: Arc<AtomicU32>,
    state: State,
    /// Where the nanoseconds of AIMD's last cut count from.
    epoch: Instant,
}

/// Each algorithm's state beyond the estimate.
enum State {
    Aimd {
        aimd: Aimd,
        /// When the limit was last cut, in nanoseconds after the epoch:
        /// calls that started before do not cut it again.
        last_cut: AtomicU64,
    },
    Gradient2 {
        gradient: Gradient2,
        /// The long-term latency in nanoseconds, an `f64`.
        long_rtt: AtomicU64,
        /// Samples averaged so far, up to the warm-up.
        samples: AtomicU32,
        /// With a sample window: the calls of the window so far.
        window: Option<SampleWindow>,
    },
}

/// The calls of one Gradient2 sample window (Netflix's `WindowedLimit`):
/// added to by every call, taken (swapped to zero) by the call that ends
/// after the window does, which feeds them to the limit as one sample.
/// A call adding while the window is taken may count in the next one.
struct SampleWindow {
    /// Nanoseconds.
    length: u64,
    /// When the window ends, in nanoseconds after the epoch.
    ends: AtomicU64,
    /// The latencies of its calls, in nanoseconds.
    total: AtomicU64,
    calls: AtomicU32,
    /// The most calls in flight when one of its calls started.
    max_in_flight: AtomicU32,
}

impl fmt::Debug for AdaptiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimit")
            .field("name", &self.name)
            .field("algorithm", self.config.algorithm())
            .field("estimate", &self.estimate())
            .field("long_rtt", &self.long_rtt())
            .finish_non_exhaustive()
    }
}

impl AdaptiveLimit {
    /// A limit at `config`'s initial limit. `name` names it in its log
    /// events.
    pub fn new(name: impl Into<Arc<str>>, config: AdaptiveConfig) -> Self {
        let initial = config.initial_limit();
        let state = match *config.algorithm() {
            Algorithm::Aimd(aimd) => State::Aimd {
                aimd,
                last_cut: AtomicU64::new(0),
            },
            Algorithm::Gradient2(gradient) => State::Gradient2 {
                gradient,
                long_rtt: AtomicU64::new(0f64.to_bits()),
                samples: AtomicU32::new(0),
                window: (!gradient.sample_window.is_zero()).then(|| SampleWindow {
                    length: nanos(gradient.sample_window),
                    ends: AtomicU64::new(0),
                    total: AtomicU64::new(0),
                    calls: AtomicU32::new(0),
                    max_in_flight: AtomicU32::new(0),
                }),
            },
        };
        AdaptiveLimit {
            name: name.into(),
            config,
            estimate: AtomicU64::new(f64::from(initial).to_bits()),
            shown: Arc::new(AtomicU32::new(initial)),
            state,
            epoch: Instant::now(),
        }
    }

    /// The name in the log events.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// The limit now: the calls that may be in flight at once.
    #[inline]
    pub fn current(&self) -> u32 {
        whole(self.estimate())
    }

    /// The limit with its fraction: what AIMD's additive increase and
    /// Gradient2's smoothing accumulate between whole slots.
    pub fn estimate(&self) -> f64 {
        f64::from_bits(self.estimate.load(Ordering::Acquire))
    }

    /// Gradient2's long-term latency (`None` for AIMD, and before the first
    /// sample).
    pub fn long_rtt(&self) -> Option<Duration> {
        match &self.state {
            State::Gradient2 {
                long_rtt, samples, ..
            } if samples.load(Ordering::Relaxed) > 0 => {
                let nanos = f64::from_bits(long_rtt.load(Ordering::Relaxed));
                Some(Duration::from_nanos(nanos as u64))
            }
            _ => None,
        }
    }

    /// The whole limit shared with a bulkhead's errors.
    pub(crate) fn shown(&self) -> &Arc<AtomicU32> {
        &self.shown
    }

    /// Records one call that started at `started`, took `latency` and ended
    /// with `outcome`; `in_flight` is the calls that were in flight when it
    /// started, itself included (how much of the limit was in use). Returns
    /// the limit after it. Logs a `debug` event of target `resilience` when
    /// the whole limit changes.
    ///
    /// Lock-free: many threads may record at once; each sample moves the
    /// limit from where the others left it.
    pub fn record(
        &self,
        started: Instant,
        latency: Duration,
        in_flight: u32,
        outcome: Outcome,
    ) -> u32 {
        if outcome == Outcome::Ignored {
            return self.current();
        }
        match &self.state {
            State::Aimd { aimd, last_cut } => {
                let good = outcome == Outcome::Success && latency <= aimd.latency_threshold;
                if good {
                    // Below half the limit in use, a success says nothing
                    // about a larger one.
                    let in_flight = f64::from(in_flight);
                    self.update(latency, outcome, |limit| {
                        (in_flight * 2.0 >= limit).then(|| limit + 1.0 / limit)
                    })
                } else if self.first_cut_since(last_cut, started, latency) {
                    let ratio = aimd.backoff_ratio;
                    self.update(latency, outcome, |limit| Some(limit * ratio))
                } else {
                    self.current()
                }
            }
            State::Gradient2 { window: None, .. } => self.gradient2(latency, in_flight, outcome),
            State::Gradient2 {
                window: Some(window),
                ..
            } => {
                let latency_nanos = nanos(latency);
                window.total.fetch_add(latency_nanos, Ordering::Relaxed);
                window.calls.fetch_add(1, Ordering::Relaxed);
                window.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
                let start = nanos(started.saturating_duration_since(self.epoch));
                let end = start.saturating_add(latency_nanos);
                let ends = window.ends.load(Ordering::Acquire);
                let closes = end > ends
                    && window
                        .ends
                        .compare_exchange(
                            ends,
                            end.saturating_add(window.length),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok();
                if !closes {
                    return self.current();
                }
                let calls = window.calls.swap(0, Ordering::Relaxed);
                let total = window.total.swap(0, Ordering::Relaxed);
                let max_in_flight = window.max_in_flight.swap(0, Ordering::Relaxed);
                if calls < Gradient2::WINDOW_MIN_CALLS {
                    return self.current();
                }
                let mean = Duration::from_nanos(total / u64::from(calls));
                self.gradient2(mean, max_in_flight, outcome)
            }
        }
    }

    /// One Gradient2 sample: a call's latency, or a window's mean.
    fn gradient2(&self, latency: Duration, in_flight: u32, outcome: Outcome) -> u32 {
        let State::Gradient2 {
            gradient,
            long_rtt,
            samples,
            ..
        } = &self.state
        else {
            return self.current();
        };
        // At least 1 ns: no division by zero.
        let short = (latency.as_nanos() as f64).max(1.0);
        let long = long_term(gradient, long_rtt, samples, short);
        let (g, in_flight) = (*gradient, f64::from(in_flight));
        self.update(latency, outcome, |limit| {
            if in_flight < limit / 2.0 {
                return None;
            }
            let slope = (g.tolerance * long / short).clamp(0.5, 1.0);
            let estimate = limit * slope + f64::from(g.queue_size);
            Some(limit * (1.0 - g.smoothing) + estimate * g.smoothing)
        })
    }

    /// Whether this call may cut the limit: it did not start before the
    /// last cut (that round of calls was cut for already). If so, the cut
    /// is recorded as of the call's end.
    fn first_cut_since(&self, last_cut: &AtomicU64, started: Instant, latency: Duration) -> bool {
        let start = nanos(started.saturating_duration_since(self.epoch));
        let end = start.saturating_add(nanos(latency));
        let mut last = last_cut.load(Ordering::Acquire);
        loop {
            if start < last {
                return false;
            }
            match last_cut.compare_exchange_weak(
                last,
                end.max(last),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => last = now,
            }
        }
    }

    /// Moves the estimate to `step(estimate)` (kept within the bounds), or
    /// leaves it where `step` says `None`; returns the whole limit after.
    fn update(
        &self,
        latency: Duration,
        outcome: Outcome,
        step: impl Fn(f64) -> Option<f64>,
    ) -> u32 {
        let (min, max) = (
            f64::from(self.config.min_limit()),
            f64::from(self.config.max_limit()),
        );
        let mut bits = self.estimate.load(Ordering::Acquire);
        loop {
            let old = f64::from_bits(bits);
            let new = match step(old) {
                Some(new) if new.is_finite() => new.clamp(min, max),
                _ => return whole(old),
            };
            if new.to_bits() == bits {
                return whole(old);
            }
            match self.estimate.compare_exchange_weak(
                bits,
                new.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let (from, to) = (whole(old), whole(new));
                    if from != to {
                        self.publish(to);
                        crate::metrics::adaptive_limit(&self.name, to);
                        tracing::debug!(
                            target: "resilience",
                            adaptive_limit = &*self.name,
                            algorithm = self.config.algorithm().name(),
                            old_limit = from,
                            limit = to,
                            latency = ?latency,
                            outcome = ?outcome,
                            "adaptive limit `{}` changed: {from} → {to}",
                            self.name
                        );
                    }
                    return to;
                }
                Err(now) => bits = now,
            }
        }
    }

    /// Stores the whole limit `to` for the errors, then again while the
    /// estimate has moved on meanwhile: racing publishers leave the latest.
    fn publish(&self, mut to: u32) {
        loop {
            self.shown.store(to, Ordering::Release);
            let now = self.current();
            if now == to {
                return;
            }
            to = now;
        }
    }
}

/// Adds `short` (nanoseconds) to Gradient2's long-term latency; returns the
/// average with it (before the recovery decay, as Netflix's does).
fn long_term(gradient: &Gradient2, long_rtt: &AtomicU64, samples: &AtomicU32, short: f64) -> f64 {
    let seen = if samples.load(Ordering::Relaxed) < Gradient2::WARMUP {
        samples.fetch_add(1, Ordering::Relaxed)
    } else {
        Gradient2::WARMUP
    };
    let factor = 2.0 / (f64::from(gradient.long_window) + 1.0);
    let mut bits = long_rtt.load(Ordering::Acquire);
    loop {
        let old = f64::from_bits(bits);
        let average = if seen < Gradient2::WARMUP {
            old + (short - old) / (f64::from(seen) + 1.0)
        } else {
            old * (1.0 - factor) + short * factor
        };
        let stored = if average / short > 2.0 {
            average * LONG_RTT_DECAY
        } else {
            average
        };
        match long_rtt.compare_exchange_weak(
            bits,
            stored.to_bits(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return average,
            Err(now) => bits = now,
        }
    }
}

/// The whole slots of an estimate (never below 1: the bounds start at 1).
#[inline]
fn whole(estimate: f64) -> u32 {
    (estimate as u32).max(1)
}

/// A duration in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
