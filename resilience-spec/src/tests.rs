use alloc::string::ToString;
use alloc::vec::Vec;
use core::time::Duration;

use crate::*;

fn words(p: &Problems) -> Vec<alloc::string::String> {
    p.iter().map(ToString::to_string).collect()
}

#[test]
fn the_defaults_are_valid() {
    assert!(BreakerValues::NONE.check().is_empty());
    assert!(RetryValues::NONE.check().is_empty());
    assert!(BulkheadValues::NONE.check().is_empty());
    assert!(BudgetValues::NONE.check().is_empty());
}

#[test]
fn every_problem_names_its_key() {
    let v = BreakerValues {
        failure_threshold: Value::Given(0),
        recovery_timeout: Value::Given(Duration::ZERO),
        failure_rate: Value::Given(1.5),
        ..BreakerValues::NONE
    };
    let p = v.check();
    let keys: Vec<_> = p.iter().map(Problem::key).collect();
    assert_eq!(
        keys,
        [
            "failure_threshold",
            "recovery_timeout",
            "failure_rate",
            "failure_rate",
            "failure_threshold"
        ]
    );
    assert_eq!(
        words(&p),
        [
            "`failure_threshold` must be at least 1, found 0",
            "`recovery_timeout` must be longer than zero",
            "`failure_rate` must be a share of the calls in (0, 1] (0.5 = half of them), found 1.5",
            "`failure_rate` needs a window to measure a rate in: add `window = 100` (the last 100 calls) or `window = \"60s\"` (the last minute)",
            "`failure_threshold` and `failure_rate` are two trip rules; keep one (`failure_rate` trips on the share of failed calls, `failure_threshold` on their number)",
        ]
    );
}

#[test]
fn unknown_values_wait_for_const_evaluation() {
    // `failure_threshold = THRESHOLD` with `window = 3`: the macro cannot
    // compare them; the compiler will, with the value.
    let seen_by_macro = BreakerValues {
        failure_threshold: Value::Unknown,
        window: Value::Given(WindowValue::Calls(3)),
        ..BreakerValues::NONE
    };
    assert!(seen_by_macro.check().is_empty());
    let seen_by_compiler = BreakerValues {
        failure_threshold: Value::Given(4),
        ..seen_by_macro
    };
    assert_eq!(
        words(&seen_by_compiler.check()),
        ["`failure_threshold` (4) cannot exceed the window of 3 calls: that many failures never fit in it"]
    );
    // Presence rules need no value.
    let rate_without_window = BreakerValues {
        failure_rate: Value::Unknown,
        ..BreakerValues::NONE
    };
    assert_eq!(rate_without_window.check().len(), 1);
}

const _: () = BreakerValues {
    failure_threshold: Value::Given(3),
    window: Value::Given(WindowValue::Calls(3)),
    ..BreakerValues::NONE
}
.check()
.assert_none();

#[test]
fn retry_rules() {
    let v = RetryValues {
        max_attempts: Value::Given(0),
        backoff: Value::Given(BackoffKind::Fixed),
        delay: Value::Given(Duration::from_secs(2)),
        max_delay: Value::Given(Duration::from_secs(1)),
        multiplier: Value::Given(0.5),
        max_elapsed: Value::Given(Duration::from_secs(2)),
        ..RetryValues::NONE
    };
    assert_eq!(
        words(&v.check()),
        [
            "`max_attempts` must be at least 1, found 0",
            "`max_delay` (1s) must not be below `delay` (2s)",
            "`multiplier` must be at least 1.0 (a delay never shrinks), found 0.5",
            "`multiplier` only applies to `backoff = \"exponential\"`, not \"fixed\"",
            "`max_elapsed` (2s) must be longer than `delay` (2s), or no retry could ever run",
        ]
    );
    let nan = RetryValues {
        multiplier: Value::Given(f64::NAN),
        ..RetryValues::NONE
    };
    assert_eq!(nan.check().len(), 1);
}

