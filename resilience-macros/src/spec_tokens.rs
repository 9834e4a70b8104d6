//! The keys a layer was given, written back as the spec's `*Values` structs
//! that the runtime turns into its configuration in a `const`: a literal is
//! written as its value; a constant as itself, so that the compiler
//! evaluates it and the spec's check (run by const evaluation) reports a bad
//! one with the spec's words, under the constant's tokens.
//!
//! Input:  `failure_threshold = 3, recovery_timeout = config::OPEN`
//! Output: `breaker_config(BreakerValues { failure_threshold: Value::Given(3),
//!          recovery_timeout: Value::Given(config::OPEN), ..BreakerValues::NONE })`

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use resilience_spec::{BackoffKind, HedgeDelayValue, Jitter, WindowValue};
use syn::spanned::Spanned;

use crate::layers::guard::Adaptive;
use crate::layers::hedge::Hedge;
use crate::layers::{Breaker, Bulkhead, RateLimit, Retry};
use crate::value::Val;

/// `::core::time::Duration::new(s, n)`, usable in `const` items.
pub(crate) fn duration(d: Duration) -> TokenStream {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    quote!(::core::time::Duration::new(#secs, #nanos))
}

/// How a key's value is written in generated code.
trait Tokens {
    fn literal(&self) -> TokenStream;
    /// A constant of the key's type: itself, unless it needs a conversion.
    fn constant(expr: &syn::Expr) -> TokenStream {
        quote!(#expr)
    }
}

impl Tokens for u64 {
    fn literal(&self) -> TokenStream {
        quote!(#self)
    }
    fn constant(expr: &syn::Expr) -> TokenStream {
        // A count is a `u32`, as in the builders.
        quote_spanned!(expr.span()=> ::resilience::__private::count(#expr))
    }
}

impl Tokens for bool {
    fn literal(&self) -> TokenStream {
        quote!(#self)
    }
}

impl Tokens for f64 {
    fn literal(&self) -> TokenStream {
        quote!(#self)
    }
}

impl Tokens for Duration {
    fn literal(&self) -> TokenStream {
        duration(*self)
    }
}

impl Tokens for WindowValue {
    fn literal(&self) -> TokenStream {
        let private = quote!(::resilience::__private);
        match *self {
            WindowValue::Calls(n) => quote!(#private::WindowValue::Calls(#n)),
            WindowValue::Time(d) => {
                let d = duration(d);
                quote!(#private::WindowValue::Time(#d))
            }
        }
    }
}

impl Tokens for HedgeDelayValue {
    fn literal(&self) -> TokenStream {
        let spec = quote!(::resilience::__private::spec);
        match *self {
            HedgeDelayValue::Fixed(d) => {
                let d = duration(d);
                quote!(#spec::HedgeDelayValue::Fixed(#d))
            }
            HedgeDelayValue::Percentile(p) => quote!(#spec::HedgeDelayValue::Percentile(#p)),
        }
    }
    /// A constant `delay` is a `Duration`: a fixed delay.
    fn constant(expr: &syn::Expr) -> TokenStream {
        quote_spanned!(expr.span()=> ::resilience::__private::spec::HedgeDelayValue::Fixed(#expr))
    }
}

impl Tokens for resilience_spec::AdaptiveAlgorithm {
    fn literal(&self) -> TokenStream {
        let variant = match self {
            resilience_spec::AdaptiveAlgorithm::Aimd => quote!(Aimd),
            resilience_spec::AdaptiveAlgorithm::Gradient2 => quote!(Gradient2),
        };
        quote!(::resilience::__private::spec::AdaptiveAlgorithm::#variant)
    }
}

impl Tokens for BackoffKind {
    fn literal(&self) -> TokenStream {
        let variant = proc_macro2::Ident::new(self.variant(), Span::call_site());
        quote!(::resilience::BackoffKind::#variant)
    }
}

impl Tokens for Jitter {
    fn literal(&self) -> TokenStream {
        let variant = proc_macro2::Ident::new(self.variant(), Span::call_site());
        quote!(::resilience::Jitter::#variant)
    }
}

/// The fields of a `*Values` struct, one per key written, and the span of
/// the first constant (where a problem only const evaluation finds is
/// reported).
#[derive(Default)]
struct Fields {
    fields: Vec<TokenStream>,
    constant: Option<Span>,
}

impl Fields {
    fn add<T: Tokens>(&mut self, key: &str, v: &Option<Val<T>>) {
        let value = match v {
            Some(Val::Lit(t)) => t.literal(),
            Some(Val::Const(expr)) => {
                self.constant.get_or_insert(expr.span());
                T::constant(expr)
            }
            None | Some(Val::Invalid) => return,
        };
        let key = proc_macro2::Ident::new(key, Span::call_site());
        self.fields
            .push(quote!(#key: ::resilience::__private::Value::Given(#value)));
    }

    /// `private::$make(private::$ty { fields, ..private::$ty::NONE })`,
    /// spanned at the first constant.
    /// `keys` is how many fields `ty` has: when every one is written, no
    /// `..NONE` (which would be a needless update in the user's crate).
    fn call(self, make: &str, ty: &str, keys: usize) -> TokenStream {
        let span = self.constant.unwrap_or_else(Span::call_site);
        let make = proc_macro2::Ident::new(make, span);
        let ty = proc_macro2::Ident::new(ty, span);
        let rest = (self.fields.len() < keys)
            .then(|| quote_spanned!(span=> ..::resilience::__private::spec::#ty::NONE));
        let fields = self.fields;
        quote_spanned! {span=>
            ::resilience::__private::#make(::resilience::__private::spec::#ty {
                #(#fields,)* #rest
            })
        }
    }
}

/// The breaker's `BreakerConfig`, for a `static` or `const` initializer.
pub(crate) fn breaker_config(b: &Breaker) -> TokenStream {
    let k = &b.keys;
    let mut f = Fields::default();
    f.add("failure_threshold", &k.failure_threshold);
    f.add("recovery_timeout", &k.recovery_timeout);
    f.add("success_threshold", &k.success_threshold);
    f.add("half_open_max_calls", &k.half_open_max_calls);
    f.add("window", &k.window);
    f.add("failure_rate", &k.failure_rate);
    f.add("min_calls", &k.min_calls);
    f.add("slow_call", &k.slow_call);
    f.add("slow_call_rate", &k.slow_call_rate);
    f.add("recovery_timeout_max", &k.recovery_timeout_max);
    f.add("fleet_threshold", &k.fleet_threshold);
    f.call("breaker_config", "BreakerValues", 11)
}

/// The retry's `RetryPolicy`, for a `static` initializer.
pub(crate) fn retry_values(r: &Retry) -> TokenStream {
    let k = &r.keys;
    let mut f = Fields::default();
    f.add("max_attempts", &k.max_attempts);
    f.add("backoff", &k.backoff);
    f.add("delay", &k.delay);
    f.add("max_delay", &k.max_delay);
    f.add("multiplier", &k.multiplier);
    f.add("jitter", &k.jitter);
    f.add("max_elapsed", &k.max_elapsed);
    f.call("checked_retry_values", "RetryValues", 7)
}

/// The bulkhead's `BulkheadValues` (its limits, checked in the `static`).
pub(crate) fn bulkhead_values(b: &Bulkhead) -> TokenStream {
    let mut f = Fields::default();
    f.add("max_concurrent", &b.max_concurrent);
    f.add("max_wait", &b.max_wait);
    f.call("bulkhead_values", "BulkheadValues", 2)
}

/// An adaptive bulkhead's `AdaptiveValues` (checked in the `static`).
pub(crate) fn adaptive_values(b: &Bulkhead, a: &Adaptive) -> TokenStream {
    let mut f = Fields::default();
    f.add("min_limit", &a.min_limit);
    f.add("max_limit", &a.max_limit);
    f.add("initial_limit", &a.initial_limit);
    f.add("latency_threshold", &a.latency_threshold);
    f.add("max_wait", &b.max_wait);
    f.add("algorithm", &Some(Val::Lit(a.algorithm)));
    f.add("tolerance", &a.tolerance);
    f.add("sample_window", &a.sample_window);
    f.call("checked_adaptive_values", "AdaptiveValues", 8)
}

/// The rate limiter's `RateLimitValues` (checked in the `static`).
pub(crate) fn rate_limit_values(r: &RateLimit) -> TokenStream {
    let mut f = Fields::default();
    f.add("rate", &r.rate);
    f.add("per", &r.per);
    f.add("burst", &r.burst);
    f.add("max_wait", &r.max_wait);
    f.add("fleet", &r.fleet);
    f.call("checked_rate_limit_values", "RateLimitValues", 5)
}

/// The timeout's `TimeoutValues` (its duration, checked in the `static`).
pub(crate) fn timeout_values(after: &Val<Duration>) -> TokenStream {
    let mut f = Fields::default();
    f.add("timeout", &Some(after.clone()));
    f.call("checked_timeout_values", "TimeoutValues", 1)
}

/// The hedge's `HedgeValues` (checked in the `static`).
pub(crate) fn hedge_values(h: &Hedge) -> TokenStream {
    let mut f = Fields::default();
    f.add("delay", &h.delay);
    f.add("warmup_delay", &h.warmup_delay);
    f.add("max_hedges", &h.max_hedges);
    f.add("min_samples", &h.min_samples);
    f.add("period", &h.period);
    f.call("checked_hedge_values", "HedgeValues", 5)
}
