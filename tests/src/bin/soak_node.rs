//! `soak_node`: one instance of a fleet holding many named breakers and
//! calling every one of them continuously, driven line by line over stdin,
//! for the soak test with faults (`tests/tests/fleet_soak.rs`).
//!
//! ```text
//! soak_node <redis-url> <namespace> <breakers> <failure-threshold> <recovery-timeout-ms> <probe-ms> [down=<selection>]
//! ```
//!
//! It creates `<breakers>` breakers `b000`, `b001`, … in the global
//! [`resilience::registry()`] (consecutive-failure rule, `<failure-threshold>`
//! failures, open for `<recovery-timeout-ms>` ms), shares the registry through
//! Redis under `<namespace>` with a fast [`FleetConfig`] (lease 2 s, lease
//! poll 10 ms, lease retry 20 ms), waits until it is connected and synced
//! ([`Fleet::ready`](resilience::Fleet::ready)), marks the breakers of the
//! optional `down=<selection>` as down, starts calling, prints `ready
//! <instance-id>`, then answers every command read on stdin with exactly one
//! line on stdout.
//!
//! The calls: every 5 ms, one call through every breaker (`try_acquire`, then
//! `record`) on the node's tokio runtime. The dependency behind a breaker is
//! healthy (the call succeeds) or down (it fails), as the commands `down` and
//! `up` say, so breakers open by themselves while their dependency is down.
//! A call admitted as the half-open probe ([`Permit::is_probe`]) holds its
//! permit for `<probe-ms>` ms before recording (the dependency's state then
//! decides its outcome), while the other calls go on: the test can see which
//! instance holds the fleet's probe (`probing`). The latency of a call is the
//! time spent in `try_acquire` and `record` (a probe's holding time left
//! out), kept in a histogram of ~6 % wide buckets, not sample by sample.
//!
//! A `<selection>` is a comma-separated list of breaker names (`b007`),
//! inclusive ranges (`b000-b019`) and `all`.
//!
//! | command | answer |
//! |---|---|
//! | `states` | one character per breaker, in order: `c` closed, `o` open, `h` half-open, `f` forced open, `d` disabled |
//! | `changed <selection>` | per breaker, space-separated: `<unix-µs>:<state>:<cause>` of its last transition here (state as in `states`; cause `l` local, `f` applied from the fleet), `0:c:-` if none |
//! | `tripped <selection>` | per breaker, space-separated: `<unix-µs>:<cause>` of its last closed → open transition here, `0:-` if none |
//! | `probing` | `<n>` then the names of the breakers half-open here whose probe this instance holds now |
//! | `first` | one character per breaker: how its first call went: `a` admitted, `p` admitted as the probe, `r` rejected |
//! | `lat` | `calls=<n> p50_us=<x> p99_us=<x> max_us=<x> gap_us=<x>` since the last `lat`, then reset (`gap_us`: the longest time between two rounds of calls) |
//! | `calls` | the calls made since start-up |
//! | `probes` | the calls admitted as a half-open probe since start-up |
//! | `probes <selection>` | per breaker, space-separated: the calls through it admitted as a half-open probe since start-up |
//! | `transitions` | `<all> <local>`: the transitions here since start-up, and those not applied from the fleet |
//! | `down <selection>` / `up <selection>` | `ok <n>`: the dependency of those `<n>` breakers is now down (up) |
//! | `connected` | `true` or `false`: whether the fleet sync is connected to Redis |
//! | `id` | this instance's id in the fleet |
//! | `quit` | `bye`, then the process stops the sync and exits |
//! | anything else | `error <why>` |
//!
//! Cargo names the binary after this file; integration tests of this package
//! reach it as `env!("CARGO_BIN_EXE_soak_node")`.
//!
//! The process also exits when stdin closes. Logs (`tracing`, target
//! `resilience`, level from `RUST_LOG`, default `resilience=info`) go to
//! stderr. Bad arguments print the usage to stderr and exit with status 2;
//! a Redis that cannot be reached within 30 s prints `error …` and exits
//! with status 1.
//!
//! [`Permit::is_probe`]: resilience::Permit::is_probe

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use resilience::{
    registry, BreakerConfig, CircuitBreaker, CircuitState, FleetConfig, Outcome, Transition,
    TransitionCause,
};

