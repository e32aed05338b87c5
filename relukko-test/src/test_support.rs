//! Helpers for this crate's unit tests.

use std::path::{Path, PathBuf};

/// A fresh, empty folder in the temp folder, removed with everything in it
/// when dropped (also when the test fails), so test runs leave nothing behind.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// `<temp>/relukko-unit-<tag>-<uuid>`, created now.
    pub(crate) fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "relukko-unit-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("create a temp folder");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
