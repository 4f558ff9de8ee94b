//! The model interface every attack, scan, metric, training loop and spectrum works through.
//!
//! A [`Model`] maps a row-major `n × D` f32 matrix of events **in physical units** to `n × k`
//! logits. `D = n_inputs()`: for an event-level network (the fused [`Mlp`], [`CandleMlp`]) the
//! dataset's features; for a set model the event features followed by a flattened, padded
//! object block — the model knows that layout, so code that holds a dataset goes through
//! [`Model::inputs`] (dataset → matrix) and [`Model::with_inputs`] (perturbed matrix → dataset)
//! and never reads `Dataset::x` directly when a model is involved.
//!
//! **Parameters.** A model has one flat parameter vector in a *documented flat order*
//! ([`Model::params_flat`]; PyTorch's `parameters_to_vector` order for the MLPs) split into
//! named, contiguous groups ([`Model::param_groups`]; one per layer for the MLPs), which
//! training can freeze. Numerics in weight space (gradients, optimiser steps, perturbations,
//! Hessian products) use the model's *working layout* ([`Model::params`],
//! [`Model::weight_grad`]): the same values and the same group ranges, possibly permuted
//! inside a group (the fused MLP stores each weight in × out for its GEMMs).
//! [`Model::flat_order`] gives the permutation; [`to_flat`] / [`from_flat`] apply it.
//!
//! **Implementations.** [`Mlp`] delegates every method to its fused kernels (bit-identical to
//! calling them directly, and as fast); [`CandleMlp`] (candle-core autograd) is the general
//! path for other architectures and an independent cross-check. A new architecture
//! implements the required methods; the defaults build the rest from them.
//!
//! [`CandleMlp`]: super::CandleMlp

use std::ops::Range;
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};

use super::backward::{check_weights, standard_targets, GradTarget, InputGrad};
use super::eval::{class_of_row, Evaluation};
use super::loss::{check_labels, loss_row, Output, Targets};
use super::mlp::Mlp;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics;

/// Rows per block when [`Model::logits_with`]'s default builds its input matrix.
const FILL_CHUNK: usize = 256;

/// A named, contiguous range of the flat parameter vector (the same range in the working
/// layout): a layer of an MLP, a block of a set network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamGroup {
    /// The group's name (`layer0`, `layer1`, … for the MLPs).
    pub name: String,
    /// Its indices in the flat vector.
    pub range: Range<usize>,
}

/// The Hessian of a model's event-weighted mean training loss on fixed events, ready for
/// Hessian-vector products. Vectors are in the model's working layout; with `group` they hold
/// that group's parameters only and the product is the group's diagonal block.
pub trait HessianProduct: Send + Sync {
    /// The loss at the model's weights.
    fn loss(&self) -> f64;
    /// `H·v` (of the whole Hessian, or of a group's diagonal block).
    fn apply(&self, v: &[f32], group: Option<usize>) -> Result<Vec<f32>>;
    /// `vᵀHv`; the default forms `H·v`.
    fn quadratic_form(&self, v: &[f32], group: Option<usize>) -> Result<f64> {
        let hv = self.apply(v, group)?;
        Ok(v.iter().zip(&hv).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum())
    }
}

/// A trained or trainable model (see the module documentation).
pub trait Model: Send + Sync + std::fmt::Debug {
    // === Identity ===

    /// The implementation's name, written as `kind` into saved files so [`load_model`] rebuilds
    /// the same implementation (`mlp`, `candle_mlp`, …).
    fn kind(&self) -> &'static str;

    /// One line for people: architecture, output, parameter count.
    fn describe(&self) -> String;

    /// A boxed copy.
    fn box_clone(&self) -> Box<dyn Model>;

    /// The fused [`Mlp`], when this is one: generic code takes its fused fast paths (training
    /// minibatches with dropout) through it.
    fn as_mlp(&self) -> Option<&Mlp> {
        None
    }

    /// [`Model::as_mlp`], mutably.
    fn as_mlp_mut(&mut self) -> Option<&mut Mlp> {
        None
    }

    // === Shape and the dataset boundary ===

