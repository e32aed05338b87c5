//! [`ClientSettings`]: the client's settings read from environment variables,
//! through a lookup function so the parsing is tested without touching the
//! process environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::Client;
use crate::client::builder::{ClientBuilder, check_url};
use crate::client::http::strip_userinfo;
use crate::client::key::{ApiKey, NOT_A_HEADER};
use crate::client::tls::{Bundle, check_bundle_path};
use crate::error::{Error, Result};
use crate::settings::vars::{
    API_KEY, CA_BUNDLE_VARS, CONNECT_TIMEOUT, CREATOR, REQUEST_TIMEOUT, SKIP, URL_VARS, Vars,
    WEBSOCKET,
};

/// The client's settings from the environment.
///
/// | variable | meaning |
/// | --- | --- |
/// | `RELUKKO_URL` (alias `RELUKKO_BASE_URL`) | the server, `http://` or `https://`; required unless the skip switch is on |
/// | `RELUKKO_API_KEY` | sent as `X-API-Key` |
/// | `RELUKKO_CREATOR` | the creator recorded on locks |
/// | `RELUKKO_REQUEST_TIMEOUT`, `RELUKKO_CONNECT_TIMEOUT` | `"5s"`, `"500ms"`, or seconds |
/// | `RELUKKO_WEBSOCKET` | `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`) |
/// | `RELUKKO_CA_BUNDLE`, else `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE` | extra CA certificates: a PEM file, or a folder of `*.pem`/`*.crt`/`*.cer` (an empty `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` counts as unset, as in Python's clients) |
/// | `RELUKKO_TRUST_ME_IT_IS_LOCKED` | any non-empty value: the skip switch (as upstream; empty means off) |
///
/// A variable that is set but empty, or whose value cannot be used, is an
/// [`Error::Config`](crate::error::Error::Config) naming it (the skip switch excepted: upstream defines
/// "empty" as "off", and any other value as "on").
///
/// ```
/// use std::collections::HashMap;
/// let env = HashMap::from([("RELUKKO_URL", "http://relukko:3000"), ("RELUKKO_WEBSOCKET", "maybe")]);
/// let err = relukko::ClientSettings::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap_err();
/// assert!(err.to_string().contains("RELUKKO_WEBSOCKET"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The variable the URL came from, and the URL.
    pub url: Option<(&'static str, String)>,
    /// The API key.
    pub api_key: Option<String>,
    /// The creator.
    pub creator: Option<String>,
    /// The per-attempt request timeout.
    pub request_timeout: Option<Duration>,
    /// The connect timeout.
    pub connect_timeout: Option<Duration>,
    /// Whether waiters use the WebSocket.
    pub websocket: Option<bool>,
    /// The variable the CA bundle came from, and its path.
    pub ca_bundle: Option<(&'static str, PathBuf)>,
    /// The skip switch.
    pub trust_me_it_is_locked: bool,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field(
                "url",
                &self.url.as_ref().map(|(n, u)| (n, strip_userinfo(u))),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("creator", &self.creator)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("websocket", &self.websocket)
            .field("ca_bundle", &self.ca_bundle)
            .field("trust_me_it_is_locked", &self.trust_me_it_is_locked)
            .finish()
    }
}

impl ClientSettings {
    /// Reads the process environment. A value that is not UTF-8 is an error
    /// naming its variable.
    pub fn from_env() -> Result<Self> {
        // With a server URL, the process's one reading of the environment
        // holds the client's settings already.
        if let Ok(crate::settings::Settings {
            kind: crate::settings::BackendKind::Relukko { client },
            ..
        }) = crate::settings::from_env()
        {
            return Ok(client);
        }
        // Else no server is selected (the skip switch, or no URL: then this
        // reading makes the error), or a locking setting the client does not
        // read is bad.
        crate::settings::misspelt::warn_once();
        Self::from_vars(&crate::settings::vars::process())
    }

    /// Reads the settings through `lookup` (variable name to value, `None`
    /// when unset): pure apart from checking that a CA bundle path exists.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_vars(&Vars::new(|name: &str| lookup(name).map(OsString::from)))
    }

    /// Reads the settings from `vars`; the locking settings read the
    /// client's through this, in the same pass over the environment.
    pub(crate) fn from_vars(vars: &Vars<impl Fn(&str) -> Option<OsString>>) -> Result<Self> {
        // Set but empty (or blank) is an error: it is a half-done configuration.
        let get = |name: &str| vars.text(name);
        let first = |names: &[&'static str]| vars.first(names);
        let duration = |name: &str| -> Result<Option<Duration>> {
            match vars.duration(name)? {
                Some(d) if d.is_zero() => Err(Error::config(name, "must be more than zero")),
                d => Ok(d),
            }
        };

        let trust_me_it_is_locked = vars.flag(SKIP);
        let url = first(&URL_VARS)?;
        if let Some((name, u)) = &url {
            // Checked now, so the error names the variable rather than a builder option.
            check_url(u.trim_end_matches('/'), name, false)?;
        } else if !trust_me_it_is_locked {
            return Err(Error::config(
                URL_VARS[0],
                "is not set: give the Relukko server's URL, e.g. https://relukko.example.com",
            ));
        }
        let api_key = get(API_KEY)?;
        if let Some(k) = &api_key
            && ApiKey::new(k).header().is_none()
        {
            return Err(Error::config(API_KEY, NOT_A_HEADER));
        }
        let websocket = match get(WEBSOCKET)? {
            None => None,
            Some(v) => Some(match v.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" => false,
                _ => {
                    return Err(Error::config(WEBSOCKET, format!("{v:?} is not on or off")));
                }
            }),
        };
        // Python's requests (and so many CI images) set REQUESTS_CA_BUNDLE or
        // CURL_CA_BUNDLE to "" to mean "none": empty counts as unset there.
        // Our own RELUKKO_CA_BUNDLE set but empty stays an error.
        let ca_vars: Vec<&'static str> = CA_BUNDLE_VARS
            .into_iter()
            .filter(|&name| {
                name == CA_BUNDLE_VARS[0]
                    || !vars
                        .raw(name)
                        .is_some_and(|v| v.to_string_lossy().trim().is_empty())
            })
            .collect();
        let ca_bundle = match first(&ca_vars)? {
            None => None,
            Some((name, path)) => {
                let path = PathBuf::from(path);
                check_bundle_path(&path).map_err(|reason| Error::config(name, reason))?;
                Some((name, path))
            }
        };
        Ok(ClientSettings {
            url,
            api_key,
            creator: get(CREATOR)?,
            request_timeout: duration(REQUEST_TIMEOUT)?,
            connect_timeout: duration(CONNECT_TIMEOUT)?,
            websocket,
            ca_bundle,
            trust_me_it_is_locked,
        })
    }

    /// A builder with these settings; errors of `build` name the variables.
    pub fn into_builder(self) -> ClientBuilder {
        let (origin, url) = self.url.unwrap_or((URL_VARS[0], String::new()));
        let mut b = ClientBuilder::new(url).origin(origin);
        if let Some(k) = self.api_key {
            b = b.api_key_from_env(API_KEY, &k);
        }
        if let Some(c) = self.creator {
            b = b.creator(c);
        }
        if let Some(d) = self.request_timeout {
            b = b.request_timeout(d);
        }
        if let Some(d) = self.connect_timeout {
            b = b.connect_timeout(d);
        }
        if let Some(w) = self.websocket {
            b = b.websocket(w);
        }
        if let Some((name, path)) = self.ca_bundle {
            b = b.ca_bundle_from_env(Bundle {
                origin: Some(name),
                path,
            });
        }
        b.trust_me_it_is_locked(self.trust_me_it_is_locked)
    }
}

