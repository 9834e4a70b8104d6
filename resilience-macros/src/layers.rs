//! What each attribute asks for, validated: the layers it puts around the body.
//!
//! Input:  `#[resilient(name = "llm", max_attempts = 3, timeout = "30s")]`
//! Output: `[Breaker { name: "llm", .. }, Retry { max_attempts: 3, .. }, Timeout { 30s }]`

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::args::{Arg, Args, Errors};
use crate::value;

/// The attributes this crate provides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    CircuitBreaker,
    Retry,
    Resilient,
    Timeout,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [
        Kind::CircuitBreaker,
        Kind::Retry,
        Kind::Resilient,
        Kind::Timeout,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Retry => "retry",
            Kind::Resilient => "resilient",
            Kind::Timeout => "timeout",
        }
    }

    /// `#[circuit_breaker]` with brackets, for messages.
    pub(crate) fn attr(self) -> String {
        format!("#[{}]", self.name())
    }
}

const BREAKER_KEYS: &[&str] = &[
    "name",
    "failure_threshold",
    "recovery_timeout",
    "success_threshold",
    "half_open_max_calls",
];
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "backoff",
    "delay",
    "max_delay",
    "multiplier",
    "jitter",
];
const BACKOFFS: &[&str] = &["fixed", "linear", "exponential"];
const JITTERS: &[&str] = &["none", "full", "equal", "decorrelated"];

/// How a breaker is found.
pub(crate) enum BreakerName {
    /// `name = "unifi"`: one shared breaker, resolved once per call site.
    Static(LitStr),
    /// `name = <expr>`: looked up per call.
    Dynamic(Expr),
    /// No `name`: a breaker of this function alone.
    Private,
}

pub(crate) struct Breaker {
    pub(crate) name: BreakerName,
    pub(crate) failure_threshold: u32,
    pub(crate) recovery_timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) half_open_max_calls: u32,
}

pub(crate) struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: &'static str,
    pub(crate) delay: Duration,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) jitter: &'static str,
}

pub(crate) struct Timeout {
    pub(crate) after: Duration,
}

pub(crate) enum Layer {
    Breaker(Breaker),
    Retry(Retry),
    Timeout(Timeout),
}

impl Layer {
    fn what(&self) -> &'static str {
        match self {
            Layer::Breaker(_) => "circuit breaker",
            Layer::Retry(_) => "retry",
            Layer::Timeout(_) => "timeout",
        }
    }
}

/// One attribute's layers, outermost first, with the span of the attribute.
pub(crate) struct Attr {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
    pub(crate) layers: Vec<Layer>,
}

/// Parses and validates the arguments of one attribute. Problems go to
/// `errors`; the layers are built from whatever was valid (defaults elsewhere).
pub(crate) fn parse(kind: Kind, span: Span, tokens: TokenStream, errors: &mut Errors) -> Attr {
    let layers = match kind {
        Kind::CircuitBreaker => {
            let elsewhere = |arg: &Arg| belongs_elsewhere(kind, arg);
            let args = Args::parse(tokens, BREAKER_KEYS, kind.name(), elsewhere, errors);
            vec![Layer::Breaker(breaker(&args, errors))]
        }
        Kind::Retry => {
            let elsewhere = |arg: &Arg| belongs_elsewhere(kind, arg);
            let args = Args::parse(tokens, RETRY_KEYS, kind.name(), elsewhere, errors);
            vec![Layer::Retry(retry(&args, errors))]
        }
        Kind::Resilient => {
            let keys: Vec<&str> = BREAKER_KEYS
                .iter()
                .chain(RETRY_KEYS)
                .chain(&["timeout"])
                .copied()
                .collect();
            let args = Args::parse(tokens, &keys, kind.name(), |_| None, errors);
            let mut layers = vec![
                Layer::Breaker(breaker(&args, errors)),
                Layer::Retry(retry(&args, errors)),
            ];
            if let Some(arg) = args.get("timeout") {
                if let Some(after) = positive_duration(arg, errors) {
                    layers.push(Layer::Timeout(Timeout { after }));
                }
            }
            layers
        }
        Kind::Timeout => timeout(span, tokens, errors).into_iter().collect(),
    };
    Attr { kind, span, layers }
}

