//! An injection in force: its faults resolved, its switch and its count of
//! calls left, what it injected so far, and the draw of one call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::catalog::Maker;
use super::{Chaos, Injection};

/// A kind of injected fault, as `tracing` events and the
/// `resilience_chaos_injected_total` counter name it (`fault` label).
///
/// ```
/// use resilience::chaos::Fault;
///
/// assert_eq!(Fault::Error.to_string(), "error");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// An error instead of the body's result.
    Error,
    /// An `Ok` value instead of the body's result.
    Value,
    /// Latency before the call.
    Latency,
    /// A panic instead of the body.
    Panic,
}

impl Fault {
    /// `"error"`, `"value"`, `"latency"`, `"panic"`.
    ///
    /// ```
    /// assert_eq!(resilience::chaos::Fault::Latency.as_str(), "latency");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Value => "value",
            Fault::Latency => "latency",
            Fault::Panic => "panic",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an injection did so far ([`Chaos::status`]).
///
/// ```
/// use resilience::chaos::Injection;
///
/// let registry = resilience::Registry::new();
/// registry.chaos().inject("db", Injection::new().panic_rate(0.5).calls(10))?;
/// let status = registry.chaos().status("db").unwrap();
/// assert_eq!((status.name.as_str(), status.calls_left, status.panics), ("db", Some(10), 0));
/// assert!(status.active && status.enabled && !status.from_settings);
/// # Ok::<(), resilience::chaos::InjectionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InjectionStatus {
    /// The policy name.
    pub name: String,
    /// Switched on, with calls left.
    pub active: bool,
    /// The switch ([`Chaos::enable`], [`Chaos::disable`]).
    pub enabled: bool,
    /// Calls left before it turns itself off, when limited.
    pub calls_left: Option<u64>,
    /// Calls it saw while active.
    pub calls: u64,
    /// Errors injected.
    pub errors: u64,
    /// `Ok` values injected.
    pub values: u64,
    /// Calls delayed.
    pub latencies: u64,
    /// Panics injected.
    pub panics: u64,
    /// Errors or values not injected because the function's type is not the
    /// constructor's (each such function is warned about once).
    pub skipped: u64,
    /// Put in force by [`Registry::apply`](crate::Registry::apply) (a
    /// configuration file), not by code.
    pub from_settings: bool,
}

/// "No limit" in `calls_left`.
const UNLIMITED: u64 = u64::MAX;

/// An injection in force in one [`Chaos`] table.
#[derive(Debug)]
pub(crate) struct Armed {
    pub(crate) name: Arc<str>,
    error: Option<(Maker, f64)>,
    value: Option<(Maker, f64)>,
    latency: Option<(Duration, f64)>,
    panic_rate: f64,
    /// What it was made from (`apply` keeps an unchanged one as it is).
    pub(crate) spec: Injection,
    pub(crate) from_settings: bool,
    enabled: AtomicBool,
    calls_left: AtomicU64,
    /// Counted in the table's and the process's active injections.
    active: AtomicBool,
    seen: AtomicU64,
    injected: [AtomicU64; 4],
    skipped: AtomicU64,
    /// Functions warned about (a mismatched or borrowed type), by name.
    warned: Mutex<Vec<&'static str>>,
}

impl Armed {
    pub(crate) fn new(
        name: &str,
        spec: Injection,
        error: Option<Maker>,
        value: Option<Maker>,
        from_settings: bool,
    ) -> Self {
        Armed {
            name: Arc::from(name),
            error: error.map(|m| (m, spec.error_rate.unwrap_or(1.0))),
            value: value.map(|m| (m, spec.value_rate.unwrap_or(1.0))),
            latency: spec.latency.map(|d| (d, spec.latency_rate.unwrap_or(1.0))),
            panic_rate: spec.panic_rate.unwrap_or(0.0),
            from_settings,
            enabled: AtomicBool::new(spec.enabled),
            calls_left: AtomicU64::new(spec.calls.unwrap_or(UNLIMITED)),
            active: AtomicBool::new(false),
            seen: AtomicU64::new(0),
            injected: Default::default(),
            skipped: AtomicU64::new(0),
            warned: Mutex::default(),
            spec,
        }
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts it in (or out of) the active injections, as its switch and
    /// calls left say.
    pub(crate) fn refresh(&self, table: &Chaos) {
        let active =
            self.enabled.load(Ordering::Acquire) && self.calls_left.load(Ordering::Acquire) > 0;
        self.set_active(table, active);
    }

    pub(crate) fn set_active(&self, table: &Chaos, active: bool) {
        if self.active.swap(active, Ordering::AcqRel) != active {
            table.count_active(active);
        }
    }

    pub(crate) fn set_enabled(&self, table: &Chaos, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
        self.refresh(table);
    }

    /// One call's draw; `None` when the injection ran out meanwhile.
    pub(crate) fn draw(self: &Arc<Self>, table: &Chaos) -> Option<Decision> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let taken =
            self.calls_left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
                    0 => None,
                    UNLIMITED => Some(UNLIMITED),
                    n => Some(n - 1),
                });
        match taken {
            Err(_) => {
                self.set_active(table, false);
                return None;
            }
            Ok(1) => self.set_active(table, false), // this call is the last
            Ok(_) => {}
        }
        self.seen.fetch_add(1, Ordering::Relaxed);
        let hits = |rate: f64| rate >= 1.0 || (rate > 0.0 && table.draw() < rate);
        let latency = self.latency.and_then(|(d, rate)| hits(rate).then_some(d));
        let outcome = if self.panic_rate > 0.0 && hits(self.panic_rate) {
            Planned::Panic
        } else if self.error.as_ref().is_some_and(|(_, rate)| hits(*rate)) {
            Planned::Error
        } else if self.value.as_ref().is_some_and(|(_, rate)| hits(*rate)) {
            Planned::Value
        } else {
            Planned::Body
        };
        if latency.is_none() && outcome == Planned::Body {
            return None;
        }
        Some(Decision {
            armed: Arc::clone(self),
            latency,
            outcome,
        })
    }

    fn record(&self, fault: Fault, function: &'static str) {
        self.injected[fault as usize].fetch_add(1, Ordering::Relaxed);
        crate::metrics::chaos_injected(&self.name, fault.as_str());
        tracing::info!(
            target: "resilience",
            injected = true,
            name = &*self.name,
            fault = fault.as_str(),
            function,
            "chaos: {fault} injected into `{function}` (injection `{}`)",
            self.name
        );
    }

    /// An error or value not injected into `function`; warned about once
    /// per function.
    fn skip(&self, function: &'static str, message: impl FnOnce() -> String) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if !warned.contains(&function) {
            warned.push(function);
            drop(warned);
            tracing::warn!(
                target: "resilience",
                injected = false,
                name = &*self.name,
                function,
                "chaos: {}",
                message()
            );
        }
    }

    pub(crate) fn status(&self) -> InjectionStatus {
        let left = self.calls_left.load(Ordering::Acquire);
        let count = |f: Fault| self.injected[f as usize].load(Ordering::Relaxed);
        InjectionStatus {
            name: self.name.to_string(),
            active: self.is_active(),
            enabled: self.enabled.load(Ordering::Acquire),
            calls_left: (left != UNLIMITED).then_some(left),
            calls: self.seen.load(Ordering::Relaxed),
            errors: count(Fault::Error),
            values: count(Fault::Value),
            latencies: count(Fault::Latency),
            panics: count(Fault::Panic),
            skipped: self.skipped.load(Ordering::Relaxed),
            from_settings: self.from_settings,
        }
    }
}

