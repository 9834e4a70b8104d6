//! The annotated function: parsed loosely (so a bad item still round-trips to
//! the IDE), checked, and taken apart for the expansion.
//!
//! Input:  `#[retry(..)] pub async fn get(&self, id: String) -> Result<T, E> { .. }`
//! Output: `Func { attrs (ours removed), vis, sig, block }` plus `ClonedArg { id }`

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Block, FnArg, Pat, PatIdent, ReturnType, Signature, Token, Type, Visibility};

use crate::args::Errors;
use crate::layers::Kind;

/// A function item, with or without a body (`fn f();` in a trait).
pub(crate) struct Func {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) block: Option<Block>,
    pub(crate) semi: Option<Token![;]>,
    /// Paths of the resilience attributes taken off `attrs` (see
    /// [`Func::take_siblings`]), kept in use when the item is re-emitted as is.
    taken: Vec<syn::Path>,
}

impl Parse for Func {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            let semi = input.parse()?;
            return Ok(Func {
                attrs,
                vis,
                sig,
                block: None,
                semi: Some(semi),
                taken: Vec::new(),
            });
        }
        let block = input.parse()?;
        Ok(Func {
            attrs,
            vis,
            sig,
            block: Some(block),
            semi: None,
            taken: Vec::new(),
        })
    }
}

/// The item as written (emitted next to our errors), minus the resilience
/// attributes taken off it: their paths are used from inside the body, so the
/// user's `use resilience::retry;` gets no `unused_imports` warning on top.
impl ToTokens for Func {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        if let Some(block) = &self.block {
            block.brace_token.surround(tokens, |tokens| {
                for path in &self.taken {
                    tokens.extend(quote! {
                        #[allow(unused_imports, clippy::single_component_path_imports)]
                        use #path as _;
                    });
                }
                for stmt in &block.stmts {
                    stmt.to_tokens(tokens);
                }
            });
        }
        self.semi.to_tokens(tokens);
    }
}

/// A resilience attribute found on the item (a sibling of the one expanding).
pub(crate) struct Sibling {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
    pub(crate) tokens: TokenStream,
    /// The attribute's path as written, re-emitted as `use path as _;` so the
    /// user's `use resilience::retry;` still counts as used.
    pub(crate) path: syn::Path,
}

impl Func {
    /// Removes the resilience attributes below the expanding one and returns
    /// them in written order, so the first attribute composes the whole stack.
    pub(crate) fn take_siblings(&mut self, errors: &mut Errors) -> Vec<Sibling> {
        let mut siblings = Vec::new();
        self.attrs.retain(|attr| {
            let Some(kind) = kind_of(attr) else {
                return true;
            };
            let tokens = match &attr.meta {
                syn::Meta::Path(_) => TokenStream::new(),
                syn::Meta::List(list) => list.tokens.clone(),
                syn::Meta::NameValue(nv) => {
                    errors.push_at(
                        nv,
                        format!(
                            "write `{}` with parentheses: `#[{}(...)]`",
                            kind.attr(),
                            kind.name()
                        ),
                    );
                    TokenStream::new()
                }
            };
            siblings.push(Sibling {
                kind,
                span: attr.path().span(),
                tokens,
                path: attr.path().clone(),
            });
            false
        });
        self.taken = siblings.iter().map(|s| s.path.clone()).collect();
        siblings
    }

