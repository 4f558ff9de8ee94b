//! A classifier's outputs as functions of the nuisance parameters, with their gradients in θ
//! space: per event (each event its own θ) and for a population quantity (one θ for the
//! whole sample).
//!
//! The chain rule: `∂f/∂θₖ = Σⱼ ∂f/∂xⱼ · ∂xⱼ/∂θₖ`, with `∂f/∂x` from the model
//! ([`Model::input_grad_and_scores`]) and `∂x/∂θ` from [`Prepared::point`] — forward mode
//! through every effect (the interpolation codes with their slopes) and through the derived
//! features' expressions. Weight effects change no score; they enter the population
//! quantities through `∂w/∂θ`. For an MLP, the per-event gradient runs block by block end to
//! end (`fused.rs`), with the same results.
//!
//! **Population quantities** (weighted, over the events passing an optional `region` cut
//! evaluated on the varied events): the yield `Σ w·[s > t]`, the efficiency
//! `Σ w·[s > t] / Σ w` and the mean score `Σ w·s / Σ w`. The step `[s > t]` has no useful
//! gradient, so the gradient is taken of a sigmoid surrogate `σ((s − t)/τ)` (temperature
//! τ); the value reported is always the hard cut's. The region cut is hard (events do not
//! enter or leave it smoothly; its boundary contributes no gradient).

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::derived::{Columns, PerNuisance};
use super::prepared::{Prepared, Theta};
use super::quantity::{Quantity, QuantityKind};
use super::Target;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Model, Output};

/// What a coherent attack measures.
#[derive(Clone, Debug)]
pub struct Population {
    /// The quantity (kind, score threshold `t`, region cut applied to the varied events), as
    /// [`Quantity::measure`] defines it: `[s > t]` is the hard selection.
    pub quantity: Quantity,
    /// The surrogate's temperature τ (> 0), in score units.
    pub temperature: f64,
}

/// The quantity at one θ: the hard value, the surrogate and its gradient.
#[derive(Clone, Debug)]
pub struct PopulationValue {
    /// With the hard cut `[s > t]`.
    pub hard: f64,
    /// With the surrogate `σ((s − t)/τ)` (the mean score has no surrogate: equal to `hard`).
    pub soft: f64,
    /// `∂soft/∂θ`, one entry per nuisance.
    pub grad: Vec<f64>,
}

/// Per event, the objective and its gradient in θ.
#[derive(Clone, Debug)]
pub struct EventValue {
    /// The objective per event.
    pub value: Vec<f32>,
    /// `∂value/∂θ`, `n × K`.
    pub grad: Array2<f64>,
    /// The model's scores, `n × k`.
    pub scores: Array2<f32>,
    /// The predicted classes.
    pub classes: Vec<i64>,
}

/// A model and a systematics model prepared on a dataset: the model's inputs at any θ with
/// their θ gradients.
pub struct ThetaSpace<'a> {
    model: &'a dyn Model,
    prep: Prepared,
    /// The model's input names (event columns of the dataset).
    inputs: Vec<String>,
    /// The model's inputs on the nominal events, when [`Prepared::flat`]: a step's inputs are
    /// these with the varied and derived columns written over them (no dataset built).
    base: Option<Array2<f32>>,
}

/// Rows per parallel task of the chain rule.
const CHAIN_ROWS: usize = 4096;

