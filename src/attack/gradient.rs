//! FGSM and PGD with the budget in σ units of an [`UncertaintyModel`].
//!
//! With `σ(x⁰)` the per-event uncertainties at scale s:
//! - L∞ box: `|δᵢ| ≤ ε·σᵢ`; a step moves each feature by `a·σᵢ·sign(∂J/∂xᵢ)`;
//! - L2 (χ²) ball: `‖u‖₂ ≤ ε` in whitened coordinates (`δ = σ ⊙ L u`, so `χ² = ‖u‖²`; with a
//!   correlated model this is the Mahalanobis ball); a step moves `u` by `a` along the
//!   normalised whitened gradient `Lᵀ(σ ⊙ ∂J/∂x)`.
//!
//! After every step the events are projected back onto the ball, then through the feasibility
//! [`Projection`] (clip, integer, sentinel, frozen). Frozen features have σ = 0, so they never
//! move. FGSM is one step of size ε.
//!
//! The objective `J` is the [`Goal`]: the loss of the clean predicted (or true) class
//! (untargeted, ascended), the loss of a target class or score (targeted, descended), or ± a
//! regression output (ascended).

use ndarray::{Array2, ArrayView2, Axis, Zip};
use rand::Rng as _;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::project::Projection;
use super::result::{outputs, AttackResult, Ending, Known};
use super::uncertainty::UncertaintyModel;
use crate::error::{Error, Result};
use crate::model::{GradTarget, Model, Output, Targets};
use crate::optim::{Control, Kv, Solver};
use crate::rng::event_rng;

/// Events per chunk for random starts.
const START_CHUNK: usize = 4096;

/// Which ball bounds the perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `|δᵢ| ≤ ε·σᵢ` for every feature.
    Linf,
    /// `χ² = δᵀΣ⁻¹δ ≤ ε²` (diagonal or Mahalanobis, following the model).
    L2,
}

impl Norm {
    /// Parses "linf" or "l2" (also "chi2", "mahalanobis").
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "linf" | "inf" => Ok(Norm::Linf),
            "l2" | "chi2" | "mahalanobis" => Ok(Norm::L2),
            _ => Err(Error::BadOption {
                func: "pgd".into(),
                key: "norm".into(),
                problem: format!("must be one of \"linf\", \"l2\" (also \"chi2\"/\"mahalanobis\"), got \"{s}\""),
            }),
        }
    }
}

/// What the attack tries to do to each event.
#[derive(Clone, Debug, PartialEq)]
pub enum Goal {
    /// Maximise the loss of each event's clean predicted class (found in the attack's first
    /// forward pass, so the clean events are evaluated once).
    UntargetedClean,
    /// Maximise the loss of these classes (e.g. the true labels).
    Untargeted(Vec<i64>),
    /// Minimise the loss of these target classes.
    TargetClass(Vec<i64>),
    /// Sigmoid output: minimise the BCE towards this score.
    TargetScore(f32),
    /// Linear output: push output `index` up (`true`) or down.
    Shift {
        /// Output column.
        index: usize,
        /// Direction.
        up: bool,
    },
}

/// Settings of FGSM/PGD.
#[derive(Clone, Debug, PartialEq)]
pub struct PgdConfig {
    /// Budget ε in σ units.
    pub eps: f32,
    /// Step size in σ units.
    pub step: f32,
    /// Number of steps (FGSM: 1 step of size ε).
    pub steps: usize,
    /// The ball.
    pub norm: Norm,
    /// Start at a uniform random point of the ball.
    pub random_start: bool,
    /// Seed of the random start.
    pub seed: u64,
    /// Position of the first attacked event in the whole sample (a chain): the random start
    /// of the event at position `p` is drawn from the per-event stream `(seed, p)`
    /// ([`crate::rng::event_rng`]), so a chunk or a shard of a chain gets the numbers of one
    /// run over the whole chain. 0 for an in-memory dataset (positions are its rows).
    pub first_event: u64,
}

impl PgdConfig {
    /// FGSM: one step of size ε.
    pub fn fgsm(eps: f32, norm: Norm) -> Self {
        PgdConfig { eps, step: eps, steps: 1, norm, random_start: false, seed: 0, first_event: 0 }
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, v: f32| Error::BadOption {
            func: "pgd".into(),
            key: key.into(),
            problem: format!("must be a finite number > 0, got {v}"),
        };
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(bad("eps", self.eps));
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(bad("step", self.step));
        }
        if self.steps == 0 {
            return Err(Error::BadOption { func: "pgd".into(), key: "steps".into(), problem: "must be ≥ 1".into() });
        }
        Ok(())
    }
}

