//! The page at `GET /`: who may see it, its ticketed WebSocket, its login, and
//! the whole flow in a real (headless) browser.

use std::time::Duration;

use relukko_e2e::browser::{Browser, chromium_for};
use relukko_e2e::raw::{Api, assert_error, next_event_for, unique, ws_connect};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

fn page_ws_url(server: &TestServer, ticket: &str) -> String {
    format!(
        "{}/page/ws?ticket={ticket}",
        server.base_url().replacen("http", "ws", 1)
    )
}

async fn ticket(rb: reqwest::RequestBuilder) -> String {
    let (status, body) = Api::send(rb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["ticket"].as_str().expect("a ticket").to_owned()
}

fn refused(result: Result<(relukko_e2e::raw::Ws, impl Sized), WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the WebSocket opened"),
    }
}

#[tokio::test]
async fn the_page_is_static_and_public_without_a_login() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let response = api
        .http
        .get(format!("{}/", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="relukko-auth" content="key">"#),
        "{html}"
    );
    assert!(!html.contains(server.api_key()));
    // Nothing from elsewhere: no CDN, no build step.
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[tokio::test]
async fn a_ticket_opens_the_page_socket_once() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let url = format!("{}/page/ticket", server.base_url());

    let (status, body) = Api::send(api.http.post(&url)).await;
    assert_error(status, &body, 401);
    let (status, body) = Api::send(api.http.post(&url).header("X-API-Key", "wrong")).await;
    assert_error(status, &body, 401);

    let t = ticket(api.req(Method::POST, "/page/ticket")).await;
    assert_eq!(t.len(), 64);
    let (mut ws, _) = tokio_tungstenite::connect_async(page_ws_url(&server, &t))
        .await
        .expect("the ticket opens the page socket");
    let name = unique("page-ws");
    let created = api.create(&name).await;
    let (kind, lock) = next_event_for(&mut ws, &name).await;
    assert_eq!((kind.as_str(), lock.id), ("created", created.id));

    // Spent, unknown, missing: refused.
    assert_eq!(
        refused(tokio_tungstenite::connect_async(page_ws_url(&server, &t)).await),
        401
    );
    assert_eq!(
        refused(tokio_tungstenite::connect_async(page_ws_url(&server, "0123")).await),
        401
    );
    let bare = format!("{}/page/ws", server.base_url().replacen("http", "ws", 1));
    assert_eq!(refused(tokio_tungstenite::connect_async(bare).await), 401);

    // The API's socket is not weakened: a ticket is no key there.
    let t = ticket(api.req(Method::POST, "/page/ticket")).await;
    let api_ws = format!(
        "{}/ws/broadcast?ticket={t}",
        server.base_url().replacen("http", "ws", 1)
    );
    assert_eq!(refused(tokio_tungstenite::connect_async(api_ws).await), 401);
    assert!(ws_connect(server.base_url(), None).await.is_err());
}

