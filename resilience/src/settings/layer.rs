//! One configuration layered over another, key by key: a key given above
//! wins; a key absent above keeps the value below. Choosing a trip rule
//! above (`failure_rate` or `failure_threshold`) drops the other rule's keys
//! below, so that a file switching a breaker to a failure rate does not
//! collide with the attribute's `failure_threshold`.

use resilience_spec::{
    BreakerValues, BudgetValues, BulkheadValues, HedgeDelayValue, HedgeValues, RateLimitValues,
    RetryValues, TimeoutValues, Value,
};

/// `top`'s value if given (or unknown), else `below`'s.
fn pick<T: Copy>(below: Value<T>, top: Value<T>) -> Value<T> {
    if top.is_present() {
        top
    } else {
        below
    }
}

macro_rules! layered {
    ($below:expr, $top:expr, $ty:ident { $($field:ident),* $(,)? }) => {
        $ty { $($field: pick($below.$field, $top.$field)),* }
    };
}

pub(crate) fn breaker(below: &BreakerValues, top: &BreakerValues) -> BreakerValues {
    let mut below = *below;
    if top.failure_rate.is_present() {
        below.failure_threshold = Value::Absent;
    }
    if top.failure_threshold.is_present() {
        below.failure_rate = Value::Absent;
        below.min_calls = Value::Absent;
    }
    layered!(
        below,
        top,
        BreakerValues {
            failure_threshold,
            recovery_timeout,
            success_threshold,
            half_open_max_calls,
            window,
            failure_rate,
            min_calls,
            slow_call,
            slow_call_rate,
            recovery_timeout_max,
            fleet_threshold,
        }
    )
}

pub(crate) fn retry(below: &RetryValues, top: &RetryValues) -> RetryValues {
    layered!(
        below,
        top,
        RetryValues {
            max_attempts,
            backoff,
            delay,
            max_delay,
            multiplier,
            jitter,
            max_elapsed,
        }
    )
}

pub(crate) fn timeout(below: &TimeoutValues, top: &TimeoutValues) -> TimeoutValues {
    layered!(below, top, TimeoutValues { timeout })
}

pub(crate) fn bulkhead(below: &BulkheadValues, top: &BulkheadValues) -> BulkheadValues {
    layered!(
        below,
        top,
        BulkheadValues {
            max_concurrent,
            max_wait
        }
    )
}

pub(crate) fn rate_limit(below: &RateLimitValues, top: &RateLimitValues) -> RateLimitValues {
    layered!(
        below,
        top,
        RateLimitValues {
            rate,
            per,
            burst,
            max_wait,
            fleet
        }
    )
}

/// A fixed `delay` above drops the percentile's keys below
/// (`warmup_delay`, `min_samples`, `period`), as a trip rule does.
pub(crate) fn hedge(below: &HedgeValues, top: &HedgeValues) -> HedgeValues {
    let mut below = *below;
    if let Value::Given(HedgeDelayValue::Fixed(_)) = top.delay {
        below.warmup_delay = Value::Absent;
        below.min_samples = Value::Absent;
        below.period = Value::Absent;
    }
    layered!(
        below,
        top,
        HedgeValues {
            delay,
            warmup_delay,
            max_hedges,
            min_samples,
            period
        }
    )
}

pub(crate) fn budget(below: &BudgetValues, top: &BudgetValues) -> BudgetValues {
    layered!(
        below,
        top,
        BudgetValues {
            ttl,
            min_per_sec,
            retry_ratio
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_above_wins_and_an_absent_one_keeps_the_value_below() {
        let below = RetryValues {
            max_attempts: Value::Given(3),
            delay: Value::Given(core::time::Duration::from_secs(1)),
            ..RetryValues::NONE
        };
        let top = RetryValues {
            max_attempts: Value::Given(5),
            ..RetryValues::NONE
        };
        let v = retry(&below, &top);
        assert_eq!(v.max_attempts, Value::Given(5));
        assert_eq!(v.delay, below.delay);
    }

    #[test]
    fn a_rate_above_drops_the_threshold_below() {
        let below = BreakerValues {
            failure_threshold: Value::Given(3),
            ..BreakerValues::NONE
        };
        let top = BreakerValues {
            failure_rate: Value::Given(0.5),
            window: Value::Given(resilience_spec::WindowValue::Calls(100)),
            ..BreakerValues::NONE
        };
        let v = breaker(&below, &top);
        assert_eq!(v.failure_threshold, Value::Absent);
        assert!(v.check().is_empty());
    }
}
