//! The link-time manifest of call sites: every annotated function is listed
//! before it runs, and the callbacks declared for a static name belong to
//! that breaker from the start, whichever call site runs first.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::manifest::{self, CallSite, Kind, Name};
use resilience::{
    circuit_breaker, registry, resilient, retry, BreakerConfig, CircuitState, Outcome, Registry,
    Transition,
};
use support::ApiError;

// ---------------------------------------------------------------------------
// Callbacks of a shared name, declared at one call site only
// ---------------------------------------------------------------------------

static ALERTS: AtomicU32 = AtomicU32::new(0);

fn alert(_: &Transition) {
    ALERTS.fetch_add(1, Ordering::SeqCst);
}

const FETCH_LINE: u32 = line!() + 1;
#[circuit_breaker(name = "manifest-inventory", failure_threshold = 2, on_open = alert)]
async fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

#[circuit_breaker(name = "manifest-inventory", failure_threshold = 2)]
async fn list() -> Result<u32, ApiError> {
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn a_callback_fires_although_its_call_site_never_ran() {
    // Only `list` runs: `fetch`, which declares `on_open`, never does.
    for _ in 0..2 {
        assert_eq!(list().await, Err(ApiError::Upstream));
    }
    assert_eq!(
        registry().get("manifest-inventory").unwrap().state(),
        CircuitState::Open
    );
    assert_eq!(ALERTS.load(Ordering::SeqCst), 1, "alert fired, once");

    // `fetch` running now attaches nothing more: no double firing.
    assert!(registry().reset("manifest-inventory"));
    assert!(matches!(fetch().await, Ok(1)));
    for _ in 0..2 {
        assert_eq!(list().await, Err(ApiError::Upstream));
    }
    assert_eq!(ALERTS.load(Ordering::SeqCst), 2, "once per opening");
}

static BY_HAND_ALERTS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "manifest-by-hand",
    failure_threshold = 1,
    on_open = |_| {
        BY_HAND_ALERTS.fetch_add(1, Ordering::SeqCst);
    }
)]
#[allow(dead_code)] // never called: the breaker is made by hand
async fn by_hand() -> Result<(), ApiError> {
    Ok(())
}

fn trip(breaker: &resilience::CircuitBreaker) {
    breaker.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn breakers_made_through_the_registry_get_the_declared_callbacks_too() {
    let one = BreakerConfig::builder()
        .failure_threshold(1)
        .build()
        .unwrap();
    // The process-wide registry, through `breaker`.
    trip(&registry().breaker("manifest-by-hand", &one));
    assert_eq!(BY_HAND_ALERTS.load(Ordering::SeqCst), 1);
    // A registry of its own, through `configure`: the same program, the same
    // call sites.
    let isolated = Registry::new();
    trip(&isolated.configure("manifest-by-hand", one).unwrap());
    assert_eq!(BY_HAND_ALERTS.load(Ordering::SeqCst), 2);
    // And through `breaker`.
    let another = Registry::new();
    trip(&another.breaker("manifest-by-hand", &one));
    assert_eq!(BY_HAND_ALERTS.load(Ordering::SeqCst), 3);
    // Another name: none of them.
    trip(&another.breaker("manifest-something-else", &one));
    assert_eq!(BY_HAND_ALERTS.load(Ordering::SeqCst), 3);
}

static EACH: AtomicU32 = AtomicU32::new(0);

fn count_each(_: &Transition) {
    EACH.fetch_add(1, Ordering::SeqCst);
}

#[circuit_breaker(name = "manifest-twice", failure_threshold = 1, on_open = count_each)]
async fn declares_once() -> Result<(), ApiError> {
    Err(ApiError::Upstream)
}

#[circuit_breaker(name = "manifest-twice", failure_threshold = 1, on_open = count_each)]
#[allow(dead_code)]
async fn declares_again() -> Result<(), ApiError> {
    Err(ApiError::Upstream)
}

#[tokio::test(start_paused = true)]
async fn each_declaring_call_site_attaches_its_callback_once() {
    assert_eq!(declares_once().await, Err(ApiError::Upstream));
    assert_eq!(
        EACH.load(Ordering::SeqCst),
        2,
        "two declarations, once each"
    );
}

// ---------------------------------------------------------------------------
// Dynamic names keep attaching per call site
// ---------------------------------------------------------------------------

static DYNAMIC_OPENED: AtomicU32 = AtomicU32::new(0);

struct Tenant(&'static str);

impl Tenant {
    #[circuit_breaker(
        name = self.0,
        failure_threshold = 1,
        on_open = |_| {
            DYNAMIC_OPENED.fetch_add(1, Ordering::SeqCst);
        }
    )]
    async fn call(&self) -> Result<(), ApiError> {
        Err(ApiError::Upstream)
    }
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_call_site_attaches_its_callbacks_to_each_breaker_it_creates() {
    for tenant in ["manifest-tenant-a", "manifest-tenant-b"] {
        assert_eq!(Tenant(tenant).call().await, Err(ApiError::Upstream));
    }
    assert_eq!(DYNAMIC_OPENED.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------
// What the manifest lists
// ---------------------------------------------------------------------------

const STACKED_LINE: u32 = line!() + 1;
#[circuit_breaker(name = "manifest-stacked", recovery_timeout = "30s")]
#[retry(max_attempts = 2, retry_if = |e: &ApiError| *e == ApiError::Upstream)]
#[allow(dead_code)]
async fn stacked() -> Result<(), ApiError> {
    Ok(())
}

const RESILIENT_LINE: u32 = line!() + 1;
#[resilient(
    name = "manifest-llm",
    failure_threshold = 3,
    max_attempts = 3,
    timeout = "30s"
)]
#[allow(dead_code)]
async fn complete(_prompt: &str) -> Result<String, ApiError> {
    Ok(String::new())
}

#[circuit_breaker]
#[allow(dead_code)]
async fn unnamed() -> Result<(), ApiError> {
    Ok(())
}

async fn degrade(_error: ApiError) -> Result<u32, ApiError> {
    Ok(0)
}

#[resilience::bulkhead(name = "manifest-db", max_concurrent = 2, fallback = degrade)]
#[resilience::timeout("5s")]
#[allow(dead_code)]
async fn query() -> Result<u32, ApiError> {
    Ok(1)
}

/// This file's entries of `function`, in the order of their layers.
fn sites_of(function: &str) -> Vec<&'static CallSite> {
    let mut sites: Vec<_> = manifest::call_sites()
        .filter(|s| s.file() == file!() && s.function() == function)
        .collect();
    // The list has no order of its own.
    let layers = [
        Kind::Fallback,
        Kind::CircuitBreaker,
        Kind::Retry,
        Kind::Bulkhead,
        Kind::Timeout,
    ];
    sites.sort_by_key(|s| layers.iter().position(|k| *k == s.kind()));
    sites
}

