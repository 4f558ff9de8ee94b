//! Summary statistics of a [`Dataset`]: per-column description, histograms, correlations.
//!
//! ```
//! let ds = nuisance::data::synthetic::gaussians(2000, 3);
//! let h = ds.histogram("x0", 10, Some((-3.0, 3.0)), false).unwrap();
//! assert_eq!(h.total() + h.underflow + h.overflow, 2000.0);
//! let c = ds.correlation(false);
//! assert!((c[[0, 0]] - 1.0).abs() < 1e-9);
//! ```

use ndarray::{s, Array1, Array2, Axis};
use rayon::prelude::*;

use super::Dataset;
use crate::error::{Error, Result};

/// Rows per block in the parallel correlation accumulation.
const BLOCK: usize = 8192;

/// Unweighted summary of one feature column, as `describe()` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnStats {
    /// Feature name.
    pub name: String,
    /// Number of rows.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1, as pandas' `describe`); NaN when n < 2.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 25 % quantile (linear interpolation).
    pub q25: f64,
    /// Median (linear interpolation).
    pub q50: f64,
    /// 75 % quantile (linear interpolation).
    pub q75: f64,
}

/// A one-dimensional histogram with equal-width bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// `bins + 1` bin edges, increasing.
    pub edges: Vec<f64>,
    /// Sum of weights (or counts) per bin.
    pub counts: Vec<f64>,
    /// Sum of squared weights per bin (the variance of `counts`, Poisson approximation).
    pub sumw2: Vec<f64>,
    /// Sum of weights below the first edge.
    pub underflow: f64,
    /// Sum of weights above the last edge.
    pub overflow: f64,
}

impl Histogram {
    /// Sum of the in-range counts (underflow and overflow excluded).
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// Counts normalised to unit integral over the range, as numpy's `density=True`:
    /// `count / (total · bin width)`. All NaN when the total is zero.
    pub fn density(&self) -> Vec<f64> {
        let t = self.total();
        self.counts.iter().zip(self.edges.windows(2)).map(|(c, e)| c / (t * (e[1] - e[0]))).collect()
    }
}

/// Histogram of `values` (optionally weighted) in `bins` equal-width bins over `range`.
///
/// The default range is `[min, max]` of the values, with the maximum included in the last
/// bin (as numpy's `histogram`); for constant values it is `[v − 0.5, v + 0.5]`. With an
/// explicit range, values equal to the upper edge go in the last bin, values outside go to
/// `underflow` / `overflow`.
///
/// ```
/// let h = nuisance::data::stats::histogram_values(&[0.0, 0.5, 1.0, 2.0], None, 2, Some((0.0, 1.0))).unwrap();
/// assert_eq!(h.counts, vec![1.0, 2.0]);
/// assert_eq!(h.overflow, 1.0);
/// ```
pub fn histogram_values(
    values: &[f32],
    weights: Option<&[f32]>,
    bins: usize,
    range: Option<(f64, f64)>,
) -> Result<Histogram> {
    const OP: &str = "histogram";
    if bins == 0 {
        return Err(Error::arg(OP, "bins must be at least 1, got 0"));
    }
    crate::limits::check(OP, "bins", bins, crate::limits::HISTOGRAM_BINS)?;
    if let Some(w) = weights {
        if w.len() != values.len() {
            return Err(Error::Shape {
                op: OP,
                expected: format!("{} weights (one per value)", values.len()),
                got: format!("{} weights", w.len()),
            });
        }
    }
    if let Some(row) = values.iter().position(|v| !v.is_finite()) {
        let count = values.iter().filter(|v| !v.is_finite()).count();
        return Err(Error::NonFinite { op: OP.into(), column: "values".into(), count, row });
    }
    let (lo, hi) = match range {
        Some((lo, hi)) => {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::arg(OP, format!("range must be finite with lo < hi, got ({lo}, {hi})")));
            }
            (lo, hi)
        }
        None => {
            if values.is_empty() {
                return Err(Error::Empty { op: OP, what: "the list of values (no default range)".into() });
            }
            let (mn, mx) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (mn, mx) = (f64::from(mn), f64::from(mx));
            if mn == mx {
                (mn - 0.5, mx + 0.5)
            } else {
                (mn, mx)
            }
        }
    };
    let width = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| lo + i as f64 * width).collect();
    edges[bins] = hi;
    let mut h = Histogram { edges, counts: vec![0.0; bins], sumw2: vec![0.0; bins], underflow: 0.0, overflow: 0.0 };
    let scale = bins as f64 / (hi - lo);
    for (i, &v) in values.iter().enumerate() {
        let w = weights.map_or(1.0, |w| f64::from(w[i]));
        let v = f64::from(v);
        if v < lo {
            h.underflow += w;
        } else if v > hi {
            h.overflow += w;
        } else {
            let b = (((v - lo) * scale) as usize).min(bins - 1);
            h.counts[b] += w;
            h.sumw2[b] += w * w;
        }
    }
    Ok(h)
}

