//! Per-feature standardisation `(x − mean) / std`, fitted on one dataset (the training set)
//! and applied to others.
//!
//! ```
//! use nuisance::data::{standardize::Standardizer, synthetic::gaussians};
//! let train = gaussians(1000, 1);
//! let s = Standardizer::fit(&train, false).unwrap();
//! let z = s.apply(&train).unwrap();
//! assert!(z.column_means()[0].abs() < 1e-5);
//! let back = s.invert(&z).unwrap();
//! assert!((back.x()[[0, 0]] - train.x()[[0, 0]]).abs() < 1e-5);
//! ```

use ndarray::{Array2, Axis, Zip};

use super::Dataset;
use crate::error::{Error, Result};

/// Feature means and standard deviations fitted on a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Feature names, in column order; datasets passed to `apply`/`invert` must match.
    pub names: Vec<String>,
    /// Mean per feature.
    pub mean: Vec<f64>,
    /// Standard deviation per feature (divisor Σw, as scikit-learn's `StandardScaler`);
    /// 1 for a constant feature, which is then only shifted to zero.
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits means and standard deviations, weighted with the event weights when
    /// `weighted` is true and the dataset has weights.
    ///
    /// A constant column gets std = 1 (not an error), so it passes through shifted to 0.
    pub fn fit(ds: &Dataset, weighted: bool) -> Result<Self> {
        if ds.is_empty() {
            return Err(Error::Empty { op: "standardize", what: "the dataset to fit on".into() });
        }
        let w: Vec<f64> = match (weighted, ds.weight()) {
            (true, Some(w)) => w.iter().map(|&v| f64::from(v)).collect(),
            _ => vec![1.0; ds.len()],
        };
        let sumw: f64 = w.iter().sum();
        if sumw <= 0.0 {
            return Err(Error::arg("standardize", format!("the total event weight must be positive, got {sumw}")));
        }
        let x = ds.x();
        let d = ds.n_features();
        let (mut s1, mut s2) = (vec![0.0; d], vec![0.0; d]);
        // Two passes (mean, then centred squares) for numerical stability.
        for (row, &wi) in x.rows().into_iter().zip(&w) {
            s1.iter_mut().zip(row).for_each(|(m, &v)| *m += wi * f64::from(v));
        }
        let mean: Vec<f64> = s1.iter().map(|m| m / sumw).collect();
        for (row, &wi) in x.rows().into_iter().zip(&w) {
            s2.iter_mut().zip(row).zip(&mean).for_each(|((s, &v), m)| *s += wi * (f64::from(v) - m).powi(2));
        }
        let std = s2.iter().map(|s| (s / sumw).max(0.0).sqrt()).map(|s| if s > 0.0 { s } else { 1.0 }).collect();
        Ok(Standardizer { names: ds.names().to_vec(), mean, std })
    }

    /// `(x − mean) / std` per feature.
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        self.transform(ds, "standardize", |v, m, s| (v - m) / s)
    }

    /// The inverse: `x · std + mean` per feature.
    pub fn invert(&self, ds: &Dataset) -> Result<Dataset> {
        self.transform(ds, "unstandardize", |v, m, s| v * s + m)
    }

    fn transform(&self, ds: &Dataset, op: &'static str, f: impl Fn(f64, f64, f64) -> f64 + Sync) -> Result<Dataset> {
        if ds.names() != self.names.as_slice() {
            return Err(Error::Shape {
                op,
                expected: format!("the fitted features [{}]", self.names.join(", ")),
                got: format!("[{}]", ds.names().join(", ")),
            });
        }
        let mut x: Array2<f32> = ds.x().to_owned();
        Zip::from(x.axis_iter_mut(Axis(0))).par_for_each(|mut row| {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = f(f64::from(*v), *m, *s) as f32;
            }
        });
        ds.with_x(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ds() -> Dataset {
        let x = array![[1.0f32, 7.0], [3.0, 7.0], [5.0, 7.0], [7.0, 7.0]];
        Dataset::new(vec!["a".into(), "k".into()], x, None, Some(vec![1.0, 1.0, 1.0, 5.0])).unwrap()
    }

    #[test]
    fn fit_gives_population_moments() {
        let s = Standardizer::fit(&ds(), false).unwrap();
        // a = [1,3,5,7]: mean 4, Σ(a−4)²/4 = (9+1+1+9)/4 = 5
        assert_eq!(s.mean, vec![4.0, 7.0]);
        assert!((s.std[0] - 5f64.sqrt()).abs() < 1e-12);
        // k is constant → std 1, so it is shifted to 0 and not scaled.
        assert_eq!(s.std[1], 1.0);
        let z = s.apply(&ds()).unwrap();
        assert_eq!(z.column("k").unwrap().to_vec(), vec![0.0; 4]);
        assert!((z.x()[[0, 0]] - (-3.0 / 5f32.sqrt())).abs() < 1e-6);
    }

    #[test]
    fn weighted_fit_uses_weights() {
        // Weights 1,1,1,5: mean = (1+3+5+35)/8 = 5.5; Σw(a−5.5)² = 20.25+6.25+.25+5·2.25 = 38, /8 = 4.75
        let s = Standardizer::fit(&ds(), true).unwrap();
        assert!((s.mean[0] - 5.5).abs() < 1e-12);
        assert!((s.std[0] - 4.75f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn invert_undoes_apply() {
        let s = Standardizer::fit(&ds(), true).unwrap();
        let back = s.invert(&s.apply(&ds()).unwrap()).unwrap();
        for (a, b) in back.x().iter().zip(ds().x()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn mismatched_names_list_both() {
        let s = Standardizer::fit(&ds(), false).unwrap();
        let other = ds().rename("k", "j").unwrap();
        let e = s.apply(&other).unwrap_err();
        assert_eq!(e.to_string(), "standardize: expected the fitted features [a, k], got [a, j]");
        let empty = ds().head(0);
        assert_eq!(Standardizer::fit(&empty, false).unwrap_err().kind(), "empty");
    }
}
