//! One physics quantity of a sample with a classifier's score, the number a systematic (or a
//! perturbation that passes the population checks) moves: the weighted yield of a region above
//! a score cut, the selection efficiency of that cut within the region, or the weighted mean
//! score in the region. Sums are in f64, in event order.

use std::fmt;

use crate::data::expr::Expr;
use crate::data::Dataset;
use crate::error::{Error, Result};

const OP: &str = "quantity";

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantityKind {
    /// `Σ wᵢ [region ∧ sᵢ > t]`.
    Yield,
    /// `Σ wᵢ [region ∧ sᵢ > t] / Σ wᵢ [region]`.
    Efficiency,
    /// `Σ wᵢ sᵢ [region] / Σ wᵢ [region]`.
    MeanScore,
}

impl QuantityKind {
    /// The kind named `s` (`"yield"`, `"efficiency"`, `"mean_score"`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "yield" => Ok(QuantityKind::Yield),
            "efficiency" => Ok(QuantityKind::Efficiency),
            "mean_score" => Ok(QuantityKind::MeanScore),
            _ => Err(Error::arg(OP, format!("kind must be \"yield\", \"efficiency\" or \"mean_score\", got \"{s}\""))),
        }
    }

    /// The script name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuantityKind::Yield => "yield",
            QuantityKind::Efficiency => "efficiency",
            QuantityKind::MeanScore => "mean_score",
        }
    }
}

/// A quantity: its kind, the region (all events when `None`) and the score cut (yields and
/// efficiencies only).
#[derive(Clone, Debug)]
pub struct Quantity {
    /// What is measured.
    pub kind: QuantityKind,
    /// The region's cut expression.
    pub region: Option<Expr>,
    /// The score cut `s > threshold` (`None` for the mean score).
    pub threshold: Option<f64>,
}

impl Quantity {
    /// A checked quantity: yields and efficiencies need a finite threshold, the mean score
    /// takes none.
    pub fn new(kind: QuantityKind, region: Option<Expr>, threshold: Option<f64>) -> Result<Self> {
        match (kind, threshold) {
            (QuantityKind::MeanScore, Some(_)) => {
                Err(Error::arg(OP, "a mean score takes no threshold (it averages every score in the region)"))
            }
            (QuantityKind::Yield | QuantityKind::Efficiency, None) => {
                Err(Error::arg(OP, format!("a {} needs a score threshold", kind.as_str())))
            }
            (_, Some(t)) if !t.is_finite() => Err(Error::arg(OP, format!("the threshold must be finite, got {t}"))),
            _ => Ok(Quantity { kind, region, threshold }),
        }
    }

    /// The quantity on `ds` with one score per event.
    pub fn measure(&self, ds: &Dataset, scores: &[f64]) -> Result<f64> {
        if scores.len() != ds.len() {
            return Err(Error::Shape {
                op: OP,
                expected: format!("{} scores", ds.len()),
                got: scores.len().to_string(),
            });
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(Error::arg(OP, format!("the score of event {i} is {}", scores[i])));
        }
        let w = ds.weights_or_ones();
        let mask = self.region_mask(ds)?;
        let t = self.threshold.unwrap_or(f64::NEG_INFINITY);
        let (mut total, mut pass, mut weighted_score) = (0.0, 0.0, 0.0);
        for ((&m, &wi), &s) in mask.iter().zip(&w).zip(scores) {
            if m {
                let wi = f64::from(wi);
                total += wi;
                weighted_score += wi * s;
                if s > t {
                    pass += wi;
                }
            }
        }
        let ratio = |num: f64| {
            if total != 0.0 {
                Ok(num / total)
            } else {
                Err(Error::Empty { op: OP, what: format!("the weight in {}", self.region_name()) })
            }
        };
        match self.kind {
            QuantityKind::Yield => Ok(pass),
            QuantityKind::Efficiency => ratio(pass),
            QuantityKind::MeanScore => ratio(weighted_score),
        }
    }