const USAGE: &str = "usage: soak_node <redis-url> <namespace> <breakers> <failure-threshold> <recovery-timeout-ms> <probe-ms> [down=<selection>]";

/// How often every breaker is called.
const ROUND: Duration = Duration::from_millis(5);

/// The command-line arguments.
struct Args {
    url: String,
    namespace: String,
    breakers: usize,
    config: BreakerConfig,
    probe: Duration,
    down: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let down = match args.get(6) {
        None => None,
        Some(arg) if args.len() == 7 => match arg.strip_prefix("down=") {
            Some(selection) => Some(selection.to_owned()),
            None => return Err(format!("unexpected argument {arg:?} (only `down=…`)")),
        },
        Some(_) => return Err(format!("expected 6 or 7 arguments, got {}", args.len())),
    };
    args.truncate(6);
    let [url, namespace, breakers, threshold, recovery_ms, probe_ms] =
        <[String; 6]>::try_from(args)
            .map_err(|args| format!("expected 6 or 7 arguments, got {}", args.len()))?;
    let number = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|e| format!("bad {what} {s:?}: {e}"))
    };
    let breakers = number("breaker count", &breakers)?;
    if !(1..=1000).contains(&breakers) {
        return Err(format!(
            "the breaker count must be 1 to 1000, not {breakers}"
        ));
    }
    let threshold = u32::try_from(number("failure threshold", &threshold)?)
        .map_err(|e| format!("bad failure threshold: {e}"))?;
    let recovery = Duration::from_millis(number("recovery timeout", &recovery_ms)?);
    let probe = Duration::from_millis(number("probe time", &probe_ms)?);
    let config = BreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(recovery)
        .build()
        .map_err(|e| format!("bad breaker configuration: {e}"))?;
    Ok(Args {
        url,
        namespace,
        breakers: usize::try_from(breakers).expect("at most 1000"),
        config,
        probe,
        down,
    })
}

/// The fleet tuning of this node: fast, so that the test runs quickly.
fn fleet_config() -> FleetConfig {
    let mut config = FleetConfig::default();
    config.lease = Duration::from_secs(2);
    config.lease_poll = Duration::from_millis(10);
    config.lease_retry = Duration::from_millis(20);
    config
}

fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn state_char(state: CircuitState) -> char {
    match state {
        CircuitState::Closed => 'c',
        CircuitState::Open => 'o',
        CircuitState::HalfOpen => 'h',
        CircuitState::ForcedOpen => 'f',
        CircuitState::Disabled => 'd',
        _ => '?',
    }
}

/// A latency histogram in nanoseconds: exact below 32 ns, then 16 buckets
/// per power of two (at most ~6 % wide). Lock-free: the call loop adds, the
/// command loop takes and resets.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

/// Sub-buckets per power of two (the first 32 buckets are exact).
const SUB: u32 = 16;

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..(64 - 4) * SUB as usize + SUB as usize)
                .map(|_| AtomicU64::new(0))
                .collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return usize::try_from(ns).expect("small");
        }
        let msb = 63 - ns.leading_zeros(); // >= 4
        let sub = (ns >> (msb - 4)) & u64::from(SUB - 1);
        usize::try_from(u64::from(msb - 3) * u64::from(SUB) + sub).expect("small")
    }

    /// The largest value of bucket `index`.
    fn upper(index: usize) -> u64 {
        let index = u64::try_from(index).expect("small");
        if index < u64::from(SUB) {
            return index;
        }
        let exp = index / u64::from(SUB) - 1;
        let sub = index % u64::from(SUB) + u64::from(SUB);
        ((sub + 1) << exp) - 1
    }

    fn add(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(ns)].fetch_add(1, Relaxed);
        self.max.fetch_max(ns, Relaxed);
    }

    /// `(count, p50, p99, max)` in ns since the last call; resets.
    fn take(&self) -> (u64, u64, u64, u64) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.swap(0, Relaxed)).collect();
        let max = self.max.swap(0, Relaxed);
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| {
            // The smallest value with at least q of the samples at or below it.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Self::upper(i).min(max);
                }
            }
            max
        };
        if total == 0 {
            return (0, 0, 0, 0);
        }
        (total, quantile(0.50), quantile(0.99), max)
    }
}

