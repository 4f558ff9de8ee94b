//! Fine-tuning controls of [`TrainConfig`](super::TrainConfig): which parameter groups move
//! and how fast, which are re-drawn before training, the learning-rate warm-up, and what
//! happens to the input standardisation stored in the model.
//!
//! * **Groups** are named by [`GroupRef`]: a name from [`Model::param_groups`] (`layer0`,
//!   `phi.1`, `f.2`, …) or an index into that list (negative from the end: −1 is the output
//!   layer, the *head*).
//! * **Frozen** groups and groups with a learning rate of 0 are left out of the optimiser
//!   step entirely, so they stay bit-identical (their optimiser state does not advance).
//!   Any other group with its own learning rate `lr_g` is stepped with `lr_g · s(e)/lr`,
//!   the schedule's rate of epoch `e` rescaled to the group (AdamW's decay included, as
//!   PyTorch's parameter groups do).
//! * **Re-initialised** groups are drawn again as at construction (a `torch.nn.Linear`
//!   layer: every entry uniform in (−1/√fan-in, 1/√fan-in)) from the training seed, for a
//!   new head on a pretrained body.
//! * **Warm-up**: the first `w` epochs run at (e+1)/(w+1) of the scheduled rate.
//! * **Standardisation** ([`Standardize`]): `Auto` (the default) fits it to the training
//!   events only when the model has none yet (a new model) and keeps a fitted one (a trained
//!   or loaded model being fine-tuned); `Keep` never refits; `Refit` always does.

use std::ops::Range;

use rand::Rng as _;

use super::interface::Model;
use crate::error::{Error, Result};
use crate::rng;

/// A parameter group, by name or by index into [`Model::param_groups`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRef {
    /// A group's name.
    Name(String),
    /// A position; negative counts from the end (−1 is the last group, the output layer).
    Index(i64),
}

impl From<&str> for GroupRef {
    fn from(s: &str) -> Self {
        GroupRef::Name(s.to_string())
    }
}

impl From<String> for GroupRef {
    fn from(s: String) -> Self {
        GroupRef::Name(s)
    }
}

impl From<i64> for GroupRef {
    fn from(i: i64) -> Self {
        GroupRef::Index(i)
    }
}

impl std::fmt::Display for GroupRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupRef::Name(n) => write!(f, "'{n}'"),
            GroupRef::Index(i) => write!(f, "{i}"),
        }
    }
}

impl GroupRef {
    /// The group's position in `model.param_groups()`; errors under option `key` naming the
    /// model's groups.
    pub fn resolve(&self, model: &dyn Model, key: &str) -> Result<usize> {
        let groups = model.param_groups();
        let names = || groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ");
        let bad = |problem: String| Error::BadOption { func: "train".into(), key: key.into(), problem };
        match self {
            GroupRef::Name(n) => groups
                .iter()
                .position(|g| &g.name == n)
                .ok_or_else(|| bad(format!("names no parameter group of the model: '{n}' (its groups: {})", names()))),
            GroupRef::Index(i) => {
                let k = groups.len() as i64;
                let j = if *i < 0 { k + i } else { *i };
                if (0..k).contains(&j) {
                    Ok(j as usize)
                } else {
                    Err(bad(format!("group index {i} is out of range: the model has {k} groups ({})", names())))
                }
            }
        }
    }
}

/// What training does with the model's input standardisation (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Standardize {
    /// Fit it when the model has none yet, keep a fitted one (fine-tuning).
    #[default]
    Auto,
    /// Never fit: train with the standardisation the model has.
    Keep,
    /// Always fit it to the training events (the old default).
    Refit,
}

impl Standardize {
    /// Parses `auto`, `keep` or `refit`.
    pub fn parse(s: &str) -> Result<Standardize> {
        match s {
            "auto" => Ok(Standardize::Auto),
            "keep" => Ok(Standardize::Keep),
            "refit" => Ok(Standardize::Refit),
            other => Err(Error::BadOption {
                func: "train".into(),
                key: "standardize".into(),
                problem: format!("must be \"auto\", \"keep\" or \"refit\" (or true/false), got '{other}'"),
            }),
        }
    }

    /// Whether training `model` fits its standardisation.
    pub fn refits(self, model: &dyn Model) -> bool {
        match self {
            Standardize::Auto => !model.standardization_fitted(),
            Standardize::Keep => false,
            Standardize::Refit => true,
        }
    }
}

