//! What a file may make nuisance do: the one boundary every reader goes through.
//!
//! * **Only regular files are read.** [`open_regular`] refuses named pipes, character and
//!   block devices, sockets and folders before opening them (a read from a pipe or a terminal
//!   would block forever), and opens with `O_NONBLOCK` and checks again on the open handle, so
//!   a file swapped for a pipe between the two checks is refused too.
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

/// Opens `path` for reading if it is a regular file (see the module documentation); returns
/// the file and its length.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    regular_len(path)?;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a pipe without O_NONBLOCK blocks until a writer appears.
        o.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let f = o.open(path).map_err(|e| Error::io(path, e))?;
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
    fn guarded_turns_a_panic_into_a_format_error() {
        let e = guarded(Path::new("x.root"), "ROOT reader", "reading branch 'a'", || -> u8 { panic!("bad basket") })
            .unwrap_err();
        assert_eq!(e.to_string(), "x.root: reading branch 'a': the ROOT reader failed (bad basket)");
        assert_eq!(guarded(Path::new("x"), "r", "w", || 7).unwrap(), 7);
    }
}
