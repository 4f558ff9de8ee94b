//! What a file may make nuisance do: the one boundary every reader goes through.
//!
//! * **Only regular files are read.** [`open_regular`] refuses named pipes, character and
//!   block devices, sockets and folders before opening them (a read from a pipe or a terminal
//!   would block forever), and opens with `O_NONBLOCK` and checks again on the open handle, so
//!   a file swapped for a pipe between the two checks is refused too.
//! * **Checked paths are read through one handle.** Inside a session ([`checked_paths`]), a
//!   path is opened component by component without following links (the sandbox resolved
//!   them all), and readers that need a second handle or a name use [`reopen`] and
//!   [`fd_path`] on the first, so what is read is what was checked.
//! * **Sizes read from a file are checked before anything is allocated.** A size is turned into
//!   bytes with overflow checks ([`bytes_for`]); a negative size is an error; and
//!   [`check_alloc`] is the one rule for what a read may allocate: a request is refused when it
//!   is larger than the *read limit* (a fixed per-read cap, 8 GiB unless changed with
//!   [`set_read_limit`]; a format error), or when it does not fit in what is left of the
//!   session memory budget of the calling thread ([`crate::memory::check`]; a memory error
//!   naming the file). Readers call it with the size of everything they will decode, before
//!   decoding. Callers also compare sizes with the file's length, which is the other thing a
//!   size must be justified by.
//! * **Panics in third-party parsers stay inside.** [`guarded`] runs a call into the parquet or
//!   ROOT crates under `catch_unwind`; a panic becomes [`Error::Format`] naming the file, and
//!   the panic message is not printed (a hook, installed once and chained to the previous one,
//!   stays silent while the current thread is inside `guarded`).
//!
//! Allocation failure aborts a Rust process (it cannot be caught), so the checks above are what
//! keep a hostile file from ending the session: a size that passes them is at most the read
//! limit.

use std::cell::Cell;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use crate::error::{Error, Result};

/// The default read limit: 8 GiB.
pub const DEFAULT_READ_LIMIT: u64 = 8 << 30;

static READ_LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_READ_LIMIT);

/// The largest allocation (bytes) one file read may ask for.
pub fn read_limit() -> u64 {
    READ_LIMIT.load(Ordering::Relaxed)
}

/// Sets the read limit (process-wide); returns the previous one.
pub fn set_read_limit(bytes: u64) -> u64 {
    READ_LIMIT.swap(bytes, Ordering::Relaxed)
}

/// `Ok` when `bytes` is within the read limit and fits in what is left of the current session
/// memory budget (see the module documentation). Over the read limit: a format error naming
/// `path` and `what` needs the memory; over the budget: [`Error::Memory`] whose `what` is
/// "`path`: `what`".
///
/// ```
/// use nuisance::io_guard::{check_alloc, read_limit};
/// assert!(check_alloc("f.parquet", "the features", 1 << 20).is_ok());
/// let e = check_alloc("f.parquet", "the features", read_limit() + 1).unwrap_err();
/// assert!(e.to_string().contains("more than the read limit"));
/// ```
pub fn check_alloc(path: impl AsRef<Path>, what: &str, bytes: u64) -> Result<()> {
    let limit = read_limit();
    if bytes > limit {
        return Err(Error::format(
            path.as_ref(),
            format!(
                "{what} would need {} of memory, more than the read limit of {}",
                crate::memory::fmt_bytes(bytes),
                crate::memory::fmt_bytes(limit)
            ),
        ));
    }
    crate::memory::check(bytes, &format!("{}: {what}", path.as_ref().display()))
}

/// `count × each` bytes, or an error when a count read from the file is negative or the
/// product overflows.
pub fn bytes_for(path: impl AsRef<Path>, what: &str, count: i64, each: u64) -> Result<u64> {
    let c = u64::try_from(count)
        .map_err(|_| Error::format(path.as_ref(), format!("{what}: negative size {count} in the file")))?;
    c.checked_mul(each)
        .ok_or_else(|| Error::format(path.as_ref(), format!("{what}: size {count} × {each} bytes overflows")))
}

/// The length of `path` if it is a regular file (following symbolic links, which the sandbox
/// has already resolved); an error naming what it is otherwise. Nothing is opened.
pub fn regular_len(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    Ok(meta.len())
}

