//! Every key of every attribute, with its default as documented: the list
//! the macros accept keys from, and that the tests hold the documentation
//! (the macros' rustdoc and the README) to.

/// One key of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key as written (`failure_threshold`).
    pub name: &'static str,
    /// The default, as the documentation's tables write it (`` `5` ``).
    pub default: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
}

const fn key(name: &'static str, default: &'static str, doc: &'static str) -> Key {
    Key { name, default, doc }
}

/// The keys of `#[circuit_breaker]` (also taken by `#[resilient]`).
pub const BREAKER: [Key; 19] = [
    key("name", "`module::Type::method` or `module::function`", "`\"literal\"`: one breaker shared by every call site with that name, resolved once per call site and cached in a `static`. Any other expression giving something `AsRef<str>` (`self.name.as_str()`, `format!(\"provider-{id}\")`): looked up per call, one breaker per value. Without `name`: a breaker of this function alone, named after it"),
    key("failure_threshold", "`5`", "failures that open the circuit: consecutive ones, or within `window` when one is set (≥ 1)"),
    key("recovery_timeout", "`60` s", "how long the circuit stays open before one probe is let through (> 0)"),
    key("success_threshold", "`1`", "probe successes that close the circuit again (≥ 1)"),
    key("half_open_max_calls", "`1`", "probes in flight at once while half-open; other calls are rejected (≥ 1)"),
    key("window", "none", "count failures and calls over the last N calls (`window = 100`, at most 1,000,000) or the last span of time (`window = \"60s\"`, 20 buckets)"),
    key("failure_rate", "none", "open when this share of the window's calls failed (in (0, 1]; needs `window`; replaces `failure_threshold`)"),
    key("min_calls", "`10`", "calls the window must hold before a rate can open the circuit (only with a rate; ≤ a count window)"),
    key("slow_call", "none", "a call slower than this is slow: it counts as a failure, unless `slow_call_rate` is set"),
    key("slow_call_rate", "none", "open when this share of the window's calls were slow (in (0, 1]; needs `slow_call` and `window`)"),
    key("recovery_timeout_max", "none", "each re-open after a failed probe doubles the open time, up to this; closing resets it (≥ `recovery_timeout`)"),
    key("fleet_threshold", "none", "with a registry shared through Redis: open on every instance once the fleet counted this many failures within 10 s, however few each instance saw (≥ 1)"),
    key("failure_if", "every `Err`", "`Fn(&E) -> bool`: which errors are failures; the others count as successes (and break a run of failures)"),
    key("ignore_if", "none", "`Fn(&E) -> bool`: errors that count as nothing, neither failure nor success (validation errors, 404s)"),
    key("failure_on", "every `Err`", "`[ApiError::Timeout, ApiError::Unavailable(..)]`: patterns the compiler checks (a renamed variant is a compile error)"),
    key("failure_if_ok", "no `Ok`", "`Fn(&T) -> bool`: `Ok` values that count as failures (an HTTP 503 response); the caller still gets the value"),
    key("on_open", "none", "`fn(&resilience::Transition)` (a path, or a closure capturing nothing): called when the circuit opens, with the transition and the error that caused it (`t.error()`)"),
    key("on_close", "none", "`fn(&resilience::Transition)`: called when the circuit closes"),
    key("on_half_open", "none", "`fn(&resilience::Transition)`: called when the circuit turns half-open"),
];

