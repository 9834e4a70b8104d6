//! An attribute value's source text for the manifest, from its tokens.
//!
//! Input:  the tokens of `crate :: alerts :: page` or `| e | e . is_transient ()`
//! Output: `crate::alerts::page`, `|e| e.is_transient()`
//!
//! Whitespace is normalised (the tokens keep none): literals and paths come
//! out exactly as written; other expressions as rustfmt would roughly lay
//! them out on one line.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The source text of `tokens`, on one line.
pub(crate) fn text(tokens: TokenStream) -> String {
    let mut out = Printer::default();
    out.stream(tokens);
    out.text
}

/// What was written last, for the spacing before the next token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Start of the text or just after an opening delimiter.
    Open,
    /// An identifier, literal or closed group: a value.
    Word,
    /// Punctuation after which no space goes: `::`, `.`, `&`, `!`, `#`, `'`,
    /// unary `-`, an opening closure `|`.
    Tight,
    /// Any other punctuation (`,`, `=`, `=>`, `+`, a closing closure `|`).
    Spaced,
}

struct Printer {
    text: String,
    last: Last,
    /// Inside the parameter list of a closure (`|a, b|`).
    in_params: bool,
}

impl Default for Printer {
    fn default() -> Self {
        Printer {
            text: String::new(),
            last: Last::Open,
            in_params: false,
        }
    }
}

impl Printer {
    fn stream(&mut self, tokens: TokenStream) {
        let mut trees = tokens.into_iter().peekable();
        while let Some(tree) = trees.next() {
            match tree {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::None => ("", ""),
                    };
                    // A call or an index sticks to what it follows.
                    let tight = g.delimiter() != Delimiter::Brace && self.last == Last::Word;
                    if !tight {
                        self.space();
                    }
                    self.text.push_str(open);
                    let brace = g.delimiter() == Delimiter::Brace && !g.stream().is_empty();
                    if brace {
                        self.text.push(' ');
                    }
                    self.last = Last::Open;
                    let in_params = std::mem::replace(&mut self.in_params, false);
                    self.stream(g.stream());
                    self.in_params = in_params;
                    if brace {
                        self.text.push(' ');
                    }
                    self.text.push_str(close);
                    self.last = Last::Word;
                }
                TokenTree::Ident(i) => {
                    self.space();
                    self.text.push_str(&i.to_string());
                    self.last = Last::Word;
                }
                TokenTree::Literal(l) => {
                    self.space();
                    self.text.push_str(&l.to_string());
                    self.last = Last::Word;
                }
                TokenTree::Punct(p) => {
                    // A joint run (`::`, `=>`, `..`, `||`) is one operator.
                    let mut op = String::from(p.as_char());
                    let mut spacing = p.spacing();
                    while spacing == Spacing::Joint {
                        match trees.peek() {
                            Some(TokenTree::Punct(next)) => {
                                op.push(next.as_char());
                                spacing = next.spacing();
                                trees.next();
                            }
                            _ => break,
                        }
                    }
                    self.punct(&op);
                }
            }
        }
    }

    fn space(&mut self) {
        if matches!(self.last, Last::Word | Last::Spaced) {
            self.text.push(' ');
        }
    }

    fn punct(&mut self, op: &str) {
        let at_start = matches!(self.last, Last::Open | Last::Spaced | Last::Tight);
        let (space_before, last) = match op {
            "," | ";" => (false, Last::Spaced),
            "::" | "." | ".." | "..=" | "'" => (false, Last::Tight),
            ":" => (false, Last::Spaced),
            "?" => (false, Last::Word),
            "!" if self.last == Last::Word => (false, Last::Tight), // a macro call
            "|" if at_start && !self.in_params => {
                self.in_params = true;
                (true, Last::Tight)
            }
            "|" if self.in_params => {
                self.in_params = false;
                (false, Last::Spaced)
            }
            "&" | "!" | "-" | "*" | "#" if at_start => (true, Last::Tight),
            "||" if at_start => (true, Last::Spaced), // a closure without parameters
            _ => (true, Last::Spaced),
        };
        if space_before {
            self.space();
        }
        self.text.push_str(op);
        self.last = last;
    }
}

#[cfg(test)]
mod tests {
    use super::text;

    #[track_caller]
    fn same(source: &str) {
        let tokens: proc_macro2::TokenStream = source.parse().unwrap();
        assert_eq!(text(tokens), source);
    }

    #[test]
    fn values_come_out_as_written() {
        for source in [
            "5",
            "0.5",
            "\"30s\"",
            "alert",
            "crate::alerts::page",
            "Self::ALERT",
            "|e| e.is_transient()",
            "|e: &ApiError| matches!(e, ApiError::Timeout)",
            "|_, e, d| log(e, d)",
            "|| true",
            "[ApiError::Timeout, ApiError::Unavailable(..)]",
            "self.name.as_str()",
            "&self.tenant",
            "-5",
            "a + b * 2",
            "format!(\"provider-{}\", id)",
            "|t| { COUNT.fetch_add(1, Ordering::SeqCst); }",
            "!flag",
            "x?",
        ] {
            same(source);
        }
    }
}
