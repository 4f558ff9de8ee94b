//! The per-event θ gradient of a fused MLP, block by block: for each block of events (the
//! MLP's own chunks of [`INFER_CHUNK`]), in one parallel task, the varied columns with their
//! `dx/dθ`, the derived features with theirs, the model's inputs, its forward and backward
//! pass and the chain rule back to θ — no `n × d` matrix and no dataset built per step.
//!
//! Every row's arithmetic is that of the reference paths ([`Prepared::columns`] with
//! `ThetaSpace`'s chain rule, and the varied dataset of [`Prepared::point`]), and the MLP sees
//! the same chunks, so the results are the same to the bit, whatever the threads. Where the
//! reference would stop with an error (a non-finite varied or derived value, a failing
//! interpolation), or where it would drop a derivative that is exactly 0 on every event (a
//! column-wide property a block cannot see), the fused path gives up (`None`) and the caller
//! takes the reference path, which reports the error or computes the rare case. Weight effects
//! are not evaluated: no score depends on them (the only error they can raise, a code-1/4
//! ratio ≤ 0, does not depend on θ, and the attacks meet it in their clean pass at θ = 0).

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::derived::PerNuisance;
use super::prepared::{Prepared, Theta};
use super::theta_grad::EventValue;
use crate::data::expr::{Dual, Expr, Table};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Mlp, INFER_CHUNK};

const OP: &str = "vary";

/// The nominal dataset with one block's columns laid over it, as an expression table (the
/// block's rows only; ids past the dataset's own are overlay columns, as in `Overlay`).
struct Block<'a> {
    ds: &'a Dataset,
    start: usize,
    len: usize,
    names: &'a [String],
    values: &'a [Vec<f64>],
}

impl Block<'_> {
    fn base(&self) -> usize {
        self.ds.n_features() + 2
    }
}

impl Table for Block<'_> {
    fn rows(&self) -> usize {
        self.len
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        match self.names[..self.values.len()].iter().rposition(|n| n == name) {
            Some(i) => Some(self.base() + i),
            None => (&self.ds).lookup(name),
        }
    }

    fn available(&self) -> Vec<String> {
        (&self.ds).available()
    }

    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64> {
        match id.checked_sub(self.base()) {
            Some(i) => self.values[i][start..start + len].to_vec(),
            None => (&self.ds).fill(id, self.start + start, len),
        }
    }
}

/// What one block reports: `None` to give up, else per varied target and tracked nuisance
/// whether its derivative is live and non-zero somewhere in the block.
type Outcome = Option<Vec<bool>>;

