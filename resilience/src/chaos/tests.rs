//! Unit tests of the injection table and the injection point (the glue the
//! attributes expand to, called directly). Tests share the process-wide
//! registry, so each uses names of its own.

use std::time::Duration;

use super::{inject, status, Injection};
use crate::__private::{chaos_body, chaos_body_sync, ChaosSite, ChaosTypes};
use crate::Registry;

#[derive(Debug, PartialEq)]
enum ApiError {
    Unavailable,
}

type Owned = ChaosTypes<true, true>;

async fn call(site: &'static ChaosSite) -> Result<u32, ApiError> {
    chaos_body(site, Owned {}, async { Ok(7) }).await
}

fn messages(injection: Injection) -> Vec<(String, String)> {
    let err = Registry::new()
        .chaos()
        .inject("checked", injection)
        .unwrap_err();
    err.problems()
        .iter()
        .map(|p| (p.key().to_owned(), p.message().to_owned()))
        .collect()
}

#[test]
fn every_problem_of_an_injection_is_reported_with_its_key() {
    let problems = messages(
        Injection::new()
            .error_rate(1.5)
            .value_rate(0.5)
            .latency(Duration::ZERO)
            .panic_rate(-0.1)
            .calls(0),
    );
    let expected = [
        (
            "error_rate",
            "`error_rate` must be between 0 and 1, found 1.5",
        ),
        (
            "value_rate",
            "`value_rate` needs `value`: the value to inject at this rate",
        ),
        (
            "panic_rate",
            "`panic_rate` must be between 0 and 1, found -0.1",
        ),
        ("latency", "`latency` must be longer than zero"),
        ("calls", "`calls` must be at least 1, found 0"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, m)| ((*k).to_owned(), (*m).to_owned()))
        .collect();
    assert_eq!(problems, expected);
}

#[test]
fn nothing_to_inject_and_too_much_latency_are_problems() {
    assert_eq!(
        messages(Injection::new()),
        [(
            String::new(),
            "nothing to inject: give `error`, `value`, `latency` or `panic_rate`".to_owned()
        )]
    );
    let problems = messages(Injection::new().latency(Duration::from_secs(7200)));
    assert_eq!(problems[0].0, "latency");
    assert_eq!(
        problems[0].1,
        "`latency` must be between 1ns and 3600s, found 7200s"
    );
    assert!(
        messages(Injection::new().error_rate(f64::NAN).error(|| 1))[0]
            .1
            .contains("must be between 0 and 1")
    );
}

#[test]
fn a_named_constructor_must_be_registered() {
    let registry = Registry::new();
    let chaos = registry.chaos();
    let err = chaos
        .inject("db", Injection::new().named_error("unavailable"))
        .unwrap_err();
    assert!(
        err.problems()[0]
            .message()
            .starts_with("no error named `unavailable` is registered (no error is"),
        "{err}"
    );
    chaos
        .errors()
        .register("unavailable", || ApiError::Unavailable);
    let err = chaos
        .inject("db", Injection::new().named_error("unavailabel"))
        .unwrap_err();
    assert_eq!(
        err.problems()[0].message(),
        "no error named `unavailabel` is registered: did you mean `unavailable`?"
    );
    let err = chaos
        .inject("db", Injection::new().named_value("x"))
        .unwrap_err();
    assert_eq!(err.problems()[0].key(), "value");
    chaos
        .inject("db", Injection::new().named_error("unavailable"))
        .unwrap();
    assert!(chaos.is_active());
}

#[tokio::test]
async fn nothing_injected_runs_the_body() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-nothing", "unit::nothing"]);
    assert_eq!(call(&NAMES).await, Ok(7));
}

#[tokio::test]
async fn an_error_is_injected_for_the_next_calls_then_the_body_runs() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-calls", "unit::calls"]);
    inject(
        "unit-calls",
        Injection::new().error(|| ApiError::Unavailable).calls(3),
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(call(&NAMES).await, Err(ApiError::Unavailable));
    }
    assert_eq!(call(&NAMES).await, Ok(7));
    let status = status("unit-calls").unwrap();
    assert_eq!(
        (
            status.calls,
            status.errors,
            status.calls_left,
            status.active
        ),
        (3, 3, Some(0), false)
    );
}

