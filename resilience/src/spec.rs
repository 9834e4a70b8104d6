//! The rules every configuration is held to, and the error that lists the
//! ones it breaks. The rules live once, in the policy spec that the
//! attribute macros check at compile time; the runtime builders (and
//! configuration read from files) run the same check, so a problem has the
//! same words whichever door the configuration came through.

use std::fmt;

pub use resilience_spec::{Place, Problem};

/// A configuration that could not be built, with every problem found; each
/// [`Problem`] names its key (`problem.key()`) and says, in the words the
/// attribute would use, what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn new(problems: &resilience_spec::Problems) -> Self {
        ConfigError {
            problems: problems.iter().copied().collect(),
        }
    }

    /// Each problem, in the order of the keys.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid resilience configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Checks `problems`: `Ok` when there is none.
pub(crate) fn checked(problems: resilience_spec::Problems) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::new(&problems))
    }
}
