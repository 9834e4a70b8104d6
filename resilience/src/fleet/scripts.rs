//! The fleet's Lua scripts. Each one touches the keys of one hash slot (see
//! [`keys`](super::keys)), so each runs unchanged on one server and on a
//! Redis Cluster; each is one round trip, atomic.

/// Bumps a breaker's fleet sequence, stores its state, notes its name in
/// the partition's set, announces it, and shortens this instance's probe
/// lease.
///
/// The sequence is `max(previous + 1, Redis time in ms)`: it keeps growing
/// even when the key expired or a restarted Redis lost it, so instances that
/// remember a higher number never ignore a fresh change. The lease is not
/// deleted but left to expire in 250 ms, so no instance can win it before it
/// has read this verdict.
///
/// With ARGV[6] set (a sequence this instance knows of), nothing happens if
/// the stored sequence has reached it: a change that Redis lost (a failover
/// before the write reached the replica, a restart) is republished by the
/// first instance that notices, and by no other.
///
/// The partition's version moves on too (from `pv_prev` to `pv`, both in
/// the announcement): `max(previous + 1, Redis time in ms)`, so two
/// primaries (before and after a failover) never give one version to two
/// different histories. An instance that saw every announcement of a
/// partition knows its version, and its resync skips it.
///
/// KEYS: the breaker's hash, its partition's channel, its lease, its
/// partition's names, its partition's version. ARGV: state, until (ms
/// since the Unix epoch, or empty), instance, name, `1` for sharded
/// pub/sub, the sequence known (or empty). Returns `{sequence, 1 if
/// published, partition version, the version before}`.
pub(crate) const PUBLISH: &str = r#"
local prev = tonumber(redis.call('HGET', KEYS[1], 'fleet_gen') or '0')
if ARGV[6] ~= '' and prev >= tonumber(ARGV[6]) then return {prev, 0, 0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = prev + 1
if now > gen then gen = now end
local pv_prev = tonumber(redis.call('GET', KEYS[5]) or '0')
local pv = pv_prev + 1
if now > pv then pv = now end
redis.call('SET', KEYS[5], string.format('%d', pv), 'PX', 86400000)
redis.call('HSET', KEYS[1], 'fleet_gen', string.format('%d', gen), 'state', ARGV[1],
    'until_unix_ms', ARGV[2], 'instance', ARGV[3])
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('PEXPIRE', KEYS[4], 86400000)
local msg = {v = 1, instance = ARGV[3], breaker = ARGV[4], state = ARGV[1], fleet_gen = gen,
    pv = pv, pv_prev = pv_prev}
if ARGV[2] ~= '' then msg['until_unix_ms'] = tonumber(ARGV[2]) end
if ARGV[5] == '1' then
  redis.call('SPUBLISH', KEYS[2], cjson.encode(msg))
else
  redis.call('PUBLISH', KEYS[2], cjson.encode(msg))
end
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('PEXPIRE', KEYS[3], 250) end
return {gen, 1, pv, pv_prev}
"#;

/// Races for a breaker's probe lease. The winner's notice goes out on the
/// partition's channel at once, so the instances still waiting to ask
/// learn that someone probes and do not ask (see
/// [`probes`](super::probes)).
///
/// Only an instance that knows the breaker's latest change may win: one
/// that has not read a verdict yet (announcements queued behind its own
/// work) is told so (-2) and reads the breaker's record instead of probing
/// a dependency the fleet already judged.
///
/// KEYS: the lease, the partition's channel, the breaker's hash. ARGV:
/// instance, the lease in ms, name, `1` for sharded pub/sub, the fleet
/// sequence known. Returns -1 when won, -2 when the caller is behind, else
/// how long the holder keeps the lease (ms).
pub(crate) const LEASE: &str = r#"
local gen = tonumber(redis.call('HGET', KEYS[3], 'fleet_gen') or '0')
if gen > tonumber(ARGV[5]) then return -2 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local msg = cjson.encode({v = 1, instance = ARGV[1], breaker = ARGV[3], state = 'half_open',
      fleet_gen = tonumber(ARGV[5]), probe_ms = tonumber(ARGV[2])})
  if ARGV[4] == '1' then
    redis.call('SPUBLISH', KEYS[2], msg)
  else
    redis.call('PUBLISH', KEYS[2], msg)
  end
  return -1
end
return redis.call('PTTL', KEYS[1])
"#;

/// Every breaker of one partition as the fleet has it: the partition's
/// version, then a flat list of `name, state, fleet_gen, until_unix_ms,
/// instance` (empty strings for what a hash lacks); only the version if it
/// is the one the caller knows. Names whose hash expired leave the set.
///
/// KEYS: the partition's names, its version. ARGV: the prefix of its
/// breaker hashes, the version known (or empty).
pub(crate) const RESYNC: &str = r#"
local version = redis.call('GET', KEYS[2]) or '0'
if version == ARGV[2] then return {version} end
local out = {version}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. name, 'state', 'fleet_gen', 'until_unix_ms', 'instance')
  if f[1] then
    table.insert(out, name)
    for i = 1, 4 do table.insert(out, f[i] or '') end
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return out
"#;

