//! Parses and validates the arguments of `#[locked(...)]` into a [`Config`].
//!
//! Grammar: `#[locked]`, `#[locked("a", "b", ...)]` or
//! `#[locked(any_of("a", "b", ...))]`, then options in any order:
//! `timeout = "10m"`, `lease = "60s"`, `creator = "..."`, `crate = path`.
//! Names come first, like positional arguments before named ones in
//! `format!`. Every error carries the span of the offending token and says
//! how to fix it.

use std::fmt;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Lit, LitStr, Path, Token, parenthesized};

use crate::duration;
use crate::hint::{OPTIONS, did_you_mean, example, is_name_key, quoted};

/// The shortest lease, the runtime's `MIN_LEASE` (relukko-test's
/// `src/config.rs`, which says why): this crate cannot import it, so the
/// e2e suite `locked_ui` fails when the two bounds or their words disagree.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(2);

/// What every "expected ..." message lists.
const VALID: &str = "resource names like `\"hil-rig-3\"` or `any_of(\"rig-1\", \"rig-2\")`, \
                     then options `timeout = \"10m\"`, `lease = \"60s\"`, `creator = \"...\"`, \
                     `crate = path`";

/// A validated `#[locked(...)]` attribute.
pub(crate) struct Config {
    /// Resources as written (spans kept for the generated code). Empty:
    /// the runtime derives one name from the test.
    pub(crate) names: Vec<LitStr>,
    /// `any_of(...)`: hold whichever of `names` is free first (>= 2 names).
    pub(crate) any_of: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) lease: Option<Duration>,
    pub(crate) creator: Option<LitStr>,
    /// `crate = path`; `None` means `::relukko`.
    pub(crate) krate: Option<Path>,
}

// Hand-written: syn's types implement Debug only with its `extra-traits`
// feature, which is not worth its compile time here.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.names.iter().map(LitStr::value).collect();
        f.debug_struct("Config")
            .field("names", &names)
            .field("any_of", &self.any_of)
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .field("creator", &self.creator.as_ref().map(LitStr::value))
            .field(
                "krate",
                &self.krate.as_ref().map(|p| quote::quote!(#p).to_string()),
            )
            .finish()
    }
}

