//! Training a [`Correction`]: the minimal-deviation objective
//! `Σⱼ cⱼ·Dⱼ(targetⱼ, T(x)ⱼ) + λ·mean_w ‖(T(x) − x) ⊘ σ‖²` as a [`Weighted`] sum of
//! [`BatchObjective`] terms over the residual network's outputs, trained by the
//! [`ObjectiveTrainer`] (every minibatch compared with the targets as a whole).

use ndarray::{Array2, ArrayView2};

use super::derived::DerivedTerm;
use super::distance::Distance;
use super::model::Correction;
use super::target::{Prepared, Target};
use crate::data::expr::Expr;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{
    Activation, BatchObjective, Convergence, Model, ObjectiveRecord, ObjectiveTrainer, Optimizer, TrainConfig, Weighted,
};
use crate::optim::{Control, Stop};

/// Events the final per-term values are computed on.
const SUMMARY_EVENTS: usize = 4096;

/// A target with the distance that compares it and the term's weight.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    /// The target.
    pub target: Target,
    /// How the corrected feature is compared with it.
    pub distance: Distance,
    /// The term's weight cⱼ.
    pub weight: f64,
}

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct CorrectConfig {
    /// Features the correction acts on (`None`: every feature of the simulation).
    pub features: Option<Vec<String>>,
    /// Hidden widths of the residual network.
    pub hidden: Vec<usize>,
    /// Its activation.
    pub activation: Activation,
    /// λ of the closeness term.
    pub lambda: f64,
    /// σ per feature by name (the rest: the simulation's weighted standard deviation).
    pub sigma: Vec<(String, f64)>,
    /// Features that never move.
    pub frozen: Vec<String>,
    /// Derived features (name, expression), recomputed after the transform.
    pub derived: Vec<(String, String)>,
    /// Epochs, batch size, optimiser, schedule, seed, frozen parameter groups.
    pub train: TrainConfig,
    /// When training counts as converged (`None`: all epochs).
    pub converge: Option<Convergence>,
}

impl Default for CorrectConfig {
    /// Residual network 64→64 (tanh), λ 0.1, 40 epochs of batches of 2048, Adam 3e-3, converged
    /// when the epoch objective falls by less than 0.5 % for 3 epochs.
    fn default() -> Self {
        CorrectConfig {
            features: None,
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            lambda: 0.1,
            sigma: Vec::new(),
            frozen: Vec::new(),
            derived: Vec::new(),
            train: TrainConfig {
                epochs: 40,
                batch_size: 2048,
                optimizer: Optimizer::adam(3e-3),
                standardize: crate::model::Standardize::Keep,
                ..TrainConfig::default()
            },
            converge: Some(Convergence { tol: 5e-3, patience: 3 }),
        }
    }
}

/// A trained correction and how training went.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// The correction.
    pub correction: Correction,
    /// Objective per epoch.
    pub history: Vec<ObjectiveRecord>,
    /// Why training ended.
    pub stop: Stop,
    /// Each term's value (unweighted) on the whole simulation after training.
    pub terms: Vec<(String, f64)>,
}

/// One target's term: its distance on the corrected feature `j`.
struct TargetTerm {
    j: usize,
    name: String,
    distance: Distance,
    prepared: Prepared,
    sigma: f64,
    step: f32,
}

impl BatchObjective for TargetTerm {
    fn name(&self) -> String {
        format!("{}({})", self.distance.name(), self.name)
    }

    fn eval(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32], grad: &mut Array2<f32>) -> Result<f64> {
        let (j, s) = (self.j, f64::from(self.step));
        let t: Vec<f64> = x.column(j).iter().zip(z.column(j)).map(|(&a, &b)| f64::from(a) + s * f64::from(b)).collect();
        let wf: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let mut g = vec![0.0; t.len()];
        let v = self.distance.eval(&t, &wf, &self.prepared, self.sigma, &mut g);
        grad.fill(0.0);
        grad.column_mut(j).iter_mut().zip(&g).for_each(|(d, g)| *d = (g * s) as f32);
        Ok(v)
    }
}

/// `mean_w Σⱼ ((T − x)ⱼ/σⱼ)²` = `mean_w Σⱼ (mⱼ rⱼ)²` (the residual is in σ units).
struct Closeness {
    moves: Vec<bool>,
}

impl BatchObjective for Closeness {
    fn name(&self) -> String {
        "closeness".into()
    }

    fn eval(&self, _x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32], grad: &mut Array2<f32>) -> Result<f64> {
        let total: f64 = w.iter().map(|&v| f64::from(v)).sum();
        let mut v = 0.0;
        for ((zr, mut gr), &wi) in z.rows().into_iter().zip(grad.rows_mut()).zip(w) {
            let wi = f64::from(wi) / total;
            for ((zv, g), &m) in zr.iter().zip(gr.iter_mut()).zip(&self.moves) {
                let zv = if m { f64::from(*zv) } else { 0.0 };
                v += wi * zv * zv;
                *g = (2.0 * wi * zv) as f32;
            }
        }
        Ok(v)
    }
}

