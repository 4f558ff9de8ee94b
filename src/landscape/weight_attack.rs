//! Weight-space attacks on a trained model: the loss and accuracy after one perturbation
//! ε(w, g) by SAM, ASAM, AWP or RWP (rules in [`crate::model::WeightPerturbation`]), with the
//! gradient g taken on the same events. RWP is random: it averages over `samples` draws.

use super::op::l2;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, Targets, WeightPerturbation};
use crate::optim::Control;
use crate::rng;

/// The outcome of [`weight_attack`].
#[derive(Clone, Debug)]
pub struct WeightAttackResult {
    /// Loss at w.
    pub clean_loss: f64,
    /// Accuracy at w (classifiers).
    pub clean_accuracy: Option<f64>,
    /// Loss at w + ε (mean over RWP draws).
    pub loss: f64,
    /// Standard deviation of the loss over RWP draws (0 for the deterministic rules).
    pub loss_std: f64,
    /// Accuracy at w + ε (mean over RWP draws).
    pub accuracy: Option<f64>,
    /// ‖ε‖₂ (mean over draws).
    pub norm: f64,
    /// ‖ε‖₂ / ‖w‖₂.
    pub relative_norm: f64,
    /// Draws made (1 for the deterministic rules; fewer than asked after an interrupt).
    pub samples: usize,
}

/// Attacks `model` on `data` with perturbation `p` (`samples` draws for RWP, from `seed`).
/// Ctrl-C between RWP draws returns the draws made so far.
pub fn weight_attack(
    model: &dyn Model,
    data: &Dataset,
    p: &WeightPerturbation,
    samples: usize,
    seed: u64,
    control: &Control,
) -> Result<WeightAttackResult> {
    p.check("weight_attack")?;
    if samples == 0 {
        return Err(Error::BadOption {
            func: "weight_attack".into(),
            key: "samples".into(),
            problem: "must be at least 1".into(),
        });
    }
    let x = model.inputs(data)?;
    let labels = data.label().ok_or_else(|| Error::arg("weight_attack", "the dataset has no label column"))?;
    let clean = model.evaluate(data, true)?;
    let w = model.params();
    let grad = if p.needs_gradient() {
        model.weight_grad(x.view(), Targets::Labels(labels), data.weight())?.1
    } else {
        vec![0.0; w.len()]
    };
    let layers: Vec<_> = model.param_groups().into_iter().map(|g| g.range).collect();
    let draws = if p.needs_gradient() { 1 } else { samples };
    let mut r = rng::rng(seed);
    let (mut losses, mut accs, mut norms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..draws {
        if control.interrupted() && !losses.is_empty() {
            break;
        }
        let eps = p.epsilon(&w, &grad, &layers, &mut r);
        let mut m = model.box_clone();
        let p: Vec<f32> = w.iter().zip(&eps).map(|(x, e)| x + e).collect();
        m.set_params(&p)?;
        let e = m.evaluate(data, true)?;
        losses.push(e.loss);
        accs.push(e.accuracy);
        norms.push(l2(&eps));
    }
    let n = losses.len() as f64;
    let mean = losses.iter().sum::<f64>() / n;
    let var = if losses.len() > 1 { losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    let accuracy = accs.iter().copied().collect::<Option<Vec<f64>>>().map(|a| a.iter().sum::<f64>() / n);
    let norm = norms.iter().sum::<f64>() / n;
    let wn = l2(&w);
    Ok(WeightAttackResult {
        clean_loss: clean.loss,
        clean_accuracy: clean.accuracy,
        loss: mean,
        loss_std: var.sqrt(),
        accuracy,
        norm,
        relative_norm: if wn > 0.0 { norm / wn } else { 0.0 },
        samples: losses.len(),
    })
}
