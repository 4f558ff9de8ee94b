//! Training as an [`optim::Solver`](crate::optim::Solver): one step is one epoch.
//!
//! Per minibatch: gather and standardise the rows, a fused forward/backward pass into
//! preallocated buffers, and one fused optimizer loop over the flat parameter vector. Each
//! minibatch is split in two halves processed with `rayon::join` (one per core) whose
//! gradients are summed; the split is fixed, so results are bit-identical for a given seed
//! whatever the thread count.
//!
//! Any [`Model`] trains: the fused [`Mlp`] through its fused minibatch kernel (dropout
//! included), any other model through [`Model::weight_grad`] on each half minibatch (the
//! gradient of the weighted mean, rescaled to the same Σ wᵢ∂ℓᵢ/Σ wᵢ normalisation; no dropout).
//! Fine-tuning (`finetune.rs`): groups in [`TrainConfig::freeze`] or with a learning rate of
//! 0 in [`TrainConfig::group_lr`] are left out of the optimiser step, so they never change;
//! [`TrainConfig::reinit`] re-draws groups before training; [`TrainConfig::warmup`] ramps the
//! rate up; [`TrainConfig::standardize`] keeps a pretrained model's standardisation by
//! default.

use ndarray::Array2;
use rand::seq::SliceRandom;

use std::ops::Range;

use ndarray::ArrayView2;

use super::eval::Evaluation;
use super::finetune::{GroupRef, Standardize};
use super::interface::Model;
use super::loss::{check_labels, Targets};
#[cfg(doc)]
use super::mlp::Mlp;
use super::workspace::Workspace;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;

/// A minibatch is split into two halves for the two cores from this size on.
const SPLIT_MIN: usize = 64;

/// The substream of the training seed that re-initialised groups are drawn from.
const REINIT_STREAM: u64 = 0x7e1a;

/// Check the interrupt flag every this many minibatches.
const POLL_EVERY: usize = 16;

/// The update rule. Formulas follow PyTorch's `torch.optim` implementations.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// Adam: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr·m̂/(√v̂ + ε).
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        eps: f64,
    },
    /// AdamW: Adam with decoupled weight decay θ ← θ(1 − lr·λ) before the step.
    AdamW {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        eps: f64,
        /// Decoupled weight decay λ.
        weight_decay: f64,
    },
    /// SGD with (heavy-ball) momentum: b ← μb + g, θ ← θ − lr·b.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum μ (0 for plain SGD).
        momentum: f64,
    },
}

impl Optimizer {
    /// Adam with PyTorch's defaults (β₁ 0.9, β₂ 0.999, ε 1e-8) and learning rate `lr`.
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Adam { lr, .. } | Optimizer::AdamW { lr, .. } | Optimizer::Sgd { lr, .. } => *lr,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |k: &str, v: f64| Error::BadOption {
            func: "train".into(),
            key: k.into(),
            problem: format!("is out of range: {v}"),
        };
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(bad("lr", lr));
        }
        match *self {
            Optimizer::Adam { beta1, beta2, eps, .. } | Optimizer::AdamW { beta1, beta2, eps, .. } => {
                for (k, v) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&v) {
                        return Err(bad(k, v));
                    }
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(bad("eps", eps));
                }
            }
            Optimizer::Sgd { momentum, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(bad("momentum", momentum));
                }
            }
        }
        if let Optimizer::AdamW { weight_decay, .. } = *self {
            if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                return Err(bad("weight_decay", weight_decay));
            }
        }
        Ok(())
    }
}

/// Learning rate per epoch.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs (torch `StepLR`).
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor per decay.
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over all epochs (torch `CosineAnnealingLR`
    /// with `T_max` = epochs).
    Cosine {
        /// Rate at the end.
        min_lr: f64,
    },
}

impl Schedule {
    /// The rate for epoch `epoch` (0-based) of `epochs`, from base rate `base`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
        }
    }
}

