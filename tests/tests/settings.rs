//! Configuration by name: a TOML file plus environment overrides, read by
//! the loaders users already have (figment, config-rs), checked against the
//! program's declared names and the attributes' rules, applied live.

// Each test holds `serial()` across its awaits on purpose: the tests share the
// process-wide registry, and each runs on its own runtime.
#![allow(clippy::await_holding_lock)]
// figment's `Jail` closures return its (large) `figment::Error`.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicU32, Ordering};

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Jail};
use resilience::settings::Settings;
use resilience::{registry, CircuitState};

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("upstream down")]
    Down,
    #[error(transparent)]
    Layer(#[from] resilience::Error),
}

#[resilience::circuit_breaker(name = "settings-payments", failure_threshold = 5)]
async fn pay(fail: bool) -> Result<u32, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(1)
    }
}

#[resilience::circuit_breaker(name = "settings-never-called")]
#[allow(dead_code)]
async fn never_called() -> Result<u32, ApiError> {
    Ok(1)
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[resilience::retry(max_attempts = 2, delay = "10ms")]
async fn sync_ledger() -> Result<u32, ApiError> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Down)
}

#[resilience::bulkhead(name = "settings-db", max_concurrent = 2)]
async fn query() -> Result<u32, ApiError> {
    Ok(1)
}

#[resilience::resilient(
    name = "settings-search",
    failure_threshold = 3,
    max_attempts = 3,
    delay = "1ms",
    timeout = "5s"
)]
async fn search() -> Result<u32, ApiError> {
    Ok(1)
}

#[resilience::timeout("5s")]
async fn slow() -> Result<u32, ApiError> {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    Ok(1)
}

static HEDGE_RUNS: AtomicU32 = AtomicU32::new(0);

#[resilience::hedge(name = "settings-replicas", delay = "p95", min_samples = 50)]
async fn replicated() -> Result<u32, ApiError> {
    HEDGE_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(1)
}

const FILE: &str = r#"
[profiles.critical]
failure_threshold = 2
recovery_timeout = "30s"

[breakers.settings-search]
profile = "critical"

[retries."settings::sync_ledger"]
max_attempts = 3

[bulkheads.settings-db]
max_concurrent = 4
max_wait = "50ms"

[timeouts.settings-search]
timeout = "2s"
"#;

#[tokio::test(start_paused = true)]
async fn a_toml_file_and_the_environment_configure_breakers_retries_and_bulkheads() {
    let _serial = serial();
    Jail::expect_with(|jail| {
        // The environment wins over the file (figment's `merge`).
        jail.set_env("RESILIENCE__BULKHEADS__SETTINGS-DB__MAX_CONCURRENT", "8");
        let settings: Settings = Figment::from(Toml::string(FILE))
            .merge(Env::prefixed("RESILIENCE__").split("__"))
            .extract()?;
        registry().apply(&settings).map_err(|e| e.to_string())?;
        Ok(())
    });
    // Created after the apply: with the settings.
    query().await.unwrap();
    let db = registry().snapshot();
    let db = db
        .bulkheads
        .iter()
        .find(|b| &*b.name == "settings-db")
        .unwrap();
    assert_eq!(db.max_concurrent, 8, "the environment wins over the file");
    assert_eq!(
        db.max_wait,
        std::time::Duration::from_millis(50),
        "the file's max_wait"
    );

    search().await.unwrap();
    let breaker = registry().get("settings-search").unwrap();
    assert_eq!(
        breaker.config().failure_threshold().get(),
        2,
        "the profile's"
    );
    assert_eq!(breaker.config().recovery_timeout().as_secs(), 30);

    ATTEMPTS.store(0, Ordering::SeqCst);
    assert!(sync_ledger().await.is_err());
    assert_eq!(
        ATTEMPTS.load(Ordering::SeqCst),
        3,
        "the file's max_attempts over the attribute's 2"
    );
}

#[resilience::circuit_breaker(name = "settings-reverts", failure_threshold = 5)]
async fn reverts() -> Result<u32, ApiError> {
    Ok(1)
}