#[test]
fn every_layer_of_every_annotated_function_is_listed_before_it_runs() {
    let [site] = sites_of("fetch")[..] else {
        panic!("one entry: {:?}", sites_of("fetch"))
    };
    assert_eq!(site.kind(), Kind::CircuitBreaker);
    assert_eq!(site.attribute(), "circuit_breaker");
    assert_eq!(site.name(), Name::Static("manifest-inventory"));
    assert_eq!(
        site.keys(),
        [
            ("name", "\"manifest-inventory\""),
            ("failure_threshold", "2"),
            ("on_open", "alert"),
        ]
    );
    assert_eq!(site.key("failure_threshold"), Some("2"));
    assert_eq!(site.key("recovery_timeout"), None);
    assert_eq!((site.module(), site.line()), ("manifest", FETCH_LINE));
    assert!(site.on_open().is_some());
    assert!(site.on_close().is_none() && site.on_half_open().is_none());
    assert_eq!(
        site.to_string(),
        format!(
            "#[circuit_breaker] on manifest::fetch (tests/tests/manifest.rs:{FETCH_LINE}): \
             name = \"manifest-inventory\", failure_threshold = 2, on_open = alert"
        )
    );
    assert!(sites_of("list")[0].on_open().is_none());

    // Stacked attributes: one entry each; the retry reports under the
    // breaker's name. Both point at the function's first attribute.
    let stacked = sites_of("stacked");
    let kinds: Vec<_> = stacked.iter().map(|s| (s.kind(), s.name())).collect();
    assert_eq!(
        kinds,
        [
            (Kind::CircuitBreaker, Name::Static("manifest-stacked")),
            (Kind::Retry, Name::Static("manifest-stacked")),
        ]
    );
    assert_eq!(stacked[0].keys()[1], ("recovery_timeout", "\"30s\""));
    assert_eq!(
        stacked[1].keys(),
        [
            ("max_attempts", "2"),
            ("retry_if", "|e: &ApiError| *e == ApiError::Upstream")
        ]
    );
    assert_eq!(stacked[1].attribute(), "retry");
    assert!(stacked.iter().all(|s| s.line() == STACKED_LINE));

    // `#[resilient]`: one entry per layer, its keys split among them.
    let layers: Vec<_> = sites_of("complete")
        .iter()
        .map(|s| (s.kind(), s.attribute(), s.keys()))
        .collect();
    assert_eq!(
        layers,
        [
            (
                Kind::CircuitBreaker,
                "resilient",
                &[("name", "\"manifest-llm\""), ("failure_threshold", "3")][..]
            ),
            (Kind::Retry, "resilient", &[("max_attempts", "3")][..]),
            (Kind::Timeout, "resilient", &[("timeout", "\"30s\"")][..]),
        ]
    );
    assert!(sites_of("complete")
        .iter()
        .all(|s| s.line() == RESILIENT_LINE));

    // Fallback, bulkhead and timeout layers.
    let layers: Vec<_> = sites_of("query")
        .iter()
        .map(|s| (s.kind(), s.attribute(), s.name(), s.keys()))
        .collect();
    assert_eq!(
        layers,
        [
            (
                Kind::Fallback,
                "bulkhead",
                Name::Default,
                &[("fallback", "degrade")][..]
            ),
            (
                Kind::Bulkhead,
                "bulkhead",
                Name::Static("manifest-db"),
                &[("name", "\"manifest-db\""), ("max_concurrent", "2")][..]
            ),
            (
                Kind::Timeout,
                "timeout",
                Name::Default,
                &[("timeout", "\"5s\"")][..]
            ),
        ]
    );

    // Without a name, and with a dynamic one.
    assert_eq!(sites_of("unnamed")[0].name(), Name::Default);
    assert_eq!(sites_of("call")[0].name(), Name::Dynamic("self.0"));
}
