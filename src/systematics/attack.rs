//! Attacks in nuisance space: the pulls θ that change a classifier the most for the price the
//! priors set, `χ² = Σθₖ²`.
//!
//! Every prior is N(0, 1) on θ (a log-normal normalisation is `(1 + σ)^θ`, log-normal in the
//! factor and Gaussian in θ), so `Σθ²` is the χ² of the pulls in one consistent
//! parametrisation and its p-value is the χ² tail with one degree of freedom per attacked
//! nuisance. Smearing nuisances are attackable as the rest: their N(0, 1) draws are fixed by
//! the model's seed (one per event or object), θ scales them — the attack chooses how far
//! along a fixed random direction the resolution moves, never the draws themselves.
//!
//! Two modes:
//! * **per event** (`Mode::Event`): every event its own θ (its own pulls), attacked for its
//!   own classification. *PGD*: the logit of the other class (sigmoid; for softmax the clean
//!   runner-up's logit minus the clean class's) is raised by steps of fixed length along its
//!   θ gradient, each step projected back into the ball `Σθ² ≤ chi2`. *MiniFool*: MiniFool's
//!   cost `α·Σθ²/N + β·(f_t − g)²` (N attacked nuisances, `f_t` the other class's score, g =
//!   0.5 + margin) minimised in θ by MiniFool's own minimisers (L-BFGS or Adam, from θ = 0),
//!   so each event's cost never ends above its start.
//! * **coherent** (`Mode::Coherent`): one θ for the whole sample, acting on a population
//!   quantity ([`Population`]: yield or efficiency above a score threshold, or the mean score,
//!   in an optional region). *PGD*: the quantity moved the most (`direction` +1 up, −1 down)
//!   within `Σθ² ≤ chi2`, by the same projected steps on the surrogate's gradient; the iterate
//!   with the best hard-cut value is kept. *MiniFool*: the smallest χ² whose PGD reaches a
//!   relative change `target` of the hard-cut quantity — a bisection on the radius √χ² of the
//!   ball (each radius one PGD), up to `chi2`; the defining property: the result reaches the
//!   target, and PGD in the ball shrunk by `tolerance` does not.
//!
//! Nuisances outside `free` stay at 0. Per-event weights do not change a classification;
//! weight effects matter in the coherent yield (and efficiency, through the region's weights).

use ndarray::Array2;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::prepared::Theta;
use super::theta_grad::{Population, ThetaSpace};
use crate::attack::chi2_tail::Chi2Tail;
use crate::attack::minifool::{minimize, score_term, BatchCost};
use crate::attack::MiniFoolConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Output};
use crate::optim::{Control, Kv, Solver, Stop};

const OP: &str = "nuisance_attack";

/// How the pulls are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Projected gradient steps inside the χ² ball.
    Pgd,
    /// The smallest χ² reaching a target (MiniFool's cost per event; a bisection coherently).
    MiniFool,
}

/// Whose θ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each event its own θ.
    Event,
    /// One θ for the whole sample.
    Coherent,
}

/// Settings of an attack in θ space.
#[derive(Clone, Debug)]
pub struct ThetaAttackConfig {
    /// PGD or MiniFool.
    pub method: Method,
    /// Per event or coherent.
    pub mode: Mode,
    /// PGD's budget `Σθ² ≤ chi2`; the largest χ² a coherent MiniFool searches.
    pub chi2: f64,
    /// PGD steps (each coherent MiniFool radius runs one PGD of this many steps).
    pub steps: usize,
    /// PGD step length in θ (`None`: 2.5·√chi2/steps).
    pub step: Option<f64>,
    /// Per nuisance, whether it is attacked (the others stay at 0).
    pub free: Vec<bool>,
    /// Per-event MiniFool: α, β, margin (through its target), minimiser and its settings.
    pub minifool: MiniFoolConfig,
    /// Coherent: the quantity.
    pub population: Population,
    /// Coherent PGD: +1 raises the quantity, −1 lowers it.
    pub direction: f64,
    /// Coherent MiniFool: the relative change to reach (its sign is the direction).
    pub target: f64,
    /// Coherent MiniFool: the bisection stops when the radius is known to this relative
    /// precision.
    pub tolerance: f64,
}