    /// Checks what every resilience attribute needs of the function itself.
    /// Takes `const` off after reporting it, so that the item emitted with our
    /// errors does not add rustc's "functions cannot be both `const` and `async`".
    pub(crate) fn check(&mut self, kind: Kind, errors: &mut Errors) {
        let attr = kind.attr();
        let fn_token = self.sig.fn_token;
        match (&self.sig.constness, &self.sig.asyncness) {
            (Some(constness), Some(_)) => errors.push_at(
                constness,
                format!("`{attr}` cannot be used on a `const fn`; remove `const`"),
            ),
            (Some(constness), None) => errors.push_at(
                quote!(#constness #fn_token),
                format!("`{attr}` can only be used on an `async fn`; write `async fn` instead of `const fn`"),
            ),
            // Async, future-returning, or synchronous: every shape is served.
            (None, _) => {}
        }
        self.sig.constness = None;
        if self.block.is_none() {
            errors.push_at(
                &self.sig.ident,
                format!("`{attr}` needs a function with a body; put it on the implementation, not the declaration"),
            );
        }
        if let Some(output) = self.future_output() {
            if never_a_result(output) {
                errors.push_at(
                    output,
                    format!(
                        "`{attr}` needs the future's output to be `Result<_, _>`, found `{}`",
                        type_text(output)
                    ),
                );
            }
            return;
        }
        match &self.sig.output {
            ReturnType::Default => errors.push_span(
                self.sig.paren_token.span.close(),
                format!(
                    "`{attr}` needs the function to return `Result<_, _>`; add `-> Result<T, E>`"
                ),
            ),
            ReturnType::Type(_, ty) if never_a_result(ty) => errors.push_at(
                ty,
                format!(
                    "`{attr}` needs the function to return `Result<_, _>`, found `{}`",
                    type_text(ty)
                ),
            ),
            ReturnType::Type(..) => {}
        }
        if let Some(variadic) = &self.sig.variadic {
            errors.push_at(
                variadic,
                format!("`{attr}` cannot be used on a variadic function"),
            );
        }
    }

    /// For a `fn` (not `async`) returning `impl Future<Output = X> (+ …)`,
    /// or the `Pin<Box<dyn Future<Output = X> + …>>` that `#[async_trait]`
    /// turns an `async fn` into: `X`, the result the layers see.
    pub(crate) fn future_output(&self) -> Option<&Type> {
        if self.sig.asyncness.is_some() {
            return None;
        }
        let ReturnType::Type(_, ty) = &self.sig.output else {
            return None;
        };
        let bounds = match &**ty {
            Type::ImplTrait(imp) => &imp.bounds,
            other => boxed_dyn(other)?,
        };
        bounds.iter().find_map(|bound| {
            let syn::TypeParamBound::Trait(t) = bound else {
                return None;
            };
            let last = t.path.segments.last()?;
            if last.ident != "Future" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            args.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::AssocType(a) if a.ident == "Output" => Some(&a.ty),
                _ => None,
            })
        })
    }

    /// A plain synchronous `fn` (neither `async` nor returning a future):
    /// the layers run on the calling thread, blocking.
    pub(crate) fn is_sync(&self) -> bool {
        self.sig.asyncness.is_none() && self.future_output().is_none()
    }

    /// Whether the returned future is boxed (`Pin<Box<dyn Future>>`, as
    /// `#[async_trait]` writes it): the layers' future is then boxed too.
    pub(crate) fn boxed_future(&self) -> bool {
        self.future_output().is_some()
            && matches!(&self.sig.output, ReturnType::Type(_, ty) if boxed_dyn(ty).is_some())
    }

    /// The type of the result the layers see: the return type of an `async
    /// fn`, the `Output` of a returned `impl Future`.
    pub(crate) fn result_type(&self) -> Option<&Type> {
        if let Some(output) = self.future_output() {
            return Some(output);
        }
        match &self.sig.output {
            ReturnType::Type(_, ty) => Some(ty),
            ReturnType::Default => None,
        }
    }

    /// The result type with every `impl Trait` replaced by `_`, for the
    /// "fake return edge" that fixes the body's type.
    pub(crate) fn return_type_for_inference(&self) -> Option<Type> {
        if self.future_output().is_some() {
            return None; // the body is typed by the future it evaluates to
        }
        let ReturnType::Type(_, ty) = &self.sig.output else {
            return None;
        };
        let mut ty = (**ty).clone();
        ImplTraitToInfer.visit_type_mut(&mut ty);
        Some(ty)
    }

    /// Span of the result type (for errors about it).
    pub(crate) fn return_span(&self) -> Span {
        match self.result_type() {
            Some(ty) => ty.span(),
            None => self.sig.ident.span(),
        }
    }

    /// Span of the error type (`E` in `Result<T, E>`), or of the whole
    /// return type when it is an alias.
    pub(crate) fn error_span(&self) -> Span {
        if let Some(Type::Path(p)) = self.result_type() {
            if let Some(syn::PathArguments::AngleBracketed(args)) =
                p.path.segments.last().map(|s| &s.arguments)
            {
                if let (2, Some(syn::GenericArgument::Type(e))) =
                    (args.args.len(), args.args.last())
                {
                    return e.span();
                }
            }
        }
        self.return_span()
    }

    /// The bindings a retry must clone before each attempt: every by-value
    /// argument (not references, not `self`), with its declared type when the
    /// argument is a plain name (so a non-`Clone` error names the type).
    pub(crate) fn cloned_args(&self) -> Vec<ClonedArg> {
        let mut out = Vec::new();
        for input in &self.sig.inputs {
            let FnArg::Typed(typed) = input else {
                continue; // `self`: cannot be shadowed; borrowed by the attempt
            };
            if matches!(*typed.ty, Type::Reference(_)) {
                continue;
            }
            let mut bindings = Bindings(Vec::new());
            bindings.visit_pat(&typed.pat);
            let ty = match (&*typed.pat, has_impl_trait(&typed.ty)) {
                (Pat::Ident(_), false) => Some((*typed.ty).clone()),
                _ => None,
            };
            out.extend(bindings.0.into_iter().map(|binding| ClonedArg {
                binding,
                ty: ty.clone(),
            }));
        }
        out
    }

    /// The arguments a fallback is called with, in order.
    ///
    /// # Errors
    ///
    /// An argument that is a pattern (`(a, b): (u32, u32)`): the fallback
    /// could not be given "the same arguments".
    pub(crate) fn fallback_args(&self) -> syn::Result<Vec<FallbackArg>> {
        self.sig
            .inputs
            .iter()
            .map(|input| match input {
                FnArg::Receiver(r) => Ok(FallbackArg::Receiver {
                    by_value: r.reference.is_none(),
                }),
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        if matches!(*typed.ty, Type::Reference(_)) {
                            Ok(FallbackArg::Borrowed(pi.ident.clone()))
                        } else {
                            Ok(FallbackArg::Owned(pi.ident.clone()))
                        }
                    }
                    other => Err(syn::Error::new_spanned(
                        other,
                        "`fallback` passes the function's arguments on by name; destructure this one inside the body instead",
                    )),
                },
            })
            .collect()
    }
}

