//! Code generation: wraps the function body in a call to the runtime.
//!
//! ```text
//! #[attrs] vis fn name(<params without the Lease>) -> R {
//!     ::relukko::__private::run_sync(&::relukko::__private::Spec { .. },
//!         move |lease: ::relukko::__private::Lease| -> R { <body> })
//! }
//! ```
//! `async fn` awaits `run_async(&Spec { .. }, move |lease| async move { <body> })`
//! and fails with `__private::fail` on its error, at the attribute's span.
//! The body stays a block of its own, so `return` and `?` inside it keep
//! working. All logic lives in the runtime; this stays small.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Item, ItemFn, LitStr, Signature};

use crate::config::{self, Config};
use crate::duration;
use crate::signature::{self, LeaseParam};

/// The whole attribute: on any error, the error followed by the item, so the
/// rest of the crate still type-checks (and rust-analyzer still sees the
/// function).
pub(crate) fn locked(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_locked(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => failed(&err, item, false),
    }
}

/// `#[relukko::test(...)]`: the test attribute and `#[locked(...)]` in one.
/// The same arguments, validated by the same `config`; the function gets
/// `#[::core::prelude::v1::test]` on top of what `#[locked]` emits, and an
/// `async fn` runs on a tokio current-thread runtime of the library's
/// (`__private::block_on`).
pub(crate) fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_test(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => failed(&err, item, true),
    }
}

