//! The [`Part`] as a [`Model`]: every method delegates to its own passes (`part_grad.rs`).
//!
//! Inputs: the `n × D` matrix of the network's [`SetLayout`](super::SetLayout), built from a
//! dataset by [`Model::inputs`] and put back by [`Model::with_inputs`]. Working layout = flat
//! order (the tensors of [`Part::tensor_specs`] in order, each row-major in PyTorch's shape);
//! groups `embed`, `pair_embed`, `blocks.i`, `cls_blocks.i`, `norm`, `fc`, `cls_token`. No
//! exact Hessian product (the forward is not written for candle's double backward): spectra
//! take central differences of the exact f32 gradients (`landscape::fd_hessian`, the weights
//! moved by 10⁻³·max(1, ‖θ‖) along v). `part_tests.rs` measures them against an f64 mixed
//! second difference of the loss: relative errors of uᵀHv, vᵀHu, uᵀHu, vᵀHv of 1.2e-4 to
//! 4.4e-3 on a smooth ParT (no ReLU `fc` layers), symmetric to the same accuracy. With ReLU
//! head layers a step that crosses a kink gives a wrong product (measured: 50× off).

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::backward::{GradTarget, InputGrad};
use super::interface::{Model, ParamGroup};
use super::loss::{Output, Targets};
use super::part::Part;
use crate::data::Dataset;
use crate::error::Result;

impl Model for Part {
    fn kind(&self) -> &'static str {
        "part"
    }

    /// `Part(part: 5 features × ≤ 128 objects, pairs (pt, eta, phi, E), embed 64→128→64, pair 32→32→32→4, 4 heads, 3+1 blocks, fc 2, softmax, 222858 params)`.
    fn describe(&self) -> String {
        let join = |w: &[usize]| w.iter().map(ToString::to_string).collect::<Vec<_>>().join("→");
        let l = self.layout();
        let c = self.config();
        let events =
            if l.event_features.is_empty() { String::new() } else { format!(" + {} event features", l.n_event()) };
        let pairs = if c.pair_inputs.is_empty() {
            "no pair features".to_string()
        } else {
            let mut w = c.pair_embed.clone();
            w.push(c.heads);
            format!("pairs ({}) {}", c.pair_inputs.join(", "), join(&w))
        };
        let mut fc = c.fc.clone();
        fc.push(c.n_outputs);
        format!(
            "Part({}: {} features × ≤ {} objects{events}, embed {}, {pairs}, {} heads, {}+{} blocks, fc {}, {}, {} params)",
            l.collection,
            l.n_object(),
            l.max_objects,
            join(&c.embed),
            c.heads,
            c.blocks,
            c.cls_blocks,
            join(&fc),
            c.output,
            self.n_params()
        )
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn n_inputs(&self) -> usize {
        Part::n_inputs(self)
    }

    fn n_outputs(&self) -> usize {
        Part::n_outputs(self)
    }

    fn output(&self) -> Output {
        Part::output(self)
    }

    /// The event features, then `coll.feature` for each object feature.
    fn feature_names(&self) -> Option<Vec<String>> {
        Some(self.layout().feature_names())
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

    /// Fitted unless every mean is 0 and every scale 1 (a new network).
    fn standardization_fitted(&self) -> bool {
        let m = self.event_mean.iter().chain(&self.object_mean).chain(&self.pair_mean);
        let s = self.event_std.iter().chain(&self.object_std).chain(&self.pair_std);
        m.copied().any(|v| v != 0.0) || s.copied().any(|v| v != 1.0)
    }

    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        let x = self.layout().gather(ds)?;
        Part::fit_standardization(self, x.view())
    }

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        Part::logits(self, x)
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        Part::input_grad_and_scores(self, x, target)
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        Part::weight_grad(self, x, targets, weights)
    }

    fn n_params(&self) -> usize {
        Part::n_params(self)
    }

    fn params(&self) -> Vec<f32> {
        Part::params(self).to_vec()
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        Part::set_params(self, p)
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        self.groups().into_iter().map(|(name, range)| ParamGroup { name, range }).collect()
    }

    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        Some(self.tensor_specs().iter().filter(|s| s.kernel).map(|s| s.range()).collect())
    }

    fn save(&self, path: &Path) -> Result<()> {
        Part::save(self, path)
    }
}
