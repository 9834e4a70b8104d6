//! The link-time manifest entry of each layer.
//!
//! Input:  the `#[circuit_breaker(name = "unifi", on_open = alert)]` layer of `fn get`
//! Output: `#[distributed_slice(CALL_SITES)] static SITE_0: CallSite =
//!          CallSite::__new(CircuitBreaker, "circuit_breaker", Static("unifi"),
//!          &[("name", "\"unifi\""), ("on_open", "alert")], module_path!(), "get",
//!          file!(), line!()).__callbacks(callback(alert), None, None);`

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::Cx;
use crate::layers::{Attr, BreakerName, Layer};

/// The manifest's `Name` of `layer`: a retry reports under its breaker's
/// static name, when the function has one.
pub(super) fn name(cx: &Cx<'_>, layer: &Layer) -> TokenStream {
    let site_name = quote!(::resilience::__private::SiteName);
    match layer {
        Layer::Breaker(b) => match &b.name {
            BreakerName::Static(lit) => quote!(#site_name::Static(#lit)),
            BreakerName::Dynamic(expr) => {
                let source = crate::source::text(quote!(#expr));
                quote!(#site_name::Dynamic(#source))
            }
            BreakerName::Private => quote!(#site_name::Default),
        },
        // A retry and a timeout are configured under the breaker's static
        // name, when the function has one.
        Layer::Retry(_) | Layer::Timeout(_) => match &cx.breaker_name {
            Some(lit) => quote!(#site_name::Static(#lit)),
            None => quote!(#site_name::Default),
        },
        Layer::Bulkhead(b) => match &b.name {
            Some(lit) => quote!(#site_name::Static(#lit)),
            None => quote!(#site_name::Default),
        },
        Layer::RateLimit(r) => match &r.name {
            Some(lit) => quote!(#site_name::Static(#lit)),
            None => quote!(#site_name::Default),
        },
        Layer::Coalesce(c) => match &c.name {
            Some(lit) => quote!(#site_name::Static(#lit)),
            None => quote!(#site_name::Default),
        },
        Layer::Hedge(h) => match &h.name {
            Some(lit) => quote!(#site_name::Static(#lit)),
            None => quote!(#site_name::Default),
        },
        Layer::Fallback(_) => quote!(#site_name::Default),
    }
}

/// The manifest entry of one layer (`resilience::manifest::CallSite`), added
/// to the link-time list, and the `static` holding it.
pub(super) fn call_site(
    item: &Ident,
    attr: &Attr,
    layer: &Layer,
    name: TokenStream,
    fn_name: &str,
    i: usize,
) -> TokenStream {
    let private = quote!(::resilience::__private);
    // The statics of the layer (emitted by its expansion, same index).
    let policy = match layer {
        Layer::Breaker(b) => match &b.name {
            BreakerName::Dynamic(_) => {
                let config = format_ident!("__RESILIENCE_CONFIG_{}", i);
                quote!(.__policy(#private::SitePolicy::DynamicBreaker(&#config)))
            }
            _ => {
                let cell = format_ident!("__RESILIENCE_BREAKER_{}", i);
                quote!(.__policy(#private::SitePolicy::Breaker(&#cell)))
            }
        },
        Layer::Retry(_) => {
            let cell = format_ident!("__RESILIENCE_RETRY_{}", i);
            quote!(.__policy(#private::SitePolicy::Retry(&#cell)))
        }
        Layer::Timeout(_) => {
            let cell = format_ident!("__RESILIENCE_TIMEOUT_{}", i);
            quote!(.__policy(#private::SitePolicy::Timeout(&#cell)))
        }
        Layer::Bulkhead(b) if b.adaptive.is_some() => {
            let cell = format_ident!("__RESILIENCE_BULKHEAD_{}", i);
            quote!(.__policy(#private::SitePolicy::Adaptive(&#cell)))
        }
        Layer::Bulkhead(_) => {
            let cell = format_ident!("__RESILIENCE_BULKHEAD_{}", i);
            quote!(.__policy(#private::SitePolicy::Bulkhead(&#cell)))
        }
        Layer::RateLimit(_) => {
            let cell = format_ident!("__RESILIENCE_RATE_LIMIT_{}", i);
            quote!(.__policy(#private::SitePolicy::RateLimit(&#cell)))
        }
        Layer::Coalesce(_) => {
            let cell = format_ident!("__RESILIENCE_COALESCE_{}", i);
            quote!(.__policy(#private::SitePolicy::Coalesce(&#cell)))
        }
        Layer::Hedge(_) => {
            let cell = format_ident!("__RESILIENCE_HEDGE_{}", i);
            quote!(.__policy(#private::SitePolicy::Hedge(&#cell)))
        }
        Layer::Fallback(_) => quote!(),
    };
    let kind = match layer {
        Layer::Breaker(_) => quote!(CircuitBreaker),
        Layer::Retry(_) => quote!(Retry),
        Layer::Timeout(_) => quote!(Timeout),
        Layer::Bulkhead(_) => quote!(Bulkhead),
        Layer::RateLimit(_) => quote!(RateLimit),
        Layer::Coalesce(_) => quote!(Coalesce),
        Layer::Hedge(_) => quote!(Hedge),
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
        )#callbacks #policy;
    }
}
