//! Every annotated call site of the program, listed at link time.
//!
//! Each `#[circuit_breaker]`, `#[retry]`, `#[timeout]`, `#[bulkhead]` and
//! `#[resilient]` function adds one [`CallSite`] per layer it puts around its
//! body (a `#[resilient]` with a breaker, a retry and a timeout adds three;
//! stacked attributes add one each): what kind of layer, the name it is found
//! by, the keys written in the attribute, the function and where it is. The
//! list is complete before `main` runs and before any annotated function is
//! called, so the runtime can act on every call site at once:
//!
//! - **Callbacks belong to the breaker from the start.** When the registry
//!   creates the breaker of a static name (a call site, [`Registry::breaker`],
//!   [`Registry::configure`]), it attaches the `on_open` / `on_close` /
//!   `on_half_open` of every call site declaring that name before anyone can
//!   use it, whichever call site runs first.
//! - Tools can read the declared policies (names, keys, locations) without
//!   running the code, e.g. to check a configuration file against the names
//!   the program declares.
//!
//! ```
//! use resilience::manifest::{self, Kind, Name};
//!
//! #[derive(Debug)]
//! struct ApiError;
//! impl From<resilience::Error> for ApiError {
//!     fn from(_: resilience::Error) -> Self { ApiError }
//! }
//!
//! fn page(t: &resilience::Transition) {
//!     eprintln!("{} opened", t.name);
//! }
//!
//! #[resilience::circuit_breaker(name = "inventory", failure_threshold = 3, on_open = page)]
//! async fn fetch() -> Result<u32, ApiError> {
//!     Ok(1)
//! }
//!
//! // Listed although `fetch` never ran.
//! let site = manifest::call_sites()
//!     .find(|s| s.kind() == Kind::CircuitBreaker && s.name() == Name::Static("inventory"))
//!     .expect("declared");
//! assert_eq!(site.function(), "fetch");
//! assert_eq!(site.key("failure_threshold"), Some("3"));
//! assert_eq!(site.key("on_open"), Some("page"));
//! assert!(site.on_open().is_some());
//! assert!(site.file().ends_with(".rs") && site.line() > 0);
//! ```
//!
//! # How the list is built
//!
//! Each expansion adds a `static` to a distributed slice of the
//! [`linkme`](https://docs.rs/linkme) crate: the linker gathers them into one
//! section of the binary, which this module reads as a plain
//! `&'static [CallSite]`. There is no code running before `main` (unlike
//! constructor-based registries such as `inventory`), reading the list
//! allocates nothing and works at any time, and it works the same in
//! binaries, tests, examples and doc tests on Linux, macOS and Windows
//! targets. Your crate needs no dependency of its own for it.
//!
//! One caveat of any link-time list: the linker only keeps the code of a
//! library that the program uses. Call sites in the part of a dependency the
//! program never links in are absent; they can never run either.
//!
//! [`Registry::breaker`]: crate::Registry::breaker
//! [`Registry::configure`]: crate::Registry::configure

use std::fmt;
use std::sync::OnceLock;

use crate::__private::{
    StaticBreaker, StaticBulkhead, StaticRateLimiter, StaticRetry, StaticTimeout,
};
use crate::breaker::{BreakerConfig, CircuitBreaker, CircuitState, Transition};

/// The link-time list itself (expansions add to it through
/// `resilience::__private`); read it with [`call_sites`].
#[doc(hidden)]
#[linkme::distributed_slice]
pub static __CALL_SITES: [CallSite];

/// Every annotated call site of the program, one entry per layer, in no
/// particular order.
///
/// ```
/// #[resilience::retry(max_attempts = 2)]
/// async fn fetch() -> std::io::Result<()> {
///     Ok(())
/// }
///
/// for site in resilience::manifest::call_sites() {
///     println!("{site}"); // `#[retry] on my_crate::fetch (src/lib.rs:1): max_attempts = 2`
/// }
/// assert!(resilience::manifest::call_sites().any(|s| s.function() == "fetch"));
/// ```
pub fn call_sites() -> impl Iterator<Item = &'static CallSite> {
    __CALL_SITES.iter()
}

/// What a [`CallSite`] puts around the function's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A circuit breaker (`#[circuit_breaker]`, or `#[resilient]`'s breaker).
    CircuitBreaker,
    /// A retry (`#[retry]`, or `#[resilient]`'s retry).
    Retry,
    /// A timeout (`#[timeout]`, or `#[resilient(timeout = ..)]`).
    Timeout,
    /// A bulkhead (`#[bulkhead]`, or `#[resilient(max_concurrent = ..)]`).
    Bulkhead,
    /// A rate limiter (`#[rate_limit]`).
    RateLimit,
    /// Request coalescing (`#[coalesce]`).
    Coalesce,
    /// Hedged requests (`#[hedge]`).
    Hedge,
    /// A `fallback = path` of any attribute.
    Fallback,
}

