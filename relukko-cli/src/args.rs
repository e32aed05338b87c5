//! The commands and flags of `relukko`, with their help texts.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const TOP_HELP: &str = "\
Examples:
  relukko run hil-rig-3 -- cargo nextest run --profile hil
  relukko run --any-of rig-1 rig-2 --timeout 30m -- ./flash.sh
  relukko list
  relukko who hil-rig-3
  relukko release hil-rig-3 --yes
  relukko health

Configuration (the same as the library's, from the environment):
  RELUKKO_URL (or RELUKKO_BASE_URL)  the Relukko server; unset: lock files on
                                     this machine, in RELUKKO_LOCAL_DIR
  RELUKKO_API_KEY, RELUKKO_CA_BUNDLE, RELUKKO_TIMEOUT, RELUKKO_LEASE,
  RELUKKO_LOCK_PREFIX, RELUKKO_CREATOR, RELUKKO_TRUST_ME_IT_IS_LOCKED

Exit codes:
  0    success (run: CMD's own status, whatever it is)
  1    who: the name is free; release: nothing released; health: unhealthy
  2    a bad flag or argument
  120  run: the lock was lost while CMD ran
  124  run: the resources were not free within --timeout
  125  relukko failed (a bad setting, the server unreachable, ...)
  126  run: CMD cannot be run;  127: CMD not found
  128+N  run: CMD (or relukko while waiting) ended by signal N";

const RUN_HELP: &str = "\
Waits for the resources (printing who holds them while it waits), holds them
with heartbeats while CMD runs, and releases them when CMD ends. CMD sees
RELUKKO_HELD: the names held, comma-separated (for --any-of: the one it got),
and RELUKKO_HELD_PROOF: what identifies each lock (JSON). A test (or relukko
run) inside CMD that locks one of those names gets it at once, inside this
hold, once it has checked that the hold is alive; those inside take turns.

Signals: SIGINT, SIGTERM and SIGHUP sent to relukko are passed on to CMD (not
when the terminal already sent them to both); the resources are released once
CMD has ended, never while it runs. A signal that arrives while still waiting
stops the wait, leaves no lock behind, and exits 128+N. If relukko itself is
killed (SIGKILL), CMD is killed with it (Linux), so CMD never runs unlocked.

If the lock is lost while CMD runs (deleted by someone else, or heartbeats
failing past the lease), CMD gets SIGTERM, then SIGKILL after --kill-after,
and relukko exits 120; --on-lost=warn only says so and lets CMD run on.

Exit status: CMD's own; 128+N if CMD died by signal N; 120 lock lost; 124 not
free within --timeout; 125 relukko failed; 126 CMD cannot run; 127 not found.

Examples:
  relukko run hil-rig-3 -- cargo nextest run --profile hil
  relukko run --any-of rig-1 rig-2 rig-3 -- sh -c 'flash --target \"$RELUKKO_HELD\"'
  relukko run staging-db licence-server --timeout 1h --lease 2m -- ./nightly.sh";

const LIST_HELP: &str = "\
Shows every lock held: name, holder, since, expires, id. On the local backend
(no RELUKKO_URL) these are the lock files of RELUKKO_LOCAL_DIR whose holder
is alive; they never expire and their id is the lock file's name. With
RELUKKO_LOCK_PREFIX set, only the names under it, shown without it.

Examples:
  relukko list
  relukko list --json | jq -r '.[].name'";

const WHO_HELP: &str = "\
Prints who holds NAME (as `run` takes it: RELUKKO_LOCK_PREFIX is put in
front). Exit status 0 if held, 1 if free.

Examples:
  relukko who hil-rig-3
  relukko who hil-rig-3 >/dev/null || echo free";

const RELEASE_HELP: &str = "\
Force-releases a lock held by someone else, and prints what it released.
Asks first when stdin is a terminal, unless --yes; a script (stdin not a
terminal) is not asked. The holder is not stopped: on a Relukko server its
next heartbeat finds the lock gone (a `relukko run` then stops its CMD, a
locked test fails); on the local backend the lock file is removed, so the
next taker gets the name at once, and the holder learns it when it releases.
Exit status 0 if released, 1 if there was nothing to release.

Examples:
  relukko release hil-rig-3
  relukko release 950daa20-a814-451e-9407-ec496cf9c136 --yes";

const HEALTH_HELP: &str = "\
Checks the configured backend: a Relukko server must answer /healthchecker
and accept the API key (with the configured CA bundle, for https); the local
backend's folder must be usable. Says what is wrong, and which setting to
fix, if not. Exit status 0 if healthy, 1 if not.

Examples:
  relukko health
  RELUKKO_URL=https://relukko.example.com RELUKKO_API_KEY=... relukko health";

/// Hold Relukko locks while a command runs; see and free the locks others hold.
#[derive(Debug, Parser)]
#[command(name = "relukko", version, after_help = TOP_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Wait for resources, hold them while CMD runs, release them after.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Show every lock held.
    #[command(after_help = LIST_HELP)]
    List(ListArgs),
    /// Show who holds one name (exit 1 if free).
    #[command(after_help = WHO_HELP)]
    Who(WhoArgs),
    /// Force-release a lock held by someone else.
    #[command(after_help = RELEASE_HELP)]
    Release(ReleaseArgs),
    /// Check that the configured server (or lock folder) can be used.
    #[command(after_help = HEALTH_HELP)]
    Health,
}

