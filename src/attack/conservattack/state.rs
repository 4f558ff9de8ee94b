//! The running attack as an `optim::Solver`: one step per iteration — gradient directions,
//! one pass over the active events (candidates drawn in parallel, acceptance in event order),
//! the fooled check and freezing, the metrics.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::accept::{chunks, Ctx, Live, Scratch};
use super::candidates::{f32_down, f32_up, BlockCands, Gen};
use super::options::{ConservConfig, Mode, MAX_CANDIDATES};
use super::result::{corrcoef, IterationMetrics};
use super::tally::Tally;
use super::{BLOCK_VALUES, CLIP};
use crate::attack::project::{Projection, Rule};
use crate::error::{Error, Result};
use crate::model::{GradTarget, Model, Output};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::stats::incremental::{CorrelationTracker, RunningMoments};

/// The running attack.
pub(super) struct State<'a> {
    pub(super) cfg: &'a ConservConfig,
    pub(super) gen: Gen<'a>,
    pub(super) ctx: Ctx<'a>,
    pub(super) live: Live,
    pub(super) model: &'a dyn Model,
    pub(super) control: &'a Control,
    pub(super) n: usize,
    pub(super) d: usize,
    pub(super) labels: Vec<i64>,
    pub(super) correct: Vec<bool>,
    pub(super) frozen: Vec<bool>,
    pub(super) fooled_at: Vec<u32>,
    /// Clean histograms for the per-iteration metrics (reference's or the checks' binning).
    pub(super) metric_ref: Vec<Vec<f64>>,
    pub(super) corr0: Vec<f64>,
    pub(super) iterations: Vec<IterationMetrics>,
    pub(super) best: Option<usize>,
    pub(super) scratch: Scratch,
}