    /// D, the width of an input row.
    fn n_inputs(&self) -> usize;

    /// k, the number of logits.
    fn n_outputs(&self) -> usize;

    /// The output layer and its loss.
    fn output(&self) -> Output;

    /// The dataset features the model expects, if known (`None` until fitted to a dataset,
    /// when only their count is checked).
    fn feature_names(&self) -> Option<Vec<String>>;

    /// Names of the D input entries (for an event-level model: its features, or `x0`, `x1`, …
    /// when unknown).
    fn input_names(&self) -> Vec<String> {
        self.feature_names().unwrap_or_else(|| (0..self.n_inputs()).map(|j| format!("x{j}")).collect())
    }

    /// Errors unless the dataset has the features the model expects (names and order when the
    /// model knows them); the message lists both.
    fn check_features(&self, ds: &Dataset) -> Result<()>;

    /// Whether input column j is dataset feature j (event-level models). `false` for set
    /// models, whose inputs hold an object count and padded slots: attacks that move or
    /// shuffle input columns without a per-object uncertainty model refuse them.
    fn inputs_are_features(&self) -> bool {
        true
    }

    /// The set layout of a set model's inputs (event features, object count, padded slots);
    /// `None` for event-level models. Attacks expand their uncertainty model and projection
    /// over it, so padded slots and the count never move.
    fn set_layout(&self) -> Option<&super::SetLayout> {
        None
    }

    /// The model's `n × D` input matrix for a dataset (after [`Model::check_features`]).
    fn inputs(&self, ds: &Dataset) -> Result<Array2<f32>> {
        self.check_features(ds)?;
        Ok(ds.x().to_owned())
    }

    /// The dataset `ds` with its events replaced by the input rows `x` (perturbed events);
    /// labels, weights and everything the inputs do not hold are kept.
    fn with_inputs(&self, ds: &Dataset, x: Array2<f32>) -> Result<Dataset> {
        ds.with_x(x)
    }

    /// Fits the input standardisation stored in the model to a dataset and takes its feature
    /// names (training with `standardize`).
    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()>;

    /// Whether the model holds a fitted input standardisation (anything but the identity):
    /// training with `standardize: auto` keeps it rather than refitting (fine-tuning). The
    /// default `false` suits models without one.
    fn standardization_fitted(&self) -> bool {
        false
    }

    // === Forward ===

    /// Logits `n × k` of events `x` (`n × D`, physical units).
    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>>;

    /// Scores `n × k`: σ(z) for sigmoid, softmax probabilities, or the linear outputs.
    fn scores(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut z = self.logits(x)?;
        let out = self.output();
        for mut row in z.rows_mut() {
            if let Some(s) = row.as_slice_mut() {
                out.scores_row(s);
            }
        }
        Ok(z)
    }

    /// Logits of `n` events that `fill(first, rows)` writes on the fly (row-major, `rows`
    /// holding events `first..first + rows.len()/D`; `fill` must write every value), for
    /// attacks that generate many candidate events. The default fills blocks of 256 rows and
    /// calls [`Model::logits`]; the fused MLP never builds the input matrix.
    fn logits_with(&self, n: usize, fill: &(dyn Fn(usize, &mut [f32]) + Sync)) -> Result<Array2<f32>> {
        let (d, k) = (self.n_inputs(), self.n_outputs());
        let mut out = Array2::<f32>::zeros((n, k));
        for (c, mut o) in out.axis_chunks_iter_mut(Axis(0), FILL_CHUNK).enumerate() {
            let mut rows = vec![0.0f32; o.nrows() * d];
            fill(c * FILL_CHUNK, &mut rows);
            let x = ArrayView2::from_shape((o.nrows(), d), &rows).map_err(|e| Error::Tensor(e.to_string()))?;
            o.assign(&self.logits(x)?);
        }
        Ok(out)
    }

    // === Gradients ===

    /// ∂objective/∂x per event (`n × D`, physical units) for any [`GradTarget`] (including
    /// `Custom`), with the scores, objective values and predicted classes of the same pass.
    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad>;