/// Runs PGD (or FGSM) on every event of `x0` (`n × d`, physical units).
pub fn pgd(
    model: &dyn Model,
    unc: &UncertaintyModel,
    x0: ArrayView2<'_, f32>,
    goal: &Goal,
    cfg: &PgdConfig,
    proj: &Projection,
    control: &Control,
) -> Result<AttackResult> {
    cfg.check()?;
    check_goal(model, goal, x0.nrows())?;
    if x0.nrows() == 0 {
        return Err(Error::Empty { op: "pgd", what: "the dataset".into() });
    }
    let sigma = unc.sigma(x0);
    let mut solver = Pgd::new(model, unc, x0, sigma, goal, cfg, proj)?;
    let run = control.executor(cfg.steps).run(&mut solver)?;
    let n = x0.nrows();
    let ending = Ending { iters: vec![run.iters as u32; n], reason: vec![run.stop.as_str(); n], stop: run.stop };
    let x = std::mem::take(&mut solver.x);
    let known = Known { clean: solver.clean.take(), sigma: Some(solver.sigma.view()) };
    AttackResult::finish(model, unc, x0, x, ending, known)
}

fn check_goal(model: &dyn Model, goal: &Goal, n: usize) -> Result<()> {
    let out = model.output();
    match goal {
        Goal::Untargeted(c) | Goal::TargetClass(c) if c.len() != n => Err(Error::Shape {
            op: "pgd",
            expected: format!("{n} classes (one per event)"),
            got: format!("{}", c.len()),
        }),
        Goal::UntargetedClean | Goal::Untargeted(_) | Goal::TargetClass(_) if out == Output::Linear => Err(Error::BadArgument {
            func: "pgd".into(),
            problem:
                "a regression (linear) model has no classes to attack; use #{ direction: \"up\" | \"down\" | \"both\" }"
                    .into(),
        }),
        Goal::TargetScore(g) if out != Output::Sigmoid || !(0.0..=1.0).contains(g) => Err(Error::BadArgument {
            func: "pgd".into(),
            problem: format!("a target score needs a sigmoid model and a score in [0, 1], got {g} for a {out} model"),
        }),
        Goal::Shift { index, .. } if out != Output::Linear || *index >= model.n_outputs() => Err(Error::BadArgument {
            func: "pgd".into(),
            problem: format!("shifting output {index} needs a linear (regression) model with that output"),
        }),
        _ => Ok(()),
    }
}

/// The PGD iteration as an optimizer-framework solver (one step = one step on every event).
struct Pgd<'a> {
    model: &'a dyn Model,
    unc: &'a UncertaintyModel,
    x0: ArrayView2<'a, f32>,
    sigma: Array2<f32>,
    goal: &'a Goal,
    cfg: &'a PgdConfig,
    proj: &'a Projection,
    /// Soft targets of [`Goal::TargetScore`] (empty otherwise).
    soft: Array2<f32>,
    /// Current events.
    x: Array2<f32>,
    /// Whitened perturbation (L2 only).
    u: Option<Array2<f32>>,
    /// Scores and classes of the clean events: from the first step's forward pass, or
    /// computed up front before a random start.
    clean: Option<(Array2<f32>, Vec<i64>)>,
}

impl<'a> Pgd<'a> {
    fn new(
        model: &'a dyn Model,
        unc: &'a UncertaintyModel,
        x0: ArrayView2<'a, f32>,
        sigma: Array2<f32>,
        goal: &'a Goal,
        cfg: &'a PgdConfig,
        proj: &'a Projection,
    ) -> Result<Self> {
        let soft = match goal {
            Goal::TargetScore(g) => Array2::from_elem((x0.nrows(), 1), *g),
            _ => Array2::zeros((0, 1)),
        };
        let mut p = Pgd { model, unc, x0, sigma, goal, cfg, proj, soft, x: x0.to_owned(), u: None, clean: None };
        if cfg.norm == Norm::L2 {
            p.u = Some(Array2::zeros(x0.raw_dim()));
        }
        if cfg.random_start {
            p.clean = Some(outputs(model, x0)?);
            p.random_start();
        }
        Ok(p)
    }

