//! Turning argument values into counts, durations and choices, with errors
//! that say what would be right.

use std::time::Duration;

use quote::ToTokens;
use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

use resilience_spec::Value;

use crate::args::Arg;

/// What a value is, for messages ("found a string").
fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(_) => "a string",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Bool(_) => "a bool",
            _ => "a literal",
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => "a negative number",
        Expr::Array(_) => "an array",
        Expr::Path(_) => "a path",
        _ => "an expression",
    }
}

/// The value as written, for messages: `-3`, not `- 3`.
fn text(expr: &Expr) -> String {
    expr.to_token_stream().to_string().replace("- ", "-")
}

/// The number under a minus sign: `3` in `-3`.
fn negated_literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit { lit, .. }) => Some(lit),
            _ => None,
        },
        _ => None,
    }
}

/// A key's value: a literal read here, or an expression (a constant, a const
/// expression) the compiler evaluates, checked by the same spec through
/// const evaluation.
#[derive(Clone)]
pub(crate) enum Val<T> {
    Lit(T),
    Const(Expr),
    /// Written, but not a value (the error is reported): rules about the
    /// key's presence still apply.
    Invalid,
}

impl<T: Copy> Val<T> {
    /// What the spec sees at expansion time.
    pub(crate) fn spec(v: &Option<Val<T>>) -> Value<T> {
        match v {
            None => Value::Absent,
            Some(Val::Lit(t)) => Value::Given(*t),
            Some(Val::Const(_) | Val::Invalid) => Value::Unknown,
        }
    }
}

/// Whether `expr` is something the compiler could evaluate as a constant of
/// the key's type: a path (`ATTEMPTS`, `config::OPEN`), a call
/// (`Duration::from_millis(250)`), arithmetic, a block, a cast.
fn constant(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Path(_)
            | Expr::Call(_)
            | Expr::MethodCall(_)
            | Expr::Binary(_)
            | Expr::Paren(_)
            | Expr::Block(_)
            | Expr::Cast(_)
            | Expr::Field(_)
            | Expr::Index(_)
            | Expr::Macro(_)
            | Expr::Group(_)
    )
}

/// A count that must be at least 1: `failure_threshold = 5` (the range is
/// the spec's to check), or a constant of type `u32`.
pub(crate) fn count(arg: &Arg) -> syn::Result<Val<u64>> {
    if constant(&arg.value) {
        return Ok(Val::Const(arg.value.clone()));
    }
    count_literal(arg).map(Val::Lit)
}

fn count_literal(arg: &Arg) -> syn::Result<u64> {
    let key = &arg.key;
    let value = &arg.value;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().map_err(|_| {
            syn::Error::new(
                int.span(),
                format!("`{key}` is too large: at most {}", u32::MAX),
            )
        }),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` must be at least 1, found `{}`", text(value)),
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value().trim().parse::<u32>().is_ok() => Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` expects an integer, found a string: write `{key} = {}` without quotes",
                s.value().trim()
            ),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a whole number of at least 1, found {} `{}`",
                describe(other),
                text(other)
            ),
        )),
    }
}

