//! Targets on derived features: the declared derived features recomputed from a minibatch's
//! corrected features `T(x)`, and a 1-D distance put on one of them, with its gradient through
//! the derived expressions by the chain rule (vector mode, one direction per corrected feature,
//! [`Expr::eval_dual`]).
//!
//! For a derived feature `g(T(x))` and a distance `D`, `∂D/∂rᵢⱼ = ∂D/∂gᵢ · ∂gᵢ/∂Tᵢⱼ · σⱼmⱼ`
//! (`r` the residual network's output in σ units, `m` whether feature `j` moves).

use ndarray::{Array2, ArrayView2};

use super::distance::Distance;
use super::target::Prepared;
use crate::data::expr::{Dual, Expr, Table};
use crate::error::{Error, Result};
use crate::model::BatchObjective;

const OP: &str = "correct";

/// Named columns of one minibatch (the corrected features, then the recomputed derived ones).
struct Columns<'a> {
    names: &'a [String],
    values: &'a [Vec<f64>],
}

impl Table for Columns<'_> {
    fn rows(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.names.iter().rposition(|n| n == name)
    }

    fn available(&self) -> Vec<String> {
        self.names.to_vec()
    }

    fn fill(&self, id: usize, start: usize, len: usize) -> Vec<f64> {
        self.values[id][start..start + len].to_vec()
    }
}

/// The term `D(target, g(T(x)))` of a derived feature `g` (see the module documentation).
pub(super) struct DerivedTerm {
    /// The corrected features, in the network's order.
    pub features: Vec<String>,
    /// σⱼmⱼ per feature.
    pub step: Vec<f32>,
    /// The derived features in evaluation order, up to and including the targeted one.
    pub chain: Vec<(String, Expr)>,
    pub distance: Distance,
    pub prepared: Prepared,
    /// The derived feature's σ (the distance's unit).
    pub sigma: f64,
}

impl DerivedTerm {
    /// The targeted derived feature's values on the corrected rows and, per corrected
    /// feature `j`, its derivative in `T_j` per row (`None`: it does not depend on `j`).
    pub fn values(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>) -> Result<Dual> {
        let d = self.features.len();
        let mut names = self.features.clone();
        let mut values: Vec<Vec<f64>> = (0..d)
            .map(|j| {
                let s = f64::from(self.step[j]);
                x.column(j).iter().zip(z.column(j)).map(|(&a, &b)| f64::from(a) + s * f64::from(b)).collect()
            })
            .collect();
        let n = x.nrows();
        // A moved feature's derivative in its own T_j is 1; derived features are recomputed.
        let mut tangents: Vec<Vec<Option<Vec<f64>>>> = (0..d)
            .map(|j| {
                let mut t = vec![None; d];
                if self.step[j] != 0.0 {
                    t[j] = Some(vec![1.0; n]);
                }
                t
            })
            .collect();
        let nosum = |coll: &str, _: &Expr| -> Result<Dual> {
            Err(Error::arg(OP, format!("a derived feature with a target cannot sum over objects ('{coll}')")))
        };
        let mut last = None;
        for (name, expr) in &self.chain {
            let dual = {
                let table = Columns { names: &names, values: &values };
                let find = |c: &str| names.iter().rposition(|n| n == c).map(|i| tangents[i].clone());
                expr.eval_dual(&table, d, &find, &nosum, OP)?
            };
            if let Some(row) = dual.value.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    op: format!("derived feature '{name}' = '{}' of the corrected events", expr.source()),
                    column: name.clone(),
                    count: dual.value.iter().filter(|v| !v.is_finite()).count(),
                    row,
                });
            }
            names.push(name.clone());
            values.push(dual.value.clone());
            tangents.push(dual.tangents.clone());
            last = Some(dual);
        }
        last.ok_or_else(|| Error::arg(OP, "internal: a derived target without its expression"))
    }
}

impl BatchObjective for DerivedTerm {
    fn name(&self) -> String {
        let target = self.chain.last().map_or("", |(n, _)| n.as_str());
        format!("{}({target})", self.distance.name())
    }

    fn eval(&self, x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, w: &[f32], grad: &mut Array2<f32>) -> Result<f64> {
        let Dual { value, tangents } = self.values(x, z)?;
        let wf: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let mut g = vec![0.0; value.len()];
        let v = self.distance.eval(&value, &wf, &self.prepared, self.sigma, &mut g);
        grad.fill(0.0);
        for (j, t) in tangents.iter().enumerate() {
            if let Some(t) = t {
                let s = f64::from(self.step[j]);
                grad.column_mut(j).iter_mut().zip(&g).zip(t).for_each(|((d, g), t)| *d = (g * t * s) as f32);
            }
        }
        Ok(v)
    }
}
