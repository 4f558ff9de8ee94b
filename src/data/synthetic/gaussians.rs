//! The reference task: two shifted multivariate Gaussians with AR(1) correlations.
//!
//! Class 0 ~ N(0, Σ), class 1 ~ N(shift·1, Σ), Σ_ij = ρ^|i−j|, labels Bernoulli(0.5).
//! With d = 20, shift = 0.5, ρ = 0.5 the Bayes-optimal ROC AUC is Φ(Δ_M/√2) = 0.8308, with
//! Δ_M² = shift²·1ᵀΣ⁻¹1 the squared Mahalanobis distance between the class means.
//!
//! Sampling uses the closed-form Cholesky factor of the AR(1) matrix: x₀ = z₀,
//! x_i = ρ·x_{i−1} + √(1−ρ²)·z_i with z standard normal, which has unit variances and
//! Cov(x_i, x_j) = ρ^|i−j|. Rows are generated in fixed-size chunks, each from its own
//! [`crate::rng::substream`], so the numbers do not depend on the number of threads.

use ndarray::{Array2, Axis};
use rand::Rng as _;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng;

/// Rows per independently seeded chunk. Changing it changes the generated numbers.
const CHUNK: usize = 8192;

/// Parameters of the two-Gaussian task.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussiansConfig {
    /// Number of events.
    pub n: usize,
    /// Number of features `x0 … x{d−1}`.
    pub d: usize,
    /// Mean shift of class 1 in every feature.
    pub shift: f64,
    /// Correlation of neighbouring features, |ρ| < 1.
    pub rho: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for GaussiansConfig {
    /// The reference task: d = 20, shift = 0.5, ρ = 0.5, n = 10 000, seed 0.
    fn default() -> Self {
        GaussiansConfig { n: 10_000, d: 20, shift: 0.5, rho: 0.5, seed: 0 }
    }
}

impl GaussiansConfig {
    /// The reference task with `n` events and `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        GaussiansConfig { n, seed, ..Default::default() }
    }

    fn check(&self) -> Result<()> {
        if self.d == 0 {
            return Err(Error::arg("gaussians", "d must be at least 1, got 0"));
        }
        if self.rho.is_nan() || self.rho.abs() >= 1.0 {
            return Err(Error::arg("gaussians", format!("rho must be in (-1, 1), got {}", self.rho)));
        }
        if !self.shift.is_finite() {
            return Err(Error::arg("gaussians", format!("shift must be finite, got {}", self.shift)));
        }
        Ok(())
    }

    /// Σ⁻¹·1 for the AR(1) matrix. Σ⁻¹ is tridiagonal, (1/(1−ρ²))·[1, 1+ρ², …, 1+ρ², 1] on the
    /// diagonal and −ρ/(1−ρ²) beside it, so its row sums are 1/(1+ρ) at both ends and
    /// (1−ρ)/(1+ρ) inside (1 when d = 1).
    fn precision_times_ones(&self) -> Vec<f64> {
        let (d, r) = (self.d, self.rho);
        if d == 1 {
            return vec![1.0];
        }
        (0..d).map(|i| if i == 0 || i == d - 1 { 1.0 / (1.0 + r) } else { (1.0 - r) / (1.0 + r) }).collect()
    }
}

/// The reference task with `n` events: 20 features `x0..x19`, label 0/1.
///
/// ```
/// let ds = nuisance::data::synthetic::gaussians(1000, 42);
/// assert_eq!((ds.len(), ds.n_features()), (1000, 20));
/// assert_eq!(ds.names()[19], "x19");
/// ```
pub fn gaussians(n: usize, seed: u64) -> Dataset {
    let cfg = GaussiansConfig::new(n, seed);
    let names = feature_names(cfg.d);
    let (x, label) = sample(&cfg);
    // The names and shapes are built here to agree, so construction cannot fail.
    Dataset::from_trusted(names, x, Some(label), None)
}

/// The two-Gaussian task with any size, dimension, shift and correlation.
pub fn gaussians_with(cfg: &GaussiansConfig) -> Result<Dataset> {
    cfg.check()?;
    let (x, label) = sample(cfg);
    Dataset::new_unchecked_finite(feature_names(cfg.d), x, Some(label), None)
}

