//! One-dimensional targets of a correction: a weighted sample or a histogram with errors, and
//! the forms the distances read (quantile function, normalised histogram, reference points).

use crate::error::{Error, Result};

/// Bins of the histogram a sample target is binned into for the soft χ² (over its range).
pub const SAMPLE_BINS: usize = 40;

/// Reference points (target quantiles) the MMD compares a batch with.
pub const MMD_POINTS: usize = 256;

/// What is known of a feature's distribution in data.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Events (with weights ≥ 0 when given).
    Samples {
        /// The values.
        values: Vec<f32>,
        /// Their weights, `None` for unit weights.
        weights: Option<Vec<f32>>,
    },
    /// A histogram: `edges` (increasing, one more than `counts`), `counts` ≥ 0 and their
    /// `errors` > 0 (the same units as the counts).
    Histogram {
        /// Bin edges.
        edges: Vec<f64>,
        /// Content per bin.
        counts: Vec<f64>,
        /// Uncertainty per bin.
        errors: Vec<f64>,
    },
}

/// The target of one feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The feature it describes.
    pub feature: String,
    /// Its distribution.
    pub shape: Shape,
}

/// A target prepared for the distances: every form computed once.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Quantile function: values `q` at cumulative probabilities `u` (increasing), linear in
    /// between and constant beyond.
    u: Vec<f64>,
    q: Vec<f64>,
    /// Histogram edges, fractions (sum 1) and their errors (> 0).
    pub edges: Vec<f64>,
    /// Fraction of the target per bin.
    pub fractions: Vec<f64>,
    /// Error of each fraction.
    pub errors: Vec<f64>,
    /// [`MMD_POINTS`] equally spaced quantiles.
    pub points: Vec<f64>,
}

impl Target {
    /// Checks the target and computes its forms; errors name the feature.
    pub fn prepare(&self) -> Result<Prepared> {
        let bad = |p: String| Error::arg("correction_target", format!("target of '{}': {p}", self.feature));
        match &self.shape {
            Shape::Samples { values, weights } => {
                if values.is_empty() {
                    return Err(bad("the sample is empty".into()));
                }
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(bad(format!("value {i} is {}", values[i])));
                }
                if let Some(w) = weights {
                    if w.len() != values.len() {
                        return Err(bad(format!("{} weights for {} values", w.len(), values.len())));
                    }
                    if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                        return Err(bad(format!("weight {i} is {}; target weights must be finite and ≥ 0", w[i])));
                    }
                    if !w.iter().any(|&v| v > 0.0) {
                        return Err(bad("every weight is 0".into()));
                    }
                }
                let mut idx: Vec<usize> = (0..values.len()).collect();
                idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
                let wt = |i: usize| weights.as_ref().map_or(1.0, |w| f64::from(w[i]));
                let total: f64 = idx.iter().map(|&i| wt(i)).sum();
                let (mut u, mut q) = (Vec::with_capacity(idx.len()), Vec::with_capacity(idx.len()));
                let mut c = 0.0;
                for &i in &idx {
                    let w = wt(i);
                    if w > 0.0 {
                        u.push((c + w / 2.0) / total);
                        q.push(f64::from(values[i]));
                    }
                    c += w;
                }
                let (lo, hi) = (q[0], q[q.len() - 1]);
                let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
                let edges: Vec<f64> =
                    (0..=SAMPLE_BINS).map(|b| lo + (hi - lo) * b as f64 / SAMPLE_BINS as f64).collect();
                let (mut counts, mut sq) = (vec![0.0; SAMPLE_BINS], vec![0.0; SAMPLE_BINS]);
                for &i in &idx {
                    let v = f64::from(values[i]);
                    let b = (((v - lo) / (hi - lo) * SAMPLE_BINS as f64) as usize).min(SAMPLE_BINS - 1);
                    counts[b] += wt(i);
                    sq[b] += wt(i) * wt(i);
                }
                // Empty bins get the smallest error of a filled bin (a zero error would make
                // the χ² infinite).
                let floor = sq.iter().copied().filter(|&s| s > 0.0).fold(f64::INFINITY, f64::min).sqrt();
                let errors: Vec<f64> = sq.iter().map(|&s| if s > 0.0 { s.sqrt() } else { floor }).collect();
                Ok(Prepared::new(u, q, edges, counts, errors))
            }
            Shape::Histogram { edges, counts, errors } => {
                if counts.is_empty() {
                    return Err(bad("the histogram has no bins".into()));
                }
                if edges.len() != counts.len() + 1 || errors.len() != counts.len() {
                    return Err(bad(format!(
                        "{} edges, {} counts and {} errors; a histogram needs n + 1 edges, n counts and n errors",
                        edges.len(),
                        counts.len(),
                        errors.len()
                    )));
                }
                if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[1] <= w[0]) {
                    return Err(bad("the edges must be finite and strictly increasing".into()));
                }
                if let Some(i) = counts.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
                    return Err(bad(format!("count {i} is {}; counts must be finite and ≥ 0", counts[i])));
                }
                if let Some(i) = errors.iter().position(|e| !(e.is_finite() && *e > 0.0)) {
                    return Err(bad(format!("error {i} is {}; errors must be finite and > 0", errors[i])));
                }
                let total: f64 = counts.iter().sum();
                if total <= 0.0 {
                    return Err(bad("the histogram is empty (all counts 0)".into()));
                }
                // The CDF is linear inside each bin (uniform density).
                let (mut u, mut q) = (vec![0.0], vec![edges[0]]);
                let mut c = 0.0;
                for (b, &n) in counts.iter().enumerate() {
                    if n > 0.0 {
                        if q.last().is_some_and(|&l| l < edges[b]) {
                            u.push(c);
                            q.push(edges[b]);
                        }
                        c += n / total;
                        u.push(c.min(1.0));
                        q.push(edges[b + 1]);
                    }
                }
                Ok(Prepared::new(u, q, edges.clone(), counts.clone(), errors.clone()))
            }
        }
    }
}