/// [`super::ThetaSpace::event_grad`] for an MLP on [`Prepared::flat`] systematics: `base` is
/// the model's inputs on the nominal events, `inputs` their names. `None`: take the reference
/// path (see the module's doc).
pub(super) fn event_grad(
    mlp: &Mlp,
    prep: &Prepared,
    inputs: &[String],
    base: &Array2<f32>,
    theta: &Array2<f64>,
    target: &GradTarget<'_>,
) -> Option<EventValue> {
    let ds = prep.dataset();
    let (n, k) = (ds.len(), prep.systematics().nuisances().len());
    let th = Theta::PerEvent(theta.view());
    if !prep.flat() || th.check(n, k).is_err() || base.dim() != (n, mlp.n_inputs()) {
        return None;
    }
    let base = base.as_slice()?;
    let tracked: Vec<usize> = (0..k).collect();
    let plans = prep.plans(&tracked);
    let derived: Vec<_> = prep.systematics().derived_in_order().collect();
    // The columns in `Columns` order: varied targets, then derived features.
    let mut names: Vec<String> = prep.targets.iter().map(|t| t.name()).collect();
    names.extend(derived.iter().map(|d| d.target.name()));
    // Per model input, the column it reads (the last of that name), if θ moves it.
    let source: Vec<Option<usize>> = inputs.iter().map(|i| names.iter().rposition(|c| c == i)).collect();
    let (d, nk) = (mlp.n_inputs(), mlp.n_outputs());
    let nosum = |coll: &str, _: &Expr| -> Result<Dual> {
        Err(Error::arg(OP, format!("internal: a sum over '{coll}' outside a dataset")))
    };

    // One block, end to end; `o` is its rows of ∂f/∂θ (zeros on entry).
    let block =
        |start: usize, len: usize, o: &mut [f64], value: &mut [f32], scores: &mut [f32], classes: &mut [i64]| {
            let mut values: Vec<Vec<f64>> = Vec::with_capacity(names.len());
            let mut tangents: Vec<PerNuisance> = Vec::with_capacity(names.len());
            let mut nonzero = Vec::with_capacity(plans.len() * k);
            for (plan, x0) in &plans {
                let mut x = vec![0.0; len];
                let mut dx: Vec<Option<Vec<f64>>> = plan.live.iter().map(|&l| l.then(|| vec![0.0; len])).collect();
                let mut views: Vec<Option<&mut [f64]>> = dx.iter_mut().map(|d| d.as_deref_mut()).collect();
                plan.apply(&th, x0, None, start, &mut x, &mut views).ok()?;
                // As a dataset stores it (f32); a non-finite value is the reference's error.
                for v in x.iter_mut() {
                    let f = *v as f32;
                    if !f.is_finite() {
                        return None;
                    }
                    *v = f64::from(f);
                }
                nonzero.extend(dx.iter().map(|d| d.as_ref().is_some_and(|d| d.iter().any(|v| *v != 0.0))));
                values.push(x);
                tangents.push(dx);
            }
            for dv in &derived {
                let table = Block { ds, start, len, names: &names, values: &values };
                let find = |c: &str| names[..tangents.len()].iter().rposition(|n| n == c).map(|i| tangents[i].clone());
                let Dual { value, tangents: t } = dv.expr.eval_dual(&table, k, &find, &nosum, OP).ok()?;
                let mut value = value;
                for v in value.iter_mut() {
                    *v = f64::from(*v as f32);
                    if !v.is_finite() {
                        return None;
                    }
                }
                values.push(value);
                tangents.push(t);
            }
            let mut x = vec![0.0f32; len * d];
            for (r, row) in x.chunks_exact_mut(d).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = match source[j] {
                        Some(c) => values[c][r] as f32,
                        None => base[(start + r) * d + j],
                    };
                }
            }
            let mut gx = vec![0.0f32; len * d];
            mlp.input_grad_block(start, &x, target, value, scores, classes, &mut gx);
            // The chain rule, per row summed over the inputs in order (as `ThetaSpace::chain`).
            for (j, c) in source.iter().enumerate() {
                let Some(c) = c else { continue };
                for (kk, t) in tangents[*c].iter().enumerate() {
                    let Some(t) = t else { continue };
                    for r in 0..len {
                        o[r * k + kk] += f64::from(gx[r * d + j]) * t[r];
                    }
                }
            }
            Some(nonzero)
        };

    let mut grad = Array2::<f64>::zeros((n, k));
    let mut scores = Array2::<f32>::zeros((n, nk));
    let mut value = vec![0.0f32; n];
    let mut classes = vec![0i64; n];
    let outcomes: Vec<Outcome> = grad
        .axis_chunks_iter_mut(Axis(0), INFER_CHUNK)
        .into_par_iter()
        .zip(scores.axis_chunks_iter_mut(Axis(0), INFER_CHUNK))
        .zip(value.par_chunks_mut(INFER_CHUNK).zip(classes.par_chunks_mut(INFER_CHUNK)))
        .enumerate()
        .map(|(b, ((mut g, mut s), (v, c)))| {
            let (o, s) = (g.as_slice_mut()?, s.as_slice_mut()?);
            block(b * INFER_CHUNK, v.len(), o, v, s, c)
        })
        .collect();
    // The reference drops a varied column's derivative that is 0 on every event: give up then.
    let mut any = vec![false; plans.len() * k];
    for o in outcomes {
        for (a, z) in any.iter_mut().zip(o?) {
            *a |= z;
        }
    }
    let live = plans.iter().flat_map(|(p, _)| p.live.iter().copied());
    if live.zip(&any).any(|(l, a)| l && !a) {
        return None;
    }
    Some(EventValue { value, grad, scores, classes })
}

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;
