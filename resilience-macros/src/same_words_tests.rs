//! One rule, one set of words, whichever door a configuration comes
//! through: each bad configuration below is written once as attribute
//! arguments and once with the runtime builder, and both must report the
//! same problems, in the same order, in the same words.

use std::time::Duration;

use resilience::{
    Backoff, BackoffKind, BreakerConfig, BreakerConfigBuilder, ConfigError, RetryPolicy,
    RetryPolicyBuilder, Window,
};

use crate::args::{Args, Errors};
use crate::layers::{breaker, retry};

/// The messages `parse` reports for `tokens`.
fn attribute(tokens: &str, keys: &[&str], parse: fn(&Args, &mut Errors)) -> Vec<String> {
    let mut errors = Errors::default();
    let args = Args::parse(tokens.parse().unwrap(), keys, "test", |_| None, &mut errors);
    parse(&args, &mut errors);
    errors.messages()
}

fn builder(result: Result<impl Sized, ConfigError>) -> Vec<String> {
    match result {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

fn breaker_attribute(tokens: &str) -> Vec<String> {
    attribute(tokens, breaker::KEYS, |args, errors| {
        breaker::parse(args, errors);
    })
}

fn retry_attribute(tokens: &str) -> Vec<String> {
    attribute(tokens, retry::KEYS, |args, errors| {
        retry::parse(args, errors);
    })
}

fn calls(n: u32) -> Window {
    Window::Calls(std::num::NonZeroU32::new(n).unwrap())
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn breakers_get_the_same_words_from_the_attribute_and_the_builder() {
    type Build = fn(BreakerConfigBuilder) -> BreakerConfigBuilder;
    let cases: &[(&str, Build)] = &[
        ("failure_threshold = 0, recovery_timeout = 0", |b| {
            b.failure_threshold(0).recovery_timeout(Duration::ZERO)
        }),
        ("success_threshold = 0, half_open_max_calls = 0", |b| {
            b.success_threshold(0).half_open_max_calls(0)
        }),
        ("failure_rate = 0.5", |b| b.failure_rate(0.5)),
        ("failure_rate = 1.5, window = 10", |b| {
            b.failure_rate(1.5).window(calls(10))
        }),
        (
            "failure_rate = 0.5, failure_threshold = 3, window = 10",
            |b| b.failure_rate(0.5).failure_threshold(3).window(calls(10)),
        ),
        ("min_calls = 5", |b| b.min_calls(5)),
        ("window = 3", |b| b.window(calls(3))),
        ("failure_threshold = 10, window = 5", |b| {
            b.failure_threshold(10).window(calls(5))
        }),
        ("failure_rate = 0.5, window = 5", |b| {
            b.failure_rate(0.5).window(calls(5))
        }),
        ("failure_rate = 0.5, window = 5, min_calls = 6", |b| {
            b.failure_rate(0.5).window(calls(5)).min_calls(6)
        }),
        ("window = 2000000, failure_threshold = 5", |b| {
            b.window(calls(2_000_000)).failure_threshold(5)
        }),
        (r#"slow_call_rate = 0.5, window = "60s""#, |b| {
            b.slow_call_rate(0.5).window(Window::Time(secs(60)))
        }),
        ("recovery_timeout = 60, recovery_timeout_max = 30", |b| {
            b.recovery_timeout(secs(60)).recovery_timeout_max(secs(30))
        }),
        (r#"recovery_timeout_max = "30s""#, |b| {
            b.recovery_timeout_max(secs(30))
        }),
        ("fleet_threshold = 0", |b| b.fleet_threshold(0)),
    ];
    for (tokens, build) in cases {
        let through_attribute = breaker_attribute(tokens);
        let through_builder = builder(build(BreakerConfig::builder()).build());
        assert!(!through_builder.is_empty(), "`{tokens}` must be refused");
        assert_eq!(through_attribute, through_builder, "`{tokens}`");
    }
}

#[test]
fn retries_get_the_same_words_from_the_attribute_and_the_builder() {
    type Build = fn(RetryPolicyBuilder) -> RetryPolicyBuilder;
    let cases: &[(&str, Build)] = &[
        (r#"max_attempts = 0, delay = "2s", max_delay = "1s""#, |b| {
            b.max_attempts(0).delay(secs(2)).max_delay(secs(1))
        }),
        ("multiplier = 0.5", |b| b.multiplier(0.5)),
        (r#"backoff = "fixed", multiplier = 3.0"#, |b| {
            b.backoff(BackoffKind::Fixed).multiplier(3.0)
        }),
        (r#"delay = "2s", max_elapsed = "1s""#, |b| {
            b.delay(secs(2)).max_elapsed(secs(1))
        }),
        (r#"max_elapsed = "1s""#, |b| b.max_elapsed(secs(1))),
    ];
    for (tokens, build) in cases {
        let through_attribute = retry_attribute(tokens);
        let through_builder = builder(build(RetryPolicy::builder()).build());
        assert!(!through_builder.is_empty(), "`{tokens}` must be refused");
        assert_eq!(through_attribute, through_builder, "`{tokens}`");
    }
    // A schedule built by hand is held to the same rules.
    let schedule = Backoff::fixed(secs(1)).with_multiplier(3.0);
    assert_eq!(
        builder(RetryPolicy::new(3, schedule)),
        retry_attribute(r#"backoff = "fixed", delay = 1, multiplier = 3.0"#)
    );
}