impl Kind {
    /// `"circuit_breaker"`, `"retry"`, `"timeout"`, `"bulkhead"`,
    /// `"rate_limit"`, `"coalesce"`, `"hedge"` or `"fallback"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Retry => "retry",
            Kind::Timeout => "timeout",
            Kind::Bulkhead => "bulkhead",
            Kind::RateLimit => "rate_limit",
            Kind::Coalesce => "coalesce",
            Kind::Hedge => "hedge",
            Kind::Fallback => "fallback",
        }
    }
}

/// The name a layer is found by at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Name {
    /// A literal (`name = "inventory"`): one policy per name, shared by every
    /// call site declaring it. A retry reports under its breaker's static name
    /// when the breaker is outside it.
    Static(&'static str),
    /// An expression evaluated per call (`name = self.tenant.as_str()`),
    /// given as its source text.
    Dynamic(&'static str),
    /// No name: the layer's default one, derived from the function (for a
    /// breaker, see [`circuit_breaker`](crate::circuit_breaker)'s `name`).
    Default,
}

impl Name {
    /// The literal name, if it is one.
    pub const fn as_static(self) -> Option<&'static str> {
        match self {
            Name::Static(name) => Some(name),
            _ => None,
        }
    }
}

/// What configures a call site's layer (for the configuration by name):
/// the statics of its expansion. Used by the expansions; not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Nothing to configure (a fallback).
    None,
    /// A breaker of a static name, or of no name.
    Breaker(&'static StaticBreaker),
    /// The configuration of a dynamic-name breaker.
    DynamicBreaker(&'static BreakerConfig),
    /// A retry.
    Retry(&'static StaticRetry),
    /// A timeout.
    Timeout(&'static StaticTimeout),
    /// A bulkhead.
    Bulkhead(&'static StaticBulkhead),
    /// An adaptive bulkhead.
    Adaptive(&'static crate::__private::StaticAdaptive),
    /// A rate limiter.
    RateLimit(&'static StaticRateLimiter),
    /// Request coalescing.
    Coalesce(&'static crate::Coalescer),
    /// A hedge.
    Hedge(&'static crate::__private::StaticHedge),
}

/// A transition callback (`on_open = path`).
pub type Callback = fn(&Transition);

/// One layer of one annotated function: see the [module docs](self).
#[derive(Clone, Copy)]
pub struct CallSite {
    kind: Kind,
    attribute: &'static str,
    name: Name,
    keys: &'static [(&'static str, &'static str)],
    module: &'static str,
    function: &'static str,
    file: &'static str,
    line: u32,
    on_open: Option<Callback>,
    on_close: Option<Callback>,
    on_half_open: Option<Callback>,
    policy: Policy,
}

impl CallSite {
    /// Used by the expansions; not public API.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        kind: Kind,
        attribute: &'static str,
        name: Name,
        keys: &'static [(&'static str, &'static str)],
        module: &'static str,
        function: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        CallSite {
            kind,
            attribute,
            name,
            keys,
            module,
            function,
            file,
            line,
            on_open: None,
            on_close: None,
            on_half_open: None,
            policy: Policy::None,
        }
    }

    /// Used by the expansions; not public API.
    #[doc(hidden)]
    pub const fn __policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// What configures this layer.
    pub(crate) const fn policy(&self) -> Policy {
        self.policy
    }

    /// The settings in force for this layer, with every key (the attribute's
    /// keys under the configuration by name, see
    /// [`Registry::apply`](crate::Registry::apply)): `failure_threshold = 3,
    /// recovery_timeout = 30s, …` for a breaker. `None` for a fallback and
    /// for a dynamic-name breaker (one per name, listed in the snapshot).
    pub fn settings(&self) -> Option<String> {
        let registry = crate::registry();
        match self.policy {
            Policy::Breaker(site) => {
                let name = match self.name {
                    Name::Static(name) => name.to_owned(),
                    _ => format!("{}::{}", self.module, self.function),
                };
                let config = match registry.get(&name) {
                    Some(breaker) => *breaker.config(),
                    None => registry.breaker_in_force(&name, &site.config().values()),
                };
                Some(config.to_string())
            }
            Policy::Retry(site) => Some(site.get().to_string()),
            Policy::Timeout(site) => Some(format!("timeout = {:?}", site.get())),
            Policy::Bulkhead(site) => {
                let (max, wait) = match registry.get_bulkhead(site.name()) {
                    Some(b) => (b.max_concurrent(), b.max_wait()),
                    None => registry.bulkhead_in_force(site.name(), site.values()),
                };
                Some(format!("max_concurrent = {max}, max_wait = {wait:?}"))
            }
            Policy::RateLimit(site) => Some(match registry.get_rate_limiter(site.name()) {
                Some(limiter) => limiter.config().to_string(),
                None => registry
                    .rate_limit_in_force(site.name(), &site.values())
                    .to_string(),
            }),
            Policy::Adaptive(site) => {
                let c = site.config();
                Some(format!(
                    "max_concurrent = \"adaptive\" ({}), min_limit = {}, max_limit = {}, initial_limit = {}, max_wait = {:?}",
                    c.algorithm().name(),
                    c.min_limit(),
                    c.max_limit(),
                    c.initial_limit(),
                    c.max_wait()
                ))
            }
            Policy::Hedge(site) => Some(match registry.get_hedge(site.name()) {
                Some(hedge) => hedge.config().to_string(),
                None => registry
                    .hedge_in_force(site.name(), &site.values())
                    .to_string(),
            }),
            Policy::DynamicBreaker(_) | Policy::Coalesce(_) | Policy::None => None,
        }
    }

    /// Used by the expansions; not public API.
    #[doc(hidden)]
    pub const fn __callbacks(
        mut self,
        on_open: Option<Callback>,
        on_close: Option<Callback>,
        on_half_open: Option<Callback>,
    ) -> Self {
        self.on_open = on_open;
        self.on_close = on_close;
        self.on_half_open = on_half_open;
        self
    }

    /// What this layer is.
    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// The attribute it was written in, without `#[]`: `"circuit_breaker"`,
    /// `"retry"`, `"timeout"`, `"bulkhead"` or `"resilient"`.
    pub const fn attribute(&self) -> &'static str {
        self.attribute
    }

    /// The name the layer is found by.
    pub const fn name(&self) -> Name {
        self.name
    }

    /// The keys written for this layer, with their values' source text
    /// (whitespace normalised), in the order written: `("failure_threshold",
    /// "5")`, `("recovery_timeout", "\"30s\"")`, `("on_open", "alert")`. A
    /// `#[resilient]` attribute's keys are split among its layers;
    /// `#[timeout("30s")]` lists its duration as `("timeout", "\"30s\"")`.
    pub const fn keys(&self) -> &'static [(&'static str, &'static str)] {
        self.keys
    }

    /// The source text of `key`'s value, if the key was written.
    pub fn key(&self, key: &str) -> Option<&'static str> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The function's module (`module_path!()`): `mycrate::adapters`.
    pub const fn module(&self) -> &'static str {
        self.module
    }

    /// The function's name: `fetch_report`.
    pub const fn function(&self) -> &'static str {
        self.function
    }

    /// The file of the attribute (`file!()`).
    pub const fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the attribute (`line!()`).
    pub const fn line(&self) -> u32 {
        self.line
    }

    /// A breaker's `on_open` callback.
    pub const fn on_open(&self) -> Option<Callback> {
        self.on_open
    }

    /// A breaker's `on_close` callback.
    pub const fn on_close(&self) -> Option<Callback> {
        self.on_close
    }

    /// A breaker's `on_half_open` callback.
    pub const fn on_half_open(&self) -> Option<Callback> {
        self.on_half_open
    }

    fn has_callbacks(&self) -> bool {
        self.on_open.is_some() || self.on_close.is_some() || self.on_half_open.is_some()
    }

    /// Attaches this call site's callbacks to `breaker`.
    pub(crate) fn attach_callbacks(&self, breaker: &CircuitBreaker) {
        for (callback, state) in [
            (self.on_open, CircuitState::Open),
            (self.on_close, CircuitState::Closed),
            (self.on_half_open, CircuitState::HalfOpen),
        ] {
            if let Some(callback) = callback {
                breaker.on_transition(move |t| {
                    if t.to == state {
                        callback(t);
                    }
                });
            }
        }
    }

    /// Whether an unnamed breaker of this call site can have `name` as its
    /// default name: `module::function` or `module::Type::function`,
    /// optionally with a `#2`-style suffix.
    pub(crate) fn may_have_default_name(&self, name: &str) -> bool {
        if self.kind != Kind::CircuitBreaker || self.name != Name::Default {
            return false;
        }
        let name = match name.rsplit_once('#') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => name,
        };
        let Some(rest) = name
            .strip_prefix(self.module)
            .and_then(|r| r.strip_prefix("::"))
            .and_then(|r| r.strip_suffix(self.function))
        else {
            return false;
        };
        match rest.strip_suffix("::") {
            None => rest.is_empty(),
            Some(ty) => !ty.is_empty() && !ty.contains("::"),
        }
    }
}

/// One call site in a [`Snapshot`](crate::Snapshot): where it is, what it
/// is called, and the settings in force for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteStatus {
    /// The layer: `circuit_breaker`, `retry`, `timeout`, `bulkhead` or `fallback`.
    pub kind: &'static str,
    /// The name it is configured by: a literal, a default name
    /// (`module::function`), or a dynamic name's expression.
    pub name: String,
    /// `module::function`.
    pub function: String,
    /// `file:line` of the attribute.
    pub location: String,
    /// See [`CallSite::settings`].
    pub settings: Option<String>,
}

impl CallSite {
    /// This call site as the snapshot shows it.
    pub fn status(&self) -> SiteStatus {
        SiteStatus {
            kind: self.kind.as_str(),
            name: match self.name {
                Name::Static(name) => name.to_owned(),
                Name::Dynamic(expr) => format!("{{{expr}}}"),
                Name::Default => format!("{}::{}", self.module, self.function),
            },
            function: format!("{}::{}", self.module, self.function),
            location: format!("{}:{}", self.file, self.line),
            settings: self.settings(),
        }
    }
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite")
            .field("kind", &self.kind)
            .field("attribute", &self.attribute)
            .field("name", &self.name)
            .field("keys", &self.keys)
            .field("module", &self.module)
            .field("function", &self.function)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("on_open", &self.on_open.is_some())
            .field("on_close", &self.on_close.is_some())
            .field("on_half_open", &self.on_half_open.is_some())
            .finish()
    }
}

