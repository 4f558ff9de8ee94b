//! L1 regularisation of the weight matrices (Keras' `kernel_regularizer=L1(λ)`): the penalty
//! λ·Σ|W| over every weight matrix (the biases are not penalised) is added to each
//! minibatch's loss, so its (sub)gradient λ·sign(W) (0 at W = 0, as TensorFlow's `sign`) is
//! added to the weight gradient before the optimiser step.

use std::ops::Range;

use super::Model;
use crate::error::{Error, Result};

/// The penalty of one model: λ and the weight-matrix ranges of its working layout.
#[derive(Clone, Debug, PartialEq)]
pub struct L1 {
    lambda: f64,
    ranges: Vec<Range<usize>>,
}

impl L1 {
    /// The penalty λ·Σ|W| for `model`; refused for a model whose weight matrices are not known
    /// ([`Model::kernel_ranges`]) and for λ that is not a finite number ≥ 0.
    pub fn new(model: &dyn Model, lambda: f64) -> Result<L1> {
        Self::with_output(model, lambda, true)
    }

    /// [`L1::new`], with the output layer's weight matrix (the last) left out when `output` is
    /// false (the reference detector regularises its hidden layers only).
    pub fn with_output(model: &dyn Model, lambda: f64, output: bool) -> Result<L1> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(Error::BadOption {
                func: "train".into(),
                key: "l1".into(),
                problem: format!("must be a finite number ≥ 0, got {lambda}"),
            });
        }
        let ranges = model.kernel_ranges().ok_or_else(|| Error::BadOption {
            func: "train".into(),
            key: "l1".into(),
            problem: format!("is not available for a {} model (its weight matrices are not known)", model.kind()),
        })?;
        let mut ranges = ranges;
        if !output {
            ranges.pop();
        }
        Ok(L1 { lambda, ranges })
    }

    /// λ·Σ|W| at the parameters `params` (working layout).
    pub fn penalty(&self, params: &[f32]) -> f64 {
        let s: f64 = self.ranges.iter().flat_map(|r| &params[r.clone()]).map(|&w| f64::from(w.abs())).sum();
        self.lambda * s
    }

    /// Adds λ·sign(W) to `grad` (working layout, the same length as `params`).
    pub fn add_gradient(&self, params: &[f32], grad: &mut [f32]) {
        let l = self.lambda as f32;
        for r in &self.ranges {
            for (g, &w) in grad[r.clone()].iter_mut().zip(&params[r.clone()]) {
                if w > 0.0 {
                    *g += l;
                } else if w < 0.0 {
                    *g -= l;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::model::{Mlp, MlpConfig, Model, Targets};
    use crate::rng::Stream;

    fn setup() -> (Mlp, Array2<f32>, Vec<i64>) {
        let model = Mlp::new(&[3, 5, 4, 1], MlpConfig { seed: 3, ..MlpConfig::default() }).unwrap();
        let mut r = Stream::new(7, 0);
        let x = Array2::from_shape_fn((40, 3), |_| (2.0 * r.uniform() - 1.0) as f32);
        let y: Vec<i64> = (0..40).map(|i| i64::from(x[[i, 0]] + x[[i, 1]] > 0.0)).collect();
        (model, x, y)
    }

    #[test]
    fn penalty_is_lambda_times_the_absolute_weights_of_the_matrices_only() {
        let (model, _, _) = setup();
        let l1 = L1::new(&model, 0.25).unwrap();
        // Independently: the PyTorch-order (weight out × in, bias) views; only weights count.
        let flat = model.params_flat();
        let expect: f64 =
            model.split_layers(&flat).unwrap().iter().flat_map(|(w, _)| w.iter()).map(|&v| f64::from(v.abs())).sum();
        assert!((l1.penalty(model.params()) - 0.25 * expect).abs() < 1e-9 * expect.max(1.0));
    }

    #[test]
    fn loss_plus_penalty_gradient_matches_central_finite_differences() {
        let (model, x, y) = setup();
        let lambda = 0.01;
        let l1 = L1::new(&model, lambda).unwrap();
        let objective = |p: &[f32]| -> f64 {
            let mut m = model.clone();
            Model::set_params(&mut m, p).unwrap();
            m.loss(x.view(), Targets::Labels(&y), None).unwrap() + l1.penalty(p)
        };
        let (_, mut g) = Model::weight_grad(&model, x.view(), Targets::Labels(&y), None).unwrap();
        let p0: Vec<f32> = model.params().to_vec();
        l1.add_gradient(&p0, &mut g);
        // f64 objective of f32 parameters: a step of 1e-3 keeps the rounding error near 1e-5;
        // no weight is within the step of 0, where |w| has its kink.
        let h = 1e-3f32;
        let mut checked = 0;
        for i in 0..p0.len() {
            if p0[i].abs() <= 2.0 * h {
                continue;
            }
            let (mut a, mut b) = (p0.clone(), p0.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (objective(&a) - objective(&b)) / f64::from(a[i] - b[i]);
            assert!((fd - f64::from(g[i])).abs() < 2e-3 * (1.0 + fd.abs()), "param {i}: fd {fd} vs {}", g[i]);
            checked += 1;
        }
        assert!(checked > p0.len() / 2);
    }

    #[test]
    fn without_the_output_layer_only_the_hidden_matrices_count() {
        let (model, _, _) = setup();
        let flat = model.params_flat();
        let layers = model.split_layers(&flat).unwrap();
        // Layers 3→5, 5→4 (hidden) and 4→1 (output): only the first two.
        let expect: f64 = layers[..2].iter().flat_map(|(w, _)| w.iter()).map(|&v| f64::from(v.abs())).sum();
        let l1 = L1::with_output(&model, 1.0, false).unwrap();
        assert!((l1.penalty(model.params()) - expect).abs() < 1e-9 * expect);
        let mut g = vec![0.0; flat.len()];
        l1.add_gradient(model.params(), &mut g);
        let o = model.kernel_ranges().unwrap()[2].clone();
        assert!(g[o].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn lambdas_that_are_not_finite_and_nonnegative_are_refused() {
        let (model, _, _) = setup();
        assert!(L1::new(&model, -1.0).is_err());
        assert!(L1::new(&model, f64::NAN).is_err());
        assert!(L1::new(&model, 0.0).is_ok());
    }

    #[test]
    fn training_with_the_penalty_shrinks_the_weight_matrices() {
        use crate::data::Dataset;
        use crate::model::{train, TrainConfig};
        use crate::optim::Control;
        let (model, x, y) = setup();
        let d = Dataset::new(vec!["a".into(), "b".into(), "c".into()], x, Some(y), None).unwrap();
        let norm = |l1: f64| {
            let cfg = TrainConfig { epochs: 30, batch_size: 8, l1, seed: 1, ..TrainConfig::default() };
            let m = train(&model, &d, &cfg, &Control::quiet()).unwrap().model;
            L1::new(&*m, 1.0).unwrap().penalty(&m.params())
        };
        // λ·sign(W) pulls every weight towards 0 by up to the learning rate per step (Adam).
        let (plain, penalised) = (norm(0.0), norm(0.05));
        assert!(penalised < 0.7 * plain, "Σ|W| {penalised} with L1 against {plain} without");
    }
}
