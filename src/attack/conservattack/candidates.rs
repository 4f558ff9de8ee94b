//! The candidate values of one event: per feature, magnitudes (the grid or uniform draws) in
//! the gradient's direction, clipped to the bounds and projected, with their histogram slots;
//! drawn from the event's own stream, so independent of the thread count.

use super::options::{ConservConfig, Mode};
use super::tally::Tally;
use super::NO_OP;
use crate::attack::project::Rule;
use crate::rng::Stream;
use ndarray::ArrayView2;

/// One block's candidates, reused from block to block: per event `d × width` values and
/// slots (feature-major, `width` = the most candidates a feature can have), the number of
/// candidates per feature and the largest of them.
#[derive(Default)]
pub(super) struct BlockCands {
    pub(super) width: usize,
    pub(super) c: Vec<usize>,
    pub(super) n: Vec<usize>,
    pub(super) vals: Vec<f64>,
    pub(super) slots: Vec<u32>,
}

impl BlockCands {
    /// Room for `events` events of `d` features.
    pub(super) fn resize(&mut self, events: usize, d: usize, width: usize) {
        self.width = width;
        self.c.resize(events, 0);
        self.n.resize(events * d, 0);
        self.vals.resize(events * d * width, 0.0);
        self.slots.resize(events * d * width, 0);
    }

    /// Event `r` of the block.
    pub(super) fn event(&self, r: usize, d: usize) -> EventCands<'_> {
        let span = r * d * self.width..(r + 1) * d * self.width;
        EventCands {
            w: self.width,
            c: self.c[r],
            vals: &self.vals[span.clone()],
            slots: &self.slots[span],
            n: &self.n[r * d..(r + 1) * d],
        }
    }
}

/// One event's candidates: feature `j`'s candidate `k` at `j · w + k`; `c` slots per feature
/// are filled (the largest count of any feature).
pub(super) struct EventCands<'b> {
    pub(super) w: usize,
    pub(super) c: usize,
    pub(super) vals: &'b [f64],
    pub(super) slots: &'b [u32],
    /// Real candidates per feature (the rest are padding: the current value, never admissible).
    pub(super) n: &'b [usize],
}

/// What the candidate draws read: settings, bounds, projection rules, histogram slots.
pub(super) struct Gen<'a> {
    pub(super) cfg: &'a ConservConfig,
    pub(super) seed: u64,
    pub(super) d: usize,
    pub(super) x0: ArrayView2<'a, f32>,
    pub(super) lo: Vec<f64>,
    pub(super) hi: Vec<f64>,
    /// Projection rules per feature.
    pub(super) rules: Vec<Vec<Rule>>,
    /// Candidate slots per feature at most (the no-change candidate included).
    pub(super) max_grid: usize,
    /// The histograms' slot rule per feature (a copy of the tallies' edges).
    pub(super) slotters: Vec<Tally>,
}

