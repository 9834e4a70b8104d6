//! A real Redis Sentinel topology on loopback ports, for the fleet tests:
//! a primary, its replica and three sentinels that fail over in seconds.

use std::time::Duration;

use super::redis_node::{
    connect, connection_to, free_port, info_field, wait_until, Fields, Node, TempDir, PROBE_TIMEOUT,
};
use super::redis_server::installed;

/// The bound on [`SentinelSet::start`] and
/// [`restart_node`](SentinelSet::restart_node) after the processes answer:
/// the replica in sync, every sentinel knowing the others (they announce
/// themselves every 500 ms) and every replica (asked every second). It takes
/// about 1 s; the bound is for a loaded machine.
const READY: Duration = Duration::from_secs(30);

/// The bound on a question to the sentinels that has no bound of its own.
const ASK: Duration = Duration::from_secs(10);

/// A primary, one replica and three sentinels monitoring them as
/// [`MASTER`](Self::MASTER) (quorum 2, down after 1.5 s, failover timeout
/// 3 s, shorter periods: see `tune`), all `redis-server` processes on free
/// loopback ports, persistence off, their files in a temporary directory.
/// Everything is killed and the directory removed on drop (a failing test
/// prints the end of each log). Measured here: a start in about 1 s, a
/// failover in 2 to 4 s.
///
/// The calls block (bounded waits, synchronous connections): from an async
/// test, make the blocking ones (start, failover waits, restarts) inside
/// `tokio::task::spawn_blocking` (the set is `Sync`: share it in an `Arc`)
/// or on a multi-thread runtime, lest they stall the tasks under test.
pub struct SentinelSet {
    /// The two data nodes: the first primary, then its first replica.
    nodes: Vec<Node>,
    sentinels: Vec<Node>,
    /// Last: removed once the processes are dead.
    dir: TempDir,
}

impl SentinelSet {
    /// The name the sentinels monitor the primary as.
    pub const MASTER: &'static str = "mymaster";

    /// Starts the set and waits until it can fail over: the replica in sync
    /// with the primary, and every sentinel knowing the primary, the replica
    /// and the two other sentinels. Returns `None` (with a note) when
    /// `redis-server` is not installed and this is not CI; in CI (`CI` set)
    /// a missing server fails. Panics if the set is not ready within 30 s.
    pub fn start() -> Option<SentinelSet> {
        if !installed() {
            return None;
        }
        let dir = TempDir::new("sentinel");
        let primary = Node::start("primary", dir.path(), free_port, |port, dir| {
            data_node_args(port, dir, None)
        });
        let replica = Node::start("replica", dir.path(), free_port, |port, dir| {
            data_node_args(port, dir, Some(primary.port))
        });
        let primary_port = primary.port;
        let sentinels = (1..=3)
            .map(|i| {
                Node::start(
                    format!("sentinel {i}"),
                    dir.path(),
                    free_port,
                    |port, dir| sentinel_args(port, dir, primary_port),
                )
            })
            .collect();
        let set = SentinelSet {
            nodes: vec![primary, replica],
            sentinels,
            dir,
        };
        for sentinel in &set.sentinels {
            tune(sentinel);
        }
        set.wait_until_healthy(READY);
        Some(set)
    }

