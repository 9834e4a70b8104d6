//! `#[timeout]`, `#[bulkhead]` and `fallback`: the layers that bound a call
//! or stand in for it.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr};

use resilience_spec::{AdaptiveValues, BulkheadValues, RateLimitValues, TimeoutValues};

use super::{key, report};
use crate::args::{Arg, Args, Errors};
use crate::value::{self, Val};

pub(crate) const BULKHEAD_KEYS: &[&str] = &resilience_spec::keys::BULKHEAD_NAMES;
pub(crate) const RATE_LIMIT_KEYS: &[&str] = &resilience_spec::keys::RATE_LIMIT_NAMES;
pub(crate) const COALESCE_KEYS: &[&str] = &resilience_spec::keys::COALESCE_NAMES;

pub(crate) struct Coalesce {
    /// `None`: named after the function.
    pub(crate) name: Option<LitStr>,
    pub(crate) key: Expr,
}

/// `#[coalesce(key = id)]`: `key` is required.
pub(crate) fn coalesce(args: &Args, span: Span, errors: &mut Errors) -> Option<Coalesce> {
    let name = literal_name(args, "name", "coalescing", "user-profile", errors);
    match args.get("key") {
        Some(arg) => Some(Coalesce {
            name,
            key: arg.value.clone(),
        }),
        None => {
            errors.push_span(
                span,
                "`#[coalesce]` needs `key`, what makes two calls the same: `#[coalesce(key = id)]`",
            );
            None
        }
    }
}

pub(crate) struct RateLimit {
    /// `None`: named after the function.
    pub(crate) name: Option<LitStr>,
    pub(crate) rate: Option<Val<u64>>,
    pub(crate) per: Option<Val<Duration>>,
    pub(crate) burst: Option<Val<u64>>,
    pub(crate) max_wait: Option<Val<Duration>>,
    /// `fleet = true`: one limit for the fleet.
    pub(crate) fleet: Option<Val<bool>>,
}

pub(crate) struct Timeout {
    pub(crate) after: Val<Duration>,
}

pub(crate) struct Bulkhead {
    /// `None`: named after the function.
    pub(crate) name: Option<LitStr>,
    pub(crate) max_concurrent: Option<Val<u64>>,
    pub(crate) max_wait: Option<Val<Duration>>,
    /// `max_concurrent = "adaptive"`: the limit follows the latency.
    pub(crate) adaptive: Option<Box<Adaptive>>,
}

/// The keys of an adaptive bulkhead.
pub(crate) struct Adaptive {
    pub(crate) algorithm: resilience_spec::AdaptiveAlgorithm,
    pub(crate) tolerance: Option<Val<f64>>,
    pub(crate) sample_window: Option<Val<Duration>>,
    pub(crate) min_limit: Option<Val<u64>>,
    pub(crate) max_limit: Option<Val<u64>>,
    pub(crate) initial_limit: Option<Val<u64>>,
    pub(crate) latency_threshold: Option<Val<Duration>>,
}

/// The keys only an adaptive bulkhead takes.
const ADAPTIVE_KEYS: [&str; 6] = [
    "min_limit",
    "max_limit",
    "initial_limit",
    "latency_threshold",
    "tolerance",
    "sample_window",
];

/// The timeout of `arg` (`#[timeout(..)]`, or `timeout = ..` in
/// `#[resilient]`), checked by the spec.
pub(crate) fn timeout_of(arg: &Arg, errors: &mut Errors) -> Option<Timeout> {
    let after = value::duration(arg).map_err(|e| errors.push(e)).ok()?;
    let values = TimeoutValues {
        timeout: Val::spec(&Some(after.clone())),
    };
    let problems = values.check();
    for problem in problems.iter() {
        errors.push_at(&arg.value, problem.to_string());
    }
    problems.is_empty().then_some(Timeout { after })
}

/// `fallback = path`: an async fn taking the function's arguments plus the error.
pub(crate) struct Fallback {
    pub(crate) path: Expr,
}

/// `#[timeout("30s")]`: the duration alone.
pub(crate) fn timeout(span: Span, tokens: TokenStream, errors: &mut Errors) -> Option<Timeout> {
    let usage =
        "`#[timeout]` needs a duration: `#[timeout(\"30s\")]`, or `#[timeout(30)]` for seconds";
    if tokens.is_empty() {
        errors.push_span(span, usage);
        return None;
    }
    let expr: Expr = match syn::parse2(tokens.clone()) {
        Ok(e) => e,
        Err(_) => {
            errors.push_at(tokens, usage);
            return None;
        }
    };
    if let Expr::Assign(assign) = &expr {
        let right = quote::ToTokens::to_token_stream(&assign.right);
        errors.push_at(
            &assign.left,
            format!("`#[timeout]` takes the duration alone: write `#[timeout({right})]`"),
        );
        return None;
    }
    let arg = Arg {
        key: syn::Ident::new("timeout", expr.span()),
        value: expr,
    };
    timeout_of(&arg, errors)
}

