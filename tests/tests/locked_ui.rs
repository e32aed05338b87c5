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

/// The attribute and the runtime hold one minimum lease, in the same words.
/// The macro crate cannot import the runtime's constant, so this ties them:
/// the rule in the reviewed `fail_short_lease.stderr` (which `locked_ui`
/// holds to the compiler's output) is the runtime's error for the lease that
/// file writes, and the minimum the rule names is the runtime's own: taken,
/// and refused a millisecond below.
#[test]
fn the_attribute_and_the_runtime_share_one_minimum_lease() {
    use std::time::Duration;

    use relukko::{LockOptions, Locker};
    use relukko_e2e::temp::TempDir;

    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let read = |file: &str| std::fs::read_to_string(ui.join(file)).expect(file);
    let source = read("fail_short_lease.rs");
    let stderr = read("fail_short_lease.stderr");
    let after = |text: &'static str, s: &str| s.split_once(text).expect(text).1.to_owned();
    let written = after("lease = \"", &source);
    let written = written.split('"').next().unwrap();
    let rule = after("is too short: ", &stderr);
    let rule = rule.split(';').next().unwrap();
    let min = after("at least ", rule);
    let secs = |s: &str| Duration::from_secs(s.strip_suffix('s').unwrap().parse().unwrap());

    let dir = TempDir::new("min-lease");
    let locker = Locker::local(dir.path());
    let refused = |lease: Duration| {
        let err = locker
            .lock_blocking(LockOptions::new("min-lease").lease(lease))
            .expect_err("a lease under the minimum is refused")
            .to_string();
        assert!(
            err.contains(&format!("is too short: {rule}")),
            "the runtime says {err:?}, the attribute says {rule:?}"
        );
    };
    refused(secs(written));
    refused(secs(&min) - Duration::from_millis(1));
    let held = locker
        .lock_blocking(LockOptions::new("min-lease").lease(secs(&min)))
        .expect("the minimum lease is taken");
    held.release_blocking().unwrap();
}
