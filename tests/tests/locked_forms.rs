//! Every supported form of `#[relukko::locked]`, as real tests: they compile
//! only if the expansion is right, and pass only if the body ran with the
//! resource held and its outcome (return value, `?`, panic) came through.
//!
//! Lock names carry a `locked-forms-` prefix so this binary never contends
//! with other suites. Attribute orders that matter:
//! - A `Lease` parameter needs `#[locked]` above `#[test]`: `#[test]`
//!   expands first when on top and rejects a function with parameters before
//!   `#[locked]` can remove it. `#[tokio::test]` takes either order.
//! - `#[tokio::test]` above `#[locked]`: tokio expands first, `#[locked]`
//!   wraps the sync function tokio made (the lock is held around the whole
//!   runtime). Below: `#[locked]` sees the `async fn` and awaits inside it.
//! - rstest: both orders work with `#[case]` and fixtures. `#[locked]` above
//!   `#[rstest]` wraps the one shared function (a derived name is then the
//!   same for every case, and a `Lease` parameter works); `#[rstest]` above
//!   `#[locked]` puts the attribute on each generated case function.
//!
//! Every body proves that its resources are held with [`assert_held`]: a
//! second locker, separate from the one `#[locked]` used, cannot take them.
//! With the attribute locking nothing, every test here fails.

use std::time::Duration;

use relukko::{Error, Lease, LockOptions, Locker, locked};
use rstest::{fixture, rstest};

/// Fails unless every one of `names` is held right now: a zero-timeout
/// attempt through a second locker (same configuration as the process-wide
/// one, own backend) must time out. It asks from a thread of its own: asked
/// from the locked test's own thread or task, the locker would answer
/// [`Error::HeldByThisTest`] from its bookkeeping without asking the backend.
#[track_caller]
fn assert_held(names: &[&str]) {
    for name in names {
        match probe(name) {
            Err(Error::WaitTimeout { .. }) => {}
            Ok(()) => panic!("{name:?} is not held inside the locked body"),
            Err(e) => panic!("probing {name:?}: {e}"),
        }
    }
}

/// A zero-timeout attempt on `name` through a second locker, from another
/// thread; a lease it got is released at once.
fn probe(name: &str) -> relukko::Result<()> {
    let name = name.to_owned();
    std::thread::spawn(move || {
        let probe = Locker::from_env().expect("the environment's locker");
        probe
            .lock_blocking(LockOptions::new(name).timeout(Duration::ZERO))
            .map(drop)
    })
    .join()
    .expect("the probe thread")
}

/// The lease names the resource it holds (without any configured prefix).
fn assert_holds(lease: &Lease, one_of: &[&str]) {
    let name = lease.name();
    assert!(
        one_of.contains(&name),
        "holds {name:?}, expected one of {one_of:?}"
    );
    assert_held(&[name]);
}

#[test]
#[locked("locked-forms-sync")]
fn sync_one_name() {
    assert_held(&["locked-forms-sync"]);
    let x = 1 + 1;
    assert_eq!(x, 2);
}

#[locked("locked-forms-above-test")]
#[test]
fn locked_above_test() {
    assert_held(&["locked-forms-above-test"]);
}

#[test]
#[locked("locked-forms-b", "locked-forms-a")]
fn several_names() {
    assert_held(&["locked-forms-a", "locked-forms-b"]);
}

#[test]
#[locked]
fn derived_name() {
    assert_held(&[concat!(module_path!(), "::derived_name")]);
}

#[test]
#[locked()]
fn derived_name_empty_parentheses() {
    assert_held(&[concat!(module_path!(), "::derived_name_empty_parentheses")]);
}

#[locked]
#[test]
fn derived_name_with_lease(lease: relukko::Lease) {
    // The derived name is the test's path: the macro passes
    // `concat!(module_path!(), "::", "derived_name_with_lease")`.
    assert_eq!(
        lease.name(),
        concat!(module_path!(), "::derived_name_with_lease")
    );
    assert_held(&[lease.name()]);
}

#[locked(any_of("locked-forms-pool-1", "locked-forms-pool-2", "locked-forms-pool-3"))]
#[test]
fn pool_with_lease(lease: Lease) {
    assert_holds(
        &lease,
        &[
            "locked-forms-pool-1",
            "locked-forms-pool-2",
            "locked-forms-pool-3",
        ],
    );
}

#[locked(
    "locked-forms-options",
    timeout = "10m",
    lease = "60s",
    creator = "locked_forms suite"
)]
#[test]
fn options(lease: Lease) {
    assert_holds(&lease, &["locked-forms-options"]);
    // The holder record carries the attribute's creator text (asked from
    // another thread: only a backend's answer names the holder).
    let e = probe("locked-forms-options").expect_err("held");
    assert!(
        matches!(e, Error::WaitTimeout { .. }) && e.to_string().contains("locked_forms suite"),
        "{e}"
    );
}

#[test]
#[locked("locked-forms-bare-seconds", timeout = "90", lease = "1h 30m")]
fn bare_seconds_and_compound_durations() {
    assert_held(&["locked-forms-bare-seconds"]);
}

