//! RDSA, the Random Distribution Shuffle Attack (Saala, Flek, Jung et al., arXiv 2501.05588;
//! `shared/guide/methods.md` §4): a black-box attack that keeps every feature's marginal
//! distribution and destroys the correlations between features.
//!
//! 1. A feature is *continuous* if the reference set has more than `unique_threshold` (100)
//!    distinct values in it; only continuous features are shuffled (unless listed).
//! 2. Per shuffled feature, its marginal from the reference set (by default the attacked
//!    events; optionally per class, or another dataset such as data instead of simulation):
//!    a histogram PDF of `bins` (100) equal-width bins over the feature's range, sampled by
//!    drawing a bin by its probability and then uniformly within it, or the empirical
//!    distribution (the value of a uniformly random reference event).
//! 3. Per event a random subset of `k` (3) shuffled features, or an explicit list.
//! 4. Up to `steps` (100) tries per event, each redrawing the chosen features from the
//!    *original* marginals, projected onto the feasibility rules, evaluated; the first try that
//!    changes the predicted class stops the event.
//!
//! A feature with a sentinel rule in the projection (e.g. 0 meaning "no second jet") keeps the
//! sentinel where the event had it, and its marginal is built from the other values, so a
//! present object is never made absent: the output marginal is still the input's.
//!
//! The histogram draw is the inverse CDF of the piecewise-uniform density: one uniform `u`
//! picks the bin `b` with `cdf[b−1] ≤ u < cdf[b]`, and `(u − cdf[b−1]) / p_b` — uniform on
//! [0, 1) and independent of `b` — places the value inside it.
//!
//! **Set models** ([`Rdsa::for_set`]): the features are the layout's event features and its
//! object features (`coll.feature`). An object feature's marginal is pooled over every real
//! object of the reference events; shuffling it redraws that feature of each real object of
//! the event (one draw per object). Padded slots and the object count never change.
//!
//! Batching: a round gives every event that has not flipped yet `T` more tries (`T` grows as
//! events drop out, so each round holds ≥ 32k rows); the tries are generated inside the fused
//! batched forward pass ([`Model::logits_with`]; the fused MLP never builds the input matrix), 256 rows per task across the rayon pool, and
//! no tries matrix is stored. Try `t` of event `i` draws from its own counter-based stream
//! `(seed, i, t)` ([`crate::rng::Stream`]), so the chosen try is regenerated afterwards and the
//! result for a seed depends neither on the batching nor on the thread count.

use std::collections::{BTreeMap, HashSet};

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::project::{Projection, Rule};
use super::result::{outputs, AttackResult};
use super::uncertainty::UncertaintyModel;
use crate::error::{Error, Result};
use crate::model::{Model, Output, SetLayout};
use crate::optim::Control;
use crate::rng::Stream;
use rounds::Rounds;

#[path = "rdsa_rounds.rs"]
mod rounds;

/// Rows per forward pass the rounds aim at.
const TARGET_ROWS: usize = 32_768;

/// How a shuffled feature's new value is drawn from the reference set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// A bin of the `bins`-bin histogram by its probability, then uniform within the bin
    /// (the reference definition).
    Histogram,
    /// The value of that feature in a uniformly random reference event.
    Empirical,
}

impl Sampling {
    /// Parses `"histogram"` or `"empirical"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "histogram" => Ok(Sampling::Histogram),
            "empirical" => Ok(Sampling::Empirical),
            _ => Err(Error::BadOption {
                func: "rdsa".into(),
                key: "sampling".into(),
                problem: format!("must be one of histogram, empirical, got '{s}'"),
            }),
        }
    }
}

/// When the random subset of features is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubsetDraw {
    /// Once per event; every try redraws the same features (the reference definition).
    PerEvent,
    /// Anew for every try (the benchmark protocol).
    PerTry,
}