    /// The sentinels' addresses, `127.0.0.1:port` each.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster`:
    /// the sentinels and the monitored name, as the product takes them.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://{}/{}",
            self.sentinel_addrs().join(","),
            Self::MASTER
        )
    }

    /// The ports of the two data nodes, the first primary first (which is
    /// primary now is [`primary_port`](Self::primary_port)'s question).
    pub fn node_ports(&self) -> [u16; 2] {
        [self.nodes[0].port, self.nodes[1].port]
    }

    /// The current primary's port, as the first sentinel that answers
    /// reports it (`SENTINEL get-master-addr-by-name`); during a failover
    /// the sentinels may still disagree (see
    /// [`wait_for_failover`](Self::wait_for_failover)).
    pub fn primary_port(&self) -> u16 {
        wait_until("a sentinel to name the primary", ASK, || {
            let mut errors = Vec::new();
            for sentinel in &self.sentinels {
                match ask_primary(sentinel.port) {
                    Ok(port) => return Ok(port),
                    Err(e) => errors.push(format!("{}: {e}", sentinel.label)),
                }
            }
            Err(errors.join("; "))
        })
    }

    /// The port of the data node that is not [`primary_port`](Self::primary_port)
    /// (a replica, unless it is dead, paused or not reconfigured yet).
    pub fn replica_port(&self) -> u16 {
        let primary = self.primary_port();
        self.node_ports()
            .into_iter()
            .find(|&p| p != primary)
            .expect("two data nodes")
    }

    /// A connection to the current primary (timeouts 5 s).
    pub fn primary_connection(&self) -> redis::Connection {
        connection_to(self.primary_port())
    }

    /// A connection to the node (data node or sentinel) on `port`, for the
    /// test's own commands. Timeouts 5 s: a command to a node paused since
    /// fails, it does not hang; connecting to a paused node panics after 5 s
    /// (take the connection before the pause).
    pub fn connection_to(&self, port: u16) -> redis::Connection {
        connection_to(port)
    }

    /// Kills the current primary with `SIGKILL` (as a crash would); returns
    /// its port (for [`wait_for_failover`](Self::wait_for_failover)).
    pub fn kill_primary(&self) -> u16 {
        let port = self.primary_port();
        self.kill_node(port);
        port
    }

    /// Stops the current primary with `SIGSTOP` (a hung primary: its
    /// sockets stay open, nothing answers); returns its port.
    pub fn pause_primary(&self) -> u16 {
        let port = self.primary_port();
        self.pause_node(port);
        port
    }

    /// Resumes the data nodes [`pause_primary`](Self::pause_primary) (or
    /// [`pause_node`](Self::pause_node)) stopped. A primary resumed after a
    /// failover still says it is the primary until the sentinels turn it
    /// into a replica of the new one (some 3 s later:
    /// [`wait_until_healthy`](Self::wait_until_healthy) waits for that).
    pub fn resume_primary(&self) {
        for node in self.nodes.iter().filter(|n| n.is_paused()) {
            node.resume();
        }
    }

    /// Kills the data node on `port` with `SIGKILL`.
    pub fn kill_node(&self, port: u16) {
        self.node(port).kill();
    }

    /// Stops the data node on `port` with `SIGSTOP`.
    pub fn pause_node(&self, port: u16) {
        self.node(port).pause();
    }

    /// Resumes the data node on `port` with `SIGCONT`.
    pub fn resume_node(&self, port: u16) {
        self.node(port).resume();
    }

    /// Starts the data node on `port` again (killing it first if it runs)
    /// with no data of its own (persistence is off): as a replica of the
    /// current primary (it copies the primary's data), or as the primary if
    /// the sentinels still name it so (killed and restarted before a
    /// failover: it comes back empty, and so does its replica). Waits until
    /// the set is healthy again ([`wait_until_healthy`](Self::wait_until_healthy),
    /// 30 s; it takes well under 1 s as a replica): another failover can
    /// follow.
    pub fn restart_node(&self, port: u16) {
        let node = self.node(port);
        node.kill();
        let primary = self.primary_port();
        let replica_of = (primary != port).then_some(primary);
        if node
            .launch(&data_node_args(port, &node.dir, replica_of))
            .is_err()
        {
            panic!(
                "{} (port {port}): another process took its port",
                node.label
            );
        }
        self.wait_until_healthy(READY);
    }

    /// Waits until every sentinel names the same primary, which answers
    /// `ROLE` as `master`; every running (not paused) data node other than
    /// it is its replica, in sync (`master_link_status:up`), and every
    /// sentinel sees that replica healthy (flags `slave` only, link `ok`)
    /// and knows the two other sentinels. Panics with what was missing
    /// after `bound`.
    pub fn wait_until_healthy(&self, bound: Duration) {
        wait_until("the sentinel set to be healthy", bound, || {
            let primary = self.agreed_primary()?;
            let role = ask_role(primary)?;
            if role != "master" {
                return Err(format!("the primary {primary} says ROLE {role}"));
            }
            let replicas: Vec<u16> = self
                .nodes
                .iter()
                .filter(|n| n.port != primary && n.is_running())
                .map(|n| n.port)
                .collect();
            for &replica in &replicas {
                let info: String = connect(replica, PROBE_TIMEOUT)
                    .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c))
                    .map_err(|e| format!("replica {replica}: {e}"))?;
                let master_port = info_field(&info, "master_port");
                let link = info_field(&info, "master_link_status");
                if master_port != Some(&primary.to_string()) || link != Some("up") {
                    return Err(format!(
                        "replica {replica}: master_port {master_port:?}, master_link_status {link:?}"
                    ));
                }
            }
            for sentinel in &self.sentinels {
                check_sentinel(sentinel, primary, &replicas)?;
            }
            Ok(())
        })
    }

    /// Waits until every sentinel names the same primary other than
    /// `old_port` and that primary answers `ROLE` as `master`; returns its
    /// port. Panics with what the sentinels said after `bound`. A failover
    /// takes 2 to 4 s here (1.5 s to see the primary down, then the
    /// agreement, the vote and the promotion); should the sentinels split
    /// their votes, they vote again after twice the failover timeout, 6 s
    /// later: a bound of 30 s is safe.
    pub fn wait_for_failover(&self, old_port: u16, bound: Duration) -> u16 {
        wait_until("a failover", bound, || {
            let primary = self.agreed_primary()?;
            if primary == old_port {
                return Err(format!("the sentinels still name {old_port}"));
            }
            let role = ask_role(primary)?;
            if role == "master" {
                Ok(primary)
            } else {
                Err(format!("the new primary {primary} says ROLE {role}"))
            }
        })
    }

    /// The primary every sentinel names, or what they said.
    fn agreed_primary(&self) -> Result<u16, String> {
        let answers: Vec<Result<u16, String>> =
            self.sentinels.iter().map(|s| ask_primary(s.port)).collect();
        match answers.first() {
            Some(Ok(first)) if answers.iter().all(|a| a.as_ref() == Ok(first)) => Ok(*first),
            _ => Err(format!("the sentinels name {answers:?}")),
        }
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }
}