mod renamed {
    use ::relukko as my_relukko;

    #[my_relukko::locked("locked-forms-crate-path", crate = my_relukko)]
    #[test]
    fn crate_path(lease: my_relukko::Lease) {
        assert_eq!(lease.name(), "locked-forms-crate-path");
        super::assert_held(&["locked-forms-crate-path"]);
    }
}

#[test]
#[locked("locked-forms-result")]
fn result_with_question_mark() -> Result<(), std::num::ParseIntError> {
    assert_held(&["locked-forms-result"]);
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[test]
#[locked("locked-forms-early-return")]
fn early_return_leaves_the_body() -> Result<(), String> {
    assert_held(&["locked-forms-early-return"]);
    if "x".parse::<u8>().is_err() {
        return Ok(()); // leaves the body (the closure), not the runtime
    }
    Err("the early return did not leave the body".into())
}

#[test]
#[should_panic(expected = "the body panicked")]
#[locked("locked-forms-should-panic")]
fn should_panic_propagates() {
    assert_held(&["locked-forms-should-panic"]);
    panic!("the body panicked");
}

#[test]
#[ignore = "proves #[ignore] is kept: it would fail if run"]
#[locked("locked-forms-ignored")]
fn ignored() {
    panic!("an #[ignore]d test ran");
}

#[tokio::test]
#[locked("locked-forms-tokio-above")]
async fn tokio_above() -> Result<(), std::io::Error> {
    tokio::task::yield_now().await;
    assert_held(&["locked-forms-tokio-above"]);
    std::io::Result::Ok(())?;
    Ok(())
}

/// `#[tokio::test]` above `#[locked]`, with a `Lease` parameter: tokio
/// keeps the parameter and puts its test attribute last, so `#[locked]`
/// removes the parameter before the harness sees it.
#[tokio::test]
#[locked("locked-forms-tokio-above-lease")]
async fn tokio_above_with_lease(lease: Lease) {
    assert_holds(&lease, &["locked-forms-tokio-above-lease"]);
}

#[locked("locked-forms-tokio-below")]
#[tokio::test]
async fn tokio_below(lease: Lease) -> Result<(), std::num::ParseIntError> {
    tokio::task::yield_now().await;
    let n: u8 = "7".parse()?;
    assert_eq!(n, 7);
    assert_holds(&lease, &["locked-forms-tokio-below"]);
    Ok(())
}

#[locked(any_of("locked-forms-apool-1", "locked-forms-apool-2"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_below_pool_multi_thread(lease: Lease) {
    let handle = tokio::spawn(async { 5 });
    assert_eq!(handle.await.ok(), Some(5));
    assert_holds(&lease, &["locked-forms-apool-1", "locked-forms-apool-2"]);
}

#[tokio::test]
#[should_panic(expected = "async body panicked")]
#[locked("locked-forms-tokio-above-panic")]
async fn tokio_above_should_panic() {
    assert_held(&["locked-forms-tokio-above-panic"]);
    panic!("async body panicked");
}

#[locked("locked-forms-tokio-below-panic")]
#[tokio::test]
#[should_panic(expected = "async body panicked")]
async fn tokio_below_should_panic() {
    tokio::task::yield_now().await;
    assert_held(&["locked-forms-tokio-below-panic"]);
    panic!("async body panicked");
}

#[fixture]
fn base() -> u32 {
    10
}

#[rstest]
#[case(1, 11)]
#[case(2, 12)]
#[locked("locked-forms-rstest-above")]
fn rstest_above(#[case] x: u32, #[case] expected: u32, base: u32) {
    assert_held(&["locked-forms-rstest-above"]);
    assert_eq!(x + base, expected);
}

#[locked("locked-forms-rstest-below")]
#[rstest]
#[case(1, 11)]
#[case(2, 12)]
fn rstest_below(lease: Lease, #[case] x: u32, #[case] expected: u32, base: u32) {
    assert_eq!(x + base, expected);
    assert_holds(&lease, &["locked-forms-rstest-below"]);
}

#[locked]
#[rstest]
#[case::one(1)]
#[case::two(2)]
fn rstest_below_derived_name(#[case] x: u32) -> Result<(), std::num::TryFromIntError> {
    // Both cases hold the one name derived from the function (not the case).
    assert_held(&[concat!(module_path!(), "::rstest_below_derived_name")]);
    let _small: u8 = x.try_into()?;
    Ok(())
}

#[locked("locked-forms-rstest-async")]
#[rstest]
#[case(3)]
#[tokio::test]
async fn rstest_below_async(#[case] x: u32, base: u32) {
    tokio::task::yield_now().await;
    assert_held(&["locked-forms-rstest-async"]);
    assert_eq!(x + base, 13);
}

/// Not a test: a helper holding a resource around any call.
#[locked("locked-forms-helper")]
fn helper(x: u32) -> u32 {
    assert_held(&["locked-forms-helper"]);
    x * 2
}

