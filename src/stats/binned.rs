//! Fixed-edge histograms with underflow and overflow bins, and the two binned comparisons of
//! the checks: Jensen–Shannon distance and χ².
//!
//! Binning (`shared/guide/methods.md` §2): `bins` equal-width bins over the reference sample's
//! `[min, max]` (its maximum in the last bin; a constant reference gets `[v − ½, v + ½]`),
//! plus an underflow and an overflow bin, so events of a candidate that leave the original
//! range still count. The JSD is base 2 on the `bins + 2` bins with the floor of
//! [`crate::attack::metrics::js_distance`].
//!
//! ```
//! use nuisance::stats::binned::{Binning, FlowHist};
//! let b = Binning::of_reference(&[0.0, 1.0], 2).unwrap();
//! let r = FlowHist::fill(&b, &[0.0, 1.0], None);
//! let c = FlowHist::fill(&b, &[0.9, 5.0], None); // 5.0 lands in the overflow bin
//! assert_eq!(c.counts, vec![0.0, 0.0, 1.0, 1.0]);
//! assert!(r.jsd(&c) > 0.5);
//! ```

use crate::attack::chi2_tail::Chi2Tail;
use crate::attack::metrics::js_distance;
use crate::error::{Error, Result};

/// Equal-width bins over `[lo, hi]` with flow bins: index 0 is the underflow, `1..=bins` the
/// range (hi included in the last bin), `bins + 1` the overflow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binning {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Number of in-range bins.
    pub bins: usize,
}

impl Binning {
    /// `bins` bins over `[min, max]` of the reference values (`[v − ½, v + ½]` if constant).
    pub fn of_reference(values: &[f32], bins: usize) -> Result<Binning> {
        if bins == 0 {
            return Err(Error::arg("checks", "bins must be at least 1, got 0"));
        }
        if values.is_empty() {
            return Err(Error::Empty { op: "checks", what: "the reference sample".into() });
        }
        let (mn, mx) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(f64::from(v)), b.max(f64::from(v))));
        if !(mn.is_finite() && mx.is_finite()) {
            return Err(Error::arg("checks", "the reference values must be finite"));
        }
        Ok(if mn == mx { Binning { lo: mn - 0.5, hi: mx + 0.5, bins } } else { Binning { lo: mn, hi: mx, bins } })
    }

    /// Number of bins including the two flow bins.
    pub fn len(&self) -> usize {
        self.bins + 2
    }

    /// Always false (there are at least the two flow bins); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin index of `v` (0 = underflow, `bins + 1` = overflow).
    #[inline]
    pub fn index(&self, v: f64) -> usize {
        if v < self.lo {
            0
        } else if v > self.hi {
            self.bins + 1
        } else {
            1 + (((v - self.lo) * (self.bins as f64 / (self.hi - self.lo))) as usize).min(self.bins - 1)
        }
    }
}

/// Sum of weights and of squared weights per bin, flow bins included (length `bins + 2`).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowHist {
    /// Σw per bin.
    pub counts: Vec<f64>,
    /// Σw² per bin.
    pub sumw2: Vec<f64>,
}

impl FlowHist {
    /// Histogram of `values` with optional `weights` (same length, checked by the caller).
    pub fn fill(b: &Binning, values: &[f32], weights: Option<&[f32]>) -> FlowHist {
        let mut h = FlowHist { counts: vec![0.0; b.len()], sumw2: vec![0.0; b.len()] };
        for (i, &v) in values.iter().enumerate() {
            let w = weights.map_or(1.0, |w| f64::from(w[i]));
            let k = b.index(f64::from(v));
            h.counts[k] += w;
            h.sumw2[k] += w * w;
        }
        h
    }

    /// Jensen–Shannon distance (base 2) to `other`, flow bins included.
    pub fn jsd(&self, other: &FlowHist) -> f64 {
        js_distance(&self.counts, &other.counts)
    }

    /// χ² comparison of two (weighted) histograms with [`chi2`].
    pub fn chi2(&self, other: &FlowHist) -> Chi2 {
        chi2(self, other)
    }
}

/// A χ² comparison of two histograms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chi2 {
    /// The χ² value.
    pub chi2: f64,
    /// Degrees of freedom: bins with an entry in either histogram, minus one.
    pub ndf: usize,
    /// `P(χ²_ndf > chi2)`.
    pub p_value: f64,
}

