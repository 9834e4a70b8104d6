//! The `chaos` section of a settings document (feature `chaos`): one
//! injection per name, read and checked like the policies' sections.

#[cfg(feature = "chaos")]
use std::collections::BTreeMap;
#[cfg(feature = "chaos")]
use std::time::Duration;

#[cfg(feature = "chaos")]
use resilience_spec::Value;

#[cfg(feature = "chaos")]
use super::{unknown_key, Values};
use super::{Node, Reader, Settings};

/// The keys of a `[chaos.NAME]` entry.
#[cfg(feature = "chaos")]
const CHAOS_KEYS: [&str; 9] = [
    "error",
    "error_rate",
    "value",
    "value_rate",
    "latency",
    "latency_rate",
    "panic_rate",
    "enabled",
    "calls",
];

/// The `chaos` section: one injection per name, checked as
/// [`Chaos::inject`](crate::chaos::Chaos::inject) checks one (the
/// constructors' names are looked up when applied).
#[cfg(feature = "chaos")]
pub(super) fn read_chaos(r: &mut Reader, settings: &mut Settings, node: &Node) {
    use crate::chaos::Injection;

    let Some(entries) = r.table("chaos", node) else {
        return;
    };
    for (name, entry) in entries {
        let path = format!("chaos.{name}");
        let Some(table) = r.table(&path, entry) else {
            continue;
        };
        let mut keys = BTreeMap::new();
        for (key, value) in table {
            if CHAOS_KEYS.contains(&key.as_str()) {
                keys.insert(key.as_str(), (format!("{path}.{key}"), value));
                continue;
            }
            let message = if key == "profile" {
                "`profile` is not read in `chaos`: write each injection's keys in full".to_owned()
            } else {
                unknown_key(key, "a chaos injection", &CHAOS_KEYS)
            };
            r.problem(format!("{path}.{key}"), message);
        }
        let mut v = Values { r, keys: &keys };
        // A value that could not be read is reported already: it stands in
        // as given (a placeholder), so that the rules between keys do not
        // add noise about it, and the other keys are still checked.
        let mut injection = Injection::new();
        match v.name("error") {
            Value::Given(name) => injection = injection.named_error(name),
            Value::Unknown => injection = injection.named_error(""),
            Value::Absent => {}
        }
        match v.name("value") {
            Value::Given(name) => injection = injection.named_value(name),
            Value::Unknown => injection = injection.named_value(""),
            Value::Absent => {}
        }
        match v.duration("latency") {
            Value::Given(latency) => injection = injection.latency(latency),
            Value::Unknown => injection = injection.latency(Duration::from_secs(1)),
            Value::Absent => {}
        }
        injection.error_rate = v.number("error_rate").given();
        injection.value_rate = v.number("value_rate").given();
        injection.latency_rate = v.number("latency_rate").given();
        match v.number("panic_rate") {
            Value::Given(rate) => injection = injection.panic_rate(rate),
            Value::Unknown => injection = injection.panic_rate(0.0),
            Value::Absent => {}
        }
        if let Some(calls) = v.count("calls").given() {
            injection = injection.calls(calls);
        }
        if let Some(enabled) = v.flag("enabled").given() {
            injection = injection.enabled(enabled);
        }
        for problem in injection.check() {
            let at = match problem.key() {
                "" => path.clone(),
                key => format!("{path}.{key}"),
            };
            r.problem(at, problem.message());
        }
        settings.chaos.insert(name.clone(), injection);
    }
}

/// Without the feature, a `chaos` section is an error that says so.
#[cfg(not(feature = "chaos"))]
pub(super) fn read_chaos(r: &mut Reader, _settings: &mut Settings, _node: &Node) {
    r.problem(
        "chaos",
        "the `chaos` section needs the `chaos` feature of `resilience`",
    );
}

#[cfg(feature = "chaos")]
impl Values<'_, '_> {
    /// The name of a registered constructor.
    fn name(&mut self, key: &str) -> Value<String> {
        self.read(key, |node| match node {
            Node::Str(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Node::Str(_) => Err(
                "expected the name of a registered constructor, found an empty string".to_owned(),
            ),
            other => Err(format!(
                "expected the name of a registered constructor (a string), found {}",
                other.kind()
            )),
        })
    }

    fn flag(&mut self, key: &str) -> Value<bool> {
        self.read(key, |node| match node {
            Node::Bool(b) => Ok(*b),
            Node::Str(s) if s.trim() == "true" => Ok(true),
            Node::Str(s) if s.trim() == "false" => Ok(false),
            other => Err(format!("expected `true` or `false`, found {other}")),
        })
    }
}
