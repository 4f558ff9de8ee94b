//! What an attack did to a set of events, for every attack (`shared/guide/methods.md` §4):
//! the fooling ratio over originally correct events, accuracy and AUC on the adversarial set,
//! per-feature Jensen–Shannon distances and mean absolute changes, and how far the Pearson
//! correlation matrix moved.
//!
//! ```
//! use nuisance::attack::metrics::{fooling_ratio, js_distance};
//! // Event 2 was wrong before the attack: it does not count, fooled or not.
//! let f = fooling_ratio(&[1, 0, 1, 0], &[1, 0, 0, 0], &[0, 0, 1, 0]).unwrap();
//! assert_eq!((f.fooled, f.correct), (1, 3));
//! assert_eq!(js_distance(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
//! assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
//! ```

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics;
use crate::model::{Model, Output};

/// Probabilities below this are raised to it before the Jensen–Shannon distance (the
/// reference implementation's floor, so empty bins do not give log 0).
pub const JSD_FLOOR: f64 = 1e-10;

/// Fooled events among those the model classified correctly before the attack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fooling {
    /// Originally correct events that are misclassified after the attack.
    pub fooled: usize,
    /// Originally correct events.
    pub correct: usize,
    /// `fooled / correct` (NaN when no event was correct).
    pub ratio: f64,
}

/// The fooling ratio: of the events whose clean prediction `before` equals the `label`, the
/// fraction whose prediction `after` the attack does not. Originally misclassified events are
/// ignored whatever happens to them.
pub fn fooling_ratio(labels: &[i64], before: &[i64], after: &[i64]) -> Result<Fooling> {
    if labels.len() != before.len() || labels.len() != after.len() {
        return Err(Error::Shape {
            op: "fooling_ratio",
            expected: format!("{} labels, predictions before and after", labels.len()),
            got: format!("{} before, {} after", before.len(), after.len()),
        });
    }
    let correct: Vec<usize> = (0..labels.len()).filter(|&i| before[i] == labels[i]).collect();
    let fooled = correct.iter().filter(|&&i| after[i] != labels[i]).count();
    let ratio = if correct.is_empty() { f64::NAN } else { fooled as f64 / correct.len() as f64 };
    Ok(Fooling { fooled, correct: correct.len(), ratio })
}

/// Jensen–Shannon distance (base 2, in [0, 1]) between two histograms given as counts or
/// weights: each normalised to unit sum, floored at [`JSD_FLOOR`], renormalised, then
/// √(½·KL(p‖m) + ½·KL(q‖m)) with m = (p + q)/2 (scipy's `jensenshannon(p, q, base=2)`).
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let norm = |v: &[f64]| -> Vec<f64> {
        let s: f64 = v.iter().sum();
        let f: Vec<f64> = v.iter().map(|x| (if s > 0.0 { x / s } else { 0.0 }).max(JSD_FLOOR)).collect();
        let t: f64 = f.iter().sum();
        f.into_iter().map(|x| x / t).collect()
    };
    let (p, q) = (norm(p), norm(q));
    let kl = |a: &[f64], m: &[f64]| a.iter().zip(m).map(|(a, m)| a * (a / m).log2()).sum::<f64>();
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    ((kl(&p, &m) + kl(&q, &m)) / 2.0).max(0.0).sqrt()
}

/// Counts of `values` in `bins` equal-width bins over `[lo, hi]` (hi in the last bin; values
/// outside are not counted).
fn counts(values: impl Iterator<Item = f32>, lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut c = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    for v in values.map(f64::from) {
        if !(lo..=hi).contains(&v) {
            continue;
        }
        let b = if width > 0.0 { ((v - lo) / width) as usize } else { 0 };
        c[b.min(bins - 1)] += 1.0;
    }
    c
}

/// Per feature, the Jensen–Shannon distance between the histograms of the original `x0` and
/// the adversarial `x` (`bins` equal-width bins over the original range).
pub fn jsd_per_feature(x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>, bins: usize) -> Result<Vec<f64>> {
    same_shape("jsd", x0, x)?;
    if bins == 0 {
        return Err(Error::arg("jsd", "bins must be at least 1, got 0"));
    }
    crate::limits::check("attack_metrics", "bins", bins, crate::limits::HISTOGRAM_BINS)?;
    Ok((0..x0.ncols())
        .into_par_iter()
        .map(|j| {
            let (c0, c1) = (x0.column(j), x.column(j));
            let (lo, hi) = c0.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (lo, hi) = (f64::from(lo), f64::from(hi));
            js_distance(&counts(c0.iter().copied(), lo, hi, bins), &counts(c1.iter().copied(), lo, hi, bins))
        })
        .collect())
}