/// Parses the attribute's arguments (the tokens inside `#[locked(...)]`).
pub(crate) fn parse(attr: TokenStream) -> syn::Result<Config> {
    (|input: ParseStream<'_>| parse_args(input)).parse2(attr)
}

#[derive(Default)]
struct Builder {
    names: Vec<LitStr>,
    /// The `any_of` keyword, once seen.
    any_of: Option<Ident>,
    /// The first option seen, for "names come first" errors.
    first_option: Option<Ident>,
    timeout: Option<(Ident, Duration)>,
    lease: Option<(Ident, Duration)>,
    creator: Option<(Ident, LitStr)>,
    krate: Option<(Ident, Path)>,
}

fn parse_args(input: ParseStream<'_>) -> syn::Result<Config> {
    let mut b = Builder::default();
    while !input.is_empty() {
        parse_arg(input, &mut b)?;
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error(format!("expected `,` between arguments; valid are {VALID}")));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(Config {
        names: b.names,
        any_of: b.any_of.is_some(),
        timeout: b.timeout.map(|(_, d)| d),
        lease: b.lease.map(|(_, d)| d),
        creator: b.creator.map(|(_, c)| c),
        krate: b.krate.map(|(_, p)| p),
    })
}

fn parse_arg(input: ParseStream<'_>, b: &mut Builder) -> syn::Result<()> {
    if input.peek(Lit) {
        let name = parse_name(input, &b.names)?;
        if let Some(option) = &b.first_option {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "resource names come before options: move `{}` before `{option} = ...`",
                    quoted(&name.value())
                ),
            ));
        }
        if b.any_of.is_some() {
            return Err(mixed_pool(name.span()));
        }
        b.names.push(name);
        return Ok(());
    }
    if !input.peek(Ident::peek_any) {
        return Err(input.error(format!(
            "expected a resource name or an option; valid are {VALID}"
        )));
    }
    let ident = input.call(Ident::parse_any)?;
    let key = ident.to_string();
    if input.peek(syn::token::Paren) {
        if key != "any_of" {
            let fix = if OPTIONS.contains(&key.as_str()) {
                format!(
                    "`{key}` is an option: write `{key} = ...`, like {}",
                    example(&key)
                )
            } else {
                format!(
                    "the only `name(...)` form is `any_of(\"rig-1\", \"rig-2\")`{}",
                    did_you_mean(&key)
                )
            };
            return Err(syn::Error::new(
                ident.span(),
                format!("unknown `{key}(...)`; {fix}"),
            ));
        }
        return parse_any_of(input, ident, b);
    }
    if input.peek(Token![:]) {
        let colon: Token![:] = input.parse()?;
        let fix = if OPTIONS.contains(&key.as_str()) {
            format!("; write {}", example(&key))
        } else {
            format!(
                ", and `{key}` is not an option{}; the options are `timeout = \"10m\"`, \
                 `lease = \"60s\"`, `creator = \"...\"` and `crate = path`",
                did_you_mean(&key)
            )
        };
        return Err(syn::Error::new(
            colon.span,
            format!("options take `=`, not `:`{fix}"),
        ));
    }
    if !input.peek(Token![=]) {
        return Err(bare_ident(&ident, &key));
    }
    let eq: Token![=] = input.parse()?;
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new(
            eq.span,
            format!("`{key} =` needs a value, like {}", example(&key)),
        ));
    }
    if b.first_option.is_none() {
        b.first_option = Some(ident.clone());
    }
    match key.as_str() {
        "timeout" => {
            let d = parse_duration(input, &key)?;
            set_once(&mut b.timeout, ident, d)
        }
        "lease" => {
            let lit = parse_string_value(input, &key)?;
            let d = duration::parse(&lit, &key)?;
            if d < MIN_LEASE {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "`lease = {}` is too short: heartbeats go out every third of the lease, \
                         so it must be at least {}s; leave it out for the default (about 60s) \
                         or write one like \"30s\", \"10m\" or \"1h 30m\"",
                        quoted(&lit.value()),
                        MIN_LEASE.as_secs()
                    ),
                ));
            }
            set_once(&mut b.lease, ident, d)
        }
        "creator" => {
            let lit = parse_string_value(input, &key)?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "`creator` is empty; write who holds the lock, like `creator = \"nightly-hil\"`, \
                     or leave it out to record user, host and test",
                ));
            }
            set_once(&mut b.creator, ident, lit)
        }
        "crate" => {
            let path = parse_crate_path(input)?;
            set_once(&mut b.krate, ident, path)
        }
        "any_of" => Err(syn::Error::new(
            ident.span(),
            "`any_of` takes a list, not `=`: write `any_of(\"rig-1\", \"rig-2\")`",
        )),
        _ if is_name_key(&key) => {
            let name = input
                .fork()
                .parse::<LitStr>()
                .map_or_else(|_| "\"hil-rig-3\"".to_owned(), |l| quoted(&l.value()));
            Err(syn::Error::new(
                ident.span(),
                format!(
                    "`{key}` is not an option: resource names are plain string literals, \
                     written first; write `#[locked({name})]` (several: `#[locked(\"a\", \"b\")]`, \
                     a pool: `#[locked(any_of(\"rig-1\", \"rig-2\"))]`)"
                ),
            ))
        }
        "flavor" | "worker_threads" | "start_paused" | "runtime" | "rt" => Err(syn::Error::new(
            ident.span(),
            format!(
                "unknown option `{key}`: the runtime is not chosen here; `#[relukko::test]` runs \
                 an `async fn` on tokio's current-thread runtime, and for another runtime or \
                 flavor write `#[relukko::locked(...)]` above the runtime's own attribute, like \
                 `#[tokio::test(flavor = \"multi_thread\")]`"
            ),
        )),
        _ => Err(syn::Error::new(
            ident.span(),
            format!(
                "unknown option `{key}`{}; the options are `timeout = \"10m\"`, \
                 `lease = \"60s\"`, `creator = \"...\"` and `crate = path`, after the resource \
                 names (`\"rig\"`, or a pool `any_of(\"rig-1\", \"rig-2\")`)",
                did_you_mean(&key)
            ),
        )),
    }
}

/// A resource name: a non-blank string literal, named once.
fn parse_name(input: ParseStream<'_>, seen: &[LitStr]) -> syn::Result<LitStr> {
    let lit: Lit = input.parse()?;
    let Lit::Str(name) = lit else {
        return Err(not_a_string(&lit));
    };
    let value = name.value();
    if value.trim().is_empty() {
        return Err(syn::Error::new(
            name.span(),
            "resource name is empty; write the resource to hold, like `\"hil-rig-3\"`, \
             or write `#[locked]` alone to derive a name from the test",
        ));
    }
    if value.trim() != value {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "resource name `{}` has leading or trailing whitespace; write `{}`",
                quoted(&value),
                quoted(value.trim())
            ),
        ));
    }
    if seen.iter().any(|s| s.value() == value) {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "resource `{}` is named twice; name each resource once",
                quoted(&value)
            ),
        ));
    }
    Ok(name)
}

