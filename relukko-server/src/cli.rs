//! The `relukko-server` command line. It lives in the library so it can read
//! its settings with `relukko_protocol::vars`; the binary only calls [`main`].
//!
//! Flags are parsed by `clap`; each flag's variable is read through
//! `relukko_protocol::vars` only when the flag is absent, so a set-but-empty or malformed
//! variable fails with the same message as everywhere else in the crate (and
//! the help never prints a variable's value, such as the API key).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::level_filters::LevelFilter;

use super::config::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_CLEANUP_INTERVAL, DEFAULT_GRACE, DEFAULT_HEAD_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_WEBSOCKETS, ServerConfig,
};
use relukko_protocol::vars::{self, VarError, Vars};

/// Shorter keys start with a warning.
const MIN_KEY_LENGTH: usize = 16;

const ABOUT: &str = "A Relukko-compatible lock server.";

const LONG_ABOUT: &str = "\
A Relukko-compatible lock server: the API of upstream's Relukko (`/v1/locks`,
`X-API-Key`, expiry with a grace period, `/ws/broadcast`). Locks live in memory,
or with --db in a database file that survives a restart.

Each option overrides its environment variable, which overrides the default.";

const AFTER_HELP: &str = "\
ENVIRONMENT:
    RELUKKO_API_KEY    required: the key clients send in X-API-Key
    RELUKKO_USER,      a login for the page at / (HTTP basic auth, both or
    RELUKKO_PASSWORD   neither); without it the page asks for the API key
    RELUKKO_LOG        log level: error, warn, info (default), debug, trace or off

ENDPOINTS:
    /v1/locks/...      the Relukko API (X-API-Key)
    /ws/broadcast      every change, as JSON text frames (X-API-Key)
    /healthchecker     200 while up (no key)
    /metrics           Prometheus text: locks held, WebSocket clients,
                       requests by route and status, clean-ups (X-API-Key)
    /                  a live page of who holds what, with force-release
                       (RELUKKO_USER/RELUKKO_PASSWORD, or it asks for the key)

Durations are written like \"500ms\", \"30s\", \"3m\" or \"1h 30m\", or as bare seconds.
The server prints \"relukko-server listening on http://ADDR:PORT\" once it listens,
and stops cleanly on Ctrl-C or SIGTERM. Exit codes: 0 after a clean shutdown,
1 if it cannot listen or fails, 2 for a bad or missing setting.

USAGE EXAMPLE:
    RELUKKO_API_KEY=k relukko-server --port 3000";

/// The flags; each is `None` when absent so its variable can take over.
#[derive(Debug, Parser)]
#[command(
    name = "relukko-server",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
struct Flags {
    /// Address to listen on [env: RELUKKO_BIND_ADDR] [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,

    /// Port; 0 picks a free one [env: RELUKKO_BIND_PORT] [default: 3000]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// How long an expired lock lingers before the clean-up pass removes it
    /// [env: RELUKKO_CLEANUP_GRACE] [default: 3m]
    #[arg(long, value_name = "DURATION", value_parser = vars::parse_duration)]
    grace: Option<Duration>,

    /// How often the clean-up pass runs [env: RELUKKO_CLEANUP_INTERVAL] [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = vars::parse_duration)]
    cleanup_interval: Option<Duration>,

    /// Keep the locks in this database file (created if missing), so a restart
    /// does not forget them: every change is on disk before it is answered, and
    /// the locks in it are loaded on start, their clean-up going on as before.
    /// Or a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...),
    /// which any number of replicas may share. Without it, locks live in
    /// memory only [env: RELUKKO_DB, or DATABASE_URL for a URL]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,

    /// How long a client may take to send a whole request head, from
    /// connecting or from the head's first byte; then the connection is closed
    /// [env: RELUKKO_HEAD_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = vars::parse_duration)]
    head_timeout: Option<Duration>,

    /// How long a client may take to send a whole request body; then it is
    /// answered 408 [env: RELUKKO_BODY_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = vars::parse_duration)]
    body_timeout: Option<Duration>,

    /// How long a kept-alive connection may stay idle between requests
    /// [env: RELUKKO_IDLE_TIMEOUT] [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = vars::parse_duration)]
    idle_timeout: Option<Duration>,

