//! Attacks whose budget is the experiment's own uncertainty model.
//!
//! - [`uncertainty`]: per-feature σ (absolute, relative, frozen), correlations, the scale s,
//!   χ² and p-values, Gaussian variations; [`chi2_tail`]: the χ² upper tail (p-values).
//! - [`project`]: feasibility rules every attack applies (clip, integer, sentinel, frozen).
//! - [`gradient`]: FGSM and PGD in σ units (L∞ box, χ²/Mahalanobis ball).
//! - [`minifool`]: the χ² + target-score minimiser, batched over events (L-BFGS or Adam).
//! - [`rdsa`]: RDSA, the black-box shuffle attack that keeps every marginal and breaks the
//!   correlations.
//! - [`scan`]: s-scans (flip fraction vs s, split by correctness and class) and s_flip.
//! - [`metrics`]: fooling ratio, accuracy/AUC on adversaries, per-feature JSD and mean |Δx|,
//!   correlation change — for any attack's output.
//! - [`augment`]: the attacks as augmenters for adversarial training.
//! - [`result`]: the per-event outcome every attack returns.

pub mod augment;
pub mod bench;
pub mod chi2_tail;
pub mod gradient;
pub mod metrics;
pub mod minifool;
pub mod project;
pub mod rdsa;
pub mod rdsa_bench;
pub mod result;
pub mod scan;
pub mod uncertainty;

#[cfg(test)]
mod augment_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use augment::AttackAugmenter;
pub use gradient::{pgd, Goal, Norm, PgdConfig};
pub use minifool::{minifool, minifool_scaled, MiniFoolConfig, MiniFoolResult, Minimizer, Target};
pub use project::{Projection, Rule};
pub use rdsa::{continuous_features, Marginal, Rdsa, RdsaConfig, RdsaResult, Sampling, SubsetDraw};
pub use result::{outputs, AttackResult, Ending, Known};
pub use scan::{s_scan, Fraction, Scan, ScanAttack, ScanRow};
pub use uncertainty::{collider_model, column_std, p_values, split_covariance, Chi2, FeatureSigma, UncertaintyModel};