    /// `region 'cut'` or `all events`.
    /// Which events of `ds` are inside the region (every event without one).
    pub fn region_mask(&self, ds: &Dataset) -> Result<Vec<bool>> {
        match &self.region {
            Some(e) => e.eval_mask(ds),
            None => Ok(vec![true; ds.len()]),
        }
    }

    fn region_name(&self) -> String {
        self.region.as_ref().map_or("all events".into(), |e| format!("region '{}'", e.source()))
    }
}

impl fmt::Display for Quantity {
    /// `yield(score > 0.5 | abs(m12 - 125) < 10)`, `mean_score(all)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = self.region.as_ref().map_or("all", |e| e.source());
        match self.threshold {
            Some(t) => write!(f, "{}(score > {t} | {region})", self.kind.as_str()),
            None => write!(f, "{}({region})", self.kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Four events x = 0, 1, 2, 3 with weights 1, 2, 3, 4 and scores 0.1, 0.6, 0.4, 0.9.
    fn sample() -> (Dataset, Vec<f64>) {
        let x = Array2::from_shape_vec((4, 1), vec![0.0, 1.0, 2.0, 3.0]).unwrap_or_default();
        let ds = Dataset::new(vec!["x".into()], x, None, Some(vec![1.0, 2.0, 3.0, 4.0]));
        (ds.unwrap_or_else(|e| panic!("{e}")), vec![0.1, 0.6, 0.4, 0.9])
    }

    fn q(kind: &str, region: Option<&str>, t: Option<f64>) -> Quantity {
        let region = region.map(|r| Expr::parse(r).unwrap_or_else(|e| panic!("{e}")));
        Quantity::new(QuantityKind::parse(kind).unwrap_or_else(|e| panic!("{e}")), region, t)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn values_by_hand() {
        let (ds, s) = sample();
        let m = |q: Quantity| q.measure(&ds, &s).unwrap_or(f64::NAN);
        // score > 0.5: events 1 and 3, weights 2 + 4.
        assert_eq!(m(q("yield", None, Some(0.5))), 6.0);
        // region x ≥ 1: weights 2 + 3 + 4 = 9; above 0.5: 2 + 4 = 6.
        assert_eq!(m(q("efficiency", Some("x >= 1"), Some(0.5))), 6.0 / 9.0);
        // (2·0.6 + 3·0.4 + 4·0.9) / 9 = 6 / 9.
        assert!((m(q("mean_score", Some("x >= 1"), None)) - 6.0 / 9.0).abs() < 1e-15);
        // all: (0.1 + 1.2 + 1.2 + 3.6) / 10.
        assert!((m(q("mean_score", None, None)) - 0.61).abs() < 1e-15);
        // the cut is strict: a score equal to the threshold does not pass.
        assert_eq!(m(q("yield", None, Some(0.6))), 4.0);
    }

    #[test]
    fn bad_specifications_and_empty_regions_are_errors() {
        let msg = |r: Result<Quantity>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg(Quantity::new(QuantityKind::MeanScore, None, Some(0.5))),
            "quantity: a mean score takes no threshold (it averages every score in the region)"
        );
        assert_eq!(msg(Quantity::new(QuantityKind::Yield, None, None)), "quantity: a yield needs a score threshold");
        assert_eq!(
            QuantityKind::parse("mean").err().map(|e| e.to_string()).unwrap_or_default(),
            "quantity: kind must be \"yield\", \"efficiency\" or \"mean_score\", got \"mean\""
        );
        let (ds, s) = sample();
        let e = q("efficiency", Some("x > 10"), Some(0.5)).measure(&ds, &s).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("quantity: the weight in region 'x > 10' is empty"));
        // An empty region has a zero yield, not an error.
        assert_eq!(q("yield", Some("x > 10"), Some(0.5)).measure(&ds, &s).ok(), Some(0.0));
        assert!(q("yield", None, Some(0.5)).measure(&ds, &s[..3]).is_err());
    }
}
