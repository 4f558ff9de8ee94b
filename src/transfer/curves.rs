//! Data-efficiency curves: for each target-domain size N and seed, a model trained from
//! scratch and a pretrained model fine-tuned on the same N events, both evaluated on one test
//! set; the metric's mean and spread over seeds per size, and the efficiency factor
//! ([`super::factor`]).
//!
//! **Events.** Per seed s one permutation of the pool (from `rng::substream(s, 0)`); size N
//! takes its first N events, so the sizes are nested and scratch and fine-tuned see the same
//! events (a paired comparison). The training seed of (s, N) is `rng::substream(s, N)`.
//! **Scratch** models are the given architecture with every group re-drawn from that seed
//! ([`Model::reinit_group`]; a model that cannot keeps its given weights) and the scratch
//! settings; **fine-tuned** ones start from the pretrained weights with the fine-tuning
//! settings (by default the pretrained standardisation is kept).
//!
//! **Parallel and deterministic.** The 2 × sizes × seeds trainings run in parallel (rayon; each
//! training also splits its minibatches over two cores); each depends only on its own seed,
//! so results do not depend on the thread count. Progress: one bar over the trainings.

use std::sync::Mutex;

use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::factor::{self, Better};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{GroupRef, Model, TrainConfig};
use crate::optim::{Control, Observe, Progress};
use crate::{metrics, rng};

/// Most trainings one call runs.
pub const MAX_TRAININGS: usize = 10_000;

/// What each trained model is scored by on the test set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// ROC AUC (binary classifiers).
    Auc,
    /// Background rejection 1/ε_B at signal efficiency ε_S (binary classifiers).
    Rejection {
        /// The working point ε_S, in (0, 1].
        efficiency: f64,
    },
    /// Regression (the training's `target`): the resolution, the standard deviation of
    /// prediction − target (the bias, its mean, is reported alongside).
    Resolution,
    /// Regression: the root-mean-square of prediction − target, √(resolution² + bias²).
    Rmse,
}

impl Metric {
    /// Whether larger values are better.
    pub fn better(self) -> Better {
        match self {
            Metric::Resolution | Metric::Rmse => Better::Lower,
            _ => Better::Higher,
        }
    }

    /// The metric's name in results.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Auc => "auc",
            Metric::Rejection { .. } => "rejection",
            Metric::Resolution => "resolution",
            Metric::Rmse => "rmse",
        }
    }

    /// Whether the metric scores a regression.
    pub fn regression(self) -> bool {
        matches!(self, Metric::Resolution | Metric::Rmse)
    }
}

/// The settings of a curve.
#[derive(Clone, Debug)]
pub struct CurveConfig {
    /// Target-domain training sizes, increasing.
    pub sizes: Vec<usize>,
    /// Seeds (one training per size, seed and mode).
    pub seeds: Vec<u64>,
    /// Training from scratch (its `seed` and `reinit` are set per training).
    pub scratch: TrainConfig,
    /// Fine-tuning (its `seed` is set per training).
    pub finetune: TrainConfig,
    /// The metric.
    pub metric: Metric,
}

/// One trained model's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Training size.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// Fine-tuned (true) or from scratch.
    pub finetuned: bool,
    /// The metric on the test set.
    pub value: f64,
    /// Regression: the mean of prediction − target.
    pub bias: Option<f64>,
}

/// Mean and sample standard deviation over seeds at one size.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Training size.
    pub n: usize,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub std: f64,
    /// Regression: the mean bias over seeds.
    pub bias: Option<f64>,
}

/// The curves and the efficiency factor.
#[derive(Clone, Debug)]
pub struct Curves {
    /// The metric.
    pub metric: Metric,
    /// Every training's score, in (size, seed, scratch then fine-tuned) order.
    pub points: Vec<Point>,
    /// Scratch, per size.
    pub scratch: Vec<Summary>,
    /// Fine-tuned, per size.
    pub finetuned: Vec<Summary>,
    /// N_scratch/N at equal performance per size (mean curves); `None` outside the scratch range.
    pub factors: Vec<Option<f64>>,
    /// Geometric mean of `factors`.
    pub factor: Option<f64>,
    /// The summary factor of each seed's own pair of curves (its spread is the factor's).
    pub seed_factors: Vec<Option<f64>>,
}