/// Shortens the sentinel's periods (`SENTINEL DEBUG`, not kept in its
/// configuration file), which its configuration cannot set:
///
/// - `ping-period` 500 ms (1 s): after a failover a sentinel reconnects to
///   the new primary at most once a ping period, and counts the
///   `down-after-milliseconds` from the switch; with 1 s for both, the new
///   primary was often seen down at once and failed over back (or the
///   failover aborted), a failover in 2 s one time and in 10 the next.
///   With 500 ms (and down after 1.5 s) the first ping has 0.9 s to spare.
///   Not less: during a failover a replica is a candidate only if its last
///   `INFO` (asked every second then, whatever the `info-period`) is at
///   most 5 ping periods old; at 200 ms, 1 s, a failover now and then found
///   "no good replica" and tried again 6 s later (14 s in all);
/// - `ask-period` 200 ms (1 s): the sentinels agree sooner that the primary
///   is down;
/// - `info-period` 1 s (10 s): the sentinels see a restarted replica, and
///   turn a resumed old primary into a replica, in seconds, not tens;
/// - `publish-period` 500 ms (2 s): the sentinels find each other sooner
///   (a start in 1 s, not 2.3);
/// - `tilt-period` 5 s (30 s): a sentinel stalled for 2 s (a loaded machine)
///   stops acting for 5 s, not for longer than a test waits.
fn tune(sentinel: &Node) {
    let periods = [
        ("ping-period", 500),
        ("ask-period", 200),
        ("info-period", 1000),
        ("publish-period", 500),
        ("tilt-period", 5000),
    ];
    let mut command = redis::cmd("SENTINEL");
    command.arg("DEBUG");
    for (name, ms) in periods {
        command.arg(name).arg(ms);
    }
    connect(sentinel.port, super::redis_node::COMMAND_TIMEOUT)
        .and_then(|mut c| command.exec(&mut c))
        .unwrap_or_else(|e| panic!("{}: SENTINEL DEBUG {periods:?}: {e}", sentinel.label));
}

