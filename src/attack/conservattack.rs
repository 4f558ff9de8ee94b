//! CONSERVAttack (Bechtle, Flek, Jung et al., arXiv 2603.13970; `shared/guide/methods.md` §2):
//! fool a classifier while the whole sample keeps its per-feature histograms and its
//! correlation matrix.
//!
//! Each iteration takes, for every event not yet fooled, the sign of the gradient of its
//! clipped cross-entropy (BCE for a sigmoid output, predictions clipped to [1e-7, 1 − 1e-7]
//! as Keras does, so a saturated event has gradient 0 and moves up), draws candidate
//! changes per feature in that direction (a grid `min_change, +step, …` up to the bound, or
//! `num_candidates` uniform magnitudes in `[min_change, max_j − x]`), clips them to the
//! feature's `[min, max]` (and the projection), and keeps per feature the admissible
//! candidate of lowest `α·JSD + β·corr`. After the pass over all events the model is
//! evaluated and the fooled events are frozen.
//!
//! Two modes:
//! - [`Mode::Faithful`] is the reference code (TSaala/CONSERVAttack `f16098e`,
//!   `shared/fixtures/conservattack/README.md`) with its quirks: the clean histograms drop
//!   values outside the given `[min, max]` (with the reference's float64 `min_values` /
//!   `max_values` over float32 data this reproduces its float32 histogram quirk), densities
//!   floored at 1e-10, the JSD cap is against the clean histogram but the correlation score is
//!   the reference's approximate row/column Frobenius change against the *current* sample (so
//!   the total drift is unbounded), every feature of an event is scored with candidate `c` of
//!   every other feature, all features' choices are applied together, and without
//!   `use_no_change` the first candidate is applied when none is admissible.
//! - [`Mode::Strict`]: both limits against the clean sample — a change is admissible only if
//!   afterwards the feature's JSD to the clean histogram (the binning of
//!   [`crate::stats::checks`]: `bins` bins over the clean range plus flow bins) is
//!   `≤ max_jsd_single_change` and `< constraint_jsd`, and the correlation matrix's change
//!   `‖C − C₀‖_F` is `≤ max_frob_single_change` with `‖C − C₀‖_F/‖C₀‖_F < constraint_rel_corr`.
//!   Features are changed one at a time, so every state of the sample passes; the output
//!   passes `checks(clean, adversarial, #{ bins })` with the same bins (unweighted).
//!
//! Work split: the gradients (the fused MLP, rayon over events), the candidate draws, clipping,
//! projection and histogram slots run in parallel over the events of a block (each event's
//! numbers come from its own `rng::Stream`, so they do not depend on the thread count). The
//! scoring and acceptance then run in event order, as the reference does: each event is scored
//! against the current state (histogram counts and running moments updated by the events before
//! it), in O(1) per candidate for the JSD (the per-bin terms of one move are cached) and O(d²)
//! for the correlation score, and its choice is applied before the next event. The result is
//! the reference's sequential semantics, identical for any number of threads.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::project::{Projection, Rule};
use super::result::{outputs, AttackResult};
use crate::attack::metrics::JSD_FLOOR;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Model, Output};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng::Stream;
use crate::stats::binned::{Binning, FlowHist};
use crate::stats::incremental::{CorrelationTracker, RunningMoments};

/// Most candidates per feature and event (a finer grid is refused: raise `step` or set
/// `num_candidates`).
pub const MAX_CANDIDATES: usize = 100_000;

/// The reference's prediction clip of its cross-entropy (Keras' epsilon).
const CLIP: f32 = 1e-7;

/// The slot of a candidate the projection put back onto the current value (never admissible).
const NO_OP: u32 = u32::MAX;

/// Candidate values held at once (events of a block × features × candidates).
const BLOCK_VALUES: usize = 1 << 21;

/// Which semantics the attack follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The reference code's behaviour, quirks included.
    Faithful,
    /// Both constraints against the clean sample: the output passes the checks.
    Strict,
}

