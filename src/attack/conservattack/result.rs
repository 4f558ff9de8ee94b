//! What CONSERVAttack returns: the per-iteration metrics (fooling ratio, per-feature JSD and
//! correlation change against the clean sample, recomputed from the current sample) and the
//! attacked events.

use super::state::State;
use super::tally::Tally;
use super::Mode;
use crate::attack::metrics::JSD_FLOOR;
use crate::attack::result::AttackResult;

/// What one iteration did.
#[derive(Clone, Debug, PartialEq)]
pub struct IterationMetrics {
    /// Events attacked in this iteration (not fooled before it).
    pub active: usize,
    /// Fooled events among the originally correct ones, after the iteration.
    pub fooling_ratio: f64,
    /// Per feature, the Jensen–Shannon distance (base 2) of the adversarial histogram to the
    /// clean one.
    pub jsd: Vec<f64>,
    /// `‖C_adv − C_clean‖_F / ‖C_clean‖_F`.
    pub rel_corr_change: f64,
    /// Feature values changed in this iteration.
    pub accepted: usize,
    /// `max jsd < constraint_jsd` and `rel_corr_change < constraint_rel_corr`.
    pub within_constraints: bool,
}

impl IterationMetrics {
    /// Largest per-feature JSD.
    pub fn max_jsd(&self) -> f64 {
        self.jsd.iter().copied().fold(0.0, f64::max)
    }
}

/// The attacked events with the per-iteration record.
#[derive(Clone, Debug)]
pub struct ConservResult {
    /// Perturbed events and per-event outputs.
    pub attack: AttackResult,
    /// One entry per iteration run.
    pub iterations: Vec<IterationMetrics>,
    /// With `track_best_constraint_iter`: the iteration (0-based) of highest fooling ratio
    /// inside the constraints (the first of equals), if any.
    pub best: Option<usize>,
    /// Per event, the iteration (1-based) after which it was fooled and frozen; 0 if never.
    pub fooled_at: Vec<u32>,
    /// Events the model classified correctly before the attack (the fooling ratio's base).
    pub correct: usize,
}

/// Pearson correlation of the rows of `x` (`n × d`, row-major), two-pass in f64.
pub(super) fn corrcoef(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0; d * d];
    for row in x.chunks_exact(d) {
        for j in 0..d {
            let a = row[j] - mean[j];
            for k in j..d {
                cov[j * d + k] += a * (row[k] - mean[k]);
            }
        }
    }
    let mut c = vec![0.0; d * d];
    for j in 0..d {
        for k in j..d {
            let v = cov[j * d + k] / (cov[j * d + j] * cov[k * d + k]).sqrt();
            c[j * d + k] = v;
            c[k * d + j] = v;
        }
    }
    c
}

impl State<'_> {
    /// Per-feature JSD and relative correlation change of the current sample against the clean one.
    pub(super) fn metrics(&self) -> (Vec<f64>, f64) {
        let (n, d) = (self.n, self.d);
        let strict = self.cfg.mode == Mode::Strict;
        let jsd = (0..d)
            .map(|j| {
                let t = &self.live.tallies[j];
                let mut cur = vec![0.0; t.c.len()];
                for i in 0..n {
                    cur[t.slot(self.live.x[i * d + j])] += 1.0;
                }
                if strict {
                    crate::attack::metrics::js_distance(&self.metric_ref[j], &cur)
                } else {
                    // Densities (count / (n · width)) floored at 1e-10, as the reference's metric.
                    let s = 1.0 / (n as f64 * (t.edges[1] - t.edges[0]));
                    Tally::from_parts(Vec::new(), None, &self.metric_ref[j], s, cur, s, JSD_FLOOR).jsd()
                }
            })
            .collect();
        let c = corrcoef(&self.live.x, n, d);
        let (mut num, mut den) = (0.0, 0.0);
        for (a, b) in self.corr0.iter().zip(&c) {
            if a.is_finite() && b.is_finite() {
                num += (b - a) * (b - a);
                den += a * a;
            }
        }
        let rel = if strict { (num / den).sqrt() } else { num.sqrt() / (den.sqrt() + 1e-10) };
        (jsd, rel)
    }
}
