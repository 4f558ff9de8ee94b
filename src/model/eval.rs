//! Scores, predicted classes and the usual metrics of a model on a set of events.

use ndarray::{Array2, ArrayView2};

use super::interface::Model;
use super::loss::{Output, Targets};
use super::mlp::Mlp;
use crate::data::Dataset;
use crate::error::Result;

/// Loss and metrics of a model on a labelled dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Number of events.
    pub n: usize,
    /// Event-weighted mean loss.
    pub loss: f64,
    /// Weighted ROC AUC of the class-1 score (sigmoid, or softmax with 2 classes).
    pub auc: Option<f64>,
    /// Weighted accuracy of the predicted class (classifiers only).
    pub accuracy: Option<f64>,
}

impl Mlp {
    /// Scores `n × k`: σ(z) for sigmoid (probability of class 1), softmax probabilities, or
    /// the linear outputs.
    pub fn scores(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        Model::scores(self, x)
    }

    /// The predicted class per event from its logits: z > 0 for sigmoid, the arg-max for
    /// softmax (and for a linear output of width ≥ 2), z > 0.5 for a linear output of width 1.
    pub fn predict_class(&self, x: ArrayView2<'_, f32>) -> Result<Vec<i64>> {
        (self as &dyn Model).predict_class(x)
    }

    /// [`Mlp::predict_class`] on logits already computed.
    pub fn classes_from_logits(&self, z: &Array2<f32>) -> Vec<i64> {
        (self as &dyn Model).classes_from_logits(z)
    }

    /// Event-weighted mean loss Σ wᵢℓᵢ / Σ wᵢ (unit weights when `weights` is `None`).
    pub fn loss(&self, x: ArrayView2<'_, f32>, targets: Targets<'_>, weights: Option<&[f32]>) -> Result<f64> {
        (self as &dyn Model).loss(x, targets, weights)
    }

    /// Loss, AUC and accuracy on a labelled dataset (features checked by name). With
    /// `use_weights` the dataset's event weights (if any) weight every number.
    pub fn evaluate(&self, ds: &Dataset, use_weights: bool) -> Result<Evaluation> {
        (self as &dyn Model).evaluate(ds, use_weights)
    }

    /// The class-1 score per event from logits `z` for a binary classifier (sigmoid, or
    /// softmax with 2 classes), the score a ROC curve ranks by; `None` for other outputs.
    pub fn positive_scores(&self, z: &Array2<f32>) -> Option<Vec<f32>> {
        (self as &dyn Model).positive_scores(z)
    }
}

/// The predicted class of one event from its logits `z`: z > 0 for sigmoid, the first arg-max
/// for a width ≥ 2, z > 0.5 for a linear output of width 1.
pub(crate) fn class_of_row(out: Output, z: &[f32]) -> i64 {
    if z.len() == 1 {
        let threshold = if out == Output::Sigmoid { 0.0 } else { 0.5 };
        return i64::from(z[0] > threshold);
    }
    let mut best = 0;
    for (j, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = j;
        }
    }
    best as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MlpConfig;
    use ndarray::array;

    #[test]
    fn scores_classes_and_loss_of_a_hand_set_model() {
        // One linear layer 2 → 1 with w = (1, −1), b = 0.5: z = x₀ − x₁ + 0.5.
        let mut m = Mlp::new(&[2, 1], MlpConfig::default()).unwrap();
        m.set_params_flat(&[1.0, -1.0, 0.5]).unwrap();
        let x = array![[0.0f32, 0.0], [0.0, 2.0]];
        // z = (0.5, −1.5); σ(0.5) = 0.622 459 33, σ(−1.5) = 0.182 425 52.
        let s = m.scores(x.view()).unwrap();
        assert!((s[[0, 0]] - 0.622_459_33).abs() < 1e-7 && (s[[1, 0]] - 0.182_425_52).abs() < 1e-7);
        assert_eq!(m.predict_class(x.view()).unwrap(), vec![1, 0]);
        // Labels (1, 1): mean of ln(1+e^−0.5) = 0.474 076 98 and ln(1+e^1.5) = 1.701 413 28.
        let l = m.loss(x.view(), Targets::Labels(&[1, 1]), None).unwrap();
        assert!((l - (0.474_076_98 + 1.701_413_28) / 2.0).abs() < 1e-7);
        let ds = Dataset::new(vec!["a".into(), "b".into()], x, Some(vec![1, 0]), None).unwrap();
        let e = m.evaluate(&ds, true).unwrap();
        // Both events classified right; the positive scores higher → AUC 1.
        assert_eq!((e.accuracy, e.auc, e.n), (Some(1.0), Some(1.0), 2));
    }

    #[test]
    fn a_nan_weight_makes_evaluate_an_error_naming_the_events() {
        // W[0][0] multiplies feature a of every event: every logit is NaN.
        let mut m = Mlp::new(&[2, 1], MlpConfig::default()).unwrap();
        m.params_mut()[0] = f32::NAN;
        let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let ds = Dataset::new(vec!["a".into(), "b".into()], x, Some(vec![0, 1, 1]), None).unwrap();
        let e = m.evaluate(&ds, true).unwrap_err();
        assert_eq!(e.to_string(), "evaluate: 3 of 3 events have a NaN or infinite score (first: event 0)");
        assert_eq!(e.kind(), "non_finite");
        // Finite weights, but inputs whose products overflow f32 to +∞ and −∞: their sum is NaN
        // in the second event only (z = 1e30·(1e10 − 1e10) overflows term by term).
        let mut m = Mlp::new(&[2, 1], MlpConfig::default()).unwrap();
        m.set_params_flat(&[1e30, 1e30, 0.0]).unwrap();
        let x = array![[1.0f32, 2.0], [1e10, -1e10]];
        let ds = Dataset::new(vec!["a".into(), "b".into()], x, Some(vec![0, 1]), None).unwrap();
        let e = m.evaluate(&ds, true).unwrap_err();
        assert_eq!(e.to_string(), "evaluate: 1 of 2 events have a NaN or infinite score (first: event 1)");
        let e = crate::attack::metrics::attack_metrics(&m, ds.x(), ds.x(), ds.label(), None, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attack_metrics (original events): 1 of 2 events have a NaN or infinite score (first: event 1)"
        );
    }
}
