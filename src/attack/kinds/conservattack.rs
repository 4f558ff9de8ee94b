//! CONSERVAttack as a registered [`Attack`]: its options (the reference's, with its defaults),
//! and what it reports besides the common result (the iteration each event was fooled at, and
//! the per-iteration metrics).

use ndarray::{Array2, ArrayView2};

use crate::attack::conservattack::{ConservAttack, ConservConfig, ConservResult, Mode};
use crate::attack::options::AttackOptions;
use crate::attack::result::AttackResult;
use crate::attack::uncertainty::UncertaintyModel;
use crate::attack::{Attack, Entry, Outcome, Setup, Summary};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::Control;

/// The registry entry.
pub const ENTRY: Entry = Entry {
    name: "conservattack",
    about: "greedy population attack keeping every feature's histogram and the correlations (no budget)",
    budgeted: false,
    configure: Conserv::configure,
};

/// CONSERVAttack, configured for a set of events.
#[derive(Clone, Debug)]
pub struct Conserv {
    /// The prepared attack.
    pub attack: ConservAttack,
    names: Vec<String>,
}

/// Reads the options; the defaults are the reference's (`shared/guide/methods.md` §2).
pub fn config(o: &mut dyn AttackOptions) -> Result<ConservConfig> {
    let d = ConservConfig::default();
    let mode = match o.choice("mode", &["strict", "faithful"], "strict")? {
        "faithful" => Mode::Faithful,
        _ => Mode::Strict,
    };
    let steps = o.usize("steps", d.iterations)?;
    if steps == 0 {
        return Err(Error::BadOption {
            func: "conservattack".into(),
            key: "steps".into(),
            problem: "must be ≥ 1".into(),
        });
    }
    Ok(ConservConfig {
        mode,
        iterations: steps,
        bins: o.usize("bins", d.bins)?,
        min_change: o.f64("min_change", d.min_change)?,
        step: o.positive("step", d.step)?,
        alpha: o.f64("alpha", d.alpha)?,
        beta: o.f64("beta", d.beta)?,
        max_jsd_single_change: o.f64("max_jsd_single_change", d.max_jsd_single_change)?,
        max_frob_single_change: o.f64("max_frob_single_change", d.max_frob_single_change)?,
        use_no_change: o.bool("use_no_change", d.use_no_change)?,
        track_best_constraint_iter: o.bool("track_best_constraint_iter", d.track_best_constraint_iter)?,
        constraint_jsd: o.f64("constraint_jsd", d.constraint_jsd)?,
        constraint_rel_corr: o.f64("constraint_rel_corr", d.constraint_rel_corr)?,
        optimize_already_fooled: o.bool("optimize_already_fooled", d.optimize_already_fooled)?,
        randomize_step: o.bool("randomize_step", d.randomize_step)?,
        random_step_frac: o.f64("random_step_frac", d.random_step_frac)?,
        num_candidates: o.usize_opt("num_candidates")?,
        feature_chunks: o.usize("feature_chunks", d.feature_chunks)?,
        min_values: o.floats_opt("min_values")?,
        max_values: o.floats_opt("max_values")?,
        seed: o.seed()?,
    })
}

impl Conserv {
    /// Reads CONSERVAttack's options for `setup`.
    pub fn configure(o: &mut dyn AttackOptions, s: &Setup) -> Result<Box<dyn Attack>> {
        s.event_level(
            "conservattack",
            "it keeps every input column's histogram and the correlation matrix over the population, which padded object slots (0 where an event has fewer objects) and varying object counts do not have",
        )?;
        let cfg = config(o)?;
        cfg.validate(s.model.n_inputs())?;
        let proj = s.projection("conservattack", o)?;
        Ok(Box::new(Conserv { attack: ConservAttack::new(cfg, proj)?, names: s.model.input_names() }))
    }

    /// The common result plus the iteration each event was fooled at, the per-iteration
    /// metrics and, when tracked, the best iteration inside the constraints.
    pub fn outcome(&self, r: ConservResult) -> Outcome {
        let columns = vec![("fooled_at".to_string(), r.fooled_at.iter().map(|&v| v as f32).collect())];
        let its = &r.iterations;
        let per = |f: &dyn Fn(&crate::attack::IterationMetrics) -> f64| Summary::Floats(its.iter().map(f).collect());
        let mut names: Vec<String> = ["iteration", "active", "fooling_ratio"].map(String::from).to_vec();
        names.extend(self.names.iter().map(|f| format!("jsd_{f}")));
        names.extend(["max_jsd", "rel_corr_change", "accepted", "within_constraints"].map(String::from));
        let rows = its
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let mut row = vec![(k + 1) as f64, m.active as f64, m.fooling_ratio];
                row.extend(&m.jsd);
                row.extend([
                    m.max_jsd(),
                    m.rel_corr_change,
                    m.accepted as f64,
                    f64::from(u8::from(m.within_constraints)),
                ]);
                row
            })
            .collect();
        let last = its.last();
        let mut summary = vec![
            ("fooling_ratio", Summary::Float(last.map_or(0.0, |m| m.fooling_ratio))),
            ("n_correct", Summary::Int(r.correct as i64)),
            ("fooling_ratio_per_iteration", per(&|m| m.fooling_ratio)),
            ("max_jsd_per_iteration", per(&|m| m.max_jsd())),
            ("rel_corr_change_per_iteration", per(&|m| m.rel_corr_change)),
            ("accepted_per_iteration", per(&|m| m.accepted as f64)),
            ("jsd", Summary::Floats(last.map_or_else(Vec::new, |m| m.jsd.clone()))),
            ("max_jsd", Summary::Float(last.map_or(0.0, |m| m.max_jsd()))),
            ("rel_corr_change", Summary::Float(last.map_or(0.0, |m| m.rel_corr_change))),
            ("iterations", Summary::Table(names, rows)),
        ];
        if self.attack.config().track_best_constraint_iter {
            let b = r.best.map(|b| &its[b]);
            summary.extend([
                ("best_constraint_iteration", Summary::Int(r.best.map_or(0, |b| b as i64 + 1))),
                ("best_constraint_fooling_ratio", Summary::Float(b.map_or(f64::NAN, |m| m.fooling_ratio))),
                ("best_constraint_max_jsd", Summary::Float(b.map_or(f64::NAN, |m| m.max_jsd()))),
                ("best_constraint_rel_corr_change", Summary::Float(b.map_or(f64::NAN, |m| m.rel_corr_change))),
            ]);
        }
        Outcome { attack: r.attack, columns, summary, evaluations: None }
    }
}

impl Attack for Conserv {
    fn name(&self) -> &'static str {
        "conservattack"
    }

    fn run(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<Outcome> {
        Ok(self.outcome(self.attack.attack(model, x, labels, control)?))
    }

    fn augment(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        Ok(self.attack.attack_seeded(model, x, Some(labels), control, seed)?.attack.x)
    }

    fn budget(&self) -> Option<&UncertaintyModel> {
        None
    }

    fn at_budget(
        &self,
        _model: &dyn Model,
        _unc: &UncertaintyModel,
        _x: ArrayView2<'_, f32>,
        _clean: &[i64],
        _control: &Control,
    ) -> Result<AttackResult> {
        Err(Error::arg("s_scan", "conservattack has no uncertainty budget to scale; scan fgsm, pgd or minifool"))
    }
}
