//! The validation report of a corrected sample (by a [`super::Correction`], quantile morphing
//! or raking): per feature the χ² and KS against its target, the correlation matrix against the
//! original simulation (and the truth, when there is one), a classifier two-sample test
//! against the truth, and the distribution of per-event shifts in σ units.

use ndarray::Array2;

use super::target::{Prepared, Shape, Target};
use crate::attack::chi2_tail::Chi2Tail;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::Control;
use crate::stats::c2st::{c2st, C2stConfig};
use crate::stats::checks::correlation_change;
use crate::stats::ks::{kolmogorov_sf, ks_2samp};

/// Settings of [`validate`].
#[derive(Clone, Debug, Default)]
pub struct ValidateConfig {
    /// The features of the correlation matrices, shifts and C2ST (`None`: the targets' features).
    pub features: Option<Vec<String>>,
    /// σ per feature for the shifts (`None`: the original's weighted standard deviations).
    pub sigma: Option<Vec<f32>>,
    /// The classifier two-sample test against the truth, when a truth is given.
    pub c2st: Option<C2stConfig>,
}

/// One feature against its target.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRow {
    /// The feature.
    pub feature: String,
    /// χ² of the corrected histogram against the target's (target errors and the sample's
    /// statistical errors), over the target's bins.
    pub chi2: f64,
    /// Its degrees of freedom (bins used − 1).
    pub ndf: usize,
    /// `P(χ²_ndf > chi2)`.
    pub chi2_p: f64,
    /// KS distance to the target (two-sample for a sample target; against the histogram's
    /// piecewise-linear CDF otherwise).
    pub ks_d: f64,
    /// KS p-value (exact or Kolmogorov limit with effective sizes).
    pub ks_p: f64,
    /// The same χ² of the original simulation, for comparison.
    pub chi2_original: f64,
}

/// The report (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// One row per target.
    pub features: Vec<FeatureRow>,
    /// The features of the matrices and shifts.
    pub names: Vec<String>,
    /// Correlation matrix of the original simulation.
    pub corr_original: Array2<f64>,
    /// Correlation matrix of the corrected sample.
    pub corr_corrected: Array2<f64>,
    /// Correlation matrix of the truth, when given.
    pub corr_truth: Option<Array2<f64>>,
    /// Relative Frobenius change and max |Δρ| against the original.
    pub corr_change: (f64, f64),
    /// The same against the truth, when given.
    pub corr_change_truth: Option<(f64, f64)>,
    /// Held-out C2ST AUC of corrected against truth, when run.
    pub c2st_auc: Option<f64>,
    /// Per event ‖(x' − x) ⊘ σ‖ over the features.
    pub shifts: Vec<f64>,
}

