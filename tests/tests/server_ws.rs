//! `/ws/broadcast`: events, authentication, pings, slow clients, shutdown.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use relukko_e2e::raw::{Api, STEP, assert_error, next_event, next_event_for, unique, ws_connect};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[tokio::test]
async fn every_change_reaches_every_client_in_order() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let mut first = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    let mut second = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    let name = unique("events");
    let created = api.create(&name).await;
    let path = format!("/v1/locks/{}", created.id);
    let kept = api
        .lock_call(Method::GET, &format!("{path}/keep_alive"), None)
        .await;
    let added = api
        .lock_call(
            Method::PUT,
            &format!("{path}/add_to_expire_at"),
            Some(json!({"seconds": 3})),
        )
        .await;
    let put = api
        .lock_call(Method::PUT, &path, Some(json!({"creator": "other"})))
        .await;
    let deleted = api.lock_call(Method::DELETE, &path, None).await;

    for ws in [&mut first, &mut second] {
        let expected = [
            ("created", &created),
            ("updated", &kept),
            ("updated", &added),
            ("updated", &put),
            ("deleted", &deleted),
        ];
        for (kind, lock) in expected {
            let event = next_event(ws).await;
            assert_eq!(event.as_object().unwrap().len(), 1, "{event}");
            let got: relukko::Lock = serde_json::from_value(event[kind].clone())
                .unwrap_or_else(|e| panic!("expected {kind:?} ({e}): {event}"));
            assert_eq!(&got, lock);
        }
    }
}

#[tokio::test]
async fn the_upgrade_needs_the_right_key() {
    let server = TestServer::builder().api_key("ws-key").start();
    for key in [None, Some("wrong"), Some("ws-ke"), Some("ws-key2")] {
        match ws_connect(server.base_url(), key).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "key {key:?}");
                let body: serde_json::Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body["status"], 401);
            }
            Err(other) => panic!("key {key:?}: expected an HTTP 401, got {other}"),
            Ok(_) => panic!("key {key:?}: the upgrade was accepted"),
        }
    }
    ws_connect(server.base_url(), Some("ws-key")).await.unwrap();
}

#[tokio::test]
async fn an_upgrade_over_the_cap_is_refused_with_503_until_a_client_leaves() {
    let server = TestServer::builder().max_websockets(2).start();
    let key = Some(server.api_key());
    let first = ws_connect(server.base_url(), key).await.unwrap();
    let _second = ws_connect(server.base_url(), key).await.unwrap();
    match ws_connect(server.base_url(), key).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("most WebSocket clients (2)"), "{body}");
        }
        Err(other) => panic!("expected an HTTP 503, got {other}"),
        Ok(_) => panic!("a third client was let in over the cap of 2"),
    }
    // A client that leaves makes room; the server notices its close.
    drop(first);
    let deadline = Instant::now() + STEP;
    loop {
        match ws_connect(server.base_url(), key).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no room after a client left: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_plain_get_of_the_websocket_route_has_an_error_body() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (status, body) = api.call(Method::GET, "/ws/broadcast", None).await;
    // 400, with the JSON error body every other route answers, saying why.
    assert_error(status, &body, 400);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("upgrade"), "{body}");
}

#[tokio::test]
async fn pings_are_answered() {
    let server = TestServer::start();
    let mut ws = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(STEP, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(payload))) => return payload,
                Some(Ok(_)) => {}
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    })
    .await
    .expect("a pong in time");
    assert_eq!(&answer[..], b"are you there");
}

#[tokio::test]
async fn a_client_that_never_reads_stalls_no_one() {
    let server = TestServer::start();
    let api = Api::new(&server);
    // Connected, then never read: the server's writes to it pile up.
    let deaf = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    let mut listener = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();

    // About 12 MB of events, more than loopback socket buffers hold.
    let creator = "c".repeat(48 * 1024);
    let start = Instant::now();
    for i in 0..250 {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1/locks/",
                Some(json!({"lock_name": unique(&format!("flood-{i}")), "creator": creator})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Drain the listener as we go, as a live client would.
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(1), listener.next()).await
        {
            assert!(message.is_ok(), "the listener's link broke: {message:?}");
        }
    }
    // Generous: a stall would be the 5 s send timeout per event, i.e. half an hour.
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );

    // The listener still gets a new event promptly, and HTTP still answers.
    let marker = unique("marker");
    api.create(&marker).await;
    let (kind, _) = next_event_for(&mut listener, &marker).await;
    assert_eq!(kind, "created");
    let (status, _) = api.call(Method::GET, "/v1/locks/", None).await;
    assert_eq!(status, StatusCode::OK);

    // Whether the deaf client was closed (its socket buffers filled and a send
    // timed out) or merely skipped ahead depends on the kernel's buffer sizes,
    // so it is not asserted; that it blocked no one is.
    drop(deaf);
}

#[test]
fn dropping_the_server_cuts_websockets_and_keep_alive_connections() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = TestServer::start();
    let api = Api::new(&server);
    let (mut ws, _) = rt.block_on(async {
        let ws = ws_connect(server.base_url(), Some(server.api_key()))
            .await
            .unwrap();
        // Leaves an idle keep-alive connection in the client's pool.
        let lock = api.create(&unique("cut")).await;
        (ws, lock)
    });

    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "drop took {:?}",
        start.elapsed()
    );

    rt.block_on(async {
        let end = tokio::time::timeout(STEP, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(end.is_ok(), "the WebSocket stayed open");
        let start = Instant::now();
        let result = api.req(Method::GET, "/v1/locks/").send().await;
        assert!(result.is_err(), "a stopped server answered: {result:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "hung for {:?}",
            start.elapsed()
        );
    });
}
