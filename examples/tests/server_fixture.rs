//! Our Relukko-compatible server as a fixture in your own tests (feature
//! `server` of relukko-test): a real server on 127.0.0.1 with a random port
//! and API key, in memory, stopped when dropped.
//!
//! ```sh
//! cargo test -p relukko-examples --test server_fixture
//! ```
//!
//! Use it to test code that talks to Relukko (your own scripts, a CI tool),
//! or to run locked code against a server without any setup.

use std::time::Duration;

use relukko::{AcquireOptions, Client, Create, LockOptions, Locker};
use relukko_server::TestServer;

/// A client of the fixture's server, as your code under test would build it.
fn client_of(server: &TestServer) -> Client {
    Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_fixture_speaks_the_relukko_protocol() -> relukko::Result<()> {
    let server = TestServer::start();
    let client = client_of(&server);
    client.health().await?;

    let Create::Acquired(lock) = client.create("example-rig", Some("my tool")).await? else {
        panic!("the server is fresh: the name is free");
    };
    // A second create of the same name is a typed "taken", not an error.
    assert!(matches!(
        client.create("example-rig", None).await?,
        Create::Taken
    ));
    client.delete(lock.id).await?;

    let opts = AcquireOptions::new().timeout(Duration::from_secs(10));
    let lock = client.acquire("example-rig", opts).await?;
    assert_eq!(client.list().await?.len(), 1);
    client.delete(lock.id).await?;
    Ok(())
}

/// Leases (heartbeat, release, loss) against the fixture: a `Locker` on a
/// client of your choice, instead of the process-wide one from the
/// environment. Tests must not set `RELUKKO_URL` for themselves (environment
/// variables are shared by every test thread of the process); to run tests
/// against the fixture through the environment, start them as child
/// processes with `RELUKKO_URL` and `RELUKKO_API_KEY` set.
#[tokio::test]
async fn leases_against_the_fixture() -> relukko::Result<()> {
    let server = TestServer::start();
    let locker = Locker::relukko(client_of(&server)).timeout(Duration::from_secs(30));

    let lease = locker.lock(LockOptions::new("example-rig")).await?;
    assert_eq!(lease.state(), relukko::LeaseState::Held);

    // Someone force-releases our lock: the lease notices.
    let admin = client_of(&server);
    let held = admin.holder("example-rig").await?.expect("we hold it");
    admin.delete(held.id).await?;
    let err = lease.release().await.expect_err("the lock was taken away");
    assert!(matches!(err, relukko::Error::LockLost { .. }), "{err}");
    Ok(())
}
