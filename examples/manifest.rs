//! Lists the program's annotated call sites, then shows a callback declared
//! on one call site firing although another one opened the circuit.
//!
//! ```text
//! cargo run --example manifest
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::manifest::{self, Kind, Name};
use resilience::{circuit_breaker, registry, retry, CircuitState, Transition};

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("inventory service unavailable")]
    Unavailable,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

static PAGES: AtomicU32 = AtomicU32::new(0);

fn page_on_call(t: &Transition) {
    PAGES.fetch_add(1, Ordering::SeqCst);
    println!(
        "  on_open: `{}` opened after {} failures",
        t.name, t.failures
    );
}

struct Inventory;

impl Inventory {
    /// Declares the callback, but never runs in this program.
    #[circuit_breaker(name = "inventory", failure_threshold = 3, on_open = page_on_call)]
    #[allow(dead_code)]
    async fn fetch(&self, sku: &str) -> Result<u32, ApiError> {
        Ok(sku.len() as u32)
    }

    /// Shares the breaker; opens it.
    #[circuit_breaker(name = "inventory", failure_threshold = 3)]
    #[retry(max_attempts = 2, delay = "10ms")]
    async fn list(&self) -> Result<Vec<String>, ApiError> {
        Err(ApiError::Unavailable)
    }

    /// No name: `manifest::Inventory::reserve`.
    #[circuit_breaker(failure_threshold = 2)]
    async fn reserve(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("call sites of this program:");
    let mut sites: Vec<_> = manifest::call_sites().collect();
    sites.sort_by_key(|s| (s.file(), s.line(), s.kind().as_str()));
    for site in &sites {
        println!("  {site}");
    }
    let declared = sites
        .iter()
        .filter(|s| s.kind() == Kind::CircuitBreaker && s.name() == Name::Static("inventory"))
        .count();
    assert_eq!(declared, 2, "both `inventory` call sites are listed");
    assert_eq!(
        sites.len(),
        4,
        "two breakers, one retry, one unnamed breaker"
    );

    println!("calling `list` until the circuit opens:");
    for _ in 0..3 {
        let result = Inventory.list().await;
        println!("  list: {result:?}");
    }
    Inventory.reserve().await.unwrap();
    let inventory = registry().get("inventory").expect("created by `list`");
    assert_eq!(inventory.state(), CircuitState::Open);
    assert_eq!(PAGES.load(Ordering::SeqCst), 1, "`fetch`'s on_open fired");
    assert!(registry().get("manifest::Inventory::reserve").is_some());
    println!("ok: `fetch`'s on_open fired once, though `fetch` never ran");
}