/// Settings of RDSA; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq)]
pub struct RdsaConfig {
    /// Features shuffled per event (a random subset of the shuffled features).
    pub k: usize,
    /// An explicit list of features (columns) shuffled in every event instead of a random `k`.
    pub features: Option<Vec<usize>>,
    /// Tries per event.
    pub steps: usize,
    /// Histogram bins of each marginal.
    pub bins: usize,
    /// A feature is continuous with more than this many distinct values.
    pub unique_threshold: usize,
    /// The shuffled features (columns), replacing the detection by distinct values.
    pub continuous: Option<Vec<usize>>,
    /// Features (columns) never shuffled and never changed.
    pub frozen: Vec<usize>,
    /// How values are drawn.
    pub sampling: Sampling,
    /// Marginals per class (by label) instead of pooled over all events.
    pub per_class: bool,
    /// When the random subset is drawn.
    pub subset: SubsetDraw,
    /// Stop an event at its first flip (otherwise every try is evaluated, for try statistics).
    pub stop_at_flip: bool,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for RdsaConfig {
    /// k = 3, 100 steps, 100 bins, threshold 100, histogram sampling, pooled marginals, one
    /// subset per event, stop at the first flip, seed 0.
    fn default() -> Self {
        RdsaConfig {
            k: 3,
            features: None,
            steps: 100,
            bins: 100,
            unique_threshold: 100,
            continuous: None,
            frozen: Vec::new(),
            sampling: Sampling::Histogram,
            per_class: false,
            subset: SubsetDraw::PerEvent,
            stop_at_flip: true,
            seed: 0,
        }
    }
}

fn bad(key: &str, problem: String) -> Error {
    Error::BadOption { func: "rdsa".into(), key: key.into(), problem }
}

impl RdsaConfig {
    fn check(&self, d: usize) -> Result<()> {
        if self.steps == 0 {
            return Err(bad("steps", "must be ≥ 1, got 0".into()));
        }
        if self.bins == 0 {
            return Err(bad("bins", "must be ≥ 1, got 0".into()));
        }
        crate::limits::check("rdsa", "bins", self.bins, crate::limits::HISTOGRAM_BINS)?;
        if self.features.is_none() && self.k == 0 {
            return Err(bad("k", "must be ≥ 1, got 0".into()));
        }
        let lists = [("features", self.features.as_deref()), ("continuous", self.continuous.as_deref())];
        for (key, list) in lists.into_iter().chain([("frozen", Some(self.frozen.as_slice()))]) {
            if let Some(&j) = list.and_then(|l| l.iter().find(|&&j| j >= d)) {
                return Err(bad(key, format!("names column {j} of {d}")));
            }
        }
        if self.features.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad("features", "must list at least one feature".into()));
        }
        Ok(())
    }
}

/// One feature's marginal distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Marginal {
    /// Equal-width bins from `lo`, with the cumulative probabilities `cdf` (last = 1).
    Histogram {
        /// Lower edge of the first bin.
        lo: f64,
        /// Upper edge of the last bin.
        hi: f64,
        /// Bin width.
        width: f64,
        /// Cumulative bin probabilities.
        cdf: Vec<f64>,
    },
    /// The reference values themselves.
    Empirical {
        /// The values.
        values: Vec<f32>,
    },
}

