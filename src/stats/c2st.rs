//! Classifier two-sample test (C2ST): train a small MLP to separate a reference sample
//! (label 0) from a candidate (label 1) on one part of the events, and measure its ROC AUC on
//! the held-out rest. Indistinguishable samples give AUC ≈ ½.
//!
//! Under the null hypothesis the held-out scores of both classes are independent draws of one
//! distribution (the classifier was fixed by other events), so the AUC is the Mann–Whitney
//! statistic with mean ½ and standard deviation `σ₀ = √((n₁ + n₂ + 1) / (12 n₁ n₂))` (no ties;
//! with event weights the effective sizes `(Σw)²/Σw²` stand for n₁, n₂). The one-sided p-value
//! is the normal approximation `½ erfc((AUC − ½) / (σ₀√2))`.

use ndarray::{concatenate, ArrayView2, Axis};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics::roc_auc;
use crate::model::{train, Mlp, MlpConfig, Optimizer, TrainConfig};
use crate::optim::Control;

/// How the C2ST classifier is built and trained.
#[derive(Clone, Debug, PartialEq)]
pub struct C2stConfig {
    /// Hidden-layer widths (ReLU).
    pub hidden: Vec<usize>,
    /// Training epochs.
    pub epochs: usize,
    /// Fraction of each sample held out for the AUC.
    pub test_fraction: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of the split, the initialisation and the shuffling.
    pub seed: u64,
}

impl Default for C2stConfig {
    /// Two hidden layers of 32, 20 epochs, half held out, Adam 3e-3, seed 0.
    fn default() -> Self {
        C2stConfig { hidden: vec![32, 32], epochs: 20, test_fraction: 0.5, lr: 3e-3, seed: 0 }
    }
}

/// Outcome of [`c2st`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct C2st {
    /// Held-out ROC AUC (candidate = positive class).
    pub auc: f64,
    /// Standard deviation of the AUC under the null hypothesis.
    pub sigma0: f64,
    /// One-sided p-value of AUC > ½ (normal approximation).
    pub p_value: f64,
    /// Held-out reference events.
    pub n_test_reference: usize,
    /// Held-out candidate events.
    pub n_test_candidate: usize,
}

fn n_eff(w: Option<&[f32]>, n: usize) -> f64 {
    match w {
        None => n as f64,
        Some(w) => {
            let s: f64 = w.iter().map(|&v| f64::from(v)).sum();
            let s2: f64 = w.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            if s2 > 0.0 {
                s * s / s2
            } else {
                0.0
            }
        }
    }
}

