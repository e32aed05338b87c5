//! [`TempDir`]: a temp folder that is removed when the test is done with it,
//! so the suites leave nothing behind in the system's temp folder.

use std::path::{Path, PathBuf};

/// A fresh, empty folder in the temp folder, removed with everything in it
/// when dropped (also when the test fails).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<temp>/relukko-e2e-<tag>-<uuid>`, created now.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "relukko-e2e-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
