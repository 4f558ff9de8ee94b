//! Adversarial training: each epoch (or each minibatch) a fraction `ratio` of the training
//! events is replaced by adversarial versions made on the fly against the current weights by an
//! [`Augmenter`] (RDSA, FGSM, PGD, MiniFool, or a script function), after `warmup` clean
//! epochs. Every epoch reports the accuracy on clean evaluation events, on their adversarial
//! versions (the same attack against the current weights) and on both sets together.
//!
//! The evaluation events are the validation set when there is one, otherwise the training
//! events (at most `eval_events` of them, a fixed seeded subset).
//!
//! Architecture: the attacks live in `attack/`; this module only knows the [`Augmenter`] trait,
//! so `model/` does not depend on them, and scripts can plug in closures through the bindings.

use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;

use super::interface::Model;
use super::train::{BatchHook, TrainConfig, TrainResult, Trainer};
use super::Output;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics;
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;

/// Makes adversarial versions of events against a model.
pub trait Augmenter {
    /// Adversarial versions (`n × d`, physical units) of the events `x` with true `labels`,
    /// against `model`, drawing any randomness from `seed`.
    fn perturb(
        &mut self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>>;
}

/// When fresh adversarial events are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// Once per epoch, against the weights at its start.
    Epoch,
    /// For every minibatch, against the current weights.
    Batch,
}

/// Settings of adversarial training.
#[derive(Clone, Debug, PartialEq)]
pub struct AdversarialConfig {
    /// Fraction of the events (of each epoch or each batch) replaced by adversarial ones, in
    /// [0, 1].
    pub ratio: f64,
    /// Clean epochs before the first adversarial one.
    pub warmup: usize,
    /// When adversarial events are made.
    pub every: Every,
    /// At most this many evaluation events when the training events are used for it.
    pub eval_events: usize,
}

impl Default for AdversarialConfig {
    /// Half of the events, one clean epoch, fresh attacks every epoch, ≤ 10,000 evaluation
    /// events.
    fn default() -> Self {
        AdversarialConfig { ratio: 0.5, warmup: 1, every: Every::Epoch, eval_events: 10_000 }
    }
}

impl AdversarialConfig {
    /// Errors on a ratio outside [0, 1] or no evaluation events.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.ratio) {
            return Err(Error::BadOption {
                func: "train".into(),
                key: "adversarial.ratio".into(),
                problem: format!("must be in [0, 1], got {}", self.ratio),
            });
        }
        if self.eval_events == 0 {
            return Err(Error::BadOption {
                func: "train".into(),
                key: "adversarial.eval_events".into(),
                problem: "must be ≥ 1".into(),
            });
        }
        Ok(())
    }
}

/// Accuracies after one epoch of adversarial training.
#[derive(Clone, Debug, PartialEq)]
pub struct AdversarialRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Accuracy on the clean evaluation events.
    pub clean_accuracy: f64,
    /// Accuracy on their adversarial versions.
    pub adv_accuracy: f64,
    /// Accuracy on the clean and adversarial events together.
    pub mixed_accuracy: f64,
    /// Adversarial events trained on in the epoch.
    pub adversarial_events: usize,
}

/// The outcome of [`adversarial_train`].
#[derive(Clone, Debug)]
pub struct AdversarialResult {
    /// Model, loss history, stop reason (as [`super::train`]).
    pub train: TrainResult,
    /// One record per epoch.
    pub adversarial: Vec<AdversarialRecord>,
}

/// Trains a copy of `model` on `train` with adversarial events from `aug` mixed in.
pub fn adversarial_train(
    model: &dyn Model,
    train: &Dataset,
    cfg: &TrainConfig,
    adv: &AdversarialConfig,
    aug: &mut dyn Augmenter,
    control: &Control,
) -> Result<AdversarialResult> {
    adv.check()?;
    if cfg.target.is_some() || model.output() == Output::Linear {
        return Err(Error::arg("train", "adversarial training needs a classifier trained on labels"));
    }
    let trainer = Trainer::new(model, train, cfg, control)?;
    let eval = eval_set(&trainer, adv.eval_events, cfg.seed);
    let quiet = Control { progress: false, ..control.clone() };
    let mut solver =
        AdversarialTrainer { trainer, aug, cfg: adv.clone(), seed: cfg.seed, eval, quiet, records: Vec::new() };
    let run = control.executor(cfg.epochs).run(&mut solver)?;
    let records = solver.records;
    Ok(AdversarialResult { train: solver.trainer.finish(run.stop)?, adversarial: records })
}

/// The validation set, or at most `max` training events (a seeded subset).
fn eval_set(t: &Trainer, max: usize, seed: u64) -> Dataset {
    if let Some(v) = t.validation() {
        return v.clone();
    }
    let d = t.data();
    if d.len() <= max {
        return d.clone();
    }
    let mut idx: Vec<usize> = (0..d.len()).collect();
    idx.shuffle(&mut rng::rng(rng::substream(seed, 0xE7A1)));
    idx.truncate(max);
    idx.sort_unstable();
    d.take_rows(&idx)
}

/// A seeded choice of `round(ratio·n)` of `n` positions, in increasing order.
fn choose(n: usize, ratio: f64, seed: u64) -> Vec<usize> {
    let m = ((n as f64) * ratio).round() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng::rng(seed));
    idx.truncate(m.min(n));
    idx.sort_unstable();
    idx
}

/// Stream tags keeping the different random choices apart.
const PICK: u64 = 0xAD50;
const ATTACK: u64 = 0xAD51;
const EVAL: u64 = 0xAD52;

