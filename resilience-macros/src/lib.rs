//! Attribute macros of the `resilience` crate.
use proc_macro::TokenStream;

/// Placeholder.
#[proc_macro_attribute]
pub fn circuit_breaker(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// Placeholder.
#[proc_macro_attribute]
pub fn retry(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// Placeholder.
#[proc_macro_attribute]
pub fn resilient(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// Placeholder.
#[proc_macro_attribute]
pub fn timeout(_a: TokenStream, i: TokenStream) -> TokenStream { i }