#[test]
fn words_write_numbers_and_durations() {
    let mut w = problem::Words::new();
    w.f64(0.05)
        .str(" ")
        .f64(1.25)
        .str(" ")
        .f64(-3.0)
        .str(" ")
        .f64(f64::NAN);
    w.str(" ")
        .duration(Duration::from_millis(1500))
        .str(" ")
        .duration(Duration::from_secs(90));
    w.str(" ").u64(0).str(" ").u64(u64::MAX);
    assert_eq!(
        w.as_str(),
        "0.05 1.25 -3 NaN 1500ms 90s 0 18446744073709551615"
    );
}

#[test]
fn durations_use_one_grammar() {
    use duration::parse;
    assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse("1 minute"), Ok(Duration::from_secs(60)));
    assert_eq!(parse("500 ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse(" 10 us "), Ok(Duration::from_micros(10)));
    let err = |s: &str| parse(s).unwrap_err().to_string();
    assert!(
        err("30").contains("has no unit; write `\"30s\"`"),
        "{}",
        err("30")
    );
    assert!(err("-1s").contains("negative"));
    assert_eq!(
        err("3mss"),
        "unknown unit `mss` in `\"3mss\"`: did you mean `ms`?"
    );
    assert!(err("5 parsecs").contains("unknown unit `parsecs`"));
    assert!(err("").contains("empty"));
    assert!(err("1.2.3s").contains("not a duration"));
    assert!(err("99999999999999999999h").contains("too large"));
}

#[test]
fn choices_parse_with_did_you_mean() {
    assert_eq!("linear".parse(), Ok(BackoffKind::Linear));
    assert_eq!("full".parse(), Ok(Jitter::Full));
    let e = "exponentail".parse::<BackoffKind>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown backoff \"exponentail\": did you mean \"exponential\"?"
    );
    let e = "zzz".parse::<Jitter>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown jitter \"zzz\"; expected one of: \"none\", \"full\", \"equal\", \"decorrelated\""
    );
}

#[test]
fn a_time_window_of_zero_is_refused_and_any_other_accepted() {
    let window = |w| BreakerValues {
        window: Value::Given(w),
        ..BreakerValues::NONE
    };
    assert_eq!(
        words(&window(WindowValue::Time(Duration::ZERO)).check()),
        ["`window` must be longer than zero"]
    );
    assert!(window(WindowValue::Time(Duration::from_nanos(1)))
        .check()
        .is_empty());
    assert_eq!(
        words(&window(WindowValue::Calls(0)).check()),
        ["`window` must be at least 1, found 0"]
    );
}

#[test]
fn the_sample_window_bounds_are_inclusive() {
    let (min, max) = (
        AdaptiveValues::MIN_SAMPLE_WINDOW,
        AdaptiveValues::MAX_SAMPLE_WINDOW,
    );
    let check = |w| {
        let mut p = Problems::new();
        check_gradient2(&mut p, Value::Absent, Value::Given(w));
        p
    };
    for fine in [Duration::ZERO, min, max] {
        assert!(check(fine).is_empty(), "{fine:?}");
    }
    for out in [min - Duration::from_nanos(1), max + Duration::from_nanos(1)] {
        let p = check(out);
        assert_eq!(p.len(), 1, "{out:?}");
        assert_eq!(p.first().map(|p| p.key()), Some("sample_window"));
    }
}

#[test]
fn a_full_list_of_problems_extends_another_to_its_capacity() {
    let mut full = Problems::new();
    for _ in 0..Problems::CAPACITY + 2 {
        full.push(Problem::Zero { key: "window" });
    }
    assert_eq!(
        full.len(),
        Problems::CAPACITY,
        "pushes past the capacity are dropped"
    );
    let mut p = Problems::new();
    p.extend(&full);
    assert_eq!(p.len(), Problems::CAPACITY);
    assert_eq!(p.iter().count(), Problems::CAPACITY);
    p.extend(&full);
    assert_eq!(p.len(), Problems::CAPACITY);
}

#[test]
fn a_multiplier_of_one_is_accepted_and_below_one_refused() {
    let multiplier = |m| RetryValues {
        multiplier: Value::Given(m),
        ..RetryValues::NONE
    };
    assert!(multiplier(1.0).check().is_empty());
    for bad in [1.0 - f64::EPSILON, 0.0, -2.0, f64::NAN, f64::INFINITY] {
        let p = multiplier(bad).check();
        assert_eq!(p.first().map(|p| p.key()), Some("multiplier"), "{bad}");
    }
}
