//! A plain (sync) test that needs a scarce resource.
//!
//! ```sh
//! cargo test -p relukko-examples --test sync_test
//! ```
//!
//! `#[relukko::test(...)]` is `#[test]` and the lock in one attribute;
//! `#[relukko::locked(...)]` goes next to `#[test]` (either order). The lock is
//! taken before the body runs and released after it ends: when it returns,
//! when an assertion fails, when it panics. Other tests (threads, processes,
//! machines) that name the same resource wait meanwhile.

use relukko::locked;

/// `#[test]` and the lock in one attribute: nothing to forget.
#[relukko::test("example-staging-db", timeout = "2m")]
fn checks_the_staging_schema() {
    // ... the staging database is ours until the end of the body ...
    assert_eq!(2 * 2, 4);
}

/// One resource. With no `RELUKKO_URL` this locks a file on this machine;
/// with `RELUKKO_URL` set, a lock on that Relukko server.
#[test]
#[locked("example-staging-db")]
fn migrates_the_staging_database() {
    // ... talk to the staging database; nobody else is using it now ...
    assert_eq!(2 + 2, 4);
}

/// Every option: wait at most 2 minutes, let the server keep the lock 30 s
/// between heartbeats, and record who holds it.
#[test]
#[locked(
    "example-staging-db",
    timeout = "2m",
    lease = "30s",
    creator = "examples: sync_test"
)]
fn seeds_the_staging_database() {}

/// Several resources at once: always taken in one (sorted) order, so two
/// tests naming the same set in different orders cannot deadlock.
#[test]
#[locked("example-staging-db", "example-license-server")]
fn needs_the_database_and_a_license() {}

/// No name: one is derived from the test's path
/// (`sync_test::has_a_derived_name`), so only this test (in any process or
/// machine) excludes itself.
#[test]
#[locked]
fn has_a_derived_name() {}

/// A test returning `Result` works as usual; the lock is released either way.
#[test]
#[locked("example-staging-db")]
fn returns_a_result() -> Result<(), String> {
    "42".parse::<u32>().map(drop).map_err(|e| e.to_string())
}

/// A panicking test releases its lock too (and still fails as it should).
#[test]
#[should_panic(expected = "the rig caught fire")]
#[locked("example-staging-db")]
fn panics_and_still_releases() {
    panic!("the rig caught fire");
}
