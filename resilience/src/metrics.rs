//! What the runtime reports through the `metrics` facade (feature `metrics`).
//! Without the feature every function here is an empty inline function.
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `resilience_calls_total` | counter | `breaker`, `outcome` | calls through a breaker; `outcome` is `success`, `failure`, `ignored`, `rejected` or `timeout` |
//! | `resilience_circuit_state` | gauge | `breaker` | 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled |
//! | `resilience_transitions_total` | counter | `breaker`, `from`, `to` | state changes |
//! | `resilience_retries_total` | counter | `name` | retries (attempts after the first) |
//! | `resilience_retries_exhausted_total` | counter | `name` | retried calls that gave up with an error |
//! | `resilience_bulkhead_in_flight` | gauge | `name` | calls holding a bulkhead slot |
//! | `resilience_call_duration_seconds` | histogram | `breaker` | duration of admitted calls |
//! | `resilience_rate_limited_total` | counter | `name` | calls a rate limiter refused |
//! | `resilience_hedges_total` | counter | `name` | hedges started (extra attempts) |
//! | `resilience_hedges_won_total` | counter | `name` | calls a hedge answered first |
//! | `resilience_coalesced_total` | counter | `name` | calls that waited for a call of an equal key in flight |
//! | `resilience_adaptive_limit` | gauge | `name` | an adaptive bulkhead's current limit |
//! | `resilience_chaos_injected_total` | counter | `name`, `fault` | faults injected (feature `chaos`); `fault` is `error`, `value`, `latency` or `panic` |

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::sync::Arc;
use std::time::Duration;

use crate::CircuitState;

/// The number `resilience_circuit_state` reports for a state.
pub const fn state_gauge(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => 0.0,
        CircuitState::Open => 1.0,
        CircuitState::HalfOpen => 2.0,
        CircuitState::ForcedOpen => 3.0,
        CircuitState::Disabled => 4.0,
    }
}

/// Gives every metric above its help text (and its unit, where it has one)
/// through `metrics::describe_counter!`, `describe_gauge!` and
/// `describe_histogram!`.
///
/// Call it once after installing a recorder, so that Prometheus shows a
/// `# HELP` line for each metric (a recorder learns descriptions only from
/// the describe calls made while it is installed); calling it again is
/// harmless. Without the `metrics` feature it does nothing.
///
/// ```
/// // let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
/// resilience::metrics::describe();
/// ```
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::Unit;

        metrics::describe_counter!(
            "resilience_calls_total",
            Unit::Count,
            "Calls through a circuit breaker, by outcome (success, failure, ignored, rejected, timeout)"
        );
        metrics::describe_gauge!(
            "resilience_circuit_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled"
        );
        metrics::describe_counter!(
            "resilience_transitions_total",
            Unit::Count,
            "Circuit breaker state changes, by from and to state"
        );
        metrics::describe_counter!(
            "resilience_retries_total",
            Unit::Count,
            "Retries: attempts after the first"
        );
        metrics::describe_counter!(
            "resilience_retries_exhausted_total",
            Unit::Count,
            "Retried calls that gave up with an error"
        );
        metrics::describe_gauge!(
            "resilience_bulkhead_in_flight",
            Unit::Count,
            "Calls holding a bulkhead slot"
        );
        metrics::describe_counter!(
            "resilience_hedges_total",
            Unit::Count,
            "Hedged requests: extra attempts started"
        );
        metrics::describe_counter!(
            "resilience_hedges_won_total",
            Unit::Count,
            "Hedged requests an extra attempt answered first"
        );
        metrics::describe_counter!(
            "resilience_coalesced_total",
            Unit::Count,
            "Coalesced calls: calls that waited for the result of a call of an equal key in flight"
        );
        metrics::describe_gauge!(
            "resilience_adaptive_limit",
            Unit::Count,
            "The concurrency limit an adaptive bulkhead is at"
        );
        metrics::describe_counter!(
            "resilience_rate_limited_total",
            Unit::Count,
            "Calls a rate limiter refused"
        );
        metrics::describe_histogram!(
            "resilience_call_duration_seconds",
            Unit::Seconds,
            "Duration of the calls a circuit breaker admitted"
        );
        #[cfg(feature = "chaos")]
        metrics::describe_counter!(
            "resilience_chaos_injected_total",
            Unit::Count,
            "Faults injected by name (chaos), by fault (error, value, latency, panic)"
        );
    }
}