impl Curves {
    /// Mean and sample standard deviation of the defined per-seed factors.
    pub fn factor_spread(&self) -> Option<(f64, f64)> {
        let v: Vec<f64> = self.seed_factors.iter().flatten().copied().collect();
        mean_std(&v)
    }
}

fn mean_std(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 { (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    Some((m, s))
}

/// Runs the curves (see the module documentation). `scratch` is the architecture trained
/// from scratch, `pretrained` the source-domain model; both must take the pool's features.
pub fn data_efficiency(
    pretrained: &dyn Model,
    scratch: &dyn Model,
    pool: &Dataset,
    test: &Dataset,
    cfg: &CurveConfig,
    control: &Control,
) -> Result<Curves> {
    let op = "data_efficiency";
    check(cfg, pool.len())?;
    if test.is_empty() {
        return Err(Error::Empty { op, what: "the test set".into() });
    }
    let groups = scratch.param_groups().len() as i64;
    let reinit_ok = scratch.box_clone().reinit_group(0, 0).is_ok();
    let jobs: Vec<(usize, u64, bool)> =
        cfg.sizes.iter().flat_map(|&n| cfg.seeds.iter().flat_map(move |&s| [(n, s, false), (n, s, true)])).collect();
    let perms: Vec<Vec<usize>> = cfg
        .seeds
        .iter()
        .map(|&s| {
            let mut idx: Vec<usize> = (0..pool.len()).collect();
            idx.shuffle(&mut rng::rng(rng::substream(s, 0)));
            idx
        })
        .collect();
    let progress = Mutex::new((0usize, control.progress.then(Progress::new)));
    if let Ok(mut p) = progress.lock() {
        if let Some(bar) = p.1.as_mut() {
            bar.init(op, jobs.len(), &Vec::new());
        }
    }
    let quiet = Control { progress: false, ..control.clone() };
    let budget = crate::memory::current();
    let points: Vec<Point> = jobs
        .par_iter()
        .map(|&(n, seed, finetuned)| {
            crate::memory::with(&budget, || {
                control.check()?;
                let k = cfg.seeds.iter().position(|&s| s == seed).unwrap_or(0);
                let data = pool.take_rows(&perms[k][..n]);
                let train_seed = rng::substream(seed, n as u64);
                let (start, tc) = if finetuned {
                    (pretrained, TrainConfig { seed: train_seed, ..cfg.finetune.clone() })
                } else {
                    let reinit = if reinit_ok { (0..groups).map(GroupRef::Index).collect() } else { Vec::new() };
                    (scratch, TrainConfig { seed: train_seed, reinit, ..cfg.scratch.clone() })
                };
                let model = crate::model::train(start, &data, &tc, &quiet)?.model;
                let (value, bias) = score(&*model, test, cfg.metric, tc.target.as_deref())?;
                if let Ok(mut p) = progress.lock() {
                    p.0 += 1;
                    let done = p.0;
                    if let Some(bar) = p.1.as_mut() {
                        bar.iter(done, &vec![("N", n as f64)]);
                    }
                }
                Ok(Point { n, seed, finetuned, value, bias })
            })
        })
        .collect::<Result<_>>()?;
    if let Ok(mut p) = progress.lock() {
        if let Some(bar) = p.1.as_mut() {
            bar.done(crate::optim::Stop::MaxIters, jobs.len());
        }
    }
    Ok(summarise(cfg, points))
}

fn check(cfg: &CurveConfig, pool: usize) -> Result<()> {
    let op = "data_efficiency";
    let bad = |key: &str, problem: String| Error::BadOption { func: op.into(), key: key.into(), problem };
    if cfg.sizes.is_empty() {
        return Err(bad("sizes", "must list at least one training size".into()));
    }
    if cfg.sizes[0] == 0 || cfg.sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("sizes", format!("must be positive and increasing, got {:?}", cfg.sizes)));
    }
    if let Some(&last) = cfg.sizes.last() {
        if last > pool {
            return Err(bad("sizes", format!("asks for {last} events, more than the {pool} target-domain events")));
        }
    }
    if cfg.seeds.is_empty() {
        return Err(bad("seeds", "must list at least one seed".into()));
    }
    let mut s = cfg.seeds.clone();
    s.sort_unstable();
    if s.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("seeds", format!("must be distinct, got {:?}", cfg.seeds)));
    }
    crate::limits::check(op, "trainings", 2 * cfg.sizes.len() * cfg.seeds.len(), MAX_TRAININGS)?;
    if let Metric::Rejection { efficiency } = cfg.metric {
        if !(efficiency > 0.0 && efficiency <= 1.0) {
            return Err(bad("efficiency", format!("must be in (0, 1], got {efficiency}")));
        }
    }
    let regression = cfg.scratch.target.is_some();
    if regression != cfg.metric.regression() || cfg.finetune.target != cfg.scratch.target {
        return Err(bad(
            "metric",
            "\"resolution\" and \"rmse\" go with a regression target (the same for scratch and fine-tuning), \"auc\" and \"rejection\" with labels".into(),
        ));
    }
    Ok(())
}

