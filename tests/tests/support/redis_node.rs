//! What the Redis topologies ([`SentinelSet`](super::redis_sentinel::SentinelSet),
//! [`ClusterSet`](super::redis_cluster::ClusterSet)) share: one
//! `redis-server` process on a loopback port ([`Node`]), started with a
//! bound and on another port if its own was taken meanwhile; the temporary
//! directory of its files ([`TempDir`]); free ports; bounded probes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The bound on one node's start (until it answers `PING`).
pub const NODE_START: Duration = Duration::from_secs(10);

/// The timeouts (connect, read, write) of the connections handed to the
/// tests: a command to a paused node fails after this, it never hangs.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeouts of the harness's own probes inside its bounded waits, short
/// so that a paused node costs a wait little of its bound.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How often the bounded waits ask again.
pub const POLL: Duration = Duration::from_millis(50);

/// The tries at finding a free port for one node before giving up.
const PORT_TRIES: usize = 10;

/// A unique directory under `std::env::temp_dir()` for the files of one
/// topology (configurations, logs, working directories), removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `resilience-<kind>-<pid>-<n>-<nanos>` (a fresh name: the
    /// tests of one binary start topologies in parallel).
    pub fn new(kind: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "resilience-{kind}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A free loopback port: one the system just handed out for port 0. Free
/// when asked, not reserved: [`Node::start`] tries another if it was taken
/// by the time the server binds it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback port whose cluster bus port (`port + 10000`) is free too,
/// hence at most 55535.
pub fn free_cluster_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("found no free port whose port + 10000 is free too in 100 tries");
}

/// Why a start failed.
#[derive(Debug)]
pub enum StartError {
    /// Another process had taken the port (or the cluster bus port) first:
    /// worth trying another port.
    PortTaken,
}

/// One `redis-server` (or sentinel) process on a loopback port, logging to
/// `<dir>/<port>/redis.log`, killed on drop (also when paused: `SIGKILL`
/// ends a stopped process).
pub struct Node {
    /// What the messages call it, e.g. `sentinel 2`.
    pub label: String,
    pub port: u16,
    /// Its own directory, `<topology dir>/<port>`: working directory,
    /// configuration files, log.
    pub dir: PathBuf,
    child: Mutex<Option<Child>>,
    paused: AtomicBool,
}

impl Node {
    /// Starts a node on a free port from `pick_port`, with the arguments
    /// `args(port, its directory)` gives (which may write a configuration
    /// file there first), and waits until it answers; tries another port if
    /// that one was taken meanwhile. Panics with the node's log if it does
    /// not start.
    pub fn start(
        label: impl Into<String>,
        topology_dir: &Path,
        mut pick_port: impl FnMut() -> u16,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Node {
        let label = label.into();
        for _ in 0..PORT_TRIES {
            let port = pick_port();
            let dir = topology_dir.join(port.to_string());
            if std::fs::create_dir(&dir).is_err() {
                continue; // an earlier try of this topology had the port
            }
            let node = Node {
                label: label.clone(),
                port,
                dir,
                child: Mutex::new(None),
                paused: AtomicBool::new(false),
            };
            let args = args(port, &node.dir);
            match node.launch(&args) {
                Ok(()) => return node,
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("{label}: every one of {PORT_TRIES} free ports was taken before it could bind it");
    }

    /// The log file the arguments must name (`--logfile`, or `logfile` in a
    /// configuration file).
    pub fn log_path(dir: &Path) -> PathBuf {
        dir.join("redis.log")
    }

    /// Runs `redis-server args…` on this node's port (killing the process it
    /// runs, if any) and waits until the new process answers `PING` on it.
    /// `Err(PortTaken)` if another process holds the port; panics with the
    /// log if the server fails otherwise or does not answer within
    /// [`NODE_START`].
    pub fn launch(&self, args: &[String]) -> Result<(), StartError> {
        self.kill();
        let log = Self::log_path(&self.dir);
        let log_start = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let child = Command::new("redis-server")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start redis-server: {e}", self.label));
        let pid = child.id();
        *self.lock() = Some(child);
        self.paused.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + NODE_START;
        loop {
            let exited = self
                .lock()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.lock().take();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let new = text.get(log_start..).unwrap_or(&text);
                if new.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                panic!(
                    "{} (port {}): redis-server exited ({status}) at start; its log:\n{new}",
                    self.label, self.port
                );
            }
            // The port may answer for another process (the one that took it):
            // ours is the one whose `process_id` is ours.
            let ours = connect(self.port, PROBE_TIMEOUT)
                .and_then(|mut c| redis::cmd("INFO").arg("server").query::<String>(&mut c))
                .ok()
                .and_then(|info| info_field(&info, "process_id").map(str::to_owned))
                .is_some_and(|id| id == pid.to_string());
            if ours {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} (port {}) did not answer within {NODE_START:?}; its log:\n{}",
                    self.label,
                    self.port,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The process id (`None` once killed).
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// Whether the process runs and is not paused (false once it exited,
    /// also on its own).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock();
        let exited = child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
        !exited && !self.paused.load(Ordering::SeqCst)
    }

    /// Whether it was [`pause`](Self::pause)d and not resumed since.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Kills the process with `SIGKILL` (as a crash would), if it runs.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Stops the process with `SIGSTOP`: a hung server whose sockets stay
    /// open but never answer.
    pub fn pause(&self) {
        self.signal("-STOP");
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Resumes a [`pause`](Self::pause)d process with `SIGCONT`.
    pub fn resume(&self) {
        self.signal("-CONT");
        self.paused.store(false, Ordering::SeqCst);
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} (port {}) is not running", self.label, self.port));
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(Self::log_path(&self.dir)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    /// Kills the process; when a test failed, prints the end of its log
    /// first (what the topology did is most of what explains a failure).
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} (port {}), end of its log:\n{}",
                self.label,
                self.port,
                self.log_tail(25)
            );
        }
    }
}

/// A connection to the node on `port`, with `timeout` to connect, read and
/// write.
pub fn connect(port: u16, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// A connection for a test's own commands (timeouts [`COMMAND_TIMEOUT`]);
/// panics if the node on `port` does not take it (also, after the timeout,
/// when it is paused: the handshake gets no answer).
pub fn connection_to(port: u16) -> redis::Connection {
    connect(port, COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"))
}

/// The value of `field` in the text of an `INFO` (`field:value` lines).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// A flat `[key, value, key, value, …]` reply (`SENTINEL MASTER`, one entry
/// of `SENTINEL REPLICAS`) as pairs; `field` looks one up.
pub struct Fields(Vec<String>);

impl Fields {
    /// Reads a flat array reply.
    pub fn new(values: Vec<String>) -> Fields {
        Fields(values)
    }

    /// The value of `key`, if the reply has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .chunks(2)
            .find(|pair| pair[0] == key)
            .and_then(|pair| pair.get(1))
            .map(String::as_str)
    }
}

/// Polls `probe` every [`POLL`] until it returns `Ok`, then returns that;
/// after `bound`, panics with `what` and the last `Err` (what was still
/// missing).
pub fn wait_until<T>(
    what: &str,
    bound: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + bound;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(missing) if Instant::now() >= deadline => {
                panic!("timed out after {bound:?} waiting for {what}: {missing}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}
