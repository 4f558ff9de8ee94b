//! Top eigenvalues by Lanczos with full re-orthogonalisation.
//!
//! Lanczos builds an orthonormal basis `q₁ … q_m` of the Krylov space of the start vector with
//! one product per step, and the tridiagonal `T = Qᵀ H Q` (α on the diagonal, β beside it).
//! Its eigenvalues (Ritz values) approach the extreme eigenvalues of H much faster than power
//! iteration, all k at once. Every new vector is orthogonalised against all previous ones
//! (twice), so no spurious copies of converged eigenvalues appear; the basis costs m vectors.
//! A Ritz pair (θ, y = Qs) has residual ‖Hy − θy‖ = |β_m·s_m|; the run converges when the k
//! Ritz values of largest magnitude all have residual ≤ tol·|θ|.

use nalgebra::{DMatrix, SymmetricEigen};

use super::op::{axpy, check_finite, dot, gaussian, normalize, orthogonalize, LinearOp};
use super::power::check_k;
use super::Spectrum;
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;
use crate::{limits, memory};

/// Settings of [`lanczos`].
#[derive(Clone, Debug)]
pub struct LanczosConfig {
    /// Number of eigenvalues.
    pub k: usize,
    /// Lanczos steps (products, and basis vectors kept) at most.
    pub max_iter: usize,
    /// Residual, relative to |θ|, below which a Ritz pair counts as converged.
    pub tol: f64,
    /// Seed of the start vector.
    pub seed: u64,
}

impl Default for LanczosConfig {
    /// k = 1, 100 steps, tol 1e-3, seed 0.
    fn default() -> Self {
        LanczosConfig { k: 1, max_iter: 100, tol: 1e-3, seed: 0 }
    }
}

/// The k eigenpairs of `op` of largest magnitude by Lanczos with full re-orthogonalisation.
pub fn lanczos<O: LinearOp + ?Sized>(op: &O, cfg: &LanczosConfig, control: &Control) -> Result<Spectrum> {
    let mut s = LanczosTop::new(op, cfg)?;
    let run = control.executor(cfg.max_iter.min(op.dim())).run(&mut s)?;
    s.finish(run.stop)
}

/// A Lanczos recurrence with full re-orthogonalisation: the basis and the tridiagonal.
pub(crate) struct Krylov {
    /// Orthonormal basis vectors q₁ … q_j.
    pub basis: Vec<Vec<f64>>,
    /// Diagonal of T.
    pub alpha: Vec<f64>,
    /// Off-diagonal of T; `beta[j]` couples q_{j+1} and q_{j+2} (the last one is the residual
    /// norm of the newest step).
    pub beta: Vec<f64>,
    /// Set when the Krylov space became invariant (β ≈ 0): T's spectrum is exact.
    pub exhausted: bool,
}

impl Krylov {
    /// Starts from `v` (normalised here).
    pub fn new(mut v: Vec<f64>) -> Result<Self> {
        if normalize(&mut v) == 0.0 {
            return Err(Error::arg("lanczos", "the start vector is zero"));
        }
        Ok(Krylov { basis: vec![v], alpha: Vec::new(), beta: Vec::new(), exhausted: false })
    }

    /// One step: a product with the newest basis vector, α, β, and the next basis vector.
    pub fn step<O: LinearOp + ?Sized>(&mut self, op: &O) -> Result<()> {
        let j = self.alpha.len();
        let mut w = vec![0.0; op.dim()];
        op.apply(&self.basis[j], &mut w)?;
        check_finite("lanczos", &w)?;
        let a = dot(&self.basis[j], &w);
        axpy(-a, &self.basis[j], &mut w);
        if j > 0 {
            axpy(-self.beta[j - 1], &self.basis[j - 1], &mut w);
        }
        orthogonalize(&mut w, &self.basis);
        self.alpha.push(a);
        let b = normalize(&mut w);
        self.beta.push(b);
        let scale = self.alpha.iter().chain(&self.beta).fold(0.0f64, |m, x| m.max(x.abs()));
        if b <= 1e-10 * scale.max(f64::MIN_POSITIVE) || self.basis.len() == op.dim() {
            self.exhausted = true;
        } else {
            self.basis.push(w);
        }
        Ok(())
    }