#[tokio::test]
async fn the_default_name_is_matched_too_and_the_first_active_name_wins() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-first", "unit::first"]);
    inject("unit::first", Injection::new().value(|| 1_u32)).unwrap();
    assert_eq!(call(&NAMES).await, Ok(1));
    inject("unit-first", Injection::new().value(|| 2_u32)).unwrap();
    assert_eq!(call(&NAMES).await, Ok(2));
    super::disable("unit-first");
    assert_eq!(call(&NAMES).await, Ok(1));
    super::remove("unit::first");
    assert_eq!(call(&NAMES).await, Ok(7));
}

#[tokio::test]
async fn the_switch_turns_an_injection_off_and_on() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-switch", "unit::switch"]);
    inject(
        "unit-switch",
        Injection::new()
            .error(|| ApiError::Unavailable)
            .enabled(false),
    )
    .unwrap();
    assert_eq!(call(&NAMES).await, Ok(7));
    assert!(super::enable("unit-switch"));
    assert_eq!(call(&NAMES).await, Err(ApiError::Unavailable));
    assert!(super::disable("unit-switch"));
    assert_eq!(call(&NAMES).await, Ok(7));
    let status = status("unit-switch").unwrap();
    assert_eq!((status.calls, status.errors, status.enabled), (1, 1, false));
}

#[tokio::test(start_paused = true)]
async fn latency_waits_on_the_tokio_clock_before_the_body() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-latency", "unit::latency"]);
    inject(
        "unit-latency",
        Injection::new().latency(Duration::from_millis(200)),
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(call(&NAMES).await, Ok(7));
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(status("unit-latency").unwrap().latencies, 1);
}

#[tokio::test(start_paused = true)]
async fn latency_then_an_error() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-slow-error", "unit::slow_error"]);
    inject(
        "unit-slow-error",
        Injection::new()
            .latency(Duration::from_secs(1))
            .error(|| ApiError::Unavailable),
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(call(&NAMES).await, Err(ApiError::Unavailable));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[test]
fn a_mismatched_type_is_skipped_and_counted() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-mismatch", "unit::mismatch"]);
    inject(
        "unit-mismatch",
        Injection::new().error(|| "a &str, not an ApiError"),
    )
    .unwrap();
    let body = || -> Result<u32, ApiError> { Ok(7) };
    for _ in 0..2 {
        assert_eq!(chaos_body_sync(&NAMES, Owned {}, body)(), Ok(7));
    }
    let status = status("unit-mismatch").unwrap();
    assert_eq!((status.errors, status.skipped), (0, 2));
}

#[test]
fn a_type_that_may_borrow_takes_no_value_but_still_latency() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-borrowed", "unit::borrowed"]);
    inject(
        "unit-borrowed",
        Injection::new()
            .value(|| "cached")
            .latency(Duration::from_nanos(1)),
    )
    .unwrap();
    let text = String::from("live");
    let body = || -> Result<&str, ApiError> { Ok(&text) };
    let borrowed = ChaosTypes::<false, true> {};
    assert_eq!(chaos_body_sync(&NAMES, borrowed, body)(), Ok("live"));
    let status = status("unit-borrowed").unwrap();
    assert_eq!((status.values, status.skipped, status.latencies), (0, 1, 1));
}

#[test]
fn a_sync_body_takes_an_injected_value() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-sync", "unit::sync"]);
    inject("unit-sync", Injection::new().value(|| 42_u32)).unwrap();
    let body = || -> Result<u32, ApiError> { Ok(7) };
    assert_eq!(chaos_body_sync(&NAMES, Owned {}, body)(), Ok(42));
}

#[tokio::test]
async fn an_injected_panic_unwinds_out_of_the_poll() {
    use futures::FutureExt;

    static NAMES: ChaosSite = ChaosSite::new(&["unit-panic", "unit::panic"]);
    inject("unit-panic", Injection::new().panic_rate(1.0).calls(1)).unwrap();
    let panicked = std::panic::AssertUnwindSafe(call(&NAMES))
        .catch_unwind()
        .await
        .unwrap_err();
    let message = panicked.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "chaos: panic injected into `unit::panic` (injection `unit-panic`)"
    );
    assert_eq!(call(&NAMES).await, Ok(7));
    assert_eq!(status("unit-panic").unwrap().panics, 1);
}

