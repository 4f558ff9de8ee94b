//! MiniFool: per event, the smallest χ² that moves the classifier to a target score.
//!
//! Per event the cost (Flek, Janik, Jung et al., arXiv 2511.01352)
//!
//! ```text
//! λ(u) = α·η + β·(f_t(x⁰ + δ(u)) − g)²,   η = ‖u‖² / N = χ² / N
//! ```
//!
//! is minimised in whitened coordinates (`δ = s·σ ⊙ L u`, see [`UncertaintyModel`]), starting
//! at `u = 0`, for all events at once: every iteration is one batched forward/backward over the
//! events still running. `f_t` is the score of the target class (by default the other class, or
//! the most likely other class of a softmax), `g` the target score (by default the far side of
//! the decision threshold, 0.5 + margin), `N` the χ² degrees of freedom. Two minimisers:
//! - **L-BFGS** (default): per-event two-loop recursion (vectorised over events, memory m) with
//!   a backtracking Armijo line search, so each event's cost never increases;
//! - **Adam**: fixed learning rate in σ units; the best point seen is kept per event.
//!
//! Events stop on their own (`converged`: gradient or cost change below tolerance;
//! `line_search`: no decrease found; `stalled`: stopped as converged without ever moving while
//! the score is still away from its target — a saturated score whose gradient vanished), or
//! when the run hits `max_iters`, Ctrl-C or the timeout.
//! With a feasibility [`Projection`] the cost is minimised at the projected events: every
//! evaluation takes `x' = P(x⁰ + δ(u))`, the χ² of `x' − x⁰` and the score at `x'`, and chains
//! the gradient through P's Jacobian (0 on features a rule pinned — clipped at a bound,
//! frozen, a sentinel kept —, 1 elsewhere; integer rounding passes it straight through). So
//! the line search's guarantee holds for the events actually returned: their cost never
//! exceeds the cost at the start.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array2, ArrayView2, Axis, CowArray, Ix2, Zip};
use rayon::prelude::*;

use super::project::Projection;
use super::result::{outputs, AttackResult, Ending, Known};
use super::uncertainty::UncertaintyModel;
use crate::error::{Error, Result};
use crate::model::{sigmoid, GradTarget, Model, Output};
use crate::optim::Control;

#[path = "minifool_solvers.rs"]
mod solvers;
use solvers::{Adam, Lbfgs};

/// The minimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Minimizer {
    /// Limited-memory BFGS with a backtracking line search (monotone).
    Lbfgs,
    /// Adam with a fixed learning rate (best point kept).
    Adam,
}

impl Minimizer {
    /// Parses "lbfgs" or "adam".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "lbfgs" | "l-bfgs" => Ok(Minimizer::Lbfgs),
            "adam" => Ok(Minimizer::Adam),
            _ => Err(Error::BadOption {
                func: "minifool".into(),
                key: "minimizer".into(),
                problem: format!("must be \"lbfgs\" or \"adam\", got \"{s}\""),
            }),
        }
    }
}

/// What each event is pushed towards.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The other side of the threshold: the target class's score → `0.5 + margin` (sigmoid and
    /// softmax). For softmax the target class is the most likely other class.
    Flip {
        /// Margin beyond 0.5 (0.5 gives g = 1).
        margin: f32,
    },
    /// Per-event target class and target score of that class.
    Classes {
        /// Target class per event.
        class: Vec<i64>,
        /// Target score g per event.
        score: Vec<f32>,
    },
    /// Regression: output `index` → `value` per event.
    Values {
        /// Output column.
        index: usize,
        /// Target value per event.
        value: Vec<f32>,
    },
}

/// MiniFool settings (reference defaults in brackets).
#[derive(Clone, Debug, PartialEq)]
pub struct MiniFoolConfig {
    /// Weight of η = χ²/N [1].
    pub alpha: f32,
    /// Weight of the score term [1].
    pub beta: f32,
    /// Target of every event [flip with margin 0.5].
    pub target: Target,
    /// Minimiser [L-BFGS].
    pub minimizer: Minimizer,
    /// Iteration limit [100].
    pub max_iters: usize,
    /// Stop an event when max |∂λ/∂u| is below this [1e-5].
    pub gtol: f64,
    /// Stop an event when λ decreases by less than `ftol·max(1, λ)` in an iteration [1e-9].
    pub ftol: f64,
    /// L-BFGS memory [10].
    pub memory: usize,
    /// Adam learning rate in σ units [0.05].
    pub lr: f32,
}

impl Default for MiniFoolConfig {
    fn default() -> Self {
        MiniFoolConfig {
            alpha: 1.0,
            beta: 1.0,
            target: Target::Flip { margin: 0.5 },
            minimizer: Minimizer::Lbfgs,
            max_iters: 100,
            gtol: 1e-5,
            ftol: 1e-9,
            memory: 10,
            lr: 0.05,
        }
    }
}

