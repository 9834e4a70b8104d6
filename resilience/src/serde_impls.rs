//! `Serialize` for the status types (feature `serde`).
//!
//! Durations are seconds as floats, in fields whose names end in `_seconds`;
//! states are their lower snake case names (`"half_open"`); a window is
//! `{"calls": 100}` or `{"seconds": 60.0}`.

use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{CircuitState, Window};

pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Serialize for CircuitState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Window::Calls(n) => map.serialize_entry("calls", &n.get())?,
            Window::Time(d) => map.serialize_entry("seconds", &d.as_secs_f64())?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use crate::{BreakerConfig, Outcome, Registry, RetryBudget};

    #[tokio::test(start_paused = true)]
    async fn the_snapshot_serializes_with_its_documented_field_names() {
        let reg = Registry::new();
        let config = BreakerConfig::builder()
            .failure_threshold(1)
            .recovery_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let b = reg.breaker("payments", &config);
        b.try_acquire().unwrap().record(Outcome::Failure);
        reg.bulkhead(
            "db",
            NonZeroU32::new(4).unwrap(),
            std::time::Duration::from_millis(100),
        );
        reg.configure_retry_budget(
            RetryBudget::new("api", std::time::Duration::from_secs(10), 1, 0.5).unwrap(),
        )
        .unwrap();
        reg.hedge("search", &crate::HedgeConfig::DEFAULT);
        let json = serde_json::to_value(reg.snapshot()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "breakers": [{
                    "name": "payments",
                    "state": "open",
                    "consecutive_failures": 1,
                    "window_calls": 0,
                    "window_failures": 0,
                    "window_slow_calls": 0,
                    "probes_in_flight": 0,
                    "probe_successes": 0,
                    "failure_threshold": 1,
                    "failure_rate": null,
                    "window": null,
                    "success_threshold": 1,
                    "half_open_max_calls": 1,
                    "recovery_timeout_seconds": 30.0,
                    "current_open_time_seconds": 30.0,
                    "retry_after_seconds": 30.0
                }],
                "bulkheads": [{
                    "name": "db",
                    "in_flight": 0,
                    "max_concurrent": 4,
                    "max_wait_seconds": 0.1
                }],
                "adaptive_bulkheads": [],
                "coalescers": [],
                "rate_limiters": [],
                "hedges": [{
                    "name": "search",
                    "calls": 0,
                    "hedges": 0,
                    "hedges_won": 0,
                    "delay_seconds": 2.0,
                    "samples": 0,
                    "max_hedges": 1
                }],
                "call_sites": [],
                "retry_budgets": [{
                    "name": "api",
                    "calls": 0,
                    "retries": 0,
                    "available": 10,
                    "ttl_seconds": 10.0,
                    "min_per_sec": 1,
                    "retry_ratio": 0.5
                }]
            })
        );
    }

    #[test]
    fn windows_serialize_as_calls_or_seconds() {
        let calls = crate::Window::Calls(NonZeroU32::new(100).unwrap());
        let time = crate::Window::Time(std::time::Duration::from_millis(1500));
        assert_eq!(serde_json::to_string(&calls).unwrap(), r#"{"calls":100}"#);
        assert_eq!(serde_json::to_string(&time).unwrap(), r#"{"seconds":1.5}"#);
    }
}
