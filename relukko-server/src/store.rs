//! Locks kept in a database file (`relukko-server --db PATH`), so a restart
//! does not forget them.
//!
//! The store is `redb`: an embedded key-value store in pure Rust (no C
//! toolchain, no dependencies of its own to build), crash-safe by design
//! (copy-on-write pages, checksummed commits), and a commit with its default
//! durability is on disk when `commit` returns. Each lock is one row, its id
//! to its JSON, so a stored lock reads back exactly as it was answered.
//!
//! The memory maps in `state` stay the source for reads; every change is
//! written and committed here first, under the same mutex, and only then
//! applied in memory and answered. A failed write leaves both untouched.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

use relukko_protocol::Lock;

/// Opens the database file, creating it (and its missing folders) readable
/// by this user only, whatever the umask: it holds every creator and client
/// address. An existing file that others can read is used as it is, with one
/// warning saying how to fix it.
fn open_owner_only(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
            && !folder.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)?;
        }
        // The mode applies only when the file is created.
        options.mode(0o600);
        let file = options.open(path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                target: "relukko::server",
                "database {} can be read by other users (mode {:o}); `chmod 600 {}` keeps \
                 its creators and client addresses to yourself",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)?;
        }
        options.open(path)
    }
}

/// Lock id (as `u128`) to the lock's JSON.
const LOCKS: TableDefinition<'_, u128, &str> = TableDefinition::new("locks");

/// Why the database could not be read or written.
#[derive(Debug)]
pub(crate) struct StoreError(pub(crate) String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An open database file.
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` and reads every lock in it.
    /// Fails if another process has the file open.
    pub(crate) fn open(path: &Path) -> Result<(Store, Vec<Lock>), StoreError> {
        let fail = |what: &str, e: &dyn fmt::Display| {
            StoreError(format!("database {}: {what}: {e}", path.display()))
        };
        let file = open_owner_only(path).map_err(|e| fail("cannot open", &e))?;
        let db = Database::builder().create_file(file).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "database {}: another process has it open (another relukko-server on the \
                 same --db?); stop that one, or give this server another file",
                path.display()
            )),
            e => fail("cannot open", &e),
        })?;
        // Make sure the table exists, so a new file reads as empty.
        let tx = db.begin_write().map_err(|e| fail("cannot write", &e))?;
        tx.open_table(LOCKS).map_err(|e| fail("cannot write", &e))?;
        tx.commit().map_err(|e| fail("cannot commit", &e))?;

        let tx = db.begin_read().map_err(|e| fail("cannot read", &e))?;
        let table = tx.open_table(LOCKS).map_err(|e| fail("cannot read", &e))?;
        let mut locks = Vec::new();
        for row in table.iter().map_err(|e| fail("cannot read", &e))? {
            let (id, json) = row.map_err(|e| fail("cannot read", &e))?;
            let lock: Lock = serde_json::from_str(json.value()).map_err(|e| {
                fail(
                    &format!("lock {} is not readable", Uuid::from_u128(id.value())),
                    &e,
                )
            })?;
            locks.push(lock);
        }
        drop(table);
        drop(tx);
        let store = Store {
            db,
            path: path.to_owned(),
        };
        Ok((store, locks))
    }

    /// Writes (inserts or replaces) `lock`; on disk when this returns `Ok`.
    pub(crate) fn put(&self, lock: &Lock) -> Result<(), StoreError> {
        let json = serde_json::to_string(lock).map_err(|e| self.fail(&e))?;
        self.write(|table| {
            table.insert(lock.id.as_u128(), json.as_str())?;
            Ok(())
        })
    }

    /// Removes the locks with `ids` in one commit; on disk when this returns `Ok`.
    pub(crate) fn remove(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(|table| {
            for id in ids {
                table.remove(id.as_u128())?;
            }
            Ok(())
        })
    }

    fn write(
        &self,
        change: impl FnOnce(&mut redb::Table<'_, u128, &'static str>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.fail(&e))?;
        {
            let mut table = tx.open_table(LOCKS).map_err(|e| self.fail(&e))?;
            change(&mut table).map_err(|e| self.fail(&e))?;
        }
        // Durability::Immediate (the default): persistent once commit returns.
        tx.commit().map_err(|e| self.fail(&e))
    }

    fn fail(&self, e: &dyn fmt::Display) -> StoreError {
        StoreError(format!("database {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(name: &str) -> Lock {
        let now = super::super::clock::now();
        Lock {
            id: Uuid::new_v4(),
            lock_name: name.to_owned(),
            creator: Some("me".to_owned()),
            ip: Some("127.0.0.1".to_owned()),
            expires_at: now + time::Duration::minutes(10),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn what_is_put_comes_back_and_what_is_removed_does_not() {
        let dir = std::env::temp_dir().join(format!("relukko-store-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("locks.redb");
        let (a, b) = (lock("a"), lock("b"));
        {
            let (store, loaded) = Store::open(&path).unwrap();
            assert!(loaded.is_empty());
            assert!(format!("{store:?}").contains("locks.redb"), "{store:?}");
            store.put(&a).unwrap();
            store.put(&b).unwrap();
            let mut b2 = b.clone();
            b2.creator = Some("you".to_owned());
            store.put(&b2).unwrap();
            store.remove(&[a.id]).unwrap();
        }
        let (_store, loaded) = Store::open(&path).unwrap();
        let mut expected = b.clone();
        expected.creator = Some("you".to_owned());
        assert_eq!(loaded, vec![expected]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