#[inline]
pub(crate) fn call(breaker: &Arc<str>, outcome: &'static str, duration: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("resilience_calls_total", "breaker" => breaker.clone(), "outcome" => outcome)
            .increment(1);
        if let Some(d) = duration {
            metrics::histogram!("resilience_call_duration_seconds", "breaker" => breaker.clone())
                .record(d.as_secs_f64());
        }
    }
}

#[inline]
pub(crate) fn state(breaker: &Arc<str>, state: CircuitState) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("resilience_circuit_state", "breaker" => breaker.clone())
        .set(state_gauge(state));
}

#[inline]
pub(crate) fn transition(breaker: &Arc<str>, from: CircuitState, to: CircuitState) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "resilience_transitions_total",
        "breaker" => breaker.clone(),
        "from" => from.as_str(),
        "to" => to.as_str()
    )
    .increment(1);
    state(breaker, to);
}

#[inline]
pub(crate) fn retry(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_retries_total", "name" => name).increment(1);
}

#[inline]
pub(crate) fn retries_exhausted(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_retries_exhausted_total", "name" => name).increment(1);
}

#[inline]
pub(crate) fn bulkhead_in_flight(name: &Arc<str>, in_flight: u32) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("resilience_bulkhead_in_flight", "name" => name.clone())
        .set(f64::from(in_flight));
}

#[inline]
pub(crate) fn adaptive_limit(name: &Arc<str>, limit: u32) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("resilience_adaptive_limit", "name" => name.clone()).set(f64::from(limit));
}

#[inline]
pub(crate) fn rate_limited(name: &Arc<str>) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_rate_limited_total", "name" => name.clone()).increment(1);
}

