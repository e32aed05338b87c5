//! Nested holds: a process that `relukko run` started (or anything that
//! sets its variables the same way) asking for a name its ancestor holds
//! takes it inside that hold, without a second lock on the backend and
//! without waiting for the ancestor.
//!
//! `RELUKKO_HELD` keeps its meaning (the names, comma-separated: scripts
//! pass it on as a rig's name); `RELUKKO_HELD_PROOF` carries what
//! identifies each held lock, a JSON array of
//!
//! ```text
//! {"name": "<lock name, with the prefix>", "place": "<the backend's place>",
//!  "pid": <the holder's process>,
//!  "file": {"path": "<lock file>", "dev": <device>, "ino": <inode>}}   (lock files)
//!  "lock": {"id": "<lock id>", "token": "[rl:<32 hex>]"}               (a server)
//! ```
//!
//! Nothing there is believed unchecked: the entry must be of this
//! process's backend (same folder, same server), its holder an ancestor of
//! this process, and the lock alive (the file still that file and locked by
//! that process; the server's lock of that id still the one its creator
//! token made). A claim that fails a check, or a name in `RELUKKO_HELD`
//! without an entry (what older `relukko run`s set), is ignored with one
//! line on stderr, and the name is locked the ordinary way.
//!
//! Inside a hold, the holders still take turns among themselves: each takes
//! the name's lock file in a folder of that hold's own ([`Local::inside`]),
//! which no one outside it uses.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::backend::local::Local;
use crate::backend::{Backend, Held};
use crate::report::stderr;
use crate::rt::unpoisoned;
use crate::settings::OuterVars;
use relukko_protocol::vars::{HELD, HELD_PROOF};

/// The holds of an ancestor, as its variables claim them.
#[derive(Debug)]
pub(crate) struct Outer {
    /// `RELUKKO_HELD`, as written.
    names: Vec<String>,
    /// The entries of `RELUKKO_HELD_PROOF` that read, and each as written
    /// (passed on to commands this process runs, see [`Outer::passed_on`]).
    entries: Vec<(Entry, Value)>,
    /// Why `RELUKKO_HELD_PROOF` does not read, if it does not.
    unreadable: Option<String>,
}

/// One held lock, as claimed.
#[derive(Debug, Clone)]
struct Entry {
    /// The lock name, with the prefix.
    name: String,
    /// The backend it is held on ([`Backend::place`]).
    place: String,
    /// The process holding it.
    pid: u32,
    identity: Identity,
}

#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "relukko"), allow(dead_code))]
enum Identity {
    /// A lock file.
    File { path: PathBuf, dev: u64, ino: u64 },
    /// A lock on a server.
    Lock { id: String, token: String },
}

impl Outer {
    /// The claims of `vars`; `None` when there are none.
    pub(crate) fn from_vars(vars: &OuterVars) -> Option<Arc<Outer>> {
        if vars.names.is_none() && vars.proof.is_none() {
            return None;
        }
        let names = vars
            .names
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        // Empty is unset: `RELUKKO_HELD_PROOF=` is how a shell drops it.
        let proof = vars.proof.as_deref().filter(|p| !p.trim().is_empty());
        let (entries, unreadable) = match proof.map(parse) {
            None => (Vec::new(), None),
            Some(Ok(entries)) => (entries, None),
            Some(Err(why)) => (Vec::new(), Some(why)),
        };
        Some(Arc::new(Outer {
            names,
            entries,
            unreadable,
        }))
    }

    /// The first of `resources` (lock names; `names` as asked) that a
    /// checked hold of an ancestor covers, and the backend of the holders
    /// inside that hold. Every claim that fails a check is said once.
    pub(crate) async fn cover(
        &self,
        backend: &Backend,
        resources: &[String],
        names: &[String],
    ) -> Option<(usize, Arc<Local>)> {
        let place = backend.place()?;
        for (i, resource) in resources.iter().enumerate() {
            let claims: Vec<&Entry> = self
                .entries
                .iter()
                .map(|(e, _)| e)
                .filter(|e| &e.name == resource)
                .collect();
            if claims.is_empty() {
                let named = self.names.iter().any(|n| n == &names[i] || n == resource);
                if named {
                    let why = match &self.unreadable {
                        Some(why) => format!("{HELD_PROOF} does not read ({why})"),
                        None => format!("{HELD_PROOF} has no entry for it (an older relukko run?)"),
                    };
                    say_once(format!(
                        "{HELD} says an ancestor holds {resource}, but nothing shows that hold is alive: \
                         {why}; locking {resource} the ordinary way, which waits for that holder"
                    ));
                }
                continue;
            }
            for e in claims {
                match check(e, backend, &place).await {
                    Ok(()) => return Some((i, Arc::new(inside(e, backend)))),
                    Err(why) => say_once(format!(
                        "{HELD_PROOF} claims that process {} holds {resource}, but {why}: \
                         ignored; locking {resource} the ordinary way",
                        e.pid
                    )),
                }
            }
        }
        None
    }
}

