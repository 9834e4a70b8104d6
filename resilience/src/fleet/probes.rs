//! One probe for the whole fleet: when an open breaker's time is up, the
//! instances race for a short lease; only the winner probes, the others
//! keep rejecting until it publishes closed or open (or the lease expires).

use std::sync::Arc;

use tokio::time::Instant;

use super::conn::Conn;
use super::sync::Task;
use crate::CircuitState;

impl Task {
    /// For open breakers whose time is up: race for the fleet's probe lease;
    /// the winner probes, the others keep rejecting until it publishes.
    pub(crate) async fn leases(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let now = Instant::now();
        let names: Vec<Arc<str>> = self.open.iter().cloned().collect();
        for name in names {
            let Some(breaker) = self.registry.shared(&name) else {
                self.open.remove(&name);
                continue;
            };
            let Some(generation) = breaker.waiting_for_probe_grant() else {
                if !matches!(
                    breaker.state(),
                    CircuitState::Open | CircuitState::ForcedOpen
                ) {
                    self.open.remove(&name);
                }
                continue;
            };
            if self
                .asked
                .get(&name)
                .is_some_and(|at| now.duration_since(*at) < self.inner.config.lease_retry)
            {
                continue;
            }
            self.asked.insert(name.clone(), now);
            let lease_ms = u64::try_from(self.inner.config.lease.as_millis()).unwrap_or(u64::MAX);
            let won: Option<String> = redis::cmd("SET")
                .arg(self.keys.lease(&name))
                .arg(&self.inner.instance)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms.max(1))
                .query_async(conn)
                .await?;
            if won.is_some() {
                tracing::debug!(
                    target: "resilience",
                    breaker = &*name,
                    "fleet: this instance probes `{name}`"
                );
                breaker.grant_probe(generation);
            }
        }
        Ok(())
    }
}
