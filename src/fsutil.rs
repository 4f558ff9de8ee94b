//! Writing files atomically: write to a temporary name in the same folder, then rename.
//!
//! A crash or an error half-way leaves either the old file or no file, never a truncated one.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` through `write`, atomically. Parent folders are created.
///
/// ```
/// let dir = std::env::temp_dir().join("nuisance_doc_atomic");
/// let p = dir.join("a.txt");
/// nuisance::fsutil::atomic_write(&p, |w| { w.write_all(b"hello")?; Ok(()) }).unwrap();
/// assert_eq!(std::fs::read_to_string(&p).unwrap(), "hello");
/// # use std::io::Write;
/// ```
pub fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_name(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::new(file);
        write(&mut w).map_err(|e| Error::io(path, e))?;
        let file = w.into_inner().map_err(|e| Error::io(path, e.error()))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes bytes atomically.
pub fn atomic_write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |w| {
        w.write_all(bytes)?;
        Ok(())
    })
}

/// `dir/.name.tmp-<pid>-<n>`: hidden, unique per process and call.
fn temp_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file_and_no_temp() {
        let dir = std::env::temp_dir().join(format!("nuisance_atomic_{}", std::process::id()));
        let p = dir.join("out.txt");
        let r = atomic_write(&p, |w| {
            w.write_all(b"partial")?;
            Err("boom".into())
        });
        assert!(r.is_err());
        assert!(!p.exists());
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert!(leftovers.is_empty(), "temporary file left behind");
    }

    #[test]
    fn replaces_existing_file_whole() {
        let dir = std::env::temp_dir().join(format!("nuisance_atomic2_{}", std::process::id()));
        let p = dir.join("out.txt");
        atomic_write_bytes(&p, b"first version, long").unwrap();
        atomic_write_bytes(&p, b"second").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "second");
    }
}
