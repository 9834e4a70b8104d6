//! What each attribute asks for, validated: the layers it puts around the body.
//!
//! Input:  `#[resilient(name = "llm", max_attempts = 3, timeout = "30s")]`
//! Output: `[Breaker { name: "llm", .. }, Retry { max_attempts: 3, .. }, Timeout { 30s }]`

use proc_macro2::{Span, TokenStream};
use syn::Expr;

use crate::args::{Arg, Args, Errors};
use crate::value::Val;

/// The attributes this crate provides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    CircuitBreaker,
    Retry,
    Resilient,
    Timeout,
    Bulkhead,
    RateLimit,
    Coalesce,
    Hedge,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::CircuitBreaker,
        Kind::Retry,
        Kind::Resilient,
        Kind::Timeout,
        Kind::Bulkhead,
        Kind::RateLimit,
        Kind::Coalesce,
        Kind::Hedge,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Retry => "retry",
            Kind::Resilient => "resilient",
            Kind::Timeout => "timeout",
            Kind::Bulkhead => "bulkhead",
            Kind::RateLimit => "rate_limit",
            Kind::Coalesce => "coalesce",
            Kind::Hedge => "hedge",
        }
    }

    /// `#[circuit_breaker]` with brackets, for messages.
    pub(crate) fn attr(self) -> String {
        format!("#[{}]", self.name())
    }
}

pub(crate) mod breaker;
pub(crate) mod guard;
pub(crate) mod hedge;
pub(crate) mod retry;

pub(crate) use breaker::{Breaker, BreakerName, FailureRule};
pub(crate) use guard::{Bulkhead, Coalesce, Fallback, RateLimit, Timeout};
pub(crate) use retry::{Retry, RetryRule};

pub(crate) enum Layer {
    Fallback(Fallback),
    Breaker(Box<Breaker>),
    Retry(Box<Retry>),
    Bulkhead(Bulkhead),
    RateLimit(Box<RateLimit>),
    Coalesce(Coalesce),
    Hedge(Box<hedge::Hedge>),
    Timeout(Timeout),
}

impl Layer {
    pub(crate) fn what(&self) -> &'static str {
        match self {
            Layer::Fallback(_) => "fallback",
            Layer::Breaker(_) => "circuit breaker",
            Layer::Retry(_) => "retry",
            Layer::Bulkhead(_) => "bulkhead",
            Layer::RateLimit(_) => "rate limiter",
            Layer::Coalesce(_) => "coalescing",
            Layer::Hedge(_) => "hedge",
            Layer::Timeout(_) => "timeout",
        }
    }
}

/// One attribute's layers, outermost first, with the span of the attribute
/// and the keys written in it (for the manifest).
pub(crate) struct Attr {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
    pub(crate) layers: Vec<Layer>,
    /// `(key, value's source text)`, in the order written.
    pub(crate) keys: Vec<(String, String)>,
}

impl Attr {
    /// The keys of this attribute that configure `layer`: a `#[resilient]`'s
    /// keys are split among its layers, `fallback` goes to the fallback.
    pub(crate) fn keys_of(&self, layer: &Layer) -> Vec<(String, String)> {
        self.keys
            .iter()
            .filter(|(key, _)| key_layer(self.kind, key) == layer.what())
            .cloned()
            .collect()
    }
}

/// Which layer of a `kind` attribute `key` configures (as [`Layer::what`]).
fn key_layer(kind: Kind, key: &str) -> &'static str {
    if key == "fallback" {
        return "fallback";
    }
    match kind {
        Kind::CircuitBreaker => "circuit breaker",
        Kind::Retry => "retry",
        Kind::Bulkhead => "bulkhead",
        Kind::RateLimit => "rate limiter",
        Kind::Coalesce => "coalescing",
        Kind::Hedge => "hedge",
        Kind::Timeout => "timeout",
        Kind::Resilient => {
            if breaker::KEYS.contains(&key) {
                "circuit breaker"
            } else if retry::KEYS.contains(&key) {
                "retry"
            } else if key == "timeout" {
                "timeout"
            } else {
                "bulkhead"
            }
        }
    }
}

/// The keys written in `args`, each with its value's source text.
fn written(args: &Args) -> Vec<(String, String)> {
    args.args
        .iter()
        .map(|a| {
            let value = quote::ToTokens::to_token_stream(&a.value);
            (a.key.to_string(), crate::source::text(value))
        })
        .collect()
}