/// `#[circuit_breaker] on adapters::fetch (src/adapters.rs:12): name = "inventory", on_open = alert`
impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#[{}]", self.attribute)?;
        if self.attribute != self.kind.as_str() {
            write!(f, " {}", self.kind.as_str())?;
        }
        write!(
            f,
            " on {}::{} ({}:{})",
            self.module, self.function, self.file, self.line
        )?;
        for (i, (key, value)) in self.keys.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{key} = {value}")?;
        }
        Ok(())
    }
}

/// The breaker call sites with a static name and at least one callback
/// (computed once: usually a handful).
fn static_breakers_with_callbacks() -> &'static [&'static CallSite] {
    static LIST: OnceLock<Vec<&'static CallSite>> = OnceLock::new();
    LIST.get_or_init(|| {
        call_sites()
            .filter(|s| {
                s.kind == Kind::CircuitBreaker
                    && matches!(s.name, Name::Static(_))
                    && s.has_callbacks()
            })
            .collect()
    })
}

/// Attaches the callbacks of every breaker call site declaring `breaker`'s
/// name as its static name, once each.
pub(crate) fn attach_declared_callbacks(breaker: &CircuitBreaker) {
    for site in static_breakers_with_callbacks() {
        if matches!(site.name, Name::Static(name) if name == breaker.name()) {
            site.attach_callbacks(breaker);
        }
    }
}

