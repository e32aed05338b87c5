//! Every call inside a wait keeps the wait's deadline, a create applied late
//! leaves no phantom lock, and heartbeats stop when the lease stops.

use std::time::{Duration, Instant};

use relukko::{AcquireOptions, Error, LockOptions, Locker, RetryPolicy};
use relukko_e2e::proxy::{Fault, Mode, Proxy};
use relukko_e2e::raw::{Api, unique};
use relukko_e2e::setup::{BOUND, bounded, builder, eventually, rt};
use relukko_server::TestServer;

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(20);

/// A POST stuck in a slow network is applied after the real holder left: the
/// lock is then ours under our token, and the wait must adopt it rather than
/// wait its whole timeout "held by" itself.
#[tokio::test]
async fn a_create_applied_late_is_adopted_not_waited_for() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Pick {
            method: "POST",
            count: 1,
            fault: Fault::Hold,
        },
    );
    let waiter = builder(proxy.base_url(), &server)
        .websocket(false)
        .request_timeout(Duration::from_millis(300))
        .poll_max(Duration::from_secs(4))
        .build()
        .unwrap();
    let x = unique("late-adopt");
    let held = bounded(holder.create(&x, None))
        .await
        .unwrap()
        .lock()
        .unwrap();
    let w = waiter.clone();
    let name = x.clone();
    let task = tokio::spawn(async move {
        w.acquire(&name, AcquireOptions::new().timeout(Duration::from_secs(8)))
            .await
    });
    // The first POST is stuck; later ones get 409 from the real holder.
    eventually("the waiter retried past its stuck POST", POLL, async || {
        proxy.picked() == 1 && proxy.accepted() >= 3
    })
    .await;
    bounded(holder.delete(held.id)).await.unwrap();
    proxy.release_held();
    eventually("the stuck POST made the lock", POLL, async || {
        holder.holder(&x).await.unwrap().is_some()
    })
    .await;
    let got = bounded(task).await.unwrap();
    let lock = got.expect("the late lock is ours: adopted, not waited for");
    assert_eq!(
        holder.holder(&x).await.unwrap().map(|l| l.id),
        Some(lock.id)
    );
    bounded(waiter.delete(lock.id)).await.unwrap();
}

/// The same late create after the wait was given up (dropped): the token's
/// clean-up keeps looking for a while and deletes it.
#[tokio::test]
async fn a_create_applied_after_the_wait_ended_is_deleted() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Pick {
            method: "POST",
            count: 1,
            fault: Fault::Hold,
        },
    );
    let waiter = builder(proxy.base_url(), &server)
        .websocket(false)
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let x = unique("late-phantom");
    let held = bounded(holder.create(&x, None))
        .await
        .unwrap()
        .lock()
        .unwrap();
    let e = bounded(waiter.acquire(&x, AcquireOptions::new().timeout(Duration::from_secs(2))))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WaitTimeout { .. }), "{e:?}");
    assert_eq!(proxy.picked(), 1);
    bounded(holder.delete(held.id)).await.unwrap();
    proxy.release_held();
    // The late POST makes the phantom (the proxy saw the server answer it;
    // polling for the lock itself could miss one deleted between two looks),
    // then the clean-up deletes it.
    eventually("the late create is applied", POLL, async || {
        proxy.picked_applied() == 1
    })
    .await;
    eventually("the late lock is deleted", POLL, async || {
        holder.holder(&x).await.unwrap().is_none()
    })
    .await;
}

/// `any_of` against a server that accepts and never answers fails within
/// the timeout plus about one request timeout, naming the URL.
#[test]
fn a_pool_wait_against_a_black_hole_keeps_its_deadline() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Stall);
    let client = builder(proxy.base_url(), &server)
        .websocket(false)
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = Locker::relukko(client)
        .lock_blocking(
            LockOptions::any_of(["bh-a", "bh-b", "bh-c"]).timeout(Duration::from_secs(3)),
        )
        .unwrap_err();
    let took = started.elapsed();
    let text = e.to_string();
    assert!(text.contains(&proxy.base_url()), "names the URL: {text}");
    // 3 s timeout + 2 s request timeout; generous margin for a loaded
    // machine (without the deadline, retries alone take over 20 s).
    assert!(took < Duration::from_secs(12), "{took:?}: {text}");
}