    /// Eigenvalues of T (ascending) and its eigenvectors as columns.
    pub fn ritz(&self) -> (Vec<f64>, DMatrix<f64>) {
        let m = self.alpha.len();
        let t = DMatrix::from_fn(m, m, |i, j| {
            if i == j {
                self.alpha[i]
            } else if i + 1 == j {
                self.beta[i]
            } else if j + 1 == i {
                self.beta[j]
            } else {
                0.0
            }
        });
        let e = SymmetricEigen::new(t);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| e.eigenvalues[a].total_cmp(&e.eigenvalues[b]));
        let vals = order.iter().map(|&i| e.eigenvalues[i]).collect();
        let vecs = DMatrix::from_fn(m, m, |r, c| e.eigenvectors[(r, order[c])]);
        (vals, vecs)
    }
}

/// The Lanczos top-k solver; use [`lanczos`] unless you run your own executor.
pub struct LanczosTop<'a, O: LinearOp + ?Sized> {
    op: &'a O,
    cfg: LanczosConfig,
    krylov: Krylov,
    converged: bool,
}

impl<'a, O: LinearOp + ?Sized> LanczosTop<'a, O> {
    /// Checks the settings and draws the start vector.
    pub fn new(op: &'a O, cfg: &LanczosConfig) -> Result<Self> {
        check_k("hessian_top", cfg.k, op.dim())?;
        limits::check("hessian_top", "k", cfg.k, limits::EIGENVALUES)?;
        limits::check("hessian_top", "max_iter", cfg.max_iter, limits::LANCZOS_STEPS)?;
        // The Lanczos basis: one f64 vector per step, at most min(max_iter, dim).
        let steps = cfg.max_iter.min(op.dim());
        memory::check(
            memory::bytes(steps.saturating_mul(op.dim()), 8),
            &format!("hessian_top: {steps} Lanczos vectors of {} weights", op.dim()),
        )?;
        if cfg.max_iter < cfg.k {
            return Err(Error::BadOption {
                func: "hessian_top".into(),
                key: "max_iter".into(),
                problem: format!("must be at least k = {} for Lanczos, got {}", cfg.k, cfg.max_iter),
            });
        }
        let v = gaussian(op.dim(), &mut rng::rng(cfg.seed));
        Ok(LanczosTop { op, cfg: cfg.clone(), krylov: Krylov::new(v)?, converged: false })
    }

    /// The k Ritz pairs of largest magnitude (fewer if fewer steps were taken), largest
    /// first, with per-pair convergence flags.
    pub fn finish(self, stop: Stop) -> Result<Spectrum> {
        let mut s = Spectrum { stop, hvps: self.krylov.alpha.len(), ..Spectrum::default() };
        if self.krylov.alpha.is_empty() {
            return Ok(s);
        }
        let (vals, vecs) = self.krylov.ritz();
        for i in top_by_magnitude(&vals, self.cfg.k) {
            let y = ritz_vector(&self.krylov.basis, vecs.column(i).as_slice());
            let ok = residual(&self.krylov, &vecs, i) <= self.cfg.tol * vals[i].abs() || self.krylov.exhausted;
            s.push(vals[i], y, ok);
        }
        Ok(s)
    }
}

impl<O: LinearOp + ?Sized> Solver for LanczosTop<'_, O> {
    fn name(&self) -> &'static str {
        "lanczos"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        self.krylov.step(self.op)?;
        let (vals, vecs) = self.krylov.ritz();
        let top = top_by_magnitude(&vals, self.cfg.k);
        let worst = top
            .iter()
            .map(|&i| residual(&self.krylov, &vecs, i) / vals[i].abs().max(f64::MIN_POSITIVE))
            .fold(0.0f64, f64::max);
        self.converged = self.krylov.exhausted || (top.len() == self.cfg.k && worst <= self.cfg.tol);
        Ok(vec![("largest", top.first().map_or(0.0, |&i| vals[i])), ("residual", worst)])
    }

    fn stop(&self) -> Option<Stop> {
        self.converged.then_some(Stop::Converged)
    }
}

/// Indices of the `k` entries of largest magnitude, largest first.
pub(crate) fn top_by_magnitude(vals: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..vals.len()).collect();
    idx.sort_by(|&a, &b| vals[b].abs().total_cmp(&vals[a].abs()));
    idx.truncate(k);
    idx
}

/// |β_m · s_{m,i}|: the residual norm of Ritz pair `i`.
fn residual(k: &Krylov, vecs: &DMatrix<f64>, i: usize) -> f64 {
    let m = k.alpha.len();
    (k.beta[m - 1] * vecs[(m - 1, i)]).abs()
}

/// Σ_j s_j q_j.
fn ritz_vector(basis: &[Vec<f64>], s: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; basis[0].len()];
    for (q, c) in basis.iter().zip(s) {
        axpy(*c, q, &mut y);
    }
    y
}