/// A per-event attack's outcome.
#[derive(Clone, Debug)]
pub struct EventAttack {
    /// θ per event, `n × K`.
    pub theta: Array2<f64>,
    /// `Σθ²` per event.
    pub chi2: Vec<f64>,
    /// The χ² tail per event (one degree of freedom per attacked nuisance).
    pub p_value: Vec<f64>,
    /// Scores before and after, `n × k`.
    pub clean_scores: Array2<f32>,
    pub scores: Array2<f32>,
    /// Classes before and after.
    pub clean_class: Vec<i64>,
    pub class: Vec<i64>,
    /// MiniFool's cost per event at θ = 0 and at the result.
    pub cost: Option<(Vec<f64>, Vec<f64>)>,
    /// The events at their θ (derived features recomputed).
    pub data: Dataset,
    /// Why the run ended.
    pub stop: Stop,
}

impl EventAttack {
    /// The fraction of events whose class changed.
    pub fn flip_fraction(&self) -> f64 {
        let n = self.class.len().max(1);
        self.class.iter().zip(&self.clean_class).filter(|(a, b)| a != b).count() as f64 / n as f64
    }
}

/// A coherent attack's outcome.
#[derive(Clone, Debug)]
pub struct CoherentAttack {
    /// θ of every nuisance.
    pub theta: Vec<f64>,
    /// `Σθ²`.
    pub chi2: f64,
    /// The χ² tail (one degree of freedom per attacked nuisance).
    pub p_value: f64,
    /// The quantity (hard cut) at θ = 0 and at the result.
    pub nominal: f64,
    pub value: f64,
    /// MiniFool: whether the target was reached within `chi2`.
    pub reached: Option<bool>,
    /// PGD runs (MiniFool: one per bisection point).
    pub runs: usize,
    /// The events at θ.
    pub data: Dataset,
    /// Why the (last) run ended.
    pub stop: Stop,
}

impl CoherentAttack {
    /// `(value − nominal)/|nominal|` (NaN when the nominal is 0).
    pub fn relative_change(&self) -> f64 {
        if self.nominal == 0.0 {
            f64::NAN
        } else {
            (self.value - self.nominal) / self.nominal.abs()
        }
    }
}

/// The outcome of either mode.
#[derive(Clone, Debug)]
pub enum ThetaAttack {
    Event(Box<EventAttack>),
    Coherent(CoherentAttack),
}

fn bad(key: &str, problem: String) -> Error {
    Error::BadOption { func: OP.into(), key: key.into(), problem }
}

fn check_config(cfg: &ThetaAttackConfig, k: usize) -> Result<()> {
    if !(cfg.chi2.is_finite() && cfg.chi2 > 0.0) {
        return Err(bad("chi2", format!("must be a finite number > 0, got {}", cfg.chi2)));
    }
    if cfg.steps == 0 {
        return Err(bad("steps", "must be ≥ 1".into()));
    }
    if let Some(s) = cfg.step {
        if !(s.is_finite() && s > 0.0) {
            return Err(bad("step", format!("must be a finite number > 0, got {s}")));
        }
    }
    if cfg.free.len() != k || !cfg.free.iter().any(|f| *f) {
        return Err(Error::arg(OP, "no nuisance parameter to attack (free is empty)"));
    }
    if !(cfg.population.temperature.is_finite() && cfg.population.temperature > 0.0) {
        return Err(bad("temperature", format!("must be a finite number > 0, got {}", cfg.population.temperature)));
    }
    if !(cfg.tolerance.is_finite() && cfg.tolerance > 0.0 && cfg.tolerance < 1.0) {
        return Err(bad("tolerance", format!("must be in (0, 1), got {}", cfg.tolerance)));
    }
    if cfg.mode == Mode::Coherent && cfg.method == Method::MiniFool && !(cfg.target.is_finite() && cfg.target != 0.0) {
        return Err(bad("target", format!("a coherent MiniFool needs a relative change ≠ 0, got {}", cfg.target)));
    }
    Ok(())
}

/// Runs the attack.
pub fn theta_attack(space: &ThetaSpace<'_>, cfg: &ThetaAttackConfig, control: &Control) -> Result<ThetaAttack> {
    check_config(cfg, space.n_nuisances())?;
    match (cfg.mode, cfg.method) {
        (Mode::Event, Method::Pgd) => event_pgd(space, cfg, control).map(|r| ThetaAttack::Event(Box::new(r))),
        (Mode::Event, Method::MiniFool) => event_minifool(space, cfg, control).map(|r| ThetaAttack::Event(Box::new(r))),
        (Mode::Coherent, Method::Pgd) => {
            let radius = cfg.chi2.sqrt();
            let run = coherent_pgd(space, cfg, radius, cfg.direction, control)?;
            coherent_result(space, cfg, run, None, 1)
        }
        (Mode::Coherent, Method::MiniFool) => coherent_minifool(space, cfg, control),
    }
}

