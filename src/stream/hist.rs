//! A histogram with fixed edges for streaming: integer counts and exact sums of the weights
//! and of the squared weights per bin (plus underflow, overflow and NaN), so histograms of
//! chunks or shards merge into exactly the histogram of one run. The edges are fixed before
//! the first event (a stream cannot look at the data's range first).

use serde_json::{json, Value};

use super::exact::ExactSum;
use crate::error::{Error, Result};

/// Counts and weight sums in fixed bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    /// Increasing bin edges (bins + 1 of them).
    pub edges: Vec<f64>,
    /// Events per bin.
    pub counts: Vec<u64>,
    /// Σw per bin.
    pub weights: Vec<ExactSum>,
    /// Σw² per bin (each w² rounded to f32, so every run rounds alike).
    pub weights2: Vec<ExactSum>,
    /// Events below the first edge, at or above the last one, and NaN values.
    pub underflow: u64,
    pub overflow: u64,
    pub nan: u64,
    /// Σw of the underflow and the overflow.
    pub weight_underflow: ExactSum,
    pub weight_overflow: ExactSum,
}

impl Hist {
    /// An empty histogram over `edges` (at least two, finite, strictly increasing).
    pub fn new(op: &str, edges: Vec<f64>) -> Result<Hist> {
        if edges.len() < 2 || edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::arg(op, "the histogram edges must be at least two finite numbers in increasing order"));
        }
        crate::limits::check(op, "bins", edges.len() - 1, crate::limits::HISTOGRAM_BINS)?;
        let n = edges.len() - 1;
        Ok(Hist {
            edges,
            counts: vec![0; n],
            weights: vec![ExactSum::new(); n],
            weights2: vec![ExactSum::new(); n],
            underflow: 0,
            overflow: 0,
            nan: 0,
            weight_underflow: ExactSum::new(),
            weight_overflow: ExactSum::new(),
        })
    }

    /// `bins` equal-width bins over `[lo, hi)`.
    pub fn uniform(op: &str, bins: usize, lo: f64, hi: f64) -> Result<Hist> {
        if bins == 0 || !lo.is_finite() || !hi.is_finite() || lo >= hi {
            return Err(Error::arg(
                op,
                format!("a histogram needs at least one bin and lo < hi, got {bins} bins over [{lo}, {hi}]"),
            ));
        }
        crate::limits::check(op, "bins", bins, crate::limits::HISTOGRAM_BINS)?;
        let edges = (0..=bins).map(|i| if i == bins { hi } else { lo + (hi - lo) * i as f64 / bins as f64 }).collect();
        Hist::new(op, edges)
    }

    /// Counts value `v` with weight `w` (bins are `[edge_i, edge_i+1)`).
    pub fn fill(&mut self, v: f64, w: f32) {
        if v.is_nan() {
            self.nan += 1;
        } else if v < self.edges[0] {
            self.underflow += 1;
            self.weight_underflow.add(w);
        } else if v >= self.edges[self.edges.len() - 1] {
            self.overflow += 1;
            self.weight_overflow.add(w);
        } else {
            // the last edge ≤ v: the bin's index
            let i = self.edges.partition_point(|&e| e <= v) - 1;
            self.counts[i] += 1;
            self.weights[i].add(w);
            self.weights2[i].add(w * w);
        }
    }

    /// Adds another part's histogram over the same edges.
    pub fn merge(&mut self, other: &Hist) -> Result<()> {
        if other.edges != self.edges {
            return Err(Error::arg("merge", "cannot merge histograms with different edges"));
        }
        for i in 0..self.counts.len() {
            self.counts[i] += other.counts[i];
            self.weights[i].merge(&other.weights[i]);
            self.weights2[i].merge(&other.weights2[i]);
        }
        self.underflow += other.underflow;
        self.overflow += other.overflow;
        self.nan += other.nan;
        self.weight_underflow.merge(&other.weight_underflow);
        self.weight_overflow.merge(&other.weight_overflow);
        Ok(())
    }

    /// `#{ edges, counts, sum_weights, errors (√Σw²), underflow, overflow, nan }` and the exact
    /// sums' digits under `exact`.
    pub fn to_json(&self) -> Value {
        let digits = |v: &[ExactSum]| v.iter().map(ExactSum::digits).collect::<Vec<_>>();
        json!({
            "edges": self.edges,
            "counts": self.counts,
            "sum_weights": self.weights.iter().map(ExactSum::value).collect::<Vec<_>>(),
            "errors": self.weights2.iter().map(|s| s.value().max(0.0).sqrt()).collect::<Vec<_>>(),
            "underflow": self.underflow,
            "overflow": self.overflow,
            "nan": self.nan,
            "exact": {
                "weights": digits(&self.weights),
                "weights2": digits(&self.weights2),
                "weight_underflow": self.weight_underflow.digits(),
                "weight_overflow": self.weight_overflow.digits(),
            },
        })
    }

    /// Reads a histogram's JSON (as [`Hist::to_json`] writes it; `file` names it in errors).
    pub fn from_json(file: &str, v: &Value) -> Result<Hist> {
        let bad = |what: &str| Error::arg("merge", format!("{file}: not a streamed histogram ({what})"));
        let edges: Vec<f64> = v
            .get("edges")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_f64).collect())
            .ok_or_else(|| bad("no edges"))?;
        let mut h = Hist::new("merge", edges)?;
        let n = h.counts.len();
        let count = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(&format!("no count '{k}'")));
        let sum = |d: &Value| -> Option<ExactSum> {
            let d: Vec<i64> = d.as_array()?.iter().map(Value::as_i64).collect::<Option<_>>()?;
            ExactSum::from_digits(&d)
        };
        let sums = |k: &str| -> Result<Vec<ExactSum>> {
            let a = v.get("exact").and_then(|e| e.get(k)).and_then(Value::as_array).ok_or_else(|| bad(k))?;
            let s: Vec<ExactSum> = a.iter().map(sum).collect::<Option<_>>().ok_or_else(|| bad(k))?;
            if s.len() != n {
                return Err(bad(&format!("{k} has {} bins, the edges {n}", s.len())));
            }
            Ok(s)
        };
        let one = |k: &str| v.get("exact").and_then(|e| e.get(k)).and_then(sum).ok_or_else(|| bad(k));
        h.counts = v
            .get("counts")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .filter(|c| c.len() == n)
            .ok_or_else(|| bad("counts"))?;
        h.weights = sums("weights")?;
        h.weights2 = sums("weights2")?;
        h.underflow = count("underflow")?;
        h.overflow = count("overflow")?;
        h.nan = count("nan")?;
        h.weight_underflow = one("weight_underflow")?;
        h.weight_overflow = one("weight_overflow")?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_flows_and_exact_merge() {
        // 4 bins of 0.25 over [0, 1): 0.0 and 0.2 → bin 0, 0.25 → bin 1 (left edge belongs to
        // its bin), 0.999 → bin 3, 1.0 → overflow (the last edge is open), −0.1 → underflow
        let mut h = Hist::uniform("t", 4, 0.0, 1.0).unwrap();
        for (v, w) in [(0.0, 1.0f32), (0.2, 2.0), (0.25, 0.5), (0.999, 3.0), (1.0, 4.0), (-0.1, 5.0), (f64::NAN, 6.0)] {
            h.fill(v, w);
        }
        assert_eq!(h.counts, vec![2, 1, 0, 1]);
        assert_eq!((h.underflow, h.overflow, h.nan), (1, 1, 1));
        assert_eq!(h.weights[0].value(), 3.0);
        // errors: √(1² + 2²) = √5 in bin 0
        assert_eq!(h.to_json()["errors"][0].as_f64().unwrap(), 5f64.sqrt());
        // two halves merged equal the whole, and the JSON reads back
        let vals: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.618).fract() * 1.2 - 0.1).collect();
        let mut whole = Hist::uniform("t", 7, 0.0, 1.0).unwrap();
        let (mut a, mut b) = (whole.clone(), whole.clone());
        for (i, &v) in vals.iter().enumerate() {
            let w = 0.1 + i as f32 * 1e-3;
            whole.fill(v, w);
            if i % 3 == 0 {
                a.fill(v, w)
            } else {
                b.fill(v, w)
            }
        }
        b.merge(&a).unwrap();
        assert_eq!(b, whole);
        assert_eq!(Hist::from_json("h.json", &whole.to_json()).unwrap(), whole);
        let other = Hist::uniform("t", 3, 0.0, 1.0).unwrap();
        assert!(b.merge(&other).unwrap_err().to_string().contains("different edges"));
        assert!(Hist::new("t", vec![0.0, 0.0]).is_err());
        assert!(Hist::uniform("t", 3, 1.0, 0.0).is_err());
    }
}