/// Everything about a training run. The loss follows from the model's output layer
/// (sigmoid → BCE, softmax → CE, linear → MSE).
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Number of passes over the training events.
    pub epochs: usize,
    /// Events per minibatch.
    pub batch_size: usize,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Learning-rate schedule over epochs.
    pub schedule: Schedule,
    /// Weight per class (indexed by label), multiplied into the event weight.
    pub class_weights: Option<Vec<f32>>,
    /// Weight each event's loss by the dataset's event weight (if it has one).
    pub use_event_weights: bool,
    /// A separate validation set (takes precedence over `validation_fraction`).
    pub validation: Option<Dataset>,
    /// Fraction of the training events held out (seeded) for validation; 0 for none.
    pub validation_fraction: f32,
    /// Stop after this many epochs without a lower validation loss and restore the best
    /// weights; `None` trains all epochs.
    pub patience: Option<usize>,
    /// What happens to the model's input standardisation: fitted to the training events for
    /// a model without one, kept when fine-tuning a trained model (`Auto`, the default), or
    /// always kept / always refitted.
    pub standardize: Standardize,
    /// Seed of shuffling, the validation split and dropout.
    pub seed: u64,
    /// Regression: the name of a column of the training (and validation) data to fit as the
    /// target of a linear output of width 1; it is removed from the inputs. `None` trains on
    /// the integer label.
    pub target: Option<String>,
    /// Sharpness-aware training (SAM, ASAM, AWP, RWP): each minibatch's gradient is taken at
    /// the perturbed weights w + ε(w, g), then ε is removed before the step. `None` trains
    /// plainly.
    pub weight_attack: Option<super::perturb::WeightPerturbation>,
    /// Parameter groups ([`Model::param_groups`], by name or index) that training leaves
    /// unchanged, bit for bit.
    pub freeze: Vec<GroupRef>,
    /// A learning rate per parameter group (the others use the optimiser's): scaled by the
    /// schedule and the warm-up as the base rate is; 0 leaves the group unchanged.
    pub group_lr: Vec<(GroupRef, f64)>,
    /// Parameter groups re-drawn as at construction (from `seed`) before training: a new
    /// head on a pretrained body.
    pub reinit: Vec<GroupRef>,
    /// Linear warm-up: epoch e < warmup runs at (e+1)/(warmup+1) of the scheduled rate.
    pub warmup: usize,
    /// L1 regularisation λ of the weight matrices ([`super::L1`], Keras'
    /// `kernel_regularizer=L1(λ)`): λ·sign(W) is added to every minibatch's gradient. The
    /// reported training and validation losses (and early stopping) include the penalty at
    /// the epoch's end weights, as Keras' do.
    pub l1: f64,
    /// Whether the L1 penalty also covers the output layer's weight matrix (true).
    pub l1_output: bool,
}

impl Default for TrainConfig {
    /// 10 epochs, batch 256, Adam 1e-3, constant rate, event weights on, no validation,
    /// standardisation fitted unless the model has one, seed 0.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 256,
            optimizer: Optimizer::adam(1e-3),
            schedule: Schedule::Constant,
            class_weights: None,
            use_event_weights: true,
            validation: None,
            validation_fraction: 0.0,
            patience: None,
            standardize: Standardize::Auto,
            seed: 0,
            target: None,
            weight_attack: None,
            freeze: Vec::new(),
            group_lr: Vec::new(),
            reinit: Vec::new(),
            warmup: 0,
            l1: 0.0,
            l1_output: true,
        }
    }
}

/// Numbers of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Event-weighted mean training loss over the epoch (with dropout, while training).
    pub loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: Option<f64>,
    /// Validation ROC AUC (binary classifiers).
    pub val_auc: Option<f64>,
    /// Validation accuracy (classifiers).
    pub val_accuracy: Option<f64>,
    /// Learning rate used in the epoch.
    pub lr: f64,
}

/// The outcome of [`train`].
#[derive(Clone, Debug)]
pub struct TrainResult {
    /// The trained model (the best one by validation loss when `patience` was set).
    pub model: Box<dyn Model>,
    /// One record per epoch run.
    pub history: Vec<EpochRecord>,
    /// Why training ended.
    pub stop: Stop,
    /// The epoch whose weights were restored (early stopping), if any.
    pub best_epoch: Option<usize>,
}

/// Trains a copy of `model` on `train` and returns it with its history.
///
/// Errors: no label, labels invalid for the output (not 0/1 for sigmoid, outside 0..k for
/// softmax), non-finite features, feature names or count different from the model's, an
/// empty set, bad options. Ctrl-C ends the run early with `stop = Interrupted` and the
/// weights reached so far.
pub fn train(model: &dyn Model, train: &Dataset, cfg: &TrainConfig, control: &Control) -> Result<TrainResult> {
    let mut t = Trainer::new(model, train, cfg, control)?;
    let run = control.executor(cfg.epochs).run(&mut t)?;
    t.finish(run.stop)
}

/// Replaces rows of a minibatch before its gradient is taken (adversarial training).
pub trait BatchHook {
    /// For minibatch `batch` (rows of `data`) at the current weights of `model`: the positions
    /// within `batch` to replace and their new rows (`m × d`, physical units), or `None` to
    /// train on the clean rows.
    fn replace(
        &mut self,
        model: &dyn Model,
        data: &Dataset,
        batch: &[usize],
        seed: u64,
    ) -> Result<Option<(Vec<usize>, Array2<f32>)>>;
}

