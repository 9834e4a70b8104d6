//! Breakers without `name`: one per call site, named `module::Type::method`
//! for a method (`module::function` otherwise), and reachable by that name in
//! the registry.

mod support;

use std::sync::Arc;

use resilience::{circuit_breaker, registry, BreakerConfig, CircuitState};
use support::{is_open, ApiError};

fn answer(ok: bool) -> Result<u32, ApiError> {
    if ok {
        Ok(1)
    } else {
        Err(ApiError::Upstream)
    }
}

/// Two adapters in one module, each with an unnamed breaker on a method of
/// the same name.
mod reports {
    use super::{answer, ApiError};
    use resilience::circuit_breaker;

    pub struct ReportsApi;
    pub struct BillingApi;

    impl ReportsApi {
        #[circuit_breaker(failure_threshold = 2)]
        pub async fn fetch_report(&self, ok: bool) -> Result<u32, ApiError> {
            answer(ok)
        }
    }

    impl BillingApi {
        #[circuit_breaker(failure_threshold = 2)]
        pub async fn fetch_report(&self, ok: bool) -> Result<u32, ApiError> {
            answer(ok)
        }
    }
}

const REPORTS: &str = "default_names::reports::ReportsApi::fetch_report";
const BILLING: &str = "default_names::reports::BillingApi::fetch_report";

#[tokio::test(start_paused = true)]
async fn two_types_with_one_method_name_get_two_breakers_named_after_each_type() {
    use reports::{BillingApi, ReportsApi};

    for _ in 0..2 {
        assert_eq!(
            ReportsApi.fetch_report(false).await,
            Err(ApiError::Upstream)
        );
    }
    assert!(is_open(&ReportsApi.fetch_report(true).await));
    assert_eq!(
        BillingApi.fetch_report(true).await,
        Ok(1),
        "its own breaker"
    );

    let snapshot = registry().snapshot();
    let rows: Vec<_> = snapshot
        .breakers
        .iter()
        .filter(|s| s.name.starts_with("default_names::reports::"))
        .map(|s| (&*s.name, s.state))
        .collect();
    assert_eq!(
        rows,
        [
            (BILLING, CircuitState::Closed),
            (REPORTS, CircuitState::Open)
        ],
        "two rows, sorted by name"
    );

    // Reachable by name: `get`, `reset`, `force_open`.
    assert_eq!(registry().get(REPORTS).unwrap().state(), CircuitState::Open);
    assert!(registry().reset(REPORTS));
    assert_eq!(ReportsApi.fetch_report(true).await, Ok(1));
    assert!(registry().force_open(BILLING));
    assert!(is_open(&BillingApi.fetch_report(true).await));
    assert_eq!(ReportsApi.fetch_report(true).await, Ok(1), "untouched");
    assert_eq!(
        registry().get(BILLING).unwrap().state(),
        CircuitState::ForcedOpen
    );
    assert!(registry().reset(BILLING));
    assert_eq!(BillingApi.fetch_report(true).await, Ok(1));
}

mod shapes {
    use std::sync::Arc;

    use super::{answer, ApiError};
    use resilience::circuit_breaker;

    pub struct Generic<T>(pub T);

    impl<T: Send + Sync> Generic<T> {
        #[circuit_breaker]
        pub async fn get(&self) -> Result<u32, ApiError> {
            answer(true)
        }
    }

    pub struct Service;

    impl Service {
        #[circuit_breaker]
        pub async fn by_arc(self: Arc<Self>) -> Result<u32, ApiError> {
            answer(true)
        }

        #[circuit_breaker]
        pub async fn by_mut(&mut self) -> Result<u32, ApiError> {
            answer(true)
        }

        /// No receiver: the macro cannot know it is in an `impl`.
        #[circuit_breaker]
        pub async fn associated() -> Result<u32, ApiError> {
            answer(true)
        }
    }

    #[circuit_breaker]
    pub async fn free() -> Result<u32, ApiError> {
        answer(true)
    }

    /// Implemented for a reference: named after the type behind it.
    pub trait Lookup {
        async fn lookup(self) -> Result<u32, ApiError>;
    }

