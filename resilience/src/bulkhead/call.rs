//! One call through a bulkhead: the slot is held while the call runs and
//! given back however it ends (completion, error, panic, cancellation).
//! Public, so that a hand-written caller gets what `#[bulkhead]` gets.

use std::future::Future;

use super::Bulkhead;
use crate::Error;

impl Bulkhead {
    /// Runs `call` in one of the bulkhead's slots, waiting up to `max_wait`
    /// for one.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use resilience::Bulkhead;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let db = Bulkhead::new("db", NonZeroU32::MIN, Duration::ZERO);
    /// let rows: Result<u32, anyhow::Error> = db.call(async { Ok(3) }).await;
    /// assert_eq!(rows.unwrap(), 3);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// `call`'s error, or `E::from` the bulkhead's [`Error`] (of kind
    /// [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull)) when no slot
    /// freed up in time (then `call` does not run).
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let _slot = self.acquire().await?;
        call.await
    }
}