/// Settings; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq)]
pub struct ConservConfig {
    /// Faithful or strict.
    pub mode: Mode,
    /// Passes over the events (reference `n_iterations`, 10).
    pub iterations: usize,
    /// Histogram bins per feature (reference `num_bins`, 100).
    pub bins: usize,
    /// Smallest candidate magnitude (0.003).
    pub min_change: f64,
    /// Grid step between candidate magnitudes (0.01).
    pub step: f64,
    /// Weight of the JSD in the cost (1).
    pub alpha: f64,
    /// Weight of the correlation score in the cost (1).
    pub beta: f64,
    /// JSD cap of a change (0.005).
    pub max_jsd_single_change: f64,
    /// Correlation-score cap of a change (0.005).
    pub max_frob_single_change: f64,
    /// A "no change" candidate, taken when nothing else is admissible (false).
    pub use_no_change: bool,
    /// Report the iteration of highest fooling ratio inside the constraints (false).
    pub track_best_constraint_iter: bool,
    /// Largest per-feature JSD of an accepted result (0.06).
    pub constraint_jsd: f64,
    /// Largest relative correlation change of an accepted result (0.006).
    pub constraint_rel_corr: f64,
    /// After each pass, move fooled events within ±5 steps to lower their distortion (false).
    pub optimize_already_fooled: bool,
    /// Jitter `step` and `min_change` per event and feature by ±`random_step_frac` (false).
    pub randomize_step: bool,
    /// Jitter fraction (0.2).
    pub random_step_frac: f64,
    /// Uniform random magnitudes instead of the grid (none).
    pub num_candidates: Option<usize>,
    /// Faithful mode: features split into this many independent chunks (the reference's
    /// `n_gpus`, 4; only for more than 2 features); the correlation score sees only its chunk.
    pub feature_chunks: usize,
    /// Per-feature lower bounds (histogram range and clip); default the events' minima.
    pub min_values: Option<Vec<f64>>,
    /// Per-feature upper bounds; default the events' maxima.
    pub max_values: Option<Vec<f64>>,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for ConservConfig {
    fn default() -> Self {
        ConservConfig {
            mode: Mode::Faithful,
            iterations: 10,
            bins: 100,
            min_change: 0.003,
            step: 0.01,
            alpha: 1.0,
            beta: 1.0,
            max_jsd_single_change: 0.005,
            max_frob_single_change: 0.005,
            use_no_change: false,
            track_best_constraint_iter: false,
            constraint_jsd: 0.06,
            constraint_rel_corr: 0.006,
            optimize_already_fooled: false,
            randomize_step: false,
            random_step_frac: 0.2,
            num_candidates: None,
            feature_chunks: 4,
            min_values: None,
            max_values: None,
            seed: 0,
        }
    }
}

impl ConservConfig {
    /// Checks the numbers (finite, in range) for `d` features.
    pub fn validate(&self, d: usize) -> Result<()> {
        let bad = |p: String| Err(Error::arg("conservattack", p));
        if self.bins == 0 || self.bins > crate::stats::checks::MAX_BINS {
            return bad(format!("bins must be in 1..={}, got {}", crate::stats::checks::MAX_BINS, self.bins));
        }
        for (k, v) in [
            ("min_change", self.min_change),
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("max_jsd_single_change", self.max_jsd_single_change),
            ("max_frob_single_change", self.max_frob_single_change),
            ("constraint_jsd", self.constraint_jsd),
            ("constraint_rel_corr", self.constraint_rel_corr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{k} must be a finite number ≥ 0, got {v}"));
            }
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad(format!("step must be a finite number > 0, got {}", self.step));
        }
        if !(0.0..1.0).contains(&self.random_step_frac) {
            return bad(format!("random_step_frac must be in [0, 1), got {}", self.random_step_frac));
        }
        if let Some(k) = self.num_candidates {
            if k == 0 || k > MAX_CANDIDATES {
                return bad(format!("num_candidates must be in 1..={MAX_CANDIDATES}, got {k}"));
            }
        }
        if self.feature_chunks == 0 {
            return bad("feature_chunks must be at least 1".into());
        }
        for (k, v) in [("min_values", &self.min_values), ("max_values", &self.max_values)] {
            if let Some(v) = v {
                if v.len() != d {
                    return bad(format!("{k} must have one number per feature ({d}), got {}", v.len()));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return bad(format!("{k} must be finite numbers"));
                }
            }
        }
        Ok(())
    }
}

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

/// Fixed-edge histogram of the current sample against a fixed reference, with the per-bin
/// terms of the Jensen–Shannon sum cached, so the distance after moving one event costs O(1)
/// (O(bins) only when the move empties a bin or fills an empty one, which changes the floor's
/// normalisation).
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    /// Faithful: in-range bins of the reference's edges; strict: the checks' binning.
    edges: Vec<f64>,
    binning: Option<Binning>,
    /// bins / (hi − lo), computed once (the expression of [`Binning::index`]).
    factor: f64,
    /// Reference probabilities (floored and renormalised).
    q: Vec<f64>,
    /// Current counts per slot.
    c: Vec<f64>,
    /// Unnormalised probability of a count: max(c·scale, floor).
    scale: f64,
    m_floor: f64,
    t: f64,
    term: Vec<f64>,
    plus: Vec<f64>,
    minus: Vec<f64>,
    s: f64,
}

