//! The lock folder and its files, opened so that nobody who can write to the
//! folder can turn a lock holder against other files.
//!
//! The default folder is shared by every user of the machine, so anyone may
//! create it first, or plant files in it. On Unix:
//! - the folder is opened with `O_NOFOLLOW` and checked through that handle:
//!   a symlink, or a folder every user can write to without the sticky bit
//!   (anyone could replace lock files), is refused with the fix;
//! - lock files are opened relative to that handle (`openat`), with
//!   `O_NOFOLLOW`, and must be regular files with one link: a planted symlink
//!   or hard link to another file is refused, never written through;
//! - lock files are mode 0644 (made so whatever the umask, when this user
//!   owns them): `flock` needs no write access, so nobody but their owner can
//!   write them; older versions' 0666 files still lock as before;
//! - the holder record is not in the lock file but in a record file of the
//!   holder's own next to it, `<lock file stem>.<uid>.holder`, mode 0600: no
//!   other user can read it (a creator may carry a CI token) or forge it.
//!   Readers take the record of the user whose process holds the lock as
//!   the kernel tells (`/proc/locks` on Linux), so a record another user
//!   planted under their own name is not believed either; elsewhere the
//!   newest record of its file's owner stands in;
//! - a lock file another user (not root) owns can be deleted by them while
//!   it is held: one warning line says so, and the holder watches its file
//!   (see `watch`).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use crate::error::{Error, Result};
use crate::report::stderr;
use crate::rt::unpoisoned;

/// The longest holder record, in bytes, newline included.
pub(super) const RECORD: usize = 2048;

/// Identifies one lock file within this process: the folder's device and
/// inode (whatever path spelling led there) and the file name.
pub(super) type Key = (u64, u64, OsString);

/// A lock file, opened safely.
#[derive(Debug)]
pub(super) struct LockFile {
    pub(super) file: File,
    /// Whether this user owns it (so may empty it of an older version's
    /// record).
    pub(super) owned: bool,
}

/// The record file of user `uid` for the lock file `lock_file`:
/// `<stem>.<uid>.holder` (never `*.lock`, which are the lock files).
pub(super) fn record_name(lock_file: &OsStr, uid: u32) -> OsString {
    let name = lock_file.to_string_lossy();
    let stem = name.strip_suffix(".lock").unwrap_or(&name);
    format!("{stem}.{uid}.holder").into()
}

/// The lock folder, opened and checked.
#[derive(Debug)]
pub(super) struct Folder {
    path: PathBuf,
    #[cfg(unix)]
    handle: File,
    id: (u64, u64),
}

/// Folders already checked for the one-time warnings, by identity.
static WARNED: LazyLock<Mutex<Vec<(u64, u64)>>> = LazyLock::new(|| Mutex::new(Vec::new()));

impl Folder {
    /// The folder's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The key of `file_name` in this folder.
    pub(super) fn key(&self, file_name: &OsStr) -> Key {
        if cfg!(unix) {
            (self.id.0, self.id.1, file_name.to_owned())
        } else {
            // No folder identity: its path spelling stands in (locks there
            // belong to handles, so threads contend anyway).
            (0, 0, self.path.join(file_name).into_os_string())
        }
    }

    /// Says once per folder and process what is odd about it (owned by
    /// another user, on a network file system).
    fn warn_once(&self, warnings: impl FnOnce() -> Vec<String>) {
        warn_once(self.id, warnings);
    }
}

/// Says `warnings` once per process for the file or folder `id` (device,
/// inode).
fn warn_once(id: (u64, u64), warnings: impl FnOnce() -> Vec<String>) {
    let mut warned = unpoisoned(&WARNED);
    if warned.contains(&id) {
        return;
    }
    warned.push(id);
    drop(warned);
    for w in warnings() {
        stderr::line(&w);
    }
}

/// Reads a holder record from an open lock file, without moving its cursor.
pub(super) fn read_record(file: &File) -> Option<String> {
    let mut buf = vec![0; 4096];
    let n = read_at(file, &mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Writes `text` as the holder record into this user's `record` file
/// (see [`Folder::open_record`]), cut to [`RECORD`] bytes.
pub(super) fn write_record(record: &File, text: &str) -> std::io::Result<()> {
    let mut end = text.len().min(RECORD - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = text.as_bytes()[..end].to_vec();
    bytes.push(b'\n');
    record.set_len(0)?;
    write_at(record, &bytes)
}

/// Empties the holder record (see [`write_record`]).
pub(super) fn clear_record(record: &File) -> std::io::Result<()> {
    record.set_len(0)
}

/// An error about the folder itself, naming it and the fix.
fn refused(resource: &str, path: &Path, problem: String) -> Error {
    Error::local(resource, path, std::io::Error::other(problem))
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, 0)
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, 0)
}

#[cfg(windows)]
fn write_at(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        let n = std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], done as u64)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn read_at(mut file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::{Read, Seek};
    file.rewind()?;
    file.read(buf)
}

