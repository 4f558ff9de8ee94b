//! The operator the spectrum solvers see: a symmetric linear map `v ↦ H·v` on `f64` vectors,
//! with the training-loss Hessian of any model ([`ModelHessian`]) and a dense matrix ([`DenseOp`],
//! for reduced Hessians and tests) as implementations; plus the small vector kernels and the
//! seeded random directions the solvers share.

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::fd_hessian::FiniteDifferenceHessian;
use crate::error::{Error, Result};
use crate::model::{group_to_flat, HessianProduct, Model, Targets};
use crate::rng::Rng;

/// A symmetric linear operator (a Hessian, or any matrix with a known spectrum in tests).
pub trait LinearOp: Sync {
    /// Dimension n of the space it acts on.
    fn dim(&self) -> usize;
    /// Writes `H·v` into `out` (both of length `dim`).
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()>;
    /// `vᵀHv`; an operator may compute it more cheaply than `H·v` (the default forms `H·v`).
    fn quadratic_form(&self, v: &[f64]) -> Result<f64> {
        let mut hv = vec![0.0; v.len()];
        self.apply(v, &mut hv)?;
        check_finite("hessian", &hv)?;
        Ok(dot(v, &hv))
    }
}

/// A dense symmetric matrix, row-major.
#[derive(Clone, Debug)]
pub struct DenseOp {
    n: usize,
    a: Vec<f64>,
}

impl DenseOp {
    /// An `n × n` operator from row-major entries; errors unless there are n² of them.
    pub fn new(n: usize, a: Vec<f64>) -> Result<Self> {
        if a.len() != n * n {
            return Err(Error::Shape {
                op: "dense operator",
                expected: format!("{} entries", n * n),
                got: a.len().to_string(),
            });
        }
        Ok(DenseOp { n, a })
    }

    /// The diagonal matrix with entries `d`.
    pub fn diagonal(d: &[f64]) -> Self {
        let n = d.len();
        let mut a = vec![0.0; n * n];
        for (i, v) in d.iter().enumerate() {
            a[i * n + i] = *v;
        }
        DenseOp { n, a }
    }

    /// Row-major entries.
    pub fn entries(&self) -> &[f64] {
        &self.a
    }
}

impl LinearOp for DenseOp {
    fn dim(&self) -> usize {
        self.n
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, row) in out.iter_mut().zip(self.a.chunks_exact(self.n)) {
            *o = dot(row, v);
        }
        Ok(())
    }
}

/// The Hessian of a model's training loss on fixed events (or its diagonal block for one
/// parameter group), in the model's working layout: exact where the model has a
/// Hessian-vector product ([`Model::loss_hessian`]; the fused MLP's R-operator), otherwise by
/// central differences of exact gradients ([`FiniteDifferenceHessian`], step documented
/// there). Convert eigenvectors for users with [`ModelHessian::to_torch_order`].
pub struct ModelHessian {
    h: Box<dyn HessianProduct>,
    model: Box<dyn Model>,
    layer: Option<usize>,
    dim: usize,
}

impl ModelHessian {
    /// The Hessian of the event-weighted mean loss of `model` on `x` (all weights, or those
    /// of parameter group `layer`).
    pub fn new(
        model: &dyn Model,
        x: ndarray::ArrayView2<'_, f32>,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
        layer: Option<usize>,
    ) -> Result<Self> {
        let dim = model.group_range(layer)?.len();
        let h = match model.loss_hessian(x, targets, weights) {
            Some(h) => h?,
            None => Box::new(FiniteDifferenceHessian::new(model, x, targets, weights)?),
        };
        Ok(ModelHessian { h, model: model.box_clone(), layer, dim })
    }

    /// The Hessian of a model's loss on a labelled dataset (event weights included).
    pub fn from_dataset(model: &dyn Model, data: &crate::Dataset, layer: Option<usize>) -> Result<Self> {
        let x = model.inputs(data)?;
        let labels = data.label().ok_or_else(|| Error::arg("hessian", "the dataset has no label column"))?;
        Self::new(model, x.view(), Targets::Labels(labels), data.weight(), layer)
    }

    /// The loss at the model's weights.
    pub fn loss(&self) -> f64 {
        self.h.loss()
    }

    /// The parameter group this operator is restricted to, if any.
    pub fn layer(&self) -> Option<usize> {
        self.layer
    }

    /// The underlying product operator.
    pub fn inner(&self) -> &dyn HessianProduct {
        &*self.h
    }

    /// A vector of this operator's space in the model's flat (for an MLP, PyTorch) order.
    pub fn to_torch_order(&self, v: &[f64]) -> Result<Vec<f64>> {
        group_to_flat(&*self.model, v, self.layer, true)
    }

    /// A vector in the model's flat order in this operator's space.
    pub fn from_torch_order(&self, v: &[f64]) -> Result<Vec<f64>> {
        group_to_flat(&*self.model, v, self.layer, false)
    }
}

impl LinearOp for ModelHessian {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let hv = self.h.apply(&v32, self.layer)?;
        out.iter_mut().zip(hv).for_each(|(o, x)| *o = f64::from(x));
        Ok(())
    }

    /// For the fused MLP by the R-forward pass alone, about twice as fast as `apply`
    /// ([`crate::model::LossHessian::quadratic_form`]).
    fn quadratic_form(&self, v: &[f64]) -> Result<f64> {
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let q = self.h.quadratic_form(&v32, self.layer)?;
        if q.is_finite() {
            Ok(q)
        } else {
            Err(Error::arg("hessian", "a Hessian quadratic form is not finite; is the loss finite at these weights?"))
        }
    }
}

/// Σ aᵢbᵢ.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ‖a‖₂.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y ← y + α·x.
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += alpha * xi);
}

/// ‖x‖₂ of an f32 vector, accumulated in f64.
pub fn l2(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt()
}

/// Scales `v` to unit length; returns the old length (0 leaves `v` unchanged).
pub fn normalize(v: &mut [f64]) -> f64 {
    let n = norm(v);
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    n
}

/// Removes from `v` its components along the orthonormal `basis` (twice: "twice is enough"
/// for orthogonality to working precision).
pub fn orthogonalize(v: &mut [f64], basis: &[Vec<f64>]) {
    for _ in 0..2 {
        for q in basis {
            let c = dot(q, v);
            axpy(-c, q, v);
        }
    }
}

/// A standard normal vector.
pub fn gaussian(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| rng.sample::<f64, _>(StandardNormal)).collect()
}

/// A Rademacher vector (±1 with equal probability).
pub fn rademacher(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect()
}

/// Errors unless `v` is a finite vector: an `H·v` with NaN means the model's loss is not finite.
pub(crate) fn check_finite(op: &'static str, v: &[f64]) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::arg(op, "a Hessian-vector product is not finite; is the loss finite at these weights?"))
    }
}
