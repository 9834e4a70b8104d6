//! Waiting for a bulkhead slot from blocking code: the semaphore's
//! `acquire` future (or the adaptive bulkhead's wait) polled on the calling
//! thread, which parks until it is woken or the wait is over. No runtime
//! needed, no spinning.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Wakes the parked thread (`wake_by_ref` is `Wake`'s own: a clone of the
/// `Arc`, then `wake`).
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// `future`'s output if it completes within `wait` (real time: blocking
/// code runs on no runtime, so a paused test clock does not apply).
pub(crate) fn wait_for<F: Future>(future: F, wait: Duration) -> Option<F::Output> {
    let deadline = Instant::now().checked_add(wait);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}
