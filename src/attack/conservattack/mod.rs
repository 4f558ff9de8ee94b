//! CONSERVAttack (Bechtle, Flek, Jung et al., arXiv 2603.13970; `shared/guide/methods.md` §2):
//! fool a classifier while the whole sample keeps its per-feature histograms and its
//! correlation matrix.
//!
//! Each iteration takes, for every event not yet fooled, the sign of the gradient of its
//! clipped cross-entropy (BCE for a sigmoid output, predictions clipped to [1e-7, 1 − 1e-7]
//! as Keras does, so a saturated event has gradient 0 and moves up), draws candidate
//! changes per feature in that direction (a grid `min_change, +step, …` up to the bound, or
//! `num_candidates` uniform magnitudes in `[min_change, max_j − x]`), clips them to the
//! feature's `[min, max]` (and the projection), and keeps per feature the admissible
//! candidate of lowest `α·JSD + β·corr`. After the pass over all events the model is
//! evaluated and the fooled events are frozen.
//!
//! Two modes:
//! - [`Mode::Faithful`] is the reference code (TSaala/CONSERVAttack `f16098e`,
//!   `shared/fixtures/conservattack/README.md`) with its quirks: the clean histograms drop
//!   values outside the given `[min, max]` (with the reference's float64 `min_values` /
//!   `max_values` over float32 data this reproduces its float32 histogram quirk), densities
//!   floored at 1e-10, the JSD cap is against the clean histogram but the correlation score is
//!   the reference's approximate row/column Frobenius change against the *current* sample (so
//!   the total drift is unbounded), every feature of an event is scored with candidate `c` of
//!   every other feature, all features' choices are applied together, and without
//!   `use_no_change` the first candidate is applied when none is admissible.
//! - [`Mode::Strict`]: both limits against the clean sample — a change is admissible only if
//!   afterwards the feature's JSD to the clean histogram (the binning of
//!   [`crate::stats::checks`]: `bins` bins over the clean range plus flow bins) is
//!   `≤ max_jsd_single_change` and `< constraint_jsd`, and the correlation matrix's change
//!   `‖C − C₀‖_F` is `≤ max_frob_single_change` with `‖C − C₀‖_F/‖C₀‖_F < constraint_rel_corr`.
//!   Features are changed one at a time, so every state of the sample passes; the output
//!   passes `checks(clean, adversarial, #{ bins })` with the same bins (unweighted).
//!
//! Work split: the gradients (the fused MLP, rayon over events), the candidate draws, clipping,
//! projection and histogram slots run in parallel over the events of a block (each event's
//! numbers come from its own `rng::Stream`, so they do not depend on the thread count). The
//! scoring and acceptance then run in event order, as the reference does: each event is scored
//! against the current state (histogram counts and running moments updated by the events before
//! it), in O(1) per candidate for the JSD (the per-bin terms of one move are cached) and O(d²)
//! for the correlation score, and its choice is applied before the next event. The result is
//! the reference's sequential semantics, identical for any number of threads.
//!
//! Files: `options.rs` (settings and their checks), `tally.rs` (incremental histograms with
//! the JSD of a tentative move), `candidates.rs` (the per-event candidate draws), `accept.rs`
//! (scoring and acceptance in event order), `state.rs` (the running attack: gradients, passes,
//! freezing), `fooled.rs` (`optimize_already_fooled`), `result.rs` (per-iteration metrics and
//! the result).

mod accept;
mod candidates;
mod fooled;
mod options;
mod result;
mod state;
mod tally;

use ndarray::{Array2, ArrayView2};

use super::project::Projection;
use super::result::{outputs, AttackResult};
use crate::error::{Error, Result};
use crate::model::{Model, Output};
use crate::optim::Control;
use state::State;

pub use options::{ConservConfig, Mode, MAX_CANDIDATES};
pub use result::{ConservResult, IterationMetrics};
#[cfg(test)]
pub(crate) use tally::Tally;

/// The reference's prediction clip of its cross-entropy (Keras' epsilon).
const CLIP: f32 = 1e-7;

/// The slot of a candidate the projection put back onto the current value (never admissible).
const NO_OP: u32 = u32::MAX;

/// Candidate values held at once (events of a block × features × candidates).
const BLOCK_VALUES: usize = 1 << 15;

/// The attack, prepared for one set of events.
#[derive(Clone, Debug)]
pub struct ConservAttack {
    cfg: ConservConfig,
    proj: Projection,
}

impl ConservAttack {
    /// Checks the settings against the projection (built for the same features).
    pub fn new(cfg: ConservConfig, proj: Projection) -> Result<Self> {
        Ok(ConservAttack { cfg, proj })
    }

    /// The settings.
    pub fn config(&self) -> &ConservConfig {
        &self.cfg
    }

    /// Attacks every event of `x0`; events the model misclassifies before the attack (against
    /// `labels`, or every event when labels are not given: their clean class is the label)
    /// are left as they are. Seeded by the configuration.
    pub fn attack(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<ConservResult> {
        self.attack_seeded(model, x0, labels, control, self.cfg.seed)
    }

    /// [`ConservAttack::attack`] with another seed.
    pub fn attack_seeded(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
        seed: u64,
    ) -> Result<ConservResult> {
        let (n, d) = x0.dim();
        self.cfg.validate(d)?;
        if model.output() == Output::Linear {
            return Err(Error::arg(
                "conservattack",
                "a regression (linear) model has no class to fool; CONSERVAttack needs a classifier",
            ));
        }
        if n < 2 {
            return Err(Error::arg("conservattack", format!("needs at least 2 events (a sample), got {n}")));
        }
        if !self.proj.is_empty() && self.proj.names().len() != d {
            return Err(Error::arg("conservattack", "the projection was built for a dataset with other features"));
        }
        let (score_before, class_before) = outputs(model, x0)?;
        let k = model.n_outputs().max(2);
        let labels: Vec<i64> = match labels {
            Some(l) => {
                if l.len() != n {
                    return Err(Error::Shape {
                        op: "conservattack",
                        expected: format!("{n} labels"),
                        got: format!("{}", l.len()),
                    });
                }
                if let Some(bad) = l.iter().find(|&&c| c < 0 || c as usize >= k) {
                    return Err(Error::arg(
                        "conservattack",
                        format!("label {bad} is not a class of the model (0..{})", k - 1),
                    ));
                }
                l.to_vec()
            }
            None => class_before.clone(),
        };
        let mut st = State::new(&self.cfg, &self.proj, model, x0, labels, &class_before, seed, control)?;
        let run = control.executor(self.cfg.iterations).run(&mut st)?;
        let x = Array2::from_shape_fn((n, d), |(i, j)| st.live.x[i * d + j] as f32);
        let (score_after, class_after) = outputs(model, x.view())?;
        let reason = (0..n)
            .map(|i| {
                if !st.correct[i] {
                    "misclassified"
                } else if st.fooled_at[i] > 0 {
                    "flipped"
                } else {
                    "max_steps"
                }
            })
            .collect();
        let iters =
            (0..n).map(|i| if st.fooled_at[i] > 0 { st.fooled_at[i] } else { st.iterations.len() as u32 }).collect();
        let attack = AttackResult {
            x,
            score_before,
            score_after,
            class_before,
            class_after,
            chi2: vec![f64::NAN; n],
            p_value: vec![f64::NAN; n],
            dof: vec![0; n],
            iters,
            reason,
            stop: run.stop,
        };
        let correct = st.correct.iter().filter(|c| **c).count();
        Ok(ConservResult { attack, iterations: st.iterations, best: st.best, fooled_at: st.fooled_at, correct })
    }
}