/// Regression (a mutant that went unseen): a breaker created while a file
/// configures it still knows what its call site declared, so removing the
/// entry brings the attribute's values back.
#[tokio::test(start_paused = true)]
async fn a_breaker_created_under_a_file_goes_back_to_its_attribute_without_it() {
    let _serial = serial();
    let file = toml_settings("[breakers.settings-reverts]\nfailure_threshold = 2\n");
    registry().apply(&file).unwrap();
    reverts().await.unwrap();
    let breaker = registry().get("settings-reverts").unwrap();
    assert_eq!(breaker.config().failure_threshold().get(), 2, "the file's");
    registry().apply(&Settings::new()).unwrap();
    assert_eq!(
        breaker.config().failure_threshold().get(),
        5,
        "the attribute's, once the file no longer sets it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_breaker_and_retry_change_on_the_next_call() {
    let _serial = serial();
    // Running, with its attribute's threshold of 5.
    for _ in 0..3 {
        let _ = pay(true).await;
    }
    assert_eq!(
        registry().get("settings-payments").unwrap().state(),
        CircuitState::Closed
    );
    let settings: Settings = toml_settings("[breakers.settings-payments]\nfailure_threshold = 4\n");
    let applied = registry().apply(&settings).unwrap();
    assert!(
        applied
            .changed
            .contains(&"breakers.settings-payments".to_owned()),
        "{applied:?}"
    );
    // It kept its 3 failures: the 4th opens it.
    let _ = pay(true).await;
    let breaker = registry().get("settings-payments").unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
    let status = registry().snapshot();
    assert_eq!(
        status
            .breaker("settings-payments")
            .unwrap()
            .failure_threshold,
        4
    );
    breaker.reset();

    // Going back: an apply without the name restores the attribute's 5.
    registry().apply(&Settings::new()).unwrap();
    assert_eq!(breaker.config().failure_threshold().get(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_retry_changes_its_attempts_live() {
    let _serial = serial();
    ATTEMPTS.store(0, Ordering::SeqCst);
    let _ = sync_ledger().await;
    let before = ATTEMPTS.swap(0, Ordering::SeqCst);
    let settings = toml_settings("[retries.\"settings::sync_ledger\"]\nmax_attempts = 5\n");
    registry().apply(&settings).unwrap();
    let _ = sync_ledger().await;
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 5, "was {before}");
    // The snapshot shows the call site with its settings in force.
    let snapshot = registry().snapshot();
    let site = snapshot
        .call_sites
        .iter()
        .find(|s| s.kind == "retry" && s.name == "settings::sync_ledger")
        .expect("listed");
    assert!(
        site.settings
            .as_deref()
            .unwrap()
            .starts_with("max_attempts = 5, "),
        "{site:?}"
    );
    assert!(
        site.location.starts_with("tests/tests/settings.rs:"),
        "{site:?}"
    );
    // A breaker declared by name shows before its first call...
    assert!(snapshot.breaker("settings-never-called").is_some());
    // ...and once, not twice, after it.
    let _ = pay(false).await;
    let snapshot = registry().snapshot();
    let payments = snapshot
        .breakers
        .iter()
        .filter(|b| &*b.name == "settings-payments");
    assert_eq!(payments.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_changes_its_delay_live_and_keeps_the_attributes_rules() {
    let _serial = serial();
    HEDGE_RUNS.store(0, Ordering::SeqCst);
    replicated().await.unwrap();
    assert_eq!(
        HEDGE_RUNS.swap(0, Ordering::SeqCst),
        1,
        "2 s warm-up delay: no hedge"
    );
    // A fixed delay from the file drops the attribute's percentile keys.
    let settings = toml_settings("[hedges.settings-replicas]\ndelay = \"20ms\"\nmax_hedges = 2\n");
    let applied = registry().apply(&settings).unwrap();
    assert_eq!(applied.changed, ["hedges.settings-replicas"]);
    replicated().await.unwrap();
    assert_eq!(
        HEDGE_RUNS.swap(0, Ordering::SeqCst),
        3,
        "two hedges, 20 ms apart"
    );
    // The attribute's rules, in its words, with the path: a value when the
    // file is read, a rule between keys when it is layered and applied.
    let err = Figment::from(Toml::string("[hedges.settings-replicas]\nmax_hedges = 9\n"))
        .extract::<Settings>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "hedges.settings-replicas.max_hedges: `max_hedges` is too large: at most 4, found 9"
        ),
        "{err}"
    );
    let err = Figment::from(Toml::string("[hedges.settings-replicas]\ndelay = \"p0\"\n"))
        .extract::<Settings>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a percentile `delay` must be above `p0`"),
        "{err}"
    );
    let settings = toml_settings("[hedges.settings-replicas]\ndelay = \"5ms\"\nperiod = \"1s\"\n");
    let err = registry().apply(&settings).unwrap_err().to_string();
    assert!(
        err.contains(
            "hedges.settings-replicas.period: `period` only applies to a percentile `delay`"
        ),
        "{err}"
    );
    let settings = toml_settings("[hedges.settings-replicsa]\nmax_hedges = 2\n");
    let err = registry().apply(&settings).unwrap_err().to_string();
    assert!(err.contains("did you mean `settings-replicas`?"), "{err}");
    // Going back to the attribute's percentile delay.
    registry().apply(&Settings::new()).unwrap();
    replicated().await.unwrap();
    assert_eq!(HEDGE_RUNS.load(Ordering::SeqCst), 1);
}

#[test]
fn a_typo_in_a_name_is_rejected_with_a_suggestion_and_nothing_is_applied() {
    let _serial = serial();
    let settings = toml_settings(
        "[breakers.settings-paymnets]\nfailure_threshold = 2\n\n[bulkheads.settings-db]\nmax_concurrent = 3\n",
    );
    let before = registry().settings();
    let err = registry().apply(&settings).unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        ["breakers.settings-paymnets: no circuit breaker of this program is named `settings-paymnets`: did you mean `settings-payments`?"]
    );
    assert_eq!(registry().settings(), before, "nothing applied");
}

#[test]
fn a_name_created_at_run_time_is_allowed_by_a_pattern() {
    let _serial = serial();
    let settings = toml_settings("[breakers.tenant-7]\nfailure_threshold = 2\n");
    assert!(registry().apply(&settings).is_err());
    let settings = toml_settings(
        "dynamic_names = [\"tenant-*\"]\n[breakers.tenant-7]\nfailure_threshold = 2\n",
    );
    registry().apply(&settings).unwrap();
    registry().apply(&Settings::new()).unwrap();
}

#[test]
fn settings_that_break_an_attributes_rule_once_layered_are_rejected() {
    let _serial = serial();
    // The attribute's threshold of 3 is dropped by a rate, which needs a window.
    let settings = toml_settings("[breakers.settings-search]\nfailure_rate = 0.5\n");
    let err = registry().apply(&settings).unwrap_err().to_string();
    assert!(
        err.contains("breakers.settings-search.failure_rate: `failure_rate` needs a window"),
        "{err}"
    );
    // Over the attribute's `delay = "1ms"`, a `max_delay` of 10 ms is fine
    // (alone, under the default delay of 1 s, it would not be).
    let settings = toml_settings("[retries.settings-search]\nmax_delay = \"10ms\"\n");
    registry().apply(&settings).unwrap();
    let settings = toml_settings("[retries.settings-search]\nmax_delay = \"100us\"\n");
    let err = registry().apply(&settings).unwrap_err().to_string();
    assert!(err.contains("retries.settings-search.max_delay: "), "{err}");
    registry().apply(&Settings::new()).unwrap();
}

#[test]
fn bad_files_are_clear_errors() {
    let _serial = serial();
    for (file, expect) in [
        (
            "[breakers.settings-payments]\nfailure_rate = 1.5\nwindow = 10\n",
            "breakers.settings-payments.failure_rate: ",
        ),
        (
            "[breakers.settings-payments]\nfailure_threshold = \"three\"\n",
            "expected a whole number, found \"three\"",
        ),
        (
            "[breakers.settings-payments]\nrecovery_timout = \"30s\"\n",
            "did you mean `recovery_timeout`?",
        ),
        (
            "[breakers.settings-payments]\nprofile = \"none\"\n",
            "no profile named `none`",
        ),
        (
            "[profiles.a]\nprofile = \"a\"\n",
            "profile `a` refers to itself",
        ),
        (
            "[retries.x]\nbackoff = \"exponentail\"\n",
            "did you mean \"exponential\"?",
        ),
        (
            "[rate_limits.x]\nfleet = true\n",
            "`fleet` can only be written in the attribute",
        ),
    ] {
        let err = Figment::from(Toml::string(file))
            .extract::<Settings>()
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{file}: {err}");
    }
    // A malformed file: the loader's own error.
    assert!(Figment::from(Toml::string("[breakers\n"))
        .extract::<Settings>()
        .is_err());
}

#[test]
fn config_rs_reads_the_same_file_with_its_environment_convention() {
    let _serial = serial();
    let env = std::collections::HashMap::from([(
        "RESILIENCE__BREAKERS__SETTINGS-SEARCH__RECOVERY_TIMEOUT".to_owned(),
        "45s".to_owned(),
    )]);
    let settings: Settings = config::Config::builder()
        .add_source(config::File::from_str(FILE, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("RESILIENCE")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        )
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    let file_only: Settings = Figment::from(Toml::string(FILE)).extract().unwrap();
    assert_ne!(settings, file_only, "the environment overrode a key");
}

#[test]
fn what_was_applied_reads_back() {
    let _serial = serial();
    let settings = toml_settings("[bulkheads.settings-db]\nmax_concurrent = 3\n");
    registry().apply(&settings).unwrap();
    assert_eq!(registry().settings(), settings);
    registry().apply(&Settings::new()).unwrap();
    assert_eq!(registry().settings(), Settings::new());
}

#[test]
fn an_unknown_name_is_named_with_its_sections_policy() {
    let _serial = serial();
    for (file, words) in [
        (
            "[retries.settings-nope]\nmax_attempts = 2\n",
            "retries.settings-nope: no retry of this program is named `settings-nope`",
        ),
        (
            "[bulkheads.settings-nope]\nmax_concurrent = 2\n",
            "bulkheads.settings-nope: no bulkhead of this program is named `settings-nope`",
        ),
        (
            "[timeouts.settings-nope]\ntimeout = \"1s\"\n",
            "timeouts.settings-nope: no timeout of this program is named `settings-nope`",
        ),
    ] {
        let err = registry().apply(&toml_settings(file)).unwrap_err();
        let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with(words), "{problems:?}");
    }
}

#[test]
fn a_retry_budget_in_use_takes_its_own_settings_again_but_not_others() {
    let _serial = serial();
    let budget = registry().retry_budget("settings-budget");
    let ttl = budget.status().ttl;
    let same = toml_settings(&format!(
        "[retry_budgets.settings-budget]\nttl = \"{}ms\"\n",
        ttl.as_millis()
    ));
    registry().apply(&same).unwrap();
    let other = toml_settings(&format!(
        "[retry_budgets.settings-budget]\nttl = \"{}ms\"\n",
        ttl.as_millis() + 1000
    ));
    let err = registry().apply(&other).unwrap_err().to_string();
    assert!(
        err.contains("retry_budgets.settings-budget: in use: a retry budget's settings are read when it is created"),
        "{err}"
    );
    registry().apply(&Settings::new()).unwrap();
}

/// A file that gives `slow` a timeout of 50 ms (its attribute says 5 s).
fn fast_timeout() -> Settings {
    toml_settings("[timeouts.\"settings::slow\"]\ntimeout = \"50ms\"\n")
}

/// How long `slow` ran before it timed out (it must time out).
async fn slow_timed_out_after() -> std::time::Duration {
    let started = tokio::time::Instant::now();
    let err = slow().await.unwrap_err();
    assert!(
        matches!(err, ApiError::Layer(ref e) if e.is_timeout()),
        "{err}"
    );
    started.elapsed()
}

/// Before the call site's first call (read when it starts) and after it
/// (put in force by `apply`).
#[tokio::test(start_paused = true)]
async fn a_timeout_from_the_file_is_the_one_in_force() {
    let _serial = serial();
    registry().apply(&fast_timeout()).unwrap();
    assert_eq!(
        slow_timed_out_after().await,
        std::time::Duration::from_millis(50)
    );
    registry().apply(&Settings::new()).unwrap();
    assert_eq!(slow().await.unwrap(), 1, "the attribute's 5 s");
    registry().apply(&fast_timeout()).unwrap();
    assert_eq!(
        slow_timed_out_after().await,
        std::time::Duration::from_millis(50)
    );
    registry().apply(&Settings::new()).unwrap();
}

/// In a `#[resilience::test]`, each call site is the test's own, made on its
/// first use there with the settings in force.
#[resilience::test(start_paused = true)]
async fn a_tests_own_timeout_site_starts_with_the_files_timeout() {
    let _serial = serial();
    registry().apply(&fast_timeout()).unwrap();
    assert_eq!(
        slow_timed_out_after().await,
        std::time::Duration::from_millis(50)
    );
    registry().apply(&Settings::new()).unwrap();
}

/// The tests of this file share the process-wide registry and each applies
/// a whole configuration: one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn toml_settings(text: &str) -> Settings {
    Figment::from(Toml::string(text)).extract().unwrap()
}
