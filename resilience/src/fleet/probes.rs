//! One probe for the whole fleet: when an open breaker's time is up, the
//! instances race for a short lease; only the winner probes, the others
//! keep rejecting until it publishes closed or open (or the lease expires).
//!
//! The race costs a couple of commands, not one per instance: each
//! instance waits a random moment before asking (up to 2 ms per member,
//! 1 s at most), the winner's notice reaches the others at once, and an
//! instance that heard of it (or lost) does not ask again before the lease
//! runs out. An instance that dies while probing holds the probe for one
//! lease at most; then the race starts again.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::conn::Conn;
use super::scripts::LEASE;
use super::sync::Task;
use crate::CircuitState;

/// The spread of the instances' first requests, per member.
const SPREAD_PER_MEMBER: Duration = Duration::from_millis(2);
/// ... and at most.
const MAX_SPREAD: Duration = Duration::from_secs(1);

/// When this instance may next ask for a breaker's lease.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    /// The open state (generation) it is for.
    generation: u32,
    at: Instant,
}

impl Task {
    /// A random moment within the spread, from `now`.
    fn spread(&self, now: Instant) -> Instant {
        let members = self.inner.members.lock().map_or(1, |m| m.list.len()).max(1);
        let spread = SPREAD_PER_MEMBER
            .saturating_mul(u32::try_from(members).unwrap_or(u32::MAX))
            .min(MAX_SPREAD);
        let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        now + Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// Another instance holds `name`'s probe lease for `hold`: ask again
    /// (spread) only once it runs out.
    pub(crate) fn probe_noticed(&mut self, name: &Arc<str>, hold: Duration) {
        let Some(breaker) = self.registry.shared(name) else {
            return;
        };
        let generation = breaker.waiting_for_probe_grant().unwrap_or(0);
        let at = self.spread(Instant::now() + hold);
        self.turns.insert(name.clone(), Turn { generation, at });
    }

    /// For open breakers whose time is up: race for the fleet's probe lease;
    /// the winner probes, the others keep rejecting until it publishes.
    pub(crate) async fn leases(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let names: Vec<Arc<str>> = self.open.iter().cloned().collect();
        for name in names {
            let Some(breaker) = self.registry.shared(&name) else {
                self.open.remove(&name);
                self.turns.remove(&name);
                continue;
            };
            let Some(generation) = breaker.waiting_for_probe_grant() else {
                if !matches!(
                    breaker.state(),
                    CircuitState::Open | CircuitState::ForcedOpen
                ) {
                    self.open.remove(&name);
                    self.turns.remove(&name);
                }
                continue;
            };
            let now = Instant::now();
            let turn = match self.turns.get(&name) {
                // A notice heard before this instance's time was up counts.
                Some(t) if t.generation == generation || t.generation == 0 => *t,
                _ => {
                    let t = Turn {
                        generation,
                        at: self.spread(now),
                    };
                    self.turns.insert(name.clone(), t);
                    t
                }
            };
            if now < turn.at {
                continue;
            }
            let lease = self.inner.config.lease.max(Duration::from_millis(1));
            let held: i64 = Script::new(LEASE)
                .key(self.keys.lease(&name))
                .key(self.keys.channel_of(&name))
                .key(self.keys.breaker(&name))
                .arg(&self.inner.instance)
                .arg(super::members::millis(lease))
                .arg(&*name)
                .arg(if self.sharded { "1" } else { "0" })
                .arg(self.inner.known_gen(&name))
                .invoke_async(conn)
                .await?;
            let wait = match u64::try_from(held) {
                // Behind the fleet: read the verdict (and apply it, closed
                // included: only the fleet can end this wait) instead.
                Err(_) if held == -2 => {
                    self.catch_up(conn, &name).await?;
                    self.inner.config.lease_retry
                }
                Err(_) => {
                    tracing::debug!(
                        target: "resilience",
                        breaker = &*name,
                        "fleet: this instance probes `{name}`"
                    );
                    breaker.grant_probe(generation);
                    lease
                }
                // Lost: the holder keeps it this long (a lease without
                // expiry, which the fleet never sets, waits one lease).
                Ok(ms) => Duration::from_millis(ms).max(self.inner.config.lease_retry),
            };
            let at = self.spread(Instant::now() + wait);
            self.turns.insert(name, Turn { generation, at });
        }
        Ok(())
    }
}