/// The factor of the scheduled rate in epoch `epoch` (0-based) with `warmup` warm-up epochs.
pub fn warmup_factor(epoch: usize, warmup: usize) -> f64 {
    if epoch < warmup {
        (epoch + 1) as f64 / (warmup + 1) as f64
    } else {
        1.0
    }
}

/// The parameter ranges the optimiser steps and each one's factor of the scheduled rate:
/// every group except the frozen ones and those with learning rate 0, adjacent ranges with
/// the same factor merged (one range with factor 1 when nothing is set, the plain step).
pub(crate) fn step_plan(
    model: &dyn Model,
    freeze: &[GroupRef],
    group_lr: &[(GroupRef, f64)],
    base_lr: f64,
) -> Result<Vec<(Range<usize>, f64)>> {
    let groups = model.param_groups();
    let mut factor: Vec<Option<f64>> = vec![Some(1.0); groups.len()];
    for (g, lr) in group_lr {
        if !(lr.is_finite() && *lr >= 0.0) {
            return Err(Error::BadOption {
                func: "train".into(),
                key: "group_lr".into(),
                problem: format!("the learning rate of group {g} is {lr}; it must be finite and ≥ 0"),
            });
        }
        let i = g.resolve(model, "group_lr")?;
        factor[i] = (*lr > 0.0).then_some(lr / base_lr);
    }
    for g in freeze {
        factor[g.resolve(model, "freeze")?] = None;
    }
    let mut plan: Vec<(Range<usize>, f64)> = Vec::new();
    for (g, f) in groups.iter().zip(factor) {
        let Some(f) = f else { continue };
        match plan.last_mut() {
            Some((r, pf)) if r.end == g.range.start && *pf == f => r.end = g.range.end,
            _ => plan.push((g.range.clone(), f)),
        }
    }
    Ok(plan)
}

/// Draws the parameters of `range` (a `torch.nn.Linear` layer's weight and bias) uniform in
/// (−1/√fan_in, 1/√fan_in) from `seed`, in place.
pub(crate) fn init_linear(params: &mut [f32], fan_in: usize, seed: u64) {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let mut r = rng::rng(seed);
    params.iter_mut().for_each(|p| *p = r.random_range(-bound..bound));
}

/// Re-draws the groups `groups` of `model` ([`Model::reinit_group`]), group `i` from the
/// substream `i` of `seed`.
pub fn reinit(model: &mut dyn Model, groups: &[GroupRef], seed: u64) -> Result<()> {
    for g in groups {
        let i = g.resolve(model, "reinit")?;
        model.reinit_group(i, rng::substream(seed, i as u64))?;
    }
    Ok(())
}

/// [`Model::reinit_group`] for a model whose group `group` is one linear layer of fan-in
/// `fan_in` (weight and bias), through [`Model::params`] / [`Model::set_params`].
pub(crate) fn reinit_linear_group(model: &mut dyn Model, group: usize, fan_in: usize, seed: u64) -> Result<()> {
    let range = model.group_range(Some(group))?;
    let mut p = model.params();
    init_linear(&mut p[range], fan_in, seed);
    model.set_params(&p)
}

/// Completes [`Model::replace_head`]: `new` (built with `old`'s architecture but a new output
/// layer) takes every parameter group of `old` but the last (the head) bit for bit, and its
/// head is drawn by [`Model::reinit_group`] from `seed`.
pub(crate) fn transplant_body(old: &dyn Model, new: &mut dyn Model, seed: u64) -> Result<()> {
    let (go, gn) = (old.param_groups(), new.param_groups());
    let body = go.len().saturating_sub(1);
    if gn.len() != go.len() || go[..body].iter().zip(&gn[..body]).any(|(a, b)| a.range != b.range) {
        return Err(Error::arg("replace_head", "the new network's body does not match the old one's".to_string()));
    }
    let (po, mut pn) = (old.params(), new.params());
    for g in &go[..body] {
        pn[g.range.clone()].copy_from_slice(&po[g.range.clone()]);
    }
    new.set_params(&pn)?;
    new.reinit_group(body, seed)
}

#[cfg(test)]
#[path = "finetune_tests.rs"]
mod tests;
