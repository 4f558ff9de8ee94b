//! The Hessian-vector product of a model without an exact one ([`Model::loss_hessian`] is
//! `None`): central differences of its exact weight gradients,
//!
//! `H·v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε`,  with  `ε = FD_STEP · max(1, ‖θ‖) / ‖v‖`,
//!
//! so the weights move by `FD_STEP · max(1, ‖θ‖)` (relative 10⁻³) along v. The truncation
//! error is O(ε²) (third derivatives; zero for a quadratic loss), the rounding error of the f32
//! gradients about 10⁻⁷·‖∇L‖/ε. Two gradients per product; with `group`, v is zero outside
//! the group and the product is restricted to it (the group's diagonal block).

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::model::{HessianProduct, Model, Targets};

/// The relative step of the central differences (see the module documentation).
pub const FD_STEP: f64 = 1e-3;

/// The loss Hessian of a model on fixed events by central differences of its gradients.
pub struct FiniteDifferenceHessian {
    model: Box<dyn Model>,
    x: Array2<f32>,
    labels: Option<Vec<i64>>,
    values: Option<Array2<f32>>,
    weights: Option<Vec<f32>>,
    theta: Vec<f32>,
    theta_norm: f64,
    loss: f64,
}

impl FiniteDifferenceHessian {
    /// The operator of `model`'s event-weighted mean loss on `x` (errors as
    /// [`Model::weight_grad`]).
    pub fn new(
        model: &dyn Model,
        x: ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> Result<Self> {
        let (loss, _) = model.weight_grad(x, targets, weights)?;
        let theta = model.params();
        let theta_norm = theta.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let (labels, values) = match targets {
            Targets::Labels(l) => (Some(l.to_vec()), None),
            Targets::Values(v) => (None, Some(v.to_owned())),
        };
        Ok(FiniteDifferenceHessian {
            model: model.box_clone(),
            x: x.to_owned(),
            labels,
            values,
            weights: weights.map(<[f32]>::to_vec),
            theta,
            theta_norm,
            loss,
        })
    }

    /// The gradient at θ + t·v (v full length).
    fn grad_at(&self, t: f64, v: &[f64]) -> Result<Vec<f32>> {
        let mut m = self.model.box_clone();
        let p: Vec<f32> = self.theta.iter().zip(v).map(|(&w, &d)| (f64::from(w) + t * d) as f32).collect();
        m.set_params(&p)?;
        let targets = match (&self.labels, &self.values) {
            (Some(l), _) => Targets::Labels(l),
            (None, Some(v)) => Targets::Values(v.view()),
            (None, None) => return Err(Error::arg("hessian", "no targets")),
        };
        Ok(m.weight_grad(self.x.view(), targets, self.weights.as_deref())?.1)
    }
}

impl HessianProduct for FiniteDifferenceHessian {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn apply(&self, v: &[f32], group: Option<usize>) -> Result<Vec<f32>> {
        let model: &dyn Model = &*self.model;
        let range = model.group_range(group)?;
        if v.len() != range.len() {
            return Err(Error::Shape {
                op: "hvp",
                expected: format!("a vector of {} values", range.len()),
                got: v.len().to_string(),
            });
        }
        let mut full = vec![0.0f64; self.theta.len()];
        full[range.clone()].iter_mut().zip(v).for_each(|(d, &s)| *d = f64::from(s));
        let vn = full.iter().map(|d| d * d).sum::<f64>().sqrt();
        if vn == 0.0 {
            return Ok(vec![0.0; v.len()]);
        }
        if !vn.is_finite() {
            return Err(Error::arg("hvp", "the vector has non-finite entries"));
        }
        let eps = FD_STEP * self.theta_norm.max(1.0) / vn;
        let (gp, gm) = (self.grad_at(eps, &full)?, self.grad_at(-eps, &full)?);
        Ok(range.map(|i| ((f64::from(gp[i]) - f64::from(gm[i])) / (2.0 * eps)) as f32).collect())
    }
}
