//! Fixed-edge histograms of the current sample against the clean one, with the JSD of a
//! tentative one-event move in O(1): the reference's binning (faithful) or the checks' (strict).

use crate::attack::metrics::JSD_FLOOR;
use crate::error::Result;
use crate::stats::binned::{Binning, FlowHist};

/// Fixed-edge histogram of the current sample against a fixed reference, with the per-bin
/// terms of the Jensen–Shannon sum cached, so the distance after moving one event costs O(1)
/// (O(bins) only when the move empties a bin or fills an empty one, which changes the floor's
/// normalisation).
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    /// Faithful: in-range bins of the reference's edges; strict: the checks' binning.
    pub(super) edges: Vec<f64>,
    pub(super) binning: Option<Binning>,
    /// bins / (hi − lo), computed once (the expression of [`Binning::index`]).
    pub(super) factor: f64,
    /// Reference probabilities (floored and renormalised).
    pub(super) q: Vec<f64>,
    /// Current counts per slot.
    pub(super) c: Vec<f64>,
    /// Unnormalised probability of a count: max(c·scale, floor).
    pub(super) scale: f64,
    pub(super) m_floor: f64,
    pub(super) t: f64,
    pub(super) term: Vec<f64>,
    pub(super) plus: Vec<f64>,
    pub(super) minus: Vec<f64>,
    pub(super) s: f64,
}

impl Tally {
    pub(super) fn from_parts(
        edges: Vec<f64>,
        binning: Option<Binning>,
        reference: &[f64],
        ref_scale: f64,
        current: Vec<f64>,
        scale: f64,
        m_floor: f64,
    ) -> Tally {
        let qu: Vec<f64> = reference.iter().map(|&c| (c * ref_scale).max(JSD_FLOOR)).collect();
        let qs: f64 = qu.iter().sum();
        let k = current.len();
        let factor = match (&binning, edges.len()) {
            (Some(b), _) => b.bins as f64 / (b.hi - b.lo),
            (None, k) if k >= 2 => (k - 1) as f64 / (edges[k - 1] - edges[0]),
            _ => 0.0,
        };
        let mut t = Tally {
            edges,
            binning,
            factor,
            q: qu.into_iter().map(|v| v / qs).collect(),
            c: current,
            scale,
            m_floor,
            t: 1.0,
            term: vec![0.0; k],
            plus: vec![0.0; k],
            minus: vec![0.0; k],
            s: 0.0,
        };
        t.refresh();
        t
    }

    /// The reference's histograms: `edges` as numpy's `linspace(lo, hi, bins + 1)`, the clean
    /// values outside `[lo, hi]` dropped (numpy's histogram), densities floored at 1e-10.
    pub(crate) fn faithful(lo: f64, hi: f64, bins: usize, clean: &[f64], current: &[f64]) -> Tally {
        let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
        let step = (hi - lo) / bins as f64;
        let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
        edges[bins] = hi;
        let w = edges[1] - edges[0];
        let factor = bins as f64 / (hi - lo);
        let mut reference = vec![0.0; bins];
        let mut n_in = 0usize;
        for &v in clean {
            if v >= lo && v <= hi {
                reference[np_bin(&edges, factor, v)] += 1.0;
                n_in += 1;
            }
        }
        let mut cur = vec![0.0; bins];
        for &v in current {
            cur[np_bin(&edges, factor, v)] += 1.0;
        }
        let ref_scale = if n_in > 0 { 1.0 / (n_in as f64 * w) } else { 0.0 };
        let scale = 1.0 / (current.len().max(1) as f64 * w);
        Tally::from_parts(edges, None, &reference, ref_scale, cur, scale, JSD_FLOOR)
    }

    /// The checks' histograms ([`crate::stats::binned`]): `bins` bins over the clean range
    /// plus flow bins, probabilities floored as [`crate::attack::metrics::js_distance`].
    pub(crate) fn strict(clean: &[f32], bins: usize) -> Result<Tally> {
        let b = Binning::of_reference(clean, bins)?;
        let r = FlowHist::fill(&b, clean, None);
        let n = clean.len() as f64;
        Ok(Tally::from_parts(Vec::new(), Some(b), &r.counts, 1.0 / n, r.counts.clone(), 1.0 / n, 0.0))
    }

