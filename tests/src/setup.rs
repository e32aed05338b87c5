//! The setup the suites share: clients of a [`TestServer`], a runtime for
//! synchronous tests, and steps bounded in time, so that no suite writes its
//! own copy (and no copy drifts to another bound).

use std::future::Future;
use std::time::{Duration, Instant};

use relukko::{Client, ClientBuilder};
use relukko_server::TestServer;

/// The longest any awaited step may take on a loaded machine.
pub const BOUND: Duration = Duration::from_secs(30);

/// `fut`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .expect("bounded step took too long")
}

/// Checks `cond` every `every` until it holds; fails the test (naming `what`)
/// after [`BOUND`].
pub async fn eventually(what: &str, every: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + BOUND;
    while !cond().await {
        assert!(Instant::now() < until, "never happened: {what}");
        tokio::time::sleep(every).await;
    }
}

/// Waits, blocking this thread, until `done` holds, looking every 20 ms;
/// fails the test (naming `what`) after `bound`.
pub fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < bound,
            "{what} did not happen within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client builder for `url` (the server's, or a proxy's in front of it)
/// with `server`'s API key.
pub fn builder(url: impl AsRef<str>, server: &TestServer) -> ClientBuilder {
    Client::builder(url).api_key(server.api_key())
}

/// A client of `server` with the default settings.
pub fn client(server: &TestServer) -> Client {
    Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap()
}

/// A current-thread runtime (with I/O and time), for the synchronous tests
/// that drive async calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
