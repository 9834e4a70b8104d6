//! Breakers of dynamic-name call sites (`name = self.tenant.as_str()`), and
//! the bounds that keep them from growing the registry without end.
//!
//! The policy: a breaker created by a dynamic call site is evicted when it has
//! not been looked up for `idle` (default 10 minutes; measured between
//! sweeps, which run at most every `idle / 2`, so a lookup never reads the
//! clock), or, when there are more
//! than `max` of them (default 100,000), the least recently used go first,
//! down to half of `max` (so sweeps stay rare: amortised, each new name
//! visits two entries). Only breakers nobody can tell apart from a new one
//! are evicted: closed, no failure pending, no call in flight, no static call
//! site or `configure` holding them. Open breakers are never evicted: a
//! failing dependency stays remembered.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{check_config, Named, Registry};
use crate::breaker::{BreakerConfig, CircuitBreaker};

#[derive(Debug)]
pub(super) struct Limits {
    epoch: Instant,
    idle_secs: AtomicU64,
    max: AtomicUsize,
    /// Dynamic breakers in the map (approximately: eviction races are benign).
    pub(super) count: AtomicUsize,
    last_sweep: AtomicU64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            epoch: Instant::now(),
            idle_secs: AtomicU64::new(600),
            max: AtomicUsize::new(100_000),
            count: AtomicUsize::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }
}

impl Limits {
    /// Seconds since the registry was created (tokio time: paused clocks work).
    pub(super) fn now(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_secs()
    }
}

impl Registry {
    /// The breaker a dynamic-name call site asks for: created with `config` on
    /// first use (running `on_create` then), evictable when idle.
    #[inline]
    pub(crate) fn dynamic_breaker(
        &self,
        name: &str,
        config: &BreakerConfig,
        on_create: impl FnOnce(&CircuitBreaker),
    ) -> Arc<CircuitBreaker> {
        if let Some(named) = self.named.get(name) {
            if !named.used.load(Ordering::Relaxed) {
                named.used.store(true, Ordering::Relaxed);
            }
            check_config(&named, config);
            return named.breaker.clone();
        }
        self.maybe_evict(self.dynamic.now());
        self.breaker_slow(name, config, on_create, true)
    }

    /// Bounds the breakers of dynamic-name call sites: evicted after `idle`
    /// without a lookup, and at most `max` of them (the least recently used
    /// go first). Open breakers, breakers with failures pending or calls in
    /// flight, and breakers also used by a static call site are never evicted.
    pub fn set_dynamic_limits(&self, idle: Duration, max: usize) {
        self.dynamic
            .idle_secs
            .store(idle.as_secs().max(1), Ordering::Relaxed);
        self.dynamic.max.store(max.max(1), Ordering::Relaxed);
    }

    /// Breakers of dynamic-name call sites in the registry now.
    pub fn dynamic_breaker_count(&self) -> usize {
        self.dynamic.count.load(Ordering::Relaxed)
    }

    /// Sweeps now: evicts every idle dynamic breaker that may go. Returns how
    /// many were evicted. (Creating a dynamic breaker sweeps on its own when
    /// due; this is for tests and operators.)
    pub fn evict_idle(&self) -> usize {
        let now = self.dynamic.now();
        self.note_use(now);
        let idle = self.dynamic.idle_secs.load(Ordering::Relaxed);
        self.evict_where(|named| {
            now.saturating_sub(named.last_used.load(Ordering::Relaxed)) >= idle
        })
    }