/// Quantile `q` of sorted values by linear interpolation between closest ranks
/// (numpy's default `method="linear"`): position `q·(n−1)`.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// Quantile `q` of `(value, weight > 0)` pairs sorted by value: positions
/// pᵢ = (Sᵢ − wᵢ)/(S − wᵢ), linear interpolation between them ([`quantile_sorted`] for equal
/// weights). NaN when there are no pairs.
pub fn weighted_quantile_sorted(pairs: &[(f64, f64)], q: f64) -> f64 {
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    let q = q.clamp(0.0, 1.0);
    let mut cum = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for &(x, w) in pairs {
        cum += w;
        let p = if pairs.len() == 1 { 0.0 } else { (cum - w) / (total - w) };
        if p >= q {
            return match prev {
                Some((px, pp)) if p > pp => px + (q - pp) / (p - pp) * (x - px),
                _ => x,
            };
        }
        prev = Some((x, p));
    }
    pairs.last().map_or(f64::NAN, |p| p.0)
}

/// Like [`quantile_sorted`] on unsorted values, in O(n) by selection (reorders `values`).
pub fn quantile_select(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    let (_, &mut lo, rest) = values.select_nth_unstable_by(i, f64::total_cmp);
    if frac == 0.0 || rest.is_empty() {
        return lo;
    }
    let hi = rest.iter().copied().fold(f64::INFINITY, f64::min);
    lo + frac * (hi - lo)
}

impl Dataset {
    /// Per-feature count, mean, std (n − 1), min, max and quartiles, unweighted.
    ///
    /// Quartiles use linear interpolation between closest ranks (numpy's default).
    pub fn describe(&self) -> Vec<ColumnStats> {
        let x = self.x();
        (0..self.n_features())
            .into_par_iter()
            .map(|j| {
                let mut v: Vec<f64> = x.column(j).iter().map(|&a| f64::from(a)).collect();
                let n = v.len();
                let mean = v.iter().sum::<f64>() / n as f64;
                let ss: f64 = v.iter().map(|a| (a - mean) * (a - mean)).sum();
                let std = if n < 2 { f64::NAN } else { (ss / (n - 1) as f64).sqrt() };
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                ColumnStats {
                    name: self.names()[j].clone(),
                    count: n,
                    mean,
                    std,
                    min: if n == 0 { f64::NAN } else { min },
                    max: if n == 0 { f64::NAN } else { max },
                    q25: quantile_select(&mut v, 0.25),
                    q50: quantile_select(&mut v, 0.5),
                    q75: quantile_select(&mut v, 0.75),
                }
            })
            .collect()
    }