/// The error, then the item, so the rest of the crate still type-checks.
fn failed(err: &syn::Error, item: TokenStream, always_allow_dead_code: bool) -> TokenStream {
    let error = err.to_compile_error();
    let item = without_test_attrs(item, always_allow_dead_code);
    quote!(#error #item)
}

/// The item for the error path: a function loses its test attributes
/// (`#[test]`, `#[tokio::test]`, ...) below the attribute, so that our error
/// is not followed by the harness's own about the same parameters
/// ("functions used as tests can not have any arguments"); `dead_code` is
/// allowed since nothing calls it now (and, with `always_allow_dead_code`,
/// on a function `#[relukko::test]` would have made a test). Anything else
/// is returned unchanged.
fn without_test_attrs(item: TokenStream, always_allow_dead_code: bool) -> TokenStream {
    let Ok(mut func) = syn::parse2::<ItemFn>(item.clone()) else {
        return item;
    };
    let before = func.attrs.len();
    func.attrs.retain(|a| !signature::is_test_attr(a));
    if func.attrs.len() == before && !always_allow_dead_code {
        return item;
    }
    quote!(#[allow(dead_code)] #func)
}

/// The arguments and the function, or every error of both.
fn parse_both(
    attr: TokenStream,
    item: TokenStream,
    attr_name: &str,
) -> syn::Result<(Config, ItemFn)> {
    match (config::parse(attr), parse_fn(item, attr_name)) {
        (Ok(config), Ok(func)) => Ok((config, func)),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            Err(a)
        }
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

fn try_locked(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let (config, func) = parse_both(attr, item, "locked")?;
    let lease = signature::find_lease(&func.attrs, &func.sig, &config)?;
    Ok(generate(&config, &func, lease))
}

fn try_test(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let (config, mut func) = parse_both(attr, item, "relukko::test")?;
    if let Some(other) = func.attrs.iter().find(|a| signature::is_test_marker(a)) {
        return Err(duplicate_test_attr(other, func.sig.asyncness.is_some()));
    }
    if let Some(other) = func.attrs.iter().find(|a| is_parameterized(a)) {
        let what = signature::pretty(other.path());
        return Err(syn::Error::new_spanned(
            other,
            format!(
                "`#[relukko::test]` makes a plain test, which takes no arguments; for \
                 `#[{what}]`, write `#[relukko::locked(...)]` above `#[{what}]` instead"
            ),
        ));
    }
    // The parameter checks see the function as a plain test: a parameter
    // other than the `Lease` is an error, as on any `#[test]`.
    let marker: syn::Attribute = syn::parse_quote!(#[::core::prelude::v1::test]);
    let lease = signature::find_lease(std::slice::from_ref(&marker), &func.sig, &config)?;
    func.attrs.insert(0, marker);
    let krate = krate(&config);
    let (mut sig, call) = wrapped(&config, &func, lease, &krate);
    let call = match sig.asyncness.take() {
        Some(_) => quote!(#krate::__private::block_on(async move { #call })),
        None => call,
    };
    Ok(emit(&func, &sig, &call))
}

/// The attributes of parameterized test frameworks, which make tests of
/// their own from a function with arguments.
fn is_parameterized(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "rstest" || s.ident == "test_case")
}

/// `#[test]`, `#[tokio::test]`, ... on a function that `#[relukko::test]`
/// already makes a test: two tests of one function, or a runtime on top of
/// the one `#[relukko::test]` starts.
fn duplicate_test_attr(other: &syn::Attribute, is_async: bool) -> syn::Error {
    let what = signature::pretty(other.path());
    let fix = if is_async || what != "test" {
        format!(
            "remove `#[{what}]`: `#[relukko::test]` runs an `async fn` on a tokio \
             current-thread runtime itself; for another runtime or flavor, write \
             `#[relukko::locked(...)]` above `#[{what}]` instead"
        )
    } else {
        "remove this `#[test]`".to_owned()
    };
    syn::Error::new_spanned(
        other,
        format!(
            "duplicate test attribute: `#[relukko::test]` is already the test attribute \
             (`#[test]` and `#[relukko::locked]` in one); {fix}"
        ),
    )
}

/// The item as a function with a body, or an error on what it is instead.
fn parse_fn(item: TokenStream, attr_name: &str) -> syn::Result<ItemFn> {
    let msg = format!("`#[{attr_name}]` goes on a function (a test `fn`, sync or async)");
    // Parse as any item first: so the error can point at `struct`, `const`...
    let err = |span: proc_macro2::Span, what: &str| {
        syn::Error::new(
            span,
            format!("{msg}, not on {what}; move it onto the test function"),
        )
    };
    match syn::parse2::<Item>(item)? {
        Item::Fn(func) => {
            if let Some(constness) = func.sig.constness {
                return Err(err(
                    constness.span,
                    "a `const fn` (it cannot wait for a lock)",
                ));
            }
            Ok(func)
        }
        Item::Struct(s) => Err(err(s.struct_token.span, "a struct")),
        Item::Enum(e) => Err(err(e.enum_token.span, "an enum")),
        Item::Const(c) => Err(err(c.const_token.span, "a const")),
        Item::Static(s) => Err(err(s.static_token.span, "a static")),
        Item::Mod(m) => Err(err(m.mod_token.span, "a module")),
        Item::Impl(i) => Err(err(
            i.impl_token.span,
            "an impl block (put it on each method)",
        )),
        Item::Trait(t) => Err(err(t.trait_token.span, "a trait")),
        Item::Type(t) => Err(err(t.type_token.span, "a type alias")),
        Item::Use(u) => Err(err(u.use_token.span, "a `use`")),
        other => Err(syn::Error::new_spanned(other, format!("{msg} with a body"))),
    }
}

/// The function with its body wrapped. Attributes (including
/// `#[tokio::test]`, `#[should_panic]`, `#[rstest]`), visibility and
/// signature are kept, minus the `Lease` parameter.
fn generate(config: &Config, func: &ItemFn, lease: Option<LeaseParam>) -> TokenStream {
    let krate = krate(config);
    let (sig, call) = wrapped(config, func, lease, &krate);
    emit(func, &sig, &call)
}

fn krate(config: &Config) -> TokenStream {
    match &config.krate {
        Some(path) => quote!(#path),
        None => quote!(::relukko),
    }
}

/// The function's attributes and visibility, on `sig` with `call` as body.
///
/// The body's braces are the function's own (their spans, not the macro's):
/// rustc holds back every lint on an item whose tokens all come from another
/// crate's macro, so with braces of ours a private `#[locked]` function that
/// nothing calls (a test without its test attribute) would not get its
/// `dead_code` warning ("function `x` is never used").
fn emit(func: &ItemFn, sig: &Signature, call: &TokenStream) -> TokenStream {
    let attrs = &func.attrs;
    let vis = &func.vis;
    let mut body = TokenStream::new();
    func.block
        .brace_token
        .surround(&mut body, |tokens| tokens.extend(call.clone()));
    quote! {
        #(#attrs)*
        #vis #sig #body
    }
}

/// The signature without the `Lease` parameter, and the body wrapped in a
/// call to the runtime (awaited in an `async fn`).
fn wrapped(
    config: &Config,
    func: &ItemFn,
    lease: Option<LeaseParam>,
    krate: &TokenStream,
) -> (Signature, TokenStream) {
    let spec = spec(config, krate, func);
    let (sig, param) = match lease {
        Some(LeaseParam {
            index,
            attrs,
            pat,
            ty,
        }) => (
            signature::without_param(&func.sig, index),
            quote!(#(#attrs)* #pat: #ty),
        ),
        None => (func.sig.clone(), quote!(_: #krate::__private::Lease)),
    };
    let body = &func.block;
    // A `#[should_panic]` test must not pass on a locking failure: its entry
    // points fail it without a panic. The attribute is in `func.attrs`
    // whichever side of `#[locked]` it is written on: the compiler passes
    // inert attributes on both sides to an attribute macro.
    let should_panic = func.attrs.iter().any(signature::is_should_panic);
    let call = match (func.sig.asyncness.is_some(), should_panic) {
        // A failure is returned, and fails the test here, in its own body:
        // the panic's location is the `#[locked]` attribute's span, where
        // one in the runtime's async code would point into the library.
        (true, false) => quote! {
            match #krate::__private::run_async(&#spec, move |#param| async move #body).await {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(failure) => #krate::__private::fail(failure),
            }
        },
        (true, true) => quote! {
            #krate::__private::run_async_should_panic(&#spec, move |#param| async move #body).await
        },
        (false, should_panic) => {
            let ret = signature::closure_return(&func.sig);
            let run = if should_panic {
                quote!(run_sync_should_panic)
            } else {
                quote!(run_sync)
            };
            quote! {
                #krate::__private::#run(&#spec, move |#param| #ret #body)
            }
        }
    };
    (sig, call)
}

fn spec(config: &Config, krate: &TokenStream, func: &ItemFn) -> TokenStream {
    let names = &config.names;
    let any_of = config.any_of;
    let timeout = optional(config.timeout.map(duration::to_tokens));
    let lease = optional(config.lease.map(duration::to_tokens));
    let creator = optional(config.creator.as_ref().map(|c| quote!(#c)));
    let ident = &func.sig.ident;
    let name = ident.to_string();
    let name = LitStr::new(name.strip_prefix("r#").unwrap_or(&name), ident.span());
    quote! {
        #krate::__private::Spec {
            names: &[#(#names),*],
            any_of: #any_of,
            timeout: #timeout,
            lease: #lease,
            creator: #creator,
            test: ::core::concat!(::core::module_path!(), "::", #name),
        }
    }
}

fn optional(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
