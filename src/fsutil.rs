//! Writing files atomically: write to a temporary name in the same folder, then rename.
//!
//! A crash or an error half-way leaves either the old file or no file, never a truncated one.
//!
//! Writes never follow a symbolic link. The folder is opened one component at a time from the
//! start of the path (`openat` with `O_NOFOLLOW`), creating missing folders on the way, and
//! the temporary file is created through that folder handle, exclusively (`O_CREAT|O_EXCL`,
//! which refuses any existing name, links included) and renamed through it. So a path the
//! sandbox checked cannot be redirected afterwards by a link planted in one of its folders or
//! at the temporary name: such a write fails and touches nothing outside. Paths given by
//! scripts are resolved by the sandbox first, so only a planted link is refused; Rust callers
//! must likewise pass paths whose folders are not symbolic links.
//!
//! The temporary file is removed when the write fails or panics, and
//! [`remove_pending_temps`] (called by the `nuisance` command when a second Ctrl-C ends the
//! process) removes those of writes still under way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Temporary files of writes under way (full paths), for [`remove_pending_temps`].
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Attempts at a fresh temporary name before giving up.
const TEMP_ATTEMPTS: usize = 64;

/// Numbers the temporary names of this process.
static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
    let name = path.file_name().ok_or_else(|| Error::io(path, "not a file name to write"))?;
    let dir_path = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = Dir::open(dir_path)?;
    let (file, tmp) = create_temp(&dir, dir_path, &name.to_string_lossy())?;
    let full = dir_path.join(&tmp);
    let guard = TempGuard { dir: &dir, name: tmp, full };
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(|e| Error::io(path, e))?;
    let file = w.into_inner().map_err(|e| Error::io(path, e.error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    dir.rename(&guard.name, name).map_err(|e| Error::io(path, e))?;
    guard.disarm();
    Ok(())
}

/// Writes bytes atomically.
pub fn atomic_write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |w| {
        w.write_all(bytes)?;
        Ok(())
    })
}

/// Removes the temporary files of writes still under way (for a process about to exit).
pub fn remove_pending_temps() {
    let pending = PENDING.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    for p in pending {
        let _ = std::fs::remove_file(p);
    }
}

/// A fresh temporary file next to `name` in `dir`: `.name.tmp-<pid>-<n>`, created exclusively.
fn create_temp(dir: &Dir, dir_path: &Path, name: &str) -> Result<(File, std::ffi::OsString)> {
    use std::sync::atomic::Ordering;
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = std::ffi::OsString::from(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match dir.create_new(&tmp) {
            Ok(f) => {
                if let Ok(mut p) = PENDING.lock() {
                    p.push(dir_path.join(&tmp));
                }
                return Ok((f, tmp));
            }
            // Something (perhaps a planted link) has this name: never touch it, take another.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(Error::io(dir_path.join(&tmp), e)),
        }
    }
    Err(Error::io(dir_path, format!("no free temporary name ({})", last.map(|e| e.to_string()).unwrap_or_default())))
}

/// Removes the temporary file unless the write completed.
struct TempGuard<'a> {
    dir: &'a Dir,
    name: std::ffi::OsString,
    full: PathBuf,
}

impl TempGuard<'_> {
    fn disarm(self) {
        forget_pending(&self.full);
        std::mem::forget(self);
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = self.dir.remove(&self.name);
        forget_pending(&self.full);
    }
}

fn forget_pending(full: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.retain(|q| q != full);
    }
}

/// A folder opened for writing into, reached without following symbolic links.
#[cfg(unix)]
struct Dir(std::os::fd::OwnedFd);

#[cfg(unix)]
impl Dir {
    /// Opens `path` component by component (creating missing folders), refusing links.
    fn open(path: &Path) -> Result<Dir> {
        use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};
        use rustix::io::Errno;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let start = if path.is_absolute() { "/" } else { "." };
        let mut fd = openat(CWD, start, flags, Mode::empty()).map_err(|e| Error::io(start, e))?;
        let mut so_far = PathBuf::from(start);
        for c in path.components() {
            let part = match c {
                Component::Normal(p) => p,
                Component::ParentDir => std::ffi::OsStr::new(".."),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            };
            so_far.push(part);
            let open = |fd: &std::os::fd::OwnedFd| openat(fd, part, flags | OFlags::NOFOLLOW, Mode::empty());
            let next = match open(&fd) {
                Err(Errno::NOENT) => match mkdirat(&fd, part, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => open(&fd),
                    Err(e) => Err(e),
                },
                other => other,
            };
            fd = match next {
                Ok(f) => f,
                Err(Errno::LOOP | Errno::NOTDIR) => return Err(not_a_folder(&fd, part, &so_far)),
                Err(e) => return Err(Error::io(&so_far, e)),
            };
        }
        Ok(Dir(fd))
    }

    fn create_new(&self, name: &std::ffi::OsStr) -> std::io::Result<File> {
        use rustix::fs::{openat, Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(&self.0, name, flags, Mode::from_raw_mode(0o666))?;
        Ok(File::from(fd))
    }

    fn rename(&self, from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(&self.0, from, &self.0, to)?)
    }

    fn remove(&self, name: &std::ffi::OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.0, name, rustix::fs::AtFlags::empty())?)
    }
}