/// Rates are drawn from the table's seeded generator: the same seed, the
/// same calls hit; half of 1,000 calls, within a bound no seed misses by
/// chance (the draws are fixed).
#[test]
fn a_seeded_table_draws_the_same_faults_every_time() {
    fn run(seed: u64) -> Vec<bool> {
        let registry = Registry::new();
        let chaos = registry.chaos();
        chaos.seed(seed);
        chaos
            .inject("seeded", Injection::new().error(|| 1_u8).error_rate(0.5))
            .unwrap();
        let armed = chaos.injections.get("seeded").unwrap().clone();
        (0..1000).map(|_| armed.draw(chaos).is_some()).collect()
    }
    let first = run(42);
    assert_eq!(first, run(42));
    assert_ne!(first, run(43));
    let hits = first.iter().filter(|h| **h).count();
    assert!((400..=600).contains(&hits), "{hits} of 1000");
}

#[test]
fn counts_of_active_injections_follow_switches_limits_and_removal() {
    let registry = Registry::new();
    let chaos = registry.chaos();
    let active = || chaos.active.load(std::sync::atomic::Ordering::Relaxed);
    chaos
        .inject("a", Injection::new().panic_rate(1.0).calls(1))
        .unwrap();
    chaos.inject("b", Injection::new().panic_rate(0.0)).unwrap();
    assert_eq!(active(), 2);
    // Replacing keeps one.
    chaos.inject("b", Injection::new().panic_rate(0.0)).unwrap();
    assert_eq!(active(), 2);
    chaos.disable("b");
    chaos.disable("b");
    assert_eq!(active(), 1);
    let a = chaos.injections.get("a").unwrap().clone();
    assert!(a.draw(chaos).is_some()); // the last call
    assert_eq!(active(), 0);
    assert!(a.draw(chaos).is_none());
    chaos.enable("a"); // no calls left: stays off
    assert_eq!(active(), 0);
    chaos.enable("b");
    assert_eq!(active(), 1);
    chaos.remove("b");
    assert_eq!(active(), 0);
}

#[cfg(feature = "metrics")]
#[test]
fn injected_faults_are_counted_by_name_and_fault() {
    static NAMES: ChaosSite = ChaosSite::new(&["unit-metrics", "unit::metrics"]);
    inject(
        "unit-metrics",
        Injection::new()
            .latency(Duration::from_millis(5))
            .error(|| ApiError::Unavailable)
            .calls(2),
    )
    .unwrap();
    let figures = crate::metrics::tests::recorded(|| async {
        for _ in 0..3 {
            let _ = call(&NAMES).await;
        }
    });
    assert_eq!(
        figures.into_iter().collect::<Vec<_>>(),
        [
            (
                "resilience_chaos_injected_total{fault=error,name=unit-metrics}".to_owned(),
                2.0
            ),
            (
                "resilience_chaos_injected_total{fault=latency,name=unit-metrics}".to_owned(),
                2.0
            ),
        ]
    );
}

#[cfg(feature = "serde")]
#[test]
fn a_settings_entry_reads_every_key() {
    use crate::settings::Settings;

    let settings: Settings = serde_json::from_str(
        r#"{ "chaos": { "unifi": {
            "error": "unavailable", "error_rate": 0.5,
            "value": "cached", "value_rate": 0.25,
            "latency": "200ms", "latency_rate": 0.1,
            "panic_rate": 0.01, "enabled": false, "calls": 100
        } } }"#,
    )
    .unwrap();
    let expected = Injection::new()
        .named_error("unavailable")
        .error_rate(0.5)
        .named_value("cached")
        .value_rate(0.25)
        .latency(Duration::from_millis(200))
        .latency_rate(0.1)
        .panic_rate(0.01)
        .enabled(false)
        .calls(100);
    assert_eq!(settings.chaos["unifi"], expected);
    assert_eq!(settings.names().collect::<Vec<_>>(), [("chaos", "unifi")]);
}

#[cfg(feature = "serde")]
#[test]
fn a_settings_entry_with_bad_values_reports_each_with_its_path() {
    use crate::settings::Settings;

    let err = serde_json::from_str::<Settings>(
        r#"{ "chaos": {
            "a": { "error": 3, "enabled": "yes", "profile": "p", "panic_rate": 2 },
            "b": { "latency": "2h" },
            "c": "not a table"
        } }"#,
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "chaos.a.error: expected the name of a registered constructor (a string), found a number",
        "chaos.a.enabled: expected `true` or `false`, found \"yes\"",
        "chaos.a.profile: `profile` is not read in `chaos`: write each injection's keys in full",
        "chaos.a.panic_rate: `panic_rate` must be between 0 and 1, found 2",
        "chaos.b.latency: `latency` must be between 1ns and 3600s, found 7200s",
        "chaos.c: expected a table, found a string",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}
