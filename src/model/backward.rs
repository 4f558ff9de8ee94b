//! Gradients by back-propagation, batched over events: with respect to the inputs (per event,
//! in physical units) and with respect to the weights (of the event-weighted mean loss).
//!
//! A backward pass over `r` events is, per layer from the last, two GEMMs:
//! `∂W = Aᵀ·G` (in × out, the parameter layout) and `G_prev = (G·Wᵀ) ⊙ f'(z_prev)`, with f'
//! (times the dropout mask in training) stored by the forward pass.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::eval::class_of_row;
use super::loss::{loss_grad_row, Output, RowTarget, Targets};
use super::mlp::{Mlp, INFER_CHUNK};
use super::workspace::{with_workspace, Pass, Workspace};
use crate::error::{Error, Result};

/// Events per block for weight gradients: a block's activations and gradients stay in the
/// core's L2 cache.
pub(crate) const GRAD_CHUNK: usize = 128;

/// Fixed number of row ranges a weight gradient is split into for rayon, so the summation
/// order (and hence every bit of the result) does not depend on the thread count.
const GRAD_PARTS: usize = 16;

/// A per-event objective of the raw outputs `z` (logits, or the linear outputs): called with the
/// event's index in the batch, `z` and a buffer for `∂objective/∂z`; returns the objective.
pub type RowObjective<'a> = &'a (dyn Fn(usize, &[f32], &mut [f32]) -> f32 + Sync);

/// What an input gradient differentiates, separately for each event.
#[derive(Clone, Copy)]
pub enum GradTarget<'a> {
    /// The event's own loss (BCE for sigmoid, CE for softmax, MSE for linear) — not averaged.
    Loss(Targets<'a>),
    /// The score of one class: σ(z) for class 1 and 1 − σ(z) for class 0 of a sigmoid
    /// output, softmax(z)_class for softmax, output `class` for linear.
    Score {
        /// Class (or output index).
        class: usize,
    },
    /// The logit of one class: z for class 1 and −z for class 0 of a sigmoid output (the log
    /// odds of that class), z_class otherwise.
    Logit {
        /// Class (or output index).
        class: usize,
    },
    /// The event's own loss with its currently predicted class as the label (an untargeted
    /// attack's first step, where the clean class is not known yet). Classifiers only.
    LossOfPredicted,
    /// Any objective of the outputs, given per event (attacks build theirs from the scores).
    Custom(RowObjective<'a>),
}

impl std::fmt::Debug for GradTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GradTarget::Loss(t) => f.debug_tuple("Loss").field(t).finish(),
            GradTarget::Score { class } => f.debug_struct("Score").field("class", class).finish(),
            GradTarget::Logit { class } => f.debug_struct("Logit").field("class", class).finish(),
            GradTarget::LossOfPredicted => f.write_str("LossOfPredicted"),
            GradTarget::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The rows of one chunk that [`Mlp::input_grad_and_scores`] fills.
struct ChunkOut<'a> {
    grad: ArrayViewMut2<'a, f32>,
    scores: ArrayViewMut2<'a, f32>,
    value: &'a mut [f32],
    classes: &'a mut [i64],
}

/// An input gradient together with the forward values it was computed at.
#[derive(Clone, Debug)]
pub struct InputGrad {
    /// ∂objective/∂x per event, `n × d`, in physical (unstandardised) units.
    pub grad: Array2<f32>,
    /// Scores (probabilities, or the linear outputs), `n × k`.
    pub scores: Array2<f32>,
    /// The differentiated objective per event (loss, score or logit).
    pub value: Vec<f32>,
    /// Predicted class per event (as [`Mlp::predict_class`]).
    pub classes: Vec<i64>,
}

