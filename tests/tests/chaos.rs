//! Chaos (feature `chaos`): faults and latency injected by name pass
//! through every layer as real ones would, on the paused clock. Each test
//! injects under names of its own: the tests share the process-wide
//! registry. The settings tests also share its settings, so they hold
//! `serial()`.

// The settings tests hold `serial()` across their awaits on purpose.
#![allow(clippy::await_holding_lock)]
// figment's `Jail`-free `extract` returns its (large) `figment::Error`.
#![allow(clippy::result_large_err)]

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use figment::providers::{Format, Toml};
use figment::Figment;
use resilience::chaos::{self, Injection};
use resilience::settings::Settings;
use resilience::{bulkhead, circuit_breaker, registry, retry, timeout, CircuitState};
use support::{in_flight, is_open, ms, secs, settle, state, ApiError};
use tokio::time::Instant;

fn upstream_down() -> Injection {
    Injection::new().error(|| ApiError::Upstream)
}

// ------------------------------------------------------------------ breaker

static BREAKER_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "chaos-breaker",
    failure_threshold = 3,
    recovery_timeout = "30s"
)]
async fn breaker_call() -> Result<u32, ApiError> {
    BREAKER_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn the_breaker_counts_injected_errors_and_opens() {
    chaos::inject("chaos-breaker", upstream_down()).unwrap();
    for n in 1..=3 {
        assert_eq!(breaker_call().await, Err(ApiError::Upstream));
        if n < 3 {
            assert_eq!(support::status("chaos-breaker").consecutive_failures, n);
        }
    }
    assert_eq!(state("chaos-breaker"), CircuitState::Open);
    // Rejected by the open circuit: the injection point is not reached.
    assert!(is_open(&breaker_call().await));
    let injected = chaos::status("chaos-breaker").unwrap();
    assert_eq!((injected.calls, injected.errors), (3, 3));
    assert_eq!(BREAKER_RUNS.load(Ordering::SeqCst), 0, "the body never ran");
    // Injection off: the probe runs the body and closes the circuit.
    chaos::remove("chaos-breaker");
    tokio::time::advance(secs(30)).await;
    assert_eq!(breaker_call().await, Ok(1));
    assert_eq!(state("chaos-breaker"), CircuitState::Closed);
    assert_eq!(BREAKER_RUNS.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------------ retry

static RETRY_RUNS: AtomicU32 = AtomicU32::new(0);

/// No name: injected under its default name, `chaos::retried`.
#[retry(max_attempts = 5, backoff = "fixed", delay = "100ms")]
async fn retried() -> Result<u32, ApiError> {
    RETRY_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(2)
}

#[tokio::test(start_paused = true)]
async fn the_retry_retries_injected_errors_and_the_injection_stops_after_its_calls() {
    chaos::inject("chaos::retried", upstream_down().calls(2)).unwrap();
    let start = Instant::now();
    // Attempts 1 and 2 fail by injection; attempt 3 runs the body.
    assert_eq!(retried().await, Ok(2));
    assert_eq!(start.elapsed(), ms(200), "two retry delays");
    assert_eq!(RETRY_RUNS.load(Ordering::SeqCst), 1);
    let injected = chaos::status("chaos::retried").unwrap();
    assert_eq!(
        (injected.errors, injected.calls_left, injected.active),
        (2, Some(0), false)
    );
    // Spent: the next call runs at once.
    assert_eq!(retried().await, Ok(2));
    assert_eq!(RETRY_RUNS.load(Ordering::SeqCst), 2);
}

// ------------------------------------------------------------------ timeout

static TIMEOUT_RUNS: AtomicU32 = AtomicU32::new(0);

#[timeout("1s")]
async fn bounded() -> Result<u32, ApiError> {
    TIMEOUT_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(3)
}

#[tokio::test(start_paused = true)]
async fn the_timeout_cuts_injected_latency() {
    chaos::inject("chaos::bounded", Injection::new().latency(secs(5))).unwrap();
    let start = Instant::now();
    let err = bounded().await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Resilience(e) if e.is_timeout()),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), secs(1));
    assert_eq!(
        TIMEOUT_RUNS.load(Ordering::SeqCst),
        0,
        "cut before the body"
    );
    // Latency below the timeout: the body runs after it.
    chaos::inject("chaos::bounded", Injection::new().latency(ms(400))).unwrap();
    let start = Instant::now();
    assert_eq!(bounded().await, Ok(3));
    assert_eq!(start.elapsed(), ms(400));
    assert_eq!(chaos::status("chaos::bounded").unwrap().latencies, 1);
}