/// The last transition of one breaker here.
#[derive(Clone, Copy, Default)]
struct Change {
    /// Unix µs; 0: none.
    at_us: u64,
    state: Option<CircuitState>,
    fleet: bool,
}

/// Everything the call loop, the transition listener and the command loop
/// share (leaked: it lives as long as the process, and a probe's permit can
/// be held by a task of its own).
struct Node {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, usize>,
    breakers: Vec<Arc<CircuitBreaker>>,
    /// Whether each breaker's dependency is down.
    down: Vec<AtomicBool>,
    /// Whether this instance holds each breaker's half-open probe now.
    probing: Vec<AtomicBool>,
    /// How each breaker's first call went: 0 none yet, or `a`, `p`, `r`.
    first: Vec<AtomicU8>,
    /// The last transition of each breaker, and its last closed → open one.
    changes: Mutex<Vec<(Change, Change)>>,
    transitions: AtomicU64,
    local_transitions: AtomicU64,
    calls: AtomicU64,
    probes: AtomicU64,
    /// Probes per breaker.
    probes_of: Vec<AtomicU64>,
    latency: Histogram,
    /// The longest time between the starts of two rounds of calls (ns).
    gap: AtomicU64,
    probe: Duration,
}

impl Node {
    fn on_transition(&self, t: &Transition) {
        let Some(&i) = self.index.get(t.name()) else {
            return;
        };
        let change = Change {
            at_us: unix_us_now(),
            state: Some(t.to()),
            fleet: t.cause() == TransitionCause::Fleet,
        };
        self.transitions.fetch_add(1, Relaxed);
        if !change.fleet {
            self.local_transitions.fetch_add(1, Relaxed);
        }
        let mut changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        changes[i].0 = change;
        if t.from() == CircuitState::Closed && t.to() == CircuitState::Open {
            changes[i].1 = change;
        }
    }

    fn outcome(&self, i: usize) -> Outcome {
        if self.down[i].load(Relaxed) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }

    /// One call through breaker `i`.
    fn call(&'static self, i: usize) {
        let outcome = self.outcome(i);
        let started = Instant::now();
        let acquired = self.breakers[i].try_acquire();
        self.calls.fetch_add(1, Relaxed);
        let first = match acquired {
            Ok(permit) if permit.is_probe() => {
                let acquiring = started.elapsed();
                self.probes.fetch_add(1, Relaxed);
                self.probes_of[i].fetch_add(1, Relaxed);
                self.probing[i].store(true, Relaxed);
                let probe = self.probe;
                tokio::spawn(async move {
                    tokio::time::sleep(probe).await;
                    let outcome = self.outcome(i);
                    let recording = Instant::now();
                    permit.record(outcome);
                    self.latency.add(acquiring + recording.elapsed());
                    self.probing[i].store(false, Relaxed);
                });
                b'p'
            }
            Ok(permit) => {
                permit.record(outcome);
                self.latency.add(started.elapsed());
                b'a'
            }
            Err(_) => {
                self.latency.add(started.elapsed());
                b'r'
            }
        };
        if self.first[i].load(Relaxed) == 0 {
            let _ = self.first[i].compare_exchange(0, first, Relaxed, Relaxed);
        }
    }

