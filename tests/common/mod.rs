//! Helpers shared by the integration tests: unique segment names and a guard
//! that destroys a segment (and removes stray files) when a test ends.
#![allow(dead_code)] // each test binary uses a different subset

use procreg::Registry;
use std::path::{Path, PathBuf};

/// A `shm:` url unique to this test and this process.
pub fn shm_url(name: &str) -> String {
    format!("shm:t-{name}-{}", std::process::id())
}

/// A `file:` url (and its path) under the temp dir, unique to this test and process.
pub fn file_url(name: &str) -> (String, PathBuf) {
    let path = std::env::temp_dir().join(format!("procreg-t-{name}-{}.reg", std::process::id()));
    (format!("file:{}", path.display()), path)
}

/// Destroys its segment on drop (also when the test fails), and removes any
/// extra files it was told about. A leftover of an earlier run with the same
/// name is removed on construction.
pub struct SegGuard {
    pub url: String,
    extra: Vec<PathBuf>,
    /// When false (a segment the test deliberately broke), a failing destroy
    /// on drop is not an error.
    pub must_destroy: bool,
}

impl SegGuard {
    pub fn new(url: &str) -> SegGuard {
        let _ = Registry::destroy(url);
        if let Some(p) = url.strip_prefix("file:") {
            let _ = std::fs::remove_file(p);
        }
        SegGuard {
            url: url.to_owned(),
            extra: Vec::new(),
            must_destroy: true,
        }
    }

    /// Also remove `path` (a non-segment file, link, …) at the end.
    pub fn also_remove(mut self, path: &Path) -> SegGuard {
        let _ = std::fs::remove_file(path);
        self.extra.push(path.to_path_buf());
        self
    }

    /// The test destroys the segment itself; a failing destroy on drop is fine.
    pub fn destroyed_by_test(mut self) -> SegGuard {
        self.must_destroy = false;
        self
    }

    /// The segment is expected to be unusable; just remove its file at the end.
    pub fn broken(mut self) -> SegGuard {
        self.must_destroy = false;
        if let Some(p) = self.url.strip_prefix("file:") {
            self.extra.push(PathBuf::from(p));
        }
        self
    }
}

impl Drop for SegGuard {
    fn drop(&mut self) {
        let r = Registry::destroy(&self.url);
        for p in &self.extra {
            let _ = std::fs::remove_file(p);
        }
        if self.must_destroy && !std::thread::panicking() {
            if let Err(e) = r {
                panic!("destroying {} at the end of the test failed: {e}", self.url);
            }
        }
    }
}
