//! `#[hedge]`: attempts of the body raced after a delay.

use std::time::Duration;

use syn::{Expr, ExprLit, FnArg, Lit, LitStr, Type};

use resilience_spec::{HedgeDelayValue, HedgeValues};

use super::{key, report};
use crate::args::{Arg, Args, Errors};
use crate::func::Func;
use crate::value::{self, Val};

pub(crate) const HEDGE_KEYS: &[&str] = &resilience_spec::keys::HEDGE_NAMES;

pub(crate) struct Hedge {
    /// `None`: named after the function.
    pub(crate) name: Option<LitStr>,
    pub(crate) delay: Option<Val<HedgeDelayValue>>,
    pub(crate) warmup_delay: Option<Val<Duration>>,
    pub(crate) max_hedges: Option<Val<u64>>,
    pub(crate) min_samples: Option<Val<u64>>,
    pub(crate) period: Option<Val<Duration>>,
    /// A retry budget each hedge draws from.
    pub(crate) budget: Option<LitStr>,
}

/// The keys of `#[hedge]`, checked by the spec.
pub(crate) fn parse(args: &Args, errors: &mut Errors) -> Hedge {
    let hedge = Hedge {
        name: super::guard::literal_name(args, "name", "hedge", "search", errors),
        delay: key(args, "delay", delay, errors),
        warmup_delay: key(args, "warmup_delay", value::duration, errors),
        max_hedges: key(args, "max_hedges", value::count, errors),
        min_samples: key(args, "min_samples", value::count, errors),
        period: key(args, "period", value::duration, errors),
        budget: super::guard::literal_name(args, "budget", "retry budget", "api", errors),
    };
    let values = HedgeValues {
        delay: Val::spec(&hedge.delay),
        warmup_delay: Val::spec(&hedge.warmup_delay),
        max_hedges: Val::spec(&hedge.max_hedges),
        min_samples: Val::spec(&hedge.min_samples),
        period: Val::spec(&hedge.period),
    };
    report(args, &values.check(), errors);
    hedge
}

/// `delay = "50ms"`, `delay = 0.05` (seconds), `delay = "p95"`, or a
/// constant `Duration`.
fn delay(arg: &Arg) -> syn::Result<Val<HedgeDelayValue>> {
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => resilience_spec::hedge::parse_delay(&s.value())
            .map(Val::Lit)
            .map_err(|why| syn::Error::new(s.span(), why)),
        _ => Ok(match value::duration(arg)? {
            Val::Lit(d) => Val::Lit(HedgeDelayValue::Fixed(d)),
            Val::Const(expr) => Val::Const(expr),
            Val::Invalid => Val::Invalid,
        }),
    }
}

/// The attempts of a hedged call run at the same time, each with its own
/// clone of the by-value arguments: a `&mut` receiver or argument cannot be
/// shared between them.
pub(crate) fn check_shared(func: &Func, span: proc_macro2::Span, errors: &mut Errors) {
    for input in &func.sig.inputs {
        match input {
            FnArg::Receiver(r)
                if r.mutability.is_some()
                    || matches!(&*r.ty, Type::Reference(rr) if rr.mutability.is_some()) =>
            {
                errors.push_at(
                r,
                "`#[hedge]` runs several attempts of the body at the same time, and they cannot share `&mut self` (nor a `mut self`): take `&self`, with interior mutability (a `Mutex`, an atomic) for what the body changes",
                )
            }
            FnArg::Typed(t) if matches!(&*t.ty, Type::Reference(r) if r.mutability.is_some()) => {
                errors.push_at(
                    &t.ty,
                    "`#[hedge]` runs several attempts of the body at the same time, and they cannot share a `&mut` argument: pass it by value (each attempt gets a clone) or as `&` with interior mutability",
                )
            }
            _ => {}
        }
    }
    if func.is_sync() {
        errors.push_span(
            span,
            "`#[hedge]` needs an `async fn` (or one returning a future): it races attempts, and a blocking call cannot be raced or cancelled",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages `check_shared` reports for a function item.
    fn errors_of(item: &str) -> Vec<String> {
        let func: Func = syn::parse_str(item).expect("a function");
        let mut errors = Errors::default();
        check_shared(&func, proc_macro2::Span::call_site(), &mut errors);
        errors.messages()
    }

    #[test]
    fn attempts_cannot_share_a_mutable_receiver_however_it_is_written() {
        for item in [
            "async fn f(&mut self) {}",
            "async fn f(mut self) {}",
            "async fn f(self: &mut Self) {}",
        ] {
            let errors = errors_of(item);
            assert_eq!(errors.len(), 1, "{item}: {errors:?}");
            assert!(
                errors[0].contains("cannot share `&mut self`"),
                "{item}: {errors:?}"
            );
        }
        for item in [
            "async fn f(&self) {}",
            "async fn f(self) {}",
            "async fn f(self: &Self) {}",
            "async fn f(self: Arc<Self>) {}",
        ] {
            assert_eq!(errors_of(item), Vec::<String>::new(), "{item}");
        }
    }

    #[test]
    fn attempts_cannot_share_a_mutable_argument() {
        let errors = errors_of("async fn f(&self, buf: &mut Vec<u8>) {}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("cannot share a `&mut` argument"),
            "{errors:?}"
        );
        assert!(errors_of("async fn f(&self, buf: &Vec<u8>, n: u32) {}").is_empty());
    }
}