/// The number of attacked nuisances (the χ² degrees of freedom).
fn dof(cfg: &ThetaAttackConfig) -> usize {
    cfg.free.iter().filter(|f| **f).count()
}

/// One projected step per row: `θ += step·g/‖g‖` on the free nuisances, then back into
/// `‖θ‖ ≤ radius`.
fn step_and_project(theta: &mut [f64], g: &[f64], free: &[bool], step: f64, radius: f64) {
    let norm = g.iter().zip(free).filter(|(_, f)| **f).map(|(g, _)| g * g).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for ((t, g), f) in theta.iter_mut().zip(g).zip(free) {
            if *f {
                *t += step * g / norm;
            }
        }
    }
    let r = theta.iter().map(|t| t * t).sum::<f64>().sqrt();
    if r > radius {
        for t in theta.iter_mut() {
            *t *= radius / r;
        }
    }
}

/// Per event: the class pushed towards (sigmoid: the other; softmax: the clean runner-up).
fn other_classes(out: Output, scores: &Array2<f32>, clean: &[i64]) -> Result<Vec<usize>> {
    match out {
        Output::Sigmoid => Ok(clean.iter().map(|&c| (1 - c) as usize).collect()),
        Output::Softmax => Ok(scores
            .rows()
            .into_iter()
            .zip(clean)
            .map(|(r, &c)| {
                let mut best = if c == 0 { 1 } else { 0 };
                for (j, &v) in r.iter().enumerate() {
                    if j as i64 != c && v > r[best] {
                        best = j;
                    }
                }
                best
            })
            .collect()),
        Output::Linear => {
            Err(Error::arg(OP, "a per-event attack needs a classifier (sigmoid or softmax output), not a regression"))
        }
    }
}

/// The per-event PGD objective: the other class's logit (minus the clean class's, softmax).
fn margin(out: Output, z: &[f32], other: usize, clean: usize, g: &mut [f32]) -> f32 {
    g.fill(0.0);
    match out {
        Output::Sigmoid => {
            let s = if other == 1 { 1.0 } else { -1.0 };
            g[0] = s;
            s * z[0]
        }
        _ => {
            g[other] = 1.0;
            g[clean] = -1.0;
            z[other] - z[clean]
        }
    }
}

/// Events per parallel task of the per-event PGD's steps.
const PROJECT_ROWS: usize = 4096;

struct EventPgd<'s, 'm> {
    space: &'s ThetaSpace<'m>,
    theta: Array2<f64>,
    other: Vec<usize>,
    clean: Vec<i64>,
    free: Vec<bool>,
    step: f64,
    radius: f64,
}

impl Solver for EventPgd<'_, '_> {
    fn name(&self) -> &'static str {
        "nuisance PGD"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let out = self.space.model().output();
        let (other, clean) = (&self.other, &self.clean);
        let obj = |i: usize, z: &[f32], g: &mut [f32]| margin(out, z, other[i], clean[i] as usize, g);
        let ev = self.space.event_grad(&self.theta, GradTarget::Custom(&obj))?;
        let (free, step, radius) = (&self.free, self.step, self.radius);
        // Rows in blocks (one task per row would cost more than the step itself).
        let k = self.theta.ncols().max(1);
        let rows = PROJECT_ROWS * k;
        if let (Some(t), Some(g)) = (self.theta.as_slice_mut(), ev.grad.as_slice()) {
            t.par_chunks_mut(rows).zip(g.par_chunks(rows)).for_each(|(t, g)| {
                for (t, g) in t.chunks_exact_mut(k).zip(g.chunks_exact(k)) {
                    step_and_project(t, g, free, step, radius);
                }
            });
        }
        let flipped = ev.classes.iter().zip(clean).filter(|(a, b)| a != b).count();
        Ok(vec![("flipped", flipped as f64 / clean.len().max(1) as f64)])
    }
}

fn event_pgd(space: &ThetaSpace<'_>, cfg: &ThetaAttackConfig, control: &Control) -> Result<EventAttack> {
    let (n, k) = (space.n_events(), space.n_nuisances());
    let (clean_scores, clean) = space.scores_only(Theta::PerEvent(Array2::zeros((n, k)).view()))?;
    let other = other_classes(space.model().output(), &clean_scores, &clean)?;
    let radius = cfg.chi2.sqrt();
    let step = cfg.step.unwrap_or(2.5 * radius / cfg.steps as f64);
    let mut s = EventPgd { space, theta: Array2::zeros((n, k)), other, clean, free: cfg.free.clone(), step, radius };
    let run = control.executor(cfg.steps).run(&mut s)?;
    event_result(space, cfg, s.theta, clean_scores, s.clean, None, run.stop)
}