/// The objective of a correction with its residual network's outputs as the model outputs.
pub(crate) fn objective(corr: &Correction, targets: &[TargetSpec], lambda: f64) -> Result<Weighted> {
    let step = corr.step();
    let mut terms: Vec<(f64, Box<dyn BatchObjective>)> = Vec::new();
    for t in targets {
        let j = feature_index(corr.features(), &t.target.feature)?;
        if !(t.weight.is_finite() && t.weight >= 0.0) {
            return Err(Error::arg(
                "correct",
                format!("the weight of the target of '{}' is {}", t.target.feature, t.weight),
            ));
        }
        let prepared = t.target.prepare()?;
        let sigma = f64::from(corr.sigma()[j]);
        if let Some(k) = corr.derived().iter().position(|(n, _)| n == &t.target.feature) {
            let chain =
                corr.derived()[..=k].iter().map(|(n, e)| Ok((n.clone(), Expr::parse(e)?))).collect::<Result<_>>()?;
            let term = DerivedTerm {
                features: corr.features().to_vec(),
                step: step.clone(),
                chain,
                distance: t.distance,
                prepared,
                sigma,
            };
            terms.push((t.weight, Box::new(term)));
            continue;
        }
        if !corr.moves()[j] {
            return Err(Error::arg(
                "correct",
                format!("feature '{}' has a target but is frozen; unfreeze it or drop its target", t.target.feature),
            ));
        }
        let term =
            TargetTerm { j, name: t.target.feature.clone(), distance: t.distance, prepared, sigma, step: step[j] };
        terms.push((t.weight, Box::new(term)));
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(Error::BadOption {
            func: "correct".into(),
            key: "lambda".into(),
            problem: format!("must be ≥ 0, got {lambda}"),
        });
    }
    terms.push((lambda, Box::new(Closeness { moves: corr.moves().to_vec() })));
    Weighted::new(terms)
}

/// The index of a target's feature (a derived feature's too); unknown features are errors.
fn feature_index(features: &[String], name: &str) -> Result<usize> {
    features.iter().position(|f| f == name).ok_or_else(|| {
        let near = crate::error::nearest(name, features.iter().map(String::as_str));
        Error::arg(
            "correct",
            format!(
                "a target names feature '{name}', which the simulation does not have (features: {}){}",
                features.join(", "),
                near.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default()
            ),
        )
    })
}

/// Trains a correction of `sim` towards `targets` (see the module documentation).
pub fn fit(sim: &Dataset, targets: &[TargetSpec], cfg: &CorrectConfig, control: &Control) -> Result<Fitted> {
    if sim.is_empty() {
        return Err(Error::Empty { op: "correct", what: "the simulation".into() });
    }
    if targets.is_empty() {
        return Err(Error::arg("correct", "no targets given"));
    }
    let features = cfg.features.clone().unwrap_or_else(|| sim.names().to_vec());
    for t in targets {
        feature_index(&features, &t.target.feature)?;
    }
    for f in cfg.frozen.iter().chain(cfg.sigma.iter().map(|(n, _)| n)) {
        if !features.contains(f) {
            return Err(Error::arg(
                "correct",
                format!("'{f}' is not one of the corrected features ({})", features.join(", ")),
            ));
        }
    }
    let data = sim.select(&features)?;
    data.check_finite("correct")?;
    let weights = data.weight();
    let stats = data.describe_weighted();
    let mut sigma = Vec::with_capacity(features.len());
    for (j, f) in features.iter().enumerate() {
        let s = match cfg.sigma.iter().find(|(n, _)| n == f) {
            Some((_, s)) => *s,
            None => stats[j].std,
        };
        sigma.push(if s.is_finite() && s > 0.0 { s as f32 } else { 1.0 });
        if let Some((_, s)) = cfg.sigma.iter().find(|(n, _)| n == f) {
            if !(s.is_finite() && *s > 0.0) {
                return Err(Error::BadOption {
                    func: "correct".into(),
                    key: "sigma".into(),
                    problem: format!("σ of '{f}' is {s}; must be > 0"),
                });
            }
        }
    }
    let moves = features.iter().map(|f| !cfg.frozen.contains(f)).collect();
    let mut corr =
        Correction::new(features, &cfg.hidden, cfg.activation, sigma, moves, cfg.derived.clone(), cfg.train.seed)?;
    Model::fit_standardization(&mut corr, &data)?;
    let obj = objective(&corr, targets, cfg.lambda)?;
    let mut trainer = ObjectiveTrainer::new(corr.net(), data.x(), weights, &obj, &cfg.train, cfg.converge, control)?;
    let run = control.executor(cfg.train.epochs).run(&mut trainer)?;
    let (model, history) = trainer.finish();
    let net = model.as_mlp().cloned().ok_or_else(|| Error::arg("correct", "the residual network is not an MLP"))?;
    corr.set_net(net)?;
    // The terms on at most SUMMARY_EVENTS evenly spaced events (the MMD is quadratic in them).
    let every = data.len().div_ceil(SUMMARY_EVENTS);
    let idx: Vec<usize> = (0..data.len()).step_by(every).collect();
    let sub = data.take_rows(&idx);
    let z = corr.net().forward_logits(sub.x())?;
    let terms = obj.parts(sub.x(), z.view(), &sub.weights_or_ones())?;
    Ok(Fitted { correction: corr, history, stop: run.stop, terms })
}