impl Mlp {
    /// ∂objective/∂x for every event, `n × d`, in physical units.
    pub fn input_grad(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<Array2<f32>> {
        Ok(self.input_grad_and_scores(x, target)?.grad)
    }

    /// The input gradient, the scores and the objective value in one forward/backward pass.
    pub fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        self.check_input("input_grad", x)?;
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
                self.check_class("input_grad", class)?;
                GradTarget::Score { class }
            }
            GradTarget::Logit { class } => {
                self.check_class("input_grad", class)?;
                GradTarget::Logit { class }
            }
            GradTarget::LossOfPredicted => {
                if self.output() == Output::Linear {
                    return Err(Error::BadArgument {
                        func: "input_grad".into(),
                        problem: "a regression (linear) model has no predicted class to take the loss of".into(),
                    });
                }
                GradTarget::LossOfPredicted
            }
            GradTarget::Custom(f) => GradTarget::Custom(f),
        };
        let mut grad = Array2::<f32>::zeros((n, d));
        let mut scores = Array2::<f32>::zeros((n, k));
        let mut value = vec![0.0f32; n];
        let mut classes = vec![0i64; n];
        grad.axis_chunks_iter_mut(Axis(0), INFER_CHUNK)
            .into_par_iter()
            .zip(scores.axis_chunks_iter_mut(Axis(0), INFER_CHUNK))
            .zip(value.par_chunks_mut(INFER_CHUNK).zip(classes.par_chunks_mut(INFER_CHUNK)))
            .enumerate()
            .for_each(|(c, ((gc, sc), (vc, cc)))| {
                let row0 = c * INFER_CHUNK;
                let xc = x.slice(s![row0..row0 + vc.len(), ..]);
                let out = ChunkOut { grad: gc, scores: sc, value: vc, classes: cc };
                with_workspace(self, INFER_CHUNK, |ws| self.input_grad_chunk(ws, xc, row0, &target, out))
            });
        Ok(InputGrad { grad, scores, value, classes })
    }

    /// One chunk of [`Mlp::input_grad_and_scores`]: rows `row0..` of the full set.
    fn input_grad_chunk(
        &self,
        ws: &mut Workspace,
        xc: ArrayView2<'_, f32>,
        row0: usize,
        target: &GradTarget<'_>,
        out: ChunkOut<'_>,
    ) {
        let ChunkOut { grad: mut gc, scores: mut sc, value: vc, classes: cc } = out;
        let (d, k, output) = (self.n_inputs(), self.n_outputs(), self.output());
        let r = self.load_rows(ws, xc, None);
        self.forward_ws(ws, r, Pass::Grad);
        let logits = &ws.h[self.n_layers() - 1][..r * k];
        let g0 = &mut ws.g[0][..r * k];
        let rows = logits.chunks_exact(k).zip(g0.chunks_exact_mut(k)).zip(vc.iter_mut().zip(cc.iter_mut()));
        for (i, ((z, g), (v, c))) in rows.enumerate() {
            *v = objective_row(output, z, target, row0 + i, g);
            *c = class_of_row(output, z);
        }
        for (mut row, z) in sc.rows_mut().into_iter().zip(logits.chunks_exact(k)) {
            row.iter_mut().zip(z).for_each(|(dst, v)| *dst = *v);
            if let Some(s) = row.as_slice_mut() {
                output.scores_row(s)
            }
        }
        let gi = self.backward_ws(ws, r, None, true);
        for (mut grow, gx) in gc.rows_mut().into_iter().zip(ws.g[gi].chunks_exact(d)) {
            for ((dst, g), sd) in grow.iter_mut().zip(gx).zip(self.std()) {
                *dst = g / sd;
            }
        }
    }

    /// One block of [`Mlp::input_grad_and_scores`] for inputs the caller assembled: `x` holds
    /// `r` events in physical units (row-major, `r × d`, `r` ≤ [`INFER_CHUNK`]), the first of
    /// them event `row0` of the whole set (the objective's row index). Writes the objective,
    /// the scores, the classes and `∂objective/∂x` (physical units, `r × d`) into the given
    /// slices, with the same arithmetic as `input_grad_and_scores` on the chunk holding these
    /// rows — bit for bit when the block is that chunk. No allocation: the thread's cached
    /// workspace.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn input_grad_block(
        &self,
        row0: usize,
        x: &[f32],
        target: &GradTarget<'_>,
        value: &mut [f32],
        scores: &mut [f32],
        classes: &mut [i64],
        gx: &mut [f32],
    ) {
        let (d, k, output) = (self.n_inputs(), self.n_outputs(), self.output());
        let r = value.len();
        with_workspace(self, INFER_CHUNK, |ws| {
            ws.ensure_rows(self, r);
            let (mean, std) = (&self.mean()[..d], &self.std()[..d]);
            for (dst, src) in ws.x[..r * d].chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                for j in 0..d {
                    dst[j] = (src[j] - mean[j]) / std[j];
                }
            }
            self.forward_ws(ws, r, Pass::Grad);
            let logits = &ws.h[self.n_layers() - 1][..r * k];
            let g0 = &mut ws.g[0][..r * k];
            let rows = logits.chunks_exact(k).zip(g0.chunks_exact_mut(k)).zip(value.iter_mut().zip(classes.iter_mut()));
            for (i, ((z, g), (v, c))) in rows.enumerate() {
                *v = objective_row(output, z, target, row0 + i, g);
                *c = class_of_row(output, z);
            }
            for (row, z) in scores.chunks_exact_mut(k).zip(logits.chunks_exact(k)) {
                row.copy_from_slice(z);
                output.scores_row(row);
            }
            let gi = self.backward_ws(ws, r, None, true);
            for (grow, g) in gx.chunks_exact_mut(d).zip(ws.g[gi].chunks_exact(d)) {
                for ((dst, g), sd) in grow.iter_mut().zip(g).zip(std) {
                    *dst = g / sd;
                }
            }
        })
    }

    /// The event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ and its gradient with respect to every
    /// parameter, in PyTorch order (see [`Mlp::params_flat`]; split it with
    /// [`Mlp::split_layers`]). Weights may be negative (as in NLO Monte Carlo) but must have a
    /// positive sum.
    pub fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        let (loss, g) = self.weight_grad_internal(x, targets, weights)?;
        Ok((loss, self.to_torch_order(&g)))
    }

    /// [`Mlp::weight_grad`] in the internal parameter layout.
    pub(crate) fn weight_grad_internal(
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
        Ok(summed_over_parts(n, GRAD_CHUNK, self.n_params(), |blocks, grad| {
            with_workspace(self, GRAD_CHUNK, |ws| {
                let mut loss = 0.0;
                for (b, idx) in blocks.enumerate() {
                    loss += self.batch_grad(ws, x, &idx, targets, weights, 1.0 / wsum, grad, b > 0, None);
                }
                loss
            })
        }))
    }

    /// Forward and backward over the rows `idx` of `x`; the loss gradient of each event is
    /// scaled by `norm · wᵢ`. Writes (or with `accumulate` adds) ∂/∂θ into `grad` (internal
    /// layout) and returns Σ norm·wᵢ·ℓᵢ.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_grad(
        &self,
        ws: &mut Workspace,
        x: ArrayView2<'_, f32>,
        idx: &[usize],
        targets: Targets<'_>,
        weights: Option<&[f32]>,
        norm: f64,
        grad: &mut [f32],
        accumulate: bool,
        dropout: Option<&mut crate::rng::Rng>,
    ) -> f64 {
        let r = self.load_rows(ws, x, Some(idx));
        let pass = match dropout {
            Some(rng) => Pass::Train(rng),
            None => Pass::Grad,
        };
        self.forward_ws(ws, r, pass);
        let k = self.n_outputs();
        let logits = &ws.h[self.n_layers() - 1][..r * k];
        let g0 = &mut ws.g[0][..r * k];
        let mut loss = 0.0;
        for ((z, g), &i) in logits.chunks_exact(k).zip(g0.chunks_exact_mut(k)).zip(idx) {
            let w = norm * weights.map_or(1.0, |w| f64::from(w[i]));
            loss += w * loss_grad_row(self.output(), z, targets.row(i), w as f32, g);
        }
        self.backward_param(ws, r, grad, accumulate);
        loss
    }

    fn backward_param(&self, ws: &mut Workspace, r: usize, grad: &mut [f32], accumulate: bool) {
        self.backward_ws(ws, r, Some((grad, accumulate)), false);
    }

    /// Back-propagates `ws.g[0]` (∂/∂logits of the first `r` events) through every layer.
    /// With `grad`, writes (or accumulates) the parameter gradient; with `want_input`, the
    /// gradient with respect to the standardised inputs ends in `ws.g[returned index]`.
    pub(crate) fn backward_ws(
        &self,
        ws: &mut Workspace,
        r: usize,
        mut grad: Option<(&mut [f32], bool)>,
        want_input: bool,
    ) -> usize {
        let layers = self.layers();
        let mut cur = 0;
        for l in (0..self.n_layers()).rev() {
            let (a, b) = (layers[l], layers[l + 1]);
            let [g0, g1] = &mut ws.g;
            let (gc, gn) = if cur == 0 { (g0, g1) } else { (g1, g0) };
            let gcur = &gc[..r * b];
            if let Some((gr, acc)) = grad.as_mut() {
                let o = self.offset(l);
                let prev: &[f32] = if l == 0 { &ws.x } else { &ws.h[l - 1] };
                let beta = if *acc { 1.0 } else { 0.0 };
                super::gemm::gemm(a, r, b, prev, true, gcur, false, beta, &mut gr[o..o + a * b]);
                let db = &mut gr[o + a * b..o + a * b + b];
                if !*acc {
                    db.fill(0.0);
                }
                for row in gcur.chunks_exact(b) {
                    db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
            }
            if l > 0 || want_input {
                let gnext = &mut gn[..r * a];
                super::gemm::gemm(r, b, a, gcur, false, self.weight(l), true, 0.0, gnext);
                if l > 0 {
                    gnext.iter_mut().zip(&ws.d[l - 1][..r * a]).for_each(|(g, d)| *g *= d);
                }
                cur = 1 - cur;
            }
        }
        cur
    }

    /// Errors unless `class` names a score of this model.
    pub(crate) fn check_class(&self, op: &'static str, class: usize) -> Result<()> {
        let limit = if self.output() == Output::Sigmoid { 2 } else { self.n_outputs() };
        if class >= limit {
            return Err(Error::arg(
                op,
                format!("class {class} is out of range; the model has classes 0..{}", limit - 1),
            ));
        }
        Ok(())
    }
}