#[cfg(not(any(unix, windows)))]
fn write_at(mut file: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    file.rewind()?;
    file.write_all(bytes)
}

/// The mode of lock files this user owns: everyone may open them to lock,
/// only their owner may write them.
#[cfg(unix)]
const LOCK_MODE: u32 = 0o644;

/// The mode of record files: their owner's alone.
#[cfg(unix)]
const RECORD_MODE: u32 = 0o600;

/// Who holds a lock file's lock, as the kernel tells.
#[cfg(unix)]
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// A process holds it (its user, if known).
    Held { pid: u32, uid: Option<u32> },
    /// Nobody.
    Free,
    /// The kernel does not say.
    Unknown,
}

/// Who holds the lock of the file `(dev, ino)`, from `/proc/locks`: the
/// writer's (exclusive) lock there, matched by device and inode (or by inode
/// alone if the device numbers disagree, as on btrfs).
#[cfg(target_os = "linux")]
pub(super) fn lock_holder(dev: u64, ino: u64) -> Probe {
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Probe::Unknown;
    };
    match holder_pid(&locks, dev, ino) {
        // 0: a process outside this PID namespace.
        Some(pid) if pid > 0 => {
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata(format!("/proc/{pid}"))
                .ok()
                .map(|m| m.uid());
            Probe::Held { pid, uid }
        }
        Some(_) => Probe::Unknown,
        None => Probe::Free,
    }
}

/// Elsewhere the kernel does not tell.
#[cfg(all(unix, not(target_os = "linux")))]
pub(super) fn lock_holder(_dev: u64, _ino: u64) -> Probe {
    Probe::Unknown
}

/// The pid holding the exclusive lock on `(dev, ino)` in the text of
/// `/proc/locks` (lines like `1: FLOCK  ADVISORY  WRITE 4711 fe:00:1234 0 EOF`;
/// a blocked waiter's has `->` after the number).
#[cfg(target_os = "linux")]
fn holder_pid(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (
        u64::from(libc::major(dev as libc::dev_t)),
        u64::from(libc::minor(dev as libc::dev_t)),
    );
    let mut by_inode = Vec::new();
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] == "->" || fields[3] != "WRITE" {
            continue;
        }
        let Ok(pid) = fields[4].parse::<i64>() else {
            continue;
        };
        let id: Vec<&str> = fields[5].split(':').collect();
        if id.len() != 3 || id[2].parse::<u64>() != Ok(ino) {
            continue;
        }
        let pid = u32::try_from(pid).unwrap_or(0);
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        if hex(id[0]) == Some(major) && hex(id[1]) == Some(minor) {
            return Some(pid);
        }
        by_inode.push(pid);
    }
    match by_inode.as_slice() {
        [pid] => Some(*pid),
        _ => None,
    }
}

/// What to tell admins of shared machines, in errors and warnings.
#[cfg(unix)]
const ADMIN_HINT: &str = "on a shared machine, have an admin create it as root with mode 1777 \
     (e.g. the tmpfiles.d line `d /tmp/relukko-locks 1777 root root -`)";

#[cfg(all(unix, test))]
pub(super) use unix::foreign_lock_file_warning;

#[cfg(unix)]
mod unix {
    use std::ffi::{CString, OsStr};
    use std::fs::{DirBuilder, File, OpenOptions};
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    use super::*;

