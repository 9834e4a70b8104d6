//! The innermost layer of every expansion: the body itself, or what an
//! injection of [`crate::chaos`] puts in its place (feature `chaos`).
//! Without the feature, an `#[inline(always)]` identity.
//!
//! The macro passes the function's names in a `static` [`ChaosSite`] (each
//! layer's static name, then the default name `module::function`, last) and
//! a [`ChaosTypes`] that says whether the function's `Ok` and error types
//! are owned (`'static`) as far as their tokens show; only those can take an
//! injected value.

/// The names of one annotated function, in a `static` of its expansion, so
/// that its future holds one pointer to them.
#[derive(Debug)]
pub struct ChaosSite {
    #[cfg_attr(not(feature = "chaos"), allow(dead_code))]
    names: &'static [&'static str],
}

impl ChaosSite {
    /// The names: each layer's static name, then the default name, last.
    pub const fn new(names: &'static [&'static str]) -> Self {
        ChaosSite { names }
    }
}

/// Whether the function's `Ok` type (`VALUES`) and error type (`ERRORS`)
/// can take injected values: the macro says `true` when the type's tokens
/// have no lifetime, reference, `Self` or type parameter.
#[derive(Debug, Clone, Copy)]
pub struct ChaosTypes<const VALUES: bool, const ERRORS: bool>;

#[cfg(not(feature = "chaos"))]
mod off {
    /// The body, unchanged (feature `chaos` off).
    #[inline(always)]
    pub fn chaos_body<F, K>(_site: &'static super::ChaosSite, _types: K, body: F) -> F {
        body
    }

    /// The body closure, unchanged (feature `chaos` off).
    #[inline(always)]
    pub fn chaos_body_sync<F, K>(_site: &'static super::ChaosSite, _types: K, body: F) -> F {
        body
    }
}

#[cfg(not(feature = "chaos"))]
pub use off::*;

#[cfg(feature = "chaos")]
pub use on::*;

#[cfg(feature = "chaos")]
mod on {
    use std::future::Future;
    use std::marker::PhantomData;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{ChaosSite, ChaosTypes};
    pub use crate::chaos::armed::Typed as ChaosTyped;
    pub use crate::chaos::catalog::Maker as ChaosMaker;
    use crate::chaos::{active_anywhere, decide, Decision};

