//! Minimal-deviation corrections of simulation to one-dimensional targets (Schott, Flek,
//! arXiv 2605.07460; the loss is a reconstruction, see `shared/guide/methods.md` § 7).
//!
//! A transformation `T(x) = x + σ ⊙ r(x)` of simulated events is learned so that each
//! corrected feature matches its 1-D target while the events move as little as possible,
//! so the simulation's correlations survive:
//! `L = Σⱼ cⱼ·Dⱼ(targetⱼ, T(x)ⱼ) + λ·mean_w ‖(T(x) − x) ⊘ σ‖²`.
//!
//! - [`target`]: targets as weighted samples or histograms with errors, checked and prepared;
//! - [`distance`]: the differentiable 1-D distances (Wasserstein by sorting, soft-binned χ²,
//!   Gaussian-kernel MMD) with their gradients;
//! - [`model`]: [`Correction`], the model (identity at initialisation; save, load, apply);
//! - `derived`: targets on derived features, recomputed from the corrected features, with
//!   gradients through their expressions;
//! - [`fit`]: the objective as weighted [`crate::model::BatchObjective`] terms and training;
//! - [`baseline`]: per-feature quantile morphing and iterative 1-D reweighting (raking);
//! - [`validate`]: the validation report (χ²/KS per feature against the targets, correlation
//!   change, classifier two-sample test, shifts in σ).
//!
//! Domain code only: no rhai here (the script functions are in `bindings::correct`).

pub mod baseline;
mod derived;
pub mod distance;
pub mod fit;
pub mod model;
pub mod target;
pub mod validate;

pub use baseline::{quantile_morph, rake, QuantileMorph, Raking};
pub use distance::Distance;
pub use fit::{fit, CorrectConfig, Fitted, TargetSpec};
pub use model::Correction;
pub use target::{Shape, Target};
pub use validate::{validate, Report, ValidateConfig};

#[cfg(test)]
mod tests;
