//! Where the fleet keeps things in Redis: every key of one breaker (and the
//! channel that announces its changes) lives in one hash slot, so that the
//! scripts run on a Redis Cluster too.
//!
//! Breakers are spread over [`PARTITIONS`] partitions by a hash of their
//! name; a partition is one hash tag, `{namespace:partition}`:
//!
//! | key | what |
//! |---|---|
//! | `resilience:{ns:p}:breaker:NAME` | hash: `state`, `until_unix_ms`, `instance`, `fleet_gen` |
//! | `resilience:{ns:p}:probe:NAME` | the probe lease (`SET NX PX`) |
//! | `resilience:{ns:p}:names` | set: the names of the partition's breakers (read on resync) |
//! | `resilience:{ns:p}:version` | bumped by every change in the partition (a resync skips a partition whose version it knows) |
//! | `resilience:{ns:p}:events` | channel of the partition's changes (sharded on a cluster) |
//! | `resilience:{ns:p}:failures:NAME:…` | the fleet's failure counts (`fleet_threshold`) |
//! | `resilience:{ns:members}:…` | the instances: who is alive, and what they share |
//!
//! Sixteen partitions: a resync is sixteen round trips whatever the number
//! of breakers, each instance listens to sixteen channels, and a cluster
//! spreads the breakers over up to sixteen slots (so over its primaries).
//! The number is part of the layout: every instance of a fleet must agree
//! on it, so it is a constant, not a setting.

/// How many partitions the breakers of a namespace are spread over.
pub(crate) const PARTITIONS: u16 = 16;

/// The partition of a breaker name: FNV-1a, stable across builds,
/// platforms and versions (every instance must compute the same).
pub(crate) fn partition(name: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    u16::try_from(hash % u32::from(PARTITIONS)).unwrap_or(0)
}

/// The key names of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    namespace: String,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Keys {
            namespace: namespace.to_owned(),
        }
    }

    /// The prefix of partition `p`'s keys: `resilience:{ns:p}:`.
    fn partition(&self, p: u16) -> String {
        format!("resilience:{{{}:{p}}}:", self.namespace)
    }

    fn of(&self, name: &str, what: &str) -> String {
        format!("{}{what}:{name}", self.partition(partition(name)))
    }

    /// A breaker's state (hash).
    pub(crate) fn breaker(&self, name: &str) -> String {
        self.of(name, "breaker")
    }

    /// A breaker's probe lease.
    pub(crate) fn lease(&self, name: &str) -> String {
        self.of(name, "probe")
    }

    /// The prefix of a breaker's failure keys: `epoch` (the current
    /// epoch), and one bucket per epoch and second.
    pub(crate) fn failures(&self, name: &str) -> String {
        format!("{}:", self.of(name, "failures"))
    }

    /// The channel of a breaker's partition.
    pub(crate) fn channel_of(&self, name: &str) -> String {
        self.channel(partition(name))
    }

    /// Partition `p`'s channel.
    pub(crate) fn channel(&self, p: u16) -> String {
        format!("{}events", self.partition(p))
    }

    /// Partition `p`'s set of breaker names.
    pub(crate) fn names(&self, p: u16) -> String {
        format!("{}names", self.partition(p))
    }

    /// Partition `p`'s version: bumped by every change of its breakers.
    pub(crate) fn version(&self, p: u16) -> String {
        format!("{}version", self.partition(p))
    }

    /// The version key of a breaker's partition.
    pub(crate) fn version_of(&self, name: &str) -> String {
        self.version(partition(name))
    }

    /// The names set of a breaker's partition.
    pub(crate) fn names_of(&self, name: &str) -> String {
        self.names(partition(name))
    }

    /// Partition `p`'s prefix of breaker hashes (`…breaker:`).
    pub(crate) fn breaker_prefix(&self, p: u16) -> String {
        format!("{}breaker:", self.partition(p))
    }

    /// The prefix of the membership keys: `resilience:{ns:members}:`.
    pub(crate) fn members(&self) -> String {
        format!("resilience:{{{}:members}}:", self.namespace)
    }

    /// Every partition's channel.
    pub(crate) fn channels(&self) -> Vec<String> {
        (0..PARTITIONS).map(|p| self.channel(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: changing the hash splits a fleet running two builds.
        assert_eq!(partition(""), 5);
        assert_eq!(partition("payments"), partition("payments"));
        let mut seen = [0u32; PARTITIONS as usize];
        for i in 0..1600 {
            seen[usize::from(partition(&format!("b{i:04}")))] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
    }

    #[test]
    fn every_key_of_a_breaker_shares_its_hash_tag() {
        let k = Keys::new("checkout");
        let p = partition("payments");
        let tag = format!("{{checkout:{p}}}");
        for key in [
            k.breaker("payments"),
            k.lease("payments"),
            k.failures("payments"),
            k.channel_of("payments"),
            k.names_of("payments"),
            k.version_of("payments"),
        ] {
            assert!(key.starts_with(&format!("resilience:{tag}:")), "{key}");
        }
        assert_eq!(
            k.breaker("payments"),
            format!("resilience:{tag}:breaker:payments")
        );
        assert_eq!(k.members(), "resilience:{checkout:members}:");
        assert_eq!(k.channels().len(), usize::from(PARTITIONS));
    }
}