impl<'a> State<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        cfg: &'a ConservConfig,
        proj: &'a Projection,
        model: &'a dyn Model,
        x0: ArrayView2<'a, f32>,
        labels: Vec<i64>,
        class_before: &[i64],
        seed: u64,
        control: &'a Control,
    ) -> Result<Self> {
        let (n, d) = x0.dim();
        let strict = cfg.mode == Mode::Strict;
        let col = |j: usize| -> Vec<f64> { x0.column(j).iter().map(|&v| f64::from(v)).collect() };
        let mut lo = Vec::with_capacity(d);
        let mut hi = Vec::with_capacity(d);
        for j in 0..d {
            let c = col(j);
            let (mn, mx) = c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (l, h) = (cfg.min_values.as_ref().map_or(mn, |v| v[j]), cfg.max_values.as_ref().map_or(mx, |v| v[j]));
            if l > h {
                return Err(Error::arg(
                    "conservattack",
                    format!("feature {j}: min_values ({l}) is above max_values ({h})"),
                ));
            }
            // Strict outputs are float32 events: bounds rounded inwards to float32 values.
            let (l, h) = if strict { (f32_up(l), f32_down(h)) } else { (l, h) };
            lo.push(l);
            hi.push(h);
        }
        let span = lo.iter().zip(&hi).map(|(l, h)| h - l).fold(0.0, f64::max);
        let max_grid = match cfg.num_candidates {
            Some(k) => k,
            None => {
                let g = (span / (cfg.step * (1.0 - cfg.random_step_frac * f64::from(u8::from(cfg.randomize_step)))))
                    .ceil()
                    + 2.0;
                if g.is_nan() || g > MAX_CANDIDATES as f64 {
                    return Err(Error::arg(
                        "conservattack",
                        format!(
                            "a grid of step {} over a feature range of {span} has more than {MAX_CANDIDATES} candidates; raise step or set num_candidates",
                            cfg.step
                        ),
                    ));
                }
                g as usize
            }
        } + usize::from(cfg.use_no_change);
        let x: Vec<f64> = x0.iter().map(|&v| f64::from(v)).collect();
        let mut tallies = Vec::with_capacity(d);
        let mut metric_ref = Vec::with_capacity(d);
        for j in 0..d {
            let c = col(j);
            if strict {
                let cf: Vec<f32> = x0.column(j).to_vec();
                let t = Tally::strict(&cf, cfg.bins)?;
                metric_ref.push(t.c.clone());
                tallies.push(t);
            } else {
                let t = Tally::faithful(lo[j], hi[j], cfg.bins, &c, &c);
                // The reference's metric histograms the clean float64 sample: every event counts.
                metric_ref.push(t.c.clone());
                tallies.push(t);
            }
        }
        let moments = RunningMoments::new(x0, None);
        let corr0 = corrcoef(&x, n, d);
        let (tracker, ref_norm) = if strict {
            let c0 = moments.correlation();
            let norm = c0.iter().filter(|v| v.is_finite()).map(|v| v * v).sum::<f64>().sqrt();
            (Some(CorrelationTracker::new(moments.clone(), c0)), norm)
        } else {
            (None, 0.0)
        };
        let mut rules = vec![Vec::new(); d];
        for r in proj.rules() {
            let f = match *r {
                Rule::Clip { feature, .. }
                | Rule::Integer { feature }
                | Rule::Sentinel { feature, .. }
                | Rule::Frozen { feature } => feature,
            };
            rules[f].push(*r);
        }
        let correct: Vec<bool> = class_before.iter().zip(&labels).map(|(a, b)| a == b).collect();
        let slotters = tallies.clone();
        Ok(State {
            cfg,
            gen: Gen { cfg, seed, d, x0, lo, hi, rules, max_grid, slotters },
            ctx: Ctx { cfg, n, d, chunks: chunks(d, cfg.feature_chunks), ref_norm },
            live: Live { x, tallies, moments, tracker },
            model,
            control,
            n,
            d,
            frozen: correct.iter().map(|c| !c).collect(),
            correct,
            labels,
            fooled_at: vec![0; n],
            metric_ref,
            corr0,
            iterations: Vec::new(),
            best: None,
            scratch: Scratch::default(),
        })
    }

    /// The projection of value `v` of feature `j` of event `i`.
    #[inline]
    pub(super) fn project(&self, i: usize, j: usize, v: f64) -> f64 {
        self.gen.project(i, j, v)
    }

    /// Direction per (active event, feature): +1 where the gradient of the clipped
    /// cross-entropy is ≥ 0, −1 elsewhere.
    pub(super) fn directions(&self, active: &[usize]) -> Result<Vec<i8>> {
        let d = self.d;
        let xa = Array2::from_shape_fn((active.len(), d), |(r, j)| self.live.x[active[r] * d + j] as f32);
        let labels: Vec<i64> = active.iter().map(|&i| self.labels[i]).collect();
        let sigmoid = self.model.output() == Output::Sigmoid;
        let objective = |r: usize, z: &[f32], g: &mut [f32]| -> f32 {
            let y = labels[r] as usize;
            g.iter_mut().for_each(|v| *v = 0.0);
            if sigmoid {
                let p = 1.0 / (1.0 + (-z[0]).exp());
                if (CLIP..=1.0 - CLIP).contains(&p) {
                    g[0] = p - y as f32;
                }
                let py = if y == 1 { p } else { 1.0 - p };
                -py.clamp(CLIP, 1.0 - CLIP).ln()
            } else {
                let mx = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = z.iter().map(|v| (v - mx).exp()).collect();
                let s: f32 = e.iter().sum();
                let py = e[y] / s;
                if (CLIP..=1.0 - CLIP).contains(&py) {
                    for (k, gk) in g.iter_mut().enumerate() {
                        *gk = e[k] / s - f32::from(u8::from(k == y));
                    }
                }
                -py.clamp(CLIP, 1.0 - CLIP).ln()
            }
        };
        let gr = self.model.input_grad_and_scores(xa.view(), GradTarget::Custom(&objective))?;
        Ok(gr.grad.iter().map(|&g| if g >= 0.0 { 1 } else { -1 }).collect())
    }

    /// One pass over the active events, in blocks: the candidates of the next block are drawn
    /// (in parallel over its events) while the current block is scored and accepted in event
    /// order. Returns the values changed.
    pub(super) fn pass(&mut self, it: usize, active: &[usize], dir: &[i8]) -> usize {
        let d = self.d;
        let width = self.gen.max_grid.max(1);
        let per_event = d * width;
        let block = (BLOCK_VALUES / per_event).clamp(1, 512);
        let blocks: Vec<&[usize]> = active.chunks(block).collect();
        let (gen, ctx, live, scratch) = (&self.gen, &self.ctx, &mut self.live, &mut self.scratch);
        // Two candidate buffers: one scored while the other is drawn.
        let (mut cur, mut next) = (BlockCands::default(), BlockCands::default());
        let mut rows: Vec<f64> = Vec::with_capacity(block * d);
        let draw = |b: usize, rows: &[f64], out: &mut BlockCands| {
            let base = b * block;
            let ids = blocks[b];
            out.resize(ids.len(), d, width);
            out.vals
                .par_chunks_mut(per_event)
                .zip(out.slots.par_chunks_mut(per_event))
                .zip(out.n.par_chunks_mut(d))
                .zip(out.c.par_iter_mut())
                .enumerate()
                .for_each(|(r, (((vals, slots), n), c))| {
                    let e = base + r;
                    *c =
                        gen.candidates(it, ids[r], &rows[r * d..(r + 1) * d], &dir[e * d..(e + 1) * d], vals, slots, n);
                });
        };
        let rows_of = |live: &Live, b: usize, rows: &mut Vec<f64>| {
            rows.clear();
            for &i in blocks.get(b).copied().unwrap_or(&[]) {
                rows.extend_from_slice(&live.x[i * d..(i + 1) * d]);
            }
        };
        let mut changed = 0;
        if !blocks.is_empty() {
            rows_of(live, 0, &mut rows);
            draw(0, &rows, &mut next);
        }
        for b in 0..blocks.len() {
            if self.control.interrupted() {
                break;
            }
            std::mem::swap(&mut cur, &mut next);
            // The next block's events are not touched by this block's acceptance.
            rows_of(live, b + 1, &mut rows);
            let (cands, rows_next, next_buf) = (&cur, &rows, &mut next);
            let ((), n) = rayon::join(
                || {
                    if b + 1 < blocks.len() {
                        draw(b + 1, rows_next, next_buf)
                    }
                },
                || {
                    let mut n = 0;
                    for (r, &i) in blocks[b].iter().enumerate() {
                        let ev = cands.event(r, d);
                        n += match ctx.cfg.mode {
                            Mode::Faithful => ctx.accept_faithful(live, scratch, i, &ev),
                            Mode::Strict => ctx.accept_strict(live, scratch, i, &ev),
                        };
                    }
                    n
                },
            );
            changed += n;
        }
        changed
    }

    /// Predicted classes of events `ids` at their current values.
    pub(super) fn classes(&self, ids: &[usize]) -> Result<Vec<i64>> {
        let d = self.d;
        let xa = Array2::from_shape_fn((ids.len(), d), |(r, j)| self.live.x[ids[r] * d + j] as f32);
        self.model.predict_class(xa.view())
    }
}

