//! RDSA's rounds of tries, batched: an optimizer-framework solver whose step gives every event
//! that has not flipped yet `T` more tries, generated inside the fused forward pass.

use ndarray::{Array2, ArrayView1};
use rayon::prelude::*;

use super::{Marginal, Rdsa, SubsetDraw, TARGET_ROWS};
use crate::error::Result;
use crate::model::Model;
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng::{substream, Stream};

/// The rounds of tries as an optimizer-framework solver (one step = one round).
pub(super) struct Rounds<'a> {
    rdsa: &'a Rdsa,
    model: &'a dyn Model,
    /// The attacked events, row-major `n × d`.
    x0: &'a [f32],
    d: usize,
    class_before: &'a [i64],
    group: Vec<usize>,
    seed: u64,
    /// The fixed subset of each event (`PerEvent` with a random `k`), `n × k` flat.
    subsets: Vec<usize>,
    /// Chosen try of each event (first flip, else the latest).
    pub(super) x: Array2<f32>,
    pub(super) logits: Array2<f32>,
    /// Tries used per event.
    pub(super) tries: Vec<u32>,
    /// The try (1-based) that first flipped.
    pub(super) flip_at: Vec<Option<u32>>,
    active: Vec<usize>,
    control: Control,
    pub(super) total_tries: u64,
    pub(super) flipping_tries: u64,
}

/// What one event's tries of a round gave.
pub(super) struct Outcome {
    first_flip: Option<usize>,
    flips: u32,
    evaluated: u32,
}

/// Reusable buffers of [`Rounds::generate`]: the subset pool and the planned empirical draws
/// (position in the rows, the reference values, the index drawn).
#[derive(Default)]
struct Scratch<'a> {
    pool: Vec<usize>,
    plan: Vec<(usize, &'a [f32], usize)>,
}

/// Stream index of an event's subset draw (its tries use streams 0, 1, 2, …).
const SUBSET_STREAM: u64 = u64::MAX;

/// Rows per forward pass at most (bounds the memory of a round).
const MAX_ROWS: usize = 262_144;

impl<'a> Rounds<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        rdsa: &'a Rdsa,
        model: &'a dyn Model,
        x0: &'a [f32],
        d: usize,
        class_before: &'a [i64],
        group: Vec<usize>,
        control: &Control,
        seed: u64,
    ) -> Self {
        let n = class_before.len();
        let k = rdsa.cfg.k;
        let fixed_random = rdsa.cfg.features.is_none() && rdsa.cfg.subset == SubsetDraw::PerEvent;
        let mut subsets = Vec::new();
        let first = rdsa.first_event;
        if fixed_random {
            subsets = vec![0; n * k];
            subsets.par_chunks_mut(k).enumerate().for_each_init(Vec::new, |pool, (i, dst)| {
                let mut s = Stream::new(substream(seed, first + i as u64), SUBSET_STREAM);
                draw_subset(&rdsa.candidates, k, &mut s, pool);
                dst.copy_from_slice(&pool[..k]);
            });
        }
        let x = Array2::from_shape_vec((n, d), x0.to_vec()).unwrap_or_else(|_| Array2::zeros((n, d)));
        Rounds {
            rdsa,
            model,
            x0,
            d,
            class_before,
            group,
            seed,
            subsets,
            x,
            logits: Array2::zeros((n, model.n_outputs())),
            tries: vec![0; n],
            flip_at: vec![None; n],
            active: (0..n).collect(),
            control: control.clone(),
            total_tries: 0,
            flipping_tries: 0,
        }
    }

    /// Tries per event this round: all remaining ones without early stopping, else enough to
    /// fill a forward pass.
    fn tries_per_round(&self, remaining: usize) -> usize {
        if !self.rdsa.cfg.stop_at_flip {
            return remaining;
        }
        TARGET_ROWS.div_ceil(self.active.len().max(1)).clamp(1, remaining)
    }

    /// Writes try `tries[r]` (0-based) of event `events[r]` into row `r` of `rows` (`r·d`
    /// values). Each try draws from its own stream `(seed, i, t)`, so any try can be
    /// regenerated and the batching does not matter. Empirical draws are planned first and
    /// gathered in one tight loop, so their cache misses overlap.
    fn generate<'s>(&'s self, rows: &mut [f32], who: impl Fn(usize) -> (usize, u32), scratch: &mut Scratch<'s>) {
        let (cfg, d) = (&self.rdsa.cfg, self.d);
        scratch.plan.clear();
        for (r, row) in rows.chunks_exact_mut(d).enumerate() {
            let (i, t) = who(r);
            let x0 = &self.x0[i * d..(i + 1) * d];
            let margs = &self.rdsa.marginals[self.group[i]];
            let mut s = Stream::new(substream(self.seed, self.rdsa.first_event + i as u64), u64::from(t));
            row.copy_from_slice(x0);
            let chosen: &[usize] = match (&cfg.features, cfg.subset) {
                (Some(list), _) => list,
                (None, SubsetDraw::PerEvent) => &self.subsets[i * cfg.k..(i + 1) * cfg.k],
                (None, SubsetDraw::PerTry) => {
                    draw_subset(&self.rdsa.candidates, cfg.k, &mut s, &mut scratch.pool);
                    &scratch.pool[..cfg.k]
                }
            };
            for &j in chosen {
                let Some(m) = &margs[j] else { continue };
                match &self.rdsa.layout {
                    // An object feature: one draw for each real object of the event.
                    Some(l) if j >= l.n_event() => {
                        for slot in 0..l.count(x0) {
                            let c = l.slot_column(slot, j - l.n_event());
                            match m {
                                Marginal::Empirical { values } => {
                                    scratch.plan.push((r * d + c, values, s.below(values.len())))
                                }
                                m => row[c] = m.sample(&mut s),
                            }
                        }
                    }
                    _ => match m {
                        Marginal::Empirical { values } => scratch.plan.push((r * d + j, values, s.below(values.len()))),
                        m => row[j] = m.sample(&mut s),
                    },
                }
            }
        }
        for &(at, values, k) in &scratch.plan {
            rows[at] = values[k];
        }
        if !self.rdsa.proj.is_empty() {
            for (r, row) in rows.chunks_exact_mut(d).enumerate() {
                let i = who(r).0;
                self.rdsa.proj.apply_row(&self.x0[i * d..(i + 1) * d], row);
            }
        }
    }

    /// `t` tries for each event of `chunk` in one fused pass (rows generated inside the
    /// forward pass); returns each event's outcome and the logits of every try.
    fn run_chunk(&self, chunk: &[usize], t: usize) -> Result<(Vec<Outcome>, Array2<f32>)> {
        let logits = self.model.logits_with(chunk.len() * t, &|first, rows| {
            let who = |r: usize| {
                let i = chunk[(first + r) / t];
                (i, self.tries[i] + ((first + r) % t) as u32)
            };
            self.generate(rows, who, &mut Scratch::default());
        })?;
        let classes = self.model.classes_from_logits(&logits);
        let stop = self.rdsa.cfg.stop_at_flip;
        let outcomes = chunk
            .iter()
            .zip(classes.chunks(t))
            .map(|(&i, c)| {
                let flipped = |k: &usize| c[*k] != self.class_before[i];
                let first_flip = (0..t).find(flipped);
                let evaluated = match (stop, first_flip) {
                    (true, Some(f)) => f + 1,
                    _ => t,
                };
                let flips = (0..evaluated).filter(flipped).count() as u32;
                Outcome { first_flip, flips, evaluated: evaluated as u32 }
            })
            .collect();
        Ok((outcomes, logits))
    }

    /// Books one event's round: its chosen try (unless an earlier round already flipped it),
    /// the tries used and the flips counted.
    fn record(&mut self, i: usize, o: &Outcome, t: usize, logits: ArrayView1<'_, f32>, row: &mut Vec<f32>) {
        if self.flip_at[i].is_none() {
            let pick = o.first_flip.unwrap_or(t - 1);
            row.resize(self.d, 0.0);
            let t0 = self.tries[i] + pick as u32;
            self.generate(row, |_| (i, t0), &mut Scratch::default());
            self.x.row_mut(i).assign(&ArrayView1::from(&row[..]));
            self.logits.row_mut(i).assign(&logits);
            self.flip_at[i] = o.first_flip.map(|f| self.tries[i] + f as u32 + 1);
        }
        self.tries[i] += o.evaluated;
        self.total_tries += u64::from(o.evaluated);
        self.flipping_tries += u64::from(o.flips);
    }
}

