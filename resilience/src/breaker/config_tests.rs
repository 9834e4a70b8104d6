//! The breaker configuration's builder, rules, defaults and Display.

use std::num::NonZeroU32;
use std::time::Duration;

use super::config::*;
use crate::ConfigError;

#[test]
fn recovery_timeout_max_reads_back_as_set() {
    let growing = BreakerConfig::builder()
        .recovery_timeout(Duration::from_secs(10))
        .recovery_timeout_max(Duration::from_secs(80))
        .build()
        .unwrap();
    assert_eq!(
        growing.recovery_timeout_max(),
        Some(Duration::from_secs(80))
    );
    assert_eq!(BreakerConfig::default().recovery_timeout_max(), None);
}

fn calls(n: u32) -> Window {
    Window::Calls(NonZeroU32::new(n).unwrap())
}

fn words(err: &ConfigError) -> Vec<String> {
    err.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_match_the_documentation() {
    let c = BreakerConfig::default();
    assert_eq!(c.failure_threshold().get(), 5);
    assert_eq!(c.recovery_timeout(), Duration::from_secs(60));
    assert_eq!(c.success_threshold().get(), 1);
    assert_eq!(c.half_open_max_calls().get(), 1);
    assert_eq!(c.min_calls().get(), 10);
    assert_eq!(c.window(), None);
    assert_eq!(c.recovery_timeout_max(), None);
    assert_eq!(c.fleet_threshold(), None);
}

#[test]
fn builder_reports_every_problem() {
    let err = BreakerConfig::builder()
        .failure_threshold(0)
        .recovery_timeout(Duration::ZERO)
        .success_threshold(0)
        .half_open_max_calls(0)
        .build()
        .unwrap_err();
    assert_eq!(
        words(&err),
        [
            "`failure_threshold` must be at least 1, found 0",
            "`recovery_timeout` must be longer than zero",
            "`success_threshold` must be at least 1, found 0",
            "`half_open_max_calls` must be at least 1, found 0",
        ]
    );
    assert!(err
        .to_string()
        .starts_with("invalid resilience configuration: "));
}

#[test]
fn rates_must_be_shares_of_the_calls() {
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        let err = BreakerConfig::builder()
            .failure_rate(bad)
            .window(calls(10))
            .build()
            .unwrap_err();
        assert_eq!(err.problems()[0].key(), "failure_rate", "{bad}");
        let err = BreakerConfig::builder()
            .slow_call(Duration::from_secs(1))
            .slow_call_rate(bad)
            .window(calls(10))
            .build()
            .unwrap_err();
        assert_eq!(err.problems()[0].key(), "slow_call_rate", "{bad}");
    }
    for good in [f64::MIN_POSITIVE, 0.5, 1.0] {
        assert!(BreakerConfig::builder()
            .failure_rate(good)
            .window(calls(10))
            .build()
            .is_ok());
    }
}

#[test]
fn display_writes_the_trip_rule_and_its_window() {
    let consecutive = BreakerConfig::builder()
        .failure_threshold(3)
        .build()
        .unwrap();
    assert!(
        consecutive
            .to_string()
            .starts_with("failure_threshold = 3, recovery_timeout = "),
        "{consecutive}"
    );
    let counted = BreakerConfig::builder()
        .failure_threshold(3)
        .window(calls(20))
        .build()
        .unwrap();
    assert!(
        counted
            .to_string()
            .starts_with("failure_threshold = 3, window = last 20 calls, recovery_timeout = "),
        "{counted}"
    );
    let rate = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::Time(Duration::from_secs(60)))
        .min_calls(10)
        .build()
        .unwrap();
    assert!(
        rate.to_string()
            .starts_with("failure_rate = 0.5, window = last 60s, min_calls = 10, "),
        "{rate}"
    );
}

