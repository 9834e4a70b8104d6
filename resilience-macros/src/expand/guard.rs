//! The bulkhead and timeout layers.
//!
//! Input:  `#[bulkhead(name = "db", max_concurrent = 4)]` / `#[timeout("30s")]` around `inner`
//! Output: `static BULKHEAD_0: StaticBulkhead = StaticBulkhead::new("db", VALUES);` and
//!         `bulkhead_call(BULKHEAD_0.get(), inner, convert)`; `static TIMEOUT_1:
//!         StaticTimeout = StaticTimeout::new(name, VALUES);` and
//!         `timeout(TIMEOUT_1.get(), &flags, inner, convert)`.

use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Cx, Wrapper};
use crate::layers::{Bulkhead, Coalesce, RateLimit, Timeout};
use crate::spec_tokens::{adaptive_values, bulkhead_values, rate_limit_values, timeout_values};

/// Layer `i`, a bulkhead.
pub(super) fn bulkhead<'a>(cx: &mut Cx<'a>, i: usize, b: &'a Bulkhead) -> Wrapper<'a> {
    let cell = format_ident!("__RESILIENCE_BULKHEAD_{}", i);
    let name = match &b.name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    if let Some(adaptive) = &b.adaptive {
        let values = adaptive_values(b, adaptive);
        cx.prelude.extend(quote! {
            static #cell: ::resilience::__private::StaticAdaptive =
                ::resilience::__private::StaticAdaptive::new(#name, #values);
        });
        let convert = cx.names.convert.clone();
        if cx.sync {
            return Box::new(
                move |inner| quote!((|| ::resilience::__private::adaptive_call_sync(#cell.get(), #inner, #convert))),
            );
        }
        return Box::new(
            move |inner| quote!(::resilience::__private::adaptive_call(#cell.get(), #inner, #convert)),
        );
    }
    let values = bulkhead_values(b);
    cx.prelude.extend(quote! {
        static #cell: ::resilience::__private::StaticBulkhead =
            ::resilience::__private::StaticBulkhead::new(#name, #values);
    });
    let convert = cx.names.convert.clone();
    if cx.sync {
        return Box::new(
            move |inner| quote!((|| ::resilience::__private::bulkhead_call_sync(#cell.get(), #inner, #convert))),
        );
    }
    Box::new(
        move |inner| quote!(::resilience::__private::bulkhead_call(#cell.get(), #inner, #convert)),
    )
}

/// Layer `i`, a rate limiter.
pub(super) fn rate_limit<'a>(cx: &mut Cx<'a>, i: usize, r: &'a RateLimit) -> Wrapper<'a> {
    let cell = format_ident!("__RESILIENCE_RATE_LIMIT_{}", i);
    let name = match &r.name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    let values = rate_limit_values(r);
    cx.prelude.extend(quote! {
        static #cell: ::resilience::__private::StaticRateLimiter =
            ::resilience::__private::StaticRateLimiter::new(#name, #values);
    });
    let (flags, convert) = (cx.names.flags.clone(), cx.names.convert.clone());
    if cx.sync {
        return Box::new(
            move |inner| quote!((|| ::resilience::__private::rate_limit_call_sync(#cell.get(), &#flags, #inner, #convert))),
        );
    }
    Box::new(
        move |inner| quote!(::resilience::__private::rate_limit_call(#cell.get(), &#flags, #inner, #convert)),
    )
}

/// Layer `i`, request coalescing: the calls of an equal key share one run.
pub(super) fn coalesce<'a>(cx: &mut Cx<'a>, i: usize, c: &'a Coalesce) -> Wrapper<'a> {
    let cell = format_ident!("__RESILIENCE_COALESCE_{}", i);
    let name = match &c.name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    cx.prelude.extend(quote! {
        static #cell: ::resilience::Coalescer = ::resilience::Coalescer::new(#name);
    });
    let key = &c.key;
    let key = quote_spanned!(key.span()=> ::resilience::__private::coalesce_key((#key).to_owned()));
    Box::new(move |inner| quote!(#cell.run(#key, #inner)))
}

/// Layer `i`, a timeout (checked in a `const`).
pub(super) fn timeout<'a>(cx: &mut Cx<'a>, i: usize, t: &'a Timeout) -> Wrapper<'a> {
    let item = format_ident!("__RESILIENCE_TIMEOUT_{}", i);
    let values = timeout_values(&t.after);
    // Configured by name under the breaker's static name, when it has one.
    let label = match &cx.breaker_name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    cx.prelude.extend(quote! {
        static #item: ::resilience::__private::StaticTimeout =
            ::resilience::__private::StaticTimeout::new(#label, #values);
    });
    let (flags, convert) = (cx.names.flags.clone(), cx.names.convert.clone());
    Box::new(
        move |inner| quote!(::resilience::__private::timeout(#item.get(), &#flags, #inner, #convert)),
    )
}