/// Whether `name` can be the default name of an unnamed breaker call site.
pub(crate) fn is_default_breaker_name(name: &str) -> bool {
    call_sites().any(|s| s.may_have_default_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(module: &'static str, function: &'static str) -> CallSite {
        CallSite::__new(
            Kind::CircuitBreaker,
            "circuit_breaker",
            Name::Default,
            &[],
            module,
            function,
            "f.rs",
            1,
        )
    }

    #[test]
    fn default_names_of_an_unnamed_call_site() {
        let s = site("app::adapters", "fetch");
        for name in [
            "app::adapters::fetch",
            "app::adapters::Api::fetch",
            "app::adapters::Api::fetch#2",
            "app::adapters::fetch#12",
        ] {
            assert!(s.may_have_default_name(name), "{name}");
        }
        for name in [
            "app::adapters",
            "app::adapters::fetc",
            "app::adapters::xfetch",
            "app::adapters::a::B::fetch",
            "app::adapters::::fetch",
            "app::adaptersX::fetch",
            "app::adapters::fetch#",
            "app::adapters::fetch#x",
            "other::fetch",
        ] {
            assert!(!s.may_have_default_name(name), "{name}");
        }
        let named = CallSite {
            name: Name::Static("app::adapters::fetch"),
            ..s
        };
        assert!(!named.may_have_default_name("app::adapters::fetch"));
    }

    #[test]
    fn display_reads_like_the_attribute() {
        let s = CallSite {
            keys: &[("name", "\"db\""), ("failure_threshold", "3")],
            name: Name::Static("db"),
            attribute: "resilient",
            ..site("app", "get")
        };
        assert_eq!(
            s.to_string(),
            "#[resilient] circuit_breaker on app::get (f.rs:1): name = \"db\", failure_threshold = 3"
        );
    }
}
