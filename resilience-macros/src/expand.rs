//! Code generation: the function with its body wrapped in the layers.
//!
//! Input:
//! ```text
//! #[circuit_breaker(name = "unifi")] #[retry(max_attempts = 3)]
//! async fn get(&self, id: String) -> Result<T, E> { body }
//! ```
//! Output (names shortened):
//! ```text
//! async fn get(&self, id: String) -> Result<T, E> {
//!     static BREAKER_0: StaticBreaker = StaticBreaker::named("unifi", CONFIG);
//!     static POLICY_1: RetryPolicy = RetryPolicy::__from_macro(3, BACKOFF);
//!     let breaker_0 = BREAKER_0.get();
//!     let result = breaker_call(breaker_0, None, async {
//!         let mut state = RetryState::new(NAME, &POLICY_1);
//!         loop {
//!             let id = retry_clone(&id);
//!             let open = AtomicBool::new(false);
//!             let r = async { fake_return_edge; body }.await;
//!             if r.is_ok() || open { break r }
//!             match state.next_delay() { Some(d) => sleep(d).await, None => break r }
//!         }
//!     }).await;
//!     check_return(result)
//! }
//! ```

use std::time::Duration;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::func::Func;
use crate::layers::{Attr, Breaker, BreakerName, Kind, Layer, Retry};