/// What one call's draw decided beyond the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Body,
    Panic,
    Error,
    Value,
}

/// The draw of one call that an injection hits: latency to add first, then
/// the outcome in place of the body's (if any).
#[derive(Debug)]
pub(crate) struct Decision {
    armed: Arc<Armed>,
    latency: Option<Duration>,
    outcome: Planned,
}

/// Whether a function's error (or `Ok`) type can take an injected value: the
/// value made, or why not.
#[derive(Debug)]
pub enum Typed<T> {
    /// The injected value.
    Made(T),
    /// The constructor makes another type than the function's (`wanted`).
    Mismatch {
        /// The function's type.
        wanted: &'static str,
    },
    /// The function's type cannot take an injected value: its tokens show
    /// a lifetime, a reference, `Self` or a type parameter (it may borrow),
    /// or the result type is not named `Result` or `…Result`.
    Unsupported {
        /// The function's type (its whole result type when neither part
        /// can take a value).
        wanted: &'static str,
    },
}

impl Decision {
    /// The latency to add before the call, recorded as injected.
    pub(crate) fn latency(&self, function: &'static str) -> Option<Duration> {
        let latency = self.latency?;
        self.armed.record(Fault::Latency, function);
        Some(latency)
    }

    /// After the latency: the result to return instead of running the body
    /// (`None`: run it). `error` and `value` make the function's result from
    /// a constructor, when its type can; an injected panic panics here.
    pub(crate) fn outcome<R>(
        self,
        function: &'static str,
        error: impl FnOnce(&Maker) -> Typed<R>,
        value: impl FnOnce(&Maker) -> Typed<R>,
    ) -> Option<R> {
        match self.outcome {
            Planned::Body => None,
            Planned::Panic => {
                self.armed.record(Fault::Panic, function);
                let name = &self.armed.name;
                panic!("chaos: panic injected into `{function}` (injection `{name}`)");
            }
            Planned::Error => self.make(Fault::Error, function, error),
            Planned::Value => self.make(Fault::Value, function, value),
        }
    }

    fn make<R>(
        &self,
        fault: Fault,
        function: &'static str,
        make: impl FnOnce(&Maker) -> Typed<R>,
    ) -> Option<R> {
        let slot = match fault {
            Fault::Error => &self.armed.error,
            _ => &self.armed.value,
        };
        let (maker, _) = slot.as_ref()?;
        let name = &self.armed.name;
        let what = if fault == Fault::Error {
            "error"
        } else {
            "`Ok`"
        };
        match make(maker) {
            Typed::Made(result) => {
                self.armed.record(fault, function);
                Some(result)
            }
            Typed::Mismatch { wanted } => {
                self.armed.skip(function, || {
                    format!(
                        "{fault} of injection `{name}` not injected into `{function}`: it makes `{}`, the function's {what} type is `{wanted}`",
                        maker.type_name(),
                    )
                });
                None
            }
            Typed::Unsupported { wanted } => {
                self.armed.skip(function, || {
                    format!(
                        "{fault} of injection `{name}` not injected into `{function}`: `{wanted}` cannot take an injected {what} (its tokens show a lifetime, a reference, `Self` or a type parameter, or the result type is not named `Result` or `…Result`), so only latency and panics are injected there"
                    )
                });
                None
            }
        }
    }
}
