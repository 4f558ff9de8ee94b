//! The PFN's batched outputs, input gradients, weight gradients and metrics — the same
//! contracts as [`Mlp`](super::Mlp)'s (`backward.rs`, `eval.rs`), over the set layout.
//!
//! Inference and input gradients run over blocks of [`SET_CHUNK`] events across the rayon
//! pool; weight gradients over a fixed split of the events (`backward::summed_over_parts`), so results
//! do not depend on the thread count.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::backward::{check_weights, objective_row, standard_targets, summed_over_parts, GradTarget, InputGrad};
use super::eval::class_of_row;
use super::interface::Model;
use super::loss::{loss_grad_row, Output, Targets};
use super::pfn::Pfn;
use super::pfn_pass::{with_set_workspace, SetWorkspace};
use crate::error::{Error, Result};

/// Events per block: a block's Φ activations (≈ 45 objects per jet × 328 values) stay within
/// a few MB, and the GEMMs see thousands of rows.
pub(crate) const SET_CHUNK: usize = 64;

impl Pfn {
    /// Errors (before anything is allocated) unless the block buffers of the largest block of
    /// `block` consecutive events of `x` fit the memory budget, once per rayon thread: a
    /// block's Φ activations grow with its real objects times Φ's widths.
    pub(crate) fn check_block_memory(&self, op: &'static str, x: ArrayView2<'_, f32>, block: usize) -> Result<()> {
        let layout = self.layout();
        let mut most = 0usize;
        for rows in x.axis_chunks_iter(Axis(0), block.max(1)) {
            let n: usize = rows.rows().into_iter().map(|r| layout.count_of(r[layout.count_column()])).sum();
            most = most.max(n);
        }
        self.check_buffers(op, most, block)
    }

    /// [`Pfn::check_block_memory`] for blocks of `block` events holding at most `most` objects.
    pub(crate) fn check_buffers(&self, op: &'static str, most: usize, block: usize) -> Result<()> {
        let phi = self.phi_widths();
        let fw = self.f_widths();
        let per_object = phi
            .iter()
            .skip(1)
            .fold(phi[0], |a, &w| a.saturating_add(w.saturating_mul(2)))
            .saturating_add(phi.iter().copied().max().unwrap_or(1).saturating_mul(2));
        let per_event = fw
            .iter()
            .fold(0usize, |a, &w| a.saturating_add(w.saturating_mul(2)))
            .saturating_add(fw.iter().copied().max().unwrap_or(1).saturating_mul(2));
        let one = most.saturating_mul(per_object).saturating_add(block.saturating_mul(per_event));
        let threads = rayon::current_num_threads().max(1);
        crate::memory::check(
            crate::memory::bytes(one.saturating_mul(threads), 4),
            &format!("{op}: PFN buffers for blocks of up to {most} objects on {threads} threads"),
        )
    }