#[test]
fn a_time_window_must_be_longer_than_zero() {
    let err = BreakerConfig::builder()
        .window(Window::Time(Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(words(&err), ["`window` must be longer than zero"]);
    assert!(BreakerConfig::builder()
        .window(Window::Time(Duration::from_nanos(1)))
        .build()
        .is_ok());
}

#[test]
fn cross_key_combinations_are_checked() {
    let err = BreakerConfig::builder()
        .failure_rate(0.5)
        .build()
        .unwrap_err();
    assert!(
        words(&err)[0].starts_with("`failure_rate` needs a window"),
        "{err}"
    );
    let err = BreakerConfig::builder()
        .slow_call_rate(0.5)
        .window(calls(10))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("needs `slow_call`"), "{err}");
    let err = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(calls(5))
        .min_calls(6)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot exceed the window of 5 calls"),
        "{err}"
    );
    let err = BreakerConfig::builder().min_calls(3).build().unwrap_err();
    assert_eq!(
        words(&err),
        ["`min_calls` only applies to `failure_rate` or `slow_call_rate`"]
    );
    let err = BreakerConfig::builder()
        .failure_rate(0.5)
        .failure_threshold(3)
        .window(calls(10))
        .build()
        .unwrap_err();
    assert!(words(&err)[0].starts_with("`failure_threshold` and `failure_rate` are two trip rules"));
    // The default threshold of 5 failures never fits in 3 calls.
    let err = BreakerConfig::builder()
        .window(calls(3))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("never holds the default `failure_threshold` of 5"),
        "{err}"
    );
    assert!(BreakerConfig::builder()
        .failure_threshold(3)
        .window(calls(3))
        .build()
        .is_ok());
    assert!(
        BreakerConfig::builder()
            .failure_rate(0.5)
            .window(calls(3))
            .min_calls(3)
            .build()
            .is_ok(),
        "a rate does not use the threshold"
    );
    let slow_only = BreakerConfig::builder()
        .slow_call(Duration::from_secs(1))
        .slow_call_rate(0.5)
        .window(calls(3))
        .min_calls(3);
    assert!(
        slow_only.clone().build().is_ok(),
        "slow calls have a rule of their own"
    );
    assert!(slow_only.failure_threshold(4).build().is_err());
    let err = BreakerConfig::builder()
        .recovery_timeout(Duration::from_secs(60))
        .recovery_timeout_max(Duration::from_secs(30))
        .build()
        .unwrap_err();
    assert_eq!(
        words(&err),
        ["`recovery_timeout_max` (30s) must not be below `recovery_timeout` (60s)"]
    );
}

#[test]
fn huge_count_windows_are_refused() {
    let err = BreakerConfig::builder()
        .window(Window::Calls(NonZeroU32::MAX))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    let max = u32::try_from(resilience_spec::MAX_COUNT_WINDOW).unwrap();
    assert!(BreakerConfig::builder()
        .failure_threshold(5)
        .window(calls(max))
        .build()
        .is_ok());
}

#[test]
fn builder_sets_every_field() {
    let c = BreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_millis(1500))
        .success_threshold(3)
        .half_open_max_calls(4)
        .recovery_timeout_max(Duration::from_secs(60))
        .fleet_threshold(7)
        .build()
        .unwrap();
    assert_eq!(c.failure_threshold().get(), 2);
    assert_eq!(c.success_threshold().get(), 3);
    assert_eq!(c.half_open_max_calls().get(), 4);
    assert_eq!(c.recovery_timeout_max(), Some(Duration::from_secs(60)));
    assert_eq!(c.fleet_threshold().map(NonZeroU32::get), Some(7));
    assert_eq!(
        c.to_string(),
        "failure_threshold = 2, recovery_timeout = 1.5s, recovery_timeout_max = 60s, fleet_threshold = 7, success_threshold = 3, half_open_max_calls = 4"
    );
    let c = BreakerConfig::builder()
        .failure_rate(0.25)
        .window(Window::Time(Duration::from_secs(30)))
        .min_calls(20)
        .slow_call(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(c.failure_rate(), Some(0.25));
    assert_eq!(c.window(), Some(Window::Time(Duration::from_secs(30))));
    assert_eq!(c.min_calls().get(), 20);
    assert_eq!(c.slow_call(), Some(Duration::from_secs(2)));
}

#[test]
fn open_time_doubles_up_to_the_max() {
    let c = BreakerConfig::builder()
        .recovery_timeout(Duration::from_secs(10))
        .recovery_timeout_max(Duration::from_secs(60))
        .build()
        .unwrap();
    let times: Vec<_> = (0..5).map(|n| c.open_time(n).as_secs()).collect();
    assert_eq!(times, [10, 20, 40, 60, 60]);
    assert_eq!(c.open_time(u32::MAX), Duration::from_secs(60));
    assert_eq!(BreakerConfig::DEFAULT.open_time(7), Duration::from_secs(60));
}