/// A uniformly random `k`-subset of `from` as `pool[..k]` (partial Fisher–Yates on a copy).
fn draw_subset(from: &[usize], k: usize, s: &mut Stream, pool: &mut Vec<usize>) {
    pool.clear();
    pool.extend_from_slice(from);
    let m = from.len();
    for a in 0..k.min(m) {
        let b = a + s.below(m - a);
        pool.swap(a, b);
    }
}

impl Solver for Rounds<'_> {
    fn name(&self) -> &'static str {
        "rdsa"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let steps = self.rdsa.cfg.steps;
        let done = self.active.first().map_or(steps, |&i| self.tries[i] as usize);
        let t = self.tries_per_round(steps - done);
        let per_chunk = (MAX_ROWS / t).max(1);
        let active = std::mem::take(&mut self.active);
        let mut still = Vec::with_capacity(active.len());
        let mut row = Vec::new();
        for (c, chunk) in active.chunks(per_chunk).enumerate() {
            let run = self.control.check().and_then(|()| self.run_chunk(chunk, t));
            let (outcomes, logits) = match run {
                Ok(r) => r,
                Err(e) => {
                    // Unprocessed events keep their state; the run ends as interrupted (or
                    // with the model's error).
                    still.extend(active[c * per_chunk..].iter().copied());
                    self.active = still;
                    return Err(e);
                }
            };
            for (c, (&i, o)) in chunk.iter().zip(&outcomes).enumerate() {
                let pick = o.first_flip.unwrap_or(t - 1);
                self.record(i, o, t, logits.row(c * t + pick), &mut row);
                if self.flip_at[i].is_none() && (self.tries[i] as usize) < steps {
                    still.push(i);
                }
            }
        }
        self.active = still;
        let flipped = self.flip_at.iter().filter(|f| f.is_some()).count();
        Ok(vec![("tries", (done + t) as f64), ("flipped", flipped as f64 / self.flip_at.len() as f64)])
    }

    fn stop(&self) -> Option<Stop> {
        if !self.active.is_empty() {
            return None;
        }
        Some(if self.flip_at.iter().all(Option::is_some) { Stop::TargetReached } else { Stop::MaxIters })
    }
}
