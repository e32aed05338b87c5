//! Edge cases of the client's calls: durations that would overflow, and a
//! delete whose answer was lost.

use std::time::Duration;

use relukko::{AcquireOptions, Error, LockOptions, Locker};
use relukko_e2e::proxy::{Fault, Mode, Proxy};
use relukko_e2e::raw::unique;
use relukko_e2e::setup::{bounded, builder};
use relukko_server::TestServer;

/// `Duration::MAX` (what `RELUKKO_TIMEOUT=18446744073709551615` parses to)
/// means "practically forever": no `Instant` overflow, no panic.
#[tokio::test]
async fn overflowing_durations_mean_practically_forever() {
    let server = TestServer::start();
    let c = builder(server.base_url(), &server)
        .request_timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .build()
        .unwrap();
    let x = unique("edge-forever");
    let opts = AcquireOptions::new()
        .timeout(Duration::MAX)
        .progress_after(Duration::MAX);
    let lock = bounded(c.acquire(&x, opts)).await.unwrap();
    bounded(c.delete(lock.id)).await.unwrap();

    let locker = Locker::relukko(c.clone())
        .timeout(Duration::MAX)
        .lease(Duration::MAX);
    let lease = bounded(locker.lock(LockOptions::new(&x).timeout(Duration::MAX)))
        .await
        .unwrap();
    bounded(lease.release()).await.unwrap();
}

/// A DELETE whose answer was lost deleted the lock; its retry gets 404. That
/// is a success (as a lease's release counts it), not `NotFound`.
#[tokio::test]
async fn a_delete_whose_answer_was_lost_reports_the_deletion() {
    let server = TestServer::start();
    let observer = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Pick {
            method: "DELETE",
            count: 1,
            fault: Fault::LoseAnswer,
        },
    );
    let c = builder(proxy.base_url(), &server)
        .request_timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let x = unique("edge-lost-delete");
    let lock = bounded(observer.create(&x, None))
        .await
        .unwrap()
        .lock()
        .unwrap();
    let deleted = bounded(c.delete(lock.id)).await;
    assert_eq!(proxy.picked(), 1, "the first DELETE's answer was lost");
    let deleted = deleted.expect("deleted by the attempt whose answer was lost");
    assert_eq!(deleted.id, lock.id);
    assert_eq!(bounded(observer.holder(&x)).await.unwrap(), None);
    // Not there at all: still NotFound.
    let e = bounded(c.delete(lock.id)).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}