/// Per feature, the mean of |x − x0| over events.
pub fn mean_abs_change(x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
    same_shape("mean_abs_change", x0, x)?;
    let n = x0.nrows().max(1) as f64;
    let mut sum = Array1::<f64>::zeros(x0.ncols());
    for (a, b) in x0.rows().into_iter().zip(x.rows()) {
        sum.iter_mut().zip(a.iter().zip(b)).for_each(|(s, (a, b))| *s += f64::from((b - a).abs()));
    }
    Ok(sum.iter().map(|s| s / n).collect())
}

/// Pearson correlation matrix of the columns of `x` (constant columns give NaN rows and
/// columns, as [`Dataset::correlation`]).
pub fn correlation(x: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
    let names = (0..x.ncols()).map(|j| format!("c{j}")).collect();
    Ok(Dataset::new_unchecked_finite(names, x.to_owned(), None, None)?.correlation(false))
}

/// ‖C(x) − C(x0)‖_F / ‖C(x0)‖_F for the Pearson correlation matrices, over the features that
/// are not constant in either set.
pub fn correlation_change(x0: ArrayView2<'_, f32>, x: ArrayView2<'_, f32>) -> Result<f64> {
    same_shape("correlation_change", x0, x)?;
    let (c0, c1) = (correlation(x0)?, correlation(x)?);
    let (mut num, mut den) = (0.0, 0.0);
    for (a, b) in c0.iter().zip(&c1) {
        if a.is_finite() && b.is_finite() {
            num += (b - a) * (b - a);
            den += a * a;
        }
    }
    Ok(if den > 0.0 { (num / den).sqrt() } else { f64::NAN })
}

fn same_shape(op: &'static str, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<()> {
    if a.dim() != b.dim() {
        return Err(Error::Shape {
            op,
            expected: format!("original and adversarial sets of the same shape {} × {}", a.nrows(), a.ncols()),
            got: format!("{} × {}", b.nrows(), b.ncols()),
        });
    }
    if a.nrows() == 0 {
        return Err(Error::Empty { op, what: "the event set".into() });
    }
    Ok(())
}

/// Everything [`attack_metrics`] measures.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackMetrics {
    /// Fooling ratio over originally correct events (classifiers with labels).
    pub fooling: Option<Fooling>,
    /// Fraction of events whose predicted class changed.
    pub flip_fraction: f64,
    /// Accuracy before and after (with labels).
    pub accuracy_clean: Option<f64>,
    /// Accuracy on the adversarial set.
    pub accuracy_adv: Option<f64>,
    /// ROC AUC before (binary classifiers with labels).
    pub auc_clean: Option<f64>,
    /// ROC AUC on the adversarial set.
    pub auc_adv: Option<f64>,
    /// Per-feature Jensen–Shannon distance.
    pub jsd: Vec<f64>,
    /// Per-feature mean |Δx|.
    pub mean_abs_change: Vec<f64>,
    /// Relative Frobenius change of the correlation matrix.
    pub correlation_change: f64,
}

impl AttackMetrics {
    /// The largest per-feature JSD and its feature (the first of equals; −∞ and 0 when there
    /// are no features).
    pub fn max_jsd(&self) -> (f64, usize) {
        self.jsd
            .iter()
            .enumerate()
            .fold((f64::NEG_INFINITY, 0), |(b, bj), (j, &v)| if v > b { (v, j) } else { (b, bj) })
    }
}

