//! Turning argument values into counts, durations and choices, with errors
//! that say what would be right.

use std::time::Duration;

use quote::ToTokens;
use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

use crate::args::{did_you_mean, Arg};

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

/// A count that must be at least 1: `failure_threshold = 5`.
pub(crate) fn count(arg: &Arg) -> syn::Result<u32> {
    let key = &arg.key;
    let value = &arg.value;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let n: u64 = int.base10_parse().map_err(|_| {
                syn::Error::new(int.span(), format!("`{key}` must be a whole number"))
            })?;
            if n == 0 {
                return Err(syn::Error::new(
                    int.span(),
                    format!("`{key}` must be at least 1, found 0"),
                ));
            }
            u32::try_from(n).map_err(|_| {
                syn::Error::new(
                    int.span(),
                    format!("`{key}` is too large: at most {}", u32::MAX),
                )
            })
        }
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

/// A finite float: `multiplier = 1.5`.
pub(crate) fn float(arg: &Arg) -> syn::Result<f64> {
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

/// A duration: `60` or `1.5` (seconds), or `"250ms"`, `"30s"`, `"2m"`, `"1h"`.
pub(crate) fn duration(arg: &Arg) -> syn::Result<Duration> {
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
        }) => parse_duration(&s.value()).map_err(|why| syn::Error::new(s.span(), why)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` must not be negative, found `{}`", text(value)),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a duration, found {}; {EXPECTED_DURATION}",
                describe(other)
            ),
        )),
    }
}

/// How to write a duration, for messages.
const EXPECTED_DURATION: &str =
    "write seconds (`30`, `1.5`) or a string with a unit (`\"250ms\"`, `\"30s\"`, `\"2m\"`)";

/// Parses `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, `"10ns"`. The error
/// says what is wrong with `text` and how to write it.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("empty duration; {EXPECTED_DURATION}"));
    }
    if t.starts_with('-') {
        return Err(format!(
            "`\"{t}\"` is negative; a duration must not be negative"
        ));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!("`\"{t}\"` is not a duration; {EXPECTED_DURATION}"));
    }
    let nanos_per_unit: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" | "sec" | "secs" => 1_000_000_000,
        "m" | "min" | "mins" => 60_000_000_000,
        "h" | "hr" | "hrs" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "`\"{t}\"` has no unit; write `\"{t}s\"`, or `{t}` without quotes for seconds"
            ))
        }
        other => {
            let units = ["ns", "us", "ms", "s", "m", "h"];
            return Err(match did_you_mean(other, units) {
                Some(u) => format!("unknown unit `{other}` in `\"{t}\"`: did you mean `{u}`?"),
                None => format!(
                    "unknown unit `{other}` in `\"{t}\"`; expected one of: `ns`, `us`, `ms`, `s`, `m`, `h`"
                ),
            });
        }
    };
    if let Ok(whole) = number.parse::<u64>() {
        let nanos = u128::from(whole) * u128::from(nanos_per_unit);
        let secs =
            u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("`\"{t}\"` is too large"))?;
        return Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` in `\"{t}\"` is not a number; {EXPECTED_DURATION}"))?;
    Duration::try_from_secs_f64(value * nanos_per_unit as f64 / 1e9)
        .map_err(|_| format!("`\"{t}\"` is too large"))
}

/// One of a fixed set of strings: `backoff = "exponential"`.
pub(crate) fn choice<'a>(arg: &Arg, options: &[&'a str]) -> syn::Result<&'a str> {
    let key = &arg.key;
    let list = options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let v = s.value();
            if let Some(o) = options.iter().find(|o| **o == v) {
                return Ok(o);
            }
            let msg = match did_you_mean(&v, options.iter().copied()) {
                Some(near) => format!("unknown {key} \"{v}\": did you mean \"{near}\"?"),
                None => format!("unknown {key} \"{v}\"; expected one of: {list}"),
            };
            Err(syn::Error::new(s.span(), msg))
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` expects one of {list}, found {}", describe(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 10 us "), Ok(Duration::from_micros(10)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("3mss")
            .unwrap_err()
            .contains("did you mean `ms`"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
