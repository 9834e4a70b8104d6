//! Fleet failure counting (`fleet_threshold`): the failures counted here
//! are sent in batches, and a breaker opens once the fleet's count reaches
//! its threshold (see [`COUNT_FAILURES`]).

use std::sync::Arc;

use redis::Script;

use super::conn::Conn;
use super::scripts::COUNT_FAILURES;
use super::sync::Task;

impl Task {
    /// Sends the failures counted here since the last flush and opens a
    /// breaker whose fleet-wide count reached its `fleet_threshold`.
    pub(crate) async fn count_failures(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        // Publish local transitions first: failures of a period that began
        // here count only once the fleet knows the period began.
        self.drain_local(conn).await?;
        let window = self.inner.config.failure_window.as_secs().max(1);
        let names: Vec<Arc<str>> = self.counted.iter().cloned().collect();
        for name in names {
            let Some(breaker) = self.registry.shared(&name) else {
                self.counted.remove(&name);
                continue;
            };
            let report = breaker.take_fleet_report();
            let Some(threshold) = breaker.config().fleet_threshold() else {
                continue;
            };
            if report.failures == 0 && !report.success {
                continue;
            }
            let total: i64 = Script::new(COUNT_FAILURES)
                .key(self.keys.breaker(&name))
                .key(self.keys.failures(&name))
                .arg(report.failures)
                .arg(window)
                .arg(self.inner.known_gen(&name))
                .arg(if report.success { "1" } else { "0" })
                .invoke_async(conn)
                .await?;
            // Negative: counted before a transition this instance has not
            // heard of yet; dropped.
            let Ok(total) = u64::try_from(total) else {
                continue;
            };
            if report.failures > 0 && total >= u64::from(threshold.get()) {
                let total = u32::try_from(total).unwrap_or(u32::MAX);
                // The transition is logged and published like any other.
                breaker.open_for_fleet_failures(total);
            }
        }
        Ok(())
    }
}