impl Client {
    /// A client configured from the environment; see [`ClientSettings::from_env`]
    /// for the variables. A bad value is an [`Error::Config`](crate::error::Error::Config)
    /// naming the variable.
    pub fn from_env() -> crate::error::Result<Client> {
        ClientSettings::from_env()?.into_builder().build()
    }
}

impl ClientBuilder {
    /// A builder configured from the environment (see [`ClientSettings`]), to
    /// adjust before `build`.
    pub fn from_env() -> Result<ClientBuilder> {
        Ok(ClientSettings::from_env()?.into_builder())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<ClientSettings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientSettings::from_lookup(|n| map.get(n).cloned())
    }

    fn fails_naming(vars: &[(&str, &str)], name: &str) {
        match settings(vars) {
            Err(Error::Config { name: n, .. }) => assert_eq!(n, name, "{vars:?}"),
            other => panic!("{vars:?}: expected a Config error naming {name}, got {other:?}"),
        }
    }

    const URL: (&str, &str) = ("RELUKKO_URL", "http://127.0.0.1:9");

    #[test]
    fn a_full_environment_is_read() {
        let s = settings(&[
            ("RELUKKO_BASE_URL", "http://127.0.0.1:9/"),
            ("RELUKKO_API_KEY", "k"),
            ("RELUKKO_CREATOR", "ci"),
            ("RELUKKO_REQUEST_TIMEOUT", "1500ms"),
            ("RELUKKO_CONNECT_TIMEOUT", "2"),
            ("RELUKKO_WEBSOCKET", "OFF"),
            ("RELUKKO_TRUST_ME_IT_IS_LOCKED", ""),
        ])
        .unwrap();
        assert_eq!(
            s.url,
            Some(("RELUKKO_BASE_URL", "http://127.0.0.1:9/".to_owned()))
        );
        assert_eq!(s.request_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.websocket, Some(false));
        assert!(!s.trust_me_it_is_locked);
        assert!(!format!("{s:?}").contains("\"k\""));
        let c = s.into_builder().build().unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
        assert_eq!(c.creator(), Some("ci"));
    }

