//! The fleet's soak test with faults: 8 `soak_node` processes (this crate's
//! binary, `tests/src/bin/soak_node.rs`) share 200 breakers through one real
//! `redis-server` on a free loopback port, each of them calling every
//! breaker every 5 ms the whole time, while the test breaks things:
//!
//! 1. every node trips its own 25 breakers (their dependency is down on that
//!    node only), the others follow through Redis: every node has all 200
//!    open (the propagation times come from the nodes' transition
//!    timestamps); then the dependency is healthy again and all 200 close,
//!    each through one probe in the fleet;
//! 2. steady calls: nothing happens, every breaker stays closed everywhere
//!    (the memory Redis holds for 200 closed breakers is measured here);
//! 3. Redis killed: every node notices, one node trips 20 breakers that
//!    stay local; Redis restarted empty: every node reconnects and the trip
//!    made meanwhile reaches all of them; then they close;
//! 4. Redis hung (`SIGSTOP`) for 5 s: one node trips 20 breakers; Redis
//!    resumed (`SIGCONT`): the trip reaches all; then they close;
//! 5. 20 breakers tripped, their dependency healthy again, and the node that
//!    holds one of their probe leases (it reports `probing`) killed with
//!    `SIGKILL`: its lease expires, a survivor probes, and every survivor
//!    closes them (no probe lease is held forever);
//! 6. 100 breakers open (the dependency down everywhere), a new node joins:
//!    right after `ready` its states are the fleet's and its first calls to
//!    the open ones are rejected; then they close.
//!
//! After each step: every node reports the same `states`, the ones the test
//! made happen (half-open counts as open: it is how the fleet's open state
//! looks on the one instance holding its probe; while every node stayed
//! connected, at most one node may be half-open per breaker), within a bound;
//! no call waited on Redis (the slowest `try_acquire` + `record` and the
//! longest gap between two rounds of calls stay under 1 s, against outages
//! of 1 s and 5 s); every breaker closes once its dependency is healthy;
//! while every node stays connected, a recovering breaker is probed once in
//! the fleet (`check_one_probe`).
//!
//! It prints (`--nocapture`) a table per step: Redis commands (from
//! `total_commands_processed`, which counts the commands run inside scripts
//! too, less the test's own), calls, transitions and probes (from the
//! nodes), the time to converge and to close again, call latency (the worst
//! node's p99, the slowest call, the longest gap); then the propagation
//! delay of trips, the time from a breaker's first successful probe until
//! every node has it closed, the bytes per breaker in Redis (every key of
//! the dedicated server, by `SCAN` and `MEMORY USAGE`, over the breaker
//! count) and the commands by name. Key names are the runtime's business:
//! the test never reads or writes a key by name, it observes the nodes and
//! server-wide figures.
//!
//! One round takes ~35 s. `RESILIENCE_SOAK_SECS=<n>` repeats the rounds, with
//! longer steady phases, until `<n>` seconds have passed.
//! `RESILIENCE_SOAK_LOGS=<dir>` saves every node's log as `<dir>/<node>.log`
//! (the nodes log at `RUST_LOG`, default `resilience=info`).
//!
//! As in `fleet_processes.rs`, every answer is awaited with a bound (the test
//! fails, it never hangs), the children are killed when their guards drop,
//! and a failing test prints their logs.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::process::{Process, ANSWER};
use support::redis_server::RedisServer;
use support::redis_stats::Meter;

const NAMESPACE: &str = "soak";
const BREAKERS: usize = 200;
const NODES: usize = 8;
/// Consecutive failures that open a breaker (a node calls every breaker every
/// 5 ms, so a breaker whose dependency is down opens within ~25 ms).
const THRESHOLD: u32 = 5;
/// How long a breaker stays open before the fleet probes it.
const RECOVERY: Duration = Duration::from_millis(2_000);
/// How long a node holds a probe's permit before recording it.
const PROBE: Duration = Duration::from_millis(1_000);
/// The nodes' probe lease (`soak_node`'s `FleetConfig::lease`).
const LEASE: Duration = Duration::from_secs(2);
/// How long Redis stays killed.
const OUTAGE: Duration = Duration::from_millis(1_000);
/// How long Redis stays hung.
const PAUSE: Duration = Duration::from_secs(5);
/// The bound on any single call and on the gap between two rounds of calls:
/// far below the outages, so a call that waited on Redis would show.
const AT_ONCE: Duration = Duration::from_secs(1);
/// The bound on a node's transition listener recording a transition that
/// its `states` already shows (it runs just after the state changes).
const RECORDED: Duration = Duration::from_secs(2);
/// The bound on conditions that take the fleet some time.
const EVENTUALLY: Duration = Duration::from_secs(30);

fn unix_us_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_micros()).unwrap()
}

/// The selection of `range` in the nodes' commands (`b000-b019`).
fn sel(range: &Range<usize>) -> String {
    format!("b{:03}-b{:03}", range.start, range.end - 1)
}