/// The keys of `#[retry]` (also taken by `#[resilient]`).
pub const RETRY: [Key; 13] = [
    key("max_attempts", "`3`", "attempts in all, the first call included (≥ 1)"),
    key("backoff", "`\"exponential\"`", "`\"fixed\"` (d, d, d), `\"linear\"` (d, 2d, 3d) or `\"exponential\"` (d, 2d, 4d)"),
    key("delay", "`1` s", "the base delay d"),
    key("max_delay", "none", "caps each delay, `retry_after` hints included (≥ `delay`)"),
    key("multiplier", "`2.0`", "the growth factor of `\"exponential\"` (≥ 1.0; only with `\"exponential\"`)"),
    key("jitter", "`\"none\"`", "`\"full\"` (0..d), `\"equal\"` (d/2..d) or `\"decorrelated\"` (AWS's definitions)"),
    key("max_elapsed", "none", "bound on the whole call, attempts and sleeps together: an attempt still running at the deadline is cancelled (`Error::Timeout`), no sleep starts that would end past it (> `delay`)"),
    key("retry_if", "every `Err`", "`Fn(&E) -> bool`: which errors are retried; the others return at once"),
    key("retry_on", "every `Err`", "`[ApiError::Timeout, ApiError::Unavailable(..)]`: typed patterns, checked by the compiler"),
    key("retry_if_ok", "no `Ok`", "`Fn(&T) -> bool`: `Ok` values that are retried (`Status::Pending`); when the attempts run out, the last one is returned unchanged"),
    key("retry_after", "none", "`Fn(&E) -> Option<Duration>`: the server's hint (`Retry-After`) replaces the computed delay"),
    key("on_retry", "none", "`Fn(u32, &E, Duration)`: called before each sleep with the failed attempt, its error and the delay"),
    key("budget", "none", "`\"name\"`: draw retries from a shared retry budget; an empty budget ends the retry with the last error"),
];

/// The keys of `#[bulkhead]`.
pub const BULKHEAD: [Key; 9] = [
    key(
        "name",
        "the function's path",
        "one limit per name, shared by every call site",
    ),
    key(
        "max_concurrent",
        "`10`",
        "calls in flight at once (≥ 1), or a limit that follows the dependency's latency: `\"adaptive\"` (AIMD) or `\"gradient2\"` (Netflix concurrency-limits' Gradient2)",
    ),
    key(
        "max_wait",
        "`0`",
        "how long a call may wait for a slot, then `Error::BulkheadFull`",
    ),
    key(
        "min_limit",
        "`1`",
        "adaptive: the smallest limit (≥ 1; needs `max_concurrent = \"adaptive\"` or `\"gradient2\"`)",
    ),
    key(
        "max_limit",
        "`200`",
        "adaptive: the largest limit (≥ `min_limit`)",
    ),
    key(
        "initial_limit",
        "`20`, or the nearest bound",
        "adaptive: the limit before any call finished (between the bounds)",
    ),
    key(
        "latency_threshold",
        "`\"5s\"`",
        "AIMD: a call slower than this (or failing) cuts the limit; faster ones grow it",
    ),
    key(
        "tolerance",
        "`1.5`",
        "Gradient2: how much slower than the long-term latency calls may get before the limit shrinks (1 to 10)",
    ),
    key(
        "sample_window",
        "`0` (each call)",
        "Gradient2: the calls ending within each window are one sample (`\"100ms\"` to `\"60s\"`), so a steady overload is seen",
    ),
];

/// The keys of `#[rate_limit]`.
pub const RATE_LIMIT: [Key; 6] = [
    key(
        "name",
        "the function's path",
        "one limit per name, shared by every call site (an API quota)",
    ),
    key(
        "rate",
        "required",
        "calls allowed per `per`, on average (≥ 1)",
    ),
    key("per", "`\"1s\"`", "the period `rate` counts over (> 0)"),
    key(
        "burst",
        "`rate`",
        "calls allowed at once after a quiet period (≥ 1): the limit's tolerance",
    ),
    key(
        "max_wait",
        "`0`",
        "how long a call over the limit may wait for its turn, then `Error::RateLimited`",
    ),
    key(
        "fleet",
        "`false`",
        "`true`: one limit for every instance whose registry is shared through Redis (feature `redis`), taken from leased batches of tokens; without Redis, each instance keeps its share locally",
    ),
];