    /// The effective user of this process.
    fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    impl Folder {
        /// Opens the folder, creating it (mode 1777, like /tmp) if missing,
        /// and checks it; `resource` is for error messages.
        pub(in crate::backend::local) fn open(path: &Path, resource: &str) -> Result<Folder> {
            let handle = match open_dir(path) {
                Ok(h) => h,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    create(path, resource)?;
                    open_dir(path).map_err(|e| not_a_folder(resource, path, e))?
                }
                Err(e) => return Err(not_a_folder(resource, path, e)),
            };
            let meta = handle
                .metadata()
                .map_err(|e| Error::local(resource, path, e))?;
            let mode = meta.mode();
            if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                return Err(refused(
                    resource,
                    path,
                    format!(
                        "the lock folder {} is writable by every user but lacks the sticky bit, \
                         so anyone could delete or replace lock files: run `chmod +t {}`, \
                         or set RELUKKO_LOCAL_DIR to another folder",
                        path.display(),
                        path.display()
                    ),
                ));
            }
            let folder = Folder {
                path: path.to_owned(),
                id: (meta.dev(), meta.ino()),
                handle,
            };
            folder.warn_once(|| {
                let mut warnings = Vec::new();
                let owner = meta.uid();
                if owner != 0 && owner != euid() {
                    warnings.push(format!(
                        "the lock folder {} belongs to user {owner}, who can delete its lock files \
                         (their holders notice within seconds, but two holders may have \
                         overlapped by then); {ADMIN_HINT}",
                        path.display()
                    ));
                }
                if let Some(fs) = super::network_fs(&folder.handle) {
                    warnings.push(format!(
                        "the lock folder {} is on a network file system ({fs}): locks there may be \
                         unreliable or not shared with other machines; set RELUKKO_LOCAL_DIR to a \
                         folder on a local disk, or use a Relukko server to share locks between machines",
                        path.display()
                    ));
                }
                warnings
            });
            Ok(folder)
        }

        /// Opens `file_name` in this folder with `flags`, never following a
        /// symlink nor blocking (a FIFO), closed on exec; `mode` if created.
        fn open_at(
            &self,
            file_name: &OsStr,
            flags: libc::c_int,
            mode: u32,
        ) -> std::io::Result<File> {
            let name = CString::new(file_name.as_bytes()).map_err(std::io::Error::other)?;
            let base = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
            // SAFETY: a valid folder handle and a NUL-terminated name; the
            // mode argument is read only with O_CREAT.
            let fd = unsafe {
                libc::openat(
                    self.handle.as_raw_fd(),
                    name.as_ptr(),
                    flags | base,
                    mode as libc::c_uint,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `fd` was just opened and is owned by nobody else.
            Ok(unsafe { File::from_raw_fd(fd) })
        }

        /// Opens (creating when `write`, mode 0644) `file_name` in this
        /// folder without following a symlink, and checks it is a regular
        /// file with one link.
        pub(super) fn open_file(&self, file_name: &OsStr, write: bool) -> std::io::Result<File> {
            let open = |flags: libc::c_int| self.open_at(file_name, flags, LOCK_MODE);
            let file = if write {
                match open(libc::O_RDWR | libc::O_CREAT) {
                    // Another user's file without write access for us:
                    // locking works read-only.
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        open(libc::O_RDONLY)?
                    }
                    other => other?,
                }
            } else {
                open(libc::O_RDONLY)?
            };
            let meta = file.metadata()?;
            if !meta.file_type().is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            if meta.nlink() != 1 {
                return Err(std::io::Error::other(
                    "it has other hard links, so writing it would change another file",
                ));
            }
            Ok(file)
        }

        /// Opens the lock file `file_name` for locking (see [`Folder::open_file`]);
        /// makes it mode 0644 if this user owns it (every user must be able to
        /// open it to lock it; nobody else needs to write it). One warning
        /// line, once per file, if another user (not root) owns it.
        pub(in crate::backend::local) fn open_lock_file(
            &self,
            resource: &str,
            file_name: &OsStr,
        ) -> Result<LockFile> {
            let path = self.path.join(file_name);
            let file = self.open_file(file_name, true).map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    refused(
                        resource,
                        &path,
                        format!(
                            "{} is a symbolic link, which lock files never are (it may have been \
                             planted to make lock holders overwrite its target): remove it",
                            path.display()
                        ),
                    )
                } else {
                    let hint = format!("{e}; remove {} and try again", path.display());
                    Error::local(resource, &path, std::io::Error::new(e.kind(), hint))
                }
            })?;
            let meta = file
                .metadata()
                .map_err(|e| Error::local(resource, &path, e))?;
            let owner = meta.uid();
            let owned = owner == euid();
            if owned && meta.mode() & 0o7777 != LOCK_MODE {
                // The umask may have removed read bits for others, and older
                // versions made them 0666; best effort.
                let _ = file.set_permissions(std::fs::Permissions::from_mode(LOCK_MODE));
            }
            if !owned && owner != 0 {
                warn_once((meta.dev(), meta.ino()), || {
                    vec![foreign_lock_file_warning(&path, resource, owner)]
                });
            }
            Ok(LockFile { file, owned })
        }

        /// Opens this user's record file for `lock_file` (creating it, mode
        /// 0600); refuses one that is not this user's own regular file with
        /// one link (planted by another user, who could read it).
        pub(in crate::backend::local) fn open_record(
            &self,
            lock_file: &OsStr,
        ) -> std::io::Result<File> {
            let me = euid();
            let name = record_name(lock_file, me);
            let file = self.open_at(&name, libc::O_RDWR | libc::O_CREAT, RECORD_MODE)?;
            let meta = file.metadata()?;
            if !meta.file_type().is_file() || meta.nlink() != 1 || meta.uid() != me {
                return Err(std::io::Error::other(format!(
                    "{} is not this user's own record file: remove it",
                    self.path.join(&name).display()
                )));
            }
            if meta.mode() & 0o7777 != RECORD_MODE {
                file.set_permissions(std::fs::Permissions::from_mode(RECORD_MODE))?;
            }
            Ok(file)
        }

        /// Who holds the lock file `lock_file`: the record of the user whose
        /// process holds its lock, as the kernel tells; if that record is
        /// missing or private to its user, the process and user. Where the
        /// kernel does not tell, the newest record of its own file's owner.
        /// Never opens the lock file (closing a handle of it would drop the
        /// locks this process holds on it, where locks belong to processes).
        pub(in crate::backend::local) fn holder(&self, lock_file: &OsStr) -> Option<String> {
            let name = CString::new(lock_file.as_bytes()).ok()?;
            // SAFETY: an all-zero stat is a valid value to be overwritten.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a valid folder handle, a NUL-terminated name and a
            // buffer of the right type.
            let rc = unsafe {
                libc::fstatat(
                    self.handle.as_raw_fd(),
                    name.as_ptr(),
                    &mut st,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if rc != 0 {
                return None;
            }
            // Field types differ between targets.
            #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
            let (dev, ino) = (st.st_dev as u64, st.st_ino as u64);
            match super::lock_holder(dev, ino) {
                super::Probe::Held { pid, uid } => {
                    let record = uid.and_then(|uid| self.record_of(lock_file, uid));
                    record.or_else(|| {
                        Some(match uid {
                            Some(uid) => format!("pid {pid} of user {}", user_name(uid)),
                            None => format!("pid {pid}"),
                        })
                    })
                }
                super::Probe::Free => None,
                super::Probe::Unknown => self.newest_record(lock_file),
            }
        }

        /// The record of user `uid` for `lock_file`, if that user's own
        /// file holds one and this user may read it.
        fn record_of(&self, lock_file: &OsStr, uid: u32) -> Option<String> {
            let file = self
                .open_at(&record_name(lock_file, uid), libc::O_RDONLY, 0)
                .ok()?;
            let meta = file.metadata().ok()?;
            (meta.file_type().is_file() && meta.uid() == uid)
                .then(|| read_record(&file))
                .flatten()
        }

        /// The newest non-empty record for `lock_file` among the record
        /// files whose owner is the user their name says.
        fn newest_record(&self, lock_file: &OsStr) -> Option<String> {
            let lock = lock_file.to_string_lossy();
            let prefix = format!("{}.", lock.strip_suffix(".lock").unwrap_or(&lock));
            let mut newest: Option<(std::time::SystemTime, String)> = None;
            for entry in std::fs::read_dir(&self.path).ok()?.flatten() {
                let name = entry.file_name();
                let text = name.to_string_lossy();
                let Some(uid) = text
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(".holder"))
                    .and_then(|uid| uid.parse::<u32>().ok())
                else {
                    continue;
                };
                let Some(file) = self.open_at(&name, libc::O_RDONLY, 0).ok() else {
                    continue;
                };
                let Some(meta) = file.metadata().ok().filter(|m| m.uid() == uid) else {
                    continue;
                };
                let (Some(record), Ok(at)) = (read_record(&file), meta.modified()) else {
                    continue;
                };
                if newest.as_ref().is_none_or(|(t, _)| at > *t) {
                    newest = Some((at, record));
                }
            }
            newest.map(|(_, record)| record)
        }
    }

    /// The warning for the lock file at `path` of `resource`, owned by
    /// user `owner` (not root, not this user), who can delete it while held.
    pub(in crate::backend::local) fn foreign_lock_file_warning(
        path: &Path,
        resource: &str,
        owner: u32,
    ) -> String {
        format!(
            "the lock file {} belongs to user {}, who can delete it while it is held, and then \
             another process may take {resource} at once (the holder notices within seconds, \
             when the two may have overlapped already); on a shared machine, have an admin \
             create the lock folder and its lock files as root, or use a Relukko server",
            path.display(),
            user_name(owner)
        )
    }

    /// The user `uid`, by name if it has one: `nobody (uid 65534)`.
    pub(in crate::backend::local) fn user_name(uid: u32) -> String {
        let mut buf = vec![0 as libc::c_char; 4096];
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: valid buffers of the stated sizes; `found` is set to
        // `&pwd` or null.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            // SAFETY: getpwuid_r succeeded: a NUL-terminated name in `buf`.
            let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
            format!("{} (uid {uid})", name.to_string_lossy())
        } else {
            format!("uid {uid}")
        }
    }

    /// Opens a folder without following a symlink.
    fn open_dir(path: &Path) -> std::io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
    }

    /// Creates the folder (and its parents); a folder this process created
    /// is made mode 1777 whatever the umask, so every user can add lock files.
    fn create(path: &Path, resource: &str) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::local(resource, parent, e))?;
        }
        match DirBuilder::new().mode(0o1777).create(path) {
            Ok(()) => {
                let dir = open_dir(path).map_err(|e| not_a_folder(resource, path, e))?;
                let _ = dir.set_permissions(std::fs::Permissions::from_mode(0o1777));
                Ok(())
            }
            // Another process was first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::local(resource, path, e)),
        }
    }

    /// Explains why `path` could not be opened as a folder.
    fn not_a_folder(resource: &str, path: &Path, e: std::io::Error) -> Error {
        let symlink = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if symlink {
            refused(
                resource,
                path,
                format!(
                    "the lock folder {} is a symbolic link, which could lead lock files anywhere: \
                     remove it, or set RELUKKO_LOCAL_DIR to the real folder; {ADMIN_HINT}",
                    path.display()
                ),
            )
        } else if e.raw_os_error() == Some(libc::ENOTDIR) {
            refused(
                resource,
                path,
                format!(
                    "{} is not a folder: remove it, or set RELUKKO_LOCAL_DIR to a folder",
                    path.display()
                ),
            )
        } else {
            Error::local(resource, path, e)
        }
    }
}