/// The training solver; use [`train`] unless you run it through your own executor.
pub struct Trainer {
    model: Box<dyn Model>,
    /// The L1 penalty of the weight matrices, if any.
    l1: Option<super::L1>,
    data: Dataset,
    /// The model's input matrix of `data` for models other than the fused MLP (which reads the
    /// dataset's features in place).
    inputs: Option<Array2<f32>>,
    /// The parameter ranges the optimiser steps, with their factor of the scheduled rate.
    plan: Vec<(Range<usize>, f64)>,
    val: Option<Dataset>,
    /// Regression targets (`n × 1`) of the training and validation data.
    values: Option<Array2<f32>>,
    val_values: Option<Array2<f32>>,
    cfg: TrainConfig,
    control: Control,
    weights: Option<Vec<f32>>,
    mean_weight: f64,
    state: OptState,
    ws: Vec<Workspace>,
    grads: [Vec<f32>; 2],
    history: Vec<EpochRecord>,
    best: Option<(f64, usize, Vec<f32>)>,
    since_best: usize,
    /// Clean weights while a weight perturbation is applied.
    saved: Vec<f32>,
    /// Training features used instead of the clean ones (adversarial training), same shape.
    x_override: Option<Array2<f32>>,
    /// The bytes of the buffers above, counted against the session memory budget while the
    /// trainer lives (its datasets and model hold their own).
    _buffers: crate::memory::Reservation,
    /// The bytes of `x_override`, counted while it is held.
    x_override_memory: Option<crate::memory::Reservation>,
}

