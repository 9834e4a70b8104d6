//! The innermost wrapper: the body behind the chaos injection point
//! (`resilience::chaos`, feature `chaos`; an identity without it).
//!
//! Input:  `#[circuit_breaker(name = "unifi")] async fn get(&self) -> Result<Vec<Device>, ApiError> { body }`
//! Output: `chaos_body({ static SITE: ChaosSite = ChaosSite::new(&["unifi",
//!          concat!(module_path!(), "::", "get")]); &SITE },
//!          ChaosTypes::<true, true>, async { body })`; a synchronous `fn`'s
//!          body closure goes through `chaos_body_sync`.
//!
//! The names are the layers' static names, then the default name, last.
//! `ChaosTypes::<VALUES, ERRORS>` says whether the `Ok` and the error type
//! are owned as far as their tokens show (no lifetime, reference, `Self`,
//! `impl`, `_` or type parameter): only an owned type can take an injected
//! value (the runtime downcasts to it, which needs `'static`), so that a
//! function returning `Result<&str, E>` still compiles and gets latency,
//! panics and errors, but no injected `Ok` value.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::{GenericArgument, GenericParam, PathArguments, Type, TypeParamBound, WherePredicate};

use crate::func::Func;
use crate::layers::{BreakerName, Layer};

/// `{ static SITE: ChaosSite = ChaosSite::new(&["unifi", …,
/// concat!(module_path!(), "::", "get")]); &SITE }`: every static name of
/// the layers, then the default name, in a `static` (the future keeps one
/// pointer to it).
pub(super) fn names(layers: &[&Layer], site: &TokenStream) -> TokenStream {
    let mut seen: Vec<String> = Vec::new();
    let mut lits = Vec::new();
    for layer in layers {
        let lit = match layer {
            Layer::Breaker(b) => match &b.name {
                BreakerName::Static(lit) => Some(lit),
                BreakerName::Dynamic(_) | BreakerName::Private => None,
            },
            Layer::Bulkhead(b) => b.name.as_ref(),
            Layer::RateLimit(r) => r.name.as_ref(),
            Layer::Coalesce(c) => c.name.as_ref(),
            Layer::Hedge(h) => h.name.as_ref(),
            Layer::Retry(_) | Layer::Timeout(_) | Layer::Fallback(_) => None,
        };
        if let Some(lit) = lit {
            if !seen.contains(&lit.value()) {
                seen.push(lit.value());
                lits.push(lit);
            }
        }
    }
    quote! {{
        static __RESILIENCE_CHAOS: ::resilience::__private::ChaosSite =
            ::resilience::__private::ChaosSite::new(&[#(#lits,)* #site]);
        &__RESILIENCE_CHAOS
    }}
}

/// The body (`inner`: an `async` block, or a closure for a synchronous
/// function) behind the injection point.
pub(super) fn wrap(func: &Func, names: &TokenStream, inner: TokenStream) -> TokenStream {
    let (values, errors) = owned_parts(func);
    let span = func.return_span();
    let types = quote_spanned!(span=> ::resilience::__private::ChaosTypes::<#values, #errors>);
    if func.is_sync() {
        quote!(::resilience::__private::chaos_body_sync(#names, #types, #inner))
    } else {
        quote!(::resilience::__private::chaos_body(#names, #types, #inner))
    }
}

/// Whether the `Ok` type and the error type are owned, as far as the tokens
/// of the result type show. Only a type named `Result` or `…Result`
/// (`io::Result<T>`, `ApiResult<T>`) is judged at all: the runtime's typed
/// injection needs a `Result`, and an alias of something else (`type Count
/// = u32`) must get the attribute's own diagnostic only. `Result<T, E>` is
/// judged part by part; an alias `X<T>` has its `Ok` type in `T` and its
/// error type in the rest; an alias without arguments in itself.
fn owned_parts(func: &Func) -> (bool, bool) {
    let Some(ty @ Type::Path(p)) = func.result_type() else {
        return (false, false);
    };
    let Some(last) = p.path.segments.last() else {
        return (false, false);
    };
    if p.qself.is_some() || !last.ident.to_string().ends_with("Result") {
        return (false, false);
    }
    let params = TypeParams::of(func);
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        let all = params.owned(ty.to_token_stream());
        return (all, all);
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    // The path without its last arguments, and the arguments that are not
    // types (lifetimes, constants): part of both the `Ok` and the error type.
    let mut prefix = p.path.clone();
    if let Some(last) = prefix.segments.last_mut() {
        last.arguments = PathArguments::None;
    }
    let rest = params.owned(prefix.to_token_stream())
        && args.args.iter().all(|a| match a {
            GenericArgument::Type(_) => true,
            other => params.owned(other.to_token_stream()),
        });
    let owned = |t: &Type| rest && params.owned(t.to_token_stream());
    match types.as_slice() {
        [ok, err] => (owned(ok), owned(err)),
        [ok] => (owned(ok), rest),
        _ => {
            let all = params.owned(ty.to_token_stream());
            (all, all)
        }
    }
}

/// The function's type parameters, and those of them bound by `'static`.
struct TypeParams {
    all: Vec<String>,
    owned: Vec<String>,
}

impl TypeParams {
    fn of(func: &Func) -> Self {
        let generics = &func.sig.generics;
        let mut all = Vec::new();
        let mut owned = Vec::new();
        let is_static =
            |b: &TypeParamBound| matches!(b, TypeParamBound::Lifetime(l) if l.ident == "static");
        for param in &generics.params {
            if let GenericParam::Type(t) = param {
                all.push(t.ident.to_string());
                if t.bounds.iter().any(is_static) {
                    owned.push(t.ident.to_string());
                }
            }
        }
        for predicate in generics.where_clause.iter().flat_map(|w| &w.predicates) {
            if let WherePredicate::Type(p) = predicate {
                if let Type::Path(tp) = &p.bounded_ty {
                    if let Some(ident) = tp.path.get_ident() {
                        if p.bounds.iter().any(is_static) {
                            owned.push(ident.to_string());
                        }
                    }
                }
            }
        }
        TypeParams { all, owned }
    }

    /// Whether `tokens` (a type) shows nothing that may borrow: a lifetime
    /// other than `'static`, a reference, `Self`, `impl`, `_`, a type
    /// parameter of the function not bound by `'static`, or a name that
    /// reads as one of an enclosing `impl` (`T`, `E2`: one capital letter,
    /// maybe digits, first in its path).
    fn owned(&self, tokens: TokenStream) -> bool {
        let mut after_colons = false;
        let mut after_quote = false;
        for tree in tokens {
            let owned = match &tree {
                TokenTree::Group(g) => self.owned(g.stream()),
                TokenTree::Punct(p) => {
                    let c = p.as_char();
                    c != '&' && c != '*'
                }
                TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    if after_quote {
                        name == "static"
                    } else {
                        let param = self.all.contains(&name) && !self.owned.contains(&name);
                        let looks_like_param = !after_colons && self.looks_like_param(&name);
                        !(name == "Self"
                            || name == "impl"
                            || name == "_"
                            || param
                            || looks_like_param)
                    }
                }
                TokenTree::Literal(_) => true,
            };
            if !owned {
                return false;
            }
            after_quote = matches!(&tree, TokenTree::Punct(p) if p.as_char() == '\'');
            after_colons = matches!(&tree, TokenTree::Punct(p) if p.as_char() == ':');
        }
        true
    }

    fn looks_like_param(&self, name: &str) -> bool {
        if self.owned.iter().any(|o| o == name) {
            return false;
        }
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_digit())
    }
}
