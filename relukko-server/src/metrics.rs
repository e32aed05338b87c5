//! The server's counters, rendered in the Prometheus text format for
//! `GET /metrics` (served behind the API key by `routes`).
//!
//! Requests are counted by route template (`/v1/locks/{id}`, never the id
//! itself) so the number of series stays bounded whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::Method;

/// Which WebSocket a client is connected to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Socket {
    /// `/ws/broadcast`, the API's.
    Api,
    /// `/page/ws`, the page's.
    Page,
}

/// The server's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// (route, method, status) to count.
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    api_clients: Arc<AtomicU64>,
    page_clients: Arc<AtomicU64>,
    cleanup_runs: AtomicU64,
    cleanup_removed: AtomicU64,
    cleanup_failures: AtomicU64,
}

/// Counts a WebSocket client while it lives.
#[derive(Debug)]
pub(crate) struct Connected(Arc<AtomicU64>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched template (or
    /// `"unmatched"`), interned so that only known strings become labels.
    pub(crate) fn request(&self, route: Option<&str>, method: &Method, status: u16) {
        let route = route.map_or("unmatched", intern_route);
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::PATCH => "PATCH",
            _ => "OTHER",
        };
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route, method, status)).or_insert(0) += 1;
    }

    pub(crate) fn connected(&self, socket: Socket) -> Connected {
        let gauge = match socket {
            Socket::Api => &self.api_clients,
            Socket::Page => &self.page_clients,
        };
        gauge.fetch_add(1, Ordering::Relaxed);
        Connected(gauge.clone())
    }

    pub(crate) fn cleanup(&self, removed: Result<usize, ()>) {
        self.cleanup_runs.fetch_add(1, Ordering::Relaxed);
        match removed {
            Ok(n) => self.cleanup_removed.fetch_add(n as u64, Ordering::Relaxed),
            Err(()) => self.cleanup_failures.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The text exposition (format 0.0.4).
    pub(crate) fn render(&self, held: usize, expired: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, rows: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "relukko_locks_held",
            "gauge",
            "Locks the server holds now, expired ones in their grace period included.",
            &[(String::new(), held as u64)],
        );
        metric(
            "relukko_locks_expired",
            "gauge",
            "Held locks whose expiry has passed, waiting for the clean-up pass.",
            &[(String::new(), expired as u64)],
        );
        metric(
            "relukko_websocket_clients",
            "gauge",
            "Connected WebSocket clients, by path.",
            &[
                (
                    "{path=\"/ws/broadcast\"}".to_owned(),
                    load(&self.api_clients),
                ),
                ("{path=\"/page/ws\"}".to_owned(), load(&self.page_clients)),
            ],
        );
        let requests: Vec<(String, u64)> = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((route, method, status), n)| {
                (
                    format!("{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"),
                    *n,
                )
            })
            .collect();
        metric(
            "relukko_http_requests_total",
            "counter",
            "Answered HTTP requests, by route template, method and status.",
            &requests,
        );
        metric(
            "relukko_cleanup_runs_total",
            "counter",
            "Clean-up passes run.",
            &[(String::new(), load(&self.cleanup_runs))],
        );
        metric(
            "relukko_cleanup_removed_total",
            "counter",
            "Expired locks removed by the clean-up pass.",
            &[(String::new(), load(&self.cleanup_removed))],
        );
        metric(
            "relukko_cleanup_failures_total",
            "counter",
            "Clean-up passes the database refused (retried at the next pass).",
            &[(String::new(), load(&self.cleanup_failures))],
        );
        out
    }
}

/// The route templates of the router, as `'static` labels; anything else is
/// `"other"` (never a client's string).
fn intern_route(route: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/",
        "/healthchecker",
        "/metrics",
        "/v1/locks",
        "/v1/locks/",
        "/v1/locks/{id}",
        "/v1/locks/{id}/keep_alive",
        "/v1/locks/{id}/add_to_expire_at",
        "/ws/broadcast",
        "/page/ticket",
        "/page/ws",
        "/page/locks",
        "/page/locks/",
        "/page/locks/{id}",
    ];
    ROUTES
        .iter()
        .copied()
        .find(|r| *r == route)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_bounded_labels() {
        let m = Metrics::default();
        m.request(Some("/v1/locks/{id}"), &Method::GET, 200);
        m.request(Some("/v1/locks/{id}"), &Method::GET, 200);
        m.request(Some("/not/a/route"), &Method::GET, 404);
        m.request(None, &Method::from_bytes(b"BREW").unwrap(), 405);
        m.cleanup(Ok(2));
        m.cleanup(Err(()));
        let page = m.connected(Socket::Page);
        let text = m.render(3, 1);
        drop(page);
        for line in [
            "relukko_locks_held 3",
            "relukko_locks_expired 1",
            "relukko_websocket_clients{path=\"/page/ws\"} 1",
            "relukko_websocket_clients{path=\"/ws/broadcast\"} 0",
            "relukko_http_requests_total{route=\"/v1/locks/{id}\",method=\"GET\",status=\"200\"} 2",
            "relukko_http_requests_total{route=\"other\",method=\"GET\",status=\"404\"} 1",
            "relukko_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"405\"} 1",
            "relukko_cleanup_runs_total 2",
            "relukko_cleanup_removed_total 2",
            "relukko_cleanup_failures_total 1",
            "# TYPE relukko_http_requests_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(
            m.render(0, 0)
                .contains("relukko_websocket_clients{path=\"/page/ws\"} 0")
        );
    }
}
