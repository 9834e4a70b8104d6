//! `#[circuit_breaker]` keys (also taken by `#[resilient]`).
//!
//! Input:  `name = "unifi", failure_rate = 0.5, window = 100, on_open = alert`
//! Output: `Breaker { name: Static("unifi"), failure_rate: Some(0.5), .. }`

use std::time::Duration;

use syn::{Expr, ExprLit, Lit, LitStr, Pat};

use super::{count, ok, patterns, positive_duration, rate};
use crate::args::{Arg, Args, Errors};
use crate::value;

pub(crate) const KEYS: &[&str] = &[
    "name",
    "failure_threshold",
    "recovery_timeout",
    "success_threshold",
    "half_open_max_calls",
    "window",
    "failure_rate",
    "min_calls",
    "slow_call",
    "slow_call_rate",
    "recovery_timeout_max",
    "fleet_threshold",
    "failure_if",
    "ignore_if",
    "failure_on",
    "on_open",
    "on_close",
    "on_half_open",
];

/// The largest count window: one byte per call, allocated once per breaker.
const MAX_COUNT_WINDOW: u32 = 1_000_000;
/// `BreakerConfig::DEFAULT`'s values of the keys checked against a count window.
const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
const DEFAULT_MIN_CALLS: u32 = 10;

/// How a breaker is found.
pub(crate) enum BreakerName {
    /// `name = "unifi"`: one shared breaker, resolved once per call site.
    Static(LitStr),
    /// `name = <expr>`: looked up per call.
    Dynamic(Expr),
    /// No `name`: a breaker of this function alone.
    Private,
}

pub(crate) enum WindowArg {
    Calls(u32),
    Time(Duration),
}

/// Which errors count as failures.
pub(crate) enum FailureRule {
    Every,
    If(Expr),
    On(Vec<Pat>),
}

pub(crate) struct Breaker {
    pub(crate) name: BreakerName,
    pub(crate) failure_threshold: u32,
    pub(crate) recovery_timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) half_open_max_calls: u32,
    pub(crate) window: Option<WindowArg>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) min_calls: u32,
    pub(crate) slow_call: Option<Duration>,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) recovery_timeout_max: Option<Duration>,
    pub(crate) fleet_threshold: Option<u32>,
    pub(crate) failure: FailureRule,
    pub(crate) ignore_if: Option<Expr>,
    pub(crate) on_open: Option<Expr>,
    pub(crate) on_close: Option<Expr>,
    pub(crate) on_half_open: Option<Expr>,
}

impl Breaker {
    pub(crate) fn has_callbacks(&self) -> bool {
        self.on_open.is_some() || self.on_close.is_some() || self.on_half_open.is_some()
    }
}

