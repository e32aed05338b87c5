//! The non-macro API: a fixture (helper) that hands a test a held resource.
//!
//! ```sh
//! cargo test -p relukko-examples --test fixture
//! ```
//!
//! `relukko::lock_blocking` and `relukko::lock(...).await` use the same
//! process-wide configuration as `#[relukko::locked]` (environment variables,
//! read on first use) and return a [`relukko::Lease`]. The lease is released
//! when it is dropped (waiting at most a few seconds) or, to see errors,
//! by `release().await` / `release_blocking()`.

use std::time::Duration;

use relukko::{Lease, LockOptions};

/// A connection to the shared staging database, valid while `_lease` is held.
struct StagingDb {
    url: String,
    // Dropped with the fixture: releases the lock.
    _lease: Lease,
}

/// The fixture: waits (at most a minute) until the staging database is ours.
fn staging_db() -> StagingDb {
    let opts = LockOptions::new("example-staging-db")
        .timeout(Duration::from_secs(60))
        .creator("examples: fixture");
    let lease = relukko::lock_blocking(opts).expect("cannot lock the staging database");
    StagingDb {
        url: "postgres://staging.example.invalid/app".to_owned(),
        _lease: lease,
    }
}

#[test]
fn reads_from_the_staging_database() {
    let db = staging_db();
    assert!(db.url.starts_with("postgres://"));
    // `db` (and with it the lock) is dropped at the end of the test.
}

/// The async form, with an explicit release that reports errors (for
/// example, that the lock was lost while the test ran).
#[tokio::test]
async fn explicit_async_release() -> relukko::Result<()> {
    let lease = relukko::lock(LockOptions::new("example-staging-db")).await?;
    assert_eq!(lease.state(), relukko::LeaseState::Held);
    // ... use the database ...
    lease.release().await
}

/// Several resources, or a pool, work the same way as in the attribute.
#[test]
fn a_pool_from_a_fixture() -> relukko::Result<()> {
    let lease = relukko::lock_blocking(LockOptions::any_of([
        "example-lab-rig-1",
        "example-lab-rig-2",
    ]))?;
    println!("got {}", lease.name());
    lease.release_blocking()
}
