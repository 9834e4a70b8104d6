//! Fleet-wide rate limits against a real `redis-server` (started by each
//! test on a free loopback port).
//!
//! The first test runs three `rate_node` processes (this crate's binary,
//! `tests/src/bin/rate_node.rs`) that share one limit and call as fast as
//! they can: the fleet lets through what the limit allows and no more, with
//! few Redis commands; killing Redis puts each process on its local share,
//! restarting it resumes the leases. Run with `--nocapture` to see the
//! figures. The other tests are instances in this process (separate
//! registries), and look at what the fleet keeps in Redis.
//!
//! Every answer is awaited with a bound (a reader thread and a channel per
//! process): the tests fail, they never hang. The child processes are
//! killed when their guards drop, on success and on panic (a failing test
//! also prints their logs).

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use resilience::{FleetConfig, RateLimitConfig};
use support::fleet::{instance, tuned};
use support::process::{Process, ANSWER};
use support::redis_server::RedisServer;

/// The limit the processes share: 200 calls a second, 20 at once.
const RATE: u64 = 200;
const BURST: u64 = 20;
/// The lease size this limit gets: `clamp(rate / 10, 1, burst)`.
const LEASE: u64 = 20;

/// One `rate_node` process, killed on drop.
type Node = Process;

/// Starts a node and waits until it reports `ready`.
fn start(label: &'static str, url: &str, namespace: &str) -> Node {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rate_node"));
    command
        .args([url, namespace, "upstream"])
        .args([RATE.to_string(), "1000".to_owned(), BURST.to_string()])
        // Not `debug`: that is an event per refused call.
        .env("RUST_LOG", "resilience=info");
    let node = Process::spawn(label, command);
    let ready = node.answer("(start-up)", ANSWER);
    assert!(ready.starts_with("ready "), "{label}: {ready:?}");
    node
}

/// A node's `status` answer.
fn status(node: &mut Node) -> Fields {
    parse(node.label, &node.ask("status"))
}

/// An answer's `key=value` fields.
struct Fields(HashMap<String, String>);

fn parse(label: &str, answer: &str) -> Fields {
    let fields = answer
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<HashMap<_, _>>();
    assert!(!fields.is_empty(), "{label}: unexpected answer {answer:?}");
    Fields(fields)
}

impl Fields {
    fn num(&self, key: &str) -> u64 {
        self.0
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number `{key}` in {:?}", self.0))
    }
    fn flag(&self, key: &str) -> bool {
        self.0.get(key).map(String::as_str) == Some("true")
    }
}

/// What one round of runs across the nodes gave.
struct Round {
    per_node: Vec<Fields>,
    /// From sending the first `run` to the last answer.
    window: Duration,
}

