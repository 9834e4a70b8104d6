//! The fallback layer.
//!
//! Input:  `fallback = Self::cached` around `inner`
//! Output: `async { let result = inner.await; match split_error(result) {
//!          Ok(ok) => ok, Err(e) => expect.fallback(Self::cached(self, id, e).await) } }`,
//!         with the by-value arguments cloned for it before the body runs.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{hidden, Cx, Wrapper};
use crate::func::{FallbackArg, Func};
use crate::layers::Fallback;

/// The fallback layer.
pub(super) fn layer<'a>(cx: &mut Cx<'a>, f: &'a Fallback) -> Wrapper<'a> {
    let (clones, args) = fallback_args(cx.func);
    cx.prelude.extend(clones);
    let path = f.path.clone();
    let (result, expect) = (hidden("__resilience_result"), hidden("__resilience_expect"));
    // Spanned at the path: a fallback that does not fit (arguments, error
    // type, `async`, return type) is reported under it.
    let error = Ident::new(
        "__resilience_error",
        Span::mixed_site().located_at(path.span()),
    );
    let ok = hidden("__resilience_ok");
    if cx.sync {
        let call = quote_spanned! {path.span()=>
            #expect.fallback(#path(#(#args,)* #error))
        };
        return Box::new(move |inner| {
            quote! {
                (|| {
                    let #result = (#inner)();
                    let #expect = ::resilience::__private::expect(&#result);
                    match ::resilience::__private::split_error(#result) {
                        ::core::result::Result::Ok(#ok) => #ok,
                        ::core::result::Result::Err(#error) => #call,
                    }
                })
            }
        });
    }
    let call = quote_spanned! {path.span()=>
        #expect.fallback(#path(#(#args,)* #error).await)
    };
    Box::new(move |inner| {
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
    })
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
