//! RDSA as a registered [`Attack`]: its options, the marginals prepared from the reference
//! set, and what it reports besides the common result (tries, the shuffled features and which
//! of them each event changed).

use ndarray::{Array2, ArrayView2};

use crate::attack::options::AttackOptions;
use crate::attack::rdsa::{Rdsa, RdsaConfig, RdsaResult, Sampling, SubsetDraw};
use crate::attack::result::AttackResult;
use crate::attack::uncertainty::UncertaintyModel;
use crate::attack::{Attack, Entry, Outcome, Purpose, Setup, Summary};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, SetLayout};
use crate::optim::Control;

/// The registry entry.
pub const ENTRY: Entry = Entry {
    name: "rdsa",
    about: "redraws random subsets of continuous features from their marginals (black box, no budget)",
    budgeted: false,
    configure: RdsaAttack::configure,
};

/// RDSA with its marginals prepared, and the uncertainty model under which to report χ².
#[derive(Clone, Debug)]
pub struct RdsaAttack {
    /// The prepared attack.
    pub rdsa: Rdsa,
    /// Reports the χ² of each shuffle under this model, when given.
    pub unc: Option<UncertaintyModel>,
    names: Vec<String>,
}

/// The features `names` by index: dataset columns, or for a set model its features
/// ([`SetLayout::feature_names`]: event features, then `coll.feature`).
fn columns(ds: &Dataset, layout: Option<&SetLayout>, names: Vec<String>) -> Result<Vec<usize>> {
    let Some(l) = layout else { return names.iter().map(|n| ds.index_of("rdsa", n)).collect() };
    let all = l.feature_names();
    names
        .iter()
        .map(|n| {
            all.iter().position(|a| a == n).ok_or_else(|| Error::UnknownColumn {
                op: "rdsa",
                name: n.clone(),
                available: all.join(", "),
            })
        })
        .collect()
}

impl RdsaAttack {
    /// A prepared RDSA over features `names`, reporting no χ².
    pub fn prepared(rdsa: Rdsa, names: &[String]) -> Self {
        RdsaAttack { rdsa, unc: None, names: names.to_vec() }
    }

    /// Reads RDSA's options for `setup` and prepares the marginals (from `reference`, else the
    /// attacked events).
    pub fn configure(o: &mut dyn AttackOptions, s: &Setup) -> Result<Box<dyn Attack>> {
        let d = RdsaConfig::default();
        let ds = s.events;
        let layout = s.model.set_layout();
        let columns = |f| columns(ds, layout, f);
        let features = o.strings_opt("features")?.map(columns).transpose()?;
        let k = o.usize_opt("k")?;
        if features.is_some() && k.is_some() {
            return Err(Error::BadOption {
                func: "rdsa".into(),
                key: "k".into(),
                problem: "and 'features' exclude each other: give a random subset size or a list".into(),
            });
        }
        let cfg = RdsaConfig {
            k: k.unwrap_or(d.k),
            features,
            steps: o.usize("steps", d.steps)?,
            bins: o.usize("bins", d.bins)?,
            unique_threshold: o.usize("unique_threshold", d.unique_threshold)?,
            continuous: o.strings_opt("continuous")?.map(columns).transpose()?,
            frozen: columns(o.strings_opt("frozen")?.unwrap_or_default())?,
            sampling: Sampling::parse(o.choice("sampling", &["histogram", "empirical"], "histogram")?)?,
            per_class: o.choice("marginals", &["pooled", "per_class"], "pooled")? == "per_class",
            subset: match o.choice("subset", &["event", "try"], "event")? {
                "try" => SubsetDraw::PerTry,
                _ => SubsetDraw::PerEvent,
            },
            stop_at_flip: o.bool("stop_at_flip", d.stop_at_flip)?,
            seed: o.seed()?,
        };
        let reference = o.dataset("reference")?;
        if let Some(r) = &reference {
            if r.names() != ds.names() {
                return Err(Error::BadOption {
                    func: "rdsa".into(),
                    key: "reference".into(),
                    problem: format!(
                        "has features [{}] but the attacked events have [{}]",
                        r.names().join(", "),
                        ds.names().join(", ")
                    ),
                });
            }
        }
        let proj = s.projection("rdsa", o)?;
        // In adversarial training the χ² of a shuffle is never reported: no budget option.
        let unc = match s.purpose {
            Purpose::Training => None,
            _ => s.unc.cloned().or(o.uncertainty("uncertainty")?),
        };
        let unc = match unc {
            Some(u) => {
                u.check_dataset("rdsa", ds)?;
                Some(u.over_inputs(s.model)?)
            }
            None => None,
        };
        let r = reference.as_ref().unwrap_or(ds);
        r.check_finite("rdsa")?;
        let (rdsa, names) = match layout {
            None => (Rdsa::new(ds.names(), r.x(), r.label(), &cfg, &proj)?, ds.names().to_vec()),
            Some(l) => {
                let x = s.model.inputs(r)?;
                (Rdsa::for_set(l, x.view(), r.label(), &cfg, &proj)?, l.feature_names())
            }
        };
        Ok(Box::new(RdsaAttack { rdsa, unc, names }))
    }

