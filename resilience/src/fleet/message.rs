//! The messages instances exchange: versioned, validated JSON.
//!
//! ```json
//! {"v":1,"instance":"web-3:4121:9f2c","breaker":"payments","state":"open","until_unix_ms":1764000000000,"fleet_gen":7}
//! ```
//!
//! A *probe notice* says that its sender won a breaker's probe lease for
//! `probe_ms`; it changes no state (`state` is `half_open`, `fleet_gen` the
//! sequence the sender knows):
//!
//! ```json
//! {"v":1,"instance":"web-3:4121:9f2c","breaker":"payments","state":"half_open","fleet_gen":7,"probe_ms":5000}
//! ```
//!
//! A payload that is not valid JSON, has another version, names a state we
//! do not know, lacks `until_unix_ms` for an open breaker or carries absurd
//! values is rejected with a reason; it never trips a breaker.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::CircuitState;

/// The message format version this build speaks.
pub(crate) const VERSION: u32 = 1;

/// The longest name or instance id accepted.
const MAX_NAME: usize = 256;

/// One breaker's state as one instance announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) v: u32,
    pub(crate) instance: String,
    pub(crate) breaker: String,
    pub(crate) state: String,
    /// When an open breaker lets a probe through, in ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) until_unix_ms: Option<u64>,
    /// The breaker's fleet-wide sequence number (`HINCRBY`), for ordering.
    pub(crate) fleet_gen: u64,
    /// A probe notice: the sender holds the probe lease for this long (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) probe_ms: Option<u64>,
    /// The partition's version after this change, and before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pv: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pv_prev: Option<u64>,
}

/// A validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    pub(crate) instance: String,
    pub(crate) breaker: String,
    pub(crate) state: CircuitState,
    /// For open breakers: how long until a probe may run, from now.
    pub(crate) open_for: Option<Duration>,
    /// For open breakers: when a probe may run, in ms since the Unix epoch.
    pub(crate) until_unix_ms: Option<u64>,
    pub(crate) fleet_gen: u64,
    /// A probe notice: how long the sender holds the probe lease.
    pub(crate) probe_for: Option<Duration>,
    /// The partition's version `(before, after)` this change.
    pub(crate) versions: Option<(u64, u64)>,
}

pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn state_from_str(s: &str) -> Option<CircuitState> {
    Some(match s {
        "closed" => CircuitState::Closed,
        "open" => CircuitState::Open,
        "half_open" => CircuitState::HalfOpen,
        "forced_open" => CircuitState::ForcedOpen,
        "disabled" => CircuitState::Disabled,
        _ => return None,
    })
}

impl Message {
    #[cfg(test)]
    pub(crate) fn new(
        instance: &str,
        breaker: &str,
        state: CircuitState,
        open_for: Option<Duration>,
        fleet_gen: u64,
    ) -> Self {
        let until = open_for.map(|d| {
            unix_ms_now().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        });
        Message {
            v: VERSION,
            instance: instance.to_owned(),
            breaker: breaker.to_owned(),
            state: state.as_str().to_owned(),
            until_unix_ms: until,
            fleet_gen,
            probe_ms: None,
            pv: None,
            pv_prev: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and validates a payload.
    ///
    /// # Errors
    ///
    /// Why the payload was rejected, for the warning.
    pub(crate) fn decode(payload: &[u8]) -> Result<Announcement, String> {
        let m: Message = serde_json::from_slice(payload)
            .map_err(|e| format!("not a resilience message ({e})"))?;
        m.validate()
    }

    fn validate(self) -> Result<Announcement, String> {
        if self.v != VERSION {
            return Err(format!(
                "message version {} (this build speaks {VERSION})",
                self.v
            ));
        }
        for (what, value) in [("instance", &self.instance), ("breaker", &self.breaker)] {
            if value.is_empty() || value.len() > MAX_NAME {
                return Err(format!("{what} must be 1 to {MAX_NAME} bytes long"));
            }
        }
        let state =
            state_from_str(&self.state).ok_or_else(|| format!("unknown state {:?}", self.state))?;
        let probe_for = match (self.probe_ms, state) {
            (None, _) => None,
            (Some(ms), CircuitState::HalfOpen) if ms <= 24 * 3600 * 1000 => {
                Some(Duration::from_millis(ms))
            }
            (Some(ms), CircuitState::HalfOpen) => {
                return Err(format!("a probe notice of {ms} ms: more than a day"))
            }
            (Some(_), _) => return Err("a probe notice must say half_open".into()),
        };
        let open_for = match (state, self.until_unix_ms) {
            (CircuitState::Open, None) => {
                return Err("an open breaker without until_unix_ms".into())
            }
            (CircuitState::Open, Some(until)) => {
                let remaining = until.saturating_sub(unix_ms_now());
                // More than a day is not a recovery timeout, it is a bug.
                if remaining > 24 * 3600 * 1000 {
                    return Err(format!("until_unix_ms {until} is more than a day away"));
                }
                Some(Duration::from_millis(remaining))
            }
            _ => None,
        };
        Ok(Announcement {
            instance: self.instance,
            breaker: self.breaker,
            state,
            open_for,
            until_unix_ms: open_for.and(self.until_unix_ms),
            fleet_gen: self.fleet_gen,
            probe_for,
            versions: self.pv_prev.zip(self.pv),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m = Message::new(
            "a",
            "payments",
            CircuitState::Open,
            Some(Duration::from_secs(30)),
            7,
        );
        let a = Message::decode(m.encode().as_bytes()).unwrap();
        assert_eq!((a.instance.as_str(), a.breaker.as_str()), ("a", "payments"));
        assert_eq!(a.state, CircuitState::Open);
        let left = a.open_for.unwrap();
        assert!(
            left <= Duration::from_secs(30) && left >= Duration::from_secs(29),
            "{left:?}"
        );
        assert_eq!(a.fleet_gen, 7);
        assert_eq!(a.probe_for, None);
        let notice = br#"{"v":1,"instance":"a","breaker":"b","state":"half_open","fleet_gen":7,"probe_ms":5000}"#;
        let a = Message::decode(notice).unwrap();
        assert_eq!(a.probe_for, Some(Duration::from_secs(5)));
    }

    #[test]
    fn rejects_malformed_and_foreign_payloads() {
        let bad: &[&[u8]] = &[
            b"",
            b"garbage",
            b"\xff\xfe",
            br#"{"v":2,"instance":"a","breaker":"b","state":"closed","fleet_gen":1}"#,
            br#"{"v":1,"instance":"","breaker":"b","state":"closed","fleet_gen":1}"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"exploded","fleet_gen":1}"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"open","fleet_gen":1}"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"open","until_unix_ms":18446744073709551615,"fleet_gen":1}"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"closed","fleet_gen":-1}"#,
            br#"[1,2,3]"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"open","until_unix_ms":1,"fleet_gen":1,"probe_ms":5}"#,
            br#"{"v":1,"instance":"a","breaker":"b","state":"half_open","fleet_gen":1,"probe_ms":86400001}"#,
        ];
        for payload in bad {
            assert!(
                Message::decode(payload).is_err(),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }
}
