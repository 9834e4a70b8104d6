//! The key tables of the documentation come from the spec: each macro's
//! rustdoc includes `doc/<attribute>.md`, generated from
//! `resilience_spec::keys`, and the README shows the same tables. These
//! tests fail when either is out of date; `RESILIENCE_BLESS=1 cargo test -p
//! resilience-macros docs` rewrites the `doc/` files (then copy each table
//! into the README where the test says).

use std::path::Path;

use resilience_spec::keys;

use crate::layers::{all_keys, Kind};

/// Each documented attribute, its table's file, and its keys.
fn tables() -> [(&'static str, String); 7] {
    [
        ("circuit_breaker", keys::table(&keys::BREAKER)),
        ("retry", keys::table(&keys::RETRY)),
        ("bulkhead", keys::table(&keys::BULKHEAD)),
        ("rate_limit", keys::table(&keys::RATE_LIMIT)),
        ("coalesce", keys::table(&keys::COALESCE)),
        ("hedge", keys::table(&keys::HEDGE)),
        ("resilient", keys::table(&keys::RESILIENT)),
    ]
}

#[test]
fn docs_key_tables_are_generated_from_the_spec() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc");
    let bless = std::env::var_os("RESILIENCE_BLESS").is_some();
    for (attr, table) in tables() {
        let file = dir.join(format!("{attr}.md"));
        if bless {
            std::fs::write(&file, &table).unwrap();
        }
        let written = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(
            written,
            table,
            "{} is out of date: run `RESILIENCE_BLESS=1 cargo test -p resilience-macros docs`",
            file.display()
        );
    }
}

#[test]
fn the_readme_shows_every_key_table() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for (attr, table) in tables() {
        assert!(
            readme.contains(&table),
            "the README's table of `#[{attr}]` differs from the spec's; paste resilience-macros/doc/{attr}.md under `### #[{attr}(...)]`"
        );
    }
}

#[test]
fn every_key_the_parser_accepts_is_documented_with_its_default() {
    let documented: Vec<&str> = keys::BREAKER
        .iter()
        .chain(&keys::RETRY)
        .chain(&keys::BULKHEAD)
        .chain(&keys::RATE_LIMIT)
        .chain(&keys::COALESCE)
        .chain(&keys::HEDGE)
        .chain(&keys::RESILIENT)
        .chain([&keys::FALLBACK])
        .inspect(|k| assert!(!k.default.is_empty() && !k.doc.is_empty(), "{k:?}"))
        .map(|k| k.name)
        .collect();
    for key in all_keys() {
        assert!(documented.contains(&key), "`{key}` is not documented");
    }
    assert_eq!(Kind::ALL.len(), 8, "a new attribute needs a table here");
}
