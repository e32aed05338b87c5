//! A headless Chromium driven over the DevTools protocol (CDP), with no
//! browser download and no driver binary: the distribution's `chromium`, its
//! `--remote-debugging-port`, and a WebSocket from `tokio-tungstenite`.
//!
//! Only loopback pages: the browser runs with networking features off and a
//! fresh profile, and is killed when the [`Browser`] is dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::raw::Ws;
use crate::temp::TempDir;

/// The longest the browser may take to start or to answer one command.
pub const BROWSER_STEP: Duration = Duration::from_secs(60);

/// The Chromium binary for the test `test`, or `None` after a SKIPPED line
/// where there is none; under `CI=true` a missing Chromium fails the test
/// instead (CI must run the browser tests).
pub fn chromium_for(test: &str) -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the browser test: install chromium (apt-get install chromium)"
        );
        eprintln!("SKIPPED {test}: no chromium on PATH (set RELUKKO_TEST_CHROMIUM)");
    }
    found
}

/// The Chromium binary: `RELUKKO_TEST_CHROMIUM`, else `chromium` or
/// `chromium-browser` on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RELUKKO_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A running headless Chromium and a CDP session on its first page.
pub struct Browser {
    child: Child,
    _profile: TempDir,
    ws: Ws,
    next_id: u64,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `chromium` headless on an empty page of `width` x `height`.
    pub async fn start(chromium: &std::path::Path, width: u32, height: u32) -> Browser {
        let profile = TempDir::new("chromium-profile");
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));

        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on
        // stderr; the rest of stderr is drained so the browser never blocks.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let browser_url = match rx.recv_timeout(BROWSER_STEP) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium did not open its DevTools port in {BROWSER_STEP:?}");
            }
        };
        let port = browser_url
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .expect("a port in the DevTools URL")
            .to_owned();

        // The first page's own WebSocket, from the target list.
        let list_url = format!("http://127.0.0.1:{port}/json/list");
        // The raw API's client: plain HTTP, with the TLS provider reqwest needs.
        let targets: Value = crate::raw::Api::at("", "")
            .http
            .get(&list_url)
            .timeout(BROWSER_STEP)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("the DevTools target list")
            .json()
            .await
            .expect("the target list is JSON");
        let page_ws = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target in {targets}"))
            .to_owned();
        let (ws, _) = tokio::time::timeout(BROWSER_STEP, tokio_tungstenite::connect_async(page_ws))
            .await
            .expect("the DevTools WebSocket opens in time")
            .expect("the DevTools WebSocket opens");
        let mut browser = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
        };
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends one CDP command and returns its `result`; events are skipped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::text(request))
            .await
            .expect("a CDP command is sent");
        let answer = tokio::time::timeout(BROWSER_STEP, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let v: Value = serde_json::from_str(&text).expect("CDP speaks JSON");
                        if v["id"] == id {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the DevTools connection ended: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} in {BROWSER_STEP:?}"));
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'", "the page loads")
            .await;
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is `true`; panics naming `what` after [`BROWSER_STEP`].
    pub async fn wait_for(&mut self, expression: &str, what: &str) {
        let start = Instant::now();
        loop {
            if self.eval(expression).await == Value::Bool(true) {
                return;
            }
            if start.elapsed() > BROWSER_STEP {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out waiting until {what} ({expression}); the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the page as it is shown.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        decode_base64(shot["data"].as_str().expect("screenshot data"))
    }
}

/// Standard base64 (RFC 4648), padding optional.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::decode_base64("Zm9vYg=="), b"foob");
        assert_eq!(super::decode_base64("Zm9v"), b"foo");
        assert_eq!(super::decode_base64("Zm8="), b"fo");
    }
}