impl<'a> ThetaSpace<'a> {
    /// Prepares `syst` on `ds` for `model`, which must read event features by name.
    pub fn new(model: &'a dyn Model, ds: &Dataset, syst: &super::Systematics) -> Result<ThetaSpace<'a>> {
        if !model.inputs_are_features() || model.feature_names().is_none() {
            return Err(Error::arg(
                "nuisance_attack",
                "needs a model that reads event features by name (train it with features, or fit its standardisation); a set model's object slots have no θ tangents",
            ));
        }
        if syst.nuisances().is_empty() {
            return Err(Error::arg("nuisance_attack", "the systematics model has no nuisance parameter"));
        }
        let prep = Prepared::new(ds, syst)?;
        let inputs = model.input_names();
        let x = model_inputs(model, ds)?;
        let base = prep.flat().then_some(x);
        Ok(ThetaSpace { model, prep, inputs, base })
    }

    /// The number of nuisances K.
    pub fn n_nuisances(&self) -> usize {
        self.prep.systematics().nuisances().len()
    }

    /// The number of events.
    pub fn n_events(&self) -> usize {
        self.prep.dataset().len()
    }

    /// The model.
    pub fn model(&self) -> &dyn Model {
        self.model
    }

    /// The prepared systematics.
    pub fn prepared(&self) -> &Prepared {
        &self.prep
    }

    /// The model's inputs on the nominal events (when [`Prepared::flat`]).
    #[cfg(test)]
    pub(super) fn base(&self) -> Option<&Array2<f32>> {
        self.base.as_ref()
    }

    /// The varied dataset at θ.
    pub fn vary(&self, theta: Theta<'_>) -> Result<Dataset> {
        self.prep.vary(theta)
    }

    /// The model's scores and classes at θ (no gradient), without building the varied
    /// dataset when [`Prepared::flat`].
    pub fn scores_only(&self, theta: Theta<'_>) -> Result<(Array2<f32>, Vec<i64>)> {
        if let (Some(base), Some(cols)) = (&self.base, self.prep.columns_for(theta, &[])?) {
            let x = self.inputs_over(base, &cols, None);
            return self.scored(x);
        }
        self.scores(theta).map(|(_, z, c)| (z, c))
    }

    /// The varied dataset, the model's scores and classes at θ (no gradient).
    pub fn scores(&self, theta: Theta<'_>) -> Result<(Dataset, Array2<f32>, Vec<i64>)> {
        let data = self.prep.vary(theta)?;
        let x = model_inputs(self.model, &data)?;
        let (z, classes) = self.scored(x)?;
        Ok((data, z, classes))
    }

    /// The model's scores and classes on its inputs `x`.
    fn scored(&self, x: Array2<f32>) -> Result<(Array2<f32>, Vec<i64>)> {
        let mut z = self.model.logits(x.view())?;
        crate::metrics::check_output_rows("nuisance_attack", z.view())?;
        let classes = self.model.classes_from_logits(&z);
        let out = self.model.output();
        for mut row in z.rows_mut() {
            if let Some(s) = row.as_slice_mut() {
                out.scores_row(s);
            }
        }
        Ok((z, classes))
    }

    /// Per event: `objective` of the outputs (as [`GradTarget::Custom`]) at per-event θ
    /// (`n × K`), with its gradient in θ.
    pub fn event_grad(&self, theta: &Array2<f64>, target: GradTarget<'_>) -> Result<EventValue> {
        self.event_grad_rows(theta, None, target)
    }

    /// [`ThetaSpace::event_grad`] for the events `rows` only (the rows of the result; the
    /// objective's row index counts within `rows`); θ of the other events is not read.
    pub fn event_grad_rows(
        &self,
        theta: &Array2<f64>,
        rows: Option<&[usize]>,
        target: GradTarget<'_>,
    ) -> Result<EventValue> {
        if let (None, Some(base), Some(mlp), GradTarget::Custom(_)) = (rows, &self.base, self.model.as_mlp(), target) {
            if let Some(ev) = super::fused::event_grad(mlp, &self.prep, &self.inputs, base, theta, &target) {
                return Ok(ev);
            }
        }
        let th = Theta::PerEvent(theta.view());
        if let (Some(base), Some(cols)) = (&self.base, self.prep.columns(th)?) {
            let x = self.inputs_over(base, &cols, rows);
            let r = self.model.input_grad_and_scores(x.view(), target)?;
            let grad = self.chain(&cols.tangents, &r.grad, rows);
            return Ok(EventValue { value: r.value, grad, scores: r.scores, classes: r.classes });
        }
        self.event_grad_dataset(theta, rows, target)
    }

    /// [`ThetaSpace::event_grad_rows`] through the varied dataset ([`Prepared::point`]): the
    /// reference the faster paths reproduce.
    pub(super) fn event_grad_dataset(
        &self,
        theta: &Array2<f64>,
        rows: Option<&[usize]>,
        target: GradTarget<'_>,
    ) -> Result<EventValue> {
        let th = Theta::PerEvent(theta.view());
        let point = self.prep.point(th)?;
        let mut x = model_inputs(self.model, &point.data)?;
        if let Some(rows) = rows {
            x = x.select(Axis(0), rows);
        }
        let r = self.model.input_grad_and_scores(x.view(), target)?;
        let grad = self.chain(&point.tangents, &r.grad, rows);
        Ok(EventValue { value: r.value, grad, scores: r.scores, classes: r.classes })
    }

    /// The model's inputs (rows `rows`, else all): the nominal ones with every varied and
    /// derived column of `cols` written over its input.
    fn inputs_over(&self, base: &Array2<f32>, cols: &Columns, rows: Option<&[usize]>) -> Array2<f32> {
        let mut x = match rows {
            Some(rows) => base.select(Axis(0), rows),
            None => base.clone(),
        };
        for (j, name) in self.inputs.iter().enumerate() {
            if let Some(v) = cols.value(name) {
                let mut c = x.column_mut(j);
                match rows {
                    Some(rows) => c.iter_mut().zip(rows).for_each(|(x, &i)| *x = v[i] as f32),
                    None => c.iter_mut().zip(v).for_each(|(x, v)| *x = *v as f32),
                }
            }
        }
        x
    }

    /// `∂f/∂θ` per event from `∂f/∂x` (`n × D`, the model's inputs; row r is event
    /// `rows[r]` when given): `Σⱼ ∂f/∂xⱼ · ∂xⱼ/∂θₖ`.
    fn chain(&self, tangents: &[(Target, PerNuisance)], gx: &Array2<f32>, rows: Option<&[usize]>) -> Array2<f64> {
        let k = self.n_nuisances();
        // Per model input j, its tangents (only the inputs θ moves).
        let mut cols: Vec<(usize, &Vec<Option<Vec<f64>>>)> = Vec::new();
        for (j, name) in self.inputs.iter().enumerate() {
            let found = tangents.iter().rev().find(|(t, _)| matches!(t, Target::Column(c) if c == name));
            if let Some((_, per)) = found {
                if per.iter().any(Option::is_some) {
                    cols.push((j, per));
                }
            }
        }
        let n = gx.nrows();
        let mut out = Array2::<f64>::zeros((n, k));
        let dim = gx.ncols();
        let gx = gx.as_standard_layout();
        let g = gx.as_slice().unwrap_or_default();
        // Per block of rows, one (input, nuisance) pair at a time: each row's sum still runs
        // over the inputs in order, so the result does not depend on the blocks.
        out.axis_chunks_iter_mut(Axis(0), CHAIN_ROWS).into_par_iter().enumerate().for_each(|(b, mut chunk)| {
            let start = b * CHAIN_ROWS;
            let len = chunk.nrows();
            let Some(o) = chunk.as_slice_mut() else { return };
            for (j, per) in &cols {
                for (kk, d) in per.iter().enumerate() {
                    let Some(d) = d else { continue };
                    for r in 0..len {
                        let i = start + r;
                        let e = rows.map_or(i, |rows| rows[i]);
                        o[r * k + kk] += f64::from(g[i * dim + j]) * d[e];
                    }
                }
            }
        });
        out
    }

    /// The population quantity at a shared θ: hard value, surrogate and its gradient.
    pub fn population(&self, theta: &[f64], pop: &Population) -> Result<PopulationValue> {
        let k = self.n_nuisances();
        let point = self.prep.point(Theta::Shared(theta))?;
        let x = model_inputs(self.model, &point.data)?;
        let class = match (self.model.output(), self.model.n_outputs()) {
            (Output::Sigmoid, 1) => 1,
            (Output::Linear, 1) => 0,
            _ => {
                return Err(Error::arg(
                    "nuisance_attack",
                    format!(
                        "a coherent attack needs a single-output model (one score per event), got {} outputs",
                        self.model.n_outputs()
                    ),
                ))
            }
        };
        let r = self.model.input_grad_and_scores(x.view(), GradTarget::Score { class })?;
        let gx = self.chain(&point.tangents, &r.grad, None);
        let n = point.data.len();
        let w: Vec<f64> = point.data.weights_or_ones().iter().map(|&v| f64::from(v)).collect();
        let inside = pop.quantity.region_mask(&point.data)?;
        let (t, tau) = (pop.quantity.threshold.unwrap_or(f64::NEG_INFINITY), pop.temperature);
        // Per event: hard and soft selection values, the soft one's slope in s.
        let sel = |s: f64| -> (f64, f64, f64) {
            match pop.quantity.kind {
                QuantityKind::MeanScore => (s, s, 1.0),
                _ => {
                    let a = 1.0 / (1.0 + (-(s - t) / tau).exp());
                    (if s > t { 1.0 } else { 0.0 }, a, a * (1.0 - a) / tau)
                }
            }
        };
        let (mut num_h, mut num_s, mut den) = (0.0, 0.0, 0.0);
        let (mut dnum, mut dden) = (vec![0.0; k], vec![0.0; k]);
        for i in (0..n).filter(|&i| inside[i]) {
            let s = f64::from(r.scores[[i, 0]]);
            let (h, a, da) = sel(s);
            num_h += w[i] * h;
            num_s += w[i] * a;
            den += w[i];
            for kk in 0..k {
                let dw = point.weight_tangent.as_ref().map_or(0.0, |d| d[kk][i]);
                dnum[kk] += dw * a + w[i] * da * gx[[i, kk]];
                dden[kk] += dw;
            }
        }
        let ratio = !matches!(pop.quantity.kind, QuantityKind::Yield);
        if ratio && den <= 0.0 {
            return Err(Error::arg(
                "nuisance_attack",
                format!("no weighted event in the region for the {} (Σw = {den})", pop.quantity.kind.as_str()),
            ));
        }
        Ok(if ratio {
            let grad = (0..k).map(|kk| (dnum[kk] * den - num_s * dden[kk]) / (den * den)).collect();
            PopulationValue { hard: num_h / den, soft: num_s / den, grad }
        } else {
            PopulationValue { hard: num_h, soft: num_s, grad: dnum }
        })
    }
}

/// The model's input matrix from a dataset (an MLP with feature names takes them by name).
pub(crate) fn model_inputs(m: &dyn Model, ds: &Dataset) -> Result<Array2<f32>> {
    match (m.as_mlp(), m.feature_names()) {
        (Some(_), Some(names)) => m.inputs(&ds.select(&names)?),
        _ => m.inputs(ds),
    }
}