    /// Logits `n × k` for inputs in physical units.
    pub fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_input("forward", x)?;
        self.check_block_memory("forward", x, SET_CHUNK)?;
        let k = self.n_outputs();
        let mut out = Array2::<f32>::zeros((x.nrows(), k));
        out.axis_chunks_iter_mut(Axis(0), SET_CHUNK).into_par_iter().enumerate().for_each(|(c, mut o)| {
            let idx: Vec<usize> = (c * SET_CHUNK..c * SET_CHUNK + o.nrows()).collect();
            with_set_workspace(|ws| {
                self.load_block(ws, x, &idx);
                self.forward_block(ws, false);
                o.iter_mut().zip(ws.logits(self)).for_each(|(d, v)| *d = *v);
            })
        });
        Ok(out)
    }

    /// ∂objective/∂x per event (`n × D`, physical units; 0 for the count entry and padded
    /// slots), the scores, the objective and the predicted class, in one forward/backward
    /// pass. Every [`GradTarget`] is supported, as for [`Mlp`](super::Mlp).
    pub fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        self.check_input("input_grad", x)?;
        self.check_block_memory("input_grad", x, SET_CHUNK)?;
        let (n, d, k) = (x.nrows(), self.n_inputs(), self.n_outputs());
        let owned;
        let target = match target {
            GradTarget::Loss(t) => {
                t.validate("input_grad", self.output(), n, k)?;
                owned = standard_targets(t);
                GradTarget::Loss(match &owned {
                    Some(a) => Targets::Values(a.view()),
                    None => t.reborrow(),
                })
            }
            GradTarget::Score { class } => {
                <dyn Model>::check_class(self, "input_grad", class)?;
                GradTarget::Score { class }
            }
            GradTarget::Logit { class } => {
                <dyn Model>::check_class(self, "input_grad", class)?;
                GradTarget::Logit { class }
            }
            GradTarget::LossOfPredicted if self.output() == Output::Linear => {
                return Err(Error::arg(
                    "input_grad",
                    "a regression (linear) model has no predicted class to take the loss of",
                ))
            }
            GradTarget::LossOfPredicted => GradTarget::LossOfPredicted,
            GradTarget::Custom(f) => GradTarget::Custom(f),
        };
        let mut grad = Array2::<f32>::zeros((n, d));
        let mut scores = Array2::<f32>::zeros((n, k));
        let mut value = vec![0.0f32; n];
        let mut classes = vec![0i64; n];
        let output = self.output();
        grad.axis_chunks_iter_mut(Axis(0), SET_CHUNK)
            .into_par_iter()
            .zip(scores.axis_chunks_iter_mut(Axis(0), SET_CHUNK))
            .zip(value.par_chunks_mut(SET_CHUNK).zip(classes.par_chunks_mut(SET_CHUNK)))
            .enumerate()
            .for_each(|(c, ((gc, mut sc), (vc, cc)))| {
                let row0 = c * SET_CHUNK;
                let idx: Vec<usize> = (row0..row0 + vc.len()).collect();
                with_set_workspace(|ws| {
                    self.load_block(ws, x, &idx);
                    self.forward_block(ws, true);
                    let b = ws.b;
                    let logits = &ws.hf[self.f_widths().len() - 2][..b * k];
                    let g0 = &mut ws.gf[0][..b * k];
                    let rows = logits.chunks_exact(k).zip(g0.chunks_exact_mut(k)).zip(vc.iter_mut().zip(cc.iter_mut()));
                    for (i, ((z, g), (v, cl))) in rows.enumerate() {
                        *v = objective_row(output, z, &target, row0 + i, g);
                        *cl = class_of_row(output, z);
                    }
                    for (mut row, z) in sc.rows_mut().into_iter().zip(logits.chunks_exact(k)) {
                        row.iter_mut().zip(z).for_each(|(dst, v)| *dst = *v);
                        if let Some(s) = row.as_slice_mut() {
                            output.scores_row(s);
                        }
                    }
                    let which = self.backward_block(ws, None, true);
                    self.scatter_input_grad(ws, which, gc);
                })
            });
        Ok(InputGrad { grad, scores, value, classes })
    }

    /// The event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ and its gradient with respect to every
    /// parameter, in public order ([`Pfn::params_flat`], groups [`Pfn::param_groups`]).
    pub fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        self.check_input("weight_grad", x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(Error::Empty { op: "weight_grad", what: "the event set".into() });
        }
        targets.validate("weight_grad", self.output(), n, self.n_outputs())?;
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let wsum = check_weights("weight_grad", weights, n)?;
        self.check_block_memory("weight_grad", x, SET_CHUNK)?;
        let (loss, total) = summed_over_parts(n, SET_CHUNK, self.n_params(), |blocks, grad| {
            with_set_workspace(|ws| {
                let mut loss = 0.0;
                for (b, idx) in blocks.enumerate() {
                    loss += self.block_grad(ws, x, &idx, targets, weights, 1.0 / wsum, grad, b > 0);
                }
                loss
            })
        });
        Ok((loss, self.to_torch_order(&total)))
    }

    /// Forward and backward over the events `idx` of `x`, each event's loss gradient scaled
    /// by `norm · wᵢ`; writes (or with `accumulate` adds) ∂/∂θ (internal layout) into `grad`
    /// and returns Σ norm·wᵢ·ℓᵢ.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn block_grad(
        &self,
        ws: &mut SetWorkspace,
        x: ArrayView2<'_, f32>,
        idx: &[usize],
        targets: Targets<'_>,
        weights: Option<&[f32]>,
        norm: f64,
        grad: &mut [f32],
        accumulate: bool,
    ) -> f64 {
        self.load_block(ws, x, idx);
        self.forward_block(ws, true);
        let k = self.n_outputs();
        let b = ws.b;
        let logits = &ws.hf[self.f_widths().len() - 2][..b * k];
        let g0 = &mut ws.gf[0][..b * k];
        let mut loss = 0.0;
        for ((z, g), &i) in logits.chunks_exact(k).zip(g0.chunks_exact_mut(k)).zip(idx) {
            let w = norm * weights.map_or(1.0, |w| f64::from(w[i]));
            loss += w * loss_grad_row(self.output(), z, targets.row(i), w as f32, g);
        }
        self.backward_block(ws, Some((grad, accumulate)), false);
        loss
    }
}
