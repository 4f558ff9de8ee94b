//! MiniFool as a registered [`Attack`]: its options and target, and the runs for scripts,
//! adversarial training and s-scans (with per-event scales for the s_flip bisection).

use ndarray::{Array2, ArrayView2};

use crate::attack::minifool::{minifool, minifool_scaled, MiniFoolConfig, MiniFoolResult, Minimizer, Target};
use crate::attack::options::{AttackOptions, Number};
use crate::attack::project::Projection;
use crate::attack::result::{outputs, AttackResult};
use crate::attack::uncertainty::UncertaintyModel;
use crate::attack::{Attack, Entry, Outcome, Purpose, Setup};
use crate::error::{Error, Result};
use crate::model::{Model, Output};
use crate::optim::Control;

/// The registry entry.
pub const ENTRY: Entry = Entry {
    name: "minifool",
    about: "per event, the smallest χ² that moves the output to a target (L-BFGS or Adam)",
    budgeted: true,
    configure: MiniFool::configure,
};

/// MiniFool, configured.
#[derive(Clone, Debug)]
pub struct MiniFool {
    /// α, β, target, minimiser, iterations, tolerances.
    pub cfg: MiniFoolConfig,
    /// The budget's σ.
    pub unc: UncertaintyModel,
    /// Feasibility rules (the cost is evaluated at the projected events).
    pub proj: Projection,
}

impl MiniFool {
    /// Reads MiniFool's options for `setup`.
    pub fn configure(o: &mut dyn AttackOptions, s: &Setup) -> Result<Box<dyn Attack>> {
        let unc = s.budget("minifool")?;
        let proj = s.projection("minifool", o)?;
        if s.purpose == Purpose::Training {
            if let Some(k) = ["target", "shift"].into_iter().find(|k| o.given(k)) {
                return Err(Error::BadOption {
                    func: "minifool".into(),
                    key: k.into(),
                    problem: "is not available in adversarial training (each event's predicted class is flipped)"
                        .into(),
                });
            }
        }
        let cfg = config(o, s)?;
        Ok(Box::new(MiniFool { cfg, unc, proj }))
    }

    fn outcome(r: MiniFoolResult) -> Outcome {
        let cost = |v: &[f64]| v.iter().map(|&c| c as f32).collect();
        let columns =
            vec![("cost_start".to_string(), cost(&r.cost_start)), ("cost_end".to_string(), cost(&r.cost_end))];
        Outcome { attack: r.attack, columns, summary: Vec::new(), evaluations: Some(r.evaluations) }
    }
}

fn config(o: &mut dyn AttackOptions, s: &Setup) -> Result<MiniFoolConfig> {
    let d = MiniFoolConfig::default();
    let margin = o.f64("margin", 0.5)? as f32;
    let n = s.events.len();
    let target = match (o.number("target")?, o.f64_opt("shift")?) {
        (_, Some(shift)) => {
            let (scores, _) = outputs(s.model, s.model.inputs(s.events)?.view())?;
            Target::Values { index: 0, value: scores.column(0).iter().map(|v| v + shift as f32).collect() }
        }
        (Some(t), None) if s.model.output() == Output::Linear => {
            let v = match t {
                Number::Int(v) => v as f64,
                Number::Float(v) => v,
                Number::Other(_) => return Err(Error::arg("minifool", "target must be a number")),
            };
            Target::Values { index: 0, value: vec![v as f32; n] }
        }
        (Some(Number::Int(c)), None) => Target::Classes { class: vec![c; n], score: vec![0.5 + margin; n] },
        (Some(_), None) => return Err(Error::arg("minifool", "target must be a class (int)")),
        (None, None) => Target::Flip { margin },
    };
    Ok(MiniFoolConfig {
        alpha: o.f64("alpha", f64::from(d.alpha))? as f32,
        beta: o.f64("beta", f64::from(d.beta))? as f32,
        target,
        minimizer: Minimizer::parse(&o.string("minimizer", "lbfgs")?)?,
        max_iters: o.usize("steps", d.max_iters)?,
        gtol: o.f64("gtol", d.gtol)?,
        ftol: o.f64("ftol", d.ftol)?,
        memory: o.usize("memory", d.memory)?,
        lr: o.f64("lr", f64::from(d.lr))? as f32,
    })
}

impl Attack for MiniFool {
    fn name(&self) -> &'static str {
        "minifool"
    }

    fn run(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        _labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<Outcome> {
        Ok(Self::outcome(minifool(model, &self.unc, x, &self.cfg, &self.proj, control)?))
    }

    fn augment(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        _labels: &[i64],
        _seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        Ok(minifool(model, &self.unc, x, &self.cfg, &self.proj, control)?.attack.x)
    }

    fn budget(&self) -> Option<&UncertaintyModel> {
        Some(&self.unc)
    }

    fn at_budget(
        &self,
        model: &dyn Model,
        unc: &UncertaintyModel,
        x: ArrayView2<'_, f32>,
        _clean: &[i64],
        control: &Control,
    ) -> Result<AttackResult> {
        Ok(minifool(model, unc, x, &self.cfg, &self.proj, control)?.attack)
    }

    fn at_event_scales(
        &self,
        model: &dyn Model,
        unc: &UncertaintyModel,
        x: ArrayView2<'_, f32>,
        scales: &[f32],
        control: &Control,
    ) -> Result<Option<AttackResult>> {
        Ok(Some(minifool_scaled(model, unc, x, scales, &self.cfg, &self.proj, control)?.attack))
    }
}
