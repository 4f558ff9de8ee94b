//! Top eigenvalues by power iteration with deflation, as PyHessian does it.
//!
//! For each of the k eigenvalues: start from a seeded Gaussian vector; repeat "orthogonalise
//! against the eigenvectors already found, λ ← vᵀHv, v ← Hv/‖Hv‖" until the relative change
//! of λ is below `tol` (|λ_prev − λ|/(|λ_prev| + 1e-6), PyHessian's rule: the previous λ is
//! kept) or `max_iter` products were spent. It finds the eigenvalues of largest magnitude.
//! One solver step is one Hessian-vector product, so progress and Ctrl-C act per product.

use super::op::{check_finite, dot, gaussian, normalize, orthogonalize, LinearOp};
use super::Spectrum;
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng::{self, Rng};
use crate::{limits, memory};

/// Settings of [`power_iteration`].
#[derive(Clone, Debug)]
pub struct PowerConfig {
    /// Number of eigenvalues.
    pub k: usize,
    /// Products per eigenvalue at most (PyHessian: 100).
    pub max_iter: usize,
    /// Relative change of λ between iterations that counts as converged (PyHessian: 1e-3).
    pub tol: f64,
    /// Seed of the start vectors.
    pub seed: u64,
}

impl Default for PowerConfig {
    /// k = 1, 100 iterations, tol 1e-3, seed 0.
    fn default() -> Self {
        PowerConfig { k: 1, max_iter: 100, tol: 1e-3, seed: 0 }
    }
}

/// The top-k eigenpairs of `op` by power iteration with deflation.
pub fn power_iteration<O: LinearOp + ?Sized>(op: &O, cfg: &PowerConfig, control: &Control) -> Result<Spectrum> {
    let mut s = PowerIteration::new(op, cfg)?;
    let run = control.executor(cfg.k * cfg.max_iter).run(&mut s)?;
    Ok(s.finish(run.stop))
}

/// The power-iteration solver; use [`power_iteration`] unless you run your own executor.
pub struct PowerIteration<'a, O: LinearOp + ?Sized> {
    op: &'a O,
    cfg: PowerConfig,
    rng: Rng,
    found: Spectrum,
    v: Vec<f64>,
    hv: Vec<f64>,
    estimate: Option<f64>,
    inner: usize,
}

impl<'a, O: LinearOp + ?Sized> PowerIteration<'a, O> {
    /// Checks the settings; no product is computed yet.
    pub fn new(op: &'a O, cfg: &PowerConfig) -> Result<Self> {
        check_k("hessian_top", cfg.k, op.dim())?;
        limits::check("hessian_top", "k", cfg.k, limits::EIGENVALUES)?;
        limits::check("hessian_top", "max_iter", cfg.max_iter, limits::POWER_ITERATIONS)?;
        // The k eigenvectors kept (f64).
        memory::check(
            memory::bytes(cfg.k.saturating_mul(op.dim()), 8),
            &format!("hessian_top: {} eigenvectors of {} weights", cfg.k, op.dim()),
        )?;
        if cfg.max_iter == 0 {
            return Err(Error::BadOption {
                func: "hessian_top".into(),
                key: "max_iter".into(),
                problem: "must be at least 1".into(),
            });
        }
        if !(cfg.tol.is_finite() && cfg.tol >= 0.0) {
            return Err(Error::BadOption {
                func: "hessian_top".into(),
                key: "tol".into(),
                problem: format!("must be ≥ 0, got {}", cfg.tol),
            });
        }
        let n = op.dim();
        Ok(PowerIteration {
            op,
            cfg: cfg.clone(),
            rng: rng::rng(cfg.seed),
            found: Spectrum::default(),
            v: Vec::new(),
            hv: vec![0.0; n],
            estimate: None,
            inner: 0,
        })
    }

    /// The eigenpairs found; after an interrupt, the eigenvalue in progress is appended with
    /// `converged = false` (its latest Rayleigh quotient and iterate).
    pub fn finish(mut self, stop: Stop) -> Spectrum {
        if let Some(lambda) = self.estimate.take() {
            if self.found.eigenvalues.len() < self.cfg.k {
                self.found.push(lambda, std::mem::take(&mut self.v), false);
            }
        }
        self.found.stop = stop;
        self.found
    }

    fn accept(&mut self, lambda: f64, converged: bool) {
        self.found.push(lambda, std::mem::take(&mut self.v), converged);
        self.estimate = None;
        self.inner = 0;
    }
}

impl<O: LinearOp + ?Sized> Solver for PowerIteration<'_, O> {
    fn name(&self) -> &'static str {
        "power"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        if self.inner == 0 {
            self.v = gaussian(self.op.dim(), &mut self.rng);
        }
        orthogonalize(&mut self.v, &self.found.eigenvectors);
        normalize(&mut self.v);
        self.op.apply(&self.v, &mut self.hv)?;
        self.found.hvps += 1;
        check_finite("hessian_top", &self.hv)?;
        let lambda = dot(&self.v, &self.hv);
        self.v.copy_from_slice(&self.hv);
        let size = normalize(&mut self.v);
        self.inner += 1;
        let kv = vec![("eigenvalue", lambda), ("found", self.found.eigenvalues.len() as f64)];
        if size == 0.0 {
            // H·v = 0: v is an eigenvector with eigenvalue 0 (only in the orthogonal complement).
            self.v = gaussian(self.op.dim(), &mut self.rng);
            orthogonalize(&mut self.v, &self.found.eigenvectors);
            normalize(&mut self.v);
            self.accept(0.0, true);
            return Ok(kv);
        }
        match self.estimate {
            Some(prev) if (prev - lambda).abs() / (prev.abs() + 1e-6) < self.cfg.tol => self.accept(prev, true),
            _ if self.inner == self.cfg.max_iter => self.accept(lambda, false),
            _ => self.estimate = Some(lambda),
        }
        Ok(kv)
    }

    fn stop(&self) -> Option<Stop> {
        if self.found.eigenvalues.len() < self.cfg.k {
            return None;
        }
        Some(if self.found.converged.iter().all(|&c| c) { Stop::Converged } else { Stop::MaxIters })
    }
}

/// Errors unless 1 ≤ k ≤ n, naming the script function `func` and its option `k`.
pub(crate) fn check_k(func: &str, k: usize, n: usize) -> Result<()> {
    if k == 0 || k > n {
        return Err(Error::BadOption {
            func: func.into(),
            key: "k".into(),
            problem: format!("must be between 1 and the dimension {n}, got {k}"),
        });
    }
    Ok(())
}