// ------------------------------------------------------------------ bulkhead

#[bulkhead(name = "chaos-bulkhead", max_concurrent = 1, max_wait = "10ms")]
async fn guarded() -> Result<u32, ApiError> {
    Ok(4)
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_slot_stays_taken_during_injected_latency() {
    chaos::inject("chaos-bulkhead", Injection::new().latency(secs(1)).calls(1)).unwrap();
    let slow = tokio::spawn(guarded());
    settle().await;
    assert_eq!(in_flight("chaos-bulkhead"), 1);
    let start = Instant::now();
    let full = guarded().await.unwrap_err();
    assert!(
        matches!(&full, ApiError::Resilience(e) if e.is_bulkhead_full()),
        "{full:?}"
    );
    assert_eq!(start.elapsed(), ms(10), "waited max_wait for the slot");
    assert_eq!(slow.await.unwrap(), Ok(4));
    assert_eq!(in_flight("chaos-bulkhead"), 0);
    assert_eq!(guarded().await, Ok(4));
}

// ------------------------------------------------------------------ fallback

async fn cached(id: u32, error: ApiError) -> Result<String, ApiError> {
    Ok(format!("cached {id} ({error})"))
}

#[circuit_breaker(name = "chaos-fallback", failure_threshold = 10, fallback = cached)]
async fn with_fallback(id: u32) -> Result<String, ApiError> {
    Ok(format!("fresh {id}"))
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_an_injected_error() {
    chaos::inject("chaos-fallback", upstream_down().calls(1)).unwrap();
    assert_eq!(
        with_fallback(7).await.unwrap(),
        "cached 7 (upstream failed)"
    );
    assert_eq!(with_fallback(8).await.unwrap(), "fresh 8");
}

// ------------------------------------------------------------------ Ok values

#[derive(Debug, Clone, PartialEq)]
struct Response {
    status: u16,
}

#[circuit_breaker(
    name = "chaos-ok",
    failure_threshold = 2,
    recovery_timeout = "30s",
    failure_if_ok = |r: &Response| r.status >= 500
)]
async fn http() -> Result<Response, ApiError> {
    Ok(Response { status: 200 })
}

#[tokio::test(start_paused = true)]
async fn an_injected_ok_value_passes_through_failure_if_ok() {
    assert_eq!(http().await.unwrap().status, 200);
    chaos::inject(
        "chaos-ok",
        Injection::new().value(|| Response { status: 503 }),
    )
    .unwrap();
    // The caller gets the 503s; the breaker counts them as failures.
    assert_eq!(http().await.unwrap().status, 503);
    assert_eq!(http().await.unwrap().status, 503);
    assert_eq!(state("chaos-ok"), CircuitState::Open);
    assert_eq!(chaos::status("chaos-ok").unwrap().values, 2);
}

// ------------------------------------------------------------------ panics

#[circuit_breaker(name = "chaos-panic", failure_threshold = 1, recovery_timeout = "30s")]
async fn panicky() -> Result<u32, ApiError> {
    Ok(5)
}

