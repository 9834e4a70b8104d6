//! Circuit breaker configuration: validated once, immutable afterwards.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// How a [`CircuitBreaker`](super::CircuitBreaker) trips and recovers.
///
/// Zero counts are unrepresentable (every count is a [`NonZeroU32`]), and a zero
/// recovery timeout is rejected by [`BreakerConfigBuilder::build`].
///
/// ```
/// use std::time::Duration;
/// use resilience::BreakerConfig;
///
/// let config = BreakerConfig::builder()
///     .failure_threshold(3)
///     .recovery_timeout(Duration::from_secs(30))
///     .success_threshold(2)
///     .build()?;
/// assert_eq!(config.failure_threshold().get(), 3);
/// assert_eq!(config.half_open_max_calls().get(), 1); // default
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BreakerConfig {
    failure_threshold: NonZeroU32,
    recovery_timeout: Duration,
    success_threshold: NonZeroU32,
    half_open_max_calls: NonZeroU32,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("resilience: a count must be at least 1"),
    }
}

impl BreakerConfig {
    /// The defaults: 5 consecutive failures open the circuit, it stays open for
    /// 60 s, then 1 probe at a time is let through and 1 success closes it.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: nz(5),
        recovery_timeout: Duration::from_secs(60),
        success_threshold: nz(1),
        half_open_max_calls: nz(1),
    };

    /// A builder starting from [`BreakerConfig::DEFAULT`].
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: Self::DEFAULT,
            errors: Vec::new(),
        }
    }

    /// Builds a configuration in a `const` context; the attribute macros call
    /// this with values they already validated.
    ///
    /// # Panics
    ///
    /// At compile time (in a `const`), if a count is zero or the recovery
    /// timeout is zero. Use [`BreakerConfig::builder`] at run time.
    #[doc(hidden)]
    pub const fn __from_macro(
        failure_threshold: u32,
        recovery_timeout: Duration,
        success_threshold: u32,
        half_open_max_calls: u32,
    ) -> Self {
        assert!(
            !recovery_timeout.is_zero(),
            "resilience: recovery_timeout must be positive"
        );
        BreakerConfig {
            failure_threshold: nz(failure_threshold),
            recovery_timeout,
            success_threshold: nz(success_threshold),
            half_open_max_calls: nz(half_open_max_calls),
        }
    }

    /// Consecutive failures (in the closed state) that open the circuit.
    pub const fn failure_threshold(&self) -> NonZeroU32 {
        self.failure_threshold
    }

    /// How long the circuit stays open before a probe is let through.
    pub const fn recovery_timeout(&self) -> Duration {
        self.recovery_timeout
    }

    /// Successful probes (in the half-open state) that close the circuit.
    pub const fn success_threshold(&self) -> NonZeroU32 {
        self.success_threshold
    }

    /// Probes allowed in flight at once in the half-open state.
    pub const fn half_open_max_calls(&self) -> NonZeroU32 {
        self.half_open_max_calls
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failure_threshold = {}, recovery_timeout = {:?}, success_threshold = {}, half_open_max_calls = {}",
            self.failure_threshold,
            self.recovery_timeout,
            self.success_threshold,
            self.half_open_max_calls
        )
    }
}

/// Builds a [`BreakerConfig`] from plain numbers, collecting every problem.
#[derive(Debug, Clone)]
#[must_use = "call `.build()` to get the configuration"]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
    errors: Vec<String>,
}

impl BreakerConfigBuilder {
    fn count(&mut self, key: &str, n: u32) -> Option<NonZeroU32> {
        let nz = NonZeroU32::new(n);
        if nz.is_none() {
            self.errors
                .push(format!("`{key}` must be at least 1, got 0"));
        }
        nz
    }

    /// Consecutive failures that open the circuit (default 5; at least 1).
    pub fn failure_threshold(mut self, n: u32) -> Self {
        if let Some(n) = self.count("failure_threshold", n) {
            self.config.failure_threshold = n;
        }
        self
    }

    /// Time spent open before a probe (default 60 s; must be positive).
    pub fn recovery_timeout(mut self, d: Duration) -> Self {
        if d.is_zero() {
            self.errors
                .push("`recovery_timeout` must be positive, got 0s".to_owned());
        } else {
            self.config.recovery_timeout = d;
        }
        self
    }

    /// Successful probes that close the circuit (default 1; at least 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        if let Some(n) = self.count("success_threshold", n) {
            self.config.success_threshold = n;
        }
        self
    }

    /// Probes in flight at once while half-open (default 1; at least 1).
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        if let Some(n) = self.count("half_open_max_calls", n) {
            self.config.half_open_max_calls = n;
        }
        self
    }

    /// The configuration, or every problem found.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] listing each count that was zero and a zero
    /// `recovery_timeout`.
    pub fn build(self) -> Result<BreakerConfig, ConfigError> {
        if self.errors.is_empty() {
            Ok(self.config)
        } else {
            Err(ConfigError {
                problems: self.errors,
            })
        }
    }
}

/// A configuration that could not be built, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resilience configuration: {}", problems.join("; "))]
pub struct ConfigError {
    problems: Vec<String>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<String>) -> Self {
        ConfigError { problems }
    }

    /// Each problem, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let c = BreakerConfig::default();
        assert_eq!(c.failure_threshold().get(), 5);
        assert_eq!(c.recovery_timeout(), Duration::from_secs(60));
        assert_eq!(c.success_threshold().get(), 1);
        assert_eq!(c.half_open_max_calls().get(), 1);
    }

    #[test]
    fn builder_reports_every_problem() {
        let err = BreakerConfig::builder()
            .failure_threshold(0)
            .recovery_timeout(Duration::ZERO)
            .success_threshold(0)
            .half_open_max_calls(0)
            .build()
            .unwrap_err();
        assert_eq!(err.problems().len(), 4, "{err}");
        assert!(err
            .to_string()
            .contains("`failure_threshold` must be at least 1"));
        assert!(err
            .to_string()
            .contains("`recovery_timeout` must be positive"));
    }

    #[test]
    fn builder_sets_every_field() {
        let c = BreakerConfig::builder()
            .failure_threshold(2)
            .recovery_timeout(Duration::from_millis(1500))
            .success_threshold(3)
            .half_open_max_calls(4)
            .build()
            .unwrap();
        assert_eq!(
            c,
            BreakerConfig::__from_macro(2, Duration::from_millis(1500), 3, 4)
        );
        assert_eq!(
            c.to_string(),
            "failure_threshold = 2, recovery_timeout = 1.5s, success_threshold = 3, half_open_max_calls = 4"
        );
    }
}
