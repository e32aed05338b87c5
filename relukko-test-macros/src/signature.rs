//! Finds the optional `Lease` parameter of a locked function and rejects
//! parameters that are clearly wrong.
//!
//! Rules:
//! - At most one parameter whose type is a path ending in `Lease`
//!   (`Lease`, `relukko::Lease`, `my_relukko::Lease`), taken by value. The
//!   macro removes it and passes the lease in.
//! - With several plain names there is no single lease to hand out: a
//!   `Lease` parameter is an error there (use one name or `any_of`).
//! - `&Lease` is an error (take it by value).
//! - Other parameters pass through unchanged, because parameterized test
//!   frameworks need them (`#[locked] #[rstest] fn t(#[case] x: u32)`), and
//!   a helper function may take arguments. They are rejected only where they
//!   are clearly wrong: the function visibly carries `#[test]` or
//!   `#[tokio::test]`, and nothing else on it could supply arguments.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, FnArg, Pat, PatType, Signature, Type};

use crate::config::Config;

/// The `Lease` parameter, removed from the signature.
pub(crate) struct LeaseParam {
    /// Its position in `sig.inputs`.
    pub(crate) index: usize,
    /// Outer attributes on it (`#[allow(unused)]`), kept on the closure.
    pub(crate) attrs: Vec<Attribute>,
    /// The binding pattern (`lease`, `mut lease`, `_lease`).
    pub(crate) pat: Box<Pat>,
    /// The type as written, kept on the closure parameter so an imported
    /// `Lease` stays used (and a wrong `Lease` type is a plain type error).
    pub(crate) ty: Box<Type>,
}

/// Attributes that never supply arguments: with only these (and a test
/// attribute) on the function, a non-`Lease` parameter is a mistake.
const PASSIVE: &[&str] = &[
    "test",
    "should_panic",
    "ignore",
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "doc",
    "inline",
    "track_caller",
    "must_use",
    "cfg",
];

/// Finds the `Lease` parameter; errors on parameters that are clearly wrong.
pub(crate) fn find_lease(
    attrs: &[Attribute],
    sig: &Signature,
    config: &Config,
) -> syn::Result<Option<LeaseParam>> {
    let mut found: Option<LeaseParam> = None;
    let plain_test = is_plain_test(attrs);
    for (index, arg) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = arg else {
            continue; // `self`: a method; the move closure captures it fine.
        };
        if is_lease(&typed.ty) {
            if found.is_some() {
                return Err(syn::Error::new_spanned(
                    typed,
                    "only one `Lease` parameter is allowed; remove this one and use the first",
                ));
            }
            if config.names.len() > 1 && !config.any_of {
                return Err(syn::Error::new_spanned(
                    typed,
                    "a `Lease` parameter needs exactly one resource, but this test holds several; \
                     name one resource, `#[locked(\"a\")]`, or use a pool, \
                     `#[locked(any_of(\"a\", \"b\"))]`, to learn which one it got; or remove \
                     this parameter",
                ));
            }
            found = Some(LeaseParam {
                index,
                attrs: typed.attrs.clone(),
                pat: typed.pat.clone(),
                ty: typed.ty.clone(),
            });
        } else if let Some(inner) = referenced_lease(&typed.ty) {
            return Err(syn::Error::new_spanned(
                &typed.ty,
                format!(
                    "take the `Lease` by value: write `{}: {}`",
                    pretty(&typed.pat),
                    pretty(inner)
                ),
            ));
        } else if plain_test && typed.attrs.is_empty() {
            return Err(not_a_lease(typed));
        }
    }
    if found.is_some()
        && let Some(attr) = left_by_a_test_above(attrs)
    {
        return Err(syn::Error::new_spanned(
            attr,
            format!(
                "`#[{}]` is below `#[locked]` but no `#[test]` is: with `#[test]` above \
                 `#[locked]`, `#[test]` runs first and rejects the `Lease` parameter (rustc: \
                 \"functions used as tests can not have any arguments\"); put `#[locked]` \
                 above `#[test]`",
                pretty(attr.path())
            ),
        ));
    }
    Ok(found)
}