impl Marginal {
    /// The `bins`-bin histogram of `values` over `[min, max]` (max in the last bin). `values`
    /// must not be empty.
    pub fn histogram(values: &[f32], bins: usize) -> Self {
        let (mn, mx) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (lo, hi) = (f64::from(mn), f64::from(mx));
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u64; bins];
        for &v in values {
            let b = if width > 0.0 { ((f64::from(v) - lo) / width) as usize } else { 0 };
            counts[b.min(bins - 1)] += 1;
        }
        let total = values.len() as f64;
        let mut acc = 0u64;
        let mut cdf: Vec<f64> = counts
            .iter()
            .map(|&c| {
                acc += c;
                acc as f64 / total
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Marginal::Histogram { lo, hi, width, cdf }
    }

    /// The empirical distribution of `values` (must not be empty).
    pub fn empirical(values: &[f32]) -> Self {
        Marginal::Empirical { values: values.to_vec() }
    }

    /// One draw.
    #[inline]
    pub fn sample(&self, s: &mut Stream) -> f32 {
        match self {
            Marginal::Histogram { lo, hi, width, cdf } => {
                let u = s.uniform();
                let b = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
                let below = if b == 0 { 0.0 } else { cdf[b - 1] };
                let p = cdf[b] - below;
                let within = if p > 0.0 { ((u - below) / p).clamp(0.0, 1.0) } else { 0.5 };
                ((lo + (b as f64 + within) * width).min(*hi)) as f32
            }
            Marginal::Empirical { values } => values[s.below(values.len())],
        }
    }
}

/// Whether each column of `x` has more than `threshold` distinct values (−0 and +0 count as
/// one value).
pub fn continuous_features(x: ArrayView2<'_, f32>, threshold: usize) -> Vec<bool> {
    (0..x.ncols()).into_par_iter().map(|j| more_distinct_than(x.column(j).iter().copied(), threshold)).collect()
}

/// Whether `values` hold more than `threshold` distinct values (−0 and +0 count as one).
fn more_distinct_than(values: impl Iterator<Item = f32>, threshold: usize) -> bool {
    let mut seen = HashSet::with_capacity(threshold + 1);
    for v in values {
        seen.insert((v + 0.0).to_bits());
        if seen.len() > threshold {
            return true;
        }
    }
    false
}

/// A prepared RDSA: the shuffled features and their marginals from a reference set, and the
/// feasibility projection applied after each draw.
#[derive(Clone, Debug)]
pub struct Rdsa {
    cfg: RdsaConfig,
    names: Vec<String>,
    /// Features an event may shuffle.
    candidates: Vec<usize>,
    /// Label of each marginal group (empty: one pooled group).
    classes: Vec<i64>,
    /// `marginals[group][feature]`, `None` for features never shuffled.
    marginals: Vec<Vec<Option<Marginal>>>,
    proj: Projection,
    /// The set layout of a set model's inputs (features = its event and object features).
    layout: Option<SetLayout>,
    /// Position of the first attacked event in the whole sample: event `i` of a call draws
    /// from the streams of position `first_event + i` (see [`Rdsa::place`]).
    first_event: u64,
}

/// The outcome of [`Rdsa::attack`].
#[derive(Clone, Debug)]
pub struct RdsaResult {
    /// Per event: the first flipping try (or the last try), scores, classes, tries used
    /// (`iters`) and `reason` (`"flipped"` or `"max_steps"`). χ² only with an uncertainty model
    /// (NaN otherwise).
    pub attack: AttackResult,
    /// Tries evaluated over all events.
    pub tries: u64,
    /// Tries that changed the predicted class.
    pub flipping_tries: u64,
    /// The features events could shuffle (columns).
    pub shuffled: Vec<usize>,
}

impl RdsaResult {
    /// Fraction of evaluated tries that flipped.
    pub fn try_flip_fraction(&self) -> f64 {
        if self.tries == 0 {
            0.0
        } else {
            self.flipping_tries as f64 / self.tries as f64
        }
    }
}

impl Rdsa {
    /// Prepares the attack over features `names` with marginals from `reference` (and its
    /// labels, needed for per-class marginals). Frozen features of `proj` are never shuffled.
    pub fn new(
        names: &[String],
        reference: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        cfg: &RdsaConfig,
        proj: &Projection,
    ) -> Result<Self> {
        Rdsa::build(names, reference, labels, cfg, proj, None)
    }

    /// Prepares the attack on a set model with input layout `layout`: `reference` holds the
    /// reference events' input rows, the features (indices in `cfg`) are
    /// [`SetLayout::feature_names`], and `proj` is over the input columns
    /// ([`Projection::over_inputs`]). See the module documentation.
    pub fn for_set(
        layout: &SetLayout,
        reference: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        cfg: &RdsaConfig,
        proj: &Projection,
    ) -> Result<Self> {
        Rdsa::build(&layout.feature_names(), reference, labels, cfg, proj, Some(layout))
    }

