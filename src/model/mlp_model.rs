//! The fused [`Mlp`] as a [`Model`]: every method delegates to the fused kernels, so results
//! through the interface are bit-identical to calling them directly.
//!
//! Working layout: the internal one (each weight in × out row-major, then its bias, per
//! layer); flat order: PyTorch's. Parameter groups: one per layer (`layer0`, `layer1`, …),
//! weight and bias together, the same range in both orders.

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::backward::{GradTarget, InputGrad};
use super::hvp::LossHessian;
use super::interface::{HessianProduct, Model, ParamGroup};
use super::loss::{Output, Targets};
use super::mlp::{Mlp, MlpConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};

impl Model for Mlp {
    fn kind(&self) -> &'static str {
        "mlp"
    }

    /// `Mlp(20→64→1, relu, sigmoid, 1409 params)`.
    fn describe(&self) -> String {
        let widths: Vec<String> = self.layers().iter().map(ToString::to_string).collect();
        format!("Mlp({}, {}, {}, {} params)", widths.join("→"), self.activation(), self.output(), self.n_params())
    }

    fn box_clone(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn as_mlp(&self) -> Option<&Mlp> {
        Some(self)
    }

    fn as_mlp_mut(&mut self) -> Option<&mut Mlp> {
        Some(self)
    }

    fn n_inputs(&self) -> usize {
        Mlp::n_inputs(self)
    }

    fn n_outputs(&self) -> usize {
        Mlp::n_outputs(self)
    }

    fn output_vjp(&self, x: ArrayView2<'_, f32>, cot: ArrayView2<'_, f32>) -> Result<Vec<f32>> {
        super::objective::mlp_output_vjp(self, x, cot)
    }

    fn output(&self) -> Output {
        Mlp::output(self)
    }

    fn feature_names(&self) -> Option<Vec<String>> {
        Mlp::feature_names(self).map(<[String]>::to_vec)
    }

    fn check_features(&self, ds: &Dataset) -> Result<()> {
        Mlp::check_features(self, ds)
    }

    fn fit_standardization(&mut self, ds: &Dataset) -> Result<()> {
        Mlp::fit_standardization(self, ds)
    }

    /// Fitted unless every mean is 0 and every scale 1 (a new model, or one imported
    /// without a standardisation).
    fn standardization_fitted(&self) -> bool {
        self.mean().iter().any(|&m| m != 0.0) || self.std().iter().any(|&s| s != 1.0)
    }

    fn logits(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.forward_logits(x)
    }

    fn logits_with(&self, n: usize, fill: &(dyn Fn(usize, &mut [f32]) + Sync)) -> Result<Array2<f32>> {
        Ok(self.forward_with(n, fill))
    }

    fn input_grad_and_scores(&self, x: ArrayView2<'_, f32>, target: GradTarget<'_>) -> Result<InputGrad> {
        Mlp::input_grad_and_scores(self, x, target)
    }

    fn weight_grad(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<(f64, Vec<f32>)> {
        self.weight_grad_internal(x, targets, weights)
    }

    fn n_params(&self) -> usize {
        Mlp::n_params(self)
    }

    fn params(&self) -> Vec<f32> {
        Mlp::params(self).to_vec()
    }

    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        if p.len() != Mlp::n_params(self) {
            return Err(Error::Shape {
                op: "set_params",
                expected: format!("{} parameters", Mlp::n_params(self)),
                got: format!("{}", p.len()),
            });
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::arg("set_params", format!("parameter {i} is {}", p[i])));
        }
        self.params_mut().copy_from_slice(p);
        Ok(())
    }

    /// Per layer (fan-in a, fan-out b, offset o): flat `o + j·a + i` is internal `o + i·b + j`;
    /// the bias is in place.
    fn flat_order(&self) -> Option<Vec<usize>> {
        let mut perm: Vec<usize> = (0..Mlp::n_params(self)).collect();
        for (l, w) in self.layers().windows(2).enumerate() {
            let (a, b, o) = (w[0], w[1], self.offset(l));
            for i in 0..a {
                for j in 0..b {
                    perm[o + j * a + i] = o + i * b + j;
                }
            }
        }
        Some(perm)
    }

    fn params_flat(&self) -> Vec<f32> {
        Mlp::params_flat(self)
    }

    fn set_params_flat(&mut self, flat: &[f32]) -> Result<()> {
        Mlp::set_params_flat(self, flat)
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        (0..self.n_layers())
            .map(|l| ParamGroup { name: format!("layer{l}"), range: self.offset(l)..self.offset(l + 1) })
            .collect()
    }

    fn replace_head(&self, outputs: usize, output: Output, seed: u64) -> Result<Box<dyn Model>> {
        let mut layers = self.layers().to_vec();
        if let Some(last) = layers.last_mut() {
            *last = outputs;
        }
        let cfg = MlpConfig {
            activation: self.activation(),
            output,
            dropout: Mlp::dropout(self),
            seed,
            feature_names: Model::feature_names(self),
        };
        let mut m = Mlp::new(&layers, cfg)?;
        m.set_standardization(self.mean().to_vec(), self.std().to_vec())?;
        super::finetune::transplant_body(self, &mut m, seed)?;
        Ok(Box::new(m))
    }

    /// Layer `group` as at construction (`torch.nn.Linear`'s uniform draw).
    fn reinit_group(&mut self, group: usize, seed: u64) -> Result<()> {
        let fan_in = self.layers()[group.min(self.n_layers().saturating_sub(1))];
        super::finetune::reinit_linear_group(self, group, fan_in, seed)
    }

    /// Per layer its weight (in × out), before its bias.
    fn kernel_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        let l = self.layers();
        Some((0..self.n_layers()).map(|k| self.offset(k)..self.offset(k) + l[k] * l[k + 1]).collect())
    }

    fn dropout(&self) -> f32 {
        Mlp::dropout(self)
    }

    /// The exact product by the R-operator ([`LossHessian`]).
    fn loss_hessian(
        &self,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Option<Result<Box<dyn HessianProduct>>> {
        Some(Mlp::loss_hessian(self, x, targets, weights).map(|h| Box::new(h) as Box<dyn HessianProduct>))
    }

    fn save(&self, path: &Path) -> Result<()> {
        Mlp::save(self, path)
    }
}

impl HessianProduct for LossHessian {
    fn loss(&self) -> f64 {
        LossHessian::loss(self)
    }

    fn apply(&self, v: &[f32], group: Option<usize>) -> Result<Vec<f32>> {
        LossHessian::apply(self, v, group)
    }

    fn quadratic_form(&self, v: &[f32], group: Option<usize>) -> Result<f64> {
        LossHessian::quadratic_form(self, v, group)
    }
}
