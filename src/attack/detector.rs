//! Detector mitigation of an attack that keeps the sample's distributions (CONSERVAttack,
//! `shared/guide/methods.md` §2): a classifier trained to separate clean from adversarial
//! events. The reference (TSaala/CONSERVAttack, `Detector/DetectorPipeline.py` and
//! `CrossDetector.py`) trains an MLP 128–64–32 (ReLU, sigmoid output) with L1(0.003) on the
//! weight matrices of its hidden layers (not the output layer's), Adam at 1e-4, minibatches of 256, up to 200 epochs with early stopping
//! (patience 10, best weights restored) and balanced class weights (`n / (2·n_class)`, sklearn's
//! `compute_class_weight("balanced")`), on clean events (label 1) against the adversarial
//! events that fool the classifier (label 0). Here the same, except that the reference's
//! BatchNormalization after each hidden layer is replaced by the input standardisation the
//! model stores (nuisance's MLP has no batch normalisation), and the validation events are a
//! seeded fraction of the training events (the reference attacks a separate validation split).
//!
//! Its efficiencies: on clean events the fraction it calls clean, on adversarial events (those
//! that fool the classifier) the fraction it calls adversarial. The corrected fooling ratio
//! counts only fooled events the detector misses: `initial × (1 − efficiency on adversaries)`.

use ndarray::concatenate;
use ndarray::Axis;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{train, Mlp, MlpConfig, Model, Optimizer, TrainConfig, TrainResult};
use crate::optim::Control;

/// The detector's label of clean events (the reference's; adversarial events are 0).
pub const CLEAN: i64 = 1;

/// Detector settings; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Hidden widths (128, 64, 32).
    pub hidden: Vec<usize>,
    /// L1 penalty of the weight matrices (0.003).
    pub l1: f64,
    /// Adam learning rate (1e-4).
    pub lr: f64,
    /// Most epochs (200).
    pub epochs: usize,
    /// Minibatch size (256).
    pub batch_size: usize,
    /// Early-stopping patience on the validation loss (10).
    pub patience: usize,
    /// Fraction of the training events held out for the validation loss (0.2).
    pub validation_fraction: f64,
    /// Balanced class weights `n / (2·n_class)` (true).
    pub balanced: bool,
    /// Seed of the initialisation, the shuffling and the validation split.
    pub seed: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            hidden: vec![128, 64, 32],
            l1: 0.003,
            lr: 1e-4,
            epochs: 200,
            batch_size: 256,
            patience: 10,
            validation_fraction: 0.2,
            balanced: true,
            seed: 0,
        }
    }
}

/// Per event of `attacked`, whether `model` misclassifies it (its class differs from the label).
pub fn fooled(model: &dyn Model, attacked: &Dataset) -> Result<Vec<bool>> {
    let labels = attacked.label().ok_or_else(|| {
        Error::arg("detector", "the attacked events have no label column (the class they should have)")
    })?;
    let cls = model.predict_class(model.inputs(attacked)?.view())?;
    Ok(cls.iter().zip(labels).map(|(c, l)| c != l).collect())
}

/// The events of `attacked` that fool `model`.
pub fn fooling_events(model: &dyn Model, attacked: &Dataset) -> Result<Dataset> {
    let f = fooled(model, attacked)?;
    let idx: Vec<usize> = (0..f.len()).filter(|&i| f[i]).collect();
    Ok(attacked.take_rows(&idx))
}

/// Trains a detector on `clean` (label 1) against `adversarial` (label 0) over the features of
/// `clean` (which `adversarial` must have).
pub fn train_detector(
    clean: &Dataset,
    adversarial: &Dataset,
    cfg: &DetectorConfig,
    control: &Control,
) -> Result<TrainResult> {
    let names = clean.names().to_vec();
    let adv = adversarial
        .select(&names)
        .map_err(|e| Error::arg("detector", format!("the adversarial events lack a feature of the clean ones: {e}")))?;
    let (n1, n0) = (clean.len(), adv.len());
    if n1 < 2 || n0 < 2 {
        return Err(Error::arg(
            "detector",
            format!("needs at least 2 clean and 2 adversarial events, got {n1} clean and {n0} adversarial"),
        ));
    }
    let x = concatenate(Axis(0), &[clean.x(), adv.x()]).map_err(|e| Error::arg("detector", e.to_string()))?;
    let label: Vec<i64> = (0..n1 + n0).map(|i| if i < n1 { CLEAN } else { 1 - CLEAN }).collect();
    let all = Dataset::new(names.clone(), x, Some(label), None)?;
    let mut layers = vec![names.len()];
    layers.extend(&cfg.hidden);
    layers.push(1);
    let model = Mlp::new(&layers, MlpConfig { seed: cfg.seed, feature_names: Some(names), ..MlpConfig::default() })?;
    let n = (n0 + n1) as f64;
    // sklearn's "balanced": n / (classes · n_class), indexed by label (0 adversarial, 1 clean).
    let class_weights = cfg.balanced.then(|| vec![(n / (2.0 * n0 as f64)) as f32, (n / (2.0 * n1 as f64)) as f32]);
    let tc = TrainConfig {
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        optimizer: Optimizer::adam(cfg.lr),
        class_weights,
        validation_fraction: cfg.validation_fraction as f32,
        patience: (cfg.validation_fraction > 0.0).then_some(cfg.patience),
        l1: cfg.l1,
        l1_output: false,
        seed: cfg.seed,
        ..TrainConfig::default()
    };
    train(&model, &all, &tc, control)
}

/// Fraction of `events` the detector calls clean (score > 0.5, the reference's rounding).
pub fn called_clean(detector: &dyn Model, events: &Dataset) -> Result<f64> {
    if events.is_empty() {
        return Ok(f64::NAN);
    }
    let cls = detector.predict_class(detector.inputs(events)?.view())?;
    Ok(cls.iter().filter(|&&c| c == CLEAN).count() as f64 / cls.len() as f64)
}

/// What a detector does to an attack's fooling ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Mitigation {
    /// Attacked events.
    pub n_attacked: usize,
    /// Attacked events that fool the classifier.
    pub n_fooled: usize,
    /// Clean events the detector was evaluated on.
    pub n_clean: usize,
    /// Fraction of clean events called clean.
    pub efficiency_clean: f64,
    /// Fraction of fooling adversarial events called adversarial.
    pub efficiency_adversarial: f64,
    /// Fooled / attacked.
    pub initial: f64,
    /// `initial × (1 − efficiency_adversarial)`: fooled events the detector misses, over the
    /// attacked events.
    pub corrected: f64,
}

impl Mitigation {
    /// The detector on `clean` events and on the events of `attacked` that fool `model`.
    pub fn evaluate(model: &dyn Model, detector: &dyn Model, clean: &Dataset, attacked: &Dataset) -> Result<Self> {
        if attacked.is_empty() {
            return Err(Error::Empty { op: "detector", what: "the attacked events".into() });
        }
        let adv = fooling_events(model, attacked)?;
        let efficiency_clean = called_clean(detector, clean)?;
        // No fooling event: nothing to detect, nothing to correct.
        let efficiency_adversarial = if adv.is_empty() { 0.0 } else { 1.0 - called_clean(detector, &adv)? };
        let initial = adv.len() as f64 / attacked.len() as f64;
        Ok(Mitigation {
            n_attacked: attacked.len(),
            n_fooled: adv.len(),
            n_clean: clean.len(),
            efficiency_clean,
            efficiency_adversarial,
            initial,
            corrected: initial * (1.0 - efficiency_adversarial),
        })
    }
}
