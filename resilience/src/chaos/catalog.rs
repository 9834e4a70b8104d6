//! Named constructors of errors and `Ok` values: what a configuration file
//! names (`error = "unavailable"`), since a file cannot build a value of the
//! program's types.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

/// A constructor of values of one type, with the type erased: an
/// `Arc<dyn Fn() -> T + Send + Sync>` behind `dyn Any`, found again by
/// downcasting to the function's own type at the injection point. Not
/// public API: what the attributes' expansions hand to their error type.
#[derive(Clone)]
pub struct Maker {
    make: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl Maker {
    pub(crate) fn new<T: 'static>(make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        let make: Arc<dyn Fn() -> T + Send + Sync> = Arc::new(make);
        Maker {
            make: Arc::new(make),
            type_name: std::any::type_name::<T>(),
        }
    }

    /// A new value, if `T` is the type this constructor makes.
    #[inline]
    pub(crate) fn make<T: 'static>(&self) -> Option<T> {
        self.make
            .downcast_ref::<Arc<dyn Fn() -> T + Send + Sync>>()
            .map(|make| make())
    }

    /// The type it makes (`my_app::ApiError`).
    pub(crate) fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The same constructor (not only the same type).
    pub(crate) fn same(&self, other: &Maker) -> bool {
        Arc::ptr_eq(&self.make, &other.make)
    }
}

impl fmt::Debug for Maker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Maker({})", self.type_name)
    }
}

/// Named constructors of one kind (errors, or `Ok` values) that injections
/// refer to by name: [`errors()`](super::errors) and
/// [`values()`](super::values), or a registry's
/// [`Chaos::errors`](super::Chaos::errors) and [`Chaos::values`](super::Chaos::values).
///
/// ```
/// #[derive(Debug)]
/// enum ApiError { Unavailable, RateLimited }
///
/// resilience::chaos::errors()
///     .register("unavailable", || ApiError::Unavailable)
///     .register("rate-limited", || ApiError::RateLimited);
/// assert!(resilience::chaos::errors().contains("unavailable"));
/// ```
pub struct Catalog {
    /// `"error"` or `"value"`, for messages.
    kind: &'static str,
    makers: RwLock<BTreeMap<String, Maker>>,
}

impl Catalog {
    pub(crate) fn new(kind: &'static str) -> Self {
        Catalog {
            kind,
            makers: RwLock::default(),
        }
    }

    /// Registers `make` under `name`, replacing what was registered under
    /// it; injections that already use the old constructor keep it until
    /// they are injected again. Returns the catalog, to register several.
    ///
    /// The values' type must be the injected function's own error type (its
    /// `Ok` type, for values): an injection whose constructor makes another
    /// type is skipped, with a warning naming both types.
    ///
    /// ```
    /// resilience::chaos::values().register("no-devices", Vec::<String>::new);
    /// ```
    pub fn register<T: 'static>(
        &self,
        name: impl Into<String>,
        make: impl Fn() -> T + Send + Sync + 'static,
    ) -> &Self {
        self.makers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), Maker::new(make));
        self
    }

    /// Whether a constructor is registered under `name`.
    ///
    /// ```
    /// assert!(!resilience::chaos::errors().contains("never-registered"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The registered names, sorted.
    ///
    /// ```
    /// resilience::chaos::errors().register("catalog-doc-timeout", || std::io::ErrorKind::TimedOut);
    /// assert!(resilience::chaos::errors().names().contains(&"catalog-doc-timeout".to_owned()));
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The constructor named `name`, or what to say about the name.
    pub(crate) fn get(&self, name: &str) -> Result<Maker, String> {
        let makers = self.read();
        if let Some(maker) = makers.get(name) {
            return Ok(maker.clone());
        }
        let kind = self.kind;
        Err(
            match resilience_spec::did_you_mean(name, makers.keys().map(String::as_str)) {
                Some(near) => {
                    format!("no {kind} named `{name}` is registered: did you mean `{near}`?")
                }
                None if makers.is_empty() => format!(
                    "no {kind} named `{name}` is registered (no {kind} is: the program registers them with `resilience::chaos::{kind}s().register(\"{name}\", || …)`)"
                ),
                None => format!(
                    "no {kind} named `{name}` is registered; registered {kind}s: {}",
                    makers
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Maker>> {
        self.makers.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.read().iter().map(|(k, m)| (k, m.type_name)))
            .finish()
    }
}
