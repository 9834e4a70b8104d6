//! A real Redis Cluster on loopback ports, for the fleet tests: three
//! primaries sharing the 16384 slots, no replicas.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::redis_node::{
    connect, connection_to, free_cluster_port, info_field, wait_until, Node, TempDir, POLL,
    PROBE_TIMEOUT,
};
use super::redis_server::installed;

/// The bound on `redis-cli --cluster create`.
const CREATE: Duration = Duration::from_secs(30);

/// The bound on [`ClusterSet::start`] and
/// [`restart_node`](ClusterSet::restart_node) after the nodes answer: every
/// node sees every slot served (a restarted node is cleared of its failure
/// 2 node timeouts after it was flagged).
const READY: Duration = Duration::from_secs(30);

/// The bound on a question to the cluster that has no bound of its own.
const ASK: Duration = Duration::from_secs(10);

/// Three `redis-server` primaries in cluster mode (no replicas) on free
/// loopback ports whose bus ports (`port + 10000`) were free too, sharing
/// the slots as `redis-cli --cluster create` splits them; node timeout 1 s,
/// persistence off, `cluster-require-full-coverage no` (with a node down,
/// the others go on serving their own slots: a shard outage, not a cluster
/// outage), their files (`nodes.conf` each) in a temporary directory.
/// Everything is killed and the directory removed on drop (a failing test
/// prints the end of each log).
///
/// The calls block (bounded waits, synchronous connections): from an async
/// test, make the blocking ones (start, restarts) inside
/// `tokio::task::spawn_blocking` (the set is `Sync`: share it in an `Arc`)
/// or on a multi-thread runtime, lest they stall the tasks under test.
pub struct ClusterSet {
    nodes: Vec<Node>,
    /// Last: removed once the processes are dead.
    dir: TempDir,
}

impl ClusterSet {
    /// Starts the three nodes, makes them one cluster and waits until every
    /// node says `cluster_state:ok` with all 16384 slots served and the
    /// three nodes known. Returns `None` (with a note) when `redis-server`
    /// is not installed and this is not CI; in CI (`CI` set) a missing
    /// server fails (as a missing `redis-cli` always does). Panics if the
    /// cluster is not ready within 30 s.
    pub fn start() -> Option<ClusterSet> {
        if !installed() {
            return None;
        }
        let dir = TempDir::new("cluster");
        let nodes = (1..=3)
            .map(|i| {
                Node::start(
                    format!("node {i}"),
                    dir.path(),
                    free_cluster_port,
                    node_args,
                )
            })
            .collect();
        let set = ClusterSet { nodes, dir };
        set.create();
        set.wait_until_healthy(READY);
        Some(set)
    }

    /// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`,
    /// bounded, its output in the temporary directory (and in the panic
    /// message if it fails).
    fn create(&self) {
        let out = self.dir.path().join("cluster-create.log");
        let file = std::fs::File::create(&out).expect("create the redis-cli log");
        let mut cli = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli (is it installed?): {e}"));
        let deadline = Instant::now() + CREATE;
        let status = loop {
            if let Some(status) = cli.try_wait().expect("wait for redis-cli") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = cli.kill();
                let _ = cli.wait();
                break None;
            }
            std::thread::sleep(POLL);
        };
        if !status.is_some_and(|s| s.success()) {
            panic!(
                "redis-cli --cluster create {}; its output:\n{}",
                status.map_or(format!("did not finish within {CREATE:?}"), |s| format!(
                    "failed ({s})"
                )),
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: the nodes,
    /// as the product takes them.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", addrs.join(","))
    }

    /// `redis://127.0.0.1:port` of each node.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// A plain connection to the node on `port` (not a cluster connection:
    /// a key of another node's slot answers `MOVED`), for the test's own
    /// commands. Timeouts 5 s: a command to a node paused since fails, it
    /// does not hang; connecting to a paused node panics after 5 s (take
    /// the connection before the pause).
    pub fn connection_to(&self, port: u16) -> redis::Connection {
        connection_to(port)
    }

    /// The port of the node that serves `key`'s slot (`CLUSTER KEYSLOT`,
    /// `CLUSTER SLOTS`), as the first running node that answers sees it.
    pub fn node_for_key(&self, key: &str) -> u16 {
        wait_until(&format!("the node of `{key}`"), ASK, || {
            let mut errors = Vec::new();
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                match slot_owner(node.port, key) {
                    Ok(port) => return Ok(port),
                    Err(e) => errors.push(format!("{}: {e}", node.label)),
                }
            }
            Err(errors.join("; "))
        })
    }