#[test]
fn helper_function_with_arguments() {
    assert_eq!(helper(21), 42);
}

/// `#[relukko::test]`: the test attribute and `#[locked]` in one. Each of
/// these is a test only through it (no `#[test]` is written): `cargo test
/// -- --list` names them, and each body proves its lock is held.
mod relukko_test {
    use std::time::Duration;

    use relukko::{Error, Lease};

    use super::{assert_held, assert_holds, probe};

    #[relukko::test("locked-forms-test-sync")]
    fn sync_one_name() {
        assert_held(&["locked-forms-test-sync"]);
    }

    #[relukko::test("locked-forms-test-timeout", timeout = "2m")]
    fn with_timeout() -> Result<(), std::num::ParseIntError> {
        assert_held(&["locked-forms-test-timeout"]);
        "42".parse::<u32>()?;
        Ok(())
    }

    #[relukko::test(
        "locked-forms-test-lease",
        timeout = "10m",
        lease = "30s",
        creator = "relukko::test suite"
    )]
    fn with_a_lease_parameter_and_options(lease: Lease) {
        assert_holds(&lease, &["locked-forms-test-lease"]);
        let e = probe("locked-forms-test-lease").expect_err("held");
        assert!(
            matches!(e, Error::WaitTimeout { .. }) && e.to_string().contains("relukko::test suite"),
            "{e}"
        );
    }

    #[relukko::test("locked-forms-test-b", "locked-forms-test-a")]
    fn several_names() {
        assert_held(&["locked-forms-test-a", "locked-forms-test-b"]);
    }

    #[relukko::test]
    fn derived_name(lease: Lease) {
        assert_eq!(lease.name(), concat!(module_path!(), "::derived_name"));
        assert_held(&[lease.name()]);
    }

    #[relukko::test(any_of("locked-forms-test-pool-1", "locked-forms-test-pool-2"))]
    fn pool_with_lease(lease: Lease) {
        assert_holds(
            &lease,
            &["locked-forms-test-pool-1", "locked-forms-test-pool-2"],
        );
    }

    /// Passes only if the body panicked, and the body panics with this
    /// message only after it found its lock held.
    #[relukko::test("locked-forms-test-should-panic")]
    #[should_panic(expected = "the body panicked while holding")]
    fn should_panic_below() {
        assert_held(&["locked-forms-test-should-panic"]);
        panic!("the body panicked while holding its lock");
    }

    #[should_panic(expected = "the body panicked while holding")]
    #[relukko::test("locked-forms-test-should-panic-above")]
    fn should_panic_above() {
        assert_held(&["locked-forms-test-should-panic-above"]);
        panic!("the body panicked while holding its lock");
    }

    #[relukko::test("locked-forms-test-ignored")]
    #[ignore = "proves #[ignore] is kept: it would fail if run"]
    fn ignored() {
        panic!("an #[ignore]d test ran");
    }

    /// An `async fn` runs on a current-thread tokio runtime with its
    /// drivers: timers, I/O and spawned tasks work.
    #[relukko::test("locked-forms-test-async")]
    async fn async_fn(lease: Lease) -> std::io::Result<()> {
        assert_holds(&lease, &["locked-forms-test-async"]);
        assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connect = tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
        listener.accept().await?;
        connect.await.expect("the spawned task")?;
        assert_held(&["locked-forms-test-async"]);
        Ok(())
    }

    #[relukko::test("locked-forms-test-async-panic")]
    #[should_panic(expected = "async body panicked while holding")]
    async fn async_should_panic() {
        tokio::task::yield_now().await;
        assert_held(&["locked-forms-test-async-panic"]);
        panic!("async body panicked while holding its lock");
    }

    /// The functions above are tests through `#[relukko::test]` alone: were
    /// the attribute to stop adding the test attribute, their bodies (and
    /// their checks) would silently never run. The harness lists them.
    #[test]
    fn are_listed_as_tests() {
        let exe = std::env::current_exe().expect("this test binary");
        let out = std::process::Command::new(exe)
            .args(["--list", "relukko_test::"])
            .output()
            .expect("listing the tests of this binary");
        let listed = String::from_utf8_lossy(&out.stdout);
        for name in [
            "sync_one_name",
            "with_timeout",
            "with_a_lease_parameter_and_options",
            "several_names",
            "derived_name",
            "pool_with_lease",
            "should_panic_below",
            "should_panic_above",
            "ignored",
            "async_fn",
            "async_should_panic",
            "renamed::crate_path",
        ] {
            let line = format!("relukko_test::{name}: test");
            assert!(
                listed.lines().filter(|l| *l == line).count() == 1,
                "{line:?} once in:\n{listed}"
            );
        }
    }

    mod renamed {
        use ::relukko as my_relukko;

        #[my_relukko::test("locked-forms-test-crate-path", crate = my_relukko)]
        fn crate_path(lease: my_relukko::Lease) {
            assert_eq!(lease.name(), "locked-forms-test-crate-path");
            super::assert_held(&["locked-forms-test-crate-path"]);
        }
    }
}
