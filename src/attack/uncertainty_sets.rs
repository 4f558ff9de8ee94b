//! An uncertainty model over a set model's inputs: the per-feature model expanded over the
//! [`SetLayout`] (event features, the object count, padded object slots).
//!
//! - Event features take their σ by name; the count entry is frozen (attacks never add or
//!   remove objects).
//! - Every slot of an object feature takes that feature's σ (given as `coll.feature`), so a
//!   relative σ is relative to each object's own value.
//! - Slots beyond an event's real objects get σ = 0 *for that event*
//!   ([`UncertaintyModel::sigma`] reads the count of the original event): they never move, and
//!   the χ² degrees of freedom count real objects only ([`UncertaintyModel::dofs`]).
//! - Correlations among the event features are kept (a leading block of the expanded matrix);
//!   object features are uncorrelated, within an object, across objects and with the event
//!   features.
//!
//! σ applies to the model's input columns as they are: for a PFN on `logpt = log pT`, an
//! absolute σ of 0.05 on `part.logpt` is a 5 % relative pT uncertainty per constituent
//! (δ log pT ≈ δpT / pT to first order).

use ndarray::Array2;

use super::{cholesky, lower_inverse, Correlation, FeatureSigma, UncertaintyModel};
use crate::error::{Error, Result};
use crate::model::Model;

impl UncertaintyModel {
    /// The model over `model`'s input columns: itself for an event-level model, the expansion
    /// over the set layout (see the module documentation) for a set model. Every event and
    /// object feature the set model reads needs a σ (or to be frozen); the error names the
    /// first that has none.
    pub fn over_inputs(&self, model: &dyn Model) -> Result<UncertaintyModel> {
        let Some(l) = model.set_layout() else { return Ok(self.clone()) };
        if self.slots.as_ref() == Some(l) {
            return Ok(self.clone());
        }
        if self.slots.is_some() {
            return Err(Error::arg("uncertainty", "this uncertainty model was expanded for another set model"));
        }
        let mut ev = Vec::with_capacity(l.n_event());
        for f in &l.event_features {
            let i = self.names.iter().position(|n| n == f).ok_or_else(|| {
                Error::arg("uncertainty", format!("has no σ for '{f}', an event feature of the {} model", model.kind()))
            })?;
            ev.push(i);
        }
        let mut obj: Vec<FeatureSigma> = Vec::with_capacity(l.n_object());
        for f in &l.object_features {
            let name = format!("{}.{f}", l.collection);
            let spec = self.objects.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
                Error::arg(
                    "uncertainty",
                    format!(
                        "has no σ for object feature '{name}' of the {} model; give it one (features: #{{ \"{name}\": #{{ abs: … }} }}) or freeze it (frozen: [\"{name}\"])",
                        model.kind()
                    ),
                )
            })?;
            obj.push(spec);
        }
        let width = l.width();
        crate::memory::check(crate::memory::bytes(width, 16), "uncertainty: the σ of every input column")?;
        let mut specs: Vec<FeatureSigma> = ev.iter().map(|&i| self.specs[i]).collect();
        specs.push(FeatureSigma::frozen());
        for _ in 0..l.max_objects {
            specs.extend_from_slice(&obj);
        }
        let corr = match &self.corr {
            Some(_) if !ev.is_empty() => {
                let full = self.correlation();
                let rho = Array2::from_shape_fn((ev.len(), ev.len()), |(a, b)| full[[ev[a], ev[b]]]);
                let identity = rho.indexed_iter().all(|((a, b), &v)| v == if a == b { 1.0 } else { 0.0 });
                if identity {
                    None
                } else {
                    let l_f64 = cholesky(&rho, &l.event_features)?;
                    let inv = lower_inverse(&l_f64);
                    Some(Correlation { rho, l: l_f64.mapv(|v| v as f32), l_inv: inv.mapv(|v| v as f32) })
                }
            }
            _ => None,
        };
        Ok(UncertaintyModel {
            names: l.names(),
            specs,
            scale: self.scale,
            corr,
            objects: self.objects.clone(),
            slots: Some(l.clone()),
        })
    }
}