#[tokio::test(start_paused = true)]
async fn an_injected_panic_unwinds_and_the_breaker_records_it() {
    chaos::inject("chaos-panic", Injection::new().panic_rate(1.0).calls(1)).unwrap();
    let joined = tokio::spawn(panicky()).await.unwrap_err();
    assert!(joined.is_panic());
    let message = joined.into_panic();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "chaos: panic injected into `chaos::panicky` (injection `chaos-panic`)"
    );
    // Recorded as a failure, as a real panic is: the circuit opened.
    assert_eq!(state("chaos-panic"), CircuitState::Open);
    assert_eq!(chaos::status("chaos-panic").unwrap().panics, 1);
}

// ------------------------------------------------------------------ rates

#[bulkhead(name = "chaos-rate", max_concurrent = 10)]
async fn coin() -> Result<u32, ApiError> {
    Ok(6)
}

/// Half of 1,000 calls fail: the count is binomial (mean 500, standard
/// deviation 16), so 400..=600 is more than six deviations wide.
#[tokio::test(start_paused = true)]
async fn a_rate_injects_into_that_share_of_calls() {
    chaos::inject("chaos-rate", upstream_down().error_rate(0.5)).unwrap();
    let mut failed = 0;
    for _ in 0..1000 {
        if coin().await.is_err() {
            failed += 1;
        }
    }
    assert!((400..=600).contains(&failed), "{failed} of 1000 failed");
    let injected = chaos::status("chaos-rate").unwrap();
    assert_eq!((injected.calls, injected.errors), (1000, failed));
}

// ------------------------------------------------------------------ switch

#[bulkhead(name = "chaos-switch", max_concurrent = 10)]
async fn switched() -> Result<u32, ApiError> {
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn the_switch_turns_an_injection_on_and_off() {
    chaos::inject("chaos-switch", upstream_down().enabled(false)).unwrap();
    assert_eq!(switched().await, Ok(7));
    assert!(chaos::enable("chaos-switch"));
    assert_eq!(switched().await, Err(ApiError::Upstream));
    assert_eq!(switched().await, Err(ApiError::Upstream));
    assert!(chaos::disable("chaos-switch"));
    assert_eq!(switched().await, Ok(7));
    let injected = chaos::status("chaos-switch").unwrap();
    assert_eq!(
        (injected.calls, injected.errors, injected.enabled),
        (2, 2, false)
    );
}

// ------------------------------------------------------------------ types

#[bulkhead(name = "chaos-mismatch", max_concurrent = 10)]
async fn typed() -> Result<u32, ApiError> {
    Ok(8)
}

#[tokio::test(start_paused = true)]
async fn an_error_of_another_type_is_skipped_not_a_panic() {
    chaos::inject(
        "chaos-mismatch",
        Injection::new().error(|| std::io::Error::other("not an ApiError")),
    )
    .unwrap();
    assert_eq!(typed().await, Ok(8));
    assert_eq!(typed().await, Ok(8));
    let injected = chaos::status("chaos-mismatch").unwrap();
    assert_eq!((injected.errors, injected.skipped), (0, 2));
}

struct Devices {
    names: Vec<String>,
}

impl Devices {
    /// A borrowed `Ok` type: errors and latency are injected, values are not.
    #[circuit_breaker(name = "chaos-borrowed", failure_threshold = 10)]
    async fn first(&self) -> Result<&str, ApiError> {
        Ok(&self.names[0])
    }
}

#[tokio::test(start_paused = true)]
async fn a_borrowed_ok_type_takes_errors_but_no_values() {
    let devices = Devices {
        names: vec!["ap-1".to_owned()],
    };
    chaos::inject("chaos-borrowed", upstream_down().calls(1)).unwrap();
    assert_eq!(devices.first().await, Err(ApiError::Upstream));
    chaos::inject("chaos-borrowed", Injection::new().value(|| "injected")).unwrap();
    assert_eq!(devices.first().await, Ok("ap-1"));
    assert_eq!(chaos::status("chaos-borrowed").unwrap().skipped, 1);
}

// ------------------------------------------------------------------ shapes

static SYNC_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "chaos-sync", failure_threshold = 2)]
fn sync_call() -> Result<u32, ApiError> {
    SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(9)
}

