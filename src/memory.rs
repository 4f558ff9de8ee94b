//! The session memory budget: datasets and large buffers count their bytes against it, so a
//! script that keeps allocating (datasets collected in a loop, an absurd L-BFGS memory) ends
//! in a clear [`Error::Memory`] instead of an abort of the whole process.
//!
//! A [`Budget`] is a limit and an atomic count of the bytes in use. Whoever allocates
//! something large asks first: [`reserve`] (or [`check`] for a transient buffer) fails when
//! the request does not fit, and the [`Reservation`] it returns gives the bytes back when it is
//! dropped — a [`crate::Dataset`] keeps its reservation inside its shared storage, so the bytes
//! count as long as any clone of it lives.
//!
//! Each session has its own budget (`Config::max_memory`, `--max-memory`; by default
//! [`DEFAULT_FRACTION`] of the physical memory) and installs it for the thread that runs its
//! scripts ([`enter`]); code running outside a session uses one process-wide default budget.
//!
//! How a reader uses it: before allocating the columns of a file of `n` rows and `d` columns,
//! `memory::check(memory::bytes(n.saturating_mul(d), 4), "read_parquet: 'file'")?`; the
//! Dataset built from them then registers itself.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

/// Fraction of the physical memory a session may use by default.
pub const DEFAULT_FRACTION: f64 = 0.5;

/// The budget when the physical memory cannot be read (no `/proc/meminfo`): 8 GiB.
pub const FALLBACK_BUDGET: u64 = 8 << 30;

/// A memory limit and the bytes counted against it.
#[derive(Debug)]
pub struct Budget {
    limit: AtomicU64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes with nothing in use.
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget { limit: AtomicU64::new(limit), used: AtomicU64::new(0) })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the limit to `bytes` (a script's `set_memory_limit`); what is in use stays counted,
    /// and only later requests see the new limit.
    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Bytes currently counted.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Counts `bytes` if they fit under the limit; otherwise an error naming `what`, the
    /// request, the use so far and the budget.
    pub fn reserve(self: &Arc<Self>, bytes: u64, what: &str) -> Result<Reservation> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let limit = self.limit();
            let fits = used.checked_add(bytes).is_some_and(|t| t <= limit);
            if !fits {
                return Err(Error::Memory { what: what.to_string(), requested: bytes, used, budget: limit });
            }
            match self.used.compare_exchange_weak(used, used + bytes, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(Reservation { budget: Some(self.clone()), bytes }),
                Err(now) => used = now,
            }
        }
    }

    /// Counts `bytes` whether or not they fit (for memory already allocated by an operation
    /// that cannot fail; the next [`Budget::reserve`] sees it).
    pub fn account(self: &Arc<Self>, bytes: u64) -> Reservation {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        Reservation { budget: Some(self.clone()), bytes }
    }
}

/// Bytes counted against a budget until this is dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    budget: Option<Arc<Budget>>,
    bytes: u64,
}

impl Reservation {
    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Reservation {
    /// The same bytes counted again against the same budget, without failing: for a value
    /// whose clone copies its memory (an [`crate::Mlp`]'s weights), so each copy counts
    /// while it lives.
    pub fn duplicate(&self) -> Reservation {
        match &self.budget {
            Some(b) => b.account(self.bytes),
            None => Reservation::default(),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.used.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Budget>>> = const { RefCell::new(None) };
}

/// The process-wide budget for code running outside a session: [`DEFAULT_FRACTION`] of the
/// physical memory.
pub fn default_budget() -> &'static Arc<Budget> {
    static DEFAULT: OnceLock<Arc<Budget>> = OnceLock::new();
    DEFAULT.get_or_init(|| Budget::new(default_limit()))
}

/// [`DEFAULT_FRACTION`] of the physical memory, or [`FALLBACK_BUDGET`] when it is unknown.
pub fn default_limit() -> u64 {
    physical_memory().map_or(FALLBACK_BUDGET, |m| (m as f64 * DEFAULT_FRACTION) as u64)
}

/// The physical memory in bytes (`MemTotal` of `/proc/meminfo`), if known.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The budget of the session running on this thread (the process default outside sessions).
pub fn current() -> Arc<Budget> {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| default_budget().clone())
}

/// Makes `budget` the current one on this thread until the guard is dropped.
pub fn enter(budget: Arc<Budget>) -> Entered {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(budget));
    Entered { previous }
}

