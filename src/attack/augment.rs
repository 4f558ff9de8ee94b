//! The attacks as [`Augmenter`]s for adversarial training: RDSA (marginals from the training
//! events), FGSM/PGD (ascending the loss of the true label, the usual adversarial training)
//! and MiniFool (flipping the predicted class).

use ndarray::{Array2, ArrayView2};

use super::gradient::{pgd, Goal, PgdConfig};
use super::minifool::{minifool, MiniFoolConfig};
use super::project::Projection;
use super::rdsa::Rdsa;
use super::uncertainty::UncertaintyModel;
use crate::error::Result;
use crate::model::{Augmenter, Mlp};
use crate::optim::Control;

/// An attack configured once and run on every batch (or epoch) of adversarial training.
#[derive(Clone, Debug)]
pub enum AttackAugmenter {
    /// RDSA with its prepared marginals; the seed comes from the training loop.
    Rdsa(Box<Rdsa>),
    /// FGSM (one step) or PGD in σ units of the uncertainty model.
    Gradient {
        /// The budget's σ.
        unc: UncertaintyModel,
        /// ε, steps, norm, random start (its seed is replaced by the loop's).
        cfg: PgdConfig,
        /// Feasibility rules.
        proj: Projection,
    },
    /// MiniFool towards the other class.
    MiniFool {
        /// The budget's σ.
        unc: UncertaintyModel,
        /// α, β, minimiser, iterations (target: flip).
        cfg: MiniFoolConfig,
        /// Feasibility rules.
        proj: Projection,
    },
}

impl Augmenter for AttackAugmenter {
    fn perturb(
        &mut self,
        model: &Mlp,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        Ok(match self {
            AttackAugmenter::Rdsa(r) => r.attack_seeded(model, x, Some(labels), None, control, seed)?.attack.x,
            AttackAugmenter::Gradient { unc, cfg, proj } => {
                let cfg = PgdConfig { seed, ..cfg.clone() };
                pgd(model, unc, x, &Goal::Untargeted(labels.to_vec()), &cfg, proj, control)?.x
            }
            AttackAugmenter::MiniFool { unc, cfg, proj } => minifool(model, unc, x, cfg, proj, control)?.attack.x,
        })
    }
}
