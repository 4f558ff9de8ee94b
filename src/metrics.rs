//! Classification metrics shared by training, evaluation and every attack.

use crate::error::{Error, Result};

/// Weighted ROC AUC of `scores` for binary `labels` (1 = positive).
///
/// Ties in score count one half, so the result equals the weighted Mann–Whitney statistic
/// P(s₊ > s₋) + ½·P(s₊ = s₋).
///
/// ```
/// let auc = nuisance::metrics::roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1], None).unwrap();
/// assert!((auc - 0.75).abs() < 1e-12); // 3 of the 4 (pos, neg) pairs are ordered right
/// ```
pub fn roc_auc(scores: &[f32], labels: &[i64], weights: Option<&[f32]>) -> Result<f64> {
    Ok(auc_of_curve(&roc_curve(scores, labels, weights)?))
}

/// Area under ROC points from [`roc_curve`], by trapezoids (a tied group is one diagonal
/// step, so ties get half credit).
pub fn auc_of_curve(curve: &[(f64, f64, f64)]) -> f64 {
    curve.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum()
}

/// Errors when any score is NaN or infinite, naming how many events are affected (a model
/// with a NaN weight, or NaN inputs, scores every event NaN; no metric means anything then).
pub fn check_scores(op: &str, scores: &[f32]) -> Result<()> {
    check_rows(op, scores.iter().map(|s| s.is_finite()))
}

/// [`check_scores`] for an `n × k` matrix of outputs (logits or scores): an event counts once
/// however many of its outputs are not finite.
pub fn check_output_rows(op: &str, z: ndarray::ArrayView2<'_, f32>) -> Result<()> {
    check_rows(op, z.rows().into_iter().map(|r| r.iter().all(|v| v.is_finite())))
}

fn check_rows(op: &str, finite: impl Iterator<Item = bool>) -> Result<()> {
    let (mut n, mut count, mut first) = (0, 0, None);
    for ok in finite {
        if !ok {
            count += 1;
            first.get_or_insert(n);
        }
        n += 1;
    }
    match first {
        None => Ok(()),
        Some(first) => Err(Error::NonFiniteScores { op: op.to_string(), count, n, first }),
    }
}

/// ROC curve points `(fpr, tpr, threshold)` from the highest threshold down, starting at (0, 0).
/// NaN or infinite scores are an error (see [`check_scores`]).
pub fn roc_curve(scores: &[f32], labels: &[i64], weights: Option<&[f32]>) -> Result<Vec<(f64, f64, f64)>> {
    check_lengths("roc_auc", scores.len(), labels.len(), weights.map(<[f32]>::len))?;
    check_scores("roc_auc", scores)?;
    let w = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
    let (mut pos, mut neg) = (0.0, 0.0);
    for (i, &l) in labels.iter().enumerate() {
        match l {
            1 => pos += w(i),
            0 => neg += w(i),
            other => return Err(Error::arg("roc_auc", format!("labels must be 0 or 1, found {other}"))),
        }
    }
    if pos <= 0.0 || neg <= 0.0 {
        return Err(Error::arg("roc_auc", "needs events of both classes (label 0 and label 1)"));
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![(0.0, 0.0, f64::INFINITY)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        let s = scores[idx[k]];
        // Groups by total_cmp, so every pass consumes at least one event whatever the values.
        while k < idx.len() && scores[idx[k]].total_cmp(&s).is_eq() {
            if labels[idx[k]] == 1 {
                tp += w(idx[k]);
            } else {
                fp += w(idx[k]);
            }
            k += 1;
        }
        points.push((fp / neg, tp / pos, f64::from(s)));
    }
    Ok(points)
}

/// Weighted fraction of events whose predicted class equals the label.
pub fn accuracy(pred: &[i64], labels: &[i64], weights: Option<&[f32]>) -> Result<f64> {
    check_lengths("accuracy", pred.len(), labels.len(), weights.map(<[f32]>::len))?;
    let w = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
    let total: f64 = (0..pred.len()).map(w).sum();
    if total <= 0.0 {
        return Err(Error::Empty { op: "accuracy", what: "the event set (or its total weight)".into() });
    }
    let right: f64 = (0..pred.len()).filter(|&i| pred[i] == labels[i]).map(w).sum();
    Ok(right / total)
}

fn check_lengths(op: &'static str, a: usize, b: usize, w: Option<usize>) -> Result<()> {
    if a != b || w.is_some_and(|w| w != a) {
        return Err(Error::Shape {
            op,
            expected: "scores, labels (and weights) of equal length".into(),
            got: format!("{a} scores, {b} labels{}", w.map_or(String::new(), |w| format!(", {w} weights"))),
        });
    }
    if a == 0 {
        return Err(Error::Empty { op, what: "the event set".into() });
    }
    Ok(())
}

/// How a regression output compares with its target: weighted mean squared error, its root,
/// the bias (weighted mean of prediction − target) and the resolution (weighted standard
/// deviation of prediction − target, √(mse − bias²)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regression {
    /// Events.
    pub n: usize,
    /// Weighted mean of (prediction − target)².
    pub mse: f64,
    /// √mse.
    pub rmse: f64,
    /// Weighted mean of prediction − target.
    pub bias: f64,
    /// Weighted standard deviation of prediction − target.
    pub resolution: f64,
}