    fn build(
        names: &[String],
        reference: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        cfg: &RdsaConfig,
        proj: &Projection,
        layout: Option<&SetLayout>,
    ) -> Result<Self> {
        let d = names.len();
        cfg.check(d)?;
        let width = layout.map_or(d, SetLayout::width);
        if reference.ncols() != width {
            return Err(Error::Shape {
                op: "rdsa",
                expected: format!("a reference set with {width} input columns"),
                got: format!("{}", reference.ncols()),
            });
        }
        if reference.nrows() == 0 {
            return Err(Error::Empty { op: "rdsa", what: "the reference set".into() });
        }
        if let Some((row, col)) = crate::data::first_nonfinite(reference) {
            let name = layout.map_or_else(|| names[col].clone(), |l| l.names()[col].clone());
            return Err(Error::arg(
                "rdsa",
                format!("the reference set has a non-finite value in row {row}, column '{name}'"),
            ));
        }
        let all: Vec<usize> = (0..reference.nrows()).collect();
        let candidates = candidates(names, reference, cfg, proj, layout, &all)?;
        let (classes, groups) = groups(reference.nrows(), labels, cfg.per_class)?;
        let marginals = groups
            .iter()
            .map(|rows| {
                (0..d)
                    .map(|j| {
                        if !candidates.contains(&j) {
                            return None;
                        }
                        let mut v = feature_values(reference, layout, j, rows);
                        if v.is_empty() {
                            // No real object in this group: nothing to draw from.
                            return None;
                        }
                        // A sentinel ("object absent") is kept where it was and never drawn
                        // elsewhere: the marginal is that of the present values.
                        let sentinels = sentinel_values(proj, j, layout);
                        if v.iter().any(|x| !sentinels.contains(x)) {
                            v.retain(|x| !sentinels.contains(x));
                        }
                        Some(match cfg.sampling {
                            Sampling::Histogram => Marginal::histogram(&v, cfg.bins),
                            Sampling::Empirical => Marginal::empirical(&v),
                        })
                    })
                    .collect()
            })
            .collect();
        Ok(Rdsa {
            cfg: cfg.clone(),
            names: names.to_vec(),
            candidates,
            classes,
            marginals,
            proj: proj.clone(),
            layout: layout.cloned(),
            first_event: 0,
        })
    }

    /// Places the attacked events in a larger sample: the first is at `position` (a chunk of
    /// a chain; 0, the default, for a dataset attacked whole). Event `i` of a call draws its
    /// subset and tries from the streams of position `position + i`, so a chain's events get
    /// the same tries in any chunking or sharding as in one run over the whole chain.
    pub fn place(&mut self, position: u64) {
        self.first_event = position;
    }

    /// The input columns feature `j` occupies in an event whose input row is `x0`: column `j`
    /// for an event feature, the slots of the event's real objects for an object feature.
    pub fn columns_of(&self, j: usize, x0: &[f32]) -> Vec<usize> {
        match &self.layout {
            Some(l) if j >= l.n_event() => (0..l.count(x0)).map(|s| l.slot_column(s, j - l.n_event())).collect(),
            _ => vec![j],
        }
    }

    /// The set layout, for a set model.
    pub fn layout(&self) -> Option<&SetLayout> {
        self.layout.as_ref()
    }

    /// The features events may shuffle (columns).
    pub fn candidates(&self) -> &[usize] {
        &self.candidates
    }

    /// The settings.
    pub fn config(&self) -> &RdsaConfig {
        &self.cfg
    }

    /// Attacks every event of `x0` (`n × d`, physical units; `labels` needed with per-class
    /// marginals). With `unc` the χ² of each perturbation is reported.
    pub fn attack(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        unc: Option<&UncertaintyModel>,
        control: &Control,
    ) -> Result<RdsaResult> {
        self.attack_seeded(model, x0, labels, unc, control, self.cfg.seed)
    }