/// The name of the network file system `dir` is on, if it is on one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn network_fs(dir: &File) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle and a buffer of the right type.
    if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut buf) } != 0 {
        return None;
    }
    // `f_type`'s type differs between targets; the magic numbers are 32 bits.
    #[allow(clippy::unnecessary_cast)]
    let magic = buf.f_type as u32;
    Some(match magic {
        0x6969 => "nfs",
        0x517b | 0xff53_4d42 | 0xfe53_4d42 => "smb/cifs",
        0x5346_414f | 0x6b41_4653 => "afs",
        0x7375_7245 => "coda",
        0x00c3_6400 => "ceph",
        0x0102_1997 => "9p",
        0x0116_1970 => "gfs2",
        0x7461_636f => "ocfs2",
        0x0bd0_0bd0 => "lustre",
        0x564c => "ncp",
        _ => return None,
    })
}

/// The name of the network file system `dir` is on, if it is on one.
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn network_fs(dir: &File) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle and a buffer of the right type.
    if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut buf) } != 0 {
        return None;
    }
    let name: Vec<u8> = buf
        .f_fstypename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    ["nfs", "smbfs", "afpfs", "webdav", "cifs"]
        .into_iter()
        .find(|fs| name == fs.as_bytes())
}

/// Not detected on other systems.
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    ))
))]
fn network_fs(_dir: &File) -> Option<&'static str> {
    None
}

