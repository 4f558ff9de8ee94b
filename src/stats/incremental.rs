//! Incremental population statistics for attacks that move one value at a time
//! (CONSERVAttack, `shared/guide/methods.md` §2):
//! - [`IncrementalJsd`]: a fixed-edge histogram (with flow bins) of a current sample against a
//!   fixed reference, taking add/remove/move updates in O(1) and giving the Jensen–Shannon
//!   distance after a tentative move in O(bins) without allocating;
//! - [`RunningMoments`] / [`CorrelationTracker`]: weighted first and second moments with
//!   rank-1 updates when one entry of one event changes (O(d)), the new correlation row in
//!   O(d), and the relative Frobenius change of the whole correlation matrix against a reference
//!   after a tentative change in O(d) (many tentative values of one entry share their setup
//!   through a [`Probe`]).
//!
//! Both equal a full recomputation (tests replay random seeded move sequences).
//!
//! ```
//! use nuisance::stats::binned::{Binning, FlowHist};
//! use nuisance::stats::incremental::IncrementalJsd;
//! let b = Binning { lo: 0.0, hi: 1.0, bins: 4 };
//! let r = FlowHist::fill(&b, &[0.1, 0.3, 0.6, 0.9], None);
//! let mut h = IncrementalJsd::new(b, &r.counts, &r.counts);
//! assert_eq!(h.jsd(), 0.0);
//! let after = h.jsd_if_moved(0.1, 0.35, 1.0); // tentative
//! h.move_value(0.1, 0.35, 1.0);
//! assert_eq!(h.jsd(), after);
//! ```

use ndarray::{Array2, ArrayView2};

use super::binned::Binning;
use crate::attack::metrics::JSD_FLOOR;

/// A current histogram against a fixed reference, for cheap Jensen–Shannon distances.
#[derive(Clone, Debug)]
pub struct IncrementalJsd {
    binning: Binning,
    /// Reference probabilities, normalised, floored and renormalised as in `js_distance`.
    q: Vec<f64>,
    /// Current Σw per bin (flow bins included).
    counts: Vec<f64>,
    /// Current total weight.
    total: f64,
}

impl IncrementalJsd {
    /// From reference and current per-bin weights (both of length `binning.len()`).
    pub fn new(binning: Binning, reference: &[f64], current: &[f64]) -> Self {
        let s: f64 = reference.iter().sum();
        let f: Vec<f64> = reference.iter().map(|x| (if s > 0.0 { x / s } else { 0.0 }).max(JSD_FLOOR)).collect();
        let t: f64 = f.iter().sum();
        IncrementalJsd {
            binning,
            q: f.into_iter().map(|x| x / t).collect(),
            counts: current.to_vec(),
            total: current.iter().sum(),
        }
    }

    /// Current per-bin weights.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    /// Adds an event of weight `w` at `v`.
    pub fn add(&mut self, v: f64, w: f64) {
        self.counts[self.binning.index(v)] += w;
        self.total += w;
    }

    /// Removes an event of weight `w` at `v`.
    pub fn remove(&mut self, v: f64, w: f64) {
        self.counts[self.binning.index(v)] -= w;
        self.total -= w;
    }

    /// Moves an event of weight `w` from `from` to `to`.
    pub fn move_value(&mut self, from: f64, to: f64, w: f64) {
        let (a, b) = (self.binning.index(from), self.binning.index(to));
        self.counts[a] -= w;
        self.counts[b] += w;
    }

    /// The distance now.
    pub fn jsd(&self) -> f64 {
        self.eval(usize::MAX, usize::MAX, 0.0)
    }

    /// The distance the histogram would have after moving an event of weight `w` from `from`
    /// to `to` (nothing changes). O(bins), no allocation.
    pub fn jsd_if_moved(&self, from: f64, to: f64, w: f64) -> f64 {
        let (a, b) = (self.binning.index(from), self.binning.index(to));
        if a == b {
            return self.jsd();
        }
        self.eval(a, b, w)
    }

