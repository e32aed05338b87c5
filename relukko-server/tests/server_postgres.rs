//! Replicas of the `relukko-server` binary on one real PostgreSQL (a
//! throwaway cluster each test starts itself): the same locks through any
//! replica, one winner of a race, every change pushed by every replica, a
//! waiter woken across replicas, contention through both, a replica killed
//! with `kill -9`, PostgreSQL restarted mid-run.
//!
//! Where PostgreSQL is not installed these pass as skipped (with a line on
//! stderr), except under `CI=true`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relukko::{AcquireOptions, Client};
use relukko_e2e::child::{Running, start};
use relukko_e2e::postgres::TestPostgres;
use relukko_e2e::raw::{Api, next_event_for, unique, ws_connect};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_relukko-server");
const KEY: &str = "replica-key-0123456789abcdef";
const BOUND: Duration = Duration::from_secs(30);

fn replica(pg: &TestPostgres) -> Running {
    let mut cmd = relukko_e2e::child::command(BIN);
    cmd.env("RELUKKO_API_KEY", KEY)
        .args(["--port=0", "--db", &pg.url()])
        .args(["--grace=1s", "--cleanup-interval=200ms"]);
    start(cmd)
}

fn base(r: &Running) -> String {
    format!("http://{}", r.addr)
}

