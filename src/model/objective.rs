//! Training on a *batch objective*: a loss of a whole minibatch's outputs, not a sum of
//! per-event losses.
//!
//! [`Trainer`](super::Trainer) splits each minibatch into two halves and adds their gradients,
//! which is right for a sum of per-event losses and wrong for a loss that compares whole
//! distributions (a Wasserstein distance of the batch to a target). Here each minibatch is run
//! forward (two halves in parallel, activations kept), the objective sees **all** of the
//! batch's outputs at once and returns ∂objective/∂outputs, and that cotangent is propagated
//! back through the two halves (a vector–Jacobian product is linear, so the split is exact).
//!
//! - [`BatchObjective`]: value and ∂/∂outputs of a minibatch (rows, outputs, event weights).
//! - [`Weighted`]: a weighted sum of named terms, itself a [`BatchObjective`].
//! - [`ObjectiveTrainer`]: the [`Solver`] (one step = one epoch) over any [`Model`]: the fused
//!   path for the [`Mlp`], [`Model::output_vjp`] otherwise; the optimiser, schedule, batch
//!   size, seed and frozen groups come from a [`TrainConfig`]; it stops as converged when the
//!   epoch objective improves by less than a relative tolerance for a number of epochs.

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;

use std::ops::Range;

use super::finetune::step_plan;
use super::interface::Model;
use super::mlp::Mlp;
use super::train::{check_config, with_params_mut, OptState, TrainConfig};
use super::workspace::{Pass, Workspace};
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;

/// A minibatch is split into two halves for the two cores from this size on.
const SPLIT_MIN: usize = 64;

/// A loss of a whole minibatch. `x` holds the batch's rows (physical units, `B × D`), `z` the
/// model's outputs (`B × k`), `w` the event weights (all 1 without weights). Writes
/// ∂objective/∂z into `grad` (`B × k`, overwritten) and returns the objective.
pub trait BatchObjective: Send + Sync {
    /// A short name (for histories and messages).
    fn name(&self) -> String;
    /// Value and gradient (see the trait documentation).
    fn eval(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32], grad: &mut Array2<f32>) -> Result<f64>;
}

/// Σₜ cₜ·termₜ: objectives combined with weights.
pub struct Weighted {
    terms: Vec<(f64, Box<dyn BatchObjective>)>,
}

impl Weighted {
    /// The weighted sum; errors on no term or a weight that is negative or not finite.
    pub fn new(terms: Vec<(f64, Box<dyn BatchObjective>)>) -> Result<Self> {
        if terms.is_empty() {
            return Err(Error::arg("objective", "needs at least one term"));
        }
        if let Some((c, t)) = terms.iter().find(|(c, _)| !(c.is_finite() && *c >= 0.0)) {
            return Err(Error::arg(
                "objective",
                format!("term '{}' has weight {c}; weights must be finite and ≥ 0", t.name()),
            ));
        }
        Ok(Weighted { terms })
    }

    /// The value of each term (unweighted), with its name, on one batch.
    pub fn parts(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32]) -> Result<Vec<(String, f64)>> {
        let mut g = Array2::zeros(z.dim());
        self.terms.iter().map(|(_, t)| Ok((t.name(), t.eval(x, z, w, &mut g)?))).collect()
    }
}

impl BatchObjective for Weighted {
    fn name(&self) -> String {
        let parts: Vec<String> = self.terms.iter().map(|(c, t)| format!("{c}·{}", t.name())).collect();
        parts.join(" + ")
    }

    fn eval(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32], grad: &mut Array2<f32>) -> Result<f64> {
        grad.fill(0.0);
        let mut g = Array2::zeros(z.dim());
        let mut total = 0.0;
        for (c, t) in &self.terms {
            if *c == 0.0 {
                continue;
            }
            total += c * t.eval(x, z, w, &mut g)?;
            let c = *c as f32;
            grad.zip_mut_with(&g, |a, b| *a += c * b);
        }
        Ok(total)
    }
}

/// When training on an objective counts as converged: the epoch objective fell by less than
/// `tol` (relative to its size) for `patience` epochs in a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Convergence {
    /// Relative tolerance.
    pub tol: f64,
    /// Epochs in a row.
    pub patience: usize,
}

/// One epoch of objective training.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean objective over the epoch's minibatches (at the weights each batch saw).
    pub objective: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// The training solver for a [`BatchObjective`] (see the module documentation).
pub struct ObjectiveTrainer<'a> {
    model: Box<dyn Model>,
    x: ArrayView2<'a, f32>,
    weights: Vec<f32>,
    objective: &'a dyn BatchObjective,
    cfg: TrainConfig,
    converge: Option<Convergence>,
    control: Control,
    /// The parameter ranges the optimiser steps, each with its factor of the rate (frozen and
    /// lr-0 groups left out; `finetune::step_plan`).
    plan: Vec<(Range<usize>, f64)>,
    state: OptState,
    ws: Vec<Workspace>,
    grads: [Vec<f32>; 2],
    history: Vec<ObjectiveRecord>,
    stalled: usize,
    _buffers: crate::memory::Reservation,
}

