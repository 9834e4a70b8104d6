//! What a snapshot shows of the fleet: this instance's view of the fleet
//! ([`FleetStatus`], with every live member) and, per shared breaker, how
//! many instances share it and who changed it last ([`BreakerFleetStatus`]).

/// One instance of a fleet, as its heartbeats describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FleetMember {
    /// Its id: the `instance` of its announcements
    /// ([`Fleet::instance_id`](crate::Fleet::instance_id)).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it joined the fleet (ms since the Unix epoch, its clock).
    pub started_unix_ms: u64,
    /// Its last heartbeat (ms since the Unix epoch, Redis's clock).
    pub last_seen_unix_ms: u64,
    /// How many named breakers it shares.
    pub breakers: u32,
}

/// This instance's view of its fleet, in
/// [`Snapshot::fleet`](crate::Snapshot::fleet) (feature `redis`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FleetStatus {
    /// This instance's id.
    pub instance: String,
    /// The namespace the fleet shares.
    pub namespace: String,
    /// The fleet's Redis, without credentials.
    pub redis: String,
    /// Whether the sync is connected to Redis now.
    pub connected: bool,
    /// The live instances (this one included) as of the last membership
    /// read, sorted by id: those heard of within
    /// [`FleetConfig::member_timeout`](crate::FleetConfig::member_timeout).
    pub members: Vec<FleetMember>,
}

/// A shared breaker's place in its fleet, in
/// [`BreakerStatus::fleet`](crate::BreakerStatus::fleet): filled in by
/// [`Registry::snapshot`](crate::Registry::snapshot) for the named
/// breakers of a registry shared through Redis, `None` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerFleetStatus {
    /// Live instances that have this breaker, this one included (0 until
    /// the first membership read).
    pub instances: u32,
    /// The instance that made the last change this one knows of (`None`:
    /// the fleet has not changed it yet).
    pub last_change_by: Option<String>,
}