/// Σ wᵢ after checking length and finiteness; errors unless it is positive.
/// The loss and weight gradient summed over `n` events, computed in a fixed number of parts
/// ([`GRAD_PARTS`], each whole blocks of `chunk` consecutive events) in parallel and added in
/// part order, so every bit is the same for any thread count. `part(blocks, grad)` computes one
/// part: it is given the part's blocks of event indices and a zeroed gradient buffer (which the
/// first block may overwrite), and returns the part's loss.
pub(crate) fn summed_over_parts(
    n: usize,
    chunk: usize,
    n_params: usize,
    part: impl Fn(&mut dyn Iterator<Item = Vec<usize>>, &mut [f32]) -> f64 + Sync,
) -> (f64, Vec<f32>) {
    let size = n.div_ceil(GRAD_PARTS).div_ceil(chunk) * chunk;
    let parts: Vec<(f64, Vec<f32>)> = (0..n.div_ceil(size))
        .into_par_iter()
        .map(|p| {
            let mut grad = vec![0.0f32; n_params];
            let end = ((p + 1) * size).min(n);
            let mut blocks = (p * size..end).step_by(chunk).map(|start| (start..(start + chunk).min(end)).collect());
            let loss = part(&mut blocks, &mut grad);
            (loss, grad)
        })
        .collect();
    let mut total = vec![0.0f32; n_params];
    let mut loss = 0.0;
    for (l, g) in parts {
        loss += l;
        total.iter_mut().zip(&g).for_each(|(t, v)| *t += v);
    }
    (loss, total)
}