/// For a key of another attribute (`max_attempts` on `#[circuit_breaker]`),
/// where it belongs.
fn belongs_elsewhere(kind: Kind, arg: &Arg) -> Option<String> {
    let key = arg.key.to_string();
    let attr = kind.attr();
    let value = match &arg.value {
        Expr::Lit(lit) => quote::ToTokens::to_token_stream(lit).to_string(),
        _ => "..".to_owned(),
    };
    if key == "timeout" {
        return Some(format!(
            "`timeout` is not a key of `{attr}`; add `#[timeout({value})]`, or use `#[resilient]`, which takes every key"
        ));
    }
    let owner = if BREAKER_KEYS.contains(&key.as_str()) {
        Kind::CircuitBreaker
    } else if RETRY_KEYS.contains(&key.as_str()) {
        Kind::Retry
    } else {
        return None;
    };
    Some(format!(
        "`{key}` is a key of `{}`, not `{attr}`; add `#[{}({key} = {value})]`, or use `#[resilient]`, which takes every key",
        owner.attr(),
        owner.name()
    ))
}

fn breaker(args: &Args, errors: &mut Errors) -> Breaker {
    let name = match args.get("name") {
        None => BreakerName::Private,
        Some(arg) => match &arg.value {
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
        },
    };
    Breaker {
        name,
        failure_threshold: count(args, "failure_threshold", 5, errors),
        recovery_timeout: args
            .get("recovery_timeout")
            .and_then(|a| positive_duration(a, errors))
            .unwrap_or(Duration::from_secs(60)),
        success_threshold: count(args, "success_threshold", 1, errors),
        half_open_max_calls: count(args, "half_open_max_calls", 1, errors),
    }
}

fn retry(args: &Args, errors: &mut Errors) -> Retry {
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
    }
}

fn timeout(span: Span, tokens: TokenStream, errors: &mut Errors) -> Option<Layer> {
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
    let arg = crate::args::Arg {
        key: syn::Ident::new("timeout", expr.span()),
        value: expr,
    };
    positive_duration(&arg, errors).map(|after| Layer::Timeout(Timeout { after }))
}

fn count(args: &Args, key: &str, default: u32, errors: &mut Errors) -> u32 {
    args.get(key)
        .and_then(|a| ok(value::count(a), errors))
        .unwrap_or(default)
}

fn positive_duration(arg: &crate::args::Arg, errors: &mut Errors) -> Option<Duration> {
    let d = ok(value::duration(arg), errors)?;
    if d.is_zero() {
        errors.push_at(&arg.value, format!("`{}` must be positive", arg.key));
        return None;
    }
    Some(d)
}

fn ok<T>(r: syn::Result<T>, errors: &mut Errors) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// Checks the stack of attributes as a whole: one layer of each kind. Each
/// attribute that repeats a layer gets one error, under its name.
pub(crate) fn check_stack(attrs: &[Attr], errors: &mut Errors) {
    for (i, attr) in attrs.iter().enumerate() {
        let conflicts: Vec<String> = attr
            .layers
            .iter()
            .filter_map(|layer| {
                let earlier = attrs[..i]
                    .iter()
                    .find(|a| a.layers.iter().any(|l| l.what() == layer.what()))?;
                Some(format!("a {} from `{}`", layer.what(), earlier.kind.attr()))
            })
            .collect();
        if !conflicts.is_empty() {
            errors.push_span(
                attr.span,
                format!(
                    "this function already has {}; remove one of them",
                    conflicts.join(" and ")
                ),
            );
        }
    }
}
