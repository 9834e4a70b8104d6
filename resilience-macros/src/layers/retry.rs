//! `#[retry]` keys (also taken by `#[resilient]`).
//!
//! Input:  `max_attempts = 3, backoff = "exponential", retry_on = [E::Timeout]`
//! Output: `Retry { max_attempts: 3, backoff: "exponential", retry: On([E::Timeout]), .. }`

use std::time::Duration;

use syn::{Expr, ExprLit, Lit, LitStr, Pat};

use super::{count, ok, patterns};
use crate::args::{Args, Errors};
use crate::value;

pub(crate) const KEYS: &[&str] = &[
    "max_attempts",
    "backoff",
    "delay",
    "max_delay",
    "multiplier",
    "jitter",
    "max_elapsed",
    "retry_if",
    "retry_on",
    "retry_after",
    "on_retry",
    "budget",
];
const BACKOFFS: &[&str] = &["fixed", "linear", "exponential"];
const JITTERS: &[&str] = &["none", "full", "equal", "decorrelated"];

/// Which errors are retried.
pub(crate) enum RetryRule {
    Every,
    If(Expr),
    On(Vec<Pat>),
}

pub(crate) struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: &'static str,
    pub(crate) delay: Duration,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) jitter: &'static str,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) rule: RetryRule,
    pub(crate) retry_after: Option<Expr>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) budget: Option<LitStr>,
}

pub(crate) fn parse(args: &Args, errors: &mut Errors) -> Retry {
    let delay = args
        .get("delay")
        .and_then(|a| ok(value::duration(a), errors))
        .unwrap_or(Duration::from_secs(1));
    let max_delay = args
        .get("max_delay")
        .and_then(|a| ok(value::duration(a), errors).map(|d| (a, d)));
    if let Some((arg, max)) = max_delay {
        if max < delay {
            errors.push_at(
                &arg.value,
                format!("`max_delay` ({max:?}) must not be below `delay` ({delay:?})"),
            );
        }
    }
    let multiplier = args.get("multiplier").and_then(|a| {
        let m = ok(value::float(a), errors)?;
        if m < 1.0 {
            errors.push_at(
                &a.value,
                format!("`multiplier` must be at least 1.0, found {m}"),
            );
            return None;
        }
        Some(m)
    });
    let backoff = args
        .get("backoff")
        .and_then(|a| ok(value::choice(a, BACKOFFS), errors))
        .unwrap_or("exponential");
    if let (Some(arg), false) = (args.get("multiplier"), backoff == "exponential") {
        errors.push_at(
            &arg.key,
            format!("`multiplier` only applies to `backoff = \"exponential\"`, not \"{backoff}\""),
        );
    }
    let max_elapsed = args.get("max_elapsed").and_then(|a| {
        let d = super::positive_duration(a, errors)?;
        if d <= delay {
            errors.push_at(
                &a.value,
                format!("`max_elapsed` ({d:?}) must be longer than `delay` ({delay:?}), or no retry could ever run"),
            );
        }
        Some(d)
    });
    let rule = match (args.get("retry_if"), args.get("retry_on")) {
        (Some(_), Some(on)) => {
            errors.push_at(
                &on.key,
                "use either `retry_if` (a function) or `retry_on` (patterns), not both",
            );
            RetryRule::Every
        }
        (Some(f), None) => RetryRule::If(f.value.clone()),
        (None, Some(on)) => patterns(on, errors).map_or(RetryRule::Every, RetryRule::On),
        (None, None) => RetryRule::Every,
    };
    let budget = args.get("budget").and_then(|a| match &a.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if !s.value().trim().is_empty() => Some(s.clone()),
        other => {
            errors.push_at(
                other,
                "`budget` expects the name of a retry budget: `budget = \"api\"`",
            );
            None
        }
    });
    Retry {
        max_attempts: count(args, "max_attempts", 3, errors),
        backoff,
        delay,
        max_delay: max_delay.map(|(_, d)| d),
        multiplier,
        jitter: args
            .get("jitter")
            .and_then(|a| ok(value::choice(a, JITTERS), errors))
            .unwrap_or("none"),
        max_elapsed,
        rule,
        retry_after: args.get("retry_after").map(|a| a.value.clone()),
        on_retry: args.get("on_retry").map(|a| a.value.clone()),
        budget,
    }
}
