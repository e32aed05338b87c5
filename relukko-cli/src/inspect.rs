//! `relukko list`, `who`, `release` and `health`: looking at (and freeing)
//! the locks of the configured backend.

use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use super::args::{ListArgs, ReleaseArgs, WhoArgs};
use super::exit::{code, failed, say};
use relukko::__cli::{self as config, BackendKind, Holding, Local, Settings, human};
use relukko::{Client, Error, Lock, Result};
use relukko_protocol::vars;

/// The configured backend, to look at.
enum Target {
    Local(Local),
    Relukko(Client),
}

/// One held lock, as `list` and `who` show it (and `list --json` writes it).
#[derive(Debug, Serialize)]
struct Entry {
    /// The name as `run`, `who` and `release` take it (without the prefix).
    name: String,
    /// The name on the backend (with the prefix).
    lock_name: String,
    /// Who holds it, for people.
    holder: String,
    /// The creator text as recorded (without the client's token).
    creator: Option<String>,
    /// Since when (RFC 3339 UTC).
    since: Option<String>,
    /// When it expires unless kept alive (never, on the local backend).
    expires: Option<String>,
    /// The lock's id: the server's UUID, or the local lock file's name.
    id: String,
}

impl Entry {
    fn remote(l: &Lock, prefix: &str) -> Entry {
        let creator = l
            .creator
            .as_deref()
            .map(relukko::creator_without_token)
            .map(str::to_owned);
        Entry {
            name: strip(&l.lock_name, prefix),
            lock_name: l.lock_name.clone(),
            holder: human::holder(l),
            creator,
            since: Some(human::when(l.created_at)),
            expires: Some(human::when(l.expires_at)),
            id: l.id.to_string(),
        }
    }

    fn local(h: &Holding, prefix: &str) -> Entry {
        let who = h.creator.clone().unwrap_or_else(|| {
            "a holder whose lock file holds no record (still being written, or a process \
                 that locks the file without writing one)"
                .into()
        });
        Entry {
            name: strip(&h.lock_name, prefix),
            lock_name: h.lock_name.clone(),
            holder: match &h.since {
                Some(since) => format!("{who} since {since}"),
                None => who,
            },
            creator: h.creator.clone(),
            since: h.since.clone(),
            expires: None,
            id: h.id(),
        }
    }
}

fn strip(lock_name: &str, prefix: &str) -> String {
    lock_name
        .strip_prefix(prefix)
        .unwrap_or(lock_name)
        .to_owned()
}

/// The settings and the backend they select; the skip switch is an error
/// here (there are no locks to look at).
fn target() -> Result<(Settings, Target)> {
    let settings = config::from_env()?;
    let target = match &settings.kind {
        BackendKind::Skip => {
            return Err(Error::Config {
                name: vars::SKIP.to_owned(),
                reason: "is set, so nothing is locked and there are no locks to look at: unset it"
                    .to_owned(),
            });
        }
        BackendKind::Local { dir } => Target::Local(Local::new(dir.clone())),
        BackendKind::Relukko { client } => Target::Relukko(client.clone().into_builder().build()?),
    };
    Ok((settings, target))
}

async fn entries(settings: &Settings, target: &Target) -> Result<Vec<Entry>> {
    let prefix = settings.defaults.prefix.as_str();
    Ok(match target {
        Target::Local(local) => local
            .held()?
            .iter()
            .filter(|h| h.lock_name.starts_with(prefix))
            .map(|h| Entry::local(h, prefix))
            .collect(),
        Target::Relukko(client) => {
            let mut locks = client.list().await?;
            locks.sort_by(|a, b| a.lock_name.cmp(&b.lock_name));
            locks
                .iter()
                .filter(|l| l.lock_name.starts_with(prefix))
                .map(|l| Entry::remote(l, prefix))
                .collect()
        }
    })
}

pub(crate) async fn list(a: ListArgs) -> u8 {
    let got = async {
        let (settings, target) = target()?;
        entries(&settings, &target).await
    };
    let entries = match got.await {
        Ok(e) => e,
        Err(e) => return failed(&e),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let json = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into());
        let _ = writeln!(out, "{json}");
        return 0;
    }
    if entries.is_empty() {
        let _ = writeln!(out, "no locks held");
        return 0;
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.creator.clone().unwrap_or_else(|| "-".into()),
                e.since.clone().unwrap_or_else(|| "-".into()),
                e.expires.clone().unwrap_or_else(|| "never".into()),
                e.id.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "HOLDER", "SINCE", "EXPIRES", "ID"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    0
}

