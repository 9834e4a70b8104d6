//! Fleet-wide breakers across processes: two `fleet_node` processes (this
//! crate's binary, `tests/src/bin/fleet_node.rs`) share one breaker through
//! a real `redis-server` this test starts on a free loopback port.
//!
//! The test drives each process over stdin (one command a line) and reads
//! its one-line answers through a reader thread and a channel, so every
//! answer is awaited with a bound: the test fails, it never hangs. The child
//! processes are killed when their guards drop, on success and on panic (a
//! failing test also prints their logs).

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::process::{Process, ANSWER};
use support::redis_server::RedisServer;

const NAMESPACE: &str = "processes";
const BREAKER: &str = "payments";
/// Consecutive failures that open the breaker.
const THRESHOLD: u32 = 3;
/// How long the breaker stays open. Long enough that A's trip made while
/// Redis is down is still open when the restarted Redis resyncs it.
const RECOVERY: Duration = Duration::from_millis(2_000);
/// The bound on answers that must not wait on Redis (calls while it is down).
const AT_ONCE: Duration = Duration::from_secs(1);
/// The bound on conditions that take the fleet some time.
const EVENTUALLY: Duration = Duration::from_secs(15);

/// One `fleet_node` process, killed on drop.
type Node = Process;

/// Starts a node and waits until it reports `ready <instance-id>`.
fn start(label: &'static str, url: &str) -> (Node, String) {
    start_with(label, url, NAMESPACE, &[])
}

/// [`start`] in `namespace`, with extra arguments.
fn start_with(label: &'static str, url: &str, namespace: &str, extra: &[&str]) -> (Node, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleet_node"));
    command
        .args([url, namespace, BREAKER])
        .arg(THRESHOLD.to_string())
        .arg(RECOVERY.as_millis().to_string())
        .args(extra)
        .env("RUST_LOG", "resilience=debug");
    let node = Process::spawn(label, command);
    let ready = node.answer("(start-up)", ANSWER);
    let id = ready
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("{label}: expected `ready <id>`, got {ready:?}"))
        .to_owned();
    (node, id)
}

/// Polls `condition` every 10 ms until it holds; fails after [`EVENTUALLY`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_processes_share_a_breaker_through_redis() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let (mut a, id_a) = start("A", &url);
    let (mut b, id_b) = start("B", &url);
    assert_ne!(id_a, id_b, "each process has its own instance id");
    for node in [&mut a, &mut b] {
        assert_eq!(node.ask("connected"), "true");
        assert_eq!(node.ask("state"), "closed");
        assert_eq!(node.ask("call"), "ok");
    }
    // Bad input gets an error line, never a crash.
    for bad in ["explode", "", "call twice", "\u{7f}\u{1}"] {
        let answer = a.ask(bad);
        assert!(answer.starts_with("error "), "{bad:?} -> {answer:?}");
    }
    let answer = a.send_bytes(b"st\xffte\n");
    assert!(answer.starts_with("error "), "not UTF-8 -> {answer:?}");
    assert_eq!(a.ask("id"), id_a);

    // 1. Tripping the breaker in A makes B reject.
    for _ in 0..THRESHOLD {
        assert_eq!(a.ask("fail"), "failed");
    }
    let tripped = Instant::now();
    assert_eq!(a.ask("state"), "open");
    assert_eq!(a.ask("call"), "rejected");
    eventually("B sees the breaker open", || b.ask("state") == "open");
    assert_eq!(b.ask("call"), "rejected");

    // 2. After the recovery timeout, both call until both are closed: the
    // probe lease lets exactly one of them probe.
    thread::sleep(RECOVERY.saturating_sub(tripped.elapsed()));
    let mut probes = Vec::new();
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        for node in [&mut a, &mut b] {
            match node.ask("call").as_str() {
                "ok" | "rejected" => {}
                "probe-ok" => probes.push(node.label),
                other => panic!("{}: unexpected answer to `call`: {other:?}", node.label),
            }
        }
        if a.ask("state") == "closed" && b.ask("state") == "closed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the breaker never closed on both (probes: {probes:?})"
        );
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(probes.len(), 1, "exactly one probe across both: {probes:?}");
    for node in [&mut a, &mut b] {
        assert_eq!(node.ask("call"), "ok");
    }

    // 3. Killing Redis: both keep serving locally, at once.
    server.kill();
    for node in [&mut a, &mut b] {
        assert_eq!(node.ask_within("call", AT_ONCE), "ok");
    }
    for node in [&mut a, &mut b] {
        let label = node.label;
        eventually(&format!("{label} notices that Redis is gone"), || {
            node.ask("connected") == "false"
        });
        assert_eq!(node.ask_within("call", AT_ONCE), "ok");
    }

    // 4. A trip in A while Redis is down stays in A.
    for _ in 0..THRESHOLD {
        assert_eq!(a.ask_within("fail", AT_ONCE), "failed");
    }
    assert_eq!(a.ask("state"), "open");
    assert_eq!(a.ask_within("call", AT_ONCE), "rejected");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(b.ask("state"), "closed", "nothing reaches B without Redis");
    assert_eq!(b.ask_within("call", AT_ONCE), "ok");

    // 5. Restarting Redis (empty: no persistence): both reconnect, and A's
    // resync publishes its open breaker, which B applies.
    server.restart();
    for node in [&mut a, &mut b] {
        let label = node.label;
        eventually(&format!("{label} reconnects"), || {
            node.ask("connected") == "true"
        });
    }
    eventually("B learns of the trip A made while Redis was down", || {
        b.ask("state") == "open"
    });

    a.quit();
    b.quit();
}

/// An instance that joins while the fleet has the breaker open, and creates
/// its breaker only on its first call (as an annotated call site does),
/// rejects that first call: it never reaches the dependency the fleet has
/// given up on.
#[test]
fn a_late_joiner_rejects_its_first_call_while_the_fleet_is_open() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let namespace = "late-joiner";
    let (mut a, _) = start_with("A", &url, namespace, &[]);
    for _ in 0..THRESHOLD {
        assert_eq!(a.ask("fail"), "failed");
    }
    assert_eq!(a.ask("state"), "open");
    // The fleet has it open once A's trip is in Redis: A publishes it on its
    // sync task, after the call that tripped it returned.
    let mut conn = server.connection();
    eventually("A's trip is in Redis", || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("resilience:{{{namespace}:*}}:breaker:*"))
            .query(&mut conn)
            .unwrap();
        keys.iter().any(|key| {
            let state: Option<String> = redis::cmd("HGET")
                .arg(key)
                .arg("state")
                .query(&mut conn)
                .unwrap();
            state.as_deref() == Some("open")
        })
    });
    let (mut b, _) = start_with("B", &url, namespace, &["lazy"]);
    assert_eq!(b.ask("state"), "absent", "B has not called yet");
    assert_eq!(
        b.ask("call"),
        "rejected",
        "B's first call must not reach the dependency"
    );
    assert_eq!(b.ask("state"), "open");
    // Once the fleet's open time is up, the fleet recovers through one probe.
    thread::sleep(RECOVERY);
    eventually("the fleet closes after one probe", || {
        a.ask("call");
        b.ask("call");
        a.ask("state") == "closed" && b.ask("state") == "closed"
    });
    a.quit();
    b.quit();
}