    /// The change of the distance that moving an event of weight `w` from `from` to `to` would
    /// make (nothing changes). O(bins).
    pub fn delta_if_moved(&self, from: f64, to: f64, w: f64) -> f64 {
        self.jsd_if_moved(from, to, w) - self.jsd()
    }

    /// JSD with bin `a` lowered and bin `b` raised by `w`.
    fn eval(&self, a: usize, b: usize, w: f64) -> f64 {
        let c = |i: usize| {
            let mut x = self.counts[i];
            if i == a {
                x -= w;
            }
            if i == b {
                x += w;
            }
            x
        };
        let n = self.total;
        let p = |i: usize| (if n > 0.0 { c(i) / n } else { 0.0 }).max(JSD_FLOOR);
        let t: f64 = (0..self.counts.len()).map(p).sum();
        let mut s = 0.0;
        for (i, &q) in self.q.iter().enumerate() {
            let pi = p(i) / t;
            let m = (pi + q) / 2.0;
            s += pi * (pi / m).log2() + q * (q / m).log2();
        }
        (s / 2.0).max(0.0).sqrt()
    }
}

/// Weighted first and second moments of `d` features, kept around a fixed shift (the initial
/// means) so that the raw sums do not cancel catastrophically.
#[derive(Clone, Debug)]
pub struct RunningMoments {
    d: usize,
    shift: Vec<f64>,
    sw: f64,
    /// Σ w (x − shift).
    s: Vec<f64>,
    /// Σ w (x − shift)(x − shift)ᵀ, row-major d × d.
    m: Vec<f64>,
}

impl RunningMoments {
    /// Moments of the rows of `x` with optional event weights.
    pub fn new(x: ArrayView2<'_, f32>, w: Option<&[f32]>) -> Self {
        let (n, d) = x.dim();
        let wi = |i: usize| w.map_or(1.0, |w| f64::from(w[i]));
        let sw: f64 = (0..n).map(wi).sum();
        let mut shift = vec![0.0; d];
        if sw != 0.0 {
            for (i, row) in x.rows().into_iter().enumerate() {
                shift.iter_mut().zip(row).for_each(|(s, &v)| *s += wi(i) * f64::from(v) / sw);
            }
        }
        let mut r = RunningMoments { d, shift, sw: 0.0, s: vec![0.0; d], m: vec![0.0; d * d] };
        let mut buf = vec![0.0; d];
        for (i, row) in x.rows().into_iter().enumerate() {
            buf.iter_mut().zip(row).for_each(|(b, &v)| *b = f64::from(v));
            r.add_row(&buf, wi(i));
        }
        r
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Adds an event (its feature values) of weight `w`.
    pub fn add_row(&mut self, row: &[f64], w: f64) {
        self.sw += w;
        let d = self.d;
        for j in 0..d {
            let a = row[j] - self.shift[j];
            self.s[j] += w * a;
            let m = &mut self.m[j * d..(j + 1) * d];
            for ((m, &x), &s) in m.iter_mut().zip(row).zip(&self.shift) {
                *m += w * a * (x - s);
            }
        }
    }

    /// Removes an event of weight `w`.
    pub fn remove_row(&mut self, row: &[f64], w: f64) {
        self.add_row(row, -w);
    }

    /// Rank-1 update: the event `row` (values before the change) of weight `w` gets `new` in
    /// feature `j`. O(d).
    pub fn change(&mut self, row: &[f64], j: usize, new: f64, w: f64) {
        let d = self.d;
        let (a, b) = (row[j] - self.shift[j], new - self.shift[j]);
        self.s[j] += w * (b - a);
        for (k, (&x, &s)) in row.iter().zip(&self.shift).enumerate() {
            if k != j {
                let delta = w * (b - a) * (x - s);
                self.m[j * d + k] += delta;
                self.m[k * d + j] += delta;
            }
        }
        self.m[j * d + j] += w * (b * b - a * a);
    }

    /// Weighted mean of feature `j`.
    #[inline]
    pub fn mean(&self, j: usize) -> f64 {
        self.shift[j] + self.s[j] / self.sw
    }

    /// Total weight Σw.
    pub fn total_weight(&self) -> f64 {
        self.sw
    }

    /// Covariance entry (divisor Σw) of the current moments.
    #[inline]
    pub fn cov(&self, j: usize, k: usize) -> f64 {
        self.m[j * self.d + k] / self.sw - (self.s[j] / self.sw) * (self.s[k] / self.sw)
    }

    /// Covariance matrix (divisor Σw, as [`crate::data::Dataset::covariance`]).
    pub fn covariance(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.d, self.d), |(j, k)| self.cov(j, k))
    }

    /// Pearson correlation matrix (NaN rows/columns for constant features).
    pub fn correlation(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.d, self.d), |(j, k)| self.cov(j, k) / (self.cov(j, j) * self.cov(k, k)).sqrt())
    }

    /// Row `j` of the correlation matrix after the tentative [`RunningMoments::change`] (nothing
    /// changes), written to `out` (length d). O(d).
    pub fn corr_row_if_changed(&self, row: &[f64], j: usize, new: f64, w: f64, out: &mut [f64]) {
        let d = self.d;
        let (a, b) = (row[j] - self.shift[j], new - self.shift[j]);
        let sw = self.sw;
        let sj = self.s[j] + w * (b - a);
        let mj = sj / sw;
        let var_j = (self.m[j * d + j] + w * (b * b - a * a)) / sw - mj * mj;
        for k in 0..d {
            out[k] = if k == j {
                var_j / (var_j * var_j).sqrt()
            } else {
                let mjk = self.m[j * d + k] + w * (b - a) * (row[k] - self.shift[k]);
                let cov = mjk / sw - mj * (self.s[k] / sw);
                cov / (var_j * self.cov(k, k)).sqrt()
            };
        }
    }

    /// Row `j` of the current correlation matrix, into `out`.
    pub fn corr_row(&self, j: usize, out: &mut [f64]) {
        let vj = self.cov(j, j);
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.cov(j, k) / (vj * self.cov(k, k)).sqrt();
        }
    }
}