#[tokio::test]
async fn a_page_login_protects_the_page_and_only_the_page() {
    let server = TestServer::builder()
        .page_login("admin", "s3cret pw")
        .start();
    let api = Api::new(&server);
    let base = server.base_url().to_owned();
    let get_page = |user: Option<(&str, &str)>| {
        let rb = api.http.get(format!("{base}/"));
        match user {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    };

    let response = get_page(None).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let response = get_page(Some(("admin", "wrong"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The API key is not the page login.
    let response = api.req(Method::GET, "/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = get_page(Some(("admin", "s3cret pw"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"content="basic""#));

    // The page's own endpoints take the login...
    let lock = api.create(&unique("page-login")).await;
    let login = |method: Method, path: &str| {
        api.http
            .request(method, format!("{base}{path}"))
            .basic_auth("admin", Some("s3cret pw"))
    };
    let (status, list) = Api::send(login(Method::GET, "/page/locks/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, _) = Api::send(login(Method::POST, "/page/ticket")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = Api::send(
        api.http
            .get(format!("{base}/page/locks/"))
            .basic_auth("admin", Some("nope")),
    )
    .await;
    assert_error(status, &body, 401);

    // ... the API does not.
    for (method, path) in [
        (Method::GET, "/v1/locks/".to_owned()),
        (Method::DELETE, format!("/v1/locks/{}", lock.id)),
        (Method::GET, "/metrics".to_owned()),
    ] {
        let (status, body) = Api::send(login(method.clone(), &path)).await;
        assert_error(status, &body, 401);
    }

    let (status, body) =
        Api::send(login(Method::DELETE, &format!("/page/locks/{}", lock.id))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], lock.id.to_string());
    let (status, body) = api
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_error(status, &body, 404);
}

/// A browser sends the page login along with any request to the server, also
/// one that another site's page makes: the page's writes are refused when
/// the browser says they come from elsewhere.
#[tokio::test]
async fn page_writes_from_another_site_are_refused() {
    let server = TestServer::builder().page_login("admin", "pw").start();
    let api = Api::new(&server);
    let base = server.base_url().to_owned();
    let host = base.trim_start_matches("http://").to_owned();
    let lock = api.create(&unique("page-csrf")).await;
    let write = |method: Method, path: &str, headers: &[(&str, &str)]| {
        let mut rb = api
            .http
            .request(method, format!("{base}{path}"))
            .basic_auth("admin", Some("pw"));
        for (name, value) in headers {
            rb = rb.header(*name, *value);
        }
        rb
    };
    let delete = format!("/page/locks/{}", lock.id);
    for headers in [
        vec![("Origin", "https://evil.example")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Origin", "null")],
    ] {
        for (method, path) in [
            (Method::DELETE, delete.as_str()),
            (Method::POST, "/page/ticket"),
        ] {
            let (status, body) = Api::send(write(method.clone(), path, &headers)).await;
            assert_error(status, &body, 403);
            assert!(
                body["message"].as_str().unwrap().contains("another site"),
                "{method} {path} {headers:?}: {body}"
            );
        }
    }
    let (status, _) = api
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "a refused release released");

    // The page itself (same origin), and clients that send neither header.
    let own_origin = format!("http://{host}");
    let same = [
        ("Origin", own_origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let (status, body) = Api::send(write(Method::POST, "/page/ticket", &same)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = Api::send(write(Method::POST, "/page/ticket", &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = Api::send(write(Method::DELETE, &delete, &same)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The page never says "No locks are held." when it cannot know: before a
/// key is entered, after a wrong one, and when opened with the login in its
/// address (`http://user:pw@host/`), where it must also work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_it_does_not_know_rather_than_no_locks() {
    let Some(chromium) = chromium_for("the_page_says_it_does_not_know_rather_than_no_locks") else {
        return;
    };
    let claims_none = "document.body.innerText.includes('No locks are held')";
    let unknown = "!document.getElementById('unknown').hidden && \
                   document.getElementById('table').hidden && \
                   document.getElementById('count').textContent === ''";

    // The key page, before a key and after a wrong one, with a lock held.
    let server = TestServer::start();
    let api = Api::new(&server);
    api.create(&unique("held-while-unknown")).await;
    let mut browser = Browser::start(&chromium, 1000, 500).await;
    browser.goto(&format!("{}/", server.base_url())).await;
    browser
        .wait_for(
            "!document.getElementById('login').hidden",
            "the page asks for the key",
        )
        .await;
    assert_eq!(browser.eval(unknown).await, Value::Bool(true));
    assert_eq!(browser.eval(claims_none).await, Value::Bool(false));
    browser
        .eval(
            "document.getElementById('key').value = 'not-the-key'; \
             document.getElementById('use-key').click(); true",
        )
        .await;
    browser
        .wait_for(
            "document.getElementById('error').textContent.includes('did not accept')",
            "the wrong key is refused",
        )
        .await;
    assert_eq!(browser.eval(unknown).await, Value::Bool(true));
    assert_eq!(browser.eval(claims_none).await, Value::Bool(false));
    drop(browser);

    // A page login given in the address: the page works and shows the
    // creator as its holder wrote it, without our client's token.
    let server = TestServer::builder().page_login("admin", "pw").start();
    let api = Api::new(&server);
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({
                "lock_name": "hil-rig-3",
                "creator": "alice: nightly HIL flash [rl:b7760997eb994a4fbb2a90c938e351d4]"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut browser = Browser::start(&chromium, 1000, 500).await;
    let with_login = server.base_url().replacen("http://", "http://admin:pw@", 1);
    browser.goto(&format!("{with_login}/")).await;
    browser
        .wait_for(
            "document.getElementById('status').className === 'live'",
            "the page opened with the login in its address goes live",
        )
        .await;
    let creator = browser
        .eval("document.querySelector('tr[data-name=\"hil-rig-3\"] .creator').textContent")
        .await;
    assert_eq!(creator, Value::String("alice: nightly HIL flash".into()));
    assert_eq!(
        browser
            .eval("document.getElementById('count').textContent")
            .await,
        Value::String("1 lock".into())
    );
}

/// The page in headless Chromium: it shows a lock a client takes, releases it
/// after a confirmation, and shows a deletion made elsewhere.
///
/// Skipped (with a message) where no Chromium is installed, except in CI
/// (`CI=true`), which must run it. `RELUKKO_PAGE_SCREENSHOT=path.png` saves
/// what the page shows with three locks held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_a_real_browser() {
    let Some(chromium) = chromium_for("the_page_in_a_real_browser") else {
        return;
    };
    let server = TestServer::start();
    let api = Api::new(&server);
    let mut browser = Browser::start(&chromium, 1100, 520).await;
    browser.goto(&format!("{}/", server.base_url())).await;

    // No key yet: the page asks for it, and keeps it for the tab.
    browser
        .wait_for(
            "!document.getElementById('login').hidden",
            "the page asks for the key",
        )
        .await;
    let key = serde_json::to_string(server.api_key()).unwrap();
    browser
        .eval(&format!(
            "document.getElementById('key').value = {key}; \
             document.getElementById('use-key').click(); true"
        ))
        .await;
    browser
        .wait_for(
            "document.getElementById('status').className === 'live'",
            "the page is live",
        )
        .await;
    assert_eq!(
        browser
            .eval("sessionStorage.getItem('relukko-api-key')")
            .await,
        Value::String(server.api_key().to_owned())
    );

    // A client takes a lock: it appears.
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": "hil-rig-3", "creator": "ci-runner-7 (pipeline 4711)"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rig = relukko_e2e::raw::lock(body);
    let row = |name: &str| format!("document.querySelector('tr[data-name=\"{name}\"]')");
    browser
        .wait_for(
            &format!("{} !== null", row("hil-rig-3")),
            "the new lock shows",
        )
        .await;
    assert_eq!(
        browser
            .eval(&format!(
                "{}.querySelector('.creator').textContent",
                row("hil-rig-3")
            ))
            .await,
        "ci-runner-7 (pipeline 4711)"
    );

    // Two more, one of them expired, for the filter and the picture.
    let staging = api.create("staging-db").await;
    let phone = api.create("device-slot-pixel-7").await;
    let past =
        relukko::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::seconds(95));
    api.lock_call(
        Method::PUT,
        &format!("/v1/locks/{}", phone.id),
        Some(json!({"expires_at": past, "creator": "nightly-e2e"})),
    )
    .await;
    browser
        .wait_for(
            &format!(
                "{0} !== null && {0}.querySelector('.expired') !== null",
                row("device-slot-pixel-7")
            ),
            "the expired lock shows as expired",
        )
        .await;
    if let Some(path) = std::env::var_os("RELUKKO_PAGE_SCREENSHOT") {
        tokio::time::sleep(Duration::from_millis(1200)).await; // "since" ticks past 0s
        let png = browser.screenshot().await;
        std::fs::write(&path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", std::path::Path::new(&path).display());
    }

    // The filter hides what does not match.
    browser
        .eval("const f = document.getElementById('filter'); f.value = 'rig'; f.dispatchEvent(new Event('input')); true")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#locks tr').length")
            .await,
        1
    );
    browser
        .eval("const g = document.getElementById('filter'); g.value = ''; g.dispatchEvent(new Event('input')); true")
        .await;

    // Release asks first; Cancel keeps the lock.
    let click_release = format!(
        "{}.querySelector('button.release').click(); true",
        row("hil-rig-3")
    );
    browser.eval(&click_release).await;
    browser
        .wait_for(
            "document.getElementById('confirm').open",
            "the confirmation opens",
        )
        .await;
    assert!(
        browser
            .eval("document.getElementById('confirm-text').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("hil-rig-3")
    );
    browser
        .eval("document.getElementById('confirm-cancel').click(); true")
        .await;
    browser
        .wait_for(
            "!document.getElementById('confirm').open",
            "the confirmation closes",
        )
        .await;
    let (status, _) = api
        .call(Method::GET, &format!("/v1/locks/{}", rig.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "Cancel released the lock");

    // Release, confirmed: the lock is gone, on the page and on the server.
    browser.eval(&click_release).await;
    browser
        .wait_for(
            "document.getElementById('confirm').open",
            "the confirmation opens",
        )
        .await;
    browser
        .eval("document.getElementById('confirm-release').click(); true")
        .await;
    browser
        .wait_for(
            &format!("{} === null", row("hil-rig-3")),
            "the released lock goes",
        )
        .await;
    let (status, body) = api
        .call(Method::GET, &format!("/v1/locks/{}", rig.id), None)
        .await;
    assert_error(status, &body, 404);

    // A deletion made elsewhere reaches the page live.
    api.lock_call(Method::DELETE, &format!("/v1/locks/{}", staging.id), None)
        .await;
    browser
        .wait_for(
            &format!("{} === null", row("staging-db")),
            "a deletion elsewhere shows",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#locks tr').length")
            .await,
        1
    );
}