#[cfg(not(unix))]
impl Folder {
    /// Creates the folder if missing; refuses one that is a symlink (or
    /// other reparse point).
    pub(super) fn open(path: &Path, resource: &str) -> Result<Folder> {
        std::fs::create_dir_all(path).map_err(|e| Error::local(resource, path, e))?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| Error::local(resource, path, e))?;
        if meta.file_type().is_symlink() {
            return Err(refused(
                resource,
                path,
                format!(
                    "the lock folder {} is a symbolic link or junction, which could lead lock files \
                     anywhere: remove it, or set RELUKKO_LOCAL_DIR to the real folder",
                    path.display()
                ),
            ));
        }
        let folder = Folder {
            path: path.to_owned(),
            id: (0, 0),
        };
        folder.warn_once(Vec::new);
        Ok(folder)
    }

    /// Opens `file_name` without following a symlink.
    fn open_file(&self, file_name: &OsStr, write: bool) -> std::io::Result<File> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true);
        if write {
            opts.write(true).create(true).truncate(false);
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            // FILE_FLAG_OPEN_REPARSE_POINT: open a symlink itself, not its target.
            opts.custom_flags(0x0020_0000);
        }
        let path = self.path.join(file_name);
        let file = match opts.open(&path) {
            Err(e) if write && e.kind() == std::io::ErrorKind::PermissionDenied => {
                return self.open_file(file_name, false);
            }
            other => other?,
        };
        if !file.metadata()?.file_type().is_file() {
            return Err(std::io::Error::other(
                "not a regular file (a symbolic link or junction?): remove it",
            ));
        }
        Ok(file)
    }

    /// Opens the lock file `file_name` for locking.
    pub(super) fn open_lock_file(&self, resource: &str, file_name: &OsStr) -> Result<LockFile> {
        let path = self.path.join(file_name);
        let file = self
            .open_file(file_name, true)
            .map_err(|e| Error::local(resource, &path, e))?;
        Ok(LockFile { file, owned: true })
    }

    /// Opens the record file for `lock_file` (no users to tell apart here).
    pub(super) fn open_record(&self, lock_file: &OsStr) -> std::io::Result<File> {
        self.open_file(&record_name(lock_file, 0), true)
    }

    /// The holder recorded for `lock_file`.
    pub(super) fn holder(&self, lock_file: &OsStr) -> Option<String> {
        let file = self.open_file(&record_name(lock_file, 0), false).ok()?;
        read_record(&file)
    }
}

