//! The command-line arguments.

use std::time::Duration;

use resilience::BreakerConfig;

/// The command-line arguments.
pub(crate) struct Args {
    pub(crate) url: String,
    pub(crate) namespace: String,
    pub(crate) breakers: usize,
    pub(crate) config: BreakerConfig,
    pub(crate) probe: Duration,
    pub(crate) down: Option<String>,
}

pub(crate) fn parse_args() -> Result<Args, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let down = match args.get(6) {
        None => None,
        Some(arg) if args.len() == 7 => match arg.strip_prefix("down=") {
            Some(selection) => Some(selection.to_owned()),
            None => return Err(format!("unexpected argument {arg:?} (only `down=…`)")),
        },
        Some(_) => return Err(format!("expected 6 or 7 arguments, got {}", args.len())),
    };
    args.truncate(6);
    let [url, namespace, breakers, threshold, recovery_ms, probe_ms] =
        <[String; 6]>::try_from(args)
            .map_err(|args| format!("expected 6 or 7 arguments, got {}", args.len()))?;
    let number = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|e| format!("bad {what} {s:?}: {e}"))
    };
    let breakers = number("breaker count", &breakers)?;
    if !(1..=1000).contains(&breakers) {
        return Err(format!(
            "the breaker count must be 1 to 1000, not {breakers}"
        ));
    }
    let threshold = u32::try_from(number("failure threshold", &threshold)?)
        .map_err(|e| format!("bad failure threshold: {e}"))?;
    let recovery = Duration::from_millis(number("recovery timeout", &recovery_ms)?);
    let probe = Duration::from_millis(number("probe time", &probe_ms)?);
    let config = BreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(recovery)
        .build()
        .map_err(|e| format!("bad breaker configuration: {e}"))?;
    Ok(Args {
        url,
        namespace,
        breakers: usize::try_from(breakers).expect("at most 1000"),
        config,
        probe,
        down,
    })
}
