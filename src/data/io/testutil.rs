//! Paths for the I/O tests: committed fixtures, the optional shared data folder, temp dirs.

use std::path::PathBuf;

/// A file committed under `tests/data/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// A file of the shared data folder `../shared/data/`, or `None` (with a note) when that
/// folder is missing, e.g. on a fresh clone. This is the only conditional skip in the tests.
pub(crate) fn shared(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !dir.is_dir() {
        eprintln!("skipping: {} not found (shared data folder absent)", dir.display());
        return None;
    }
    Some(dir.join(name))
}

/// A fresh, empty temporary folder unique to this process and `tag`.
pub(crate) fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nuisance_io_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}
