//! Reading [`Settings`] from any serde format: the document is read as a
//! tree first, then every section, name, key and value is checked, so that
//! every problem is reported at once, each with its path, in the words the
//! attributes use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use resilience_spec::{
    did_you_mean, duration, keys, BackoffKind, BreakerValues, BudgetValues, BulkheadValues,
    HedgeDelayValue, HedgeValues, Jitter, Problem, RateLimitValues, RetryValues, TimeoutValues,
    Value, WindowValue,
};
use serde::de::{self, Deserialize, Deserializer};

use super::{Settings, SettingsError, SettingsProblem};
use node::Node;

mod chaos;
mod node;

use chaos::read_chaos;

/// Reads a whole-process configuration; fails with every problem found
/// (one per line, each with its path) when anything is wrong.
impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = Node::deserialize(d)?;
        Settings::from_node(&node).map_err(de::Error::custom)
    }
}

/// The sections of a settings document.
const SECTIONS: [&str; 10] = [
    "breakers",
    "retries",
    "timeouts",
    "bulkheads",
    "retry_budgets",
    "rate_limits",
    "hedges",
    "chaos",
    "profiles",
    "dynamic_names",
];

/// The policy kinds of the sections, and their keys a file may set.
#[derive(Clone, Copy, PartialEq)]
enum Section {
    Breakers,
    Retries,
    Timeouts,
    Bulkheads,
    Budgets,
    RateLimits,
    Hedges,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Breakers,
        Section::Retries,
        Section::Timeouts,
        Section::Bulkheads,
        Section::Budgets,
        Section::RateLimits,
        Section::Hedges,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Breakers => "breakers",
            Section::Retries => "retries",
            Section::Timeouts => "timeouts",
            Section::Bulkheads => "bulkheads",
            Section::Budgets => "retry_budgets",
            Section::RateLimits => "rate_limits",
            Section::Hedges => "hedges",
        }
    }

    fn policy(self) -> &'static str {
        match self {
            Section::Breakers => "a circuit breaker",
            Section::Retries => "a retry",
            Section::Timeouts => "a timeout",
            Section::Bulkheads => "a bulkhead",
            Section::Budgets => "a retry budget",
            Section::RateLimits => "a rate limiter",
            Section::Hedges => "a hedge",
        }
    }

    /// The keys of values (not code) a file may set.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Section::Breakers => &[
                "failure_threshold",
                "recovery_timeout",
                "success_threshold",
                "half_open_max_calls",
                "window",
                "failure_rate",
                "min_calls",
                "slow_call",
                "slow_call_rate",
                "recovery_timeout_max",
                "fleet_threshold",
            ],
            Section::Retries => &[
                "max_attempts",
                "backoff",
                "delay",
                "max_delay",
                "multiplier",
                "jitter",
                "max_elapsed",
            ],
            Section::Timeouts => &["timeout"],
            Section::Bulkheads => &["max_concurrent", "max_wait"],
            Section::Budgets => &["ttl", "min_per_sec", "retry_ratio"],
            Section::RateLimits => &["rate", "per", "burst", "max_wait"],
            Section::Hedges => &[
                "delay",
                "max_hedges",
                "warmup_delay",
                "min_samples",
                "period",
            ],
        }
    }

    /// The attribute's keys of this kind that are code or wiring, which
    /// only the attribute can say.
    fn attribute_keys(self) -> &'static [&'static str] {
        match self {
            Section::Breakers => &keys::BREAKER_NAMES,
            Section::Retries => &keys::RETRY_NAMES,
            Section::Bulkheads => &keys::BULKHEAD_NAMES,
            Section::RateLimits => &keys::RATE_LIMIT_NAMES,
            Section::Hedges => &keys::HEDGE_NAMES,
            Section::Timeouts | Section::Budgets => &[],
        }
    }
}

/// Every key any section accepts (what a profile may hold).
fn any_key() -> impl Iterator<Item = &'static str> {
    Section::ALL
        .into_iter()
        .flat_map(|s| s.keys().iter().copied())
}

struct Reader {
    problems: Vec<SettingsProblem>,
}

impl Reader {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(SettingsProblem::new(path, message));
    }

    fn table<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n BTreeMap<String, Node>> {
        match node {
            Node::Table(t) => Some(t),
            other => {
                self.problem(path, format!("expected a table, found {}", other.kind()));
                None
            }
        }
    }
}