/// The Bayes-optimal score for `ds` under `cfg`: the log-likelihood ratio
/// log p(x|1)/p(x|0) = Δᵀ Σ⁻¹ x − ½ Δᵀ Σ⁻¹ Δ with Δ = shift·1.
///
/// It is linear in x; positive means class 1 is more likely (equal priors). Reads the
/// columns `x0 … x{d−1}` by name.
pub fn gaussians_discriminant(ds: &Dataset, cfg: &GaussiansConfig) -> Result<Vec<f64>> {
    cfg.check()?;
    let cols =
        feature_names(cfg.d).iter().map(|c| ds.index_of("gaussians_discriminant", c)).collect::<Result<Vec<_>>>()?;
    let a: Vec<f64> = cfg.precision_times_ones().iter().map(|v| cfg.shift * v).collect();
    let offset = 0.5 * cfg.shift * a.iter().sum::<f64>();
    let x = ds.x();
    Ok(x.rows()
        .into_iter()
        .map(|row| cols.iter().zip(&a).map(|(&j, ai)| ai * f64::from(row[j])).sum::<f64>() - offset)
        .collect())
}

fn feature_names(d: usize) -> Vec<String> {
    (0..d).map(|i| format!("x{i}")).collect()
}

/// Draws the features and labels, chunk by chunk in parallel.
fn sample(cfg: &GaussiansConfig) -> (Array2<f32>, Vec<i64>) {
    let mut x = Array2::<f32>::zeros((cfg.n, cfg.d));
    let mut label = vec![0i64; cfg.n];
    let c = (1.0 - cfg.rho * cfg.rho).sqrt();
    x.axis_chunks_iter_mut(Axis(0), CHUNK).into_par_iter().zip(label.par_chunks_mut(CHUNK)).enumerate().for_each(
        |(k, (mut xs, ls))| {
            let mut r = rng::rng(rng::substream(cfg.seed, k as u64));
            for (mut row, l) in xs.axis_iter_mut(Axis(0)).zip(ls.iter_mut()) {
                *l = i64::from(r.random_bool(0.5));
                let mu = if *l == 1 { cfg.shift } else { 0.0 };
                let mut prev = 0.0f64;
                for (i, v) in row.iter_mut().enumerate() {
                    let z: f64 = r.sample(StandardNormal);
                    prev = if i == 0 { z } else { cfg.rho * prev + c * z };
                    *v = (prev + mu) as f32;
                }
            }
        },
    );
    (x, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn same_seed_same_events() {
        let (a, b, c) = (gaussians(20_000, 5), gaussians(20_000, 5), gaussians(20_000, 6));
        assert_eq!(a.x(), b.x());
        assert_eq!(a.label(), b.label());
        assert_ne!(a.x(), c.x());
        // Independent of the thread count: 3 chunks of 8192 rows on one thread vs the pool.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let one = pool.install(|| gaussians(20_000, 5));
        assert_eq!(one.x(), a.x());
    }

    #[test]
    fn class_means_and_covariance_match_the_model() {
        let ds = gaussians(100_000, 11);
        let l = ds.label().unwrap();
        let ones = l.iter().filter(|&&v| v == 1).count() as f64;
        // Bernoulli(0.5) on 1e5 events: sd of the fraction is 0.5/√1e5 = 0.0016; 4σ = 0.0063.
        assert!((ones / 1e5 - 0.5).abs() < 0.0064, "class-1 fraction {}", ones / 1e5);
        // Class means: 0 and 0.5; each mean has sd 1/√(5e4) = 0.0045, 5σ ≈ 0.023.
        for cls in [0i64, 1] {
            let idx: Vec<usize> = (0..ds.len()).filter(|&i| l[i] == cls).collect();
            let sub = ds.take_rows(&idx);
            let m = sub.column_means();
            let want = 0.5 * cls as f64;
            assert!(m.iter().all(|v| (v - want).abs() < 0.023), "class {cls} means {m}");
            // Within-class covariance = Σ: Σ_ij = 0.5^|i−j|. The sd of a sample covariance
            // entry is ≤ √((1+ρ²)/n) ≈ √(2/5e4) = 0.0063; allow 5σ ≈ 0.032.
            let cov = sub.covariance(false);
            for (i, j) in [(0, 0), (3, 4), (7, 9), (10, 13), (19, 19)] {
                let want = 0.5f64.powi((i as i32 - j as i32).abs());
                assert!((cov[[i, j]] - want).abs() < 0.032, "cov[{i},{j}] = {}", cov[[i, j]]);
            }
        }
    }

    #[test]
    fn discriminant_reaches_the_bayes_auc() {
        // Closed form, computed independently of the tridiagonal formula: invert Σ with
        // nalgebra, Δ_M² = 0.25·1ᵀΣ⁻¹1, AUC = Φ(Δ_M/√2) (the LLR is Gaussian in each class
        // with means ±Δ_M²/2 and variance Δ_M²).
        let d = 20;
        let sigma = DMatrix::from_fn(d, d, |i, j| 0.5f64.powi((i as i32 - j as i32).abs()));
        let inv = sigma.try_inverse().unwrap();
        let ones = DVector::from_element(d, 1.0);
        let dm2 = 0.25 * (ones.transpose() * &inv * &ones)[(0, 0)];
        let auc_exact = Normal::standard().cdf((dm2 / 2.0).sqrt());
        // Δ_M² = 0.25·(2/1.5 + 18·0.5/1.5) = 1.8333 (tridiagonal row sums), Φ(0.95743) = 0.83082.
        // (guide/benchmarks.md quotes 0.8306, within 3e-4 of the exact value.)
        assert!((auc_exact - 0.83082).abs() < 1e-5, "closed form {auc_exact}");
        let cfg = GaussiansConfig::new(200_000, 3);
        let ds = gaussians_with(&cfg).unwrap();
        let s: Vec<f32> = gaussians_discriminant(&ds, &cfg).unwrap().iter().map(|&v| v as f32).collect();
        let auc = crate::metrics::roc_auc(&s, ds.label().unwrap(), None).unwrap();
        // Hanley–McNeil SE at A = 0.83 with 1e5 per class: Q1 = A/(2−A) = 0.709,
        // Q2 = 2A²/(1+A) = 0.753, SE = √((A(1−A) + (n−1)(Q1−A²) + (n−1)(Q2−A²))/n²) ≈ 0.0009;
        // tolerance 0.003 ≈ 3.3 SE.
        assert!((auc - auc_exact).abs() < 0.003, "auc {auc} vs exact {auc_exact}");
    }

    #[test]
    fn discriminant_is_the_log_likelihood_ratio() {
        // d = 2, ρ = 0.5, shift 1: Σ⁻¹ = (1/0.75)[[1, −.5], [−.5, 1]], Σ⁻¹1 = [2/3, 2/3];
        // at x = (1, 2): Δᵀ Σ⁻¹ x = 2/3 + 4/3 = 2, ½ Δᵀ Σ⁻¹ Δ = ½·4/3 = 2/3 → 4/3.
        let cfg = GaussiansConfig { n: 1, d: 2, shift: 1.0, rho: 0.5, seed: 0 };
        let x = ndarray::array![[1.0f32, 2.0]];
        let ds = Dataset::new(vec!["x0".into(), "x1".into()], x, None, None).unwrap();
        let s = gaussians_discriminant(&ds, &cfg).unwrap();
        assert!((s[0] - 4.0 / 3.0).abs() < 1e-12);
        let bad = ds.rename("x1", "y").unwrap();
        assert_eq!(gaussians_discriminant(&bad, &cfg).unwrap_err().kind(), "unknown_column");
    }

    #[test]
    fn config_is_checked() {
        let bad = GaussiansConfig { rho: 1.0, ..Default::default() };
        assert!(gaussians_with(&bad).unwrap_err().to_string().contains("rho must be in (-1, 1)"));
        let bad = GaussiansConfig { d: 0, ..Default::default() };
        assert!(gaussians_with(&bad).is_err());
        assert_eq!(gaussians(0, 1).len(), 0);
    }
}