/// The held lock `name` (as `run` takes it), or with `by_id` also the lock
/// whose id is `name`.
async fn find(
    settings: &Settings,
    target: &Target,
    name: &str,
    by_id: bool,
) -> Result<Option<Entry>> {
    let prefix = settings.defaults.prefix.as_str();
    match target {
        Target::Local(local) => {
            let by_id = if by_id { local.holding_id(name)? } else { None };
            let found = match by_id {
                Some(h) => Some(h),
                None => local.holding(&format!("{prefix}{name}"))?,
            };
            Ok(found.map(|h| Entry::local(&h, prefix)))
        }
        Target::Relukko(client) => {
            if by_id && let Ok(id) = uuid::Uuid::parse_str(name) {
                return match client.get(id).await {
                    Ok(l) => Ok(Some(Entry::remote(&l, prefix))),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                };
            }
            let held = client.holder(&format!("{prefix}{name}")).await?;
            Ok(held.map(|l| Entry::remote(&l, prefix)))
        }
    }
}

pub(crate) async fn who(a: WhoArgs) -> u8 {
    let got = async {
        let (settings, target) = target()?;
        find(&settings, &target, &a.name, false).await
    };
    match got.await {
        Ok(Some(e)) => {
            println!("{}: held by {} (id {})", e.name, e.holder, e.id);
            0
        }
        Ok(None) => {
            println!("{} is free", a.name);
            code::NO
        }
        Err(e) => failed(&e),
    }
}

pub(crate) async fn release(a: ReleaseArgs) -> u8 {
    let (settings, target) = match target() {
        Ok(t) => t,
        Err(e) => return failed(&e),
    };
    let entry = match find(&settings, &target, &a.target, true).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            say(&format!("{} is not held: nothing to release", a.target));
            return code::NO;
        }
        Err(e) => return failed(&e),
    };
    if !a.yes && std::io::stdin().is_terminal() && !confirm(&entry) {
        say("not released");
        return code::NO;
    }
    let done = match &target {
        Target::Local(local) => {
            let holding = Holding {
                lock_name: entry.lock_name.clone(),
                creator: None,
                since: None,
                file: local.dir().join(&entry.id),
            };
            local.force_release(&holding)
        }
        Target::Relukko(client) => match uuid::Uuid::parse_str(&entry.id) {
            Ok(id) => client.delete(id).await.map(drop),
            Err(_) => Ok(()),
        },
    };
    match done {
        Ok(()) => {
            println!(
                "released {} (id {}), held by {}",
                entry.name, entry.id, entry.holder
            );
            0
        }
        Err(Error::NotFound { .. }) => {
            say(&format!(
                "{} was released by someone else meanwhile",
                entry.name
            ));
            code::NO
        }
        Err(e) => failed(&e),
    }
}

/// Asks on the terminal; answers whether the user said yes.
fn confirm(e: &Entry) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "release {}, held by {}? [y/N] ", e.name, e.holder);
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

pub(crate) async fn health() -> u8 {
    let settings = match config::from_env() {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    match settings.kind {
        BackendKind::Skip => {
            println!(
                "ok: locking is skipped ({} is set): there is nothing to reach",
                vars::SKIP
            );
            0
        }
        BackendKind::Local { dir } => local_health(&dir),
        BackendKind::Relukko { client } => {
            let url_var = client
                .url
                .as_ref()
                .map_or(vars::URL_VARS[0], |(var, _)| *var);
            let client = match client.into_builder().build() {
                Ok(c) => c,
                Err(e) => return failed(&e),
            };
            let url = client.base_url().to_owned();
            let checked = async {
                client.health().await?;
                // /healthchecker needs no key; listing does.
                client.list().await
            };
            match checked.await {
                Ok(locks) => {
                    println!(
                        "ok: {url} answers /healthchecker and accepts the API key ({} locks held)",
                        locks.len()
                    );
                    0
                }
                Err(e) => {
                    say(&format!("{e}"));
                    say(&hint(&e, url_var));
                    code::NO
                }
            }
        }
    }
}

/// What to check, for an error of `health`.
fn hint(e: &Error, url_var: &str) -> String {
    match e {
        Error::NotAuthorised { .. } => {
            "the server runs but refuses the key: set RELUKKO_API_KEY to the server's key".into()
        }
        Error::Tls { .. } => {
            "TLS setup failed: check RELUKKO_CA_BUNDLE (a PEM file or folder of the server's CA)"
                .into()
        }
        Error::Transport { .. } | Error::Timeout { .. } | Error::WebSocket { .. } => format!(
            "check {url_var} (scheme, host, port), that the server runs and is reachable from here, \
             and for https that RELUKKO_CA_BUNDLE holds its CA"
        ),
        _ => format!("check {url_var}: is it the base URL of a Relukko server?"),
    }
}

fn local_health(dir: &std::path::Path) -> u8 {
    if !dir.exists() {
        println!(
            "ok: local backend; {} does not exist yet and is created at the first lock",
            dir.display()
        );
        return 0;
    }
    let probe = dir.join(format!(".relukko-health-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            println!("ok: local backend, lock files in {}", dir.display());
            0
        }
        Err(e) => {
            say(&format!(
                "cannot create lock files in {}: {e}; check {} (a folder every user of the locks may write to)",
                dir.display(),
                vars::LOCAL_DIR
            ));
            code::NO
        }
    }
}
