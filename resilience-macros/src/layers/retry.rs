//! `#[retry]` keys (also taken by `#[resilient]`).
//!
//! Input:  `max_attempts = 3, backoff = "exponential", retry_on = [E::Timeout]`
//! Output: `Retry { keys: { max_attempts: 3, backoff: Exponential, .. }, rule: On([E::Timeout]), .. }`,
//! every rule between the keys checked by the spec (`RetryValues::check`).

use std::time::Duration;

use resilience_spec::{BackoffKind, Jitter, RetryValues};
use syn::{Expr, ExprLit, Lit, LitStr, Pat};

use super::{key, patterns, report};
use crate::args::{Arg, Args, Errors};
use crate::value::{self, Val};

pub(crate) const KEYS: &[&str] = &resilience_spec::keys::RETRY_NAMES;

/// Which errors are retried.
pub(crate) enum RetryRule {
    Every,
    If(Expr),
    On(Vec<Pat>),
}

/// The keys of the schedule, as written: what the spec checks and the
/// expansion turns into a `RetryPolicy`.
#[derive(Default)]
pub(crate) struct RetryKeys {
    pub(crate) max_attempts: Option<Val<u64>>,
    pub(crate) backoff: Option<Val<BackoffKind>>,
    pub(crate) delay: Option<Val<Duration>>,
    pub(crate) max_delay: Option<Val<Duration>>,
    pub(crate) multiplier: Option<Val<f64>>,
    pub(crate) jitter: Option<Val<Jitter>>,
    pub(crate) max_elapsed: Option<Val<Duration>>,
}

impl RetryKeys {
    /// What the spec sees now (constants are still unknown).
    pub(crate) fn values(&self) -> RetryValues {
        RetryValues {
            max_attempts: Val::spec(&self.max_attempts),
            backoff: Val::spec(&self.backoff),
            delay: Val::spec(&self.delay),
            max_delay: Val::spec(&self.max_delay),
            multiplier: Val::spec(&self.multiplier),
            jitter: Val::spec(&self.jitter),
            max_elapsed: Val::spec(&self.max_elapsed),
        }
    }
}

pub(crate) struct Retry {
    pub(crate) keys: RetryKeys,
    pub(crate) rule: RetryRule,
    /// `Ok` values that are retried.
    pub(crate) retry_if_ok: Option<Expr>,
    pub(crate) retry_after: Option<Expr>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) budget: Option<LitStr>,
}

fn backoff(arg: &Arg) -> syn::Result<Val<BackoffKind>> {
    value::choice(arg, &BackoffKind::ALL.map(BackoffKind::as_str)).map(Val::Lit)
}

fn jitter(arg: &Arg) -> syn::Result<Val<Jitter>> {
    value::choice(arg, &Jitter::ALL.map(Jitter::as_str)).map(Val::Lit)
}

pub(crate) fn parse(args: &Args, errors: &mut Errors) -> Retry {
    let keys = RetryKeys {
        max_attempts: key(args, "max_attempts", value::count, errors),
        backoff: key(args, "backoff", backoff, errors),
        delay: key(args, "delay", value::duration, errors),
        max_delay: key(args, "max_delay", value::duration, errors),
        multiplier: key(args, "multiplier", value::float, errors),
        jitter: key(args, "jitter", jitter, errors),
        max_elapsed: key(args, "max_elapsed", value::duration, errors),
    };
    report(args, &keys.values().check(), errors);
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
        keys,
        rule,
        retry_if_ok: args.get("retry_if_ok").map(|a| a.value.clone()),
        retry_after: args.get("retry_after").map(|a| a.value.clone()),
        on_retry: args.get("on_retry").map(|a| a.value.clone()),
        budget,
    }
}