fn event_result(
    space: &ThetaSpace<'_>,
    cfg: &ThetaAttackConfig,
    theta: Array2<f64>,
    clean_scores: Array2<f32>,
    clean_class: Vec<i64>,
    cost: Option<(Vec<f64>, Vec<f64>)>,
    stop: Stop,
) -> Result<EventAttack> {
    let (data, scores, class) = space.scores(Theta::PerEvent(theta.view()))?;
    let chi2: Vec<f64> = theta.rows().into_iter().map(|r| r.dot(&r)).collect();
    let tail = Chi2Tail::new(dof(cfg));
    let p_value = chi2.iter().map(|c| tail.sf(*c)).collect();
    Ok(EventAttack { theta, chi2, p_value, clean_scores, scores, clean_class, class, cost, data, stop })
}

/// MiniFool's cost in θ: `α·Σθ²/N + β·(f_t − g)²` over the free nuisances.
struct EventCost<'s, 'm> {
    space: &'s ThetaSpace<'m>,
    free: Vec<usize>,
    class: Vec<usize>,
    goal: f32,
    alpha: f32,
    beta: f32,
    evaluations: AtomicUsize,
}

impl BatchCost for EventCost<'_, '_> {
    fn dim(&self) -> (usize, usize) {
        (self.space.n_events(), self.free.len())
    }

    fn eval(&self, idx: &[usize], u: ndarray::ArrayView2<'_, f32>) -> Result<(Vec<f64>, Array2<f32>)> {
        self.evaluations.fetch_add(idx.len(), Ordering::Relaxed);
        let (n, k) = (self.space.n_events(), self.space.n_nuisances());
        let mut theta = Array2::<f64>::zeros((n, k));
        for (r, &i) in idx.iter().enumerate() {
            for (c, &m) in self.free.iter().enumerate() {
                theta[[i, m]] = f64::from(u[[r, c]]);
            }
        }
        let out = self.space.model().output();
        let (class, goal, beta) = (&self.class, self.goal, self.beta);
        let obj = |r: usize, z: &[f32], g: &mut [f32]| score_term(out, z, class[idx[r]], goal, beta, g);
        let ev = self.space.event_grad_rows(&theta, Some(idx), GradTarget::Custom(&obj))?;
        let a = self.alpha / self.free.len() as f32;
        let mut grad = Array2::<f32>::zeros((idx.len(), self.free.len()));
        let mut cost = Vec::with_capacity(idx.len());
        for r in 0..idx.len() {
            let mut c = f64::from(ev.value[r]);
            for (col, &m) in self.free.iter().enumerate() {
                let t = u[[r, col]];
                c += f64::from(a * t * t);
                grad[[r, col]] = ev.grad[[r, m]] as f32 + 2.0 * a * t;
            }
            cost.push(c);
        }
        Ok((cost, grad))
    }
}

fn event_minifool(space: &ThetaSpace<'_>, cfg: &ThetaAttackConfig, control: &Control) -> Result<EventAttack> {
    let (n, k) = (space.n_events(), space.n_nuisances());
    let (clean_scores, clean) = space.scores_only(Theta::PerEvent(Array2::zeros((n, k)).view()))?;
    let class = other_classes(space.model().output(), &clean_scores, &clean)?;
    let goal = match cfg.minifool.target {
        crate::attack::Target::Flip { margin } if (0.0..=0.5).contains(&margin) => 0.5 + margin,
        crate::attack::Target::Flip { margin } => {
            return Err(bad("margin", format!("must be in [0, 0.5], got {margin}")))
        }
        _ => return Err(Error::arg(OP, "a per-event MiniFool in θ space flips the class (give margin)")),
    };
    let free: Vec<usize> = (0..k).filter(|&m| cfg.free[m]).collect();
    let cost = EventCost {
        space,
        free: free.clone(),
        class,
        goal,
        alpha: cfg.minifool.alpha,
        beta: cfg.minifool.beta,
        evaluations: AtomicUsize::new(0),
    };
    let (u, _iters, _reason, start, end, stop) = minimize(&cost, &cfg.minifool, control)?;
    let mut theta = Array2::<f64>::zeros((n, k));
    for i in 0..n {
        for (c, &m) in free.iter().enumerate() {
            theta[[i, m]] = f64::from(u[[i, c]]);
        }
    }
    event_result(space, cfg, theta, clean_scores, clean, Some((start, end)), stop)
}

