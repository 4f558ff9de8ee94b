//! The `adversarial` option of `train`: an attack given as a configuration map
//! (`#{ method: "rdsa" | "fgsm" | "pgd" | "minifool", ... }`) or as a script function
//! `|model, events| ...`, turned into an [`Augmenter`] for `model::adversarial_train`.

use ndarray::{Array2, ArrayView2};
use rhai::{Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use crate::attack::{attack_names, lookup, AttackAugmenter, Purpose, Setup, UncertaintyModel};
use crate::bindings::convert::map;
use crate::bindings::options::{type_name, Opts, ScriptOptions};
use crate::bindings::{Ctx, RhaiResult};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{
    adversarial_train, AdversarialConfig, AdversarialResult, Augmenter, Every, Model, SharedModel, TrainConfig,
};
use crate::optim::Control;

/// Trains `model` on `data` with the `adversarial` options map; returns `train`'s result map
/// whose history entries also hold `clean_accuracy`, `adv_accuracy`, `mixed_accuracy` and
/// `adversarial_events`.
pub fn train(
    c: &NativeCallContext,
    cx: &Ctx,
    model: &dyn Model,
    data: &Dataset,
    cfg: &TrainConfig,
    adv: &Map,
) -> RhaiResult<Map> {
    let mut o = Opts::new("train (adversarial)", adv);
    let ac = AdversarialConfig {
        ratio: o.f64("ratio", AdversarialConfig::default().ratio)?,
        warmup: o.usize("warmup", AdversarialConfig::default().warmup)?,
        every: match o.choice("every", &["epoch", "batch"], "epoch")? {
            "batch" => Every::Batch,
            _ => Every::Epoch,
        },
        eval_events: o.usize("eval_events", AdversarialConfig::default().eval_events)?,
    };
    let attack = o.raw("attack");
    o.finish()?;
    ac.check()?;
    let attack = attack.ok_or_else(|| Error::BadOption {
        func: "train".into(),
        key: "adversarial".into(),
        problem: format!(
            "needs an attack: #{{ attack: #{{ method: {}, ... }} }} or a function |model, events| ...",
            attack_names(false).iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" | ")
        ),
    })?;
    let result = if let Some(f) = attack.clone().try_cast::<FnPtr>() {
        let mut aug = ScriptAugmenter { ctx: c, f, names: data.names().to_vec(), error: None };
        let r = adversarial_train(model, data, cfg, &ac, &mut aug, &cx.control);
        match (r, aug.error.take()) {
            (Err(_), Some(script_error)) => return Err(script_error),
            (r, _) => r?,
        }
    } else if let Some(m) = attack.read_lock::<Map>().map(|m| m.clone()) {
        let mut aug = augmenter(&m, model, data, cx)?;
        adversarial_train(model, data, cfg, &ac, &mut aug, &cx.control)?
    } else {
        return Err(Error::BadOption {
            func: "train".into(),
            key: "adversarial.attack".into(),
            problem: format!("must be a map #{{ method: ... }} or a function, got {}", type_name(&attack)),
        }
        .into());
    };
    Ok(result_map(result))
}

/// An attack configuration map as an augmenter, through the attack registry; the map's keys
/// are the attack's own options, plus `uncertainty` (the budget) for attacks that have one.
fn augmenter(m: &Map, model: &dyn Model, data: &Dataset, cx: &Ctx) -> RhaiResult<AttackAugmenter> {
    let methods = attack_names(false).join(", ");
    let method =
        m.get("method").and_then(|v| v.clone().into_immutable_string().ok()).ok_or_else(|| Error::BadOption {
            func: "train".into(),
            key: "adversarial.attack".into(),
            problem: format!("needs a method: one of {methods}"),
        })?;
    let mut rest = m.clone();
    rest.remove("method");
    let entry = lookup(&method).ok_or_else(|| {
        let near = crate::error::nearest(&method, attack_names(false));
        Error::BadOption {
            func: "train".into(),
            key: "adversarial.attack.method".into(),
            problem: format!(
                "must be one of {methods}, got '{method}'{}",
                near.map_or(String::new(), |n| format!(" (did you mean '{n}'?)"))
            ),
        }
    })?;
    let mut o = Opts::new(entry.name, &rest);
    let unc = if entry.budgeted { o.custom_opt::<UncertaintyModel>("uncertainty", "an Uncertainty")? } else { None };
    let setup = Setup { model, events: data, unc: unc.as_ref(), purpose: Purpose::Training };
    let attack = (entry.configure)(&mut ScriptOptions { opts: &mut o, ctx: cx }, &setup)?;
    o.finish()?;
    Ok(AttackAugmenter(attack))
}

/// `train`'s result map with the per-epoch accuracies added to its history.
fn result_map(r: AdversarialResult) -> Map {
    let mut m = crate::bindings::model::helpers::train_result(r.train);
    if let Some(h) = m.remove("history").and_then(|h| h.try_cast::<rhai::Array>()) {
        let h: rhai::Array = h
            .into_iter()
            .zip(&r.adversarial)
            .map(|(e, a)| {
                let mut e = e.try_cast::<Map>().unwrap_or_default();
                e.extend(map([
                    ("clean_accuracy", a.clean_accuracy.into()),
                    ("adv_accuracy", a.adv_accuracy.into()),
                    ("mixed_accuracy", a.mixed_accuracy.into()),
                    ("adversarial_events", (a.adversarial_events as i64).into()),
                ]));
                Dynamic::from_map(e)
            })
            .collect();
        m.insert("history".into(), h.into());
    }
    m
}

/// A script function `|model, events| ...` returning the adversarial events (a Dataset or an
/// attack result map). Its own error, if any, is kept and re-raised unchanged.
struct ScriptAugmenter<'c, 'n> {
    ctx: &'c NativeCallContext<'n>,
    f: FnPtr,
    names: Vec<String>,
    error: Option<Box<EvalAltResult>>,
}

impl Augmenter for ScriptAugmenter<'_, '_> {
    fn perturb(
        &mut self,
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        labels: &[i64],
        _seed: u64,
        _control: &Control,
    ) -> Result<Array2<f32>> {
        let events = Dataset::new_unchecked_finite(self.names.clone(), x.to_owned(), Some(labels.to_vec()), None)?;
        let out = self
            .f
            .call_within_context::<Dynamic>(self.ctx, (SharedModel::from(model.box_clone()), events))
            .and_then(|v| crate::bindings::rdsa::helpers::adversarial_events(&v));
        match out {
            Ok(d) if d.names() == self.names.as_slice() => model.inputs(&d),
            Ok(d) => Err(Error::arg(
                "train",
                format!(
                    "the adversarial attack function returned features [{}], expected [{}]",
                    d.names().join(", "),
                    self.names.join(", ")
                ),
            )),
            Err(e) => {
                self.error = Some(e);
                Err(Error::arg("train", "the adversarial attack function failed"))
            }
        }
    }
}
