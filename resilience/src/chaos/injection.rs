//! What to inject into the calls of one name: the faults with their rates,
//! the switch and the number of calls, checked alike whether they come from
//! code ([`Injection`]) or from a configuration file (`[chaos.NAME]`).

use std::fmt;
use std::time::Duration;

use resilience_spec::Problem;

use super::catalog::{Catalog, Maker};

/// The longest latency an injection may add.
pub(crate) const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// Where an injected error or value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A constructor given in code.
    Given(Maker),
    /// A constructor registered by name (what a file writes).
    Named(String),
}

impl PartialEq for Source {
    fn eq(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Given(a), Source::Given(b)) => a.same(b),
            (Source::Named(a), Source::Named(b)) => a == b,
            _ => false,
        }
    }
}

/// What to inject into the calls of one policy name: an error, an `Ok`
/// value, latency, a panic, each at its rate (the share of calls it hits,
/// from 0 to 1; 1 unless set), while enabled, optionally for the next
/// `calls` calls only. Put it in force with [`Chaos::inject`](super::Chaos::inject)
/// (or [`chaos::inject`](super::inject)); its keys are those of a file's
/// `[chaos.NAME]` entry.
///
/// Each call the injection sees draws, in order: the latency (added before
/// anything else), then a panic, then the error, then the value; the first
/// of those three that hits replaces the body, which runs when none does.
///
/// ```
/// use std::time::Duration;
/// use resilience::chaos::Injection;
///
/// #[derive(Debug)]
/// enum ApiError { Unavailable }
///
/// let injection = Injection::new()
///     .error(|| ApiError::Unavailable)
///     .error_rate(0.5)
///     .latency(Duration::from_millis(200))
///     .latency_rate(0.1)
///     .calls(100);
/// resilience::chaos::inject("injection-doc-unifi", injection)?;
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub(crate) error: Option<Source>,
    pub(crate) error_rate: Option<f64>,
    pub(crate) value: Option<Source>,
    pub(crate) value_rate: Option<f64>,
    pub(crate) latency: Option<Duration>,
    pub(crate) latency_rate: Option<f64>,
    pub(crate) panic_rate: Option<f64>,
    pub(crate) calls: Option<u64>,
    pub(crate) enabled: bool,
}

impl Default for Injection {
    fn default() -> Self {
        Injection::new()
    }
}

impl Injection {
    /// Nothing injected yet; enabled, for every call.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new().panic_rate(0.01);
    /// ```
    pub const fn new() -> Self {
        Injection {
            error: None,
            error_rate: None,
            value: None,
            value_rate: None,
            latency: None,
            latency_rate: None,
            panic_rate: None,
            calls: None,
            enabled: true,
        }
    }