pub(crate) fn parse(args: &Args, errors: &mut Errors) -> Breaker {
    let recovery_timeout = args
        .get("recovery_timeout")
        .and_then(|a| positive_duration(a, errors))
        .unwrap_or(Duration::from_secs(60));
    let window = args.get("window").and_then(|arg| match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(_), ..
        }) => {
            let n = ok(value::count(arg), errors)?;
            if n > MAX_COUNT_WINDOW {
                errors.push_at(
                    &arg.value,
                    format!("`window` of {n} calls is too large: at most {MAX_COUNT_WINDOW}, or use a time window such as `window = \"60s\"`"),
                );
                return None;
            }
            Some(WindowArg::Calls(n))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(_), ..
        }) => positive_duration(arg, errors).map(WindowArg::Time),
        other => {
            errors.push_at(
                other,
                "`window` expects a number of calls (`window = 100`) or a duration string (`window = \"60s\"`)",
            );
            None
        }
    });
    let failure_rate = args.get("failure_rate").and_then(|a| rate(a, errors));
    let slow_call = args
        .get("slow_call")
        .and_then(|a| positive_duration(a, errors));
    let slow_call_rate = args.get("slow_call_rate").and_then(|a| rate(a, errors));
    let min_calls = count(args, "min_calls", DEFAULT_MIN_CALLS, errors);
    let failure_threshold = count(args, "failure_threshold", DEFAULT_FAILURE_THRESHOLD, errors);
    let recovery_timeout_max = args
        .get("recovery_timeout_max")
        .and_then(|a| positive_duration(a, errors).map(|d| (a, d)));

    // Cross-key checks.
    let window_hint =
        "add `window = 100` (the last 100 calls) or `window = \"60s\"` (the last minute)";
    for key in ["failure_rate", "slow_call_rate"] {
        if let (Some(arg), None) = (args.get(key), args.get("window")) {
            errors.push_at(
                &arg.key,
                format!("`{key}` needs a window to measure a rate in: {window_hint}"),
            );
        }
    }
    if let (Some(arg), None) = (args.get("slow_call_rate"), args.get("slow_call")) {
        errors.push_at(
            &arg.key,
            "`slow_call_rate` needs `slow_call`, the duration that makes a call slow (`slow_call = \"2s\"`)",
        );
    }
    if let Some(arg) = args.get("min_calls") {
        if failure_rate.is_none()
            && slow_call_rate.is_none()
            && args.get("failure_rate").is_none()
            && args.get("slow_call_rate").is_none()
        {
            errors.push_at(
                &arg.key,
                "`min_calls` only applies to `failure_rate` or `slow_call_rate`",
            );
        }
        if let Some(WindowArg::Calls(n)) = window {
            if min_calls > n {
                errors.push_at(
                    &arg.value,
                    format!("`min_calls` ({min_calls}) cannot exceed the window of {n} calls: the rate could never be measured"),
                );
            }
        }
    }
    if let (Some(WindowArg::Calls(n)), Some(window_arg)) = (&window, args.get("window")) {
        check_count_window(*n, window_arg, args, failure_threshold, min_calls, errors);
    }
    if let (Some(rate_arg), Some(threshold)) =
        (args.get("failure_rate"), args.get("failure_threshold"))
    {
        errors.push_at(
            &threshold.key,
            format!(
                "`failure_threshold` and `failure_rate` are two trip rules; keep one (`failure_rate = {}` trips on the share of failed calls)",
                quote::ToTokens::to_token_stream(&rate_arg.value)
            ),
        );
    }
    if let Some((arg, max)) = recovery_timeout_max {
        if max < recovery_timeout {
            errors.push_at(
                &arg.value,
                format!("`recovery_timeout_max` ({max:?}) must not be below `recovery_timeout` ({recovery_timeout:?})"),
            );
        }
    }
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
        failure_threshold,
        recovery_timeout,
        success_threshold: count(args, "success_threshold", 1, errors),
        half_open_max_calls: count(args, "half_open_max_calls", 1, errors),
        window,
        failure_rate,
        min_calls,
        slow_call,
        slow_call_rate,
        recovery_timeout_max: recovery_timeout_max.map(|(_, d)| d),
        fleet_threshold: args
            .get("fleet_threshold")
            .and_then(|a| ok(value::count(a), errors)),
        failure,
        ignore_if: args.get("ignore_if").map(|a| a.value.clone()),
        on_open: args.get("on_open").map(|a| a.value.clone()),
        on_close: args.get("on_close").map(|a| a.value.clone()),
        on_half_open: args.get("on_half_open").map(|a| a.value.clone()),
    }
}

/// A window of `n` calls must be able to hold what the trip rules count: the
/// `min_calls` of a rate, and the failures of `failure_threshold` (the rule
/// without a `failure_rate`). An explicit `min_calls` that does not fit is
/// reported by the cross-key checks, an explicit `failure_threshold` here;
/// defaults that do not fit are reported under the window. The default
/// threshold is only an error when no rate could open the circuit either, so
/// `slow_call_rate` over a small window stays a rule of its own.
fn check_count_window(
    n: u32,
    window: &Arg,
    args: &Args,
    failure_threshold: u32,
    min_calls: u32,
    errors: &mut Errors,
) {
    let has_rate = args.get("failure_rate").is_some() || args.get("slow_call_rate").is_some();
    if has_rate && args.get("min_calls").is_none() && min_calls > n {
        errors.push_at(
            &window.value,
            format!("a window of {n} calls never reaches the default `min_calls` of {min_calls}, so the rate could never be measured: add `min_calls = {n}` (or fewer), or widen the window"),
        );
    }
    if args.get("failure_rate").is_some() || failure_threshold <= n {
        return;
    }
    match args.get("failure_threshold") {
        Some(arg) => errors.push_at(
            &arg.value,
            format!("`failure_threshold` ({failure_threshold}) cannot exceed the window of {n} calls: that many failures never fit in it"),
        ),
        None if !has_rate => errors.push_at(
            &window.value,
            format!("a window of {n} calls never holds the default `failure_threshold` of {failure_threshold} failures, so the circuit could never open: add `failure_threshold = {n}` (or fewer), or widen the window"),
        ),
        None => {}
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
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
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
