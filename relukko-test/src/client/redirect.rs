//! Redirects are followed only within the server's origin (scheme, host and
//! port). The API key travels in a default header, which reqwest sends on to
//! wherever a redirect leads (it strips only the headers it knows, such as
//! `Authorization`): a server, or whoever answers in its name, could send the
//! key to another host with one 307. So a redirect to another origin, https
//! to http included, is refused before anything is sent there.

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

use super::http::strip_userinfo;

/// As many redirects as reqwest's default policy follows.
const MAX_REDIRECTS: usize = 10;

/// A redirect the policy refused: from where, and to where (both without
/// userinfo).
#[derive(Debug)]
struct OffOrigin {
    from: String,
    to: String,
}

impl std::fmt::Display for OffOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "redirect from {} to another origin, {}",
            self.from, self.to
        )
    }
}

impl std::error::Error for OffOrigin {}

/// The client's redirect policy: same origin only, at most
/// [`MAX_REDIRECTS`] hops.
pub(super) fn policy() -> Policy {
    Policy::custom(|attempt: Attempt<'_>| {
        let Some(from) = attempt.previous().last() else {
            return attempt.follow();
        };
        if !same_origin(from, attempt.url()) {
            let refused = OffOrigin {
                from: strip_userinfo(from.as_str()),
                to: strip_userinfo(attempt.url().as_str()),
            };
            return attempt.error(refused);
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        attempt.follow()
    })
}

/// Whether `a` and `b` share scheme, host and port (a default port written
/// out or left implicit is the same port).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The refused redirect behind `e` (from, to), if that is why it failed.
pub(super) fn refused(e: &reqwest::Error) -> Option<(String, String)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(off) = err.downcast_ref::<OffOrigin>() {
            return Some((off.from.clone(), off.to.clone()));
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn only_scheme_host_and_port_together_are_one_origin() {
        let base = url("https://relukko.example.com/v1/locks/");
        assert!(same_origin(
            &base,
            &url("https://relukko.example.com:443/other")
        ));
        assert!(!same_origin(
            &base,
            &url("http://relukko.example.com/v1/locks/")
        ));
        assert!(!same_origin(
            &base,
            &url("https://relukko.example.com:8443/")
        ));
        assert!(!same_origin(
            &base,
            &url("https://evil.example.com/v1/locks/")
        ));
        assert!(!same_origin(
            &url("http://127.0.0.1:3000/"),
            &url("http://localhost:3000/")
        ));
    }
}