    #[cold]
    fn maybe_evict(&self, now: u64) {
        let limits = &self.dynamic;
        let max = limits.max.load(Ordering::Relaxed);
        if limits.count.load(Ordering::Relaxed) >= max {
            self.evict_least_recently_used(max / 2);
            limits.last_sweep.store(now, Ordering::Relaxed);
            return;
        }
        let idle = limits.idle_secs.load(Ordering::Relaxed);
        let last = limits.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= (idle / 2).max(1)
            && limits
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.evict_idle();
        }
    }

    /// Evicts the least recently used evictable breakers until at most
    /// `target` dynamic ones are left (or none may go).
    /// Turns "looked up since the last sweep" into "last seen in use now".
    fn note_use(&self, now: u64) {
        for entry in self.named.iter() {
            let named = entry.value();
            if named.used.swap(false, Ordering::Relaxed) {
                named.last_used.store(now, Ordering::Relaxed);
            }
        }
    }

    fn evict_least_recently_used(&self, target: usize) {
        self.note_use(self.dynamic.now());
        let mut candidates: Vec<(u64, Arc<str>)> = self
            .named
            .iter()
            .filter(|e| evictable(e.value()))
            .map(|e| (e.value().last_used.load(Ordering::Relaxed), e.key().clone()))
            .collect();
        let excess = self
            .dynamic
            .count
            .load(Ordering::Relaxed)
            .saturating_sub(target);
        if excess == 0 {
            return;
        }
        candidates.sort_unstable_by_key(|(used, _)| *used);
        for (_, name) in candidates.into_iter().take(excess) {
            if self
                .named
                .remove_if(&name, |_, named| evictable(named))
                .is_some()
            {
                self.dynamic.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn evict_where(&self, extra: impl Fn(&Named) -> bool) -> usize {
        let mut evicted = 0;
        self.named.retain(|_, named| {
            let go = evictable(named) && extra(named);
            evicted += usize::from(go);
            !go
        });
        self.dynamic.count.fetch_sub(evicted, Ordering::Relaxed);
        evicted
    }
}

/// Whether nobody could tell `named` apart from a breaker created anew.
fn evictable(named: &Named) -> bool {
    named.dynamic.load(Ordering::Relaxed)
        && Arc::strong_count(&named.breaker) == 1
        && named.breaker.is_pristine()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CircuitState, Outcome};

    fn cfg() -> BreakerConfig {
        BreakerConfig::builder()
            .failure_threshold(1)
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn idle_dynamic_breakers_are_evicted_but_open_ones_stay() {
        let reg = Registry::new();
        reg.set_dynamic_limits(Duration::from_secs(60), 1000);
        reg.dynamic_breaker("idle", &cfg(), |_| {});
        let open = reg.dynamic_breaker("open", &cfg(), |_| {});
        open.try_acquire().unwrap().record(Outcome::Failure);
        drop(open);
        let held = reg.dynamic_breaker("held", &cfg(), |_| {});
        reg.breaker("static", &cfg());
        reg.dynamic_breaker("static", &cfg(), |_| {}); // a static site pins it
        assert_eq!(reg.dynamic_breaker_count(), 3);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(reg.evict_idle(), 0, "not idle long enough");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(reg.evict_idle(), 1, "only the idle, closed, unheld one");
        assert!(reg.get("idle").is_none());
        assert!(
            reg.get("open").is_some() && reg.get("held").is_some() && reg.get("static").is_some()
        );
        drop(held);
        assert_eq!(reg.evict_idle(), 1);
        assert_eq!(reg.dynamic_breaker_count(), 1); // "open"
                                                    // A breaker looked up again is a fresh, closed one.
        assert_eq!(
            reg.dynamic_breaker("idle", &cfg(), |_| {}).state(),
            CircuitState::Closed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn looking_up_a_new_name_sweeps_every_half_idle_period() {
        let reg = Registry::new();
        reg.set_dynamic_limits(Duration::from_secs(60), 1000);
        reg.dynamic_breaker("a", &cfg(), |_| {});
        tokio::time::advance(Duration::from_secs(61)).await;
        reg.dynamic_breaker("b", &cfg(), |_| {});
        assert!(reg.get("a").is_none(), "idle 61 s: swept by the new name");
        tokio::time::advance(Duration::from_secs(29)).await;
        reg.dynamic_breaker("c", &cfg(), |_| {});
        tokio::time::advance(Duration::from_secs(32)).await;
        reg.dynamic_breaker("d", &cfg(), |_| {});
        // 61 s since the last sweep: b (idle 61 s) goes, c (idle 32 s) stays.
        assert!(reg.get("b").is_none() && reg.get("c").is_some());
        assert_eq!(reg.dynamic_breaker_count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_cap_the_least_recently_used_go_first() {
        let reg = Registry::new();
        reg.set_dynamic_limits(Duration::from_secs(3600), 10);
        for i in 0..10 {
            reg.dynamic_breaker(&format!("t{i}"), &cfg(), |_| {});
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        reg.dynamic_breaker("t0", &cfg(), |_| {}); // t0 is used again: t1 is the oldest
        reg.dynamic_breaker("t10", &cfg(), |_| {});
        assert!(reg.dynamic_breaker_count() <= 10);
        assert!(reg.get("t0").is_some(), "recently used");
        assert!(reg.get("t1").is_none(), "least recently used");
        assert!(reg.get("t10").is_some());
    }
}