/// The bulkhead keys; `name_key` is `name` for `#[bulkhead]` and `bulkhead`
/// for `#[resilient]` (whose `name` is the breaker's).
pub(crate) fn bulkhead(args: &Args, name_key: &str, errors: &mut Errors) -> Bulkhead {
    let name = literal_name(args, name_key, "bulkhead", "db", errors);
    let algorithm = args.get("max_concurrent").and_then(|a| match &a.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => resilience_spec::AdaptiveAlgorithm::parse(&s.value()),
        _ => None,
    });
    let max_wait = key(args, "max_wait", value::duration, errors);
    if let Some(algorithm) = algorithm {
        let adaptive = Adaptive {
            algorithm,
            tolerance: key(args, "tolerance", value::float, errors),
            sample_window: key(args, "sample_window", value::duration, errors),
            min_limit: key(args, "min_limit", value::count, errors),
            max_limit: key(args, "max_limit", value::count, errors),
            initial_limit: key(args, "initial_limit", value::count, errors),
            latency_threshold: key(args, "latency_threshold", value::duration, errors),
        };
        let values = AdaptiveValues {
            algorithm: resilience_spec::Value::Given(algorithm),
            tolerance: Val::spec(&adaptive.tolerance),
            sample_window: Val::spec(&adaptive.sample_window),
            min_limit: Val::spec(&adaptive.min_limit),
            max_limit: Val::spec(&adaptive.max_limit),
            initial_limit: Val::spec(&adaptive.initial_limit),
            latency_threshold: Val::spec(&adaptive.latency_threshold),
            max_wait: Val::spec(&max_wait),
        };
        report(args, &values.check(), errors);
        return Bulkhead {
            name,
            max_concurrent: None,
            max_wait,
            adaptive: Some(Box::new(adaptive)),
        };
    }
    for key in ADAPTIVE_KEYS {
        if let Some(arg) = args.get(key) {
            errors.push_at(
                &arg.key,
                format!("`{key}` is a key of an adaptive bulkhead: add `max_concurrent = \"{}\"`, or remove `{key}`", if matches!(key, "tolerance" | "sample_window") { "gradient2" } else { "adaptive" }),
            );
        }
    }
    let max_concurrent = key(args, "max_concurrent", value::count, errors);
    let values = BulkheadValues {
        max_concurrent: Val::spec(&max_concurrent),
        max_wait: Val::spec(&max_wait),
    };
    report(args, &values.check(), errors);
    Bulkhead {
        name,
        max_concurrent,
        max_wait,
        adaptive: None,
    }
}

/// The rate limiter keys of `#[rate_limit]`; `rate` is required.
pub(crate) fn rate_limit(args: &Args, span: Span, errors: &mut Errors) -> Option<RateLimit> {
    let name = literal_name(args, "name", "rate limiter", "openai", errors);
    let rate = key(args, "rate", value::count, errors);
    let per = key(args, "per", value::duration, errors);
    let burst = key(args, "burst", value::count, errors);
    let max_wait = key(args, "max_wait", value::duration, errors);
    let fleet = key(args, "fleet", value::boolean, errors);
    if rate.is_none() {
        errors.push_span(
            span,
            "`#[rate_limit]` needs `rate`, the calls allowed per `per` (default 1 s): `#[rate_limit(rate = 50)]`",
        );
    }
    let values = RateLimitValues {
        rate: Val::spec(&rate),
        per: Val::spec(&per),
        burst: Val::spec(&burst),
        max_wait: Val::spec(&max_wait),
        fleet: Val::spec(&fleet),
    };
    report(args, &values.check(), errors);
    rate.is_some().then_some(RateLimit {
        name,
        rate,
        per,
        burst,
        max_wait,
        fleet,
    })
}

/// A `name_key = "literal"` naming a shared `what`.
pub(crate) fn literal_name(
    args: &Args,
    name_key: &str,
    what: &str,
    example: &str,
    errors: &mut Errors,
) -> Option<LitStr> {
    args.get(name_key).and_then(|a| match &a.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if !s.value().trim().is_empty() => Some(s.clone()),
        other => {
            errors.push_at(
                other,
                format!("`{name_key}` expects the {what}'s name: `{name_key} = \"{example}\"`"),
            );
            None
        }
    })
}

pub(crate) fn fallback(args: &Args, errors: &mut Errors) -> Option<Fallback> {
    let arg = args.get("fallback")?;
    match &arg.value {
        path @ Expr::Path(_) => Some(Fallback { path: path.clone() }),
        other => {
            errors.push_at(
                other,
                "`fallback` expects the path of an async fn taking the same arguments plus the error (`fallback = Self::cached`)",
            );
            None
        }
    }
}
