//! Sending one request, retrying the transient failures, and mapping answers
//! to [`Error`] variants. The API key travels only in a default header marked
//! sensitive; URLs in errors and log lines never carry userinfo.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::shared::Shared;
use crate::error::{Error, Result, excerpt};

/// The shortest time an attempt is given, even right at the deadline: a call
/// with no time left still tries once instead of failing unsent.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// An answer with its status, whatever the status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The request URL, without secrets.
    pub(crate) url: String,
}

/// The full cause chain of a transport error as one line ("error sending
/// request: ... : Connection refused"), because reqwest's own `Display` shows
/// only the outermost layer, which does not say what went wrong.
#[derive(Debug)]
pub(crate) struct Cause(pub(crate) String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

/// A transport failure that no retry can change, said so after its cause:
/// nothing listens on a port of this very machine, or the host name does
/// not resolve. Failed at once, where a retry budget would spend seconds.
#[derive(Debug)]
pub(crate) struct Lasting(pub(crate) String);

impl std::fmt::Display for Lasting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Lasting {}

/// Worth another try: the answer may come next time.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::Transport { source, .. } => !source.is::<Lasting>(),
        Error::Timeout { .. } | Error::Server { .. } => true,
        _ => false,
    }
}

/// Why a failed connection to `url` cannot change with a retry, if it
/// cannot: refused on a loopback address (nothing listens on that port of
/// this machine; a server starting up is the one case it would, and a
/// server under test is started before its tests lock), or a host name that
/// does not exist. Refused elsewhere (a server restarting behind a load
/// balancer), resets, timeouts and a DNS server that did not answer are
/// worth retrying.
fn lasting(url: &str, e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mut cur = Some(e);
    while let Some(s) = cur {
        if loopback
            && s.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return Some("nothing listens on that port of this machine");
        }
        let text = s.to_string();
        if NO_SUCH_HOST.iter().any(|m| text.contains(m)) {
            return Some("the host name does not resolve");
        }
        cur = s.source();
    }
    None
}

/// How getaddrinfo says a name does not exist (glibc, musl, macOS), as
/// opposed to "Temporary failure in name resolution", worth a retry.
const NO_SUCH_HOST: [&str; 3] = [
    "Name or service not known",
    "No address associated with hostname",
    "nodename nor servname provided",
];

/// A URL without userinfo (`http://user:pw@host` becomes `http://host`).
pub(crate) fn strip_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
            _ => url.to_owned(),
        },
    }
}

/// Maps a non-success status to its error; success answers pass through.
pub(crate) fn check(a: Answer) -> Result<Answer> {
    let Answer { status, body, url } = a;
    match status {
        200..=299 => Ok(Answer { status, body, url }),
        401 | 403 => Err(Error::NotAuthorised {
            url,
            status,
            body: excerpt(&body),
        }),
        404 if is_collection(&url) => Err(Error::WrongBaseUrl {
            url,
            body: excerpt(&body),
        }),
        404 => Err(Error::NotFound {
            url,
            body: excerpt(&body),
        }),
        500..=599 => Err(Error::Server {
            url,
            status,
            body: excerpt(&body),
        }),
        _ => Err(Error::Rejected {
            url,
            status,
            message: server_message(&body),
        }),
    }
}

/// Whether `url` is the API's list of locks (`.../v1/locks/`), which every
/// Relukko server has: a 404 there is a wrong base URL, not a missing lock.
fn is_collection(url: &str) -> bool {
    url.trim_end_matches('/').ends_with("/v1/locks")
}

/// Whether a failed `https://` request met a server speaking plain HTTP
/// (rustls reads its answer as a corrupt TLS record).
fn is_plain_http_answer(url: &str, cause: &str) -> bool {
    url.starts_with("https://")
        && (cause.contains("InvalidContentType") || cause.contains("corrupt message"))
}

/// The `message` of the protocol's error body, else an excerpt of the body.
pub(crate) fn server_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(excerpt))
        .unwrap_or_else(|| excerpt(body))
}

/// Decodes a success answer's JSON body.
pub(crate) fn decode<T: DeserializeOwned>(a: &Answer) -> Result<T> {
    serde_json::from_str(&a.body).map_err(|source| Error::Decode {
        url: a.url.clone(),
        status: a.status,
        body: excerpt(&a.body),
        source,
    })
}

