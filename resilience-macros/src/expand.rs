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
//!     let flags = Flags::new();           // what inner layers tell outer ones
//!     let convert = converter();          // resilience::Error -> E, checked once
//!     #[distributed_slice(CALL_SITES)]    // the link-time manifest: one
//!     static SITE_0: CallSite = CallSite::__new(CircuitBreaker, "circuit_breaker",
//!         Static("unifi"), &[("name", "\"unifi\"")], module_path!(), "get", file!(), line!());
//!     static BREAKER_0: StaticBreaker = StaticBreaker::named("unifi", CONFIG);
//!     // (without `name`: `StaticBreaker::unnamed(module_path!(), "get", CONFIG, &SITE_0)`
//!     // and `BREAKER_0.get_for(type_name::<Self>)`, named `module::Type::get`)
//!     #[distributed_slice(CALL_SITES)]    // entry per layer
//!     static SITE_1: CallSite = CallSite::__new(Retry, "retry", Static("unifi"), ..);
//!     static POLICY_1: RetryPolicy = RetryPolicy::__from_macro(3, BACKOFF);
//!     let breaker_0 = BREAKER_0.get();
//!     let result = breaker_call_described(breaker_0, &flags, async {
//!         let mut state = RetryState::new("unifi", &POLICY_1);
//!         loop {
//!             flags.reset();
//!             let id = retry_clone::<String>(&id);
//!             let attempt = async { fake_return_edge; body }.await;
//!             let delay = match attempt.error() {
//!                 None => None,
//!                 Some(e) if flags.stop_retry() => None,
//!                 Some(e) => state.next_delay_after(None),
//!             };
//!             match delay { Some(d) => sleep(d).await, None => break attempt }
//!         }
//!     }, every_error_fails, convert).await;
//!     check_return(result)
//! }
//! ```

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::func::{FallbackArg, Func};
use crate::layers::{Attr, Breaker, BreakerName, FailureRule, Kind, Layer, Retry, RetryRule};
use crate::spec_tokens::{breaker_config, bulkhead_values, retry_policy, timeout_after};

/// A local only the expansion can name.
fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The names the layers share.
struct Names {
    flags: Ident,
    convert: Ident,
}