/// The C2ST of `reference` against `candidate` (rows are events, same columns), with optional
/// event weights (used in training and in the AUC).
pub fn c2st(
    reference: ArrayView2<'_, f32>,
    w_ref: Option<&[f32]>,
    candidate: ArrayView2<'_, f32>,
    w_cand: Option<&[f32]>,
    cfg: &C2stConfig,
    control: &Control,
) -> Result<C2st> {
    const OP: &str = "c2st";
    if reference.ncols() != candidate.ncols() {
        return Err(Error::Shape {
            op: OP,
            expected: format!("{} features in the candidate", reference.ncols()),
            got: format!("{}", candidate.ncols()),
        });
    }
    if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) {
        return Err(Error::arg(OP, format!("test_fraction must be in (0, 1), got {}", cfg.test_fraction)));
    }
    let (n0, n1) = (reference.nrows(), candidate.nrows());
    let per_class_test = |n: usize| (cfg.test_fraction * n as f64).round() as usize;
    if [n0, n1].iter().any(|&n| per_class_test(n) < 2 || n - per_class_test(n) < 2) {
        return Err(Error::arg(
            OP,
            format!("needs at least 2 training and 2 held-out events per sample, got {n0} reference and {n1} candidate events"),
        ));
    }
    let d = reference.ncols();
    let x = concatenate(Axis(0), &[reference, candidate]).map_err(|e| Error::arg(OP, e.to_string()))?;
    let label: Vec<i64> = (0..n0 + n1).map(|i| i64::from(i >= n0)).collect();
    let weight: Option<Vec<f32>> = match (w_ref, w_cand) {
        (None, None) => None,
        _ => Some(
            (0..n0).map(|i| w_ref.map_or(1.0, |w| w[i])).chain((0..n1).map(|i| w_cand.map_or(1.0, |w| w[i]))).collect(),
        ),
    };
    let names: Vec<String> = (0..d).map(|j| format!("f{j}")).collect();
    let all = Dataset::new(names.clone(), x, Some(label), weight)?;
    let (test, fit) = all.split_stratified(cfg.test_fraction, cfg.seed)?;
    // Balance the classes in the loss so an unequal number of events does not dominate.
    let class_total = |c: i64| -> f64 {
        let l = fit.label().unwrap_or(&[]);
        let w = fit.weights_or_ones();
        l.iter().zip(&w).filter(|(&y, _)| y == c).map(|(_, &w)| f64::from(w)).sum()
    };
    let (t0, t1) = (class_total(0), class_total(1));
    if !(t0 > 0.0 && t1 > 0.0) {
        return Err(Error::arg(OP, "both samples need a positive total weight"));
    }
    let mut layers = vec![d];
    layers.extend(&cfg.hidden);
    layers.push(1);
    let model = Mlp::new(&layers, MlpConfig { seed: cfg.seed, feature_names: Some(names), ..MlpConfig::default() })?;
    let tc = TrainConfig {
        epochs: cfg.epochs,
        batch_size: 256,
        optimizer: Optimizer::adam(cfg.lr),
        class_weights: Some(vec![1.0, (t0 / t1) as f32]),
        seed: cfg.seed,
        ..TrainConfig::default()
    };
    let trained = train(&model, &fit, &tc, control)?.model;
    control.check()?;
    let z = trained.logits(test.x())?;
    let scores: Vec<f32> = z.column(0).to_vec();
    let labels = test.label().unwrap_or(&[]);
    let auc = roc_auc(&scores, labels, test.weight())?;
    let (idx0, idx1): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|&i| labels[i] == 0);
    let wsub = |idx: &[usize]| test.weight().map(|w| idx.iter().map(|&i| w[i]).collect::<Vec<f32>>());
    let (e0, e1) = (n_eff(wsub(&idx0).as_deref(), idx0.len()), n_eff(wsub(&idx1).as_deref(), idx1.len()));
    let sigma0 = ((e0 + e1 + 1.0) / (12.0 * e0 * e1)).sqrt();
    let p_value = 0.5 * libm::erfc((auc - 0.5) / (sigma0 * std::f64::consts::SQRT_2));
    Ok(C2st { auc, sigma0, p_value, n_test_reference: idx0.len(), n_test_candidate: idx1.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;
    use ndarray::Array2;

    fn gauss(n: usize, shift: f32, stream: u64) -> Array2<f32> {
        // Box–Muller from a seeded stream: 3 independent N(shift, 1) columns.
        let mut r = Stream::new(42, stream);
        Array2::from_shape_fn((n, 3), |_| {
            let (u, v) = (r.uniform().max(1e-300), r.uniform());
            shift + ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
    }

    #[test]
    fn identical_distributions_give_half_within_the_null_spread() {
        let (a, b) = (gauss(1200, 0.0, 1), gauss(1200, 0.0, 2));
        let cfg = C2stConfig { epochs: 8, ..C2stConfig::default() };
        let r = c2st(a.view(), None, b.view(), None, &cfg, &Control::quiet()).unwrap();
        assert_eq!((r.n_test_reference, r.n_test_candidate), (600, 600));
        // σ₀ = √(1201 / (12 · 600²)) = 0.016 67; 4σ₀ = 0.067 (two-sided 6e-5 chance to fail).
        assert!((r.sigma0 - (1201.0f64 / (12.0 * 360_000.0)).sqrt()).abs() < 1e-12);
        assert!((r.auc - 0.5).abs() < 4.0 * r.sigma0, "{r:?}");
    }

    #[test]
    fn well_separated_samples_give_auc_near_one() {
        // Means 0 and 3 in each of 3 dimensions: the Bayes AUC is Φ(3√3/√2) = Φ(3.67) ≈ 0.9999.
        let (a, b) = (gauss(600, 0.0, 3), gauss(600, 3.0, 4));
        let cfg = C2stConfig { epochs: 8, ..C2stConfig::default() };
        let r = c2st(a.view(), None, b.view(), None, &cfg, &Control::quiet()).unwrap();
        assert!(r.auc > 0.99, "{r:?}");
        assert!(r.p_value < 1e-10);
    }

    #[test]
    fn too_few_events_is_an_error() {
        let a = gauss(3, 0.0, 5);
        let e = c2st(a.view(), None, a.view(), None, &C2stConfig::default(), &Control::quiet()).unwrap_err();
        assert!(e.to_string().contains("at least 2 training and 2 held-out"), "{e}");
    }
}