impl Report {
    /// Mean, median, 90 % and 99 % quantiles and maximum of the shifts.
    pub fn shift_summary(&self) -> [f64; 5] {
        let mut s = self.shifts.clone();
        s.sort_by(f64::total_cmp);
        let q = |p: f64| s.get(((s.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
        [mean, q(0.5), q(0.9), q(0.99), q(1.0)]
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<12} {:>10} {:>5} {:>8} {:>8} {:>8} {:>12}",
            "feature", "chi2", "ndf", "chi2_p", "ks_d", "ks_p", "chi2_orig"
        )?;
        for r in &self.features {
            writeln!(
                f,
                "{:<12} {:>10.2} {:>5} {:>8.4} {:>8.4} {:>8.4} {:>12.2}",
                r.feature, r.chi2, r.ndf, r.chi2_p, r.ks_d, r.ks_p, r.chi2_original
            )?;
        }
        writeln!(
            f,
            "correlation change vs original: relative {:.4}, max |Δρ| {:.4}",
            self.corr_change.0, self.corr_change.1
        )?;
        if let Some((r, m)) = self.corr_change_truth {
            writeln!(f, "correlation change vs truth:    relative {r:.4}, max |Δρ| {m:.4}")?;
        }
        if let Some(a) = self.c2st_auc {
            writeln!(f, "C2ST AUC vs truth: {a:.4}")?;
        }
        let [mean, med, q90, q99, max] = self.shift_summary();
        write!(f, "shift / σ per event: mean {mean:.3}, median {med:.3}, q90 {q90:.3}, q99 {q99:.3}, max {max:.3}")
    }
}

/// Validates `corrected` (the same events as `original`, possibly with new values or new
/// weights) against the targets, the original and an optional truth sample.
pub fn validate(
    original: &Dataset,
    corrected: &Dataset,
    targets: &[Target],
    truth: Option<&Dataset>,
    cfg: &ValidateConfig,
    control: &Control,
) -> Result<Report> {
    if original.len() != corrected.len() {
        return Err(Error::arg(
            "correction_report",
            format!(
                "the corrected sample has {} events, the original {}; they must be the same events",
                corrected.len(),
                original.len()
            ),
        ));
    }
    if original.is_empty() {
        return Err(Error::Empty { op: "correction_report", what: "the original sample".into() });
    }
    let mut rows = Vec::new();
    for t in targets {
        let p = t.prepare()?;
        let (chi2, ndf, chi2_p) = chi2_against(corrected, &t.feature, &p)?;
        let (chi2_original, _, _) = chi2_against(original, &t.feature, &p)?;
        let col = corrected.column(&t.feature)?.to_vec();
        let w = corrected.weight();
        let (ks_d, ks_p) = match &t.shape {
            Shape::Samples { values, weights } => {
                let r = ks_2samp(&col, w, values, weights.as_deref())?;
                (r.statistic, r.p_value)
            }
            Shape::Histogram { .. } => ks_histogram(&col, w, &p),
        };
        rows.push(FeatureRow { feature: t.feature.clone(), chi2, ndf, chi2_p, ks_d, ks_p, chi2_original });
    }
    let names = cfg.features.clone().unwrap_or_else(|| {
        let mut n: Vec<String> = Vec::new();
        for t in targets {
            if !n.contains(&t.feature) {
                n.push(t.feature.clone());
            }
        }
        n
    });
    let a = original.select(&names)?;
    let b = corrected.select(&names)?;
    let corr_original = a.correlation(true);
    let corr_corrected = b.correlation(true);
    let corr_change = correlation_change(&corr_original, &corr_corrected);
    let (mut corr_truth, mut corr_change_truth, mut c2st_auc) = (None, None, None);
    if let Some(tr) = truth {
        let t = tr.select(&names)?;
        let c = t.correlation(true);
        corr_change_truth = Some(correlation_change(&c, &corr_corrected));
        corr_truth = Some(c);
        if let Some(cc) = &cfg.c2st {
            c2st_auc = Some(c2st(t.x(), t.weight(), b.x(), b.weight(), cc, control)?.auc);
        }
    }
    let sigma: Vec<f64> = match &cfg.sigma {
        Some(s) if s.len() == names.len() => s.iter().map(|&v| f64::from(v)).collect(),
        Some(s) => {
            return Err(Error::arg("correction_report", format!("{} σ for {} features", s.len(), names.len())));
        }
        None => a.describe_weighted().iter().map(|c| if c.std > 0.0 { c.std } else { 1.0 }).collect(),
    };
    let shifts = a
        .x()
        .rows()
        .into_iter()
        .zip(b.x().rows())
        .map(|(r0, r1)| {
            r0.iter()
                .zip(r1)
                .zip(&sigma)
                .map(|((x0, x1), s)| ((f64::from(*x1) - f64::from(*x0)) / s).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    Ok(Report {
        features: rows,
        names,
        corr_original,
        corr_corrected,
        corr_truth,
        corr_change,
        corr_change_truth,
        c2st_auc,
        shifts,
    })
}

/// Weighted histogram of `feature` on the target's edges: (Σw, Σw²) per bin, events outside
/// dropped.
pub fn binned(ds: &Dataset, feature: &str, edges: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let col = ds.column(feature)?;
    let w = ds.weight();
    let nb = edges.len() - 1;
    let (mut c, mut s) = (vec![0.0; nb], vec![0.0; nb]);
    for (i, &x) in col.iter().enumerate() {
        let x = f64::from(x);
        if x < edges[0] || x > edges[nb] {
            continue;
        }
        let b = edges.partition_point(|&e| e <= x).clamp(1, nb) - 1;
        let wi = w.map_or(1.0, |w| f64::from(w[i]));
        c[b] += wi;
        s[b] += wi * wi;
    }
    Ok((c, s))
}

/// χ² of a sample's normalised histogram against the target fractions over the target's bins.
fn chi2_against(ds: &Dataset, feature: &str, p: &Prepared) -> Result<(f64, usize, f64)> {
    let (c, s) = binned(ds, feature, &p.edges)?;
    let total: f64 = c.iter().sum();
    if total <= 0.0 {
        return Ok((f64::INFINITY, p.fractions.len().saturating_sub(1), 0.0));
    }
    let mut x = 0.0;
    for b in 0..c.len() {
        let d = c[b] / total - p.fractions[b];
        x += d * d / (s[b] / (total * total) + p.errors[b] * p.errors[b]);
    }
    let ndf = c.len().saturating_sub(1);
    Ok((x, ndf, Chi2Tail::new(ndf).sf(x)))
}

/// KS distance of a weighted sample to a histogram's piecewise-linear CDF, with the
/// Kolmogorov-limit p-value at the sample's effective size.
fn ks_histogram(col: &[f32], w: Option<&[f32]>, p: &Prepared) -> (f64, f64) {
    let mut idx: Vec<usize> = (0..col.len()).collect();
    idx.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
    let wt = |i: usize| w.map_or(1.0, |w| f64::from(w[i]));
    let total: f64 = idx.iter().map(|&i| wt(i)).sum();
    let sq: f64 = idx.iter().map(|&i| wt(i) * wt(i)).sum();
    let (mut c, mut d) = (0.0, 0.0f64);
    for &i in &idx {
        let f = p.cdf(f64::from(col[i]));
        d = d.max((c / total - f).abs());
        c += wt(i);
        d = d.max((c / total - f).abs());
    }
    let n_eff = if sq > 0.0 { total * total / sq } else { 0.0 };
    (d, kolmogorov_sf(n_eff.sqrt() * d))
}

/// The marginal plot of one target: the target's histogram as the nominal and each named
/// sample's normalised histogram on the target's edges as a variation (its ratio to the
/// target in the lower panel).
pub fn marginal_series(target: &Target, samples: &[(String, Dataset)]) -> Result<crate::plot::RatioSeries> {
    let p = target.prepare()?;
    let mut variations = Vec::new();
    for (name, ds) in samples {
        let (c, _) = binned(ds, &target.feature, &p.edges)?;
        let total: f64 = c.iter().sum();
        let v: Vec<f64> = c.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect();
        variations.push((name.clone(), v.clone(), v));
    }
    Ok(crate::plot::RatioSeries { edges: p.edges.clone(), nominal: p.fractions.clone(), variations })
}
