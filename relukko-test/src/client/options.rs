//! [`ClientOptions`]: every setting of a client in one value, what a
//! [`ClientBuilder`](super::ClientBuilder) holds and the built client keeps.

use std::fmt::DebugStruct;
use std::time::Duration;

use super::key::ApiKey;
use super::retry::RetryPolicy;
use super::tls::Bundle;

/// Every setting of a client, in one value: what a `ClientBuilder` holds,
/// checked by `build`, and kept by the `Client` it builds.
#[derive(Clone)]
pub(super) struct ClientOptions {
    /// The base URL as given (may carry userinfo); without trailing slash
    /// once built.
    pub(super) url: String,
    /// What to name in an error about the URL or key.
    pub(super) origin: Origin,
    pub(super) api_key: Option<ApiKey>,
    pub(super) creator: Option<String>,
    pub(super) request_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) poll_max: Duration,
    pub(super) websocket: bool,
    /// Extra CA certificates (PEM); emptied once built into the TLS setup.
    pub(super) ca_pems: Vec<Vec<u8>>,
    pub(super) ca_bundles: Vec<Bundle>,
    /// The skip switch.
    pub(super) skip: bool,
}

/// The names errors about the URL and the key give: the builder's options,
/// or the environment variables they were read from.
#[derive(Clone, Copy)]
pub(super) struct Origin {
    pub(super) url: &'static str,
    pub(super) api_key: &'static str,
}

impl ClientOptions {
    /// The defaults, for the server at `url`.
    pub(super) fn new(url: String) -> ClientOptions {
        ClientOptions {
            url,
            origin: Origin {
                url: "url",
                api_key: "api_key",
            },
            api_key: None,
            creator: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            poll_max: Duration::from_secs(1),
            websocket: true,
            ca_pems: Vec::new(),
            ca_bundles: Vec::new(),
            skip: false,
        }
    }

    /// Adds the settings that the builder's and the client's `Debug` both
    /// show; the key only as `<redacted>`.
    pub(super) fn shown<'d, 'a, 'b>(
        &self,
        d: &'d mut DebugStruct<'a, 'b>,
    ) -> &'d mut DebugStruct<'a, 'b> {
        d.field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("creator", &self.creator)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("poll_max", &self.poll_max)
            .field("websocket", &self.websocket)
    }
}