/// Squared difference of two correlation entries, 0 unless both are finite (constant features
/// are left out, as in [`crate::attack::metrics::correlation_change`]).
#[inline]
fn sq(c: f64, c0: f64) -> f64 {
    if c.is_finite() && c0.is_finite() {
        (c - c0) * (c - c0)
    } else {
        0.0
    }
}

/// Running moments of a current sample with the squared Frobenius distance of its correlation
/// matrix to a fixed reference matrix, updated in O(d) per changed entry.
#[derive(Clone, Debug)]
pub struct CorrelationTracker {
    moments: RunningMoments,
    reference: Array2<f64>,
    /// ‖C0‖²_F over finite entries.
    ref_norm2: f64,
    /// ‖C − C0‖²_F over entries finite in both.
    diff2: f64,
    buf_old: Vec<f64>,
    buf_new: Vec<f64>,
}

impl CorrelationTracker {
    /// Tracks `current` (moments of the current sample) against the reference correlation `c0`.
    pub fn new(current: RunningMoments, c0: Array2<f64>) -> Self {
        let d = current.dim();
        let ref_norm2 = c0.iter().filter(|v| v.is_finite()).map(|v| v * v).sum();
        let mut t = CorrelationTracker {
            moments: current,
            reference: c0,
            ref_norm2,
            diff2: 0.0,
            buf_old: vec![0.0; d],
            buf_new: vec![0.0; d],
        };
        t.refresh();
        t
    }

    /// Recomputes ‖C − C0‖² from the moments (O(d²)); removes any drift of the O(d) updates.
    pub fn refresh(&mut self) {
        let c = self.moments.correlation();
        self.diff2 = c.iter().zip(&self.reference).map(|(&a, &b)| sq(a, b)).sum();
    }