impl Settings {
    fn from_node(node: &Node) -> Result<Settings, SettingsError> {
        let mut r = Reader {
            problems: Vec::new(),
        };
        let mut settings = Settings::default();
        let Node::Table(root) = node else {
            r.problem(
                "(document)",
                format!("expected a table, found {}", node.kind()),
            );
            return Err(SettingsError::new(r.problems));
        };
        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                let message = match did_you_mean(key, SECTIONS) {
                    Some(near) => format!("unknown section `{key}`: did you mean `{near}`?"),
                    None => format!(
                        "unknown section `{key}`; expected one of: {}",
                        SECTIONS.map(|s| format!("`{s}`")).join(", ")
                    ),
                };
                r.problem(key.as_str(), message);
            }
        }
        let empty = BTreeMap::new();
        let profiles = match root.get("profiles") {
            Some(node) => r.table("profiles", node).unwrap_or(&empty),
            None => &empty,
        };
        check_profiles(&mut r, profiles);
        if let Some(node) = root.get("dynamic_names") {
            match node {
                Node::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Node::Str(s) => settings.dynamic_names.push(s.clone()),
                            other => r.problem(
                                format!("dynamic_names[{i}]"),
                                format!("expected a name pattern (a string), found {other}"),
                            ),
                        }
                    }
                }
                Node::Str(s) => settings.dynamic_names.push(s.clone()),
                other => r.problem(
                    "dynamic_names",
                    format!("expected a list of name patterns, found {}", other.kind()),
                ),
            }
        }
        for section in Section::ALL {
            let Some(node) = root.get(section.name()) else {
                continue;
            };
            let Some(entries) = r.table(section.name(), node) else {
                continue;
            };
            for (name, entry) in entries {
                let path = format!("{}.{name}", section.name());
                let Some(table) = r.table(&path, entry) else {
                    continue;
                };
                let keys = resolve(&mut r, section, &path, table, profiles);
                read_entry(&mut r, &mut settings, section, name, &path, &keys);
            }
        }
        if let Some(node) = root.get("chaos") {
            read_chaos(&mut r, &mut settings, node);
        }
        if r.problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError::new(r.problems))
        }
    }
}

/// Every profile's keys are keys of some policy; every `profile` it names
/// exists; no chain of profiles comes back to where it started.
fn check_profiles(r: &mut Reader, profiles: &BTreeMap<String, Node>) {
    for (name, node) in profiles {
        let path = format!("profiles.{name}");
        let Some(table) = r.table(&path, node) else {
            continue;
        };
        for key in table.keys() {
            if key != "profile" && !any_key().any(|k| k == key) {
                let message = match did_you_mean(key, any_key()) {
                    Some(near) => format!("unknown key `{key}`: did you mean `{near}`?"),
                    None => format!("unknown key `{key}`: a profile holds the keys of breakers, retries, timeouts, bulkheads and retry budgets"),
                };
                r.problem(format!("{path}.{key}"), message);
            }
        }
        // Follow the chain of parents.
        let mut seen = vec![name.as_str()];
        let mut current = table;
        while let Some(parent) = current.get("profile") {
            let Node::Str(parent) = parent else {
                r.problem(
                    format!("profiles.{}.profile", seen[seen.len() - 1]),
                    format!("expected a profile's name, found {parent}"),
                );
                break;
            };
            if seen.contains(&parent.as_str()) {
                // A loop: reported on each profile it comes back to.
                if parent == name {
                    let mut chain = seen.clone();
                    chain.push(parent);
                    r.problem(
                        format!("{path}.profile"),
                        format!("profile `{name}` refers to itself ({})", chain.join(" -> ")),
                    );
                }
                break;
            }
            match profiles.get(parent) {
                Some(Node::Table(next)) => {
                    seen.push(parent);
                    current = next;
                }
                Some(_) => break, // reported as not a table
                None => {
                    if seen.len() == 1 {
                        r.problem(format!("{path}.profile"), unknown_profile(parent, profiles));
                    }
                    break;
                }
            }
        }
    }
}

fn unknown_profile(name: &str, profiles: &BTreeMap<String, Node>) -> String {
    match did_you_mean(name, profiles.keys().map(String::as_str)) {
        Some(near) => format!("no profile named `{name}`: did you mean `{near}`?"),
        None if profiles.is_empty() => format!("no profile named `{name}`: `profiles` is empty"),
        None => format!("no profile named `{name}`"),
    }
}

