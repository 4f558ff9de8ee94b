//! Which files a script may read and write.
//!
//! A script shared by a colleague must not be able to harm the user. The rule:
//!
//! | access | allowed under |
//! |---|---|
//! | read   | the script's folder, the current folder, every `--allow-read PATH`, and every write root |
//! | write  | every `--allow-write PATH`; without any, the folder `out/` in the current folder |
//!
//! Relative paths in scripts are resolved against the current folder. A path is checked after
//! resolving `..` and symbolic links (of the file itself or of any existing ancestor), so
//! neither can escape a root. The default write folder `out/` may be a symbolic link only to a
//! folder inside the current folder; otherwise nothing is writable until `--allow-write` names
//! a folder. The write itself ([`crate::fsutil::atomic_write`]) follows no symbolic link, so a
//! link planted after the check cannot redirect it; nor can it redirect a read: inside a
//! session, reads open the resolved path without following links
//! ([`crate::io_guard::checked_paths`]). Only regular files are read ([`crate::io_guard`]). Scripts have no other way to reach the system: no command execution
//! and no network functions are registered.

use std::path::{Component, Path, PathBuf};

use crate::data::chain::Shard;
use crate::error::{Error, Result};

/// The allowed roots, canonicalised.
#[derive(Clone, Debug)]
pub struct Sandbox {
    cwd: PathBuf,
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    /// Why there is no write root (the default `out/` was refused), for the error message.
    no_write: Option<String>,
    /// The shard of a sharded run (`nuisance run --shard I/N`): its written files get the
    /// shard's tag ([`Shard::file_name`]) so the shards' files do not collide.
    shard: Shard,
}

impl Sandbox {
    /// Roots for a script in `script_dir` run from the current folder, plus the user's
    /// `--allow-read` and `--allow-write` paths.
    pub fn new(script_dir: Option<&Path>, allow_read: &[PathBuf], allow_write: &[PathBuf]) -> Result<Self> {
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        Self::with_cwd(&cwd, script_dir, allow_read, allow_write)
    }

    /// Like [`Sandbox::new`] with an explicit current folder (for tests).
    pub fn with_cwd(
        cwd: &Path,
        script_dir: Option<&Path>,
        allow_read: &[PathBuf],
        allow_write: &[PathBuf],
    ) -> Result<Self> {
        let cwd = resolve(cwd, cwd)?;
        let mut read = vec![cwd.clone()];
        if let Some(d) = script_dir {
            read.push(resolve(&cwd, d)?);
        }
        for p in allow_read {
            read.push(resolve(&cwd, p)?);
        }
        let (write, no_write) = if allow_write.is_empty() {
            match default_out(&cwd) {
                Ok(out) => (vec![out], None),
                Err(why) => (Vec::new(), Some(why)),
            }
        } else {
            (allow_write.iter().map(|p| resolve(&cwd, p)).collect::<Result<_>>()?, None)
        };
        read.extend(write.iter().cloned());
        Ok(Sandbox { cwd, read, write, no_write, shard: Shard::WHOLE })
    }

    /// No restriction at all: for the Rust API and trusted tools (benchmarks).
    pub fn unrestricted() -> Self {
        Sandbox {
            cwd: std::env::current_dir().unwrap_or_default(),
            read: vec![PathBuf::from("/")],
            write: vec![PathBuf::from("/")],
            no_write: None,
            shard: Shard::WHOLE,
        }
    }

    /// The sandbox of shard `shard` of a sharded run: every file written gets the shard's tag
    /// before its extension (`out/flips.parquet` → `out/flips.shard-1-of-4.parquet`), and a
    /// file read under a write root is the shard's own copy when the shard wrote one.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// The resolved path of `p` if reading it is allowed (in a sharded run, the shard's own
    /// copy of a file under a write root when it exists).
    pub fn check_read(&self, p: &str) -> Result<PathBuf> {
        let full = self.check(p, &self.read, "read", "reading")?;
        if !self.shard.is_whole() && self.write.iter().any(|r| full.starts_with(r)) {
            let own = self.tagged(&full);
            if own.is_file() {
                return Ok(own);
            }
        }
        Ok(full)
    }

    /// The resolved path of `p` if writing it is allowed (in a sharded run, with the shard's
    /// tag in the file name).
    pub fn check_write(&self, p: &str) -> Result<PathBuf> {
        let full = self.check(p, &self.write, "write", "writing")?;
        Ok(if self.shard.is_whole() { full } else { self.tagged(&full) })
    }

    /// `full` with the shard's tag in its file name.
    fn tagged(&self, full: &Path) -> PathBuf {
        match full.file_name() {
            Some(name) => full.with_file_name(self.shard.file_name(&name.to_string_lossy())),
            None => full.to_path_buf(),
        }
    }

    /// The write roots (for messages and docs).
    pub fn write_roots(&self) -> &[PathBuf] {
        &self.write
    }

    fn check(&self, p: &str, roots: &[PathBuf], which: &'static str, action: &'static str) -> Result<PathBuf> {
        if p.is_empty() {
            return Err(Error::arg(action, "the path is empty"));
        }
        let full = resolve(&self.cwd, Path::new(p))?;
        if roots.iter().any(|r| full.starts_with(r)) {
            return Ok(full);
        }
        let mut allowed = roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
        if let (true, Some(why)) = (roots.is_empty(), &self.no_write) {
            allowed = why.clone();
        }
        Err(Error::Sandbox { action, path: PathBuf::from(p), which, allowed })
    }
}