/// A MiniFool run: the attack outcome plus each event's cost at the start and at the end.
#[derive(Clone, Debug)]
pub struct MiniFoolResult {
    /// Perturbed events, scores, χ², flips, iterations, reasons.
    pub attack: AttackResult,
    /// λ at u = 0: β·(f_t(x⁰) − g)² (η = 0), or with a projection that moves x⁰ the cost at
    /// P(x⁰), χ² of P(x⁰) − x⁰ included.
    pub cost_start: Vec<f64>,
    /// λ at the returned (projected) point.
    pub cost_end: Vec<f64>,
    /// Forward+backward passes over single events, summed (the work done).
    pub evaluations: usize,
}

/// Runs MiniFool on every event of `x0` (physical units) under `unc` (at its scale s).
pub fn minifool(
    model: &dyn Model,
    unc: &UncertaintyModel,
    x0: ArrayView2<'_, f32>,
    cfg: &MiniFoolConfig,
    proj: &Projection,
    control: &Control,
) -> Result<MiniFoolResult> {
    let n = x0.nrows();
    minifool_scaled(model, unc, x0, &vec![1.0; n], cfg, proj, control)
}

/// [`minifool`] with an extra per-event factor on s (for per-event flip thresholds).
pub fn minifool_scaled(
    model: &dyn Model,
    unc: &UncertaintyModel,
    x0: ArrayView2<'_, f32>,
    scales: &[f32],
    cfg: &MiniFoolConfig,
    proj: &Projection,
    control: &Control,
) -> Result<MiniFoolResult> {
    check_config(cfg)?;
    let n = x0.nrows();
    if n == 0 {
        return Err(Error::Empty { op: "minifool", what: "the dataset".into() });
    }
    if scales.len() != n {
        return Err(Error::Shape { op: "minifool", expected: format!("{n} scales"), got: format!("{}", scales.len()) });
    }
    let mut sigma = unc.sigma(x0);
    Zip::from(sigma.rows_mut()).and(scales).for_each(|mut r, &s| r *= s);
    let (targets, clean) = resolve_targets(model, x0, &cfg.target)?;
    let problem = Problem {
        model,
        unc,
        x0,
        sigma,
        targets,
        alpha: cfg.alpha,
        beta: cfg.beta,
        dof: unc.dofs(x0).into_iter().map(|k| k.max(1)).collect(),
        proj,
        evaluations: AtomicUsize::new(0),
    };
    let (u, iters, reason, cost_start, cost_end, stop) = minimize(&problem, cfg, control)?;
    let mut x = &x0 + &unc.delta_from_whitened(problem.sigma.view(), u.view());
    proj.apply(x0, x.view_mut());
    let ending = Ending { iters, reason, stop };
    let attack = AttackResult::finish(model, unc, x0, x, ending, Known { clean, sigma: None })?;
    let evaluations = problem.evaluations.load(Ordering::Relaxed);
    Ok(MiniFoolResult { attack, cost_start, cost_end, evaluations })
}

fn check_config(cfg: &MiniFoolConfig) -> Result<()> {
    let bad = |key: &str, problem: String| Error::BadOption { func: "minifool".into(), key: key.into(), problem };
    if !(cfg.alpha.is_finite() && cfg.alpha >= 0.0) {
        return Err(bad("alpha", format!("must be a finite number ≥ 0, got {}", cfg.alpha)));
    }
    if !(cfg.beta.is_finite() && cfg.beta > 0.0) {
        return Err(bad("beta", format!("must be a finite number > 0, got {}", cfg.beta)));
    }
    if cfg.memory == 0 {
        return Err(bad("memory", "must be ≥ 1".into()));
    }
    crate::limits::check("minifool", "memory", cfg.memory, crate::limits::LBFGS_MEMORY)?;
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(bad("lr", format!("must be a finite number > 0, got {}", cfg.lr)));
    }
    Ok(())
}

/// Scores and predicted classes of the clean events.
type Clean = (Array2<f32>, Vec<i64>);

/// Per-event target: the class whose score is pushed (or output index) and its target value.
struct Targets {
    class: Vec<usize>,
    value: Vec<f32>,
}