/// What to do when the lock is lost while CMD runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnLost {
    /// SIGTERM to CMD, SIGKILL after --kill-after, exit 120.
    Stop,
    /// Say so on stderr and let CMD run on.
    Warn,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Take whichever one of the NAMEs is free first (a pool), not all of them.
    #[arg(long)]
    pub(crate) any_of: bool,
    /// The resources to hold.
    #[arg(value_name = "NAME", required = true)]
    pub(crate) names: Vec<String>,
    /// The longest wait, like "90s", "10m" or "1h 30m" [default: RELUKKO_TIMEOUT, else 10m].
    #[arg(long, value_name = "D", value_parser = duration)]
    pub(crate) timeout: Option<Duration>,
    /// How long the server keeps the lock without a heartbeat, at least 2s [default: RELUKKO_LEASE, else 60s].
    #[arg(long, value_name = "D", value_parser = duration)]
    pub(crate) lease: Option<Duration>,
    /// The holder text recorded with the lock [default: RELUKKO_CREATOR, else user@host cmd=<CMD> pid=<pid>].
    #[arg(long, value_name = "TEXT")]
    pub(crate) creator: Option<String>,
    /// What to do if the lock is lost while CMD runs.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OnLost::Stop)]
    pub(crate) on_lost: OnLost,
    /// After a lost lock, how long CMD has between SIGTERM and SIGKILL.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "10s")]
    pub(crate) kill_after: Duration,
    /// The command to run while holding the resources, after `--`.
    #[arg(value_name = "CMD", last = true, required = true)]
    pub(crate) command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// One JSON array of {name, lock_name, holder, creator, since, expires, id}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WhoArgs {
    /// The resource.
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// The resource, or the lock's id as `relukko list` shows it.
    #[arg(value_name = "NAME|ID")]
    pub(crate) target: String,
    /// Do not ask.
    #[arg(long, short)]
    pub(crate) yes: bool,
}

/// Parses the command line; `relukko run` without `--` (a common slip:
/// `relukko run rig sleep 1`) says where the command goes instead of clap's
/// bare "required arguments were not provided".
pub(crate) fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    Cli::try_parse_from(&args).map_err(|e| match missing_dashes(&args, &e) {
        Some(message) => {
            use clap::CommandFactory;
            let mut cli = Cli::command();
            cli.build();
            let run = cli.find_subcommand_mut("run").expect("run is a command");
            run.error(clap::error::ErrorKind::MissingRequiredArgument, message)
        }
        None => e,
    })
}