    /// What a function's result type can take from an injection: an error
    /// of its error type, an `Ok` value of its `Ok` type, each only when the
    /// type is owned ([`ChaosTypes`]).
    #[diagnostic::on_unimplemented(
        message = "resilience attributes need an `async fn` returning `Result<_, _>`, found `{R}`",
        label = "this must be a `Result<T, E>`"
    )]
    pub trait ChaosInject<R> {
        /// `Err(maker())`, if `maker` makes the error type.
        fn error(maker: &ChaosMaker) -> ChaosTyped<R>;
        /// `Ok(maker())`, if `maker` makes the `Ok` type.
        fn value(maker: &ChaosMaker) -> ChaosTyped<R>;
    }

    #[inline]
    fn made<X: 'static, R>(maker: &ChaosMaker, wrap: impl FnOnce(X) -> R) -> ChaosTyped<R> {
        match maker.make::<X>() {
            Some(x) => ChaosTyped::Made(wrap(x)),
            None => ChaosTyped::Mismatch {
                wanted: std::any::type_name::<X>(),
            },
        }
    }

    fn unsupported<X, R>() -> ChaosTyped<R> {
        ChaosTyped::Unsupported {
            wanted: std::any::type_name::<X>(),
        }
    }

    /// Neither type is known to be owned (nor, maybe, a `Result`): no
    /// bound at all, so that a function that does not return a `Result`
    /// gets only the attribute's own diagnostic.
    impl<R> ChaosInject<R> for ChaosTypes<false, false> {
        fn error(_: &ChaosMaker) -> ChaosTyped<R> {
            unsupported::<R, _>()
        }
        fn value(_: &ChaosMaker) -> ChaosTyped<R> {
            unsupported::<R, _>()
        }
    }

    impl<T, E: 'static> ChaosInject<Result<T, E>> for ChaosTypes<false, true> {
        fn error(maker: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            made(maker, Err)
        }
        fn value(_: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            unsupported::<T, _>()
        }
    }

    impl<T: 'static, E> ChaosInject<Result<T, E>> for ChaosTypes<true, false> {
        fn error(_: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            unsupported::<E, _>()
        }
        fn value(maker: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            made(maker, Ok)
        }
    }

    impl<T: 'static, E: 'static> ChaosInject<Result<T, E>> for ChaosTypes<true, true> {
        fn error(maker: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            made(maker, Err)
        }
        fn value(maker: &ChaosMaker) -> ChaosTyped<Result<T, E>> {
            made(maker, Ok)
        }
    }

    impl ChaosSite {
        /// The function's default name: the last of its names.
        fn function(&self) -> &'static str {
            self.names.last().copied().unwrap_or("?")
        }
    }

    /// The body of an `async fn` (or of the future a `fn` returns), run
    /// unless an injection for one of the site's names replaces it.
    #[inline]
    pub fn chaos_body<F, K>(site: &'static ChaosSite, _types: K, body: F) -> ChaosBody<F, K>
    where
        F: Future,
        K: ChaosInject<F::Output>,
    {
        ChaosBody {
            body,
            state: State::Start(site),
            types: PhantomData,
        }
    }

    /// The body closure of a synchronous `fn`, run unless an injection for
    /// one of the site's names replaces it (injected latency sleeps the
    /// thread).
    #[inline]
    pub fn chaos_body_sync<R, F, K>(
        site: &'static ChaosSite,
        _types: K,
        body: F,
    ) -> impl FnOnce() -> R
    where
        F: FnOnce() -> R,
        K: ChaosInject<R>,
    {
        move || {
            if !active_anywhere() {
                return body();
            }
            run_sync::<R, F, K>(site, body)
        }
    }

    #[cold]
    #[inline(never)]
    fn run_sync<R, F: FnOnce() -> R, K: ChaosInject<R>>(site: &'static ChaosSite, body: F) -> R {
        let Some(decision) = decide(site.names) else {
            return body();
        };
        if let Some(latency) = decision.latency(site.function()) {
            std::thread::sleep(latency);
        }
        match outcome::<R, K>(decision, site) {
            Some(result) => result,
            None => body(),
        }
    }

    fn outcome<R, K: ChaosInject<R>>(decision: Decision, site: &'static ChaosSite) -> Option<R> {
        decision.outcome(site.function(), K::error, K::value)
    }

    /// Where a [`ChaosBody`] is: one pointer and a tag, so that every
    /// annotated function's future grows by 16 bytes only.
    #[derive(Debug)]
    enum State {
        /// Not polled yet: the table is consulted on the first poll (once
        /// every layer let the call through).
        Start(&'static ChaosSite),
        /// Running the body.
        Body,
        /// Injected latency, then the decision's outcome.
        Delay(Slow),
        /// Answered with an injected result.
        Done,
    }

    /// The boxed latency of a call an injection hit, dropped out of line: the
    /// drop of every other call's future tests one word and nothing else.
    #[derive(Debug)]
    struct Slow(Option<Pin<Box<Delayed>>>);

    impl Drop for Slow {
        #[inline]
        fn drop(&mut self) {
            if self.0.is_some() {
                drop_slow(self);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_slow(slow: &mut Slow) {
        slow.0 = None;
    }

    pin_project_lite::pin_project! {
        #[derive(Debug)]
        struct Delayed {
            #[pin]
            sleep: tokio::time::Sleep,
            decision: Option<Decision>,
            site: &'static ChaosSite,
        }
    }

    pin_project_lite::pin_project! {
        /// [`chaos_body`]'s future: the body, behind the injection table's
        /// answer on the first poll.
        #[derive(Debug)]
        pub struct ChaosBody<F, K> {
            #[pin]
            body: F,
            state: State,
            types: PhantomData<fn() -> K>,
        }
    }

    impl<F, K> Future for ChaosBody<F, K>
    where
        F: Future,
        K: ChaosInject<F::Output>,
    {
        type Output = F::Output;

        #[inline]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            match this.state {
                State::Body => return this.body.poll(cx),
                // The path of every call while nothing is injected anywhere.
                State::Start(_) if !active_anywhere() => {
                    *this.state = State::Body;
                    return this.body.poll(cx);
                }
                _ => {}
            }
            loop {
                match this.state {
                    State::Body => return this.body.poll(cx),
                    State::Start(site) => match begin::<F::Output, K>(site) {
                        Begun::Run => *this.state = State::Body,
                        Begun::Delay(delayed) => *this.state = State::Delay(Slow(Some(delayed))),
                        Begun::Answer(result) => {
                            *this.state = State::Done;
                            return Poll::Ready(result);
                        }
                    },
                    State::Delay(Slow(None)) => unreachable!("a delay is boxed"),
                    State::Delay(Slow(Some(delayed))) => {
                        let delayed = delayed.as_mut().project();
                        std::task::ready!(delayed.sleep.poll(cx));
                        let site = *delayed.site;
                        let answer = delayed
                            .decision
                            .take()
                            .and_then(|d| outcome::<F::Output, K>(d, site));
                        match answer {
                            Some(result) => {
                                *this.state = State::Done;
                                return Poll::Ready(result);
                            }
                            None => *this.state = State::Body,
                        }
                    }
                    State::Done => panic!("a resilience call was polled after it completed"),
                }
            }
        }
    }

    enum Begun<R> {
        Run,
        Delay(Pin<Box<Delayed>>),
        Answer(R),
    }

    #[cold]
    #[inline(never)]
    fn begin<R, K: ChaosInject<R>>(site: &'static ChaosSite) -> Begun<R> {
        let Some(decision) = decide(site.names) else {
            return Begun::Run;
        };
        if let Some(latency) = decision.latency(site.function()) {
            return Begun::Delay(Box::pin(Delayed {
                sleep: tokio::time::sleep(latency),
                decision: Some(decision),
                site,
            }));
        }
        match outcome::<R, K>(decision, site) {
            Some(result) => Begun::Answer(result),
            None => Begun::Run,
        }
    }
}