/// After a release, no keep-alive reaches the server, also one whose answer
/// was lost (it must not keep retrying in the background).
#[test]
fn heartbeats_stop_when_the_lease_stops() {
    let server = TestServer::start();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Pick {
            method: "PUT",
            count: usize::MAX,
            fault: Fault::LoseAnswer,
        },
    );
    let client = builder(proxy.base_url(), &server)
        .websocket(false)
        .request_timeout(Duration::from_millis(400))
        .retry(RetryPolicy::default().first_delay(Duration::from_millis(50)))
        .build()
        .unwrap();
    let lease = Locker::relukko(client)
        .lease(Duration::from_secs(3))
        .lock_blocking(unique("beats-stop"))
        .unwrap();
    // Heartbeats every second, each answer lost: they time out and retry.
    let until = Instant::now() + BOUND;
    while proxy.picked() < 4 {
        assert!(Instant::now() < until, "no keep-alives sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = lease.release_blocking();
    std::thread::sleep(Duration::from_millis(300));
    let after_release = proxy.picked();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        proxy.picked(),
        after_release,
        "keep-alives went on after the release"
    );
}

/// After a release, the heartbeat of a healthy lease stops too: a heartbeat
/// that went on met the deleted lock's 404 and turned the released lease
/// into a lost one (the test above cannot tell: with every answer lost, its
/// heartbeat gives up by itself when the lease runs out).
#[test]
fn a_released_lease_beats_no_more() {
    let server = TestServer::start();
    let client = builder(server.base_url(), &server)
        .websocket(false)
        .build()
        .unwrap();
    let lease = Locker::relukko(client)
        .lease(Duration::from_secs(3))
        .lock_blocking(unique("beats-after-release"))
        .unwrap();
    let probe = lease.clone();
    lease.release_blocking().unwrap();
    // Three heartbeat periods (one a second): time for a beat that goes on.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        probe.state(),
        relukko::LeaseState::Released,
        "{:?}",
        probe.lost_reason()
    );
}

/// The keep-alives the server of `api` answered so far.
fn keep_alives(api: &Api) -> u64 {
    rt().block_on(api.requests_answered(|l| l.contains(r#"route="/v1/locks/{id}/keep_alive""#)))
}

/// A Relukko lease with heartbeats every `lease / 3`, held `for_` (then
/// released): the keep-alives the server answered meanwhile.
fn keep_alives_over(lease: Duration, for_: Duration) -> u64 {
    let server = TestServer::start();
    let api = Api::new(&server);
    let client = builder(server.base_url(), &server)
        .websocket(false)
        .build()
        .unwrap();
    let held = Locker::relukko(client)
        .lease(lease)
        .lock_blocking(unique("beats-pace"))
        .unwrap();
    std::thread::sleep(for_);
    let n = keep_alives(&api);
    held.release_blocking().unwrap();
    n
}

/// The first heartbeat comes a third of the lease after the lock was set
/// up, not at once: over 3 s of a 30 s lease the server sees only the
/// keep-alive that cut the lock's life to the lease (a beat at once left
/// every suite green).
#[test]
fn the_first_heartbeat_waits_a_third_of_the_lease() {
    assert_eq!(
        keep_alives_over(Duration::from_secs(30), Duration::from_secs(3)),
        1
    );
}

/// Heartbeats keep their pace, one every third of the lease: over 4 s of a
/// 3 s lease, the setup's keep-alive and about four beats, never a flood
/// (beats back to back left every suite green).
#[test]
fn heartbeats_keep_their_pace() {
    let n = keep_alives_over(Duration::from_secs(3), Duration::from_secs(4));
    assert!(n <= 8, "{n} keep-alives in 4 s, one a second");
}