    /// [`Dataset::describe`] weighted with the event weights (unweighted when the dataset has
    /// none). Mean Σwx/Σw; standard deviation with reliability weights,
    /// √(Σw(x−μ)² / (V₁ − V₂/V₁)) with V₁ = Σw, V₂ = Σw² (n − 1 for unit weights, so unit
    /// weights give the unweighted numbers); quartiles over the events with w > 0 at positions
    /// pᵢ = (Sᵢ − wᵢ)/(S − wᵢ) of the sorted values (Sᵢ the cumulative weight, S the total),
    /// interpolated linearly (numpy's linear rule for equal weights). `count` stays the number
    /// of rows; min and max are over every row.
    pub fn describe_weighted(&self) -> Vec<ColumnStats> {
        let Some(w) = self.weight() else { return self.describe() };
        let x = self.x();
        (0..self.n_features())
            .into_par_iter()
            .map(|j| {
                let col = x.column(j);
                let (mut v1, mut v2, mut sx) = (0.0f64, 0.0f64, 0.0f64);
                for (&a, &wi) in col.iter().zip(w) {
                    let (a, wi) = (f64::from(a), f64::from(wi));
                    v1 += wi;
                    v2 += wi * wi;
                    sx += wi * a;
                }
                let mean = sx / v1;
                let ss: f64 = col.iter().zip(w).map(|(&a, &wi)| f64::from(wi) * (f64::from(a) - mean).powi(2)).sum();
                let denom = v1 - v2 / v1;
                let std = if denom > 0.0 { (ss / denom).sqrt() } else { f64::NAN };
                let min = col.iter().map(|&a| f64::from(a)).fold(f64::INFINITY, f64::min);
                let max = col.iter().map(|&a| f64::from(a)).fold(f64::NEG_INFINITY, f64::max);
                let mut pairs: Vec<(f64, f64)> = col
                    .iter()
                    .zip(w)
                    .filter(|(_, &wi)| wi > 0.0)
                    .map(|(&a, &wi)| (f64::from(a), f64::from(wi)))
                    .collect();
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let n = col.len();
                ColumnStats {
                    name: self.names()[j].clone(),
                    count: n,
                    mean,
                    std,
                    min: if n == 0 { f64::NAN } else { min },
                    max: if n == 0 { f64::NAN } else { max },
                    q25: weighted_quantile_sorted(&pairs, 0.25),
                    q50: weighted_quantile_sorted(&pairs, 0.5),
                    q75: weighted_quantile_sorted(&pairs, 0.75),
                }
            })
            .collect()
    }

    /// Histogram of feature `col`, weighted with the event weights when `weighted` is true
    /// (and the dataset has weights). See [`histogram_values`] for the binning rules.
    pub fn histogram(&self, col: &str, bins: usize, range: Option<(f64, f64)>, weighted: bool) -> Result<Histogram> {
        let j = self.index_of("histogram", col)?;
        let values: Vec<f32> = self.x().column(j).to_vec();
        let w = if weighted { self.weight() } else { None };
        histogram_values(&values, w, bins, range)
    }

    /// Pearson correlation matrix of the features (`d × d`), weighted with the event weights
    /// when `weighted` is true and the dataset has weights.
    ///
    /// Computed as `C = XcᵀWXc / Σw` on centred columns, accumulated over row blocks in
    /// parallel, then scaled by the standard deviations. A constant column has zero
    /// variance: its row and column (diagonal included) are NaN. An empty dataset gives an
    /// all-NaN matrix.
    pub fn correlation(&self, weighted: bool) -> Array2<f64> {
        let cov = self.covariance(weighted);
        let sd: Array1<f64> = cov.diag().mapv(f64::sqrt);
        let mut c = cov;
        for ((i, j), v) in c.indexed_iter_mut() {
            *v /= sd[i] * sd[j];
        }
        c
    }

    /// Covariance matrix (divisor Σw, i.e. the population covariance), weighted on request.
    pub fn covariance(&self, weighted: bool) -> Array2<f64> {
        let (n, d) = self.x().dim();
        let w: Option<&[f32]> = if weighted { self.weight() } else { None };
        let wi = |i: usize| w.map_or(1.0, |w| f64::from(w[i]));
        let x = self.x();
        let sumw: f64 = (0..n).map(wi).sum();
        // Weighted means, one pass.
        let mut mean = Array1::<f64>::zeros(d);
        for (i, row) in x.rows().into_iter().enumerate() {
            let wv = wi(i);
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += wv * f64::from(v));
        }
        mean /= sumw;
        let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
        let cov = starts
            .into_par_iter()
            .map(|s0| {
                let s1 = (s0 + BLOCK).min(n);
                let xc = x.slice(s![s0..s1, ..]).mapv(f64::from) - &mean;
                let mut wxc = xc.clone();
                for (k, mut row) in wxc.axis_iter_mut(Axis(0)).enumerate() {
                    row *= wi(s0 + k);
                }
                xc.t().dot(&wxc)
            })
            .reduce(|| Array2::<f64>::zeros((d, d)), |a, b| a + b);
        cov / sumw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ds() -> Dataset {
        let x = array![[1.0f32, 2.0, 5.0], [2.0, 4.0, 5.0], [3.0, 6.5, 5.0], [4.0, 7.0, 5.0], [10.0, 1.0, 5.0]];
        Dataset::new(vec!["a".into(), "b".into(), "k".into()], x, None, Some(vec![1.0, 1.0, 2.0, 0.5, 0.0])).unwrap()
    }

