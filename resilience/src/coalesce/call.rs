//! One call through a coalescer: a hand-written future that joins a flight
//! when first polled, then leads it (polling its own body) or follows it
//! (waiting, its body unpolled), and starts over when the leader it
//! followed is gone without a result.
//!
//! The leader's protocol: on its body's result it leaves the map (no call
//! joins any more), then answers those waiting. Cancelled (dropped) or
//! panicking (caught around its body's poll and its result's clone, then
//! unwinding on) it leaves the map and abandons the flight: every follower
//! is woken, finds no result and joins again, so that the first of them
//! starts a new flight with its own body and the rest follow that one.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::flights::{Flight, Joined};
use super::Coalescer;

/// Where a [`Coalesced`] call is.
enum Stage<K, R> {
    /// Not in a flight: not polled yet, or its leader is gone.
    Start {
        key: K,
    },
    Leading {
        flight: Arc<Flight<K, R>>,
    },
    Following {
        flight: Arc<Flight<K, R>>,
        slot: usize,
        key: K,
    },
    Done,
}

/// What a call has been, for the counters (each counted once).
const COUNTED: u8 = 1;
const LED: u8 = 2;
const FOLLOWED: u8 = 4;

pin_project_lite::pin_project! {
    /// One call through a [`Coalescer`] (see [`Coalescer::run`]): resolves
    /// to its body's output, or to a clone of the output of the call of an
    /// equal key that was in flight. Dropping it cancels the call; a
    /// leader's followers then take over.
    ///
    /// `C` is how it holds its coalescer: `&Coalescer` from
    /// [`Coalescer::run`], `Arc<Coalescer>` in the tower layer's `'static`
    /// response futures.
    pub struct Coalesced<C, K, F>
    where
        C: Borrow<Coalescer>,
        F: Future,
    {
        coalescer: C,
        stage: Stage<K, F::Output>,
        roles: u8,
        #[pin]
        body: F,
    }

    impl<C, K, F> PinnedDrop for Coalesced<C, K, F>
    where
        C: Borrow<Coalescer>,
        F: Future,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let coalescer = <C as Borrow<Coalescer>>::borrow(this.coalescer);
            match std::mem::replace(this.stage, Stage::Done) {
                Stage::Leading { flight } => abandon(coalescer, &flight, "was cancelled"),
                Stage::Following { flight, slot, .. } => flight.deregister(slot),
                Stage::Start { .. } | Stage::Done => {}
            }
        }
    }
}

impl<C, K, F> Coalesced<C, K, F>
where
    C: Borrow<Coalescer>,
    F: Future,
{
    /// A call of `key` running `body` through `coalescer` (a reference, or
    /// an `Arc` for the tower layer's `'static` futures).
    pub(crate) fn new(coalescer: C, key: K, body: F) -> Self {
        Coalesced {
            coalescer,
            stage: Stage::Start { key },
            roles: 0,
            body,
        }
    }
}

impl<C, K, F> Future for Coalesced<C, K, F>
where
    C: Borrow<Coalescer>,
    K: Hash + Eq + Send + Sync + 'static,
    F: Future,
    F::Output: Clone + Send + 'static,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let coalescer = <C as Borrow<Coalescer>>::borrow(this.coalescer);
        loop {
            match std::mem::replace(this.stage, Stage::Done) {
                Stage::Start { key } => match coalescer.flights().join(key, cx.waker()) {
                    Joined::Lead(flight) => {
                        counted(coalescer, this.roles, LED);
                        *this.stage = Stage::Leading { flight };
                    }
                    Joined::Follow { flight, slot, key } => {
                        counted(coalescer, this.roles, FOLLOWED);
                        *this.stage = Stage::Following { flight, slot, key };
                        return Poll::Pending;
                    }
                },
                Stage::Leading { flight } => {
                    let body = this.body.as_mut();
                    let polled = catch_unwind(AssertUnwindSafe(|| match body.poll(cx) {
                        Poll::Ready(output) => {
                            coalescer.flights().leave(&flight);
                            flight.answer(&output);
                            Poll::Ready(output)
                        }
                        Poll::Pending => Poll::Pending,
                    }));
                    match polled {
                        Ok(Poll::Ready(output)) => return Poll::Ready(output),
                        Ok(Poll::Pending) => {
                            *this.stage = Stage::Leading { flight };
                            return Poll::Pending;
                        }
                        Err(panic) => {
                            abandon(coalescer, &flight, "panicked");
                            resume_unwind(panic)
                        }
                    }
                }
                Stage::Following { flight, slot, key } => {
                    match flight.poll_answer(slot, cx.waker()) {
                        Poll::Ready(Some(output)) => return Poll::Ready(output),
                        // The leader is gone: join again (lead, or follow a new leader).
                        Poll::Ready(None) => *this.stage = Stage::Start { key },
                        Poll::Pending => {
                            *this.stage = Stage::Following { flight, slot, key };
                            return Poll::Pending;
                        }
                    }
                }
                Stage::Done => panic!("a coalesced call was polled after it completed"),
            }
        }
    }
}

impl<C, K, F> fmt::Debug for Coalesced<C, K, F>
where
    C: Borrow<Coalescer>,
    F: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Start { .. } => "start",
            Stage::Leading { .. } => "leading",
            Stage::Following { .. } => "following",
            Stage::Done => "done",
        };
        f.debug_struct("Coalesced")
            .field(
                "coalescer",
                &Borrow::<Coalescer>::borrow(&self.coalescer).name(),
            )
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

/// Counts a call's role the first time it has it (its first role counts
/// the call itself).
fn counted(coalescer: &Coalescer, roles: &mut u8, role: u8) {
    let name = coalescer.name();
    if *roles & COUNTED == 0 {
        coalescer.calls.fetch_add(1, Ordering::Relaxed);
    }
    if role == FOLLOWED {
        crate::metrics::coalesced(&coalescer.name);
        tracing::debug!(
            target: "resilience",
            coalesce = name,
            "coalesce `{name}`: a call joined the call of its key in flight"
        );
    }
    if *roles & role == 0 {
        let counter = match role {
            LED => &coalescer.leaders,
            _ => &coalescer.followers,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if role == LED && *roles & FOLLOWED != 0 {
            coalescer.takeovers.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                target: "resilience",
                coalesce = name,
                "coalesce `{name}`: a follower took over from its leader and runs its own body"
            );
        }
    }
    *roles |= COUNTED | role;
}

/// The leader is gone without a result: out of the map, its followers
/// woken to start over.
fn abandon<K, R>(coalescer: &Coalescer, flight: &Arc<Flight<K, R>>, how: &str) {
    coalescer.flights().leave(flight);
    let waiting = flight.abandon();
    if waiting > 0 {
        let name = coalescer.name();
        tracing::debug!(
            target: "resilience",
            coalesce = name,
            waiting,
            "coalesce `{name}`: the leader of a call {how}; its {waiting} followers start over"
        );
    }
}