/// The metric of `model` on `test` (and the bias for regression).
fn score(model: &dyn Model, test: &Dataset, metric: Metric, target: Option<&str>) -> Result<(f64, Option<f64>)> {
    let op = "data_efficiency";
    if let Some(t) = target {
        let truth = test.column(t)?.to_vec();
        let x = test.drop_columns(&[t.to_string()])?;
        let pred = model.scores(model.inputs(&x)?.view())?;
        let r = metrics::regression(op, &pred.column(0).to_vec(), &truth, &test.weights_or_ones())?;
        let value = if metric == Metric::Rmse { r.rmse } else { r.resolution };
        return Ok((value, Some(r.bias)));
    }
    let labels = test.label().ok_or_else(|| Error::arg(op, "the test set has no label"))?;
    let z = model.logits(model.inputs(test)?.view())?;
    let s = model.positive_scores(&z).ok_or_else(|| Error::arg(op, "auc and rejection need a binary classifier"))?;
    metrics::check_scores(op, &s)?;
    match metric {
        Metric::Auc => Ok((metrics::roc_auc(&s, labels, test.weight())?, None)),
        Metric::Rejection { efficiency } => {
            let curve = metrics::roc_curve(&s, labels, test.weight())?;
            Ok((rejection(&curve, efficiency), None))
        }
        Metric::Resolution | Metric::Rmse => Err(Error::arg(op, "resolution and rmse need a regression target")),
    }
}

/// 1/ε_B at ε_S = `eff`, interpolating the ROC curve `(fpr, tpr, threshold)` linearly
/// (infinite when no background passes there).
pub fn rejection(curve: &[(f64, f64, f64)], eff: f64) -> f64 {
    let mut fpr = 1.0;
    for w in curve.windows(2) {
        let ((f0, t0, _), (f1, t1, _)) = (w[0], w[1]);
        if t0 <= eff && eff <= t1 {
            fpr = if t1 > t0 { f0 + (eff - t0) / (t1 - t0) * (f1 - f0) } else { f0 };
            break;
        }
    }
    if fpr > 0.0 {
        1.0 / fpr
    } else {
        f64::INFINITY
    }
}

fn summarise(cfg: &CurveConfig, points: Vec<Point>) -> Curves {
    let per = |finetuned: bool, seed: Option<u64>| -> Vec<Summary> {
        cfg.sizes
            .iter()
            .map(|&n| {
                let sel: Vec<&Point> = points
                    .iter()
                    .filter(|p| p.n == n && p.finetuned == finetuned && seed.is_none_or(|s| p.seed == s))
                    .collect();
                let v: Vec<f64> = sel.iter().map(|p| p.value).collect();
                let (mean, std) = mean_std(&v).unwrap_or((f64::NAN, 0.0));
                let b: Vec<f64> = sel.iter().filter_map(|p| p.bias).collect();
                Summary { n, mean, std, bias: mean_std(&b).map(|m| m.0) }
            })
            .collect()
    };
    let xy = |s: &[Summary]| -> Vec<(f64, f64)> { s.iter().map(|p| (p.n as f64, p.mean)).collect() };
    let better = cfg.metric.better();
    let (scratch, finetuned) = (per(false, None), per(true, None));
    let factors = factor::factors(&xy(&scratch), &xy(&finetuned), better);
    let seed_factors = cfg
        .seeds
        .iter()
        .map(|&s| factor::summary(&factor::factors(&xy(&per(false, Some(s))), &xy(&per(true, Some(s))), better)))
        .collect();
    Curves { metric: cfg.metric, factor: factor::summary(&factors), factors, scratch, finetuned, seed_factors, points }
}

#[cfg(test)]
#[path = "curves_tests.rs"]
mod tests;