/// Restores the previous budget of the thread when dropped (see [`enter`]).
pub struct Entered {
    previous: Option<Arc<Budget>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `f` with `budget` as the current one on this thread: for work that runs on other
/// threads (rayon's), whose thread-local budget is the process default. Capture
/// [`current`] on the calling thread and run each task under it:
///
/// ```
/// use nuisance::memory;
/// let b = memory::Budget::new(1000);
/// let _g = memory::enter(b.clone());
/// let session = memory::current();
/// let limit = std::thread::spawn(move || memory::with(&session, || memory::current().limit())).join().unwrap();
/// assert_eq!(limit, 1000);
/// ```
pub fn with<T>(budget: &Arc<Budget>, f: impl FnOnce() -> T) -> T {
    let _g = enter(budget.clone());
    f()
}

/// Reserves `bytes` against the current budget (see [`Budget::reserve`]).
pub fn reserve(bytes: u64, what: &str) -> Result<Reservation> {
    current().reserve(bytes, what)
}

/// Counts `bytes` against the current budget without failing (see [`Budget::account`]).
pub fn account(bytes: u64) -> Reservation {
    current().account(bytes)
}

/// Errors unless `bytes` more would fit in the current budget now (for a transient buffer).
pub fn check(bytes: u64, what: &str) -> Result<()> {
    reserve(bytes, what).map(drop)
}

/// `count` items of `size` bytes, saturating (a saturated request never fits).
pub fn bytes(count: usize, size: usize) -> u64 {
    (count as u64).saturating_mul(size as u64)
}

/// Parses a size: a number of bytes with an optional unit `K`, `M`, `G`, `T` (powers of
/// 1024; `KB`, `KiB`, … and lower case accepted), e.g. `4G`, `512M`, `1.5G`, `1000000`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("'{text}' is not a size (e.g. 4G, 512M)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("'{text}' has an unknown unit '{unit}' (use K, M, G or T)")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{text}' is not a positive size"));
    }
    Ok(bytes as u64)
}

/// A byte count for people: `512 B`, `3.2 MiB`, `4.0 GiB`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_until_dropped_and_refuse_beyond_the_limit() {
        let b = Budget::new(1000);
        let r1 = b.reserve(600, "first").unwrap();
        assert_eq!(b.used(), 600);
        let e = b.reserve(500, "second").unwrap_err();
        assert_eq!(
            e.to_string(),
            "second: needs 500 B, but the session memory budget of 1000 B has 400 B left (600 B in use)"
        );
        assert_eq!(e.kind(), "memory");
        drop(r1);
        assert_eq!(b.used(), 0);
        let _r2 = b.reserve(1000, "all").unwrap();
        // A saturated request never fits, and never wraps the counter.
        assert!(b.reserve(u64::MAX, "huge").is_err());
        assert_eq!(b.used(), 1000);
    }

    #[test]
    fn account_counts_without_failing() {
        let b = Budget::new(10);
        let r = b.account(50);
        assert_eq!(b.used(), 50);
        assert!(b.reserve(1, "more").is_err());
        drop(r);
        assert!(b.reserve(1, "more").is_ok());
    }

    #[test]
    fn entered_budget_is_current_on_this_thread_only() {
        let b = Budget::new(100);
        {
            let _g = enter(b.clone());
            let _r = reserve(40, "x").unwrap();
            assert_eq!(b.used(), 40);
            assert!(check(61, "y").is_err());
            let other = std::thread::spawn(|| current().limit()).join().unwrap();
            assert_eq!(other, default_budget().limit());
        }
        assert_eq!(b.used(), 0);
        assert_eq!(current().limit(), default_budget().limit());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512mb"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(3 << 29), "1.5 GiB");
    }
}