/// Why `part` (in the folder `fd`) could not be entered: a symbolic link, or not a folder.
#[cfg(unix)]
fn not_a_folder(fd: &std::os::fd::OwnedFd, part: &std::ffi::OsStr, so_far: &Path) -> Error {
    use rustix::fs::{statat, AtFlags, FileType};
    let link = statat(fd, part, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
    if link {
        Error::io(so_far, "is a symbolic link; writes never follow one (was it created after the path was checked?)")
    } else {
        Error::io(so_far, "is not a folder")
    }
}

/// Without `openat`: the folder by path, the temporary file still created exclusively.
#[cfg(not(unix))]
struct Dir(PathBuf);

#[cfg(not(unix))]
impl Dir {
    fn open(path: &Path) -> Result<Dir> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok(Dir(path.to_path_buf()))
    }

    fn create_new(&self, name: &std::ffi::OsStr) -> std::io::Result<File> {
        std::fs::OpenOptions::new().write(true).create_new(true).open(self.0.join(name))
    }

    fn rename(&self, from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> std::io::Result<()> {
        std::fs::rename(self.0.join(from), self.0.join(to))
    }

    fn remove(&self, name: &std::ffi::OsStr) -> std::io::Result<()> {
        std::fs::remove_file(self.0.join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nuisance_atomic_{tag}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn failed_write_leaves_no_file_and_no_temp() {
        let dir = tmpdir("fail");
        let p = dir.join("out.txt");
        let r = atomic_write(&p, |w| {
            w.write_all(b"partial")?;
            Err("boom".into())
        });
        assert!(r.is_err());
        assert!(names(&dir).is_empty(), "temporary file left behind: {:?}", names(&dir));
    }

    #[test]
    fn panicking_write_leaves_no_temp() {
        let dir = tmpdir("panic");
        let p = dir.join("out.txt");
        let r = std::panic::catch_unwind(|| atomic_write(&p, |_| panic!("writer bug")));
        assert!(r.is_err());
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    }

    #[test]
    fn interrupted_write_removes_its_temp() {
        // What the second Ctrl-C does: remove the temporaries of writes under way.
        let dir = tmpdir("interrupt");
        let p = dir.join("out.txt");
        let r = atomic_write(&p, |w| {
            w.write_all(b"half")?;
            remove_pending_temps();
            Ok(())
        });
        assert!(r.is_err(), "the rename finds no temporary file");
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    }

    #[test]
    fn replaces_existing_file_whole() {
        let dir = tmpdir("replace");
        let p = dir.join("out.txt");
        atomic_write_bytes(&p, b"first version, long").unwrap();
        atomic_write_bytes(&p, b"second").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(names(&dir), vec!["out.txt"]);
    }

    #[test]
    fn link_planted_in_a_subfolder_is_not_followed() {
        let dir = tmpdir("sublink");
        let outside = tmpdir("sublink_outside");
        fs::create_dir_all(dir.join("out")).unwrap();
        // `out/sub` was checked as a folder, then replaced by a link to outside.
        symlink(&outside, dir.join("out/sub")).unwrap();
        let e = atomic_write_bytes(&dir.join("out/sub/f.txt"), b"x").unwrap_err();
        assert_eq!(e.kind(), "io");
        assert!(e.to_string().contains("out/sub: is a symbolic link; writes never follow one"), "{e}");
        assert!(names(&outside).is_empty());
        // A link as the write folder itself (`out` → outside) is refused the same way.
        let dir2 = tmpdir("outlink");
        symlink(&outside, dir2.join("out")).unwrap();
        assert!(atomic_write_bytes(&dir2.join("out/f.txt"), b"x").is_err());
        assert!(names(&outside).is_empty());
    }

    #[test]
    fn link_planted_at_the_temporary_name_is_not_followed() {
        let dir = tmpdir("tmplink");
        let outside = tmpdir("tmplink_outside");
        let victim = outside.join("victim.txt");
        fs::write(&victim, b"precious").unwrap();
        // Plant links at the next 32 temporary names (fewer than the 64 attempts, so a free
        // name remains even if parallel tests take a few numbers meanwhile).
        let (pid, c) = (std::process::id(), COUNTER.load(std::sync::atomic::Ordering::Relaxed));
        for n in c..c + 32 {
            symlink(&victim, dir.join(format!(".f.txt.tmp-{pid}-{n}"))).unwrap();
        }
        atomic_write_bytes(&dir.join("f.txt"), b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(dir.join("f.txt")).unwrap(), b"new");
        // the 32 links are untouched, plus the new file
        assert_eq!(names(&dir).len(), 33);
        assert!(fs::symlink_metadata(dir.join(format!(".f.txt.tmp-{pid}-{c}"))).unwrap().file_type().is_symlink());
    }
}
