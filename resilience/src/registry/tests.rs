//! Registry tests.

use super::BreakerConfig;

fn cfg(failures: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .failure_threshold(failures)
        .build()
        .unwrap()
}

mod basics {
    use super::super::*;
    use crate::{CircuitState, Outcome};
    use std::time::Duration;

    use super::cfg;

    #[test]
    fn one_name_one_breaker_across_threads() {
        let reg = Arc::new(Registry::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    let first = reg.breaker("shared", &cfg(10_000));
                    for _ in 0..1000 {
                        assert!(Arc::ptr_eq(&first, &reg.breaker("shared", &cfg(10_000))));
                    }
                    first
                })
            })
            .collect();
        let breakers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for b in &breakers {
            assert!(Arc::ptr_eq(b, &breakers[0]));
        }
        assert!(Arc::ptr_eq(&reg.get("shared").unwrap(), &breakers[0]));
        assert_eq!(reg.snapshot().breakers.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn failures_from_many_tasks_land_on_one_breaker() {
        let reg = Arc::new(Registry::new());
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let reg = reg.clone();
                tokio::spawn(async move {
                    let b = reg.breaker("db", &cfg(10));
                    b.try_acquire().unwrap().record(Outcome::Failure);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(reg.get("db").unwrap().state(), CircuitState::Open);
    }

    #[test]
    fn configured_breakers_win_over_call_sites() {
        let reg = Registry::new();
        let configured = reg.configure("api", cfg(7)).unwrap();
        let from_site = reg.breaker("api", &cfg(2));
        assert!(Arc::ptr_eq(&configured, &from_site));
        assert_eq!(from_site.config().failure_threshold().get(), 7);
        let err = reg.configure("api", cfg(3)).unwrap_err();
        assert!(Arc::ptr_eq(&err.existing, &configured));
        assert!(err.to_string().contains("`api` already exists"));
    }

    #[test]
    fn a_taken_bulkhead_or_budget_name_is_refused_in_words() {
        let reg = Registry::new();
        let one = std::num::NonZeroU32::MIN;
        let existing = reg.bulkhead("db", one, Duration::ZERO);
        let err = reg
            .configure_bulkhead(crate::Bulkhead::new("db", one, Duration::ZERO))
            .unwrap_err();
        assert!(Arc::ptr_eq(&err.existing, &existing));
        assert_eq!(
            err.to_string(),
            "bulkhead `db` already exists; configure it before its first use"
        );
        let existing = reg.retry_budget("ledger");
        let err = reg
            .configure_retry_budget(crate::RetryBudget::with_defaults("ledger"))
            .unwrap_err();
        assert!(Arc::ptr_eq(&err.existing, &existing));
        assert_eq!(
            err.to_string(),
            "retry budget `ledger` already exists; configure it before its first use"
        );
    }

    #[test]
    fn a_rate_limit_setting_layers_over_what_the_limiter_declared() {
        use resilience_spec::{RateLimitValues, Value};
        let reg = Registry::new();
        let declared = crate::RateLimitConfig::builder(100)
            .per(Duration::from_secs(1))
            .burst(20)
            .build()
            .unwrap();
        let limiter = reg.rate_limiter("api", &declared);
        let mut settings = crate::settings::Settings::new();
        settings.rate_limits.insert(
            "api".to_owned(),
            RateLimitValues {
                burst: Value::Given(5),
                ..RateLimitValues::NONE
            },
        );
        reg.apply(&settings).unwrap();
        let config = limiter.config();
        assert_eq!((config.rate().get(), config.burst().get()), (100, 5));
        reg.apply(&crate::settings::Settings::new()).unwrap();
        let config = limiter.config();
        assert_eq!((config.rate().get(), config.burst().get()), (100, 20));
    }

    #[test]
    fn a_hedge_made_in_code_can_be_configured_by_name() {
        use resilience_spec::{HedgeValues, Value};
        let reg = Registry::new();
        let hedge = reg.hedge("replicas", &crate::HedgeConfig::DEFAULT);
        let mut settings = crate::settings::Settings::new();
        settings.hedges.insert(
            "replicas".to_owned(),
            HedgeValues {
                max_hedges: Value::Given(3),
                ..HedgeValues::NONE
            },
        );
        reg.apply(&settings).unwrap();
        assert_eq!(hedge.config().max_hedges(), 3);
    }

    #[test]
    fn the_first_call_site_config_is_kept_and_conflicts_are_recorded_once() {
        let reg = Registry::new();
        let first = reg.breaker("x", &cfg(3));
        for _ in 0..3 {
            let second = reg.breaker("x", &cfg(4));
            assert!(Arc::ptr_eq(&first, &second));
        }
        assert_eq!(first.config().failure_threshold().get(), 3);
        let named = reg.named.get("x").unwrap();
        let Origin::CallSite { warned } = &named.origin else {
            panic!("created by a call site")
        };
        assert_eq!(*warned.lock().unwrap(), vec![cfg(4)]);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_all_and_snapshot_cover_private_breakers() {
        let reg = Registry::new();
        let private = reg.private_breaker("m::f", &cfg(1));
        let named = reg.breaker("b", &cfg(1));
        for b in [&private, &named] {
            b.try_acquire().unwrap().record(Outcome::Failure);
        }
        assert!(
            Arc::ptr_eq(&reg.get("m::f").unwrap(), &private),
            "private breakers are found by name"
        );
        assert!(
            reg.shared("m::f").is_none(),
            "but never shared with a fleet"
        );
        let shared: Vec<_> = reg
            .named_breakers()
            .iter()
            .map(|b| b.name().to_owned())
            .collect();
        assert_eq!(shared, ["b"]);
        let snap = reg.snapshot().breakers;
        assert_eq!(
            snap.iter().map(|s| (&*s.name, s.state)).collect::<Vec<_>>(),
            [("b", CircuitState::Open), ("m::f", CircuitState::Open)]
        );
        assert_eq!(snap[0].retry_after, Some(Duration::from_secs(60)));
        reg.reset_all();
        assert!(reg
            .snapshot()
            .breakers
            .iter()
            .all(|s| s.state == CircuitState::Closed));
    }
}

/// What happens while a breaker is being created: the listeners that see
/// it first, and settings that change meanwhile.
mod creation {
    use super::super::*;
    use resilience_spec::Value;

    use super::cfg;

    /// (A private breaker, the one an unnamed call site's default name
    /// gives, is never shared: `unnamed_breakers_are_never_shared` in
    /// `tests/tests/fleet.rs`, where such call sites exist.)
    #[test]
    fn creation_listeners_see_configured_and_declared_breakers() {
        let reg = Registry::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            reg.on_named_breaker_created(move |b| seen.lock().unwrap().push(b.name().to_owned()));
        }
        reg.configure("configured", cfg(1)).unwrap();
        reg.breaker("declared", &cfg(1));
        assert_eq!(*seen.lock().unwrap(), ["configured", "declared"]);
    }

    /// Settings put in force while a breaker is created (after it read
    /// them, before anyone can find it) still reach it.
    #[test]
    fn settings_applied_during_a_creation_reach_the_new_breaker() {
        let reg = Registry::new();
        let breaker = reg.breaker_with("racing", &cfg(5), |_| {
            let top = resilience_spec::BreakerValues {
                failure_threshold: Value::Given(2),
                ..Default::default()
            };
            reg.settings
                .write()
                .unwrap()
                .breakers
                .insert("racing".to_owned(), top);
        });
        assert_eq!(breaker.config().failure_threshold().get(), 2);
    }

    #[test]
    fn debug_output_counts_what_the_registry_holds() {
        let reg = Registry::new();
        reg.breaker("a", &cfg(1));
        reg.breaker("b", &cfg(1));
        assert_eq!(
            format!("{reg:?}"),
            "Registry { breakers: 2, bulkheads: 0, retry_budgets: 0, .. }"
        );
    }
}

mod unnamed {
    use super::super::*;

    use super::cfg;

    #[test]
    fn one_default_name_taken_twice_gives_two_breakers() {
        let reg = Registry::new();
        let first = reg.private_breaker("m::T::f", &cfg(1));
        let second = reg.private_breaker("m::T::f", &cfg(1));
        let third = reg.private_breaker("m::T::f", &cfg(1));
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(
            [first.name(), second.name(), third.name()],
            ["m::T::f", "m::T::f#2", "m::T::f#3"]
        );
        assert!(Arc::ptr_eq(&reg.get("m::T::f#2").unwrap(), &second));
        // A named breaker with that name is not taken over either.
        reg.breaker("n::g", &cfg(1));
        assert_eq!(reg.private_breaker("n::g", &cfg(1)).name(), "n::g#2");
        assert!(reg.shared("n::g").is_some() && reg.shared("n::g#2").is_none());
    }

    #[test]
    fn only_a_collision_is_warned_about() {
        let events = crate::test_events::Events::at(tracing::Level::WARN);
        tracing::subscriber::with_default(events.clone(), || {
            let reg = Registry::new();
            reg.private_breaker("w::T::f", &cfg(1));
            assert!(events.lines().is_empty(), "no warning for the first");
            reg.private_breaker("w::T::f", &cfg(1));
        });
        let line = events.only_line();
        assert!(
            line.contains("have the default name `w::T::f`; this one is `w::T::f#2`"),
            "{line}"
        );
    }

    #[test]
    fn a_configured_name_is_taken_by_the_first_unnamed_call_site_only() {
        let reg = Registry::new();
        let configured = reg.configure("m::f", cfg(7)).unwrap();
        let taken = reg.private_breaker("m::f", &cfg(1));
        assert!(Arc::ptr_eq(&configured, &taken));
        assert_eq!(taken.config().failure_threshold().get(), 7);
        assert!(reg.shared("m::f").is_none(), "private once taken");
        assert_eq!(reg.private_breaker("m::f", &cfg(1)).name(), "m::f#2");
    }

    #[test]
    fn short_type_names() {
        use crate::__private::short_type_name as short;
        assert_eq!(short("app::adapters::ReportsApi"), "ReportsApi");
        assert_eq!(short("app::Api<u32>"), "Api");
        assert_eq!(short("app::Api<alloc::string::String, app::X<u8>>"), "Api");
        assert_eq!(short("&app::Service"), "Service");
        assert_eq!(short("&mut app::Service"), "Service");
        assert_eq!(short("*const app::Service"), "Service");
        assert_eq!(short("dyn app::Store"), "Store");
        assert_eq!(short("Plain"), "Plain");
        assert_eq!(short("(app::A, app::B<u8>)"), "(A, B)");
        assert_eq!(short("[app::Item]"), "[Item]");
    }
}

#[cfg(test)]
mod more_tests {
    use super::super::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn bulkheads_and_budgets_are_shared_by_name_and_in_the_snapshot() {
        let reg = Registry::new();
        let one = NonZeroU32::new(1).unwrap();
        let a = reg.bulkhead("db", one, Duration::ZERO);
        let b = reg.bulkhead("db", NonZeroU32::new(9).unwrap(), Duration::ZERO);
        assert!(Arc::ptr_eq(&a, &b), "the first limits win");
        let _held = a.acquire().await.unwrap();
        let budget = reg.retry_budget("api");
        budget.deposit();
        assert!(Arc::ptr_eq(&budget, &reg.retry_budget("api")));
        let configured = RetryBudget::new("custom", Duration::from_secs(5), 2, 0.1).unwrap();
        assert!(reg.configure_retry_budget(configured).is_ok());
        let again = RetryBudget::new("custom", Duration::from_secs(5), 2, 0.1).unwrap();
        assert!(reg.configure_retry_budget(again).is_err());
        assert!(reg
            .configure_bulkhead(Bulkhead::new("db", one, Duration::ZERO))
            .is_err());

        let snap = reg.snapshot();
        assert_eq!(snap.bulkheads.len(), 1);
        assert_eq!(
            (
                snap.bulkheads[0].in_flight,
                snap.bulkheads[0].max_concurrent
            ),
            (1, 1)
        );
        let names: Vec<_> = snap.retry_budgets.iter().map(|b| &*b.name).collect();
        assert_eq!(names, ["api", "custom"]);
        assert_eq!(snap.retry_budgets[0].calls, 1);
        assert_eq!(
            snap.retry_budgets[0].available, 100,
            "10 s x 10/s floor; 20 % of 1 call rounds down"
        );
    }
}