/// The flags of `run` that take a value (the next word, unless `--flag=v`).
const RUN_VALUE_FLAGS: [&str; 5] = [
    "--timeout",
    "--lease",
    "--creator",
    "--on-lost",
    "--kill-after",
];

/// For `relukko run` with no `--`, the message naming the fix, with the
/// user's own line corrected: `--` after the first name (the rest of the
/// words are most likely the command).
fn missing_dashes(args: &[OsString], e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::MissingRequiredArgument {
        return None;
    }
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = words.iter().position(|w| w == "run")?;
    if words.iter().any(|w| w == "--") {
        return None;
    }
    let mut fixed: Vec<String> = words[at..=at].to_vec();
    let mut names = 0;
    let mut rest = words[at + 1..].iter();
    while let Some(w) = rest.next() {
        if w.starts_with('-') {
            fixed.push(w.clone());
            if RUN_VALUE_FLAGS.contains(&w.as_str()) {
                fixed.extend(rest.next().cloned());
            }
            continue;
        }
        if names == 1 {
            fixed.push("--".to_owned());
        }
        names += 1;
        fixed.push(w.clone());
    }
    let example = match names {
        // A pool's names cannot be told from the command's words.
        _ if words.iter().any(|w| w == "--any-of") => {
            "relukko run --any-of NAME... -- CMD...".to_owned()
        }
        0 => "relukko run NAME -- CMD...".to_owned(),
        1 => format!("relukko {} -- CMD...", fixed.join(" ")),
        _ => format!("relukko {}", fixed.join(" ")),
    };
    Some(format!(
        "no command to run: the command goes after `--`, as in\n\n    {example}\n\n\
         (every word before `--` is a NAME to lock)"
    ))
}

/// A duration flag, read like the library's duration settings.
fn duration(v: &str) -> Result<Duration, String> {
    relukko_protocol::vars::parse_duration(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_names_flags_and_the_command_after_the_dashes() {
        let cli = Cli::try_parse_from([
            "relukko",
            "run",
            "--any-of",
            "a",
            "b",
            "--timeout",
            "2m",
            "--",
            "sh",
            "-c",
            "x",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert!(r.any_of);
        assert_eq!(r.names, ["a", "b"]);
        assert_eq!(r.timeout, Some(Duration::from_secs(120)));
        assert_eq!(r.command, ["sh", "-c", "x"]);
        assert_eq!(r.on_lost, OnLost::Stop);
    }

    #[test]
    fn a_bad_duration_names_the_flag_and_the_fix() {
        let err = Cli::try_parse_from(["relukko", "run", "a", "--lease", "soon", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--lease") && err.contains("\"30s\""), "{err}");
        let err = Cli::try_parse_from(["relukko", "run", "a"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CMD"), "{err}");
    }

    #[test]
    fn a_run_without_dashes_shows_the_line_with_them() {
        let err = |args: &[&str]| parse_from(args).unwrap_err().to_string();
        let e = err(&["relukko", "run", "x", "sleep", "1"]);
        assert!(e.contains("relukko run x -- sleep 1"), "{e}");
        let e = err(&["relukko", "run", "--timeout", "5m", "x", "sleep", "1"]);
        assert!(e.contains("relukko run --timeout 5m x -- sleep 1"), "{e}");
        let e = err(&["relukko", "run", "--any-of", "a", "b", "sleep", "1"]);
        assert!(e.contains("relukko run --any-of NAME... -- CMD..."), "{e}");
        assert!(e.contains("Usage: relukko run"), "{e}");
        let e = err(&["relukko", "run", "x"]);
        assert!(e.contains("relukko run x -- CMD..."), "{e}");
        // Other mistakes keep clap's own message.
        let e = err(&["relukko", "run", "--", "true"]);
        assert!(e.contains("<NAME>"), "{e}");
        assert!(!e.contains("goes after"), "{e}");
    }
}
