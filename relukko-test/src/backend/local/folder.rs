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
//! - permissions are changed, and files truncated, only for files this user
//!   owns. In a file another user created, the holder record is written over
//!   in place, padded to a fixed size, instead.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use crate::error::{Error, Result};
use crate::report::stderr;
use crate::rt::unpoisoned;

/// The longest holder record, in bytes. Records in files of other users are
/// padded to this size, so a longer earlier record never shows through.
pub(super) const RECORD: usize = 2048;

/// Identifies one lock file within this process: the folder's device and
/// inode (whatever path spelling led there) and the file name.
pub(super) type Key = (u64, u64, OsString);

/// A lock file, opened safely.
#[derive(Debug)]
pub(super) struct LockFile {
    pub(super) file: File,
    /// Whether this user owns it (so may truncate it).
    pub(super) owned: bool,
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

    /// The holder recorded in `file_name`, read through a fresh read-only
    /// handle. Only call it while no thread of this process has the file
    /// open (see the turns table): closing a handle drops every lock the
    /// process holds on the file where locks belong to processes (NFS).
    pub(super) fn read_record(&self, file_name: &OsStr) -> Option<String> {
        let file = self.open_file(file_name, false).ok()?;
        read_record(&file)
    }

    /// Says once per folder and process what is odd about it (owned by
    /// another user, on a network file system).
    fn warn_once(&self, warnings: impl FnOnce() -> Vec<String>) {
        let mut warned = unpoisoned(&WARNED);
        if warned.contains(&self.id) {
            return;
        }
        warned.push(self.id);
        drop(warned);
        for w in warnings() {
            stderr::line(&w);
        }
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

/// Writes `text` as the holder record: truncating first in our own files,
/// padded to [`RECORD`] in place in others'.
pub(super) fn write_record(lock: &LockFile, text: &str) -> std::io::Result<()> {
    let mut end = text.len().min(RECORD - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = text.as_bytes()[..end].to_vec();
    if lock.owned {
        lock.file.set_len(0)?;
    } else {
        bytes.resize(RECORD - 1, b' ');
    }
    bytes.push(b'\n');
    write_at(&lock.file, &bytes)
}

/// Empties the holder record (see [`write_record`]).
pub(super) fn clear_record(lock: &LockFile) -> std::io::Result<()> {
    if lock.owned {
        lock.file.set_len(0)
    } else {
        write_at(&lock.file, &[b' '; RECORD])
    }
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

/// What to tell admins of shared machines, in errors and warnings.
#[cfg(unix)]
const ADMIN_HINT: &str = "on a shared machine, have an admin create it as root with mode 1777 \
     (e.g. the tmpfiles.d line `d /tmp/relukko-locks 1777 root root -`)";

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
                         (noticed at release, but then two holders may have overlapped); {ADMIN_HINT}",
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

        /// Opens (creating when `write`) `file_name` in this folder without
        /// following a symlink, and checks it is a regular file with one link.
        pub(super) fn open_file(&self, file_name: &OsStr, write: bool) -> std::io::Result<File> {
            let name = CString::new(file_name.as_bytes()).map_err(std::io::Error::other)?;
            let base = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
            let open = |flags: libc::c_int| {
                // SAFETY: a valid folder handle and a NUL-terminated name; the
                // mode argument is read only with O_CREAT.
                let fd = unsafe {
                    libc::openat(
                        self.handle.as_raw_fd(),
                        name.as_ptr(),
                        flags | base,
                        0o666 as libc::c_uint,
                    )
                };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: `fd` was just opened and is owned by nobody else.
                Ok(unsafe { File::from_raw_fd(fd) })
            };
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
        /// makes it readable and writable by every user if this user owns it.
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
            let owned = meta.uid() == euid();
            if owned && meta.mode() & 0o666 != 0o666 {
                // The umask may have removed write bits for others; best effort.
                let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
            }
            Ok(LockFile { file, owned })
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