    /// The event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ on `x` and its gradient in the working layout.
    /// Weights may be negative but must have a positive sum.
    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)>;

    /// ∂(Σᵢₖ cotᵢₖ·outputᵢₖ)/∂weights on the rows `x` (working layout): the vector–Jacobian
    /// product of the raw outputs (logits), for training on batch objectives
    /// ([`super::ObjectiveTrainer`]). The default refuses: a model that can implements it.
    fn output_vjp(&self, _x: ArrayView2<'_, f32>, _cot: ArrayView2<'_, f32>) -> Result<Vec<f32>> {
        Err(Error::arg("train", format!("a '{}' model cannot be trained on a batch objective", self.kind())))
    }

    // === Parameters ===

    /// Number of parameters.
    fn n_params(&self) -> usize;

    /// The parameters in the working layout.
    fn params(&self) -> Vec<f32>;

    /// Replaces the parameters (working layout); errors on a wrong length or a non-finite value.
    fn set_params(&mut self, p: &[f32]) -> Result<()>;

    /// `None` when the working layout is the flat order; otherwise `perm` with
    /// `flat[i] = working[perm[i]]` (a permutation inside each group).
    fn flat_order(&self) -> Option<Vec<usize>> {
        None
    }

    /// The parameters in the documented flat order.
    fn params_flat(&self) -> Vec<f32> {
        to_flat(self.flat_order().as_deref(), &self.params())
    }

    /// Replaces the parameters from the documented flat order.
    fn set_params_flat(&mut self, flat: &[f32]) -> Result<()> {
        if flat.len() != self.n_params() {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", self.n_params()),
                got: format!("{}", flat.len()),
            });
        }
        let p = from_flat(self.flat_order().as_deref(), flat);
        self.set_params(&p)
    }

    /// The named parameter groups, in flat order, covering every parameter once.
    fn param_groups(&self) -> Vec<ParamGroup>;

    /// Re-draws parameter group `group` as at construction, from `seed` (a new head for
    /// fine-tuning: training's `reinit`). The default refuses: a model that can, says how.
    fn reinit_group(&mut self, group: usize, seed: u64) -> Result<()> {
        let _ = (group, seed);
        Err(Error::arg("train", format!("a {} model cannot re-initialise its parameter groups", self.kind())))
    }

    /// The same model with its output layer replaced by a new one of `outputs` units and output
    /// `output` (e.g. a classifier's head swapped for a regression head), drawn as at
    /// construction from `seed`; every other parameter and the input standardisation are kept
    /// bit for bit. The default refuses: a model that can, says how.
    fn replace_head(&self, outputs: usize, output: Output, seed: u64) -> Result<Box<dyn Model>> {
        let _ = (outputs, output, seed);
        Err(Error::arg(
            "replace_head",
            format!("a {} model cannot replace its head (mlp, candle_mlp and pfn models can); train's `reinit: [-1]` re-draws it in place", self.kind()),
        ))
    }

    /// The ranges of the weight matrices (not the biases) in the working layout, for L1
    /// regularisation; `None` for a model that does not say (the default).
    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        None
    }

    /// The weight gradient of one training minibatch in the model's training mode, for
    /// models whose training pass is not their inference pass (ParticleNet: batch norms on
    /// batch statistics, whose running statistics this call updates, and dropout drawn from
    /// `seed`): `(weighted mean loss, its gradient)` as [`Model::weight_grad`]. `None` (the
    /// default) for models that train on [`Model::weight_grad`].
    fn train_grad(
        &mut self,
        _x: ArrayView2<'_, f32>,
        _targets: Targets<'_>,
        _weights: Option<&[f32]>,
        _seed: u64,
    ) -> Option<Result<(f64, Vec<f32>)>> {
        None
    }

    /// The training-time dropout probability (0 for models without dropout).
    fn dropout(&self) -> f32 {
        0.0
    }

    /// The exact Hessian of the event-weighted mean loss on `x`, for models that have one
    /// (`None` otherwise: spectra then take central differences of exact gradients, see
    /// `landscape::ModelHessian`).
    fn loss_hessian(
        &self,
        _x: ArrayView2<'_, f32>,
        _targets: Targets<'_>,
        _weights: Option<&[f32]>,
    ) -> Option<Result<Box<dyn HessianProduct>>> {
        None
    }

    // === Persistence ===

    /// Writes the model to `path` (atomically), with [`Model::kind`] in its metadata.
    fn save(&self, path: &Path) -> Result<()>;
}