impl<'a> ObjectiveTrainer<'a> {
    /// Prepares training of a copy of `model` on the rows `x` (`n × D`, the model's inputs)
    /// with event weights `weights` (`None`: all 1; negative weights are refused: a batch
    /// objective compares distributions). Uses `epochs`, `batch_size`, `optimizer`,
    /// `schedule`, `seed` and `freeze` of `cfg`.
    pub fn new(
        model: &dyn Model,
        x: ArrayView2<'a, f32>,
        weights: Option<&[f32]>,
        objective: &'a dyn BatchObjective,
        cfg: &TrainConfig,
        converge: Option<Convergence>,
        control: &Control,
    ) -> Result<Self> {
        check_config(cfg)?;
        model.check_input("train", x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(Error::Empty { op: "train", what: "the training set".into() });
        }
        if let Some(c) = converge {
            if !(c.tol.is_finite() && c.tol >= 0.0) || c.patience == 0 {
                return Err(Error::BadOption {
                    func: "train".into(),
                    key: "tol".into(),
                    problem: format!(
                        "needs a finite tolerance ≥ 0 and a patience ≥ 1, got {} and {}",
                        c.tol, c.patience
                    ),
                });
            }
        }
        let weights = match weights {
            None => vec![1.0; n],
            Some(w) => {
                if w.len() != n {
                    return Err(Error::Shape {
                        op: "train",
                        expected: format!("{n} event weights"),
                        got: w.len().to_string(),
                    });
                }
                if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(Error::arg(
                        "train",
                        format!("event weight {i} is {}; a batch objective needs finite weights ≥ 0", w[i]),
                    ));
                }
                if !w.iter().any(|&v| v > 0.0) {
                    return Err(Error::arg("train", "every event weight is 0"));
                }
                w.to_vec()
            }
        };
        let model = model.box_clone();
        let batch = cfg.batch_size.min(n);
        let half = batch.div_ceil(2);
        let ws_bytes = model.as_mlp().map_or(0, |m| Workspace::bytes(m, half).saturating_mul(2));
        let state_bytes = crate::memory::bytes(model.n_params(), 4 * 5);
        let batch_bytes = crate::memory::bytes(batch.saturating_mul(x.ncols() + 2 * model.n_outputs() + 1), 4);
        let buffers = crate::memory::reserve(
            ws_bytes.saturating_add(state_bytes).saturating_add(batch_bytes).saturating_add(crate::memory::bytes(n, 4)),
            &format!("train: buffers for minibatches of {batch} events"),
        )?;
        let ws = match model.as_mlp() {
            Some(m) => vec![Workspace::new(m, half), Workspace::new(m, half)],
            None => Vec::new(),
        };
        let plan = step_plan(&*model, &cfg.freeze, &cfg.group_lr, cfg.optimizer.lr())?;
        let grads = [vec![0.0; model.n_params()], vec![0.0; model.n_params()]];
        let state = OptState::new(model.n_params());
        Ok(ObjectiveTrainer {
            model,
            x,
            weights,
            objective,
            cfg: cfg.clone(),
            converge,
            control: control.clone(),
            plan,
            state,
            ws,
            grads,
            history: Vec::new(),
            stalled: 0,
            _buffers: buffers,
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &dyn Model {
        &*self.model
    }

    /// The history so far.
    pub fn history(&self) -> &[ObjectiveRecord] {
        &self.history
    }

    /// The trained model and its history.
    pub fn finish(self) -> (Box<dyn Model>, Vec<ObjectiveRecord>) {
        (self.model, self.history)
    }

    /// The objective and its gradient (working layout, into `grads[0]`) on the rows `batch`.
    fn gradient(&mut self, batch: &[usize], seed: u64) -> Result<f64> {
        let xb = self.x.select(Axis(0), batch);
        let wb: Vec<f32> = batch.iter().map(|&i| self.weights[i]).collect();
        let k = self.model.n_outputs();
        let mut cot = Array2::<f32>::zeros((batch.len(), k));
        let Some(mlp) = self.model.as_mlp() else {
            let z = self.model.logits(xb.view())?;
            let v = self.objective.eval(xb.view(), z.view(), &wb, &mut cot)?;
            check_value(v)?;
            let g = self.model.output_vjp(xb.view(), cot.view())?;
            self.grads[0].copy_from_slice(&g);
            return Ok(v);
        };
        let [ws0, ws1] = &mut self.ws[..] else { return Err(Error::arg("train", "no minibatch buffers")) };
        let [g0, g1] = &mut self.grads;
        let split = if batch.len() >= SPLIT_MIN { batch.len() / 2 } else { batch.len() };
        let (xa, xc) = xb.view().split_at(Axis(0), split);
        let dropout = mlp.dropout() > 0.0;
        let forward = |ws: &mut Workspace, x: ArrayView2<'_, f32>, stream: u64| {
            if x.nrows() == 0 {
                return;
            }
            let r = mlp.load_rows(ws, x, None);
            let mut g = rng::rng(rng::substream(seed, stream));
            mlp.forward_ws(ws, r, if dropout { Pass::Train(&mut g) } else { Pass::Grad });
        };
        rayon::join(|| forward(ws0, xa, 0), || forward(ws1, xc, 1));
        let mut z = Array2::<f32>::zeros((batch.len(), k));
        let (na, nc) = (xa.nrows(), xc.nrows());
        if let Some(s) = z.as_slice_mut() {
            s[..na * k].copy_from_slice(ws0.logits(mlp, na));
            if nc > 0 {
                s[na * k..].copy_from_slice(ws1.logits(mlp, nc));
            }
        }
        let v = self.objective.eval(xb.view(), z.view(), &wb, &mut cot)?;
        check_value(v)?;
        let cs = cot.as_slice().ok_or_else(|| Error::Tensor("objective gradient not contiguous".into()))?;
        if let Some(i) = cs.iter().position(|g| !g.is_finite()) {
            return Err(Error::arg(
                "train",
                format!("the objective's gradient is {} at output {i} of the batch", cs[i]),
            ));
        }
        let backward = |ws: &mut Workspace, g: &mut Vec<f32>, c: &[f32], r: usize| {
            if r == 0 {
                g.fill(0.0);
                return;
            }
            ws.g[0][..r * k].copy_from_slice(c);
            mlp.backward_ws(ws, r, Some((g, false)), false);
        };
        let (ca, cc) = cs.split_at(na * k);
        rayon::join(|| backward(ws0, g0, ca, na), || backward(ws1, g1, cc, nc));
        g0.iter_mut().zip(g1.iter()).for_each(|(s, v)| *s += v);
        Ok(v)
    }
}

fn check_value(v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::arg("train", format!("the objective became {v}; lower the learning rate")))
    }
}

