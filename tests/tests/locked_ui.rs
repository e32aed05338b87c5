//! Compile-time behaviour of `#[relukko::locked]`: every misuse is a
//! compile error with a span on the offending token and a message naming the
//! fix (`ui/fail_*.rs`, reviewed `.stderr` next to each), and the supported
//! forms compile and run outside a test harness (`ui/pass_*.rs`).
//!
//! After changing a message: `TRYBUILD=overwrite cargo test -p relukko-e2e
//! --test locked_ui`, then read every changed `.stderr`.

#[test]
fn locked_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail_*.rs");
    t.pass("ui/pass_*.rs");
}
