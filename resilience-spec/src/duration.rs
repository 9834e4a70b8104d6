//! The one duration grammar of the attributes and of every text input:
//! humantime's (`"250ms"`, `"1m30s"`, `"1 minute"`, `"500 ms"`, `"1.5s"`,
//! `"2h"`), with errors that say how to write it. (In an attribute, a bare
//! number is seconds: `recovery_timeout = 60`, `delay = 1.5`.)

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::time::Duration;

/// How to write a duration, for messages.
pub const EXPECTED: &str =
    "write seconds (`30`, `1.5`) or a string with a unit (`\"250ms\"`, `\"30s\"`, `\"1m30s\"`)";

/// The units humantime accepts, for "did you mean".
const UNITS: &[&str] = &[
    "ns", "nsec", "us", "usec", "ms", "msec", "s", "sec", "secs", "second", "seconds", "m", "min",
    "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w",
    "week", "weeks",
];

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a duration with a unit: `"250ms"`, `"1m30s"`, `"1 minute"`,
/// `"1.5s"`.
///
/// ```
/// use std::time::Duration;
/// use resilience_spec::duration::parse;
///
/// assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse("500 ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(
///     parse("3mss").unwrap_err().to_string(),
///     "unknown unit `mss` in `\"3mss\"`: did you mean `ms`?"
/// );
/// ```
///
/// # Errors
///
/// What is wrong with `text` and how to write it.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(DurationError(format!(
            "`\"{t}\"` is negative; a duration must not be negative"
        )));
    }
    humantime::parse_duration(t).map_err(|e| {
        DurationError(match e {
            humantime::DurationError::Empty => format!("empty duration; {EXPECTED}"),
            humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
                format!("`\"{t}\"` has no unit; write `\"{t}s\"`, or `{t}` without quotes for seconds")
            }
            humantime::DurationError::UnknownUnit { unit, .. } => {
                match crate::did_you_mean(&unit, UNITS.iter().copied()) {
                    Some(u) => format!("unknown unit `{unit}` in `\"{t}\"`: did you mean `{u}`?"),
                    None => format!(
                        "unknown unit `{unit}` in `\"{t}\"`; expected one of: `ns`, `us`, `ms`, `s`, `m`, `h`, `d`"
                    ),
                }
            }
            humantime::DurationError::NumberOverflow => format!("`\"{t}\"` is too large"),
            _ => format!("`\"{t}\"` is not a duration; {EXPECTED}"),
        })
    })
}

/// Writes a duration the way [`parse`] reads it (`1m 30s`, `250ms`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    format!("{}", humantime::format_duration(d))
}