/// The states with the breakers of `open` open and the others closed.
fn expected(open: Option<&Range<usize>>) -> String {
    (0..BREAKERS)
        .map(|i| {
            if open.is_some_and(|r| r.contains(&i)) {
                'o'
            } else {
                'c'
            }
        })
        .collect()
}

/// Half-open read as open: the fleet's open state as the one instance
/// holding its probe sees it.
fn normalised(states: &str) -> String {
    states.replace('h', "o")
}

/// Where two `states` answers differ: the first few breakers, with both.
fn differences(got: &str, want: &str) -> String {
    if got.len() != want.len() {
        return format!("{} states, want {}", got.len(), want.len());
    }
    let got = normalised(got);
    let diff: Vec<String> = got
        .chars()
        .zip(want.chars())
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| format!("b{i:03}={g} (want {w})"))
        .collect();
    let shown: Vec<&str> = diff.iter().take(6).map(String::as_str).collect();
    format!("{} differ: {}", diff.len(), shown.join(" "))
}

/// `<unix-µs>:<cause>` tokens of a `tripped` answer.
fn parse_tripped(answer: &str) -> Vec<(u64, char)> {
    answer
        .split(' ')
        .map(|token| {
            let (at, cause) = token
                .split_once(':')
                .unwrap_or_else(|| panic!("bad `tripped` token {token:?}"));
            let cause = cause.chars().next().expect("a cause");
            (at.parse().expect("unix µs"), cause)
        })
        .collect()
}

/// `<unix-µs>:<state>:<cause>` tokens of a `changed` answer.
fn parse_changed(answer: &str) -> Vec<(u64, char, char)> {
    answer
        .split(' ')
        .map(|token| {
            let mut parts = token.split(':');
            let (Some(at), Some(state), Some(cause)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("bad `changed` token {token:?}");
            };
            (
                at.parse().expect("unix µs"),
                state.chars().next().expect("a state"),
                cause.chars().next().expect("a cause"),
            )
        })
        .collect()
}

/// Each node's probes per breaker, by label.
type Probes = BTreeMap<&'static str, Vec<u64>>;

/// A node's `lat` answer, or several combined (the worst of each).
#[derive(Debug, Clone, Copy, Default)]
struct Lat {
    calls: u64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    gap_us: f64,
}

impl Lat {
    fn parse(answer: &str) -> Lat {
        let mut lat = Lat::default();
        for pair in answer.split(' ') {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad `lat` answer {answer:?}"));
            match key {
                "calls" => lat.calls = value.parse().expect("a count"),
                "p50_us" => lat.p50_us = value.parse().expect("µs"),
                "p99_us" => lat.p99_us = value.parse().expect("µs"),
                "max_us" => lat.max_us = value.parse().expect("µs"),
                "gap_us" => lat.gap_us = value.parse().expect("µs"),
                _ => panic!("bad `lat` answer {answer:?}"),
            }
        }
        lat
    }

    fn worst(self, other: Lat) -> Lat {
        Lat {
            calls: self.calls + other.calls,
            p50_us: self.p50_us.max(other.p50_us),
            p99_us: self.p99_us.max(other.p99_us),
            max_us: self.max_us.max(other.max_us),
            gap_us: self.gap_us.max(other.gap_us),
        }
    }
}

/// What the nodes counted (the killed ones as last read).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    calls: u64,
    /// Calls admitted as a half-open probe.
    probes: u64,
    transitions: u64,
    local: u64,
}

impl Counters {
    fn add(&mut self, other: Counters) {
        self.calls += other.calls;
        self.probes += other.probes;
        self.transitions += other.transitions;
        self.local += other.local;
    }
}

/// The figures of one step, for the table.
struct Row {
    step: String,
    secs: f64,
    commands: u64,
    calls: u64,
    transitions: u64,
    local: u64,
    probes: u64,
    /// Breakers that recovered (closed again) in the step.
    recovered: usize,
    /// How long until every node had the state the step made.
    converge: Option<Duration>,
    /// How long until every breaker was closed again, everywhere.
    heal: Option<Duration>,
    lat: Lat,
}

/// Where a step started.
struct Mark {
    at: Instant,
    commands: u64,
    counters: Counters,
}

/// The fleet under test: the server, the nodes, and what was measured.
struct Soak {
    /// Dropped first (killed, their logs printed if the test fails), while
    /// the server still runs.
    nodes: Vec<Process>,
    server: RedisServer,
    url: String,
    /// Nodes started so far (for their labels).
    started: usize,
    /// The counters of the nodes killed, as last read.
    retired: Counters,
    meter: Meter,
    rows: Vec<Row>,
    /// Propagation delays (µs): a trip's transition on its node to the same
    /// breaker's transition on each other node.
    propagation_us: Vec<u64>,
    /// Per breaker recovering (µs): from the first successful probe until
    /// the last node closed it.
    closing_us: Vec<u64>,
    /// `(when, keys, bytes)` of the server's memory.
    memory: Vec<(&'static str, u64, u64)>,
    /// Of each node killed while probing: the breakers of its step it was
    /// probing, and how long after the kill the last of them closed.
    dead_probers: Vec<(usize, Duration)>,
    /// The joiners' first calls admitted as the fleet's probe.
    joiner_probes: usize,
}

impl Soak {
    fn spawn(&mut self, down: Option<&str>) -> Process {
        let label: &'static str = Box::leak(format!("node{}", self.started).into_boxed_str());
        self.started += 1;
        let mut command = Command::new(env!("CARGO_BIN_EXE_soak_node"));
        command
            .args([self.url.as_str(), NAMESPACE])
            .arg(BREAKERS.to_string())
            .arg(THRESHOLD.to_string())
            .arg(RECOVERY.as_millis().to_string())
            .arg(PROBE.as_millis().to_string());
        if let Some(down) = down {
            command.arg(format!("down={down}"));
        }
        // The nodes log at `resilience=info` unless `RUST_LOG` says otherwise
        // (`resilience=debug` logs every rejected call: heavy at this rate).
        Process::spawn(label, command)
    }