thread_local! {
    /// True while this thread reads paths the sandbox has resolved (see [`checked_paths`]).
    static CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Until the guard is dropped, [`open_regular`] on this thread opens paths as the sandbox
/// resolved them, following no symbolic link: each folder of the path is opened from the
/// previous one (`openat` with `O_NOFOLLOW`), and so is the file. A resolved path has no
/// link in it, so a link found there was planted after the check — the race of a script
/// that swaps a checked file for a link to a secret — and the read is refused. A session
/// installs this for the thread that runs its scripts, next to its memory budget.
pub fn checked_paths() -> CheckedPaths {
    CheckedPaths { previous: CHECKED.with(|c| c.replace(true)) }
}

/// Restores the previous mode when dropped (see [`checked_paths`]).
pub struct CheckedPaths {
    previous: bool,
}

impl Drop for CheckedPaths {
    fn drop(&mut self) {
        CHECKED.with(|c| c.set(self.previous));
    }
}

/// Opens `path` for reading if it is a regular file (see the module documentation); returns
/// the file and its length. Inside [`checked_paths`], no symbolic link is followed.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    #[cfg(unix)]
    let f = if CHECKED.with(Cell::get) { open_no_follow(path)? } else { open_following(path)? };
    #[cfg(not(unix))]
    let f = open_following(path)?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    #[cfg(unix)]
    {
        // Regular files ignore O_NONBLOCK, but clear it so the handle behaves as usual.
        let _ = rustix::fs::fcntl_setfl(&f, rustix::fs::OFlags::empty());
    }
    Ok((f, meta.len()))
}

fn open_following(path: &Path) -> Result<File> {
    regular_len(path)?;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a pipe without O_NONBLOCK blocks until a writer appears.
        o.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    o.open(path).map_err(|e| Error::io(path, e))
}

