//! The client configured from the environment. Parsing goes through the pure
//! `ClientSettings::from_lookup`; the real process environment is only read in
//! a child process (this test binary, re-run with variables set), never
//! changed in this one.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use relukko::{Client, ClientSettings, Error};
use relukko_server::TestServer;

fn settings(vars: &[(&str, &str)]) -> relukko::Result<ClientSettings> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    ClientSettings::from_lookup(|n| map.get(n).map(|v| v.to_string()))
}

fn expect_config(vars: &[(&str, &str)], name: &str) {
    match settings(vars).and_then(|s| s.into_builder().build()) {
        Err(e @ Error::Config { .. }) => {
            let Error::Config { name: got, .. } = &e else {
                unreachable!()
            };
            assert_eq!(got, name, "{vars:?}");
            assert!(
                e.to_string().contains(name),
                "the message names {name}: {e}"
            );
        }
        other => panic!("{vars:?}: expected a Config error naming {name}, got {other:?}"),
    }
}

const URL: (&str, &str) = ("RELUKKO_URL", "http://127.0.0.1:9");

#[test]
fn every_variable_refuses_junk_and_empty_values() {
    let cases: &[(&str, &[&str])] = &[
        ("RELUKKO_URL", &["nonsense", "ftp://x", "http://"]),
        ("RELUKKO_BASE_URL", &["nonsense", "https://"]),
        ("RELUKKO_API_KEY", &["line\nbreak"]),
        ("RELUKKO_CREATOR", &[]),
        ("RELUKKO_REQUEST_TIMEOUT", &["soon", "-1s", "0"]),
        ("RELUKKO_CONNECT_TIMEOUT", &["3 parsecs", "0ms"]),
        ("RELUKKO_WEBSOCKET", &["maybe", "2"]),
        ("RELUKKO_CA_BUNDLE", &["/no/such/ca.pem"]),
        ("REQUESTS_CA_BUNDLE", &["/no/such/ca.pem"]),
        ("CURL_CA_BUNDLE", &["/no/such/dir/"]),
    ];
    for (name, junk) in cases {
        // Python's clients take these two set but empty for unset; so do we.
        let foreign = ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"].contains(name);
        let empty: &[&str] = if foreign { &[] } else { &["", "   "] };
        for value in junk.iter().chain(empty) {
            let mut vars = vec![(*name, *value)];
            if !name.ends_with("URL") {
                vars.push(URL);
            }
            expect_config(&vars, name);
        }
    }
    // A CA "bundle" that holds no certificate is refused when the client is built.
    let dir = relukko_e2e::temp::TempDir::new("env-ca");
    std::fs::write(dir.join("x.pem"), "no certificate here").unwrap();
    expect_config(
        &[URL, ("RELUKKO_CA_BUNDLE", dir.to_str().unwrap())],
        "RELUKKO_CA_BUNDLE",
    );
}

#[test]
fn url_missing_is_an_error_unless_skipping_and_the_alias_works() {
    expect_config(&[], "RELUKKO_URL");
    let s = settings(&[("RELUKKO_TRUST_ME_IT_IS_LOCKED", "1")]).unwrap();
    assert!(s.into_builder().build().unwrap().is_skip());
    // Empty means off, as upstream.
    let s = settings(&[URL, ("RELUKKO_TRUST_ME_IT_IS_LOCKED", "")]).unwrap();
    assert!(!s.trust_me_it_is_locked);
    let c = settings(&[("RELUKKO_BASE_URL", "http://127.0.0.1:9/")])
        .unwrap()
        .into_builder()
        .build()
        .unwrap();
    assert_eq!(c.base_url(), "http://127.0.0.1:9");
}

#[test]
fn relukko_url_wins_over_its_alias() {
    let c = settings(&[
        ("RELUKKO_BASE_URL", "http://127.0.0.1:8"),
        ("RELUKKO_URL", "http://127.0.0.1:9"),
    ])
    .unwrap()
    .into_builder()
    .build()
    .unwrap();
    assert_eq!(c.base_url(), "http://127.0.0.1:9");
    // And a bad alias is not even looked at when RELUKKO_URL is set.
    let c = settings(&[("RELUKKO_BASE_URL", "junk"), URL])
        .unwrap()
        .into_builder()
        .build()
        .unwrap();
    assert_eq!(c.base_url(), "http://127.0.0.1:9");
}

#[test]
fn ca_bundle_variables_are_read_in_their_order() {
    // Each one set to a missing file: the error names the one that was read.
    let bad = "/no/such/ca.pem";
    expect_config(
        &[
            URL,
            ("RELUKKO_CA_BUNDLE", bad),
            ("REQUESTS_CA_BUNDLE", bad),
            ("CURL_CA_BUNDLE", bad),
        ],
        "RELUKKO_CA_BUNDLE",
    );
    expect_config(
        &[URL, ("REQUESTS_CA_BUNDLE", bad), ("CURL_CA_BUNDLE", bad)],
        "REQUESTS_CA_BUNDLE",
    );
    expect_config(&[URL, ("CURL_CA_BUNDLE", bad)], "CURL_CA_BUNDLE");
}