    /// Calls every breaker every [`ROUND`], forever.
    async fn call_loop(&'static self) {
        let mut tick = tokio::time::interval(ROUND);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            if let Some(last) = last {
                let gap = u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX);
                self.gap.fetch_max(gap, Relaxed);
            }
            last = Some(now);
            for i in 0..self.breakers.len() {
                self.call(i);
            }
        }
    }

    /// The breakers of a selection, in order, without duplicates.
    fn select(&self, selection: &str) -> Result<Vec<usize>, String> {
        let find = |name: &str| {
            self.index
                .get(name)
                .copied()
                .ok_or_else(|| format!("no breaker {name:?}"))
        };
        let mut picked = vec![false; self.names.len()];
        for item in selection.split(',') {
            if item == "all" {
                picked.iter_mut().for_each(|p| *p = true);
            } else if let Some((from, to)) = item.split_once('-') {
                let (from, to) = (find(from)?, find(to)?);
                if from > to {
                    return Err(format!("empty range {item:?}"));
                }
                picked[from..=to].iter_mut().for_each(|p| *p = true);
            } else {
                picked[find(item)?] = true;
            }
        }
        Ok((0..picked.len()).filter(|&i| picked[i]).collect())
    }

    fn states(&self) -> String {
        self.breakers
            .iter()
            .map(|b| state_char(b.state()))
            .collect()
    }

    fn changed(&self, selection: &str) -> Result<String, String> {
        let picked = self.select(selection)?;
        let changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut answer = String::new();
        for i in picked {
            let c = changes[i].0;
            let (state, cause) = match c.state {
                None => ('c', '-'),
                Some(s) => (state_char(s), if c.fleet { 'f' } else { 'l' }),
            };
            let space = if answer.is_empty() { "" } else { " " };
            let _ = write!(answer, "{space}{}:{state}:{cause}", c.at_us);
        }
        Ok(answer)
    }

    fn tripped(&self, selection: &str) -> Result<String, String> {
        let picked = self.select(selection)?;
        let changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut answer = String::new();
        for i in picked {
            let c = changes[i].1;
            let cause = match (c.state, c.fleet) {
                (None, _) => '-',
                (Some(_), true) => 'f',
                (Some(_), false) => 'l',
            };
            let space = if answer.is_empty() { "" } else { " " };
            let _ = write!(answer, "{space}{}:{cause}", c.at_us);
        }
        Ok(answer)
    }

    fn probing(&self) -> String {
        // A probe whose breaker left half-open meanwhile (the fleet closed
        // it) is no longer the fleet's probe: its permit is only stale.
        let names: Vec<&str> = (0..self.names.len())
            .filter(|&i| {
                self.probing[i].load(Relaxed) && self.breakers[i].state() == CircuitState::HalfOpen
            })
            .map(|i| &*self.names[i])
            .collect();
        let mut answer = names.len().to_string();
        for name in names {
            answer.push(' ');
            answer.push_str(name);
        }
        answer
    }

    fn first(&self) -> String {
        self.first
            .iter()
            .map(|f| match f.load(Relaxed) {
                0 => '-',
                c => char::from(c),
            })
            .collect()
    }

    fn lat(&self) -> String {
        let (calls, p50, p99, max) = self.latency.take();
        let gap = self.gap.swap(0, Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "calls={calls} p50_us={:.3} p99_us={:.3} max_us={:.3} gap_us={:.3}",
            us(p50),
            us(p99),
            us(max),
            us(gap)
        )
    }

    fn set_down(&self, selection: &str, down: bool) -> Result<String, String> {
        let picked = self.select(selection)?;
        for &i in &picked {
            self.down[i].store(down, Relaxed);
        }
        Ok(format!("ok {}", picked.len()))
    }
}

