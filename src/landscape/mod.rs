//! The loss landscape of a classifier in weight space: Hessian spectra, sharpness and
//! weight-space perturbations (PyHessian conventions; `shared/guide/methods.md` §5–6).
//!
//! - [`op`]: the [`LinearOp`] the spectrum solvers work on — the exact Hessian-vector product
//!   of an MLP's training loss ([`ModelHessian`], by the R-operator in `model::hvp`), optionally
//!   restricted to one layer, or a dense matrix.
//! - [`power`], [`lanczos`]: top-k eigenpairs (power iteration with deflation; Lanczos with
//!   full re-orthogonalisation). [`trace`]: Hutchinson. [`slq`]: spectral density by
//!   stochastic Lanczos quadrature. [`reduced`]: the Hessian on a subspace, diagonalised by
//!   [`eig`] (nalgebra, or LAPACK with the `lapack` feature).
//! - [`sharpness`]: the largest loss increase in a weight ball by projected gradient ascent.
//! - [`weight_attack`]: loss and accuracy under RWP/AWP/SAM/ASAM perturbations (the same rules
//!   train flatter models through `TrainConfig::weight_attack`).
//!
//! Every iterative computation is an [`crate::optim::Solver`]; an interrupted run returns its
//! best estimate so far with [`Stop::Interrupted`]. Nothing here imports rhai.

pub mod eig;
pub mod fd_hessian;
pub mod lanczos;
pub mod op;
pub mod power;
pub mod reduced;
pub mod sharpness;
pub mod slq;
pub mod trace;
pub mod weight_attack;

pub use fd_hessian::{FiniteDifferenceHessian, FD_STEP};
pub use lanczos::{lanczos, LanczosConfig};
pub use op::{DenseOp, LinearOp, ModelHessian};
pub use power::{power_iteration, PowerConfig};
pub use reduced::{reduced_hessian, Basis, Reduced};
pub use sharpness::{sharpness, SharpnessConfig, SharpnessResult};
pub use slq::{density_on_grid, slq, Density, SlqConfig};
pub use trace::{hutchinson, TraceConfig, TraceEstimate};
pub use weight_attack::{weight_attack, WeightAttackResult};

use crate::optim::Stop;

/// Eigenpairs found by [`power_iteration`] or [`lanczos`], largest magnitude first.
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Eigenvalue estimates.
    pub eigenvalues: Vec<f64>,
    /// Unit eigenvectors, in the operator's space (for [`ModelHessian`], the model's internal
    /// layout: convert with [`ModelHessian::to_torch_order`]).
    pub eigenvectors: Vec<Vec<f64>>,
    /// Whether each pair met the tolerance.
    pub converged: Vec<bool>,
    /// Hessian-vector products used.
    pub hvps: usize,
    /// Why the run ended.
    pub stop: Stop,
}

impl Default for Spectrum {
    fn default() -> Self {
        Spectrum {
            eigenvalues: Vec::new(),
            eigenvectors: Vec::new(),
            converged: Vec::new(),
            hvps: 0,
            stop: Stop::MaxIters,
        }
    }
}

impl Spectrum {
    fn push(&mut self, lambda: f64, v: Vec<f64>, converged: bool) {
        self.eigenvalues.push(lambda);
        self.eigenvectors.push(v);
        self.converged.push(converged);
    }
}

#[cfg(test)]
mod tests;