impl Clone for Box<dyn Model> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// A working-layout vector `v` (all parameters) in flat order, given [`Model::flat_order`].
pub fn to_flat<T: Copy>(perm: Option<&[usize]>, v: &[T]) -> Vec<T> {
    match perm {
        None => v.to_vec(),
        Some(p) => p.iter().map(|&i| v[i]).collect(),
    }
}

/// A flat-order vector `v` (all parameters) in the working layout, given [`Model::flat_order`].
pub fn from_flat<T: Copy + Default>(perm: Option<&[usize]>, v: &[T]) -> Vec<T> {
    match perm {
        None => v.to_vec(),
        Some(p) => {
            let mut out = vec![T::default(); v.len()];
            for (i, &j) in p.iter().enumerate() {
                out[j] = v[i];
            }
            out
        }
    }
}

/// A working-layout vector of one parameter group (or all parameters with `None`) in flat
/// order; errors unless `v` has the group's length.
pub fn group_to_flat<T: Copy + Default>(model: &dyn Model, v: &[T], group: Option<usize>, to: bool) -> Result<Vec<T>> {
    let range = model.group_range(group)?;
    if v.len() != range.len() {
        return Err(Error::Shape {
            op: "hessian",
            expected: format!("{} values", range.len()),
            got: v.len().to_string(),
        });
    }
    let Some(perm) = model.flat_order() else { return Ok(v.to_vec()) };
    let local: Vec<usize> = perm[range.clone()].iter().map(|&j| j - range.start).collect();
    Ok(if to { to_flat(Some(&local), v) } else { from_flat(Some(&local), v) })
}

/// Generic operations every model has, built from the trait's methods.
impl<'a> dyn Model + 'a {
    /// The range of parameter group `group` (all parameters with `None`); errors naming the
    /// groups when it does not exist.
    pub fn group_range(&self, group: Option<usize>) -> Result<Range<usize>> {
        let Some(g) = group else { return Ok(0..self.n_params()) };
        let groups = self.param_groups();
        groups.get(g).map(|p| p.range.clone()).ok_or_else(|| {
            Error::arg("hessian", format!("layer {g} does not exist; the model has layers 0..{}", groups.len() - 1))
        })
    }

    /// Errors unless `x` has one column per model input.
    pub fn check_input(&self, op: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
        if x.ncols() != self.n_inputs() {
            return Err(Error::Shape {
                op,
                expected: format!("{} feature columns", self.n_inputs()),
                got: format!("{}", x.ncols()),
            });
        }
        Ok(())
    }

    /// The predicted class per event: z > 0 for sigmoid, the arg-max for softmax (and for a
    /// linear output of width ≥ 2), z > 0.5 for a linear output of width 1.
    pub fn predict_class(&self, x: ArrayView2<'_, f32>) -> Result<Vec<i64>> {
        Ok(self.classes_from_logits(&self.logits(x)?))
    }

    /// [`predict_class`](Self::predict_class) on logits already computed.
    pub fn classes_from_logits(&self, z: &Array2<f32>) -> Vec<i64> {
        let out = self.output();
        z.rows()
            .into_iter()
            .map(|row| row.as_slice().map_or_else(|| class_of_row(out, &row.to_vec()), |r| class_of_row(out, r)))
            .collect()
    }

    /// The class-1 score per event from logits `z` for a binary classifier (sigmoid, or
    /// softmax with 2 classes), the score a ROC curve ranks by; `None` for other outputs.
    pub fn positive_scores(&self, z: &Array2<f32>) -> Option<Vec<f32>> {
        if !matches!((self.output(), self.n_outputs()), (Output::Sigmoid, _) | (Output::Softmax, 2)) {
            return None;
        }
        let scores = z
            .rows()
            .into_iter()
            .map(|row| {
                let mut v = row.to_vec();
                self.output().scores_row(&mut v);
                v[v.len() - 1]
            })
            .collect();
        Some(scores)
    }