/// Regression metrics of `pred` against `truth` with event `weights`; `op` names the caller in
/// errors (no events, or no total weight).
pub fn regression(op: &'static str, pred: &[f32], truth: &[f32], weights: &[f32]) -> Result<Regression> {
    if pred.len() != truth.len() || pred.len() != weights.len() {
        return Err(Error::Shape {
            op,
            expected: format!("{} targets and weights", pred.len()),
            got: format!("{} and {}", truth.len(), weights.len()),
        });
    }
    let wsum: f64 = weights.iter().map(|&v| f64::from(v)).sum();
    if pred.is_empty() || wsum <= 0.0 {
        return Err(Error::Empty { op, what: "the dataset (or its total weight)".into() });
    }
    let r: Vec<f64> = pred.iter().zip(truth).map(|(p, t)| f64::from(*p) - f64::from(*t)).collect();
    let bias = r.iter().zip(weights).map(|(d, &v)| d * f64::from(v)).sum::<f64>() / wsum;
    let mse = r.iter().zip(weights).map(|(d, &v)| d * d * f64::from(v)).sum::<f64>() / wsum;
    let resolution = (mse - bias * bias).max(0.0).sqrt();
    Ok(Regression { n: pred.len(), mse, rmse: mse.sqrt(), bias, resolution })
}

/// The `k × k` confusion matrix `[true][predicted]` of weighted counts; a label outside `0..k`
/// is an error naming its row.
pub fn confusion(op: &'static str, labels: &[i64], pred: &[i64], weights: &[f32], k: usize) -> Result<Vec<Vec<f64>>> {
    let mut cm = vec![vec![0.0f64; k]; k];
    for (i, ((&t, &p), &w)) in labels.iter().zip(pred).zip(weights).enumerate() {
        if t < 0 || t as usize >= k {
            return Err(Error::arg(op, format!("label {t} at row {i} is outside 0..{k}")));
        }
        if p < 0 || p as usize >= k {
            return Err(Error::arg(op, format!("predicted class {p} at row {i} is outside 0..{k}")));
        }
        cm[t as usize][p as usize] += f64::from(w);
    }
    Ok(cm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_reversed_separation() {
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1], None).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1], None).unwrap(), 0.0);
    }

    #[test]
    fn all_tied_is_one_half() {
        assert_eq!(roc_auc(&[0.5; 4], &[0, 1, 0, 1], None).unwrap(), 0.5);
    }

    #[test]
    fn weights_count_as_repeated_events() {
        // Weight 2 on the first event equals listing it twice.
        let a = roc_auc(&[0.3, 0.4, 0.35, 0.8], &[1, 0, 1, 0], Some(&[2.0, 1.0, 1.0, 1.0])).unwrap();
        let b = roc_auc(&[0.3, 0.3, 0.4, 0.35, 0.8], &[1, 1, 0, 1, 0], None).unwrap();
        assert!((a - b).abs() < 1e-12);
    }

    #[test]
    fn rejects_single_class_and_bad_labels() {
        assert!(roc_auc(&[0.1, 0.2], &[1, 1], None).is_err());
        let e = roc_auc(&[0.1, 0.2], &[0, 2], None).unwrap_err();
        assert_eq!(e.to_string(), "roc_auc: labels must be 0 or 1, found 2");
    }

    #[test]
    fn nan_and_infinite_scores_are_errors_naming_the_count() {
        // Before the check, a NaN score never equalled itself and the grouping loop ran forever.
        let e = roc_auc(&[0.1, f32::NAN, 0.8, f32::NAN], &[0, 0, 1, 1], None).unwrap_err();
        assert_eq!(e.to_string(), "roc_auc: 2 of 4 events have a NaN or infinite score (first: event 1)");
        assert_eq!(e.kind(), "non_finite");
        let e = roc_curve(&[f32::INFINITY, 0.2], &[0, 1], None).unwrap_err();
        assert_eq!(e.to_string(), "roc_auc: 1 of 2 events have a NaN or infinite score (first: event 0)");
        let z = ndarray::array![[0.0f32, 1.0], [f32::NAN, f32::NAN], [1.0, 2.0]];
        let e = check_output_rows("evaluate", z.view()).unwrap_err();
        assert_eq!(e.to_string(), "evaluate: 1 of 3 events have a NaN or infinite score (first: event 1)");
    }

    #[test]
    fn weighted_accuracy() {
        // right: events 0 (w 1) and 2 (w 2) of total weight 4 → 0.75
        let a = accuracy(&[1, 0, 1], &[1, 1, 1], Some(&[1.0, 1.0, 2.0])).unwrap();
        assert_eq!(a, 0.75);
    }

    #[test]
    fn regression_metrics_by_hand() {
        // Residuals 1, −1, 3 with weights 1, 1, 2: bias = (1 − 1 + 6)/4 = 1.5,
        // mse = (1 + 1 + 18)/4 = 5, resolution = √(5 − 2.25) = √2.75.
        let r = regression("t", &[2.0, 0.0, 5.0], &[1.0, 1.0, 2.0], &[1.0, 1.0, 2.0]).unwrap();
        assert_eq!((r.n, r.bias, r.mse), (3, 1.5, 5.0));
        assert!((r.rmse - 5f64.sqrt()).abs() < 1e-15);
        assert!((r.resolution - 2.75f64.sqrt()).abs() < 1e-15);
        assert!(regression("t", &[], &[], &[]).is_err());
        assert!(regression("t", &[1.0], &[1.0], &[0.0]).is_err());
    }

    #[test]
    fn confusion_counts_weights_by_true_and_predicted_class() {
        // Rows (true 0, pred 0, w 1), (0, 1, 2), (1, 1, 0.5), (1, 1, 1).
        let cm = confusion("t", &[0, 0, 1, 1], &[0, 1, 1, 1], &[1.0, 2.0, 0.5, 1.0], 2).unwrap();
        assert_eq!(cm, vec![vec![1.0, 2.0], vec![0.0, 1.5]]);
        let e = confusion("confusion", &[0, 2], &[0, 0], &[1.0, 1.0], 2).unwrap_err();
        assert_eq!(e.to_string(), "confusion: label 2 at row 1 is outside 0..2");
    }
}
