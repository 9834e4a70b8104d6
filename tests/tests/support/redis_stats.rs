//! The server-wide figures of a `redis-server` a test started, read on the
//! test's own connection: commands processed (less the test's own), commands
//! by name, keys and their memory ([`Meter`]); or simply the calls of one
//! command since the test reset the server's statistics
//! ([`reset_commandstats`], [`command_calls`]). Nothing here reads or writes
//! a key by name: the fleet's key names are the runtime's business.

use std::collections::BTreeMap;

use super::process::ANSWER;
use super::redis_server::RedisServer;

/// Resets the server's statistics (`CONFIG RESETSTAT`): [`command_calls`]
/// counts from here.
pub fn reset_commandstats(conn: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(conn).unwrap();
}

/// How many times `command` ran since the last `CONFIG RESETSTAT` (inside
/// scripts too; the server's lower-case name: `get`, `set`, `smembers`).
pub fn command_calls(conn: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    let calls = commandstats(&info).find(|(name, _)| *name == command);
    calls.map_or(0, |(_, calls)| calls.expect("a number of calls"))
}

/// Each command of an `INFO commandstats` answer (`cmdstat_<name>:calls=<n>,…`)
/// with its calls, `None` if they do not read as a number.
fn commandstats(info: &str) -> impl Iterator<Item = (&str, Option<u64>)> {
    info.lines().filter_map(|line| {
        let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
        let calls = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|n| n.parse().ok());
        Some((name, calls))
    })
}

/// A test's own connection to a `redis-server` it started, for what the
/// other clients (a fleet's processes) made the server do.
pub struct Meter {
    conn: redis::Connection,
    /// The test's own commands on the current server, by name.
    own: BTreeMap<&'static str, u64>,
    /// The test's own commands, in all.
    own_total: u64,
    /// The last `total_commands_processed` read, and `own_total` just
    /// before reading it.
    last: Option<(u64, u64)>,
    /// The clients' commands counted so far, over every server.
    client_commands: u64,
    /// The clients' commands by name (inside scripts too), over the
    /// servers folded in by [`fold_commandstats`](Self::fold_commandstats).
    pub by_name: BTreeMap<String, u64>,
}

impl Meter {
    /// A connection to `server` (every answer within [`ANSWER`]).
    pub fn new(server: &RedisServer) -> Meter {
        let conn = server.connection();
        conn.set_read_timeout(Some(ANSWER)).unwrap();
        conn.set_write_timeout(Some(ANSWER)).unwrap();
        Meter {
            conn,
            own: BTreeMap::new(),
            own_total: 0,
            last: None,
            client_commands: 0,
            by_name: BTreeMap::new(),
        }
    }

    fn run<T: redis::FromRedisValue>(&mut self, name: &'static str, cmd: &redis::Cmd) -> T {
        *self.own.entry(name).or_default() += 1;
        self.own_total += 1;
        cmd.query(&mut self.conn)
            .unwrap_or_else(|e| panic!("the test's `{name}`: {e}"))
    }

    fn info(&mut self, section: &str) -> String {
        self.run("info", redis::cmd("INFO").arg(section))
    }

    /// The clients' commands so far (over every server since the first
    /// sample): the growth of `total_commands_processed` (which counts the
    /// commands run inside scripts too) less the test's own commands.
    pub fn sample(&mut self) -> u64 {
        let own_before = self.own_total;
        let info = self.info("stats");
        let processed: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no total_commands_processed in {info:?}"));
        if let Some((last, own_then)) = self.last {
            let own = own_before - own_then;
            self.client_commands += processed.saturating_sub(last).saturating_sub(own);
        }
        self.last = Some((processed, own_before));
        self.client_commands
    }

    /// Adds this server's `commandstats` (less the test's own) to
    /// [`by_name`](Self::by_name): before the server dies, and at the end.
    pub fn fold_commandstats(&mut self) {
        let info = self.info("commandstats");
        for (name, calls) in commandstats(&info) {
            let calls = calls.unwrap_or(0);
            let own = self.own.get(name).copied().unwrap_or(0);
            // `INFO` is the test's own (each is counted once it has run).
            if name != "info" {
                *self.by_name.entry(name.to_owned()).or_default() += calls.saturating_sub(own);
            }
        }
    }

    /// After a restart (an empty server, counters from 0): a new connection.
    pub fn restarted(&mut self, server: &RedisServer) {
        let conn = server.connection();
        conn.set_read_timeout(Some(ANSWER)).unwrap();
        conn.set_write_timeout(Some(ANSWER)).unwrap();
        self.conn = conn;
        self.own.clear();
        self.last = Some((0, self.own_total));
    }

    /// `(keys, bytes)`: every key of the server (`SCAN`, names never looked
    /// at) and the sum of their `MEMORY USAGE`.
    pub fn memory(&mut self) -> (u64, u64) {
        let (mut keys, mut bytes) = (0, 0);
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<Vec<u8>>) = self.run(
                "scan",
                redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000),
            );
            for key in found {
                let usage: Option<u64> = self.run(
                    "memory|usage",
                    redis::cmd("MEMORY")
                        .arg("USAGE")
                        .arg(key)
                        .arg("SAMPLES")
                        .arg(0),
                );
                if let Some(usage) = usage {
                    keys += 1;
                    bytes += usage;
                }
            }
            if next == 0 {
                return (keys, bytes);
            }
            cursor = next;
        }
    }
}