impl Gen<'_> {
    /// The projection of value `v` of feature `j` of event `i`.
    #[inline]
    pub(super) fn project(&self, i: usize, j: usize, v: f64) -> f64 {
        let rules = &self.rules[j];
        if rules.is_empty() {
            return v;
        }
        let x0 = self.x0[[i, j]];
        let mut y = v as f32;
        for r in rules {
            match *r {
                Rule::Clip { lo, hi, .. } => y = y.clamp(lo, hi),
                Rule::Integer { .. } => y = y.round(),
                Rule::Sentinel { value, .. } => {
                    if x0 == value {
                        y = value
                    }
                }
                Rule::Frozen { .. } => y = x0,
            }
        }
        f64::from(y)
    }

    /// Candidates of event `i` (current values `row`) in the directions `dir`, for iteration
    /// `it`, from the event's own stream: feature `j`'s candidate `k` written at `j · w + k`
    /// of `vals` and `slots`, the count per feature to `n`; returns the largest count.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn candidates(
        &self,
        it: usize,
        i: usize,
        row: &[f64],
        dir: &[i8],
        vals: &mut [f64],
        slots: &mut [u32],
        n: &mut [usize],
    ) -> usize {
        let (d, cfg) = (self.d, self.cfg);
        let w = self.max_grid.max(1);
        let mut s = Stream::new(self.seed, ((it as u64) << 40) ^ i as u64);
        let nc = usize::from(cfg.use_no_change);
        // Candidates per feature (the grid's length differs between features).
        let mut steps = Vec::new();
        for j in 0..d {
            match cfg.num_candidates {
                Some(k) => n[j] = k + nc,
                None => {
                    let (step, minc) = if cfg.randomize_step {
                        let f = cfg.random_step_frac;
                        let r1 = 1.0 - f + 2.0 * f * s.uniform();
                        let r2 = 1.0 - f + 2.0 * f * s.uniform();
                        (cfg.step * r1, cfg.min_change * r2)
                    } else {
                        (cfg.step, cfg.min_change)
                    };
                    let bound = if dir[j] > 0 { self.hi[j] - row[j] } else { row[j] - self.lo[j] };
                    // numpy's arange(min_change, bound + step, step).
                    let len = ((bound + step - minc) / step).ceil();
                    let len = if len > 0.0 { (len as usize).min(self.max_grid - nc) } else { 0 };
                    n[j] = len + nc;
                    steps.push((step, minc));
                }
            }
        }
        let c = n.iter().copied().max().unwrap_or(0).max(1);
        let strict = cfg.mode == Mode::Strict;
        for j in 0..d {
            let (xj, lo, hi) = (row[j], self.lo[j], self.hi[j]);
            let sign = f64::from(dir[j]);
            let t = &self.slotters[j];
            let vj = &mut vals[j * w..j * w + c];
            let sj = &mut slots[j * w..j * w + c];
            let (a, b) = (cfg.min_change, hi - xj);
            let (step, minc) = steps.get(j).copied().unwrap_or((0.0, 0.0));
            let free = self.rules[j].is_empty();
            let x_slot = t.slot(xj) as u32;
            // Padding and the no-change candidate: the current value.
            for k in (0..nc.min(c)).chain(n[j].max(nc)..c) {
                vj[k] = xj;
                sj[k] = x_slot;
            }
            let real = nc.min(n[j])..n[j];
            // Magnitudes, then values (the reference stores its changes as float32), then slots.
            match cfg.num_candidates {
                Some(_) => vj[real.clone()].iter_mut().for_each(|v| *v = a + (b - a) * s.uniform()),
                None => {
                    for k in real.clone() {
                        vj[k] = minc + (k - nc) as f64 * step;
                    }
                }
            }
            for v in &mut vj[real.clone()] {
                *v = (xj + f64::from((sign * *v) as f32)).clamp(lo, hi);
                if strict {
                    *v = f64::from(*v as f32).clamp(lo, hi);
                }
            }
            for k in real {
                let v = vj[k];
                if !free {
                    let p = self.project(i, j, v);
                    if p == xj && v != xj {
                        // Projected back onto the current value: not a candidate.
                        vj[k] = xj;
                        sj[k] = NO_OP;
                        continue;
                    }
                    vj[k] = p;
                }
                sj[k] = t.slot(vj[k]) as u32;
            }
        }
        c
    }
}

/// Rounds up to a float32 value (for bounds).
pub(super) fn f32_up(v: f64) -> f64 {
    let f = v as f32;
    if f64::from(f) < v {
        // The next float32 up (f is finite: bounds are checked finite).
        f64::from(if f == 0.0 {
            f32::from_bits(1)
        } else if f > 0.0 {
            f32::from_bits(f.to_bits() + 1)
        } else {
            f32::from_bits(f.to_bits() - 1)
        })
    } else {
        f64::from(f)
    }
}

/// Rounds down to a float32 value.
pub(super) fn f32_down(v: f64) -> f64 {
    let f = v as f32;
    if f64::from(f) > v {
        f64::from(if f == 0.0 {
            -f32::from_bits(1)
        } else if f > 0.0 {
            f32::from_bits(f.to_bits() - 1)
        } else {
            f32::from_bits(f.to_bits() + 1)
        })
    } else {
        f64::from(f)
    }
}
