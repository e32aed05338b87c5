//! The `#[test]`-and-lock attribute `#[relukko::test]` and the `#[locked]`
//! attribute of [relukko-test](https://docs.rs/relukko-test). Use them as
//! `#[relukko::test]` and `#[relukko::locked]`, not from this crate.
//!
//! The macro is a thin shim: `config` parses and validates the arguments,
//! `signature` finds the optional `Lease` parameter, `expand` wraps the
//! body in a call to `relukko::__private::run_sync` / `run_async`, where all
//! the locking logic lives. `#[test]` is `#[locked]` with the test
//! attribute added (and an `async fn` run by `__private::block_on`). It never panics: every misuse is a
//! `compile_error!` with a span on the offending token, emitted next to the
//! unchanged function.

use proc_macro::TokenStream;

mod config;
mod duration;
mod expand;
mod hint;
mod signature;

/// Holds one or more resources while the test runs: acquired before the
/// body, released after it, whether it returns, fails or panics.
///
/// Forms: `#[locked("a")]`; `#[locked("a", "b")]` (all of them, acquired in
/// one canonical order); `#[locked]` (one name derived from the test's
/// module path and name); `#[locked(any_of("rig-1", "rig-2"))]` (whichever
/// is free first, at least two). Options after the names: `timeout = "10m"`
/// (longest wait), `lease = "60s"` (at least 2s: heartbeats go out every
/// third of it), `creator = "..."`, `crate = path` (a renamed dependency:
/// with `my_relukko = { package = "relukko-test", .. }` write
/// `#[my_relukko::locked("rig", crate = my_relukko)]`; without it the
/// expansion looks for `::relukko` and fails with "cannot find `relukko` in
/// the crate root"). Durations: `"90s"`, `"10m"`, `"1h 30m"`, or a bare
/// number of seconds.
///
/// The function may declare one parameter whose type is `Lease` (any path
/// ending in `Lease`, by value) to learn what it holds; the macro removes
/// it and passes the lease in. Allowed with one name, no name, or `any_of`;
/// with several plain names it is a compile error. With `#[test]`, put
/// `#[locked]` above it then: placed below, `#[test]` expands first and
/// rejects the parameter ("functions used as tests can not have any
/// arguments"), and `#[locked]` sees a bare function (it names the fix only
/// when a `#[should_panic]` or `#[ignore]` is left below it without a
/// `#[test]`). `#[tokio::test]` may go on either side.
///
/// Works on sync and `async fn`, with `#[tokio::test]` above or below it,
/// with `#[should_panic]`, `#[ignore]`, tests returning `Result`, and
/// `rstest` (in either order).
///
/// The manual, with a compiled example of every form and option, and what
/// happens when a test panics, times out, loses its lock or is stopped by a
/// signal, is on
/// [`relukko::locked`](https://docs.rs/relukko-test/latest/relukko/attr.locked.html).
#[proc_macro_attribute]
pub fn locked(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::locked(attr.into(), item.into()).into()
}

/// A test that holds one or more resources while it runs: `#[test]` and
/// [`#[locked]`](macro@locked) in one attribute, taking every argument
/// `#[locked]` takes (names, `any_of(...)`, `timeout`, `lease`, `creator`,
/// `crate`, a `Lease` parameter).
///
/// It adds `#[test]` (as `#[::core::prelude::v1::test]`), so another test
/// attribute on the function (`#[test]`, `#[tokio::test]`) is a compile
/// error; `#[should_panic]` and `#[ignore]` work as on any test. An
/// `async fn` runs on a tokio current-thread runtime that the library
/// starts for the test (like `#[tokio::test]`); for another runtime or
/// flavor, write `#[relukko::locked(...)]` above that runtime's test
/// attribute.
///
/// The manual is on
/// [`relukko::test`](https://docs.rs/relukko-test/latest/relukko/attr.test.html).
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::test(attr.into(), item.into()).into()
}
