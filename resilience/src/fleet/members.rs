//! Who is in the fleet: every instance heartbeats (its id, host, process,
//! start time, and a fingerprint of the names of the breakers it shares);
//! an instance unheard of for [`FleetConfig::member_timeout`] is dropped by
//! the next heartbeat of any other. How many instances share a breaker is
//! counted here, from the members' name sets.
//!
//! The cost does not grow with instances × breakers: instances running the
//! same code share the same breaker names, so the same fingerprint, and the
//! fleet stores each distinct set of names once (under its fingerprint),
//! not one entry per instance and breaker. A heartbeat is one script of a
//! few commands; the member list is read again only when the membership
//! changed (an instance joined, left, or its set of names changed), at
//! most once per heartbeat per 100 members (a fleet of 1,000 reads it at
//! most every 10 heartbeats during a rolling deploy).
//!
//! | key (`resilience:{ns:members}:…`) | what |
//! |---|---|
//! | `live` | sorted set: instance id → last heartbeat (Redis time, ms) |
//! | `info` | hash: instance id → its description (JSON) |
//! | `version` | bumped on every change of membership |
//! | `set:FINGERPRINT` | the breaker names of that fingerprint (kept while a heartbeat names it, then a minute or three member timeouts) |
//!
//! [`FleetConfig::member_timeout`]: crate::FleetConfig::member_timeout

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::conn::Conn;
use super::keys::Keys;
use super::scripts::{HEARTBEAT, STORE_SET};
use super::status::FleetMember;
use super::sync::Task;

/// How long membership keys outlive the last heartbeat.
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a name set outlives the last heartbeat that names it, at
/// least: an instance whose names keep changing (breakers with dynamic
/// names come and go) stores a new set at most once per heartbeat, and the
/// sets nobody names any more go within a minute or three member timeouts.
const KEEP_SET: Duration = Duration::from_secs(60);
/// Under churn, the member list is read at most once per heartbeat per
/// this many members.
const MEMBERS_PER_HEARTBEAT: usize = 100;
/// Names sent per command when storing a name set.
const CHUNK: usize = 500;

/// The fingerprint of a set of breaker names: the same whatever their
/// order, the same on every build and platform; 0 for no names.
pub(crate) fn fingerprint<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names.into_iter().fold(0u64, |sum, name| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // splitmix64's finalizer: a sum of well-mixed values.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        sum.wrapping_add((h ^ (h >> 31)) | 1)
    })
}

/// What an instance says of itself in its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Description {
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) started_unix_ms: u64,
    /// The fingerprint of its breaker names, in hex.
    pub(crate) fp: String,
    pub(crate) breakers: u32,
}

/// What this instance knows of the fleet's members (read by snapshots).
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// The live members, sorted by id.
    pub(crate) list: Vec<FleetMember>,
    /// For each breaker shared here: how many live members have it.
    pub(crate) sharers: HashMap<Arc<str>, u32>,
}

/// The task's side of the membership.
#[derive(Debug)]
pub(crate) struct Heartbeats {
    pub(crate) host: String,
    pub(crate) started_unix_ms: u64,
    /// The membership version last read (`None`: never).
    version: Option<u64>,
    /// The membership changed since it was last read.
    stale: bool,
    refreshed: Option<Instant>,
    /// The name sets of the fingerprints seen among the members.
    sets: HashMap<u64, Arc<HashSet<Arc<str>>>>,
}

impl Heartbeats {
    pub(crate) fn new(started_unix_ms: u64) -> Self {
        Heartbeats {
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            started_unix_ms,
            version: None,
            stale: true,
            refreshed: None,
            sets: HashMap::new(),
        }
    }

    /// After a reconnection: read everything again.
    pub(crate) fn reset(&mut self) {
        self.version = None;
        self.stale = true;
    }
}

/// Counts, for each of `names`, the live members whose name set has it.
pub(crate) fn count_sharers(
    names: &[Arc<str>],
    members: &[(u64, u32)],
    sets: &HashMap<u64, Arc<HashSet<Arc<str>>>>,
) -> HashMap<Arc<str>, u32> {
    let mut per_set: HashMap<u64, u32> = HashMap::new();
    for (fp, _) in members {
        *per_set.entry(*fp).or_default() += 1;
    }
    names
        .iter()
        .map(|name| {
            let n = per_set
                .iter()
                .filter(|(fp, _)| sets.get(fp).is_some_and(|set| set.contains(name)))
                .map(|(_, count)| *count)
                .sum();
            (name.clone(), n)
        })
        .collect()
}

/// How long a name set outlives the last heartbeat naming it.
fn set_ttl(member_timeout: Duration) -> Duration {
    (member_timeout * 3).max(KEEP_SET)
}