/// The manifest entry of one layer (`resilience::manifest::CallSite`), added
/// to the link-time list, and the `static` holding it.
fn call_site(
    item: &Ident,
    attr: &Attr,
    layer: &Layer,
    name: TokenStream,
    fn_name: &str,
) -> TokenStream {
    let private = quote!(::resilience::__private);
    let kind = match layer {
        Layer::Breaker(_) => quote!(CircuitBreaker),
        Layer::Retry(_) => quote!(Retry),
        Layer::Timeout(_) => quote!(Timeout),
        Layer::Bulkhead(_) => quote!(Bulkhead),
        Layer::Fallback(_) => quote!(Fallback),
    };
    let attribute = attr.kind.name();
    let keys = attr
        .keys_of(layer)
        .into_iter()
        .map(|(k, v)| quote!((#k, #v)));
    let callbacks = match layer {
        Layer::Breaker(b) if b.has_callbacks() => {
            let [open, close, half_open] =
                [&b.on_open, &b.on_close, &b.on_half_open].map(|callback| match callback {
                    // Spanned at the callback: one that is not a
                    // `fn(&Transition)` is reported under it.
                    Some(f) => quote_spanned!(f.span()=> #private::callback(#f)),
                    None => quote!(::core::option::Option::None),
                });
            Some(quote!(.__callbacks(#open, #close, #half_open)))
        }
        _ => None,
    };
    quote! {
        #[#private::linkme::distributed_slice(#private::CALL_SITES)]
        #[linkme(crate = #private::linkme)]
        static #item: #private::CallSite = #private::CallSite::__new(
            #private::SiteKind::#kind,
            #attribute,
            #name,
            &[#(#keys),*],
            ::core::module_path!(),
            #fn_name,
            ::core::file!(),
            ::core::line!(),
        )#callbacks;
    }
}

/// What an error counts as for the breaker: `every_error_fails`, or a
/// closure built from `ignore_if`, `failure_if` and `failure_on`.
fn classify(b: &Breaker) -> TokenStream {
    if b.ignore_if.is_none() && matches!(b.failure, FailureRule::Every) {
        return quote!(::resilience::__private::every_error_fails);
    }
    let error = hidden("__resilience_error");
    let outcome = quote!(::resilience::__private::Outcome);
    let ignore = b.ignore_if.as_ref().map(|f| {
        let ask = quote_spanned!(f.span()=> ::resilience::__private::predicate(#f, #error));
        quote! {
            if #ask {
                return #outcome::Ignored;
            }
        }
    });
    let fails = match &b.failure {
        FailureRule::Every => quote!(true),
        FailureRule::If(f) => {
            quote_spanned!(f.span()=> ::resilience::__private::predicate(#f, #error))
        }
        FailureRule::On(pats) => quote!(::core::matches!(#error, #(#pats)|*)),
    };
    quote! {
        |#error| {
            #ignore
            if #fails { #outcome::Failure } else { #outcome::Success }
        }
    }
}

/// The whole function, its body replaced by the layered one.
pub(crate) fn expand(func: &Func, attrs: &[Attr], sibling_paths: &[syn::Path]) -> TokenStream {
    let outer = attrs[0].kind;
    let sites: Vec<(&Attr, &Layer)> = attrs
        .iter()
        .flat_map(|a| a.layers.iter().map(move |l| (a, l)))
        .collect();
    let layers: Vec<&Layer> = sites.iter().map(|(_, l)| *l).collect();
    let fn_name = func.sig.ident.to_string();
    let site_name = quote!(::resilience::__private::SiteName);
    let default_name = quote!(#site_name::Default);
    let site = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));
    let names = Names {
        flags: hidden("__resilience_flags"),
        convert: hidden("__resilience_convert"),
    };
    let Names { flags, convert } = &names;

    // Keeps the user's imports of the attributes we consumed in use.
    let mut prelude = quote! {
        #(
            #[allow(unused_imports, clippy::single_component_path_imports)]
            use #sibling_paths as _;
        )*
        let #flags = ::resilience::__private::Flags::new();
    };
    // Layers that can fail the call need `E: From<resilience::Error>`: checked
    // once, here, under the error type.
    let can_fail = layers.iter().any(|l| match l {
        Layer::Breaker(_) | Layer::Bulkhead(_) | Layer::Timeout(_) => true,
        Layer::Retry(r) => r.keys.max_elapsed.is_some(),
        Layer::Fallback(_) => false,
    });
    if can_fail {
        let convert_at = Ident::new(
            "__resilience_convert",
            Span::mixed_site().located_at(func.error_span()),
        );
        prelude.extend(quote_spanned! {func.error_span()=>
            let #convert_at = ::resilience::__private::converter();
        });
    }

    // The name retries report under: the breaker's, when it has a static one.
    let mut retry_label = site.clone();
    // The same, as a `manifest::Name`.
    let mut retry_name = default_name.clone();
    let mut wrappers: Vec<Box<dyn Fn(TokenStream) -> TokenStream>> = Vec::new();

    for (i, (attr, layer)) in sites.iter().enumerate() {
        // This layer's entry in the link-time manifest.
        let site_item = format_ident!("__RESILIENCE_SITE_{}", i);
        let manifest_name = match layer {
            Layer::Breaker(b) => match &b.name {
                BreakerName::Static(lit) => quote!(#site_name::Static(#lit)),
                BreakerName::Dynamic(expr) => {
                    let source = crate::source::text(quote!(#expr));
                    quote!(#site_name::Dynamic(#source))
                }
                BreakerName::Private => default_name.clone(),
            },
            Layer::Retry(_) => retry_name.clone(),
            Layer::Bulkhead(b) => match &b.name {
                Some(lit) => quote!(#site_name::Static(#lit)),
                None => default_name.clone(),
            },
            Layer::Timeout(_) | Layer::Fallback(_) => default_name.clone(),
        };
        prelude.extend(call_site(&site_item, attr, layer, manifest_name, &fn_name));
        match layer {
            Layer::Breaker(b) => {
                let config = breaker_config(b);
                let var = hidden(&format!("__resilience_breaker_{i}"));
                let cell = format_ident!("__RESILIENCE_BREAKER_{}", i);
                let breaker_ref = match &b.name {
                    // The callbacks of a static name are the registry's to
                    // attach (from the manifest), when it creates the breaker.
                    BreakerName::Static(lit) => {
                        retry_label = quote!(#lit);
                        retry_name = quote!(#site_name::Static(#lit));
                        prelude.extend(quote! {
                            static #cell: ::resilience::__private::StaticBreaker =
                                ::resilience::__private::StaticBreaker::named(#lit, #config);
                            let #var: &::resilience::CircuitBreaker = #cell.get();
                        });
                        quote!(#var)
                    }
                    // Named after the function, and after `Self` in a method
                    // (read on first use: a `static` cannot name `Self`).
                    BreakerName::Private => {
                        let get = match func.sig.receiver() {
                            Some(_) => quote!(get_for(::core::any::type_name::<Self>)),
                            None => quote!(get()),
                        };
                        prelude.extend(quote! {
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
                        prelude.extend(quote! {
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
                let (flags, convert) = (flags.clone(), convert.clone());
                // The error's text for the transition it may cause, where
                // its type implements `Display` (autoref specialisation,
                // resolved here where the type is known).
                let error = hidden("__resilience_error");
                let describe = quote! {
                    |#error| {
                        #[allow(unused_imports)]
                        use ::resilience::__private::{DescribeDisplay as _, DescribeNothing as _};
                        (&&::resilience::__private::Describe(#error)).describe()
                    }
                };
                wrappers.push(Box::new(move |inner| {
                    quote!(::resilience::__private::breaker_call_described(
                        #breaker_ref, &#flags, #inner, #classify, #describe, #convert,
                    ))
                }));
            }
            Layer::Retry(r) => {
                let item = format_ident!("__RESILIENCE_RETRY_{}", i);
                let policy = retry_policy(r);
                prelude.extend(quote! {
                    static #item: ::resilience::RetryPolicy = #policy;
                });
                let budget = r.budget.as_ref().map(|name| {
                    let cell = format_ident!("__RESILIENCE_BUDGET_{}", i);
                    prelude.extend(quote! {
                        static #cell: ::resilience::__private::StaticBudget =
                            ::resilience::__private::StaticBudget::new(#name);
                    });
                    quote!(.with_budget(#cell.get()))
                });
                let loop_tokens = RetryLoop {
                    func,
                    retry: r,
                    label: retry_label.clone(),
                    policy: item,
                    budget,
                };
                let names = Names {
                    flags: flags.clone(),
                    convert: convert.clone(),
                };
                let rendered = move |inner| loop_tokens.render(&names, inner);
                wrappers.push(Box::new(rendered));
            }
            Layer::Bulkhead(b) => {
                let cell = format_ident!("__RESILIENCE_BULKHEAD_{}", i);
                let name = match &b.name {
                    Some(lit) => quote!(#lit),
                    None => site.clone(),
                };
                let values = bulkhead_values(b);
                prelude.extend(quote! {
                    static #cell: ::resilience::__private::StaticBulkhead =
                        ::resilience::__private::StaticBulkhead::new(#name, #values);
                });
                let convert = convert.clone();
                wrappers.push(Box::new(move |inner| {
                    quote!(::resilience::__private::bulkhead_call(#cell.get(), #inner, #convert))
                }));
            }
            Layer::Timeout(t) => {
                let item = format_ident!("__RESILIENCE_TIMEOUT_{}", i);
                let value = timeout_after(&t.after);
                prelude.extend(quote! {
                    const #item: ::core::time::Duration = #value;
                });
                let after = quote!(#item);
                let (flags, convert) = (flags.clone(), convert.clone());
                wrappers.push(Box::new(move |inner| {
                    quote!(::resilience::__private::timeout(#after, &#flags, #inner, #convert))
                }));
            }
            Layer::Fallback(f) => {
                let (clones, args) = fallback_args(func);
                prelude.extend(clones);
                let path = f.path.clone();
                let (result, expect) =
                    (hidden("__resilience_result"), hidden("__resilience_expect"));
                // Spanned at the path: a fallback that does not fit (arguments,
                // error type, `async`, return type) is reported under it.
                let error = Ident::new(
                    "__resilience_error",
                    Span::mixed_site().located_at(path.span()),
                );
                let call = quote_spanned! {path.span()=>
                    #expect.fallback(#path(#(#args,)* #error).await)
                };
                let ok = hidden("__resilience_ok");
                wrappers.push(Box::new(move |inner| {
                    quote! {
                        async {
                            let #result = #inner.await;
                            let #expect = ::resilience::__private::expect(&#result);
                            match ::resilience::__private::split_error(#result) {
                                ::core::result::Result::Ok(#ok) => #ok,
                                ::core::result::Result::Err(#error) => #call,
                            }
                        }
                    }
                }));
            }
        }
    }

    // The innermost future is the user's body, its type fixed by a fake
    // return; each layer wraps the one below it.
    let future = wrappers
        .iter()
        .rev()
        .fold(body(func), |inner, wrap| wrap(inner));

    let ret_span = func.return_span();
    let result = Ident::new(
        "__resilience_result",
        Span::mixed_site().located_at(ret_span),
    );
    let check_return = match outer {
        Kind::CircuitBreaker => quote!(check_circuit_breaker_return),
        Kind::Retry => quote!(check_retry_return),
        Kind::Resilient => quote!(check_resilient_return),
        Kind::Timeout => quote!(check_timeout_return),
        Kind::Bulkhead => quote!(check_bulkhead_return),
    };
    let checked = quote_spanned!(ret_span=> ::resilience::__private::#check_return(#result));

    let Func {
        attrs: fn_attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let inner = quote! {
        #prelude
        let #result = #future.await;
        #checked
    };
    // The user's own braces: the function keeps its location, so rustc still
    // reports `dead_code` on an annotated function that is never called.
    let mut body_tokens = TokenStream::new();
    match block {
        Some(block) => block
            .brace_token
            .surround(&mut body_tokens, |t| t.extend(inner)),
        None => body_tokens = quote!({ #inner }),
    }
    quote! {
        #(#fn_attrs)*
        #vis #sig #body_tokens
    }
}

/// `async { <fake return edge>; <user statements> }`
fn body(func: &Func) -> TokenStream {
    let stmts = func.block.as_ref().map(|b| &b.stmts[..]).unwrap_or(&[]);
    let fake_return = func.return_type_for_inference().map(|ty| {
        let fake = hidden("__resilience_fake_return");
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

/// The clones a fallback needs (taken before the body can consume the
/// arguments) and the argument list it is called with.
fn fallback_args(func: &Func) -> (TokenStream, Vec<TokenStream>) {
    let args = match func.fallback_args() {
        Ok(args) => args,
        Err(e) => return (e.to_compile_error(), Vec::new()),
    };
    let mut clones = TokenStream::new();
    let mut list = Vec::new();
    for arg in args {
        match arg {
            FallbackArg::Receiver { by_value: false } => list.push(quote!(self)),
            FallbackArg::Receiver { by_value: true } => {
                let copy = hidden("__resilience_fallback_self");
                clones.extend(quote! {
                    let #copy = ::resilience::__private::fallback_clone(&self);
                });
                list.push(quote!(#copy));
            }
            FallbackArg::Borrowed(ident) => list.push(quote!(#ident)),
            FallbackArg::Owned(ident) => {
                let copy = hidden(&format!("__resilience_fallback_{ident}"));
                clones.extend(quote_spanned! {ident.span()=>
                    let #copy = ::resilience::__private::fallback_clone(&#ident);
                });
                list.push(quote!(#copy));
            }
        }
    }
    (clones, list)
}

/// The inline retry loop around one attempt.
struct RetryLoop<'a> {
    func: &'a Func,
    retry: &'a Retry,
    label: TokenStream,
    policy: Ident,
    budget: Option<TokenStream>,
}

impl RetryLoop<'_> {
    fn render(&self, names: &Names, inner: TokenStream) -> TokenStream {
        let Names { flags, convert } = names;
        let state = hidden("__resilience_retry");
        let attempt = hidden("__resilience_attempt");
        let error = hidden("__resilience_error");
        let number = hidden("__resilience_attempt_number");
        let delay = hidden("__resilience_delay");
        let (label, policy, budget) = (&self.label, &self.policy, &self.budget);
        let clones = self.func.cloned_args().into_iter().map(|arg| {
            let binding = &arg.binding;
            let ident = &binding.ident;
            let (clone_fn, reference) = match binding.mutability {
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
        });
        let inner = if self.retry.keys.max_elapsed.is_some() {
            quote!(::resilience::__private::deadline(
                #state.deadline(), &#policy, &#flags, #inner, #convert,
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
        let hint = match &self.retry.retry_after {
            Some(f) => quote_spanned!(f.span()=> ::resilience::__private::retry_after(#f, #error)),
            None => quote!(::core::option::Option::None),
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
        quote! {
            async {
                let mut #state = ::resilience::__private::RetryState::new(#label, &#policy)#budget;
                loop {
                    #flags.reset();
                    #(#clones)*
                    let #attempt = #inner.await;
                    let #delay = match ::resilience::__private::ResultLike::error(&#attempt) {
                        ::core::option::Option::None => ::core::option::Option::None,
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
                            ::resilience::__private::sleep(#delay).await
                        }
                        ::core::option::Option::None => break #attempt,
                    }
                }
            }
        }
    }
}
