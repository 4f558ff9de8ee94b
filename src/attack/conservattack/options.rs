//! CONSERVAttack's settings (the reference's options with its defaults) and their checks.

use crate::error::{Error, Result};

/// Most candidates per feature and event (a finer grid is refused: raise `step` or set
/// `num_candidates`).
pub const MAX_CANDIDATES: usize = 100_000;

/// Which semantics the attack follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The reference code's behaviour, quirks included.
    Faithful,
    /// Both constraints against the clean sample: the output passes the checks.
    Strict,
}

/// Settings; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq)]
pub struct ConservConfig {
    /// Faithful or strict.
    pub mode: Mode,
    /// Passes over the events (reference `n_iterations`, 10).
    pub iterations: usize,
    /// Histogram bins per feature (reference `num_bins`, 100).
    pub bins: usize,
    /// Smallest candidate magnitude (0.003).
    pub min_change: f64,
    /// Grid step between candidate magnitudes (0.01).
    pub step: f64,
    /// Weight of the JSD in the cost (1).
    pub alpha: f64,
    /// Weight of the correlation score in the cost (1).
    pub beta: f64,
    /// JSD cap of a change (0.005).
    pub max_jsd_single_change: f64,
    /// Correlation-score cap of a change (0.005).
    pub max_frob_single_change: f64,
    /// A "no change" candidate, taken when nothing else is admissible (false).
    pub use_no_change: bool,
    /// Report the iteration of highest fooling ratio inside the constraints (false).
    pub track_best_constraint_iter: bool,
    /// Largest per-feature JSD of an accepted result (0.06).
    pub constraint_jsd: f64,
    /// Largest relative correlation change of an accepted result (0.006).
    pub constraint_rel_corr: f64,
    /// After each pass, move fooled events within ±5 steps to lower their distortion (false).
    pub optimize_already_fooled: bool,
    /// Jitter `step` and `min_change` per event and feature by ±`random_step_frac` (false).
    pub randomize_step: bool,
    /// Jitter fraction (0.2).
    pub random_step_frac: f64,
    /// Uniform random magnitudes instead of the grid (none).
    pub num_candidates: Option<usize>,
    /// Faithful mode: features split into this many independent chunks (the reference's
    /// `n_gpus`, 4; only for more than 2 features); the correlation score sees only its chunk.
    pub feature_chunks: usize,
    /// Per-feature lower bounds (histogram range and clip); default the events' minima.
    pub min_values: Option<Vec<f64>>,
    /// Per-feature upper bounds; default the events' maxima.
    pub max_values: Option<Vec<f64>>,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for ConservConfig {
    fn default() -> Self {
        ConservConfig {
            mode: Mode::Faithful,
            iterations: 10,
            bins: 100,
            min_change: 0.003,
            step: 0.01,
            alpha: 1.0,
            beta: 1.0,
            max_jsd_single_change: 0.005,
            max_frob_single_change: 0.005,
            use_no_change: false,
            track_best_constraint_iter: false,
            constraint_jsd: 0.06,
            constraint_rel_corr: 0.006,
            optimize_already_fooled: false,
            randomize_step: false,
            random_step_frac: 0.2,
            num_candidates: None,
            feature_chunks: 4,
            min_values: None,
            max_values: None,
            seed: 0,
        }
    }
}

impl ConservConfig {
    /// Checks the numbers (finite, in range) for `d` features.
    pub fn validate(&self, d: usize) -> Result<()> {
        let bad = |p: String| Err(Error::arg("conservattack", p));
        if self.bins == 0 || self.bins > crate::stats::checks::MAX_BINS {
            return bad(format!("bins must be in 1..={}, got {}", crate::stats::checks::MAX_BINS, self.bins));
        }
        for (k, v) in [
            ("min_change", self.min_change),
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("max_jsd_single_change", self.max_jsd_single_change),
            ("max_frob_single_change", self.max_frob_single_change),
            ("constraint_jsd", self.constraint_jsd),
            ("constraint_rel_corr", self.constraint_rel_corr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{k} must be a finite number ≥ 0, got {v}"));
            }
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad(format!("step must be a finite number > 0, got {}", self.step));
        }
        if !(0.0..1.0).contains(&self.random_step_frac) {
            return bad(format!("random_step_frac must be in [0, 1), got {}", self.random_step_frac));
        }
        if let Some(k) = self.num_candidates {
            if k == 0 || k > MAX_CANDIDATES {
                return bad(format!("num_candidates must be in 1..={MAX_CANDIDATES}, got {k}"));
            }
        }
        if self.feature_chunks == 0 {
            return bad("feature_chunks must be at least 1".into());
        }
        for (k, v) in [("min_values", &self.min_values), ("max_values", &self.max_values)] {
            if let Some(v) = v {
                if v.len() != d {
                    return bad(format!("{k} must have one number per feature ({d}), got {}", v.len()));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return bad(format!("{k} must be finite numbers"));
                }
            }
        }
        Ok(())
    }
}