impl Task {
    /// [`FleetConfig::member_timeout`](crate::FleetConfig::member_timeout),
    /// at least two heartbeats.
    fn member_timeout(&self) -> Duration {
        let config = &self.inner.config;
        config.member_timeout.max(config.heartbeat * 2)
    }

    fn members_key(&self, what: &str) -> String {
        format!("{}{what}", Keys::new(&self.inner.namespace).members())
    }

    /// The names of the breakers shared here, sorted.
    fn shared_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .registry
            .named_breakers()
            .iter()
            .map(|b| b.name_arc().clone())
            .collect();
        names.sort();
        names
    }

    /// One heartbeat; reads the members again if they changed.
    pub(crate) async fn heartbeat(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let names = self.shared_names();
        let fp = fingerprint(names.iter().map(|n| &**n));
        let description = Description {
            host: self.heartbeats.host.clone(),
            pid: std::process::id(),
            started_unix_ms: self.heartbeats.started_unix_ms,
            fp: format!("{fp:016x}"),
            breakers: u32::try_from(names.len()).unwrap_or(u32::MAX),
        };
        let heartbeat = self.inner.config.heartbeat;
        let timeout = self.member_timeout();
        let (version, stored, _dropped): (u64, i64, i64) = Script::new(HEARTBEAT)
            .key(self.members_key("live"))
            .key(self.members_key("info"))
            .key(self.members_key("version"))
            .key(self.members_key("set:"))
            .arg(&self.inner.instance)
            .arg(serde_json::to_string(&description).unwrap_or_default())
            .arg(&description.fp)
            .arg(millis(timeout))
            .arg(millis(KEEP))
            .arg(millis(set_ttl(timeout)))
            .invoke_async(conn)
            .await?;
        if stored == 0 && fp != 0 {
            self.store_set(conn, &description.fp, &names).await?;
            self.heartbeats.stale = true;
        }
        self.heartbeats
            .sets
            .entry(fp)
            .or_insert_with(|| Arc::new(names.iter().cloned().collect()));
        if self.heartbeats.version != Some(version) {
            self.heartbeats.version = Some(version);
            self.heartbeats.stale = true;
        }
        // Reading the members costs O(members): under churn (a rolling
        // deploy), read them at most once per heartbeat per 100 members.
        let known = self.inner.members.lock().map_or(1, |m| m.list.len()).max(1);
        let spacing =
            heartbeat * u32::try_from(known.div_ceil(MEMBERS_PER_HEARTBEAT)).unwrap_or(u32::MAX);
        let due = self
            .heartbeats
            .refreshed
            .is_none_or(|at| at.elapsed() >= spacing);
        if self.heartbeats.stale && due {
            self.read_members(conn, &names).await?;
        }
        Ok(())
    }

    /// Stores this instance's name set under its fingerprint, whole (a
    /// staging key renamed at once).
    async fn store_set(
        &mut self,
        conn: &mut Conn,
        fp: &str,
        names: &[Arc<str>],
    ) -> redis::RedisResult<()> {
        let staging = self.members_key(&format!("staging:{}", self.inner.instance));
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&staging).ignore();
        for chunk in names.chunks(CHUNK) {
            pipe.cmd("SADD")
                .arg(&staging)
                .arg(chunk.iter().map(|n| &**n).collect::<Vec<_>>())
                .ignore();
        }
        // If this instance dies before the rename, the staging key goes.
        pipe.cmd("PEXPIRE").arg(&staging).arg(60_000).ignore();
        pipe.query_async::<()>(conn).await?;
        Script::new(STORE_SET)
            .key(&staging)
            .key(self.members_key(&format!("set:{fp}")))
            .key(self.members_key("version"))
            .arg(millis(set_ttl(self.member_timeout())))
            .invoke_async::<i64>(conn)
            .await?;
        Ok(())
    }

    /// Reads the live members and their name sets, and counts the sharers
    /// of every breaker shared here.
    async fn read_members(
        &mut self,
        conn: &mut Conn,
        names: &[Arc<str>],
    ) -> redis::RedisResult<()> {
        let (live, info): (Value, HashMap<String, String>) = redis::pipe()
            .cmd("ZRANGE")
            .arg(self.members_key("live"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(self.members_key("info"))
            .query_async(conn)
            .await?;
        let mut list = Vec::new();
        let mut fps = Vec::new();
        for (id, seen) in scored(live) {
            let Some(d) = info
                .get(&id)
                .and_then(|json| serde_json::from_str::<Description>(json).ok())
            else {
                continue; // a foreign or older description: not counted
            };
            let fp = u64::from_str_radix(&d.fp, 16).unwrap_or(0);
            fps.push((fp, d.breakers));
            list.push(FleetMember {
                id,
                host: d.host,
                pid: d.pid,
                started_unix_ms: d.started_unix_ms,
                last_seen_unix_ms: seen,
                breakers: d.breakers,
            });
        }
        for &(fp, _) in &fps {
            if fp == 0 || self.heartbeats.sets.contains_key(&fp) {
                continue;
            }
            let set: Vec<String> = redis::cmd("SMEMBERS")
                .arg(self.members_key(&format!("set:{fp:016x}")))
                .query_async(conn)
                .await?;
            if !set.is_empty() {
                let set = set.into_iter().map(Arc::from).collect();
                self.heartbeats.sets.insert(fp, Arc::new(set));
            }
        }
        // Forget the sets nobody has any more.
        self.heartbeats
            .sets
            .retain(|fp, _| fps.iter().any(|(f, _)| f == fp));
        let sharers = count_sharers(names, &fps, &self.heartbeats.sets);
        list.sort_by(|a, b| a.id.cmp(&b.id));
        *self
            .inner
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Members { list, sharers };
        self.heartbeats.stale = false;
        self.heartbeats.refreshed = Some(Instant::now());
        Ok(())
    }

    /// Leaves the fleet's membership at once (on shutdown), so the others
    /// need not wait for the timeout.
    pub(crate) async fn leave(&mut self, conn: &mut Conn) {
        let mut pipe = redis::pipe();
        let leave = pipe
            .cmd("ZREM")
            .arg(self.members_key("live"))
            .arg(&self.inner.instance)
            .ignore()
            .cmd("HDEL")
            .arg(self.members_key("info"))
            .arg(&self.inner.instance)
            .ignore()
            .cmd("INCR")
            .arg(self.members_key("version"))
            .ignore()
            .query_async::<()>(conn);
        let _ = tokio::time::timeout(Duration::from_secs(1), leave).await;
    }
}

/// `ZRANGE … WITHSCORES` in either protocol: a flat list (RESP2) or pairs
/// (RESP3).
fn scored(value: Value) -> Vec<(String, u64)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    let text = |v: &Value| -> Option<String> { redis::from_redis_value_ref(v).ok() };
    let score = |v: &Value| -> Option<u64> {
        let f: f64 = redis::from_redis_value_ref(v).ok()?;
        // Milliseconds since the epoch: well within f64's exact integers.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f.max(0.0) as u64)
    };
    if items.iter().all(|i| matches!(i, Value::Array(_))) {
        items
            .iter()
            .filter_map(|pair| match pair {
                Value::Array(p) if p.len() == 2 => Some((text(&p[0])?, score(&p[1])?)),
                _ => None,
            })
            .collect()
    } else {
        items
            .chunks(2)
            .filter_map(|p| match p {
                [id, seen] => Some((text(id)?, score(seen)?)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> Arc<HashSet<Arc<str>>> {
        Arc::new(names.iter().map(|n| Arc::from(*n)).collect())
    }

    #[test]
    fn fingerprints_ignore_order_and_tell_sets_apart() {
        assert_eq!(fingerprint([]), 0);
        assert_eq!(fingerprint(["a", "b"]), fingerprint(["b", "a"]));
        assert_ne!(fingerprint(["a", "b"]), fingerprint(["a", "c"]));
        assert_ne!(fingerprint(["a"]), fingerprint(["a", "a"]));
        assert_ne!(fingerprint(["ab"]), fingerprint(["a", "b"]));
        // Stable across builds: every instance must compute the same.
        assert_eq!(fingerprint(["payments"]), fingerprint(["payments"]));
        assert_ne!(fingerprint(["x"]), 0);
    }

    #[test]
    fn sharers_count_the_members_whose_set_has_the_name() {
        let sets = HashMap::from([(1, set(&["a", "b"])), (2, set(&["b", "c"]))]);
        // Three members run set 1, one runs set 2, one's set is unknown yet.
        let members = [(1, 2), (1, 2), (1, 2), (2, 2), (9, 5)];
        let names: Vec<Arc<str>> = ["a", "b", "c", "d"].iter().map(|n| Arc::from(*n)).collect();
        let counts = count_sharers(&names, &members, &sets);
        assert_eq!(counts[&Arc::from("a")], 3);
        assert_eq!(counts[&Arc::from("b")], 4);
        assert_eq!(counts[&Arc::from("c")], 1);
        assert_eq!(counts[&Arc::from("d")], 0);
    }

    #[test]
    fn scores_read_in_both_protocols() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![bulk("a"), bulk("1700000000123"), bulk("b"), bulk("5")]);
        assert_eq!(
            scored(resp2),
            [("a".to_owned(), 1_700_000_000_123), ("b".to_owned(), 5)]
        );
        let resp3 = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Double(1_700_000_000_123.0),
        ])]);
        assert_eq!(scored(resp3), [("a".to_owned(), 1_700_000_000_123)]);
        assert!(scored(Value::Nil).is_empty());
    }
}