fn not_a_string(lit: &Lit) -> syn::Error {
    let fix = match lit {
        Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => {
            format!("write it in double quotes: `\"{}\"`", quote::quote!(#lit))
        }
        Lit::Char(c) => format!(
            "write it in double quotes: `{}`",
            quoted(&c.value().to_string())
        ),
        _ => "write it as a plain string, like `\"hil-rig-3\"`".to_owned(),
    };
    syn::Error::new(
        lit.span(),
        format!("a resource name must be a string literal; {fix}"),
    )
}

/// `any_of(...)` after its keyword: two or more distinct names.
fn parse_any_of(input: ParseStream<'_>, ident: Ident, b: &mut Builder) -> syn::Result<()> {
    if b.any_of.is_some() {
        return Err(syn::Error::new(
            ident.span(),
            "`any_of` is given twice; put all members of the pool in one `any_of(...)`",
        ));
    }
    if let Some(option) = &b.first_option {
        return Err(syn::Error::new(
            ident.span(),
            format!(
                "resource names come before options: move `any_of(...)` before `{option} = ...`"
            ),
        ));
    }
    if !b.names.is_empty() {
        return Err(mixed_pool(ident.span()));
    }
    let content;
    let parens = parenthesized!(content in input);
    let mut names = Vec::new();
    while !content.is_empty() {
        if !content.peek(Lit) {
            return Err(
                content.error("expected a resource name in double quotes, like `\"rig-1\"`")
            );
        }
        names.push(parse_name(&content, &names)?);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    match names.as_slice() {
        [] => Err(syn::Error::new(
            parens.span.join(),
            "`any_of()` is empty; list the pool, at least two resources, like \
                 `any_of(\"rig-1\", \"rig-2\")`",
        )),
        [only] => Err(syn::Error::new(
            only.span(),
            format!(
                "a pool of one: `any_of({0})` can only ever hold `{0}`; write `#[locked({0})]`, \
                 or add more resources to the pool",
                quoted(&only.value())
            ),
        )),
        _ => {
            b.names = names;
            b.any_of = Some(ident);
            Ok(())
        }
    }
}

fn mixed_pool(span: Span) -> syn::Error {
    syn::Error::new(
        span,
        "`any_of(...)` cannot be mixed with plain resource names: put all pool members inside \
         `any_of(\"rig-1\", \"rig-2\")` to hold one of them, or list plain names \
         `#[locked(\"a\", \"b\")]` to hold all of them",
    )
}

/// A bare identifier: an option without value, or a name without quotes.
fn bare_ident(ident: &Ident, key: &str) -> syn::Error {
    let msg = match key {
        "any_of" => "`any_of` needs a list: write `any_of(\"rig-1\", \"rig-2\")`".to_owned(),
        k if OPTIONS.contains(&k) => format!("`{k}` needs a value: write {}", example(k)),
        _ => format!(
            "`{key}` is neither a resource name nor an option{}: a name must be a string \
             literal (constants cannot be used), like `\"{key}\"`",
            did_you_mean(key)
        ),
    };
    syn::Error::new(ident.span(), msg)
}

fn parse_string_value(input: ParseStream<'_>, key: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let fix = format!("`{key}` takes a string: write {}", example(key));
    Err(match input.parse::<Lit>() {
        Ok(Lit::Int(int)) if key != "creator" => syn::Error::new(
            int.span(),
            format!(
                "`{key}` takes a string: write `{key} = \"{}s\"` (or \"10m\", \"1h 30m\")",
                int.base10_digits()
            ),
        ),
        Ok(lit) => syn::Error::new(lit.span(), fix),
        Err(_) => input.error(fix),
    })
}

fn parse_duration(input: ParseStream<'_>, key: &str) -> syn::Result<Duration> {
    let lit = parse_string_value(input, key)?;
    duration::parse(&lit, key)
}

fn parse_crate_path(input: ParseStream<'_>) -> syn::Result<Path> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let value = lit.value();
        let fix = match syn::parse_str::<Path>(&value) {
            Ok(_) => format!("write `crate = {value}`"),
            Err(_) => "write `crate = my_relukko` (the name you gave the dependency)".to_owned(),
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("`crate` takes a path, not a string; {fix}"),
        ));
    }
    input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`crate` takes a path to relukko-test, like `crate = my_relukko` or `crate = ::relukko`",
        )
    })
}

fn set_once<T>(slot: &mut Option<(Ident, T)>, ident: Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            ident.span(),
            format!("`{ident}` is given twice; keep one"),
        ));
    }
    *slot = Some((ident, value));
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
