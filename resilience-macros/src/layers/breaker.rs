//! `#[circuit_breaker]` keys (also taken by `#[resilient]`).
//!
//! Input:  `name = "unifi", failure_rate = 0.5, window = 100, on_open = alert`
//! Output: `Breaker { name: Static("unifi"), keys: { failure_rate: 0.5, .. }, .. }`,
//! every rule between the keys checked by the spec (`BreakerValues::check`).

use std::time::Duration;

use resilience_spec::{BreakerValues, WindowValue};
use syn::{Expr, ExprLit, Lit, LitStr, Pat};

use super::{key, patterns, report};
use crate::args::{Arg, Args, Errors};
use crate::value::{self, Val};

pub(crate) const KEYS: &[&str] = &resilience_spec::keys::BREAKER_NAMES;

/// How a breaker is found.
pub(crate) enum BreakerName {
    /// `name = "unifi"`: one shared breaker, resolved once per call site.
    Static(LitStr),
    /// `name = <expr>`: looked up per call.
    Dynamic(Expr),
    /// No `name`: a breaker of this function alone.
    Private,
}

/// Which errors count as failures.
pub(crate) enum FailureRule {
    Every,
    If(Expr),
    On(Vec<Pat>),
}

/// The keys of the trip rules, as written: what the spec checks and the
/// expansion turns into a `BreakerConfig`.
#[derive(Default)]
pub(crate) struct BreakerKeys {
    pub(crate) failure_threshold: Option<Val<u64>>,
    pub(crate) recovery_timeout: Option<Val<Duration>>,
    pub(crate) success_threshold: Option<Val<u64>>,
    pub(crate) half_open_max_calls: Option<Val<u64>>,
    pub(crate) window: Option<Val<WindowValue>>,
    pub(crate) failure_rate: Option<Val<f64>>,
    pub(crate) min_calls: Option<Val<u64>>,
    pub(crate) slow_call: Option<Val<Duration>>,
    pub(crate) slow_call_rate: Option<Val<f64>>,
    pub(crate) recovery_timeout_max: Option<Val<Duration>>,
    pub(crate) fleet_threshold: Option<Val<u64>>,
}

impl BreakerKeys {
    /// What the spec sees now (constants are still unknown).
    pub(crate) fn values(&self) -> BreakerValues {
        BreakerValues {
            failure_threshold: Val::spec(&self.failure_threshold),
            recovery_timeout: Val::spec(&self.recovery_timeout),
            success_threshold: Val::spec(&self.success_threshold),
            half_open_max_calls: Val::spec(&self.half_open_max_calls),
            window: Val::spec(&self.window),
            failure_rate: Val::spec(&self.failure_rate),
            min_calls: Val::spec(&self.min_calls),
            slow_call: Val::spec(&self.slow_call),
            slow_call_rate: Val::spec(&self.slow_call_rate),
            recovery_timeout_max: Val::spec(&self.recovery_timeout_max),
            fleet_threshold: Val::spec(&self.fleet_threshold),
        }
    }
}

pub(crate) struct Breaker {
    pub(crate) name: BreakerName,
    pub(crate) keys: BreakerKeys,
    pub(crate) failure: FailureRule,
    pub(crate) ignore_if: Option<Expr>,
    /// `Ok` values that count as failures.
    pub(crate) failure_if_ok: Option<Expr>,
    pub(crate) on_open: Option<Expr>,
    pub(crate) on_close: Option<Expr>,
    pub(crate) on_half_open: Option<Expr>,
}

impl Breaker {
    pub(crate) fn has_callbacks(&self) -> bool {
        self.on_open.is_some() || self.on_close.is_some() || self.on_half_open.is_some()
    }
}

/// `window = 100` (calls) or `window = "60s"`.
fn window(arg: &Arg) -> syn::Result<Val<WindowValue>> {
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(_), ..
        }) => match value::count(arg)? {
            Val::Lit(n) => Ok(Val::Lit(WindowValue::Calls(n))),
            _ => unreachable!("a literal is a literal"),
        },
        Expr::Lit(ExprLit {
            lit: Lit::Str(_), ..
        }) => value::duration_literal(arg).map(|d| Val::Lit(WindowValue::Time(d))),
        other => Err(syn::Error::new_spanned(
            other,
            "`window` expects a number of calls (`window = 100`) or a duration string (`window = \"60s\"`)",
        )),
    }
}