struct AdversarialTrainer<'a> {
    trainer: Trainer,
    aug: &'a mut dyn Augmenter,
    cfg: AdversarialConfig,
    seed: u64,
    eval: Dataset,
    quiet: Control,
    records: Vec<AdversarialRecord>,
}

/// Per-batch replacement through the augmenter.
struct Hook<'a> {
    aug: &'a mut dyn Augmenter,
    ratio: f64,
    quiet: &'a Control,
    count: usize,
}

impl BatchHook for Hook<'_> {
    fn replace(
        &mut self,
        model: &dyn Model,
        data: &Dataset,
        batch: &[usize],
        seed: u64,
    ) -> Result<Option<(Vec<usize>, Array2<f32>)>> {
        let pos = choose(batch.len(), self.ratio, rng::substream(seed, PICK));
        if pos.is_empty() {
            return Ok(None);
        }
        let rows: Vec<usize> = pos.iter().map(|&p| batch[p]).collect();
        let sub = data.take_rows(&rows);
        let labels = sub.label().ok_or_else(|| Error::arg("train", "the training set has no label column"))?;
        let x =
            self.aug.perturb(model, model.inputs(&sub)?.view(), labels, rng::substream(seed, ATTACK), self.quiet)?;
        self.count += pos.len();
        Ok(Some((pos, x)))
    }
}

impl AdversarialTrainer<'_> {
    /// Replaces a fraction of the training events for the coming epoch.
    fn epoch_events(&mut self, iter: usize) -> Result<usize> {
        let data = self.trainer.data().clone();
        let seed = rng::substream(self.seed ^ 0xADAD, iter as u64);
        let pos = choose(data.len(), self.cfg.ratio, rng::substream(seed, PICK));
        if pos.is_empty() {
            self.trainer.set_training_x(None)?;
            return Ok(0);
        }
        let sub = data.take_rows(&pos);
        let labels = sub.label().ok_or_else(|| Error::arg("train", "the training set has no label column"))?;
        let model = self.trainer.model();
        let adv =
            self.aug.perturb(model, model.inputs(&sub)?.view(), labels, rng::substream(seed, ATTACK), &self.quiet)?;
        check_rows(&adv, sub.len(), model.n_inputs())?;
        let mut x = self.trainer.training_inputs().to_owned();
        for (r, &i) in adv.rows().into_iter().zip(&pos) {
            x.row_mut(i).assign(&r);
        }
        self.trainer.set_training_x(Some(x))?;
        Ok(pos.len())
    }

    /// Clean, adversarial and mixed accuracy on the evaluation events.
    fn evaluate(&mut self, epoch: usize, adversarial_events: usize) -> Result<AdversarialRecord> {
        let model = self.trainer.model();
        let labels = self.eval.label().ok_or_else(|| Error::arg("train", "the evaluation set has no label column"))?;
        let w = if self.trainer_uses_weights() { self.eval.weight() } else { None };
        let x = model.inputs(&self.eval)?;
        let clean = metrics::accuracy(&model.predict_class(x.view())?, labels, w)?;
        let seed = rng::substream(self.seed, EVAL);
        let adv = self.aug.perturb(model, x.view(), labels, seed, &self.quiet)?;
        check_rows(&adv, self.eval.len(), model.n_inputs())?;
        let adv_acc = metrics::accuracy(&model.predict_class(adv.view())?, labels, w)?;
        // Both sets have the same events and weights: the accuracy of their union is the mean.
        Ok(AdversarialRecord {
            epoch,
            clean_accuracy: clean,
            adv_accuracy: adv_acc,
            mixed_accuracy: (clean + adv_acc) / 2.0,
            adversarial_events,
        })
    }

    fn trainer_uses_weights(&self) -> bool {
        self.trainer.config().use_event_weights
    }
}

fn check_rows(x: &Array2<f32>, n: usize, d: usize) -> Result<()> {
    if x.dim() != (n, d) {
        return Err(Error::Shape {
            op: "train",
            expected: format!("the attack to return {n} events of {d} features"),
            got: format!("{} × {}", x.nrows(), x.ncols()),
        });
    }
    if let Some((row, col)) = crate::data::first_nonfinite(x.view()) {
        return Err(Error::arg(
            "train",
            format!("the attack returned a non-finite value (event {row}, feature {col})"),
        ));
    }
    Ok(())
}

impl Solver for AdversarialTrainer<'_> {
    fn name(&self) -> &'static str {
        "adversarial train"
    }

    fn step(&mut self, iter: usize) -> Result<Kv> {
        let adversarial = iter >= self.cfg.warmup;
        let (mut kv, count) = match (adversarial, self.cfg.every) {
            (false, _) => {
                self.trainer.set_training_x(None)?;
                (self.trainer.epoch(iter, None)?, 0)
            }
            (true, Every::Epoch) => {
                let count = self.epoch_events(iter)?;
                (self.trainer.epoch(iter, None)?, count)
            }
            (true, Every::Batch) => {
                let mut hook = Hook { aug: &mut *self.aug, ratio: self.cfg.ratio, quiet: &self.quiet, count: 0 };
                let kv = self.trainer.epoch(iter, Some(&mut hook))?;
                (kv, hook.count)
            }
        };
        let rec = self.evaluate(iter + 1, count)?;
        kv.extend([
            ("clean_accuracy", rec.clean_accuracy),
            ("adv_accuracy", rec.adv_accuracy),
            ("mixed_accuracy", rec.mixed_accuracy),
        ]);
        self.records.push(rec);
        Ok(kv)
    }

    fn stop(&self) -> Option<Stop> {
        self.trainer.stop()
    }
}

#[cfg(test)]
#[path = "adversarial_tests.rs"]
mod tests;
