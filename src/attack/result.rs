//! What every attack returns: the perturbed events and, per event, what changed.

use ndarray::{Array2, ArrayView2};

use super::uncertainty::UncertaintyModel;
use crate::error::Result;
use crate::model::{Model, Output};
use crate::optim::Stop;

/// Per-event outcome of an attack.
#[derive(Clone, Debug)]
pub struct AttackResult {
    /// The perturbed events, `n × d`, in physical units.
    pub x: Array2<f32>,
    /// Scores before the attack, `n × k`.
    pub score_before: Array2<f32>,
    /// Scores after the attack, `n × k`.
    pub score_after: Array2<f32>,
    /// Predicted class before.
    pub class_before: Vec<i64>,
    /// Predicted class after.
    pub class_after: Vec<i64>,
    /// χ² of the perturbation under the uncertainty model (at its scale s).
    pub chi2: Vec<f64>,
    /// p-value of that χ².
    pub p_value: Vec<f64>,
    /// Degrees of freedom of each event's χ² (for a set model, real objects only).
    pub dof: Vec<usize>,
    /// Iterations each event took.
    pub iters: Vec<u32>,
    /// Why each event stopped.
    pub reason: Vec<&'static str>,
    /// Why the whole run stopped.
    pub stop: Stop,
}

/// How the attack ended, per event and for the run.
#[derive(Clone, Debug)]
pub struct Ending {
    /// Iterations each event took.
    pub iters: Vec<u32>,
    /// Why each event stopped.
    pub reason: Vec<&'static str>,
    /// Why the whole run stopped.
    pub stop: Stop,
}

/// What an attack already computed on the clean events, so finishing does not redo it.
#[derive(Clone, Debug, Default)]
pub struct Known<'a> {
    /// Scores and predicted classes of the clean events.
    pub clean: Option<(Array2<f32>, Vec<i64>)>,
    /// σ at the clean events, at the uncertainty model's own scale s.
    pub sigma: Option<ArrayView2<'a, f32>>,
}

impl AttackResult {
    /// Evaluates the model on the perturbed (and, unless known, the original) events and the χ²
    /// between them.
    pub fn finish(
        model: &dyn Model,
        unc: &UncertaintyModel,
        x0: ArrayView2<'_, f32>,
        x: Array2<f32>,
        ending: Ending,
        known: Known<'_>,
    ) -> Result<Self> {
        let (score_before, class_before) = match known.clean {
            Some(c) => c,
            None => outputs(model, x0)?,
        };
        let (score_after, class_after) = outputs(model, x.view())?;
        let c = match known.sigma {
            Some(sigma) => unc.chi2_at(sigma, x0, x.view(), true),
            None => unc.chi2(x0, x.view(), true)?,
        };
        let Ending { iters, reason, stop } = ending;
        Ok(AttackResult {
            x,
            score_before,
            score_after,
            class_before,
            class_after,
            chi2: c.chi2,
            p_value: c.p_value,
            dof: c.dof,
            iters,
            reason,
            stop,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.class_before.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.class_before.is_empty()
    }

    /// Whether each event's predicted class changed.
    pub fn flipped(&self) -> Vec<bool> {
        self.class_before.iter().zip(&self.class_after).map(|(a, b)| a != b).collect()
    }

    /// Median of `values` over the flipped events (NaN when none flipped): the upper median,
    /// element n/2 of the sorted values.
    pub fn median_of_flipped(values: &[f64], flipped: &[bool]) -> f64 {
        let mut v: Vec<f64> = values.iter().zip(flipped).filter(|(_, f)| **f).map(|(c, _)| *c).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    }

    /// Median χ² of the events that flipped (NaN when none did).
    pub fn median_chi2_flipped(&self) -> f64 {
        Self::median_of_flipped(&self.chi2, &self.flipped())
    }

    /// How many events stopped for each reason.
    pub fn reason_counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut m = std::collections::BTreeMap::new();
        for r in &self.reason {
            *m.entry(*r).or_default() += 1;
        }
        m
    }

    /// Fraction of events whose predicted class changed.
    pub fn flip_fraction(&self) -> f64 {
        let f = self.flipped();
        if f.is_empty() {
            0.0
        } else {
            f.iter().filter(|v| **v).count() as f64 / f.len() as f64
        }
    }
}

/// Scores (`n × k`) and predicted classes of `x`, from one forward pass.
pub fn outputs(model: &dyn Model, x: ArrayView2<'_, f32>) -> Result<(Array2<f32>, Vec<i64>)> {
    let z = model.logits(x)?;
    crate::metrics::check_output_rows("attack", z.view())?;
    let classes = model.classes_from_logits(&z);
    let mut s = z;
    let out: Output = model.output();
    for mut row in s.rows_mut() {
        if let Some(r) = row.as_slice_mut() {
            out.scores_row(r);
        }
    }
    Ok((s, classes))
}