/// A by-value argument cloned for each attempt.
pub(crate) struct ClonedArg {
    pub(crate) binding: PatIdent,
    pub(crate) ty: Option<Type>,
}

/// How one argument reaches the fallback.
pub(crate) enum FallbackArg {
    /// `self`: passed on as is when a reference, cloned up front when by value.
    Receiver { by_value: bool },
    /// A reference argument: passed on as is.
    Borrowed(syn::Ident),
    /// A by-value argument: cloned up front (the body may consume it).
    Owned(syn::Ident),
}

/// The bounds of `dyn …` in `Pin<Box<dyn …>>`.
fn boxed_dyn(ty: &Type) -> Option<&syn::punctuated::Punctuated<syn::TypeParamBound, Token![+]>> {
    fn only_type_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
        let Type::Path(p) = ty else { return None };
        let last = p.path.segments.last()?;
        if last.ident != name {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        match args.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }
    }
    let boxed = only_type_arg(ty, "Pin")?;
    match only_type_arg(boxed, "Box")? {
        Type::TraitObject(obj) => Some(&obj.bounds),
        _ => None,
    }
}

fn has_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    f.visit_type(ty);
    f.0
}

/// Whether `ty` can be told apart from a `Result` by its syntax alone: `u32`,
/// `()`, `String`, `Option<T>`, `&str`, ... Aliases (`anyhow::Result<T>`,
/// `MyResult`) are left to the type checker.
fn never_a_result(ty: &Type) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Option", "Vec",
    ];
    match ty {
        Type::Paren(p) => never_a_result(&p.elem),
        Type::Group(g) => never_a_result(&g.elem),
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Ptr(_)
        | Type::Never(_)
        | Type::BareFn(_) => true,
        Type::Path(p) => {
            p.qself.is_none()
                && p.path.leading_colon.is_none()
                && p.path.segments.len() == 1
                && NOT_RESULTS.contains(&p.path.segments[0].ident.to_string().as_str())
        }
        _ => false,
    }
}

/// A type as a person writes it: `Option<u32>`, not `Option < u32 >`.
fn type_text(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (" ,", ","),
        ("& ", "&"),
        ("( )", "()"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// Which resilience attribute `attr` is, if any: `retry`, `resilience::retry`
/// or `::resilience::retry`.
fn kind_of(attr: &Attribute) -> Option<Kind> {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let last = match segments.as_slice() {
        [one] if path.leading_colon.is_none() => one,
        [krate, one] if krate == "resilience" => one,
        _ => return None,
    };
    Kind::ALL.into_iter().find(|k| k.name() == last)
}

struct ImplTraitToInfer;

impl VisitMut for ImplTraitToInfer {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: Token![_](it.impl_token.span),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// The by-value identifiers a pattern binds.
struct Bindings(Vec<PatIdent>);

impl Visit<'_> for Bindings {
    fn visit_pat(&mut self, pat: &Pat) {
        match pat {
            Pat::Ident(pi) if pi.by_ref.is_none() => {
                let mut binding = pi.clone();
                binding.attrs.clear();
                binding.subpat = None;
                self.0.push(binding);
            }
            Pat::Reference(_) => {} // `&x: &T`: bindings of a reference
            _ => syn::visit::visit_pat(self, pat),
        }
    }
}
