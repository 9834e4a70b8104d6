//! Property tests of the whole transformation outside the compiler (through
//! `proc_macro2`): arbitrary attribute arguments and items never make a macro
//! panic, and it always returns either an expansion or a spanned error next
//! to the original item.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;

use crate::layers::Kind;

/// Pieces attribute arguments are made of: every key, near misses, every
/// kind of value, and stray punctuation.
fn arg_piece() -> impl Strategy<Value = String> {
    // Every key of every attribute, plus near misses and odd identifiers.
    let mut keys = crate::layers::all_keys();
    keys.extend(["max_attempt", "colour", "r#type", "self"]);
    let values = [
        "0",
        "1",
        "3",
        "-3",
        "18446744073709551616",
        "4294967296",
        "1.5",
        "-0.5",
        "1e309",
        "0.0",
        "\"30s\"",
        "\"250ms\"",
        "\"2m\"",
        "\"1h\"",
        "\"\"",
        "\"30\"",
        "\"fast\"",
        "\"-1s\"",
        "\"5 parsecs\"",
        "\"exponential\"",
        "\"exponentail\"",
        "\"full\"",
        "\"unifi\"",
        "\"\\u{1F600}\"",
        "true",
        "'c'",
        "b\"x\"",
        "self.name.as_str()",
        "format!(\"t{}\", 1)",
        "|e| true",
        "|e: &E| e.is_timeout()",
        "Self::cached",
        "[E::A, E::B(..)]",
        "[]",
        "[1 + 2]",
        "E::A | E::B",
        "(1, 2)",
        "{ 1 }",
        "x.y.z",
        "::a::b",
        "&name",
        "async {}",
        "..",
        "_",
    ];
    let punct = [
        "=", ",", ",", ";", "(", ")", "[", "]", "{", "}", "::", "#", "@", "|",
    ];
    prop_oneof![
        4 => proptest::sample::select(keys.to_vec()).prop_map(str::to_owned),
        4 => proptest::sample::select(values.to_vec()).prop_map(str::to_owned),
        3 => proptest::sample::select(punct.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_][a-z0-9_]{0,8}",
    ]
}

/// Mostly `key = value` pairs, sometimes soup.
fn args() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec((arg_piece(), arg_piece()), 0..6).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        1 => proptest::collection::vec(arg_piece(), 0..12).prop_map(|p| p.join(" ")),
    ]
}

fn item() -> impl Strategy<Value = String> {
    let items = [
        "async fn f() -> Result<u32, E> { Ok(1) }",
        "pub async fn f(&self, x: String, y: &str) -> anyhow::Result<()> { Ok(()) }",
        "async fn f<T: Clone>(t: T) -> Result<T, E> where T: Send { Ok(t) }",
        "async fn f(mut v: Vec<u8>, (a, b): (u8, u8)) -> Result<u8, E> { v.push(a); Ok(b) }",
        "async fn f(self: Arc<Self>) -> Result<impl Display, E> { Ok(1) }",
        "async fn f(&mut self) -> io::Result<()> { return Ok(()); }",
        "fn f() -> Result<u32, E> { Ok(1) }",
        "const async fn f() -> Result<u32, E> { Ok(1) }",
        "async fn f() { }",
        "async fn f() -> u32 { 1 }",
        "async fn f(&self) -> Result<u32, E>;",
        "async unsafe extern \"C\" fn f(x: ...) -> Result<(), E> {}",
        "struct S;",
        "async fn",
        "",
        "#[other] async fn f() -> Result<(), E> { Ok(()) }",
    ];
    let siblings = [
        "",
        "#[retry]",
        "#[retry(max_attempts = 0)]",
        "#[circuit_breaker]",
        "#[resilience::timeout(\"1s\")]",
        "#[timeout]",
        "#[bulkhead(max_concurrent = 2)]",
        "#[resilient(name = \"x\")]",
        "#[retry = 3]",
        "#[::resilience::retry(delay = \"1s\")]",
        "#[doc = \"x\"]",
    ];
    (
        proptest::sample::select(siblings.to_vec()),
        proptest::sample::select(siblings.to_vec()),
        proptest::sample::select(items.to_vec()),
    )
        .prop_map(|(a, b, item)| format!("{a} {b} {item}"))
}

fn kind() -> impl Strategy<Value = Kind> {
    proptest::sample::select(Kind::ALL.to_vec())
}

/// Runs one expansion: never a panic; always some output; an error is a
/// `compile_error!` next to the original function; a valid function in
/// gives valid items out.
fn check(kind: Kind, args: &str, item: &str) {
    let (Ok(args_tokens), Ok(item_tokens)) =
        (TokenStream::from_str(args), TokenStream::from_str(item))
    else {
        return; // not even tokens: the compiler never calls us with these
    };
    let output = catch_unwind(AssertUnwindSafe(|| {
        crate::expand_attribute(kind, args_tokens, item_tokens.clone())
    }))
    .unwrap_or_else(|_| panic!("#[{}({args})] on `{item}` panicked", kind.name()));
    let text = output.to_string();
    assert!(
        !text.is_empty() || item.trim().is_empty(),
        "no output for `{item}`"
    );
    if syn::parse2::<crate::func::Func>(item_tokens).is_ok() {
        assert!(
            syn::parse2::<syn::File>(output).is_ok(),
            "#[{}({args})] on `{item}` produced tokens that are not items:\n{text}",
            kind.name()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_arguments_never_panic(kind in kind(), args in args(), item in item()) {
        check(kind, &args, &item);
    }

    #[test]
    fn arbitrary_token_soup_never_panics(
        kind in kind(),
        args in "[ -~]{0,60}",
        item in "(async )?(fn|struct|impl) [ -~]{0,40}",
    ) {
        check(kind, &args, &item);
    }
}

#[test]
fn valid_arguments_expand_without_error() {
    let cases = [
        (
            Kind::CircuitBreaker,
            "name = \"a\", failure_rate = 0.5, window = 100, min_calls = 20",
        ),
        (
            Kind::Retry,
            "max_attempts = 5, backoff = \"linear\", delay = \"10ms\", jitter = \"full\"",
        ),
        (
            Kind::Resilient,
            "name = self.n.as_str(), timeout = 2, max_concurrent = 3",
        ),
        (Kind::Timeout, "\"30s\""),
        (
            Kind::Bulkhead,
            "name = \"db\", max_concurrent = 2, max_wait = \"5ms\"",
        ),
    ];
    for (kind, args) in cases {
        let out = crate::expand_attribute(
            kind,
            TokenStream::from_str(args).unwrap(),
            TokenStream::from_str("async fn f(&self, x: String) -> Result<u8, E> { Ok(1) }")
                .unwrap(),
        )
        .to_string();
        assert!(
            !out.contains("compile_error"),
            "#[{}({args})]: {out}",
            kind.name()
        );
    }
}
