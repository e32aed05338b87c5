//! The locking settings read from the environment on first use, in one
//! pass: with a server URL set, the client's settings are read in the same
//! pass ([`BackendKind::Relukko`]), so the locker, the command line and the
//! client all take what they need from one [`Settings`] value.
//!
//! The parsing is a pure function over a lookup closure, so it is tested
//! without touching the process environment (which is shared by every test
//! thread of a process).

#[cfg(feature = "relukko")]
pub(crate) mod client;
pub(crate) mod creator;
pub(crate) mod misspelt;

#[cfg(feature = "relukko")]
pub use client::ClientSettings;
pub(crate) use relukko_protocol::vars;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};
use vars::{CREATOR, LEASE, LOCAL_DIR, PREFIX, SKIP, URL_VARS, Vars, WAIT_TIMEOUT};

/// The longest wait when nothing else is configured.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The lease when nothing else is configured.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The shortest lease. Heartbeats go out every third of it, so a lease of
/// 2 s leaves about 1.8 s (the lease minus its safety margin) for one slow
/// keep-alive before the lease reads as lost: our torture run and e2e suites
/// hold 2 s leases on a loaded machine. The attribute checks the same bound
/// at compile time (`relukko-test-macros/src/config.rs`) in the same words;
/// the e2e suite `locked_ui` fails when the two disagree.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(2);
/// Which backend the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// `RELUKKO_TRUST_ME_IT_IS_LOCKED`: no locking at all.
    Skip,
    /// A Relukko server, and the client's settings (URL, key, TLS, ...),
    /// read in the same pass.
    #[cfg(feature = "relukko")]
    Relukko {
        /// The client's settings; its `url` is always set.
        client: ClientSettings,
    },
    /// Lock files in one folder of this machine.
    Local {
        /// The folder.
        dir: PathBuf,
    },
}

/// Everything the process-wide locker is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The backend chosen, with what it needs.
    pub kind: BackendKind,
    /// What a lock request takes when it does not say.
    pub defaults: Defaults,
    /// The holds of an ancestor (`relukko run`), as its variables say.
    pub outer: OuterVars,
}

/// What `relukko run` (or anything setting them the same way) tells its
/// command of the locks it holds: `RELUKKO_HELD` and `RELUKKO_HELD_PROOF`,
/// kept as read. A bad value never fails a lock (it is only a claim to
/// check): the locker ignores it with one line on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OuterVars {
    /// `RELUKKO_HELD`: the names held, comma-separated.
    pub names: Option<String>,
    /// `RELUKKO_HELD_PROOF`: what identifies each held lock, a JSON array.
    pub proof: Option<String>,
}

/// What a lock request takes when it does not say: a locker's defaults, from
/// the environment or its builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The longest wait (`RELUKKO_TIMEOUT`).
    pub timeout: Duration,
    /// The server's keep-alive span (`RELUKKO_LEASE`).
    pub lease: Duration,
    /// Put before every name (`RELUKKO_LOCK_PREFIX`).
    pub prefix: String,
    /// The creator text (`RELUKKO_CREATOR`), if set; else each lock's
    /// creator is derived (see `settings::creator`).
    pub creator: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: DEFAULT_TIMEOUT,
            lease: DEFAULT_LEASE,
            prefix: String::new(),
            creator: None,
        }
    }
}

/// The default folder of the local backend: one per machine, shared by every
/// user and every process, so fixed whatever `TMPDIR` says (macOS gives each
/// user a `TMPDIR` of their own, `sudo` drops it, sandboxes and CI jobs set
/// it per job): `/tmp/relukko-locks` on Unix, `%ProgramData%\relukko-locks`
/// on Windows.
pub(crate) fn default_local_dir() -> PathBuf {
    default_local_dir_with(|name| std::env::var_os(name))
}

/// [`default_local_dir`], reading variables through `lookup`.
fn default_local_dir_with(lookup: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    if cfg!(windows) {
        let base = lookup("ProgramData")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
        base.join("relukko-locks")
    } else if cfg!(unix) {
        let _ = lookup;
        PathBuf::from("/tmp/relukko-locks")
    } else {
        std::env::temp_dir().join("relukko-locks")
    }
}

/// The settings of the process environment, read once per process: every
/// later call answers the same value, so the locker, the client and the
/// command line see one reading. A bad setting is not kept: each call reads
/// the environment again and reports it.
pub fn from_env() -> Result<Settings> {
    static READ: OnceLock<Settings> = OnceLock::new();
    if let Some(settings) = READ.get() {
        return Ok(settings.clone());
    }
    crate::settings::misspelt::warn_once();
    let settings = parse(|name| std::env::var_os(name))?;
    if matches!(settings.kind, BackendKind::Local { .. }) {
        refuse_misspelt_url(crate::settings::misspelt::in_env())?;
    }
    // Two first readers in a race read the same environment: keep one.
    Ok(READ.get_or_init(|| settings).clone())
}

