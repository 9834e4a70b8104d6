//! The fleet's scripts against a real Redis: the one `RESILIENCE_REDIS_URL`
//! names (`.ci/run` starts one and sets it). Without it the tests say so
//! and pass, unless `CI` is set. Each test uses a namespace of its own.

use std::time::Duration;

use redis::Script;

use super::conn::{Conn, Timeouts};
use super::keys::Keys;
use super::scripts::{HEARTBEAT, LEASE, PUBLISH, RESYNC};
use super::target::RedisTarget;

async fn redis() -> Option<Conn> {
    let Ok(url) = std::env::var("RESILIENCE_REDIS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RESILIENCE_REDIS_URL is not set; .ci/run sets it"
        );
        eprintln!("note: RESILIENCE_REDIS_URL is not set; skipping");
        return None;
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(2),
    };
    let target = RedisTarget::parse(&url).expect("RESILIENCE_REDIS_URL is a Redis URL");
    Some(
        target
            .connect(timeouts, None)
            .await
            .expect("Redis answers")
            .conn,
    )
}

fn namespace(test: &str) -> String {
    format!("scripts-{test}-{:08x}", fastrand::u32(..))
}

/// Publishes `state` of breaker `b`; returns `(sequence, published)`.
async fn publish(conn: &mut Conn, keys: &Keys, state: &str, unless_reached: &str) -> (u64, u8) {
    let (gen, published, _, _) = publish_versioned(conn, keys, state, unless_reached).await;
    (gen, published)
}

/// [`publish`], with the partition's versions after and before.
async fn publish_versioned(
    conn: &mut Conn,
    keys: &Keys,
    state: &str,
    unless_reached: &str,
) -> (u64, u8, u64, u64) {
    Script::new(PUBLISH)
        .key(keys.breaker("b"))
        .key(keys.channel_of("b"))
        .key(keys.lease("b"))
        .key(keys.names_of("b"))
        .key(keys.version_of("b"))
        .arg(state)
        .arg("")
        .arg("me")
        .arg("b")
        .arg("0")
        .arg(unless_reached)
        .invoke_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lost_change_is_republished_once() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let keys = Keys::new(&namespace("republish"));
    let (first, published) = publish(&mut conn, &keys, "forced_open", "").await;
    assert_eq!(published, 1);
    assert!(
        first > 1_600_000_000_000,
        "a sequence from Redis time: {first}"
    );
    // Redis loses it: the record goes back to an older sequence.
    let _: () = redis::cmd("HSET")
        .arg(keys.breaker("b"))
        .arg("fleet_gen")
        .arg(first - 10)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Two instances knew of `first`: the first one republishes, the second
    // finds the sequence reached and does nothing.
    let (again, published) = publish(&mut conn, &keys, "forced_open", &first.to_string()).await;
    assert_eq!(published, 1);
    assert!(again > first - 10);
    let (seen, published) = publish(&mut conn, &keys, "forced_open", &first.to_string()).await;
    assert_eq!((seen, published), (again, 0));
    // Without a sequence to respect, a publish always goes through and grows.
    let (next, published) = publish(&mut conn, &keys, "closed", "").await;
    assert_eq!(published, 1);
    assert!(next > again);
}