/// The entry's keys over its profile's (over the profile's own profile, …),
/// with the path each value was written at; checks the entry's keys.
fn resolve<'n>(
    r: &mut Reader,
    section: Section,
    path: &str,
    table: &'n BTreeMap<String, Node>,
    profiles: &'n BTreeMap<String, Node>,
) -> BTreeMap<&'n str, (String, &'n Node)> {
    let mut keys: BTreeMap<&str, (String, &Node)> = BTreeMap::new();
    for (key, value) in table {
        if key == "profile" {
            continue;
        }
        if section.keys().contains(&key.as_str()) {
            keys.insert(key, (format!("{path}.{key}"), value));
        } else if section.attribute_keys().contains(&key.as_str()) {
            r.problem(
                format!("{path}.{key}"),
                format!("`{key}` can only be written in the attribute: it is code or wiring, not a setting"),
            );
        } else {
            let message = unknown_key(key, section.policy(), section.keys());
            r.problem(format!("{path}.{key}"), message);
        }
    }
    // The profiles, nearest first; a key already set stays.
    let mut next = table.get("profile");
    let mut visited = BTreeSet::new();
    while let Some(node) = next {
        let Node::Str(name) = node else {
            r.problem(
                format!("{path}.profile"),
                format!("expected a profile's name, found {node}"),
            );
            break;
        };
        if !visited.insert(name.as_str()) {
            break; // a loop, reported on the profiles
        }
        let Some(Node::Table(profile)) = profiles.get(name) else {
            if visited.len() == 1 {
                r.problem(format!("{path}.profile"), unknown_profile(name, profiles));
            }
            break;
        };
        for (key, value) in profile {
            if section.keys().contains(&key.as_str()) {
                keys.entry(key)
                    .or_insert_with(|| (format!("profiles.{name}.{key}"), value));
            }
        }
        next = profile.get("profile");
    }
    keys
}

/// Fills the entry's values from its keys and runs the spec's check.
fn read_entry(
    r: &mut Reader,
    settings: &mut Settings,
    section: Section,
    name: &str,
    path: &str,
    keys: &BTreeMap<&str, (String, &Node)>,
) {
    let mut v = Values { r, keys };
    let problems = match section {
        Section::Breakers => {
            let values = BreakerValues {
                failure_threshold: v.count("failure_threshold"),
                recovery_timeout: v.duration("recovery_timeout"),
                success_threshold: v.count("success_threshold"),
                half_open_max_calls: v.count("half_open_max_calls"),
                window: v.window("window"),
                failure_rate: v.number("failure_rate"),
                min_calls: v.count("min_calls"),
                slow_call: v.duration("slow_call"),
                slow_call_rate: v.number("slow_call_rate"),
                recovery_timeout_max: v.duration("recovery_timeout_max"),
                fleet_threshold: v.count("fleet_threshold"),
            };
            settings.breakers.insert(name.to_owned(), values);
            values.check()
        }
        Section::Retries => {
            let values = RetryValues {
                max_attempts: v.count("max_attempts"),
                backoff: v.choice::<BackoffKind>("backoff"),
                delay: v.duration("delay"),
                max_delay: v.duration("max_delay"),
                multiplier: v.number("multiplier"),
                jitter: v.choice::<Jitter>("jitter"),
                max_elapsed: v.duration("max_elapsed"),
            };
            settings.retries.insert(name.to_owned(), values);
            values.check()
        }
        Section::Timeouts => {
            let values = TimeoutValues {
                timeout: v.duration("timeout"),
            };
            settings.timeouts.insert(name.to_owned(), values);
            values.check()
        }
        Section::Bulkheads => {
            let values = BulkheadValues {
                max_concurrent: v.count("max_concurrent"),
                max_wait: v.duration("max_wait"),
            };
            settings.bulkheads.insert(name.to_owned(), values);
            values.check()
        }
        Section::RateLimits => {
            let values = RateLimitValues {
                rate: v.count("rate"),
                per: v.duration("per"),
                burst: v.count("burst"),
                max_wait: v.duration("max_wait"),
                // Decided where the limiter is declared, not by a file.
                fleet: Value::Absent,
            };
            settings.rate_limits.insert(name.to_owned(), values);
            values.check()
        }
        Section::Hedges => {
            let values = HedgeValues {
                delay: v.hedge_delay("delay"),
                warmup_delay: v.duration("warmup_delay"),
                max_hedges: v.count("max_hedges"),
                min_samples: v.count("min_samples"),
                period: v.duration("period"),
            };
            settings.hedges.insert(name.to_owned(), values);
            values.check()
        }
        Section::Budgets => {
            let values = BudgetValues {
                ttl: v.duration("ttl"),
                min_per_sec: v.count("min_per_sec"),
                retry_ratio: v.number("retry_ratio"),
            };
            settings.retry_budgets.insert(name.to_owned(), values);
            values.check()
        }
    };
    // Rules between keys wait for the layering over the attribute's keys
    // (`Registry::apply`): a file's `max_delay = "500ms"` is fine over an
    // attribute's `delay = "100ms"`.
    for p in problems.iter().filter(|p| about_one_value(p)) {
        let at = match keys.get(p.key()) {
            Some((at, _)) => at.clone(),
            None => format!("{path}.{}", p.key()),
        };
        r.problem(at, p.to_string());
    }
}

