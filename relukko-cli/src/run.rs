//! `relukko run`: wait, hold while CMD runs, release, exit with CMD's status.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::time::Instant;

use super::args::{OnLost, RunArgs};
use super::exit::{code, failed, say};
use super::signals::{self, Signals};
use relukko::__cli::human;
use relukko::{Lease, LockOptions, Locker};

/// The variable CMD finds the held names in.
pub(crate) const HELD_VAR: &str = relukko_protocol::vars::HELD;
/// The variable CMD finds what identifies each held lock in: CMD's own
/// locks on those names are taken inside this hold, never waiting for it.
pub(crate) const PROOF_VAR: &str = relukko_protocol::vars::HELD_PROOF;
/// After a signal stopped the wait, the longest relukko waits for abandoned
/// lock requests to be cleaned up before it exits.
const SETTLE: Duration = Duration::from_secs(15);

pub(crate) async fn run(a: RunArgs) -> u8 {
    // First of all: from here on a signal cannot end the process before it
    // has cleaned up.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            say(&format!("cannot handle signals: {e}"));
            return code::FAILED;
        }
    };
    let (locker, opts) = match plan(&a) {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let what = a.names.join(if a.any_of { " or " } else { ", " });

    let lease = tokio::select! {
        got = locker.lock(opts) => match got {
            Ok(lease) => lease,
            Err(e) => return failed(&e),
        },
        // The wait (and every request in flight) is dropped before this runs.
        sig = signals.next() => {
            let clean = relukko::__cli::settle(SETTLE).await;
            say(&format!(
                "{} while waiting for {what}: stopped waiting{}",
                sig.name(),
                if clean { "; nothing is held" } else { "; a lock request may still be cleaned up by the server's expiry" }
            ));
            return code::SIGNAL_BASE + sig.signal as u8;
        }
    };
    let held = lease.names().join(",");
    say(&format!("holding {held}; running {}", shown(&a.command)));

    let mut cmd = tokio::process::Command::new(&a.command[0]);
    cmd.args(&a.command[1..])
        .env(HELD_VAR, &held)
        .env(PROOF_VAR, relukko::__cli::hold_proof(&locker, &lease));
    signals::prepare_child(&mut cmd);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            say(&format!("cannot run {}: {e}", shown(&a.command[..1])));
            release(lease, &held, false).await;
            return match e.kind() {
                std::io::ErrorKind::NotFound => code::NOT_FOUND,
                _ => code::CANNOT_RUN,
            };
        }
    };
    let (status, lost_while_running) = supervise(child, &lease, &mut signals, &a).await;
    // CMD has ended: nobody takes turns inside this hold any more.
    relukko::__cli::remove_inside(&locker, &lease);
    let lost_at_release = release(lease, &held, lost_while_running).await;
    match (status, lost_while_running || lost_at_release) {
        (_, true) if a.on_lost == OnLost::Stop => {
            let what = if lost_while_running {
                "CMD was stopped because"
            } else {
                // The local backend has no heartbeat: a loss shows at release.
                "CMD ended, but"
            };
            say(&format!(
                "{what} the lock on {held} was lost; exit status {}",
                code::LOST
            ));
            code::LOST
        }
        (Ok(status), _) => exit_code(status),
        (Err(e), _) => {
            say(&format!("lost track of CMD: {e}"));
            code::FAILED
        }
    }
}

/// The locker from the environment, and what to lock with the flags applied.
fn plan(a: &RunArgs) -> relukko::Result<(Locker, LockOptions)> {
    let mut settings = relukko::__cli::from_env()?;
    // The locker's plan decides the creator: --creator, else RELUKKO_CREATOR,
    // else this text about the command (in place of a test's).
    settings.defaults.creator.get_or_insert_with(|| {
        let program = Path::new(&a.command[0]);
        let program = program.file_name().unwrap_or(program.as_os_str());
        relukko::__cli::for_command(&format!("cmd={}", program.to_string_lossy()))
    });
    let locker = Locker::from_settings(settings)?;
    let mut opts = if a.any_of {
        LockOptions::any_of(a.names.iter().cloned())
    } else {
        LockOptions::all_of(a.names.iter().cloned())
    };
    if let Some(c) = &a.creator {
        opts = opts.creator(c.clone());
    }
    if let Some(t) = a.timeout {
        opts = opts.timeout(t);
    }
    if let Some(l) = a.lease {
        opts = opts.lease(l);
    }
    Ok((locker, opts))
}