impl Solver for ObjectiveTrainer<'_> {
    fn name(&self) -> &'static str {
        "train_objective"
    }

    fn step(&mut self, iter: usize) -> Result<Kv> {
        let lr = self.cfg.schedule.lr(self.cfg.optimizer.lr(), iter, self.cfg.epochs);
        let epoch_seed = rng::substream(self.cfg.seed, iter as u64);
        let mut order: Vec<usize> = (0..self.x.nrows()).collect();
        order.shuffle(&mut rng::rng(epoch_seed));
        let (mut total, mut batches) = (0.0, 0usize);
        for (b, batch) in order.chunks(self.cfg.batch_size).enumerate() {
            if b % 16 == 0 {
                self.control.check()?;
            }
            total += self.gradient(batch, rng::substream(epoch_seed, b as u64 + 1))?;
            batches += 1;
            let (state, opt, grads, plan) = (&mut self.state, &self.cfg.optimizer, &self.grads[0], &self.plan);
            with_params_mut(&mut *self.model, |p| {
                state.step_ranges(opt, lr, plan, p, grads);
            })?;
        }
        let objective = total / batches.max(1) as f64;
        if let (Some(c), Some(prev)) = (self.converge, self.history.last()) {
            let gain = prev.objective - objective;
            if gain < c.tol * prev.objective.abs().max(f64::MIN_POSITIVE) {
                self.stalled += 1;
            } else {
                self.stalled = 0;
            }
        }
        self.history.push(ObjectiveRecord { epoch: iter + 1, objective, lr });
        Ok(vec![("objective", objective), ("lr", lr)])
    }

    fn stop(&self) -> Option<Stop> {
        let c = self.converge?;
        (self.stalled >= c.patience).then_some(Stop::Converged)
    }
}

/// ∂(Σ cot·outputs)/∂weights of the fused MLP (working layout) on the rows `x`: the
/// vector–Jacobian product of its outputs, summed over events in a fixed order of parts.
pub(crate) fn mlp_output_vjp(mlp: &Mlp, x: ArrayView2<'_, f32>, cot: ArrayView2<'_, f32>) -> Result<Vec<f32>> {
    mlp.check_input("output_vjp", x)?;
    let k = mlp.n_outputs();
    if cot.dim() != (x.nrows(), k) {
        return Err(Error::Shape {
            op: "output_vjp",
            expected: format!("{} × {k} output gradients", x.nrows()),
            got: format!("{:?}", cot.dim()),
        });
    }
    if x.nrows() == 0 {
        return Ok(vec![0.0; mlp.n_params()]);
    }
    let chunk = super::backward::GRAD_CHUNK;
    let (_, g) = super::backward::summed_over_parts(x.nrows(), chunk, mlp.n_params(), |blocks, grad| {
        super::workspace::with_workspace(mlp, chunk, |ws| {
            for (b, idx) in blocks.enumerate() {
                let r = mlp.load_rows(ws, x, Some(&idx));
                mlp.forward_ws(ws, r, Pass::Grad);
                for (dst, &i) in ws.g[0][..r * k].chunks_exact_mut(k).zip(&idx) {
                    dst.iter_mut().zip(cot.row(i)).for_each(|(d, c)| *d = *c);
                }
                mlp.backward_ws(ws, r, Some((grad, b > 0)), false);
            }
            0.0
        })
    });
    Ok(g)
}

#[cfg(test)]
#[path = "objective_tests.rs"]
mod tests;
