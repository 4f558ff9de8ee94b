//! Population statistics for judging a whole sample against a reference: two-sample tests,
//! binned distances, correlation changes, the classifier two-sample test, the combined
//! pass/fail checks, and incremental versions for attacks that move one value at a time.
//!
//! - [`ks`]: event-weighted two-sample Kolmogorov–Smirnov test (exact or asymptotic p-value);
//! - [`binned`]: fixed-edge histograms with flow bins, χ² and Jensen–Shannon distance;
//! - [`c2st`]: classifier two-sample test (held-out AUC of a small MLP);
//! - [`checks`]: all of them per feature and control region, with thresholds and a table;
//! - [`incremental`]: add/remove/move histograms and rank-1 correlation updates.
//!
//! Domain code only: no rhai here (the script function is `bindings::checks`).

pub mod binned;
pub mod c2st;
pub mod checks;
pub mod incremental;
pub mod ks;

pub use checks::{checks, CheckReport, ChecksConfig, Thresholds};