    /// The moments.
    pub fn moments(&self) -> &RunningMoments {
        &self.moments
    }

    /// `‖C − C0‖_F / ‖C0‖_F` now.
    pub fn relative_change(&self) -> f64 {
        (self.diff2.max(0.0) / self.ref_norm2).sqrt()
    }

    /// Change of ‖C − C0‖² when row/column `j` goes from `old` to `new` values.
    fn delta(&self, j: usize, old: &[f64], new: &[f64]) -> f64 {
        let mut d = 0.0;
        for k in 0..old.len() {
            let f = if k == j { 1.0 } else { 2.0 };
            let c0 = self.reference[[j, k]];
            d += f * (sq(new[k], c0) - sq(old[k], c0));
        }
        d
    }

    /// The relative change after the tentative change of entry `j` of event `row` (weight `w`)
    /// to `new`; nothing changes. O(d).
    pub fn relative_change_if(&mut self, row: &[f64], j: usize, new: f64, w: f64) -> f64 {
        let (mut old, mut nw) = (std::mem::take(&mut self.buf_old), std::mem::take(&mut self.buf_new));
        self.moments.corr_row(j, &mut old);
        self.moments.corr_row_if_changed(row, j, new, w, &mut nw);
        let d2 = self.diff2 + self.delta(j, &old, &nw);
        (self.buf_old, self.buf_new) = (old, nw);
        (d2.max(0.0) / self.ref_norm2).sqrt()
    }

    /// Prepares `probe` for many tentative changes of entry `j` of event `row` (weight `w`):
    /// everything that does not depend on the new value, once (O(d)). Valid until the tracker
    /// changes.
    pub fn probe(&self, row: &[f64], j: usize, w: f64, probe: &mut Probe) {
        let (m, d) = (&self.moments, self.moments.d);
        let sw = m.sw;
        probe.j = j;
        probe.w = w;
        probe.a = row[j] - m.shift[j];
        probe.drow.clear();
        probe.drow.extend(row.iter().zip(&m.shift).map(|(x, s)| x - s));
        probe.sk.clear();
        probe.sk.extend(m.s.iter().map(|s| s / sw));
        probe.vk.clear();
        probe.vk.extend((0..d).map(|k| m.cov(k, k)));
        probe.old.resize(d, 0.0);
        m.corr_row(j, &mut probe.old);
        probe.sq_old.clear();
        probe.sq_old.extend((0..d).map(|k| sq(probe.old[k], self.reference[[j, k]])));
        probe.new.resize(d, 0.0);
    }

    /// [`CorrelationTracker::relative_change_if`] for the change `probe` was prepared for, with
    /// the new value `new`: the same numbers, bit for bit, in O(d) without the row's setup.
    pub fn relative_change_probed(&self, probe: &mut Probe, new: f64) -> f64 {
        let m = &self.moments;
        let (d, j, w, a) = (m.d, probe.j, probe.w, probe.a);
        let b = new - m.shift[j];
        let sw = m.sw;
        let sj = m.s[j] + w * (b - a);
        let mj = sj / sw;
        let var_j = (m.m[j * d + j] + w * (b * b - a * a)) / sw - mj * mj;
        // The expressions of RunningMoments::corr_row_if_changed, with the row's parts hoisted.
        for k in 0..d {
            probe.new[k] = if k == j {
                var_j / (var_j * var_j).sqrt()
            } else {
                let mjk = m.m[j * d + k] + w * (b - a) * probe.drow[k];
                let cov = mjk / sw - mj * probe.sk[k];
                cov / (var_j * probe.vk[k]).sqrt()
            };
        }
        // The expressions of CorrelationTracker::delta.
        let mut dl = 0.0;
        for k in 0..d {
            let f = if k == j { 1.0 } else { 2.0 };
            dl += f * (sq(probe.new[k], self.reference[[j, k]]) - probe.sq_old[k]);
        }
        ((self.diff2 + dl).max(0.0) / self.ref_norm2).sqrt()
    }

