//! The reference's `optimize_fooled_samples`: after each pass, fooled events move within
//! ±5 steps when that lowers both their JSD and correlation change and they stay fooled.

use ndarray::Array2;

use super::state::State;
use super::tally::Tally;
use super::Mode;
use crate::attack::metrics::JSD_FLOOR;
use crate::error::Result;
use crate::stats::incremental::CorrelationTracker;

impl State<'_> {
    /// The reference's `optimize_fooled_samples` (window ±5 steps, 11 values, a value taken when
    /// the event stays fooled and both the JSD and the correlation change are strictly lower than
    /// the best so far). Faithful: both measured against the current sample; strict: against the
    /// clean sample, starting from the current value's (so only reductions are taken).
    pub(super) fn optimize_fooled(&mut self) -> Result<()> {
        let (d, n) = (self.d, self.n);
        let fooled: Vec<usize> = (0..n).filter(|&i| self.fooled_at[i] > 0).collect();
        let strict = self.cfg.mode == Mode::Strict;
        for (count, &i) in fooled.iter().enumerate() {
            if count % 256 == 0 && self.control.interrupted() {
                break;
            }
            for j in 0..d {
                let cur = self.live.x[i * d + j];
                let (a, b) =
                    ((cur - 5.0 * self.cfg.step).max(self.gen.lo[j]), (cur + 5.0 * self.cfg.step).min(self.gen.hi[j]));
                let window: Vec<f64> = (0..11)
                    .map(|k| {
                        let v = if k == 10 { b } else { a + (b - a) * k as f64 / 10.0 };
                        let v = if strict { f64::from(v as f32).clamp(self.gen.lo[j], self.gen.hi[j]) } else { v };
                        self.project(i, j, v)
                    })
                    .collect();
                let rows = Array2::from_shape_fn((11, d), |(k, f)| {
                    if f == j {
                        window[k] as f32
                    } else {
                        self.live.x[i * d + f] as f32
                    }
                });
                let cls = self.model.predict_class(rows.view())?;
                let row: Vec<f64> = self.live.x[i * d..(i + 1) * d].to_vec();
                let from = self.live.tallies[j].slot(cur);
                let mut best: Option<(f64, f64)> = None;
                let mut best_v = cur;
                if strict {
                    let t = self.live.tracker.as_ref().map_or(0.0, CorrelationTracker::relative_change);
                    best = Some((self.live.tallies[j].jsd(), t));
                }
                for (k, &v) in window.iter().enumerate() {
                    if cls[k] == self.labels[i] {
                        continue;
                    }
                    let to = self.live.tallies[j].slot(v);
                    let (jv, fv) = if strict {
                        let t = self.live.tracker.as_mut().map_or(0.0, |t| t.relative_change_if(&row, j, v, 1.0));
                        (self.live.tallies[j].jsd_if_moved(from, to), t)
                    } else {
                        (self.move_jsd(j, from, to), self.move_corr(&row, j, v))
                    };
                    if best.is_none_or(|(bj, bf)| jv < bj && fv < bf) {
                        best = Some((jv, fv));
                        best_v = v;
                    }
                }
                if best_v != cur {
                    let to = self.live.tallies[j].slot(best_v);
                    self.live.tallies[j].apply(from, to);
                    if let Some(t) = self.live.tracker.as_mut() {
                        t.apply(&row, j, best_v, 1.0);
                    } else {
                        self.live.moments.change(&row, j, best_v, 1.0);
                    }
                    self.live.x[i * d + j] = best_v;
                }
            }
        }
        Ok(())
    }

    /// Faithful optimisation: JSD between the current histogram of feature `j` and the same
    /// with one event moved from slot `a` to `b` (densities floored at 1e-10).
    pub(super) fn move_jsd(&self, j: usize, a: usize, b: usize) -> f64 {
        if a == b {
            return 0.0;
        }
        let c = &self.live.tallies[j].c;
        let mut moved = c.clone();
        moved[a] -= 1.0;
        moved[b] += 1.0;
        let ones = Tally::from_parts(Vec::new(), None, c, 1.0, moved, 1.0, JSD_FLOOR);
        ones.jsd()
    }

    /// Faithful optimisation: `‖C' − C‖_F / ‖C‖_F` of the current sample when entry `j` of
    /// event `row` becomes `v`.
    pub(super) fn move_corr(&self, row: &[f64], j: usize, v: f64) -> f64 {
        let d = self.d;
        let mut old = vec![0.0; d];
        let mut new = vec![0.0; d];
        self.live.moments.corr_row(j, &mut old);
        self.live.moments.corr_row_if_changed(row, j, v, 1.0, &mut new);
        let c = self.live.moments.correlation();
        let norm: f64 = c.iter().filter(|v| v.is_finite()).map(|v| v * v).sum::<f64>().sqrt();
        let mut d2 = 0.0;
        for k in 0..d {
            let f = if k == j { 1.0 } else { 2.0 };
            d2 += f * (new[k] - old[k]) * (new[k] - old[k]);
        }
        d2.sqrt() / (norm + 1e-10)
    }
}
