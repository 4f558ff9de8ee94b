//! Every size a script or a file may ask for, in one place (the README's "Limits" section
//! lists them).
//!
//! Two kinds of bound keep a script from exhausting the machine:
//! - **size limits** (this file): a count beyond which a request is refused outright with an
//!   [`Error::Limit`] naming the limit — an absurd width, bin count or batch size never reaches
//!   the allocator, and no size arithmetic can overflow;
//! - **the memory budget** ([`crate::memory`]): what fits under the limits must still fit in
//!   the session's budget (by default half the physical memory), which datasets and large
//!   buffers count against.
//!
//! Script-engine limits (operations, call depth, string/array/map sizes) are in [`engine`].
//! Two limits stay next to the code they guard, as they are part of its grammar or format:
//! cut/derive expressions of at most 2000 tokens and 100 nesting levels (`data/expr/parse.rs`),
//! plot images of 100–8000 pixels per side (`plot/mod.rs`).

use crate::error::{Error, Result};

/// Limits of the Rhai engine (set in `session.rs`).
pub mod engine {
    /// Nested function calls.
    pub const CALL_LEVELS: usize = 128;
    /// Script operations per run (loops in scripts; numerics in Rust do not count). About a
    /// minute of a plain `loop { i += 1 }`: 2·10⁸ operations took 7–8 s of CPU on the 2-core
    /// CI machine (≈ 2.7·10⁷ operations/s); `--max-operations N` changes it.
    pub const OPERATIONS: u64 = 1_500_000_000;
    /// Characters in one string.
    pub const STRING_SIZE: usize = 64 << 20;
    /// Elements in one array.
    pub const ARRAY_SIZE: usize = 50_000_000;
    /// Entries in one object map.
    pub const MAP_SIZE: usize = 1_000_000;
    /// Modules imported by one script.
    pub const MODULES: usize = 256;
    /// Expression nesting depth (global, inside functions).
    pub const EXPR_DEPTHS: (usize, usize) = (128, 64);
}

/// Files in one chain (a list or the matches of a glob).
pub const CHAIN_FILES: usize = 100_000;
/// Events in one generated dataset or one sample.
pub const EVENTS: usize = 200_000_000;
/// Width of one network layer.
pub const LAYER_WIDTH: usize = 100_000_000;
/// Layers of one network (widths listed, inputs and outputs included).
pub const LAYERS: usize = 10_000;
/// Weights and biases of one network (≈ 4 GB of f32).
pub const PARAMS: usize = 1_000_000_000;
/// Events per training minibatch.
pub const BATCH_SIZE: usize = 1 << 24;
/// Bins of one histogram.
pub const HISTOGRAM_BINS: usize = 10_000_000;
/// L-BFGS memory (stored correction pairs per event) of MiniFool.
pub const LBFGS_MEMORY: usize = 1_000;
/// Scales of one s-scan.
pub const SCAN_POINTS: usize = 10_000;
/// Bisection steps refining s_flip (f64 has 52 bits of mantissa; more halve nothing).
pub const SCAN_BISECT: usize = 64;
/// Eigenvalues asked of one Hessian spectrum (`hessian_top`'s k).
pub const EIGENVALUES: usize = 10_000;
/// Lanczos steps (and basis vectors kept) of one run, for `hessian_top` and `hessian_density`.
pub const LANCZOS_STEPS: usize = 10_000;
/// Power-iteration products per eigenvalue.
pub const POWER_ITERATIONS: usize = 1_000_000;
/// Random start vectors of stochastic Lanczos quadrature.
pub const SLQ_RUNS: usize = 10_000;
/// Rademacher vectors of one Hutchinson trace estimate.
pub const TRACE_SAMPLES: usize = 10_000_000;
/// Grid points of a smoothed spectral density.
pub const GRID_POINTS: usize = 1_000_000;
/// Dimension of a reduced Hessian (the dense matrix holds its square).
pub const REDUCED_DIM: usize = 8192;

/// Errors when `value` is above `limit`: `"{func}: {what} {value} is over the limit of {limit}"`.
pub fn check(func: &str, what: &str, value: usize, limit: usize) -> Result<()> {
    if value > limit {
        return Err(Error::Limit { func: func.into(), what: what.into(), value: value.to_string(), limit });
    }
    Ok(())
}

/// [`check`] for a number a script gave as a float (a width of `1e30` names itself, not a
/// saturated integer).
pub fn check_f64(func: &str, what: &str, value: f64, limit: usize) -> Result<()> {
    if value > limit as f64 {
        return Err(Error::Limit { func: func.into(), what: what.into(), value: value.to_string(), limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_function_option_value_and_limit() {
        assert!(check("histogram", "bins", HISTOGRAM_BINS, HISTOGRAM_BINS).is_ok());
        let e = check("histogram", "bins", HISTOGRAM_BINS + 1, HISTOGRAM_BINS).unwrap_err();
        assert_eq!(e.to_string(), "histogram: bins 10000001 is over the limit of 10000000");
        assert_eq!(e.kind(), "limit");
        let e = check_f64("mlp", "layer width", 1e30, LAYER_WIDTH).unwrap_err();
        assert_eq!(e.to_string(), "mlp: layer width 1000000000000000000000000000000 is over the limit of 100000000");
    }
}
