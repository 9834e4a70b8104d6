//! Changing a running breaker's configuration: the next call sees it, and
//! the breaker keeps its state.

use std::sync::PoisonError;

use super::window::Outcomes;
use super::{BreakerConfig, CircuitBreaker, Tagged};
use crate::sync::Ordering;

impl CircuitBreaker {
    /// Puts `config` in force from the next call on, keeping the breaker's
    /// state: a closed breaker keeps its failure count (clamped just below
    /// a lowered `failure_threshold`, so the next failure opens it) and its
    /// window's outcomes, unless the trip rule changed (another `window`, or
    /// a switch between consecutive failures and a window): then counting
    /// starts afresh. An open breaker keeps its open time (a new
    /// `recovery_timeout` applies from the next opening); a half-open one
    /// keeps its probes. Returns whether anything changed; a change is a
    /// `tracing` event (target `resilience`, level INFO) naming each key
    /// that changed, and shows in [`status`](Self::status).
    ///
    /// ```
    /// use resilience::{BreakerConfig, CircuitBreaker, CircuitState, Outcome};
    ///
    /// let breaker = CircuitBreaker::new("ledger", BreakerConfig::DEFAULT); // 5 failures
    /// breaker.try_acquire()?.record(Outcome::Failure);
    /// let stricter = BreakerConfig::builder().failure_threshold(2).build()?;
    /// assert!(breaker.reconfigure(stricter));
    /// breaker.try_acquire()?.record(Outcome::Failure); // the second failure
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reconfigure(&self, config: BreakerConfig) -> bool {
        // Under the transition lock: a transition reads one configuration.
        let _guard = self
            .transition
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = *self.config();
        if old == config {
            return false;
        }
        let rule_changed = old.window() != config.window();
        if rule_changed {
            self.window.publish(config.window().map(Outcomes::new));
        }
        let (generation, _) = self.load();
        let keep_below = if rule_changed {
            0
        } else {
            config.failure_threshold().get() - 1
        };
        let mut current = self.failures.load(Ordering::Acquire);
        while Tagged(current).value_in(generation) > keep_below {
            match self.failures.compare_exchange_weak(
                current,
                Tagged::new(generation, keep_below).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.config.set(config);
        self.hot.store(super::hot_bits(&config), Ordering::Release);
        tracing::info!(
            target: "resilience",
            breaker = &*self.name,
            from = %old,
            to = %config,
            "circuit breaker `{}` reconfigured{}",
            self.name,
            if rule_changed { " (new trip rule: counting starts afresh)" } else { "" }
        );
        true
    }
}