#[test]
fn a_synchronous_function_takes_injected_errors() {
    chaos::inject("chaos-sync", upstream_down().calls(2)).unwrap();
    assert_eq!(sync_call(), Err(ApiError::Upstream));
    assert_eq!(sync_call(), Err(ApiError::Upstream));
    assert_eq!(state("chaos-sync"), CircuitState::Open);
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 0);
}

#[retry(max_attempts = 2, backoff = "fixed", delay = "50ms")]
fn future_returning() -> impl Future<Output = Result<u32, ApiError>> {
    async { Ok(10) }
}

#[tokio::test(start_paused = true)]
async fn a_function_returning_a_future_takes_injected_errors() {
    chaos::inject("chaos::future_returning", upstream_down().calls(1)).unwrap();
    let start = Instant::now();
    assert_eq!(future_returning().await, Ok(10));
    assert_eq!(start.elapsed(), ms(50), "one injected failure, one retry");
}

// ------------------------------------------------------------------ tracing

#[bulkhead(name = "chaos-traced", max_concurrent = 10)]
async fn traced() -> Result<u32, ApiError> {
    Ok(11)
}

/// What a `fmt` subscriber writes, kept.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_injected_fault_is_a_tracing_event_marked_injected() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    chaos::inject("chaos-traced", upstream_down().latency(ms(1)).calls(1)).unwrap();
    chaos::inject(
        "chaos-traced-mismatch",
        Injection::new().error(|| std::io::Error::other("not an ApiError")),
    )
    .unwrap();
    {
        use tracing_subscriber::util::SubscriberInitExt;

        let _default = subscriber.set_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        assert_eq!(rt.block_on(traced()), Err(ApiError::Upstream));
        for _ in 0..3 {
            assert_eq!(rt.block_on(traced_mismatch()), Ok(15));
        }
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for fault in ["latency", "error"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("fault=\"{fault}\"")))
            .unwrap_or_else(|| panic!("no {fault} event in:\n{text}"));
        assert!(line.contains("injected=true"), "{line}");
        assert!(line.contains("name=\"chaos-traced\""), "{line}");
        assert!(line.contains("function=\"chaos::traced\""), "{line}");
    }
    // A constructor of another type: one warning for the function, naming
    // both types, however many calls it skips.
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("chaos-traced-mismatch"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("it makes `std::io::error::Error`, the function's error type is `chaos::support::ApiError`"),
        "{}",
        warnings[0]
    );
}

#[bulkhead(name = "chaos-traced-mismatch", max_concurrent = 10)]
async fn traced_mismatch() -> Result<u32, ApiError> {
    Ok(15)
}

// ------------------------------------------------------------------ settings

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn toml_settings(text: &str) -> Result<Settings, figment::Error> {
    Figment::from(Toml::string(text)).extract()
}

static FILE_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "chaos-file", failure_threshold = 10)]
async fn from_file() -> Result<u32, ApiError> {
    FILE_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(12)
}

const FILE: &str = r#"
[chaos.chaos-file]
error = "upstream"
error_rate = 1.0
latency = "200ms"
latency_rate = 1.0
enabled = true
calls = 2
"#;