/// Waits for CMD to end, passing signals on and acting on a lost lock;
/// answers CMD's status and whether the lock was lost.
async fn supervise(
    mut child: tokio::process::Child,
    lease: &Lease,
    signals: &mut Signals,
    a: &RunArgs,
) -> (std::io::Result<ExitStatus>, bool) {
    let pid = child.id().unwrap_or(0);
    let lost_fut = lease.lost();
    tokio::pin!(lost_fut);
    let mut lost = false;
    let mut kill_at: Option<Instant> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            sig = signals.next() => {
                if sig.from_kernel {
                    say(&format!("{}: CMD got it from the terminal too; {} is released once CMD ends", sig.name(), lease.names().join(",")));
                } else {
                    signals::send(pid, sig.signal);
                    say(&format!("{} passed on to CMD; {} is released once CMD ends", sig.name(), lease.names().join(",")));
                }
            }
            err = &mut lost_fut, if !lost => {
                lost = true;
                match a.on_lost {
                    OnLost::Stop => {
                        say(&format!("{err}; stopping CMD: SIGTERM now, SIGKILL in {}", human::duration(a.kill_after)));
                        signals::send(pid, libc::SIGTERM);
                        kill_at = Some(Instant::now() + a.kill_after);
                    }
                    OnLost::Warn => say(&format!("{err}; CMD runs on (--on-lost=warn)")),
                }
            }
            () = tokio::time::sleep_until(kill_at.unwrap_or_else(Instant::now)), if kill_at.is_some() => {
                kill_at = None;
                say(&format!("CMD still runs {} after SIGTERM: SIGKILL", human::duration(a.kill_after)));
                signals::send(pid, libc::SIGKILL);
            }
        }
    };
    (status, lost)
}

/// Releases, saying so; a failure is reported, not fatal (CMD has ended).
/// Answers whether the release found the lock lost (`known`: that was
/// already said).
async fn release(lease: Lease, held: &str, known: bool) -> bool {
    match lease.release().await {
        Ok(()) => {
            say(&format!("released {held}"));
            false
        }
        Err(e @ relukko::Error::LockLost { .. }) => {
            if !known {
                say(&e.to_string());
            }
            true
        }
        Err(e) => {
            say(&format!("could not release {held}: {e}"));
            false
        }
    }
}

/// CMD's status as relukko's: its code, or 128+N for death by signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => code::SIGNAL_BASE.wrapping_add(sig as u8),
        (None, None) => code::FAILED,
    }
}

/// A command line for messages.
/// The command as a POSIX shell would take it back: each word quoted when
/// it needs to be (`sh -c 'sleep 5'`).
fn shown(cmd: &[std::ffi::OsString]) -> String {
    cmd.iter()
        .map(|a| shell_quoted(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word quoted for a POSIX shell: as it is if it holds only characters
/// no shell treats specially, else in single quotes (a `'` inside becomes
/// `'\''`).
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-+=:,./@%^".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_shown_quoted_as_a_shell_takes_it() {
        let shown_of = |words: &[&str]| {
            shown(
                &words
                    .iter()
                    .map(std::ffi::OsString::from)
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(shown_of(&["sh", "-c", "sleep 5"]), "sh -c 'sleep 5'");
        assert_eq!(
            shown_of(&["./flash.sh", "--target=rig-1"]),
            "./flash.sh --target=rig-1"
        );
        assert_eq!(shown_of(&["echo", ""]), "echo ''");
        assert_eq!(shown_of(&["echo", "it's"]), r"echo 'it'\''s'");
        assert_eq!(
            shown_of(&["echo", "$HOME", "a*", "~"]),
            "echo '$HOME' 'a*' '~'"
        );
    }

    #[test]
    fn statuses_pass_through_and_signals_are_128_plus_n() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }
}
