//! Tunes policies by name from a TOML file plus environment overrides, then
//! changes a running breaker and a running retry live, and shows what a
//! typo in a name gets.
//!
//! ```text
//! cargo run --example configure --features configure
//! RESILIENCE__BREAKERS__PAYMENTS__FAILURE_THRESHOLD=2 cargo run --example configure --features configure
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use resilience::settings::Settings;
use resilience::{manifest, registry, CircuitState};

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("payment provider unavailable")]
    Unavailable,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Declared with 5 failures and 3 attempts; the file says otherwise.
#[resilience::resilient(
    name = "payments",
    failure_threshold = 5,
    max_attempts = 3,
    delay = "10ms"
)]
async fn charge(cents: u64) -> Result<u64, ApiError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let _ = cents;
    Err(ApiError::Unavailable)
}

#[resilience::bulkhead(name = "ledger-db", max_concurrent = 4)]
async fn write_ledger() -> Result<(), ApiError> {
    Ok(())
}

const FILE: &str = r#"
[profiles.critical]
failure_threshold = 4
recovery_timeout = "30s"

[breakers.payments]
profile = "critical"

[retries.payments]
max_attempts = 2

[bulkheads.ledger-db]
max_concurrent = 16
max_wait = "25ms"
"#;

fn load(file: &str) -> Result<Settings, Box<figment::Error>> {
    // The environment wins over the file: RESILIENCE__BREAKERS__PAYMENTS__FAILURE_THRESHOLD=2
    Figment::from(Toml::string(file))
        .merge(Env::prefixed("RESILIENCE__").split("__"))
        .extract()
        .map_err(Box::new)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = load(FILE)?;
    let applied = registry().apply(&settings)?;
    // Nothing ran yet: every policy is created with these settings on its first call.
    println!(
        "applied before the first call (changed: {:?})",
        applied.changed
    );

    println!("\nEvery annotated call site and the settings in force:");
    for site in manifest::call_sites() {
        let settings = site.settings().unwrap_or_default();
        println!("  {site}\n      in force: {settings}");
    }

    // The retry makes 2 attempts per call (the file), the breaker opens
    // after 4 failures (the profile).
    let mut call = 0;
    while registry().get("payments").map(|b| b.state()) != Some(CircuitState::Open) {
        call += 1;
        let _ = charge(100).await;
        println!(
            "call {call}: {} attempts so far",
            CALLS.load(Ordering::SeqCst)
        );
    }
    println!(
        "`payments` is open after {} failed attempts",
        CALLS.load(Ordering::SeqCst)
    );
    write_ledger().await?;

    // Live: a new file, applied to the running program.
    registry().get("payments").expect("created").reset();
    let stricter =
        load("[breakers.payments]\nfailure_threshold = 1\n[retries.payments]\nmax_attempts = 1\n")?;
    println!("\napplied: {:?}", registry().apply(&stricter)?.changed);
    CALLS.store(0, Ordering::SeqCst);
    let _ = charge(100).await;
    println!(
        "one call, {} attempt, and `payments` is {}",
        CALLS.load(Ordering::SeqCst),
        registry()
            .get("payments")
            .expect("created")
            .state()
            .as_str()
    );

    // A typo: rejected with a suggestion, nothing applied.
    let typo = load("[breakers.paymnets]\nfailure_threshold = 2\n")?;
    match registry().apply(&typo) {
        Ok(_) => unreachable!("`paymnets` is not declared"),
        Err(e) => println!("\n{e}"),
    }
    // A bad value: caught when the file is read, with its path.
    match load("[breakers.payments]\nfailure_rate = 1.5\n") {
        Ok(_) => unreachable!("1.5 is not a rate"),
        Err(e) => println!("{e}"),
    }
    Ok(())
}
