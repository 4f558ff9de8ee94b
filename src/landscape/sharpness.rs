//! Sharpness by projected gradient ascent: S_ρ = max_{ε ∈ B} L(w + ε) − L(w), where B is the
//! L2 ball of radius ρ (absolute, or ρ·‖w‖ relative to the weights' norm) globally, or the
//! product of per-layer balls ‖ε_l‖ ≤ ρ (or ρ·‖w_l‖). Each of the k steps moves ε along the
//! normalised gradient (per layer when per-layer), ε ← Π_B(ε + α·g/‖g‖) with α = s·radius,
//! and the largest loss increase seen is reported with its perturbation norm.

use std::ops::Range;

use super::op::l2;
use crate::data::Dataset;
use crate::error::{Error, Result};
use ndarray::Array2;

use crate::model::{Model, Targets};
use crate::optim::{Control, Kv, Solver, Stop};

/// Settings of [`sharpness`].
#[derive(Clone, Debug)]
pub struct SharpnessConfig {
    /// Radius ρ.
    pub rho: f64,
    /// ρ is relative to ‖w‖ (or to each ‖w_l‖ when per layer).
    pub relative: bool,
    /// One ball per layer instead of one global ball.
    pub per_layer: bool,
    /// Ascent steps.
    pub steps: usize,
    /// Step length as a fraction of the radius (default 2.5/steps, so one step reaches the
    /// boundary).
    pub step_size: Option<f64>,
}

impl Default for SharpnessConfig {
    /// ρ = 0.05 absolute, global, 10 steps.
    fn default() -> Self {
        SharpnessConfig { rho: 0.05, relative: false, per_layer: false, steps: 10, step_size: None }
    }
}

/// The outcome of [`sharpness`].
#[derive(Clone, Debug)]
pub struct SharpnessResult {
    /// Loss at w.
    pub loss: f64,
    /// The largest loss found in the ball.
    pub perturbed_loss: f64,
    /// `perturbed_loss − loss`.
    pub delta_loss: f64,
    /// ‖ε‖₂ of the perturbation that reached it.
    pub norm: f64,
    /// Its norm per layer.
    pub layer_norms: Vec<f64>,
    /// Steps taken.
    pub steps: usize,
    /// Why the ascent ended.
    pub stop: Stop,
}

/// The sharpness of `model`'s loss on `data` (event weights included).
pub fn sharpness(
    model: &dyn Model,
    data: &Dataset,
    cfg: &SharpnessConfig,
    control: &Control,
) -> Result<SharpnessResult> {
    let mut s = Ascent::new(model, data, cfg)?;
    let run = control.executor(cfg.steps).run(&mut s)?;
    Ok(s.finish(run.stop, run.iters))
}

/// The ascent solver: one gradient per step.
pub struct Ascent<'a> {
    model: Box<dyn Model>,
    data: &'a Dataset,
    x: Array2<f32>,
    base: Vec<f32>,
    eps: Vec<f32>,
    grad: Vec<f32>,
    groups: Vec<(Range<usize>, f64)>,
    layers: Vec<Range<usize>>,
    alpha: f64,
    loss0: f64,
    best: (f64, Vec<f32>),
}

impl<'a> Ascent<'a> {
    /// Checks the settings and takes the gradient at w.
    pub fn new(model: &dyn Model, data: &'a Dataset, cfg: &SharpnessConfig) -> Result<Self> {
        let bad = |k: &str, p: String| Error::BadOption { func: "sharpness".into(), key: k.into(), problem: p };
        if !(cfg.rho.is_finite() && cfg.rho >= 0.0) {
            return Err(bad("rho", format!("must be ≥ 0, got {}", cfg.rho)));
        }
        if cfg.steps == 0 {
            return Err(bad("steps", "must be at least 1".into()));
        }
        let alpha = cfg.step_size.unwrap_or(2.5 / cfg.steps as f64);
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(bad("step_size", format!("must be > 0, got {alpha}")));
        }
        let x = model.inputs(data)?;
        let base = model.params();
        let layers: Vec<Range<usize>> = model.param_groups().into_iter().map(|g| g.range).collect();
        let all = 0..base.len();
        let ranges = if cfg.per_layer { layers.clone() } else { std::iter::once(all).collect() };
        let groups = ranges
            .into_iter()
            .map(|r| {
                let scale = if cfg.relative { l2(&base[r.clone()]) } else { 1.0 };
                (r, cfg.rho * scale)
            })
            .collect();
        let mut s = Ascent {
            model: model.box_clone(),
            data,
            x,
            eps: vec![0.0; base.len()],
            grad: Vec::new(),
            base,
            groups,
            layers,
            alpha,
            loss0: 0.0,
            best: (f64::NEG_INFINITY, Vec::new()),
        };
        let (loss, grad) = s.loss_grad()?;
        s.loss0 = loss;
        s.grad = grad;
        s.best = (loss, s.eps.clone());
        Ok(s)
    }

    fn loss_grad(&self) -> Result<(f64, Vec<f32>)> {
        let labels = self.data.label().ok_or_else(|| Error::arg("sharpness", "the dataset has no label column"))?;
        self.model.weight_grad(self.x.view(), Targets::Labels(labels), self.data.weight())
    }

    /// The best perturbation found after `steps` steps.
    pub fn finish(self, stop: Stop, steps: usize) -> SharpnessResult {
        let (loss, eps) = self.best;
        let layer_norms = self.layers.iter().map(|r| l2(&eps[r.clone()])).collect();
        SharpnessResult {
            loss: self.loss0,
            perturbed_loss: loss,
            delta_loss: loss - self.loss0,
            norm: l2(&eps),
            layer_norms,
            steps,
            stop,
        }
    }
}

impl Solver for Ascent<'_> {
    fn name(&self) -> &'static str {
        "sharpness"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        for (r, radius) in &self.groups {
            let gn = l2(&self.grad[r.clone()]);
            if gn > 0.0 {
                let c = (self.alpha * radius / gn) as f32;
                self.eps[r.clone()].iter_mut().zip(&self.grad[r.clone()]).for_each(|(e, g)| *e += c * g);
            }
            let en = l2(&self.eps[r.clone()]);
            if en > *radius {
                let c = (radius / en) as f32;
                self.eps[r.clone()].iter_mut().for_each(|e| *e *= c);
            }
        }
        let p: Vec<f32> = self.base.iter().zip(&self.eps).map(|(b, e)| b + e).collect();
        self.model.set_params(&p)?;
        let (loss, grad) = self.loss_grad()?;
        if !loss.is_finite() {
            return Err(Error::arg("sharpness", format!("the loss became {loss} inside the ball; use a smaller rho")));
        }
        self.grad = grad;
        if loss > self.best.0 {
            self.best = (loss, self.eps.clone());
        }
        Ok(vec![("delta_loss", self.best.0 - self.loss0)])
    }
}