    /// Waits for a node's `ready <instance-id>`; returns the id.
    fn ready(node: &Process) -> String {
        let ready = node.answer("(start-up)", ANSWER);
        ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("{}: expected `ready <id>`, got {ready:?}", node.label))
            .to_owned()
    }

    /// Sends `command` to every node, then collects their answers.
    fn ask_all(&mut self, command: &str) -> Vec<String> {
        for node in &mut self.nodes {
            node.send(command);
        }
        self.nodes
            .iter()
            .map(|node| node.answer(command, ANSWER))
            .collect()
    }

    /// Sends each node its own command, then collects the answers.
    fn ask_each(&mut self, commands: &[String]) -> Vec<String> {
        assert_eq!(commands.len(), self.nodes.len());
        for (node, command) in self.nodes.iter_mut().zip(commands) {
            node.send(command);
        }
        self.nodes
            .iter()
            .zip(commands)
            .map(|(node, command)| node.answer(command, ANSWER))
            .collect()
    }

    /// Sets the dependency of `range` down or up on node `k`.
    fn set(&mut self, k: usize, down: bool, range: &Range<usize>) {
        let word = if down { "down" } else { "up" };
        let answer = self.nodes[k].ask(&format!("{word} {}", sel(range)));
        assert_eq!(answer, format!("ok {}", range.len()), "{word} on node {k}");
    }

    /// Sets the dependency of `range` down or up on every node.
    fn set_all(&mut self, down: bool, range: &Range<usize>) {
        let word = if down { "down" } else { "up" };
        for answer in self.ask_all(&format!("{word} {}", sel(range))) {
            assert_eq!(answer, format!("ok {}", range.len()), "{word} everywhere");
        }
    }