/// Whether `path` still leads to the open `file` (not deleted, not replaced).
#[cfg(unix)]
pub(super) fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Whether `path` still leads to the open `file`: same volume serial number
/// and file index.
#[cfg(windows)]
pub(super) fn is_current(file: &File, path: &Path) -> bool {
    use std::os::windows::fs::OpenOptionsExt;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };

    fn identity(file: &File) -> Option<(u32, u32, u32)> {
        // SAFETY: an all-zero struct is a valid value to be overwritten.
        let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a valid open handle and a buffer of the right type.
        let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as _, &mut info) };
        (ok != 0).then_some((
            info.dwVolumeSerialNumber,
            info.nFileIndexHigh,
            info.nFileIndexLow,
        ))
    }

    // No access rights needed to ask for identity; every sharing mode, so
    // holders and waiters are not disturbed; the reparse point itself.
    let named = std::fs::OpenOptions::new()
        .access_mode(0)
        .share_mode(0x7)
        .custom_flags(0x0020_0000)
        .open(path);
    match named {
        Ok(named) => identity(file).is_some_and(|a| identity(&named) == Some(a)),
        Err(_) => false,
    }
}

/// No file identity is available here: the check is skipped.
#[cfg(not(any(unix, windows)))]
pub(super) fn is_current(_file: &File, _path: &Path) -> bool {
    true
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The exclusive holder of the file, not a waiter (`->`), a reader or
    /// another file; the device must agree unless the inode alone is unique
    /// (btrfs reports other device numbers to `stat`).
    #[test]
    fn the_holder_pid_is_read_from_proc_locks() {
        let dev = libc::makedev(0xfe, 0x01);
        let locks = "1: FLOCK  ADVISORY  WRITE 11 fe:01:99 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 12 fe:01:42 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 13 fe:01:42 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 14 08:02:42 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 15 fe:01:42 0 EOF\n";
        assert_eq!(holder_pid(locks, dev, 42), Some(15));
        assert_eq!(holder_pid(locks, dev, 99), Some(11));
        assert_eq!(holder_pid(locks, dev, 7), None);
        // Another device but the only lock on that inode.
        assert_eq!(holder_pid(locks, libc::makedev(0, 0x2b), 99), Some(11));
        let ours = "5: POSIX  ADVISORY  WRITE 16 00:2b:77 0 EOF\n";
        assert_eq!(holder_pid(ours, libc::makedev(0, 0x2b), 77), Some(16));
    }
}