    /// [`Rdsa::attack`] with another seed than the configured one.
    pub fn attack_seeded(
        &self,
        model: &dyn Model,
        x0: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        unc: Option<&UncertaintyModel>,
        control: &Control,
        seed: u64,
    ) -> Result<RdsaResult> {
        let n = x0.nrows();
        self.check_input(model, x0, labels)?;
        let x0 = x0.as_standard_layout();
        let flat = x0.as_slice().ok_or_else(|| Error::arg("rdsa", "internal: events not contiguous"))?;
        let group = self.event_groups(n, labels)?;
        let (score_before, class_before) = outputs(model, x0.view())?;
        let mut solver = Rounds::new(self, model, flat, x0.ncols(), &class_before, group, control, seed);
        let run = control.executor(self.cfg.steps).run(&mut solver)?;
        let Rounds { x, logits, tries, flip_at, total_tries, flipping_tries, .. } = solver;
        let class_after = model.classes_from_logits(&logits);
        let mut score_after = logits;
        for mut row in score_after.rows_mut() {
            if let Some(r) = row.as_slice_mut() {
                model.output().scores_row(r);
            }
        }
        let (chi2, p_value, dof) = match unc {
            Some(u) => {
                let c = u.chi2(x0.view(), x.view(), true)?;
                (c.chi2, c.p_value, c.dof)
            }
            None => (vec![f64::NAN; n], vec![f64::NAN; n], vec![0; n]),
        };
        let reason = flip_at.iter().map(|f| if f.is_some() { "flipped" } else { "max_steps" }).collect();
        let attack = AttackResult {
            x,
            score_before,
            score_after,
            class_before,
            class_after,
            chi2,
            p_value,
            dof,
            iters: tries,
            reason,
            stop: run.stop,
        };
        Ok(RdsaResult { attack, tries: total_tries, flipping_tries, shuffled: self.candidates.clone() })
    }

    fn check_input(&self, model: &dyn Model, x0: ArrayView2<'_, f32>, labels: Option<&[i64]>) -> Result<()> {
        if model.output() == Output::Linear {
            return Err(Error::arg(
                "rdsa",
                "a regression (linear) model has no class to flip; RDSA needs a classifier",
            ));
        }
        model.check_input("rdsa", x0)?;
        let width = self.layout.as_ref().map_or(self.names.len(), SetLayout::width);
        if x0.ncols() != width {
            return Err(Error::Shape {
                op: "rdsa",
                expected: format!("{width} feature columns"),
                got: format!("{}", x0.ncols()),
            });
        }
        if x0.nrows() == 0 {
            return Err(Error::Empty { op: "rdsa", what: "the dataset".into() });
        }
        if let Some(l) = labels {
            if l.len() != x0.nrows() {
                return Err(Error::Shape {
                    op: "rdsa",
                    expected: format!("{} labels", x0.nrows()),
                    got: format!("{}", l.len()),
                });
            }
        }
        Ok(())
    }

