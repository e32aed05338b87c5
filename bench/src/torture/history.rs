//! The history of a torture run: one file every process appends to.
//!
//! Each line is written with a single `write` on a file opened with
//! `O_APPEND`, so the file's order is the real order of the events across all
//! processes; durations come from the wall-clock time each line carries (one
//! clock for every process of the machine). A line is
//! `<unix-nanos> <pid> <event> <args...>`, `pid` being the process the line is
//! about (the worker, or the target of a fault).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// An open history file; cheap to share by reference across threads.
#[derive(Debug)]
pub struct Writer {
    file: File,
}

impl Writer {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Writer { file })
    }

    /// Appends `<now> <pid> <event> <args>` in one write.
    pub fn line(&self, pid: u32, event: &str, args: &str) {
        let text = format!("{} {pid} {event} {args}\n", now_ns());
        // One write_all of a short line on an O_APPEND file is one write(2).
        if let Err(e) = (&self.file).write_all(text.as_bytes()) {
            eprintln!("relukko-torture: cannot append to the history: {e}");
        }
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unix nanoseconds.
    pub t: u64,
    /// The process the line is about.
    pub pid: u32,
    /// What happened (`wait`, `enter`, `fault`, ...).
    pub event: String,
    /// The rest, split on spaces.
    pub args: Vec<String>,
}

impl Line {
    /// The `i`-th argument, or `""`.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map(String::as_str).unwrap_or("")
    }

    /// The `i`-th argument as a number, or 0.
    pub fn num(&self, i: usize) -> u64 {
        self.arg(i).parse().unwrap_or(0)
    }
}

/// Parses a history; lines that do not parse (none should) are skipped.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let t = it.next()?.parse().ok()?;
            let pid = it.next()?.parse().ok()?;
            let event = it.next()?.to_owned();
            let args = it.filter(|a| !a.is_empty()).map(str::to_owned).collect();
            Some(Line {
                t,
                pid,
                event,
                args,
            })
        })
        .collect()
}