    /// Gradient of the objective to *ascend*. The first pass at the clean events also records
    /// their scores and classes.
    fn ascent_grad(&mut self) -> Result<Array2<f32>> {
        let clean_classes = self.clean.as_ref().map(|c| c.1.as_slice());
        let (target, sign) = match (self.goal, clean_classes) {
            (Goal::UntargetedClean, Some(c)) => (GradTarget::Loss(Targets::Labels(c)), 1.0),
            (Goal::UntargetedClean, None) => (GradTarget::LossOfPredicted, 1.0),
            (Goal::Untargeted(c), _) => (GradTarget::Loss(Targets::Labels(c)), 1.0),
            (Goal::TargetClass(c), _) => (GradTarget::Loss(Targets::Labels(c)), -1.0),
            (Goal::TargetScore(_), _) => (GradTarget::Loss(Targets::Values(self.soft.view())), -1.0),
            (Goal::Shift { index, up }, _) => (GradTarget::Logit { class: *index }, if *up { 1.0 } else { -1.0 }),
        };
        let r = self.model.input_grad_and_scores(self.x.view(), target)?;
        if self.clean.is_none() {
            self.clean = Some((r.scores, r.classes));
        }
        let mut g = r.grad;
        if sign < 0.0 {
            g.mapv_inplace(|v| -v);
        }
        Ok(g)
    }

    fn random_start(&mut self) {
        let (n, d) = self.x.dim();
        let mut r = Array2::<f32>::zeros((n, d));
        let (seed, eps, norm, first) = (self.cfg.seed, self.cfg.eps, self.cfg.norm, self.cfg.first_event);
        r.axis_chunks_iter_mut(Axis(0), START_CHUNK).into_par_iter().enumerate().for_each(|(c, mut chunk)| {
            for (k, mut row) in chunk.rows_mut().into_iter().enumerate() {
                // one stream per event, keyed by its position: independent of the batching,
                // the thread count and the chunking of a chain
                let mut g = event_rng(seed, first + (c * START_CHUNK + k) as u64);
                match norm {
                    Norm::Linf => row.iter_mut().for_each(|v| *v = g.random_range(-eps..=eps)),
                    Norm::L2 => {
                        // Uniform in the d-ball: a Gaussian direction, radius ε·U^(1/d).
                        row.iter_mut().for_each(|v| *v = g.sample(StandardNormal));
                        let norm2 = row.dot(&row).sqrt().max(1e-12);
                        let radius = eps * g.random::<f32>().powf(1.0 / d as f32);
                        row.mapv_inplace(|v| v * radius / norm2);
                    }
                }
            }
        });
        match self.cfg.norm {
            Norm::Linf => self.x = &self.x0 + &(&r * &self.sigma),
            Norm::L2 => {
                self.x = &self.x0 + &self.unc.delta_from_whitened(self.sigma.view(), r.view());
                self.u = Some(r);
            }
        }
        self.project_features();
    }

    /// Feasibility rules; the whitened perturbation follows the projected events.
    fn project_features(&mut self) {
        if self.proj.is_empty() {
            return;
        }
        self.proj.apply(self.x0, self.x.view_mut());
        if self.u.is_some() {
            let delta = &self.x - &self.x0;
            self.u = Some(self.unc.whiten(self.sigma.view(), delta.view(), true));
        }
    }

    fn step_linf(&mut self, g: &Array2<f32>) {
        let (a, eps) = (self.cfg.step, self.cfg.eps);
        Zip::from(&mut self.x).and(&self.x0).and(&self.sigma).and(g).par_for_each(|x, &x0, &s, &gv| {
            let moved = *x + a * s * sign(gv);
            let r = eps * s;
            *x = moved.clamp(x0 - r, x0 + r);
        });
    }

    fn step_l2(&mut self, g: &Array2<f32>) {
        let (a, eps) = (self.cfg.step, self.cfg.eps);
        let gu = self.unc.grad_to_whitened(self.sigma.view(), g.view());
        let Some(u) = self.u.as_mut() else { return };
        Zip::from(u.rows_mut()).and(gu.rows()).par_for_each(|mut ur, gr| {
            let gn = gr.dot(&gr).sqrt();
            if gn > 0.0 {
                ur.scaled_add(a / gn, &gr);
            }
            let un = ur.dot(&ur).sqrt();
            if un > eps {
                ur.mapv_inplace(|v| v * eps / un);
            }
        });
        self.x = &self.x0 + &self.unc.delta_from_whitened(self.sigma.view(), u.view());
    }
}

impl Solver for Pgd<'_> {
    fn name(&self) -> &'static str {
        if self.cfg.steps == 1 {
            "fgsm"
        } else {
            "pgd"
        }
    }

    fn step(&mut self, _iter: usize) -> Result<Kv> {
        let g = self.ascent_grad()?;
        match self.cfg.norm {
            Norm::Linf => self.step_linf(&g),
            Norm::L2 => self.step_l2(&g),
        }
        self.project_features();
        Ok(Kv::new())
    }
}

/// sign(v) with sign(0) = 0 (as `torch.sign`).
#[inline]
pub(crate) fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
#[path = "gradient_tests.rs"]
mod tests;