impl Solver for State<'_> {
    fn name(&self) -> &'static str {
        "conservattack"
    }

    fn step(&mut self, it: usize) -> Result<Kv> {
        let active: Vec<usize> = (0..self.n).filter(|&i| !self.frozen[i]).collect();
        let dir = if active.is_empty() { Vec::new() } else { self.directions(&active)? };
        let accepted = self.pass(it, &active, &dir);
        if !active.is_empty() {
            let cls = self.classes(&active)?;
            for (&i, c) in active.iter().zip(cls) {
                if c != self.labels[i] {
                    self.frozen[i] = true;
                    self.fooled_at[i] = it as u32 + 1;
                }
            }
        }
        if self.cfg.optimize_already_fooled {
            self.optimize_fooled()?;
        }
        if let Some(t) = self.live.tracker.as_mut() {
            t.refresh();
        }
        let (jsd, rel) = self.metrics();
        let correct = self.correct.iter().filter(|c| **c).count();
        let fooled = (0..self.n).filter(|&i| self.fooled_at[i] > 0).count();
        let ratio = if correct > 0 { fooled as f64 / correct as f64 } else { f64::NAN };
        let m = IterationMetrics {
            active: active.len(),
            fooling_ratio: ratio,
            within_constraints: false,
            jsd,
            rel_corr_change: rel,
            accepted,
        };
        let within = m.max_jsd() < self.cfg.constraint_jsd && rel < self.cfg.constraint_rel_corr;
        let m = IterationMetrics { within_constraints: within, ..m };
        if self.cfg.track_best_constraint_iter
            && within
            && self.best.is_none_or(|b| m.fooling_ratio > self.iterations[b].fooling_ratio)
        {
            self.best = Some(self.iterations.len());
        }
        let kv = vec![("fooling_ratio", m.fooling_ratio), ("max_jsd", m.max_jsd()), ("rel_corr_change", rel)];
        self.iterations.push(m);
        Ok(kv)
    }

    fn stop(&self) -> Option<Stop> {
        (0..self.n).all(|i| self.frozen[i]).then_some(Stop::TargetReached)
    }
}
