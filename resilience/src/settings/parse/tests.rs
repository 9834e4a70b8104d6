use super::super::Settings;
use super::SettingsError;

fn read(json: &str) -> Result<Settings, SettingsError> {
    let node: super::Node = serde_json::from_str(json).expect("json");
    Settings::from_node(&node)
}

fn problems(json: &str) -> Vec<String> {
    read(json)
        .expect_err("problems")
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_partial_entry_gives_only_its_keys() {
    let s = read(r#"{"breakers": {"payments": {"failure_threshold": 3}}}"#).unwrap();
    let v = s.breakers["payments"];
    assert_eq!(v.failure_threshold.given(), Some(3));
    assert!(!v.recovery_timeout.is_present());
}

#[test]
fn strings_from_the_environment_are_read_as_numbers() {
    let s = read(
        r#"{"breakers": {"p": {"failure_threshold": "3", "window": "100", "failure_rate": "0.5", "recovery_timeout": "30s"}}}"#,
    );
    assert_eq!(s.unwrap().breakers["p"].failure_threshold.given(), Some(3));
    let s = read(r#"{"breakers": {"p": {"window": "100", "failure_rate": "0.5"}}, "retries": {"p": {"max_attempts": "5"}}}"#).unwrap();
    assert_eq!(s.retries["p"].max_attempts.given(), Some(5));
    assert_eq!(
        s.breakers["p"].window.given(),
        Some(resilience_spec::WindowValue::Calls(100))
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let p = problems(
        r#"{"breakers": {"payments": {"failure_rate": 1.5, "window": 10, "recovery_timeout": 30, "failure_treshold": 2, "on_open": "x"}},
            "retries": {"payments": {"backoff": "exponentail", "max_attempts": -1}},
            "bulkheads": {"db": {"max_concurrent": 0}},
            "brakers": {}}"#,
    );
    let expect = [
        "brakers: unknown section `brakers`: did you mean `breakers`?",
        "breakers.payments.failure_treshold: unknown key `failure_treshold` for a circuit breaker: did you mean `failure_threshold`?",
        "breakers.payments.on_open: `on_open` can only be written in the attribute",
        "breakers.payments.recovery_timeout: expected a duration with its unit, such as \"30s\" or \"30ms\", found 30",
        "breakers.payments.failure_rate: ",
        "retries.payments.backoff: unknown backoff \"exponentail\": did you mean \"exponential\"?",
        "retries.payments.max_attempts: expected a whole number of at least 0, found -1",
        "bulkheads.db.max_concurrent: ",
    ];
    for e in expect {
        assert!(
            p.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn rules_between_keys_wait_for_the_attributes_keys() {
    // Alone, each breaks a rule with a default; over an attribute's keys
    // they may not (checked when applied).
    read(r#"{"breakers": {"p": {"failure_rate": 0.5}}, "retries": {"p": {"max_delay": "10ms"}}}"#)
        .unwrap();
}

#[test]
fn profiles_are_shared_and_an_entry_wins_over_its_profile() {
    let s = read(
        r#"{"profiles": {"base": {"recovery_timeout": "10s", "max_attempts": 2},
                         "critical": {"profile": "base", "failure_threshold": 3}},
            "breakers": {"payments": {"profile": "critical", "recovery_timeout": "30s"},
                         "ledger": {"profile": "critical"}},
            "retries": {"payments": {"profile": "critical"}}}"#,
    )
    .unwrap();
    let secs = |s: u64| Some(std::time::Duration::from_secs(s));
    assert_eq!(s.breakers["payments"].failure_threshold.given(), Some(3));
    assert_eq!(s.breakers["payments"].recovery_timeout.given(), secs(30));
    assert_eq!(s.breakers["ledger"].recovery_timeout.given(), secs(10));
    assert_eq!(s.retries["payments"].max_attempts.given(), Some(2));
    assert!(!s.retries["payments"].delay.is_present());
}

#[test]
fn a_missing_or_looping_profile_is_an_error() {
    let p = problems(
        r#"{"profiles": {"a": {"profile": "b"}, "b": {"profile": "a"}, "c": {"profile": "c"}, "d": {"colour": 1}},
            "breakers": {"payments": {"profile": "critcal"}}}"#,
    );
    let expect = [
        "profiles.a.profile: profile `a` refers to itself (a -> b -> a)",
        "profiles.b.profile: profile `b` refers to itself (b -> a -> b)",
        "profiles.c.profile: profile `c` refers to itself (c -> c)",
        "profiles.d.colour: unknown key `colour`",
        "breakers.payments.profile: no profile named `critcal`",
    ];
    for e in expect {
        assert!(
            p.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn a_wrong_shape_is_an_error_not_a_panic() {
    for doc in [
        "[]",
        "3",
        r#"{"breakers": 3}"#,
        r#"{"breakers": {"p": [1]}}"#,
        r#"{"breakers": {"p": {"window": [1]}}}"#,
        r#"{"dynamic_names": [1]}"#,
        r#"{"profiles": {"a": {"profile": 3}}}"#,
    ] {
        let p = problems(doc);
        assert!(!p.is_empty(), "{doc}");
    }
}

#[test]
fn deserializing_fails_with_every_problem_one_per_line() {
    let err = serde_json::from_str::<Settings>(
        r#"{"breakers": {"p": {"failure_rate": 2.0, "window": 10, "recovery_timeout": "0s"}}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("invalid resilience settings (2 problems):"),
        "{err}"
    );
    assert!(err.contains("\n  breakers.p.failure_rate: "), "{err}");
    assert!(err.contains("\n  breakers.p.recovery_timeout: "), "{err}");
}

#[cfg(not(feature = "chaos"))]
#[test]
fn a_chaos_section_without_the_feature_says_which_feature() {
    assert_eq!(
        problems(r#"{"chaos": {"unifi": {"panic_rate": 0.5}}}"#),
        ["chaos: the `chaos` section needs the `chaos` feature of `resilience`"]
    );
}