impl Round {
    fn allowed(&self) -> u64 {
        self.per_node.iter().map(|f| f.num("allowed")).sum()
    }
    fn commands(&self) -> u64 {
        self.per_node.iter().map(|f| f.num("commands")).sum()
    }
    fn calls(&self) -> u64 {
        self.per_node
            .iter()
            .map(|f| f.num("allowed") + f.num("refused"))
            .sum()
    }
    /// The calls allowed across the nodes in each 50 ms of Unix time.
    fn buckets(&self) -> Vec<u64> {
        let mut all: HashMap<u64, u64> = HashMap::new();
        for f in &self.per_node {
            let list = f.0.get("buckets").expect("buckets");
            let (first, counts) = list.split_once(':').expect("first:counts");
            let first: u64 = first.parse().expect("first bucket");
            for (i, count) in counts.split(',').enumerate() {
                *all.entry(first + i as u64).or_default() += count.parse::<u64>().expect("count");
            }
        }
        let (lo, hi) = (all.keys().min().copied(), all.keys().max().copied());
        match (lo, hi) {
            (Some(lo), Some(hi)) => (lo..=hi)
                .map(|b| all.get(&b).copied().unwrap_or(0))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The most calls allowed in `k` consecutive buckets, for each `k`,
    /// against the limit's allowance for `k × 50 ms` plus `extra`: the
    /// worst (most over, or least under) margin, as (k, allowed, bound).
    fn worst_window(&self, extra: u64) -> (usize, u64, f64) {
        let buckets = self.buckets();
        let mut worst = (0, 0, f64::INFINITY);
        for k in 1..=buckets.len() {
            let most = buckets
                .windows(k)
                .map(|w| w.iter().sum::<u64>())
                .max()
                .unwrap_or(0);
            let bound = allowance(Duration::from_millis(50 * k as u64)) + extra as f64;
            if bound - (most as f64) < worst.2 - worst.1 as f64 {
                worst = (k, most, bound);
            }
        }
        worst
    }

    /// The fleet's calls per second once the run is steady: over the 500 ms
    /// before the last 100 ms (where the runs of the nodes end).
    fn steady_rate(&self) -> f64 {
        let buckets = self.buckets();
        let end = buckets.len().saturating_sub(2);
        let sum: u64 = buckets[end.saturating_sub(10)..end].iter().sum();
        sum as f64 * 2.0
    }

    fn slowest(&self) -> Duration {
        let us = self.per_node.iter().map(|f| f.num("slowest_us")).max();
        Duration::from_micros(us.unwrap_or(0))
    }
}

/// Every node calls as fast as it can for `length`, all at once.
fn round(nodes: &mut [Node], length: Duration) -> Round {
    round_with(nodes, length, Duration::ZERO, || {})
}

/// [`round`], doing `meanwhile` `after` into the runs.
fn round_with(
    nodes: &mut [Node],
    length: Duration,
    after: Duration,
    meanwhile: impl FnOnce(),
) -> Round {
    let start = Instant::now();
    let command = format!("run {}", length.as_millis());
    for node in nodes.iter_mut() {
        node.send(&command);
    }
    thread::sleep(after);
    meanwhile();
    let per_node = nodes
        .iter()
        .map(|n| parse(n.label, &n.answer(&command, length + ANSWER)))
        .collect();
    Round {
        per_node,
        window: start.elapsed(),
    }
}

/// The most the limit allows in `window`.
fn allowance(window: Duration) -> f64 {
    RATE as f64 * window.as_secs_f64()
}

fn eventually(what: &str, bound: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_processes_share_one_limit_and_fall_back_to_their_share_without_redis() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let mut nodes = vec![
        start("A", &url, "rate-processes"),
        start("B", &url, "rate-processes"),
        start("C", &url, "rate-processes"),
    ];
    let n = nodes.len() as u64;
    eventually("every node counts three instances", ANSWER, || {
        nodes
            .iter_mut()
            .all(|node| status(node).num("instances") == 3)
    });

    // 1. On leases: the fleet's calls stay within the limit, plus the burst,
    // plus one lease per process, and they use the quota.
    let busy = round(&mut nodes, Duration::from_millis(2_000));
    let (allowed, window) = (busy.allowed(), busy.window);
    let most = allowance(window) + (BURST + n * LEASE) as f64;
    let least = 0.8 * allowance(Duration::from_millis(2_000));
    let per_1000 = 1000.0 * busy.commands() as f64 / allowed as f64;
    println!(
        "fleet, on leases: {allowed} calls allowed in {window:.2?} across {n} processes = {:.0}/s, \
         {:.0}/s once steady (limit {RATE}/s; bound {most:.0}); {} Redis commands = {per_1000:.1} \
         per 1,000 allowed calls, {:.4} per 1,000 calls made ({} made); slowest call {:?}",
        allowed as f64 / window.as_secs_f64(),
        busy.steady_rate(),
        busy.commands(),
        1000.0 * busy.commands() as f64 / busy.calls() as f64,
        busy.calls(),
        busy.slowest(),
    );
    assert!(allowed as f64 <= most, "{allowed} allowed > {most:.0}");
    assert!(allowed as f64 >= least, "{allowed} allowed < {least:.0}");
    // The invariant, over every window (in 50 ms steps of one clock, the
    // processes' shared Unix time): the limit plus the burst plus one lease
    // per process.
    let (k, worst, bound) = busy.worst_window(BURST + n * LEASE);
    println!(
        "  tightest window: {worst} calls in {} ms (bound {bound:.0})",
        50 * k
    );
    assert!(
        worst as f64 <= bound,
        "{worst} calls in {} ms > {bound:.0}",
        50 * k
    );
    // One lease request per 11 to 20 tokens (the lease is 20, asked for
    // below 10 in stock): at most 1000 / 11 = 91 per 1,000 calls, plus a
    // heartbeat or an expired lease per process and second.
    assert!(per_1000 <= 120.0, "{per_1000:.1} commands per 1,000 calls");
    for f in &busy.per_node {
        assert!(f.flag("leasing"));
        assert!(f.num("allowed") > 0, "every process gets a share");
    }

    // 2. Redis killed mid-run: each process falls back to its share of the
    // limit (a third), answering every call at once.
    let alone = round_with(
        &mut nodes,
        Duration::from_millis(1_500),
        Duration::from_millis(500),
        || server.kill(),
    );
    let steady = alone.steady_rate();
    println!(
        "fleet, Redis killed 0.5 s into a 1.5 s run: {} calls allowed in {:.2?} across {n} processes, \
         {steady:.0}/s once on their shares (each {:.0}/s: {RATE}/s in all); slowest call {:?}",
        alone.allowed(),
        alone.window,
        RATE as f64 / n as f64,
        alone.slowest(),
    );
    assert!(
        (0.85..=1.15).contains(&(steady / RATE as f64)),
        "{steady:.0}/s on the shares, not {RATE}/s"
    );
    // The limit, plus the burst and one lease per process (before the kill),
    // plus each process's share's burst (after it).
    let most = allowance(alone.window) + (BURST + n * LEASE + BURST) as f64;
    assert!(
        alone.allowed() as f64 <= most,
        "{} > {most:.0}",
        alone.allowed()
    );
    assert!(alone.allowed() as f64 >= 0.8 * allowance(Duration::from_millis(1_500)));
    for (node, f) in nodes.iter().zip(&alone.per_node) {
        assert!(!f.flag("leasing"), "{}: still on leases", node.label);
        assert!(f.num("allowed") > 0, "{}", node.label);
    }
    // No call waits on Redis (its lease requests time out after 500 ms).
    assert!(
        alone.slowest() < Duration::from_millis(500),
        "a call waited on Redis: {:?}",
        alone.slowest()
    );

    // 3. Redis back: leasing resumes, the whole limit again.
    server.restart();
    for node in &mut nodes {
        let label = node.label;
        eventually(&format!("{label} leases again"), ANSWER, || {
            status(node).flag("leasing")
        });
    }
    let back = round(&mut nodes, Duration::from_millis(1_000));
    let most = allowance(back.window) + (BURST + n * LEASE) as f64;
    println!(
        "fleet, Redis back: {} calls allowed in {:.2?} = {:.0}/s, {:.0}/s once steady (limit {RATE}/s)",
        back.allowed(),
        back.window,
        back.allowed() as f64 / back.window.as_secs_f64(),
        back.steady_rate()
    );
    assert!(
        back.allowed() as f64 <= most,
        "{} > {most:.0}",
        back.allowed()
    );
    let (k, worst, bound) = back.worst_window(BURST + n * LEASE);
    assert!(
        worst as f64 <= bound,
        "{worst} calls in {} ms > {bound:.0}",
        50 * k
    );
    assert!(back.allowed() as f64 >= 0.8 * allowance(Duration::from_millis(1_000)));
    for f in &back.per_node {
        assert!(f.flag("leasing"));
    }

    for node in nodes {
        node.quit();
    }
}

/// The default tuning, unused tokens going back after 300 ms.
fn fast() -> FleetConfig {
    tuned(FleetConfig::default(), |c| {
        c.rate_lease_ttl = Duration::from_millis(300);
    })
}

fn quota() -> RateLimitConfig {
    RateLimitConfig::builder(200)
        .burst(20)
        .fleet(true)
        .build()
        .unwrap()
}

/// The Redis time, in µs.
fn redis_now(conn: &mut redis::Connection) -> f64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(conn).unwrap();
    (s * 1_000_000 + us) as f64
}

/// A limiter that exists when the registry is shared, and one created
/// afterwards, both lease from the fleet; the schedule and the instances
/// live under the namespace, in one hash tag per limit; a shutdown gives
/// the unused tokens back and leaves the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiters_join_the_fleet_whenever_they_are_created_and_leave_it_clean() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let registry = instance();
    let early = registry.rate_limiter("early", &quota());
    let local = registry.rate_limiter("local", &RateLimitConfig::builder(200).build().unwrap());
    let fleet = registry
        .share_via_redis_with(server.url(), "joins", fast())
        .unwrap();
    let late = registry.rate_limiter("late", &quota());
    support::eventually("both fleet limiters lease", || {
        early.status().leasing && late.status().leasing
    })
    .await;
    assert!(!local.status().leasing && !local.status().fleet);
    for limiter in [&early, &late] {
        let status = limiter.status();
        assert_eq!((status.leased, status.instances), (20, 1));
        assert!(status.fleet_commands >= 1);
    }
    assert_eq!(local.status().fleet_commands, 0);