/// Opens `path` one component at a time without following links (see [`checked_paths`]);
/// the file itself is looked at (not opened) first, so a device or a pipe is refused before
/// an open could act on it.
#[cfg(unix)]
fn open_no_follow(path: &Path) -> Result<File> {
    use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, CWD};
    use std::path::Component;
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut fd = openat(CWD, start, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(start, e))?;
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect();
    let Some((name, dirs)) = parts.split_last() else {
        return Err(Error::io(path, "is a folder, not a regular file; only regular files are read"));
    };
    let planted = |so_far: &Path| {
        Error::io(
            so_far,
            "is a symbolic link; reads of checked paths never follow one (was it created after the path was checked?)",
        )
    };
    let mut so_far = std::path::PathBuf::from(start);
    for part in dirs {
        so_far.push(part);
        fd = match openat(&fd, *part, dir_flags, Mode::empty()) {
            Ok(f) => f,
            Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) => {
                let link = statat(&fd, *part, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
                return Err(if link { planted(&so_far) } else { Error::io(&so_far, e) });
            }
            Err(e) => return Err(Error::io(&so_far, e)),
        };
    }
    let st = statat(&fd, *name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| Error::io(path, e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => return Err(planted(path)),
        _ => {
            let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
            return Err(not_regular(path, &meta.file_type()));
        }
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match openat(&fd, *name, flags, Mode::empty()) {
        Ok(f) => Ok(File::from(f)),
        Err(rustix::io::Errno::LOOP) => Err(planted(path)),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A name for the file open as `file` (found at `path`), for crates that open files by name
/// (oxyroot): on Linux `/proc/self/fd/N`, which opens that same file whatever `path` names by
/// then; elsewhere `path`. Valid while `file` stays open.
pub fn fd_path(file: &File, path: &Path) -> std::path::PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let p = std::path::PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if p.exists() {
            return p;
        }
    }
    let _ = file;
    path.to_path_buf()
}

/// A second handle on the file open as `file`, with its own position (for reading parts of
/// it in parallel): reopened through [`fd_path`], so it is the same file.
pub fn reopen(file: &File, path: &Path) -> Result<File> {
    let f = std::fs::File::open(fd_path(file, path)).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    Ok(f)
}

/// Reads a whole regular file, refusing one larger than the read limit.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let (mut f, len) = open_regular(path)?;
    check_alloc(path, "reading the file", len)?;
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

fn not_regular(path: &Path, t: &std::fs::FileType) -> Error {
    let what = if t.is_dir() { "a folder" } else { special_kind(t) };
    Error::io(path, format!("is {what}, not a regular file; only regular files are read"))
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

thread_local! {
    /// True while this thread runs inside [`guarded`]: its panics are not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a call into a third-party parser), turning a panic into a format error about
/// `path`: "`what`: the `reader` failed (panic message)".
pub fn guarded<T>(path: &Path, reader: &str, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Error::format(path, format!("{what}: the {reader} failed ({msg})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nuisance_guard_{tag}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sizes_negative_overflowing_and_over_the_limit_are_errors() {
        assert_eq!(bytes_for("f", "rows", 10, 4).unwrap(), 40);
        let e = bytes_for("f", "rows", -3, 4).unwrap_err();
        assert_eq!(e.to_string(), "f: rows: negative size -3 in the file");
        // 2^62 × 8 = 2^65 does not fit in u64.
        assert!(bytes_for("f", "rows", 1 << 62, 8).unwrap_err().to_string().contains("overflows"));
        // 9 GiB against the default 8 GiB limit.
        let e = check_alloc("f", "the features", 9 << 30).unwrap_err();
        assert_eq!(e.kind(), "format");
        assert_eq!(e.to_string(), "f: the features would need 9.0 GiB of memory, more than the read limit of 8.0 GiB");
    }

    #[test]
    fn a_read_must_also_fit_in_the_session_budget() {
        let b = crate::memory::Budget::new(1000);
        let _g = crate::memory::enter(b.clone());
        let _held = b.reserve(600, "held").unwrap();
        assert!(check_alloc("f.csv", "3 rows", 400).is_ok());
        // 401 bytes do not fit in the 400 left, far below the 8 GiB read limit.
        let e = check_alloc("f.csv", "3 rows", 401).unwrap_err();
        assert_eq!(e.kind(), "memory");
        assert_eq!(
            e.to_string(),
            "f.csv: 3 rows: needs 401 B, but the session memory budget of 1000 B has 400 B left (600 B in use)"
        );
        // A check holds nothing.
        assert_eq!(b.used(), 600);
    }

    #[test]
    fn named_pipe_and_device_are_refused_without_blocking() {
        let d = tmp("fifo");
        let p = d.join("pipe.csv");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        // No writer ever opens the pipe: a plain open would block this test forever.
        let e = open_regular(&p).unwrap_err();
        assert_eq!(e.kind(), "io");
        assert_eq!(
            e.to_string(),
            format!("{}: is a named pipe, not a regular file; only regular files are read", p.display())
        );
        let e = read_regular(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("is a character device"), "{e}");
        assert!(regular_len(&d).unwrap_err().to_string().contains("is a folder"));
        let f = d.join("ok.txt");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(read_regular(&f).unwrap(), b"abc");
    }

    #[test]
    fn checked_paths_follow_no_link_and_reads_go_through_the_handle() {
        let d = tmp("nofollow").canonicalize().unwrap();
        let secret = tmp("nofollow_secret").canonicalize().unwrap();
        std::fs::write(secret.join("key.csv"), b"secret").unwrap();
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("data/ok.csv"), b"a\n1\n").unwrap();
        // What a script could do between the sandbox's check and the read: swap a checked
        // file, or a folder of its path, for a link to a secret.
        std::os::unix::fs::symlink(secret.join("key.csv"), d.join("data/swapped.csv")).unwrap();
        std::os::unix::fs::symlink(&secret, d.join("linked")).unwrap();
        let _g = checked_paths();
        let (f, len) = open_regular(&d.join("data/ok.csv")).unwrap();
        assert_eq!(len, 4);
        let e = open_regular(&d.join("data/swapped.csv")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: is a symbolic link; reads of checked paths never follow one (was it created after the path was \
                 checked?)",
                d.join("data/swapped.csv").display()
            )
        );
        let e = open_regular(&d.join("linked/key.csv")).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: is a symbolic link", d.join("linked").display())), "{e}");
        assert!(read_regular(&d.join("linked/key.csv")).is_err());
        // A pipe is still refused without blocking, and a folder is not a file.
        let p = d.join("pipe.csv");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        assert!(open_regular(&p).unwrap_err().to_string().contains("is a named pipe"));
        assert!(open_regular(&d.join("data")).unwrap_err().to_string().contains("is a folder"));
        // The handle is the file that was checked: once the name points elsewhere, a second
        // handle (and a crate given `fd_path`) still reads the checked file.
        std::fs::remove_file(d.join("data/ok.csv")).unwrap();
        std::os::unix::fs::symlink(secret.join("key.csv"), d.join("data/ok.csv")).unwrap();
        let mut again = String::new();
        std::io::Read::read_to_string(&mut reopen(&f, &d.join("data/ok.csv")).unwrap(), &mut again).unwrap();
        assert_eq!(again, "a\n1\n");
        assert_eq!(std::fs::read(fd_path(&f, Path::new("x"))).unwrap(), b"a\n1\n");
        drop(_g);
        // Outside checked mode (Rust callers) links are followed as usual.
        assert_eq!(read_regular(&d.join("linked/key.csv")).unwrap(), b"secret");
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&secret);
    }

    #[test]
    fn guarded_turns_a_panic_into_a_format_error() {
        let e = guarded(Path::new("x.root"), "ROOT reader", "reading branch 'a'", || -> u8 { panic!("bad basket") })
            .unwrap_err();
        assert_eq!(e.to_string(), "x.root: reading branch 'a': the ROOT reader failed (bad basket)");
        assert_eq!(guarded(Path::new("x"), "r", "w", || 7).unwrap(), 7);
    }
}