    /// Calls fail with `make()` instead of running (at
    /// [`error_rate`](Self::error_rate), 1 unless set). `E` must be the
    /// injected function's error type: an injection into a function with
    /// another error type is skipped there, with a warning naming both types.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new()
    ///     .error(|| std::io::Error::other("injected"));
    /// ```
    pub fn error<E: 'static>(mut self, make: impl Fn() -> E + Send + Sync + 'static) -> Self {
        self.error = Some(Source::Given(Maker::new(make)));
        self
    }

    /// Calls fail with the error registered as `name` in the registry's
    /// [`errors`](super::Chaos::errors) catalog (what a file's `error = "…"`
    /// does); an unknown name fails [`inject`](super::Chaos::inject).
    ///
    /// ```
    /// resilience::chaos::errors().register("named-error-doc", || std::io::ErrorKind::TimedOut);
    /// let injection = resilience::chaos::Injection::new().named_error("named-error-doc");
    /// resilience::chaos::inject("named-error-doc-site", injection)?;
    /// # Ok::<(), resilience::chaos::InjectionError>(())
    /// ```
    pub fn named_error(mut self, name: impl Into<String>) -> Self {
        self.error = Some(Source::Named(name.into()));
        self
    }

    /// The share of calls (0 to 1) that fail with the injected error.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new()
    ///     .error(|| std::io::Error::other("injected"))
    ///     .error_rate(0.25);
    /// ```
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = Some(rate);
        self
    }

    /// Calls return `Ok(make())` instead of running (at
    /// [`value_rate`](Self::value_rate), 1 unless set). `T` must be the
    /// injected function's `Ok` type.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new().value(|| 42_u32);
    /// ```
    pub fn value<T: 'static>(mut self, make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        self.value = Some(Source::Given(Maker::new(make)));
        self
    }

    /// Calls return the value registered as `name` in the registry's
    /// [`values`](super::Chaos::values) catalog (a file's `value = "…"`).
    ///
    /// ```
    /// resilience::chaos::values().register("named-value-doc", || 0_u32);
    /// let injection = resilience::chaos::Injection::new().named_value("named-value-doc");
    /// ```
    pub fn named_value(mut self, name: impl Into<String>) -> Self {
        self.value = Some(Source::Named(name.into()));
        self
    }

    /// The share of calls (0 to 1) that return the injected value.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new().value(|| 42_u32).value_rate(0.5);
    /// ```
    pub fn value_rate(mut self, rate: f64) -> Self {
        self.value_rate = Some(rate);
        self
    }

    /// Calls wait `latency` (on the `tokio` clock; a synchronous function
    /// sleeps its thread) before anything else, at
    /// [`latency_rate`](Self::latency_rate), 1 unless set. At most one hour.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new()
    ///     .latency(std::time::Duration::from_millis(200));
    /// ```
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// The share of calls (0 to 1) delayed by the injected latency.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new()
    ///     .latency(std::time::Duration::from_secs(2))
    ///     .latency_rate(0.1);
    /// ```
    pub fn latency_rate(mut self, rate: f64) -> Self {
        self.latency_rate = Some(rate);
        self
    }

    /// The share of calls (0 to 1) that panic instead of running, as the
    /// body would: a breaker records the panic as a failure and the panic
    /// keeps unwinding.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new().panic_rate(0.01);
    /// ```
    pub fn panic_rate(mut self, rate: f64) -> Self {
        self.panic_rate = Some(rate);
        self
    }

    /// Only the next `calls` calls (each attempt of a retry is a call) see
    /// the injection; then it turns itself off. At least 1.
    ///
    /// ```
    /// let injection = resilience::chaos::Injection::new().panic_rate(1.0).calls(3);
    /// ```
    pub fn calls(mut self, calls: u64) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Whether the injection starts switched on (the default); switch it
    /// later with [`Chaos::enable`](super::Chaos::enable) and
    /// [`Chaos::disable`](super::Chaos::disable).
    ///
    /// ```
    /// let armed_later = resilience::chaos::Injection::new().panic_rate(1.0).enabled(false);
    /// ```
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Every problem of the keys, each with its key (`""`: the entry as a
    /// whole).
    pub(crate) fn check(&self) -> Vec<InjectionProblem> {
        let mut out = Vec::new();
        let rates = [
            ("error_rate", self.error_rate, self.error.is_some(), "error"),
            ("value_rate", self.value_rate, self.value.is_some(), "value"),
            (
                "latency_rate",
                self.latency_rate,
                self.latency.is_some(),
                "latency",
            ),
            ("panic_rate", self.panic_rate, true, ""),
        ];
        for (key, rate, has_fault, fault) in rates {
            let Some(rate) = rate else { continue };
            if !(0.0..=1.0).contains(&rate) {
                let problem = Problem::NumberOutOfRange {
                    key,
                    found: rate,
                    min: 0.0,
                    max: 1.0,
                };
                out.push(InjectionProblem::new(key, problem.to_string()));
            } else if !has_fault {
                out.push(InjectionProblem::new(
                    key,
                    format!("`{key}` needs `{fault}`: the {fault} to inject at this rate"),
                ));
            }
        }
        if let Some(latency) = self.latency {
            let problem = if latency.is_zero() {
                Some(Problem::NotPositive { key: "latency" })
            } else if latency > MAX_LATENCY {
                Some(Problem::DurationOutOfRange {
                    key: "latency",
                    found: latency,
                    min: Duration::from_nanos(1),
                    max: MAX_LATENCY,
                })
            } else {
                None
            };
            out.extend(problem.map(|p| InjectionProblem::new("latency", p.to_string())));
        }
        if self.calls == Some(0) {
            let problem = Problem::Zero { key: "calls" };
            out.push(InjectionProblem::new("calls", problem.to_string()));
        }
        if self.error.is_none()
            && self.value.is_none()
            && self.latency.is_none()
            && self.panic_rate.is_none()
        {
            out.push(InjectionProblem::new(
                "",
                "nothing to inject: give `error`, `value`, `latency` or `panic_rate`",
            ));
        }
        out
    }

    /// The constructors, found in the catalogs by name where named.
    pub(crate) fn resolve(
        &self,
        errors: &Catalog,
        values: &Catalog,
    ) -> (Option<Maker>, Option<Maker>, Vec<InjectionProblem>) {
        let mut problems = Vec::new();
        let mut find = |source: &Option<Source>, catalog: &Catalog, key| match source {
            None => None,
            Some(Source::Given(maker)) => Some(maker.clone()),
            Some(Source::Named(name)) => match catalog.get(name) {
                Ok(maker) => Some(maker),
                Err(message) => {
                    problems.push(InjectionProblem::new(key, message));
                    None
                }
            },
        };
        let error = find(&self.error, errors, "error");
        let value = find(&self.value, values, "value");
        (error, value, problems)
    }
}

