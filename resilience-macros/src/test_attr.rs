//! `#[resilience::test]`: `#[tokio::test]` against an isolated registry.
//!
//! Input:  `#[resilience::test(start_paused = true)] async fn t() { body }`
//! Output: `#[test] fn t() { ::resilience::testing::run(
//!          ::resilience::testing::Runtime::current_thread().start_paused(true),
//!          async move { body }) }`

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, Token};

const KEYS: [&str; 3] = ["flavor", "worker_threads", "start_paused"];

/// The runtime the test asked for.
struct Options {
    multi_thread: Option<Span>,
    worker_threads: Option<(usize, Span)>,
    start_paused: Option<(bool, Span)>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let error = syn::Error::new(
                e.span(),
                format!("`#[resilience::test]` goes on an `async fn` test: {e}"),
            )
            .to_compile_error();
            return quote!(#item #error);
        }
    };
    let options = options(args, &mut errors);
    if func.sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            func.sig.fn_token.span(),
            "`#[resilience::test]` runs an `async fn` on a runtime of its own: make the test `async`, or call `resilience::testing::isolated(|| ..)` in a `#[test]`",
        ));
    }
    if let Some(input) = func.sig.inputs.first() {
        errors.push(syn::Error::new(input.span(), "a test takes no arguments"));
    }
    if let Some(e) = errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        let error = e.to_compile_error();
        return quote!(#func #error);
    }
    let mut runtime = match (options.multi_thread, options.worker_threads) {
        (Some(_), Some((n, _))) => quote!(::resilience::testing::Runtime::multi_thread(#n)),
        // tokio's default for a multi-thread test: 2 workers.
        (Some(_), None) => quote!(::resilience::testing::Runtime::multi_thread(2)),
        (None, _) => quote!(::resilience::testing::Runtime::current_thread()),
    };
    if let Some((paused, _)) = options.start_paused {
        runtime = quote!(#runtime.start_paused(#paused));
    }
    func.sig.asyncness = None;
    let body = &func.block;
    let span = body.span();
    let run = quote_spanned! {span=>
        {
            ::resilience::testing::run(#runtime, async move #body)
        }
    };
    *func.block = match syn::parse2(run) {
        Ok(block) => block,
        Err(e) => return e.to_compile_error(),
    };
    let attrs = &func.attrs;
    let (vis, sig, block) = (&func.vis, &func.sig, &func.block);
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #sig #block
    }
}

fn options(args: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut options = Options {
        multi_thread: None,
        worker_threads: None,
        start_paused: None,
    };
    let parsed = match Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args) {
        Ok(p) => p,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                "`#[resilience::test]` takes `flavor = \"multi_thread\"`, `worker_threads = 4`, `start_paused = true`",
            ));
            return options;
        }
    };
    for arg in parsed {
        let key = arg
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = &arg.value;
        match key.as_str() {
            "flavor" => match lit(value) {
                Some(Lit::Str(s)) if s.value() == "multi_thread" => {
                    options.multi_thread = Some(s.span())
                }
                Some(Lit::Str(s)) if s.value() == "current_thread" => {}
                _ => errors.push(syn::Error::new_spanned(
                    value,
                    "`flavor` is `\"current_thread\"` (the default) or `\"multi_thread\"`",
                )),
            },
            "worker_threads" => match lit(value) {
                Some(Lit::Int(n)) => match n.base10_parse::<usize>() {
                    Ok(0) | Err(_) => errors.push(syn::Error::new_spanned(
                        value,
                        "`worker_threads` must be at least 1",
                    )),
                    Ok(n) => options.worker_threads = Some((n, value.span())),
                },
                _ => errors.push(syn::Error::new_spanned(
                    value,
                    "`worker_threads` expects a whole number: `worker_threads = 4`",
                )),
            },
            "start_paused" => match lit(value) {
                Some(Lit::Bool(b)) => options.start_paused = Some((b.value, value.span())),
                _ => errors.push(syn::Error::new_spanned(
                    value,
                    "`start_paused` expects `true` or `false`",
                )),
            },
            _ => {
                let message = match resilience_spec::did_you_mean(&key, KEYS) {
                    Some(near) => format!("unknown key `{key}` for `#[resilience::test]`: did you mean `{near}`?"),
                    None => format!(
                        "unknown key `{key}` for `#[resilience::test]`; expected one of: `flavor`, `worker_threads`, `start_paused`"
                    ),
                };
                errors.push(syn::Error::new_spanned(&arg.path, message));
            }
        }
    }
    if let (None, Some((_, span))) = (options.multi_thread, options.worker_threads) {
        errors.push(syn::Error::new(
            span,
            "`worker_threads` needs `flavor = \"multi_thread\"`: a current-thread runtime runs the test on its own thread",
        ));
    }
    if let (Some(_), Some((true, span))) = (options.multi_thread, options.start_paused) {
        errors.push(syn::Error::new(
            span,
            "`start_paused` needs the current-thread runtime (tokio pauses time only there): remove `flavor = \"multi_thread\"`, or `start_paused`",
        ));
    }
    options
}

fn lit(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flavor_is_current_thread_or_multi_thread_and_nothing_else() {
        let mut errors = Vec::new();
        let current = options(quote!(flavor = "current_thread"), &mut errors);
        assert!(errors.is_empty() && current.multi_thread.is_none());
        let multi = options(quote!(flavor = "multi_thread"), &mut errors);
        assert!(errors.is_empty() && multi.multi_thread.is_some());
        options(quote!(flavor = "multi"), &mut errors);
        let words: Vec<_> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            ["`flavor` is `\"current_thread\"` (the default) or `\"multi_thread\"`"]
        );
    }
}
