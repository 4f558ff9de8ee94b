//! The reduced Hessian: H restricted to a subspace, `M = Qᵀ H Q` for an orthonormal basis Q
//! of k vectors, formed densely from k products and fully diagonalised. The subspace is one
//! layer's parameters (Q = identity on that block: use an [`super::ModelHessian`] restricted to
//! the layer with [`Basis::Identity`]), k seeded random directions, or given vectors (e.g.
//! the top eigenvectors). One step is one product (one column of M); an interrupted run
//! returns the eigenvalues of the leading j × j block, which is itself the reduced Hessian of
//! the first j basis vectors.

use super::eig::symmetric_eigenvalues;
use super::op::{check_finite, dot, gaussian, normalize, orthogonalize, LinearOp};
use crate::error::{Error, Result};
use crate::optim::{Control, Kv, Solver, Stop};
use crate::rng;

/// Largest subspace dimension (the dense matrix holds k² numbers): [`crate::limits::REDUCED_DIM`].
pub const MAX_DIM: usize = crate::limits::REDUCED_DIM;

/// The subspace a reduced Hessian lives in.
#[derive(Clone, Debug)]
pub enum Basis {
    /// The whole space of the operator (e.g. one layer's parameters).
    Identity,
    /// `k` orthonormalised Gaussian directions drawn from `seed`.
    Random { k: usize, seed: u64 },
    /// These vectors, orthonormalised in order.
    Vectors(Vec<Vec<f64>>),
}

/// A reduced Hessian and its spectrum.
#[derive(Clone, Debug)]
pub struct Reduced {
    /// Dimension of the subspace actually formed (k, or fewer after an interrupt).
    pub dim: usize,
    /// The symmetrised matrix Qᵀ H Q, row-major `dim × dim`.
    pub matrix: Vec<f64>,
    /// Its eigenvalues, descending.
    pub eigenvalues: Vec<f64>,
    /// Products used.
    pub hvps: usize,
    /// Why the run ended.
    pub stop: Stop,
}

/// Forms and diagonalises the reduced Hessian of `op` on `basis`.
pub fn reduced_hessian<O: LinearOp + ?Sized>(op: &O, basis: Basis, control: &Control) -> Result<Reduced> {
    let mut s = ReducedHessian::new(op, basis)?;
    let run = control.executor(s.k).run(&mut s)?;
    s.finish(run.stop)
}

/// The solver: one column per step.
pub struct ReducedHessian<'a, O: LinearOp + ?Sized> {
    op: &'a O,
    /// `None` for the identity basis.
    q: Option<Vec<Vec<f64>>>,
    k: usize,
    /// Columns H q_j projected on the basis.
    cols: Vec<Vec<f64>>,
}

impl<'a, O: LinearOp + ?Sized> ReducedHessian<'a, O> {
    /// Builds (and orthonormalises) the basis.
    pub fn new(op: &'a O, basis: Basis) -> Result<Self> {
        let n = op.dim();
        let q = match basis {
            Basis::Identity => None,
            Basis::Random { k, seed } => {
                super::power::check_k("reduced_hessian", k, n)?;
                crate::limits::check("reduced_hessian", "k", k, MAX_DIM)?;
                crate::memory::check(
                    crate::memory::bytes(k.saturating_mul(n), 8),
                    &format!("reduced_hessian: {k} directions of {n} weights"),
                )?;
                let mut r = rng::rng(seed);
                Some(orthonormal((0..k).map(|_| gaussian(n, &mut r)).collect())?)
            }
            Basis::Vectors(v) => {
                if v.is_empty() {
                    return Err(Error::Empty { op: "reduced_hessian", what: "the basis".into() });
                }
                if let Some(bad) = v.iter().find(|x| x.len() != n) {
                    return Err(Error::Shape {
                        op: "reduced_hessian",
                        expected: format!("basis vectors of {n} values"),
                        got: bad.len().to_string(),
                    });
                }
                Some(orthonormal(v)?)
            }
        };
        let k = q.as_ref().map_or(n, Vec::len);
        crate::limits::check("reduced_hessian", "subspace dimension", k, MAX_DIM)?;
        crate::memory::check(crate::memory::bytes(k.saturating_mul(k), 16), "reduced_hessian: the dense matrix")?;
        Ok(ReducedHessian { op, q, k, cols: Vec::new() })
    }

    /// Symmetrises the columns formed so far and diagonalises them.
    pub fn finish(self, stop: Stop) -> Result<Reduced> {
        let j = self.cols.len();
        let mut m = vec![0.0; j * j];
        for r in 0..j {
            for c in 0..j {
                m[r * j + c] = 0.5 * (self.cols[c][r] + self.cols[r][c]);
            }
        }
        let mut eigenvalues = symmetric_eigenvalues(j, &m)?;
        eigenvalues.reverse();
        Ok(Reduced { dim: j, matrix: m, eigenvalues, hvps: j, stop })
    }
}

impl<O: LinearOp + ?Sized> Solver for ReducedHessian<'_, O> {
    fn name(&self) -> &'static str {
        "reduced"
    }

    fn step(&mut self, iter: usize) -> Result<Kv> {
        let n = self.op.dim();
        let mut hq = vec![0.0; n];
        match &self.q {
            None => {
                let mut e = vec![0.0; n];
                e[iter] = 1.0;
                self.op.apply(&e, &mut hq)?;
                check_finite("reduced_hessian", &hq)?;
                self.cols.push(hq);
            }
            Some(q) => {
                self.op.apply(&q[iter], &mut hq)?;
                check_finite("reduced_hessian", &hq)?;
                self.cols.push(q.iter().map(|qi| dot(qi, &hq)).collect());
            }
        }
        let j = self.cols.len() - 1;
        Ok(vec![("column", j as f64), ("diagonal", self.cols[j][j])])
    }

    fn stop(&self) -> Option<Stop> {
        (self.cols.len() == self.k).then_some(Stop::MaxIters)
    }
}

/// Gram–Schmidt (twice); errors when a vector is (numerically) in the span of the previous.
fn orthonormal(vs: Vec<Vec<f64>>) -> Result<Vec<Vec<f64>>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(vs.len());
    for (i, mut v) in vs.into_iter().enumerate() {
        let before = super::op::norm(&v);
        orthogonalize(&mut v, &out);
        if normalize(&mut v) <= 1e-10 * before.max(f64::MIN_POSITIVE) {
            return Err(Error::arg(
                "reduced_hessian",
                format!("basis vector {i} is linearly dependent on the previous ones"),
            ));
        }
        out.push(v);
    }
    Ok(out)
}
