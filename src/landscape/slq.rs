//! The spectral density by stochastic Lanczos quadrature (SLQ), as PyHessian.
//!
//! Each run starts Lanczos (full re-orthogonalisation) from a normalised Rademacher vector v
//! and takes `iters` steps; the Gauss quadrature of the tridiagonal T gives nodes θⱼ (its
//! eigenvalues) and weights τⱼ = s₁ⱼ² (squared first components of its eigenvectors), so that
//! vᵀf(H)v ≈ Σ τⱼ f(θⱼ). Averaged over runs (each weight divided by the number of runs),
//! Σ τ = 1 and Σ τθ estimates tr(H)/n. [`density_on_grid`] smooths the nodes with Gaussians
//! into a curve to plot.

use super::lanczos::Krylov;
use super::op::{rademacher, LinearOp};
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng::{self, Rng};
use crate::{limits, memory};

/// Settings of [`slq`].
#[derive(Clone, Debug)]
pub struct SlqConfig {
    /// Lanczos steps per run (PyHessian: 100).
    pub iters: usize,
    /// Independent runs (random start vectors).
    pub runs: usize,
    /// Seed of the start vectors.
    pub seed: u64,
}

impl Default for SlqConfig {
    /// 100 steps, 1 run, seed 0.
    fn default() -> Self {
        SlqConfig { iters: 100, runs: 1, seed: 0 }
    }
}

/// Quadrature nodes and weights of the spectral density.
#[derive(Clone, Debug)]
pub struct Density {
    /// Nodes (Ritz values) of every run, concatenated.
    pub nodes: Vec<f64>,
    /// Weights, summing to 1 over all runs (each run's weights divided by the run count).
    pub weights: Vec<f64>,
    /// Completed runs (an interrupted run counts with its partial quadrature).
    pub runs: usize,
    /// Products used.
    pub hvps: usize,
    /// Why the run ended.
    pub stop: Stop,
}

impl Density {
    /// Σ wᵢθᵢ: the density's mean, an estimate of tr(H)/n.
    pub fn mean(&self) -> f64 {
        self.nodes.iter().zip(&self.weights).map(|(x, w)| x * w).sum()
    }
}

/// The SLQ spectral density of `op`.
pub fn slq<O: LinearOp + ?Sized>(op: &O, cfg: &SlqConfig, control: &Control) -> Result<Density> {
    let mut s = Slq::new(op, cfg)?;
    let run = control.executor(cfg.runs * cfg.iters).run(&mut s)?;
    Ok(s.finish(run.stop))
}

/// The SLQ solver: one step is one Lanczos step of the current run.
pub struct Slq<'a, O: LinearOp + ?Sized> {
    op: &'a O,
    cfg: SlqConfig,
    rng: Rng,
    current: Option<Krylov>,
    runs: Vec<(Vec<f64>, Vec<f64>)>,
    hvps: usize,
}

impl<'a, O: LinearOp + ?Sized> Slq<'a, O> {
    /// Checks the settings.
    pub fn new(op: &'a O, cfg: &SlqConfig) -> Result<Self> {
        for (k, v) in [("iters", cfg.iters), ("runs", cfg.runs)] {
            if v == 0 {
                return Err(Error::BadOption {
                    func: "hessian_density".into(),
                    key: k.into(),
                    problem: "must be at least 1".into(),
                });
            }
        }
        limits::check("hessian_density", "iters", cfg.iters, limits::LANCZOS_STEPS)?;
        limits::check("hessian_density", "runs", cfg.runs, limits::SLQ_RUNS)?;
        let steps = cfg.iters.min(op.dim());
        memory::check(
            memory::bytes(steps.saturating_mul(op.dim()), 8),
            &format!("hessian_density: {steps} Lanczos vectors of {} weights", op.dim()),
        )?;
        Ok(Slq { op, cfg: cfg.clone(), rng: rng::rng(cfg.seed), current: None, runs: Vec::new(), hvps: 0 })
    }

    fn close_run(&mut self) {
        if let Some(k) = self.current.take() {
            if k.alpha.is_empty() {
                return;
            }
            let (vals, vecs) = k.ritz();
            let w = (0..vals.len()).map(|j| vecs[(0, j)] * vecs[(0, j)]).collect();
            self.runs.push((vals, w));
        }
    }

    /// The quadrature so far (a run cut short by an interrupt contributes its partial T).
    pub fn finish(mut self, stop: Stop) -> Density {
        self.close_run();
        let r = self.runs.len().max(1) as f64;
        let mut d = Density { nodes: Vec::new(), weights: Vec::new(), runs: self.runs.len(), hvps: self.hvps, stop };
        for (v, w) in self.runs {
            d.nodes.extend(v);
            d.weights.extend(w.into_iter().map(|x| x / r));
        }
        d
    }
}

impl<O: LinearOp + ?Sized> Solver for Slq<'_, O> {
    fn name(&self) -> &'static str {
        "density"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        if self.current.is_none() {
            self.current = Some(Krylov::new(rademacher(self.op.dim(), &mut self.rng))?);
        }
        let k = self.current.as_mut().ok_or_else(|| Error::arg("hessian_density", "internal: no Lanczos run"))?;
        k.step(self.op)?;
        self.hvps += 1;
        let alpha = k.alpha[k.alpha.len() - 1];
        if k.exhausted || k.alpha.len() == self.cfg.iters.min(self.op.dim()) {
            self.close_run();
        }
        Ok(vec![("runs", self.runs.len() as f64), ("alpha", alpha)])
    }

    fn stop(&self) -> Option<Stop> {
        (self.runs.len() == self.cfg.runs && self.current.is_none()).then_some(Stop::MaxIters)
    }
}

/// The density smoothed by Gaussians of standard deviation `sigma` on `points` equally spaced
/// values spanning the nodes ± 5σ: returns (x, ρ(x)); ρ integrates to Σ weights = 1 up to the
/// grid's resolution. The default σ is PyHessian's (σ² = 1e-5·max(1, range)), widened to two
/// grid spacings (2·range/points) when the grid could not resolve it.
pub fn density_on_grid(d: &Density, points: usize, sigma: Option<f64>) -> Result<(Vec<f64>, Vec<f64>)> {
    if d.nodes.is_empty() {
        return Err(Error::Empty { op: "hessian_density", what: "the quadrature (no Lanczos step finished)".into() });
    }
    limits::check("hessian_density", "points", points, limits::GRID_POINTS)?;
    if points < 2 {
        return Err(Error::BadOption {
            func: "hessian_density".into(),
            key: "points".into(),
            problem: "must be at least 2".into(),
        });
    }
    let lo = d.nodes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = d.nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sigma = match sigma {
        Some(s) if s.is_finite() && s > 0.0 => s,
        Some(s) => {
            return Err(Error::BadOption {
                func: "hessian_density".into(),
                key: "sigma".into(),
                problem: format!("must be > 0, got {s}"),
            })
        }
        None => (1e-5 * (hi - lo).max(1.0)).sqrt().max(2.0 * (hi - lo) / points as f64),
    };
    let (a, b) = (lo - 5.0 * sigma, hi + 5.0 * sigma);
    let x: Vec<f64> = (0..points).map(|i| a + (b - a) * i as f64 / (points - 1) as f64).collect();
    let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    let y = x
        .iter()
        .map(|&t| {
            d.nodes.iter().zip(&d.weights).map(|(m, w)| w * norm * (-0.5 * ((t - m) / sigma).powi(2)).exp()).sum()
        })
        .collect();
    Ok((x, y))
}
