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
pub const BREAKER: [Key; 18] = [
    key("name", "`module::Type::method` or `module::function`", "the breaker's name: a literal is shared by every call site, an expression is looked up per call"),
    key("failure_threshold", "`5`", "failures that open the circuit: consecutive, or within `window`"),
    key("recovery_timeout", "`60` s", "how long the circuit stays open before a probe"),
    key("success_threshold", "`1`", "probe successes that close the circuit"),
    key("half_open_max_calls", "`1`", "probes in flight at once while half-open"),
    key("window", "none", "count over the last N calls (`100`) or a span of time (`\"60s\"`)"),
    key("failure_rate", "none", "open when this share of the window's calls failed"),
    key("min_calls", "`10`", "calls the window must hold before a rate can open the circuit"),
    key("slow_call", "none", "a call slower than this is slow"),
    key("slow_call_rate", "none", "open when this share of the window's calls were slow"),
    key("recovery_timeout_max", "none", "each failed probe doubles the open time, up to this"),
    key("fleet_threshold", "none", "open on every instance once the fleet counted this many failures"),
    key("failure_if", "every `Err`", "`Fn(&E) -> bool`: which errors are failures"),
    key("ignore_if", "none", "`Fn(&E) -> bool`: errors that count as nothing"),
    key("failure_on", "every `Err`", "patterns of the errors that are failures"),
    key("on_open", "none", "`fn(&Transition)` called when the circuit opens"),
    key("on_close", "none", "`fn(&Transition)` called when the circuit closes"),
    key("on_half_open", "none", "`fn(&Transition)` called when the circuit turns half-open"),
];

/// The keys of `#[retry]` (also taken by `#[resilient]`).
pub const RETRY: [Key; 12] = [
    key(
        "max_attempts",
        "`3`",
        "attempts in all, the first call included",
    ),
    key(
        "backoff",
        "`\"exponential\"`",
        "`\"fixed\"`, `\"linear\"` or `\"exponential\"`",
    ),
    key("delay", "`1` s", "the base delay"),
    key("max_delay", "none", "the cap on each delay"),
    key(
        "multiplier",
        "`2.0`",
        "the growth factor of `\"exponential\"`",
    ),
    key(
        "jitter",
        "`\"none\"`",
        "`\"none\"`, `\"full\"`, `\"equal\"` or `\"decorrelated\"`",
    ),
    key(
        "max_elapsed",
        "none",
        "the bound on the whole call, attempts and sleeps together",
    ),
    key(
        "retry_if",
        "every `Err`",
        "`Fn(&E) -> bool`: which errors are retried",
    ),
    key(
        "retry_on",
        "every `Err`",
        "patterns of the errors that are retried",
    ),
    key(
        "retry_after",
        "none",
        "`Fn(&E) -> Option<Duration>`: the server's hint replaces the delay",
    ),
    key(
        "on_retry",
        "none",
        "`Fn(u32, &E, Duration)` called before each sleep",
    ),
    key(
        "budget",
        "none",
        "the name of a shared retry budget to draw retries from",
    ),
];

/// The keys of `#[bulkhead]`.
pub const BULKHEAD: [Key; 3] = [
    key(
        "name",
        "the function's path",
        "one limit per name, shared by every call site",
    ),
    key("max_concurrent", "`10`", "calls in flight at once"),
    key("max_wait", "`0`", "how long a call may wait for a slot"),
];

/// The keys `#[resilient]` takes besides those of `#[circuit_breaker]` and
/// `#[retry]`.
pub const RESILIENT: [Key; 4] = [
    key("timeout", "none", "bounds each attempt"),
    key("bulkhead", "the function's path", "the bulkhead's name"),
    key(
        "max_concurrent",
        "none",
        "a bulkhead of this many calls in flight",
    ),
    key(
        "max_wait",
        "`0`",
        "how long a call may wait for a bulkhead slot",
    ),
];

/// The key every attribute takes.
pub const FALLBACK: Key = key(
    "fallback",
    "none",
    "an async fn called with the arguments and the final error",
);

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
pub const BREAKER_NAMES: [&str; 18] = names(&BREAKER);
/// The names of [`RETRY`]'s keys.
pub const RETRY_NAMES: [&str; 12] = names(&RETRY);
/// The names of [`BULKHEAD`]'s keys.
pub const BULKHEAD_NAMES: [&str; 3] = names(&BULKHEAD);
/// The names of [`RESILIENT`]'s keys.
pub const RESILIENT_NAMES: [&str; 4] = names(&RESILIENT);
