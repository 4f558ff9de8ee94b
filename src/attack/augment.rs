//! Any registered [`Attack`] as an [`Augmenter`] for adversarial training: each attack's
//! [`Attack::augment`] says how it is aimed (FGSM/PGD ascend the true label's loss, the usual
//! adversarial training; MiniFool flips the predicted class; RDSA draws from the training
//! events' marginals).

use ndarray::{Array2, ArrayView2};

use super::Attack;
use crate::error::Result;
use crate::model::{Augmenter, Model};
use crate::optim::Control;

/// An attack configured once and run on every batch (or epoch) of adversarial training; the
/// seed of each run comes from the training loop.
#[derive(Debug)]
pub struct AttackAugmenter(pub Box<dyn Attack>);

impl Augmenter for AttackAugmenter {
    fn perturb(
        &mut self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        self.0.augment(model, x, labels, seed, control)
    }
}