/// One problem of an [`Injection`]: its key (`error_rate`; empty when about
/// the injection as a whole) and what is wrong, in the words the settings
/// use.
///
/// ```
/// use resilience::chaos::Injection;
///
/// let err = resilience::chaos::inject("problem-doc", Injection::new().latency_rate(0.5)).unwrap_err();
/// let problem = &err.problems()[0];
/// assert_eq!(problem.key(), "latency_rate");
/// assert_eq!(problem.to_string(), "`latency_rate` needs `latency`: the latency to inject at this rate");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionProblem {
    key: &'static str,
    message: String,
}

impl InjectionProblem {
    pub(crate) fn new(key: &'static str, message: impl Into<String>) -> Self {
        InjectionProblem {
            key,
            message: message.into(),
        }
    }

    /// The key: `error_rate`, `calls`; `""` for the injection as a whole.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let err = resilience::chaos::inject("problem-key-doc", Injection::new().panic_rate(2.0)).unwrap_err();
    /// assert_eq!(err.problems()[0].key(), "panic_rate");
    /// ```
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// What is wrong.
    ///
    /// ```
    /// use resilience::chaos::Injection;
    ///
    /// let err = resilience::chaos::inject("problem-message-doc", Injection::new().panic_rate(2.0)).unwrap_err();
    /// assert_eq!(err.problems()[0].message(), "`panic_rate` must be between 0 and 1, found 2");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for InjectionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An [`Injection`] that was not put in force, with every problem found;
/// what was injected under the name before stays.
///
/// ```
/// use resilience::chaos::Injection;
///
/// let err = resilience::chaos::inject("error-doc", Injection::new().named_error("nope").calls(0))
///     .unwrap_err();
/// assert_eq!(err.problems().len(), 2);
/// assert!(err.to_string().starts_with("invalid chaos injection for `error-doc`: "), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionError {
    name: String,
    problems: Vec<InjectionProblem>,
}

impl InjectionError {
    pub(crate) fn new(name: &str, problems: Vec<InjectionProblem>) -> Self {
        InjectionError {
            name: name.to_owned(),
            problems,
        }
    }

    /// The name the injection was for.
    ///
    /// ```
    /// let err = resilience::chaos::inject("error-name-doc", resilience::chaos::Injection::new())
    ///     .unwrap_err();
    /// assert_eq!(err.name(), "error-name-doc");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each problem, in the order of the keys.
    ///
    /// ```
    /// let err = resilience::chaos::inject("error-problems-doc", resilience::chaos::Injection::new())
    ///     .unwrap_err();
    /// assert_eq!(err.problems()[0].message(), "nothing to inject: give `error`, `value`, `latency` or `panic_rate`");
    /// ```
    pub fn problems(&self) -> &[InjectionProblem] {
        &self.problems
    }
}

impl fmt::Display for InjectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid chaos injection for `{}`: ", self.name)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InjectionError {}