/// χ² of the normalised difference, over the bins (flow bins included) where either histogram
/// has an entry: `Σ (w₁ᵢ/W₁ − w₂ᵢ/W₂)² / (s₁ᵢ/W₁² + s₂ᵢ/W₂²)` with `W` the total weight and `s`
/// the Σw² per bin; `ndf` = those bins − 1 (the two normalisations are fixed). Without weights
/// and with equal totals it is the classic `Σ (n₁ᵢ − n₂ᵢ)² / (n₁ᵢ + n₂ᵢ)`.
pub fn chi2(a: &FlowHist, b: &FlowHist) -> Chi2 {
    let (wa, wb): (f64, f64) = (a.counts.iter().sum(), b.counts.iter().sum());
    let (mut x, mut used) = (0.0, 0usize);
    for i in 0..a.counts.len() {
        let var = a.sumw2[i] / (wa * wa) + b.sumw2[i] / (wb * wb);
        if var > 0.0 {
            let d = a.counts[i] / wa - b.counts[i] / wb;
            x += d * d / var;
            used += 1;
        }
    }
    let ndf = used.saturating_sub(1);
    Chi2 { chi2: x, ndf, p_value: Chi2Tail::new(ndf).sf(x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_hand_computed() {
        // In-range counts (10, 20, 30) against (20, 20, 20), no flows; totals 60 and 60.
        // Bin 1: (1/6 − 1/3)² / ((10 + 20)/3600) = 100/30; bin 2: 0; bin 3: (1/6)²/(50/3600) = 2.
        // χ² = 16/3 = 5.333…, ndf = 3 − 1 = 2, p = e^{−χ²/2} = e^{−8/3} = 0.069 483 95.
        let b = Binning { lo: 0.0, hi: 3.0, bins: 3 };
        let mut v1 = vec![0.5f32; 10];
        v1.extend(vec![1.5f32; 20]);
        v1.extend(vec![2.5f32; 30]);
        let v2: Vec<f32> = (0..60).map(|i| 0.5 + (i % 3) as f32).collect();
        let c = chi2(&FlowHist::fill(&b, &v1, None), &FlowHist::fill(&b, &v2, None));
        assert!((c.chi2 - 16.0 / 3.0).abs() < 1e-12, "{c:?}");
        assert_eq!(c.ndf, 2);
        assert!((c.p_value - (-8.0f64 / 3.0).exp()).abs() < 1e-12);
        // Classic formula Σ(n₁ − n₂)²/(n₁ + n₂) = 100/30 + 0 + 100/50 gives the same.
        assert!((c.chi2 - (100.0 / 30.0 + 2.0)).abs() < 1e-12);
    }

    #[test]
    fn weighted_chi2_uses_sumw2() {
        // One event of weight 2 in bin 1 and one of weight 1 in bin 2, against (1, 1) unweighted.
        // W₁ = 3, s₁ = (4, 1); W₂ = 2, s₂ = (1, 1).
        // bin 1: (2/3 − 1/2)² / (4/9 + 1/4); bin 2: (1/3 − 1/2)² / (1/9 + 1/4).
        let b = Binning { lo: 0.0, hi: 2.0, bins: 2 };
        let h1 = FlowHist::fill(&b, &[0.5, 1.5], Some(&[2.0, 1.0]));
        let h2 = FlowHist::fill(&b, &[0.5, 1.5], None);
        let want = (1.0f64 / 36.0) / (4.0 / 9.0 + 0.25) + (1.0 / 36.0) / (1.0 / 9.0 + 0.25);
        assert!((chi2(&h1, &h2).chi2 - want).abs() < 1e-12);
    }

    #[test]
    fn events_leaving_the_range_change_the_jsd() {
        // Reference uniform on [0, 1); the candidate is the same sample shifted by +0.5: half of
        // it lies above the reference maximum. Without flow bins those events would vanish and the
        // in-range part alone is just as uniform as the reference on [0.5, 1); with the overflow
        // bin the candidate puts half its mass where the reference has none.
        let r: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let c: Vec<f32> = r.iter().map(|v| v + 0.5).collect();
        let b = Binning::of_reference(&r, 10).unwrap();
        let (hr, hc) = (FlowHist::fill(&b, &r, None), FlowHist::fill(&b, &c, None));
        assert!((hc.counts[b.bins + 1] - 499.0).abs() < 1.5, "{:?}", hc.counts);
        // p = 1/10 on 10 bins (0 in overflow); q = 1/10 on bins 6..10 and 1/2 in overflow (the
        // reference's top bin holds 0.9..0.999, the shifted values 0.5..0.999 are bins 6-10).
        // Exact JSD with the computed histograms, via the definition:
        let tot = |h: &[f64]| h.iter().sum::<f64>();
        let (p, q): (Vec<f64>, Vec<f64>) = (
            hr.counts.iter().map(|x| x / tot(&hr.counts)).collect(),
            hc.counts.iter().map(|x| x / tot(&hc.counts)).collect(),
        );
        let mut s = 0.0;
        for (a, b) in p.iter().zip(&q) {
            let m = (a + b) / 2.0;
            if *a > 0.0 {
                s += a * (a / m).log2() / 2.0;
            }
            if *b > 0.0 {
                s += b * (b / m).log2() / 2.0;
            }
        }
        let j = hr.jsd(&hc);
        assert!((j - s.sqrt()).abs() < 1e-4, "{j} vs {}", s.sqrt());
        // Roughly half the mass is disjoint: JSD² ≈ ½ → JSD ≈ 0.71, far above the 0.06 threshold.
        assert!(j > 0.6);
        // The in-range bins alone would give a much smaller distance.
        let inner = js_distance(&hr.counts[1..=b.bins], &hc.counts[1..=b.bins]);
        assert!(inner < j - 0.1, "{inner} {j}");
    }

    #[test]
    fn binning_edges_and_flows() {
        let b = Binning::of_reference(&[2.0, 4.0], 2).unwrap();
        assert_eq!((b.index(1.9), b.index(2.0), b.index(3.0), b.index(4.0), b.index(4.1)), (0, 1, 2, 2, 3));
        let c = Binning::of_reference(&[3.0, 3.0], 4).unwrap();
        assert_eq!((c.lo, c.hi), (2.5, 3.5));
        assert!(Binning::of_reference(&[], 4).is_err());
        assert!(Binning::of_reference(&[1.0], 0).is_err());
    }
}