/// The keys of `#[coalesce]`.
pub const COALESCE: [Key; 2] = [
    key(
        "key",
        "required",
        "an expression of the arguments (`key = id`, `key = (tenant, id)`): concurrent calls with equal keys share one run; taken by `.to_owned()`, so it must give an owned `Hash + Eq + Send + Sync + 'static` value",
    ),
    key(
        "name",
        "the function's path",
        "the name its status and events are reported under",
    ),
];

/// The keys of `#[hedge]`.
pub const HEDGE: [Key; 7] = [
    key(
        "name",
        "the function's path",
        "one hedge per name, shared by every call site: its latency histogram and counters",
    ),
    key(
        "delay",
        "`\"p95\"`",
        "how long an attempt runs before the next one starts: a duration (`\"50ms\"`, `0` = all at once) or a percentile of recent successful calls (`\"p95\"`, `\"p99.9\"`)",
    ),
    key(
        "max_hedges",
        "`1`",
        "extra attempts at most, the first not counted (1 to 4)",
    ),
    key(
        "warmup_delay",
        "`\"2s\"`",
        "a percentile `delay`'s delay until `min_samples` calls were seen",
    ),
    key(
        "min_samples",
        "`20`",
        "successful calls seen before the percentile is trusted (≥ 1; percentile only)",
    ),
    key(
        "period",
        "`\"10s\"`",
        "the latency histogram counts the current and the previous period (> 0; percentile only)",
    ),
    key(
        "budget",
        "none",
        "`\"name\"`: draw each hedge from a shared retry budget, so hedging cannot multiply load in an outage; an empty budget starts no hedge",
    ),
];

/// The keys `#[resilient]` takes besides those of `#[circuit_breaker]` and
/// `#[retry]`.
pub const RESILIENT: [Key; 4] = [
    key(
        "timeout",
        "none",
        "bounds each attempt: a slower one is cancelled and fails with `Error::Timeout` (> 0)",
    ),
    key(
        "max_concurrent",
        "none",
        "a bulkhead of this many calls in flight (≥ 1); without it, no bulkhead",
    ),
    key(
        "max_wait",
        "`0`",
        "how long a call may wait for a bulkhead slot (needs `max_concurrent`)",
    ),
    key(
        "bulkhead",
        "the function's path",
        "the bulkhead's name (needs `max_concurrent`)",
    ),
];

/// The key every attribute takes.
pub const FALLBACK: Key = key("fallback", "none", "an `async fn` taking the function's arguments plus the final error, returning the same type: runs when the call ends in an error (circuit open, retries exhausted, bulkhead full, timeout)");

/// The table of `keys` (then [`FALLBACK`]) as the documentation shows it:
/// `| key | default | meaning |`, one row per key.
pub fn table(keys: &[Key]) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in keys.iter().chain([&FALLBACK]) {
        // A `|` inside a cell would end it.
        let doc = k.doc.replace('|', "\\|");
        let _ = writeln!(out, "| `{}` | {} | {} |", k.name, k.default, doc);
    }
    out
}

const fn names<const N: usize>(keys: &[Key; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = keys[i].name;
        i += 1;
    }
    out
}

/// The names of [`BREAKER`]'s keys, in the same order.
pub const BREAKER_NAMES: [&str; 19] = names(&BREAKER);
/// The names of [`RETRY`]'s keys.
pub const RETRY_NAMES: [&str; 13] = names(&RETRY);
/// The names of [`BULKHEAD`]'s keys.
pub const BULKHEAD_NAMES: [&str; 9] = names(&BULKHEAD);
/// The names of [`RATE_LIMIT`]'s keys.
pub const RATE_LIMIT_NAMES: [&str; 6] = names(&RATE_LIMIT);
/// The names of [`COALESCE`]'s keys.
pub const COALESCE_NAMES: [&str; 2] = names(&COALESCE);
/// The names of [`HEDGE`]'s keys.
pub const HEDGE_NAMES: [&str; 7] = names(&HEDGE);
/// The names of [`RESILIENT`]'s keys.
pub const RESILIENT_NAMES: [&str; 4] = names(&RESILIENT);