/// `::core::time::Duration::new(s, n)`, usable in `const` items.
fn duration(d: Duration) -> TokenStream {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    quote!(::core::time::Duration::new(#secs, #nanos))
}

fn hidden(name: String) -> Ident {
    Ident::new(&name, Span::mixed_site())
}

fn breaker_config(b: &Breaker) -> TokenStream {
    let Breaker {
        failure_threshold,
        success_threshold,
        half_open_max_calls,
        ..
    } = b;
    let recovery = duration(b.recovery_timeout);
    quote! {
        ::resilience::BreakerConfig::__from_macro(
            #failure_threshold, #recovery, #success_threshold, #half_open_max_calls,
        )
    }
}

fn retry_policy(r: &Retry) -> TokenStream {
    let max_attempts = r.max_attempts;
    let kind = match r.backoff {
        "fixed" => quote!(Fixed),
        "linear" => quote!(Linear),
        _ => quote!(Exponential),
    };
    let delay = duration(r.delay);
    let mut backoff = quote!(::resilience::Backoff::new(::resilience::BackoffKind::#kind, #delay));
    if let Some(max) = r.max_delay {
        let max = duration(max);
        backoff = quote!(#backoff.max_delay(#max));
    }
    if let Some(m) = r.multiplier {
        backoff = quote!(#backoff.multiplier(#m));
    }
    let jitter = match r.jitter {
        "full" => Some(quote!(Full)),
        "equal" => Some(quote!(Equal)),
        "decorrelated" => Some(quote!(Decorrelated)),
        _ => None,
    };
    if let Some(j) = jitter {
        backoff = quote!(#backoff.jitter(::resilience::Jitter::#j));
    }
    quote!(::resilience::RetryPolicy::__from_macro(#max_attempts, #backoff))
}

/// The whole function, its body replaced by the layered one.
pub(crate) fn expand(func: &Func, attrs: &[Attr], sibling_paths: &[syn::Path]) -> TokenStream {
    let outer = attrs[0].kind;
    let layers: Vec<&Layer> = attrs.iter().flat_map(|a| &a.layers).collect();
    let fn_name = func.sig.ident.to_string();
    let site = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));

    // Keeps the user's imports of the attributes we consumed in use.
    let mut prelude = quote! {
        #(
            #[allow(unused_imports, clippy::single_component_path_imports)]
            use #sibling_paths as _;
        )*
    };
    let mut breaker_refs: Vec<Option<TokenStream>> = Vec::new();
    let mut policies: Vec<Option<Ident>> = Vec::new();
    // The name retries report under: the breaker's, when it has a static one.
    let mut retry_label = site.clone();

    for (i, layer) in layers.iter().enumerate() {
        let mut breaker_ref = None;
        let mut policy = None;
        match layer {
            Layer::Breaker(b) => {
                let config = breaker_config(b);
                let var = hidden(format!("__resilience_breaker_{i}"));
                let cell = format_ident!("__RESILIENCE_BREAKER_{}", i);
                match &b.name {
                    BreakerName::Static(lit) => {
                        retry_label = quote!(#lit);
                        prelude.extend(quote! {
                            static #cell: ::resilience::__private::StaticBreaker =
                                ::resilience::__private::StaticBreaker::named(#lit, #config);
                            let #var: &::resilience::CircuitBreaker = #cell.get();
                        });
                        breaker_ref = Some(quote!(#var));
                    }
                    BreakerName::Private => {
                        prelude.extend(quote! {
                            static #cell: ::resilience::__private::StaticBreaker =
                                ::resilience::__private::StaticBreaker::private(#site, #config);
                            let #var: &::resilience::CircuitBreaker = #cell.get();
                        });
                        breaker_ref = Some(quote!(#var));
                    }
                    BreakerName::Dynamic(expr) => {
                        let config_item = format_ident!("__RESILIENCE_CONFIG_{}", i);
                        prelude.extend(quote! {
                            const #config_item: ::resilience::BreakerConfig = #config;
                            let #var = ::resilience::__private::dynamic_breaker(
                                ::core::convert::AsRef::<str>::as_ref(&(#expr)),
                                &#config_item,
                                ::core::option::Option::None,
                            );
                        });
                        breaker_ref = Some(quote!(&*#var));
                    }
                }
            }
            Layer::Retry(r) => {
                let item = format_ident!("__RESILIENCE_RETRY_{}", i);
                let policy_tokens = retry_policy(r);
                prelude.extend(quote! {
                    static #item: ::resilience::RetryPolicy = #policy_tokens;
                });
                policy = Some(item);
            }
            Layer::Timeout(_) => {}
        }
        breaker_refs.push(breaker_ref);
        policies.push(policy);
    }

    // The innermost future: the user's body, its type fixed by a fake return.
    let mut future = body(func);
    let open_flag = hidden("__resilience_open".to_owned());
    let retry_index = layers.iter().position(|l| matches!(l, Layer::Retry(_)));

    for (i, layer) in layers.iter().enumerate().rev() {
        future = match layer {
            Layer::Timeout(t) => {
                let after = duration(t.after);
                quote!(::resilience::__private::timeout(#after, #future))
            }
            Layer::Breaker(_) => {
                let breaker = breaker_refs[i].as_ref().expect("breaker layer");
                let flag = match retry_index {
                    Some(r) if r < i => quote!(::core::option::Option::Some(&#open_flag)),
                    _ => quote!(::core::option::Option::None),
                };
                quote!(::resilience::__private::breaker_call(
                    #breaker,
                    #flag,
                    #future,
                    ::resilience::__private::every_error_fails,
                ))
            }
            Layer::Retry(_) => {
                let policy = policies[i].as_ref().expect("retry layer");
                retry_loop(func, &retry_label, policy, &open_flag, future)
            }
        };
    }

    let result = hidden("__resilience_result".to_owned());
    let ret_span = func.return_span();
    let check_return = match outer {
        Kind::CircuitBreaker => quote!(check_circuit_breaker_return),
        Kind::Retry => quote!(check_retry_return),
        Kind::Resilient => quote!(check_resilient_return),
        Kind::Timeout => quote!(check_timeout_return),
    };
    let mut checked = quote_spanned!(ret_span=> ::resilience::__private::#check_return(#result));
    if layers.iter().any(|l| !matches!(l, Layer::Retry(_))) {
        checked = quote_spanned!(ret_span=> ::resilience::__private::check_from_error(#checked));
    }

    let Func {
        attrs: fn_attrs,
        vis,
        sig,
        ..
    } = func;
    quote! {
        #(#fn_attrs)*
        #vis #sig {
            #prelude
            let #result = #future.await;
            #checked
        }
    }
}

/// `async { <fake return edge>; <user statements> }`
fn body(func: &Func) -> TokenStream {
    let stmts = func.block.as_ref().map(|b| &b.stmts[..]).unwrap_or(&[]);
    let fake_return = func.return_type_for_inference().map(|ty| {
        let fake = hidden("__resilience_fake_return".to_owned());
        quote_spanned! {func.return_span()=>
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let #fake: #ty = loop {};
                return #fake;
            }
        }
    });
    quote!(async { #fake_return #(#stmts)* })
}

fn retry_loop(
    func: &Func,
    label: &TokenStream,
    policy: &Ident,
    open_flag: &Ident,
    inner: TokenStream,
) -> TokenStream {
    let state = hidden("__resilience_retry".to_owned());
    let attempt = hidden("__resilience_attempt".to_owned());
    let delay = hidden("__resilience_delay".to_owned());
    let clones = func.cloned_args().into_iter().map(|binding| {
        let ident = &binding.ident;
        let span = ident.span();
        if binding.mutability.is_some() {
            quote_spanned!(span=> let #binding = ::resilience::__private::retry_clone_mut(&mut #ident);)
        } else {
            quote_spanned!(span=> let #binding = ::resilience::__private::retry_clone(&#ident);)
        }
    });
    quote! {
        async {
            let mut #state = ::resilience::__private::RetryState::new(#label, &#policy);
            loop {
                #(#clones)*
                let #open_flag = ::resilience::__private::AtomicBool::new(false);
                let #attempt = #inner.await;
                if ::resilience::__private::ResultLike::is_ok(&#attempt)
                    || #open_flag.load(::resilience::__private::Ordering::Relaxed)
                {
                    break #attempt;
                }
                match #state.next_delay() {
                    ::core::option::Option::Some(#delay) => {
                        ::resilience::__private::sleep(#delay).await
                    }
                    ::core::option::Option::None => break #attempt,
                }
            }
        }
    }
}