fn client(r: &Running) -> Client {
    Client::builder(base(r))
        .api_key(KEY)
        .poll_max(Duration::from_secs(3600))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_the_same_locks_and_one_wins_a_race() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = (replica(&pg), replica(&pg));
    let (api_a, api_b) = (Api::at(&base(&a), KEY), Api::at(&base(&b), KEY));

    let lock = api_a.create(&unique("pg-shared")).await;
    let (status, got) = api_b
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["lock_name"], lock.lock_name.as_str());
    // Created 10 minutes out, by the database's clock.
    let kept = api_b
        .lock_call(
            Method::PUT,
            &format!("/v1/locks/{}/keep_alive", lock.id),
            Some(json!({"seconds": 600})),
        )
        .await;
    assert!(kept.expires_at > lock.expires_at, "{kept:?}");
    let renamed = api_a
        .lock_call(
            Method::PUT,
            &format!("/v1/locks/{}", lock.id),
            Some(json!({"creator": "through A"})),
        )
        .await;
    assert_eq!(renamed.creator.as_deref(), Some("through A"));
    assert_eq!(renamed.expires_at, kept.expires_at);
    let (status, list) = api_b.call(Method::GET, "/v1/locks/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|l| l["creator"] == "through A")
    );
    api_b
        .lock_call(Method::DELETE, &format!("/v1/locks/{}", lock.id), None)
        .await;
    let (status, _) = api_a
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Races for one name through both replicas: exactly one winner each time.
    for round in 0..10 {
        let name = unique(&format!("pg-race-{round}"));
        let tries = (0..8).map(|i| {
            let api = if i % 2 == 0 {
                api_a.clone()
            } else {
                api_b.clone()
            };
            let name = name.clone();
            tokio::spawn(async move {
                api.call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
                    .await
                    .0
            })
        });
        let mut statuses = Vec::new();
        for t in tries {
            statuses.push(t.await.unwrap());
        }
        let won = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let lost = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((won, lost), (1, 7), "round {round}: {statuses:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_pushes_every_change_and_wakes_waiters() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = (replica(&pg), replica(&pg));
    let (api_a, api_b) = (Api::at(&base(&a), KEY), Api::at(&base(&b), KEY));
    let mut on_b = ws_connect(&base(&b), Some(KEY)).await.unwrap();

    let name = unique("pg-push");
    let lock = api_a.create(&name).await;
    let (kind, pushed) = next_event_for(&mut on_b, &name).await;
    assert_eq!((kind.as_str(), pushed.id), ("created", lock.id));

    // A creator far over NOTIFY's 8000 bytes: stored whole, announced cut.
    let big = unique("pg-big");
    let creator = "c".repeat(60_000);
    let (status, body) = api_a
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": big, "creator": creator})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["creator"].as_str().map(str::len), Some(60_000));
    let (kind, pushed) = next_event_for(&mut on_b, &big).await;
    assert_eq!(kind, "created");
    assert!(pushed.creator.unwrap().len() < 8000);

    // Input PostgreSQL cannot take as it is: a name of 60 kB (longer than an
    // index entry) is stored; a NUL character is the client's error (422),
    // never a 503 the client would retry.
    let long = format!("{}-{}", unique("pg-long"), "n".repeat(60_000));
    let (status, body) = api_a
        .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": long})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api_b
        .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": long})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the long name is taken once");
    let (status, body) = api_a
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": "nul\u{0}name"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A waiter on B, woken by a release through A (the push, not a poll:
    // its polls are an hour apart).
    let (holder, waiter) = (client(&a), client(&b));
    let rig = unique("pg-rig");
    let held = holder.create(&rig, None).await.unwrap().lock().unwrap();
    let task = {
        let (waiter, rig) = (waiter.clone(), rig.clone());
        tokio::spawn(async move {
            waiter
                .acquire(&rig, AcquireOptions::new().timeout(BOUND))
                .await
        })
    };
    let deadline = Instant::now() + BOUND;
    while waiter.__watch_stats().connects == 0 {
        assert!(
            Instant::now() < deadline,
            "the waiter's WebSocket never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.delete(held.id).await.unwrap();
    let got = tokio::time::timeout(BOUND, task)
        .await
        .expect("woken in time")
        .unwrap()
        .unwrap();
    assert_eq!(got.lock_name, rig);
    assert!(
        waiter.__watch_stats().push_wakeups >= 1,
        "woken by the push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_through_two_replicas_never_overlaps() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let replicas = [replica(&pg), replica(&pg)];
    let name = unique("pg-contended");
    let inside = Arc::new(AtomicBool::new(false));
    let (overlaps, holds) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let c = Client::builder(base(&replicas[i % 2]))
                .api_key(KEY)
                .poll_max(Duration::from_millis(200))
                .build()
                .unwrap();
            let (name, inside, overlaps, holds) = (
                name.clone(),
                inside.clone(),
                overlaps.clone(),
                holds.clone(),
            );
            tokio::spawn(async move {
                for _ in 0..5 {
                    let lock = c
                        .acquire(&name, AcquireOptions::new().timeout(BOUND))
                        .await
                        .expect("a turn within the bound");
                    if inside.swap(true, Ordering::SeqCst) {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    inside.store(false, Ordering::SeqCst);
                    holds.fetch_add(1, Ordering::SeqCst);
                    c.delete(lock.id).await.expect("release");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(holds.load(Ordering::SeqCst), 30);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two holders at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_kill_9_loses_nothing() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (mut a, b) = (replica(&pg), replica(&pg));
    let api_a = Api::at(&base(&a), KEY);
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(api_a.create(&unique(&format!("pg-kill-{i}"))).await.id);
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let api_b = Api::at(&base(&b), KEY);
    let (status, list) = api_b.call(Method::GET, "/v1/locks/", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    for id in made {
        assert!(listed.contains(&id.to_string()), "lock {id} was lost");
    }
    api_b.create(&unique("pg-after-kill")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_is_a_503_then_service_resumes_with_pushes() {
    let Some(mut pg) = TestPostgres::start() else {
        return;
    };
    let a = replica(&pg);
    let api = Api::at(&base(&a), KEY);
    let kept = api.create(&unique("pg-before-restart")).await;
    let mut socket = ws_connect(&base(&a), Some(KEY)).await.unwrap();

    pg.stop();
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": unique("pg-down")})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    let (status, body) = api.call(Method::GET, "/healthchecker", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    pg.start_again();
    let deadline = Instant::now() + BOUND;
    let name = unique("pg-after-restart");
    loop {
        let (status, body) = api
            .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
            .await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            Instant::now() < deadline,
            "no service after the restart: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The listener is back: the change is pushed; and nothing was lost.
    let (kind, _) = next_event_for(&mut socket, &name).await;
    assert_eq!(kind, "created");
    let (status, _) = api
        .call(Method::GET, &format!("/v1/locks/{}", kept.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.call(Method::GET, "/healthchecker", None).await;
    assert_eq!(status, StatusCode::OK);
}

/// The official Python client, pyrelukko, against two replicas: every call
/// of its API, and a waiter on one replica woken by a release through the
/// other (`tests/python/pyrelukko_replicas.py`). Skipped (with a line) where
/// python3 with pyrelukko is missing, except under `CI=true`.
#[test]
fn pyrelukko_works_across_two_replicas() {
    let has_pyrelukko = std::process::Command::new("python3")
        .args(["-c", "import pyrelukko"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pyrelukko {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the pyrelukko check: pip install pyrelukko"
        );
        eprintln!("SKIPPED: python3 with pyrelukko is not installed (pip install pyrelukko)");
        return;
    }
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = (replica(&pg), replica(&pg));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/python/pyrelukko_replicas.py"
    );
    let mut child = std::process::Command::new("python3")
        .args([script, &base(&a), &base(&b), KEY])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the pyrelukko script did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "pyrelukko failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}