impl Trainer {
    /// Validates everything and prepares buffers; no training happens yet.
    pub fn new(model: &dyn Model, train: &Dataset, cfg: &TrainConfig, control: &Control) -> Result<Self> {
        check_config(cfg)?;
        let mut model = model.box_clone();
        let (data, val) = split_validation(train, cfg)?;
        if data.is_empty() {
            return Err(Error::Empty { op: "train", what: "the training set".into() });
        }
        let (data, values) = take_target(data, cfg, &*model)?;
        let (val, val_values) = match val {
            Some(v) => {
                let (v, vv) = take_target(v, cfg, &*model)?;
                (Some(v), vv)
            }
            None => (None, None),
        };
        if !cfg.reinit.is_empty() {
            super::finetune::reinit(&mut *model, &cfg.reinit, rng::substream(cfg.seed, REINIT_STREAM))?;
        }
        if cfg.standardize.refits(&*model) {
            model.fit_standardization(&data)?;
        } else {
            model.check_features(&data)?;
        }
        data.check_finite("train")?;
        if let Some(v) = &val {
            model
                .check_features(v)
                .map_err(|_| Error::arg("train", "the validation set's features differ from the training set's"))?;
        }
        let weights = if values.is_some() {
            if cfg.class_weights.is_some() {
                return Err(Error::BadOption {
                    func: "train".into(),
                    key: "class_weights".into(),
                    problem: "has no meaning for a regression target".into(),
                });
            }
            if cfg.use_event_weights {
                data.weight().map(<[f32]>::to_vec)
            } else {
                None
            }
        } else {
            let labels = data.label().ok_or_else(|| Error::arg("train", "the training set has no label column"))?;
            check_labels("train", model.output(), model.n_outputs(), labels)?;
            if let Some(v) = &val {
                let vl = v.label().ok_or_else(|| Error::arg("train", "the validation set has no label column"))?;
                check_labels("train (validation)", model.output(), model.n_outputs(), vl)?;
            }
            event_weights(&data, cfg, labels)?
        };
        let mean_weight = super::backward::check_weights("train", weights.as_deref(), data.len())? / data.len() as f64;
        // Minibatches never hold more than the training events.
        let half = cfg.batch_size.min(data.len()).div_ceil(2);
        let ws_bytes = model.as_mlp().map_or(0, |m| Workspace::bytes(m, half).saturating_mul(2));
        // gradients ×2, optimiser state ×3 (f32 per weight); the best and the saved weights
        // are at most 2 more copies
        let state_bytes = crate::memory::bytes(model.n_params(), 4 * 7);
        // per-event weights and regression targets (f32)
        let event_bytes = crate::memory::bytes(
            weights.as_ref().map_or(0, Vec::len)
                + values.as_ref().map_or(0, |v| v.len())
                + val_values.as_ref().map_or(0, |v| v.len()),
            4,
        );
        let buffers = crate::memory::reserve(
            ws_bytes.saturating_add(state_bytes).saturating_add(event_bytes),
            &format!("train: buffers for minibatches of {} events", cfg.batch_size.min(data.len())),
        )?;
        let ws = match model.as_mlp() {
            Some(m) => vec![Workspace::new(m, half), Workspace::new(m, half)],
            None => Vec::new(),
        };
        let inputs = if model.as_mlp().is_some() { None } else { Some(model.inputs(&data)?) };
        let plan = super::finetune::step_plan(&*model, &cfg.freeze, &cfg.group_lr, cfg.optimizer.lr())?;
        let l1 = if cfg.l1 == 0.0 { None } else { Some(super::L1::with_output(&*model, cfg.l1, cfg.l1_output)?) };
        let grads = [vec![0.0; model.n_params()], vec![0.0; model.n_params()]];
        let state = OptState::new(model.n_params());
        Ok(Trainer {
            model,
            l1,
            data,
            inputs,
            plan,
            val,
            values,
            val_values,
            cfg: cfg.clone(),
            control: control.clone(),
            weights,
            mean_weight,
            state,
            ws,
            grads,
            history: Vec::new(),
            best: None,
            since_best: 0,
            saved: Vec::new(),
            x_override: None,
            _buffers: buffers,
            x_override_memory: None,
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &dyn Model {
        &*self.model
    }

    /// The history so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The training events (without the held-out validation events).
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The validation events, if any.
    pub fn validation(&self) -> Option<&Dataset> {
        self.val.as_ref()
    }

    /// The model's inputs of the training events (clean), `n × D`.
    pub fn training_inputs(&self) -> ArrayView2<'_, f32> {
        self.inputs.as_ref().map_or_else(|| self.data.x(), |a| a.view())
    }

    /// Trains on `x` (same shape as the training inputs, same labels and weights) instead of
    /// the clean inputs from now on; `None` returns to the clean ones.
    pub fn set_training_x(&mut self, x: Option<Array2<f32>>) -> Result<()> {
        if let Some(a) = &x {
            if a.dim() != self.training_inputs().dim() {
                return Err(Error::Shape {
                    op: "train",
                    expected: format!("replacement features of shape {:?}", self.training_inputs().dim()),
                    got: format!("{:?}", a.dim()),
                });
            }
        }
        self.x_override_memory = x.as_ref().map(|a| crate::memory::account(crate::memory::bytes(a.len(), 4)));
        self.x_override = x;
        Ok(())
    }

    /// One epoch (as [`Solver::step`]), with `hook` replacing rows of each minibatch.
    pub fn epoch(&mut self, iter: usize, mut hook: Option<&mut dyn BatchHook>) -> Result<Kv> {
        let lr = self.cfg.schedule.lr(self.cfg.optimizer.lr(), iter, self.cfg.epochs)
            * super::finetune::warmup_factor(iter, self.cfg.warmup);
        let epoch_seed = rng::substream(self.cfg.seed, iter as u64);
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        order.shuffle(&mut rng::rng(epoch_seed));
        let mut total = 0.0;
        for (b, batch) in order.chunks(self.cfg.batch_size).enumerate() {
            if b % POLL_EVERY == 0 {
                self.control.check()?;
            }
            let seed = rng::substream(epoch_seed, b as u64 + 1);
            total += match hook.as_deref_mut() {
                None => self.minibatch(batch, lr, seed)?,
                Some(h) => self.hooked_minibatch(h, batch, lr, seed)?,
            };
        }
        self.end_epoch(iter, lr, total)
    }

    /// A minibatch whose rows `hook` may replace; the clean rows are restored afterwards.
    fn hooked_minibatch(&mut self, hook: &mut dyn BatchHook, batch: &[usize], lr: f64, seed: u64) -> Result<f64> {
        let Some((pos, rows)) = hook.replace(&*self.model, &self.data, batch, seed)? else {
            return self.minibatch(batch, lr, seed);
        };
        let d = self.training_inputs().ncols();
        if rows.dim() != (pos.len(), d) || pos.iter().any(|&p| p >= batch.len()) {
            return Err(Error::Shape {
                op: "train",
                expected: format!("{} replacement rows of {d} features for a batch of {}", pos.len(), batch.len()),
                got: format!("{:?}", rows.dim()),
            });
        }
        if self.x_override.is_none() {
            self.x_override = Some(self.training_inputs().to_owned());
        }
        if let Some(x) = self.x_override.as_mut() {
            for (r, &p) in rows.rows().into_iter().zip(&pos) {
                x.row_mut(batch[p]).assign(&r);
            }
        }
        let loss = self.minibatch(batch, lr, seed);
        let clean = self.inputs.as_ref().map_or_else(|| self.data.x(), |a| a.view());
        if let Some(x) = self.x_override.as_mut() {
            for &p in &pos {
                x.row_mut(batch[p]).assign(&clean.row(batch[p]));
            }
        }
        loss
    }

    /// Ends training: restores the best weights when early stopping is on.
    pub fn finish(mut self, stop: Stop) -> Result<TrainResult> {
        let mut best_epoch = None;
        if self.cfg.patience.is_some() {
            if let Some((_, epoch, params)) = self.best.take() {
                with_params_mut(&mut *self.model, |p| p.copy_from_slice(&params))?;
                best_epoch = Some(epoch);
            }
        }
        Ok(TrainResult { model: self.model, history: self.history, stop, best_epoch })
    }

    /// One minibatch: gradient over `batch` (two halves in parallel) and an optimizer step.
    /// Returns Σ wᵢℓᵢ over the batch (at the clean weights, except for RWP, whose one
    /// gradient is taken at the perturbed weights).
    fn minibatch(&mut self, batch: &[usize], lr: f64, seed: u64) -> Result<f64> {
        let norm = 1.0 / (batch.len() as f64 * self.mean_weight);
        let loss = match self.cfg.weight_attack.clone() {
            None => self.gradient(batch, seed)?,
            Some(p) => self.perturbed_gradient(&p, batch, seed)?,
        };
        if let Some(l1) = &self.l1 {
            let [g, _] = &mut self.grads;
            match self.model.as_mlp() {
                Some(m) => l1.add_gradient(m.params(), g),
                None => l1.add_gradient(&self.model.params(), g),
            }
        }
        let (state, opt, grads, plan) = (&mut self.state, &self.cfg.optimizer, &self.grads[0], &self.plan);
        with_params_mut(&mut *self.model, |p| state.step_ranges(opt, lr, plan, p, grads))?;
        Ok(loss / norm)
    }

    /// The gradient over `batch` into `grads[0]`; returns Σ norm·wᵢℓᵢ.
    fn gradient(&mut self, batch: &[usize], seed: u64) -> Result<f64> {
        let targets = match &self.values {
            Some(v) => Targets::Values(v.view()),
            None => Targets::Labels(self.data.label().unwrap_or(&[])),
        };
        let norm = 1.0 / (batch.len() as f64 * self.mean_weight);
        let x = match (&self.x_override, &self.inputs) {
            (Some(a), _) | (None, Some(a)) => a.view(),
            (None, None) => self.data.x(),
        };
        let Some(model) = self.model.as_mlp() else {
            let w = self.weights.as_deref();
            return generic_gradient(&mut *self.model, x, targets, w, batch, norm, seed, &mut self.grads);
        };
        let w = self.weights.as_deref();
        let dropout = model.dropout() > 0.0;
        let [ws0, ws1] = &mut self.ws[..] else { return Err(Error::arg("train", "no minibatch buffers")) };
        let [g0, g1] = &mut self.grads;
        let run = |ws: &mut Workspace, g: &mut Vec<f32>, idx: &[usize], stream: u64| {
            let mut r = rng::rng(rng::substream(seed, stream));
            model.batch_grad(ws, x, idx, targets, w, norm, g, false, dropout.then_some(&mut r))
        };
        if batch.len() >= SPLIT_MIN {
            let (a, b) = batch.split_at(batch.len() / 2);
            let (la, lb) = rayon::join(|| run(ws0, g0, a, 0), || run(ws1, g1, b, 1));
            g0.iter_mut().zip(g1.iter()).for_each(|(s, v)| *s += v);
            Ok(la + lb)
        } else {
            Ok(run(ws0, g0, batch, 0))
        }
    }

    /// The gradient at w + ε(w, g) into `grads[0]` (same dropout masks as at w), with the
    /// clean weights restored bit for bit afterwards.
    fn perturbed_gradient(
        &mut self,
        p: &super::perturb::WeightPerturbation,
        batch: &[usize],
        seed: u64,
    ) -> Result<f64> {
        let clean = if p.needs_gradient() { Some(self.gradient(batch, seed)?) } else { None };
        let layers: Vec<Range<usize>> = self.model.param_groups().into_iter().map(|g| g.range).collect();
        self.saved.clear();
        match self.model.as_mlp() {
            Some(m) => self.saved.extend_from_slice(m.params()),
            None => self.saved.extend(self.model.params()),
        }
        let mut r = rng::rng(rng::substream(seed, 2));
        let eps = p.epsilon(&self.saved, &self.grads[0], &layers, &mut r);
        with_params_mut(&mut *self.model, |p| p.iter_mut().zip(&eps).for_each(|(w, e)| *w += e))?;
        let perturbed = self.gradient(batch, seed);
        let saved = &self.saved;
        with_params_mut(&mut *self.model, |p| p.copy_from_slice(saved))?;
        Ok(clean.unwrap_or(perturbed?))
    }

    fn validate(&self) -> Result<Option<Evaluation>> {
        match (&self.val, &self.val_values) {
            (Some(v), Some(t)) => {
                let w = if self.cfg.use_event_weights { v.weight() } else { None };
                let loss = self.model.loss(self.model.inputs(v)?.view(), Targets::Values(t.view()), w)?;
                Ok(Some(Evaluation { n: v.len(), loss, auc: None, accuracy: None }))
            }
            (Some(v), None) => Ok(Some(self.model.evaluate(v, self.cfg.use_event_weights)?)),
            _ => Ok(None),
        }
    }
}

impl Solver for Trainer {
    fn name(&self) -> &'static str {
        "train"
    }

    fn step(&mut self, iter: usize) -> Result<Kv> {
        self.epoch(iter, None)
    }

    fn stop(&self) -> Option<Stop> {
        let p = self.cfg.patience?;
        (self.best.is_some() && self.since_best >= p).then_some(Stop::EarlyStopped)
    }
}

impl Trainer {
    /// Validation, early-stopping bookkeeping and the history record after an epoch whose
    /// summed training loss is `total`.
    fn end_epoch(&mut self, iter: usize, lr: f64, total: f64) -> Result<Kv> {
        // Σ wᵢℓᵢ / Σ wᵢ (Σ wᵢ = n·w̄): the weighted mean, as the validation loss is.
        let loss = total / (self.data.len() as f64 * self.mean_weight);
        if !loss.is_finite() {
            return Err(Error::arg(
                "train",
                format!("the training loss became {loss} in epoch {}; lower the learning rate", iter + 1),
            ));
        }
        let val = self.validate()?;
        let penalty = self.l1.as_ref().map_or(0.0, |l1| match self.model.as_mlp() {
            Some(m) => l1.penalty(m.params()),
            None => l1.penalty(&self.model.params()),
        });
        let rec = EpochRecord {
            epoch: iter + 1,
            loss: loss + penalty,
            val_loss: val.as_ref().map(|e| e.loss + penalty),
            val_auc: val.as_ref().and_then(|e| e.auc),
            val_accuracy: val.as_ref().and_then(|e| e.accuracy),
            lr,
        };
        if let Some(vl) = rec.val_loss {
            if self.best.as_ref().is_none_or(|(b, _, _)| vl < *b) {
                self.best = Some((vl, rec.epoch, self.model.params()));
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

/// Optimizer state over the flat parameter vector.
pub(crate) struct OptState {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl OptState {
    pub(crate) fn new(n: usize) -> Self {
        OptState { m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    /// One fused pass over all parameters.
    #[cfg(test)]
    pub(crate) fn step(&mut self, opt: &Optimizer, lr: f64, p: &mut [f32], g: &[f32]) {
        self.step_ranges(opt, lr, &[(0..p.len(), 1.0)], p, g);
    }

    /// One step of the parameters in `plan`'s ranges, each at `lr` × its factor; the others
    /// (and their optimiser state) are untouched. One range with factor 1 is the plain step.
    pub(crate) fn step_ranges(
        &mut self,
        opt: &Optimizer,
        lr: f64,
        plan: &[(Range<usize>, f64)],
        p: &mut [f32],
        g: &[f32],
    ) {
        self.t += 1;
        for (r, f) in plan {
            let lr = lr * f;
            let (p, g, m, v) = (&mut p[r.clone()], &g[r.clone()], &mut self.m[r.clone()], &mut self.v[r.clone()]);
            match *opt {
                Optimizer::Adam { beta1, beta2, eps, .. } => adam(self.t, lr, beta1, beta2, eps, 0.0, p, g, m, v),
                Optimizer::AdamW { beta1, beta2, eps, weight_decay, .. } => {
                    adam(self.t, lr, beta1, beta2, eps, weight_decay, p, g, m, v)
                }
                Optimizer::Sgd { momentum, .. } => {
                    let (lr, mu) = (lr as f32, momentum as f32);
                    if mu == 0.0 {
                        p.iter_mut().zip(g).for_each(|(p, g)| *p -= lr * g);
                        continue;
                    }
                    // PyTorch: the buffer starts as the first gradient.
                    let first = self.t == 1;
                    for ((p, g), b) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                        *b = if first { *g } else { mu * *b + g };
                        *p -= lr * *b;
                    }
                }
            }
        }
    }
}

/// PyTorch's Adam/AdamW at step `t`: step = lr/(1−β₁ᵗ), denominator √v/√(1−β₂ᵗ) + ε.
#[allow(clippy::too_many_arguments)]
fn adam(t: i32, lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let bc1 = 1.0 - b1.powi(t);
    let bc2 = 1.0 - b2.powi(t);
    let step = (lr / bc1) as f32;
    let inv_bc2 = (1.0 / bc2.sqrt()) as f32;
    let decay = (1.0 - lr * wd) as f32;
    // 1 − β in f64 first (as PyTorch, whose scalars are Python doubles): in f32,
    // 1 − 0.999f32 would be off by 1.3e-5 relative.
    let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
    let (b1, b2, eps) = (b1 as f32, b2 as f32, eps as f32);
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = b1 * *m + c1 * g;
        *v = b2 * *v + c2 * g * g;
        *p = *p * decay - step * *m / (v.sqrt() * inv_bc2 + eps);
    }
}

pub(crate) fn check_config(cfg: &TrainConfig) -> Result<()> {
    let bad = |k: &str, p: String| Error::BadOption { func: "train".into(), key: k.into(), problem: p };
    if cfg.batch_size == 0 {
        return Err(bad("batch_size", "must be at least 1".into()));
    }
    crate::limits::check("train", "batch_size", cfg.batch_size, crate::limits::BATCH_SIZE)?;
    if !(0.0..1.0).contains(&cfg.validation_fraction) {
        return Err(bad("validation_fraction", format!("must be in [0, 1), got {}", cfg.validation_fraction)));
    }
    if cfg.patience == Some(0) {
        return Err(bad("patience", "must be at least 1".into()));
    }
    if cfg.patience.is_some() && cfg.validation.is_none() && cfg.validation_fraction == 0.0 {
        return Err(bad("patience", "needs a validation set or a validation_fraction".into()));
    }
    if let Schedule::Step { every: 0, .. } = cfg.schedule {
        return Err(bad("schedule", "step every must be at least 1".into()));
    }
    if let Some(p) = &cfg.weight_attack {
        p.check("train")?;
    }
    cfg.optimizer.check()
}

/// The training and validation sets: the given validation set, or a seeded random split.
pub(crate) fn split_validation(train: &Dataset, cfg: &TrainConfig) -> Result<(Dataset, Option<Dataset>)> {
    if let Some(v) = &cfg.validation {
        if v.is_empty() {
            return Err(Error::Empty { op: "train", what: "the validation set".into() });
        }
        return Ok((train.clone(), Some(v.clone())));
    }
    if cfg.validation_fraction == 0.0 {
        return Ok((train.clone(), None));
    }
    let n = train.len();
    let n_val = ((n as f64) * f64::from(cfg.validation_fraction)).round() as usize;
    if n_val == 0 || n_val >= n {
        return Err(Error::arg(
            "train",
            format!(
                "validation_fraction {} of {n} events leaves no validation or no training events",
                cfg.validation_fraction
            ),
        ));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng::rng(rng::substream(cfg.seed, u64::MAX)));
    let (v, t) = idx.split_at(n_val);
    Ok((train.take_rows(t), Some(train.take_rows(v))))
}

/// Per-event weight: event weight (if used) × class weight (if given); `None` for all ones.
/// For regression (`cfg.target`), the target column as an `n × 1` matrix and the data without
/// it; otherwise the data unchanged.
fn take_target(data: Dataset, cfg: &TrainConfig, model: &dyn Model) -> Result<(Dataset, Option<Array2<f32>>)> {
    let Some(name) = &cfg.target else { return Ok((data, None)) };
    if model.output() != super::loss::Output::Linear || model.n_outputs() != 1 {
        return Err(Error::BadOption {
            func: "train".into(),
            key: "target".into(),
            problem: format!(
                "needs a linear output of width 1, the model has {} with {}",
                model.output(),
                model.n_outputs()
            ),
        });
    }
    let values: Vec<f32> = data.column(name)?.to_vec();
    let x = Array2::from_shape_vec((values.len(), 1), values).map_err(|e| Error::Tensor(e.to_string()))?;
    Ok((data.drop_columns(std::slice::from_ref(name))?, Some(x)))
}

/// Applies `f` to the model's parameters (working layout): in place for the fused MLP, through
/// [`Model::params`] / [`Model::set_params`] otherwise.
pub(crate) fn with_params_mut(model: &mut dyn Model, f: impl FnOnce(&mut [f32])) -> Result<()> {
    if let Some(m) = model.as_mlp_mut() {
        f(m.params_mut());
        return Ok(());
    }
    let mut p = model.params();
    f(&mut p);
    model.set_params(&p)
}

/// The gradient over `batch` for a model without the fused kernel: [`Model::weight_grad`] on
/// each half (the same split as the fused path), each rescaled from its own weighted mean to
/// `norm · Σ wᵢ ∂ℓᵢ`, summed into `grads[0]`; returns Σ norm·wᵢℓᵢ. A half whose weights sum
/// to ≤ 0 is an error (possible only with negative event weights). A model with a training
/// mode ([`Model::train_grad`]: batch norms on batch statistics, dropout from `seed`) takes
/// the whole batch in one call instead, so its batch statistics are the minibatch's.
#[allow(clippy::too_many_arguments)]
fn generic_gradient(
    model: &mut dyn Model,
    x: ArrayView2<'_, f32>,
    targets: Targets<'_>,
    weights: Option<&[f32]>,
    batch: &[usize],
    norm: f64,
    seed: u64,
    grads: &mut [Vec<f32>; 2],
) -> Result<f64> {
    grads[0].iter_mut().for_each(|g| *g = 0.0);
    let mut total = 0.0;
    let mut add = |grads: &mut [Vec<f32>; 2], loss: f64, g: &[f32], wsum: f64| {
        let scale = norm * wsum;
        grads[0].iter_mut().zip(g).for_each(|(s, v)| *s += (f64::from(*v) * scale) as f32);
        total += loss * scale;
    };
    let (xb, tb, wb) = select_rows(x, targets, weights, batch);
    if let Some(r) = model.train_grad(xb.view(), tb.view(), wb.as_deref(), seed) {
        let (loss, g) = r?;
        add(grads, loss, &g, weight_sum(wb.as_deref(), batch.len()));
        return Ok(total);
    }
    let halves: Vec<&[usize]> = if batch.len() >= SPLIT_MIN {
        let (a, b) = batch.split_at(batch.len() / 2);
        vec![a, b]
    } else {
        vec![batch]
    };
    for idx in halves {
        let (xb, tb, wb) = select_rows(x, targets, weights, idx);
        let (loss, g) = model.weight_grad(xb.view(), tb.view(), wb.as_deref())?;
        add(grads, loss, &g, weight_sum(wb.as_deref(), idx.len()));
    }
    Ok(total)
}

/// Targets of a selection of rows, owned.
enum OwnedTargets {
    Values(Array2<f32>),
    Labels(Vec<i64>),
}

impl OwnedTargets {
    fn view(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Values(v) => Targets::Values(v.view()),
            OwnedTargets::Labels(l) => Targets::Labels(l),
        }
    }
}

/// Rows `idx` of the inputs, targets and weights.
fn select_rows(
    x: ArrayView2<'_, f32>,
    targets: Targets<'_>,
    weights: Option<&[f32]>,
    idx: &[usize],
) -> (Array2<f32>, OwnedTargets, Option<Vec<f32>>) {
    let t = match targets {
        Targets::Values(v) => OwnedTargets::Values(v.select(ndarray::Axis(0), idx)),
        Targets::Labels(l) => OwnedTargets::Labels(idx.iter().map(|&i| l[i]).collect()),
    };
    (x.select(ndarray::Axis(0), idx), t, weights.map(|w| idx.iter().map(|&i| w[i]).collect()))
}

/// Σ wᵢ (n without weights).
fn weight_sum(w: Option<&[f32]>, n: usize) -> f64 {
    w.map_or(n as f64, |w| w.iter().map(|&v| f64::from(v)).sum())
}

pub(crate) fn event_weights(data: &Dataset, cfg: &TrainConfig, labels: &[i64]) -> Result<Option<Vec<f32>>> {
    let ev = if cfg.use_event_weights { data.weight() } else { None };
    let Some(cw) = &cfg.class_weights else {
        return Ok(ev.map(<[f32]>::to_vec));
    };
    if let Some(i) = cw.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(Error::BadOption {
            func: "train".into(),
            key: "class_weights".into(),
            problem: format!("entry {i} is {}, must be finite and ≥ 0", cw[i]),
        });
    }
    if let Some(&l) = labels.iter().find(|&&l| l < 0 || l as usize >= cw.len()) {
        return Err(Error::BadOption {
            func: "train".into(),
            key: "class_weights".into(),
            problem: format!("has {} entries, no entry for label {l}", cw.len()),
        });
    }
    Ok(Some(labels.iter().enumerate().map(|(i, &l)| cw[l as usize] * ev.map_or(1.0, |w| w[i])).collect()))
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