    /// The most HTTP connections served at once; at the cap a new connection
    /// closes the oldest one not answering a request. Lowered to fit the
    /// open-files limit [env: RELUKKO_MAX_CONNECTIONS] [default: 4096]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// The most WebSocket clients at once; an upgrade over it is answered 503
    /// (clients then poll) [env: RELUKKO_MAX_WEBSOCKETS] [default: 4096]
    #[arg(long, value_name = "N")]
    max_websockets: Option<usize>,
}

/// What the command line and the environment ask for.
#[derive(Debug)]
struct Options {
    config: ServerConfig,
    bind: String,
    port: u16,
    log: LevelFilter,
}

/// Why the server does not start.
#[derive(Debug)]
enum Stop {
    /// Help, version or a malformed command line: clap prints it and knows
    /// the exit code (0 for help, 2 for an error).
    Clap(clap::Error),
    /// A bad or missing setting: exit code 2.
    Usage(String),
}

/// Entry point of the `relukko-server` binary: exit code 0 after a clean
/// shutdown, 1 if it cannot listen or fails, 2 for a bad or missing setting.
pub fn main() -> ExitCode {
    let options = match parse(std::env::args_os(), &vars::process()) {
        Ok(options) => options,
        Err(Stop::Clap(e)) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        Err(Stop::Usage(message)) => {
            eprintln!("relukko-server: {message}");
            eprintln!("Try `relukko-server --help`.");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(options.log)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relukko-server: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(options));
    // Cut whatever outlived the bounded graceful shutdown.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("relukko-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    // Before the limits are worked out from it (in `open`).
    if let Some((before, after)) = super::listen::raise_open_files_limit() {
        tracing::info!(target: "relukko::server", "open-files limit raised from {before} to {after}");
    }
    // The database first: a file another server has open stops us before we listen.
    let (state, stop) = super::run::open(options.config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind((options.bind.as_str(), options.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", options.bind, options.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let shutdown = shutdown_signal()?;
    tracing::info!(target: "relukko::server", "config: {:?}", options.config);
    if options.config.api_key().chars().count() < MIN_KEY_LENGTH {
        tracing::warn!(
            target: "relukko::server",
            "RELUKKO_API_KEY is shorter than {MIN_KEY_LENGTH} characters; a longer one \
             (for example from `openssl rand -hex 16`) is much harder to guess"
        );
    }
    // The one line scripts and tests wait for. Rust's stdout is line-buffered,
    // so it is out with the newline, also into a pipe.
    println!("relukko-server listening on http://{addr}");
    super::run::serve_state(listener, state, stop, shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!(target: "relukko::server", "stopped");
    Ok(())
}

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are
/// registered here, before the server says it listens: a signal sent right
/// after that line must not kill the process uncleanly.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!(target: "relukko::server", "Ctrl-C: shutting down"),
            _ = term.recv() => tracing::info!(target: "relukko::server", "SIGTERM: shutting down"),
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(target: "relukko::server", "Ctrl-C: shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    })
}

fn parse<F>(args: impl IntoIterator<Item = OsString>, env: &Vars<F>) -> Result<Options, Stop>
where
    F: Fn(&str) -> Option<OsString>,
{
    let flags = Flags::try_parse_from(args).map_err(Stop::Clap)?;

    let setting = |e: VarError| Stop::Usage(e.to_string());
    let Some(api_key) = env.text(vars::API_KEY).map_err(setting)? else {
        return Err(Stop::Usage(
            "RELUKKO_API_KEY is not set: the server refuses to start without an API key \
             (clients send it in the X-API-Key header)"
                .to_owned(),
        ));
    };
    let bind = match flags.bind {
        Some(b) => b,
        None => env
            .text(vars::BIND_ADDR)
            .map_err(setting)?
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
    };
    let port = match flags.port {
        Some(p) => p,
        None => match env.text(vars::BIND_PORT).map_err(setting)? {
            Some(p) => parse_port(vars::BIND_PORT, &p)?,
            None => 3000,
        },
    };
    let grace = match flags.grace {
        Some(g) => g,
        None => env
            .duration(vars::CLEANUP_GRACE)
            .map_err(setting)?
            .unwrap_or(DEFAULT_GRACE),
    };
    let interval = match flags.cleanup_interval {
        Some(i) => i,
        None => env
            .duration(vars::CLEANUP_INTERVAL)
            .map_err(setting)?
            .unwrap_or(DEFAULT_CLEANUP_INTERVAL),
    };
    if interval.is_zero() {
        return Err(Stop::Usage(
            "the clean-up interval must be longer than 0".to_owned(),
        ));
    }
    let log = match env.text(vars::LOG).map_err(setting)? {
        Some(level) => parse_level(&level)?,
        None => LevelFilter::INFO,
    };
    let db = match flags.db {
        Some(path) => Some(path),
        None => match env.raw(vars::DB) {
            Some(path) if path.is_empty() => {
                return Err(setting(VarError {
                    name: vars::DB.to_owned(),
                    reason: "is set but empty: unset it or give it a path or a postgres:// URL"
                        .to_owned(),
                }));
            }
            Some(path) => Some(PathBuf::from(path)),
            // Upstream's variable, for a PostgreSQL URL only.
            None => match env.text(vars::DATABASE_URL).map_err(setting)? {
                Some(url) if is_postgres_url(&url) => Some(PathBuf::from(url)),
                Some(_) => {
                    return Err(Stop::Usage(
                        "DATABASE_URL is not a postgres:// URL: give a database file with \
                         --db or RELUKKO_DB, or unset DATABASE_URL"
                            .to_owned(),
                    ));
                }
                None => None,
            },
        },
    };
    if db.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(Stop::Usage("--db needs a path".to_owned()));
    }
    let login = match (
        env.text(vars::USER).map_err(setting)?,
        env.text(vars::PASSWORD).map_err(setting)?,
    ) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => {
            return Err(Stop::Usage(
                "RELUKKO_USER and RELUKKO_PASSWORD go together: set both for a page login, \
                 or neither"
                    .to_owned(),
            ));
        }
    };
    let timeout =
        |flag: Option<Duration>, name: &str, default: Duration| -> Result<Duration, Stop> {
            let timeout = match flag {
                Some(t) => t,
                None => env.duration(name).map_err(setting)?.unwrap_or(default),
            };
            if timeout.is_zero() {
                return Err(Stop::Usage(format!("{name} must be longer than 0")));
            }
            Ok(timeout)
        };
    let count = |flag: Option<usize>, name: &str, default: usize| -> Result<usize, Stop> {
        match flag {
            Some(n) => Ok(n),
            None => match env.text(name).map_err(setting)? {
                Some(n) => n.trim().parse().map_err(|_| {
                    Stop::Usage(format!(
                        "invalid setting {name}: {n:?} is not a whole number"
                    ))
                }),
                None => Ok(default),
            },
        }
    };
    let mut config = ServerConfig::new(api_key)
        .grace(grace)
        .cleanup_interval(interval)
        .head_timeout(timeout(
            flags.head_timeout,
            vars::HEAD_TIMEOUT,
            DEFAULT_HEAD_TIMEOUT,
        )?)
        .body_timeout(timeout(
            flags.body_timeout,
            vars::BODY_TIMEOUT,
            DEFAULT_BODY_TIMEOUT,
        )?)
        .idle_timeout(timeout(
            flags.idle_timeout,
            vars::IDLE_TIMEOUT,
            DEFAULT_IDLE_TIMEOUT,
        )?)
        .max_connections(count(
            flags.max_connections,
            vars::MAX_CONNECTIONS,
            DEFAULT_MAX_CONNECTIONS,
        )?)
        .max_websockets(count(
            flags.max_websockets,
            vars::MAX_WEBSOCKETS,
            DEFAULT_MAX_WEBSOCKETS,
        )?);
    if let Some(db) = db {
        config = match db.to_str().filter(|d| is_postgres_url(d)) {
            Some(url) => config.postgres(url),
            None => config.database(db),
        };
    }
    if let Some((user, password)) = login {
        config = config.page_login(&user, &password);
    }
    Ok(Options {
        config,
        bind,
        port,
        log,
    })
}

/// Whether `--db` names a PostgreSQL database rather than a file.
fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

fn parse_port(name: &str, v: &str) -> Result<u16, Stop> {
    v.trim().parse().map_err(|_| {
        Stop::Usage(format!(
            "invalid setting {name}: {v:?} is not a port number (0-65535)"
        ))
    })
}

fn parse_level(v: &str) -> Result<LevelFilter, Stop> {
    match v.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::OFF),
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        _ => Err(Stop::Usage(format!(
            "invalid setting RELUKKO_LOG: {v:?} is not a level (error, warn, info, debug, trace, off)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &[&str], env: &[(&str, &str)]) -> Result<Options, Stop> {
        let argv = std::iter::once("relukko-server")
            .chain(a.iter().copied())
            .map(OsString::from);
        parse(argv, &Vars::from_pairs(env))
    }

    fn usage(r: Result<Options, Stop>) -> String {
        match r {
            Err(Stop::Usage(m)) => m,
            Err(Stop::Clap(e)) if e.exit_code() == 2 => e.to_string(),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    const KEY: (&str, &str) = ("RELUKKO_API_KEY", "k");

    #[test]
    fn help_and_bad_arguments() {
        for help in ["--help", "-h"] {
            match run(&[help], &[]) {
                Err(Stop::Clap(e)) => {
                    assert_eq!(e.exit_code(), 0);
                    let text = e.to_string();
                    assert!(text.contains("RELUKKO_BIND_PORT"), "{text}");
                }
                other => panic!("{other:?}"),
            }
        }
        let m = usage(run(&["--frobnicate"], &[KEY]));
        assert!(m.contains("--frobnicate"), "{m}");
        let m = usage(run(&["--port"], &[KEY]));
        assert!(m.contains("--port"), "{m}");
        let m = usage(run(&["--port=seventy"], &[KEY]));
        assert!(m.contains("--port") && m.contains("seventy"), "{m}");
        let m = usage(run(&["--grace", "soon"], &[KEY]));
        assert!(m.contains("--grace") && m.contains("soon"), "{m}");
    }

    #[test]
    fn flags_override_variables_which_override_defaults() {
        let o = run(&[], &[KEY]).unwrap();
        assert_eq!((o.bind.as_str(), o.port), ("127.0.0.1", 3000));
        assert_eq!(o.config.get_grace(), DEFAULT_GRACE);
        assert_eq!(o.config.get_cleanup_interval(), DEFAULT_CLEANUP_INTERVAL);
        assert_eq!(o.log, LevelFilter::INFO);
        assert_eq!(o.config.get_database(), None);
        assert_eq!(o.config.get_head_timeout(), DEFAULT_HEAD_TIMEOUT);
        assert_eq!(o.config.get_body_timeout(), DEFAULT_BODY_TIMEOUT);
        assert_eq!(o.config.get_idle_timeout(), DEFAULT_IDLE_TIMEOUT);
        assert_eq!(o.config.get_max_connections(), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(o.config.get_max_websockets(), DEFAULT_MAX_WEBSOCKETS);
        let limits = run(
            &["--head-timeout=2s", "--max-connections", "7"],
            &[
                KEY,
                ("RELUKKO_HEAD_TIMEOUT", "9s"),
                ("RELUKKO_BODY_TIMEOUT", "3s"),
                ("RELUKKO_IDLE_TIMEOUT", "4s"),
                ("RELUKKO_MAX_WEBSOCKETS", "5"),
            ],
        )
        .unwrap()
        .config;
        assert_eq!(limits.get_head_timeout(), Duration::from_secs(2));
        assert_eq!(limits.get_body_timeout(), Duration::from_secs(3));
        assert_eq!(limits.get_idle_timeout(), Duration::from_secs(4));
        assert_eq!(limits.get_max_connections(), 7);
        assert_eq!(limits.get_max_websockets(), 5);

        let env = [
            KEY,
            ("RELUKKO_BIND_ADDR", "0.0.0.0"),
            ("RELUKKO_BIND_PORT", "4000"),
            ("RELUKKO_CLEANUP_GRACE", "2s"),
            ("RELUKKO_CLEANUP_INTERVAL", "1s"),
            ("RELUKKO_LOG", "warn"),
            ("RELUKKO_DB", "/var/lib/relukko/env.redb"),
        ];
        let o = run(&[], &env).unwrap();
        assert_eq!((o.bind.as_str(), o.port), ("0.0.0.0", 4000));
        assert_eq!(o.config.get_grace(), Duration::from_secs(2));
        assert_eq!(o.config.get_cleanup_interval(), Duration::from_secs(1));
        assert_eq!(o.log, LevelFilter::WARN);
        assert_eq!(
            o.config.get_database(),
            Some(std::path::Path::new("/var/lib/relukko/env.redb"))
        );

        let o = run(
            &[
                "--bind",
                "::1",
                "--port=5",
                "--grace",
                "3s",
                "--cleanup-interval=4s",
                "--db",
                "flag.redb",
            ],
            &env,
        )
        .unwrap();
        assert_eq!((o.bind.as_str(), o.port), ("::1", 5));
        assert_eq!(o.config.get_grace(), Duration::from_secs(3));
        assert_eq!(o.config.get_cleanup_interval(), Duration::from_secs(4));
        assert_eq!(
            o.config.get_database(),
            Some(std::path::Path::new("flag.redb"))
        );
    }

    #[test]
    fn bad_variables_are_named() {
        let m = usage(run(&[], &[]));
        assert!(m.contains("RELUKKO_API_KEY is not set"), "{m}");
        let m = usage(run(&[], &[("RELUKKO_API_KEY", " ")]));
        assert!(m.contains("RELUKKO_API_KEY"), "{m}");
        let m = usage(run(&[], &[KEY, ("RELUKKO_BIND_PORT", "x")]));
        assert!(m.contains("RELUKKO_BIND_PORT"), "{m}");
        let m = usage(run(&[], &[KEY, ("RELUKKO_CLEANUP_INTERVAL", "0s")]));
        assert!(m.contains("longer than 0"), "{m}");
        let m = usage(run(&[], &[KEY, ("RELUKKO_USER", "admin")]));
        assert!(m.contains("RELUKKO_PASSWORD"), "{m}");
        assert!(
            run(
                &[],
                &[KEY, ("RELUKKO_USER", "a"), ("RELUKKO_PASSWORD", "b")]
            )
            .unwrap()
            .config
            .page_login
            .is_some()
        );
        let m = usage(run(&[], &[KEY, ("RELUKKO_HEAD_TIMEOUT", "0s")]));
        assert!(
            m.contains("RELUKKO_HEAD_TIMEOUT") && m.contains("longer than 0"),
            "{m}"
        );
        let m = usage(run(&[], &[KEY, ("RELUKKO_MAX_CONNECTIONS", "many")]));
        assert!(
            m.contains("RELUKKO_MAX_CONNECTIONS") && m.contains("many"),
            "{m}"
        );
        let m = usage(run(&[], &[KEY, ("RELUKKO_DB", "")]));
        assert!(m.contains("RELUKKO_DB"), "{m}");
        let m = usage(run(&[], &[KEY, ("DATABASE_URL", "/tmp/x.redb")]));
        assert!(m.contains("DATABASE_URL"), "{m}");
        let pg = run(&[], &[KEY, ("DATABASE_URL", "postgres://u:pw@h/db")])
            .unwrap()
            .config;
        assert_eq!(pg.get_database(), None);
        assert!(format!("{pg:?}").contains("postgres://u@h/db"), "{pg:?}");
        assert!(!format!("{pg:?}").contains("pw"), "{pg:?}");
        let file = run(
            &[],
            &[
                KEY,
                ("RELUKKO_DB", "x.redb"),
                ("DATABASE_URL", "postgres://h/db"),
            ],
        )
        .unwrap()
        .config;
        assert_eq!(file.get_database(), Some(std::path::Path::new("x.redb")));
        // The flag wins without reading the variable.
        assert!(run(&["--port", "0"], &[KEY, ("RELUKKO_BIND_PORT", "x")]).is_ok());
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level("off").unwrap(), LevelFilter::OFF);
        assert!(parse_level("loud").is_err());
    }

    #[test]
    fn the_command_is_consistent() {
        use clap::CommandFactory;
        Flags::command().debug_assert();
    }
}