    /// Applies the change of entry `j` of event `row` (values before) to `new`. O(d).
    pub fn apply(&mut self, row: &[f64], j: usize, new: f64, w: f64) {
        let (mut old, mut nw) = (std::mem::take(&mut self.buf_old), std::mem::take(&mut self.buf_new));
        self.moments.corr_row(j, &mut old);
        self.moments.change(row, j, new, w);
        self.moments.corr_row(j, &mut nw);
        self.diff2 += self.delta(j, &old, &nw);
        (self.buf_old, self.buf_new) = (old, nw);
    }
}

/// The parts of a tentative change of one entry that do not depend on the new value
/// ([`CorrelationTracker::probe`]); reusable buffers.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    j: usize,
    w: f64,
    /// row[j] − shift[j].
    a: f64,
    /// row − shift.
    drow: Vec<f64>,
    /// Σw(x − shift) / Σw per feature.
    sk: Vec<f64>,
    /// Variance per feature.
    vk: Vec<f64>,
    /// Correlation row j now, its squared differences to the reference, the row after.
    old: Vec<f64>,
    sq_old: Vec<f64>,
    new: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::metrics::js_distance;
    use crate::data::Dataset;
    use crate::rng::Stream;
    use crate::stats::binned::FlowHist;

    /// A seeded 300 × 4 sample with correlated columns and weights in [0.5, 1.5).
    fn sample(seed: u64) -> (Array2<f32>, Vec<f32>) {
        let mut r = Stream::new(seed, 0);
        let x = Array2::from_shape_fn((300, 4), |(_, j)| (r.uniform() * 2.0 - 1.0 + 0.3 * j as f64) as f32);
        let mut x2 = x.clone();
        for i in 0..300 {
            x2[[i, 1]] += 0.8 * x[[i, 0]];
            x2[[i, 3]] -= 0.5 * x[[i, 2]];
        }
        let w = (0..300).map(|_| (0.5 + r.uniform()) as f32).collect();
        (x2, w)
    }

    #[test]
    fn incremental_jsd_equals_full_recomputation() {
        let (x, w) = sample(7);
        let col: Vec<f32> = x.column(1).to_vec();
        let b = Binning::of_reference(&col, 20).unwrap();
        let reference = FlowHist::fill(&b, &col, Some(&w));
        let mut cur = col.clone();
        let mut alive = vec![true; cur.len()];
        let mut h = IncrementalJsd::new(b, &reference.counts, &reference.counts);
        let mut r = Stream::new(11, 0);
        for step in 0..2000 {
            let i = r.below(cur.len());
            let to = (r.uniform() * 4.0 - 1.5) as f32; // also leaves the range on both sides
            match step % 10 {
                0 if alive[i] => {
                    h.remove(f64::from(cur[i]), f64::from(w[i]));
                    alive[i] = false;
                }
                1 if !alive[i] => {
                    cur[i] = to;
                    h.add(f64::from(to), f64::from(w[i]));
                    alive[i] = true;
                }
                _ if alive[i] => {
                    let before = h.jsd();
                    let predicted = h.jsd_if_moved(f64::from(cur[i]), f64::from(to), f64::from(w[i]));
                    let delta = h.delta_if_moved(f64::from(cur[i]), f64::from(to), f64::from(w[i]));
                    assert!((before + delta - predicted).abs() < 1e-15);
                    h.move_value(f64::from(cur[i]), f64::from(to), f64::from(w[i]));
                    cur[i] = to;
                    assert!((predicted - h.jsd()).abs() < 1e-12);
                }
                _ => {}
            }
            if step % 97 == 0 || step == 1999 {
                // Full recomputation from the current sample.
                let (v, ww): (Vec<f32>, Vec<f32>) =
                    (0..cur.len()).filter(|&k| alive[k]).map(|k| (cur[k], w[k])).unzip();
                let full = FlowHist::fill(&b, &v, Some(&ww));
                let want = js_distance(&reference.counts, &full.counts);
                assert!((h.jsd() - want).abs() < 1e-9, "step {step}: {} vs {want}", h.jsd());
                for (a, c) in h.counts().iter().zip(&full.counts) {
                    assert!((a - c).abs() < 1e-9);
                }
            }
        }
        assert!(h.jsd() > 0.05, "the moves must have changed the distribution");
    }

    fn direct_correlation(x: &Array2<f32>, w: &[f32]) -> Array2<f64> {
        let names = (0..x.ncols()).map(|j| format!("c{j}")).collect();
        Dataset::new(names, x.clone(), None, Some(w.to_vec())).unwrap().correlation(true)
    }

    #[test]
    fn rank_one_correlation_updates_equal_full_recomputation() {
        let (x0, w) = sample(3);
        let c0 = direct_correlation(&x0, &w);
        let mut x = x0.clone();
        let mut t = CorrelationTracker::new(RunningMoments::new(x.view(), Some(&w)), c0.clone());
        assert!(t.relative_change() < 1e-12);
        let mut r = Stream::new(5, 0);
        let mut row = vec![0.0; 4];
        let mut probe = Probe::default();
        for step in 0..3000 {
            let (i, j) = (r.below(300), r.below(4));
            let new = f64::from((r.uniform() * 3.0 - 1.0) as f32);
            row.iter_mut().zip(x.row(i)).for_each(|(a, &b)| *a = f64::from(b));
            let predicted = t.relative_change_if(&row, j, new, f64::from(w[i]));
            // The probed form gives the same number, bit for bit, for several new values.
            t.probe(&row, j, f64::from(w[i]), &mut probe);
            for v in [new, new * 0.5 - 0.1, row[j]] {
                assert_eq!(t.relative_change_probed(&mut probe, v), t.relative_change_if(&row, j, v, f64::from(w[i])));
            }
            let mut nrow = vec![0.0; 4];
            t.moments().corr_row_if_changed(&row, j, new, f64::from(w[i]), &mut nrow);
            t.apply(&row, j, new, f64::from(w[i]));
            x[[i, j]] = new as f32;
            assert!((predicted - t.relative_change()).abs() < 1e-12);
            if step % 250 == 0 || step == 2999 {
                // f64 reference: the weighted Pearson matrix of the modified sample.
                let c = direct_correlation(&x, &w);
                let m = t.moments().correlation();
                for (a, b) in m.iter().zip(&c) {
                    assert!((a - b).abs() < 1e-9, "step {step}: {a} vs {b}");
                }
                for k in 0..4 {
                    assert!((nrow[k] - c[[j, k]]).abs() < 1e-9);
                }
                let d: f64 = c.iter().zip(&c0).map(|(a, b)| (a - b) * (a - b)).sum();
                let n: f64 = c0.iter().map(|a| a * a).sum();
                assert!((t.relative_change() - (d / n).sqrt()).abs() < 1e-9, "step {step}");
            }
        }
        assert!(t.relative_change() > 0.05);
    }

    #[test]
    fn add_and_remove_rows_match_direct_covariance() {
        let (x, w) = sample(9);
        let mut m = RunningMoments::new(x.slice(ndarray::s![..200, ..]), Some(&w[..200]));
        let mut row = vec![0.0; 4];
        for (xi, &wi) in x.rows().into_iter().zip(&w).skip(200) {
            row.iter_mut().zip(xi).for_each(|(a, &b)| *a = f64::from(b));
            m.add_row(&row, f64::from(wi));
        }
        for (xi, &wi) in x.rows().into_iter().zip(&w).take(50) {
            row.iter_mut().zip(xi).for_each(|(a, &b)| *a = f64::from(b));
            m.remove_row(&row, f64::from(wi));
        }
        let names = (0..4).map(|j| format!("c{j}")).collect();
        let rest =
            Dataset::new(names, x.slice(ndarray::s![50.., ..]).to_owned(), None, Some(w[50..].to_vec())).unwrap();
        for (a, b) in m.covariance().iter().zip(&rest.covariance(true)) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }
}