/// A switch: `fleet = true`, or a constant of type `bool`.
pub(crate) fn boolean(arg: &Arg) -> syn::Result<Val<bool>> {
    if constant(&arg.value) {
        return Ok(Val::Const(arg.value.clone()));
    }
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(Val::Lit(b.value)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if matches!(s.value().trim(), "true" | "false") => Err(syn::Error::new(
            s.span(),
            format!(
                "`{}` expects `true` or `false`, found a string: write `{} = {}` without quotes",
                arg.key,
                arg.key,
                s.value().trim()
            ),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{}` expects `true` or `false`, found {}",
                arg.key,
                describe(other)
            ),
        )),
    }
}

/// A number: `multiplier = 1.5` (its range is the spec's to check), or a
/// constant of type `f64`.
pub(crate) fn float(arg: &Arg) -> syn::Result<Val<f64>> {
    if constant(&arg.value) {
        return Ok(Val::Const(arg.value.clone()));
    }
    float_literal(arg).map(Val::Lit)
}

fn float_literal(arg: &Arg) -> syn::Result<f64> {
    let key = &arg.key;
    let number = |lit: &Lit| match lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    let value = match &arg.value {
        Expr::Lit(ExprLit { lit, .. }) if number(lit).is_some() => number(lit),
        expr => negated_literal(expr).and_then(number).map(|n| -n),
    };
    let value = match value {
        Some(v) => v,
        None => {
            let msg = match &arg.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) if s.value().trim().parse::<f64>().is_ok() => format!(
                    "`{key}` expects a number, found a string: write `{key} = {}` without quotes",
                    s.value().trim()
                ),
                other => format!("`{key}` expects a number, found {}", describe(other)),
            };
            return Err(syn::Error::new_spanned(&arg.value, msg));
        }
    };
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(
            &arg.value,
            format!("`{key}` must be finite"),
        ));
    }
    Ok(value)
}

/// A duration: `60` or `1.5` (seconds), a string in the spec's grammar
/// (`"250ms"`, `"1m30s"`, `"1 minute"`), or a constant of type `Duration`
/// (`Duration::from_millis(250)`, `config::OPEN`).
pub(crate) fn duration(arg: &Arg) -> syn::Result<Val<Duration>> {
    if constant(&arg.value) {
        return Ok(Val::Const(arg.value.clone()));
    }
    duration_literal(arg).map(Val::Lit)
}

/// A duration written as a literal.
pub(crate) fn duration_literal(arg: &Arg) -> syn::Result<Duration> {
    let key = &arg.key;
    let value = &arg.value;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let secs: u64 = int
                .base10_parse()
                .map_err(|_| syn::Error::new(int.span(), format!("`{key}` is too large")))?;
            Ok(Duration::from_secs(secs))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => {
            let secs: f64 = f.base10_parse()?;
            Duration::try_from_secs_f64(secs)
                .map_err(|_| syn::Error::new(f.span(), format!("`{key}` is too large")))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => resilience_spec::duration::parse(&s.value())
            .map_err(|why| syn::Error::new(s.span(), why)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` must not be negative, found `{}`", text(value)),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a duration, found {}; {}",
                describe(other),
                resilience_spec::duration::EXPECTED
            ),
        )),
    }
}

/// One of a closed set of choices, named as the spec names them:
/// `backoff = "exponential"`, `jitter = "full"`.
pub(crate) fn choice<T>(arg: &Arg, expected: &[&str]) -> syn::Result<T>
where
    T: std::str::FromStr<Err = resilience_spec::UnknownChoice>,
{
    let key = &arg.key;
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s
            .value()
            .parse()
            .map_err(|e: resilience_spec::UnknownChoice| syn::Error::new(s.span(), e.to_string())),
        other => {
            let list = expected
                .iter()
                .map(|o| format!("\"{o}\""))
                .collect::<Vec<_>>()
                .join(", ");
            Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects one of {list}, found {}", describe(other)),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> Arg {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn a_message_names_what_was_written_instead() {
        let found = |s: &str| {
            choice::<resilience_spec::BackoffKind>(&arg(s), &["fixed", "exponential"])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            found("backoff = exponential"),
            "`backoff` expects one of \"fixed\", \"exponential\", found a path"
        );
        assert!(found("backoff = 2").ends_with("found an integer"));
        assert!(found("backoff = -2").ends_with("found a negative number"));
        assert!(found("backoff = [1]").ends_with("found an array"));
        assert!(found("backoff = f()").ends_with("found an expression"));
    }

    #[test]
    fn a_quoted_number_is_told_to_drop_the_quotes() {
        let found = |s: &str| float_literal(&arg(s)).unwrap_err().to_string();
        assert_eq!(
            found("failure_rate = \" 0.5 \""),
            "`failure_rate` expects a number, found a string: write `failure_rate = 0.5` without quotes"
        );
        assert_eq!(
            found("failure_rate = \"half\""),
            "`failure_rate` expects a number, found a string"
        );
    }
}