impl Shared {
    /// The URL to send to, and the one to show.
    fn endpoint(&self, path: &str) -> (String, String) {
        (
            format!("{}{path}", self.options.url),
            format!("{}{path}", self.shown_url),
        )
    }

    /// One attempt, any status back. Transport failures and timeouts are errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<Answer> {
        let (url, shown) = self.endpoint(path);
        let what = format!("{method} {path}");
        let mut req = self.http.request(method.clone(), &url).timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let fail = |e: reqwest::Error| {
            let timed_out = e.is_timeout();
            let off_origin = super::redirect::refused(&e);
            let lasting = lasting(&url, &e);
            let cause = crate::error::chain(&e.without_url());
            tracing::debug!(target: "relukko::client", %what, url = %shown, error = %cause, "request failed");
            if let Some((from, to)) = off_origin {
                Error::Redirected { from, to }
            } else if is_plain_http_answer(&shown, &cause) {
                Error::NotTls { url: shown.clone() }
            } else if timed_out {
                Error::Timeout {
                    what: what.clone(),
                    url: shown.clone(),
                    after: started.elapsed(),
                }
            } else if let Some(why) = lasting {
                Error::Transport {
                    url: shown.clone(),
                    source: Box::new(Lasting(format!("{cause} (not retried: {why})"))),
                }
            } else {
                Error::Transport {
                    url: shown.clone(),
                    source: Box::new(Cause(cause)),
                }
            }
        };
        let resp = req.send().await.map_err(fail)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(fail)?;
        tracing::debug!(target: "relukko::client", %what, url = %shown, status, "answer");
        Ok(Answer {
            status,
            body,
            url: shown,
        })
    }

    /// Sends with retries of transport errors, timeouts and 5xx, as the
    /// policy and the deadline allow; any other answer is returned as is.
    /// `ambiguous` is set when an attempt failed in a way that may have
    /// reached the server (the create path then checks who holds the name).
    pub(crate) async fn send_retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        deadline: Option<Instant>,
        ambiguous: &mut bool,
    ) -> Result<Answer> {
        let mut attempt = 0u32;
        loop {
            let left = deadline.map_or(self.options.request_timeout, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let timeout = self.options.request_timeout.min(left).max(MIN_ATTEMPT);
            let result = match self.send(method.clone(), path, body, timeout).await {
                Ok(a) if a.status >= 500 => check(a),
                other => other,
            };
            let err = match result {
                Ok(a) => return Ok(a),
                Err(e) if is_transient(&e) => e,
                Err(e) => return Err(e),
            };
            *ambiguous = true;
            attempt += 1;
            if attempt >= self.options.retry.tries() {
                return Err(err);
            }
            let delay = self.options.retry.delay(attempt - 1);
            if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                return Err(err);
            }
            tracing::debug!(target: "relukko::client", error = %err, ?delay, attempt, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// A whole call: retries, status mapping, JSON decoding.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let mut ambiguous = false;
        let a = self
            .send_retrying(method, path, body.as_ref(), None, &mut ambiguous)
            .await?;
        decode(&check(a)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.to_owned(),
            url: "http://h/v1/locks/".to_owned(),
        }
    }

    #[test]
    fn statuses_map_to_their_error_classes() {
        assert!(check(answer(201, "{}")).is_ok());
        assert!(matches!(
            check(answer(401, "")),
            Err(Error::NotAuthorised { status: 401, .. })
        ));
        assert!(matches!(
            check(answer(403, "")),
            Err(Error::NotAuthorised { status: 403, .. })
        ));
        assert!(matches!(
            check(Answer {
                url: "http://h/v1/locks/0b9c".into(),
                ..answer(404, "")
            }),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            check(answer(503, "x")),
            Err(Error::Server { status: 503, .. })
        ));
        match check(answer(
            422,
            r#"{"status":422,"message":"missing lock_name"}"#,
        )) {
            Err(Error::Rejected {
                status, message, ..
            }) => {
                assert_eq!(status, 422);
                assert_eq!(message, "missing lock_name");
            }
            other => panic!("{other:?}"),
        }
        match check(answer(400, "plain text")) {
            Err(Error::Rejected { message, .. }) => assert_eq!(message, "plain text"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_404_on_the_collection_is_a_wrong_base_url() {
        assert!(matches!(
            check(answer(404, "")),
            Err(Error::WrongBaseUrl { .. })
        ));
        let mut a = answer(404, "");
        a.url = "http://h/v1/locks/0b9c".into();
        assert!(matches!(check(a), Err(Error::NotFound { .. })));
        assert!(is_plain_http_answer(
            "https://h",
            "received corrupt message of type InvalidContentType"
        ));
        assert!(!is_plain_http_answer(
            "http://h",
            "received corrupt message of type InvalidContentType"
        ));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        assert!(is_transient(&check(answer(500, "")).unwrap_err()));
        assert!(!is_transient(&check(answer(401, "")).unwrap_err()));
        assert!(!is_transient(&check(answer(404, "")).unwrap_err()));
        assert!(!is_transient(&Error::NotTls {
            url: "https://h".into()
        }));
        assert!(!is_transient(&check(answer(422, "")).unwrap_err()));
    }

    #[test]
    fn decode_errors_keep_status_and_excerpt() {
        match decode::<relukko_protocol::Lock>(&answer(200, "<html>junk</html>")) {
            Err(e @ Error::Decode { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("junk") && text.contains("200") && text.contains("http://h/"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// rustls names a plain-HTTP answer to a TLS hello in one of two ways
    /// across versions (today's message carries both); either one is enough.
    #[test]
    fn a_plain_http_answer_is_told_by_either_rustls_wording() {
        let https = "https://host:8443/v1/locks/";
        assert!(is_plain_http_answer(
            https,
            "received corrupt message of type InvalidContentType"
        ));
        assert!(is_plain_http_answer(https, "InvalidContentType"));
        assert!(is_plain_http_answer(https, "received corrupt message"));
        assert!(!is_plain_http_answer(https, "connection refused"));
        assert!(!is_plain_http_answer(
            "http://host/v1/locks/",
            "InvalidContentType"
        ));
    }

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(
            strip_userinfo("http://bob:secret@host:8080/x/"),
            "http://host:8080/x"
        );
        assert_eq!(strip_userinfo("http://host"), "http://host");
        assert_eq!(strip_userinfo("junk://a:b@c"), "junk://c");
        // A URL that does not parse (a typo in RELUKKO_URL) still loses its
        // userinfo, which is everything between the scheme and the last '@'.
        assert_eq!(strip_userinfo("http://bob:p@ss@[::1/x"), "http://[::1/x");
        // An '@' before the scheme's "://" is no userinfo: left as it is.
        assert_eq!(strip_userinfo("bob@[::1://x"), "bob@[::1://x");
        assert_eq!(strip_userinfo("bob:pw@host"), "bob:pw@host");
    }

    #[test]
    fn chain_joins_sources_once() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = Error::Transport {
            url: "http://h".into(),
            source: Box::new(inner),
        };
        let text = crate::error::chain(&outer);
        assert!(
            text.starts_with("cannot reach http://h: Connection refused; check that"),
            "{text}"
        );
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
    }

    /// An error whose cause chain ends in `inner`, as reqwest's does.
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn refused_on_loopback_and_unknown_hosts_are_lasting_the_rest_is_retried() {
        use std::io::{Error as Io, ErrorKind};
        let refused = || Outer(Io::from(ErrorKind::ConnectionRefused));
        for url in [
            "http://127.0.0.1:3999/v1/locks/",
            "http://127.1.2.3:80/x",
            "http://localhost:3000/",
            "http://[::1]:3000/",
        ] {
            assert!(lasting(url, &refused()).is_some(), "{url}");
        }
        assert!(lasting("http://10.0.0.1:3000/", &refused()).is_none());
        assert!(lasting("http://relukko.example.com/", &refused()).is_none());
        let reset = Outer(Io::from(ErrorKind::ConnectionReset));
        assert!(lasting("http://127.0.0.1:1/", &reset).is_none());
        let dns = |m: &str| {
            Outer(Io::other(format!(
                "failed to lookup address information: {m}"
            )))
        };
        assert!(lasting("http://nosuch.invalid/", &dns("Name or service not known")).is_some());
        assert!(
            lasting(
                "http://relukko.example.com/",
                &dns("Temporary failure in name resolution")
            )
            .is_none()
        );
        let e = Error::Transport {
            url: "http://127.0.0.1:1/".into(),
            source: Box::new(Lasting("refused (not retried: ...)".into())),
        };
        assert!(!is_transient(&e));
        let e = Error::Transport {
            url: "http://10.0.0.1:1/".into(),
            source: Box::new(Cause("refused".into())),
        };
        assert!(is_transient(&e));
    }
}