#[tokio::test(start_paused = true)]
async fn a_settings_file_turns_a_fault_on_and_off() {
    let _serial = serial();
    chaos::errors().register("upstream", || ApiError::Upstream);
    let settings = toml_settings(FILE).unwrap();
    let applied = registry().apply(&settings).unwrap();
    assert!(
        applied.changed.contains(&"chaos.chaos-file".to_owned()),
        "{applied:?}"
    );
    let start = Instant::now();
    assert_eq!(from_file().await, Err(ApiError::Upstream));
    assert_eq!(start.elapsed(), ms(200));
    // Applied again unchanged: the injection keeps its count (1 call left).
    let applied = registry().apply(&settings).unwrap();
    assert!(applied.changed.is_empty(), "{applied:?}");
    assert_eq!(from_file().await, Err(ApiError::Upstream));
    assert_eq!(from_file().await, Ok(12), "after its 2 calls");
    let injected = chaos::status("chaos-file").unwrap();
    assert!(injected.from_settings);
    assert_eq!((injected.errors, injected.latencies), (2, 2));
    // Settings without it: removed.
    registry().apply(&Settings::new()).unwrap();
    assert!(chaos::status("chaos-file").is_none());
    assert_eq!(FILE_RUNS.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_file_switch_leaves_an_injection_in_place_switched_off() {
    let _serial = serial();
    chaos::errors().register("upstream", || ApiError::Upstream);
    let on = toml_settings("[chaos.\"chaos::switched_by_file\"]\nerror = \"upstream\"\n").unwrap();
    registry().apply(&on).unwrap();
    assert_eq!(switched_by_file().await, Err(ApiError::Upstream));
    let off = toml_settings(
        "[chaos.\"chaos::switched_by_file\"]\nerror = \"upstream\"\nenabled = false\n",
    )
    .unwrap();
    registry().apply(&off).unwrap();
    assert_eq!(switched_by_file().await, Ok(13));
    assert!(!chaos::status("chaos::switched_by_file").unwrap().enabled);
    registry().apply(&Settings::new()).unwrap();
}

#[timeout("5s")]
async fn switched_by_file() -> Result<u32, ApiError> {
    Ok(13)
}

#[test]
fn a_file_with_bad_chaos_keys_is_rejected_with_every_problem() {
    let err = toml_settings(
        r#"
[chaos.chaos-file]
error_rate = 1.5
latency = 200
calls = 0
enabeld = true

[chaos.other]
value_rate = 0.5
"#,
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "chaos.chaos-file.error_rate: `error_rate` must be between 0 and 1, found 1.5",
        "chaos.chaos-file.latency: expected a duration with its unit, such as \"200s\" or \"200ms\", found 200",
        "chaos.chaos-file.enabeld: unknown key `enabeld` for a chaos injection: did you mean `enabled`?",
        "chaos.other.value_rate: `value_rate` needs `value`: the value to inject at this rate",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn applying_checks_names_and_registered_constructors() {
    let _serial = serial();
    chaos::errors().register("upstream", || ApiError::Upstream);
    let settings = toml_settings(
        r#"
[chaos.chaos-fiel]
panic_rate = 0.5

[chaos.chaos-file]
error = "upstraem"
"#,
    )
    .unwrap();
    let err = registry().apply(&settings).unwrap_err().to_string();
    for expected in [
        "chaos.chaos-fiel: no policy or function of this program is named `chaos-fiel`: did you mean `chaos-file`?",
        "chaos.chaos-file.error: no error named `upstraem` is registered: did you mean `upstream`?",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(chaos::status("chaos-file").is_none(), "nothing applied");
}

// ------------------------------------------------------------------ scope

#[bulkhead(name = "chaos-isolated", max_concurrent = 10)]
async fn isolated_call() -> Result<u32, ApiError> {
    Ok(14)
}

/// Under the `testing` feature a test's registry holds its own injections:
/// the process-wide one (and so every other test) never sees them.
#[test]
fn an_injection_made_in_a_test_registry_stays_in_that_test() {
    use resilience::testing::{self, Runtime};

    testing::run(Runtime::current_thread().start_paused(true), async {
        chaos::inject("chaos-isolated", upstream_down()).unwrap();
        assert_eq!(isolated_call().await, Err(ApiError::Upstream));
        assert_eq!(chaos::status("chaos-isolated").unwrap().errors, 1);
    });
    assert!(chaos::status("chaos-isolated").is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    assert_eq!(rt.block_on(isolated_call()), Ok(14));
}
