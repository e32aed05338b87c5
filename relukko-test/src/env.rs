//! Reading `RELUKKO_*` settings from the environment, with errors that name the
//! variable. Shared by the client and the locking configuration.

use std::time::Duration;

use crate::error::{Error, Result};

/// A variable's value; `None` when unset. Set but empty, or not UTF-8, is an
/// error naming the variable: a half-configured environment should fail loudly
/// rather than be taken for "unset".
pub(crate) fn var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Err(Error::Config {
            name: name.to_owned(),
            reason: "is set but empty: unset it or give it a value".to_owned(),
        }),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Config {
            name: name.to_owned(),
            reason: "is not valid UTF-8".to_owned(),
        }),
    }
}

/// The first of several alias variables that is set, with the name it was found under.
pub(crate) fn first_var(names: &[&'static str]) -> Result<Option<(&'static str, String)>> {
    for &name in names {
        if let Some(v) = var(name)? {
            return Ok(Some((name, v)));
        }
    }
    Ok(None)
}

/// A switch in upstream's style: set to any non-empty value means on.
pub(crate) fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// A duration in a readable form (`"500ms"`, `"10s"`, `"2m 30s"`), or a bare
/// number of seconds.
pub(crate) fn duration(name: &str) -> Result<Option<Duration>> {
    let Some(v) = var(name)? else { return Ok(None) };
    parse_duration(&v).map(Some).map_err(|reason| Error::Config {
        name: name.to_owned(),
        reason,
    })
}

/// Parses `"500ms"`, `"10s"`, `"2m 30s"`, or a bare number of seconds.
pub(crate) fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|e| {
        format!("{v:?} is not a duration ({e}); write it like \"500ms\", \"30s\", \"10m\" or \"1h 30m\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_readable_forms() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m 30s").unwrap(), Duration::from_secs(150));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
        assert!(parse_duration("-3s").is_err());
    }
}
