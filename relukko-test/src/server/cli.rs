//! The `relukko-server` command line. It lives in the library so it can read
//! its settings with `crate::env`; the binary only calls [`main`].

use std::process::ExitCode;
use std::time::Duration;

use tracing::level_filters::LevelFilter;

use super::config::{DEFAULT_CLEANUP_INTERVAL, DEFAULT_GRACE, ServerConfig};
use crate::env;

const USAGE: &str = "\
relukko-server: a Relukko-compatible lock server, keeping its locks in memory
(a restart forgets every lock).

USAGE:
    RELUKKO_API_KEY=<key> relukko-server [OPTIONS]

OPTIONS (each overrides its environment variable):
    --bind <ADDR>                address to listen on      [RELUKKO_BIND_ADDR, default 127.0.0.1]
    --port <PORT>                port, 0 picks a free one  [RELUKKO_BIND_PORT, default 3000]
    --grace <DURATION>           how long an expired lock lingers before the
                                 clean-up pass removes it  [RELUKKO_CLEANUP_GRACE, default 3m]
    --cleanup-interval <DURATION>
                                 how often the clean-up pass runs
                                                           [RELUKKO_CLEANUP_INTERVAL, default 30s]
    -h, --help                   print this help

ENVIRONMENT:
    RELUKKO_API_KEY   required: the key clients send in X-API-Key
    RELUKKO_LOG       log level: error, warn, info (default), debug, trace or off

Durations are written like \"500ms\", \"30s\", \"3m\" or \"1h 30m\", or as bare seconds.
The server prints \"relukko-server listening on http://ADDR:PORT\" once it listens,
and stops cleanly on Ctrl-C or SIGTERM.
";

/// What the command line and the environment ask for.
#[derive(Debug)]
struct Options {
    config: ServerConfig,
    bind: String,
    port: u16,
    log: LevelFilter,
}

/// Why the server does not start: the message and the exit code.
#[derive(Debug)]
enum Stop {
    Help,
    Usage(String),
}

/// Entry point of the `relukko-server` binary: exit code 0 after a clean
/// shutdown, 1 if it cannot listen or fails, 2 for a bad or missing setting.
pub fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(Stop::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
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
    let listener = tokio::net::TcpListener::bind((options.bind.as_str(), options.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", options.bind, options.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let shutdown = shutdown_signal()?;
    tracing::info!(target: "relukko::server", "config: {:?}", options.config);
    // The one line scripts and tests wait for. Rust's stdout is line-buffered,
    // so it is out with the newline, also into a pipe.
    println!("relukko-server listening on http://{addr}");
    super::serve(listener, options.config, shutdown)
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

fn parse(args: impl Iterator<Item = String>) -> Result<Options, Stop> {
    let mut bind = None;
    let mut port = None;
    let mut grace = None;
    let mut interval = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(Stop::Help);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| Stop::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--bind" => bind = Some(value()?),
            "--port" => port = Some(parse_port(&flag, &value()?)?),
            "--grace" => grace = Some(parse_duration(&flag, &value()?)?),
            "--cleanup-interval" => interval = Some(parse_duration(&flag, &value()?)?),
            _ => return Err(Stop::Usage(format!("unknown argument {arg:?}"))),
        }
    }

    let setting = |e: crate::Error| Stop::Usage(e.to_string());
    let env = env::process();
    let Some(api_key) = env.text("RELUKKO_API_KEY").map_err(setting)? else {
        return Err(Stop::Usage(
            "RELUKKO_API_KEY is not set: the server refuses to start without an API key \
             (clients send it in the X-API-Key header)"
                .to_owned(),
        ));
    };
    let bind = match bind {
        Some(b) => b,
        None => env
            .text("RELUKKO_BIND_ADDR")
            .map_err(setting)?
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
    };
    let port = match port {
        Some(p) => p,
        None => match env.text("RELUKKO_BIND_PORT").map_err(setting)? {
            Some(p) => parse_port("RELUKKO_BIND_PORT", &p)?,
            None => 3000,
        },
    };
    let grace = match grace {
        Some(g) => g,
        None => env
            .duration("RELUKKO_CLEANUP_GRACE")
            .map_err(setting)?
            .unwrap_or(DEFAULT_GRACE),
    };
    let interval = match interval {
        Some(i) => i,
        None => env
            .duration("RELUKKO_CLEANUP_INTERVAL")
            .map_err(setting)?
            .unwrap_or(DEFAULT_CLEANUP_INTERVAL),
    };
    if interval.is_zero() {
        return Err(Stop::Usage(
            "the clean-up interval must be longer than 0".to_owned(),
        ));
    }
    let log = match env.text("RELUKKO_LOG").map_err(setting)? {
        Some(level) => parse_level(&level)?,
        None => LevelFilter::INFO,
    };
    Ok(Options {
        config: ServerConfig::new(api_key)
            .grace(grace)
            .cleanup_interval(interval),
        bind,
        port,
        log,
    })
}

fn parse_port(name: &str, v: &str) -> Result<u16, Stop> {
    v.trim().parse().map_err(|_| {
        Stop::Usage(format!(
            "invalid setting {name}: {v:?} is not a port number (0-65535)"
        ))
    })
}

fn parse_duration(name: &str, v: &str) -> Result<Duration, Stop> {
    env::parse_duration(v)
        .map_err(|reason| Stop::Usage(format!("invalid setting {name}: {reason}")))
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

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn help_and_bad_arguments() {
        assert!(matches!(parse(args(&["--help"])), Err(Stop::Help)));
        assert!(matches!(parse(args(&["-h"])), Err(Stop::Help)));
        match parse(args(&["--frobnicate"])) {
            Err(Stop::Usage(m)) => assert!(m.contains("--frobnicate"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse(args(&["--port"])) {
            Err(Stop::Usage(m)) => assert!(m.contains("needs a value"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse(args(&["--port=seventy"])) {
            Err(Stop::Usage(m)) => assert!(m.contains("not a port"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse(args(&["--grace", "soon"])) {
            Err(Stop::Usage(m)) => assert!(m.contains("--grace") && m.contains("soon"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level("off").unwrap(), LevelFilter::OFF);
        assert!(parse_level("loud").is_err());
    }
}
