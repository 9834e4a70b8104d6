//! Parsing `key = value, …` attribute arguments into spanned pairs.
//!
//! Input:  `name = "unifi", failure_threshold = 5, recovery_timeout = "60s"`
//! Output: `[Arg { key: name, value: "unifi" }, …]`, with duplicates and unknown
//! keys reported (all of them, each under its own tokens).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

/// One `key = value` pair.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input
            .call(syn::ext::IdentExt::parse_any)
            .map_err(|e| syn::Error::new(e.span(), "expected `key = value` arguments"))?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = <value>`"),
            ));
        }
        input.parse::<Token![=]>()?;
        if (key == "failure_on" || key == "retry_on") && input.peek(syn::token::Bracket) {
            // A list of patterns: `ref`, `@` and ranges are patterns, not
            // expressions; keep the tokens, `layers` parses them as patterns.
            let group: proc_macro2::TokenTree = input.parse()?;
            return Ok(Arg {
                key,
                value: Expr::Verbatim(group.into()),
            });
        }
        let value: Expr = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("expected a value for `{key}`")))?;
        Ok(Arg { key, value })
    }
}

/// All arguments of one attribute, keyed and checked against the allowed keys.
pub(crate) struct Args {
    pub(crate) args: Vec<Arg>,
}

impl Args {
    /// Parses `tokens` and checks every key against `allowed`. Unknown and
    /// duplicate keys are dropped and reported together in `errors`; `elsewhere`
    /// explains a key that belongs to another attribute.
    pub(crate) fn parse(
        tokens: TokenStream,
        allowed: &[&str],
        attr: &str,
        elsewhere: impl Fn(&Arg) -> Option<String>,
        errors: &mut Errors,
    ) -> Args {
        let parsed = match Punctuated::<Arg, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                return Args { args: Vec::new() };
            }
        };
        let mut args: Vec<Arg> = Vec::new();
        for arg in parsed {
            let key = arg.key.to_string();
            if !allowed.contains(&key.as_str()) {
                let error = match elsewhere(&arg) {
                    Some(msg) => syn::Error::new(arg.key.span(), msg),
                    None => unknown_key(&arg.key, allowed, attr),
                };
                errors.push(error);
            } else if args.iter().any(|a| a.key == arg.key) {
                errors.push(syn::Error::new(
                    arg.key.span(),
                    format!("duplicate key `{key}`: each key may appear once"),
                ));
            } else {
                args.push(arg);
            }
        }
        Args { args }
    }

    /// The value given for `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.key == key)
    }
}

fn unknown_key(key: &Ident, allowed: &[&str], attr: &str) -> syn::Error {
    let msg = match did_you_mean(&key.to_string(), allowed.iter().copied()) {
        Some(near) => format!("unknown key `{key}` for `#[{attr}]`: did you mean `{near}`?"),
        None => {
            let list = allowed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("unknown key `{key}` for `#[{attr}]`; expected one of: {list}")
        }
    };
    syn::Error::new(key.span(), msg)
}

/// The closest candidate to `word`, if one is close enough to be a typo.
pub(crate) use resilience_spec::did_you_mean;

/// Errors collected across every argument of every attribute on the item.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.combined {
            Some(c) => c.combine(e),
            None => self.combined = Some(e),
        }
    }

    /// An error under all of `tokens` (`-5`, not just `-`).
    pub(crate) fn push_at(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    pub(crate) fn push_span(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every message reported, in order (for tests).
    #[cfg(test)]
    pub(crate) fn messages(self) -> Vec<String> {
        self.combined
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pattern_keys_keep_a_bracketed_list_as_tokens() {
        let arg = |s: &str| syn::parse_str::<Arg>(s).unwrap().value;
        assert!(matches!(
            arg("failure_on = [E::A | E::B]"),
            Expr::Verbatim(_)
        ));
        assert!(matches!(arg("retry_on = [E::A { .. }]"), Expr::Verbatim(_)));
        // Any other key's list is an expression (its message says "found
        // an array"); a pattern key's value without brackets is one too.
        assert!(matches!(arg("name = [1, 2]"), Expr::Array(_)));
        assert!(matches!(arg("failure_on = my::Error"), Expr::Path(_)));
    }

    #[test]
    fn suggests_near_keys_only() {
        let keys = ["max_attempts", "backoff", "delay"];
        assert_eq!(did_you_mean("max_attempt", keys), Some("max_attempts"));
        assert_eq!(did_you_mean("backof", keys), Some("backoff"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(
            did_you_mean("exponentail", ["fixed", "linear", "exponential"]),
            Some("exponential")
        );
    }
}