/// `RELUKKO_CONNECT_TIMEOUT` bounds the connection set-up: against a peer
/// that accepts TCP but never answers the TLS handshake, a call fails after
/// the connect timeout, long before its request timeout.
#[tokio::test]
async fn connect_timeout_bounds_a_stalled_connection() {
    let server = TestServer::start();
    let stall = relukko_e2e::proxy::Proxy::start(server.addr(), relukko_e2e::proxy::Mode::Stall);
    let url = stall.base_url().replacen("http://", "https://", 1);
    let c = settings(&[
        ("RELUKKO_URL", url.as_str()),
        ("RELUKKO_CONNECT_TIMEOUT", "500ms"),
        ("RELUKKO_REQUEST_TIMEOUT", "60s"),
    ])
    .unwrap()
    .into_builder()
    .retry(relukko::RetryPolicy::never())
    .build()
    .unwrap();
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(50), c.list())
        .await
        .expect("the connect timeout ended the call")
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "ended by the 60 s request timeout, not the connect timeout: {took:?} {e}"
    );
    assert!(stall.accepted() >= 1, "the call reached the peer");
}

#[tokio::test]
async fn settings_from_the_environment_reach_the_server() {
    let server = TestServer::start();
    let url = server.base_url();
    let s = settings(&[
        ("RELUKKO_URL", url),
        ("RELUKKO_API_KEY", server.api_key()),
        ("RELUKKO_CREATOR", "env-creator"),
        ("RELUKKO_REQUEST_TIMEOUT", "2s"),
        ("RELUKKO_CONNECT_TIMEOUT", "500ms"),
        ("RELUKKO_WEBSOCKET", "off"),
    ])
    .unwrap();
    assert_eq!(s.request_timeout, Some(Duration::from_secs(2)));
    let c = s.into_builder().build().unwrap();
    let lock = c
        .create(&relukko_e2e::raw::unique("env"), None)
        .await
        .unwrap()
        .lock()
        .unwrap();
    assert_eq!(
        relukko::creator_without_token(lock.creator.as_deref().unwrap()),
        "env-creator"
    );
    c.delete(lock.id).await.unwrap();
}

/// Runs in the child only: prints what `Client::from_env` made of the real environment.
#[test]
#[ignore = "a worker: its driver runs it"]
fn child_reports_from_env() {
    if std::env::var_os("RELUKKO_E2E_CHILD").is_none() {
        return;
    }
    match Client::from_env() {
        Ok(c) => println!("CHILD-RESULT ok {} skip={}", c.base_url(), c.is_skip()),
        Err(Error::Config { name, .. }) => println!("CHILD-RESULT config {name}"),
        Err(e) => println!("CHILD-RESULT other {e}"),
    }
}

fn run_child(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "--ignored",
        "child_reports_from_env",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in [
        "RELUKKO_URL",
        "RELUKKO_BASE_URL",
        "RELUKKO_API_KEY",
        "RELUKKO_CREATOR",
        "RELUKKO_REQUEST_TIMEOUT",
        "RELUKKO_CONNECT_TIMEOUT",
        "RELUKKO_WEBSOCKET",
        "RELUKKO_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "RELUKKO_TRUST_ME_IT_IS_LOCKED",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RELUKKO_E2E_CHILD", "1").envs(vars.iter().copied());
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.find("CHILD-RESULT ").map(|i| l[i + 13..].to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "no result from the child: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn from_env_reads_the_real_environment_in_a_child() {
    assert_eq!(
        run_child(&[("RELUKKO_URL", "http://127.0.0.1:9/")]),
        "ok http://127.0.0.1:9 skip=false"
    );
    assert_eq!(
        run_child(&[("RELUKKO_TRUST_ME_IT_IS_LOCKED", "yes")]),
        "ok  skip=true"
    );
    assert_eq!(
        run_child(&[
            ("RELUKKO_URL", "http://127.0.0.1:9"),
            ("RELUKKO_WEBSOCKET", "")
        ]),
        "config RELUKKO_WEBSOCKET"
    );
    assert_eq!(run_child(&[]), "config RELUKKO_URL");
    assert_eq!(
        run_child(&[
            ("RELUKKO_BASE_URL", "http://127.0.0.1:8"),
            ("RELUKKO_URL", "http://127.0.0.1:9")
        ]),
        "ok http://127.0.0.1:9 skip=false"
    );
}