impl Tally {
    fn from_parts(
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
    fn unnorm(&self, c: f64) -> f64 {
        (c * self.scale).max(JSD_FLOOR)
    }

    #[inline]
    fn term_at(&self, i: usize, c: f64, t: f64) -> f64 {
        let p = self.unnorm(c) / t;
        let q = self.q[i];
        let m = ((p + q) / 2.0).max(self.m_floor);
        p * (p / m).log2() + q * (q / m).log2()
    }

    fn set_terms(&mut self, i: usize) {
        let c = self.c[i];
        self.term[i] = self.term_at(i, c, self.t);
        self.plus[i] = self.term_at(i, c + 1.0, self.t);
        self.minus[i] = if c >= 1.0 { self.term_at(i, c - 1.0, self.t) } else { f64::NAN };
    }

    /// Recomputes the normalisation and every cached term.
    fn refresh(&mut self) {
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
    fn same_norm(&self, a: usize, b: usize) -> bool {
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
fn np_bin(edges: &[f64], factor: f64, v: f64) -> usize {
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

/// np.array_split of the features into `k` chunks (one chunk for at most 2 features, as the
/// reference); empty chunks left out.
fn chunks(d: usize, k: usize) -> Vec<Vec<usize>> {
    if d <= 2 || k <= 1 {
        return vec![(0..d).collect()];
    }
    let (base, extra) = (d / k, d % k);
    let mut out = Vec::new();
    let mut start = 0;
    for c in 0..k {
        let len = base + usize::from(c < extra);
        if len > 0 {
            out.push((start..start + len).collect());
        }
        start += len;
    }
    out
}

/// Pearson correlation of the rows of `x` (`n × d`, row-major), two-pass in f64.
fn corrcoef(x: &[f64], n: usize, d: usize) -> Vec<f64> {
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

/// One block's candidates, reused from block to block: per event `d × width` values and
/// slots (feature-major, `width` = the most candidates a feature can have), the number of
/// candidates per feature and the largest of them.
#[derive(Default)]
struct BlockCands {
    width: usize,
    c: Vec<usize>,
    n: Vec<usize>,
    vals: Vec<f64>,
    slots: Vec<u32>,
}

impl BlockCands {
    /// Room for `events` events of `d` features.
    fn resize(&mut self, events: usize, d: usize, width: usize) {
        self.width = width;
        self.c.resize(events, 0);
        self.n.resize(events * d, 0);
        self.vals.resize(events * d * width, 0.0);
        self.slots.resize(events * d * width, 0);
    }

    /// Event `r` of the block.
    fn event(&self, r: usize, d: usize) -> EventCands<'_> {
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
struct EventCands<'b> {
    w: usize,
    c: usize,
    vals: &'b [f64],
    slots: &'b [u32],
    /// Real candidates per feature (the rest are padding: the current value, never admissible).
    n: &'b [usize],
}

/// The attack, prepared for one set of events.
#[derive(Clone, Debug)]
pub struct ConservAttack {
    cfg: ConservConfig,
    proj: Projection,
}

impl ConservAttack {
    /// Checks the settings against the projection (built for the same features).
    pub fn new(cfg: ConservConfig, proj: Projection) -> Result<Self> {
        Ok(ConservAttack { cfg, proj })
    }

    /// The settings.
    pub fn config(&self) -> &ConservConfig {
        &self.cfg
    }

    /// Attacks every event of `x0`; events the model misclassifies before the attack (against
    /// `labels`, or every event when labels are not given: their clean class is the label)
    /// are left as they are. Seeded by the configuration.
    pub fn attack(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<ConservResult> {
        self.attack_seeded(model, x0, labels, control, self.cfg.seed)
    }

    /// [`ConservAttack::attack`] with another seed.
    pub fn attack_seeded(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
        seed: u64,
    ) -> Result<ConservResult> {
        let (n, d) = x0.dim();
        self.cfg.validate(d)?;
        if model.output() == Output::Linear {
            return Err(Error::arg(
                "conservattack",
                "a regression (linear) model has no class to fool; CONSERVAttack needs a classifier",
            ));
        }
        if n < 2 {
            return Err(Error::arg("conservattack", format!("needs at least 2 events (a sample), got {n}")));
        }
        if !self.proj.is_empty() && self.proj.names().len() != d {
            return Err(Error::arg("conservattack", "the projection was built for a dataset with other features"));
        }
        let (score_before, class_before) = outputs(model, x0)?;
        let k = model.n_outputs().max(2);
        let labels: Vec<i64> = match labels {
            Some(l) => {
                if l.len() != n {
                    return Err(Error::Shape {
                        op: "conservattack",
                        expected: format!("{n} labels"),
                        got: format!("{}", l.len()),
                    });
                }
                if let Some(bad) = l.iter().find(|&&c| c < 0 || c as usize >= k) {
                    return Err(Error::arg(
                        "conservattack",
                        format!("label {bad} is not a class of the model (0..{})", k - 1),
                    ));
                }
                l.to_vec()
            }
            None => class_before.clone(),
        };
        let mut st = State::new(&self.cfg, &self.proj, model, x0, labels, &class_before, seed, control)?;
        let run = control.executor(self.cfg.iterations).run(&mut st)?;
        let x = Array2::from_shape_fn((n, d), |(i, j)| st.live.x[i * d + j] as f32);
        let (score_after, class_after) = outputs(model, x.view())?;
        let reason = (0..n)
            .map(|i| {
                if !st.correct[i] {
                    "misclassified"
                } else if st.fooled_at[i] > 0 {
                    "flipped"
                } else {
                    "max_steps"
                }
            })
            .collect();
        let iters =
            (0..n).map(|i| if st.fooled_at[i] > 0 { st.fooled_at[i] } else { st.iterations.len() as u32 }).collect();
        let attack = AttackResult {
            x,
            score_before,
            score_after,
            class_before,
            class_after,
            chi2: vec![f64::NAN; n],
            p_value: vec![f64::NAN; n],
            dof: vec![0; n],
            iters,
            reason,
            stop: run.stop,
        };
        let correct = st.correct.iter().filter(|c| **c).count();
        Ok(ConservResult { attack, iterations: st.iterations, best: st.best, fooled_at: st.fooled_at, correct })
    }
}

/// What the candidate draws read: settings, bounds, projection rules, histogram slots.
struct Gen<'a> {
    cfg: &'a ConservConfig,
    seed: u64,
    d: usize,
    x0: ArrayView2<'a, f32>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Projection rules per feature.
    rules: Vec<Vec<Rule>>,
    /// Candidate slots per feature at most (the no-change candidate included).
    max_grid: usize,
    /// The histograms' slot rule per feature (a copy of the tallies' edges).
    slotters: Vec<Tally>,
}

/// What the scoring reads besides the changing state.
struct Ctx<'a> {
    cfg: &'a ConservConfig,
    n: usize,
    d: usize,
    chunks: Vec<Vec<usize>>,
    /// Strict: ‖C₀‖_F.
    ref_norm: f64,
}

/// The changing state: working copy, histograms, moments.
struct Live {
    x: Vec<f64>,
    tallies: Vec<Tally>,
    /// Faithful: moments of the current sample (strict: unused after the start).
    moments: RunningMoments,
    /// Strict: the tracker against the clean correlation matrix.
    tracker: Option<CorrelationTracker>,
}

/// Reusable buffers of the faithful scoring.
#[derive(Default)]
struct Scratch {
    js: Vec<f64>,
    row: Vec<f64>,
    old_slot: Vec<usize>,
    best: Vec<(usize, f64)>,
    /// Candidates scored (some feature admits them by the JSD).
    ks: Vec<usize>,
    /// Per tile of candidates: the values gathered, centred new values, new standard deviations, the new
    /// correlation entries and the squared row/column changes.
    gv: Vec<f64>,
    dn: Vec<f64>,
    sn: Vec<f64>,
    cn: Vec<f64>,
    f2: Vec<f64>,
    /// JSD per slot of the event being scored, valid where `stamp` equals the event's stamp.
    cache: Vec<Vec<(u64, f64)>>,
    stamp: u64,
}

/// The running attack.
struct State<'a> {
    cfg: &'a ConservConfig,
    gen: Gen<'a>,
    ctx: Ctx<'a>,
    live: Live,
    model: &'a dyn Model,
    control: &'a Control,
    n: usize,
    d: usize,
    labels: Vec<i64>,
    correct: Vec<bool>,
    frozen: Vec<bool>,
    fooled_at: Vec<u32>,
    /// Clean histograms for the per-iteration metrics (reference's or the checks' binning).
    metric_ref: Vec<Vec<f64>>,
    corr0: Vec<f64>,
    iterations: Vec<IterationMetrics>,
    best: Option<usize>,
    scratch: Scratch,
}

impl<'a> State<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    fn project(&self, i: usize, j: usize, v: f64) -> f64 {
        self.gen.project(i, j, v)
    }

    /// Direction per (active event, feature): +1 where the gradient of the clipped
    /// cross-entropy is ≥ 0, −1 elsewhere.
    fn directions(&self, active: &[usize]) -> Result<Vec<i8>> {
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
    fn pass(&mut self, it: usize, active: &[usize], dir: &[i8]) -> usize {
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
    fn classes(&self, ids: &[usize]) -> Result<Vec<i64>> {
        let d = self.d;
        let xa = Array2::from_shape_fn((ids.len(), d), |(r, j)| self.live.x[ids[r] * d + j] as f32);
        self.model.predict_class(xa.view())
    }

    /// The reference's `optimize_fooled_samples` (window ±5 steps, 11 values, a value taken when
    /// the event stays fooled and both the JSD and the correlation change are strictly lower than
    /// the best so far). Faithful: both measured against the current sample; strict: against the
    /// clean sample, starting from the current value's (so only reductions are taken).
    fn optimize_fooled(&mut self) -> Result<()> {
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
    fn move_jsd(&self, j: usize, a: usize, b: usize) -> f64 {
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
    fn move_corr(&self, row: &[f64], j: usize, v: f64) -> f64 {
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

    /// Per-feature JSD and relative correlation change of the current sample against the clean one.
    fn metrics(&self) -> (Vec<f64>, f64) {
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

impl Gen<'_> {
    /// The projection of value `v` of feature `j` of event `i`.
    #[inline]
    fn project(&self, i: usize, j: usize, v: f64) -> f64 {
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
    fn candidates(
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

impl Ctx<'_> {
    /// The JSD of moving feature `j` of the scored event from slot `a` to `b`, cached per slot.
    #[inline]
    fn cached_jsd(t: &Tally, cache: &mut [(u64, f64)], stamp: u64, a: usize, b: usize) -> f64 {
        let e = &mut cache[b];
        if e.0 != stamp {
            *e = (stamp, t.jsd_if_moved(a, b));
        }
        e.1
    }

    /// Faithful scoring and acceptance of event `i`; returns the number of values changed.
    ///
    /// The correlation score is computed for the candidates some feature admits by its JSD
    /// (the others cannot be chosen), a tile at a time, one quantity over the whole tile after
    /// the other (straight loops the compiler vectorises).
    fn accept_faithful(&self, live: &mut Live, sc: &mut Scratch, i: usize, ev: &EventCands<'_>) -> usize {
        const TILE: usize = 64;
        let (d, c, w, cfg) = (self.d, ev.c, ev.w, self.cfg);
        let nf = self.n as f64;
        sc.row.clear();
        sc.row.extend_from_slice(&live.x[i * d..(i + 1) * d]);
        sc.old_slot.clear();
        sc.old_slot.extend((0..d).map(|j| live.tallies[j].slot(sc.row[j])));
        if sc.cache.len() != d {
            sc.cache = live.tallies.iter().map(|t| vec![(0, 0.0); t.c.len()]).collect();
        }
        sc.stamp += 1;
        let first = usize::from(cfg.use_no_change);
        // JSD of every candidate (padding: infinite, never admissible).
        let js = &mut sc.js;
        js.clear();
        js.resize(d * w, f64::INFINITY);
        for j in 0..d {
            let t = &live.tallies[j];
            for k in 0..ev.n[j] {
                let b = ev.slots[j * w + k];
                if b != NO_OP {
                    js[j * w + k] = Self::cached_jsd(t, &mut sc.cache[j], sc.stamp, sc.old_slot[j], b as usize);
                }
            }
        }
        sc.best.clear();
        sc.best.resize(d, (usize::MAX, f64::INFINITY));
        let row = &sc.row;
        for chunk in &self.chunks {
            let dc = chunk.len();
            let mom = &live.moments;
            let m: Vec<f64> = chunk.iter().map(|&j| mom.mean(j)).collect();
            let v: Vec<f64> = chunk.iter().map(|&j| mom.cov(j, j)).collect();
            let mut kk = vec![0.0; dc * dc];
            let mut r = vec![0.0; dc * dc];
            for (a, &ja) in chunk.iter().enumerate() {
                for (b, &jb) in chunk.iter().enumerate() {
                    let cv = mom.cov(ja, jb);
                    kk[a * dc + b] = cv * nf / (nf - 1.0);
                    r[a * dc + b] = cv / (v[a] * v[b]).sqrt();
                }
            }
            let sd: Vec<f64> = v.iter().map(|v| (v + 1e-10).sqrt()).collect();
            let dold: Vec<f64> = chunk.iter().zip(&m).map(|(&j, m)| row[j] - m).collect();
            // Only candidates some feature of the chunk admits by its JSD need the score.
            sc.ks.clear();
            sc.ks.extend((first..c).filter(|&k| chunk.iter().any(|&j| js[j * w + k] <= cfg.max_jsd_single_change)));
            sc.gv.resize(dc * TILE, 0.0);
            sc.dn.resize(dc * TILE, 0.0);
            sc.sn.resize(dc * TILE, 0.0);
            sc.cn.resize(dc * dc * TILE, 0.0);
            sc.f2.resize(dc * TILE, 0.0);
            // The reference's divisions by n and n − 1, as products with the reciprocals.
            let (inv_n, inv_n1) = (1.0 / nf, 1.0 / (nf - 1.0));
            for ks in sc.ks.chunks(TILE) {
                let len = ks.len();
                for (a, &j) in chunk.iter().enumerate() {
                    for (g, &k) in sc.gv[a * TILE..a * TILE + len].iter_mut().zip(ks) {
                        *g = ev.vals[j * w + k];
                    }
                }
                // The reference scores feature j's candidate k with candidate k of every other
                // feature, ddof 0 variances against ddof 1 covariances.
                for (a, &j) in chunk.iter().enumerate() {
                    let vals = &sc.gv[a * TILE..a * TILE + len];
                    let dn = &mut sc.dn[a * TILE..a * TILE + len];
                    let sn = &mut sc.sn[a * TILE..a * TILE + len];
                    let (ma, va, da, xj) = (m[a], v[a], dold[a], row[j]);
                    for ((dn, sn), &nv) in dn.iter_mut().zip(sn.iter_mut()).zip(vals) {
                        let mn = ma + (nv - xj) * inv_n;
                        *dn = nv - mn;
                        let vn = va + (*dn * *dn - da * da) * inv_n1;
                        *sn = (vn + 1e-10).sqrt();
                    }
                }
                for a in 0..dc {
                    for b in 0..dc {
                        let (kab, dd, sdb) = (kk[a * dc + b], dold[a] * dold[b], sd[b]);
                        let (dna, dnb) = (&sc.dn[a * TILE..a * TILE + len], &sc.dn[b * TILE..b * TILE + len]);
                        let sna = &sc.sn[a * TILE..a * TILE + len];
                        let cn = &mut sc.cn[(a * dc + b) * TILE..(a * dc + b) * TILE + len];
                        for (((cn, &x), &y), &s) in cn.iter_mut().zip(dna).zip(dnb).zip(sna) {
                            let cov = kab + (x * y - dd) * inv_n1;
                            *cn = cov / (s * sdb + 1e-10);
                        }
                    }
                }
                for a in 0..dc {
                    let f2 = &mut sc.f2[a * TILE..a * TILE + len];
                    f2.iter_mut().for_each(|f| *f = 0.0);
                    for b in 0..dc {
                        let rab = r[a * dc + b];
                        let ab = &sc.cn[(a * dc + b) * TILE..(a * dc + b) * TILE + len];
                        let ba = &sc.cn[(b * dc + a) * TILE..(b * dc + a) * TILE + len];
                        for ((f, &x), &y) in f2.iter_mut().zip(ab).zip(ba) {
                            let (rd, cd) = (x - rab, y - rab);
                            *f += rd * rd + cd * cd;
                        }
                    }
                }
                for (a, &j) in chunk.iter().enumerate() {
                    let raa = r[a * dc + a];
                    let aa = &sc.cn[(a * dc + a) * TILE..(a * dc + a) * TILE + len];
                    let f2 = &sc.f2[a * TILE..a * TILE + len];
                    let best = &mut sc.best[j];
                    for ((&k, &f), &x) in ks.iter().zip(f2).zip(aa) {
                        let jv = js[j * w + k];
                        if jv.is_nan() || jv > cfg.max_jsd_single_change {
                            continue;
                        }
                        let dd = x - raa;
                        let frob = (f - dd * dd).sqrt();
                        if frob.is_nan() || frob > cfg.max_frob_single_change {
                            continue;
                        }
                        let cost = cfg.alpha * jv + cfg.beta * frob;
                        if cost < best.1 {
                            *best = (k, cost);
                        }
                    }
                }
            }
        }
        // Every feature's choice applied together; nothing admissible: candidate 0 (no change
        // with use_no_change, else the reference's first candidate).
        let mut changed = 0;
        for j in 0..d {
            let k = if sc.best[j].0 == usize::MAX { 0 } else { sc.best[j].0 };
            let nv = ev.vals[j * w + k];
            if nv != sc.row[j] {
                live.tallies[j].apply(sc.old_slot[j], ev.slots[j * w + k] as usize);
                live.moments.change(&sc.row, j, nv, 1.0);
                sc.row[j] = nv;
                changed += 1;
            }
        }
        live.x[i * d..(i + 1) * d].copy_from_slice(&sc.row);
        changed
    }

    /// Strict scoring and acceptance of event `i`, one feature after the other, each against
    /// the clean histograms and the clean correlation matrix.
    fn accept_strict(&self, live: &mut Live, sc: &mut Scratch, i: usize, ev: &EventCands<'_>) -> usize {
        let (d, cfg) = (self.d, self.cfg);
        // Margins for the rounding of the incremental updates against the checks' recomputation.
        let jsd_cap = cfg.constraint_jsd * (1.0 - 1e-9);
        let rel_cap = cfg.constraint_rel_corr * (1.0 - 1e-6);
        let mut cur: Vec<f64> = live.x[i * d..(i + 1) * d].to_vec();
        let mut changed = 0;
        let Some(tracker) = live.tracker.as_mut() else { return 0 };
        if sc.cache.len() != d {
            sc.cache = live.tallies.iter().map(|t| vec![(0, 0.0); t.c.len()]).collect();
        }
        for j in 0..d {
            sc.stamp += 1;
            let a = live.tallies[j].slot(cur[j]);
            let t = &live.tallies[j];
            let mut best: Option<(f64, f64, usize)> = None;
            for k in 0..ev.n[j] {
                let nv = ev.vals[j * ev.w + k];
                if nv == cur[j] {
                    continue;
                }
                let b = ev.slots[j * ev.w + k] as usize;
                let jv = Self::cached_jsd(t, &mut sc.cache[j], sc.stamp, a, b);
                if !(jv <= cfg.max_jsd_single_change && jv < jsd_cap) {
                    continue;
                }
                let rel = tracker.relative_change_if(&cur, j, nv, 1.0);
                let frob = rel * self.ref_norm;
                if !(frob <= cfg.max_frob_single_change && rel < rel_cap) {
                    continue;
                }
                let cost = cfg.alpha * jv + cfg.beta * frob;
                if best.is_none_or(|(bc, _, _)| cost < bc) {
                    best = Some((cost, nv, b));
                }
            }
            if let Some((_, nv, b)) = best {
                live.tallies[j].apply(a, b);
                tracker.apply(&cur, j, nv, 1.0);
                cur[j] = nv;
                changed += 1;
            }
        }
        live.x[i * d..(i + 1) * d].copy_from_slice(&cur);
        changed
    }
}

/// Rounds up to a float32 value (for bounds).
fn f32_up(v: f64) -> f64 {
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
fn f32_down(v: f64) -> f64 {
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