/// The default write root `cwd/out`, resolved; refused (with the reason) when it is a symbolic
/// link that leads outside `cwd` or cannot be resolved.
fn default_out(cwd: &Path) -> std::result::Result<PathBuf, String> {
    let lexical = cwd.join("out");
    match resolve(cwd, Path::new("out")) {
        Ok(out) if out.starts_with(cwd) => Ok(out),
        Ok(out) => Err(format!(
            "none: {} is a symbolic link to {}, outside the current folder",
            lexical.display(),
            out.display()
        )),
        Err(e) => Err(format!("none: {} is refused ({e})", lexical.display())),
    }
}

/// Absolute, `..`-free, symlink-free form of `p` (relative to `cwd`), for paths that may not
/// exist yet: the longest existing ancestor is canonicalised and the rest appended.
pub fn resolve(cwd: &Path, p: &Path) -> Result<PathBuf> {
    let joined = if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
    let lexical = normalize(&joined);
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(c) => {
                let mut out = c;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            // Only a component that truly does not exist (and is not a dangling or looping
            // link) may be appended unresolved; any other failure is refused.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && existing.symlink_metadata().is_err() => {
                match (existing.file_name().map(|s| s.to_os_string()), existing.parent()) {
                    (Some(name), Some(parent)) => {
                        rest.push(name);
                        existing = parent.to_path_buf();
                    }
                    _ => return Ok(lexical),
                }
            }
            Err(e) => return Err(Error::io(&existing, format!("cannot resolve the path: {e}"))),
        }
    }
}

/// Removes `.` and resolves `..` textually (never above the root).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nuisance_sandbox_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("work/scripts")).unwrap();
        fs::create_dir_all(d.join("secret")).unwrap();
        fs::write(d.join("secret/key.txt"), "x").unwrap();
        d.canonicalize().unwrap()
    }

    #[test]
    fn default_write_root_is_out_in_cwd() {
        let d = tmp("out");
        let cwd = d.join("work");
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        assert_eq!(sb.check_write("out/a/b.png").unwrap(), cwd.join("out/a/b.png"));
        let e = sb.check_write("b.png").unwrap_err();
        assert_eq!(e.kind(), "sandbox");
        assert!(e.to_string().starts_with("access denied: writing 'b.png' is outside the allowed write paths"));
    }

    #[test]
    fn dotdot_cannot_escape() {
        let d = tmp("dotdot");
        let cwd = d.join("work");
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        assert!(sb.check_write("out/../../secret/key.txt").is_err());
        assert!(sb.check_read("../secret/key.txt").is_err());
        assert!(sb.check_read("scripts/../scripts").is_ok());
    }

    #[test]
    fn symlink_cannot_escape() {
        let d = tmp("link");
        let cwd = d.join("work");
        fs::create_dir_all(cwd.join("out")).unwrap();
        std::os::unix::fs::symlink(d.join("secret"), cwd.join("out/sneaky")).unwrap();
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        assert!(sb.check_write("out/sneaky/key.txt").is_err());
        assert!(sb.check_read("out/sneaky/key.txt").is_err());
        assert!(sb.check_write("out/fine.txt").is_ok());
    }

    #[test]
    fn dangling_symlink_is_refused() {
        let d = tmp("dangling");
        let cwd = d.join("work");
        fs::create_dir_all(cwd.join("out")).unwrap();
        std::os::unix::fs::symlink(d.join("secret/not_yet.txt"), cwd.join("out/later.txt")).unwrap();
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        assert!(sb.check_write("out/later.txt").is_err());
    }

    #[test]
    fn out_linking_outside_the_current_folder_is_refused() {
        let d = tmp("outlink");
        let cwd = d.join("work");
        std::os::unix::fs::symlink(d.join("secret"), cwd.join("out")).unwrap();
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        let e = sb.check_write("out/key.txt").unwrap_err();
        assert_eq!(e.kind(), "sandbox");
        let want = format!(
            "access denied: writing 'out/key.txt' is outside the allowed write paths (none: {} is a symbolic \
             link to {}, outside the current folder)",
            cwd.join("out").display(),
            d.join("secret").display()
        );
        assert_eq!(e.to_string(), want);
        assert!(sb.check_read("out/key.txt").is_err());
        // A link to a folder inside the current folder is fine: that folder is the root.
        let d = tmp("outlink_inside");
        let cwd = d.join("work");
        fs::create_dir_all(cwd.join("results")).unwrap();
        std::os::unix::fs::symlink(cwd.join("results"), cwd.join("out")).unwrap();
        let sb = Sandbox::with_cwd(&cwd, None, &[], &[]).unwrap();
        assert_eq!(sb.check_write("out/a.csv").unwrap(), cwd.join("results/a.csv"));
    }

    #[test]
    fn allow_flags_extend_roots() {
        let d = tmp("allow");
        let cwd = d.join("work");
        let sb = Sandbox::with_cwd(&cwd, None, &[d.join("secret")], &[d.join("secret")]).unwrap();
        assert!(sb.check_read("../secret/key.txt").is_ok());
        assert!(sb.check_write("../secret/new.txt").is_ok());
        // With an explicit --allow-write, out/ is no longer writable.
        assert!(sb.check_write("out/x.txt").is_err());
    }

    #[test]
    fn script_dir_is_readable() {
        let d = tmp("scriptdir");
        let sb = Sandbox::with_cwd(&d.join("work/scripts"), Some(&d.join("secret")), &[], &[]).unwrap();
        assert!(sb.check_read(d.join("secret/key.txt").to_str().unwrap()).is_ok());
    }
}