    /// Event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ (unit weights when `weights` is `None`).
    pub fn loss(&self, x: ArrayView2<'_, f32>, targets: Targets<'_>, weights: Option<&[f32]>) -> Result<f64> {
        let n = x.nrows();
        if n == 0 {
            return Err(Error::Empty { op: "loss", what: "the event set".into() });
        }
        targets.validate("loss", self.output(), n, self.n_outputs())?;
        let wsum = check_weights("loss", weights, n)?;
        let owned = standard_targets(targets);
        let targets = match &owned {
            Some(a) => Targets::Values(a.view()),
            None => targets.reborrow(),
        };
        let z = self.logits(x)?;
        metrics::check_output_rows("loss", z.view())?;
        let mut total = 0.0;
        for (i, row) in z.rows().into_iter().enumerate() {
            let w = weights.map_or(1.0, |w| f64::from(w[i]));
            let zrow: Vec<f32> = row.to_vec();
            total += w * loss_row(self.output(), &zrow, targets.row(i));
        }
        Ok(total / wsum)
    }

    /// Loss, AUC and accuracy on a labelled dataset (features checked by name). With
    /// `use_weights` the dataset's event weights (if any) weight every number.
    pub fn evaluate(&self, ds: &Dataset, use_weights: bool) -> Result<Evaluation> {
        let x = self.inputs(ds)?;
        let labels = ds.label().ok_or_else(|| Error::arg("evaluate", "the dataset has no label"))?;
        if ds.is_empty() {
            return Err(Error::Empty { op: "evaluate", what: "dataset".into() });
        }
        check_labels("evaluate", self.output(), self.n_outputs(), labels)?;
        let weights = if use_weights { ds.weight() } else { None };
        let wsum = check_weights("evaluate", weights, ds.len())?;
        let z = self.logits(x.view())?;
        metrics::check_output_rows("evaluate", z.view())?;
        let mut loss = 0.0;
        for (i, row) in z.rows().into_iter().enumerate() {
            let w = weights.map_or(1.0, |w| f64::from(w[i]));
            let zrow: Vec<f32> = row.to_vec();
            loss += w * loss_row(self.output(), &zrow, Targets::Labels(labels).row(i));
        }
        let classifier = self.output() != Output::Linear;
        let accuracy =
            if classifier { Some(metrics::accuracy(&self.classes_from_logits(&z), labels, weights)?) } else { None };
        let auc = self.positive_scores(&z).and_then(|s| metrics::roc_auc(&s, labels, weights).ok());
        Ok(Evaluation { n: ds.len(), loss: loss / wsum, auc, accuracy })
    }

    /// A class index checked against the outputs (a sigmoid output has classes 0 and 1).
    pub fn check_class(&self, op: &'static str, class: usize) -> Result<()> {
        let k = if self.output() == Output::Sigmoid { 2 } else { self.n_outputs() };
        if class >= k {
            return Err(Error::arg(op, format!("class {class} is out of range; the model has classes 0..{}", k - 1)));
        }
        Ok(())
    }
}

/// Reads a model written by [`Model::save`], as the implementation named by its `kind`
/// (files without one are fused MLPs).
pub fn load_model(path: &Path) -> Result<Box<dyn Model>> {
    match super::io::saved_kind(path)?.as_deref() {
        None | Some("mlp") => Ok(Box::new(Mlp::load(path)?)),
        Some("candle_mlp") => Ok(Box::new(super::CandleMlp::from_mlp(&Mlp::load(path)?)?)),
        Some("pfn") => Ok(Box::new(super::Pfn::load(path)?)),
        Some("particlenet") => Ok(Box::new(super::SetModel::<super::ParticleNet>::load(path)?)),
        Some("correction") => Ok(Box::new(crate::correct::Correction::load(path)?)),
        Some("part") => Ok(Box::new(super::Part::load(path)?)),
        Some(other) => Err(Error::format(path, format!("model kind '{other}' is not known to this build"))),
    }
}

#[cfg(test)]
#[path = "interface_tests.rs"]
mod tests;
