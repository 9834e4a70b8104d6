//! The circuit breaker layer.
//!
//! Input:  `#[circuit_breaker(name = "unifi", failure_threshold = 3)]` around `inner`
//! Output: `static BREAKER_0: StaticBreaker = StaticBreaker::named("unifi", CONFIG);`
//!         in the prelude, and `breaker_call_described(BREAKER_0.get(), &flags,
//!         inner, classify, describe, convert)` around the inner future.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{hidden, Cx, Wrapper};
use crate::layers::{Breaker, BreakerName, FailureRule};
use crate::spec_tokens::breaker_config;

/// Layer `i`, a breaker; `site_item` is its manifest entry.
pub(super) fn layer<'a>(
    cx: &mut Cx<'a>,
    i: usize,
    b: &'a Breaker,
    site_item: &syn::Ident,
) -> Wrapper<'a> {
    let config = breaker_config(b);
    let var = hidden(&format!("__resilience_breaker_{i}"));
    let cell = format_ident!("__RESILIENCE_BREAKER_{}", i);
    let fn_name = &cx.fn_name;
    let breaker_ref = match &b.name {
        // The callbacks of a static name are the registry's to attach (from
        // the manifest), when it creates the breaker.
        BreakerName::Static(lit) => {
            cx.breaker_name = Some(lit.clone());
            cx.prelude.extend(quote! {
                static #cell: ::resilience::__private::StaticBreaker =
                    ::resilience::__private::StaticBreaker::named(#lit, #config);
                let #var: &::resilience::CircuitBreaker = #cell.get();
            });
            quote!(#var)
        }
        // Named after the function, and after `Self` in a method (read on
        // first use: a `static` cannot name `Self`).
        BreakerName::Private => {
            let get = match cx.func.sig.receiver() {
                Some(_) => quote!(get_for(::core::any::type_name::<Self>)),
                None => quote!(get()),
            };
            cx.prelude.extend(quote! {
                static #cell: ::resilience::__private::StaticBreaker =
                    ::resilience::__private::StaticBreaker::unnamed(
                        ::core::module_path!(), #fn_name, #config, &#site_item,
                    );
                let #var: &::resilience::CircuitBreaker = #cell.#get;
            });
            quote!(#var)
        }
        BreakerName::Dynamic(expr) => {
            let config_item = format_ident!("__RESILIENCE_CONFIG_{}", i);
            let site_arg = match b.has_callbacks() {
                true => quote!(::core::option::Option::Some(&#site_item)),
                false => quote!(::core::option::Option::None),
            };
            cx.prelude.extend(quote! {
                // A `const` (the lookup compares it, folded); the manifest
                // takes its promoted `'static` reference.
                const #config_item: ::resilience::BreakerConfig = #config;
                let #var = ::resilience::__private::dynamic_breaker(
                    ::core::convert::AsRef::<str>::as_ref(&(#expr)),
                    &#config_item,
                    #site_arg,
                );
            });
            quote!(&*#var)
        }
    };
    let classify = classify(b);
    let (flags, convert) = (cx.names.flags.clone(), cx.names.convert.clone());
    // The error's text for the transition it may cause, where its type
    // implements `Display` (autoref specialisation, resolved here where the
    // type is known).
    let error = hidden("__resilience_error");
    let describe = quote! {
        |#error| {
            #[allow(unused_imports)]
            use ::resilience::__private::{DescribeDisplay as _, DescribeNothing as _};
            (&&::resilience::__private::Describe(#error)).describe()
        }
    };
    if cx.sync {
        return Box::new(move |inner| {
            quote!((|| ::resilience::__private::breaker_call_sync(
                #breaker_ref, &#flags, #inner, #classify, #describe, #convert,
            )))
        });
    }
    Box::new(move |inner| {
        quote!(::resilience::__private::breaker_call_described(
            #breaker_ref, &#flags, #inner, #classify, #describe, #convert,
        ))
    })
}

/// What a result counts as for the breaker: an error is a failure unless
/// `ignore_if`, `failure_if` or `failure_on` say otherwise; an `Ok` is a
/// success unless `failure_if_ok` says it is a failure.
fn classify(b: &Breaker) -> TokenStream {
    let result = hidden("__resilience_classified");
    let error = hidden("__resilience_error");
    let private = quote!(::resilience::__private);
    let outcome = quote!(#private::Outcome);
    let every = b.ignore_if.is_none() && matches!(b.failure, FailureRule::Every);
    let on_error = if every {
        quote!(::core::option::Option::Some(_) => #outcome::Failure,)
    } else {
        let ignore = b.ignore_if.as_ref().map(|f| {
            let ask = quote_spanned!(f.span()=> #private::predicate(#f, #error));
            quote! {
                if #ask {
                    return #outcome::Ignored;
                }
            }
        });
        let fails = match &b.failure {
            FailureRule::Every => quote!(true),
            FailureRule::If(f) => quote_spanned!(f.span()=> #private::predicate(#f, #error)),
            FailureRule::On(pats) => quote!(::core::matches!(#error, #(#pats)|*)),
        };
        quote! {
            ::core::option::Option::Some(#error) => {
                #ignore
                if #fails { #outcome::Failure } else { #outcome::Success }
            }
        }
    };
    let on_ok = match &b.failure_if_ok {
        None => quote!(#outcome::Success),
        Some(f) => {
            let value = hidden("__resilience_value");
            let ask = quote_spanned!(f.span()=> #private::predicate(#f, #value));
            quote! {
                match #private::ResultLike::ok_value(#result) {
                    ::core::option::Option::Some(#value) if #ask => #outcome::Failure,
                    _ => #outcome::Success,
                }
            }
        }
    };
    quote! {
        |#result| match #private::ResultLike::error(#result) {
            #on_error
            ::core::option::Option::None => #on_ok,
        }
    }
}