/// The per-event targets, with the clean scores and classes when finding them needed a pass.
fn resolve_targets(model: &dyn Model, x0: ArrayView2<'_, f32>, t: &Target) -> Result<(Targets, Option<Clean>)> {
    let n = x0.nrows();
    let out = model.output();
    match t {
        Target::Flip { margin } => {
            if out == Output::Linear {
                return Err(Error::BadArgument {
                    func: "minifool".into(),
                    problem: "a regression (linear) model has no decision threshold; give #{ target: value } or #{ shift: Δ }"
                        .into(),
                });
            }
            if !(margin.is_finite() && *margin >= 0.0 && *margin <= 0.5) {
                return Err(Error::BadOption {
                    func: "minifool".into(),
                    key: "margin".into(),
                    problem: format!("must be in [0, 0.5], got {margin}"),
                });
            }
            let (scores, classes) = outputs(model, x0)?;
            let class: Vec<usize> = match out {
                Output::Sigmoid => classes.iter().map(|&c| (1 - c) as usize).collect(),
                _ => {
                    scores.rows().into_iter().zip(&classes).map(|(r, &c)| runner_up(r.as_slice(), c as usize)).collect()
                }
            };
            Ok((Targets { class, value: vec![0.5 + margin; n] }, Some((scores, classes))))
        }
        Target::Classes { class, score } => {
            if class.len() != n || score.len() != n {
                return Err(Error::Shape {
                    op: "minifool",
                    expected: format!("{n} target classes and scores"),
                    got: format!("{} and {}", class.len(), score.len()),
                });
            }
            let k = if out == Output::Sigmoid { 2 } else { model.n_outputs() };
            if let Some(c) = class.iter().find(|&&c| c < 0 || c as usize >= k) {
                return Err(Error::BadArgument {
                    func: "minifool".into(),
                    problem: format!("target class {c} is not a class of this model (0..{})", k - 1),
                });
            }
            Ok((Targets { class: class.iter().map(|&c| c as usize).collect(), value: score.clone() }, None))
        }
        Target::Values { index, value } => {
            if out != Output::Linear || *index >= model.n_outputs() || value.len() != n {
                return Err(Error::BadArgument {
                    func: "minifool".into(),
                    problem: format!(
                        "target values need a linear (regression) model with output {index} and one value per event ({n})"
                    ),
                });
            }
            Ok((Targets { class: vec![*index; n], value: value.clone() }, None))
        }
    }
}

/// The most likely class other than `c`.
fn runner_up(s: Option<&[f32]>, c: usize) -> usize {
    let Some(s) = s else { return 0 };
    let mut best = usize::MAX;
    for (j, &v) in s.iter().enumerate() {
        if j != c && (best == usize::MAX || v > s[best]) {
            best = j;
        }
    }
    best.min(s.len().saturating_sub(1))
}

/// Rows `idx` (sorted, distinct) of `a`: `a` itself, borrowed, when `idx` is every row, else a
/// copy gathered in parallel.
fn gather_rows<'b>(a: ArrayView2<'b, f32>, idx: &[usize]) -> CowArray<'b, f32, Ix2> {
    if idx.len() == a.nrows() && idx.iter().enumerate().all(|(i, &j)| i == j) {
        return CowArray::from(a);
    }
    let mut out = Array2::<f32>::zeros((idx.len(), a.ncols()));
    out.axis_chunks_iter_mut(Axis(0), GATHER_CHUNK).into_par_iter().zip(idx.par_chunks(GATHER_CHUNK)).for_each(
        |(mut o, ids)| {
            for (mut row, &i) in o.rows_mut().into_iter().zip(ids) {
                row.assign(&a.row(i));
            }
        },
    );
    CowArray::from(out)
}

/// Rows per parallel task of [`gather_rows`].
const GATHER_CHUNK: usize = 2048;

/// A batched per-event cost that MiniFool's minimisers ([`Lbfgs`], [`Adam`]) minimise from
/// u = 0: `n` events of `d` free coordinates each. MiniFool's own is [`Problem`]; attacks in
/// θ space (`systematics::attack`) bring theirs.
pub(crate) trait BatchCost: Sync {
    /// `(n, d)`: events and coordinates per event.
    fn dim(&self) -> (usize, usize);
    /// The cost and its gradient for the events `idx` at the points `u` (rows matching `idx`).
    fn eval(&self, idx: &[usize], u: ArrayView2<'_, f32>) -> Result<(Vec<f64>, Array2<f32>)>;
}

/// Runs a minimiser on any [`BatchCost`] (settings from `cfg`: minimiser, iterations,
/// tolerances, memory, learning rate): points u, iterations, reasons, start and end costs, stop.
pub(crate) fn minimize(cost: &dyn BatchCost, cfg: &MiniFoolConfig, control: &Control) -> Result<solvers::Finished> {
    check_config(cfg)?;
    Ok(match cfg.minimizer {
        Minimizer::Lbfgs => {
            let mut s = Lbfgs::new(cost, cfg)?;
            let run = control.executor(cfg.max_iters).run(&mut s)?;
            s.finish(run.stop)
        }
        Minimizer::Adam => {
            let mut s = Adam::new(cost, cfg)?;
            let run = control.executor(cfg.max_iters).run(&mut s)?;
            s.finish(run.stop)
        }
    })
}

impl BatchCost for Problem<'_> {
    fn dim(&self) -> (usize, usize) {
        self.x0.dim()
    }

