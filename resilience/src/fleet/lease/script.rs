//! The fleet's schedule of one rate limit, in Redis: the Lua script that
//! grants and takes back leases, and its arithmetic in Rust (what the unit
//! tests check, line for line the script's).
//!
//! The schedule is the generic cell rate algorithm's *theoretical arrival
//! time* (TAT), in microseconds of Redis time (`TIME`, so the instances'
//! clocks never matter), stored as a string under the limit's key. A token
//! `k` (0-based) of a grant conforms at `max(tat, now) + k·interval -
//! tolerance`; a grant of `g` tokens moves the TAT `g` intervals on, and a
//! return of `u` unused tokens moves it `u` intervals back (never before
//! now). So, over any window, the tokens granted and not returned are at
//! most what the limit allows in it (`rate × window / per + burst`).

use std::time::Duration;

/// Grants, takes back, and registers this instance, in one round trip.
///
/// KEYS[1]: the limit's schedule (its TAT, µs of Redis time); KEYS[2]: the
/// instances sharing it (sorted set, scored by when each was last seen, ms).
/// ARGV: interval (µs, may be fractional), tolerance (µs), tokens wanted,
/// tokens given back, horizon (µs: how far ahead of now a grant may be
/// usable), this instance's id, how long an instance counts as sharing
/// (ms), `1` if the instance leaves.
///
/// Returns `{granted, wait_us, instances}`: the granted tokens are usable
/// (all of them) `wait_us` from now; with nothing granted, `wait_us` is how
/// long until a token comes within the horizon.
pub(crate) const LEASE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, back, horizon = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local member_ttl = tonumber(ARGV[7])
if not (interval and tolerance and want and back and horizon and member_ttl)
    or not (interval > 0 and tolerance >= 0 and want >= 0 and back >= 0
            and horizon >= 0 and member_ttl >= 1) then
  return redis.error_reply('ERR resilience: bad rate-limit lease arguments')
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat ~= tat or tat < now or tat > now + tolerance + horizon + 86400000000 then
  tat = now
end
if back > 0 then tat = math.max(now, tat - back * interval) end
local granted, wait = 0, 0
if want > 0 then
  local room = now + horizon + tolerance - tat
  if room >= 0 then
    granted = math.min(want, math.floor(room / interval) + 1)
    wait = math.max(0, tat + (granted - 1) * interval - tolerance - now)
    tat = tat + granted * interval
  else
    wait = -room
  end
end
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
local ms = math.floor(now / 1000)
if ARGV[8] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[6])
else
  redis.call('ZADD', KEYS[2], ms, ARGV[6])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms - member_ttl)
redis.call('PEXPIRE', KEYS[2], member_ttl)
return {granted, math.ceil(wait), redis.call('ZCARD', KEYS[2])}
"#;

/// One limit's schedule parameters, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) interval: f64,
    pub(crate) tolerance: f64,
    pub(crate) horizon: f64,
}

impl Limits {
    /// `rate` per `per` with `burst`, grants usable within `horizon`.
    pub(crate) fn new(rate: u32, per: Duration, burst: u32, horizon: Duration) -> Self {
        let interval = per.as_secs_f64() * 1e6 / f64::from(rate.max(1));
        Limits {
            interval,
            tolerance: interval * f64::from(burst.max(1) - 1),
            horizon: horizon.as_secs_f64() * 1e6,
        }
    }
}

/// What one lease request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ask {
    /// Tokens wanted (0: none, a heartbeat or a return).
    pub(crate) want: u64,
    /// Unused tokens given back.
    pub(crate) back: u64,
    /// The instance leaves the limit (it stops counting as sharing it).
    pub(crate) leaving: bool,
}

/// What the fleet answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Tokens granted (never more than asked).
    pub(crate) granted: u64,
    /// When the granted tokens are usable, or (none granted) when to ask again.
    pub(crate) wait: Duration,
    /// Instances sharing the limit, this one included (unless it left).
    pub(crate) instances: u32,
}

impl Reply {
    /// The script's `{granted, wait_us, instances}`, checked: `None` for
    /// anything else. A grant is capped at what was asked (a bad reply never
    /// puts more than one lease in stock), a wait at `horizon` plus a day
    /// (the script never says more: it resets a schedule further ahead).
    pub(crate) fn parse(values: &[i64], ask: &Ask, limits: &Limits) -> Option<Reply> {
        let &[granted, wait, instances] = values else {
            return None;
        };
        let granted = u64::try_from(granted).ok()?.min(ask.want);
        let wait = u64::try_from(wait).ok()?;
        let most = limits.horizon + 86_400e6;
        let wait = Duration::from_micros(wait.min(most as u64));
        let instances = u32::try_from(instances.max(0)).unwrap_or(u32::MAX);
        Some(Reply {
            granted,
            wait,
            instances,
        })
    }
}

/// The script's arithmetic on `tat` at `now` (µs), without the instances:
/// the new TAT, the tokens granted, and the wait (µs).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn lease(tat: Option<f64>, now: f64, limits: &Limits, ask: &Ask) -> (f64, u64, f64) {
    let Limits {
        interval,
        tolerance,
        horizon,
    } = *limits;
    let mut tat = tat.unwrap_or(now);
    if tat.is_nan() || tat < now || tat > now + tolerance + horizon + 86_400e6 {
        tat = now;
    }
    if ask.back > 0 {
        tat = now.max(tat - ask.back as f64 * interval);
    }
    let (mut granted, mut wait) = (0u64, 0f64);
    if ask.want > 0 {
        let room = now + horizon + tolerance - tat;
        if room >= 0.0 {
            granted = ask.want.min((room / interval).floor() as u64 + 1);
            wait = (tat + (granted - 1) as f64 * interval - tolerance - now).max(0.0);
            tat += granted as f64 * interval;
        } else {
            wait = -room;
        }
    }
    (tat, granted, wait)
}