/// The answer to one command line, or `None` for `quit`.
fn answer(node: &Node, fleet: &resilience::Fleet, line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.as_slice() {
        [] => Err("empty command".to_owned()),
        ["quit"] => return None,
        ["states"] => Ok(node.states()),
        ["changed", selection] => node.changed(selection),
        ["tripped", selection] => node.tripped(selection),
        ["probing"] => Ok(node.probing()),
        ["first"] => Ok(node.first()),
        ["lat"] => Ok(node.lat()),
        ["calls"] => Ok(node.calls.load(Relaxed).to_string()),
        ["probes"] => Ok(node.probes.load(Relaxed).to_string()),
        ["probes", selection] => node.select(selection).map(|picked| {
            let counts: Vec<String> = picked
                .iter()
                .map(|&i| node.probes_of[i].load(Relaxed).to_string())
                .collect();
            counts.join(" ")
        }),
        ["transitions"] => Ok(format!(
            "{} {}",
            node.transitions.load(Relaxed),
            node.local_transitions.load(Relaxed)
        )),
        ["down", selection] => node.set_down(selection, true),
        ["up", selection] => node.set_down(selection, false),
        ["connected"] => Ok(fleet.is_connected().to_string()),
        ["id"] => Ok(fleet.instance_id().to_owned()),
        [command @ ("changed" | "tripped" | "down" | "up" | "probes"), ..] => Err(format!(
            "`{command}` takes one selection (`b000`, `b000-b019`, `all`, comma-separated)"
        )),
        [command @ ("quit" | "states" | "probing" | "first" | "lat" | "calls" | "transitions"
        | "connected" | "id"), extra, ..] => {
            Err(format!("`{command}` takes no argument (got {extra:?})"))
        }
        [command, ..] => Err(format!(
            "unknown command {command:?} (states, changed, tripped, probing, first, lat, calls, probes, transitions, down, up, connected, id, quit)"
        )),
    };
    Some(result.unwrap_or_else(|why| format!("error {why}")))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("soak_node: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("resilience=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak_node: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let width = (args.breakers - 1).to_string().len().max(3);
    let names: Vec<Arc<str>> = (0..args.breakers)
        .map(|i| Arc::from(format!("b{i:0width$}")))
        .collect();
    let count = names.len();
    let node: &'static Node = Box::leak(Box::new(Node {
        index: names.iter().cloned().zip(0..).collect(),
        breakers: names
            .iter()
            .map(|name| registry().breaker(name, &args.config))
            .collect(),
        names,
        down: (0..count).map(|_| AtomicBool::new(false)).collect(),
        probing: (0..count).map(|_| AtomicBool::new(false)).collect(),
        first: (0..count).map(|_| AtomicU8::new(0)).collect(),
        changes: Mutex::new(vec![(Change::default(), Change::default()); count]),
        transitions: AtomicU64::new(0),
        local_transitions: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        probes: AtomicU64::new(0),
        probes_of: (0..count).map(|_| AtomicU64::new(0)).collect(),
        latency: Histogram::new(),
        gap: AtomicU64::new(0),
        probe: args.probe,
    }));
    if let Some(selection) = &args.down {
        if let Err(why) = node.set_down(selection, true) {
            eprintln!("soak_node: bad down= selection: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    registry().on_transition(|t| node.on_transition(t));
    let fleet = {
        // `share_via_redis_with` spawns the sync on the current runtime.
        let _entered = runtime.enter();
        match registry().share_via_redis_with(&args.url, &args.namespace, fleet_config()) {
            Ok(fleet) => fleet,
            Err(e) => {
                eprintln!("soak_node: {e}");
                return ExitCode::from(2);
            }
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Synced with the fleet, or Redis was unreachable at the first attempt
    // (then wait below until the sync connects).
    runtime.block_on(fleet.ready());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fleet.is_connected() {
        if Instant::now() >= deadline {
            let _ = writeln!(out, "error could not connect to Redis within 30 s");
            let _ = out.flush();
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Serving starts once the fleet's state is known, as a service would.
    runtime.spawn(node.call_loop());
    if writeln!(out, "ready {}", fleet.instance_id())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE; // nobody listens any more
    }

    let mut stdin = std::io::stdin().lock();
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        match stdin.read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => break, // stdin closed: nobody asks any more
            Ok(_) => {}
        }
        let answer = match std::str::from_utf8(&bytes) {
            Ok(line) => answer(node, &fleet, line),
            Err(_) => Some("error the command is not UTF-8".to_owned()),
        };
        let Some(answer) = answer else {
            let _ = writeln!(out, "bye");
            let _ = out.flush();
            break;
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    runtime.block_on(fleet.shutdown());
    ExitCode::SUCCESS
}
