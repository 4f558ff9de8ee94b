//! The session's memory limit from a script: `set_memory_limit` and `memory_limit`
//! (`crate::memory`; the same budget as `--max-memory`).

use rhai::plugin::*;

/// Registers the memory-limit functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(memory_api).into());
}

#[export_module]
pub mod memory_api {
    use crate::bindings::RhaiResult;
    use crate::error::Error;
    use crate::memory;

    /// Sets the session's memory limit (as `--max-memory`): a size such as `"4G"`, `"512M"`
    /// or a number of bytes. Datasets and large buffers count against it; a request over it is
    /// a clear error, and methods that need a whole chain in memory (`train`,
    /// `conservattack` given a chain) refuse a chain larger than what is left. What is in use
    /// stays counted.
    ///
    /// ```rhai
    /// let before = memory_limit();
    /// set_memory_limit("64M");
    /// assert_eq(memory_limit(), 64 * 1024 * 1024);
    /// set_memory_limit(before);
    /// ```
    #[rhai_fn(return_raw, name = "set_memory_limit")]
    pub fn set_memory_limit(size: &str) -> RhaiResult<()> {
        let bytes = memory::parse_size(size).map_err(|e| Error::arg("set_memory_limit", e))?;
        set_bytes(bytes)
    }

    /// Sets the session's memory limit to `bytes` (a positive number).
    ///
    /// ```rhai
    /// let before = memory_limit();
    /// set_memory_limit(100000000);
    /// assert_eq(memory_limit(), 100000000);
    /// set_memory_limit(before);
    /// ```
    #[rhai_fn(return_raw, name = "set_memory_limit")]
    pub fn set_memory_limit_bytes(bytes: i64) -> RhaiResult<()> {
        let b = u64::try_from(bytes).map_err(|_| {
            Error::arg("set_memory_limit", format!("the limit must be a positive number of bytes, got {bytes}"))
        })?;
        set_bytes(b)
    }

    /// The session's memory limit in bytes.
    ///
    /// ```rhai
    /// assert(memory_limit() > 0);
    /// ```
    #[rhai_fn(name = "memory_limit")]
    pub fn memory_limit() -> i64 {
        i64::try_from(memory::current().limit()).unwrap_or(i64::MAX)
    }

    #[rhai_fn(skip)]
    pub fn set_bytes(bytes: u64) -> RhaiResult<()> {
        if bytes == 0 {
            return Err(Error::arg("set_memory_limit", "the limit must be a positive number of bytes, got 0").into());
        }
        memory::current().set_limit(bytes);
        Ok(())
    }
}