    fn eval(&self, idx: &[usize], u: ArrayView2<'_, f32>) -> Result<(Vec<f64>, Array2<f32>)> {
        Problem::eval(self, idx, u)
    }
}

/// The batched cost function.
struct Problem<'a> {
    model: &'a dyn Model,
    unc: &'a UncertaintyModel,
    x0: ArrayView2<'a, f32>,
    sigma: Array2<f32>,
    targets: Targets,
    alpha: f32,
    beta: f32,
    /// χ² degrees of freedom per event (≥ 1): the cost's χ² is per degree of freedom.
    dof: Vec<usize>,
    proj: &'a Projection,
    evaluations: AtomicUsize,
}

impl Problem<'_> {
    /// λ and ∂λ/∂u for the events `idx` at whitened points `u` (rows matching `idx`). With a
    /// projection, λ is taken at the projected events `x' = P(x⁰ + δ(u))` (η from the χ² of
    /// `x' − x⁰`) and the gradient is chained through P's Jacobian `m` (see the module doc).
    fn eval(&self, idx: &[usize], u: ArrayView2<'_, f32>) -> Result<(Vec<f64>, Array2<f32>)> {
        self.evaluations.fetch_add(idx.len(), Ordering::Relaxed);
        let sig = gather_rows(self.sigma.view(), idx);
        let x0 = gather_rows(self.x0, idx);
        let mut x = self.unc.delta_from_whitened(sig.view(), u);
        Zip::from(&mut x).and(&x0).par_for_each(|x, &x0| *x += x0);
        let projected = if self.proj.is_empty() {
            None
        } else {
            let mut jac = self.proj.apply_with_jacobian(x0.view(), x.view_mut());
            Zip::from(&mut jac).and(&sig).for_each(|m, &s| *m = if s > 0.0 { *m } else { 0.0 });
            let u_proj = self.unc.whiten(sig.view(), (&x - &x0).view(), true);
            Some((jac, u_proj))
        };
        let (out, beta) = (self.model.output(), self.beta);
        let (cls, val) = (&self.targets.class, &self.targets.value);
        let objective = |i: usize, z: &[f32], g: &mut [f32]| -> f32 {
            let e = idx[i];
            score_term(out, z, cls[e], val[e], beta, g)
        };
        let r = self.model.input_grad_and_scores(x.view(), GradTarget::Custom(&objective))?;
        let a = |i: usize| 2.0 * self.alpha / self.dof[idx[i]] as f32;
        let add_metric = |gu: &mut Array2<f32>, metric: ArrayView2<'_, f32>| {
            Zip::indexed(gu.rows_mut()).and(metric.rows()).par_for_each(|i, mut g, m| g.scaled_add(a(i), &m));
        };
        let (gu, eta_u) = match projected {
            None => {
                let mut gu = self.unc.grad_to_whitened(sig.view(), r.grad.view());
                add_metric(&mut gu, u.view());
                (gu, CowArray::from(u))
            }
            Some((jac, u_proj)) => {
                let mut gu = self.unc.grad_to_whitened(sig.view(), (&r.grad * &jac).view());
                add_metric(&mut gu, self.unc.masked_metric(u_proj.view(), jac.view()).view());
                (gu, CowArray::from(u_proj))
            }
        };
        let cost = r
            .value
            .iter()
            .zip(eta_u.rows())
            .zip(idx)
            .map(|((&v, ur), &e)| f64::from(self.alpha) * f64::from(ur.dot(&ur)) / self.dof[e] as f64 + f64::from(v))
            .collect();
        Ok((cost, gu))
    }
}

/// β·(f_t − g)² of one event and its gradient with respect to the outputs `z`.
pub(crate) fn score_term(out: Output, z: &[f32], class: usize, target: f32, beta: f32, g: &mut [f32]) -> f32 {
    g.fill(0.0);
    match out {
        Output::Sigmoid => {
            let p = sigmoid(z[0]);
            let (f, df) = if class == 1 { (p, p * (1.0 - p)) } else { (1.0 - p, -p * (1.0 - p)) };
            g[0] = 2.0 * beta * (f - target) * df;
            beta * (f - target) * (f - target)
        }
        Output::Softmax => {
            let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|v| (v - m).exp()).sum();
            let pc = (z[class] - m).exp() / sum;
            let c = 2.0 * beta * (pc - target);
            for (j, gj) in g.iter_mut().enumerate() {
                let pj = (z[j] - m).exp() / sum;
                *gj = c * pc * (if j == class { 1.0 } else { 0.0 } - pj);
            }
            beta * (pc - target) * (pc - target)
        }
        Output::Linear => {
            let f = z[class];
            g[class] = 2.0 * beta * (f - target);
            beta * (f - target) * (f - target)
        }
    }
}

#[cfg(test)]
#[path = "minifool_tests.rs"]
mod tests;