    /// Polls every node's `states` every 10 ms until all read `expected`
    /// (half-open as open); returns the time since `since`. With
    /// `one_prober` (every node stayed connected), no breaker may be
    /// half-open on two nodes at once. Fails after [`EVENTUALLY`].
    fn converge(
        &mut self,
        what: &str,
        expected: &str,
        one_prober: bool,
        since: Instant,
    ) -> Duration {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let states = self.ask_all("states");
            if one_prober {
                for i in 0..BREAKERS {
                    let probers: Vec<&str> = states
                        .iter()
                        .zip(&self.nodes)
                        .filter(|(s, _)| s.as_bytes().get(i) == Some(&b'h'))
                        .map(|(_, n)| n.label)
                        .collect();
                    assert!(
                        probers.len() <= 1,
                        "{what}: b{i:03} is half-open on {probers:?} at once (one probe lease per breaker)"
                    );
                }
            }
            if states.iter().all(|s| normalised(s) == expected) {
                return since.elapsed();
            }
            if Instant::now() >= deadline {
                let mut report = String::new();
                for (node, s) in self.nodes.iter().zip(&states) {
                    let _ = write!(report, "\n  {}: {}", node.label, differences(s, expected));
                }
                panic!(
                    "{what}: not every node has the expected states within {EVENTUALLY:?}:{report}"
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls node `k`'s `states` until `range` reads open (half-open as open).
    fn wait_open_on(&mut self, k: usize, what: &str, range: &Range<usize>) {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let states = normalised(&self.nodes[k].ask("states"));
            if states[range.clone()].chars().all(|c| c == 'o') {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {states}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls every node's answer to `command` until all are `want`; returns
    /// how long it took.
    fn wait_all(&mut self, what: &str, command: &str, want: &str) -> Duration {
        let start = Instant::now();
        loop {
            let answers = self.ask_all(command);
            if answers.iter().all(|a| a == want) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < EVENTUALLY,
                "{what}: `{command}` answered {answers:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The nodes' `lat` since the last one (then reset), the worst of each.
    fn lat(&mut self) -> Lat {
        self.ask_all("lat")
            .iter()
            .map(|a| Lat::parse(a))
            .fold(Lat::default(), Lat::worst)
    }

    /// No call waited on Redis during `step`.
    fn check_lat(step: &str, lat: Lat) {
        #[allow(clippy::cast_precision_loss)]
        let bound = AT_ONCE.as_micros() as f64;
        assert!(
            lat.max_us < bound,
            "{step}: a call took {} µs (try_acquire + record): it waited on something",
            lat.max_us
        );
        assert!(
            lat.gap_us < bound,
            "{step}: {} µs between two rounds of calls: the calls stalled",
            lat.gap_us
        );
    }

    /// The nodes' calls and transitions (one node's, or all, killed ones included).
    fn counters_of(node: &mut Process) -> Counters {
        let calls = node.ask("calls").parse().expect("a count");
        let probes = node.ask("probes").parse().expect("a count");
        let transitions = node.ask("transitions");
        let (all, local) = transitions
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad `transitions` answer {transitions:?}"));
        Counters {
            calls,
            probes,
            transitions: all.parse().expect("a count"),
            local: local.parse().expect("a count"),
        }
    }

    fn counters(&mut self) -> Counters {
        let mut sum = self.retired;
        for node in &mut self.nodes {
            sum.add(Self::counters_of(node));
        }
        sum
    }

    fn mark(&mut self) -> Mark {
        Mark {
            at: Instant::now(),
            commands: self.meter.sample(),
            counters: self.counters(),
        }
    }

    fn row(
        &mut self,
        step: &str,
        mark: &Mark,
        recovered: usize,
        (converge, heal): (Option<Duration>, Option<Duration>),
        lat: Lat,
    ) {
        let end = self.mark();
        self.rows.push(Row {
            step: step.to_owned(),
            secs: (end.at - mark.at).as_secs_f64(),
            commands: end.commands - mark.commands,
            calls: end.counters.calls - mark.counters.calls,
            transitions: end.counters.transitions - mark.counters.transitions,
            local: end.counters.local - mark.counters.local,
            probes: end.counters.probes - mark.counters.probes,
            recovered,
            converge,
            heal,
            lat,
        });
    }

    /// Followers learned the trip of `range` from the fleet after `after_us`
    /// (Unix µs): their last closed → open transition was applied from the
    /// fleet, and came after it.
    fn check_learned(&mut self, what: &str, origin: usize, range: &Range<usize>, after_us: u64) {
        let labels = self.labels();
        self.recorded(&format!("tripped {}", sel(range)), |answers| {
            for (k, answer) in answers.iter().enumerate() {
                if k == origin {
                    continue;
                }
                for (i, (at, cause)) in range.clone().zip(parse_tripped(answer)) {
                    if cause != 'f' || at < after_us {
                        return Err(format!(
                            "{what}: {} did not learn b{i:03}'s trip from the fleet (tripped {at}:{cause}, want f after {after_us})",
                            labels[k]
                        ));
                    }
                }
            }
            Ok(())
        });
    }

    fn labels(&self) -> Vec<&'static str> {
        self.nodes.iter().map(|n| n.label).collect()
    }

    /// The nodes' answers to `command` (`tripped`, `changed`: what their
    /// transition listeners recorded) once `check` accepts them. A listener
    /// runs just after its breaker's state changes (after the transition's
    /// log line), so right after `states` showed a change its record may
    /// still be on the way: polled every 10 ms, within [`RECORDED`].
    fn recorded(
        &mut self,
        command: &str,
        check: impl Fn(&[String]) -> Result<(), String>,
    ) -> Vec<String> {
        let deadline = Instant::now() + RECORDED;
        loop {
            let answers = self.ask_all(command);
            match check(&answers) {
                Ok(()) => return answers,
                Err(why) => assert!(Instant::now() < deadline, "{why}"),
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Each running node's probes per breaker of `range` since it started.
    fn probes_of(&mut self, range: &Range<usize>) -> Probes {
        let labels = self.labels();
        let answers = self.ask_all(&format!("probes {}", sel(range)));
        labels
            .into_iter()
            .zip(answers)
            .map(|(label, answer)| {
                let counts = answer.split(' ').map(|n| n.parse().expect("a count"));
                (label, counts.collect())
            })
            .collect()
    }

    /// The fleet lets one instance probe each recovering breaker: at most
    /// one probe per breaker of `range`, by the nodes running now, since
    /// `before` (read when the dependency became healthy; every node stays
    /// connected).
    fn check_one_probe(&mut self, step: &str, range: &Range<usize>, before: &Probes) {
        let mut per_breaker = vec![0; range.len()];
        for (label, counts) in &self.probes_of(range) {
            for (j, n) in counts.iter().enumerate() {
                per_breaker[j] += n - before.get(label).map_or(0, |then| then[j]);
            }
        }
        let again: Vec<String> = per_breaker
            .iter()
            .zip(range.clone())
            .filter(|(n, _)| **n > 1)
            .map(|(n, i)| format!("b{i:03}={n}"))
            .collect();
        assert!(
            again.is_empty(),
            "{step}: {} of {} recovering breakers probed more than once ({} probes; the fleet lets one instance probe each), e.g. {}",
            again.len(),
            range.len(),
            per_breaker.iter().sum::<u64>(),
            again[..again.len().min(6)].join(" ")
        );
    }

    /// Step 1: every node trips its share of the breakers, all open
    /// everywhere; then all close.
    fn trip_everywhere(&mut self) {
        let n = self.nodes.len();
        let shares: Vec<Range<usize>> = (0..n)
            .map(|k| k * BREAKERS / n..(k + 1) * BREAKERS / n)
            .collect();
        self.lat();
        let mark = self.mark();
        let tripping = Instant::now();
        let tripping_us = unix_us_now();
        let commands: Vec<String> = shares.iter().map(|r| format!("down {}", sel(r))).collect();
        for (answer, share) in self.ask_each(&commands).iter().zip(&shares) {
            assert_eq!(answer, &format!("ok {}", share.len()));
        }
        let converge = self.converge(
            "every node's trips reach every node",
            &expected(Some(&(0..BREAKERS))),
            true,
            tripping,
        );
        // Each breaker opened on its origin by its own failures, and on
        // every other node from the fleet.
        let labels = self.labels();
        let tripped = |answers: &[String]| -> Vec<Vec<(u64, char)>> {
            answers.iter().map(|a| parse_tripped(a)).collect()
        };
        let answers = self.recorded("tripped all", |answers| {
            let tripped = tripped(answers);
            for (origin, share) in shares.iter().enumerate() {
                for i in share.clone() {
                    for (k, node) in tripped.iter().enumerate() {
                        let (at, cause) = node[i];
                        let want = if k == origin { 'l' } else { 'f' };
                        if cause != want || at < tripping_us {
                            return Err(format!(
                                "b{i:03} tripped by {}: on {} it opened at {at}:{cause}, want {want} after {tripping_us}",
                                labels[origin], labels[k]
                            ));
                        }
                    }
                }
            }
            Ok(())
        });
        let tripped = tripped(&answers);
        for (origin, share) in shares.iter().enumerate() {
            for i in share.clone() {
                let at = tripped[origin][i].0;
                for (k, node) in tripped.iter().enumerate() {
                    if k != origin {
                        self.propagation_us.push(node[i].0.saturating_sub(at));
                    }
                }
            }
        }
        let (keys, bytes) = self.meter.memory();
        self.memory.push(("all 200 open", keys, bytes));
        let lat = self.lat();
        Self::check_lat("trip", lat);
        self.row(
            &format!("trip 200 ({n} origins)"),
            &mark,
            0,
            (Some(converge), None),
            lat,
        );

        // The dependency is healthy again everywhere (it was down on the
        // origins only, and for less than the open time: no probe yet).
        let mark = self.mark();
        let probes_before = self.probes_of(&(0..BREAKERS));
        let healing = Instant::now();
        let healing_us = unix_us_now();
        self.set_all(false, &(0..BREAKERS));
        let heal = self.converge("all 200 close again", &expected(None), true, healing);
        let lat = self.lat();
        Self::check_lat("recover", lat);
        // Per breaker: from the first successful probe (the first node that
        // closed it by itself) until the last node closed it.
        let changes = |answers: &[String]| -> Vec<Vec<(u64, char, char)>> {
            answers.iter().map(|a| parse_changed(a)).collect()
        };
        let answers = self.recorded("changed all", |answers| {
            let changes = changes(answers);
            for i in 0..BREAKERS {
                if !changes.iter().all(|c| c[i].1 == 'c' && c[i].0 >= healing_us)
                    || !changes.iter().any(|c| c[i].2 == 'l')
                {
                    let last: Vec<_> = changes.iter().map(|c| c[i]).collect();
                    return Err(format!(
                        "b{i:03} must have closed after {healing_us} everywhere, once by a probe: {last:?}"
                    ));
                }
            }
            Ok(())
        });
        let changes = changes(&answers);
        for i in 0..BREAKERS {
            let closed = |c: &&Vec<(u64, char, char)>| c[i].2 == 'l';
            let first = changes.iter().filter(closed).map(|c| c[i].0).min();
            let last = changes.iter().map(|c| c[i].0).max();
            if let (Some(first), Some(last)) = (first, last) {
                self.closing_us.push(last - first);
            }
        }
        self.check_one_probe("recover", &(0..BREAKERS), &probes_before);
        self.row(
            &format!("recover {BREAKERS}"),
            &mark,
            BREAKERS,
            (None, Some(heal)),
            lat,
        );
    }

    /// Step 2: calls for `length` (at least the lease, so that every lease
    /// has expired), nothing happens; the memory Redis holds then.
    fn steady(&mut self, length: Duration) {
        self.lat();
        let mark = self.mark();
        thread::sleep(length.max(LEASE + Duration::from_millis(200)));
        let converge = self.converge("steady: all closed", &expected(None), true, Instant::now());
        let (keys, bytes) = self.meter.memory();
        self.memory.push(("all 200 closed, steady", keys, bytes));
        let lat = self.lat();
        Self::check_lat("steady", lat);
        self.row("steady calls", &mark, 0, (Some(converge), None), lat);
    }

    /// Step 3: Redis killed and restarted empty.
    fn redis_killed(&mut self) {
        let (origin, range) = (0, 0..20);
        self.lat();
        let mark = self.mark();
        self.meter.fold_commandstats();
        let killed = Instant::now();
        self.server.kill();
        self.wait_all(
            "every node notices that Redis is gone",
            "connected",
            "false",
        );
        self.set(origin, true, &range);
        self.wait_open_on(origin, "the origin trips while Redis is down", &range);
        let all_closed = expected(None);
        for (k, states) in self.ask_all("states").iter().enumerate() {
            if k != origin {
                assert_eq!(
                    states, &all_closed,
                    "nothing reaches {} without Redis",
                    self.nodes[k].label
                );
            }
        }
        thread::sleep(OUTAGE.saturating_sub(killed.elapsed()));
        let restart_us = unix_us_now();
        self.server.restart();
        let restarted = Instant::now();
        self.meter.restarted(&self.server);
        self.wait_all("every node reconnects", "connected", "true");
        let converge = self.converge(
            "the trip made while Redis was down reaches every node",
            &expected(Some(&range)),
            false,
            restarted,
        );
        self.check_learned("after the restart", origin, &range, restart_us);
        let lat = self.lat();
        Self::check_lat("Redis killed", lat);
        let healing = Instant::now();
        self.set(origin, false, &range);
        let heal = self.converge("they close again", &all_closed, false, healing);
        self.row(
            &format!(
                "redis killed {:.0} s, restarted empty",
                OUTAGE.as_secs_f64()
            ),
            &mark,
            range.len(),
            (Some(converge), Some(heal)),
            lat,
        );
    }

    /// Step 4: Redis hung (`SIGSTOP`) for [`PAUSE`], then resumed.
    fn redis_paused(&mut self) {
        let (origin, range) = (1, 20..40);
        self.lat();
        let mark = self.mark();
        let calls_before: Vec<u64> = self
            .ask_all("calls")
            .iter()
            .map(|c| c.parse().expect("a count"))
            .collect();
        let paused_us = unix_us_now();
        self.server.pause();
        let paused = Instant::now();
        self.set(origin, true, &range);
        self.wait_open_on(origin, "the origin trips while Redis hangs", &range);
        thread::sleep(PAUSE.saturating_sub(paused.elapsed()));
        self.server.resume();
        let resumed = Instant::now();
        let converge = self.converge(
            "the trip made while Redis hung reaches every node",
            &expected(Some(&range)),
            false,
            resumed,
        );
        self.wait_all("every node is connected again", "connected", "true");
        self.check_learned("after the hang", origin, &range, paused_us);
        let lat = self.lat();
        Self::check_lat("Redis hung", lat);
        // At least a fifth of the rounds of calls due during the hang.
        let due = u64::try_from(PAUSE.as_millis() / 5 / 5).unwrap() * BREAKERS as u64;
        let calls_after = self.ask_all("calls");
        for (k, (before, after)) in calls_before.iter().zip(&calls_after).enumerate() {
            let made = after.parse::<u64>().expect("a count") - before;
            assert!(
                made >= due,
                "{} made {made} calls while Redis hung for {PAUSE:?} (at least {due} due)",
                self.nodes[k].label
            );
        }
        let healing = Instant::now();
        self.set(origin, false, &range);
        let heal = self.converge("they close again", &expected(None), false, healing);
        self.row(
            &format!("redis hung {:.0} s (SIGSTOP)", PAUSE.as_secs_f64()),
            &mark,
            range.len(),
            (Some(converge), Some(heal)),
            lat,
        );
    }

    /// Step 5: the node holding a probe lease killed with `SIGKILL`.
    fn prober_killed(&mut self) {
        let (origin, range) = (2, 40..60);
        self.lat();
        let mark = self.mark();
        self.set(origin, true, &range);
        let tripping = Instant::now();
        let converge = self.converge(
            "the trip reaches every node",
            &expected(Some(&range)),
            true,
            tripping,
        );
        let probes_before = self.probes_of(&range);
        self.set(origin, false, &range);
        // Once the open time is up, one node per breaker wins its lease and
        // holds the probe for PROBE.
        let deadline = Instant::now() + RECOVERY + EVENTUALLY;
        let ours = |name: &&str| {
            name.strip_prefix('b')
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|i| range.contains(&i))
        };
        let (victim, probing) = loop {
            let answers = self.ask_all("probing");
            let found = answers.iter().enumerate().find_map(|(k, answer)| {
                let names: Vec<String> = answer
                    .split(' ')
                    .skip(1)
                    .filter(ours)
                    .map(str::to_owned)
                    .collect();
                (!names.is_empty()).then_some((k, names))
            });
            if let Some(found) = found {
                break found;
            }
            assert!(
                Instant::now() < deadline,
                "no node ever probed {}",
                sel(&range)
            );
            thread::sleep(Duration::from_millis(5));
        };
        let c = Self::counters_of(&mut self.nodes[victim]);
        self.retired.add(c);
        let victim = self.nodes.remove(victim);
        let label = victim.label;
        let killed_us = unix_us_now();
        Self::save_log(&victim);
        victim.kill();
        let killed = Instant::now();
        let heal = self.converge(
            &format!("the breakers close on every survivor once the lease of {label} (dead, probing {probing:?}) expires"),
            &expected(None),
            true,
            killed,
        );
        // Each of the dead prober's breakers was closed after the kill by a
        // survivor's own probe (one survivor: see `check_one_probe`); the
        // others applied that closing from the fleet.
        let changes = |answers: &[String]| -> Vec<Vec<(u64, char, char)>> {
            answers.iter().map(|a| parse_changed(a)).collect()
        };
        let answers = self.recorded(&format!("changed {}", probing.join(",")), |answers| {
            let changes = changes(answers);
            for (j, name) in probing.iter().enumerate() {
                let last: Vec<_> = changes.iter().map(|c| c[j]).collect();
                if !last.iter().all(|c| c.1 == 'c' && c.0 > killed_us)
                    || !last.iter().any(|c| c.2 == 'l')
                {
                    return Err(format!(
                        "{name}: a survivor must probe and close it after {label}'s death, and every survivor have it closed: {last:?}"
                    ));
                }
            }
            Ok(())
        });
        let last_closed = changes(&answers)
            .iter()
            .flat_map(|c| c.iter().map(|c| c.0))
            .max()
            .unwrap_or(killed_us);
        // The survivors probe each breaker once (the dead node's too).
        self.check_one_probe("prober killed", &range, &probes_before);
        self.dead_probers.push((
            probing.len(),
            Duration::from_micros(last_closed - killed_us),
        ));
        let lat = self.lat();
        Self::check_lat("prober killed", lat);
        self.row(
            "probe holder SIGKILLed",
            &mark,
            range.len(),
            (Some(converge), Some(heal)),
            lat,
        );
    }

    /// Step 6: a new node joins while half the breakers are open.
    fn join(&mut self) {
        let range = BREAKERS / 2..BREAKERS;
        let origin = 3 % self.nodes.len();
        let half_open = expected(Some(&range));
        self.lat();
        let mark = self.mark();
        self.set(origin, true, &range);
        let tripping = Instant::now();
        self.converge("the trip reaches every node", &half_open, true, tripping);
        // The dependency is down for everyone: the fleet keeps them open.
        self.set_all(true, &range);
        let spawned = Instant::now();
        let mut joiner = self.spawn(Some(&sel(&range)));
        Self::ready(&joiner);
        let ready = spawned.elapsed();
        let states = joiner.ask("states");
        assert_eq!(
            normalised(&states),
            half_open,
            "the joiner's states right after `ready` must be the fleet's: {}",
            differences(&states, &half_open)
        );
        self.nodes.push(joiner);
        self.converge("the joiner and the fleet agree", &half_open, true, spawned);
        // Twenty rounds of calls.
        thread::sleep(Duration::from_millis(100));
        let first = self.nodes.last_mut().unwrap().ask("first");
        for (i, c) in first.chars().enumerate() {
            if range.contains(&i) {
                // `p`: the joiner won the fleet's probe lease (the open
                // time was up): the call the fleet lets through.
                assert!(
                    c == 'r' || c == 'p',
                    "the joiner's first call to b{i:03}, open in the fleet, must be rejected: {c}"
                );
                self.joiner_probes += usize::from(c == 'p');
            } else {
                assert_eq!(c, 'a', "the joiner's first call to b{i:03} (closed)");
            }
        }
        let lat = self.lat();
        Self::check_lat("join", lat);
        let probes_before = self.probes_of(&range);
        let healing = Instant::now();
        self.set_all(false, &range);
        let heal = self.converge("the open half closes again", &expected(None), true, healing);
        self.check_one_probe("join", &range, &probes_before);
        self.row(
            &format!("joins with {} open", range.len()),
            &mark,
            range.len(),
            (Some(ready), Some(heal)),
            lat,
        );
    }

    /// With `RESILIENCE_SOAK_LOGS=<dir>`, writes `node`'s log to
    /// `<dir>/<label>.log` (before it is killed or quits).
    fn save_log(node: &Process) {
        if let Some(dir) = std::env::var_os("RESILIENCE_SOAK_LOGS") {
            let path = std::path::Path::new(&dir).join(format!("{}.log", node.label));
            let mut text = node.log().join("\n");
            text.push('\n');
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    fn print(&self, rounds: usize, wall: Duration) {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{}", d.as_millis()));
        #[allow(clippy::cast_precision_loss)]
        let per = |a: u64, b: u64, scale: f64| {
            if b == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", a as f64 * scale / b as f64)
            }
        };
        println!(
            "\n{rounds} round(s), {} nodes started; cmds: Redis commands of the nodes (inside scripts too); \
             loc: transitions not applied from the fleet; probes/rec: probes per breaker recovered",
            self.started
        );
        println!(
            "{:<34} {:>5} {:>7} {:>8} {:>10} {:>7} {:>7} {:>10} {:>7} {:>7} {:>7} {:>8} {:>6}",
            "step",
            "secs",
            "cmds",
            "calls",
            "trans(loc)",
            "cmd/loc",
            "cmd/1kc",
            "probes/rec",
            "conv_ms",
            "heal_ms",
            "p99_us",
            "max_us",
            "gap_ms"
        );
        let mut total = (0.0, 0, 0, 0, 0);
        for r in &self.rows {
            total.0 += r.secs;
            total.1 += r.commands;
            total.2 += r.calls;
            total.3 += r.transitions;
            total.4 += r.local;
            println!(
                "{:<34} {:>5.1} {:>7} {:>8} {:>10} {:>7} {:>7} {:>10} {:>7} {:>7} {:>7.2} {:>8.1} {:>6.1}",
                r.step,
                r.secs,
                r.commands,
                r.calls,
                format!("{}({})", r.transitions, r.local),
                per(r.commands, r.local, 1.0),
                per(r.commands, r.calls, 1000.0),
                format!("{}/{}", r.probes, r.recovered),
                ms(r.converge),
                ms(r.heal),
                r.lat.p99_us,
                r.lat.max_us,
                r.lat.gap_us / 1000.0,
            );
        }
        println!(
            "{:<34} {:>5.1} {:>7} {:>8} {:>10} {:>7} {:>7}",
            "all steps",
            total.0,
            total.1,
            total.2,
            format!("{}({})", total.3, total.4),
            per(total.1, total.4, 1.0),
            per(total.1, total.2, 1000.0),
        );
        let quantiles = |what: &str, samples: &[u64]| {
            let mut p = samples.to_vec();
            p.sort_unstable();
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let q = |q: f64| {
                let i = ((q * p.len() as f64).ceil() as usize).clamp(1, p.len()) - 1;
                p[i] as f64 / 1000.0
            };
            if !p.is_empty() {
                println!(
                    "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
                    q(0.5),
                    q(0.99),
                    q(1.0),
                    p.len()
                );
            }
        };
        quantiles(
            "propagation of a trip (its transition on its node -> on each other node)",
            &self.propagation_us,
        );
        quantiles(
            "closing of a recovered breaker (first successful probe -> closed on every node)",
            &self.closing_us,
        );
        for (when, keys, bytes) in &self.memory {
            println!(
                "redis memory, {when}: {keys} keys, {bytes} bytes, {} bytes per breaker",
                bytes / BREAKERS as u64
            );
        }
        for (held, closed) in &self.dead_probers {
            println!(
                "the killed node was probing {held} breaker(s) of the step; the last of them closed {} ms after the kill (lease {} ms, probe {} ms)",
                closed.as_millis(),
                LEASE.as_millis(),
                PROBE.as_millis()
            );
        }
        println!(
            "joiners' first calls to open breakers admitted as the fleet's probe: {}",
            self.joiner_probes
        );
        let mut by_name: Vec<(&String, &u64)> = self.meter.by_name.iter().collect();
        by_name.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = by_name
            .iter()
            .take(12)
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        println!(
            "nodes' commands by name (inside scripts too): {}",
            top.join(" ")
        );
        println!("wall time: {:.1} s", wall.as_secs_f64());
    }
}

#[test]
fn eight_processes_share_200_breakers_through_faults() {
    let began = Instant::now();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let soak_secs: Option<u64> = std::env::var("RESILIENCE_SOAK_SECS")
        .ok()
        .map(|s| s.parse().expect("RESILIENCE_SOAK_SECS: whole seconds"));
    let steady = soak_secs.map_or(LEASE, |s| Duration::from_secs((s / 10).clamp(2, 60)));
    let url = server.url();
    let meter = Meter::new(&server);
    let mut soak = Soak {
        server,
        url,
        nodes: Vec::new(),
        started: 0,
        retired: Counters::default(),
        meter,
        rows: Vec::new(),
        propagation_us: Vec::new(),
        closing_us: Vec::new(),
        memory: Vec::new(),
        dead_probers: Vec::new(),
        joiner_probes: 0,
    };
    let spawned: Vec<Process> = (0..NODES).map(|_| soak.spawn(None)).collect();
    let mut ids: Vec<String> = spawned.iter().map(Soak::ready).collect();
    soak.nodes = spawned;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), NODES, "each process has its own instance id");
    // Bad input gets an error line, never a crash.
    for bad in [
        "explode",
        "",
        "states now",
        "down",
        "down b999",
        "up b010-b002",
        "\u{7f}\u{1}",
    ] {
        let answer = soak.nodes[0].ask(bad);
        assert!(answer.starts_with("error "), "{bad:?} -> {answer:?}");
    }
    let answer = soak.nodes[0].send_bytes(b"st\xffte\n");
    assert!(answer.starts_with("error "), "not UTF-8 -> {answer:?}");
    soak.converge(
        "start-up: all closed",
        &expected(None),
        true,
        Instant::now(),
    );

    let mut rounds = 0;
    loop {
        soak.trip_everywhere();
        soak.steady(steady);
        soak.redis_killed();
        soak.redis_paused();
        soak.prober_killed();
        soak.join();
        rounds += 1;
        let done = soak_secs.is_none_or(|s| began.elapsed() >= Duration::from_secs(s));
        if done {
            break;
        }
    }
    soak.meter.fold_commandstats();
    let nodes = std::mem::take(&mut soak.nodes);
    for node in nodes {
        Soak::save_log(&node);
        node.quit();
    }
    soak.print(rounds, began.elapsed());
}