pub(crate) fn check_weights(op: &'static str, weights: Option<&[f32]>, n: usize) -> Result<f64> {
    let Some(w) = weights else {
        return Ok(n as f64);
    };
    if w.len() != n {
        return Err(Error::Shape { op, expected: format!("{n} event weights"), got: format!("{}", w.len()) });
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::arg(op, format!("event weight {i} is {}", w[i])));
    }
    let sum: f64 = w.iter().map(|&v| f64::from(v)).sum();
    if sum <= 0.0 {
        return Err(Error::arg(op, format!("event weights must have a positive sum, got {sum}")));
    }
    Ok(sum)
}

/// A standard-layout copy of value targets whose rows are not contiguous (else `None`).
pub(crate) fn standard_targets(t: Targets<'_>) -> Option<Array2<f32>> {
    match t {
        Targets::Values(v) if !v.is_standard_layout() => Some(v.as_standard_layout().into_owned()),
        _ => None,
    }
}

/// One event's objective value; writes ∂objective/∂logits into `g`.
pub(crate) fn objective_row(out: Output, z: &[f32], target: &GradTarget<'_>, i: usize, g: &mut [f32]) -> f32 {
    match *target {
        GradTarget::Custom(f) => f(i, z, g),
        GradTarget::LossOfPredicted => loss_grad_row(out, z, RowTarget::Class(class_of_row(out, z)), 1.0, g) as f32,
        GradTarget::Loss(t) => loss_grad_row(out, z, t.row(i), 1.0, g) as f32,
        GradTarget::Logit { class } => {
            g.fill(0.0);
            if out == Output::Sigmoid {
                let sign = if class == 1 { 1.0 } else { -1.0 };
                g[0] = sign;
                sign * z[0]
            } else {
                g[class] = 1.0;
                z[class]
            }
        }
        GradTarget::Score { class } => match out {
            Output::Sigmoid => {
                let s = super::activation::sigmoid(z[0]);
                let sign = if class == 1 { 1.0 } else { -1.0 };
                g[0] = sign * s * (1.0 - s);
                if class == 1 {
                    s
                } else {
                    1.0 - s
                }
            }
            Output::Softmax => {
                g.copy_from_slice(z);
                out.scores_row(g);
                let pc = g[class];
                g.iter_mut().for_each(|p| *p *= -pc);
                g[class] += pc;
                pc
            }
            Output::Linear => {
                g.fill(0.0);
                g[class] = 1.0;
                z[class]
            }
        },
    }
}

#[cfg(test)]
#[path = "backward_tests.rs"]
mod tests;