/// Adds this instance's failures to the fleet's count and returns the
/// fleet's failures over the window (in whole seconds, Redis time), or -1
/// when the failures are stale.
///
/// The count belongs to one *epoch*: the breaker's fleet sequence (so every
/// published transition starts a new count, and failures counted before it
/// never count toward the next opening) and, for the consecutive rule, a run
/// number that every reported success bumps (a success anywhere breaks the
/// fleet's run). Failures reported against an older sequence than the
/// breaker's, or while the fleet has it anything but closed (a closing that
/// is not published yet), are stale: they are dropped.
///
/// KEYS[1]: the breaker's hash; KEYS[2]: the prefix of its failure keys.
/// ARGV: failures, window in seconds, the fleet sequence this instance knows
/// (0: none), `1` if a success came before these failures.
pub(crate) const COUNT_FAILURES: &str = r#"
local gen, state = unpack(redis.call('HMGET', KEYS[1], 'fleet_gen', 'state'))
if gen and (gen ~= ARGV[3] or state ~= 'closed') then return -1 end
gen = gen or '0'
local window = tonumber(ARGV[2])
local run = 0
local epoch = redis.call('GET', KEYS[2] .. 'epoch')
if epoch then
  local g, r = string.match(epoch, '^(%d+):(%d+)$')
  if g == gen then run = tonumber(r) end
end
if ARGV[4] == '1' then run = run + 1 end
redis.call('SET', KEYS[2] .. 'epoch', gen .. ':' .. run, 'EX', window + 2)
local prefix = KEYS[2] .. gen .. ':' .. run .. ':'
local now = tonumber(redis.call('TIME')[1])
if tonumber(ARGV[1]) > 0 then
  redis.call('INCRBY', prefix .. now, ARGV[1])
  redis.call('EXPIRE', prefix .. now, window + 2)
end
local sum = 0
for i = 0, window - 1 do
  sum = sum + tonumber(redis.call('GET', prefix .. (now - i)) or '0')
end
return sum
"#;

/// One instance's heartbeat: notes it alive (and what it says of itself),
/// drops the instances not heard of within the timeout, and says whether
/// the membership changed since the version the caller knows.
///
/// KEYS: the live set (score: last heartbeat, Redis time in ms), the
/// instances' descriptions (hash), the membership version, the prefix of
/// the breaker-name sets. ARGV: instance id, its description (JSON, with
/// the fingerprint of its breaker names), the fingerprint, the timeout in
/// ms, how long membership keys outlive the last heartbeat (ms), how long
/// a name set outlives the last heartbeat naming it (ms).
/// Returns `{version, 1 if its name set is stored, instances dropped}`.
pub(crate) const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed = redis.call('ZADD', KEYS[1], now, ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  changed = 1
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[4])))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  changed = 1
end
if changed == 1 then redis.call('INCR', KEYS[3]) end
local set = KEYS[4] .. ARGV[3]
local stored = redis.call('EXISTS', set)
if stored == 1 then redis.call('PEXPIRE', set, ARGV[6]) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return {tonumber(redis.call('GET', KEYS[3]) or '0'), stored, #dead}
"#;

/// Stores a breaker-name set under its fingerprint, whole or not at all:
/// the names were added to a key of this instance's, which is renamed.
/// The membership version is bumped, so every instance counts again.
///
/// KEYS: the staging set, the fingerprint's set, the membership version.
/// ARGV: how long the set outlives the last heartbeat naming it (ms).
pub(crate) const STORE_SET: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('INCR', KEYS[3])
return 1
"#;