/// `#[should_panic]` or `#[ignore]` with no test attribute beside it and
/// nothing that could make the function a test: the trace a `#[test]`
/// written above `#[locked]` leaves, since it expands first and takes
/// itself off the function (`#[locked]` then sees a bare `fn`; without such
/// a trace that order cannot be told from a helper function).
fn left_by_a_test_above(attrs: &[Attribute]) -> Option<&Attribute> {
    let last = |a: &Attribute| a.path().segments.last().map(|s| s.ident.to_string());
    let passive = attrs
        .iter()
        .all(|a| last(a).is_some_and(|name| name != "test" && PASSIVE.contains(&name.as_str())));
    if !passive {
        return None;
    }
    attrs
        .iter()
        .find(|a| matches!(last(a).as_deref(), Some("should_panic" | "ignore")))
}

fn not_a_lease(typed: &PatType) -> syn::Error {
    syn::Error::new_spanned(
        &typed.ty,
        format!(
            "a test function takes no arguments, and `#[locked]` only fills in one `Lease` \
             parameter (`lease: relukko::Lease`); remove `{}: {}`, or for a parameterized test \
             put `#[locked(...)]` above `#[rstest]`",
            pretty(&typed.pat),
            pretty(&typed.ty)
        ),
    )
}

/// Tokens as a person writes them: `relukko::Lease`, not `relukko :: Lease`.
pub(crate) fn pretty(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
    ] {
        text = text.replace(from, to);
    }
    // Undo the squeeze where a keyword precedes an absolute path.
    for keyword in ["mut", "dyn", "impl"] {
        text = text.replace(&format!("{keyword}::"), &format!("{keyword} ::"));
    }
    text
}

/// Carries a test attribute (`#[test]`, `#[tokio::test]`) and nothing that
/// could supply arguments (`#[rstest]`, `#[test_case(..)]`, unknown ones).
fn is_plain_test(attrs: &[Attribute]) -> bool {
    let last = |a: &Attribute| a.path().segments.last().map(|s| s.ident.to_string());
    attrs.iter().any(|a| last(a).as_deref() == Some("test"))
        && attrs
            .iter()
            .all(|a| last(a).is_some_and(|name| PASSIVE.contains(&name.as_str())))
}

/// `#[test]`, `#[tokio::test]` and the like, and the attributes that only
/// mean something on a test (`#[should_panic]`, `#[ignore]`).
pub(crate) fn is_test_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "test" || s.ident == "should_panic" || s.ident == "ignore")
}

/// A test attribute proper: `#[test]`, `#[tokio::test]`,
/// `#[core::prelude::v1::test]`, any path ending in `test`.
pub(crate) fn is_test_marker(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "test")
}

/// `#[should_panic]` or `#[should_panic(expected = "...")]`.
pub(crate) fn is_should_panic(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "should_panic")
}

/// A by-value path type whose last segment is `Lease`, without generics.
fn is_lease(ty: &Type) -> bool {
    match ty {
        Type::Group(g) => is_lease(&g.elem),
        Type::Paren(p) => is_lease(&p.elem),
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Lease" && s.arguments.is_none()),
        _ => false,
    }
}

/// `&Lease` / `&mut Lease`: returns the `Lease` type for the message.
fn referenced_lease(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Group(g) => referenced_lease(&g.elem),
        Type::Reference(r) if is_lease(&r.elem) => Some(&r.elem),
        _ => None,
    }
}

/// The signature without the parameter at `index`.
pub(crate) fn without_param(sig: &Signature, index: usize) -> Signature {
    let mut sig = sig.clone();
    sig.inputs = sig
        .inputs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != index)
        .map(|(_, arg)| arg.clone())
        .collect();
    sig
}

/// The return type to write on the closure so `?` infers its error type, or
/// nothing where a closure cannot spell it (`impl Trait`, references and
/// lifetimes, `!`) or it adds nothing (`()`).
pub(crate) fn closure_return(sig: &Signature) -> Option<TokenStream> {
    let syn::ReturnType::Type(arrow, ty) = &sig.output else {
        return None;
    };
    if matches!(**ty, Type::Never(_)) || matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
        return None;
    }
    if mentions_unspellable(ty.to_token_stream()) {
        return None;
    }
    Some(quote::quote!(#arrow #ty))
}

fn mentions_unspellable(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '&' || p.as_char() == '\'',
        proc_macro2::TokenTree::Group(g) => mentions_unspellable(g.stream()),
        proc_macro2::TokenTree::Literal(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_prints_types_as_written() {
        let ty: Type = syn::parse_quote!(&mut ::relukko::Lease);
        assert_eq!(pretty(&ty), "&mut ::relukko::Lease");
        let ty: Type = syn::parse_quote!(Result<(), Box<dyn Error>>);
        assert_eq!(pretty(&ty), "Result<(), Box<dyn Error>>");
    }
}