    #[test]
    fn describe_matches_numpy() {
        let st = ds().describe();
        let a = &st[0];
        // a = [1,2,3,4,10]: mean 4, Σ(a−4)² = 9+4+1+0+36 = 50, std = √(50/4) = 3.5355…
        assert_eq!((a.count, a.mean, a.min, a.max), (5, 4.0, 1.0, 10.0));
        assert!((a.std - (12.5f64).sqrt()).abs() < 1e-12);
        // numpy.quantile([1,2,3,4,10], [.25,.5,.75]) = [2, 3, 4] (positions 1, 2, 3)
        assert_eq!((a.q25, a.q50, a.q75), (2.0, 3.0, 4.0));
        // b sorted = [1,2,4,6.5,7]; all quartile positions are integral again: 2, 4, 6.5
        assert_eq!((st[1].q25, st[1].q50, st[1].q75), (2.0, 4.0, 6.5));
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        // numpy.quantile([1,2,3,4], 0.25) = 1.75 (position 0.75), 0.5 → 2.5
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert!(quantile_sorted(&[], 0.5).is_nan());
        // Selection gives the same numbers on unsorted input.
        for q in [0.0, 0.25, 0.5, 0.9, 1.0] {
            let mut v = [4.0, 1.0, 3.0, 2.0];
            assert_eq!(quantile_select(&mut v, q), quantile_sorted(&[1.0, 2.0, 3.0, 4.0], q));
        }
        assert!(quantile_select(&mut [], 0.5).is_nan());
    }

    #[test]
    fn histogram_default_range_includes_max() {
        // a = [1,2,3,4,10] in 3 bins over [1, 10]: width 3 → [1,4) has 1,2,3; [4,7) has 4; [7,10] has 10.
        let h = ds().histogram("a", 3, None, false).unwrap();
        assert_eq!(h.edges, vec![1.0, 4.0, 7.0, 10.0]);
        assert_eq!(h.counts, vec![3.0, 1.0, 1.0]);
        assert_eq!((h.underflow, h.overflow), (0.0, 0.0));
        // density = count / (5 · 3): integrates to 1.
        let dens: f64 = h.density().iter().map(|d| d * 3.0).sum();
        assert!((dens - 1.0).abs() < 1e-12);
    }

    #[test]
    fn weighted_histogram_tracks_sumw2_and_flows() {
        // Range [2, 4], 2 bins: a=1 (w 1) under; a=2 (w 1) bin 0; a=3 (w 2) bin 1; a=4 (w .5) bin 1 (upper edge); a=10 (w 0) over.
        let h = ds().histogram("a", 2, Some((2.0, 4.0)), true).unwrap();
        assert_eq!(h.counts, vec![1.0, 2.5]);
        assert_eq!(h.sumw2, vec![1.0, 4.25]);
        assert_eq!((h.underflow, h.overflow), (1.0, 0.0));
    }

    #[test]
    fn histogram_rejects_bad_arguments() {
        assert!(ds().histogram("a", 0, None, false).is_err());
        assert!(ds().histogram("a", 3, Some((1.0, 1.0)), false).unwrap_err().to_string().contains("lo < hi"));
        assert_eq!(ds().histogram("zz", 3, None, false).unwrap_err().kind(), "unknown_column");
        assert_eq!(histogram_values(&[f32::NAN], None, 2, None).unwrap_err().kind(), "non_finite");
        // Constant values: default range [v − .5, v + .5], everything in the middle bin.
        let h = ds().histogram("k", 3, None, false).unwrap();
        assert_eq!(h.counts, vec![0.0, 5.0, 0.0]);
    }