/// Metrics of an attack that turned `x0` into `x`, for `model` (labels optional, event
/// `weights` applied to accuracy and AUC when given); JSD histograms have `bins` bins.
pub fn attack_metrics(
    model: &dyn Model,
    x0: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    labels: Option<&[i64]>,
    weights: Option<&[f32]>,
    bins: usize,
) -> Result<AttackMetrics> {
    same_shape("attack_metrics", x0, x)?;
    if model.output() == Output::Linear {
        return Err(Error::arg("attack_metrics", "needs a classifier (sigmoid or softmax output)"));
    }
    let z0 = model.logits(x0)?;
    let z1 = model.logits(x)?;
    metrics::check_output_rows("attack_metrics (original events)", z0.view())?;
    metrics::check_output_rows("attack_metrics (attacked events)", z1.view())?;
    let (before, after) = (model.classes_from_logits(&z0), model.classes_from_logits(&z1));
    let flips = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    let mut m = AttackMetrics {
        fooling: None,
        flip_fraction: flips as f64 / before.len() as f64,
        accuracy_clean: None,
        accuracy_adv: None,
        auc_clean: None,
        auc_adv: None,
        jsd: jsd_per_feature(x0, x, bins)?,
        mean_abs_change: mean_abs_change(x0, x)?,
        correlation_change: correlation_change(x0, x)?,
    };
    if let Some(l) = labels {
        m.fooling = Some(fooling_ratio(l, &before, &after)?);
        m.accuracy_clean = Some(metrics::accuracy(&before, l, weights)?);
        m.accuracy_adv = Some(metrics::accuracy(&after, l, weights)?);
        if let (Some(s0), Some(s1)) = (model.positive_scores(&z0), model.positive_scores(&z1)) {
            m.auc_clean = metrics::roc_auc(&s0, l, weights).ok();
            m.auc_adv = metrics::roc_auc(&s1, l, weights).ok();
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn fooling_ratio_ignores_originally_wrong_events() {
        // Events 0, 1 correct before; 2, 3 wrong before. After: 0 fooled, 1 still right, 2 and
        // 3 changed (2 even became right). Only events 0 and 1 count: 1 of 2 fooled.
        let labels = [1, 0, 1, 0];
        let before = [1, 0, 0, 1];
        let after = [0, 0, 1, 0];
        let f = fooling_ratio(&labels, &before, &after).unwrap();
        assert_eq!((f.fooled, f.correct, f.ratio), (1, 2, 0.5));
        // The plain flip fraction would say 3 of 4.
        assert!(fooling_ratio(&labels, &before, &after[..3]).is_err());
    }

    #[test]
    fn js_distance_known_values() {
        // Identical → 0; disjoint → 1 (base 2). p = (½, ½), q = (1, 0): m = (¾, ¼),
        // KL(p‖m) = ½log2(2/3) + ½log2(2) = 0.2075, KL(q‖m) = log2(4/3) = 0.4150,
        // JSD = √((0.2075 + 0.4150)/2) = 0.5579.
        assert_eq!(js_distance(&[3.0, 1.0], &[6.0, 2.0]), 0.0);
        assert!((js_distance(&[0.0, 5.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!((js_distance(&[1.0, 1.0], &[1.0, 0.0]) - 0.557_9).abs() < 1e-4);
    }

    #[test]
    fn jsd_bins_over_the_original_range() {
        // Original range [0, 1], 2 bins: x0 → (1, 1); x → 0.9 in the upper bin, 5.0 outside
        // (not counted) → (0, 1): distance between (½, ½) and (0, 1) = 0.5579 as above.
        let x0 = array![[0.0f32], [1.0]];
        let x = array![[0.9f32], [5.0]];
        let j = jsd_per_feature(x0.view(), x.view(), 2).unwrap();
        assert!((j[0] - 0.557_9).abs() < 1e-4, "{j:?}");
    }

    #[test]
    fn mean_abs_change_and_correlation_change() {
        let x0 = array![[0.0f32, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        // Second column reversed: correlation +1 → −1, so C changes by 2 on the two
        // off-diagonal entries: ‖ΔC‖ = √8, ‖C‖ = √4 → relative change √2.
        let x = array![[0.0f32, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]];
        assert_eq!(mean_abs_change(x0.view(), x.view()).unwrap(), vec![0.0, 2.0]);
        let c = correlation_change(x0.view(), x.view()).unwrap();
        assert!((c - 2f64.sqrt()).abs() < 1e-9, "{c}");
        assert_eq!(correlation_change(x0.view(), x0.view()).unwrap(), 0.0);
    }
}