impl Prepared {
    fn new(u: Vec<f64>, q: Vec<f64>, edges: Vec<f64>, counts: Vec<f64>, errors: Vec<f64>) -> Prepared {
        let total: f64 = counts.iter().sum();
        let fractions = counts.iter().map(|c| c / total).collect();
        let errors = errors.iter().map(|e| e / total).collect();
        let mut p = Prepared { u, q, edges, fractions, errors, points: Vec::new() };
        p.points = (0..MMD_POINTS).map(|m| p.quantile((m as f64 + 0.5) / MMD_POINTS as f64)).collect();
        p
    }

    /// The target's quantile at cumulative probability `p`.
    pub fn quantile(&self, p: f64) -> f64 {
        let (u, q) = (&self.u, &self.q);
        if p <= u[0] {
            return q[0];
        }
        let last = u.len() - 1;
        if p >= u[last] {
            return q[last];
        }
        let k = u.partition_point(|&v| v <= p);
        let (u0, u1, q0, q1) = (u[k - 1], u[k], q[k - 1], q[k]);
        if u1 > u0 {
            q0 + (q1 - q0) * (p - u0) / (u1 - u0)
        } else {
            q1
        }
    }

    /// The target's CDF at `v` (the inverse of [`Prepared::quantile`]; constant beyond the
    /// first and last point, as the quantile function is).
    pub fn cdf(&self, v: f64) -> f64 {
        let (u, q) = (&self.u, &self.q);
        if v <= q[0] {
            return u[0];
        }
        let last = q.len() - 1;
        if v >= q[last] {
            return u[last];
        }
        let k = q.partition_point(|&x| x <= v);
        let (q0, q1, u0, u1) = (q[k - 1], q[k], u[k - 1], u[k]);
        if q1 > q0 {
            u0 + (u1 - u0) * (v - q0) / (q1 - q0)
        } else {
            u1
        }
    }
}