/// "unknown key `x` for a retry: did you mean `y`?", or the keys there are.
fn unknown_key(key: &str, what: &str, keys: &[&str]) -> String {
    match did_you_mean(key, keys.iter().copied()) {
        Some(near) => format!("unknown key `{key}` for {what}: did you mean `{near}`?"),
        None => format!(
            "unknown key `{key}` for {what}; expected one of: {}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether `problem` is about one value alone (its range), not about how
/// keys go together.
fn about_one_value(problem: &Problem) -> bool {
    matches!(
        problem,
        Problem::Zero { .. }
            | Problem::TooLarge { .. }
            | Problem::NotPositive { .. }
            | Problem::RateOutOfRange { .. }
            | Problem::DurationOutOfRange { .. }
            | Problem::NumberOutOfRange { .. }
            | Problem::WindowTooLarge { .. }
            | Problem::MultiplierBelowOne { .. }
    )
}

/// Reads typed values out of an entry's keys, reporting what does not fit.
struct Values<'a, 'n> {
    r: &'a mut Reader,
    keys: &'a BTreeMap<&'n str, (String, &'n Node)>,
}

impl Values<'_, '_> {
    fn read<T>(&mut self, key: &str, parse: impl FnOnce(&Node) -> Result<T, String>) -> Value<T> {
        let Some((path, node)) = self.keys.get(key) else {
            return Value::Absent;
        };
        match parse(node) {
            Ok(v) => Value::Given(v),
            Err(message) => {
                self.r.problem(path.clone(), message);
                // Known to be written: rules about its presence still apply.
                Value::Unknown
            }
        }
    }

    fn count(&mut self, key: &str) -> Value<u64> {
        self.read(key, whole_number)
    }

    fn number(&mut self, key: &str) -> Value<f64> {
        self.read(key, |node| match node {
            Node::Int(n) => Ok(*n as f64),
            Node::Float(x) => Ok(*x),
            Node::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("expected a number, found {node}")),
            other => Err(format!("expected a number, found {}", other.kind())),
        })
    }

    fn duration(&mut self, key: &str) -> Value<Duration> {
        self.read(key, parse_duration)
    }

    fn window(&mut self, key: &str) -> Value<WindowValue> {
        self.read(key, |node| match node {
            Node::Int(_) => whole_number(node).map(WindowValue::Calls),
            Node::Str(s)
                if s.trim().bytes().all(|b| b.is_ascii_digit()) && !s.trim().is_empty() =>
            {
                whole_number(node).map(WindowValue::Calls)
            }
            Node::Str(_) => parse_duration(node).map(WindowValue::Time),
            other => Err(format!(
                "expected a number of calls (`100`) or a duration (`\"60s\"`), found {}",
                other.kind()
            )),
        })
    }

    fn hedge_delay(&mut self, key: &str) -> Value<HedgeDelayValue> {
        self.read(key, |node| match node {
            Node::Str(s) => resilience_spec::hedge::parse_delay(s),
            Node::Int(n) => Err(format!(
                "expected a duration with its unit, such as \"{n}ms\", or a percentile such as \"p95\", found {n}"
            )),
            other => Err(format!(
                "expected a duration such as \"50ms\" or a percentile such as \"p95\", found {}",
                other.kind()
            )),
        })
    }

    fn choice<T: std::str::FromStr>(&mut self, key: &str) -> Value<T>
    where
        T::Err: fmt::Display,
    {
        self.read(key, |node| match node {
            Node::Str(s) => s.parse::<T>().map_err(|e| e.to_string()),
            other => Err(format!("expected a string, found {}", other.kind())),
        })
    }
}

fn whole_number(node: &Node) -> Result<u64, String> {
    let n = match node {
        Node::Int(n) => *n,
        Node::Str(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| format!("expected a whole number, found {node}"))?,
        Node::Float(x) => return Err(format!("expected a whole number, found {x}")),
        other => return Err(format!("expected a whole number, found {}", other.kind())),
    };
    u64::try_from(n).map_err(|_| format!("expected a whole number of at least 0, found {n}"))
}

fn parse_duration(node: &Node) -> Result<Duration, String> {
    match node {
        Node::Str(s) => duration::parse(s).map_err(|e| e.to_string()),
        Node::Int(n) => Err(format!(
            "expected a duration with its unit, such as \"{n}s\" or \"{n}ms\", found {n}"
        )),
        other => Err(format!(
            "expected a duration such as \"30s\", found {}",
            other.kind()
        )),
    }
}

#[cfg(test)]
mod tests;
