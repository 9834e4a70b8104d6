//! Reading the fleet's state: all of it when the sync (re)connects, one
//! breaker when it is created here.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Script;

use super::conn::Conn;
use super::keys::{partition, PARTITIONS};
use super::message::state_from_str;
use super::scripts::RESYNC;
use super::sync::Task;
use super::Known;
use crate::CircuitState;

impl Task {
    /// Reconciles after (re)connecting, partition by partition (one round
    /// trip each, whatever the number of breakers). A partition whose
    /// version this instance knows (it saw every change of it) is not read
    /// again: after a failover or a lost connection, only the partitions
    /// that changed meanwhile travel.
    ///
    /// - The fleet's states newer than what this instance applied are
    ///   applied here (closed ones only by breakers that are not open here:
    ///   a breaker open here but closed in the fleet stays open and probes
    ///   when its time is up).
    /// - Open wins: a breaker open here (or forced open, or disabled) that
    ///   the fleet has no record of is published.
    /// - A change this instance knows of but Redis does not (Redis lost
    ///   it: a failover before the write reached the replica, a restart
    ///   without persistence) is published again, by the first instance
    ///   that notices and no other; so at worst one transition is
    ///   announced twice, and no breaker is left in a state the fleet left.
    pub(crate) async fn resync(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let mut fleet: HashMap<Arc<str>, Known> = HashMap::new();
        let mut unchanged = [false; PARTITIONS as usize];
        for p in 0..PARTITIONS {
            let known = self
                .versions
                .get(&p)
                .map(u64::to_string)
                .unwrap_or_default();
            let flat: Vec<String> = Script::new(RESYNC)
                .key(self.keys.names(p))
                .key(self.keys.version(p))
                .arg(self.keys.breaker_prefix(p))
                .arg(&known)
                .invoke_async(conn)
                .await?;
            let Some((version, records)) = flat.split_first() else {
                continue;
            };
            match version.parse::<u64>() {
                Ok(v) => self.versions.insert(p, v),
                Err(_) => self.versions.remove(&p),
            };
            if records.is_empty() && *version == known {
                // Nothing changed since this instance last knew it all.
                unchanged[usize::from(p)] = true;
                continue;
            }
            for entry in records.chunks(5) {
                let [name, state, gen, until, by] = entry else {
                    continue;
                };
                let Some(known) = parse(state, gen, until, by) else {
                    continue;
                };
                let name: Arc<str> = Arc::from(name.as_str());
                self.note(&name, &known);
                fleet.insert(name, known);
            }
        }
        for breaker in self.registry.named_breakers() {
            let name = breaker.name_arc().clone();
            self.note_counted(&name);
            let here = breaker.state();
            // An unchanged partition is what this instance knows of it.
            let remembered = unchanged[usize::from(partition(&name))]
                .then(|| self.inner.known(&name))
                .flatten();
            let there = fleet.get(&name).or(remembered.as_ref());
            let known = self.inner.known_gen(&name);
            let (publish, unless_reached) = match (here, there) {
                // No record: opened here while Redis was unreachable (publish),
                // or a record Redis lost (publish unless another instance
                // already did).
                (CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled, None) => {
                    (true, (known > 0).then_some(known))
                }
                (CircuitState::ForcedOpen | CircuitState::Disabled, Some(t)) if t.state != here => {
                    (true, None)
                }
                (CircuitState::HalfOpen, _) => (false, None),
                (_, Some(t)) if t.gen < known && t.state != here => (true, Some(known)),
                _ => (false, None),
            };
            if publish {
                self.publish(conn, &name, unless_reached).await?;
            } else if here == CircuitState::Open {
                self.open.insert(name);
            }
        }
        Ok(())
    }

    /// Reads a breaker's record because the fleet has moved on since what
    /// this instance knows (the lease script said so), and applies it
    /// whatever it is: an open breaker waiting for the fleet's probe is
    /// closed by the fleet's newer verdict.
    pub(crate) async fn catch_up(
        &mut self,
        conn: &mut Conn,
        name: &Arc<str>,
    ) -> redis::RedisResult<()> {
        let Some(known) = read(conn, &self.keys.breaker(name)).await? else {
            return Ok(());
        };
        if self.inner.learn(name, known.clone()) {
            if let Some(breaker) = self.registry.shared(name) {
                self.apply(&breaker, &known);
            }
        }
        Ok(())
    }

    /// Notes a fleet state read from Redis (a breaker created here later
    /// starts from it) and applies it here unless it is closed (the state
    /// every breaker starts in) or not newer than what was applied. An open
    /// state whose time is up is applied as open: the instance holding the
    /// fleet's probe lease probes, the others wait.
    pub(crate) fn note(&mut self, name: &Arc<str>, known: &Known) {
        if !self.inner.learn(name, known.clone()) {
            return; // already applied
        }
        if let Some(breaker) = self.registry.shared(name) {
            if known.state != CircuitState::Closed {
                self.apply(&breaker, known);
            }
        }
    }
}

/// A breaker's record (the hash at `key`), if Redis has one.
pub(crate) async fn read(conn: &mut Conn, key: &str) -> redis::RedisResult<Option<Known>> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL").arg(key).query_async(conn).await?;
    let field = |f: &str| fields.get(f).map_or("", String::as_str);
    Ok(parse(
        field("state"),
        field("fleet_gen"),
        field("until_unix_ms"),
        field("instance"),
    ))
}

/// A breaker's fields as Redis keeps them; `None` if they do not make a state.
fn parse(state: &str, gen: &str, until: &str, by: &str) -> Option<Known> {
    Some(Known {
        state: state_from_str(state)?,
        gen: gen.parse().ok()?,
        until_unix_ms: until.parse().ok(),
        by: (!by.is_empty()).then(|| Arc::from(by)),
    })
}