/// On the local backend, an error when the environment has a near miss of
/// the server URL's variable (`RELUKO_URL`): whoever set it meant the tests
/// to lock on the server, and lock files would let another machine's test
/// hold the resource at the same time, every test green. False red over
/// false green; other misspellings only warn.
pub(crate) fn refuse_misspelt_url(found: &[(String, &'static str)]) -> Result<()> {
    match found.iter().find(|(_, meant)| URL_VARS.contains(meant)) {
        None => Ok(()),
        Some((bad, meant)) => Err(Error::config(
            bad,
            format!(
                "is set, but relukko reads {meant}: without it every test would lock \
                 files on this machine only, not on the server; rename it to {meant}, \
                 or unset it to lock on this machine only"
            ),
        )),
    }
}

/// Reads the settings through `lookup` (the environment in production).
pub(crate) fn parse(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Settings> {
    let vars = Vars::new(lookup);
    let kind = if skip(&vars)? {
        BackendKind::Skip
    } else if let Some((url_var, _)) = vars.first(&URL_VARS)? {
        relukko_kind(url_var, &vars)?
    } else {
        // Raw: a folder name need not be UTF-8.
        let dir = match vars.raw(LOCAL_DIR) {
            Some(v) if v.is_empty() => {
                return Err(Error::config(
                    LOCAL_DIR,
                    "is set but empty: unset it or give it a folder",
                ));
            }
            Some(v) => PathBuf::from(v),
            None => default_local_dir(),
        };
        BackendKind::Local { dir }
    };

    let timeout = vars.duration(WAIT_TIMEOUT)?.unwrap_or(DEFAULT_TIMEOUT);
    let lease = vars.duration(LEASE)?.unwrap_or(DEFAULT_LEASE);
    check_lease(LEASE, lease)?;
    let prefix = vars.text(PREFIX)?.unwrap_or_default();
    let creator = vars.text(CREATOR)?;
    // Lossy: these are claims to check, and a claim that does not read is
    // ignored by the locker, never an error.
    let lossy = |name| vars.raw(name).map(|v| v.to_string_lossy().into_owned());
    Ok(Settings {
        kind,
        defaults: Defaults {
            timeout,
            lease,
            prefix,
            creator,
        },
        outer: OuterVars {
            names: lossy(vars::HELD),
            proof: lossy(vars::HELD_PROOF),
        },
    })
}

/// Whether the skip switch is on. Upstream reads any non-empty value as
/// "skip"; so do we, except for values that read as "off" (`0`, `false`,
/// `no`, `off`): someone who wrote those meant to lock, and silently skipping
/// would turn every test green without its lock.
fn skip<F: Fn(&str) -> Option<OsString>>(vars: &Vars<F>) -> Result<bool> {
    if !vars.flag(SKIP) {
        return Ok(false);
    }
    let value = vars.raw(SKIP).unwrap_or_default();
    let value = value.to_string_lossy();
    let off = ["0", "false", "no", "off"];
    if off.iter().any(|o| value.trim().eq_ignore_ascii_case(o)) {
        return Err(Error::config(
            SKIP,
            format!(
                "is {value:?}, which would skip locking (any non-empty value does): \
                 unset it to lock, or set it to 1 to skip"
            ),
        ));
    }
    Ok(true)
}

/// The backend for a server URL given in `url_var`, with the client's
/// settings read from the same `vars`.
#[cfg(feature = "relukko")]
fn relukko_kind<F: Fn(&str) -> Option<OsString>>(
    _url_var: &'static str,
    vars: &Vars<F>,
) -> Result<BackendKind> {
    Ok(BackendKind::Relukko {
        client: ClientSettings::from_vars(vars)?,
    })
}

/// Without the Relukko backend a server URL is an error: falling back to
/// lock files would lock only this machine and turn tests green that other
/// machines' tests hold the resource for.
#[cfg(not(feature = "relukko"))]
fn relukko_kind<F: Fn(&str) -> Option<OsString>>(
    url_var: &'static str,
    _vars: &Vars<F>,
) -> Result<BackendKind> {
    Err(Error::config(url_var, NO_RELUKKO_FEATURE))
}

/// Why a server URL cannot be used without the `relukko` feature.
#[cfg(not(feature = "relukko"))]
pub(crate) const NO_RELUKKO_FEATURE: &str = "is set, but relukko-test was built without its \
     `relukko` feature (the Relukko server backend): turn it on (it is a default feature: drop \
     `default-features = false`, or add `features = [\"relukko\"]`), or unset it to lock files \
     on this machine only";

/// A lease must be at least [`MIN_LEASE`].
pub(crate) fn check_lease(name: &str, lease: Duration) -> Result<()> {
    if lease < MIN_LEASE {
        return Err(Error::config(
            name,
            format!(
                "a lease of {lease:?} is too short: heartbeats go out every third of the lease, \
                 so it must be at least {}s",
                MIN_LEASE.as_secs()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_server_url_is_refused_and_other_misspellings_are_not() {
        let names =
            |n: &[&str]| crate::settings::misspelt::misspellings(n.iter().map(|s| s.to_string()));
        let err = refuse_misspelt_url(&names(&["PATH", "RELUKO_URL"])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("RELUKO_URL"), "{text}");
        assert!(text.contains("rename it to RELUKKO_URL"), "{text}");
        let err = refuse_misspelt_url(&names(&["RELUKKO_BASE_ULR"])).unwrap_err();
        assert!(err.to_string().contains("RELUKKO_BASE_URL"), "{err}");
        refuse_misspelt_url(&names(&["RELUKKO_LAESE", "RELUKKO_URL", "HOME"])).unwrap();
    }

    fn parse_with(vars: &[(&str, &str)]) -> Result<Settings> {
        parse(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn defaults_are_local_in_the_machine_wide_folder() {
        let s = parse_with(&[]).unwrap();
        assert_eq!(
            s.kind,
            BackendKind::Local {
                dir: default_local_dir()
            }
        );
        assert_eq!(s.defaults.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.defaults.lease, DEFAULT_LEASE);
        assert_eq!(s.defaults.prefix, "");
        assert_eq!(s.defaults.creator, None);
    }

    #[test]
    fn the_default_folder_ignores_tmpdir() {
        let with_tmpdir = default_local_dir_with(|name| {
            matches!(name, "TMPDIR" | "TMP" | "TEMP").then(|| OsString::from("/elsewhere"))
        });
        assert_eq!(with_tmpdir, default_local_dir_with(|_| None));
        #[cfg(unix)]
        assert_eq!(with_tmpdir, PathBuf::from("/tmp/relukko-locks"));
        #[cfg(windows)]
        assert_eq!(
            default_local_dir_with(|n| (n == "ProgramData").then(|| OsString::from(r"D:\PD"))),
            PathBuf::from(r"D:\PD\relukko-locks")
        );
    }

    #[cfg(feature = "relukko")]
    #[test]
    fn skip_wins_over_url_and_empty_skip_is_off() {
        let s = parse_with(&[(SKIP, "1"), ("RELUKKO_URL", "http://x")]).unwrap();
        assert_eq!(s.kind, BackendKind::Skip);
        let s = parse_with(&[(SKIP, ""), ("RELUKKO_BASE_URL", "http://x")]).unwrap();
        assert!(
            matches!(&s.kind, BackendKind::Relukko { client }
                if client.url.as_ref().map(|(var, _)| *var) == Some("RELUKKO_BASE_URL")),
            "{:?}",
            s.kind
        );
    }

    /// Without the Relukko backend a server URL fails, naming the feature,
    /// and never falls back to lock files; the skip switch still wins.
    #[cfg(not(feature = "relukko"))]
    #[test]
    fn a_url_without_the_relukko_feature_is_an_error_naming_it() {
        for var in URL_VARS {
            let err = parse_with(&[(var, "http://127.0.0.1:3000")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(var) && err.contains("`relukko` feature"),
                "{var}: {err}"
            );
            // One sentence: no line break, no run of spaces (a lost `\` at a
            // line end of the literal leaves both).
            assert!(!err.contains('\n') && !err.contains("  "), "{var}: {err:?}");
        }
        let s = parse_with(&[(SKIP, "1"), ("RELUKKO_URL", "http://x")]).unwrap();
        assert_eq!(s.kind, BackendKind::Skip);
    }

    #[test]
    fn skip_values_that_read_as_off_are_refused() {
        for v in ["0", "false", "FALSE", " no ", "off", "Off"] {
            let err = parse_with(&[(SKIP, v)]).unwrap_err().to_string();
            assert!(
                err.contains(SKIP) && err.contains("unset it to lock, or set it to 1 to skip"),
                "{v:?}: {err}"
            );
        }
        for v in ["1", "true", "yes", "please"] {
            let s = parse_with(&[(SKIP, v)]).unwrap();
            assert_eq!(s.kind, BackendKind::Skip, "{v:?}");
        }
    }

    #[test]
    fn local_dir_prefix_and_durations() {
        let s = parse_with(&[
            (LOCAL_DIR, "/srv/locks"),
            (WAIT_TIMEOUT, "90s"),
            (LEASE, "5s"),
            (PREFIX, "team-a/"),
            (CREATOR, "ci bot"),
        ])
        .unwrap();
        assert_eq!(
            s.kind,
            BackendKind::Local {
                dir: PathBuf::from("/srv/locks")
            }
        );
        assert_eq!(s.defaults.timeout, Duration::from_secs(90));
        assert_eq!(s.defaults.lease, Duration::from_secs(5));
        assert_eq!(s.defaults.prefix, "team-a/");
        assert_eq!(s.defaults.creator.as_deref(), Some("ci bot"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            (WAIT_TIMEOUT, "soon"),
            (WAIT_TIMEOUT, " "),
            (LEASE, "100ms"),
            (LEASE, "1s"),
            (LEASE, "junk"),
            (PREFIX, ""),
            (LOCAL_DIR, ""),
            ("RELUKKO_URL", ""),
        ] {
            let err = parse_with(&[(name, value)]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name), "{name}={value:?}: {text}");
        }
    }
}