impl Outer {
    /// The entries to pass on to a command run while this process holds
    /// `own` (lock names): those of other names, so that a `relukko run b`
    /// inside a `relukko run a` does not hide `a`'s hold from its command.
    /// Passed on unchecked: whoever uses one checks it.
    pub(crate) fn passed_on(&self, own: &[String]) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|(e, _)| !own.contains(&e.name))
            .map(|(_, raw)| raw.clone())
            .collect()
    }
}

/// The entry of `held` (on `resource`, at `place`) for `RELUKKO_HELD_PROOF`,
/// held by this process; `None` if nothing identifies it.
pub(crate) fn proof(resource: &str, place: &str, held: &Held) -> Option<Value> {
    let (kind, identity) = match held {
        Held::Skip => return None,
        #[cfg(unix)]
        Held::Local(h) => {
            let (path, dev, ino) = h.identity()?;
            (
                "file",
                json!({ "path": path.to_str()?, "dev": dev, "ino": ino }),
            )
        }
        #[cfg(not(unix))]
        Held::Local(_) => return None,
        #[cfg(feature = "relukko")]
        Held::Remote(h) => {
            let (id, token) = h.identity()?;
            ("lock", json!({ "id": id, "token": token }))
        }
    };
    let mut entry = json!({ "name": resource, "place": place, "pid": std::process::id() });
    entry[kind] = identity;
    Some(entry)
}

/// Removes the folders the holders inside the holds of `proofs` (this
/// process's, on `backend`) took turns in, once nothing may take a turn
/// there any more: the command they were told to has ended. A holder still
/// inside (a process the command left behind) finds its lock file deleted
/// and its lease lost within seconds, as it should: the outer hold ends.
pub(crate) fn remove_inside(proofs: &[Value], backend: &Backend) {
    for e in proofs.iter().filter_map(entry) {
        let _ = std::fs::remove_dir_all(inside(&e, backend).folder());
    }
}

/// The entries of a `RELUKKO_HELD_PROOF` value, or why it does not read.
fn parse(text: &str) -> std::result::Result<Vec<(Entry, Value)>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = value.as_array().ok_or("not a JSON array")?;
    items
        .iter()
        .map(|item| match entry(item) {
            Some(e) => Ok((e, item.clone())),
            None => Err(format!("an entry does not read: {item}")),
        })
        .collect()
}

fn entry(v: &Value) -> Option<Entry> {
    let text = |v: &Value, k: &str| v.get(k)?.as_str().map(str::to_owned);
    let identity = if let Some(f) = v.get("file") {
        Identity::File {
            path: PathBuf::from(text(f, "path")?),
            dev: f.get("dev")?.as_u64()?,
            ino: f.get("ino")?.as_u64()?,
        }
    } else {
        let l = v.get("lock")?;
        Identity::Lock {
            id: text(l, "id")?,
            token: text(l, "token")?,
        }
    };
    Some(Entry {
        name: text(v, "name")?,
        place: text(v, "place")?,
        pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
        identity,
    })
}