    /// Marginal group of every attacked event.
    fn event_groups(&self, n: usize, labels: Option<&[i64]>) -> Result<Vec<usize>> {
        if self.classes.is_empty() {
            return Ok(vec![0; n]);
        }
        let labels = labels.ok_or_else(|| {
            bad("marginals", "\"per_class\" needs labels on the attacked events; use \"pooled\"".into())
        })?;
        labels
            .iter()
            .map(|l| {
                self.classes.iter().position(|c| c == l).ok_or_else(|| {
                    bad("marginals", format!("\"per_class\": the reference set has no events of class {l}"))
                })
            })
            .collect()
    }
}

/// The features events may shuffle: the explicit list, or the continuous ones minus frozen.
fn candidates(
    names: &[String],
    reference: ArrayView2<'_, f32>,
    cfg: &RdsaConfig,
    proj: &Projection,
    layout: Option<&SetLayout>,
    all: &[usize],
) -> Result<Vec<usize>> {
    let mut frozen = cfg.frozen.clone();
    frozen.extend(proj.rules().iter().filter_map(|r| match *r {
        Rule::Frozen { feature } => feature_of(layout, feature),
        _ => None,
    }));
    if let Some(list) = &cfg.features {
        if let Some(&j) = list.iter().find(|j| frozen.contains(j)) {
            return Err(bad("features", format!("'{}' is also frozen", names[j])));
        }
        let mut l = list.clone();
        l.sort_unstable();
        l.dedup();
        return Ok(l);
    }
    let continuous: Vec<usize> = match &cfg.continuous {
        Some(list) => {
            let mut l = list.clone();
            l.sort_unstable();
            l.dedup();
            l
        }
        None if layout.is_some() => (0..names.len())
            .filter(|&j| {
                more_distinct_than(feature_values(reference, layout, j, all).into_iter(), cfg.unique_threshold)
            })
            .collect(),
        None => continuous_features(reference, cfg.unique_threshold)
            .iter()
            .enumerate()
            .filter_map(|(j, &c)| c.then_some(j))
            .collect(),
    };
    let cands: Vec<usize> = continuous.into_iter().filter(|j| !frozen.contains(j)).collect();
    if cfg.k > cands.len() {
        let list: Vec<&str> = cands.iter().map(|&j| names[j].as_str()).collect();
        return Err(bad(
            "k",
            format!(
                "is {}, more than the {} features that can be shuffled [{}] (continuous: more than {} distinct values in the reference set, not frozen); lower k, or list features with `continuous` or `features`",
                cfg.k,
                cands.len(),
                list.join(", "),
                cfg.unique_threshold
            ),
        ));
    }
    Ok(cands)
}

/// The sentinel values of feature `j` in `proj` (over the input columns).
fn sentinel_values(proj: &Projection, j: usize, layout: Option<&SetLayout>) -> Vec<f32> {
    let mut v: Vec<f32> = proj
        .rules()
        .iter()
        .filter_map(|r| match *r {
            Rule::Sentinel { feature, value } if feature_of(layout, feature) == Some(j) => Some(value),
            _ => None,
        })
        .collect();
    v.dedup();
    v
}

/// The feature of input column `col`: itself for an event-level model; for a set model the
/// event feature, or `E + f` for object feature `f` of a slot (`None` for the count).
fn feature_of(layout: Option<&SetLayout>, col: usize) -> Option<usize> {
    match layout {
        None => Some(col),
        Some(l) if col < l.n_event() => Some(col),
        Some(l) => l.object_feature_of(col).map(|f| l.n_event() + f),
    }
}

/// The values of feature `j` in the reference rows `rows`: a column, or for an object
/// feature of a set model the pooled values of every real object of those events.
fn feature_values(reference: ArrayView2<'_, f32>, layout: Option<&SetLayout>, j: usize, rows: &[usize]) -> Vec<f32> {
    match layout {
        Some(l) if j >= l.n_event() => {
            let mut v = Vec::new();
            for &i in rows {
                let r = reference.row(i);
                let k = l.count_of(r[l.count_column()]);
                v.extend((0..k).map(|s| r[l.slot_column(s, j - l.n_event())]));
            }
            v
        }
        _ => {
            let col = reference.column(j);
            rows.iter().map(|&i| col[i]).collect()
        }
    }
}

/// Reference rows of each marginal group, and the group labels (empty when pooled).
fn groups(n: usize, labels: Option<&[i64]>, per_class: bool) -> Result<(Vec<i64>, Vec<Vec<usize>>)> {
    if !per_class {
        return Ok((Vec::new(), vec![(0..n).collect()]));
    }
    let labels = labels.ok_or_else(|| bad("marginals", "\"per_class\" needs a reference set with labels".into()))?;
    let mut by: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by.entry(l).or_default().push(i);
    }
    Ok(by.into_iter().unzip())
}

#[cfg(test)]
#[path = "rdsa_tests.rs"]
mod tests;