/// The arguments of a data node: persistence off (also for the full syncs of
/// a replica, loaded from the socket rather than through a `dump.rdb` that
/// a restart would load), and full syncs without the 5 s wait for more
/// replicas (`repl-diskless-sync-delay`).
fn data_node_args(port: u16, dir: &std::path::Path, replica_of: Option<u16>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "no",
        "--dir",
        &dir.display().to_string(),
        "--logfile",
        &Node::log_path(dir).display().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-diskless-load",
        "swapdb",
    ]
    .map(String::from)
    .into();
    if let Some(primary) = replica_of {
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.to_string(),
        ]);
    }
    args
}

/// Writes the sentinel's own configuration file (a sentinel rewrites it)
/// and returns the arguments that run it.
fn sentinel_args(port: u16, dir: &std::path::Path, primary_port: u16) -> Vec<String> {
    let master = SentinelSet::MASTER;
    let config = format!(
        "port {port}\n\
         bind 127.0.0.1\n\
         daemonize no\n\
         dir {dir}\n\
         logfile {log}\n\
         sentinel monitor {master} 127.0.0.1 {primary_port} 2\n\
         sentinel down-after-milliseconds {master} 1500\n\
         sentinel failover-timeout {master} 3000\n\
         sentinel parallel-syncs {master} 1\n",
        dir = dir.display(),
        log = Node::log_path(dir).display(),
    );
    let path = dir.join("sentinel.conf");
    std::fs::write(&path, config)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    vec![path.display().to_string(), "--sentinel".into()]
}

/// The primary's port as the sentinel on `port` names it.
fn ask_primary(port: u16) -> Result<u16, String> {
    let addr: Vec<String> = connect(port, PROBE_TIMEOUT)
        .and_then(|mut c| {
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(SentinelSet::MASTER)
                .query(&mut c)
        })
        .map_err(|e| e.to_string())?;
    addr.get(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("get-master-addr-by-name answered {addr:?}"))
}

/// The first word of the `ROLE` of the node on `port` (`master`, `slave`).
fn ask_role(port: u16) -> Result<String, String> {
    let role: Vec<redis::Value> = connect(port, PROBE_TIMEOUT)
        .and_then(|mut c| redis::cmd("ROLE").query(&mut c))
        .map_err(|e| format!("ROLE of {port}: {e}"))?;
    role.into_iter()
        .next()
        .and_then(|v| redis::from_redis_value::<String>(v).ok())
        .ok_or_else(|| format!("ROLE of {port}: an empty answer"))
}

/// Whether `sentinel` sees `primary` as the healthy master, each of
/// `replicas` as its healthy replica, and the two other sentinels.
fn check_sentinel(sentinel: &Node, primary: u16, replicas: &[u16]) -> Result<(), String> {
    let label = &sentinel.label;
    let mut c = connect(sentinel.port, PROBE_TIMEOUT).map_err(|e| format!("{label}: {e}"))?;
    let master = Fields::new(
        redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(SentinelSet::MASTER)
            .query(&mut c)
            .map_err(|e| format!("{label}: SENTINEL MASTER: {e}"))?,
    );
    let (flags, port, others) = (
        master.get("flags"),
        master.get("port"),
        master.get("num-other-sentinels"),
    );
    if flags != Some("master") || port != Some(&primary.to_string()) || others != Some("2") {
        return Err(format!(
            "{label}: the master is {port:?} flags {flags:?}, other sentinels {others:?}"
        ));
    }
    let known: Vec<Vec<String>> = redis::cmd("SENTINEL")
        .arg("REPLICAS")
        .arg(SentinelSet::MASTER)
        .query(&mut c)
        .map_err(|e| format!("{label}: SENTINEL REPLICAS: {e}"))?;
    let known: Vec<Fields> = known.into_iter().map(Fields::new).collect();
    for replica in replicas {
        let port = replica.to_string();
        let seen = known.iter().find(|r| r.get("port") == Some(&port));
        let healthy = seen.is_some_and(|r| {
            r.get("flags") == Some("slave") && r.get("master-link-status") == Some("ok")
        });
        if !healthy {
            return Err(format!(
                "{label}: replica {replica} is {:?}",
                seen.map(|r| (r.get("flags"), r.get("master-link-status")))
            ));
        }
    }
    Ok(())
}
