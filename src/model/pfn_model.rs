//! The [`Pfn`] as a [`Model`]: every method delegates to the set network's own passes
//! (`pfn_grad.rs`), so results through the interface equal calling them directly.
//!
//! Inputs: the `n × D` matrix of the network's [`SetLayout`](super::SetLayout) (event
//! features, the object count, then the padded object slots), built from a dataset by
//! [`Model::inputs`] and put back by [`Model::with_inputs`]. Working layout = flat order =
//! the public (PyTorch) order of [`Pfn::params_flat`]; parameter groups `phi.0`, `phi.1`, …,
//! `f.0`, … (one per layer, weight then bias). No exact Hessian product: spectra use central
//! differences of the exact gradients.

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::backward::{GradTarget, InputGrad};
use super::interface::{Model, ParamGroup};
use super::loss::{Output, Targets};
use super::pfn::Pfn;
use crate::data::Dataset;
use crate::error::Result;

impl Model for Pfn {
    fn kind(&self) -> &'static str {
        "pfn"
    }

    /// `Pfn(part: 4 features × ≤ 64 objects, Φ 4→100→100→128, sum, F 128→100→100→100→1, relu, sigmoid, 56 289 params)`.
    fn describe(&self) -> String {
        let join = |w: &[usize]| w.iter().map(ToString::to_string).collect::<Vec<_>>().join("→");
        let l = self.layout();
        let events =
            if l.event_features.is_empty() { String::new() } else { format!(" + {} event features", l.n_event()) };
        format!(
            "Pfn({}: {} features × ≤ {} objects{events}, Φ {}, {}, F {}, {}, {}, {} params)",
            l.collection,
            l.n_object(),
            l.max_objects,
            join(self.phi_widths()),
            self.pooling().name(),
            join(self.f_widths()),
            self.activation(),
            self.output(),
            self.n_params()
        )
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn n_inputs(&self) -> usize {
        Pfn::n_inputs(self)
    }

    fn n_outputs(&self) -> usize {
        Pfn::n_outputs(self)
    }

    fn output(&self) -> Output {
        Pfn::output(self)
    }

    /// The event features, then `coll.feature` for each object feature.
    fn feature_names(&self) -> Option<Vec<String>> {
        let l = self.layout();
        let mut names = l.event_features.clone();
        names.extend(l.object_features.iter().map(|f| format!("{}.{f}", l.collection)));
        Some(names)
    }

    fn input_names(&self) -> Vec<String> {
        self.layout().names()
    }

    fn check_features(&self, ds: &Dataset) -> Result<()> {
        self.layout().check(ds)
    }

    fn inputs_are_features(&self) -> bool {
        false
    }

    fn set_layout(&self) -> Option<&super::SetLayout> {
        Some(self.layout())
    }

    fn inputs(&self, ds: &Dataset) -> Result<Array2<f32>> {
        self.layout().gather(ds)
    }

    fn with_inputs(&self, ds: &Dataset, x: Array2<f32>) -> Result<Dataset> {
        self.layout().scatter(ds, x.view())
    }

    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        let x = self.layout().gather(ds)?;
        Pfn::fit_standardization(self, x.view())
    }

    /// Fitted unless every mean is 0 and every scale 1 (a new network).
    fn standardization_fitted(&self) -> bool {
        let ((em, es), (om, os)) = (self.event_standardization(), self.object_standardization());
        em.iter().chain(om).any(|&m| m != 0.0) || es.iter().chain(os).any(|&v| v != 1.0)
    }

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        Pfn::logits(self, x)
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        Pfn::input_grad_and_scores(self, x, target)
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        Pfn::weight_grad(self, x, targets, weights)
    }

    fn n_params(&self) -> usize {
        Pfn::n_params(self)
    }

    fn params(&self) -> Vec<f32> {
        Pfn::params_flat(self)
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        Pfn::set_params_flat(self, p)
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        Pfn::param_groups(self)
            .into_iter()
            .map(|(name, offset, len)| ParamGroup { name, range: offset..offset + len })
            .collect()
    }

    fn replace_head(&self, outputs: usize, output: Output, seed: u64) -> Result<Box<dyn Model>> {
        Ok(Box::new(self.with_head(outputs, output, seed)?))
    }

    /// Layer `group` (Φ's, then F's) as at construction (`torch.nn.Linear`'s uniform draw).
    fn reinit_group(&mut self, group: usize, seed: u64) -> Result<()> {
        let shapes = self.shapes();
        let fan_in = shapes.get(group).map_or(1, |s| s.0);
        super::finetune::reinit_linear_group(self, group, fan_in, seed)
    }

    fn save(&self, path: &Path) -> Result<()> {
        Pfn::save(self, path)
    }
}