/// Parses and validates the arguments of one attribute. Problems go to
/// `errors`; the layers are built from whatever was valid (defaults elsewhere).
///
/// `#[resilient]` composes fallback -> circuit breaker -> retry -> bulkhead
/// -> timeout -> body; the bulkhead only when `max_concurrent` is given, the
/// timeout only when `timeout` is.
pub(crate) fn parse(kind: Kind, span: Span, tokens: TokenStream, errors: &mut Errors) -> Attr {
    let elsewhere = |arg: &Arg| belongs_elsewhere(kind, arg);
    let with_fallback = |keys: &[&'static str]| -> Vec<&'static str> {
        keys.iter().copied().chain(["fallback"]).collect()
    };
    let mut layers = Vec::new();
    let mut keys = Vec::new();
    match kind {
        Kind::CircuitBreaker => {
            let args = Args::parse(
                tokens,
                &with_fallback(breaker::KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.push(Layer::Breaker(Box::new(breaker::parse(&args, errors))));
        }
        Kind::Retry => {
            let args = Args::parse(
                tokens,
                &with_fallback(retry::KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.push(Layer::Retry(Box::new(retry::parse(&args, errors))));
        }
        Kind::Bulkhead => {
            let args = Args::parse(
                tokens,
                &with_fallback(guard::BULKHEAD_KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.push(Layer::Bulkhead(guard::bulkhead(&args, "name", errors)));
        }
        Kind::Resilient => {
            let allowed: Vec<&str> = breaker::KEYS
                .iter()
                .chain(retry::KEYS)
                .chain(&resilience_spec::keys::RESILIENT_NAMES)
                .chain(&["fallback"])
                .copied()
                .collect();
            let args = Args::parse(tokens, &allowed, kind.name(), |_| None, errors);
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.push(Layer::Breaker(Box::new(breaker::parse(&args, errors))));
            layers.push(Layer::Retry(Box::new(retry::parse(&args, errors))));
            if args.get("max_concurrent").is_some() {
                layers.push(Layer::Bulkhead(guard::bulkhead(&args, "bulkhead", errors)));
            } else if let Some(arg) = args.get("bulkhead").or(args.get("max_wait")) {
                errors.push_at(
                    &arg.key,
                    format!(
                        "`{}` needs `max_concurrent`, the bulkhead's limit: add `max_concurrent = 10`",
                        arg.key
                    ),
                );
            }
            if let Some(arg) = args.get("timeout") {
                if let Some(timeout) = guard::timeout_of(arg, errors) {
                    layers.push(Layer::Timeout(timeout));
                }
            }
        }
        Kind::RateLimit => {
            let args = Args::parse(
                tokens,
                &with_fallback(guard::RATE_LIMIT_KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.extend(
                guard::rate_limit(&args, span, errors).map(|r| Layer::RateLimit(Box::new(r))),
            );
        }
        Kind::Coalesce => {
            let args = Args::parse(
                tokens,
                &with_fallback(guard::COALESCE_KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.extend(guard::coalesce(&args, span, errors).map(Layer::Coalesce));
        }
        Kind::Hedge => {
            let args = Args::parse(
                tokens,
                &with_fallback(hedge::HEDGE_KEYS),
                kind.name(),
                elsewhere,
                errors,
            );
            keys = written(&args);
            layers.extend(guard::fallback(&args, errors).map(Layer::Fallback));
            layers.push(Layer::Hedge(Box::new(hedge::parse(&args, errors))));
        }
        Kind::Timeout => {
            if !tokens.is_empty() {
                keys.push(("timeout".to_owned(), crate::source::text(tokens.clone())));
            }
            layers.extend(guard::timeout(span, tokens, errors).map(Layer::Timeout));
        }
    }
    Attr {
        kind,
        span,
        layers,
        keys,
    }
}

/// Every key any attribute takes (for the property tests).
#[cfg(test)]
pub(crate) fn all_keys() -> Vec<&'static str> {
    breaker::KEYS
        .iter()
        .chain(retry::KEYS)
        .chain(guard::BULKHEAD_KEYS)
        .chain(guard::RATE_LIMIT_KEYS)
        .chain(guard::COALESCE_KEYS)
        .chain(hedge::HEDGE_KEYS)
        .chain(&["timeout", "bulkhead", "fallback"])
        .copied()
        .collect()
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
    let owner = [
        (Kind::CircuitBreaker, breaker::KEYS),
        (Kind::Retry, retry::KEYS),
        (Kind::Bulkhead, guard::BULKHEAD_KEYS),
        (Kind::RateLimit, guard::RATE_LIMIT_KEYS),
        (Kind::Coalesce, guard::COALESCE_KEYS),
        (Kind::Hedge, hedge::HEDGE_KEYS),
    ]
    .into_iter()
    .find(|(_, keys)| keys.contains(&key.as_str()))?
    .0;
    Some(format!(
        "`{key}` is a key of `{}`, not `{attr}`; add `#[{}({key} = {value})]`, or use `#[resilient]`, which takes every key",
        owner.attr(),
        owner.name()
    ))
}

/// `[ApiError::Timeout, ApiError::Unavailable(..)]`: patterns the compiler
/// checks. An element that is not a pattern gets its own error, under it.
fn patterns(arg: &Arg, errors: &mut Errors) -> Option<Vec<syn::Pat>> {
    let key = arg.key.to_string();
    let usage = format!(
        "`{key}` expects a list of error patterns: `{key} = [ApiError::Timeout, ApiError::Unavailable(..)]`"
    );
    // `args` keeps a bracketed list as raw tokens (patterns with `@`, `ref`
    // or ranges are not expressions); split it on its top-level commas.
    let elems: Vec<TokenStream> = match &arg.value {
        Expr::Verbatim(tokens) => match tokens.clone().into_iter().next() {
            Some(proc_macro2::TokenTree::Group(g))
                if g.delimiter() == proc_macro2::Delimiter::Bracket =>
            {
                let mut elems = vec![TokenStream::new()];
                for tree in g.stream() {
                    match &tree {
                        proc_macro2::TokenTree::Punct(p) if p.as_char() == ',' => {
                            elems.push(TokenStream::new());
                        }
                        _ => elems.last_mut().expect("one element").extend([tree]),
                    }
                }
                elems.retain(|e| !e.is_empty());
                elems
            }
            _ => Vec::new(),
        },
        Expr::Array(list) => list
            .elems
            .iter()
            .map(quote::ToTokens::to_token_stream)
            .collect(),
        _ => Vec::new(),
    };
    if elems.is_empty() {
        errors.push_at(&arg.value, usage);
        return None;
    }
    let condition = key.replace("_on", "_if");
    let mut pats = Vec::new();
    for elem in &elems {
        match syn::parse::Parser::parse2(syn::Pat::parse_multi, elem.clone()) {
            Ok(pat) => pats.push(pat),
            Err(_) => errors.push_at(
                elem,
                format!("expected an error pattern such as `ApiError::Timeout` or `ApiError::Unavailable(..)`; to test a condition, use `{condition} = |e| ..` instead of `{key}`"),
            ),
        }
    }
    (pats.len() == elems.len()).then_some(pats)
}

/// Key `name`'s value, read by `parse`. A value that is not one is
/// reported, and the key still counts as written (rules about its presence
/// apply) with a value the spec cannot see.
fn key<T>(
    args: &Args,
    name: &str,
    parse: impl Fn(&Arg) -> syn::Result<Val<T>>,
    errors: &mut Errors,
) -> Option<Val<T>> {
    let arg = args.get(name)?;
    Some(parse(arg).unwrap_or_else(|e| {
        errors.push(e);
        Val::Invalid
    }))
}

/// Reports the spec's problems, each on its key's tokens: on the key when
/// the problem is the key's presence, else on its value.
fn report(args: &Args, problems: &resilience_spec::Problems, errors: &mut Errors) {
    for problem in problems.iter() {
        let message = problem.to_string();
        match (args.get(problem.key()), problem.place()) {
            (Some(arg), resilience_spec::Place::Key) => errors.push_at(&arg.key, message),
            (Some(arg), resilience_spec::Place::Value) => errors.push_at(&arg.value, message),
            (None, _) => errors.push_span(Span::call_site(), message),
        }
    }
}

/// A synchronous function runs on the caller's thread, where nothing can
/// cancel it: a timeout (or a retry's `max_elapsed`, which cuts an attempt
/// at its deadline) cannot be honoured, so it is an error that says why.
pub(crate) fn check_sync(attrs: &[Attr], errors: &mut Errors) {
    for attr in attrs {
        for layer in &attr.layers {
            let what = match layer {
                Layer::Timeout(_) if attr.kind == Kind::Timeout => "`#[timeout]`",
                Layer::Timeout(_) => "`timeout`",
                Layer::Retry(r) if r.keys.max_elapsed.is_some() => "`max_elapsed`",
                Layer::Coalesce(_) => {
                    errors.push_span(
                        attr.span,
                        "`#[coalesce]` needs an `async fn` (or one returning a future): callers of a key wait for the one that runs, and a blocking thread cannot wait for another's result without holding its own",
                    );
                    continue;
                }
                _ => continue,
            };
            errors.push_span(
                attr.span,
                format!(
                    "{what} cannot bound a synchronous function: nothing can cancel blocking code once it runs; make the function `async` (or return a future), or give the blocking client its own timeout"
                ),
            );
        }
    }
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
