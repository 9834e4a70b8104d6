//! The figures of each step, and the report printed at the end.

use std::time::{Duration, Instant};

use crate::support::process::Process;
use crate::{Soak, BREAKERS, LEASE, PROBE};

/// A node's `lat` answer, or several combined (the worst of each).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lat {
    calls: u64,
    p50_us: f64,
    p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) gap_us: f64,
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
pub(crate) struct Counters {
    calls: u64,
    /// Calls admitted as a half-open probe.
    probes: u64,
    transitions: u64,
    local: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, other: Counters) {
        self.calls += other.calls;
        self.probes += other.probes;
        self.transitions += other.transitions;
        self.local += other.local;
    }
}

/// The figures of one step, for the table.
pub(crate) struct Row {
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
pub(crate) struct Mark {
    at: Instant,
    commands: u64,
    counters: Counters,
}

impl Soak {
    /// The nodes' `lat` since the last one (then reset), the worst of each.
    pub(crate) fn lat(&mut self) -> Lat {
        self.ask_all("lat")
            .iter()
            .map(|a| Lat::parse(a))
            .fold(Lat::default(), Lat::worst)
    }

    /// The nodes' calls and transitions (one node's, or all, killed ones included).
    pub(crate) fn counters_of(node: &mut Process) -> Counters {
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

    pub(crate) fn mark(&mut self) -> Mark {
        Mark {
            at: Instant::now(),
            commands: self.meter.sample(),
            counters: self.counters(),
        }
    }

    pub(crate) fn row(
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

    pub(crate) fn print(&self, rounds: usize, wall: Duration) {
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
