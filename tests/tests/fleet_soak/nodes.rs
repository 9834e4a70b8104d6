//! The fleet of nodes and how it is asked: commands, answers, polling.

use std::fmt::Write as _;
use std::ops::Range;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::process::{Process, ANSWER};
use crate::{Soak, BREAKERS, EVENTUALLY, NAMESPACE, PROBE, RECORDED, RECOVERY, THRESHOLD};

/// The selection of `range` in the nodes' commands (`b000-b019`).
pub(crate) fn sel(range: &Range<usize>) -> String {
    format!("b{:03}-b{:03}", range.start, range.end - 1)
}

/// The states with the breakers of `open` open and the others closed.
pub(crate) fn expected(open: Option<&Range<usize>>) -> String {
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
pub(crate) fn normalised(states: &str) -> String {
    states.replace('h', "o")
}

/// Where two `states` answers differ: the first few breakers, with both.
pub(crate) fn differences(got: &str, want: &str) -> String {
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
pub(crate) fn parse_tripped(answer: &str) -> Vec<(u64, char)> {
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
pub(crate) fn parse_changed(answer: &str) -> Vec<(u64, char, char)> {
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

impl Soak {
    pub(crate) fn spawn(&mut self, down: Option<&str>) -> Process {
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
    pub(crate) fn ready(node: &Process) -> String {
        let ready = node.answer("(start-up)", ANSWER);
        ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("{}: expected `ready <id>`, got {ready:?}", node.label))
            .to_owned()
    }

    /// Sends `command` to every node, then collects their answers.
    pub(crate) fn ask_all(&mut self, command: &str) -> Vec<String> {
        for node in &mut self.nodes {
            node.send(command);
        }
        self.nodes
            .iter()
            .map(|node| node.answer(command, ANSWER))
            .collect()
    }

    /// Sends each node its own command, then collects the answers.
    pub(crate) fn ask_each(&mut self, commands: &[String]) -> Vec<String> {
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
    pub(crate) fn set(&mut self, k: usize, down: bool, range: &Range<usize>) {
        let word = if down { "down" } else { "up" };
        let answer = self.nodes[k].ask(&format!("{word} {}", sel(range)));
        assert_eq!(answer, format!("ok {}", range.len()), "{word} on node {k}");
    }

    /// Sets the dependency of `range` down or up on every node.
    pub(crate) fn set_all(&mut self, down: bool, range: &Range<usize>) {
        let word = if down { "down" } else { "up" };
        for answer in self.ask_all(&format!("{word} {}", sel(range))) {
            assert_eq!(answer, format!("ok {}", range.len()), "{word} everywhere");
        }
    }

    /// Polls every node's `states` every 10 ms until all read `expected`
    /// (half-open as open); returns the time since `since`. With
    /// `one_prober` (every node stayed connected), no breaker may be
    /// half-open on two nodes at once. Fails after [`EVENTUALLY`].
    pub(crate) fn converge(
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
    pub(crate) fn wait_open_on(&mut self, k: usize, what: &str, range: &Range<usize>) {
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
    pub(crate) fn wait_all(&mut self, what: &str, command: &str, want: &str) -> Duration {
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

    pub(crate) fn labels(&self) -> Vec<&'static str> {
        self.nodes.iter().map(|n| n.label).collect()
    }

    /// The nodes' answers to `command` (`tripped`, `changed`: what their
    /// transition listeners recorded) once `check` accepts them. A listener
    /// runs just after its breaker's state changes (after the transition's
    /// log line), so right after `states` showed a change its record may
    /// still be on the way: polled every 10 ms, within [`RECORDED`].
    pub(crate) fn recorded(
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

    /// With `RESILIENCE_SOAK_LOGS=<dir>`, writes `node`'s log to
    /// `<dir>/<label>.log` (before it is killed or quits).
    pub(crate) fn save_log(node: &Process) {
        if let Some(dir) = std::env::var_os("RESILIENCE_SOAK_LOGS") {
            let path = std::path::Path::new(&dir).join(format!("{}.log", node.label));
            let mut text = node.log().join("\n");
            text.push('\n');
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
