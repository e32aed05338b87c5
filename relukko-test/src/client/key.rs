//! The API key, turned into the header the client sends (`X-API-Key`) once,
//! where it is given; requests and the WebSocket upgrade send that value.

use reqwest::header::HeaderValue;

/// The header's name.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// Why a key cannot be sent; errors name the variable or option it came from.
pub(crate) const NOT_A_HEADER: &str =
    "is not a valid header value (control characters or non-ASCII)";

/// An API key as its header value, marked sensitive (which keeps it out of
/// the HTTP stack's `Debug`), or `None` for a key that is no valid header
/// value (refused by [`ClientBuilder::build`](super::ClientBuilder::build)).
/// Its `Debug` never shows the key.
#[derive(Clone)]
pub(crate) struct ApiKey(Option<HeaderValue>);

impl ApiKey {
    pub(crate) fn new(key: &str) -> ApiKey {
        ApiKey(HeaderValue::from_str(key).ok().map(|mut value| {
            value.set_sensitive(true);
            value
        }))
    }

    /// The header value; `None` when the key is no valid header value.
    pub(crate) fn header(&self) -> Option<&HeaderValue> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_sensitive_and_never_shown() {
        let key = ApiKey::new("topsecret");
        assert!(key.header().unwrap().is_sensitive());
        assert!(!format!("{key:?}").contains("topsecret"));
        assert!(ApiKey::new("top\nsecret").header().is_none());
    }
}