    /// The common result plus RDSA's counts: per event how many shuffled features changed and,
    /// per shuffled feature, whether it did.
    pub fn outcome(&self, x0: ArrayView2<'_, f32>, r: RdsaResult) -> Outcome {
        let changed: Vec<Vec<f32>> = match self.rdsa.layout() {
            None => r
                .shuffled
                .iter()
                .map(|&j| {
                    x0.column(j).iter().zip(r.attack.x.column(j)).map(|(a, b)| f32::from(u8::from(a != b))).collect()
                })
                .collect(),
            // A set model's object feature changed when any of the event's objects did.
            Some(_) => r
                .shuffled
                .iter()
                .map(|&j| {
                    (0..x0.nrows())
                        .map(|i| {
                            let (a, b) = (x0.row(i), r.attack.x.row(i));
                            let row0 = a.to_vec();
                            f32::from(u8::from(self.rdsa.columns_of(j, &row0).iter().any(|&c| a[c] != b[c])))
                        })
                        .collect()
                })
                .collect(),
        };
        let n = r.attack.len();
        let n_changed: Vec<f32> = (0..n).map(|i| changed.iter().map(|c| c[i]).sum()).collect();
        let mut columns: Vec<(String, Vec<f32>)> = vec![("n_changed".into(), n_changed)];
        for (&j, c) in r.shuffled.iter().zip(changed) {
            columns.push((format!("changed_{}", self.names[j]), c));
        }
        let mean_tries = r.attack.iters.iter().map(|&t| f64::from(t)).sum::<f64>() / n as f64;
        let summary = vec![
            ("tries", Summary::Int(r.tries as i64)),
            ("mean_tries", Summary::Float(mean_tries)),
            ("try_flip_fraction", Summary::Float(r.try_flip_fraction())),
            ("shuffled", Summary::Names(r.shuffled.iter().map(|&j| self.names[j].clone()).collect())),
        ];
        Outcome { attack: r.attack, columns, summary, evaluations: None }
    }
}

impl Attack for RdsaAttack {
    fn name(&self) -> &'static str {
        "rdsa"
    }

    fn run(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: Option<&[i64]>,
        control: &Control,
    ) -> Result<Outcome> {
        let r = self.rdsa.attack(model, x, labels, self.unc.as_ref(), control)?;
        Ok(self.outcome(x, r))
    }

    fn augment(
        &self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        seed: u64,
        control: &Control,
    ) -> Result<Array2<f32>> {
        Ok(self.rdsa.attack_seeded(model, x, Some(labels), None, control, seed)?.attack.x)
    }

    fn budget(&self) -> Option<&UncertaintyModel> {
        None
    }

    fn place(&mut self, position: u64) {
        self.rdsa.place(position);
    }

    fn at_budget(
        &self,
        _model: &dyn Model,
        _unc: &UncertaintyModel,
        _x: ArrayView2<'_, f32>,
        _clean: &[i64],
        _control: &Control,
    ) -> Result<AttackResult> {
        Err(Error::arg("s_scan", "rdsa has no uncertainty budget to scale; scan fgsm, pgd or minifool"))
    }
}
