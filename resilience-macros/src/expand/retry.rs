//! The retry layer: the body re-run inline.
//!
//! Input:  `#[retry(max_attempts = 3)]` around `inner`
//! Output: `static RETRY_0: StaticRetry = StaticRetry::new(name, VALUES);` and
//!         `async { let mut state = RetryState::new(label, RETRY_0.get()); loop {
//!          flags.reset(); <clone by-value args>; let attempt = inner.await;
//!          <next delay, unless Ok, not retried, or a breaker said stop>;
//!          match delay { Some(d) => sleep(d).await, None => break attempt } } }`

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{hidden, Cx, Names, Wrapper};
use crate::func::Func;
use crate::layers::{Retry, RetryRule};
use crate::spec_tokens::retry_values;

/// Layer `i`, a retry.
pub(super) fn layer<'a>(cx: &mut Cx<'a>, i: usize, r: &'a Retry) -> Wrapper<'a> {
    let item = format_ident!("__RESILIENCE_RETRY_{}", i);
    let values = retry_values(r);
    // Retries report (and are configured by name) under the breaker's name,
    // when it has a static one.
    let label = match &cx.breaker_name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    cx.prelude.extend(quote! {
        static #item: ::resilience::__private::StaticRetry =
            ::resilience::__private::StaticRetry::new(#label, #values);
    });
    let budget = r.budget.as_ref().map(|name| {
        let cell = format_ident!("__RESILIENCE_BUDGET_{}", i);
        cx.prelude.extend(quote! {
            static #cell: ::resilience::__private::StaticBudget =
                ::resilience::__private::StaticBudget::new(#name);
        });
        quote!(.with_budget(#cell.get()))
    });
    let loop_tokens = RetryLoop {
        sync: cx.sync,
        func: cx.func,
        retry: r,
        label,
        policy: quote!(#item.get()),
        budget,
    };
    let names = cx.names.clone();
    Box::new(move |inner| loop_tokens.render(&names, inner))
}

/// The inline retry loop around one attempt.
pub(super) struct RetryLoop<'a> {
    /// A synchronous function: the loop is a closure, the sleeps block.
    sync: bool,
    func: &'a Func,
    retry: &'a Retry,
    label: TokenStream,
    policy: TokenStream,
    budget: Option<TokenStream>,
}

impl RetryLoop<'_> {
    pub(super) fn render(&self, names: &Names, inner: TokenStream) -> TokenStream {
        let Names { flags, convert } = names;
        let state = hidden("__resilience_retry");
        let attempt = hidden("__resilience_attempt");
        let error = hidden("__resilience_error");
        let number = hidden("__resilience_attempt_number");
        let delay = hidden("__resilience_delay");
        let (label, policy, budget) = (&self.label, &self.policy, &self.budget);
        let clones = clones(self.func, false);
        let inner = if self.retry.keys.max_elapsed.is_some() {
            quote!(::resilience::__private::deadline(
                #state.deadline(), #policy, &#flags, #inner, #convert,
            ))
        } else {
            inner
        };
        let not_retried = match &self.retry.rule {
            RetryRule::Every => quote!(false),
            RetryRule::If(f) => {
                quote_spanned!(f.span()=> !::resilience::__private::predicate(#f, #error))
            }
            RetryRule::On(pats) => quote!(!::core::matches!(#error, #(#pats)|*)),
        };
        // The user's hint (`retry_after`), else a rate limiter's below.
        let hint = match &self.retry.retry_after {
            Some(f) => {
                let user =
                    quote_spanned!(f.span()=> ::resilience::__private::retry_after(#f, #error));
                quote!(#user.or(#flags.wait_hint()))
            }
            None => quote!(#flags.wait_hint()),
        };
        // An `Ok` the user wants retried (`retry_if_ok`): the next delay,
        // with no hint and no `on_retry` (they take the error).
        let on_ok = match &self.retry.retry_if_ok {
            None => quote!(::core::option::Option::None),
            Some(f) => {
                let value = hidden("__resilience_value");
                let ask = quote_spanned!(f.span()=> ::resilience::__private::predicate(#f, #value));
                quote! {
                    match ::resilience::__private::ResultLike::ok_value(&#attempt) {
                        ::core::option::Option::Some(#value) if !#flags.stop_retry() && #ask => {
                            #state.next_delay_after(::core::option::Option::None)
                        }
                        _ => ::core::option::Option::None,
                    }
                }
            }
        };
        let on_retry = self.retry.on_retry.as_ref().map(|f| {
            let call = quote_spanned! {f.span()=>
                ::resilience::__private::on_retry(#f, #number, #error, #delay)
            };
            quote! {
                if let ::core::option::Option::Some(#delay) = #delay {
                    #call;
                }
            }
        });
        let (open, run, sleep) = if self.sync {
            (
                quote!(||),
                quote!((#inner)()),
                quote!(::resilience::__private::sleep_blocking(#delay)),
            )
        } else {
            (
                quote!(async),
                quote!(#inner.await),
                quote!(::resilience::__private::sleep(#delay).await),
            )
        };
        quote! {
            (#open {
                let mut #state = ::resilience::__private::RetryState::new(#label, #policy)#budget;
                loop {
                    #flags.reset();
                    #(#clones)*
                    let #attempt = #run;
                    let #delay = match ::resilience::__private::ResultLike::error(&#attempt) {
                        ::core::option::Option::None => #on_ok,
                        ::core::option::Option::Some(#error) => {
                            if #flags.stop_retry() || #not_retried {
                                ::core::option::Option::None
                            } else {
                                let #number = #state.attempt();
                                let #delay = #state.next_delay_after(#hint);
                                #on_retry
                                #delay
                            }
                        }
                    };
                    match #delay {
                        ::core::option::Option::Some(#delay) => {
                            #sleep
                        }
                        ::core::option::Option::None => break #attempt,
                    }
                }
            })
        }
    }
}

/// `let id = retry_clone::<String>(&id);` for every by-value argument: each
/// attempt gets its own copy (the body may consume it). With the declared
/// type, so that a missing `Clone` is reported under it. `shared`: the
/// attempts run at the same time (a hedge), so even a `mut` argument is
/// cloned through a shared reference, and a missing `Clone` says why in
/// the hedge's words.
pub(super) fn clones(func: &Func, shared: bool) -> Vec<TokenStream> {
    func.cloned_args()
        .into_iter()
        .map(|arg| {
            let binding = &arg.binding;
            let ident = &binding.ident;
            let (clone_fn, reference) = match binding.mutability {
                _ if shared => (quote!(hedge_clone), quote!(&#ident)),
                Some(_) => (quote!(retry_clone_mut), quote!(&mut #ident)),
                None => (quote!(retry_clone), quote!(&#ident)),
            };
            match &arg.ty {
                Some(ty) => {
                    let span = syn::spanned::Spanned::span(ty);
                    quote_spanned!(span=> let #binding = ::resilience::__private::#clone_fn::<#ty>(#reference);)
                }
                None => quote_spanned!(ident.span()=>
                    let #binding = ::resilience::__private::#clone_fn(#reference);
                ),
            }
        })
        .collect()
}
