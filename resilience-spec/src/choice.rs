//! The closed choices of the retry keys: `backoff` and `jitter`. Each is an
//! enum that names itself, so the macro writes its tokens from it and a
//! configuration file parses it with the same words.

use core::fmt;
use core::str::FromStr;

/// How the delay grows from one retry to the next (`backoff = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackoffKind {
    /// `d, d, d, …`
    Fixed,
    /// `d, 2d, 3d, …`
    Linear,
    /// `d, m·d, m²·d, …` with multiplier `m` (default 2: `1 s, 2 s, 4 s`).
    #[default]
    Exponential,
}

/// Randomisation of each delay (`jitter = "…"`), as defined in AWS's
/// "Exponential Backoff And Jitter". Off by default, so schedules are
/// deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Jitter {
    /// The computed delay, unchanged.
    #[default]
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay / 2, delay]`.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped by `max_delay`; the
    /// previous delay starts at `base`.
    Decorrelated,
}

impl BackoffKind {
    /// Every choice, in the order documented.
    pub const ALL: [BackoffKind; 3] = [
        BackoffKind::Fixed,
        BackoffKind::Linear,
        BackoffKind::Exponential,
    ];

    /// The name written in an attribute or a file (`"exponential"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackoffKind::Fixed => "fixed",
            BackoffKind::Linear => "linear",
            BackoffKind::Exponential => "exponential",
        }
    }

    /// The variant's Rust name (`Exponential`), for generated code.
    pub const fn variant(self) -> &'static str {
        match self {
            BackoffKind::Fixed => "Fixed",
            BackoffKind::Linear => "Linear",
            BackoffKind::Exponential => "Exponential",
        }
    }
}

impl Jitter {
    /// Every choice, in the order documented.
    pub const ALL: [Jitter; 4] = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ];

    /// The name written in an attribute or a file (`"full"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }

    /// The variant's Rust name (`Full`), for generated code.
    pub const fn variant(self) -> &'static str {
        match self {
            Jitter::None => "None",
            Jitter::Full => "Full",
            Jitter::Equal => "Equal",
            Jitter::Decorrelated => "Decorrelated",
        }
    }
}

impl fmt::Display for BackoffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A choice that is not one of the key's (`backoff = "exponentail"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownChoice {
    /// The key (`backoff`).
    pub key: &'static str,
    /// What was written.
    pub found: alloc::string::String,
    /// The valid choices.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, found) = (self.key, &self.found);
        match crate::did_you_mean(found, self.expected.iter().copied()) {
            Some(near) => write!(f, "unknown {key} \"{found}\": did you mean \"{near}\"?"),
            None => {
                write!(f, "unknown {key} \"{found}\"; expected one of: ")?;
                for (i, o) in self.expected.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{o}\"")?;
                }
                Ok(())
            }
        }
    }
}

const BACKOFF_NAMES: &[&str] = &["fixed", "linear", "exponential"];
const JITTER_NAMES: &[&str] = &["none", "full", "equal", "decorrelated"];

/// The choice of `all` named `s`, else what was expected of `key`.
fn parse<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    key: &'static str,
    expected: &'static [&'static str],
    s: &str,
) -> Result<T, UnknownChoice> {
    all.iter()
        .copied()
        .find(|c| name(*c) == s)
        .ok_or_else(|| UnknownChoice {
            key,
            found: s.into(),
            expected,
        })
}

impl FromStr for BackoffKind {
    type Err = UnknownChoice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(&Self::ALL, Self::as_str, "backoff", BACKOFF_NAMES, s)
    }
}

impl FromStr for Jitter {
    type Err = UnknownChoice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(&Self::ALL, Self::as_str, "jitter", JITTER_NAMES, s)
    }
}