/// Whether the hold `e` claims is alive, and one this process may take
/// part in; answers why not.
async fn check(e: &Entry, backend: &Backend, place: &str) -> std::result::Result<(), String> {
    if e.place != place {
        return Err(format!(
            "that hold is on {}, and this process locks on {place}",
            e.place
        ));
    }
    ancestor(e.pid)?;
    match (&e.identity, backend) {
        #[cfg(unix)]
        (Identity::File { path, dev, ino }, _) => {
            crate::backend::local::check_holder(path, *dev, *ino, e.pid)
        }
        #[cfg(not(unix))]
        (Identity::File { .. }, _) => Err("lock files cannot be checked on this system".into()),
        #[cfg(feature = "relukko")]
        (Identity::Lock { id, token }, Backend::Remote(remote)) => {
            remote.check_hold(&e.name, id, token).await
        }
        (Identity::Lock { .. }, _) => Err("it names a server's lock, and this process locks \
                                          without a server"
            .into()),
    }
}

/// The backend of the holders inside the hold `e`: lock files in a folder
/// of that hold's own, under the local lock folder.
fn inside(e: &Entry, backend: &Backend) -> Local {
    let base = match backend {
        Backend::Local(local) => local.folder().to_owned(),
        _ => crate::settings::default_local_dir(),
    };
    let hold = match &e.identity {
        Identity::File { path, dev, ino } => {
            format!("{} file {} {dev} {ino} {}", e.place, path.display(), e.pid)
        }
        Identity::Lock { id, .. } => format!("{} lock {id}", e.place),
    };
    let within = format!("the hold of {} by process {} (an ancestor)", e.name, e.pid);
    Local::inside(&base, &hold, within)
}

/// Whether process `pid` is an ancestor of this one. Where the system does
/// not tell (no `/proc`), it must at least be alive.
fn ancestor(pid: u32) -> std::result::Result<(), String> {
    let not = || Err(format!("process {pid} is not an ancestor of this process"));
    if pid == std::process::id() {
        return not();
    }
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // After the command's closing parenthesis: state, then the parent.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse().ok()
    };
    let Some(mut p) = parent_of(std::process::id()) else {
        return alive(pid);
    };
    for _ in 0..4096 {
        if p == pid {
            return Ok(());
        }
        match parent_of(p) {
            Some(parent) if p > 1 => p = parent,
            _ => break,
        }
    }
    not()
}

#[cfg(unix)]
fn alive(pid: u32) -> std::result::Result<(), String> {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return Err(format!("{pid} is no process id"));
    };
    // SAFETY: signal 0 only checks that the process exists.
    if raw > 0 && unsafe { libc::kill(raw, 0) } == 0 {
        Ok(())
    } else {
        Err(format!("process {pid} is not running"))
    }
}

#[cfg(not(unix))]
fn alive(pid: u32) -> std::result::Result<(), String> {
    Err(format!("whether process {pid} runs cannot be checked here"))
}

/// Says `line` on stderr, once per process: every test of a binary asks,
/// and one line tells what is wrong.
fn say_once(line: String) {
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if unpoisoned(&SAID)
        .get_or_insert_with(HashSet::new)
        .insert(line.clone())
    {
        stderr::line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_reads_back_and_bad_ones_say_why() {
        let text = r#"[{"name":"rig","place":"local /tmp/x","pid":7,"file":{"path":"/tmp/x/rig.lock","dev":1,"ino":2}},
                      {"name":"rig2","place":"relukko http://h","pid":8,"lock":{"id":"i","token":"[rl:t]"}}]"#;
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(matches!(
            &entries[0].0.identity,
            Identity::File { dev: 1, ino: 2, .. }
        ));
        assert!(matches!(&entries[1].0.identity, Identity::Lock { id, .. } if id == "i"));
        let outer = Outer {
            names: Vec::new(),
            entries,
            unreadable: None,
        };
        let passed = outer.passed_on(&["rig".to_owned()]);
        assert_eq!(passed.len(), 1);
        assert_eq!(passed[0]["name"], "rig2");
        assert!(parse("rig").unwrap_err().starts_with("not JSON"));
        assert_eq!(parse("{}").unwrap_err(), "not a JSON array");
        assert!(
            parse(r#"[{"name":"rig"}]"#)
                .unwrap_err()
                .contains("does not read")
        );
    }

    #[test]
    fn only_ancestors_count() {
        assert!(ancestor(std::process::id()).is_err());
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getppid has no preconditions.
            let parent = unsafe { libc::getppid() } as u32;
            assert_eq!(ancestor(parent), Ok(()));
            let child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let not = ancestor(child.id());
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            assert!(not.unwrap_err().contains("not an ancestor"));
        }
    }
}
