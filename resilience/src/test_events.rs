//! Test support: the `resilience` target's `tracing` events, collected as
//! `field=value; ` lines (`message=…; breaker="x"; `) for assertions.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::Level;

/// A subscriber that collects the `resilience` target's events: of every
/// level, or of one.
#[derive(Clone, Default)]
pub(crate) struct Events {
    lines: Arc<Mutex<Vec<String>>>,
    level: Option<Level>,
}

impl Events {
    /// Collects the events of every level.
    pub(crate) fn all() -> Self {
        Events::default()
    }

    /// Collects the events of `level` only.
    pub(crate) fn at(level: Level) -> Self {
        Events {
            level: Some(level),
            ..Events::default()
        }
    }

    /// What was collected so far.
    pub(crate) fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The one line collected; fails the test (showing them) if there are
    /// none or several.
    #[track_caller]
    pub(crate) fn only_line(&self) -> String {
        let lines = self.lines();
        assert_eq!(lines.len(), 1, "one event expected: {lines:?}");
        lines[0].clone()
    }

    /// The lines that contain `text`, in order.
    pub(crate) fn containing(&self, text: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|l| l.contains(text))
            .cloned()
            .collect()
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?}; ", field.name(), value);
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "resilience" && self.level.is_none_or(|l| *metadata.level() == l)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = String::new();
        event.record(&mut Fields(&mut line));
        self.lines().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