/// A call joined the call of its key in flight (`#[coalesce]`).
#[inline]
// The `Cow`'s variant decides whether the label is borrowed or copied.
#[allow(clippy::ptr_arg)]
pub(crate) fn coalesced(name: &std::borrow::Cow<'static, str>) {
    #[cfg(feature = "metrics")]
    {
        let label = match name {
            std::borrow::Cow::Borrowed(name) => metrics::SharedString::const_str(name),
            std::borrow::Cow::Owned(name) => name.clone().into(),
        };
        metrics::counter!("resilience_coalesced_total", "name" => label).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = name;
}

#[cfg(feature = "chaos")]
#[inline]
pub(crate) fn chaos_injected(name: &Arc<str>, fault: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("resilience_chaos_injected_total", "name" => name.clone(), "fault" => fault)
        .increment(1);
}

#[cfg(all(test, feature = "metrics"))]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use crate::__private::{breaker_call, converter, every_error_fails, timeout, Flags};
    use crate::{BreakerConfig, Registry, RetryPolicy, RetryState};

    /// What `body` records through the `metrics` facade, run on a paused
    /// current-thread runtime with a debugging recorder installed on this
    /// thread, as [`read`] gives it (for the figures of each policy's tests).
    pub(crate) fn recorded<F: std::future::Future>(
        body: impl FnOnce() -> F,
    ) -> BTreeMap<String, f64> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(body());
        });
        read(&snapshotter)
    }

    /// `name{label=value,…}` -> value, sorted; histograms as sample counts.
    fn read(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<_> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let name = format!("{}{{{}}}", key.name(), labels.join(","));
                let value = match value {
                    DebugValue::Counter(c) => c as f64,
                    DebugValue::Gauge(g) => g.into_inner(),
                    DebugValue::Histogram(h) => h.len() as f64,
                };
                (name, value)
            })
            .collect()
    }

    /// Collects what `describe` says; registers nothing.
    #[derive(Debug, Default)]
    struct Descriptions(std::sync::Mutex<Vec<(String, Option<metrics::Unit>)>>);

    impl Descriptions {
        fn add(&self, key: metrics::KeyName, unit: Option<metrics::Unit>, help: &str) {
            assert!(!help.is_empty(), "{key:?} has an empty help text");
            let mut all = self.0.lock().unwrap();
            all.push((key.as_str().to_owned(), unit));
        }
    }

    impl metrics::Recorder for Descriptions {
        fn describe_counter(
            &self,
            key: metrics::KeyName,
            unit: Option<metrics::Unit>,
            help: metrics::SharedString,
        ) {
            self.add(key, unit, &help);
        }
        fn describe_gauge(
            &self,
            key: metrics::KeyName,
            unit: Option<metrics::Unit>,
            help: metrics::SharedString,
        ) {
            self.add(key, unit, &help);
        }
        fn describe_histogram(
            &self,
            key: metrics::KeyName,
            unit: Option<metrics::Unit>,
            help: metrics::SharedString,
        ) {
            self.add(key, unit, &help);
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }

    #[test]
    fn describe_covers_every_metric_once() {
        use metrics::Unit;

        let recorder = Descriptions::default();
        metrics::with_local_recorder(&recorder, super::describe);
        let mut described = recorder.0.into_inner().unwrap();
        described.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [
            ("resilience_adaptive_limit", Some(Unit::Count)),
            ("resilience_bulkhead_in_flight", Some(Unit::Count)),
            ("resilience_call_duration_seconds", Some(Unit::Seconds)),
            ("resilience_calls_total", Some(Unit::Count)),
            #[cfg(feature = "chaos")]
            ("resilience_chaos_injected_total", Some(Unit::Count)),
            ("resilience_circuit_state", None),
            ("resilience_coalesced_total", Some(Unit::Count)),
            ("resilience_hedges_total", Some(Unit::Count)),
            ("resilience_hedges_won_total", Some(Unit::Count)),
            ("resilience_rate_limited_total", Some(Unit::Count)),
            ("resilience_retries_exhausted_total", Some(Unit::Count)),
            ("resilience_retries_total", Some(Unit::Count)),
            ("resilience_transitions_total", Some(Unit::Count)),
        ];
        let described: Vec<_> = described.iter().map(|(n, u)| (n.as_str(), *u)).collect();
        assert_eq!(described, expected);
    }

    #[test]
    fn scripted_calls_give_exact_figures() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let figures = metrics::with_local_recorder(&recorder, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let reg = Registry::new();
                let config = BreakerConfig::builder()
                    .failure_threshold(2)
                    .build()
                    .unwrap();
                let b = reg.breaker("m", &config);
                let flags = Flags::new();
                let ok = async { Ok::<u8, crate::Error>(1) };
                let _ = breaker_call(&b, &flags, ok, every_error_fails, converter()).await;
                let err = async { Err::<u8, _>(crate::Error::timeout(Duration::ZERO)) };
                let _ = breaker_call(&b, &flags, err, every_error_fails, converter()).await;
                let slow = timeout(
                    Duration::from_secs(1),
                    &flags,
                    std::future::pending::<Result<u8, crate::Error>>(),
                    converter(),
                );
                // The timeout trips the breaker (2 consecutive failures).
                let _ = breaker_call(&b, &flags, slow, every_error_fails, converter()).await;
                let rejected = async { Ok::<u8, crate::Error>(1) };
                let _ = breaker_call(&b, &flags, rejected, every_error_fails, converter()).await;

                let policy = RetryPolicy::new(3, crate::Backoff::fixed(Duration::ZERO)).unwrap();
                let mut state = RetryState::new("r", &policy);
                while state.next_delay().is_some() {}

                let two = std::num::NonZeroU32::new(2).unwrap();
                let busy = reg.bulkhead("busy", two, Duration::ZERO);
                let _held = busy.acquire().await.unwrap();
                let idle = reg.bulkhead("idle", two, Duration::ZERO);
                drop(idle.acquire().await.unwrap());
                // One snapshot: the debugging recorder resets what it reports.
                read(&snapshotter)
            })
        });
        let expected = [
            ("resilience_calls_total{breaker=m,outcome=success}", 1.0),
            ("resilience_calls_total{breaker=m,outcome=failure}", 1.0),
            ("resilience_calls_total{breaker=m,outcome=timeout}", 1.0),
            ("resilience_calls_total{breaker=m,outcome=rejected}", 1.0),
            ("resilience_circuit_state{breaker=m}", 1.0),
            (
                "resilience_transitions_total{breaker=m,from=closed,to=open}",
                1.0,
            ),
            ("resilience_call_duration_seconds{breaker=m}", 3.0),
            ("resilience_retries_total{name=r}", 2.0),
            ("resilience_retries_exhausted_total{name=r}", 1.0),
            ("resilience_bulkhead_in_flight{name=busy}", 1.0),
            ("resilience_bulkhead_in_flight{name=idle}", 0.0),
        ];
        for (name, value) in expected {
            assert_eq!(figures.get(name), Some(&value), "{name} in {figures:#?}");
        }
        assert_eq!(figures.len(), expected.len(), "{figures:#?}");
    }
}