/// A coherent PGD run: the best θ (hard-cut value, signed by the direction) and its value.
struct CoherentRun {
    theta: Vec<f64>,
    value: f64,
    nominal: f64,
    stop: Stop,
}

struct CoherentPgd<'s, 'm> {
    space: &'s ThetaSpace<'m>,
    cfg: &'s ThetaAttackConfig,
    theta: Vec<f64>,
    best: (Vec<f64>, f64),
    direction: f64,
    step: f64,
    radius: f64,
}

impl Solver for CoherentPgd<'_, '_> {
    fn name(&self) -> &'static str {
        "coherent nuisance PGD"
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let v = self.space.population(&self.theta, &self.cfg.population)?;
        if self.direction * v.hard > self.direction * self.best.1 {
            self.best = (self.theta.clone(), v.hard);
        }
        let g: Vec<f64> = v.grad.iter().map(|g| self.direction * g).collect();
        step_and_project(&mut self.theta, &g, &self.cfg.free, self.step, self.radius);
        Ok(vec![("value", v.hard), ("surrogate", v.soft)])
    }
}

/// PGD on the population quantity inside `‖θ‖ ≤ radius`; every iterate and the last point
/// are evaluated with the hard cut and the best is kept.
fn coherent_pgd(
    space: &ThetaSpace<'_>,
    cfg: &ThetaAttackConfig,
    radius: f64,
    direction: f64,
    control: &Control,
) -> Result<CoherentRun> {
    let k = space.n_nuisances();
    let zero = vec![0.0; k];
    let nominal = space.population(&zero, &cfg.population)?.hard;
    let step = cfg.step.unwrap_or(2.5 * radius / cfg.steps as f64);
    let mut s = CoherentPgd { space, cfg, theta: zero.clone(), best: (zero, nominal), direction, step, radius };
    let run = control.executor(cfg.steps).run(&mut s)?;
    let last = space.population(&s.theta, &cfg.population)?.hard;
    if direction * last > direction * s.best.1 {
        s.best = (s.theta.clone(), last);
    }
    Ok(CoherentRun { theta: s.best.0, value: s.best.1, nominal, stop: run.stop })
}

fn coherent_result(
    space: &ThetaSpace<'_>,
    cfg: &ThetaAttackConfig,
    run: CoherentRun,
    reached: Option<bool>,
    runs: usize,
) -> Result<ThetaAttack> {
    let chi2: f64 = run.theta.iter().map(|t| t * t).sum();
    let data = space.vary(Theta::Shared(&run.theta))?;
    Ok(ThetaAttack::Coherent(CoherentAttack {
        p_value: Chi2Tail::new(dof(cfg)).sf(chi2),
        theta: run.theta,
        chi2,
        nominal: run.nominal,
        value: run.value,
        reached,
        runs,
        data,
        stop: run.stop,
    }))
}

fn interrupted(s: Stop) -> bool {
    matches!(s, Stop::Interrupted | Stop::Timeout)
}

/// Whether a run's relative change reaches `target` (in its direction).
fn reaches(run: &CoherentRun, target: f64) -> bool {
    run.nominal != 0.0 && (run.value - run.nominal) / run.nominal.abs() * target.signum() >= target.abs()
}

/// The smallest radius whose PGD reaches the target: bisection on `[0, √chi2]`.
fn coherent_minifool(space: &ThetaSpace<'_>, cfg: &ThetaAttackConfig, control: &Control) -> Result<ThetaAttack> {
    let direction = cfg.target.signum();
    let mut hi = cfg.chi2.sqrt();
    let top = coherent_pgd(space, cfg, hi, direction, control)?;
    if top.nominal == 0.0 {
        return Err(Error::arg(OP, "the quantity is 0 at θ = 0: a relative target has no meaning"));
    }
    let mut runs = 1;
    if !reaches(&top, cfg.target) || interrupted(top.stop) {
        let reached = reaches(&top, cfg.target);
        return coherent_result(space, cfg, top, Some(reached), runs);
    }
    let mut best = top;
    let mut lo = 0.0;
    // Each halving costs one PGD; 60 halvings reach any tolerance above f64 resolution.
    while hi - lo > cfg.tolerance * hi && runs < 60 {
        let mid = 0.5 * (lo + hi);
        let r = coherent_pgd(space, cfg, mid, direction, control)?;
        runs += 1;
        if interrupted(r.stop) {
            break;
        }
        if reaches(&r, cfg.target) {
            hi = mid;
            best = r;
        } else {
            lo = mid;
        }
    }
    coherent_result(space, cfg, best, Some(true), runs)
}

#[cfg(test)]
#[path = "attack_tests.rs"]
pub(super) mod tests;
