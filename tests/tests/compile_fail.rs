//! Compile-fail tests: each file in tests/ui/ is one violation; its .stderr is the reviewed message.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