    let mut conn = server.connection();
    let key = "{joins:resilience:rate:early}";
    let tat: f64 = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
    let now = redis_now(&mut conn);
    // 20 tokens of 5 ms leased: the schedule is up to 100 ms ahead.
    assert!(tat > now && tat <= now + 100_000.0, "{tat} vs {now}");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{key}:instances"))
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(members, [fleet.instance_id()]);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*rate*").query(&mut conn).unwrap();
    assert_eq!(
        keys.len(),
        4,
        "{keys:?}: two per fleet limiter, none for `local`"
    );

    // Calls take leased tokens; the idle rest goes back after the lease's ttl.
    for _ in 0..5 {
        early.try_acquire().unwrap();
    }
    support::eventually("the unused tokens go back", || early.status().leased == 1).await;
    let tat: f64 = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
    assert!(tat <= redis_now(&mut conn) + 1_000.0, "given back: {tat}");

    fleet.shutdown().await;
    for limiter in [&early, &late] {
        let status = limiter.status();
        assert!(!status.leasing && status.leased == 0);
        assert_eq!(status.available, 20, "the whole limit, locally");
    }
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{key}:instances"))
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert!(members.is_empty(), "left the count: {members:?}");
}

/// Two instances in one process: one busy, one idle; the idle one's lease
/// goes back, so the busy one gets (almost) all of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_leaves_the_quota_to_the_busy_one() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (instance(), instance());
    let (la, lb) = (
        a.rate_limiter("shared", &quota()),
        b.rate_limiter("shared", &quota()),
    );
    let fa = a
        .share_via_redis_with(server.url(), "idle", fast())
        .unwrap();
    let fb = b
        .share_via_redis_with(server.url(), "idle", fast())
        .unwrap();
    support::eventually("both lease", || la.status().leasing && lb.status().leasing).await;
    support::eventually("b's idle lease goes back", || lb.status().leased <= 1).await;
    let start = tokio::time::Instant::now();
    let mut allowed = 0u64;
    while start.elapsed() < Duration::from_millis(1_000) {
        if la.try_acquire().is_ok() {
            allowed += 1;
        } else {
            tokio::task::yield_now().await;
        }
    }
    let window = start.elapsed().as_secs_f64();
    println!("one busy instance of two: {allowed} calls in {window:.2} s (limit 200/s)");
    assert!(allowed as f64 <= 200.0 * window + 20.0 + 2.0 * 20.0);
    assert!(allowed as f64 >= 0.8 * 200.0, "{allowed}");
    fa.shutdown().await;
    fb.shutdown().await;
}