    #[test]
    fn url_is_required_unless_skipping() {
        fails_naming(&[], "RELUKKO_URL");
        let s = settings(&[("RELUKKO_TRUST_ME_IT_IS_LOCKED", "yes")]).unwrap();
        assert!(s.into_builder().build().unwrap().is_skip());
    }

    #[test]
    fn every_variable_refuses_junk_and_empty() {
        for name in ["RELUKKO_URL", "RELUKKO_BASE_URL"] {
            fails_naming(&[(name, "")], name);
            fails_naming(&[(name, "not a url")], name);
        }
        for (name, junk) in [
            ("RELUKKO_API_KEY", "bad\nkey"),
            ("RELUKKO_REQUEST_TIMEOUT", "soon"),
            ("RELUKKO_CONNECT_TIMEOUT", "0"),
            ("RELUKKO_WEBSOCKET", "maybe"),
            ("RELUKKO_CA_BUNDLE", "/no/such/bundle.pem"),
        ] {
            fails_naming(&[URL, (name, junk)], name);
            fails_naming(&[URL, (name, "")], name);
            fails_naming(&[URL, (name, "  ")], name);
        }
        fails_naming(&[URL, ("RELUKKO_CREATOR", "")], "RELUKKO_CREATOR");
    }

    /// Python's clients take an empty REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    /// for unset (common in Python CI images); ours stays strict.
    #[test]
    fn empty_foreign_ca_bundles_count_as_unset() {
        for name in ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
            for empty in ["", "  "] {
                let s = settings(&[URL, (name, empty)]).unwrap();
                assert_eq!(s.ca_bundle, None, "{name}={empty:?}");
            }
            fails_naming(&[URL, (name, "/no/such/bundle.pem")], name);
        }
        // An empty one does not hide the next one that is set.
        fails_naming(
            &[
                URL,
                ("REQUESTS_CA_BUNDLE", ""),
                ("CURL_CA_BUNDLE", "/no/such/folder/"),
            ],
            "CURL_CA_BUNDLE",
        );
        fails_naming(&[URL, ("RELUKKO_CA_BUNDLE", "")], "RELUKKO_CA_BUNDLE");
        fails_naming(
            &[URL, ("RELUKKO_CA_BUNDLE", ""), ("REQUESTS_CA_BUNDLE", "")],
            "RELUKKO_CA_BUNDLE",
        );
    }

    #[test]
    fn errors_never_show_the_key() {
        let e = settings(&[URL, ("RELUKKO_API_KEY", "sec\u{7}ret")]).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("sec"));
    }
}