    #[test]
    fn correlation_matches_direct_formula() {
        let c = ds().correlation(false);
        // Direct Pearson r of a and b, computed by the textbook sum formula.
        let a = [1.0, 2.0, 3.0, 4.0, 10.0];
        let b = [2.0, 4.0, 6.5, 7.0, 1.0];
        let (ma, mb) = (4.0, 20.5 / 5.0);
        let sab: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let saa: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
        let sbb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
        let r = sab / (saa * sbb).sqrt();
        assert!((c[[0, 1]] - r).abs() < 1e-12 && (c[[1, 0]] - r).abs() < 1e-12);
        assert!((c[[0, 0]] - 1.0).abs() < 1e-12);
        // k is constant: its correlations are NaN.
        assert!(c[[2, 0]].is_nan() && c[[2, 2]].is_nan());
    }

    #[test]
    fn weighted_correlation_drops_zero_weight_rows() {
        // Weight 0 on the outlier row 4, weight 2 on row 2 = duplicating row 2 with unit weights.
        let cw = ds().correlation(true);
        let x = array![[1.0f32, 2.0], [2.0, 4.0], [3.0, 6.5], [3.0, 6.5], [4.0, 7.0]];
        let dup = Dataset::new(vec!["a".into(), "b".into()], x, None, Some(vec![1.0, 1.0, 1.0, 1.0, 0.5])).unwrap();
        let cd = dup.correlation(true);
        assert!((cw[[0, 1]] - cd[[0, 1]]).abs() < 1e-12);
        // And it differs from the unweighted value, which sees the outlier.
        assert!((cw[[0, 1]] - ds().correlation(false)[[0, 1]]).abs() > 0.1);
    }

    #[test]
    fn correlation_of_many_rows_uses_all_blocks() {
        // b = 2a + 1 exactly over 3 blocks of rows: r = 1.
        let n = BLOCK * 2 + 5;
        let x =
            Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { (i % 97) as f32 } else { 2.0 * (i % 97) as f32 + 1.0 });
        let d = Dataset::new(vec!["a".into(), "b".into()], x, None, None).unwrap();
        assert!((d.correlation(false)[[0, 1]] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn weighted_describe_by_hand_and_unit_weights_match_the_unweighted_one() {
        // x = 1, 2, 3 with w = 1, 1, 2: μ = 9/4 = 2.25; Σw(x−μ)² = 1.5625 + 0.0625 + 1.125 = 2.75;
        // V₁ = 4, V₂ = 6, V₁ − V₂/V₁ = 2.5, std = √1.1. Median: S = 1, 2, 4, positions
        // p = 0/3, 1/3, 2/2 = 0, ⅓, 1, so q = ½ lies between 2 (⅓) and 3 (1): 2 + (½ − ⅓)/(⅔) = 2.25.
        let x = ndarray::array![[1.0f32], [2.0], [3.0]];
        let d = Dataset::new(vec!["a".into()], x, None, Some(vec![1.0, 1.0, 2.0])).unwrap();
        let s = &d.describe_weighted()[0];
        assert!((s.mean - 2.25).abs() < 1e-15);
        assert!((s.std - 1.1f64.sqrt()).abs() < 1e-12);
        assert!((s.q50 - 2.25).abs() < 1e-12);
        assert_eq!((s.count, s.min, s.max), (3, 1.0, 3.0));
        // Equal weights (any value) reproduce the unweighted numbers.
        let plain = ds();
        let n = plain.len();
        let twos = plain.with_weight(Some(vec![2.0; n])).unwrap();
        for (a, b) in plain.describe().iter().zip(twos.describe_weighted()) {
            for (u, v) in [(a.mean, b.mean), (a.std, b.std), (a.q25, b.q25), (a.q50, b.q50), (a.q75, b.q75)] {
                assert!((u - v).abs() < 1e-12, "{u} vs {v}");
            }
        }
    }
}
