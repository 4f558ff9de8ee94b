//! PGD (and, through [`Gradient::fgsm`], FGSM) as a registered [`Attack`]: the options, the
//! goals they name, and the runs for scripts, adversarial training and s-scans.

use ndarray::{Array2, ArrayView2};

use crate::attack::gradient::{pgd, Goal, Norm, PgdConfig};
use crate::attack::options::{AttackOptions, Number};
use crate::attack::project::Projection;
use crate::attack::result::AttackResult;
use crate::attack::uncertainty::UncertaintyModel;
use crate::attack::{Attack, Entry, Outcome, Purpose, Setup};
use crate::error::{Error, Result};
use crate::model::{Model, Output};
use crate::optim::Control;

/// The registry entry.
pub const ENTRY: Entry = Entry {
    name: "pgd",
    about: "projected gradient descent in σ units (L∞ box or χ² ball), untargeted, targeted or regression",
    budgeted: true,
    configure: |o, s| Gradient::configure("pgd", o, s),
};

/// FGSM or PGD, configured: the settings, the goals (two for a regression "both"), the
/// budget and the feasibility rules.
#[derive(Clone, Debug)]
pub struct Gradient {
    name: &'static str,
    /// ε, step, steps, norm, random start.
    pub cfg: PgdConfig,
    /// What each run aims at; with two goals each event keeps the larger output change.
    pub goals: Vec<Goal>,
    /// The budget's σ.
    pub unc: UncertaintyModel,
    /// Feasibility rules.
    pub proj: Projection,
}

impl Gradient {
    /// FGSM or PGD (`name`) with `cfg`, aimed at the clean predicted class.
    pub fn new(name: &'static str, cfg: PgdConfig, unc: UncertaintyModel, proj: Projection) -> Self {
        Gradient { name, cfg, goals: vec![Goal::UntargetedClean], unc, proj }
    }

    /// Reads the options of `name` ("fgsm" or "pgd") for `setup`.
    pub fn configure(name: &'static str, o: &mut dyn AttackOptions, s: &Setup) -> Result<Box<dyn Attack>> {
        let unc = s.budget(name)?;
        let cfg = config(name, o).map_err(|e| named(name, e))?;
        let goals = match s.purpose {
            Purpose::Script => goals(name, o, s)?,
            // Training ascends the true labels' loss, a scan the clean class's: set per run.
            Purpose::Training | Purpose::Scan => Vec::new(),
        };
        let proj = s.projection(name, o)?;
        Ok(Box::new(Gradient { name, cfg, goals, unc, proj }))
    }
}

/// `e` as raised by the FGSM/PGD solver (whose errors name `pgd`), naming `name` instead, so
/// an `fgsm` call's errors say `fgsm:`.
fn named(name: &'static str, e: Error) -> Error {
    match e {
        Error::BadOption { func, key, problem } if func == "pgd" => {
            Error::BadOption { func: name.into(), key, problem }
        }
        Error::BadArgument { func, problem } if func == "pgd" => Error::BadArgument { func: name.into(), problem },
        Error::Empty { op: "pgd", what } => Error::Empty { op: name, what },
        Error::Shape { op: "pgd", expected, got } => Error::Shape { op: name, expected, got },
        e => e,
    }
}

/// ε and the norm; for PGD also steps, step, random start and its seed (FGSM draws no seed).
fn config(name: &'static str, o: &mut dyn AttackOptions) -> Result<PgdConfig> {
    let eps = o.positive("eps", 1.0)? as f32;
    let norm = Norm::parse(&o.string("norm", "linf")?)?;
    if name == "fgsm" {
        return Ok(PgdConfig::fgsm(eps, norm));
    }
    let steps = o.usize("steps", 10)?;
    let step = o.positive("step", f64::from(2.5 * eps / steps.max(1) as f32))? as f32;
    let random_start = o.bool("random_start", false)?;
    let seed = o.seed()?;
    Ok(PgdConfig { eps, step, steps, norm, random_start, seed, first_event: 0 })
}

/// The goals of options `labels`, `target`, `direction`.
fn goals(name: &'static str, o: &mut dyn AttackOptions, s: &Setup) -> Result<Vec<Goal>> {
    let labels = o.choice("labels", &["predicted", "true"], "predicted")?;
    let target = o.number("target")?;
    let direction = o.choice("direction", &["up", "down", "both"], "both")?;
    if s.model.output() == Output::Linear {
        return Ok(match direction {
            "up" => vec![Goal::Shift { index: 0, up: true }],
            "down" => vec![Goal::Shift { index: 0, up: false }],
            _ => vec![Goal::Shift { index: 0, up: true }, Goal::Shift { index: 0, up: false }],
        });
    }
    match target {
        Some(Number::Int(c)) => return Ok(vec![Goal::TargetClass(vec![c; s.events.len()])]),
        Some(Number::Float(g)) => return Ok(vec![Goal::TargetScore(g as f32)]),
        Some(Number::Other(t)) => {
            return Err(Error::arg(name, format!("target must be a class (int) or a score (float), got {t}")))
        }
        None => {}
    }
    match labels {
        "true" => {
            let y = s.events.label().map(<[i64]>::to_vec).ok_or_else(|| {
                Error::arg(name, "labels: \"true\" needs a dataset with labels; use \"predicted\" (the default)")
            })?;
            Ok(vec![Goal::Untargeted(y)])
        }
        _ => Ok(vec![Goal::UntargetedClean]),
    }
}

impl Attack for Gradient {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        _labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<Outcome> {
        let mut results = Vec::with_capacity(self.goals.len());
        for g in &self.goals {
            results.push(pgd(model, &self.unc, x, g, &self.cfg, &self.proj, control).map_err(|e| named(self.name, e))?);
        }
        let mut it = results.into_iter();
        let first = it.next().ok_or_else(|| Error::arg(self.name, "no goal"))?;
        Ok(Outcome::plain(it.fold(first, best_shift)))
    }

    fn augment(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        let cfg = PgdConfig { seed, ..self.cfg.clone() };
        let r = pgd(model, &self.unc, x, &Goal::Untargeted(labels.to_vec()), &cfg, &self.proj, control);
        Ok(r.map_err(|e| named(self.name, e))?.x)
    }

    fn budget(&self) -> Option<&UncertaintyModel> {
        Some(&self.unc)
    }

    fn place(&mut self, position: u64) {
        self.cfg.first_event = position;
    }

    fn at_budget(
        &self,
        model: &dyn Model,
        unc: &UncertaintyModel,
        x: ArrayView2<'_, f32>,
        clean: &[i64],
        control: &Control,
    ) -> Result<AttackResult> {
        pgd(model, unc, x, &Goal::Untargeted(clean.to_vec()), &self.cfg, &self.proj, control)
    }
}

/// For a regression "both": per event the result with the larger output change.
pub fn best_shift(a: AttackResult, b: AttackResult) -> AttackResult {
    let mut out = a.clone();
    for i in 0..a.len() {
        let da = (a.score_after[[i, 0]] - a.score_before[[i, 0]]).abs();
        let db = (b.score_after[[i, 0]] - b.score_before[[i, 0]]).abs();
        if db > da {
            out.x.row_mut(i).assign(&b.x.row(i));
            out.score_after.row_mut(i).assign(&b.score_after.row(i));
            out.class_after[i] = b.class_after[i];
            out.chi2[i] = b.chi2[i];
            out.p_value[i] = b.p_value[i];
        }
    }
    out
}
