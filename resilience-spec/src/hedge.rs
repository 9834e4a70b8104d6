//! The keys and rules of hedging (`#[hedge(delay = "50ms", max_hedges = 1)]`).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use crate::{count, positive, Problem, Problems, Value};

/// How long an attempt may run before the next one starts, as written:
/// `delay = "50ms"` or `delay = "p95"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelayValue {
    /// Always this long.
    Fixed(Duration),
    /// This quantile of the recent successful calls' latency, as a share
    /// in (0, 1] (`"p95"` is `0.95`).
    Percentile(f64),
}

/// What a hedge's configuration says, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HedgeValues {
    /// The delay before each extra attempt.
    pub delay: Value<HedgeDelayValue>,
    /// A percentile delay's delay until `min_samples` calls were seen.
    pub warmup_delay: Value<Duration>,
    /// Extra attempts at most.
    pub max_hedges: Value<u64>,
    /// Successful calls seen before a percentile replaces `warmup_delay`.
    pub min_samples: Value<u64>,
    /// How often the latency histogram rotates.
    pub period: Value<Duration>,
}

impl HedgeValues {
    /// No key written: every default.
    pub const NONE: HedgeValues = HedgeValues {
        delay: Value::Absent,
        warmup_delay: Value::Absent,
        max_hedges: Value::Absent,
        min_samples: Value::Absent,
        period: Value::Absent,
    };
    /// Default `delay`: the 95th percentile of recent successful calls.
    pub const DEFAULT_DELAY: HedgeDelayValue = HedgeDelayValue::Percentile(0.95);
    /// Default `warmup_delay`: 2 s (Polly's default hedging delay).
    pub const DEFAULT_WARMUP_DELAY: Duration = Duration::from_secs(2);
    /// Default `max_hedges`: 1.
    pub const DEFAULT_MAX_HEDGES: u64 = 1;
    /// The most extra attempts a call may start (each lives inline in the
    /// call's future).
    pub const MAX_HEDGES: u64 = 4;
    /// Default `min_samples`: 20.
    pub const DEFAULT_MIN_SAMPLES: u64 = 20;
    /// Default `period`: 10 s.
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

    /// Every problem of this configuration.
    pub const fn check(&self) -> Problems {
        let mut p = Problems::new();
        if let Some(HedgeDelayValue::Percentile(share)) = self.delay.given() {
            // Written so that NaN fails too.
            if !(share > 0.0 && share <= 1.0) {
                p.push(Problem::RateOutOfRange {
                    key: "delay",
                    found: share,
                });
            }
        }
        count(&mut p, "max_hedges", self.max_hedges);
        if let Some(n) = self.max_hedges.given() {
            if n > Self::MAX_HEDGES && n <= crate::MAX_COUNT {
                p.push(Problem::TooLarge {
                    key: "max_hedges",
                    found: n,
                    max: Self::MAX_HEDGES,
                });
            }
        }
        count(&mut p, "min_samples", self.min_samples);
        positive(&mut p, "period", self.period);
        if let Some(HedgeDelayValue::Fixed(_)) = self.delay.given() {
            if self.warmup_delay.is_present() {
                p.push(Problem::PercentileOnly {
                    key: "warmup_delay",
                });
            }
            if self.min_samples.is_present() {
                p.push(Problem::PercentileOnly { key: "min_samples" });
            }
            if self.period.is_present() {
                p.push(Problem::PercentileOnly { key: "period" });
            }
        }
        p
    }
}

/// Reads a hedge's `delay`: a duration (`"50ms"`, `"1.5s"`) or a percentile
/// (`"p95"`, `"p99.9"`), the grammar of the attribute and of configuration
/// files alike.
///
/// ```
/// use std::time::Duration;
/// use resilience_spec::hedge::{parse_delay, HedgeDelayValue};
///
/// assert_eq!(parse_delay("50ms"), Ok(HedgeDelayValue::Fixed(Duration::from_millis(50))));
/// assert_eq!(parse_delay("p95"), Ok(HedgeDelayValue::Percentile(0.95)));
/// assert_eq!(
///     parse_delay("p150").unwrap_err(),
///     "a percentile `delay` must be above `p0` and at most `p100`, found `\"p150\"`"
/// );
/// ```
///
/// # Errors
///
/// What is wrong with `text` and how to write it.
pub fn parse_delay(text: &str) -> Result<HedgeDelayValue, String> {
    let t = text.trim();
    if let Some(number) = t.strip_prefix(['p', 'P']) {
        return match number.parse::<f64>() {
            // `p99.9` is 0.999, not 0.9990000000000001.
            Ok(n) if n > 0.0 && n <= 100.0 => {
                Ok(HedgeDelayValue::Percentile((n * 1e6).round() / 1e8))
            }
            Ok(_) => Err(format!(
                "a percentile `delay` must be above `p0` and at most `p100`, found `\"{t}\"`"
            )),
            Err(_) => Err(format!(
                "`\"{t}\"` is not a percentile: write `\"p95\"` or `\"p99.9\"`"
            )),
        };
    }
    crate::duration::parse(t)
        .map(HedgeDelayValue::Fixed)
        .map_err(|why| format!("{why}; or a percentile of recent calls (`\"p95\"`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_durations_are_read() {
        assert_eq!(
            parse_delay(" p99.9 "),
            Ok(HedgeDelayValue::Percentile(0.999))
        );
        assert_eq!(parse_delay("p100"), Ok(HedgeDelayValue::Percentile(1.0)));
        assert!(parse_delay("p0").is_err());
        assert!(parse_delay("pxx").unwrap_err().contains("`\"p95\"`"));
        assert_eq!(
            parse_delay("0s"),
            Ok(HedgeDelayValue::Fixed(Duration::ZERO))
        );
        assert!(parse_delay("50 parsecs")
            .unwrap_err()
            .contains("percentile"));
    }

    #[test]
    fn percentile_keys_with_a_fixed_delay_are_problems() {
        let values = HedgeValues {
            delay: Value::Given(HedgeDelayValue::Fixed(Duration::from_millis(5))),
            warmup_delay: Value::Given(Duration::from_secs(1)),
            min_samples: Value::Unknown,
            period: Value::Given(Duration::ZERO),
            max_hedges: Value::Given(5),
        };
        let keys: alloc::vec::Vec<_> = values.check().iter().map(|p| p.key()).collect();
        assert_eq!(
            keys,
            [
                "max_hedges",
                "period",
                "warmup_delay",
                "min_samples",
                "period"
            ]
        );
        assert!(HedgeValues::NONE.check().is_empty());
    }
}
