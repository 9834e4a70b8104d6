//! The six steps of a round: the faults, and what each must lead to.

use std::ops::Range;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::nodes::{differences, expected, normalised, parse_changed, parse_tripped, sel};
use crate::{Soak, BREAKERS, EVENTUALLY, LEASE, OUTAGE, PAUSE, RECOVERY};

fn unix_us_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_micros()).unwrap()
}

impl Soak {
    /// Step 1: every node trips its share of the breakers, all open
    /// everywhere; then all close.
    pub(crate) fn trip_everywhere(&mut self) {
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
    pub(crate) fn steady(&mut self, length: Duration) {
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
    pub(crate) fn redis_killed(&mut self) {
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
    pub(crate) fn redis_paused(&mut self) {
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
    pub(crate) fn prober_killed(&mut self) {
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
    pub(crate) fn join(&mut self) {
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
}