    /// A hash tag (`{t<n>}`) whose keys the node on `port` serves: a key
    /// containing it (`"breaker:{t3}"`) lives on that node.
    pub fn hash_tag_on(&self, port: u16) -> String {
        assert!(self.ports().contains(&port), "no node on port {port}");
        (0..10_000)
            .map(|n| format!("{{t{n}}}"))
            .find(|tag| self.node_for_key(tag) == port)
            .unwrap_or_else(|| panic!("no tag of 10000 lands on {port}"))
    }

    /// Kills the node on `port` with `SIGKILL` (as a crash would). The
    /// others flag it failed a node timeout (1 s) later and go on serving
    /// their own slots; its slots have no server until it restarts.
    pub fn kill_node(&self, port: u16) {
        self.node(port).kill();
    }

    /// Stops the node on `port` with `SIGSTOP` (a hung node: its sockets
    /// stay open, nothing answers).
    pub fn pause_node(&self, port: u16) {
        self.node(port).pause();
    }

    /// Resumes the node on `port` with `SIGCONT`.
    pub fn resume_node(&self, port: u16) {
        self.node(port).resume();
    }

    /// Starts the node on `port` again (killing it first if it runs) with
    /// its `nodes.conf`: the same node id and slots, its data gone
    /// (persistence is off). Waits until the cluster is healthy again
    /// ([`wait_until_healthy`](Self::wait_until_healthy), 30 s).
    pub fn restart_node(&self, port: u16) {
        let node = self.node(port);
        node.kill();
        if node.launch(&node_args(port, &node.dir)).is_err() {
            panic!(
                "{} (port {port}): another process took its port",
                node.label
            );
        }
        self.wait_until_healthy(READY);
    }

    /// Waits until every node runs and says `cluster_state:ok`, with all
    /// 16384 slots served by nodes not flagged failing
    /// (`cluster_slots_ok`) and three nodes known. Panics with what was
    /// missing after `bound`.
    pub fn wait_until_healthy(&self, bound: Duration) {
        wait_until("the cluster to be healthy", bound, || {
            for node in &self.nodes {
                if !node.is_running() {
                    return Err(format!(
                        "{} (port {}) is down or paused",
                        node.label, node.port
                    ));
                }
                let info: String = connect(node.port, PROBE_TIMEOUT)
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .map_err(|e| format!("{}: {e}", node.label))?;
                let fields = ["cluster_state", "cluster_slots_ok", "cluster_known_nodes"]
                    .map(|f| info_field(&info, f));
                if fields != [Some("ok"), Some("16384"), Some("3")] {
                    return Err(format!(
                        "{}: cluster_state, cluster_slots_ok, cluster_known_nodes = {fields:?}",
                        node.label
                    ));
                }
            }
            Ok(())
        })
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }
}

/// The arguments of a cluster node: its `nodes.conf` in its own directory,
/// node timeout 1 s, persistence off.
fn node_args(port: u16, dir: &Path) -> Vec<String> {
    [
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
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &dir.join("nodes.conf").display().to_string(),
        "--cluster-node-timeout",
        "1000",
        "--cluster-require-full-coverage",
        "no",
    ]
    .map(String::from)
    .into()
}

/// The port of the node serving `key`'s slot, as the node on `port` sees it.
fn slot_owner(port: u16, key: &str) -> Result<u16, String> {
    let mut c = connect(port, PROBE_TIMEOUT).map_err(|e| e.to_string())?;
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut c)
        .map_err(|e| format!("CLUSTER KEYSLOT: {e}"))?;
    // Each range: [first slot, last slot, [ip, port, id, …] of its primary, replicas…].
    let ranges: Vec<(i64, i64, (String, u16))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<Vec<redis::Value>>>(&mut c)
        .map_err(|e| format!("CLUSTER SLOTS: {e}"))?
        .into_iter()
        .filter_map(|range| {
            let mut range = range.into_iter();
            let first = redis::from_redis_value(range.next()?).ok()?;
            let last = redis::from_redis_value(range.next()?).ok()?;
            let primary: Vec<redis::Value> = redis::from_redis_value(range.next()?).ok()?;
            let mut primary = primary.into_iter();
            let ip = redis::from_redis_value(primary.next()?).ok()?;
            let port = redis::from_redis_value(primary.next()?).ok()?;
            Some((first, last, (ip, port)))
        })
        .collect();
    ranges
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .map(|(_, _, (_, port))| *port)
        .ok_or_else(|| format!("no range of CLUSTER SLOTS holds slot {slot}: {ranges:?}"))
}