    impl Lookup for &Service {
        #[circuit_breaker]
        async fn lookup(self) -> Result<u32, ApiError> {
            answer(true)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_receiver_names_its_type_without_generics_or_references() {
    use shapes::{Generic, Lookup, Service};

    // One call site, one breaker: shared by every `T` (the call site's
    // `static` is shared by all monomorphisations).
    Generic(1u32).get().await.unwrap();
    Generic("x").get().await.unwrap();
    Arc::new(Service).by_arc().await.unwrap();
    Service.by_mut().await.unwrap();
    Service::associated().await.unwrap();
    shapes::free().await.unwrap();
    (&Service).lookup().await.unwrap();

    let names: Vec<String> = registry()
        .snapshot()
        .breakers
        .into_iter()
        .map(|s| s.name.to_string())
        .filter(|n| n.starts_with("default_names::shapes::"))
        .collect();
    assert_eq!(
        names,
        [
            "default_names::shapes::Generic::get",
            "default_names::shapes::Service::by_arc",
            "default_names::shapes::Service::by_mut",
            "default_names::shapes::Service::lookup",
            "default_names::shapes::associated",
            "default_names::shapes::free",
        ]
    );
}

/// Two trait impls of one type, each with an unnamed breaker on `fetch`:
/// the same default name, still two breakers.
mod collision {
    use super::{answer, ApiError};
    use resilience::circuit_breaker;

    pub struct Store;

    pub trait Primary {
        async fn fetch(&self, ok: bool) -> Result<u32, ApiError>;
    }
    pub trait Replica {
        async fn fetch(&self, ok: bool) -> Result<u32, ApiError>;
    }

    impl Primary for Store {
        #[circuit_breaker(failure_threshold = 1)]
        async fn fetch(&self, ok: bool) -> Result<u32, ApiError> {
            answer(ok)
        }
    }

    impl Replica for Store {
        #[circuit_breaker(failure_threshold = 1)]
        async fn fetch(&self, ok: bool) -> Result<u32, ApiError> {
            answer(ok)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn two_call_sites_with_one_default_name_are_two_breakers_the_second_numbered() {
    use collision::{Primary, Replica, Store};
    let name = "default_names::collision::Store::fetch";

    assert_eq!(Primary::fetch(&Store, false).await, Err(ApiError::Upstream));
    assert_eq!(
        Replica::fetch(&Store, true).await,
        Ok(1),
        "not the primary's breaker"
    );
    assert!(is_open(&Primary::fetch(&Store, true).await));

    let primary = registry().get(name).unwrap();
    let replica = registry().get(&format!("{name}#2")).unwrap();
    assert!(!Arc::ptr_eq(&primary, &replica));
    assert_eq!(primary.state(), CircuitState::Open);
    assert_eq!(replica.state(), CircuitState::Closed);
    assert_eq!(replica.name(), format!("{name}#2"));
}

mod configured {
    use super::{answer, ApiError};
    use resilience::circuit_breaker;

    pub struct Search;

    impl Search {
        #[circuit_breaker(failure_threshold = 5)]
        pub async fn query(&self, ok: bool) -> Result<u32, ApiError> {
            answer(ok)
        }
    }

    #[circuit_breaker(failure_threshold = 5)]
    pub async fn suggest(ok: bool) -> Result<u32, ApiError> {
        answer(ok)
    }
}

#[tokio::test(start_paused = true)]
async fn configuring_a_default_name_before_the_first_call_wins_over_the_literals() {
    let one = || {
        BreakerConfig::builder()
            .failure_threshold(1)
            .build()
            .unwrap()
    };
    let query = registry()
        .configure("default_names::configured::Search::query", one())
        .unwrap();
    let suggest = registry()
        .configure("default_names::configured::suggest", one())
        .unwrap();

    assert_eq!(
        configured::Search.query(false).await,
        Err(ApiError::Upstream)
    );
    assert!(
        is_open(&configured::Search.query(true).await),
        "one failure opened it: the configured threshold, not the attribute's 5"
    );
    assert_eq!(query.state(), CircuitState::Open, "the configured breaker");
    assert_eq!(configured::suggest(false).await, Err(ApiError::Upstream));
    assert_eq!(suggest.state(), CircuitState::Open);
    assert!(Arc::ptr_eq(
        &suggest,
        &registry()
            .get("default_names::configured::suggest")
            .unwrap()
    ));
    assert!(
        registry()
            .get("default_names::configured::suggest#2")
            .is_none(),
        "the call site took the configured breaker rather than a new name"
    );
}

static UNNAMED_OPENED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Alerting;

impl Alerting {
    #[circuit_breaker(
        failure_threshold = 1,
        on_open = |_| {
            UNNAMED_OPENED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    )]
    async fn call(&self) -> Result<u32, ApiError> {
        answer(false)
    }
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_call_site_attaches_its_own_callbacks_once() {
    assert_eq!(Alerting.call().await, Err(ApiError::Upstream));
    assert!(is_open(&Alerting.call().await));
    assert_eq!(UNNAMED_OPENED.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(registry().reset("default_names::Alerting::call"));
    assert_eq!(Alerting.call().await, Err(ApiError::Upstream));
    assert_eq!(UNNAMED_OPENED.load(std::sync::atomic::Ordering::SeqCst), 2);
}
