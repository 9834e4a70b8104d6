//! The hedge layer: attempts of everything below it raced after a delay.
//!
//! Input:  `#[hedge(name = "search", delay = "50ms", budget = "api")]` around `inner`
//! Output: `static HEDGE_0: StaticHedge = StaticHedge::new("search", VALUES);`
//!         `static BUDGET_0: StaticBudget = StaticBudget::new("api");` and
//!         `hedge_call(HEDGE_0.get(), &flags, Some(BUDGET_0.get()),
//!          || async { <clone by-value args>; inner.await })`: each call of
//!         the closure is one attempt, with its own clones; the attempts
//!         borrow `&self` and the reference arguments together.

use quote::{format_ident, quote};

use super::retry::clones;
use super::{Cx, Wrapper};
use crate::layers::hedge::Hedge;
use crate::spec_tokens::hedge_values;

/// Layer `i`, a hedge.
pub(super) fn layer<'a>(cx: &mut Cx<'a>, i: usize, h: &'a Hedge) -> Wrapper<'a> {
    let cell = format_ident!("__RESILIENCE_HEDGE_{}", i);
    let name = match &h.name {
        Some(lit) => quote!(#lit),
        None => cx.site.clone(),
    };
    let values = hedge_values(h);
    cx.prelude.extend(quote! {
        static #cell: ::resilience::__private::StaticHedge =
            ::resilience::__private::StaticHedge::new(#name, #values);
    });
    let budget = match &h.budget {
        Some(budget) => {
            let budget_cell = format_ident!("__RESILIENCE_HEDGE_BUDGET_{}", i);
            cx.prelude.extend(quote! {
                static #budget_cell: ::resilience::__private::StaticBudget =
                    ::resilience::__private::StaticBudget::new(#budget);
            });
            quote!(::core::option::Option::Some(#budget_cell.get()))
        }
        None => quote!(::core::option::Option::None),
    };
    let clones = clones(cx.func, true);
    // A `mut` argument is only read by the attempts (each clones it): one
    // mutable use here keeps rustc's `unused_mut` off the user's signature.
    let mut_uses: Vec<_> = cx
        .func
        .cloned_args()
        .into_iter()
        .filter(|arg| arg.binding.mutability.is_some())
        .map(|arg| {
            let ident = &arg.binding.ident;
            quote!(let _ = &mut #ident;)
        })
        .collect();
    let flags = cx.names.flags.clone();
    Box::new(move |inner| {
        quote! {
            {
                #(#mut_uses)*
                ::resilience::__private::hedge_call(#cell.get(), &#flags, #budget, || async {
                    #(#clones)*
                    #inner.await
                })
            }
        }
    })
}