pub(crate) fn parse(args: &Args, errors: &mut Errors) -> Breaker {
    let keys = BreakerKeys {
        failure_threshold: key(args, "failure_threshold", value::count, errors),
        recovery_timeout: key(args, "recovery_timeout", value::duration, errors),
        success_threshold: key(args, "success_threshold", value::count, errors),
        half_open_max_calls: key(args, "half_open_max_calls", value::count, errors),
        window: key(args, "window", window, errors),
        failure_rate: key(args, "failure_rate", value::float, errors),
        min_calls: key(args, "min_calls", value::count, errors),
        slow_call: key(args, "slow_call", value::duration, errors),
        slow_call_rate: key(args, "slow_call_rate", value::float, errors),
        recovery_timeout_max: key(args, "recovery_timeout_max", value::duration, errors),
        fleet_threshold: key(args, "fleet_threshold", value::count, errors),
    };
    report(args, &keys.values().check(), errors);
    let failure = match (args.get("failure_if"), args.get("failure_on")) {
        (Some(_), Some(on)) => {
            errors.push_at(
                &on.key,
                "use either `failure_if` (a function) or `failure_on` (patterns), not both",
            );
            FailureRule::Every
        }
        (Some(f), None) => FailureRule::If(f.value.clone()),
        (None, Some(on)) => patterns(on, errors).map_or(FailureRule::Every, FailureRule::On),
        (None, None) => FailureRule::Every,
    };

    Breaker {
        name: name(args, errors),
        keys,
        failure,
        ignore_if: args.get("ignore_if").map(|a| a.value.clone()),
        failure_if_ok: args.get("failure_if_ok").map(|a| a.value.clone()),
        on_open: args.get("on_open").map(|a| a.value.clone()),
        on_close: args.get("on_close").map(|a| a.value.clone()),
        on_half_open: args.get("on_half_open").map(|a| a.value.clone()),
    }
}

fn name(args: &Args, errors: &mut Errors) -> BreakerName {
    let Some(arg) = args.get("name") else {
        return BreakerName::Private;
    };
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            if s.value().trim().is_empty() {
                errors.push_at(
                    s,
                    "`name` must not be empty; remove it to give this function a breaker of its own",
                );
            }
            BreakerName::Static(s.clone())
        }
        Expr::Lit(other) => {
            errors.push_at(
                other,
                "`name` expects a string (`name = \"unifi\"`) or an expression giving a `&str` (`name = self.name.as_str()`)",
            );
            BreakerName::Private
        }
        expr => BreakerName::Dynamic(expr.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of every error `#[circuit_breaker(<args>)]` reports.
    fn errors_of(args: &str) -> Vec<String> {
        let mut errors = Errors::default();
        let tokens = args.parse().expect("tokens");
        let args = Args::parse(tokens, KEYS, "circuit_breaker", |_| None, &mut errors);
        parse(&args, &mut errors);
        errors.messages()
    }

    #[track_caller]
    fn assert_accepted(args: &str) {
        let errors = errors_of(args);
        assert!(errors.is_empty(), "`{args}`: {errors:?}");
    }

    #[test]
    fn a_count_window_must_hold_the_default_min_calls_of_a_rate() {
        let errors = errors_of("failure_rate = 0.5, window = 5");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("never reaches the default `min_calls` of 10"),
            "{errors:?}"
        );
        assert!(errors[0].contains("add `min_calls = 5`"), "{errors:?}");
        let errors = errors_of(r#"slow_call = "1s", slow_call_rate = 0.5, window = 4"#);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("default `min_calls`"), "{errors:?}");

        assert_accepted("failure_rate = 0.5, window = 5, min_calls = 5");
        assert_accepted("failure_rate = 0.5, window = 10");
        assert_accepted(r#"failure_rate = 0.5, window = "5s""#);
    }

    #[test]
    fn a_count_window_must_hold_the_failure_threshold() {
        let errors = errors_of("failure_threshold = 10, window = 5");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("`failure_threshold` (10) cannot exceed the window of 5 calls"),
            "{errors:?}"
        );
        let errors = errors_of("window = 3");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("default `failure_threshold` of 5"),
            "{errors:?}"
        );

        assert_accepted("failure_threshold = 5, window = 5");
        assert_accepted(r#"failure_threshold = 50, window = "5s""#);
        // Slow calls have a rule of their own: failures may never fit.
        assert_accepted(r#"slow_call = "1s", slow_call_rate = 0.5, window = 4, min_calls = 4"#);
    }
}
