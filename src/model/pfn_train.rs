//! Training a [`Pfn`] as an [`optim::Solver`](crate::optim::Solver) (one step = one epoch),
//! with the [`Mlp`](super::Mlp) trainer's settings ([`TrainConfig`]: Adam/AdamW/SGD,
//! schedules, class and event weights, validation, early stopping) and its optimizer loop.
//!
//! Per minibatch: the events are split into fixed parts of [`TRAIN_PART`] events whose
//! gradients are computed in parallel (each into its own buffer) and summed in part order,
//! so results are bit-identical for a given seed whatever the thread count.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::backward::check_weights;
use super::eval::Evaluation;
use super::loss::{check_labels, Targets};
use super::pfn::Pfn;
use super::pfn_pass::with_set_workspace;
use super::train::{check_config, event_weights, split_validation, EpochRecord, OptState, TrainConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;

/// Events per part of a minibatch (one gradient buffer each).
pub(crate) const TRAIN_PART: usize = 32;

/// Check the interrupt flag every this many minibatches.
const POLL_EVERY: usize = 16;

/// The outcome of [`train_pfn`].
#[derive(Clone, Debug)]
pub struct PfnTrainResult {
    /// The trained model (the best one by validation loss when `patience` was set).
    pub model: Pfn,
    /// One record per epoch run.
    pub history: Vec<EpochRecord>,
    /// Why training ended.
    pub stop: Stop,
    /// The epoch whose weights were restored (early stopping), if any.
    pub best_epoch: Option<usize>,
}

/// Trains a copy of `model` on the labelled dataset `train` (inputs gathered through the
/// model's layout). `cfg.target` (regression on a column) and `cfg.weight_attack` are not
/// supported for set models and are refused.
pub fn train_pfn(model: &Pfn, train: &Dataset, cfg: &TrainConfig, control: &Control) -> Result<PfnTrainResult> {
    let mut t = PfnTrainer::new(model, train, cfg, control)?;
    let run = control.executor(cfg.epochs).run(&mut t)?;
    Ok(t.finish(run.stop))
}

/// Inputs (`n × D`), labels and optional weights of a set of events.
pub type LabelledInputs = (Array2<f32>, Vec<i64>, Option<Vec<f32>>);

/// Inputs, labels and weights of a set of events.
struct Events {
    x: Array2<f32>,
    labels: Vec<i64>,
    weights: Option<Vec<f32>>,
}

/// The PFN training solver.
pub struct PfnTrainer {
    model: Pfn,
    data: Events,
    val: Option<Events>,
    cfg: TrainConfig,
    control: Control,
    mean_weight: f64,
    state: OptState,
    parts: Vec<Vec<f32>>,
    grad: Vec<f32>,
    history: Vec<EpochRecord>,
    best: Option<(f64, usize, Vec<f32>)>,
    since_best: usize,
}

impl PfnTrainer {
    /// Validates everything and gathers the inputs; no training happens yet.
    pub fn new(model: &Pfn, train: &Dataset, cfg: &TrainConfig, control: &Control) -> Result<Self> {
        check_config(cfg)?;
        if cfg.target.is_some() {
            return Err(unsupported("target"));
        }
        let (data, val) = split_validation(train, cfg)?;
        if data.is_empty() {
            return Err(Error::Empty { op: "train", what: "the training set".into() });
        }
        let labels = data.label().ok_or_else(|| Error::arg("train", "the training set has no label column"))?;
        let weights = event_weights(&data, cfg, labels)?;
        let x = model.layout().gather(&data)?;
        let val = match val {
            Some(v) => {
                let vl = v.label().ok_or_else(|| Error::arg("train", "the validation set has no label column"))?;
                let vw = if cfg.use_event_weights { v.weight().map(<[f32]>::to_vec) } else { None };
                Some((model.layout().gather(&v)?, vl.to_vec(), vw))
            }
            None => None,
        };
        Self::from_x(model, x, labels.to_vec(), weights, val, cfg, control)
    }

    /// From gathered inputs (`n × D`), labels, per-event training weights (event × class
    /// weight, already combined) and an optional validation set.
    pub fn from_x(
        model: &Pfn,
        x: Array2<f32>,
        labels: Vec<i64>,
        weights: Option<Vec<f32>>,
        val: Option<LabelledInputs>,
        cfg: &TrainConfig,
        control: &Control,
    ) -> Result<Self> {
        check_config(cfg)?;
        if cfg.weight_attack.is_some() {
            return Err(unsupported("weight_attack"));
        }
        let mut model = model.clone();
        model.check_input("train", x.view())?;
        if x.nrows() == 0 {
            return Err(Error::Empty { op: "train", what: "the training set".into() });
        }
        if labels.len() != x.nrows() {
            return Err(Error::Shape {
                op: "train",
                expected: format!("{} labels", x.nrows()),
                got: format!("{}", labels.len()),
            });
        }
        if let Some((i, j)) = crate::data::first_nonfinite(x.view()) {
            return Err(Error::arg("train", format!("input {j} of event {i} is not finite")));
        }
        check_labels("train", model.output(), model.n_outputs(), &labels)?;
        if let Some((vx, vl, _)) = &val {
            model.check_input("train", vx.view())?;
            check_labels("train (validation)", model.output(), model.n_outputs(), vl)?;
        }
        if cfg.standardize {
            model.fit_standardization(x.view())?;
        }
        let mean_weight = check_weights("train", weights.as_deref(), x.nrows())? / x.nrows() as f64;
        // Minibatches are random, so bound a part by its largest possible object count.
        let worst =
            x.rows().into_iter().map(|r| model.layout().count_of(r[model.layout().count_column()])).max().unwrap_or(0);
        model.check_buffers("train", worst.saturating_mul(TRAIN_PART), TRAIN_PART)?;
        let n_parts = cfg.batch_size.min(x.nrows()).div_ceil(TRAIN_PART);
        let np = model.n_params();
        crate::memory::check(
            crate::memory::bytes(np, 4 * (n_parts + 4)),
            &format!("train: gradient buffers for minibatches of {} events", cfg.batch_size),
        )?;
        Ok(PfnTrainer {
            state: OptState::new(np),
            parts: vec![vec![0.0; np]; n_parts],
            grad: vec![0.0; np],
            model,
            data: Events { x, labels, weights },
            val: val.map(|(x, labels, weights)| Events { x, labels, weights }),
            cfg: cfg.clone(),
            control: control.clone(),
            mean_weight,
            history: Vec::new(),
            best: None,
            since_best: 0,
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &Pfn {
        &self.model
    }

    /// The history so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// Ends training: restores the best weights when early stopping is on.
    pub fn finish(mut self, stop: Stop) -> PfnTrainResult {
        let mut best_epoch = None;
        if self.cfg.patience.is_some() {
            if let Some((_, epoch, params)) = self.best.take() {
                self.model.params_mut().copy_from_slice(&params);
                best_epoch = Some(epoch);
            }
        }
        PfnTrainResult { model: self.model, history: self.history, stop, best_epoch }
    }

    /// One epoch: shuffled minibatches, each a gradient and an optimizer step.
    fn epoch(&mut self, iter: usize) -> Result<Kv> {
        let lr = self.cfg.schedule.lr(self.cfg.optimizer.lr(), iter, self.cfg.epochs);
        let epoch_seed = rng::substream(self.cfg.seed, iter as u64);
        let n = self.data.x.nrows();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng::rng(epoch_seed));
        let mut total = 0.0;
        for (b, batch) in order.chunks(self.cfg.batch_size).enumerate() {
            if b % POLL_EVERY == 0 {
                self.control.check()?;
            }
            let norm = 1.0 / (batch.len() as f64 * self.mean_weight);
            total += self.gradient(batch, norm) / norm;
            self.state.step(&self.cfg.optimizer, lr, self.model.params_mut(), &self.grad);
        }
        self.end_epoch(iter, lr, total)
    }

    /// The gradient over `batch` (parts in parallel, summed in order) into `self.grad`;
    /// returns Σ norm·wᵢℓᵢ.
    fn gradient(&mut self, batch: &[usize], norm: f64) -> f64 {
        let (model, x) = (&self.model, self.data.x.view());
        let targets = Targets::Labels(&self.data.labels);
        let w = self.data.weights.as_deref();
        let used = batch.len().div_ceil(TRAIN_PART);
        let losses: Vec<f64> = self.parts[..used]
            .par_iter_mut()
            .zip(batch.par_chunks(TRAIN_PART))
            .map(|(g, idx)| with_set_workspace(|ws| model.block_grad(ws, x, idx, targets, w, norm, g, false)))
            .collect();
        self.grad.copy_from_slice(&self.parts[0]);
        for p in &self.parts[1..used] {
            self.grad.iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        losses.iter().sum()
    }

    fn validate(&self) -> Result<Option<Evaluation>> {
        match &self.val {
            Some(v) => Ok(Some(self.model.evaluate_x(v.x.view(), &v.labels, v.weights.as_deref())?)),
            None => Ok(None),
        }
    }

    /// Validation, early stopping and the history record after an epoch.
    fn end_epoch(&mut self, iter: usize, lr: f64, total: f64) -> Result<Kv> {
        let loss = total / (self.data.x.nrows() as f64 * self.mean_weight);
        if !loss.is_finite() {
            return Err(Error::arg(
                "train",
                format!("the training loss became {loss} in epoch {}; lower the learning rate", iter + 1),
            ));
        }
        let val = self.validate()?;
        let rec = EpochRecord {
            epoch: iter + 1,
            loss,
            val_loss: val.as_ref().map(|e| e.loss),
            val_auc: val.as_ref().and_then(|e| e.auc),
            val_accuracy: val.as_ref().and_then(|e| e.accuracy),
            lr,
        };
        if let Some(vl) = rec.val_loss {
            if self.best.as_ref().is_none_or(|(b, _, _)| vl < *b) {
                self.best = Some((vl, rec.epoch, self.model.params().to_vec()));
                self.since_best = 0;
            } else {
                self.since_best += 1;
            }
        }
        let mut kv: Kv = vec![("loss", rec.loss), ("lr", lr)];
        for (k, v) in [("val_loss", rec.val_loss), ("val_auc", rec.val_auc), ("val_accuracy", rec.val_accuracy)] {
            if let Some(v) = v {
                kv.push((k, v));
            }
        }
        self.history.push(rec);
        Ok(kv)
    }
}

impl Solver for PfnTrainer {
    fn name(&self) -> &'static str {
        "train"
    }

    fn step(&mut self, iter: usize) -> Result<Kv> {
        self.epoch(iter)
    }

    fn stop(&self) -> Option<Stop> {
        let p = self.cfg.patience?;
        (self.best.is_some() && self.since_best >= p).then_some(Stop::EarlyStopped)
    }
}

fn unsupported(key: &str) -> Error {
    Error::BadOption { func: "train".into(), key: key.into(), problem: "is not supported for a pfn (set model)".into() }
}
