//! A held slot of an adaptive bulkhead: records the call when it is
//! recorded or dropped, then gives the slot back.

use tokio::time::Instant;

use super::{AdaptiveBulkhead, Slot};
use crate::Outcome;

/// A slot of an [`AdaptiveBulkhead`], held until the call is recorded
/// ([`record`](Self::record)) or the permit is dropped. Dropped without a
/// recorded outcome (the call was cancelled, or panicked), it frees the
/// slot and records nothing: [`Outcome::Ignored`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use resilience::{AdaptiveBulkhead, AdaptiveConfig, Aimd, Outcome};
///
/// let config = AdaptiveConfig::builder(Aimd::default().backoff_ratio(0.5)).initial_limit(8).build()?;
/// let db = AdaptiveBulkhead::new("permit-doc", config);
/// let permit = db.acquire().await?;
/// assert_eq!(db.in_flight(), 1);
/// tokio::time::sleep(Duration::from_millis(20)).await;
/// permit.record(Outcome::Failure); // 20 ms, failed: the limit halves
/// assert_eq!((db.in_flight(), db.limit()), (0, 4));
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "the slot is given back when the permit is dropped"]
pub struct AdaptivePermit<'a> {
    bulkhead: &'a AdaptiveBulkhead,
    slot: Slot,
    outcome: Outcome,
}

impl<'a> AdaptivePermit<'a> {
    pub(crate) fn new(bulkhead: &'a AdaptiveBulkhead, slot: Slot) -> Self {
        AdaptivePermit {
            bulkhead,
            slot,
            outcome: Outcome::Ignored,
        }
    }

    /// When the call was admitted: its latency counts from here.
    pub fn started(&self) -> Instant {
        self.slot.started
    }

    /// Records the call's outcome (and its latency, as of now) into the
    /// bulkhead's limit, and gives the slot back.
    pub fn record(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for AdaptivePermit<'_> {
    fn drop(&mut self) {
        self.bulkhead.release(self.slot, self.outcome);
    }
}