    /// The slot of value `v`.
    #[inline]
    pub(crate) fn slot(&self, v: f64) -> usize {
        match &self.binning {
            // Binning::index with its factor computed once.
            Some(b) => {
                if v < b.lo {
                    0
                } else if v > b.hi {
                    b.bins + 1
                } else {
                    1 + (((v - b.lo) * self.factor) as usize).min(b.bins - 1)
                }
            }
            None => np_bin(&self.edges, self.factor, v),
        }
    }

    #[inline]
    pub(super) fn unnorm(&self, c: f64) -> f64 {
        (c * self.scale).max(JSD_FLOOR)
    }

    #[inline]
    pub(super) fn term_at(&self, i: usize, c: f64, t: f64) -> f64 {
        let p = self.unnorm(c) / t;
        let q = self.q[i];
        let m = ((p + q) / 2.0).max(self.m_floor);
        p * (p / m).log2() + q * (q / m).log2()
    }

    pub(super) fn set_terms(&mut self, i: usize) {
        let c = self.c[i];
        self.term[i] = self.term_at(i, c, self.t);
        self.plus[i] = self.term_at(i, c + 1.0, self.t);
        self.minus[i] = if c >= 1.0 { self.term_at(i, c - 1.0, self.t) } else { f64::NAN };
    }

    /// Recomputes the normalisation and every cached term.
    pub(super) fn refresh(&mut self) {
        self.t = self.c.iter().map(|&c| self.unnorm(c)).sum();
        for i in 0..self.c.len() {
            self.set_terms(i);
        }
        self.s = self.term.iter().sum();
    }

    /// The distance now.
    pub(crate) fn jsd(&self) -> f64 {
        (self.s / 2.0).max(0.0).sqrt()
    }

    /// Whether moving a count from `a` to `b` keeps the floor's normalisation (neither or both
    /// of the bins cross the floor).
    #[inline]
    pub(super) fn same_norm(&self, a: usize, b: usize) -> bool {
        let crosses_a = (self.c[a] - 1.0) * self.scale <= JSD_FLOOR;
        let crosses_b = self.c[b] * self.scale <= JSD_FLOOR;
        crosses_a == crosses_b
    }

    /// The distance after moving one event from slot `a` to slot `b` (nothing changes).
    pub(crate) fn jsd_if_moved(&self, a: usize, b: usize) -> f64 {
        if a == b {
            return self.jsd();
        }
        let s = if self.same_norm(a, b) {
            self.s - self.term[a] - self.term[b] + self.minus[a] + self.plus[b]
        } else {
            let t = self.t - self.unnorm(self.c[a]) + self.unnorm(self.c[a] - 1.0) - self.unnorm(self.c[b])
                + self.unnorm(self.c[b] + 1.0);
            (0..self.c.len())
                .map(|i| {
                    let c = self.c[i] - f64::from(u8::from(i == a)) + f64::from(u8::from(i == b));
                    self.term_at(i, c, t)
                })
                .sum()
        };
        (s / 2.0).max(0.0).sqrt()
    }

    /// Moves one event from slot `a` to slot `b`.
    pub(crate) fn apply(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let same = self.same_norm(a, b);
        self.c[a] -= 1.0;
        self.c[b] += 1.0;
        if same {
            self.set_terms(a);
            self.set_terms(b);
            self.s = self.term.iter().sum();
        } else {
            self.refresh();
        }
    }

    /// Current counts per slot.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> &[f64] {
        &self.c
    }
}

/// numpy's bin of `v` for increasing `edges` (`[e_k, e_{k+1})`, the last bin closed), values
/// outside clamped to the first or last bin (the reference clips before binning).
#[inline]
pub(super) fn np_bin(edges: &[f64], factor: f64, v: f64) -> usize {
    let bins = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[bins]);
    if v <= lo || v.is_nan() {
        return 0;
    }
    if v >= hi {
        return bins - 1;
    }
    // A first guess from the width, corrected against the edges.
    let mut k = ((v - lo) * factor) as usize;
    k = k.min(bins - 1);
    while k > 0 && v < edges[k] {
        k -= 1;
    }
    while k + 1 < bins && v >= edges[k + 1] {
        k += 1;
    }
    k
}
