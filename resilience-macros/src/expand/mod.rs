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
//!     static BREAKER_0: StaticBreaker = StaticBreaker::named("unifi", breaker_config(VALUES));
//!     // (without `name`: `StaticBreaker::unnamed(module_path!(), "get", CONFIG, &SITE_0)`
//!     // and `BREAKER_0.get_for(type_name::<Self>)`, named `module::Type::get`)
//!     #[distributed_slice(CALL_SITES)]    // entry per layer
//!     static SITE_1: CallSite = CallSite::__new(Retry, "retry", Static("unifi"), ..);
//!     static RETRY_1: StaticRetry = StaticRetry::new("unifi", checked_retry_values(RetryValues { max_attempts: Given(3), ..NONE }));
//!     let breaker_0 = BREAKER_0.get();
//!     let result = breaker_call_described(breaker_0, &flags, async {
//!         let mut state = RetryState::new("unifi", RETRY_1.get());
//!         loop {
//!             flags.reset();
//!             let id = retry_clone::<String>(&id);
//!             // The chaos injection point (an identity without the feature):
//!             let attempt = chaos_body(&CHAOS_SITE /* ["unifi", "mod::get"] */,
//!                 ChaosTypes::<true, true>, async { fake_return_edge; body }).await;
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
//!
//! One module per layer, each with its own Input/Output: [`breaker`],
//! [`retry`], [`guard`] (bulkhead, timeout), [`hedge`], [`fallback`], the
//! [`manifest`] entry every layer adds, and the [`chaos`] injection point
//! around the body.

mod breaker;
mod chaos;
mod fallback;
mod guard;
mod hedge;
mod manifest;
mod retry;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::func::Func;
use crate::layers::{Attr, Kind, Layer};

/// A local only the expansion can name.
fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The names the layers share.
#[derive(Clone)]
struct Names {
    flags: Ident,
    convert: Ident,
}

/// One layer's wrapper: the future it puts around the inner one.
type Wrapper<'a> = Box<dyn Fn(TokenStream) -> TokenStream + 'a>;

/// What the layers of one function share while they are generated.
struct Cx<'a> {
    func: &'a Func,
    fn_name: String,
    /// `module_path!()::fn`, the name of unnamed bulkheads and retries.
    site: TokenStream,
    names: Names,
    /// Statements before the layered call: statics, checks, clones.
    prelude: TokenStream,
    /// The static name of the function's breaker, once its layer is seen
    /// (retries below it report under it).
    breaker_name: Option<syn::LitStr>,
    /// A synchronous function: every wrapper is a closure run on the
    /// calling thread instead of a future.
    sync: bool,
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
    let site = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));
    let names = Names {
        flags: hidden("__resilience_flags"),
        convert: hidden("__resilience_convert"),
    };
    let Names { flags, .. } = &names;

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
        Layer::Breaker(_) | Layer::Bulkhead(_) | Layer::RateLimit(_) | Layer::Timeout(_) => true,
        Layer::Retry(r) => r.keys.max_elapsed.is_some(),
        Layer::Fallback(_) | Layer::Coalesce(_) | Layer::Hedge(_) => false,
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

    let mut cx = Cx {
        func,
        fn_name: func.sig.ident.to_string(),
        site,
        names,
        prelude,
        breaker_name: None,
        sync: func.is_sync(),
    };
    let mut wrappers: Vec<Wrapper<'_>> = Vec::new();
    for (i, (attr, layer)) in sites.iter().enumerate() {
        // This layer's entry in the link-time manifest.
        let site_item = format_ident!("__RESILIENCE_SITE_{}", i);
        let name = manifest::name(&cx, layer);
        let entry = manifest::call_site(&site_item, attr, layer, name, &cx.fn_name, i);
        cx.prelude.extend(entry);
        wrappers.push(match layer {
            Layer::Breaker(b) => breaker::layer(&mut cx, i, b, &site_item),
            Layer::Retry(r) => retry::layer(&mut cx, i, r),
            Layer::Bulkhead(b) => guard::bulkhead(&mut cx, i, b),
            Layer::Timeout(t) => guard::timeout(&mut cx, i, t),
            Layer::RateLimit(r) => guard::rate_limit(&mut cx, i, r),
            Layer::Coalesce(c) => guard::coalesce(&mut cx, i, c),
            Layer::Hedge(h) => hedge::layer(&mut cx, i, h),
            Layer::Fallback(f) => fallback::layer(&mut cx, f),
        });
    }
    let prelude = cx.prelude;

    // The innermost future is the user's body, its type fixed by a fake
    // return, behind the chaos injection point; each layer wraps the one
    // below it.
    let chaos_names = chaos::names(&layers, &cx.site);
    let future = wrappers
        .iter()
        .rev()
        .fold(body(func, &chaos_names), |inner, wrap| wrap(inner));

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
        Kind::RateLimit => quote!(check_rate_limit_return),
        Kind::Coalesce => quote!(check_coalesce_return),
        Kind::Hedge => quote!(check_hedge_return),
    };
    let checked = quote_spanned!(ret_span=> ::resilience::__private::#check_return(#result));

    let Func {
        attrs: fn_attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let run = if func.is_sync() {
        quote!((#future)())
    } else {
        quote!(#future.await)
    };
    let inner = quote! {
        #prelude
        let #result = #run;
        #checked
    };
    // A `fn` returning `impl Future`: the layers run in the future it returns.
    let inner = match func.future_output() {
        Some(_) if func.boxed_future() => quote!(::std::boxed::Box::pin(async move { #inner })),
        Some(_) => quote!(async move { #inner }),
        None => inner,
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
    // The expansion returns an `async` block from a `fn` returning `impl
    // Future`: not the user's doing, so not the user's lint.
    let allow = func
        .future_output()
        .map(|_| quote!(#[allow(clippy::manual_async_fn)]));
    quote! {
        #(#fn_attrs)*
        #allow
        #vis #sig #body_tokens
    }
}

/// `chaos_body(NAMES, TYPES, async { <fake return edge>; <user statements> })`:
/// the body behind the chaos injection point (see [`chaos`]; an identity
/// without the feature). For a `fn` returning `impl Future`, the future its
/// statements evaluate to (in a closure, so that a `return` in them returns
/// that future), built anew per attempt, and only once the layers let the
/// attempt run; for a synchronous `fn`, a closure (`chaos_body_sync`).
fn body(func: &Func, chaos_names: &TokenStream) -> TokenStream {
    chaos::wrap(func, chaos_names, plain_body(func))
}

/// The body alone: an `async` block, or a closure for a synchronous `fn`.
fn plain_body(func: &Func) -> TokenStream {
    let stmts = func.block.as_ref().map(|b| &b.stmts[..]).unwrap_or(&[]);
    if func.future_output().is_some() {
        // Lazy, like an `async` body: nothing of it runs unless every layer
        // lets the call through.
        return quote!(async { (|| { #(#stmts)* })().await });
    }
    if func.is_sync() {
        // A closure returning the result (a `return` or `?` in the body
        // returns from it), typed by the declared return type.
        let ty = func
            .return_type_for_inference()
            .map_or_else(|| quote!(_), |ty| quote!(#ty));
        return quote!((|| -> #ty { #(#stmts)* }));
    }
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
