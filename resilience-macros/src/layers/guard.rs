//! `#[timeout]`, `#[bulkhead]` and `fallback`: the layers that bound a call
//! or stand in for it.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr};

use super::{count, ok, positive_duration};
use crate::args::{Arg, Args, Errors};
use crate::value;

pub(crate) const BULKHEAD_KEYS: &[&str] = &["name", "max_concurrent", "max_wait"];

pub(crate) struct Timeout {
    pub(crate) after: Duration,
}

pub(crate) struct Bulkhead {
    /// `None`: named after the function.
    pub(crate) name: Option<LitStr>,
    pub(crate) max_concurrent: u32,
    pub(crate) max_wait: Duration,
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
    positive_duration(&arg, errors).map(|after| Timeout { after })
}

/// The bulkhead keys; `name_key` is `name` for `#[bulkhead]` and `bulkhead`
/// for `#[resilient]` (whose `name` is the breaker's).
pub(crate) fn bulkhead(args: &Args, name_key: &str, errors: &mut Errors) -> Bulkhead {
    let name = args.get(name_key).and_then(|a| match &a.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if !s.value().trim().is_empty() => Some(s.clone()),
        other => {
            errors.push_at(
                other,
                format!("`{name_key}` expects the bulkhead's name: `{name_key} = \"db\"`"),
            );
            None
        }
    });
    Bulkhead {
        name,
        max_concurrent: count(args, "max_concurrent", 10, errors),
        max_wait: args
            .get("max_wait")
            .and_then(|a| ok(value::duration(a), errors))
            .unwrap_or(Duration::ZERO),
    }
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