/// The partition's version and records, or only the version if it is `known`.
async fn resync(conn: &mut Conn, keys: &Keys, p: u16, known: &str) -> Vec<String> {
    Script::new(RESYNC)
        .key(keys.names(p))
        .key(keys.version(p))
        .arg(keys.breaker_prefix(p))
        .arg(known)
        .invoke_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_resync_reads_every_breaker_of_a_partition_and_forgets_expired_ones() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let keys = Keys::new(&namespace("resync"));
    let p = super::keys::partition("b");
    assert_eq!(resync(&mut conn, &keys, p, "").await, ["0"], "nothing yet");
    let (_, _, version, before) = publish_versioned(&mut conn, &keys, "disabled", "").await;
    assert_eq!(before, 0);
    assert!(
        version > 1_600_000_000_000,
        "a version from Redis time: {version}"
    );
    let flat = resync(&mut conn, &keys, p, "0").await;
    assert_eq!(flat.len(), 6, "{flat:?}");
    assert_eq!(flat[0], version.to_string());
    assert_eq!((flat[1].as_str(), flat[2].as_str()), ("b", "disabled"));
    assert_eq!((flat[4].as_str(), flat[5].as_str()), ("", "me"));
    // Known: only the version comes back.
    let known = version.to_string();
    assert_eq!(resync(&mut conn, &keys, p, &known).await, [known.as_str()]);
    // Every change moves it on, from the version before.
    let (_, _, next, before) = publish_versioned(&mut conn, &keys, "closed", "").await;
    assert_eq!(before, version);
    assert!(next > version);
    // The hash expires (a day without a change): the name leaves the set.
    let _: () = redis::cmd("DEL")
        .arg(keys.breaker("b"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let read = resync(&mut conn, &keys, p, "").await;
    assert_eq!(read, [next.to_string()], "the version, no record");
    let left: i64 = redis::cmd("SCARD")
        .arg(keys.names(p))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// One heartbeat of `id`; returns `(version, stored, dropped)`.
async fn beat(
    conn: &mut Conn,
    members: &str,
    id: &str,
    description: &str,
    timeout_ms: u64,
) -> (u64, i64, i64) {
    Script::new(HEARTBEAT)
        .key(format!("{members}live"))
        .key(format!("{members}info"))
        .key(format!("{members}version"))
        .key(format!("{members}set:"))
        .arg(id)
        .arg(description)
        .arg("00000000000000ff")
        .arg(timeout_ms)
        .arg(60_000)
        .arg(30_000)
        .invoke_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn heartbeats_version_the_membership_and_drop_the_silent() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let members = Keys::new(&namespace("members")).members();
    let c = &mut conn;
    let (v1, stored, dropped) = beat(c, &members, "a", "{}", 60_000).await;
    assert_eq!((stored, dropped), (0, 0));
    let (v2, _, _) = beat(c, &members, "a", "{}", 60_000).await;
    assert_eq!(v2, v1, "nothing changed");
    let (v3, _, _) = beat(c, &members, "b", "{}", 60_000).await;
    assert_eq!(v3, v1 + 1, "b joined");
    let (v4, _, _) = beat(c, &members, "b", r#"{"x":1}"#, 60_000).await;
    assert_eq!(v4, v3 + 1, "b's description changed");
    tokio::time::sleep(Duration::from_millis(30)).await;
    // With a 10 ms timeout, a's heartbeat drops b (silent for 30 ms).
    let (v5, _, dropped) = beat(c, &members, "a", "{}", 10).await;
    assert_eq!((v5, dropped), (v4 + 1, 1));
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{members}live"))
        .arg(0)
        .arg(-1)
        .query_async(c)
        .await
        .unwrap();
    assert_eq!(live, ["a"]);
    // A stored name set is reported (and kept alive by the heartbeats).
    let _: () = redis::cmd("SADD")
        .arg(format!("{members}set:00000000000000ff"))
        .arg("x")
        .query_async(c)
        .await
        .unwrap();
    let (_, stored, _) = beat(c, &members, "a", "{}", 60_000).await;
    assert_eq!(stored, 1);
    // ... for the set's own time (30 s here), not the membership's day:
    // sets nobody names any more go soon.
    let left: i64 = redis::cmd("PTTL")
        .arg(format!("{members}set:00000000000000ff"))
        .query_async(c)
        .await
        .unwrap();
    assert!((1..=30_000).contains(&left), "{left} ms");
}

/// One lease request for breaker `b` by `me`, knowing sequence `known`.
async fn lease(conn: &mut Conn, keys: &Keys, me: &str, known: u64) -> i64 {
    Script::new(LEASE)
        .key(keys.lease("b"))
        .key(keys.channel_of("b"))
        .key(keys.breaker("b"))
        .arg(me)
        .arg(5_000)
        .arg("b")
        .arg("0")
        .arg(known)
        .invoke_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn only_an_instance_that_knows_the_latest_change_wins_the_lease() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let keys = Keys::new(&namespace("lease"));
    let (open, _) = publish(&mut conn, &keys, "forced_open", "").await;
    // Behind the fleet: told so, and the lease stays free.
    assert_eq!(lease(&mut conn, &keys, "late", open - 1).await, -2);
    assert_eq!(lease(&mut conn, &keys, "first", open).await, -1, "won");
    // The others learn how long the winner keeps it.
    let held = lease(&mut conn, &keys, "second", open).await;
    assert!((1..=5_000).contains(&held), "{held}");
    // The verdict shortens the winner's lease; an instance that missed it
    // cannot win the lease once it ran out: it is behind.
    let (closed, _) = publish(&mut conn, &keys, "closed", "").await;
    let _: () = redis::cmd("DEL")
        .arg(keys.lease("b"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(lease(&mut conn, &keys, "second", open).await, -2);
    assert_eq!(lease(&mut conn, &keys, "second", closed).await, -1);
}
